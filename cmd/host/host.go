// Package host is bind9's host applet (BIND 9.18, Debian's bind9-host,
// ../shared/compat/host.md): a name's A, AAAA and MX records, one type
// with -t, reverse lookups of IPv4 and IPv6 literals, and -v's dig-like
// message dumps, with host's one-line-per-record wording, messages and
// exit statuses.
//
// What it owns: host's command line (getopt without permutation, as
// bind's isc_commandline_parse) and its printing (host.c's printmessage
// and say_message); the lookups, tries and search list are
// internal/dighost's, the transport pkg/resolver's.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/dighost"
	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
)

const usageText = `Usage: host [-aCdilrTvVw] [-c class] [-N ndots] [-t type] [-W time]
            [-R number] [-m flag] [-p port] hostname [server]
       -a is equivalent to -v -t ANY
       -A is like -a but omits RRSIG, NSEC, NSEC3
       -c specifies query class for non-IN data
       -C compares SOA records on authoritative nameservers
       -d is equivalent to -v
       -l lists all hosts in a domain, using AXFR
       -m set memory debugging flag (trace|record|usage)
       -N changes the number of dots allowed before root lookup is done
       -p specifies the port on the server to query
       -r disables recursive processing
       -R specifies number of retries for UDP packets
       -s a SERVFAIL response should stop query
       -t specifies the query type
       -T enables TCP/IP mode
       -U enables UDP mode
       -v enables verbose output
       -V print version number and exit
       -w specifies to wait forever for a reply
       -W specifies how long to wait for a reply
       -4 use IPv4 query transport only
       -6 use IPv6 query transport only
`

// The option letters of host 9.18's getopt string; those in withArg
// take an argument. unsupported are refused with a message.
const (
	letters     = "46aAc:dilnm:p:rst:vVwCDN:R:TUW:"
	unsupported = "CilmnVD"
)

// bind's defaults for host: 5 s per UDP try (10 s for TCP), one retry.
const (
	udpTimeout = 5 * time.Second
	tcpTimeout = 10 * time.Second
	forever    = 24 * time.Hour // -w: bounded still, SIGINT ends it sooner
)

// Config holds what the embedding program may plug in.
type Config struct {
	// Resolver gives the system resolver on h: its configuration supplies
	// the servers, search list and ndots, and it looks up a server
	// operand that is a name. nil: hostopen.Resolver.
	Resolver func(h host.Host, getenv func(string) string) *resolver.Resolver
}

// Applet returns host on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	if cfg.Resolver == nil {
		cfg.Resolver = hostopen.Resolver
	}
	return &applet.Applet{
		Name:    "host",
		Summary: "DNS lookup utility (bind9's host)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

type options struct {
	family           int
	verbose, showAll bool // showAll false with -A: no RRSIG, NSEC, NSEC3
	qtype, qclass    uint16
	typeSet          bool
	ndots            int // -1: resolv.conf's
	port             uint16
	recurse, tcp     bool
	servfailStops    bool
	timeout          time.Duration
	tries            int
	link             string
	name, server     string
}

// usageError is a bad command line: the message (if any) and the usage,
// exit 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func parse(args []string) (*options, error) {
	o := &options{qclass: dns.ClassINET, ndots: -1, port: 53, recurse: true, tries: 2, showAll: true}
	var timeout time.Duration
	wait := false
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "--link" || strings.HasPrefix(a, "--link=") {
			if v, ok := strings.CutPrefix(a, "--link="); ok {
				o.link = v
			} else if i+1 < len(args) {
				i++
				o.link = args[i]
			} else {
				return nil, &usageError{"host: option '--link' requires an argument"}
			}
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			k := strings.IndexByte(letters, c)
			if k < 0 || c == ':' {
				return nil, &usageError{fmt.Sprintf("host: illegal option -- %c", c)}
			}
			if strings.IndexByte(unsupported, c) >= 0 {
				return nil, fmt.Errorf("host: option -%c is not supported by this host", c)
			}
			var val string
			if k+1 < len(letters) && letters[k+1] == ':' {
				switch {
				case j+1 < len(a):
					val = a[j+1:]
				case i+1 < len(args):
					i++
					val = args[i]
				default:
					return nil, &usageError{fmt.Sprintf("host: option requires an argument -- %c", c)}
				}
				j = len(a)
			}
			switch c {
			case '4':
				o.family = 4
			case '6':
				o.family = 6
			case 'a':
				o.verbose = true
				o.qtype, o.typeSet = dns.TypeANY, true
			case 'A':
				o.verbose, o.showAll = true, false
				o.qtype, o.typeSet = dns.TypeANY, true
			case 'c':
				cl, ok := dighost.ParseClass(val)
				if !ok {
					return nil, &exitError{fmt.Sprintf("host: invalid class: %s\n", val), 2}
				}
				o.qclass = cl
			case 'd', 'v':
				o.verbose = true
			case 'p':
				// atoi into an in_port_t: 70000 is 4464, -5 is 65531.
				o.port = uint16(atoi(val))
			case 'r':
				o.recurse = false
			case 's':
				o.servfailStops = true
			case 't':
				t, ok := dighost.ParseType(val)
				if !ok {
					return nil, &exitError{fmt.Sprintf("host: invalid type: %s\n", val), 2}
				}
				o.qtype, o.typeSet = t, true
			case 'T':
				o.tcp = true
			case 'U':
				o.tcp = false
			case 'w':
				wait = true
			case 'W':
				// bind reads -W, -N and -R with atoi: "x" is 0.
				timeout = time.Duration(min(max(atoi(val), 1), int(forever/time.Second))) * time.Second
			case 'N':
				o.ndots = max(atoi(val), -1)
			case 'R':
				n := min(max(atoi(val), 0), 100)
				// The retries after the first try; bind's host makes
				// at least two tries whatever -R says (-R 0 tries twice).
				o.tries = max(n+1, 2)
			}
		}
	}
	if i >= len(args) {
		return nil, &usageError{}
	}
	o.name = args[i]
	if i+1 < len(args) {
		o.server = args[i+1]
	}
	o.timeout = udpTimeout
	if o.tcp {
		o.timeout = tcpTimeout
	}
	if timeout > 0 {
		o.timeout = timeout
	}
	if wait {
		o.timeout = forever
	}
	if !o.typeSet {
		o.qtype = dns.TypeA
	}
	return o, nil
}

