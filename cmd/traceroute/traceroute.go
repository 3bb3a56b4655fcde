// Package traceroute is the Linux traceroute(8) applet (Dmitry Butskoy's
// "Modern traceroute for Linux" 2.1, as captured in
// ../shared/compat/traceroute.md): probes with a growing TTL (hop
// limit), the ICMP time exceeded or unreachable each provokes naming the
// hop (RFC 792, RFC 4443 §3.3, RFC 1812 §5.3.1), one line per hop.
//
// Methods, as traceroute 2.1 runs them for a user without privilege
// where it can:
//   - default: UDP to ports 33434, 33435, … (one per probe), one
//     connected UDP socket per probe with IP_TTL and IP_RECVERR; the hop
//     is the offender of the sock_extended_err in the socket's error
//     queue, the destination's port unreachable ends the trace;
//   - -U: the same to one fixed port (default 53);
//   - -I: ICMP echo over one ping socket ("ping4"/"ping6"), IP_TTL set
//     before each send, errors from the error queue, the echo reply ends
//     the trace;
//   - -T: TCP SYN to one port (default 80) over a raw "ip4:tcp" /
//     "ip6:tcp" socket, as traceroute 2.1's tcp module does (it needs
//     privilege there too): a stream socket cannot say which hop
//     answered, a raw one reads the ICMP errors quoting our SYNs from its
//     error queue and the destination's SYN-ACK or RST from its reads.
//
// The probe loop (loop.go) is traceroute 2.1's do_it: up to -N probes in
// flight, printed in order as each is answered or its adaptive wait
// (-w MAX,HERE,NEAR) runs out. Reader goroutines (one per socket) hand
// what they read to the loop over a channel; the probes belong to the
// loop goroutine alone, so there are no locks.
package traceroute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// Exit statuses of traceroute 2.1: ex_error (bad arguments, unknown
// host) exits 2, error (a failing system call) exits 1.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Limits from traceroute.c.
const (
	maxHops      = 255
	maxProbes    = 10
	maxPacketLen = 65000
	defSimProbes = 16
)

// Resolver turns a destination name into an address of family
// (syscall.AF_INET, AF_INET6, or 0 for either) and the canonical name
// (cmd/ping's shape). Errors print as "NAME: " + err.Error(), so a
// resolver returns getaddrinfo's texts ("Name or service not known").
type Resolver func(ctx context.Context, h host.Host, getenv func(string) string, name string, family int) (addr netip.Addr, canonical string, err error)

// ReverseResolver is getnameinfo for the hop addresses without -n
// (cmd/nc's shape); an error or "" prints the address itself.
type ReverseResolver func(ctx context.Context, h host.Host, getenv func(string) string, addr netip.Addr) (string, error)

// Config holds what the embedding program may plug in; the zero value
// is traceroute with IP literals only and hops printed numerically.
type Config struct {
	Resolve Resolver        // nil: a name is "Name or service not known"
	Reverse ReverseResolver // nil: hop names are their addresses
}

// Applet returns traceroute (and traceroute6, which is traceroute -6) on
// the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	return &applet.Applet{
		Name:    "traceroute",
		Aliases: []string{"traceroute6"},
		Summary: "print the route packets take to a host (traceroute 2.1)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

