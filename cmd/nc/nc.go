// Package nc is the OpenBSD netcat applet (Debian's netcat-openbsd
// 1.219, ../shared/compat/nc.md) over a host.Host: TCP and UDP connect
// and listen modes streaming stdin to the socket and the socket to
// stdout, -z port scans, and netcat's -v messages, errors and exit
// statuses.
//
// What it owns: the command line (getopt-style messages, usage), the port
// list grammar and a small services table (ports.go), the connect, scan
// and listen modes (this file) and the copy loop with OpenBSD's
// half-close rules (copy.go). Names are resolved by a pluggable Resolver;
// without one only IP literals work, as with getaddrinfo and no DNS.
// Locks: udpPeer.mu (a UDP listener's current peer) is a leaf; otherwise
// a run's goroutines share only channels.
package nc

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

	"github.com/urfave/cli/v2"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/services"
)

const usageText = `usage: nc [-46CDdFhklNnrStUuvZz] [-I length] [-i interval] [-M ttl]
	  [-m minttl] [-O length] [-P proxy_username] [-p source_port]
	  [-q seconds] [-s sourceaddr] [-T keyword] [-V rtable] [-W recvlimit]
	  [-w timeout] [-X proxy_protocol] [-x proxy_address[:port]]
	  [destination] [port]
`

const helpText = `	Command Summary:
		-4		Use IPv4
		-6		Use IPv6
		-d		Detach from stdin
		-h		This help text
		-k		Keep inbound sockets open for multiple connects
		-l		Listen mode, for inbound connects
		-N		Shutdown the network socket after EOF on stdin
		-n		Suppress name/port resolutions
		-p port		Specify local port for remote connects
		-q secs		quit after EOF on stdin and delay of secs
		-s sourceaddr	Local source address
		-u		UDP mode
		-v		Verbose
		-w timeout	Timeout for connects and final net reads
		-z		Zero-I/O mode [used for scanning]
	Port numbers can be individual or ranges: lo-hi [inclusive]
`

// unsupported are netcat's other option letters: accepted by its getopt,
// refused here with a message rather than ignored.
const unsupported = "bCDFIiMmOPrSTtUVWXxZ"

// Resolver is getaddrinfo for nc: the addresses of name, in the order
// to try them. Errors print as getaddrinfo's ("Name or service not
// known"), so a resolver returns those texts.
// h is the host nc runs on (the queries go through it), getenv the
// applet's environment.
type Resolver func(ctx context.Context, h host.Host, getenv func(string) string, name string) ([]netip.Addr, error)

// ReverseResolver is getnameinfo for -v's listener lines without -n.
type ReverseResolver func(ctx context.Context, h host.Host, getenv func(string) string, addr netip.Addr) (string, error)

// Config holds what the embedding program may plug in; the zero value is
// nc with IP literals only and numeric listener lines.
type Config struct {
	Resolve Resolver        // nil: a name is "Name or service not known"
	Reverse ReverseResolver // nil: addresses print numerically
}

// Applet returns nc on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	return &applet.Applet{
		Name:    "nc",
		Summary: "TCP/UDP connect, listen and port scan (OpenBSD netcat)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

type options struct {
	ipv4, ipv6, noStdin, keep, listen, shutdown, numeric bool
	udp, verbose, zero                                   bool
	wait, quit                                           time.Duration // wait 0: none; quit <0: never
	source, sport, link                                  string
	args                                                 []string
}

// failure is nc's err()/errx(): a message and exit status 1.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func fail(format string, a ...any) *failure { return &failure{fmt.Sprintf(format, a...)} }

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	// -h and the letters we do not implement are found before urfave
	// parses (it would answer -h itself), walking getopt's clusters: a
	// letter taking an argument ends its cluster and may take the next word.
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || a == "-" {
			continue
		}
		for j, r := range a[1:] {
			if strings.ContainsRune("wqsp", r) {
				if j == len(a)-2 {
					i++
				}
				break
			}
			if r == 'h' {
				fmt.Fprint(env.Stderr, "OpenBSD netcat (Debian patchlevel 1.219-1)\n"+usageText+helpText)
				return 0
			}
			if strings.ContainsRune(unsupported, r) {
				fmt.Fprintf(env.Stderr, "nc: option -%c is not supported by this nc\n", r)
				return 1
			}
		}
	}
	o, err := parse(ctx, env, permute(args))
	if err != nil {
		if err.Error() != "" {
			fmt.Fprintf(env.Stderr, "nc: %v\n", err)
		}
		return 1
	}
	n := &nc{cfg: cfg, env: env, o: o}
	if err := n.check(); err != nil {
		if err.Error() != "" {
			fmt.Fprintf(env.Stderr, "nc: %v\n", err)
		}
		return 1
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "nc: %v\n", err)
		return 1
	}
	defer h.Close()
	n.h = h
	status, err := n.main(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "nc: %v\n", err)
	}
	return status
}

