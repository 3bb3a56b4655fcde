//go:build linux

package netd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stackbox/stackbox/cmd/arp"
	"github.com/stackbox/stackbox/cmd/ifconfig"
	"github.com/stackbox/stackbox/cmd/route"
	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/internal/netlab"
)

// TestDaemonOverTAP runs netd on `--link tap:NAME` whose kernel side is in
// a test namespace, configures it with ifconfig, route and arp through the control socket, and checks
// each change from the kernel side: the kernel pings the new address, a
// route carries the replies to a subnet behind the kernel, and a static
// ARP entry is what our replies use (a wrong one breaks them).
func TestDaemonOverTAP(t *testing.T) {
	lab := netlab.New(t)
	dev := fmt.Sprintf("sbxnd%d", os.Getpid()%100000)
	sock := filepath.Join(t.TempDir(), "netd.sock")
	var logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, testEnv(&logs, nil), []string{"netd", "--socket", sock, "--link", "tap:" + dev})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("netd did not stop")
		}
	})
	c := waitSocket(t, sock)
	defer c.Close()
	kernelMAC := lab.Adopt(t, dev, netip.MustParsePrefix("10.83.0.1/24"))
	lab.MustIP(t, "addr", "add", "10.84.0.1/32", "dev", "lo")

	ping := func(args ...string) error {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		_, err := lab.Run(pctx, "ping", append([]string{"-c", "1", "-W", "2"}, args...)...)
		return err
	}
	// Before netd has the address the kernel's ping goes unanswered.
	if err := ping("10.83.0.2"); err == nil {
		t.Fatal("ping answered before the address was configured")
	}
	// The tools, as a user types them, through the socket.
	tool := func(a *applet.Applet, args ...string) {
		t.Helper()
		var out syncBuf
		env := testEnv(&out, map[string]string{"STACKBOX_SOCKET": sock})
		if code := a.Main(ctx, env, append([]string{a.Name}, args...)); code != 0 {
			t.Fatalf("%s %v: exit %d: %s", a.Name, args, code, out.String())
		}
	}
	tool(ifconfig.Applet(hostopen.Open), "eth0", "10.83.0.2", "netmask", "255.255.255.0")
	if err := ping("10.83.0.2"); err != nil {
		t.Fatalf("kernel cannot ping the configured address: %v\nnetd log:\n%s", err, logs.String())
	}
	// Replies to 10.84.0.1 (behind the kernel) need a route through it.
	if err := ping("-I", "10.84.0.1", "10.83.0.2"); err == nil {
		t.Fatal("replies to 10.84.0.1 got back without a route")
	}
	tool(route.Applet(hostopen.Open), "add", "-net", "10.84.0.0", "netmask", "255.255.255.0", "gw", "10.83.0.1")
	if err := ping("-I", "10.84.0.1", "10.83.0.2"); err != nil {
		t.Fatalf("the route does not carry the replies: %v", err)
	}
	// A static ARP entry for the kernel is used: a wrong MAC loses the
	// replies, the right one brings them back.
	kip := netip.MustParseAddr("10.83.0.1")
	c.DelNeighbor(ctx, "eth0", kip)
	tool(arp.Applet(hostopen.Open), "-s", "10.83.0.1", "02:00:00:00:99:99")
	if err := ping("10.83.0.2"); err == nil {
		t.Fatal("replies arrived although the static ARP entry names another MAC")
	}
	tool(arp.Applet(hostopen.Open), "-d", "10.83.0.1")
	tool(arp.Applet(hostopen.Open), "-s", "10.83.0.1", kernelMAC.String())
	if err := ping("10.83.0.2"); err != nil {
		t.Fatalf("ping with the right static entry: %v", err)
	}
	ns, err := c.Neighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Addr == kip && (n.State != "PERMANENT" || n.MAC != kernelMAC.String()) {
			t.Errorf("the static entry changed: %+v", n)
		}
	}
}
