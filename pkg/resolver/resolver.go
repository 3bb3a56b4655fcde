package resolver

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/stackbox/stackbox/pkg/host"
)

// maxChain bounds the CNAMEs followed for one name (answers within one
// message and re-queries for a target the server did not follow).
const maxChain = 8

// Resolver looks names up through a host.Net. Its fields are set before
// the first lookup and not changed after; a Resolver is then safe for
// concurrent use.
type Resolver struct {
	// Net carries the queries (netd's client or a private stack).
	Net host.Net
	// Config is the resolv.conf configuration (nil: DefaultConfig).
	Config *Config
	// Hosts is consulted first by host and address lookups (nil: none).
	Hosts *Hosts
	// Cache, if set, answers repeated questions within their TTL.
	Cache *Cache
	// Options apply to every socket the resolver opens (Device to send
	// through one interface); Local is the resolver's.
	Options *host.SocketOptions
	// Recursive resolves iteratively from RootHints instead of asking
	// Config's servers (recursive.go).
	Recursive bool
	// RootHints are the root servers for Recursive (nil: IANA's).
	RootHints []netip.AddrPort
	next      atomic.Uint32 // rotate's next first server
}

// New returns a Resolver over n configured by c.
func New(n host.Net, c *Config) *Resolver {
	return &Resolver{Net: n, Config: c}
}

var defaultConfig = DefaultConfig()

func (r *Resolver) config() *Config {
	if r.Config == nil {
		return defaultConfig
	}
	return r.Config
}

// names are the fully qualified names to try for name, in glibc's
// res_search order: an absolute name only as is; a name with at least
// ndots dots as is and then with each search domain; a name with fewer
// with the search domains first and as is last.
func (r *Resolver) names(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	c := r.config()
	var out []string
	asIs := strings.Count(name, ".") >= c.Ndots
	if asIs {
		out = append(out, name+".")
	}
	for _, d := range c.Search {
		fq := name + "." + dns.Fqdn(d)
		if len(fq) <= 254 {
			out = append(out, fq)
		}
	}
	if !asIs {
		out = append(out, name+".")
	}
	return out
}

// search runs try on each of name's candidates until one succeeds. As
// in glibc, NXDOMAIN and no data move on; SERVFAIL and REFUSED move on
// too but are remembered; a timeout or any other failure ends the
// search. When all fail the error is no data if any candidate had the
// name, else the server failure if any, else the last error; it names
// name as the caller gave it.
func (r *Resolver) search(ctx context.Context, name string, try func(fqdn string) error) error {
	if name == "" || !validName(name) {
		return dnsError(name, "", msgInvalidName, ErrNXDomain)
	}
	var noData, failed, last error
	for _, fq := range r.names(name) {
		err := try(fq)
		if err == nil {
			return nil
		}
		last = err
		switch {
		case errors.Is(err, ErrNoData):
			noData = err
		case errors.Is(err, ErrNXDomain):
		case errors.Is(err, ErrServFail), errors.Is(err, ErrRefused):
			failed = err
		default:
			return rename(err, name)
		}
	}
	return rename(cmp.Or(noData, failed, last), name)
}

// validName accepts a name made of labels of 1 to 63 octets within 253
// (RFC 1035 §2.3.4) that miekg/dns can pack.
func validName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok && len(strings.TrimSuffix(name, ".")) <= 253 && !strings.HasPrefix(name, ".")
}

func rename(err error, name string) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		e := *de
		e.Name = name
		return &e
	}
	return err
}

// resolve answers one fully qualified question: from the cache, else
// from the servers (or by iteration). It returns the message, the
// records of qtype at the end of the CNAME chain, and the canonical
// name; the error is the RCODE's, or ErrNoData for an empty answer.
func (r *Resolver) resolve(ctx context.Context, fqdn string, qtype uint16) (*dns.Msg, []dns.RR, string, error) {
	name := fqdn
	seen := map[string]bool{}
	var chain []dns.RR // answers of the queries for earlier links
	for range maxChain {
		seen[strings.ToLower(name)] = true
		m, server, err := r.ask(ctx, name, qtype)
		if err != nil {
			return nil, nil, "", err
		}
		if len(chain) > 0 {
			// One message for the whole chain, asked as the caller asked.
			m = m.Copy()
			m.Question = []dns.Question{{Name: fqdn, Qtype: qtype, Qclass: dns.ClassINET}}
			m.Answer = append(chain, m.Answer...)
		}
		if err := rcodeError(fqdn, server, m.Rcode); err != nil {
			return m, nil, "", err
		}
		rrs, target, ok := chase(m, fqdn, qtype)
		if !ok {
			return m, nil, "", dnsError(fqdn, server, msgCNAMELoop, ErrBadResponse)
		}
		if len(rrs) > 0 {
			return m, rrs, target, nil
		}
		// The chain ends at target without data. An SOA says the server
		// looked (no data, RFC 2308 §2.2); a bare CNAME means it did not
		// follow it, so ask for the target ourselves.
		if target == strings.ToLower(name) || hasSOA(m) {
			return m, nil, target, dnsError(fqdn, server, msgNoData, ErrNoData)
		}
		if seen[target] {
			return m, nil, "", dnsError(fqdn, server, msgCNAMELoop, ErrBadResponse)
		}
		chain, name = m.Answer, target
	}
	return nil, nil, "", dnsError(fqdn, "", msgCNAMELoop, ErrBadResponse)
}

