// Package nslookup is bind9's nslookup applet (BIND 9.18, Debian's
// bind9-dnsutils, ../shared/compat/nslookup.md): A and AAAA by default,
// one type with -type=, reverse lookups of IPv4 and IPv6 literals, a
// server operand, -port=, -timeout=, -retry=, -debug's section dumps and
// the other set options, and the interactive mode (commands on stdin:
// names, set, server, exit), with nslookup's "Server:"/"Address:" header,
// "Non-authoritative answer:", "** server can't find" lines and exit
// statuses.
//
// What it owns: nslookup's options (setoption's prefixes), its commands
// (interactive.go) and its printing (nslookup.c's printmessage,
// printsection, detailsection); the lookups, tries and search list are
// internal/dighost's, the transport pkg/resolver's. Locks: none; the
// interactive reader goroutine hands lines over a channel.
package nslookup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/dighost"
	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
)

// bind's defaults for nslookup: 5 s per try, 3 tries.
const (
	defaultTimeout = 5 * time.Second
	defaultTries   = 3
	maxTimeout     = 24 * time.Hour
)

// Config holds what the embedding program may plug in.
type Config struct {
	// Resolver gives the system resolver on h: its configuration supplies
	// the servers, search list and ndots, and it looks up a server
	// operand that is a name. nil: hostopen.Resolver.
	Resolver func(h host.Host, getenv func(string) string) *resolver.Resolver
}

