package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// Every lookup against a nameserver on the emulated link.
func TestLookupRecordTypes(t *testing.T) {
	r, _, _ := setup(t)
	ctx := testContext(t)
	addrs, err := r.LookupNetip(ctx, "www.example")
	want := []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !reflect.DeepEqual(addrs, want) {
		t.Errorf("LookupNetip = %v, %v; want %v", addrs, err, want)
	}
	if hs, err := r.LookupHost(ctx, "WWW.Example."); err != nil || !reflect.DeepEqual(hs, []string{"10.1.0.1", "2001:db8::1"}) {
		t.Errorf("LookupHost = %v, %v", hs, err)
	}
	if ips, err := r.LookupIP(ctx, "ip6", "www.example"); err != nil || len(ips) != 1 || ips[0].String() != "2001:db8::1" {
		t.Errorf("LookupIP ip6 = %v, %v", ips, err)
	}
	if ips, err := r.LookupIP(ctx, "ip4", "www.example"); err != nil || len(ips) != 1 || ips[0].String() != "10.1.0.1" {
		t.Errorf("LookupIP ip4 = %v, %v", ips, err)
	}
	if ips, err := r.LookupIP(ctx, "ip4", "192.0.2.7"); err != nil || ips[0].String() != "192.0.2.7" {
		t.Errorf("literal: %v, %v", ips, err)
	}
	mx, err := r.LookupMX(ctx, "mx.example")
	if err != nil || len(mx) != 2 || mx[0].Host != "mail1.example." || mx[0].Pref != 10 || mx[1].Host != "mail2.example." {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	ns, err := r.LookupNS(ctx, "example")
	if err != nil || len(ns) != 2 || ns[0].Host != "ns1.example." || ns[1].Host != "ns2.example." {
		t.Errorf("LookupNS = %v, %v", ns, err)
	}
	if txt, err := r.LookupTXT(ctx, "txt.example"); err != nil || !reflect.DeepEqual(txt, []string{"v=spf1 -all"}) {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
	cname, srv, err := r.LookupSRV(ctx, "sip", "udp", "example")
	if err != nil || cname != "_sip._udp.example." || len(srv) != 2 || srv[0].Target != "sip1.example." || srv[0].Port != 5060 || srv[1].Priority != 20 {
		t.Errorf("LookupSRV = %q %v, %v", cname, srv, err)
	}
	soa, err := r.LookupSOA(ctx, "example")
	if err != nil || soa.Ns != "ns1.example." || soa.Minttl != 60 {
		t.Errorf("LookupSOA = %v, %v", soa, err)
	}
	if names, err := r.LookupAddr(ctx, "10.1.0.1"); err != nil || !reflect.DeepEqual(names, []string{"www.example."}) {
		t.Errorf("LookupAddr v4 = %v, %v", names, err)
	}
	if names, err := r.LookupAddr(ctx, "2001:db8::1"); err != nil || !reflect.DeepEqual(names, []string{"www.example."}) {
		t.Errorf("LookupAddr v6 = %v, %v", names, err)
	}
	m, err := r.Query(ctx, "mx.example", dns.TypeMX)
	if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 || !m.RecursionAvailable {
		t.Errorf("Query = %v, %v", m, err)
	}
}

func TestReverseName(t *testing.T) {
	for a, want := range map[string]string{
		"10.1.0.1":         "1.0.1.10.in-addr.arpa.",
		"::ffff:192.0.2.1": "1.2.0.192.in-addr.arpa.",
		"2001:db8::1":      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
		"fe80::1%eth0":     "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.",
	} {
		if got := ReverseName(netip.MustParseAddr(a)); got != want {
			t.Errorf("ReverseName(%s) = %s, want %s", a, got, want)
		}
	}
}

// The canonical name is the chain's end; a loop is an error, not a hang;
// a CNAME the server did not follow is followed by the resolver.
func TestCNAMEChains(t *testing.T) {
	r, z, _ := setup(t)
	ctx := testContext(t)
	if c, err := r.LookupCNAME(ctx, "alias.example"); err != nil || c != "www.example." {
		t.Errorf("LookupCNAME(alias) = %q, %v", c, err)
	}
	if c, err := r.LookupCNAME(ctx, "www.example"); err != nil || c != "www.example." {
		t.Errorf("LookupCNAME(www) = %q, %v", c, err)
	}
	if hs, err := r.LookupHost(ctx, "alias.example"); err != nil || len(hs) != 2 {
		t.Errorf("LookupHost(alias) = %v, %v", hs, err)
	}
	if _, err := r.LookupHost(ctx, "loop1.example"); !errors.Is(err, ErrBadResponse) {
		t.Errorf("CNAME loop: %v, want ErrBadResponse", err)
	}
	before := z.count("www.example.")
	if hs, err := r.LookupIP(ctx, "ip4", "partial.example"); err != nil || len(hs) != 1 || hs[0].String() != "10.1.0.1" {
		t.Errorf("unfollowed CNAME: %v, %v", hs, err)
	}
	if z.count("www.example.") != before+1 {
		t.Errorf("the resolver did not ask for the CNAME's target itself: %v", z.queries())
	}
	// Query gives the whole chain as one answer to the question asked.
	m, err := r.Query(ctx, "partial.example", dns.TypeA)
	if err != nil || m.Question[0].Name != "partial.example." || len(m.Answer) != 2 ||
		m.Answer[0].Header().Rrtype != dns.TypeCNAME || m.Answer[1].Header().Rrtype != dns.TypeA {
		t.Errorf("Query(partial.example) = %v, %v", m, err)
	}
}

// Each failure has its own error, as host and nslookup need.
func TestErrors(t *testing.T) {
	r, z, _ := setup(t)
	r.Config.Attempts = 1
	r.Config.Timeout = 300 * time.Millisecond
	ctx := testContext(t)
	check := func(name string, err error, kind error, notFound, timeout bool, rcode int) {
		t.Helper()
		var de *net.DNSError
		if !errors.As(err, &de) {
			t.Fatalf("%s: %v (%T), want a *net.DNSError", name, err, err)
		}
		if !errors.Is(err, kind) || de.IsNotFound != notFound || de.IsTimeout != timeout || Rcode(err) != rcode {
			t.Errorf("%s: %v (%+v), want %v, IsNotFound %v, IsTimeout %v, rcode %d", name, err, de, kind, notFound, timeout, rcode)
		}
		if de.Name != name {
			t.Errorf("%s: error names %q", name, de.Name)
		}
	}
	_, err := r.LookupHost(ctx, "nonexistent.example")
	check("nonexistent.example", err, ErrNXDomain, true, false, dns.RcodeNameError)
	if !strings.Contains(err.Error(), "no such host") {
		t.Errorf("NXDOMAIN message %q", err)
	}
	_, err = r.LookupMX(ctx, "www.example")
	check("www.example", err, ErrNoData, true, false, dns.RcodeSuccess)
	_, err = r.LookupHost(ctx, "servfail.example")
	check("servfail.example", err, ErrServFail, false, false, dns.RcodeServerFailure)
	_, err = r.LookupHost(ctx, "refused.example")
	check("refused.example", err, ErrRefused, false, false, dns.RcodeRefused)
	start := time.Now()
	_, err = r.LookupTXT(ctx, "silent.example")
	check("silent.example", err, ErrTimeout, false, true, -1)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v with a 300ms timeout and 1 attempt", d)
	}
	// Two attempts: the silent server is asked twice, the second time
	// for glibc's doubled timeout (300ms << 1 / 1 server).
	r.Config.Attempts = 2
	before := z.count("silent.example.")
	start = time.Now()
	_, err = r.LookupTXT(ctx, "silent.example")
	check("silent.example", err, ErrTimeout, false, true, -1)
	if n := z.count("silent.example.") - before; n != 2 {
		t.Errorf("silent server asked %d times with 2 attempts", n)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("2 attempts took %v, want 300ms + 600ms", d)
	}
	r.Config.Attempts = 1
	// The caller's deadline bounds the lookup whatever the timeouts.
	r.Config.Timeout = 5 * time.Second
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start = time.Now()
	_, err = r.LookupTXT(short, "silent.example")
	cancel()
	check("silent.example", err, ErrTimeout, false, true, -1)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 200ms context took %v", d)
	}
	// Query hands back the NXDOMAIN answer for nslookup to print.
	m, err := r.Query(ctx, "nonexistent.example", dns.TypeA)
	if !errors.Is(err, ErrNXDomain) || m == nil || m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Errorf("Query NXDOMAIN: %v, %v", m, err)
	}
	if _, err := r.LookupHost(ctx, "bad..name"); err == nil {
		t.Error("an empty label was looked up")
	}
}