// usageError prints the usage; its empty message keeps run from
// printing another line.
type usageError struct{}

func (usageError) Error() string { return "" }

func parse(ctx context.Context, env *applet.Env, args []string) (*options, error) {
	o := &options{quit: -1}
	ran := false
	badOption := ""
	app := applet.NewCLI(env, "nc", "arbitrary TCP and UDP connections and listens")
	app.HideHelp = true
	bools := map[string]*bool{"4": &o.ipv4, "6": &o.ipv6, "d": &o.noStdin, "k": &o.keep, "l": &o.listen,
		"N": &o.shutdown, "n": &o.numeric, "u": &o.udp, "v": &o.verbose, "z": &o.zero}
	app.Flags = []cli.Flag{applet.LinkFlag}
	for name, dst := range bools {
		app.Flags = append(app.Flags, &cli.BoolFlag{Name: name, Destination: dst})
	}
	var wait, quit string
	app.Flags = append(app.Flags,
		&cli.StringFlag{Name: "w", Destination: &wait},
		&cli.StringFlag{Name: "q", Destination: &quit},
		&cli.StringFlag{Name: "s", Destination: &o.source},
		&cli.StringFlag{Name: "p", Destination: &o.sport})
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		badOption = optionError(err.Error())
		return err
	}
	app.Action = func(c *cli.Context) error {
		ran = true
		o.link = c.String("link")
		o.args = c.Args().Slice()
		return nil
	}
	err := app.RunContext(ctx, args)
	if !ran {
		if badOption == "" && err != nil {
			badOption = err.Error()
		}
		fmt.Fprintf(env.Stderr, "nc: %s\n", badOption)
		fmt.Fprint(env.Stderr, usageText)
		return nil, usageError{}
	}
	if o.ipv4 && o.ipv6 {
		// The later of -4 and -6 wins, as netcat sets one family.
		o.ipv4 = lastFamilyLetter(args) == '4'
		o.ipv6 = !o.ipv4
	}
	if wait != "" {
		s, ok := seconds(wait)
		if !ok {
			return nil, fail("timeout invalid: %s", wait)
		}
		o.wait = time.Duration(s) * time.Second
	}
	if quit != "" {
		s, err := strconv.Atoi(quit)
		if err != nil {
			return nil, fail("quit timer invalid: %s", quit)
		}
		if s >= 0 {
			o.quit = time.Duration(s) * time.Second
		}
	}
	return o, nil
}

// permute moves options before operands as glibc's getopt does, so
// `nc host port -v` works as with netcat; "--" ends the options.
func permute(args []string) []string {
	opts := []string{args[0]}
	var operands []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(append(opts, "--"), append(operands, args[i+1:]...)...)
		case a == "-" || !strings.HasPrefix(a, "-"):
			operands = append(operands, a)
		case a == "--link":
			opts = append(opts, args[i:min(i+2, len(args))]...)
			i++
		case strings.HasPrefix(a, "--"):
			opts = append(opts, a)
		default:
			opts = append(opts, a)
			// A cluster ending in a letter that takes an argument takes
			// the next word.
			if strings.ContainsRune("wqsp", rune(a[len(a)-1])) && !strings.ContainsAny(a[1:len(a)-1], "wqsp") {
				if i+1 == len(args) {
					// No argument: the parser says so; the operands do
					// not matter any more.
					return opts
				}
				opts = append(opts, args[i+1])
				i++
			}
		}
	}
	if len(operands) > 0 {
		opts = append(opts, "--")
	}
	return append(opts, operands...)
}

