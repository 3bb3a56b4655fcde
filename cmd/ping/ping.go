// Package ping is the iputils ping(8) applet (iputils 20221126, as
// captured in ../shared/compat/ping.md): ICMP echo over the host's ping
// sockets ("ping4"/"ping6", which need no privilege), with iputils'
// options, per-reply and error lines, summary and exit statuses.
//
// As iputils does for an unprivileged user, it sets IP_RECVERR and
// IP_RECVTTL (IPV6_RECVERR, IPV6_RECVHOPLIMIT) on the socket: ICMP errors
// about our requests come from the error queue as "From X icmp_seq=N …"
// lines, and ttl= from the control message.
//
// The send/receive loop (loop.go) follows iputils' main_loop: a pinger
// that sends one request per interval from a token count, exit when the
// count is met (after a final wait of max(2×max rtt, interval), or -W
// when nothing came back), at the -w deadline, or when ctx ends (Ctrl-C).
// One goroutine reads the socket and hands what it read to the loop over
// a channel; all counters belong to the loop goroutine, so there are no
// locks.
package ping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// Exit statuses (iputils: error(1, …) for usage, error(2, …) for the rest).
const (
	exitOK      = 0
	exitNoReply = 1
	exitUsage   = 1
	exitFail    = 2
)

// Timing constants from iputils ping.h, in milliseconds.
const (
	minInterval     = 10 // MININTERVAL: the flood pace without replies
	minUserInterval = 2  // MINUSERINTERVAL in iputils 20221126
	defaultLinger   = 10000
	maxDupCheck     = 0x10000
)

const usageText = `
Usage
  ping [options] <destination>

Options:
  <destination>      dns name or ip address
  -a                 use audible ping
  -A                 use adaptive ping
  -B                 sticky source address
  -c <count>         stop after <count> replies
  -D                 print timestamps
  -d                 use SO_DEBUG socket option
  -f                 flood ping
  -h                 print help and exit
  -I <interface>     either interface name or address
  -i <interval>      seconds between sending each packet
  -L                 suppress loopback of multicast packets
  -l <preload>       send <preload> number of packages while waiting replies
  -m <mark>          tag the packets going out
  -M <pmtud opt>     define mtu discovery, can be one of <do|dont|want>
  -n                 no dns name resolution
  -O                 report outstanding replies
  -p <pattern>       contents of padding byte
  -q                 quiet output
  -Q <tclass>        use quality of service <tclass> bits
  -s <size>          use <size> as number of data bytes to be sent
  -S <size>          use <size> as SO_SNDBUF socket option value
  -t <ttl>           define time to live
  -U                 print user-to-user latency
  -v                 verbose output
  -V                 print version and exit
  -w <deadline>      reply wait <deadline> in seconds
  -W <timeout>       time to wait for response

IPv4 options:
  -4                 use IPv4
  -b                 allow pinging broadcast
  -R                 record route
  -T <timestamp>     define timestamp, can be one of <tsonly|tsandaddr|tsprespec>

IPv6 options:
  -6                 use IPv6
  -F <flowlabel>     define flow label, default is random
  -N <nodeinfo opt>  use icmp6 node info query, try <help> as argument

For more details see ping(8).
`

// Resolver turns a destination name into an address of family
// (syscall.AF_INET, AF_INET6, or 0 for either) and the canonical name to
// print. Errors are printed as "ping: NAME: " + err.Error(), so a
// resolver returns getaddrinfo's texts ("Name or service not known"). h
// is the host ping runs on (its queries go through it), getenv the
// applet's environment.
type Resolver func(ctx context.Context, h host.Host, getenv func(string) string, name string, family int) (addr netip.Addr, canonical string, err error)

// Config holds what the embedding program may plug in; the zero value
// is ping with IP literals only, the real clock and the real uid.
type Config struct {
	Resolve Resolver         // nil: a name is "Name or service not known"
	Now     func() time.Time // nil: time.Now
	UID     func() int       // the real uid iputils checks; nil: os.Getuid
}