// A truncated UDP answer is asked again over TCP.
func TestTruncationFallsBackToTCP(t *testing.T) {
	r, z, _ := setup(t)
	txt, err := r.LookupTXT(testContext(t), "big.example")
	if err != nil || len(txt) != 40 {
		t.Fatalf("LookupTXT(big) = %d records, %v", len(txt), err)
	}
	var udp, tcp int
	for _, q := range z.queries() {
		if q.name == "big.example." {
			if q.tcp {
				tcp++
			} else {
				udp++
			}
		}
	}
	if udp != 1 || tcp != 1 {
		t.Errorf("%d UDP and %d TCP queries, want 1 and 1", udp, tcp)
	}
	// options use-vc: TCP from the start; options edns0: an OPT record
	// advertising 1232 bytes.
	r.Config.UseTCP, r.Config.EDNS0 = true, true
	if _, err := r.LookupIP(testContext(t), "ip4", "www.example"); err != nil {
		t.Fatal(err)
	}
	qs := z.queries()
	if last := qs[len(qs)-1]; !last.tcp || last.edns != 1232 {
		t.Errorf("with use-vc and edns0 the query was %+v", last)
	}
	if qs[0].edns != 0 {
		t.Errorf("EDNS0 sent without options edns0: %+v", qs[0])
	}
}

