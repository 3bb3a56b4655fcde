//go:build linux

package netd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/cmd/arp"
	"github.com/stackbox/stackbox/cmd/ifconfig"
	"github.com/stackbox/stackbox/cmd/netstat"
	pingapp "github.com/stackbox/stackbox/cmd/ping"
	"github.com/stackbox/stackbox/cmd/route"
	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/internal/netlab"
)

// TestDaemonOverTAP runs netd on `--link tap:NAME` whose kernel side is in
// a test namespace, configures it with ifconfig, route and arp through the control socket, and checks
// each change from the kernel side: the kernel pings the new address, a
// route carries the replies to a subnet behind the kernel, and a static
// ARP entry is what our replies use (a wrong one breaks them); then data
// through netd: ping, 1 MiB over TCP to the kernel and back, netstat -tnp
// naming the owner, and a FIN to the kernel when netd stops.
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

	// Data through netd: our ping applet reaches the kernel, a TCP
	// connection carries 1 MiB to a kernel echo server and back, netstat
	// -tnp names this process as the owner, and stopping netd ends the
	// connection with a FIN the kernel reads as EOF.
	tool(pingapp.Applet(hostopen.Open), "-c", "2", "-i", "0.2", "10.83.0.1")
	var kln net.Listener
	if err := lab.Do(func() (err error) { kln, err = net.Listen("tcp", "10.83.0.1:7777"); return err }); err != nil {
		t.Fatal(err)
	}
	defer kln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		kc, err := kln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- kc
	}()
	conn, err := c.Dial(ctx, "tcp", "10.83.0.1:7777", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var kc net.Conn
	select {
	case kc = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the kernel accepted nothing")
	}
	if kc == nil {
		t.Fatal("kernel accept failed")
	}
	defer kc.Close()
	data := make([]byte, 1<<20)
	rand.Read(data)
	go func() {
		got := make([]byte, len(data))
		if _, err := io.ReadFull(kc, got); err == nil {
			kc.Write(got)
		}
	}()
	go conn.Write(data)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	back := make([]byte, len(data))
	if _, err := io.ReadFull(conn, back); err != nil || sha256.Sum256(back) != sha256.Sum256(data) {
		t.Fatalf("1 MiB through netd to the kernel and back: %v", err)
	}
	var out syncBuf
	env := testEnv(&out, map[string]string{"STACKBOX_SOCKET": sock})
	if code := netstat.Applet(hostopen.Open).Main(ctx, env, []string{"netstat", "-tnp"}); code != 0 {
		t.Fatalf("netstat -tnp: exit %d: %s", code, out.String())
	}
	owner := fmt.Sprintf("%d/", os.Getpid())
	found := false
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) == 7 && f[3] == conn.LocalAddr().String() && f[4] == "10.83.0.1:7777" {
			found = f[5] == "ESTABLISHED" && strings.HasPrefix(f[6], owner)
		}
	}
	if !found {
		t.Errorf("netstat -tnp through netd does not show the connection owned by pid %d:\n%s", os.Getpid(), out.String())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("netd did not stop")
	}
	done <- 0 // for the cleanup
	kc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := kc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the kernel read %d, %v after netd stopped; want EOF (a FIN)", n, err)
	}
}
