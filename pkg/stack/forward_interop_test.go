//go:build linux

package stack

import (
	"context"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link/tap"
)

// Kernel interop of the network layer as a router: our stack forwards
// between two namespaces, each a kernel host on a TAP.

// ixLabWait bounds every exchange with a kernel.
const ixLabWait = 10 * time.Second

// addLabNIC adds a TAP into lab to s as a NIC (DAD and autoconfiguration
// off, so the test does not wait for them) carrying ours, up; the kernel
// side gets kernel. IPv6 kernel addresses are added with nodad so they
// work at once.
func addLabNIC(t testing.TB, s *Stack, lab *netlab.Lab, kernel, ours []string, cfg tap.Config) (*NIC, *netlab.TAP) {
	t.Helper()
	var v4 []netip.Prefix
	var v6 []netip.Prefix
	for _, a := range kernel {
		p := netip.MustParsePrefix(a)
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	tp := lab.AddTAP(t, netlab.TAPConfig{Config: cfg, Addrs: v4})
	for _, p := range v6 {
		lab.MustIP(t, "addr", "add", p.String(), "dev", tp.Dev, "nodad")
	}
	n, err := s.AddNIC(tp.Endpoint, NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ours {
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return n, tp
}

// newLabStack makes a stack with one NIC on a TAP into lab: kernelAddrs on
// the kernel side, ourAddrs on ours. The stack is closed at the end of the
// test (before the lab's own cleanup, which runs later).
func newLabStack(t testing.TB, lab *netlab.Lab, opts Options, cfg tap.Config, kernelAddrs, ourAddrs []string) (*Stack, *NIC, *netlab.TAP) {
	t.Helper()
	s := New(opts)
	n, tp := addLabNIC(t, s, lab, kernelAddrs, ourAddrs, cfg)
	t.Cleanup(func() { s.Close() })
	return s, n, tp
}

// ixLabRun runs a command in lab bounded by ixLabWait and returns its output
// and error (a failing command is not fatal: callers judge the output).
func ixLabRun(lab *netlab.Lab, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ixLabWait)
	defer cancel()
	out, err := lab.Run(ctx, name, args...)
	return string(out), err
}

// tracerouteHops parses `traceroute -n -q1` output into the address of
// each hop ("*" for none), hop 1 first.
func tracerouteHops(out string) []string {
	var hops []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "traceroute" || f[0] == "traceroute6" {
			continue
		}
		if f[0] != strconv.Itoa(len(hops)+1) {
			continue
		}
		hops = append(hops, f[1])
	}
	return hops
}

type routerLab struct {
	s          *Stack
	eth0, eth1 *NIC
	a, b       *netlab.Lab
	tpA, tpB   *netlab.TAP
}

// newRouterLab: namespace A (10.61.1.2, fd00:61:1::2) — our stack
// (eth0 10.61.1.1 fd00:61:1::1, eth1 10.61.2.1 fd00:61:2::1, forwarding
// both families) — namespace B (10.61.2.2, fd00:61:2::2). Both kernels
// route everything through us.
func newRouterLab(t *testing.T) *routerLab {
	t.Helper()
	r := &routerLab{a: netlab.New(t), b: netlab.New(t)}
	r.s = New(Options{IPv4Forwarding: true, IPv6Forwarding: true})
	r.eth0, r.tpA = addLabNIC(t, r.s, r.a, []string{"10.61.1.2/24", "fd00:61:1::2/64"},
		[]string{"10.61.1.1/24", "fd00:61:1::1/64"}, tap.Config{})
	r.eth1, r.tpB = addLabNIC(t, r.s, r.b, []string{"10.61.2.2/24", "fd00:61:2::2/64"},
		[]string{"10.61.2.1/24", "fd00:61:2::1/64"}, tap.Config{})
	t.Cleanup(func() { r.s.Close() })
	r.a.MustIP(t, "route", "add", "default", "via", "10.61.1.1")
	r.a.MustIP(t, "-6", "route", "add", "default", "via", "fd00:61:1::1")
	r.b.MustIP(t, "route", "add", "default", "via", "10.61.2.1")
	r.b.MustIP(t, "-6", "route", "add", "default", "via", "fd00:61:2::1")
	return r
}

// TestForwardInteropPing: a kernel in namespace A pings a kernel in
// namespace B through our stack (RFC 1812 §5.2 / RFC 8200 §3 forwarding),
// both families, and the forwarding counters move.
func TestForwardInteropPing(t *testing.T) {
	r := newRouterLab(t)
	for _, dst := range []string{"10.61.2.2", "fd00:61:2::2"} {
		t.Run(dst, func(t *testing.T) {
			st := r.s.Stats()
			fw4, fw6 := st.IP.ForwDatagrams.Load(), st.IP6.OutForwDatagrams.Load()
			out, err := ixLabRun(r.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst)
			if err != nil {
				t.Fatalf("ping %s from A through our stack: %v\n%s", dst, err, out)
			}
			if !strings.Contains(out, " 0% packet loss") && !strings.Contains(out, "3 received") {
				t.Logf("ping output:\n%s", out) // the first may wait for ARP/NDP; at least one came back
			}
			d4, d6 := st.IP.ForwDatagrams.Load()-fw4, st.IP6.OutForwDatagrams.Load()-fw6
			if netip.MustParseAddr(dst).Is4() {
				if d4 < 2 {
					t.Errorf("Ip ForwDatagrams moved by %d, want at least 2 (request and reply)", d4)
				}
			} else if d6 < 2 {
				t.Errorf("Ip6 OutForwDatagrams moved by %d, want at least 2", d6)
			}
		})
	}
}

// TestForwardInteropTraceroute: traceroute from A to B shows our stack as
// hop 1 (ICMP Time Exceeded, RFC 792 / RFC 4443 §3.3, sourced from the
// address facing the sender) and B as hop 2.
func TestForwardInteropTraceroute(t *testing.T) {
	if _, err := exec.LookPath("traceroute"); err != nil {
		t.Skip("traceroute not installed (apt-get install traceroute); skipping")
	}
	r := newRouterLab(t)
	// Resolve the neighbours first so no probe waits on ARP/NDP.
	ixLabRun(r.a, "ping", "-c", "1", "-W", "2", "10.61.2.2")
	ixLabRun(r.a, "ping", "-c", "1", "-W", "2", "fd00:61:2::2")
	for _, tc := range []struct {
		dst, hop1 string
		args      []string
	}{
		{"10.61.2.2", "10.61.1.1", nil},
		{"fd00:61:2::2", "fd00:61:1::1", []string{"-6"}},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			te4, te6 := r.s.Stats().ICMP.OutTimeExcds.Load(), r.s.Stats().ICMP6.OutTimeExcds.Load()
			args := append(append([]string{}, tc.args...), "-n", "-q1", "-w1", "-m", "3", tc.dst)
			out, err := ixLabRun(r.a, "traceroute", args...)
			if err != nil {
				t.Fatalf("traceroute %v: %v\n%s", args, err, out)
			}
			t.Logf("traceroute %v:\n%s", args, out)
			hops := tracerouteHops(out)
			if len(hops) < 2 || hops[0] != tc.hop1 || hops[1] != tc.dst {
				t.Fatalf("traceroute hops %q, want [%s %s]\n%s", hops, tc.hop1, tc.dst, out)
			}
			if tc.args == nil && r.s.Stats().ICMP.OutTimeExcds.Load() == te4 {
				t.Error("Icmp OutTimeExcds did not move")
			}
			if tc.args != nil && r.s.Stats().ICMP6.OutTimeExcds.Load() == te6 {
				t.Error("Icmp6 OutTimeExcds did not move")
			}
		})
	}
}

