package resolver

import (
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// authority is an authoritative server for one zone: answers from its
// records (AA set, CNAMEs not followed), referrals at its NS cuts with
// glue only for nameservers under the cut (as BIND gives it), NXDOMAIN
// and no data with the SOA.
type authority struct {
	apex    string
	rrs     []dns.RR
	queries atomic.Int32
}

func newAuthority(t *testing.T, apex, text string) *authority {
	a := &authority{apex: apex}
	zp := dns.NewZoneParser(strings.NewReader(text), apex, "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		a.rrs = append(a.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *authority) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	a.queries.Add(1)
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	if req.RecursionDesired {
		m.Rcode = dns.RcodeRefused // an authority: no recursion
		w.WriteMsg(m)
		return
	}
	var soa dns.RR
	for _, rr := range a.rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeSOA {
			soa = rr
		}
		// A cut below the apex at or above the name: refer.
		if h.Rrtype == dns.TypeNS && !strings.EqualFold(h.Name, a.apex) && dns.IsSubDomain(h.Name, q.Name) {
			m.Ns = append(m.Ns, rr)
			for _, g := range a.rrs {
				if g.Header().Rrtype == dns.TypeA && strings.EqualFold(g.Header().Name, rr.(*dns.NS).Ns) && dns.IsSubDomain(h.Name, g.Header().Name) {
					m.Extra = append(m.Extra, g)
				}
			}
		}
	}
	if len(m.Ns) > 0 {
		w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	exists := false
	for _, rr := range a.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, q.Name) {
			continue
		}
		exists = true
		if h.Rrtype == q.Qtype || h.Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, rr)
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa}
	}
	w.WriteMsg(m)
}

// Iterative resolution over a three-level tree on the emulated link:
// the root on .2, example. on .3 and deleg.example. on .4, reached by a
// glueless delegation whose nameserver example.'s servers must resolve.
func TestRecursive(t *testing.T) {
	client, server := newLab(t)
	ctx := testContext(t)
	for _, p := range []string{"10.53.0.3/24", "10.53.0.4/24"} {
		if err := server.AddAddress(ctx, "eth0", netip.MustParsePrefix(p), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	root := newAuthority(t, ".", `
.            86400 IN SOA a.root. nstld. 1 1800 900 604800 86400
.            86400 IN NS  a.root.
a.root.      86400 IN A   10.53.0.2
example.     3600  IN NS  ns.example.
ns.example.  3600  IN A   10.53.0.3
`)
	example := newAuthority(t, "example.", `
example.           300 IN SOA ns.example. host.example. 1 3600 600 86400 60
example.           300 IN NS  ns.example.
ns.example.        300 IN A   10.53.0.3
www.example.       300 IN A   10.1.0.1
mx.example.        300 IN MX  10 www.example.
alias.example.     300 IN CNAME host.deleg.example.
deleg.example.     300 IN NS  ns.elsewhere.example.
ns.elsewhere.example. 300 IN A 10.53.0.4
lame.example.      300 IN NS  ns.example.
`)
	deleg := newAuthority(t, "deleg.example.", `
deleg.example.      300 IN SOA ns.elsewhere.example. host.example. 1 3600 600 86400 30
deleg.example.      300 IN NS  ns.elsewhere.example.
host.deleg.example. 300 IN A   10.2.0.1
`)
	serve(t, server, netip.MustParseAddrPort("10.53.0.2:53"), root)
	serve(t, server, netip.MustParseAddrPort("10.53.0.3:53"), example)
	serve(t, server, netip.MustParseAddrPort("10.53.0.4:53"), deleg)
	r := New(client, &Config{Ndots: 1, Timeout: 500e6, Attempts: 1})
	r.Recursive = true
	r.RootHints = []netip.AddrPort{netip.MustParseAddrPort("10.53.0.2:53")}

	if ips, err := r.LookupIP(ctx, "ip4", "www.example"); err != nil || len(ips) != 1 || ips[0].String() != "10.1.0.1" {
		t.Errorf("www.example: %v, %v", ips, err)
	}
	if root.queries.Load() != 1 || example.queries.Load() != 1 {
		t.Errorf("root asked %d times, example. %d; want 1 and 1", root.queries.Load(), example.queries.Load())
	}
	// Through a CNAME into the glueless delegation.
	if ips, err := r.LookupIP(ctx, "ip4", "alias.example"); err != nil || len(ips) != 1 || ips[0].String() != "10.2.0.1" {
		t.Errorf("alias.example: %v, %v", ips, err)
	}
	if c, err := r.LookupCNAME(ctx, "alias.example"); err != nil || c != "host.deleg.example." {
		t.Errorf("LookupCNAME(alias.example) = %q, %v", c, err)
	}
	if mx, err := r.LookupMX(ctx, "mx.example"); err != nil || len(mx) != 1 || mx[0].Host != "www.example." {
		t.Errorf("MX: %v, %v", mx, err)
	}
	if _, err := r.LookupIP(ctx, "ip4", "nope.deleg.example"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("nope.deleg.example: %v, want NXDOMAIN", err)
	}
	m, err := r.Query(ctx, "www.example.", dns.TypeAAAA)
	if !errors.Is(err, ErrNoData) || m == nil || !hasSOA(m) {
		t.Errorf("AAAA of www.example: %v, %v; want no data with the SOA", m, err)
	}
	// lame.example. is delegated back to example.'s own server, which
	// refers again: an error, within the budget.
	before := example.queries.Load()
	if _, err := r.LookupIP(ctx, "ip4", "x.lame.example"); !errors.Is(err, ErrServFail) {
		t.Errorf("lame delegation: %v, want ErrServFail", err)
	}
	if n := example.queries.Load() - before; n > maxIterQueries {
		t.Errorf("lame delegation cost %d queries", n)
	}
	// The cache serves recursive answers too.
	r.Cache = NewCache(10, nil)
	r.LookupIP(ctx, "ip4", "www.example")
	before = root.queries.Load()
	r.LookupIP(ctx, "ip4", "www.example")
	if root.queries.Load() != before {
		t.Error("a cached recursive answer was resolved again")
	}
}