func hasSOA(m *dns.Msg) bool {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// ask gets the answer to one question, with the server's name for
// errors: from the cache, by iteration, or from the nameservers.
func (r *Resolver) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	q := dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
	if m := r.Cache.Get(q); m != nil {
		return m, "cache", nil
	}
	if r.Recursive {
		m, err := r.iterate(ctx, name, qtype)
		if err != nil {
			return nil, "", err
		}
		r.Cache.Put(m)
		return m, "recursion", nil
	}
	m, s, err := r.Exchange(ctx, r.newQuery(name, qtype, true))
	if err != nil {
		return nil, "", err
	}
	r.Cache.Put(m)
	return m, s.String(), nil
}

// chase follows the CNAME chain from name through m's answer section
// and returns the records of qtype owned by its end, and the end's name
// (lower case). With qtype CNAME it stops at name's own CNAME. ok is
// false for a loop or an overlong chain.
func chase(m *dns.Msg, name string, qtype uint16) (rrs []dns.RR, target string, ok bool) {
	target = strings.ToLower(dns.Fqdn(name))
	for hop := 0; ; hop++ {
		var cname string
		for _, rr := range m.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, target) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if c, isC := rr.(*dns.CNAME); isC && cname == "" {
				cname = strings.ToLower(c.Target)
			}
		}
		if len(rrs) > 0 || cname == "" {
			return rrs, target, true
		}
		if hop >= maxChain {
			return nil, "", false
		}
		target = cname
	}
}

// Query looks up name's qtype records through the search list and
// returns the answer message (for nslookup and host to print) and an
// error as for the Lookup functions; the message is the last one
// received, also on NXDOMAIN or no data.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var msg *dns.Msg
	err := r.search(ctx, name, func(fq string) error {
		m, _, _, err := r.resolve(ctx, fq, qtype)
		if m != nil {
			msg = m
		}
		return err
	})
	return msg, err
}

// lookup is Query giving the records of qtype and the canonical name.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, string, error) {
	var rrs []dns.RR
	var canon string
	err := r.search(ctx, name, func(fq string) error {
		var err error
		_, rrs, canon, err = r.resolve(ctx, fq, qtype)
		return err
	})
	return rrs, canon, err
}

// LookupNetip returns name's addresses: an IP literal itself, else the
// hosts files', else the A and then the AAAA records. It fits
// gonet.Dialer.Resolver.
func (r *Resolver) LookupNetip(ctx context.Context, name string) ([]netip.Addr, error) {
	return r.lookupIP(ctx, "ip", name)
}

// LookupIP is LookupNetip for network "ip", "ip4" (A only) or "ip6"
// (AAAA only), as net.Resolver.LookupIP.
func (r *Resolver) LookupIP(ctx context.Context, network, name string) ([]net.IP, error) {
	addrs, err := r.lookupIP(ctx, network, name)
	if err != nil {
		return nil, err
	}
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = net.IP(a.AsSlice())
	}
	return out, nil
}