// lastFamilyLetter is the last of '4' and '6' among the option letters
// of (permuted) args.
func lastFamilyLetter(args []string) rune {
	last := rune(0)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		if strings.HasPrefix(a, "--") {
			if a == "--link" {
				i++
			}
			continue
		}
		for j, r := range a[1:] {
			if strings.ContainsRune("wqsp", r) {
				if j == len(a)-2 {
					i++
				}
				break
			}
			if r == '4' || r == '6' {
				last = r
			}
		}
	}
	return last
}

// seconds is strtonum(s, 0, INT_MAX/1000): the -w range.
func seconds(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= math.MaxInt32/1000
}

// optionError turns urfave's messages into getopt's.
func optionError(msg string) string {
	if n, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "option requires an argument -- '" + strings.TrimLeft(n, "-") + "'"
	}
	if n, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		n = strings.TrimLeft(n, "-")
		for _, r := range n {
			if !strings.ContainsRune("46dklNnuvzwqsp", r) {
				return "invalid option -- '" + string(r) + "'"
			}
		}
		return "invalid option -- '" + n + "'"
	}
	return msg
}

// nc is one run.
type nc struct {
	cfg   Config
	env   *applet.Env
	o     *options
	h     host.Host
	host  string // destination or listen address as given
	ports []uint16
	proto string // "tcp" or "udp"
}

// check applies netcat's "cruft to make sure options are clean" before
// the host is opened.
func (n *nc) check() error {
	o := n.o
	n.proto = "tcp"
	if o.udp {
		n.proto = "udp"
	}
	var portArgs []string
	switch {
	case len(o.args) == 0 && o.listen:
		if o.source != "" {
			return fail("cannot use -s and -l")
		}
		if o.zero {
			return fail("cannot use -z and -l")
		}
		if o.sport == "" {
			return fail("missing port number")
		}
		portArgs = []string{o.sport}
	case len(o.args) == 1 && o.listen:
		if o.sport != "" || o.source != "" {
			n.usage()
			return usageError{}
		}
		portArgs = o.args
	case len(o.args) == 2 && o.listen:
		if o.sport != "" || o.source != "" {
			n.usage()
			return usageError{}
		}
		n.host, portArgs = o.args[0], o.args[1:]
	case len(o.args) >= 2 && !o.listen:
		n.host, portArgs = o.args[0], o.args[1:]
	case len(o.args) == 1 && !o.listen:
		return fail("missing port number")
	default:
		n.usage()
		return usageError{}
	}
	if o.listen && o.zero {
		return fail("cannot use -z and -l")
	}
	if o.keep && !o.listen {
		return fail("must use -l with -k")
	}
	ports, err := parsePorts(portArgs, n.proto)
	if err != nil {
		return err
	}
	n.ports = ports
	return nil
}

func (n *nc) usage() { fmt.Fprint(n.env.Stderr, usageText) }

// family is the address family -4/-6 ask for (0: either).
func (n *nc) family() int {
	switch {
	case n.o.ipv4:
		return syscall.AF_INET
	case n.o.ipv6:
		return syscall.AF_INET6
	}
	return 0
}

func familyOK(a netip.Addr, family int) bool {
	switch family {
	case syscall.AF_INET:
		return a.Is4()
	case syscall.AF_INET6:
		return a.Is6()
	}
	return true
}

