//go:build linux

package ping

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// kernelLab puts our stack (10.95.0.2, fd95::2) on a TAP whose other
// side is the kernel (10.95.0.1, fd95::1) in a namespace of the test's
// own. It skips without root.
func kernelLab(t *testing.T) (*netlab.Lab, *netlab.TAP, *stackhost.Host) {
	t.Helper()
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.95.0.1/24")}})
	lab.MustIP(t, "-6", "addr", "add", "fd95::1/64", "dev", tp.Dev, "nodad")
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{Name: "eth0", NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.95.0.2/24", "fd95::2/64"} {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return lab, tp, stackhost.New(socket.NewInet(s))
}

// summaryLines returns the statistics and rtt lines of a ping output.
func summaryLines(t *testing.T, out string) (stats, rtt string) {
	t.Helper()
	l := lines(out)
	for i, s := range l {
		if strings.HasPrefix(s, "--- ") && i+2 < len(l) {
			return l[i+1], l[i+2]
		}
	}
	t.Fatalf("no summary in:\n%s", out)
	return "", ""
}

// Our ping to the kernel and the kernel's iputils ping to our stack,
// IPv4 and IPv6, all with 0% loss; our reply and summary lines have the
// forms of the kernel ping's lines from the same run.
func TestKernelInterop(t *testing.T) {
	lab, _, h := kernelLab(t)
	for _, c := range []struct{ ours, theirs, ourArgs, kernelArgs []string }{
		{ours: []string{"ping", "-c", "3", "-i", "0.2", "10.95.0.1"}, theirs: []string{"-c", "3", "-i", "0.2", "10.95.0.2"}},
		{ours: []string{"ping6", "-c", "3", "-i", "0.2", "fd95::1"}, theirs: []string{"-6", "-c", "3", "-i", "0.2", "fd95::2"}},
		{ours: []string{"ping", "-c", "3", "-i", "0.2", "-s", "1200", "10.95.0.1"}, theirs: []string{"-c", "3", "-i", "0.2", "-s", "1200", "10.95.0.2"}},
	} {
		r := runPing(t, opener(h), Config{}, c.ours...)
		if r.status != 0 || r.err != "" {
			t.Fatalf("%v: exit %d, %q\n%s", c.ours, r.status, r.err, r.out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		kout, err := lab.Run(ctx, "ping", c.theirs...)
		cancel()
		if err != nil {
			t.Fatalf("kernel ping %v: %v\n%s", c.theirs, err, kout)
		}
		ks, kr := summaryLines(t, string(kout))
		os, or := summaryLines(t, r.out)
		if !strings.Contains(ks, " 0% packet loss") || !strings.Contains(os, " 0% packet loss") {
			t.Errorf("%v: loss: ours %q, kernel's %q", c.ours, os, ks)
		}
		if !shapeOf(ks).MatchString(os) || !shapeOf(kr).MatchString(or) {
			t.Errorf("%v: summary forms differ:\nours:   %q\n        %q\nkernel: %q\n        %q", c.ours, os, or, ks, kr)
		}
		t.Logf("ours:\n%s\nkernel's:\n%s", r.out, kout)
		// Line by line: header and replies have the kernel's forms too.
		ol, kl := lines(r.out), lines(string(kout))
		if len(ol) != len(kl) {
			t.Errorf("%v: %d lines, the kernel's ping %d:\n%s\n%s", c.ours, len(ol), len(kl), r.out, kout)
			continue
		}
		for i := range ol {
			if !shapeOf(kl[i]).MatchString(ol[i]) {
				t.Errorf("%v: line %d %q, kernel ping printed %q", c.ours, i, ol[i], kl[i])
			}
		}
	}
}

// ICMP errors from a kernel router: with -t 1 the kernel answers Time
// to live exceeded; for a network it has no route to, Destination Net
// Unreachable; IPv6's hop limit gives Time exceeded: Hop limit. All come
// from the error queue and exit 1.
func TestKernelICMPErrors(t *testing.T) {
	lab, _, h := kernelLab(t)
	lab.Sysctl(t, "net.ipv4.ip_forward", "1")
	// A route for 10.96.0.0/24 (back through the tap: forwarding is what
	// matters, and TTL 1 stops it first).
	lab.MustIP(t, "route", "add", "10.96.0.0/24", "via", "10.95.0.2")
	ctx := context.Background()
	for _, dst := range []string{"10.96.0.0/24", "10.97.0.0/24"} {
		if err := h.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr("10.95.0.1")}); err != nil {
			t.Fatal(err)
		}
	}
	r := runPing(t, opener(h), Config{}, "ping", "-c", "2", "-i", "0.2", "-t", "1", "10.96.0.5")
	want := "PING 10.96.0.5 (10.96.0.5) 56(84) bytes of data.\n" +
		"From 10.95.0.1 icmp_seq=1 Time to live exceeded\n" +
		"From 10.95.0.1 icmp_seq=2 Time to live exceeded\n\n" +
		"--- 10.96.0.5 ping statistics ---\n"
	if r.status != 1 || !strings.HasPrefix(r.out, want) {
		t.Errorf("-t 1: exit %d:\n%s%s", r.status, r.out, r.err)
	}
	mustMatch(t, "-t 1 stats", r.out, `\n2 packets transmitted, 0 received, \+2 errors, 100% packet loss, time \d+ms\n\n$`)
	checkShapes(t, r.out)

	// IPv6: the hop limit exceeded at the kernel (RFC 4443 §3.3).
	lab.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	lab.MustIP(t, "-6", "route", "add", "fd96::/64", "via", "fd95::2")
	if err := h.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("fd96::/64"), Gateway: netip.MustParseAddr("fd95::1")}); err != nil {
		t.Fatal(err)
	}
	r = runPing(t, opener(h), Config{}, "ping", "-c", "1", "-t", "1", "fd96::5")
	want = "PING fd96::5(fd96::5) 56 data bytes\n" +
		"From fd95::1 icmp_seq=1 Time exceeded: Hop limit\n\n"
	if r.status != 1 || !strings.HasPrefix(r.out, want) {
		t.Errorf("IPv6 -t 1: exit %d:\n%s%s", r.status, r.out, r.err)
	}

	r = runPing(t, opener(h), Config{}, "ping", "-c", "1", "10.97.0.5")
	want = "PING 10.97.0.5 (10.97.0.5) 56(84) bytes of data.\n" +
		"From 10.95.0.1 icmp_seq=1 Destination Net Unreachable\n\n"
	if r.status != 1 || !strings.HasPrefix(r.out, want) {
		t.Errorf("net unreachable: exit %d:\n%s%s", r.status, r.out, r.err)
	}
}