// A dead first nameserver costs one timeout; a closed port (ICMP port
// unreachable) and a SERVFAIL move on at once.
func TestFailover(t *testing.T) {
	r, _, server := setup(t)
	ctx := testContext(t)
	good := netip.AddrPortFrom(serverAddr, 53)
	serve(t, server, netip.AddrPortFrom(serverAddr, 5300), dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m)
	}))
	for _, c := range []struct {
		name  string
		first netip.AddrPort
		max   time.Duration
	}{
		{"dead", netip.AddrPortFrom(deadAddr, 53), 300*time.Millisecond + 2*time.Second},
		{"closed port", netip.AddrPortFrom(serverAddr, 5999), 250 * time.Millisecond},
		{"servfail", netip.AddrPortFrom(serverAddr, 5300), 250 * time.Millisecond},
	} {
		r.Config.Servers = []netip.AddrPort{c.first, good}
		r.Config.Timeout = 300 * time.Millisecond
		start := time.Now()
		hs, err := r.LookupHost(ctx, "www.example")
		d := time.Since(start)
		if err != nil || len(hs) != 2 {
			t.Errorf("%s first: %v, %v", c.name, hs, err)
		}
		if c.name == "dead" && d < 300*time.Millisecond {
			t.Errorf("dead first server: answered in %v, before its timeout", d)
		}
		if d > c.max {
			t.Errorf("%s first: took %v, want under %v", c.name, d, c.max)
		}
	}
	// Only failing servers: the SERVFAIL is the answer.
	r.Config.Servers = []netip.AddrPort{netip.AddrPortFrom(serverAddr, 5999), netip.AddrPortFrom(serverAddr, 5300)}
	if _, err := r.LookupHost(ctx, "www.example"); !errors.Is(err, ErrServFail) {
		t.Errorf("closed port and SERVFAIL: %v, want ErrServFail", err)
	}
	r.Config.Servers = []netip.AddrPort{netip.AddrPortFrom(serverAddr, 5999)}
	if _, err := r.LookupHost(ctx, "www.example"); err == nil || errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("only a closed port: %v, want connection refused", err)
	}
}

// options rotate spreads queries over the servers; without it the first
// server takes them all.
func TestRotate(t *testing.T) {
	r, z, server := setup(t)
	z2 := newZone(t)
	serve(t, server, netip.AddrPortFrom(serverAddr, 5353), z2)
	r.Config.Servers = append(r.Config.Servers, netip.AddrPortFrom(serverAddr, 5353))
	ctx := testContext(t)
	for range 4 {
		if _, err := r.LookupIP(ctx, "ip4", "www.example"); err != nil {
			t.Fatal(err)
		}
	}
	if len(z.queries()) != 4 || len(z2.queries()) != 0 {
		t.Errorf("without rotate: %d and %d queries, want 4 and 0", len(z.queries()), len(z2.queries()))
	}
	r.Config.Rotate = true
	for range 4 {
		if _, err := r.LookupIP(ctx, "ip4", "www.example"); err != nil {
			t.Fatal(err)
		}
	}
	if len(z.queries()) != 6 || len(z2.queries()) != 2 {
		t.Errorf("with rotate: %d and %d queries, want 6 and 2", len(z.queries()), len(z2.queries()))
	}
}

