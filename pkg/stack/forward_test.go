package stack

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Forwarding on the emulated network: host A — router R — host B, each
// side its own emulated switch. The kernel-interop version of the same
// (forward_interop_test.go) needs root; this one runs anywhere.

type ixICMPSeen struct {
	from       netip.Addr
	typ, code  uint8
	mtu        int
	quotedDst  netip.Addr // destination of the quoted packet
	quotedSize int
}

// ixICMPLog collects the ICMP error messages a stack receives.
type ixICMPLog struct {
	mu  sync.Mutex
	got []ixICMPSeen
}

func ixCollectICMPErrors(t testing.TB, s *Stack, v6 bool) *ixICMPLog {
	l := &ixICMPLog{}
	proto := wire.IPProtoICMP
	if v6 {
		proto = wire.IPProtoICMPv6
	}
	remove := s.AddRawHandler(v6, proto, func(pi *PacketInfo, pkt []byte) {
		var e ixICMPSeen
		e.from = pi.Src
		if !v6 {
			ip, err := wire.ParseIPv4(pkt)
			if err != nil {
				return
			}
			m, err := wire.ParseICMPv4(ip.Payload())
			if err != nil || !m.IsError() {
				return
			}
			e.typ, e.code, e.mtu = m.Type(), m.Code(), int(m.NextHopMTU())
			if q, err := wire.ParseIPv4Quoted(m.Original()); err == nil {
				e.quotedDst, e.quotedSize = q.Dst(), q.TotalLen()
			}
		} else {
			m, err := wire.ParseICMPv6(pkt)
			if err != nil || !m.IsError() {
				return
			}
			e.typ, e.code, e.mtu = m.Type(), m.Code(), int(m.MTU())
			if q, err := wire.ParseIPv6Quoted(m.Original()); err == nil {
				e.quotedDst, e.quotedSize = q.Dst(), 40+q.PayloadLen()
			}
		}
		l.mu.Lock()
		l.got = append(l.got, e)
		l.mu.Unlock()
	})
	t.Cleanup(remove)
	return l
}

// find returns the first error of type typ received.
func (l *ixICMPLog) find(typ uint8) (ixICMPSeen, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.got {
		if e.typ == typ {
			return e, true
		}
	}
	return ixICMPSeen{}, false
}

type emuRouterNet struct {
	a, b       *testHost
	r          *Stack
	eth0, eth1 *NIC
}

// newEmuRouterNet: A (10.64.1.2, fd00:64:1::2) on one switch, B
// (10.64.2.2, fd00:64:2::2) on another, R forwarding between them with .1
// on each; A and B route everything through R.
func newEmuRouterNet(t *testing.T, seed uint64) *emuRouterNet {
	t.Helper()
	nwA, nwB := newTestNet(t, seed), newTestNet(t, seed+1)
	e := &emuRouterNet{
		a: newTestHost(t, nwA, Options{}, "10.64.1.2/24", "fd00:64:1::2/64"),
		b: newTestHost(t, nwB, Options{}, "10.64.2.2/24", "fd00:64:2::2/64"),
		r: New(Options{IPv4Forwarding: true, IPv6Forwarding: true}),
	}
	t.Cleanup(func() { e.r.Close() })
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	var err error
	if e.eth0, err = e.r.AddNIC(nwA.NewPort(emu.PortConfig{}), no); err != nil {
		t.Fatal(err)
	}
	if e.eth1, err = e.r.AddNIC(nwB.NewPort(emu.PortConfig{}), no); err != nil {
		t.Fatal(err)
	}
	for n, addrs := range map[*NIC][]string{
		e.eth0: {"10.64.1.1/24", "fd00:64:1::1/64"},
		e.eth1: {"10.64.2.1/24", "fd00:64:2::1/64"},
	} {
		for _, a := range addrs {
			if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
				t.Fatal(err)
			}
		}
		n.SetUp(true)
	}
	for h, gws := range map[*testHost][]string{e.a: {"10.64.1.1", "fd00:64:1::1"}, e.b: {"10.64.2.1", "fd00:64:2::1"}} {
		for _, gw := range gws {
			g := mustAddr(gw)
			dst := netip.MustParsePrefix("0.0.0.0/0")
			if g.Is6() {
				dst = netip.MustParsePrefix("::/0")
			}
			if err := h.s.Routes().Add(route.Route{Dst: dst, Gateway: g}); err != nil {
				t.Fatalf("default route via %v: %v", gw, err)
			}
		}
	}
	return e
}