// exitError is a message for stderr and an exit status (bind's fatal()).
type exitError struct {
	msg    string
	status int
}

func (e *exitError) Error() string { return e.msg }

// lookup is one question host asks (a dig_lookup_t).
type lookup struct {
	name     string // as given: the search list applies unless absolute
	textname string // the name for NXDOMAIN messages
	qtype    uint16
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	o, err := parse(args)
	if err != nil {
		var ue *usageError
		var ee *exitError
		switch {
		case errors.As(err, &ue):
			if ue.msg != "" {
				fmt.Fprintln(env.Stderr, ue.msg)
			}
			fmt.Fprint(env.Stderr, usageText)
			return 1
		case errors.As(err, &ee):
			fmt.Fprintln(env.Stderr, ee.msg)
			return ee.status
		}
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	if o.qtype == dns.TypeAXFR || o.qtype == dns.TypeIXFR {
		fmt.Fprintln(env.Stderr, "host: zone transfers (-t AXFR, -t IXFR, -l) are not supported by this host")
		return 1
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "host: %v\n", err)
		return 1
	}
	defer h.Close()
	sys := cfg.Resolver(h, env.Getenv)
	servers, search, ndots := dighost.System(sys)
	for i := range servers {
		servers[i].Addr = netip.AddrPortFrom(servers[i].Addr.Addr(), o.port)
	}
	if o.ndots >= 0 {
		ndots = o.ndots
	}
	listed := o.server != ""
	if listed {
		servers, err = dighost.ResolveServer(ctx, sys, o.server, o.port, o.family)
		if err != nil {
			fmt.Fprintf(env.Stderr, "host: %v\n", err)
			return 1
		}
	} else if servers = dighost.FilterFamily(servers, o.family); len(servers) == 0 {
		// None of the family asked: bind falls back to the local
		// nameserver of that family, as with no resolv.conf servers.
		lo := netip.IPv6Loopback()
		if o.family == 4 {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		servers = []dighost.Server{{Name: lo.String(), Addr: netip.AddrPortFrom(lo, o.port)}}
	}
	s := &dighost.Settings{
		Net: h, Servers: servers, Search: search, Ndots: ndots, UseSearch: true,
		Timeout: o.timeout, Tries: o.tries, TCP: o.tcp, Recurse: o.recurse,
		ServfailStops: o.servfailStops, Out: env.Stdout,
	}
	p := &printer{w: env.Stdout, o: o, listed: listed}
	first := lookup{name: o.name, textname: o.name, qtype: o.qtype}
	defaults := !o.typeSet
	if a, err := netip.ParseAddr(o.name); err == nil {
		rev := resolver.ReverseName(a)
		first = lookup{name: rev, textname: dighost.Bare(rev), qtype: dns.TypePTR}
		defaults = false
	}
	p.defaults = defaults
	queue := []lookup{first}
	status := 0
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		var trying func(string)
		if o.verbose {
			trying = func(fq string) { fmt.Fprintf(env.Stdout, "Trying \"%s\"\n", dighost.Bare(fq)) }
		}
		a, err := s.Lookup(ctx, l.name, l.qtype, o.qclass, trying)
		if err != nil {
			if errors.Is(err, dighost.ErrNoServers) {
				fmt.Fprintln(env.Stdout, ";; no servers could be reached")
			} else if ctx.Err() != nil {
				return 130
			} else {
				fmt.Fprintf(env.Stderr, "host: %v\n", err)
			}
			return 1
		}
		p.single = len(s.Names(l.name)) == 1
		if !p.print(l, a) {
			status = 1
			continue
		}
		// host.c: the A answer of a default lookup queues AAAA and MX for
		// the end of its CNAME chain.
		if defaults && l.qtype == dns.TypeA {
			canon := dighost.Canonical(a.Msg, a.Msg.Question[0].Name)
			for _, t := range []uint16{dns.TypeAAAA, dns.TypeMX} {
				queue = append(queue, lookup{name: canon, textname: dighost.Bare(canon), qtype: t})
			}
		}
	}
	return status
}