// TestForwardInteropPMTU: a packet that does not fit the next link is
// answered with ICMP Fragmentation Needed carrying the next-hop MTU
// (RFC 1191 §4) when DF is set, and with ICMPv6 Packet Too Big (RFC 8201,
// RFC 4443 §3.2) always; the sending kernel caches the path MTU.
func TestForwardInteropPMTU(t *testing.T) {
	r := newRouterLab(t)
	ixLabRun(r.a, "ping", "-c", "1", "-W", "2", "10.61.2.2")
	ixLabRun(r.a, "ping", "-c", "1", "-W", "2", "fd00:61:2::2")

	t.Run("ipv4", func(t *testing.T) {
		if err := r.eth1.SetMTU(1000); err != nil {
			t.Fatal(err)
		}
		du := r.s.Stats().ICMP.OutDestUnreachs.Load()
		out, _ := ixLabRun(r.a, "ping", "-M", "do", "-s", "1400", "-c", "1", "-W", "2", "10.61.2.2")
		t.Logf("%s", out)
		if !strings.Contains(out, "From 10.61.1.1") || !strings.Contains(out, "Frag needed and DF set (mtu = 1000)") {
			t.Errorf("ping -M do -s 1400 output lacks \"From 10.61.1.1 … Frag needed and DF set (mtu = 1000)\":\n%s", out)
		}
		rt := string(r.a.MustIP(t, "route", "get", "10.61.2.2"))
		if !strings.Contains(rt, "mtu 1000") {
			t.Errorf("kernel A did not cache path MTU 1000:\n%s", rt)
		}
		if r.s.Stats().ICMP.OutDestUnreachs.Load() == du {
			t.Error("Icmp OutDestUnreachs did not move")
		}
		// A packet that fits still goes through.
		if out, err := ixLabRun(r.a, "ping", "-M", "do", "-s", "900", "-c", "1", "-W", "2", "10.61.2.2"); err != nil {
			t.Errorf("ping -s 900 through MTU 1000: %v\n%s", err, out)
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		if err := r.eth1.SetMTU(1280); err != nil {
			t.Fatal(err)
		}
		ptb := r.s.Stats().ICMP6.OutPktTooBigs.Load()
		out, _ := ixLabRun(r.a, "ping", "-6", "-M", "do", "-s", "1400", "-c", "1", "-W", "2", "fd00:61:2::2")
		t.Logf("%s", out)
		if !strings.Contains(out, "From fd00:61:1::1") || !strings.Contains(out, "Packet too big: mtu=1280") {
			t.Errorf("ping -6 -M do -s 1400 output lacks \"From fd00:61:1::1 … Packet too big: mtu=1280\":\n%s", out)
		}
		rt := string(r.a.MustIP(t, "-6", "route", "get", "fd00:61:2::2"))
		if !strings.Contains(rt, "mtu 1280") {
			t.Errorf("kernel A did not cache path MTU 1280:\n%s", rt)
		}
		if r.s.Stats().ICMP6.OutPktTooBigs.Load() == ptb {
			t.Error("Icmp6 OutPktTooBigs did not move")
		}
		if out, err := ixLabRun(r.a, "ping", "-6", "-M", "do", "-s", "1200", "-c", "1", "-W", "2", "fd00:61:2::2"); err != nil {
			t.Errorf("ping -6 -s 1200 through MTU 1280: %v\n%s", err, out)
		}
	})
}