// Applet returns ping (and ping6, which is ping -6) on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UID == nil {
		cfg.UID = os.Getuid
	}
	return &applet.Applet{
		Name:    "ping",
		Aliases: []string{"ping6"},
		Summary: "send ICMP echo requests (iputils ping)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

type options struct {
	family       int // 0, 4 or 6
	count        int64
	interval     int // ms
	optInterval  bool
	linger       int // ms (-W)
	deadline     int // s (-w)
	datalen      int
	ttl          int
	optTTL       bool
	quiet, flood bool
	timestamps   bool // -D
	outstanding  bool // -O
	iface        string
	pmtudisc     int // -1: unset
	link         string
	warn         io.Writer // stderr, for parse warnings
	args         []string
}

// usageError is a getopt or option-value complaint and its exit status.
type usageError struct {
	msg       string
	status    int
	showUsage bool
}

func (e *usageError) Error() string { return e.msg }

func fail(status int, format string, a ...any) *usageError {
	return &usageError{msg: fmt.Sprintf(format, a...), status: status}
}

// getopt letters: value-taking ones, and those ping knows but this one
// does not implement (they fail with a message rather than being
// silently ignored).
const (
	withValue   = "cFiIlmMNpQsStTwW"
	unsupported = "aAbBdFlLmNpQRSTUv"
)

// parse reads argv as GNU getopt with iputils' option string: combined
// letters (-qn), attached values (-c3), options after the destination
// (GNU permutation), "--" ending options, and --link SPEC (or
// --link=SPEC). urfave/cli stops at the first operand, which `ping HOST
// -c 3` would break, hence a getopt of its own.
func parse(name string, args []string, warn io.Writer) (*options, *usageError) {
	o := &options{interval: 1000, linger: defaultLinger, datalen: 56, pmtudisc: -1, warn: warn}
	if strings.HasSuffix(name, "6") {
		o.family = 6
	} else if strings.HasSuffix(name, "4") {
		o.family = 4
	}
	linkName := "--" + applet.LinkFlag.Name
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			return o, nil
		case a == linkName:
			if i+1 >= len(args) {
				return nil, &usageError{msg: fmt.Sprintf("option '%s' requires an argument", linkName), status: exitFail, showUsage: true}
			}
			i++
			o.link = args[i]
			continue
		case strings.HasPrefix(a, linkName+"="):
			o.link = strings.TrimPrefix(a, linkName+"=")
			continue
		case strings.HasPrefix(a, "--"):
			// iputils' getopt has no long options: "--frob" is '-' as a letter.
			return nil, &usageError{msg: "invalid option -- '-'", status: exitFail, showUsage: true}
		case len(a) < 2 || a[0] != '-':
			o.args = append(o.args, a)
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
					val = args[i]
				default:
					return nil, &usageError{msg: fmt.Sprintf("option requires an argument -- '%s'", letter(c)), status: exitFail, showUsage: true}
				}
				j = len(a)
			}
			if err := o.set(c, val); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// set applies one option as iputils' main does, with its messages.
func (o *options) set(c byte, val string) *usageError {
	switch c {
	case '4', '6':
		want := int(c - '0')
		if o.family != 0 && o.family != want {
			return fail(exitFail, "only one -4 or -6 option may be specified")
		}
		o.family = want
	case 'c':
		n, err := strtolOrErr(val, 1, math.MaxInt64)
		if err != nil {
			return err
		}
		o.count = n
	case 'D':
		o.timestamps = true
	case 'f':
		o.flood = true
	case 'i':
		f, err := strtod(val, "bad timing interval", o.warn)
		if err != nil {
			return err
		}
		if f > float64(math.MaxInt32/1000) {
			return fail(exitFail, "bad timing interval: %s", val)
		}
		o.interval = int(f * 1000)
		o.optInterval = true
	case 'I':
		o.iface = val
	case 'M':
		switch val {
		case "do":
			o.pmtudisc = syscall.IP_PMTUDISC_DO
		case "dont":
			o.pmtudisc = syscall.IP_PMTUDISC_DONT
		case "want":
			o.pmtudisc = syscall.IP_PMTUDISC_WANT
		default:
			return fail(exitFail, "invalid -M argument: %s", val)
		}
	case 'n':
		// Numeric output: all this ping prints is numeric while names
		// are not looked up in reverse.
	case 'O':
		o.outstanding = true
	case 'q':
		o.quiet = true
	case 's':
		n, err := strtolOrErr(val, 0, math.MaxInt32)
		if err != nil {
			return err
		}
		o.datalen = int(n)
	case 't':
		n, err := strtolOrErr(val, 0, 255)
		if err != nil {
			return err
		}
		o.ttl, o.optTTL = int(n), true
	case 'w':
		n, err := strtolOrErr(val, 0, math.MaxInt32)
		if err != nil {
			return err
		}
		o.deadline = int(n)
	case 'W':
		f, err := strtod(val, "bad linger time", o.warn)
		if err != nil {
			return err
		}
		if f < 0 || f > float64(math.MaxInt32/1000) {
			return fail(exitFail, "bad linger time: %s", val)
		}
		o.linger = int(f * 1000)
	case 'V':
		return &usageError{msg: "", status: exitOK}
	case 'h', '?':
		return &usageError{status: exitFail, showUsage: true}
	default:
		if strings.IndexByte(unsupported, c) >= 0 {
			return fail(exitFail, "option -%c is not supported by this ping", c)
		}
		return &usageError{msg: fmt.Sprintf("invalid option -- '%s'", letter(c)), status: exitFail, showUsage: true}
	}
	return nil
}