// resolve is getaddrinfo(host, port): IP literals, then the resolver.
func (n *nc) resolve(ctx context.Context, name string, port string) ([]netip.Addr, error) {
	gai := func(msg string) error { return fail("getaddrinfo for host %q port %s: %s", name, port, msg) }
	if a, err := netip.ParseAddr(name); err == nil && a.Zone() == "" {
		if !familyOK(a.Unmap(), n.family()) {
			return nil, gai("Address family for hostname not supported")
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	if n.cfg.Resolve == nil || n.o.numeric {
		return nil, gai("Name or service not known")
	}
	addrs, err := n.cfg.Resolve(ctx, n.h, n.env.Getenv, name)
	if err != nil {
		return nil, gai(err.Error())
	}
	var out []netip.Addr
	for _, a := range addrs {
		if familyOK(a.Unmap(), n.family()) {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, gai("Address family for hostname not supported")
	}
	return out, nil
}

// stderrf is a -v line.
func (n *nc) stderrf(format string, a ...any) { fmt.Fprintf(n.env.Stderr, format, a...) }

func (n *nc) main(ctx context.Context) (int, error) {
	if n.o.listen {
		return n.listenMode(ctx)
	}
	return n.connectMode(ctx)
}

// local is the -s/-p source to bind before connecting.
func (n *nc) local() (netip.AddrPort, error) {
	var port uint16
	if n.o.sport != "" {
		p, err := strconv.ParseUint(n.o.sport, 10, 16)
		if err != nil {
			if sp, ok := services.Port(n.o.sport, n.proto); ok {
				p = uint64(sp)
			} else {
				return netip.AddrPort{}, fail("getaddrinfo: Servname not supported for ai_socktype")
			}
		}
		port = uint16(p)
	}
	var a netip.Addr
	if n.o.source != "" {
		var err error
		if a, err = netip.ParseAddr(n.o.source); err != nil || a.Zone() != "" {
			return netip.AddrPort{}, fail("getaddrinfo: Name or service not known")
		}
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, port), nil
}

// strerror is the C library's text for an errno: Go's with a capital.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT) || (errors.As(err, &ne) && ne.Timeout())
}

// connectMode is netcat's client loop: every port of the list in turn,
// every address of the host in turn until one connects.
func (n *nc) connectMode(ctx context.Context) (int, error) {
	local, err := n.local()
	if err != nil {
		return 1, err
	}
	bound := local.Addr().IsValid() || local.Port() != 0 // -s or -p: errors of bind are fatal
	status := 1
	for _, port := range n.ports {
		portStr := strconv.Itoa(int(port))
		addrs, err := n.resolve(ctx, n.host, portStr)
		if err != nil {
			return 1, err
		}
		for _, a := range addrs {
			if ctx.Err() != nil {
				return 130, nil
			}
			name := n.host
			if name != a.String() {
				name = fmt.Sprintf("%s (%s)", n.host, a)
			}
			c, err := n.dial(ctx, a, port, local)
			if err != nil && ctx.Err() != nil {
				return 130, nil
			}
			if err != nil {
				switch {
				case bound && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)):
					return 1, fail("bind failed: %s", strerror(err))
				case !n.o.verbose:
					// netcat warns about a failed connect only with -v.
				case isTimeout(err):
					n.stderrf("nc: connect to %s port %d (%s) timed out: Operation now in progress\n", name, port, n.proto)
				default:
					n.stderrf("nc: connect to %s port %d (%s) failed: %s\n", name, port, n.proto, strerror(err))
				}
				continue
			}
			if n.o.verbose || n.o.zero {
				if n.proto == "udp" && udptest(c) != nil {
					c.Close()
					continue
				}
				if n.o.verbose {
					svc := "*"
					if !n.o.numeric {
						if s := services.Name(port, n.proto); s != "" {
							svc = s
						}
					}
					n.stderrf("Connection to %s %d port [%s/%s] succeeded!\n", name, port, n.proto, svc)
				}
			}
			status = 0
			if !n.o.zero {
				n.copy(ctx, c, nil)
			}
			c.Close()
			if ctx.Err() != nil {
				// Interrupted (SIGINT/SIGTERM): a shell's 128+SIGINT.
				return 130, nil
			}
			break
		}
	}
	return status, nil
}

func (n *nc) dial(ctx context.Context, a netip.Addr, port uint16, local netip.AddrPort) (net.Conn, error) {
	var so *host.SocketOptions
	if local.Addr().IsValid() || local.Port() != 0 {
		l := local
		if !l.Addr().IsValid() {
			l = netip.AddrPortFrom(netip.IPv4Unspecified(), l.Port())
			if a.Is6() {
				l = netip.AddrPortFrom(netip.IPv6Unspecified(), l.Port())
			}
		}
		so = &host.SocketOptions{Local: l}
	}
	network := n.proto + "4"
	if a.Is6() {
		network = n.proto + "6"
	}
	dctx := ctx
	if n.o.wait > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, n.o.wait)
		defer cancel()
	}
	return n.h.Dial(dctx, network, netip.AddrPortFrom(a, port).String(), so)
}