const usageText = `Usage:
  traceroute [ -46FITUn ] [ -f first_ttl ] [ -i device ] [ -m max_ttl ] [ -N squeries ] [ -p port ] [ -t tos ] [ -w MAX,HERE,NEAR ] [ -q nqueries ] [ -s src_addr ] [ -z sendwait ] [ --link SPEC ] host [ packetlen ]
Options:
  -4                          Use IPv4
  -6                          Use IPv6
  -F  --dont-fragment         Do not fragment packets
  -f first_ttl  --first=first_ttl
                              Start from the first_ttl hop (instead from 1)
  -I  --icmp                  Use ICMP ECHO for tracerouting
  -T  --tcp                   Use TCP SYN for tracerouting (default port is 80)
  -i device  --interface=device
                              Specify a network interface to operate with
  -m max_ttl  --max-hops=max_ttl
                              Set the max number of hops (max TTL to be
                              reached). Default is 30
  -N squeries  --sim-queries=squeries
                              Set the number of probes to be tried
                              simultaneously (default is 16)
  -n                          Do not resolve IP addresses to their domain names
  -p port  --port=port        Set the destination port to use. It is either
                              initial udp port value for "default" method
                              (incremented by each probe, default is 33434), or
                              initial seq for "icmp" (incremented as well,
                              default from 1), or some constant destination
                              port for other methods (with default of 80 for
                              "tcp", 53 for "udp", etc.)
  -t tos  --tos=tos           Set the TOS (IPv4 type of service) or TC (IPv6
                              traffic class) value for outgoing packets
  -w MAX,HERE,NEAR  --wait=MAX,HERE,NEAR
                              Wait for a probe no more than HERE (default 3)
                              times longer than a response from the same hop,
                              or no more than NEAR (default 10) times than some
                              next hop, or MAX (default 5.0) seconds (float
                              point values allowed too)
  -q nqueries  --queries=nqueries
                              Set the number of probes per each hop. Default is
                              3
  -s src_addr  --source=src_addr
                              Use source src_addr for outgoing packets
  -z sendwait  --sendwait=sendwait
                              Minimal time interval between probes (default 0).
                              If the value is more than 10, then it specifies a
                              number in milliseconds, else it is a number of
                              seconds (float point values allowed too)
  -U  --udp                   Use UDP to particular port for tracerouting
                              (instead of increasing the port per each probe),
                              default port is 53
  --link SPEC                 Run on a private stack over the link SPEC
  -V  --version               Print version info and exit
  --help                      Read this help and exit

Arguments:
+     host          The host to traceroute to
      packetlen     The full packet length (default is the length of an IP
                    header plus 40). Can be ignored or increased to a minimal
                    allowed value
`

const versionText = "Modern traceroute for Linux, version 2.1.2\nCopyright (c) 2016  Dmitry Butskoy,   License: GPL v2 or any later\n"

// Probe methods.
const (
	methodDefault = iota // UDP, port per probe
	methodUDP            // -U: UDP, one port
	methodICMP           // -I
	methodTCP            // -T
)

type options struct {
	family           int // 0, 4 or 6
	method           int
	numeric          bool
	first, max       int
	nprobes, sim     int
	wait, here, near float64 // seconds, factors
	sendwait         float64 // seconds between probes
	port             int     // -1: the method's default
	tos              int     // -1: unset
	dontFrag         bool
	src, iface, link string
	host             string
	hostArgc         int
	packetLen        int // -1: the default
	help, version    bool
}

// usageError is one of traceroute's complaints about its command line,
// printed as it is, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) *usageError {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// Letters that take a value, those we know but do not implement (they
// fail rather than being ignored), and the long names of ours.
const (
	withValue   = "fimNptwqsz"
	unsupported = "dgleAMODPr"
)

// argNames are the values' names in "requires an argument" complaints.
var argNames = map[byte]string{
	'f': "first_ttl", 'i': "device", 'm': "max_ttl", 'N': "squeries", 'p': "port",
	't': "tos", 'w': "MAX,HERE,NEAR", 'q': "nqueries", 's': "src_addr", 'z': "sendwait",
}

var longNames = map[string]byte{
	"first": 'f', "interface": 'i', "max-hops": 'm', "sim-queries": 'N', "port": 'p',
	"tos": 't', "wait": 'w', "queries": 'q', "source": 's', "sendwait": 'z',
	"icmp": 'I', "tcp": 'T', "udp": 'U', "dont-fragment": 'F', "version": 'V', "help": 'h',
}

