//go:build linux

package dhcp4

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

// TestInteropDnsmasq: our client against dnsmasq's DHCP server, run by
// the kernel in a lab namespace, over a TAP device. The lease comes
// (address, route, MTU applied), is renewed at T1 (dnsmasq is told to
// send T1 = 4 s), shows in dnsmasq's lease file, and is gone from it
// after our RELEASE.
func TestInteropDnsmasq(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (scripts/test-deps.sh installs dnsmasq-base); skipping the DHCP interop test")
	}
	lab := netlab.New(t)
	dev := fmt.Sprintf("sbxdh%d", os.Getpid()%100000)
	h, err := stackhost.Start("tap:" + dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	lab.Adopt(t, dev, netip.MustParsePrefix("10.86.0.1/24"))
	leases := filepath.Join(t.TempDir(), "dnsmasq.leases")
	proc := lab.Start(t, bin, "--keep-in-foreground", "--log-facility=-", "--log-dhcp", "--pid-file=", "--user=root",
		"--no-resolv", "--no-hosts", "--port=0", "--interface="+dev, "--bind-interfaces",
		"--dhcp-range=10.86.0.100,10.86.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.86.0.1", "--dhcp-option=option:dns-server,10.86.0.53",
		"--dhcp-option=option:domain-name,lab", "--dhcp-option=option:mtu,1400",
		"--dhcp-option=option:T1,4", "--dhcp-option=option:T2,100",
		"--dhcp-leasefile="+leases, "--dhcp-authoritative")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ev := &events{}
	c, err := New(ctx, Config{Host: h, Interface: "eth0", Wait: func(int) time.Duration { return time.Second },
		Discovers: 10, Event: ev.add, Log: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.Obtain(ctx)
	if err != nil {
		t.Fatalf("%v\ndnsmasq: %s", err, proc.Output())
	}
	a := l.Address.Addr()
	if !netip.MustParsePrefix("10.86.0.0/24").Contains(a) || l.Address.Bits() != 24 || l.Server != netip.MustParseAddr("10.86.0.1") ||
		l.Duration.D() != 2*time.Minute || l.T1.D() != 4*time.Second || l.MTU != 1400 || l.Domain != "lab" {
		t.Errorf("lease %+v", l)
	}
	if !hasAddr(t, h, l.Address) || defaultRoute(t, h) != netip.MustParseAddr("10.86.0.1") {
		t.Errorf("lease not applied")
	}
	inFile := func() bool {
		b, _ := os.ReadFile(leases)
		return strings.Contains(string(b), " "+a.String()+" ")
	}
	if !inFile() {
		t.Errorf("%v not in dnsmasq's lease file", a)
	}
	// The kernel reaches us at the leased address.
	if out, err := lab.Run(ctx, "ping", "-c", "1", "-W", "2", a.String()); err != nil {
		t.Errorf("kernel ping %v: %v %s", a, err, out)
	}

	// Renewal at T1, unicast to dnsmasq, answered.
	rctx, rcancel := context.WithTimeout(ctx, 7*time.Second)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	<-done
	rcancel()
	if !strings.Contains(ev.String(), "renew "+l.Address.String()) {
		t.Errorf("events %v; dnsmasq: %s", ev, proc.Output())
	}
	if n := strings.Count(proc.Output(), "DHCPACK("+dev+") "+a.String()); n < 2 {
		t.Errorf("dnsmasq acked %d requests, want the select and a renewal: %s", n, proc.Output())
	}

	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	released := func() bool { return strings.Contains(proc.Output(), "DHCPRELEASE("+dev+") "+a.String()) }
	for deadline := time.Now().Add(5 * time.Second); (inFile() || !released()) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if inFile() {
		t.Errorf("%v still in dnsmasq's lease file after RELEASE\ndnsmasq: %s", a, proc.Output())
	}
	if !released() {
		t.Errorf("dnsmasq saw no release: %s", proc.Output())
	}
}
