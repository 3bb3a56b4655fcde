// Package netstat is the netstat applet: net-tools 2.10 netstat over a
// host.Host — the socket table (-t -u -w, -l -a, -n, -p, -e, -o, -W),
// the routing table (-r), the interface table (-i, -ie) and protocol
// statistics (-s), with net-tools' layouts, address truncation and exit
// codes (../shared/compat/netstat.md).
//
// Host and port names without -n come from /etc/hosts and /etc/services
// when those files exist (the host has no resolver; without the files
// the numbers are printed). The stack has no unix sockets: -x says so as
// net-tools does when built without AF_UNIX.
package netstat

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// Exit statuses of net-tools (lib/net-support.h).
const (
	exitOK     = 0
	exitNoSupp = 1 // E_NOSUPP, and any failure to read the tables
	exitOptErr = 3 // E_OPTERR: bad usage
)

const usageText = `usage: netstat [-vWeenNcCF] [<Af>] -r         netstat {-V|--version|-h|--help}
       netstat [-vWnNcaeol] [<Socket> ...]
       netstat { [-vWeenNac] -i | [-cnNe] -M | -s [-6tuw] }

        -r, --route              display routing table
        -i, --interfaces         display interface table
        -g, --groups             display multicast group memberships
        -s, --statistics         display networking statistics (like SNMP)
        -M, --masquerade         display masqueraded connections

        -v, --verbose            be verbose
        -W, --wide               don't truncate IP addresses
        -n, --numeric            don't resolve names
        --numeric-hosts          don't resolve host names
        --numeric-ports          don't resolve port names
        --numeric-users          don't resolve user names
        -N, --symbolic           resolve hardware names
        -e, --extend             display other/more information
        -p, --programs           display PID/Program name for sockets
        -o, --timers             display timers
        -c, --continuous         continuous listing

        -l, --listening          display listening server sockets
        -a, --all                display all sockets (default: connected)
        -F, --fib                display Forwarding Information Base (default)
        -C, --cache              display routing cache instead of FIB
        -Z, --context            display SELinux security context for sockets

  <Socket>={-t|--tcp} {-u|--udp} {-w|--raw} {-x|--unix}
  <AF>=Use '-6|-4' or '-A <af>' or '--<af>'; default: inet
  List of possible address families (which support routing):
    inet (DARPA Internet) inet6 (IPv6) 
`

// Applet returns the netstat applet; open gives it the host it reports
// on.
func Applet(open host.Opener) *applet.Applet {
	return &applet.Applet{
		Name:    "netstat",
		Summary: "print network connections, routing tables, interface statistics and protocol counters",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, env, open, args)
		},
	}
}

// options are the parsed command line.
type options struct {
	tcp, udp, raw, unix                 bool
	listening, all                      bool
	numeric, numHosts, numPorts, numUse bool
	programs, timers, wide              bool
	extend                              int
	continuous                          bool
	interval                            time.Duration
	route, ifaces, stats                bool
	groups, masq, context, cache        bool
	inet, inet6                         bool
	family                              string
	version                             bool
	link                                string
}

func boolFlag(name, short string, dest *bool) *cli.BoolFlag {
	f := &cli.BoolFlag{Name: name, Destination: dest}
	if short != "" {
		if name == "" {
			f.Name = short
		} else {
			f.Aliases = []string{short}
		}
	}
	return f
}

func (o *options) flags() []cli.Flag {
	return []cli.Flag{
		applet.LinkFlag,
		boolFlag("tcp", "t", &o.tcp), boolFlag("udp", "u", &o.udp),
		boolFlag("raw", "w", &o.raw), boolFlag("unix", "x", &o.unix),
		boolFlag("listening", "l", &o.listening), boolFlag("all", "a", &o.all),
		boolFlag("numeric", "n", &o.numeric),
		boolFlag("numeric-hosts", "", &o.numHosts), boolFlag("numeric-ports", "", &o.numPorts),
		boolFlag("numeric-users", "", &o.numUse),
		boolFlag("programs", "p", &o.programs), boolFlag("timers", "o", &o.timers),
		boolFlag("wide", "W", &o.wide),
		&cli.BoolFlag{Name: "extend", Aliases: []string{"e"}, Count: &o.extend},
		boolFlag("continuous", "c", &o.continuous),
		boolFlag("route", "r", &o.route), boolFlag("interfaces", "i", &o.ifaces),
		boolFlag("statistics", "s", &o.stats),
		boolFlag("groups", "g", &o.groups), boolFlag("masquerade", "M", &o.masq),
		boolFlag("context", "Z", &o.context), boolFlag("cache", "C", &o.cache),
		boolFlag("fib", "F", new(bool)), boolFlag("verbose", "v", new(bool)),
		boolFlag("symbolic", "N", new(bool)),
		boolFlag("inet", "4", &o.inet), boolFlag("inet6", "6", &o.inet6),
		&cli.StringFlag{Name: "protocol", Aliases: []string{"A"}, Destination: &o.family},
		boolFlag("version", "V", &o.version),
		// -h and --help are left undefined: urfave/cli shows its own help
		// for any flag of that name, so they are found in the parse
		// error (badOption).
	}
}

