// Package netd is the `stackbox netd` applet: the long-lived stack, the
// "kernel" the tools configure (DESIGN.md, Process model). It opens the
// links, applies the static configuration from flags and a config file,
// writes the resolv.conf it owns and serves the control socket of package
// pkg/netd until SIGINT or SIGTERM. No locks: one goroutine runs the
// daemon, the server has its own.
package netd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/dhcp4"
	"github.com/stackbox/stackbox/pkg/host"
	api "github.com/stackbox/stackbox/pkg/netd"
	"github.com/stackbox/stackbox/pkg/resolver"
	"github.com/stackbox/stackbox/pkg/simnet"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// Applet returns the netd applet.
func Applet() *applet.Applet {
	return &applet.Applet{
		Name:    "netd",
		Summary: "run the stack as a daemon: links, static configuration, control socket",
		Main:    Main,
	}
}

// Main runs netd in the foreground until ctx ends.
func Main(ctx context.Context, env *applet.Env, args []string) int {
	app := applet.NewCLI(env, "netd", "run the stack on links and serve the control socket")
	app.UsageText = "stackbox netd [--link SPEC…] [--sim] [--addr IF=ADDR/LEN…] [--route 'default gw A'…] [--nameserver A…] [--config FILE]"
	app.Flags = []cli.Flag{
		&cli.StringSliceFlag{Name: "link", Usage: "open link `SPEC` (tap:sbx0, emu:NET, …) as the next ethN; repeatable"},
		&cli.StringSliceFlag{Name: "addr", Usage: "assign `IF=ADDR/LEN` (eth0=192.168.1.100/24); repeatable"},
		&cli.StringSliceFlag{Name: "route", Usage: "add a route in route(8) words (`'default gw 192.168.1.1'`, '10.1.0.0/16 dev eth1'); repeatable"},
		&cli.StringSliceFlag{Name: "nameserver", Usage: "DNS server `ADDR` for the resolv.conf netd writes; repeatable"},
		&cli.StringSliceFlag{Name: "search", Usage: "search `DOMAIN` for the resolv.conf; repeatable"},
		&cli.BoolFlag{Name: "forwarding", Usage: "forward IPv4 and IPv6 between the links"},
		&cli.StringFlag{Name: "config", Usage: "read settings from `FILE` (one 'name value' per line; flags add to it)"},
		&cli.StringFlag{Name: "socket", Usage: "serve the control socket at `PATH` (default $STACKBOX_SOCKET or " + api.DefaultSocket + ")"},
		&cli.StringFlag{Name: "resolv-conf", Usage: "write DNS settings to `PATH` (default resolv.conf beside the socket)"},
		&cli.StringSliceFlag{Name: "dhcp", Usage: "configure interface `IF` by DHCP (address, route, MTU, DNS into resolv.conf); repeatable"},
		&cli.BoolFlag{Name: "sim", Usage: "join the built-in simulated network (gateway with DNS, two routers, www.sim); the default without --link"},
	}
	code := 0
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", c.Args().First())
		}
		cfg, err := configFrom(c, env)
		if err != nil {
			return err
		}
		logger := log.New(env.Stderr, "netd: ", 0)
		d, err := Start(ctx, cfg, logger)
		if err != nil {
			return err
		}
		<-ctx.Done()
		logger.Printf("shutting down")
		return d.Stop()
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(env.Stderr, "netd: %v\n", err)
		code = 1
	}
	return code
}

// configFrom merges the config file and the flags (flags add to the file's
// lists and override its single values).
func configFrom(c *cli.Context, env *applet.Env) (Config, error) {
	var cfg Config
	if f := c.String("config"); f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return cfg, err
		}
		err = ParseConfigFile(fh, f, &cfg)
		fh.Close()
		if err != nil {
			return cfg, err
		}
	}
	cfg.Links = append(cfg.Links, c.StringSlice("link")...)
	// Without a link netd joins the simulated network, so the tools work
	// on a fresh machine without root (DESIGN.md, Embedded default).
	cfg.Sim = c.Bool("sim") || len(cfg.Links) == 0
	cfg.DHCP = append(cfg.DHCP, c.StringSlice("dhcp")...)
	for _, s := range c.StringSlice("addr") {
		a, err := parseAddr(s)
		if err != nil {
			return cfg, err
		}
		cfg.Addrs = append(cfg.Addrs, a)
	}
	for _, s := range c.StringSlice("route") {
		r, err := parseRoute(s)
		if err != nil {
			return cfg, err
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	for _, s := range c.StringSlice("nameserver") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fmt.Errorf("nameserver %q: not an IP address", s)
		}
		cfg.DNS = append(cfg.DNS, a)
	}
	cfg.Search = append(cfg.Search, c.StringSlice("search")...)
	if c.IsSet("forwarding") {
		cfg.Forwarding = c.Bool("forwarding")
	}
	if s := c.String("socket"); s != "" {
		cfg.Socket = s
	}
	if cfg.Socket == "" {
		cfg.Socket = api.SocketPath(env.Getenv)
	}
	if s := c.String("resolv-conf"); s != "" {
		cfg.ResolvConf = s
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = filepath.Join(filepath.Dir(cfg.Socket), "resolv.conf")
	}
	return cfg, nil
}