// Applet returns nslookup on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	if cfg.Resolver == nil {
		cfg.Resolver = hostopen.Resolver
	}
	return &applet.Applet{
		Name:    "nslookup",
		Summary: "query Internet name servers (bind9's nslookup)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

// options are nslookup's settings (its "set" variables).
type options struct {
	qtype, qclass uint16
	defaults      bool // no type given: A then AAAA
	port          uint16
	timeout       time.Duration
	tries         int
	ndots         int // -1: resolv.conf's
	search        []string
	searchSet     bool
	useSearch     bool
	recurse, tcp  bool
	fail          bool // a SERVFAIL ends the query instead of trying the next server
	debug         bool
	all           bool // -all: show the settings
	timeoutArg    int  // the timeout= given, 0 for bind's default
	link          string
	name, server  string
}

// setOption is nslookup.c's setoption: each word matched by the prefix
// bind compares (strncasecmp with its length), unknown ones reported on
// stdout and ignored.
func (o *options) setOption(w io.Writer, opt string) {
	has := func(prefix string, n int) bool {
		return len(opt) >= n && strings.EqualFold(opt[:n], prefix[:n])
	}
	value := func() string { _, v, _ := strings.Cut(opt, "="); return v }
	// bind's parse_uint: digits only, within a 32-bit unsigned value and
	// the option's maximum, else "invalid WHAT 'V': …" and no change.
	num := func(what string, maxv uint64) (int, bool) {
		v := value()
		n, err := strconv.ParseUint(v, 10, 32)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange), err == nil && n > maxv:
			fmt.Fprintf(w, "invalid %s '%s': out of range\n", what, v)
		case err != nil:
			fmt.Fprintf(w, "invalid %s '%s': not a valid number\n", what, v)
		default:
			return int(n), true
		}
		return 0, false
	}
	switch {
	case strings.EqualFold(opt, "all"):
		o.all = true
	case has("class=", 6), has("cl=", 3):
		if c, ok := dighost.ParseClass(value()); ok {
			o.qclass = c
		} else {
			fmt.Fprintf(w, "unknown query class: %s\n", value())
		}
	case has("type=", 5), has("ty=", 3), has("querytype=", 10), has("query=", 6), has("qu=", 3), has("q=", 2):
		if t, ok := dighost.ParseType(value()); ok {
			o.qtype, o.defaults = t, false
		} else {
			fmt.Fprintf(w, "unknown query type: %s\n", value())
		}
	case has("domain=", 7), has("do=", 3):
		o.search, o.searchSet = []string{value()}, true
	case has("port=", 5), has("po=", 3):
		if n, ok := num("port", 65535); ok {
			o.port = uint16(n)
		}
	case has("timeout=", 8), has("t=", 2):
		if n, ok := num("timeout", 1<<32-1); ok {
			// 0 is bind's default; the rest is clamped before
			// multiplying, so a huge value cannot wrap.
			o.timeoutArg = min(n, int(maxTimeout/time.Second))
			o.timeout = time.Duration(o.timeoutArg) * time.Second
			if n == 0 {
				o.timeout = defaultTimeout
			}
		}
	case has("retry=", 6), has("ret=", 4):
		if n, ok := num("tries", 1<<32-1); ok {
			o.tries = max(n, 1)
		}
	case has("ndots=", 6):
		if n, ok := num("ndots", 1<<32-1); ok {
			o.ndots = n
		}
	case has("nosearch", 5):
		o.useSearch = false
	case has("search", 3), has("defname", 3):
		o.useSearch = true
	case has("nodefname", 5):
		o.useSearch = false
	case has("nofail", 5):
		o.fail = false
	case has("fail", 3):
		o.fail = true
	case has("norecurse", 5):
		o.recurse = false
	case has("recurse", 3):
		o.recurse = true
	case has("novc", 4):
		o.tcp = false
	case has("vc", 2):
		o.tcp = true
	case has("nodebug", 5):
		o.debug = false
	case has("debug", 3):
		o.debug = true
	default:
		fmt.Fprintf(w, "*** Invalid option: %s\n", opt)
	}
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	o := &options{qtype: dns.TypeA, qclass: dns.ClassINET, defaults: true, port: 53,
		timeout: defaultTimeout, tries: defaultTries, ndots: -1, useSearch: true, recurse: true}
	interactive := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--link" && i+1 < len(args):
			i++
			o.link = args[i]
		case strings.HasPrefix(a, "--link="):
			o.link = strings.TrimPrefix(a, "--link=")
		case a == "-":
			// "nslookup - SERVER": interactive, the next word the server.
			interactive = true
		case strings.HasPrefix(a, "-"):
			o.setOption(env.Stdout, a[1:])
		case o.name == "" && !interactive:
			o.name = a
		case o.server == "":
			o.server = a
		}
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "nslookup: %v\n", err)
		return 1
	}
	defer h.Close()
	sys := cfg.Resolver(h, env.Getenv)
	ss := &session{p: &printer{w: env.Stdout, o: o}, net: h, sys: sys}
	ss.servers, ss.search, ss.ndots = dighost.System(sys)
	if o.server != "" {
		if ss.servers, err = dighost.ResolveServer(ctx, sys, o.server, o.port, 0); err != nil {
			fmt.Fprintf(env.Stderr, "nslookup: %v\n", err)
			return 1
		}
	}
	if o.all {
		ss.showAll()
	}
	var status int
	if o.name == "" {
		status = ss.interactive(ctx, env)
	} else {
		status = ss.p.lookupAll(ctx, ss.settings(ss.servers), o.name)
	}
	if status < 0 {
		return 1 // a fatal error, already reported
	}
	fmt.Fprintln(env.Stdout)
	return status
}

// session is what a run keeps between lookups: the default servers and
// the system's search list, which interactive commands change.
type session struct {
	p       *printer
	net     host.Net
	sys     *resolver.Resolver
	servers []dighost.Server
	search  []string
	ndots   int
}

// settings are the lookup settings for servers under the current options
// (set port=, timeout=, … apply to the default server too).
func (ss *session) settings(servers []dighost.Server) *dighost.Settings {
	o := ss.p.o
	srv := make([]dighost.Server, len(servers))
	for i, v := range servers {
		srv[i] = dighost.Server{Name: v.Name, Addr: netip.AddrPortFrom(v.Addr.Addr(), o.port)}
	}
	ndots, search := ss.ndots, ss.search
	if o.ndots >= 0 {
		ndots = o.ndots
	}
	if o.searchSet {
		search = o.search
	}
	return &dighost.Settings{
		Net: ss.net, Servers: srv, Search: search, Ndots: ndots, UseSearch: o.useSearch,
		Timeout: o.timeout, Tries: o.tries, TCP: o.tcp, Recurse: o.recurse,
		ServfailStops: o.fail, Out: ss.p.w,
	}
}

// lookup is one question nslookup asks (a dig_lookup_t).
type lookup struct {
	name     string // the search list applies unless absolute
	textname string // the name for NXDOMAIN and "No answer"
	qtype    uint16
}

