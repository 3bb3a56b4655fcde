package stack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/wire"
)

// End-to-end NDP between stacks on the emulated network, through the IPv6
// input and output paths.

// echoRequest6 builds an IPv6 echo request (header included).
func echoRequest6(src, dst netip.Addr) *Packet {
	icmp := wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.ICMPv6EchoRest(0x77, 1), PayloadLen: 8}
	pkt := NewPacket(icmp.Len() + 8)
	icmp.Encode(pkt.Bytes())
	icmp.SetChecksum(pkt.Bytes(), src, dst)
	h := wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: 64, Src: src, Dst: dst, PayloadLen: pkt.Len()}
	h.Encode(pkt.Prepend(h.Len()))
	return pkt
}

func newDADHost(t *testing.T, nw *emu.Network, addrs ...string) *testHost {
	return newTestHostNIC(t, nw, Options{}, NICOptions{}, emu.PortConfig{}, addrs...)
}

// TestNDPBetweenStacks: two stacks pass DAD on their link-local and
// global addresses, then resolve each other with NS/NA: the solicitor's
// entry ends REACHABLE, the solicited one learned the solicitor from the
// SLLAO, and the echo request that waited for resolution is answered.
func TestNDPBetweenStacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 3)
		a := newDADHost(t, nw, "2001:db8::1/64")
		b := newDADHost(t, nw, "2001:db8::2/64")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for _, h := range []*testHost{a, b} {
			for _, ad := range h.nic.Addresses() {
				if ad.Prefix.Addr().Is6() && ad.State != Preferred {
					t.Fatalf("%v is %v after DAD", ad.Prefix, ad.State)
				}
			}
		}
		ga, gb := mustAddr("2001:db8::1"), mustAddr("2001:db8::2")
		if _, ok := a.nic.NDP().Resolve(gb, echoRequest6(ga, gb)); ok {
			t.Fatal("resolved before any NDP")
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		e, ok := a.nic.NDP().Lookup(gb)
		if !ok || e.MAC != b.nic.MAC() || e.State != neighbor.Reachable {
			t.Errorf("A's entry for B: %+v, want REACHABLE at %v", e, b.nic.MAC())
		}
		e, ok = b.nic.NDP().Lookup(ga)
		if !ok || e.MAC != a.nic.MAC() {
			t.Errorf("B's entry for A: %+v, want A's MAC %v", e, a.nic.MAC())
		}
		if got := a.s.stats.ICMP6Msg.In[wire.ICMPv6EchoReply].Load(); got != 1 {
			t.Errorf("A got %d echo replies, want 1", got)
		}
		// Link-local addresses resolve the same way.
		la, lb := LinkLocalAddress(a.nic.MAC()), LinkLocalAddress(b.nic.MAC())
		b.nic.NDP().Resolve(la, echoRequest6(lb, la))
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if e, ok := b.nic.NDP().Lookup(la); !ok || e.MAC != a.nic.MAC() {
			t.Errorf("B's entry for A's link-local: %+v", e)
		}
		if got := b.s.stats.ICMP6Msg.In[wire.ICMPv6EchoReply].Load(); got != 1 {
			t.Errorf("B got %d echo replies, want 1", got)
		}
	})
}

// TestDADBetweenStacks: a stack that adds an address another stack on the
// link already holds fails DAD (the holder defends it with an NA, RFC
// 4861 §7.2.4); the holder keeps it.
func TestDADBetweenStacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 4)
		a := newDADHost(t, nw, "2001:db8::5/64")
		b := newDADHost(t, nw)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if err := b.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::5/64")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if st := addrState(t, b.nic, "2001:db8::5"); st != Duplicate {
			t.Errorf("B's copy is %v, want dadfailed", st)
		}
		if st := addrState(t, a.nic, "2001:db8::5"); st != Preferred {
			t.Errorf("A's address is %v, want preferred", st)
		}
		if st := addrState(t, b.nic, LinkLocalAddress(b.nic.MAC()).String()); st != Preferred {
			t.Errorf("B's link-local address is %v", st)
		}
	})
}
