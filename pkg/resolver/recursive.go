package resolver

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Bounds of one iterative resolution: queries sent in all (the
// nameserver lookups of glueless delegations included), referrals
// followed per name, and nesting of those nameserver lookups.
const (
	maxIterQueries = 64
	maxReferrals   = 16
	maxIterDepth   = 4
)

// rootHints are the IANA root servers' IPv4 addresses (named.root).
var rootHints = []string{
	"198.41.0.4", "170.247.170.2", "192.33.4.12", "199.7.91.13",
	"192.203.230.10", "192.5.5.241", "192.112.36.4", "198.97.190.53",
	"192.36.148.17", "192.58.128.30", "193.0.14.129", "199.7.83.42",
	"202.12.27.33",
}

func (r *Resolver) roots() []netip.AddrPort {
	if len(r.RootHints) > 0 {
		return r.RootHints
	}
	out := make([]netip.AddrPort, len(rootHints))
	for i, a := range rootHints {
		out[i] = netip.AddrPortFrom(netip.MustParseAddr(a), 53)
	}
	// Spread the load over the roots, as resolvers do.
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// iteration is the state of one resolution: its query budget.
type iteration struct {
	queries int
}

// iterate resolves name's qtype records without a forwarder (RFC 1034
// §5.3.3): from the root servers, following referrals down the tree with
// their glue, resolving the nameservers of glueless delegations, and
// restarting at a CNAME's target. The result is the message a recursive
// server would give: the CNAME chain and answer, or the negative answer
// with its SOA.
func (r *Resolver) iterate(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return r.iter(ctx, &iteration{}, name, qtype, 0)
}

func (r *Resolver) iter(ctx context.Context, it *iteration, qname string, qtype uint16, depth int) (*dns.Msg, error) {
	out := new(dns.Msg)
	out.SetQuestion(dns.Fqdn(qname), qtype)
	out.Response, out.RecursionAvailable = true, true
	name := dns.Fqdn(qname)
	servers, zone := r.roots(), "."
	seen := map[string]bool{}
	for range maxReferrals + maxChain {
		resp, err := r.askAuthority(ctx, it, servers, name, qtype)
		if err != nil {
			return nil, err
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			out.Rcode = resp.Rcode
			return out, nil
		}
		// Only records within the zone the server was asked about are
		// believed (the bailiwick rule, RFC 5452 §6 and RFC 2181 §5.4.1).
		answer := inZone(resp.Answer, zone)
		if len(answer) > 0 || resp.Authoritative || resp.Rcode == dns.RcodeNameError {
			sub := &dns.Msg{Answer: answer}
			rrs, target, ok := chase(sub, name, qtype)
			if !ok {
				return nil, dnsError(qname, "", msgCNAMELoop, ErrBadResponse)
			}
			out.Answer = append(out.Answer, answer...)
			if len(rrs) > 0 {
				return out, nil
			}
			if target != strings.ToLower(name) && resp.Rcode == dns.RcodeSuccess {
				// A CNAME: start over at its target (RFC 1034 §5.3.3 step 3).
				if seen[target] || len(seen) >= maxChain {
					return nil, dnsError(qname, "", msgCNAMELoop, ErrBadResponse)
				}
				seen[target] = true
				name, servers, zone = target, r.roots(), "."
				continue
			}
			out.Rcode = resp.Rcode
			out.Ns = inZone(resp.Ns, zone)
			return out, nil
		}
		cut, ns := referral(resp, zone, name)
		if cut == "" {
			// Neither an answer nor a referral deeper down: a lame server.
			return nil, dnsError(qname, "", msgMisbehaving+" (lame delegation for "+zone+")", ErrServFail)
		}
		next := glue(resp, zone, ns)
		for _, n := range ns {
			if len(next) > 0 {
				break
			}
			if depth >= maxIterDepth {
				return nil, dnsError(qname, "", msgRecursionMax, ErrServFail)
			}
			m, err := r.iter(ctx, it, n, dns.TypeA, depth+1)
			if err != nil {
				if it.queries >= maxIterQueries {
					return nil, err
				}
				continue
			}
			rrs, _, _ := chase(m, n, dns.TypeA)
			for _, rr := range rrs {
				if a, ok := netip.AddrFromSlice(rr.(*dns.A).A.To4()); ok {
					next = append(next, netip.AddrPortFrom(a, 53))
				}
			}
		}
		if len(next) == 0 {
			return nil, dnsError(qname, "", msgMisbehaving+" (no address for the nameservers of "+cut+")", ErrServFail)
		}
		servers, zone = next, cut
	}
	return nil, dnsError(qname, "", msgRecursionMax, ErrServFail)
}

// askAuthority asks the servers of one zone in turn, without recursion,
// and returns the first answer that is not a server failure.
func (r *Resolver) askAuthority(ctx context.Context, it *iteration, servers []netip.AddrPort, name string, qtype uint16) (*dns.Msg, error) {
	var last *dns.Msg
	var lastErr error
	for _, s := range servers {
		if it.queries >= maxIterQueries {
			return nil, dnsError(name, s.String(), msgRecursionMax, ErrServFail)
		}
		it.queries++
		resp, err := r.exchangeOne(ctx, s, r.newQuery(name, qtype, false), r.config().Timeout)
		if ctx.Err() != nil {
			return nil, ctxError(ctx, name, s.String())
		}
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
			last = resp
			continue
		}
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	if lastErr == nil || isTimeout(lastErr) {
		return nil, dnsError(name, "", msgTimeout, ErrTimeout)
	}
	return nil, dnsError(name, "", msgUnreachable+": "+errText(lastErr), ErrBadResponse)
}

// inZone keeps the records owned by names at or below zone.
func inZone(rrs []dns.RR, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if dns.IsSubDomain(zone, rr.Header().Name) {
			out = append(out, rr)
		}
	}
	return out
}

// referral returns the delegation in resp: a zone cut strictly below
// zone and at or above name, and its nameservers' names; "" when resp
// is not such a referral (going sideways or up would loop).
func referral(resp *dns.Msg, zone, name string) (cut string, ns []string) {
	for _, rr := range resp.Ns {
		n, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := strings.ToLower(n.Hdr.Name)
		if !dns.IsSubDomain(zone, owner) || strings.EqualFold(owner, zone) || !dns.IsSubDomain(owner, name) {
			continue
		}
		if cut == "" {
			cut = owner
		}
		if owner == cut {
			ns = append(ns, strings.ToLower(n.Ns))
		}
	}
	return cut, ns
}

// glue returns the addresses resp's additional section gives for the
// nameservers ns, IPv4 first; glue outside zone is not believed.
func glue(resp *dns.Msg, zone string, ns []string) []netip.AddrPort {
	var v4, v6 []netip.AddrPort
	for _, rr := range resp.Extra {
		h := rr.Header()
		if !dns.IsSubDomain(zone, h.Name) || !containsFold(ns, h.Name) {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				v4 = append(v4, netip.AddrPortFrom(a, 53))
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
				v6 = append(v6, netip.AddrPortFrom(a, 53))
			}
		}
	}
	return append(v4, v6...)
}
