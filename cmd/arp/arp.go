// Package arp is the net-tools arp(8) applet: it shows the IPv4
// neighbour (ARP) cache of a host.Host and adds and deletes static
// entries (../shared/compat/arp.md).
package arp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

const (
	exitOK    = 0
	exitOpen  = 1
	exitUsage = 3   // E_USAGE
	exitFail  = 255 // net-tools returns -1 for refused, unknown and missing entries
)

const usageText = `Usage:
  arp [-vn]  [<HW>] [-i <if>] [-a] [<hostname>]             <-Display ARP cache
  arp [-v]          [-i <if>] -d  <host> [pub]               <-Delete ARP entry
  arp [-vnD] [<HW>] [-i <if>] -f  [<filename>]            <-Add entry from file
  arp [-v]   [<HW>] [-i <if>] -s  <host> <hwaddr> [temp]            <-Add entry
  arp [-v]   [<HW>] [-i <if>] -Ds <host> <if> [netmask <nm>] pub          <-''-

        -a                       display (all) hosts in alternative (BSD) style
        -e                       display (all) hosts in default (Linux) style
        -s, --set                set a new ARP entry
        -d, --delete             delete a specified entry
        -v, --verbose            be verbose
        -n, --numeric            don't resolve names
        -i, --device             specify network interface (e.g. eth0)
        -D, --use-device         read <hwaddr> from given device
        -A, -p, --protocol       specify protocol family
        -f, --file               read new entries from file or from /etc/ethers

  <HW>=Use '-H <hw>' to specify hardware address type. Default: ether
  List of possible hardware types (which support ARP):
    ether (Ethernet)
`

// shortLetters are the single-letter options arp knows, to name the bad
// letter of a combined word such as -nZ.
const shortLetters = "aenvsdiHtVh"

// Applet returns the arp applet running on the host open gives.
func Applet(open host.Opener) *applet.Applet {
	return &applet.Applet{
		Name:    "arp",
		Summary: "show or change the ARP cache (net-tools arp)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, env, args)
		},
	}
}

type options struct {
	bsd, numeric, verbose bool
	set, del              bool
	dev, link, hwtype     string
	args                  []string
}

func run(ctx context.Context, open host.Opener, env *applet.Env, args []string) int {
	// urfave answers --help itself even with HideHelp, so arp's own
	// -h/--help is picked out before it parses.
	for _, a := range args[1:] {
		if a == "-h" || a == "--help" {
			io.WriteString(env.Stdout, usageText)
			return exitOK
		}
		if a == "--" {
			break
		}
	}
	var o options
	ran, version := false, false
	badOption := ""
	app := applet.NewCLI(env, "arp", "show or change the ARP cache")
	app.HideHelp = true
	app.Flags = []cli.Flag{
		applet.LinkFlag,
		&cli.BoolFlag{Name: "a", Aliases: []string{"all"}},
		&cli.BoolFlag{Name: "e"},
		&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}},
		&cli.BoolFlag{Name: "set", Aliases: []string{"s"}},
		&cli.BoolFlag{Name: "delete", Aliases: []string{"d"}},
		&cli.StringFlag{Name: "device", Aliases: []string{"i"}},
		&cli.StringFlag{Name: "hw-type", Aliases: []string{"H", "t"}},
		&cli.BoolFlag{Name: "version", Aliases: []string{"V"}},
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		badOption = optionError(err.Error(), args)
		return err
	}
	app.Action = func(c *cli.Context) error {
		ran = true
		o.bsd = c.Bool("a")
		o.numeric = c.Bool("numeric")
		o.verbose = c.Bool("verbose")
		o.set, o.del = c.Bool("set"), c.Bool("delete")
		o.dev, o.link, o.hwtype = c.String("device"), c.String("link"), c.String("hw-type")
		o.args = c.Args().Slice()
		version = c.Bool("version")
		return nil
	}
	err := app.RunContext(ctx, args)
	if !ran {
		if badOption != "" {
			fmt.Fprintf(env.Stderr, "arp: %s\n", badOption)
		} else if err != nil {
			fmt.Fprintf(env.Stderr, "arp: %v\n", err)
		}
		io.WriteString(env.Stderr, usageText)
		return exitUsage
	}
	if version {
		fmt.Fprintln(env.Stdout, "net-tools 2.10")
		return exitOK
	}
	if o.hwtype != "" && o.hwtype != "ether" {
		fmt.Fprintf(env.Stderr, "arp: %s: unknown hardware type.\n", o.hwtype)
		return exitFail
	}
	if (o.set && o.del) || (o.set && len(o.args) < 2) || (o.del && len(o.args) < 1) {
		io.WriteString(env.Stderr, usageText)
		return exitUsage
	}

	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "arp: %v\n", err)
		return exitOpen
	}
	defer h.Close()

	switch {
	case o.set:
		return set(ctx, env, h, o)
	case o.del:
		return del(ctx, env, h, o)
	}
	return show(ctx, env, h, o)
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

// parseHost reads an IPv4 address; there is no resolver, so any other
// word is an unknown host.
func parseHost(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func show(ctx context.Context, env *applet.Env, h host.Host, o options) int {
	ns, err := h.Neighbors(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "arp: %v\n", err)
		return exitOpen
	}
	var want netip.Addr
	hostWord := ""
	if len(o.args) > 0 {
		hostWord = o.args[0]
		a, ok := parseHost(hostWord)
		if !ok {
			fmt.Fprintf(env.Stderr, "%s: Unknown host\n", hostWord)
			return exitFail
		}
		want = a
	}
	io.WriteString(env.Stdout, Format(ns, Filter{Addr: want, Dev: o.dev}, o.bsd, o.verbose))
	return exitOK
}

