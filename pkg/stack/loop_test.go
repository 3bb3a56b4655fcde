package stack

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stackbox/stackbox/pkg/wire"
)

// loopSeen is one packet a raw handler saw.
type loopSeen struct {
	nic   *NIC
	dst   netip.Addr
	typ   PacketType
	bcast bool
	size  int
}

// loopCatcher records what the raw handlers of protocol proto see on s.
func loopCatcher(t *testing.T, s *Stack, proto uint8) func() []loopSeen {
	var mu sync.Mutex
	var got []loopSeen
	for _, v6 := range []bool{false, true} {
		t.Cleanup(s.AddRawHandler(v6, proto, func(pi *PacketInfo, pkt []byte) {
			mu.Lock()
			got = append(got, loopSeen{pi.NIC, pi.Dst, pi.Type, pi.Broadcast, len(pkt)})
			mu.Unlock()
		}))
	}
	return func() []loopSeen {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// TestMulticastBroadcastLoop: WriteOptions.Loop delivers a copy of a
// multicast datagram to the sending stack when the outgoing NIC joined
// the group (RFC 1112 §6.1, IP_MULTICAST_LOOP), as arrived on that NIC;
// broadcasts are always looped (Linux); the wire still carries one copy;
// a fragmented datagram loops back whole.
func TestMulticastBroadcastLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 41)
		a := newTestHost(t, nw, Options{}, "10.0.0.1/24", "2001:db8::1/64")
		b := newTestHost(t, nw, Options{}, "10.0.0.2/24", "2001:db8::2/64")
		const proto = 253 // RFC 3692 experimental
		seenA := loopCatcher(t, a.s, proto)
		seenB := loopCatcher(t, b.s, proto)
		g4, g6 := mustAddr("239.1.1.1"), mustAddr("ff15::1")
		for _, g := range []netip.Addr{g4, g6} {
			if err := a.nic.JoinGroup(g); err != nil {
				t.Fatal(err)
			}
			if err := b.nic.JoinGroup(g); err != nil {
				t.Fatal(err)
			}
		}
		write := func(dst netip.Addr, size int, loop bool) {
			t.Helper()
			r, err := a.s.FindRoute(0, netip.Addr{}, dst)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.s.WritePacket(&r, NewPacket(size), WriteOptions{Proto: proto, Loop: loop}); err != nil {
				t.Fatalf("write to %v: %v", dst, err)
			}
			synctest.Wait()
		}
		for _, tc := range []struct {
			dst   netip.Addr
			size  int
			loop  bool
			want  int // copies a sees
			typ   PacketType
			bcast bool
		}{
			{g4, 100, true, 1, PacketMulticast, false},
			{g4, 100, false, 0, 0, false},
			{g6, 100, true, 1, PacketMulticast, false},
			{g6, 100, false, 0, 0, false},
			{g6, 3000, true, 1, PacketMulticast, false}, // fragmented on the wire
			{g4, 3000, true, 1, PacketMulticast, false},
			{mustAddr("239.9.9.9"), 100, true, 0, 0, false}, // not joined
			{mustAddr("255.255.255.255"), 100, false, 1, PacketBroadcast, true},
			{mustAddr("10.0.0.255"), 100, false, 1, PacketBroadcast, true},
		} {
			write(tc.dst, tc.size, tc.loop)
			got := seenA()
			if len(got) != tc.want {
				t.Fatalf("%v (%d bytes, loop %v): a saw %d copies, want %d", tc.dst, tc.size, tc.loop, len(got), tc.want)
			}
			if tc.want == 1 {
				g := got[0]
				hdr := wire.IPv4MinHeaderLen // IPv4 raw handlers see the header
				if tc.dst.Is6() {
					hdr = 0
				}
				if g.nic != a.nic || g.dst != tc.dst || g.typ != tc.typ || g.bcast != tc.bcast || g.size != tc.size+hdr {
					t.Fatalf("%v: looped copy %+v (nic %s)", tc.dst, g, g.nic.Name())
				}
			}
			if tc.dst != mustAddr("239.9.9.9") {
				if n := len(seenB()); n != 1 {
					t.Fatalf("%v: the peer saw %d copies, want 1", tc.dst, n)
				}
			}
		}
		// Counted as received (as Linux's loopback is).
		if a.s.Stats().IP.InReceives.Load() == 0 || a.s.Stats().IP6.InMcastPkts.Load() == 0 {
			t.Fatal("looped packets not counted")
		}
	})
}