// parse reads argv (without argv[0]) as traceroute 2.1's CLIF does:
// clustered flags (-nI), values attached (-q1, -w1,2,3) or following,
// options anywhere among the operands, "--" ending options, long names
// as --name=VALUE, and our --link SPEC (or --link=SPEC). Complaints name
// the argv index ("argc N") as traceroute's do.
func parse(name string, args []string) (*options, *usageError) {
	o := &options{first: 1, max: 30, nprobes: 3, sim: defSimProbes, wait: 5, here: 3, near: 10,
		port: -1, tos: -1, packetLen: -1}
	if strings.HasSuffix(name, "6") {
		o.family = 6
	}
	var operands []string
	var argcs []int
	onlyOperands := false
	for i := 0; i < len(args); i++ {
		a, argc := args[i], i+1
		if onlyOperands || len(a) < 2 || a[0] != '-' {
			operands, argcs = append(operands, a), append(argcs, argc)
			continue
		}
		if a == "--" {
			onlyOperands = true
			continue
		}
		if strings.HasPrefix(a, "--") {
			long, val, hasVal := strings.Cut(a[2:], "=")
			if long == applet.LinkFlag.Name {
				if !hasVal {
					if i+1 >= len(args) {
						return nil, usagef("Option `%s' (argc %d) requires an argument: `%s=SPEC'", a, argc, a)
					}
					i++
					val = args[i]
				}
				o.link = val
				continue
			}
			c, ok := longNames[long]
			if !ok {
				return nil, usagef("Bad option `%s' (argc %d)", a, argc)
			}
			if strings.IndexByte(withValue, c) >= 0 && !hasVal {
				// CLIF takes a long option's value only after "=".
				return nil, usagef("Option `%s' (argc %d) requires an argument: `%s=%s'", a, argc, a, argNames[c])
			}
			if err := o.set(c, "--"+long, val, argc); err != nil {
				return nil, err
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			var val string
			if strings.IndexByte(withValue, c) >= 0 {
				switch {
				case j+1 < len(a):
					val = a[j+1:]
				case i+1 < len(args):
					i++
					val, argc = args[i], i+1 // CLIF names the value's place
				default:
					return nil, usagef("Option `-%c' (argc %d) requires an argument: `-%c %s'", c, argc, c, argNames[c])
				}
				j = len(a)
			}
			if err := o.set(c, "-"+string(rune(c)), val, argc); err != nil {
				return nil, err
			}
		}
	}
	if o.help || o.version {
		return o, nil
	}
	for k, op := range operands {
		switch k {
		case 0:
			o.host, o.hostArgc = op, argcs[k]
		case 1:
			n, err := strconv.ParseInt(op, 0, 32)
			if err != nil {
				return nil, usagef("Cannot handle \"packetlen\" cmdline arg `%s' on position 2 (argc %d)", op, argcs[k])
			}
			o.packetLen = int(max(n, 0))
		default:
			return nil, usagef("Extra arg `%s' (position %d, argc %d)", op, k+1, argcs[k])
		}
	}
	return o, nil
}

// set applies one option; opt is how it was written, for messages.
func (o *options) set(c byte, opt, val string, argc int) *usageError {
	bad := func() *usageError {
		return usagef("Cannot handle `%s' option with arg `%s' (argc %d)", opt, val, argc)
	}
	num := func() (int, *usageError) {
		n, err := strconv.ParseInt(val, 0, 32)
		if err != nil {
			return 0, bad()
		}
		return int(n), nil
	}
	var err *usageError
	switch c {
	case '4', '6':
		o.family = int(c - '0')
	case 'I':
		o.method = methodICMP
	case 'T':
		o.method = methodTCP
	case 'U':
		o.method = methodUDP
	case 'F':
		o.dontFrag = true
	case 'n':
		o.numeric = true
	case 'f':
		o.first, err = num()
	case 'm':
		o.max, err = num()
	case 'q':
		o.nprobes, err = num()
	case 'N':
		o.sim, err = num()
	case 'p':
		o.port, err = num()
	case 't':
		o.tos, err = num()
	case 'i':
		o.iface = val
	case 's':
		o.src = val
	case 'w':
		// MAX[,HERE[,NEAR]]: the factors left out are 0, which turns
		// that part of the adaptive wait off (traceroute 2.1
		// set_wait_specs).
		parts := strings.Split(val, ",")
		if len(parts) > 3 {
			return bad()
		}
		f := [3]float64{}
		for k, p := range parts {
			v, perr := strconv.ParseFloat(p, 64)
			if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return bad()
			}
			f[k] = v
		}
		o.wait, o.here, o.near = f[0], f[1], f[2]
	case 'z':
		v, perr := strconv.ParseFloat(val, 64)
		if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return bad()
		}
		if v > 10 {
			v /= 1000 // more than 10: milliseconds
		}
		o.sendwait = v
	case 'V':
		o.version = true
	case 'h':
		o.help = true
	default:
		if strings.IndexByte(unsupported, c) >= 0 {
			return usagef("Option `%s' is not supported by this traceroute (argc %d)", opt, argc)
		}
		return usagef("Bad option `%s' (argc %d)", opt, argc)
	}
	return err
}