// printer is host.c's printmessage; it reports whether the answer was
// NOERROR.
type printer struct {
	w        io.Writer
	o        *options
	listed   bool // a server operand: "Using domain server:" once
	printed  bool
	defaults bool // the A/AAAA/MX set: no "has no … record" lines
	single   bool // the lookup being printed had one name to try
}

// rtypes is host.c's wording per type; others "has TYPE record".
var rtypes = map[uint16]string{
	dns.TypeA: "has address", dns.TypeNS: "name server", dns.TypeCNAME: "is an alias for",
	11: "has well known services", dns.TypePTR: "domain name pointer",
	dns.TypeHINFO: "host information", dns.TypeMX: "mail is handled by",
	dns.TypeTXT: "descriptive text", dns.TypeX25: "x25 address", dns.TypeISDN: "ISDN address",
	dns.TypeSIG: "has signature", dns.TypeKEY: "has key", dns.TypeAAAA: "has IPv6 address",
	dns.TypeLOC: "location",
}

func (p *printer) print(l lookup, a *dighost.Answer) bool {
	m := a.Msg
	if p.listed && !p.printed {
		fmt.Fprintf(p.w, "Using domain server:\nName: %s\nAddress: %s\nAliases: \n\n", a.Server.Name, a.Server)
	}
	p.printed = true
	qname := l.name
	if len(m.Question) > 0 {
		qname = m.Question[0].Name
	}
	defer func() {
		if !p.o.verbose {
			return
		}
		// A final NXDOMAIN of a name tried only as is goes through
		// dighost's search branch and its general one, each saying what
		// was received: bind prints it twice (once after a search).
		for range 1 + btoi(m.Rcode == dns.RcodeNameError && p.single) {
			fmt.Fprintf(p.w, "Received %d bytes from %s in %d ms\n", a.Size, a.Server, a.RTT.Milliseconds())
		}
	}()
	if m.Rcode != dns.RcodeSuccess {
		name := dighost.Bare(qname)
		if m.Rcode == dns.RcodeNameError {
			name = l.textname
		}
		fmt.Fprintf(p.w, "Host %s not found: %d(%s)\n", name, m.Rcode, dighost.RcodeString(m.Rcode))
		return false
	}
	if p.o.verbose {
		fmt.Fprint(p.w, dighost.Header(m))
		p.section("QUESTION", nil, m.Question)
		p.section("ANSWER", m.Answer, nil)
		p.section("AUTHORITY", m.Ns, nil)
		p.section("ADDITIONAL", dighost.Additional(m), nil)
		fmt.Fprintln(p.w)
		return true
	}
	if !p.defaults && len(m.Answer) == 0 {
		fmt.Fprintf(p.w, "%s has no %s record\n", dighost.Bare(qname), dighost.TypeString(l.qtype))
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		msg, ok := rtypes[h.Rrtype]
		if !ok {
			msg = "has " + dighost.TypeString(h.Rrtype) + " record"
		}
		fmt.Fprintf(p.w, "%s %s %s\n", dighost.Bare(h.Name), msg, dighost.Rdata(rr))
	}
	return true
}

// section prints one section of -v's dump, if it is not empty.
func (p *printer) section(title string, rrs []dns.RR, qs []dns.Question) {
	if len(rrs) == 0 && len(qs) == 0 {
		return
	}
	fmt.Fprintf(p.w, "\n;; %s SECTION:\n", title)
	for _, q := range qs {
		fmt.Fprintln(p.w, dighost.QuestionLine(q))
	}
	for _, rr := range rrs {
		if !p.o.showAll {
			switch rr.Header().Rrtype {
			case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				continue
			}
		}
		fmt.Fprintln(p.w, dighost.ZoneLine(rr))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// atoi is C's atoi, which bind's host reads -W, -N, -R and -p with:
// leading blanks, a sign and the digits that follow; 0 without digits.
// Values beyond ±1e9 are clamped.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			break
		}
		n = min(n*10+int(c-'0'), 1e9)
	}
	if neg {
		return -n
	}
	return n
}