// udptest is netcat's check of a "connected" UDP port: a few one-byte
// writes, which fail once an ICMP port unreachable has come back. Our
// ICMP error arrives asynchronously, so a short read between writes
// gives it the time a loopback kernel needs none of.
func udptest(c net.Conn) error {
	b := make([]byte, 1)
	for range 4 {
		if _, err := c.Write([]byte("X")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(b); err != nil && !isTimeout(err) {
			c.SetReadDeadline(time.Time{})
			return err
		}
	}
	c.SetReadDeadline(time.Time{})
	return nil
}

// listenAddr is where -l binds: the host given, else the wildcard of
// the family (IPv4 unless -6, as getaddrinfo's AI_PASSIVE order gives).
func (n *nc) listenAddr(ctx context.Context) (netip.Addr, error) {
	if n.host == "" {
		if n.o.ipv6 {
			return netip.IPv6Unspecified(), nil
		}
		return netip.IPv4Unspecified(), nil
	}
	addrs, err := n.resolve(ctx, n.host, strconv.Itoa(int(n.ports[0])))
	if err != nil {
		return netip.Addr{}, err
	}
	return addrs[0], nil
}

// hostName is an address as -v's listener lines print it.
func (n *nc) hostName(ctx context.Context, a netip.Addr) string {
	if n.o.numeric || n.cfg.Reverse == nil || a.IsUnspecified() {
		return a.String()
	}
	name, err := n.cfg.Reverse(ctx, n.h, n.env.Getenv, a)
	if err != nil || name == "" {
		return a.String()
	}
	return name
}

func (n *nc) listenMode(ctx context.Context) (int, error) {
	a, err := n.listenAddr(ctx)
	if err != nil {
		return 1, err
	}
	port := n.ports[0]
	network := n.proto + "4"
	if a.Is6() {
		network = n.proto + "6"
	}
	addr := netip.AddrPortFrom(a, port).String()
	if n.proto == "udp" {
		return n.listenUDP(ctx, network, addr, a, port)
	}
	ln, err := n.h.Listen(ctx, network, addr, nil)
	if err != nil {
		return 1, fail("%s", strerror(err))
	}
	defer ln.Close()
	// The listener closes when ctx ends so a blocked Accept returns.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	if n.o.verbose {
		n.stderrf("Listening on %s %d\n", n.hostName(ctx, a), port)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return 130, nil
			}
			return 1, fail("accept: %s", strerror(err))
		}
		if n.o.verbose {
			ra := addrPort(c.RemoteAddr())
			n.stderrf("Connection received on %s %d\n", n.hostName(ctx, ra.Addr()), ra.Port())
		}
		if !n.o.keep {
			ln.Close()
			n.copy(ctx, c, nil)
			c.Close()
			if ctx.Err() != nil {
				return 130, nil
			}
			return 0, nil
		}
		n.copy(ctx, c, nil)
		c.Close()
		if ctx.Err() != nil {
			return 130, nil
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// listenUDP binds and takes the first datagram's sender as the peer
// (netcat connects its socket to it; -k keeps answering whoever sent
// last).
func (n *nc) listenUDP(ctx context.Context, network, addr string, a netip.Addr, port uint16) (int, error) {
	pc, err := n.h.ListenPacket(ctx, network, addr, nil)
	if err != nil {
		return 1, fail("bind failed: %s", strerror(err))
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	if n.o.verbose {
		n.stderrf("Bound on %s %d\n", n.hostName(ctx, a), port)
	}
	u := &udpPeer{pc: pc, keep: n.o.keep, first: make(chan struct{})}
	u.announce = func(p netip.AddrPort) {
		if n.o.verbose {
			n.stderrf("Connection received on %s %d\n", n.hostName(ctx, p.Addr()), p.Port())
		}
	}
	n.copy(ctx, u, u.first)
	if ctx.Err() != nil {
		return 130, nil
	}
	return 0, nil
}

var _ io.ReadWriter = (*udpPeer)(nil)
