// Package dighost is the lookup engine that host and nslookup share, as
// bind9's lib/dighost.c is for host, nslookup and dig: the search list as
// dighost applies it, the tries and servers schedule with its
// ";; communications error to S#53: …" lines, and bind's presentation of
// records (names, tab stops and message headers).
//
// It sends through pkg/resolver's Exchange, one try at a time, so each
// failed try can be reported as bind reports it. It holds no locks.
package dighost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
)

// ErrNoServers is a lookup no server answered; the
// ";; communications error" lines were printed and
// ";; no servers could be reached" is the caller's to print.
var ErrNoServers = errors.New("no servers could be reached")

// Server is one nameserver to ask.
type Server struct {
	Name string // as the user gave it (bind's userarg): "ns.lab", "10.0.0.1"
	Addr netip.AddrPort
}

// String is the server as bind prints a socket address: "10.0.0.1#53".
func (s Server) String() string { return AddrString(s.Addr) }

// AddrString is a as isc_sockaddr_format writes it: ADDR#PORT.
func AddrString(a netip.AddrPort) string {
	return fmt.Sprintf("%s#%d", a.Addr(), a.Port())
}

// Settings are one run's lookup settings: bind's globals and
// dig_lookup_t fields that host and nslookup set.
type Settings struct {
	Net     host.Net
	Options *host.SocketOptions // socket options for every query (nil: none)
	Servers []Server

	Search    []string // the search list (resolv.conf's)
	Ndots     int
	UseSearch bool

	Timeout time.Duration // per try
	Tries   int           // tries per server (at least 1)
	TCP     bool
	Recurse bool // RD set in queries
	// ServfailStops makes a SERVFAIL answer final; otherwise the next
	// server is asked and the SERVFAIL kept only if none does better.
	ServfailStops bool

	Out io.Writer // the ";; communications error" lines
}

// Answer is a response and where and how it came.
type Answer struct {
	Msg    *dns.Msg
	Server Server
	RTT    time.Duration
	Size   int // bytes on the wire
}

// Names are the fully qualified names dighost tries for name, in order
// (setup_lookup and next_origin as bind 9.18 runs them): an absolute name,
// or one with at least ndots dots, only as is; one with fewer dots with
// each search domain and then as is. (glibc would try a dotted name with
// the search domains too; bind's tools do not.)
func (s *Settings) Names(name string) []string {
	if strings.HasSuffix(name, ".") || !s.UseSearch || strings.Count(name, ".") >= s.Ndots {
		return []string{dns.Fqdn(name)}
	}
	var out []string
	for _, d := range s.Search {
		if fq := name + "." + dns.Fqdn(strings.TrimSuffix(d, ".")); len(fq) <= 254 {
			out = append(out, fq)
		}
	}
	return append(out, name+".")
}

// Lookup asks for name's qtype records through the search list: an
// NXDOMAIN moves on to the next candidate (next_origin), any other answer
// is final, and when every candidate is NXDOMAIN the last answer is
// returned. trying, if set, is called with each name before it is asked
// (host -v's "Trying" line).
func (s *Settings) Lookup(ctx context.Context, name string, qtype, qclass uint16, trying func(fqdn string)) (*Answer, error) {
	var last *Answer
	for _, fq := range s.Names(name) {
		if _, ok := dns.IsDomainName(fq); !ok || len(fq) > 254 {
			return nil, fmt.Errorf("'%s' is not a legal name (label too long)", strings.TrimSuffix(name, "."))
		}
		if trying != nil {
			trying(fq)
		}
		a, err := s.Send(ctx, fq, qtype, qclass)
		if err != nil {
			return nil, err
		}
		last = a
		if a.Msg.Rcode != dns.RcodeNameError {
			return a, nil
		}
	}
	return last, nil
}

// Send asks the servers in order one question, each up to Tries times,
// printing bind's line for each try that gets no answer.
func (s *Settings) Send(ctx context.Context, fqdn string, qtype, qclass uint16) (*Answer, error) {
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.Question[0].Qclass = qclass
	q.RecursionDesired = s.Recurse
	var kept *Answer
	sn := &sizeNet{Net: s.Net}
	for i, srv := range s.Servers {
		r := &resolver.Resolver{Net: sn, Options: s.Options, Config: &resolver.Config{
			Servers:  []netip.AddrPort{srv.Addr},
			Timeout:  s.Timeout,
			Attempts: 1,
			UseTCP:   s.TCP,
		}}
		for range max(s.Tries, 1) {
			start := time.Now()
			m, _, err := r.Exchange(ctx, q)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				fmt.Fprintf(s.Out, ";; communications error to %s: %s\n", srv, commText(err))
				continue
			}
			a := &Answer{Msg: m, Server: srv, RTT: time.Since(start), Size: sn.last}
			if m.Rcode == dns.RcodeServerFailure && !s.ServfailStops && i < len(s.Servers)-1 {
				kept = a
				break
			}
			return a, nil
		}
	}
	if kept != nil {
		return kept, nil
	}
	return nil, ErrNoServers
}

// commText is the isc_result text bind prints for a failed try.
func commText(err error) string {
	var de *net.DNSError
	if errors.Is(err, resolver.ErrTimeout) || !errors.As(err, &de) {
		if errors.Is(err, resolver.ErrTimeout) {
			return "timed out"
		}
		return err.Error()
	}
	text := de.Err
	if i := strings.LastIndex(text, ": "); i >= 0 {
		text = text[i+2:]
	}
	switch text {
	case "no route to host":
		return "host unreachable"
	case "network is unreachable":
		return "network unreachable"
	}
	return text
}

// System is the nameservers, search list and ndots of r's configuration
// (resolv.conf's), each server named by its address.
func System(r *resolver.Resolver) (servers []Server, search []string, ndots int) {
	c := r.Config
	if c == nil {
		c = resolver.DefaultConfig()
	}
	for _, a := range c.Servers {
		servers = append(servers, Server{Name: a.Addr().String(), Addr: a})
	}
	return servers, c.Search, c.Ndots
}

// FilterFamily keeps the servers of family 4 or 6 (0: all).
func FilterFamily(servers []Server, family int) []Server {
	if family == 0 {
		return servers
	}
	var out []Server
	for _, s := range servers {
		if s.Addr.Addr().Is4() == (family == 4) {
			out = append(out, s)
		}
	}
	return out
}

// ServerError is a server operand that gives no address; Error is
// bind's text after "couldn't get address for 'NAME': ".
type ServerError struct {
	Name, Reason string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("couldn't get address for '%s': %s", e.Name, e.Reason)
}

// ResolveServer turns a server operand into servers on port: an IP
// literal itself, else the addresses r finds for the name (as dighost
// uses getaddrinfo), keeping family 4 or 6 if asked.
func ResolveServer(ctx context.Context, r *resolver.Resolver, arg string, port uint16, family int) ([]Server, error) {
	if a, err := netip.ParseAddr(arg); err == nil {
		s := []Server{{Name: arg, Addr: netip.AddrPortFrom(a.Unmap(), port)}}
		if len(FilterFamily(s, family)) == 0 {
			return nil, &ServerError{arg, "address family not supported"}
		}
		return s, nil
	}
	addrs, err := r.LookupNetip(ctx, arg)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, &ServerError{arg, "not found"}
		}
		return nil, &ServerError{arg, "failure"}
	}
	var out []Server
	for _, a := range addrs {
		out = append(out, Server{Name: arg, Addr: netip.AddrPortFrom(a.Unmap(), port)})
	}
	if out = FilterFamily(out, family); len(out) == 0 {
		return nil, &ServerError{arg, "not found"}
	}
	return out, nil
}