// badOption turns urfave/flag's parse error into getopt's words; help
// says the option was -h or --help.
func badOption(err error, fl []cli.Flag, args []string) (msg string, help bool) {
	if errors.Is(err, flag.ErrHelp) {
		return "", true
	}
	msg = err.Error()
	short := map[string]bool{}
	for _, f := range fl {
		for _, n := range f.Names() {
			if len(n) == 1 {
				short[n] = true
			}
		}
	}
	long := func(name string) bool {
		for _, a := range args {
			if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
				return true
			}
		}
		return false
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if long(name) {
			if name == "help" {
				return "", true
			}
			return fmt.Sprintf("netstat: unrecognized option '--%s'", name), false
		}
		for _, c := range name {
			if !short[string(c)] {
				if c == 'h' {
					return "", true
				}
				return fmt.Sprintf("netstat: invalid option -- '%c'", c), false
			}
		}
		return fmt.Sprintf("netstat: invalid option -- '%s'", name), false
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		if long(name) {
			return fmt.Sprintf("netstat: option '--%s' requires an argument", name), false
		}
		return fmt.Sprintf("netstat: option requires an argument -- '%s'", name), false
	}
	return "netstat: " + msg, false
}

func run(ctx context.Context, env *applet.Env, open host.Opener, args []string) int {
	var o options
	app := applet.NewCLI(env, "netstat", "print network connections")
	app.HideHelp = true
	app.Flags = o.flags()
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return err }
	var rest []string
	app.Action = func(c *cli.Context) error {
		o.link = c.String("link")
		rest = c.Args().Slice()
		return nil
	}
	if err := app.Run(args); err != nil {
		msg, help := badOption(err, app.Flags, args[1:])
		if help {
			// net-tools 2.10: usage on stdout, status 0.
			io.WriteString(env.Stdout, usageText)
			return exitOK
		}
		fmt.Fprintln(env.Stderr, msg)
		io.WriteString(env.Stderr, usageText)
		return exitOptErr
	}
	// urfave/cli counts from -len(aliases) when the flag is absent.
	o.extend = max(o.extend, 0)
	if o.version {
		fmt.Fprintln(env.Stdout, "netstat (stackbox), compatible with net-tools 2.10")
		return exitOK
	}
	o.interval = time.Second
	switch len(rest) {
	case 0:
	case 1:
		// netstat DELAY: continuous, every DELAY seconds.
		n, err := strconv.Atoi(rest[0])
		if err != nil || n <= 0 {
			io.WriteString(env.Stderr, usageText)
			return exitOptErr
		}
		o.continuous, o.interval = true, time.Duration(n)*time.Second
	default:
		io.WriteString(env.Stderr, usageText)
		return exitOptErr
	}
	if o.family != "" {
		for _, af := range strings.Split(o.family, ",") {
			switch af {
			case "inet":
				o.inet = true
			case "inet6":
				o.inet6 = true
			case "unix":
				o.unix = true
			default:
				fmt.Fprintf(env.Stderr, "Unknown address family `%s'.\n", af)
				return exitNoSupp
			}
		}
	}
	if o.numeric {
		o.numHosts, o.numPorts, o.numUse = true, true, true
	}
	if o.context {
		fmt.Fprintln(env.Stderr, "SELinux is not enabled on this machine.")
		return exitNoSupp
	}
	n := 0
	for _, b := range []bool{o.ifaces, o.route, o.masq, o.stats} {
		if b {
			n++
		}
	}
	if n > 1 {
		io.WriteString(env.Stderr, usageText)
		return exitOptErr
	}
	if o.masq {
		fmt.Fprintln(env.Stderr, "netstat: no support for `ip_masquerade' on this system.")
		return exitNoSupp
	}
	if o.groups {
		fmt.Fprintln(env.Stderr, "netstat: no support for `multicast group memberships' on this system.")
		return exitNoSupp
	}
	if o.route && o.cache {
		fmt.Fprintln(env.Stderr, "netstat: no support for `routing cache' on this system.")
		return exitNoSupp
	}

	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "netstat: %v\n", err)
		return exitNoSupp
	}
	defer h.Close()

	f := &Format{
		NumHosts: o.numHosts, NumPorts: o.numPorts, NumUsers: o.numUse,
		Wide: o.wide, Programs: o.programs, Extend: o.extend, Timers: o.timers,
	}
	if !o.numHosts || !o.numPorts || !o.numUse {
		f.Names = loadNames()
	}

	var once func() int
	switch {
	case o.stats:
		// net-tools prints the statistics once, -c or not.
		return statsOnce(ctx, env, h, &o)
	case o.route:
		once = func() int { return routesOnce(ctx, env, h, f, &o) }
	case o.ifaces:
		once = func() int { return ifacesOnce(ctx, env, h, f, &o) }
	default:
		once = func() int { return socketsOnce(ctx, env, h, f, &o) }
	}
	for {
		if rc := once(); rc != exitOK || !o.continuous {
			return rc
		}
		t := time.NewTimer(o.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return exitOK
		case <-t.C:
		}
	}
}

