// Package dnstest is the nameserver the DNS tools' tests ask: two stacks
// on an emulated network laid out as the compat captures' lab
// (../shared/compat/nslookup.md), a client at 10.200.0.1 and fd00:200::1
// and a server at 10.200.0.2 and fd00:200::2 running a miekg/dns server
// for the zone "lab" that answers as dnsmasq did there: A, AAAA, CNAME,
// MX, TXT and SRV answers without AA, NS, SOA and PTR with it, REFUSED
// for names outside lab, NXDOMAIN for unknown names in it. The server
// also holds 10.200.8.1, where a socket on port 53 reads queries and
// never answers (a dead server), and broken.lab gets SERVFAIL.
package dnstest

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// Zone is the lab's records (the captures' dnsmasq configuration).
var Zone = []string{
	"lab. 600 IN SOA ns.lab. hostmaster.lab. 2024010102 1200 180 1209600 600",
	"lab. 600 IN NS ns.lab.",
	"lab. 600 IN MX 10 mail.lab.",
	"ns.lab. 600 IN A 10.200.0.2",
	"web.lab. 600 IN A 10.200.0.2",
	"web.lab. 600 IN AAAA fd00:200::2",
	"www.lab. 600 IN CNAME web.lab.",
	"chain.lab. 600 IN CNAME www.lab.",
	"hostc.lab. 600 IN AAAA fd00:201::2",
	`info.lab. 600 IN TXT "hello from dnsmasq" "second string"`,
	"_http._tcp.lab. 600 IN SRV 0 5 80 web.lab.",
	"2.0.200.10.in-addr.arpa. 600 IN PTR web.lab.",
	"99.0.200.10.in-addr.arpa. 600 IN PTR printer.lab.",
	"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.d.f.ip6.arpa. 600 IN PTR web.lab.",
	"wild.test. 600 IN A 10.200.0.77",
}

// Server and client addresses.
var (
	ServerV4 = netip.MustParseAddr("10.200.0.2")
	ServerV6 = netip.MustParseAddr("fd00:200::2")
	Dead     = netip.MustParseAddr("10.200.8.1")
)

// Lab is a running lab.
type Lab struct {
	Client, Server *stackhost.Host
	// ResolvConf is a resolv.conf naming the server with search lab, as
	// the captures' client had; give it as STACKBOX_RESOLV_CONF.
	ResolvConf string
	queries    atomic.Int64
	deadSeen   atomic.Int64
}

// Queries is the number of queries the server answered.
func (l *Lab) Queries() int64 { return l.queries.Load() }

// DeadQueries is the number of queries the dead server swallowed.
func (l *Lab) DeadQueries() int64 { return l.deadSeen.Load() }

// Getenv is the environment the tools run in: the lab's resolv.conf and
// no hosts file.
func (l *Lab) Getenv(k string) string {
	switch k {
	case "STACKBOX_RESOLV_CONF":
		return l.ResolvConf
	case "STACKBOX_HOSTS":
		return filepath.Join(filepath.Dir(l.ResolvConf), "hosts")
	}
	return ""
}

type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

// Opener gives the client stack to an applet (its Close leaves it up).
func (l *Lab) Opener() host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) {
		return noClose{l.Client}, nil
	}
}

// Start builds the lab for t; everything stops when t ends.
func Start(t testing.TB) *Lab {
	t.Helper()
	spec := "emu:dns-" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	ctx := context.Background()
	l := &Lab{}
	for i, h := range []**stackhost.Host{&l.Client, &l.Server} {
		var err error
		if *h, err = stackhost.Start(spec); err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		for _, p := range []string{"10.200.0.%d/24", "fd00:200::%d/64"} {
			pfx := netip.MustParsePrefix(strings.Replace(p, "%d", string(rune('1'+i)), 1))
			if err := hh.AddAddress(ctx, "eth0", pfx, netip.Addr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Server.AddAddress(ctx, "eth0", netip.PrefixFrom(Dead, 32), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Client.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.200.8.0/24"), Gateway: ServerV4, Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	waitDAD(t, l.Client, l.Server)

	zone := map[string][]dns.RR{}
	for _, s := range Zone {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.ToLower(rr.Header().Name)
		zone[n] = append(zone[n], rr)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		l.queries.Add(1)
		w.WriteMsg(answer(zone, q))
	})
	for _, a := range []netip.Addr{ServerV4, ServerV6} {
		pc, err := l.Server.ListenPacket(ctx, "udp", netip.AddrPortFrom(a, 53).String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := &dns.Server{PacketConn: pc, Handler: handler}
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
		ln, err := l.Server.Listen(ctx, "tcp", netip.AddrPortFrom(a, 53).String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tsrv := &dns.Server{Listener: ln, Handler: handler}
		go tsrv.ActivateAndServe()
		t.Cleanup(func() { tsrv.Shutdown() })
	}
	dead, err := l.Server.ListenPacket(ctx, "udp", netip.AddrPortFrom(Dead, 53).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := dead.ReadFrom(buf); err != nil {
				return
			}
			l.deadSeen.Add(1)
		}
	}()

	dir := t.TempDir()
	l.ResolvConf = filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(l.ResolvConf, []byte("search lab\nnameserver 10.200.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// answer is the lab server's reply to q, dnsmasq's way.
func answer(zone map[string][]dns.RR, q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	m.Compress = true // as dnsmasq answers: host -v counts the bytes
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	qn, qt := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	inLab := qn == "lab." || strings.HasSuffix(qn, ".lab.") || strings.HasSuffix(qn, ".in-addr.arpa.") || strings.HasSuffix(qn, ".ip6.arpa.")
	switch {
	case qn == "broken.lab.":
		m.Rcode = dns.RcodeServerFailure
		return m
	case qn == "wild.test." && qt == dns.TypeA:
		m.Authoritative = true
	case !inLab || zone[qn] == nil && !strings.HasSuffix(qn, ".lab.") && qn != "lab.":
		// No upstream: dnsmasq refuses what it is not authoritative for
		// (unknown PTRs too).
		m.Rcode = dns.RcodeRefused
		return m
	}
	name := qn
	for range 8 {
		rrs, ok := zone[name]
		if !ok {
			if name == qn {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		var cname *dns.CNAME
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == qt || qt == dns.TypeANY {
				m.Answer = append(m.Answer, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		switch qt {
		case dns.TypeNS, dns.TypeSOA, dns.TypePTR:
			m.Authoritative = true
		}
		if cname == nil || qt == dns.TypeCNAME {
			break
		}
		m.Answer = append(m.Answer, cname)
		name = strings.ToLower(cname.Target)
	}
	return m
}

// waitDAD waits (bounded) until the hosts' IPv6 addresses are usable.
func waitDAD(t testing.TB, hs ...*stackhost.Host) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range hs {
		for {
			it, err := h.Interface(context.Background(), "eth0")
			if err != nil {
				t.Fatal(err)
			}
			tentative := false
			for _, a := range it.Addrs {
				tentative = tentative || a.State == "tentative"
			}
			if !tentative {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("eth0 addresses still tentative: %+v", it.Addrs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
