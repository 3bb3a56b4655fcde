//go:build linux

package stack

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
	"github.com/stackbox/stackbox/pkg/stack/route"
)

// Kernel interop for NDP and SLAAC: our stack on one side of a TAP, the
// Linux kernel (and radvd) in a lab namespace on the other.

const ndpInteropWait = 10 * time.Second

// newInteropStack puts a stack with DAD and autoconfiguration on the TAP.
func newInteropStack(t *testing.T, tp *netlab.TAP, addrs ...string) *NIC {
	t.Helper()
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, NICOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return n
}

// waitFor polls cond every 50 ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// TestNDPKernelInterop: our address passes DAD next to the kernel, we
// resolve the kernel's address with NS/NA, and the kernel resolves ours
// and pings it.
func TestNDPKernelInterop(t *testing.T) {
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{})
	lab.MustIP(t, "addr", "add", "fd00::1/64", "dev", tp.Dev, "nodad")
	n := newInteropStack(t, tp, "fd00::2/64")
	ours, kernel := mustAddr("fd00::2"), mustAddr("fd00::1")

	ctx, cancel := context.WithTimeout(context.Background(), ndpInteropWait)
	defer cancel()
	ll := LinkLocalAddress(n.MAC())
	if !waitFor(ctx, func() bool {
		st, _ := n.addressState(ours)
		st2, _ := n.addressState(ll)
		return st == Preferred && st2 == Preferred
	}) {
		st, _ := n.addressState(ours)
		st2, _ := n.addressState(ll)
		t.Fatalf("after %v: fd00::2 %v, %v %v; want both preferred", ndpInteropWait, st, ll, st2)
	}

	// We resolve the kernel: the queued echo request goes once it answers.
	if _, ok := n.NDP().Resolve(kernel, echoRequest6(ours, kernel)); ok {
		t.Fatal("kernel resolved before any NDP")
	}
	if !waitFor(ctx, func() bool { e, ok := n.NDP().Lookup(kernel); return ok && e.MAC == tp.MAC }) {
		e, _ := n.NDP().Lookup(kernel)
		t.Fatalf("our entry for the kernel: %+v, want its MAC %v", e, tp.MAC)
	}
	// The kernel knows us from our NS (SLLAO) at least.
	if _, err := lab.WaitNeighbor(ctx, tp.Dev, ours, func(nb netlab.Neighbor) bool { return nb.MAC == n.MAC() }); err != nil {
		t.Errorf("kernel's entry for us: %v", err)
	}

	// The kernel pings us: it solicits (or probes) us and we answer.
	lab.MustIP(t, "neigh", "flush", "dev", tp.Dev)
	out, err := lab.Run(ctx, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", ours.String())
	if err != nil {
		t.Errorf("kernel ping6 %v: %v\n%s", ours, err, out)
	}
	if _, err := lab.WaitNeighbor(ctx, tp.Dev, ours, func(nb netlab.Neighbor) bool {
		return nb.MAC == n.MAC() && !nb.HasState("FAILED") && !nb.HasState("INCOMPLETE")
	}); err != nil {
		t.Errorf("kernel did not resolve us: %v", err)
	}
}

// TestNDPKernelDuplicate: the kernel already holds the address we add, so
// our DAD fails and the address goes to dadfailed.
func TestNDPKernelDuplicate(t *testing.T) {
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{})
	lab.MustIP(t, "addr", "add", "fd00::5/64", "dev", tp.Dev, "nodad")
	n := newInteropStack(t, tp, "fd00::5/64")
	ctx, cancel := context.WithTimeout(context.Background(), ndpInteropWait)
	defer cancel()
	if !waitFor(ctx, func() bool { st, _ := n.addressState(mustAddr("fd00::5")); return st == Duplicate }) {
		st, _ := n.addressState(mustAddr("fd00::5"))
		t.Fatalf("fd00::5 is %v, want dadfailed: the kernel defends it", st)
	}
}

// TestRadvdSLAAC: radvd on the kernel side advertises fd00:1:2:3::/64; our
// stack forms a SLAAC address in it, a default route via the router's
// link-local address, learns the RDNSS server, and the kernel reaches the
// SLAAC address.
func TestRadvdSLAAC(t *testing.T) {
	radvd, err := exec.LookPath("radvd")
	if err != nil {
		t.Skip("radvd not installed (apt-get install radvd); skipping the router advertisement interop test")
	}
	lab := netlab.New(t)
	lab.Sysctl(t, "net.ipv6.conf.all.forwarding", "1") // radvd refuses to run without it
	tp := lab.AddTAP(t, netlab.TAPConfig{})
	lab.MustIP(t, "addr", "add", "fd00:1:2:3::1/64", "dev", tp.Dev, "nodad")
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvDefaultLifetime 1800;
	AdvLinkMTU 1400;
	prefix fd00:1:2:3::/64 {
		AdvOnLink on;
		AdvAutonomous on;
		AdvValidLifetime 7200;
		AdvPreferredLifetime 3600;
	};
	RDNSS fd00:1:2:3::53 {
	};
	DNSSL example.test {
	};
};
`, tp.Dev)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	proc := lab.Start(t, radvd, "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")

	n := newInteropStack(t, tp)
	slaac := slaacAddr(mustAddr("fd00:1:2:3::"), n.MAC())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ok := waitFor(ctx, func() bool {
		st, ok := n.addressState(slaac)
		_, def := findRoute(n.s, "::/0", route.ProtoRA)
		return ok && st == Preferred && def
	})
	if !ok {
		st, has := n.addressState(slaac)
		select {
		case <-proc.Done():
			t.Logf("radvd exited early:\n%s", proc.Output())
		default:
		}
		t.Fatalf("after 20 s: SLAAC address %v present %v state %v; routes %v; radvd said:\n%s",
			slaac, has, st, n.s.Routes().Routes(), proc.Output())
	}
	a, _ := n.address6(slaac)
	if a.Origin != OriginSLAAC || a.ValidUntil.IsZero() || a.PreferredUntil.IsZero() {
		t.Errorf("SLAAC address %+v", a)
	}
	def, _ := findRoute(n.s, "::/0", route.ProtoRA)
	if !def.Gateway.IsLinkLocalUnicast() || def.NIC != n.Index() || def.Expires.IsZero() {
		t.Errorf("default route %v expires %v", def, def.Expires)
	}
	addrs := string(lab.MustIP(t, "-6", "addr", "show", "dev", tp.Dev, "scope", "link"))
	if !strings.Contains(addrs, def.Gateway.String()+"/64") {
		t.Errorf("default route via %v, not the kernel's link-local address:\n%s", def.Gateway, addrs)
	}
	if r, ok := findRoute(n.s, "fd00:1:2:3::/64", route.ProtoRA); !ok || r.Gateway.IsValid() {
		t.Errorf("on-link route %v, %v", r, ok)
	}
	if got := n.DNSServers(); len(got) != 1 || got[0] != mustAddr("fd00:1:2:3::53") {
		t.Errorf("DNSServers %v", got)
	}
	if got := n.SearchDomains(); len(got) != 1 || got[0] != "example.test" {
		t.Errorf("SearchDomains %v", got)
	}
	if got := n.IPv6MTU(); got != 1400 {
		t.Errorf("IPv6MTU %d, want radvd's 1400", got)
	}
	out, err := lab.Run(ctx, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", slaac.String())
	if err != nil {
		t.Errorf("kernel ping6 %v: %v\n%s", slaac, err, out)
	}
}
