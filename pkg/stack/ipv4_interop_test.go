//go:build linux

package stack

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// IPv4 and ICMP against the Linux kernel: the kernel sits on the far side
// of a TAP at 10.78.0.1/24, our stack at 10.78.0.2. ARP is not exercised
// here: both sides get static neighbour entries.

var (
	kernel4 = netip.MustParsePrefix("10.78.0.1/24")
	our4    = netip.MustParseAddr("10.78.0.2")
)

type kernelLab4 struct {
	l  *netlab.Lab
	tp *netlab.TAP
	s  *Stack
	n  *NIC
}

func newKernelLab4(t *testing.T) *kernelLab4 {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{kernel4}})
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(Address{Prefix: netip.PrefixFrom(our4, 24)}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true) // ARP resolves both ways from here: no static entries
	return &kernelLab4{l: l, tp: tp, s: s, n: n}
}

func (k *kernelLab4) ping(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := k.l.Run(ctx, "ping", append([]string{"-n", "-W", "2"}, args...)...)
	if err != nil {
		t.Fatalf("ping %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestIPv4KernelPingsUs(t *testing.T) {
	k := newKernelLab4(t)
	out := k.ping(t, "-c", "3", "-i", "0.2", our4.String())
	if !strings.Contains(out, "3 received") || !strings.Contains(out, "ttl=64") {
		t.Errorf("ping output:\n%s", out)
	}
	if v := k.s.Stats().ICMP.OutEchoReps.Load(); v != 3 {
		t.Errorf("OutEchoReps %d", v)
	}
}

func TestIPv4KernelPingsUsFragmented(t *testing.T) {
	k := newKernelLab4(t)
	out := k.ping(t, "-c", "2", "-i", "0.2", "-s", "4000", our4.String())
	if !strings.Contains(out, "2 received") || !strings.Contains(out, "4008 bytes from") {
		t.Errorf("ping output:\n%s", out)
	}
	st := k.s.Stats()
	if st.IP.ReasmOKs.Load() != 2 || st.IP.FragOKs.Load() != 2 || st.IP.FragCreates.Load() != 6 {
		t.Errorf("ReasmOKs %d FragOKs %d FragCreates %d", st.IP.ReasmOKs.Load(), st.IP.FragOKs.Load(), st.IP.FragCreates.Load())
	}
}

func TestIPv4KernelPingRecordRoute(t *testing.T) {
	k := newKernelLab4(t)
	out := k.ping(t, "-c", "1", "-R", our4.String())
	// The kernel records itself on the way out and in; we record
	// ourselves as the request's receiver and the reply's sender.
	i := strings.Index(out, "RR:")
	if i < 0 || !strings.Contains(out, "1 received") {
		t.Fatalf("no record route in ping output:\n%s", out)
	}
	var route []string
	for _, f := range strings.Fields(out[i+3:]) {
		if _, err := netip.ParseAddr(f); err != nil {
			break
		}
		route = append(route, f)
	}
	want := []string{kernel4.Addr().String(), our4.String(), our4.String(), kernel4.Addr().String()}
	if strings.Join(route, " ") != strings.Join(want, " ") {
		t.Errorf("RR %v, want %v; output:\n%s", route, want, out)
	}
}

func TestIPv4KernelPingTimestamp(t *testing.T) {
	k := newKernelLab4(t)
	out := k.ping(t, "-c", "1", "-T", "tsandaddr", our4.String())
	if !strings.Contains(out, "TS:") || !strings.Contains(out, our4.String()) || !strings.Contains(out, "1 received") {
		t.Errorf("ping output:\n%s", out)
	}
}

func TestIPv4WePingKernel(t *testing.T) {
	k := newKernelLab4(t)
	rx := captureICMP(t, k.s)
	for i, size := range []int{56, 4000} {
		data := pattern(size)
		if err := sendEcho(k.s, kernel4.Addr(), 0x4242, uint16(i+1), data, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		r := waitICMP(t, rx, wire.ICMPv4EchoReply)
		if r.pi.Src != kernel4.Addr() || r.icmp().Seq() != uint16(i+1) || !bytes.Equal(r.icmp().Data(), data) {
			t.Fatalf("reply from %v seq %d, %d data bytes", r.pi.Src, r.icmp().Seq(), len(r.icmp().Data()))
		}
	}
	if v := k.s.Stats().IP.ReasmOKs.Load(); v != 1 {
		t.Errorf("ReasmOKs %d (the kernel's 4028-byte reply comes in 3 fragments)", v)
	}
	// Protocol unreachable from the kernel for a protocol it lacks, and
	// our DF send above the MTU fails locally.
	if err := sendProto(k.s, kernel4.Addr(), 253, []byte("experiment"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := waitICMP(t, rx, wire.ICMPv4DestUnreachable)
	if r.icmp().Code() != wire.ICMPv4ProtoUnreachable {
		t.Errorf("kernel answered protocol 253 with code %d", r.icmp().Code())
	}
	if err := sendEcho(k.s, kernel4.Addr(), 1, 9, make([]byte, 1500), WriteOptions{DontFragment: true}); err == nil {
		t.Error("DF send above the MTU succeeded")
	}
}

func TestIPv4KernelGetsOurErrors(t *testing.T) {
	// The kernel sends UDP to us; this stack has no UDP transport
	// registered, so it answers protocol unreachable (RFC 1122 §3.2.2.1),
	// which shows in the kernel's ICMP counters.
	k := newKernelLab4(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := kernelICMPInDestUnreachs(t, k.l, ctx)
	if out, err := k.l.Run(ctx, "bash", "-c", "echo hi > /dev/udp/"+our4.String()+"/9"); err != nil {
		t.Logf("udp send: %v %s", err, out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for kernelICMPInDestUnreachs(t, k.l, ctx) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("kernel saw no destination unreachable; our OutDestUnreachs %d", k.s.Stats().ICMP.OutDestUnreachs.Load())
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := k.s.Stats().IP.InUnknownProtos.Load(); v != 1 {
		t.Errorf("InUnknownProtos %d", v)
	}
}

// kernelICMPInDestUnreachs reads Icmp InDestUnreachs of the lab namespace.
func kernelICMPInDestUnreachs(t *testing.T, l *netlab.Lab, ctx context.Context) int {
	t.Helper()
	out, err := l.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Icmp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "InDestUnreachs" && i < len(f) {
				var v int
				for _, c := range f[i] {
					v = v*10 + int(c-'0')
				}
				return v
			}
		}
	}
	t.Fatalf("no Icmp InDestUnreachs in\n%s", out)
	return 0
}

// TestIPv4KernelThroughOurRouter: our stack routes between the kernel
// (10.78.0.1, on the TAP) and an emulated host B (10.79.0.1, on a link
// with MTU 1000). The kernel's ping reaches B through us, TTL 1 gets time
// exceeded from us, and a DF ping too big for B's link gets fragmentation
// needed with MTU 1000, which the kernel's ping reports.
func TestIPv4KernelThroughOurRouter(t *testing.T) {
	k := newKernelLab4(t)
	k.s.SetForwarding(false, true)
	nw := newTestNet(t, 78)
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	b := newTestHostNIC(t, nw, Options{Seed: 3}, no, emu.PortConfig{MTU: 1000}, "10.79.0.1/24")
	rb, err := k.s.AddNIC(nw.NewPort(emu.PortConfig{MTU: 1000}), no)
	if err != nil {
		t.Fatal(err)
	}
	rb.AddAddress(Address{Prefix: netip.MustParsePrefix("10.79.0.254/24")})
	rb.SetUp(true)
	neighbours(t, b.nic, "10.79.0.1", rb, "10.79.0.254")
	if err := b.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr("10.79.0.254")}); err != nil {
		t.Fatal(err)
	}
	k.l.MustIP(t, "route", "add", "10.79.0.0/24", "via", our4.String())

	out := k.ping(t, "-c", "2", "-i", "0.2", "10.79.0.1")
	if !strings.Contains(out, "2 received") || !strings.Contains(out, "ttl=63") {
		t.Errorf("ping through us:\n%s", out)
	}
	if v := k.s.Stats().IP.ForwDatagrams.Load(); v != 4 {
		t.Errorf("ForwDatagrams %d, want 4", v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ttl, _ := k.l.Run(ctx, "ping", "-n", "-W", "2", "-c", "1", "-t", "1", "10.79.0.1")
	if !strings.Contains(string(ttl), "From "+our4.String()) || !strings.Contains(string(ttl), "Time to live exceeded") {
		t.Errorf("ping -t 1:\n%s", ttl)
	}

	// Without DF the kernel's 1400-byte ping is fragmented by us.
	out = k.ping(t, "-c", "1", "-s", "1400", "-M", "dont", "10.79.0.1")
	if !strings.Contains(out, "1408 bytes from") {
		t.Errorf("ping -s 1400 -M dont:\n%s", out)
	}
	if v := k.s.Stats().IP.FragCreates.Load(); v != 2 {
		t.Errorf("FragCreates %d, want 2", v)
	}
	frag, _ := k.l.Run(ctx, "ping", "-n", "-W", "2", "-c", "2", "-i", "0.3", "-s", "1400", "-M", "do", "10.79.0.1")
	if !strings.Contains(string(frag), "mtu = 1000") && !strings.Contains(string(frag), "mtu=1000") {
		t.Errorf("ping -M do -s 1400 did not learn MTU 1000:\n%s", frag)
	}
	if v := k.s.Stats().ICMP.OutDestUnreachs.Load(); v < 1 {
		t.Errorf("OutDestUnreachs %d", v)
	}
	if rt, err := k.l.Run(ctx, "ip", "route", "get", "10.79.0.1"); err != nil || !strings.Contains(string(rt), "mtu 1000") {
		t.Errorf("kernel route cache after frag needed: %v\n%s", err, rt)
	}
}