type printer struct {
	w         io.Writer
	o         *options
	aNoAnswer bool // the default A lookup had no answer
}

// lookupAll runs the lookups of the name operand and returns the exit
// status: 1 if any failed.
func (p *printer) lookupAll(ctx context.Context, s *dighost.Settings, name string) int {
	o := p.o
	if o.qtype == dns.TypeAXFR || o.qtype == dns.TypeIXFR {
		fmt.Fprintln(p.w, "*** zone transfers (type=AXFR, type=IXFR) are not supported by this nslookup")
		return 1
	}
	first := lookup{name: name, textname: name, qtype: o.qtype}
	if a, err := netip.ParseAddr(name); err == nil {
		rev := resolver.ReverseName(a)
		first = lookup{name: rev, textname: dighost.Bare(rev), qtype: dns.TypePTR}
	}
	queue := []lookup{first}
	status := 0
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		var a *dighost.Answer
		for _, fq := range s.Names(l.name) {
			if _, ok := dns.IsDomainName(fq); !ok || len(fq) > 254 {
				fmt.Fprintf(p.w, "'%s' is not a legal name (label too long)\n", l.textname)
				return 1
			}
			var err error
			if a, err = s.Send(ctx, fq, l.qtype, o.qclass); err != nil {
				if errors.Is(err, dighost.ErrNoServers) {
					fmt.Fprintln(p.w, ";; no servers could be reached")
				}
				return 1
			}
			if a.Msg.Rcode != dns.RcodeNameError {
				break
			}
			// -debug sets showsearch: each answer of the search is
			// printed, not only the last, and its NXDOMAIN counts as a
			// failure in the exit status as bind's print_error does.
			if o.debug && fq != s.Names(l.name)[len(s.Names(l.name))-1] && !p.print(l, a) {
				status = 1
			}
		}
		if !p.print(l, a) {
			status = 1
			continue
		}
		if o.defaults && l.qtype == dns.TypeA {
			canon := dighost.Canonical(a.Msg, a.Msg.Question[0].Name)
			queue = append(queue, lookup{name: canon, textname: dighost.Bare(canon), qtype: dns.TypeAAAA})
		}
	}
	return status
}

// print is nslookup.c's printmessage; false for an error RCODE.
func (p *printer) print(l lookup, a *dighost.Answer) bool {
	m, o := a.Msg, p.o
	if !o.defaults || l.qtype == dns.TypeA {
		fmt.Fprintf(p.w, "Server:\t\t%s\nAddress:\t%s\n\n", a.Server.Name, a.Server)
	}
	if o.debug {
		p.detail(m)
	}
	if m.Rcode != dns.RcodeSuccess {
		// The name asked, search domain and all (bind prints
		// lookup->name).
		name := l.textname
		if len(m.Question) > 0 {
			name = dighost.Bare(m.Question[0].Name)
		}
		fmt.Fprintf(p.w, "** server can't find %s: %s\n", name, dighost.RcodeString(m.Rcode))
		return false
	}
	if !m.Authoritative && (!o.defaults || l.qtype == dns.TypeA) {
		fmt.Fprintln(p.w, "Non-authoritative answer:")
	}
	if len(m.Answer) > 0 {
		p.section(m.Answer, true)
	} else if o.defaults && l.qtype == dns.TypeA {
		p.aNoAnswer = true
	} else if !o.defaults || l.qtype == dns.TypeAAAA && p.aNoAnswer {
		fmt.Fprintf(p.w, "*** Can't find %s: No answer\n", l.textname)
	}
	if !m.Authoritative && l.qtype != dns.TypeA && l.qtype != dns.TypeAAAA {
		fmt.Fprintln(p.w, "\nAuthoritative answers can be found from:")
		p.section(m.Ns, false)
		p.section(dighost.Additional(m), false)
	}
	return true
}