// The search list and ndots as glibc applies them.
func TestSearchNdots(t *testing.T) {
	r, z, _ := setup(t)
	r.Config.Search = []string{"corp.example", "lab.example"}
	ctx := testContext(t)
	names := func() []string {
		var out []string
		for _, q := range z.queries() {
			if q.qtype == dns.TypeA {
				out = append(out, q.name)
			}
		}
		z.mu.Lock()
		z.log = nil
		z.mu.Unlock()
		return out
	}
	for _, c := range []struct {
		ndots int
		name  string
		want  []string // A queries in order
		found bool
	}{
		{1, "host", []string{"host.corp.example."}, true},
		{1, "www.example", []string{"www.example."}, true},
		{2, "www.example", []string{"www.example.corp.example.", "www.example.lab.example.", "www.example."}, true},
		{1, "www.example.", []string{"www.example."}, true},
		{1, "nothing", []string{"nothing.corp.example.", "nothing.lab.example.", "nothing."}, false},
		{1, "no.where", []string{"no.where.", "no.where.corp.example.", "no.where.lab.example."}, false},
	} {
		r.Config.Ndots = c.ndots
		_, err := r.LookupIP(ctx, "ip", c.name)
		if (err == nil) != c.found {
			t.Errorf("ndots %d %q: %v", c.ndots, c.name, err)
		}
		if got := names(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ndots %d %q: asked %v, want %v", c.ndots, c.name, got, c.want)
		}
	}
	// A SERVFAIL under one search domain does not hide a later answer.
	r.Config.Search = []string{"example"}
	r.Config.Ndots = 1
	if _, err := r.LookupIP(ctx, "ip4", "servfail"); !errors.Is(err, ErrServFail) {
		t.Errorf("servfail.example then servfail.: %v, want ErrServFail", err)
	}
}