// letter shows an option byte: itself when printable, else escaped, so
// the complaint stays one line.
func letter(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}

// strtolOrErr is iputils' strtol_or_err with "invalid argument".
func strtolOrErr(s string, lo, hi int64) (int64, *usageError) {
	n, err := strconv.ParseInt(strings.TrimLeft(s, " \t\n"), 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fail(exitUsage, "invalid argument: '%s': Numerical result out of range", s)
		}
		return 0, fail(exitUsage, "invalid argument: '%s'", s)
	}
	if n < lo || n > hi {
		return 0, fail(exitUsage, "invalid argument: '%s': out of range: %d <= value <= %d", s, lo, hi)
	}
	return n, nil
}

// strtod is iputils 20221126's ping_strtod: the number C's strtod reads
// at the start of s; trailing garbage is warned about (twice, as iputils
// does) and ignored, an empty or non-finite value is "MSG: VALUE", exit 2.
func strtod(s, msg string, warn io.Writer) (float64, *usageError) {
	t := strings.TrimLeft(s, " \t\n")
	if t == "" {
		return 0, fail(exitFail, "%s: %s", msg, s)
	}
	// The longest prefix that is a number, as strtod's end pointer.
	n := len(t)
	for ; n > 0; n-- {
		if _, err := strconv.ParseFloat(t[:n], 64); err == nil || errors.Is(err, strconv.ErrRange) {
			break
		}
	}
	f, err := strconv.ParseFloat(t[:n], 64)
	if n == 0 {
		f, err = 0, nil
	}
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fail(exitFail, "%s: %s: Numerical result out of range", msg, s)
	}
	if n < len(t) {
		fmt.Fprintf(warn, "ping: option argument contains garbage: %s\nping: this will become fatal error in the future\n", t[n:])
	}
	return f, nil
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	name := "ping"
	if len(args) > 0 {
		name = args[0]
		args = args[1:]
	}
	o, uerr := parse(name, args, env.Stderr)
	if uerr != nil {
		if uerr.status == exitOK {
			fmt.Fprintln(env.Stdout, "ping from iputils 20221126")
			return exitOK
		}
		if uerr.msg != "" {
			fmt.Fprintf(env.Stderr, "ping: %s\n", uerr.msg)
		}
		if uerr.showUsage {
			io.WriteString(env.Stderr, usageText)
		}
		return uerr.status
	}
	if len(o.args) == 0 {
		fmt.Fprintln(env.Stderr, "ping: usage error: Destination address required")
		return exitUsage
	}
	if len(o.args) > 1 {
		// iputils would make the other operands IPv4 source-route hops.
		fmt.Fprintln(env.Stderr, "ping: source routing (more than one destination) is not supported by this ping")
		return exitFail
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ping: %v\n", err)
		return exitFail
	}
	defer h.Close()

	t, uerr := resolve(ctx, h, env.Getenv, cfg, o, o.args[0])
	if uerr != nil {
		fmt.Fprintf(env.Stderr, "ping: %s\n", uerr.msg)
		return uerr.status
	}
	p, uerr := setup(ctx, h, cfg, env, o, t)
	if uerr != nil {
		fmt.Fprintf(env.Stderr, "ping: %s\n", uerr.msg)
		return uerr.status
	}
	defer p.close()
	io.WriteString(env.Stdout, header(t.v6, t.hostname, t.addr.String(), p.fromText, p.devText, o.datalen))
	// iputils' setup() checks the interval after printing the header.
	if cfg.UID() != 0 && (o.interval < minUserInterval || (o.flood && !o.optInterval)) {
		fmt.Fprintf(env.Stderr, "ping: cannot flood; minimal interval allowed for user is %dms\n", minUserInterval)
		return exitFail
	}
	return p.loop(ctx)
}

// target is the resolved destination.
type target struct {
	addr     netip.Addr
	hostname string // what the header and summary call it
	v6       bool
}

func resolve(ctx context.Context, h host.Host, getenv func(string) string, cfg Config, o *options, dest string) (target, *usageError) {
	family := 0
	switch o.family {
	case 4:
		family = syscall.AF_INET
	case 6:
		family = syscall.AF_INET6
	}
	a, err := netip.ParseAddr(dest)
	if err == nil {
		a = a.Unmap()
		if (family == syscall.AF_INET && !a.Is4()) || (family == syscall.AF_INET6 && a.Is4()) {
			return target{}, fail(exitFail, "%s: Address family for hostname not supported", dest)
		}
		return target{addr: a, hostname: dest, v6: !a.Is4()}, nil
	}
	if cfg.Resolve == nil {
		return target{}, fail(exitFail, "%s: Name or service not known", dest)
	}
	a, canon, err := cfg.Resolve(ctx, h, getenv, dest, family)
	if err != nil {
		return target{}, fail(exitFail, "%s: %v", dest, err)
	}
	if canon == "" {
		canon = dest
	}
	a = a.Unmap()
	return target{addr: a, hostname: canon, v6: !a.Is4()}, nil
}

