package netd

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/cmd/nc"
	pingapp "github.com/stackbox/stackbox/cmd/ping"
	"github.com/stackbox/stackbox/cmd/route"
	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/pkg/resolver"
)

// Without --link netd joins the simulated network and configures eth0
// by DHCP from its gateway (address, route, and the nameserver and
// domain in its resolv.conf): the tools then reach www.sim by name through netd's
// resolv.conf (ping with TTL 61 after three routers, HTTP over nc), and
// route -n shows the default route through the gateway.
func TestDaemonSimulatedNetwork(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "netd.sock")
	var logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, testEnv(&logs, map[string]string{"STACKBOX_SOCKET": sock}), []string{"netd"})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("netd exit %d: %s", code, logs.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("netd did not stop")
		}
		// Stopping released the lease (RFC 2131 §4.4.6).
		if !strings.Contains(logs.String(), "dhcp eth0: unicasting a release of 192.168.64.100 to 192.168.64.1") {
			t.Errorf("no release at shutdown:\n%s", logs.String())
		}
	}()
	waitSocket(t, sock).Close()
	if !strings.Contains(logs.String(), "dhcp eth0: lease of 192.168.64.100 obtained from 192.168.64.1, lease time 3600") {
		t.Errorf("log: %s", logs.String())
	}
	if rc, err := os.ReadFile(filepath.Join(dir, "resolv.conf")); err != nil || !strings.Contains(string(rc), "search sim\nnameserver 127.0.0.1\n") {
		t.Errorf("resolv.conf from the lease: %q, %v", rc, err)
	}
	run := func(a *applet.Applet, stdin string, args ...string) (string, int) {
		t.Helper()
		var out syncBuf
		env := testEnv(&out, map[string]string{"STACKBOX_SOCKET": sock, "STACKBOX_HOSTS": os.DevNull})
		env.Stdin = strings.NewReader(stdin)
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		code := a.Main(rctx, env, append([]string{a.Name}, args...))
		return out.String(), code
	}
	resolve := pingapp.Config{Resolve: hostopen.Resolve}
	out, code := run(pingapp.New(hostopen.Open, resolve), "", "-c", "1", "www.sim")
	if code != 0 || !strings.Contains(out, "PING www.sim (198.51.100.10) 56(84) bytes of data.") || !strings.Contains(out, "ttl=61") {
		t.Errorf("ping www.sim: exit %d\n%s", code, out)
	}
	out, code = run(pingapp.New(hostopen.Open, resolve), "", "-c", "1", "-t", "1", "www.sim")
	if code != 1 || !strings.Contains(out, "From 192.168.64.1 icmp_seq=1 Time to live exceeded") {
		t.Errorf("ping -t 1 www.sim: exit %d\n%s", code, out)
	}
	ncApp := nc.New(hostopen.Open, nc.Config{Resolve: hostopen.ResolveAll})
	out, code = run(ncApp, "GET /hello HTTP/1.0\r\nHost: www.sim\r\n\r\n", "-N", "www.sim", "80")
	if code != 0 || !strings.HasPrefix(out, "HTTP/1.0 200 OK\r\n") || !strings.Contains(out, "hello from www.sim to 192.168.64.100:") {
		t.Errorf("nc www.sim 80: exit %d\n%s", code, out)
	}
	out, code = run(route.Applet(hostopen.Open), "", "-n")
	if code != 0 || !strings.Contains(out, "\n0.0.0.0         192.168.64.1    0.0.0.0         UG    0      0 ") {
		t.Errorf("route -n: exit %d\n%s", code, out)
	}
}

// The DNS stub netd's resolv.conf names answers every tool from one
// cache: a second lookup of a name (and of a name that does not exist,
// RFC 2308) within its TTL is a cache hit, not another upstream query.
func TestDNSStubCache(t *testing.T) {
	dir := t.TempDir()
	d, err := Start(context.Background(), Config{Sim: true, Socket: filepath.Join(dir, "netd.sock"), ResolvConf: filepath.Join(dir, "resolv.conf")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := resolver.DefaultConfig()
	cfg.Servers = []netip.AddrPort{netip.AddrPortFrom(StubResolver, 53)}
	tool := resolver.New(d.Host, cfg) // a tool's resolver: no cache of its own
	for i := range 2 {
		if a, err := tool.LookupNetip(ctx, "www.sim."); err != nil || len(a) != 1 || a[0] != netip.MustParseAddr("198.51.100.10") {
			t.Fatalf("lookup %d of www.sim: %v, %v", i, a, err)
		}
		if _, err := tool.LookupNetip(ctx, "nosuch.sim."); !errors.Is(err, resolver.ErrNXDomain) {
			t.Fatalf("lookup %d of nosuch.sim: %v, want NXDOMAIN", i, err)
		}
	}
	// A and AAAA of each name: 4 misses the first time, 4 hits after.
	if hits, misses := d.cache.Stats(); hits != 4 || misses != 4 {
		t.Errorf("stub cache: %d hits, %d misses; want 4 and 4", hits, misses)
	}
}
