// Package ifconfig is the ifconfig applet: net-tools 2.10 ifconfig over a
// host.Host, with its output, messages and exit statuses
// (../shared/compat/ifconfig.md).
//
// The dash options (-a, -s, -v, -V, -h, --link SPEC) are parsed by
// urfave/cli, which stops at the first positional argument; the rest is
// net-tools' own grammar (`IF`, `IF ADDR netmask M up`, …), parsed by hand
// into ops (parse.go) and applied in order (apply.go). The output formats
// are pure functions in format.go.
package ifconfig

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

const summary = "configure a network interface (net-tools ifconfig)"

// Applet returns the ifconfig applet, which gets its host from open.
func Applet(open host.Opener) *applet.Applet {
	return &applet.Applet{
		Name:    "ifconfig",
		Summary: summary,
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return Main(ctx, env, open, args)
		},
	}
}

// options are the dash options.
type options struct {
	all, short, verbose, version bool
	link                         string
	args                         []string
}

// Main runs ifconfig with args (args[0] is the name it was invoked by)
// and returns its exit status.
func Main(ctx context.Context, env *applet.Env, open host.Opener, args []string) int {
	if len(args) == 0 {
		args = []string{"ifconfig"}
	}
	var o options
	app := applet.NewCLI(env, "ifconfig", summary)
	app.HideHelp = true
	app.Flags = []cli.Flag{
		applet.LinkFlag,
		&cli.BoolFlag{Name: "a", Usage: "show all interfaces, also those that are down", Destination: &o.all},
		&cli.BoolFlag{Name: "s", Usage: "short list (as netstat -i)", Destination: &o.short},
		&cli.BoolFlag{Name: "v", Usage: "verbose errors", Destination: &o.verbose},
		&cli.BoolFlag{Name: "V", Aliases: []string{"version"}, Destination: &o.version},
	}
	// urfave shows its own help for any flag named h or help, so the help
	// options are found here, in net-tools' order: the options before
	// them must be good ones.
	if helpFirst(args[1:]) {
		writeUsage(env.Stdout, env.Stderr)
		return 0
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return err }
	app.Action = func(c *cli.Context) error {
		o.link = c.String("link")
		o.args = c.Args().Slice()
		return nil
	}
	if err := app.Run(args); err != nil {
		fmt.Fprint(env.Stderr, optionError(err, args[1:]))
		return 1
	}
	if o.version {
		fmt.Fprintln(env.Stdout, "stackbox ifconfig (net-tools 2.10 compatible)")
		return 0
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ifconfig: %v\n", err)
		return 1
	}
	defer h.Close()

	switch len(o.args) {
	case 0:
		ifs, err := h.Interfaces(ctx)
		if err != nil {
			fmt.Fprintf(env.Stderr, "ifconfig: %s\n", strerror(err))
			return 1
		}
		io.WriteString(env.Stdout, FormatList(ExpandAliases(ifs), o.all, o.short))
		return 0
	case 1:
		return show(ctx, env, h, o.args[0], o.short)
	}
	ap := &applier{ctx: ctx, h: h, dev: o.args[0], stderr: env.Stderr, verbose: o.verbose}
	return ap.run(parseSet(o.args[0], o.args[1:]))
}

// helpFirst reports whether a help option (-h, --help, -help, -?) comes
// among the leading options before any option urfave would refuse.
func helpFirst(args []string) bool {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-h", "--help", "-help", "-?":
			return true
		case "-a", "-s", "-v", "-V", "--version", "-version":
		case "--link", "-link":
			i++
		default:
			if !strings.HasPrefix(a, "--link=") && !strings.HasPrefix(a, "-link=") {
				return false
			}
		}
	}
	return false
}

// optionError is net-tools' message for a bad dash option.
func optionError(err error, args []string) string {
	msg := err.Error()
	name := ""
	for _, prefix := range []string{"flag provided but not defined: ", "flag needs an argument: "} {
		if strings.HasPrefix(msg, prefix) {
			name = strings.TrimLeft(strings.TrimPrefix(msg, prefix), "-")
		}
	}
	if name == "" {
		return "ifconfig: " + msg + "\n" + helpHint
	}
	word := "-" + name
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		if strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-") == name {
			word = a
			break
		}
	}
	if strings.HasPrefix(msg, "flag needs an argument") {
		return "ifconfig: option `" + word + "' requires an argument.\n" + helpHint
	}
	return "ifconfig: option `" + word + "' not recognised.\n" + helpHint
}

// show prints one interface, also a down one. An alias the host does not
// list is shown as Linux does for a name with a colon: the device's flags
// and link, and no address.
func show(ctx context.Context, env *applet.Env, h host.Host, name string, short bool) int {
	ife, err := lookup(ctx, h, name)
	if err != nil {
		msg := strerror(err)
		if errors.Is(err, syscall.ENODEV) {
			msg = "Device not found"
		}
		fmt.Fprintf(env.Stderr, "%s: error fetching interface information: %s\n", name, msg)
		return 1
	}
	if short {
		io.WriteString(env.Stdout, ShortHeader+FormatShort(ife))
	} else {
		io.WriteString(env.Stdout, FormatLong(ife))
	}
	return 0
}

func lookup(ctx context.Context, h host.Host, name string) (host.Interface, error) {
	if !IsAlias(name) {
		return h.Interface(ctx, name)
	}
	b, err := h.Interface(ctx, baseName(name))
	if err != nil {
		return host.Interface{}, err
	}
	ifs, err := h.Interfaces(ctx)
	if err != nil {
		return host.Interface{}, err
	}
	for _, ife := range ExpandAliases(ifs) {
		if ife.Name == name {
			return ife, nil
		}
	}
	b.Name, b.Addrs, b.Stats = name, nil, host.Stats{}
	return b, nil
}

// writeUsage prints the usage: the grammar to out, the lists of hardware
// types and address families to lists (net-tools prints those to stderr).
func writeUsage(out, lists io.Writer) {
	io.WriteString(out, `Usage:
  ifconfig [-a] [-v] [-s] [--link SPEC] <interface> [[<AF>] <address>]
  [add <address>[/<prefixlen>]]
  [del <address>[/<prefixlen>]]
  [broadcast <address>]  [netmask <address>]
  [hw ether <address>]  [mtu <NN>]
  [[-]promisc]
  [up|down] ...

  Not supported on this stack (reported as errors): txqueuelen, name,
  [-]allmulti, -arp, -trailers, [-]dynamic, -multicast, [-]pointopoint,
  dstaddr, tunnel, mem_start, io_addr, irq, media, keepalive, outfill,
  hw types other than ether.

  --link SPEC  run on a private stack over SPEC (tap:NAME, emu:NET, ...)

  <HW>=Hardware Type.
`)
	io.WriteString(lists, "  List of possible hardware types:\n    ether (Ethernet) loop (Local Loopback)\n")
	io.WriteString(out, "  <AF>=Address family. Default: inet\n")
	io.WriteString(lists, "  List of possible address families:\n    inet (DARPA Internet) inet6 (IPv6)\n")
}