// LookupHost returns name's addresses as strings, as net.LookupHost.
func (r *Resolver) LookupHost(ctx context.Context, name string) ([]string, error) {
	addrs, err := r.lookupIP(ctx, "ip", name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

func (r *Resolver) lookupIP(ctx context.Context, network, name string) ([]netip.Addr, error) {
	var types []uint16
	switch network {
	case "ip":
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	case "ip4":
		types = []uint16{dns.TypeA}
	case "ip6":
		types = []uint16{dns.TypeAAAA}
	default:
		return nil, net.UnknownNetworkError(network)
	}
	want := func(a netip.Addr) bool {
		return network == "ip" || a.Is4() == (network == "ip4")
	}
	if a, err := netip.ParseAddr(name); err == nil {
		if !want(a.Unmap()) {
			return nil, &net.AddrError{Err: "no suitable address", Addr: name}
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	var fromHosts []netip.Addr
	for _, a := range r.Hosts.Lookup(name) {
		if want(a) {
			fromHosts = append(fromHosts, a)
		}
	}
	if len(fromHosts) > 0 {
		return fromHosts, nil
	}
	var addrs []netip.Addr
	err := r.search(ctx, name, func(fq string) error {
		// Both families per candidate, as getaddrinfo asks: the name is
		// found when either has addresses.
		var errs []error
		for _, t := range types {
			_, rrs, _, err := r.resolve(ctx, fq, t)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, rr := range rrs {
				switch v := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
						addrs = append(addrs, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
						addrs = append(addrs, a)
					}
				}
			}
		}
		if len(addrs) > 0 {
			return nil
		}
		return worst(errs)
	})
	return addrs, err
}

// worst is the error of a candidate from its per-type errors: a timeout
// or failure beats no data, no data beats NXDOMAIN (the name exists).
func worst(errs []error) error {
	rank := func(err error) int {
		switch {
		case errors.Is(err, ErrNXDomain):
			return 0
		case errors.Is(err, ErrNoData):
			return 1
		case errors.Is(err, ErrServFail), errors.Is(err, ErrRefused):
			return 2
		}
		return 3
	}
	var w error
	for _, e := range errs {
		if w == nil || rank(e) > rank(w) {
			w = e
		}
	}
	if w == nil {
		w = dnsError("", "", msgNoData, ErrNoData)
	}
	return w
}

// LookupCNAME returns name's canonical name, following the CNAME chain
// (at most maxChain links), as net.Resolver.LookupCNAME: the name itself
// when it has no CNAME but exists.
func (r *Resolver) LookupCNAME(ctx context.Context, name string) (string, error) {
	var canon string
	err := r.search(ctx, name, func(fq string) error {
		_, _, c, err := r.resolve(ctx, fq, dns.TypeA)
		if err != nil && !errors.Is(err, ErrNoData) {
			return err
		}
		canon = c
		return nil
	})
	return canon, err
}

// LookupMX returns name's mail exchangers by preference.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out, nil
}

// LookupNS returns name's nameservers.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	var out []*net.NS
	for _, rr := range rrs {
		out = append(out, &net.NS{Host: rr.(*dns.NS).Ns})
	}
	return out, nil
}

// LookupTXT returns name's TXT records, each one's strings joined as
// net.LookupTXT does.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupSRV returns the canonical name and SRV records of
// _service._proto.name (just name when service and proto are empty),
// ordered by priority and, within one, by RFC 2782's weighted random
// choice.
func (r *Resolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := name
	if service != "" || proto != "" {
		target = "_" + service + "._" + proto + "." + name
	}
	rrs, canon, err := r.lookup(ctx, target, dns.TypeSRV)
	if err != nil {
		return "", nil, err
	}
	var out []*net.SRV
	for _, rr := range rrs {
		s := rr.(*dns.SRV)
		out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
	}
	slices.SortStableFunc(out, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j].Priority == out[i].Priority {
			j++
		}
		weighted(out[i:j])
		i = j
	}
	return canon, out, nil
}

// weighted orders one priority's records as RFC 2782 describes: pick
// each next record with probability proportional to its weight (weight-0
// records still get a small chance).
func weighted(s []*net.SRV) {
	for i := range s {
		total := 0
		for _, x := range s[i:] {
			total += int(x.Weight) + 1
		}
		n := rand.N(total)
		for j := i; j < len(s); j++ {
			n -= int(s[j].Weight) + 1
			if n < 0 {
				s[i], s[j] = s[j], s[i]
				break
			}
		}
	}
}

// LookupSOA returns the SOA record of name (a zone apex).
func (r *Resolver) LookupSOA(ctx context.Context, name string) (*dns.SOA, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeSOA)
	if err != nil {
		return nil, err
	}
	return rrs[0].(*dns.SOA), nil
}

// LookupAddr returns the names of addr: the hosts files' if they have
// it, else the PTR records of its reverse name (in-addr.arpa for IPv4,
// ip6.arpa for IPv6, RFC 1035 §3.5 and RFC 3596 §2.5).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	a = a.Unmap()
	if names := r.Hosts.Names(a); len(names) > 0 {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = dns.Fqdn(n)
		}
		return out, nil
	}
	rev := ReverseName(a)
	rrs, _, err := r.lookup(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, rename(err, addr)
	}
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, nil
}

// ReverseName is the PTR owner name of a: d.c.b.a.in-addr.arpa. for
// IPv4, the 32 nibbles reversed under ip6.arpa. for IPv6.
func ReverseName(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	var b strings.Builder
	if a.Is4() {
		v := a.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(v[i])) + ".")
		}
		b.WriteString("in-addr.arpa.")
		return b.String()
	}
	const hex = "0123456789abcdef"
	v := a.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[v[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[v[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}
