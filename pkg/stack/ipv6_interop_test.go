//go:build linux

package stack

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Kernel interop for IPv6 and ICMPv6: the Linux kernel on the far side of
// a tap in a lab namespace.
//
// NDP is not used here: both neighbour tables are seeded statically (our
// cache with AddStatic, the kernel's with "ip -6 neigh replace … nud
// permanent"), so these tests exercise IPv6 and ICMPv6 alone.

var (
	kernel6 = netip.MustParsePrefix("fd00:a:b::1/64")
	our6    = netip.MustParsePrefix("fd00:a:b::2/64")
)

func newKernelLab6(t *testing.T) (*netlab.Lab, *netlab.TAP, *Stack, *NIC) {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{})
	// nodad: the kernel's address is usable at once (and ours answers
	// no DAD probes: NDP is not part of these tests).
	l.MustIP(t, "-6", "addr", "add", kernel6.String(), "dev", tp.Dev, "nodad")
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(Address{Prefix: our6}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	if err := n.NDP().AddStatic(kernel6.Addr(), tp.MAC); err != nil {
		t.Fatal(err)
	}
	l.MustIP(t, "-6", "neigh", "replace", our6.Addr().String(), "lladdr", n.MAC().String(),
		"dev", tp.Dev, "nud", "permanent")
	return l, tp, s, n
}

