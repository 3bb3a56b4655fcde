//go:build linux

package dhcpclient

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// TestInteropDnsmasq runs the applet against dnsmasq over TAP in a lab
// namespace, configured as in the capture (udhcpc.md: router, DNS,
// domain lab, 1h leases): the same lines on stderr and the same script
// variables as busybox udhcpc, with -R's release reaching dnsmasq.
func TestInteropDnsmasq(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (scripts/test-deps.sh installs dnsmasq-base); skipping the udhcpc interop test")
	}
	lab := netlab.New(t)
	dev := fmt.Sprintf("sbxuc%d", os.Getpid()%100000)
	h, err := stackhost.Start("tap:" + dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	lab.Adopt(t, dev, netip.MustParsePrefix("10.200.2.1/24"))
	leases := filepath.Join(t.TempDir(), "dnsmasq.leases")
	proc := lab.Start(t, bin, "--keep-in-foreground", "--log-facility=-", "--log-dhcp", "--pid-file=", "--user=root",
		"--no-resolv", "--no-hosts", "--port=0", "--interface="+dev, "--bind-interfaces",
		"--dhcp-range=10.200.2.100,10.200.2.150,255.255.255.0,1h",
		"--dhcp-option=option:router,10.200.2.1", "--dhcp-option=option:dns-server,10.200.0.2",
		"--dhcp-option=option:domain-name,lab", "--dhcp-leasefile="+leases, "--dhcp-authoritative")
	script, out := dumpScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, _, stderr := runApplet(ctx, t, h, Config{}, "-i", "eth0", "-n", "-q", "-R", "-t", "10", "-T", "1", "-s", script)
	if code != 0 {
		t.Fatalf("exit %d: %s\ndnsmasq: %s", code, stderr, proc.Output())
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var ip string
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, "udhcpc: lease of "); ok {
			ip, _, _ = strings.Cut(rest, " ")
		}
	}
	want := []string{
		"udhcpc: started, v1.35.0",
		"udhcpc: broadcasting discover",
		"udhcpc: broadcasting select for " + ip + ", server 10.200.2.1",
		"udhcpc: lease of " + ip + " obtained from 10.200.2.1, lease time 3600",
		"udhcpc: unicasting a release of " + ip + " to 10.200.2.1",
		"udhcpc: entering released state",
	}
	// dnsmasq may need a few discovers while it starts; the rest is exact.
	for len(lines) > 2 && lines[1] == want[1] && lines[2] == want[1] {
		lines = append(lines[:1], lines[2:]...)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}
	wantCalls := `== deconfig
interface=eth0
== bound
broadcast=10.200.2.255
dns=10.200.0.2
domain=lab
interface=eth0
ip=` + ip + `
lease=3600
mask=24
opt53=05
opt58=00000708
opt59=00000c4e
router=10.200.2.1
serverid=10.200.2.1
siaddr=10.200.2.1
subnet=255.255.255.0
== deconfig
interface=eth0
`
	if got := calls(t, out); got != wantCalls {
		t.Errorf("script calls:\n%s\nwant (as busybox udhcpc against dnsmasq):\n%s", got, wantCalls)
	}
	released := func() bool { return strings.Contains(proc.Output(), "DHCPRELEASE("+dev+") "+ip) }
	for deadline := time.Now().Add(5 * time.Second); !released() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if !released() {
		t.Errorf("dnsmasq saw no release: %s", proc.Output())
	}
}