// Daemon is a running netd.
type Daemon struct {
	Host   *stackhost.Host
	cfg    Config
	srv    *api.Server
	ln     net.Listener
	served chan error
	log    *log.Logger
	sim    *simnet.Network // the simulated network netd joined, if any
	dhcp   []*dhcpRun

	mu       sync.Mutex              // leaseDNS and resolv.conf rewrites
	leaseDNS map[string]*dhcp4.Lease // the bound lease of each DHCP interface

	cache     *resolver.Cache // the DNS stub's, shared by every tool
	stubStops []func()
}

// Start claims the control socket (refusing when another netd serves it),
// starts the stack on cfg's links, applies the configuration, writes the
// resolv.conf and serves the socket.
func Start(ctx context.Context, cfg Config, logger *log.Logger) (*Daemon, error) {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	// The socket first: a second netd must fail before it opens links that
	// the first one owns.
	ln, err := api.Listen(cfg.Socket)
	if err != nil {
		return nil, err
	}
	var sim *simnet.Network
	if cfg.Sim {
		if sim, err = simnet.Start(strconv.Itoa(os.Getpid())); err != nil {
			ln.Close()
			return nil, err
		}
		cfg.simDefaults(sim)
	}
	h, err := stackhost.Start(cfg.Links...)
	if err != nil {
		ln.Close()
		if sim != nil {
			sim.Close()
		}
		return nil, err
	}
	d := &Daemon{Host: h, cfg: cfg, ln: ln, served: make(chan error, 1), log: logger, sim: sim}
	if err := d.configure(ctx); err != nil {
		h.Close()
		ln.Close()
		if sim != nil {
			sim.Close()
		}
		return nil, err
	}
	err = d.startStub(ctx)
	if err == nil {
		err = d.startDHCP(ctx)
	}
	if err != nil {
		d.stopDHCP()
		d.stopStub()
		h.Close()
		ln.Close()
		if sim != nil {
			sim.Close()
		}
		return nil, err
	}
	d.srv = api.NewServer(h, api.ServerOptions{ErrorLog: logger, ResolvConf: d.cfg.ResolvConf})
	go func() { d.served <- d.srv.Serve(ln) }()
	var links []string
	for i, l := range cfg.Links {
		links = append(links, fmt.Sprintf("eth%d=%s", i, l))
	}
	if sim != nil {
		logger.Printf("joined the simulated network (gateway %v with DHCP and DNS; try: ping www.sim, traceroute www.sim, wget -O - http://www.sim/)", simnet.Gateway)
	}
	logger.Printf("serving %s (links: %s; resolv.conf: %s)", cfg.Socket, strings.Join(links, " "), cfg.ResolvConf)
	return d, nil
}

func (d *Daemon) configure(ctx context.Context) error {
	for _, a := range d.cfg.Addrs {
		if err := d.Host.AddAddress(ctx, a.Dev, a.Prefix, netip.Addr{}); err != nil {
			return fmt.Errorf("address %v on %s: %w", a.Prefix, a.Dev, err)
		}
	}
	for _, r := range d.cfg.Routes {
		hr := host.Route{Dst: r.Dst, Gateway: r.Gateway, Dev: r.Dev, Metric: r.Metric}
		if err := d.Host.AddRoute(ctx, hr); err != nil {
			return fmt.Errorf("route %v: %w", r.Dst, err)
		}
	}
	d.Host.Stack().SetForwarding(false, d.cfg.Forwarding)
	d.Host.Stack().SetForwarding(true, d.cfg.Forwarding)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writeResolvConfLocked()
}

// writeFileAtomic replaces path so that readers see the old or the new
// file, never a partial one.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".resolv.conf.*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Stop stops serving (waiting up to 2 s for requests in flight) and closes
// the stack and its links; the socket file is removed.
func (d *Daemon) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := d.srv.Shutdown(ctx)
	if serr := <-d.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	d.stopDHCP()
	d.stopStub()
	if cerr := d.Host.Close(); err == nil {
		err = cerr
	}
	if d.sim != nil {
		d.sim.Close()
	}
	return err
}