// Filter selects the entries arp shows: by address and by interface.
type Filter struct {
	Addr netip.Addr
	Dev  string
}

// complete reports whether n has a usable hardware address (ATF_COM).
func complete(n host.Neighbor) bool {
	if n.MAC == "" {
		return false // incomplete, failed, or a published entry
	}
	if n.Permanent {
		return true
	}
	switch strings.ToUpper(n.State) {
	case "REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP":
		return true
	}
	return false
}

// Format renders arp's output for the neighbours ns: the Linux table
// (bsd false) or the BSD `-a` lines, then the -v summary, then the
// no-match messages. Only IPv4 entries count, as /proc/net/arp holds
// only those. Names are not resolved (no resolver yet): the table shows
// addresses and the BSD form "?".
func Format(ns []host.Neighbor, f Filter, bsd, verbose bool) string {
	var b strings.Builder
	entries, shown := 0, 0
	for _, n := range ns {
		if !n.Addr.Is4() {
			continue
		}
		entries++
		if f.Addr.IsValid() && n.Addr != f.Addr {
			continue
		}
		if f.Dev != "" && n.Dev != f.Dev {
			continue
		}
		shown++
		com := complete(n)
		if bsd {
			fmt.Fprintf(&b, "? (%s) at ", n.Addr)
			switch {
			case !com && n.Proxy:
				b.WriteString("<from_interface>")
			case !com:
				b.WriteString("<incomplete>")
			default:
				fmt.Fprintf(&b, "%s [ether]", n.MAC)
			}
			if n.Permanent {
				b.WriteString(" PERM")
			}
			if n.Proxy {
				b.WriteString(" PUB")
			}
			fmt.Fprintf(&b, " on %s\n", n.Dev)
			continue
		}
		if shown == 1 {
			b.WriteString("Address                  HWtype  HWaddress           Flags Mask            Iface\n")
		}
		fmt.Fprintf(&b, "%-23.23s  ", n.Addr.String())
		switch {
		case !com && n.Proxy:
			fmt.Fprintf(&b, "%-8.8s%-20.20s", "*", "<from_interface>")
		case !com:
			fmt.Fprintf(&b, "%-8.8s%-20.20s", "", "(incomplete)")
		default:
			fmt.Fprintf(&b, "%-8.8s%-20.20s", "ether", n.MAC)
		}
		flags := ""
		if com {
			flags += "C"
		}
		if n.Permanent {
			flags += "M"
		}
		if n.Proxy {
			flags += "P"
		}
		fmt.Fprintf(&b, "%-6.6s%-15.15s %s\n", flags, "", n.Dev)
	}
	if verbose {
		fmt.Fprintf(&b, "Entries: %d\tSkipped: %d\tFound: %d\n", entries, entries-shown, shown)
	}
	if shown == 0 {
		switch {
		case f.Addr.IsValid() && !bsd:
			fmt.Fprintf(&b, "%s (%s) -- no entry\n", f.Addr, f.Addr)
		case f.Addr.IsValid() || f.Dev != "":
			fmt.Fprintf(&b, "arp: in %d entries no match found.\n", entries)
		}
	}
	return b.String()
}

func set(ctx context.Context, env *applet.Env, h host.Host, o options) int {
	a, ok := parseHost(o.args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: Unknown host\n", o.args[0])
		return exitFail
	}
	hw, err := net.ParseMAC(o.args[1])
	if err != nil || len(hw) != 6 {
		fmt.Fprintln(env.Stderr, "arp: invalid hardware address")
		return exitFail
	}
	n := host.Neighbor{Addr: a, MAC: hw.String(), Dev: o.dev, State: "PERMANENT", Permanent: true}
	words := o.args[2:]
	for len(words) > 0 {
		switch words[0] {
		case "temp":
			n.Permanent, n.State = false, "REACHABLE"
		case "pub":
			n.Proxy = true
		case "dontpub", "trail", "auto":
		case "netmask", "dev":
			if len(words) < 2 {
				io.WriteString(env.Stderr, usageText)
				return exitUsage
			}
			if words[0] == "dev" {
				n.Dev = words[1]
			}
			words = words[1:]
		default:
			io.WriteString(env.Stderr, usageText)
			return exitUsage
		}
		words = words[1:]
	}
	if err := h.AddNeighbor(ctx, n); err != nil {
		fmt.Fprintf(env.Stderr, "SIOCSARP: %s\n", strerror(err))
		return exitFail
	}
	return exitOK
}

func del(ctx context.Context, env *applet.Env, h host.Host, o options) int {
	a, ok := parseHost(o.args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: Unknown host\n", o.args[0])
		return exitFail
	}
	for _, w := range o.args[1:] {
		if w == "pub" {
			// The host keeps no published entries, so there is none to
			// delete.
			fmt.Fprintf(env.Stdout, "No ARP entry for %s\n", o.args[0])
			return exitFail
		}
	}
	err := h.DelNeighbor(ctx, o.dev, a)
	switch {
	case errors.Is(err, syscall.ENXIO):
		fmt.Fprintf(env.Stdout, "No ARP entry for %s\n", o.args[0])
		return exitFail
	case err != nil:
		fmt.Fprintf(env.Stderr, "SIOCDARP: %s\n", strerror(err))
		return exitFail
	}
	return exitOK
}
