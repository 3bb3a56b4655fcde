// Command stackbox is the multi-call binary: every network tool of the
// project in one static executable. Started through a symlink (ping →
// stackbox) it runs the applet named by argv[0]; otherwise the first
// argument names the applet: `stackbox ping -c 1 host`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/stackbox/stackbox/cmd/arp"
	"github.com/stackbox/stackbox/cmd/dhcpclient"
	hostcmd "github.com/stackbox/stackbox/cmd/host"
	"github.com/stackbox/stackbox/cmd/ifconfig"
	"github.com/stackbox/stackbox/cmd/nc"
	"github.com/stackbox/stackbox/cmd/netd"
	"github.com/stackbox/stackbox/cmd/netstat"
	"github.com/stackbox/stackbox/cmd/nslookup"
	"github.com/stackbox/stackbox/cmd/ping"
	"github.com/stackbox/stackbox/cmd/route"
	"github.com/stackbox/stackbox/cmd/telnet"
	"github.com/stackbox/stackbox/cmd/traceroute"
	"github.com/stackbox/stackbox/cmd/wget"
	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/hostopen"
)

// version is set at link time by the Makefile (-X main.version=…).
var version = ""

// Exit statuses of the dispatcher itself, as a shell reports a command that
// cannot be found (127) and busybox reports usage errors (1).
const (
	exitUsage    = 1
	exitNotFound = 127
)

// applets is the explicit list of registered tools. Only tools that work
// are listed here; each lives in its own package under cmd/.
func applets() []*applet.Applet {
	return []*applet.Applet{
		netd.Applet(),
		ifconfig.Applet(hostopen.Open),
		route.Applet(hostopen.Open),
		arp.Applet(hostopen.Open),
		netstat.Applet(hostopen.Open),
		ping.New(hostopen.Open, ping.Config{Resolve: hostopen.Resolve}),
		nc.New(hostopen.Open, nc.Config{Resolve: hostopen.ResolveAll, Reverse: hostopen.ReverseName}),
		wget.New(hostopen.Open, wget.Config{Resolve: hostopen.ResolveAll}),
		traceroute.New(hostopen.Open, traceroute.Config{Resolve: hostopen.Resolve, Reverse: hostopen.ReverseName}),
		hostcmd.Applet(hostopen.Open),
		nslookup.Applet(hostopen.Open),
		dhcpclient.Applet(hostopen.Open),
		telnet.New(hostopen.Open, telnet.Config{Resolve: hostopen.ResolveAll}),
	}
}

func main() {
	reg, err := applet.NewRegistry(applets()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stackbox:", err)
		os.Exit(70) // EX_SOFTWARE: a programming error in the registry
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, reg, applet.OSEnv(), os.Args)
	stop()
	os.Exit(code)
}

// dispatch picks the applet named by argv[0] or, for the stackbox name
// itself (or an unknown link name), by argv[1], and runs it.
func dispatch(ctx context.Context, reg *applet.Registry, env *applet.Env, argv []string) int {
	self := "stackbox"
	if len(argv) > 0 {
		// The name the process was started by: for a chain of symlinks the
		// last link, which is the name the user typed.
		self = filepath.Base(argv[0])
		if a, ok := reg.Lookup(self); ok {
			return a.Main(ctx, env, append([]string{self}, argv[1:]...))
		}
	}
	if len(argv) < 2 {
		usage(env, reg)
		return exitUsage
	}
	switch arg := argv[1]; arg {
	case "--list", "-l":
		for _, n := range reg.Names() {
			fmt.Fprintln(env.Stdout, n)
		}
		return 0
	case "--help", "-h", "help":
		if len(argv) > 2 && arg == "help" {
			if a, ok := reg.Lookup(argv[2]); ok {
				return a.Main(ctx, env, []string{argv[2], "--help"})
			}
			fmt.Fprintf(env.Stderr, "%s: applet not found: %s\n", self, argv[2])
			return exitNotFound
		}
		usageTo(env.Stdout, reg)
		return 0
	case "--version", "-V":
		fmt.Fprintf(env.Stdout, "stackbox %s\n", versionString())
		return 0
	default:
		if strings.HasPrefix(arg, "-") {
			fmt.Fprintf(env.Stderr, "%s: unrecognized option '%s'\n", self, arg)
			usage(env, reg)
			return exitUsage
		}
		a, ok := reg.Lookup(arg)
		if !ok {
			fmt.Fprintf(env.Stderr, "%s: applet not found: %s (stackbox --list shows the applets)\n", self, arg)
			return exitNotFound
		}
		return a.Main(ctx, env, argv[1:])
	}
}

func usage(env *applet.Env, reg *applet.Registry) { usageTo(env.Stderr, reg) }

func usageTo(w interface{ Write([]byte) (int, error) }, reg *applet.Registry) {
	fmt.Fprintf(w, "stackbox %s: a userspace TCP/IP stack and its network tools.\n\n", versionString())
	fmt.Fprint(w, "Usage: stackbox APPLET [ARGS...]   or, through a symlink named APPLET: APPLET [ARGS...]\n")
	fmt.Fprint(w, "       stackbox --list | --help | --version\n\n")
	if len(reg.Applets()) == 0 {
		fmt.Fprint(w, "No applets are built into this binary yet.\n")
		return
	}
	fmt.Fprint(w, "Applets:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, a := range reg.Applets() {
		name := a.Name
		if len(a.Aliases) > 0 {
			name += " (" + strings.Join(a.Aliases, ", ") + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, a.Summary)
	}
	tw.Flush()
}

// versionString is the link-time version, else the module or VCS revision
// recorded by the Go toolchain, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