// rtypeText is nslookup.c's wording before a record's data, by type;
// types beyond it print "rdata_N = ".
var rtypeText = map[uint16]string{
	dns.TypeA: "internet address = ", dns.TypeNS: "nameserver = ", dns.TypeMD: "md = ",
	dns.TypeMF: "mf = ", dns.TypeCNAME: "canonical name = ", dns.TypeSOA: "soa = ",
	dns.TypeMB: "mb = ", dns.TypeMG: "mg = ", dns.TypeMR: "mr = ", 10: "rtype_10 = ",
	11: "protocol = ", dns.TypePTR: "name = ", dns.TypeHINFO: "hinfo = ",
	dns.TypeMINFO: "minfo = ", dns.TypeMX: "mail exchanger = ", dns.TypeTXT: "text = ",
	dns.TypeRP: "rp = ", dns.TypeAFSDB: "afsdb = ", dns.TypeX25: "x25 address = ",
	dns.TypeISDN: "isdn address = ", dns.TypeRT: "rt = ", 22: "nsap = ",
	23: "nsap_ptr = ", dns.TypeSIG: "signature = ", dns.TypeKEY: "key = ",
	dns.TypePX: "px = ", dns.TypeGPOS: "gpos = ", dns.TypeAAAA: "has AAAA address ",
	dns.TypeLOC: "loc = ", dns.TypeNXT: "next = ", 31: "rtype_31 = ", 32: "rtype_32 = ",
	dns.TypeSRV: "service = ", 34: "rtype_34 = ", dns.TypeNAPTR: "naptr = ",
	dns.TypeKX: "kx = ", dns.TypeCERT: "cert = ", 38: "v6 address = ",
	dns.TypeDNAME: "dname = ", 40: "rtype_40 = ", dns.TypeOPT: "optional = ",
}

func typeText(t uint16) string {
	if s, ok := rtypeText[t]; ok {
		return s
	}
	return "rdata_" + strconv.Itoa(int(t)) + " = "
}

// section is nslookup.c's printsection: addresses in the answer as
// Name/Address pairs, SOA as its block, the rest one line each.
func (p *printer) section(rrs []dns.RR, answer bool) {
	for _, rr := range rrs {
		name := dighost.Bare(rr.Header().Name)
		switch v := rr.(type) {
		case *dns.A:
			if answer {
				fmt.Fprintf(p.w, "Name:\t%s\nAddress: %s\n", name, v.A)
				continue
			}
		case *dns.AAAA:
			if answer {
				fmt.Fprintf(p.w, "Name:\t%s\nAddress: %s\n", name, v.AAAA)
				continue
			}
		case *dns.SOA:
			fmt.Fprintln(p.w, name)
			p.soa(v)
			continue
		}
		fmt.Fprintf(p.w, "%s\t%s%s\n", name, typeText(rr.Header().Rrtype), dighost.Rdata(rr))
	}
}

func (p *printer) soa(v *dns.SOA) {
	fmt.Fprintf(p.w, "\torigin = %s\n\tmail addr = %s\n\tserial = %d\n\trefresh = %d\n\tretry = %d\n\texpire = %d\n\tminimum = %d\n",
		dighost.Bare(v.Ns), dighost.Bare(v.Mbox), v.Serial, v.Refresh, v.Retry, v.Expire, v.Minttl)
}

// detail is -debug's dump of a message (nslookup.c's detailsection for
// each section between dashed lines).
func (p *printer) detail(m *dns.Msg) {
	fmt.Fprintln(p.w, "------------")
	fmt.Fprintln(p.w, "    QUESTIONS:")
	for _, q := range m.Question {
		fmt.Fprintf(p.w, "\t%s, type = %s, class = %s\n", dighost.Bare(q.Name), dighost.TypeString(q.Qtype), dighost.ClassString(q.Qclass))
	}
	for _, s := range []struct {
		title string
		rrs   []dns.RR
	}{{"ANSWERS", m.Answer}, {"AUTHORITY RECORDS", m.Ns}, {"ADDITIONAL RECORDS", dighost.Additional(m)}} {
		fmt.Fprintf(p.w, "    %s:\n", s.title)
		for _, rr := range s.rrs {
			fmt.Fprintf(p.w, "    ->  %s\n", dighost.Bare(rr.Header().Name))
			if v, ok := rr.(*dns.SOA); ok {
				p.soa(v)
			} else {
				fmt.Fprintf(p.w, "\t%s%s\n", typeText(rr.Header().Rrtype), dighost.Rdata(rr))
			}
			fmt.Fprintf(p.w, "\tttl = %d\n", rr.Header().Ttl)
		}
	}
	fmt.Fprintln(p.w, "------------")
}
