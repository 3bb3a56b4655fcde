// Package route is the net-tools route(8) applet: it lists the IPv4 and
// IPv6 routing tables and adds and deletes routes through a host.Host
// (../shared/compat/route.md).
package route

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// Exit statuses of net-tools route.
const (
	exitOK      = 0
	exitOpen    = 1
	exitUsage   = 3 // E_USAGE
	exitLookup  = 6 // E_LOOKUP
	exitSocket  = 7 // E_SOCK: the kernel refused the ioctl
	exitVersion = 0
)

const usageText = `Usage: route [-nNvee] [-FC] [<AF>]           List kernel routing tables
       route [-v] [-FC] {add|del|flush} ...  Modify routing table for AF.

       route {-h|--help} [<AF>]              Detailed usage syntax for specified AF.
       route {-V|--version}                  Display version/author and exit.

        -v, --verbose            be verbose
        -n, --numeric            don't resolve names
        -e, --extend             display other/more information
        -F, --fib                display Forwarding Information Base (default)
        -C, --cache              display routing cache instead of FIB

  <AF>=Use -4, -6, '-A <af>' or '--<af>'; default: inet
  List of possible address families (which support routing):
    inet (DARPA Internet) inet6 (IPv6)
`

const inetUsage = `Usage: inet_route [-vF] del {-host|-net} Target[/prefix] [gw Gw] [metric M] [[dev] If]
       inet_route [-vF] add {-host|-net} Target[/prefix] [gw Gw] [metric M]
                              [netmask N] [mss Mss] [window W] [irtt I]
                              [mod] [dyn] [reinstate] [[dev] If]
       inet_route [-vF] add {-host|-net} Target[/prefix] [metric M] reject
       inet_route [-FC] flush      NOT supported
`

const inet6Usage = `Usage: inet6_route [-vF] del Target
       inet6_route [-vF] add Target [gw Gw] [metric M] [[dev] If]
       inet6_route [-FC] flush      NOT supported
`

// shortLetters are the single-letter options route knows, to name the
// offending letter of a combined word such as -nZ.
const shortLetters = "nNveFCh6V4A"

// Applet returns the route applet running on the host open gives.
func Applet(open host.Opener) *applet.Applet {
	return &applet.Applet{
		Name:    "route",
		Summary: "show or change the IP routing table (net-tools route)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, env, args)
		},
	}
}

type options struct {
	numeric bool
	extend  int
	inet6   bool
	cache   bool
	link    string
	args    []string
}

func run(ctx context.Context, open host.Opener, env *applet.Env, args []string) int {
	var extend int
	var o options
	badOption := ""
	ran := false
	version := false
	// urfave answers --help itself even with HideHelp, so route's own
	// -h/--help is picked out before it parses.
	for _, a := range args[1:] {
		if a == "-h" || a == "--help" {
			io.WriteString(env.Stdout, usageText)
			return exitOK
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
	}
	app := applet.NewCLI(env, "route", "show or change the IP routing table")
	app.HideHelp = true
	app.Flags = []cli.Flag{
		applet.LinkFlag,
		&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}},
		&cli.BoolFlag{Name: "N"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}},
		&cli.BoolFlag{Name: "extend", Aliases: []string{"e"}, Count: &extend},
		&cli.BoolFlag{Name: "fib", Aliases: []string{"F"}},
		&cli.BoolFlag{Name: "cache", Aliases: []string{"C"}},
		&cli.BoolFlag{Name: "version", Aliases: []string{"V"}},
		&cli.BoolFlag{Name: "6", Aliases: []string{"inet6"}},
		&cli.BoolFlag{Name: "4", Aliases: []string{"inet"}},
		&cli.StringFlag{Name: "A"},
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		badOption = optionError(err.Error(), args)
		return err
	}
	var af string
	app.Action = func(c *cli.Context) error {
		ran = true
		o.numeric = c.Bool("numeric")
		o.inet6 = c.Bool("6")
		o.cache = c.Bool("cache")
		o.link = c.String("link")
		o.args = c.Args().Slice()
		version = c.Bool("version")
		af = c.String("A")
		return nil
	}
	err := app.RunContext(ctx, args)
	if !ran {
		if badOption != "" {
			fmt.Fprintf(env.Stderr, "route: %s\n", badOption)
		} else if err != nil {
			fmt.Fprintf(env.Stderr, "route: %v\n", err)
		}
		io.WriteString(env.Stderr, usageText)
		// net-tools exits 0 here (compat: "unknown option … exit 0 (sic)").
		return exitOK
	}
	o.extend = extend
	if version {
		fmt.Fprintln(env.Stdout, "net-tools 2.10")
		return exitVersion
	}
	switch af {
	case "":
	case "inet":
		o.inet6 = false
	case "inet6":
		o.inet6 = true
	default:
		fmt.Fprintf(env.Stderr, "route: %s: address family not supported\n", af)
		return exitUsage
	}
	if len(o.args) > 0 && o.args[0] != "add" && o.args[0] != "del" {
		io.WriteString(env.Stderr, usageText)
		return exitUsage
	}

	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "route: %v\n", err)
		return exitOpen
	}
	defer h.Close()

	if len(o.args) == 0 {
		return list(ctx, env, h, o)
	}
	return modify(ctx, env, h, o)
}

// optionError turns urfave's "flag provided but not defined: -nZ" and
// "flag needs an argument: -i" into getopt's messages: the first letter
// of a combined word that is not a known option, or a whole long option
// (urfave names --frob as -frob, so args tells which was given).
func optionError(msg string, args []string) string {
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: ")
	if !ok {
		if n, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
			return "option requires an argument -- '" + strings.TrimLeft(n, "-") + "'"
		}
		return ""
	}
	name = strings.TrimPrefix(name, "-")
	for _, a := range args {
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return "unrecognized option '" + a + "'"
		}
	}
	bad := name
	for _, r := range name {
		if !strings.ContainsRune(shortLetters, r) {
			bad = string(r)
			break
		}
	}
	return "invalid option -- '" + bad + "'"
}

func list(ctx context.Context, env *applet.Env, h host.Host, o options) int {
	routes, err := h.Routes(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "route: %v\n", err)
		return exitOpen
	}
	if o.cache {
		// Linux has had no IPv4 routing cache since 3.6; net-tools prints
		// the header of an empty cache table.
		if o.inet6 {
			io.WriteString(env.Stdout, "Kernel IPv6 routing cache\n"+ipv6Header)
		} else {
			io.WriteString(env.Stdout, "Kernel IP routing cache\nSource          Destination     Gateway         Flags Metric Ref    Use Iface\n")
		}
		return exitOK
	}
	if o.inet6 {
		io.WriteString(env.Stdout, FormatIPv6(routes, o.numeric))
	} else {
		io.WriteString(env.Stdout, FormatIPv4(routes, o.numeric, o.extend))
	}
	return exitOK
}

// strerror is the C library's text for an errno: Go's with a capital.
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
