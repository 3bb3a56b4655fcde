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

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/host"
)

// TestDaemonOverTAP runs netd on `--link tap:NAME` whose kernel side is in
// a test namespace, configures it through the control socket, and checks
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
	if err := c.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.83.0.2/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := ping("10.83.0.2"); err != nil {
		t.Fatalf("kernel cannot ping the configured address: %v\nnetd log:\n%s", err, logs.String())
	}
	// Replies to 10.84.0.1 (behind the kernel) need a route through it.
	if err := ping("-I", "10.84.0.1", "10.83.0.2"); err == nil {
		t.Fatal("replies to 10.84.0.1 got back without a route")
	}
	if err := c.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.84.0.0/24"), Gateway: netip.MustParseAddr("10.83.0.1")}); err != nil {
		t.Fatal(err)
	}
	if err := ping("-I", "10.84.0.1", "10.83.0.2"); err != nil {
		t.Fatalf("the route does not carry the replies: %v", err)
	}
	// A static ARP entry for the kernel is used: a wrong MAC loses the
	// replies, the right one brings them back.
	kip := netip.MustParseAddr("10.83.0.1")
	c.DelNeighbor(ctx, "eth0", kip)
	if err := c.AddNeighbor(ctx, host.Neighbor{Addr: kip, MAC: "02:00:00:00:99:99", Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := ping("10.83.0.2"); err == nil {
		t.Fatal("replies arrived although the static ARP entry names another MAC")
	}
	if err := c.DelNeighbor(ctx, "eth0", kip); err != nil {
		t.Fatal(err)
	}
	if err := c.AddNeighbor(ctx, host.Neighbor{Addr: kip, MAC: kernelMAC.String(), Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
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