// fail prints a host error as one line.
func fail(env *applet.Env, what string, err error) int {
	if errors.Is(err, context.Canceled) {
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "netstat: %s: %v\n", what, err)
	return exitNoSupp
}

func socketsOnce(ctx context.Context, env *applet.Env, h host.Host, f *Format, o *options) int {
	tcp, udp, raw, unix := o.tcp, o.udp, o.raw, o.unix
	inet, inet6 := o.inet, o.inet6
	if (inet || inet6) && !(tcp || udp || raw) {
		tcp, udp, raw = true, true, true
	}
	if (tcp || udp || raw) && !(inet || inet6) {
		inet, inet6 = true, true
	}
	explicit := tcp || udp || raw || unix
	if !explicit {
		tcp, udp, raw, inet, inet6 = true, true, true, true, true
	}
	rc := exitOK
	if tcp || udp || raw {
		socks, err := h.Sockets(ctx)
		if err != nil {
			return fail(env, "sockets", err)
		}
		sel := Selection{TCP: tcp, UDP: udp, Raw: raw, Inet: inet, Inet6: inet6, Listening: o.listening, All: o.all}
		var b strings.Builder
		b.WriteString(SocketTitle(o.listening, o.all) + "\n")
		b.WriteString(f.SocketHeader() + "\n")
		for _, s := range sel.Select(socks) {
			b.WriteString(f.SocketRow(s) + "\n")
		}
		io.WriteString(env.Stdout, b.String())
	}
	if unix && explicit {
		fmt.Fprintln(env.Stderr, "netstat: no support for `AF UNIX' on this system.")
		rc = exitNoSupp
	}
	return rc
}

func routesOnce(ctx context.Context, env *applet.Env, h host.Host, f *Format, o *options) int {
	rs, err := h.Routes(ctx)
	if err != nil {
		return fail(env, "routes", err)
	}
	v4, v6 := o.inet || !o.inet6, o.inet6
	var b strings.Builder
	if v4 {
		b.WriteString(RouteTitle4 + "\n" + RouteHeader4(o.extend) + "\n")
		for _, r := range rs {
			if r.Dst.Addr().Is4() {
				b.WriteString(f.RouteRow4(r, o.extend) + "\n")
			}
		}
	}
	if v6 {
		b.WriteString(RouteTitle6 + "\n" + RouteHeader6 + "\n")
		for _, r := range rs {
			if r.Dst.Addr().Is6() {
				b.WriteString(f.RouteRow6(r) + "\n")
			}
		}
	}
	io.WriteString(env.Stdout, b.String())
	return exitOK
}

func ifacesOnce(ctx context.Context, env *applet.Env, h host.Host, f *Format, o *options) int {
	its, err := h.Interfaces(ctx)
	if err != nil {
		return fail(env, "interfaces", err)
	}
	var b strings.Builder
	b.WriteString("Kernel Interface table\n")
	if o.extend <= 0 {
		b.WriteString(IfaceHeader + "\n")
	}
	for _, it := range its {
		if it.Flags&host.FlagUp == 0 && !o.all {
			continue
		}
		if o.extend > 0 {
			b.WriteString(IfaceBlock(it))
		} else {
			b.WriteString(IfaceRow(it) + "\n")
		}
	}
	io.WriteString(env.Stdout, b.String())
	return exitOK
}

func statsOnce(ctx context.Context, env *applet.Env, h host.Host, o *options) int {
	secs, err := h.Counters(ctx)
	if err != nil {
		return fail(env, "statistics", err)
	}
	sf := StatsFilter{Raw: o.raw, TCP: o.tcp, UDP: o.udp, Inet6: o.inet6 && !o.inet}
	if !sf.Raw && !sf.TCP && !sf.UDP {
		sf.Raw, sf.TCP, sf.UDP = true, true, true
	}
	io.WriteString(env.Stdout, Statistics(secs, sf))
	return exitOK
}

// loadNames gives the names netstat prints without -n; tests replace it.
var loadNames = systemNames

// systemNames reads /etc/hosts and /etc/services, where they exist, and
// looks users up in the password database.
func systemNames() *Names {
	n := &Names{User: func(uid uint32) (string, bool) {
		u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
		if err != nil {
			return "", false
		}
		return u.Username, true
	}}
	if b, err := os.ReadFile("/etc/hosts"); err == nil {
		n.Hosts = ParseHosts(string(b))
	}
	if b, err := os.ReadFile("/etc/services"); err == nil {
		n.Services = ParseServices(string(b))
	}
	return n
}