// setup is ping4_run / ping6_run up to the header: the source address
// (a UDP connect probe, as iputils finds it), the device, the socket and
// its options. Errors carry iputils' messages.
func setup(ctx context.Context, h host.Host, cfg Config, env *applet.Env, o *options, t target) (*pinger, *usageError) {
	var source netip.Addr
	device := ""
	strict := false
	if o.iface != "" {
		if strings.Contains(o.iface, ":") {
			addr, zone, _ := strings.Cut(o.iface, "%")
			a, err := netip.ParseAddr(addr)
			if err != nil || !a.Is6() {
				return nil, fail(exitFail, "invalid source address: %s", o.iface)
			}
			source, device, strict = a, zone, true
		} else if a, err := netip.ParseAddr(o.iface); err == nil && a.Is4() {
			source, strict = a, true
		} else {
			device = o.iface
		}
	}
	if device != "" {
		if _, err := h.Interface(ctx, device); err != nil {
			if errors.Is(err, syscall.ENODEV) {
				return nil, fail(exitFail, "SO_BINDTODEVICE %s: No such device", device)
			}
			return nil, fail(exitFail, "SO_BINDTODEVICE %s: %s", device, strerror(err))
		}
	}
	udp, ping, lvl := "udp4", "ping4", syscall.IPPROTO_IP
	if t.v6 {
		udp, ping, lvl = "udp6", "ping6", syscall.IPPROTO_IPV6
	}
	if !strict {
		c, err := h.Dial(ctx, udp, netip.AddrPortFrom(t.addr, 1025).String(), &host.SocketOptions{Device: device})
		if err != nil {
			if errors.Is(err, syscall.EACCES) && !t.v6 {
				return nil, fail(exitFail, "Do you want to ping broadcast? Then -b. If not, check your local firewall rules")
			}
			return nil, fail(exitFail, "connect: %s", strerror(err))
		}
		if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
			source = ua.AddrPort().Addr().Unmap()
		}
		c.Close()
	}
	bind := ""
	if strict {
		bind = source.String()
	}
	pc, err := h.ListenPacket(ctx, ping, bind, &host.SocketOptions{Device: device})
	if err != nil {
		if strict && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, fail(exitFail, "bind: %s", strerror(err))
		}
		return nil, fail(exitFail, "socket: %s", strerror(err))
	}
	opt := func(level, name, v int, what string) *usageError {
		if err := pc.SetSockOptInt(level, name, v); err != nil {
			pc.Close()
			return fail(exitFail, "%s: %s", what, strerror(err))
		}
		return nil
	}
	type so struct {
		level, name, v int
		what           string
		when           bool
	}
	sos := []so{
		{syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, o.pmtudisc, "IP_MTU_DISCOVER", o.pmtudisc >= 0 && !t.v6},
		{syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER, o.pmtudisc, "IPV6_MTU_DISCOVER", o.pmtudisc >= 0 && t.v6},
		{lvl, syscall.IP_RECVERR, 1, "IP_RECVERR", !t.v6},
		{lvl, syscall.IPV6_RECVERR, 1, "IPV6_RECVERR", t.v6},
		{lvl, syscall.IP_RECVTTL, 1, "IP_RECVTTL", !t.v6},
		{lvl, syscall.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT", t.v6},
		{lvl, syscall.IP_TTL, o.ttl, "cannot set unicast time-to-live", o.optTTL && !t.v6},
		{lvl, syscall.IP_MULTICAST_TTL, o.ttl, "cannot set multicast time-to-live", o.optTTL && !t.v6},
		{lvl, syscall.IPV6_UNICAST_HOPS, o.ttl, "cannot set unicast hop limit", o.optTTL && t.v6},
		{lvl, syscall.IPV6_MULTICAST_HOPS, o.ttl, "cannot set multicast hop limit", o.optTTL && t.v6},
	}
	for _, s := range sos {
		if !s.when {
			continue
		}
		if e := opt(s.level, s.name, s.v, s.what); e != nil {
			return nil, e
		}
	}
	p := &pinger{
		conn: pc, env: env, o: o, now: cfg.Now, t: t,
		events: make(chan event, 64), done: make(chan struct{}),
	}
	if device != "" || strict {
		p.fromText, p.devText = source.String(), device
	}
	return p, nil
}
