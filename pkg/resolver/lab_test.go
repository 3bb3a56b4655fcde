package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// Addresses on the test link: the client resolver and the server host.
var (
	clientAddr = netip.MustParseAddr("10.53.0.1")
	serverAddr = netip.MustParseAddr("10.53.0.2")
	deadAddr   = netip.MustParseAddr("10.53.0.9") // nobody: ARP goes unanswered
	server6    = netip.MustParseAddr("2001:db8:53::2")
)

// newLab starts two stacks on one emulated link: the client the
// resolver runs on, and the server host for the nameservers.
func newLab(t *testing.T) (client, server *stackhost.Host) {
	t.Helper()
	spec := "emu:resolver-" + t.Name()
	ctx := context.Background()
	for i, h := range []**stackhost.Host{&client, &server} {
		var err error
		if *h, err = stackhost.Start(spec); err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		for _, p := range []string{fmt.Sprintf("10.53.0.%d/24", i+1), fmt.Sprintf("2001:db8:53::%d/64", i+1)} {
			if err := hh.AddAddress(ctx, "eth0", netip.MustParsePrefix(p), netip.Addr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return client, server
}

// waitUsable waits (bounded) until a can be bound: a new IPv6 address
// is tentative until duplicate address detection ends (RFC 4862 §5.4).
func waitUsable(t *testing.T, h *stackhost.Host, a netip.Addr) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pc, err := h.ListenPacket(context.Background(), "udp", netip.AddrPortFrom(a, 0).String(), nil)
		if err == nil {
			pc.Close()
			return
		}
		if !errors.Is(err, syscall.EADDRNOTAVAIL) || time.Now().After(deadline) {
			t.Fatalf("%v never became usable: %v", a, err)
		}
	}
}

// serve runs h as a DNS server on addr over UDP and TCP on the server
// host until the test ends.
func serve(t *testing.T, on host.Net, addr netip.AddrPort, h dns.Handler) {
	t.Helper()
	ctx := context.Background()
	priv := &host.SocketOptions{Cred: &host.Cred{Privileged: true}} // port 53
	pc, err := on.ListenPacket(ctx, "udp", addr.String(), priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := on.Listen(ctx, "tcp", addr.String(), priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
}

// query is one question a test server saw.
type query struct {
	name  string
	qtype uint16
	tcp   bool
	edns  uint16 // the advertised UDP size, 0 without EDNS0
}

// zone is a test nameserver acting as a recursive server for the
// records in zoneText: it follows CNAMEs within them, answers NXDOMAIN
// and no data with the SOA, and has special names: servfail.example.
// and refused.example. get those RCODEs, silent.example. no answer,
// big.example. is truncated over UDP, spoof.example. is answered first
// with a wrong ID and a wrong question, partial.example.'s CNAME is not
// followed. It logs every query.
type zone struct {
	mu  sync.Mutex
	log []query
	rrs []dns.RR
	soa *dns.SOA
}

const zoneText = `
example.              300 IN SOA ns1.example. hostmaster.example. 1 3600 600 86400 60
example.              300 IN NS  ns1.example.
example.              300 IN NS  ns2.example.
www.example.          300 IN A    10.1.0.1
www.example.          300 IN AAAA 2001:db8::1
alias.example.        300 IN CNAME mid.example.
mid.example.          300 IN CNAME www.example.
loop1.example.        300 IN CNAME loop2.example.
loop2.example.        300 IN CNAME loop1.example.
partial.example.      300 IN CNAME www.example.
mx.example.           300 IN MX 20 mail2.example.
mx.example.           300 IN MX 10 mail1.example.
txt.example.          300 IN TXT "v=spf1 " "-all"
_sip._udp.example.    300 IN SRV 20 0 5060 sip2.example.
_sip._udp.example.    300 IN SRV 10 60 5060 sip1.example.
1.0.1.10.in-addr.arpa. 300 IN PTR www.example.
host.corp.example.    300 IN A 10.1.0.2
short.example.        2   IN A 10.1.0.3
spoof.example.        300 IN A 10.9.9.9
svc.example.          300 IN A 10.53.0.2
`

func newZone(t *testing.T) *zone {
	z := &zone{}
	zp := dns.NewZoneParser(strings.NewReader(zoneText), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.rrs = append(z.rrs, rr)
		if soa, ok := rr.(*dns.SOA); ok {
			z.soa = soa
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	ptr6, _ := dns.ReverseAddr("2001:db8::1")
	z.rrs = append(z.rrs, &dns.PTR{Hdr: dns.RR_Header{Name: ptr6, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 300}, Ptr: "www.example."})
	for i := range 40 {
		z.rrs = append(z.rrs, &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
			Txt: []string{fmt.Sprintf("record %02d of a set too big for 512 bytes", i)}})
	}
	return z
}

func (z *zone) queries() []query {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]query(nil), z.log...)
}

func (z *zone) count(name string) int {
	n := 0
	for _, q := range z.queries() {
		if q.name == name {
			n++
		}
	}
	return n
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	tcp := strings.HasPrefix(w.LocalAddr().Network(), "tcp")
	z.mu.Lock()
	var edns uint16
	if o := req.IsEdns0(); o != nil {
		edns = o.UDPSize()
	}
	z.log = append(z.log, query{strings.ToLower(q.Name), q.Qtype, tcp, edns})
	z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	name := strings.ToLower(q.Name)
	switch name {
	case "servfail.example.":
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	case "refused.example.":
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	case "silent.example.":
		return
	case "big.example.":
		if !tcp {
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
	case "spoof.example.":
		bad := m.Copy()
		bad.Id++
		bad.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(6, 6, 6, 6)}}
		w.WriteMsg(bad)
		other := bad.Copy()
		other.Id = req.Id
		other.Question[0].Name = "other.example."
		w.WriteMsg(other)
	}
	exists := false
	for hop := 0; hop < 8; hop++ {
		var cname string
		found := false
		for _, rr := range z.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			exists = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
				found = true
			} else if c, ok := rr.(*dns.CNAME); ok {
				m.Answer = append(m.Answer, rr)
				cname = c.Target
			}
		}
		if found || cname == "" || name == "partial.example." {
			break
		}
		name = cname
	}
	switch {
	case !exists:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
	case len(m.Answer) == 0:
		m.Ns = []dns.RR{z.soa}
	}
	w.WriteMsg(m)
}

// fakeClock is a settable clock for the cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// setup is a lab with the zone served on serverAddr:53 and a resolver on
// the client using it with a short timeout.
func setup(t *testing.T) (*Resolver, *zone, *stackhost.Host) {
	client, server := newLab(t)
	z := newZone(t)
	serve(t, server, netip.AddrPortFrom(serverAddr, 53), z)
	r := New(client, &Config{
		Servers:  []netip.AddrPort{netip.AddrPortFrom(serverAddr, 53)},
		Ndots:    1,
		Timeout:  500 * time.Millisecond,
		Attempts: 2,
	})
	return r, z, server
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