// TestForwardEmu: echoes from A to B cross R (RFC 1812 §5.2, RFC 8200
// §3), both families, and R counts them; a hop limit of 1 gets Time
// Exceeded from R (RFC 792, RFC 4443 §3.3).
func TestForwardEmu(t *testing.T) {
	e := newEmuRouterNet(t, 64)
	for _, tc := range []struct {
		dst, hop string
		te       uint8
	}{
		{"10.64.2.2", "10.64.1.1", wire.ICMPv4TimeExceeded},
		{"fd00:64:2::2", "fd00:64:1::1", wire.ICMPv6TimeExceeded},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			dst := mustAddr(tc.dst)
			v6 := dst.Is6()
			st := e.r.Stats()
			fw4, fw6 := st.IP.ForwDatagrams.Load(), st.IP6.OutForwDatagrams.Load()
			replies := ixCollectEchoes(t, e.a.s, v6, true)
			errs := ixCollectICMPErrors(t, e.a.s, v6)
			ixPing(t, e.a.s, replies, dst, 0x64, 1, ixPattern(64, 300), 5*time.Second)
			if v6 && st.IP6.OutForwDatagrams.Load()-fw6 < 2 {
				t.Errorf("Ip6 OutForwDatagrams +%d, want ≥ 2", st.IP6.OutForwDatagrams.Load()-fw6)
			}
			if !v6 && st.IP.ForwDatagrams.Load()-fw4 < 2 {
				t.Errorf("Ip ForwDatagrams +%d, want ≥ 2", st.IP.ForwDatagrams.Load()-fw4)
			}
			if err := ixSendEcho(e.a.s, dst, 0x64, 2, ixPattern(65, 100), WriteOptions{TTL: 1}); err != nil {
				t.Fatal(err)
			}
			var got ixICMPSeen
			if !ixWaitFor(5*time.Second, func() bool { var ok bool; got, ok = errs.find(tc.te); return ok }) {
				t.Fatal("no Time Exceeded for a hop limit of 1")
			}
			if got.from != mustAddr(tc.hop) || got.code != 0 || got.quotedDst != dst {
				t.Errorf("Time Exceeded from %v code %d quoting a packet to %v; want from %s code 0 quoting %v",
					got.from, got.code, got.quotedDst, tc.hop, dst)
			}
			if _, ok := replies.get(0x64, 2); ok {
				t.Error("the TTL-1 echo reached B")
			}
		})
	}
}

// TestForwardEmuMTU: a packet too big for R's next link is fragmented by
// R when IPv4 allows it (RFC 791 §2.3), answered with Fragmentation
// Needed and the next-hop MTU when DF is set (RFC 1191 §4), and with
// Packet Too Big for IPv6 (RFC 8200 §5, RFC 4443 §3.2); the sender's path
// MTU follows, and its next datagram fits.
func TestForwardEmuMTU(t *testing.T) {
	e := newEmuRouterNet(t, 66)
	t.Run("ipv4", func(t *testing.T) {
		if err := e.eth1.SetMTU(1000); err != nil {
			t.Fatal(err)
		}
		dst := mustAddr("10.64.2.2")
		replies := ixCollectEchoes(t, e.a.s, false, true)
		requests := ixCollectEchoes(t, e.b.s, false, false)
		errs := ixCollectICMPErrors(t, e.a.s, false)
		// Without DF: R fragments; B reassembles what A sent whole.
		fc := e.r.Stats().IP.FragCreates.Load()
		ixPing(t, e.a.s, replies, dst, 0x66, 1, ixPattern(66, 1400), 5*time.Second)
		if req, ok := requests.get(0x66, 1); !ok || string(req.data) != string(ixPattern(66, 1400)) {
			t.Error("B did not get the 1400-byte request intact")
		}
		if e.r.Stats().IP.FragCreates.Load() == fc {
			t.Error("R forwarded a 1428-byte packet onto MTU 1000 without fragmenting it")
		}
		// With DF: Fragmentation Needed, MTU 1000.
		if err := ixSendEcho(e.a.s, dst, 0x66, 2, ixPattern(67, 1400), WriteOptions{DontFragment: true}); err != nil {
			t.Fatal(err)
		}
		var got ixICMPSeen
		if !ixWaitFor(5*time.Second, func() bool { var ok bool; got, ok = errs.find(wire.ICMPv4DestUnreachable); return ok }) {
			t.Fatal("no Fragmentation Needed for a DF packet over MTU 1000")
		}
		if got.from != mustAddr("10.64.1.1") || got.code != 4 || got.mtu != 1000 {
			t.Errorf("Destination Unreachable from %v code %d MTU %d; want from 10.64.1.1 code 4 MTU 1000", got.from, got.code, got.mtu)
		}
		if m, ok := e.a.s.PathMTU(dst); !ok || m != 1000 {
			t.Errorf("A's path MTU to B %d (%v), want 1000", m, ok)
		}
		if _, ok := requests.get(0x66, 2); ok {
			t.Error("the DF packet reached B")
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		if err := e.eth1.SetMTU(1280); err != nil {
			t.Fatal(err)
		}
		dst := mustAddr("fd00:64:2::2")
		replies := ixCollectEchoes(t, e.a.s, true, true)
		errs := ixCollectICMPErrors(t, e.a.s, true)
		// Resolve B at R with a small echo first.
		ixPing(t, e.a.s, replies, dst, 0x66, 10, ixPattern(68, 100), 5*time.Second)
		if err := ixSendEcho(e.a.s, dst, 0x66, 11, ixPattern(69, 1400), WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		var got ixICMPSeen
		if !ixWaitFor(5*time.Second, func() bool { var ok bool; got, ok = errs.find(wire.ICMPv6PacketTooBig); return ok }) {
			t.Fatal("no Packet Too Big for a 1448-byte packet over MTU 1280")
		}
		if got.from != mustAddr("fd00:64:1::1") || got.mtu != 1280 {
			t.Errorf("Packet Too Big from %v MTU %d; want from fd00:64:1::1 MTU 1280", got.from, got.mtu)
		}
		if m, ok := e.a.s.PathMTU(dst); !ok || m != 1280 {
			t.Errorf("A's path MTU to B %d (%v), want 1280", m, ok)
		}
		// A now fragments at the source (RFC 8200 §5), and the echo
		// gets through.
		ixPing(t, e.a.s, replies, dst, 0x66, 12, ixPattern(70, 1400), 5*time.Second)
	})
}
