//go:build linux

package traceroute

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// kernelPath builds a path through two kernel routers, each its own
// namespace, and puts our stack and a kernel host side by side on the
// first segment, so both trace the same path:
//
//	us 10.94.0.2 ─┐
//	              br0 10.94.0.1  R1  10.94.1.1 ── 10.94.1.2  R2  10.94.2.1 ── 10.94.2.2 B
//	K  10.94.0.3 ─┘
//
// (IPv6: fd94:N::… with the same last numbers). R2 has an unreachable
// route for 10.94.9.0/24 and fd94:9::/64. Every namespace answers ICMP
// without rate limits, so 16 probes at once all get their answers (the
// rate-limited runs in ../shared/compat/traceroute.md show what happens
// otherwise). It
// returns our host and K's namespace, where the real traceroute runs.
func kernelPath(t *testing.T) (*stackhost.Host, *netlab.Lab) {
	t.Helper()
	r1, k, r2, b := netlab.New(t), netlab.New(t), netlab.New(t), netlab.New(t)
	tp := r1.AddTAP(t, netlab.TAPConfig{})
	for _, l := range []*netlab.Lab{r1, k, r2, b} {
		l.Sysctl(t, "net.ipv4.icmp_ratelimit", "0")
		l.Sysctl(t, "net.ipv6.icmp.ratelimit", "0")
	}
	for _, l := range []*netlab.Lab{r1, r2} {
		l.Sysctl(t, "net.ipv4.ip_forward", "1")
		l.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	}
	// Veth pairs made in one namespace with the peer in the next.
	veth := func(a *netlab.Lab, aDev string, bl *netlab.Lab, bDev string) {
		a.MustIP(t, "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", bl.Namespace())
		a.MustIP(t, "link", "set", aDev, "up")
		bl.MustIP(t, "link", "set", bDev, "up")
	}
	addr := func(l *netlab.Lab, dev string, prefixes ...string) {
		for _, p := range prefixes {
			if strings.Contains(p, ":") {
				l.MustIP(t, "-6", "addr", "add", p, "dev", dev, "nodad")
			} else {
				l.MustIP(t, "addr", "add", p, "dev", dev)
			}
		}
	}
	r1.MustIP(t, "link", "add", "br0", "type", "bridge")
	r1.MustIP(t, "link", "set", tp.Dev, "master", "br0")
	veth(r1, "vk", k, "eth0")
	r1.MustIP(t, "link", "set", "vk", "master", "br0")
	r1.MustIP(t, "link", "set", "br0", "up")
	addr(r1, "br0", "10.94.0.1/24", "fd94::1/64")
	addr(k, "eth0", "10.94.0.3/24", "fd94::3/64")
	veth(r1, "v12", r2, "v21")
	addr(r1, "v12", "10.94.1.1/24", "fd94:1::1/64")
	addr(r2, "v21", "10.94.1.2/24", "fd94:1::2/64")
	veth(r2, "v2b", b, "eth0")
	addr(r2, "v2b", "10.94.2.1/24", "fd94:2::1/64")
	addr(b, "eth0", "10.94.2.2/24", "fd94:2::2/64")
	for _, rt := range []struct {
		l    *netlab.Lab
		args []string
	}{
		{k, []string{"route", "add", "default", "via", "10.94.0.1"}},
		{k, []string{"-6", "route", "add", "default", "via", "fd94::1"}},
		{r1, []string{"route", "add", "10.94.0.0/16", "via", "10.94.1.2"}},
		{r1, []string{"-6", "route", "add", "fd94::/16", "via", "fd94:1::2"}},
		{r2, []string{"route", "add", "default", "via", "10.94.1.1"}},
		{r2, []string{"-6", "route", "add", "default", "via", "fd94:1::1"}},
		{r2, []string{"route", "add", "unreachable", "10.94.9.0/24"}},
		{r2, []string{"-6", "route", "add", "unreachable", "fd94:9::/64"}},
		{b, []string{"route", "add", "default", "via", "10.94.2.1"}},
		{b, []string{"-6", "route", "add", "default", "via", "fd94:2::1"}},
	} {
		rt.l.MustIP(t, rt.args...)
	}

	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{Name: "eth0", NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.94.0.2/24", "fd94::2/64"} {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	h := stackhost.New(socket.NewInet(s))
	ctx := context.Background()
	for _, gw := range []string{"10.94.0.1", "fd94::1"} {
		dst := "0.0.0.0/0"
		if strings.Contains(gw, ":") {
			dst = "::/0"
		}
		if err := h.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr(gw)}); err != nil {
			t.Fatal(err)
		}
	}
	// One probe at a time first: our neighbour queue holds only a few
	// packets while R1's address is resolved (the kernel's holds more).
	for _, dst := range []string{"10.94.2.2", "fd94:2::2"} {
		r := runTrace(t, opener(h), Config{}, "traceroute", "-n", "-q", "1", "-N", "1", "-w", "3", dst)
		if r.status != 0 || !strings.Contains(r.out, " 3  "+dst+"  ") {
			t.Fatalf("warming up the path to %s: exit %d\n%s%s", dst, r.status, r.out, r.err)
		}
	}
	return h, k
}

// Our traceroute and the kernel host's /usr/bin/traceroute (2.1) trace
// the same path through two kernel routers, with each method and both
// families, toward the destination (port unreachable, echo reply, RST)
// and toward R2's unreachable route (!H, !N for IPv6): line for line the
// same output but for the round trips.
func TestKernelRouters(t *testing.T) {
	if _, err := exec.LookPath("traceroute"); err != nil {
		t.Skip("no traceroute binary to compare with")
	}
	h, k := kernelPath(t)
	for _, args := range [][]string{
		{"-n", "-w", "3", "10.94.2.2"},
		{"-n", "-w", "3", "-I", "10.94.2.2"},
		{"-n", "-w", "3", "-T", "10.94.2.2"},
		{"-n", "-w", "5", "-q", "2", "10.94.2.99"},
		{"-n", "-w", "3", "-m", "2", "10.94.2.2"},
		{"-n", "-w", "3", "-f", "2", "10.94.2.2", "1000"},
		{"-n", "-w", "3", "fd94:2::2"},
		{"-n", "-w", "3", "-I", "fd94:2::2"},
		{"-n", "-w", "3", "-T", "fd94:2::2"},
		{"-n", "-w", "3", "-q", "1", "fd94:9::1"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		kout, err := k.Run(ctx, "traceroute", args...)
		cancel()
		if err != nil {
			t.Fatalf("kernel traceroute %v: %v\n%s", args, err, kout)
		}
		r := runTrace(t, opener(h), Config{}, append([]string{"traceroute"}, args...)...)
		if r.status != 0 || r.err != "" {
			t.Errorf("%v: exit %d: %s%s", args, r.status, r.out, r.err)
			continue
		}
		if norm(r.out) != norm(string(kout)) {
			t.Errorf("%v: ours:\n%s\nthe kernel host's traceroute:\n%s", args, r.out, kout)
		}
		t.Logf("%v:\n%s", args, r.out)
	}
}