// Hosts files answer before DNS, both ways.
func TestHostsPrecedence(t *testing.T) {
	r, z, _ := setup(t)
	var err error
	r.Hosts, err = ParseHosts(strings.NewReader("192.0.2.9 www.example web\n2001:db8::9 www.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	addrs, err := r.LookupNetip(ctx, "WWW.example")
	if err != nil || !reflect.DeepEqual(addrs, []netip.Addr{netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::9")}) {
		t.Errorf("LookupNetip = %v, %v; want the hosts file's", addrs, err)
	}
	if ips, err := r.LookupIP(ctx, "ip6", "web"); err == nil {
		t.Errorf("ip6 web: %v from DNS; hosts has only IPv4 and DNS has no web", ips)
	}
	if names, err := r.LookupAddr(ctx, "192.0.2.9"); err != nil || !reflect.DeepEqual(names, []string{"www.example.", "web."}) {
		t.Errorf("LookupAddr = %v, %v", names, err)
	}
	if n := z.count("www.example."); n != 0 {
		t.Errorf("%d DNS queries for a name in the hosts file", n)
	}
	// Names the file lacks still go to DNS.
	if hs, err := r.LookupHost(ctx, "alias.example"); err != nil || len(hs) != 2 {
		t.Errorf("alias.example: %v, %v", hs, err)
	}
}

// The cache answers within the TTL (TTLs counting down), asks again
// after it, and keeps NXDOMAIN for the SOA minimum.
func TestCacheOnTheWire(t *testing.T) {
	r, z, _ := setup(t)
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	r.Cache = NewCache(100, clock.Now)
	ctx := testContext(t)
	for range 3 {
		if _, err := r.LookupNetip(ctx, "short.example"); err != nil {
			t.Fatal(err)
		}
	}
	// A and AAAA (no data, cached by the SOA) asked once each.
	if n := z.count("short.example."); n != 2 {
		t.Errorf("%d queries within the TTL, want 2", n)
	}
	clock.Advance(3 * time.Second) // past the A's 2 s, within the SOA's 60 s
	if _, err := r.LookupNetip(ctx, "short.example"); err != nil {
		t.Fatal(err)
	}
	if n := z.count("short.example."); n != 3 {
		t.Errorf("%d queries after the A's TTL, want 3 (A again, AAAA from the cache)", n)
	}
	m, _ := r.Query(ctx, "www.example", dns.TypeA)
	clock.Advance(100 * time.Second)
	m2, _ := r.Query(ctx, "www.example", dns.TypeA)
	if m.Answer[0].Header().Ttl != 300 || m2.Answer[0].Header().Ttl != 200 {
		t.Errorf("TTLs %d then %d, want 300 then 200", m.Answer[0].Header().Ttl, m2.Answer[0].Header().Ttl)
	}
	// Negative caching (RFC 2308): min(SOA TTL 300, MINIMUM 60) = 60 s.
	for range 2 {
		if _, err := r.LookupIP(ctx, "ip4", "gone.example"); !errors.Is(err, ErrNXDomain) {
			t.Fatalf("gone.example: %v", err)
		}
	}
	if n := z.count("gone.example."); n != 1 {
		t.Errorf("%d queries for a cached NXDOMAIN, want 1", n)
	}
	clock.Advance(59 * time.Second)
	r.LookupIP(ctx, "ip4", "gone.example")
	if n := z.count("gone.example."); n != 1 {
		t.Errorf("%d queries at 59 s, want 1", n)
	}
	clock.Advance(2 * time.Second)
	r.LookupIP(ctx, "ip4", "gone.example")
	if n := z.count("gone.example."); n != 2 {
		t.Errorf("%d queries at 61 s, want 2", n)
	}
	// SERVFAIL is not cached.
	r.LookupIP(ctx, "ip4", "servfail.example")
	r.LookupIP(ctx, "ip4", "servfail.example")
	if n := z.count("servfail.example."); n != 2 {
		t.Errorf("%d queries for SERVFAIL twice, want 2", n)
	}
}

// Answers with the wrong ID or question are ignored (RFC 5452 §9.1):
// the real one that follows is taken.
func TestMismatchedAnswersIgnored(t *testing.T) {
	r, _, _ := setup(t)
	addrs, err := r.LookupNetip(testContext(t), "spoof.example")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "10.9.9.9" {
		t.Errorf("spoof.example = %v, %v; want 10.9.9.9 only", addrs, err)
	}
}

// A nameserver reached over IPv6.
func TestIPv6Nameserver(t *testing.T) {
	r, _, server := setup(t)
	waitUsable(t, r.Net.(*stackhost.Host), netip.MustParseAddr("2001:db8:53::1"))
	waitUsable(t, server, server6)
	z := newZone(t)
	serve(t, server, netip.AddrPortFrom(server6, 53), z)
	r.Config.Servers = []netip.AddrPort{netip.AddrPortFrom(server6, 53)}
	if hs, err := r.LookupHost(testContext(t), "www.example"); err != nil || len(hs) != 2 {
		t.Errorf("over IPv6: %v, %v", hs, err)
	}
	if len(z.queries()) != 2 {
		t.Errorf("the IPv6 server saw %d queries, want 2", len(z.queries()))
	}
}

// Queries come from varying random ports with varying IDs.
func TestRandomPortsAndIDs(t *testing.T) {
	r, _, server := setup(t)
	var mu sync.Mutex
	ports := map[string]bool{}
	ids := map[uint16]bool{}
	serve(t, server, netip.AddrPortFrom(serverAddr, 5400), dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		mu.Lock()
		ports[w.RemoteAddr().String()] = true
		ids[req.Id] = true
		mu.Unlock()
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNameError)
		w.WriteMsg(m)
	}))
	r.Config.Servers = []netip.AddrPort{netip.AddrPortFrom(serverAddr, 5400)}
	ctx := testContext(t)
	for range 10 {
		r.LookupIP(ctx, "ip4", "x.example.")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ports) < 8 || len(ids) < 8 {
		t.Errorf("10 queries from %d source ports with %d IDs", len(ports), len(ids))
	}
}

// LookupNetip as gonet.Dialer.Resolver: a connection by name.
func TestDialerResolver(t *testing.T) {
	r, _, server := setup(t)
	ctx := testContext(t)
	ln, err := server.Listen(ctx, "tcp", "10.53.0.2:7000", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	d := &gonet.Dialer{Layer: r.Net.(*stackhost.Host).Inet().Layer, Resolver: r.LookupNetip}
	c, err := d.DialContext(ctx, "tcp", "svc.example:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := io.ReadAll(c); err != nil || string(got) != "hi" {
		t.Errorf("read %q, %v", got, err)
	}
	if _, err := d.DialContext(ctx, "tcp", "nonexistent.example:7000"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("dial to a missing name: %v, want NXDOMAIN", err)
	}
}

// Lookups in parallel through one resolver and cache (run with -race).
func TestConcurrentLookups(t *testing.T) {
	r, _, _ := setup(t)
	r.Cache = NewCache(16, nil)
	ctx := testContext(t)
	names := []string{"www.example", "alias.example", "mx.example", "gone.example", "host.corp.example"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				name := names[(g+i)%len(names)]
				_, err := r.LookupNetip(ctx, name)
				if (err != nil) != (name == "gone.example" || name == "mx.example") {
					errs <- fmt.Errorf("%s: %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