// TestKernelPings6: the kernel's ping -6 gets our echo replies, small and
// 4000 bytes (fragmented by the kernel, reassembled by us; our reply
// fragmented by us, reassembled by the kernel).
func TestKernelPings6(t *testing.T) {
	l, _, s, _ := newKernelLab6(t)
	for _, c := range []struct {
		args []string
		n    string
	}{
		{[]string{"-c", "3"}, "3 received"},
		{[]string{"-c", "2", "-s", "4000"}, "2 received"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		args := append([]string{"-6", "-n", "-i", "0.2", "-W", "2"}, c.args...)
		out, err := l.Run(ctx, "ping", append(args, our6.Addr().String())...)
		cancel()
		if err != nil || !strings.Contains(string(out), c.n) {
			t.Fatalf("ping %v: %v\n%s", c.args, err, out)
		}
		t.Logf("%s", lastLines(string(out), 2))
	}
	st := &s.stats
	if st.ICMP6.OutEchoReplies.Load() != 5 {
		t.Errorf("Icmp6OutEchoReplies = %d, want 5", st.ICMP6.OutEchoReplies.Load())
	}
	if st.IP6.ReasmOKs.Load() != 2 || st.IP6.FragOKs.Load() != 2 {
		t.Errorf("Ip6ReasmOKs %d Ip6FragOKs %d, want 2 and 2", st.IP6.ReasmOKs.Load(), st.IP6.FragOKs.Load())
	}
}

// TestWePingKernel6: our echo requests, small and 4000 bytes, are
// answered by the kernel.
func TestWePingKernel6(t *testing.T) {
	_, _, s, _ := newKernelLab6(t)
	replies := icmp6Catcher(t, s, wire.ICMPv6EchoReply)
	for i, size := range []int{56, 4000} {
		seq := uint16(i + 1)
		if err := sendEcho6(t, s, 0, kernel6.Addr(), 0x6a6b, seq, size, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		m := wait6(t, replies, "kernel echo reply")
		checkEchoReply(t, m, 0x6a6b, seq, size)
		if m.src != kernel6.Addr() || m.hop != 64 {
			t.Errorf("reply from %v hop limit %d", m.src, m.hop)
		}
	}
	if got := s.stats.IP6.ReasmOKs.Load(); got != 1 {
		t.Errorf("Ip6ReasmOKs = %d, want 1 (the kernel's fragmented 4000-byte reply)", got)
	}
}

// TestKernelPortUnreachable6: a kernel UDP socket sending to a port
// nobody listens on gets our ICMPv6 port unreachable (RFC 4443 §3.1 code
// 4), which it reports as ECONNREFUSED.
func TestKernelPortUnreachable6(t *testing.T) {
	l, _, s, _ := newKernelLab6(t)
	s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	before := kernelCounter(t, l, "Icmp6InDestUnreachs")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	script := `import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("` + our6.Addr().String() + `", 9))
s.send(b"hello")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
`
	out, err := l.Run(ctx, "python3", "-c", script)
	if err != nil {
		t.Skipf("python3 in the lab: %v %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "refused" {
		t.Errorf("kernel UDP socket: %s, want refused", out)
	}
	if got := kernelCounter(t, l, "Icmp6InDestUnreachs"); got != before+1 {
		t.Errorf("kernel Icmp6InDestUnreachs %d → %d", before, got)
	}
	if s.stats.ICMP6.OutDestUnreachs.Load() != 1 {
		t.Errorf("Icmp6OutDestUnreachs = %d", s.stats.ICMP6.OutDestUnreachs.Load())
	}
}

// TestKernelRouterErrors6: the kernel as our router sends us Packet Too
// Big for a packet bound for a 1280-MTU link (we lower the path MTU, RFC
// 8201, and fragment the retry to it), Time Exceeded for hop limit 1, and
// Destination Unreachable (no route).
func TestKernelRouterErrors6(t *testing.T) {
	l, _, s, n := newKernelLab6(t)
	l.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	// A 1280-MTU link inside the lab (a veth pair; the far end is a
	// static neighbour that never answers, so nothing waits on NDP).
	l.MustIP(t, "link", "add", "sbv6a", "mtu", "1280", "type", "veth", "peer", "name", "sbv6b", "mtu", "1280")
	l.MustIP(t, "-6", "addr", "add", "fd00:c::1/64", "dev", "sbv6a", "nodad")
	l.MustIP(t, "link", "set", "sbv6a", "up")
	l.MustIP(t, "link", "set", "sbv6b", "up")
	l.MustIP(t, "-6", "neigh", "replace", "fd00:c::2", "lladdr", "02:00:00:00:00:01", "dev", "sbv6a", "nud", "permanent")
	for _, p := range []string{"fd00:c::/64", "fd00:d::/64"} {
		if err := s.Routes().Add(route.Route{Dst: netip.MustParsePrefix(p), Gateway: kernel6.Addr(), NIC: n.Index()}); err != nil {
			t.Fatal(err)
		}
	}
	errs := icmp6Catcher(t, s, wire.ICMPv6PacketTooBig, wire.ICMPv6TimeExceeded, wire.ICMPv6DstUnreachable)
	far := mustAddr("fd00:c::2")
	expect := func(typ, code uint8) icmp6Msg {
		t.Helper()
		m := wait6(t, errs, "kernel ICMPv6 error")
		if m.msg[0] != typ || m.msg[1] != code || m.src != kernel6.Addr() {
			t.Fatalf("got type %d code %d from %v, want %d/%d from the kernel", m.msg[0], m.msg[1], m.src, typ, code)
		}
		return m
	}

	if err := sendEcho6(t, s, 0, far, 1, 1, 1400, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	m := expect(wire.ICMPv6PacketTooBig, 0)
	if mtu := wire.ICMPv6(m.msg).MTU(); mtu != 1280 {
		t.Errorf("PTB MTU %d", mtu)
	}
	if got, _ := s.PathMTU(far); got != 1280 {
		t.Errorf("path MTU %d, want 1280", got)
	}
	frags := s.stats.IP6.FragCreates.Load()
	if err := sendEcho6(t, s, 0, far, 1, 2, 1400, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := s.stats.IP6.FragCreates.Load() - frags; got != 2 {
		t.Errorf("retry went out in %d fragments, want 2", got)
	}

	if err := sendEcho6(t, s, 0, far, 1, 3, 8, WriteOptions{TTL: 1}); err != nil {
		t.Fatal(err)
	}
	expect(wire.ICMPv6TimeExceeded, wire.ICMPv6CodeHopLimitExceeded)

	if err := sendEcho6(t, s, 0, mustAddr("fd00:d::1"), 1, 4, 8, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute)
}

func kernelCounter(t *testing.T, l *netlab.Lab, name string) int {
	t.Helper()
	out := string(l.MustRun(t, "cat", "/proc/net/snmp6"))
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			var v int
			for _, c := range f[1] {
				v = v*10 + int(c-'0')
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/net/snmp6", name)
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