// check is traceroute.c's validation after the command line.
func (o *options) check() *usageError {
	if o.first <= 0 || o.first > o.max {
		return usagef("first hop out of range")
	}
	if o.max > maxHops {
		return usagef("max hops cannot be more than %d", maxHops)
	}
	if o.nprobes <= 0 || o.nprobes > maxProbes {
		return usagef("no more than %d probes per hop", maxProbes)
	}
	if o.wait < 0 || o.here < 0 || o.near < 0 {
		return usagef("bad wait specifications `%g,%g,%g' used", o.wait, o.here, o.near)
	}
	if o.packetLen > maxPacketLen {
		return usagef("too big packetlen %d specified", o.packetLen)
	}
	if o.sim < 1 {
		o.sim = 1
	}
	return nil
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	name := "traceroute"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	o, uerr := parse(name, args)
	if uerr != nil {
		fmt.Fprintln(env.Stderr, uerr.msg)
		return exitUsage
	}
	if o.version {
		io.WriteString(env.Stderr, versionText)
		return exitOK
	}
	if o.help || o.host == "" {
		io.WriteString(env.Stderr, usageText)
		return exitOK
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "traceroute: %v\n", err)
		return exitFail
	}
	defer h.Close()
	dst, canon, uerr := resolve(ctx, h, env.Getenv, cfg, o)
	if uerr != nil {
		fmt.Fprintln(env.Stderr, uerr.msg)
		return exitUsage
	}
	if uerr := o.check(); uerr != nil {
		fmt.Fprintln(env.Stderr, uerr.msg)
		return exitUsage
	}
	t := &tracer{ctx: ctx, h: h, cfg: cfg, env: env, o: o, dst: dst, names: map[netip.Addr]string{}}
	return t.run(canon)
}

// resolve turns the host operand into the destination, as traceroute's
// getaddr with its messages.
func resolve(ctx context.Context, h host.Host, getenv func(string) string, cfg Config, o *options) (netip.Addr, string, *usageError) {
	family := 0
	switch o.family {
	case 4:
		family = syscall.AF_INET
	case 6:
		family = syscall.AF_INET6
	}
	cannot := func(why string) *usageError {
		return usagef("%s: %s\nCannot handle \"host\" cmdline arg `%s' on position 1 (argc %d)", o.host, why, o.host, o.hostArgc)
	}
	a, err := netip.ParseAddr(o.host)
	if err == nil {
		a = a.Unmap()
		if (family == syscall.AF_INET && !a.Is4()) || (family == syscall.AF_INET6 && a.Is4()) {
			return netip.Addr{}, "", cannot("Address family for hostname not supported")
		}
		return a, o.host, nil
	}
	if cfg.Resolve == nil {
		return netip.Addr{}, "", cannot("Name or service not known")
	}
	a, canon, err := cfg.Resolve(ctx, h, getenv, o.host, family)
	if err != nil {
		return netip.Addr{}, "", cannot(err.Error())
	}
	// traceroute prints the name as given, not the canonical one.
	_ = canon
	return a.Unmap(), o.host, nil
}

// strerror is the C library's text for an errno ("Network is
// unreachable"), else the error's own.
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
