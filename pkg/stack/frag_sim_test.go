package stack

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Fragmentation and reassembly across the emulated network, in fake time:
// large echoes over impaired links, hand-made overlapping fragments, and
// the reassembly memory cap.

// fragSizes returns n ICMP data sizes spread over 4000..20000 bytes, so
// every datagram takes 3 to 14 fragments at MTU 1500.
func fragSizes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 4000 + (i*7919)%16001
	}
	return out
}

// fragFamilies are the address pairs the simulations use.
var fragFamilies = []struct {
	name     string
	src, dst string // prefixes of host a and host b
}{
	{"ipv4", "10.80.0.1/24", "10.80.0.2/24"},
	{"ipv6", "fd00:80::1/64", "fd00:80::2/64"},
}

// TestFragReorderDuplicate: large echo requests over links that reorder,
// delay and duplicate frames in both directions all reassemble byte for
// byte at the responder (RFC 791 §3.2, RFC 8200 §4.5), and so do the
// fragmented replies at the sender; afterwards, once the reassembly
// timeout has passed, nothing is left pending.
func TestFragReorderDuplicate(t *testing.T) {
	for _, fam := range fragFamilies {
		t.Run(fam.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				im := emu.Impairments{Duplicate: 0.1, Reorder: 0.25, Delay: 3 * time.Millisecond, Jitter: 2 * time.Millisecond}
				nw := newTestNet(t, 80)
				a := newTestHostNIC(t, nw, Options{Seed: 1}, NICOptions{NoDAD: true, NoAutoconf: true}, emu.PortConfig{}, fam.src)
				b := newTestHostNIC(t, nw, Options{Seed: 2}, NICOptions{NoDAD: true, NoAutoconf: true}, emu.PortConfig{}, fam.dst)
				dst := netip.MustParsePrefix(fam.dst).Addr()
				v6 := dst.Is6()
				requests := ixCollectEchoes(t, b.s, v6, false)
				replies := ixCollectEchoes(t, a.s, v6, true)
				// Resolve the neighbour first: the cache queues only a few
				// packets per unresolved address.
				ixPing(t, a.s, replies, dst, 1, 0, ixPattern(0, 32), 5*time.Second)
				a.port.SetImpairments(emu.Out, im)
				b.port.SetImpairments(emu.Out, im)

				sizes := fragSizes(24)
				for i, n := range sizes {
					if err := ixSendEcho(a.s, dst, 1, uint16(i+1), ixPattern(i+1, n), WriteOptions{}); err != nil {
						t.Fatalf("echo %d (%d bytes): %v", i+1, n, err)
					}
					time.Sleep(time.Millisecond) // pace: the link queues are finite
				}
				if !ixWaitFor(30*time.Second, func() bool { return replies.len() == len(sizes)+1 }) {
					t.Errorf("%d of %d replies arrived", replies.len()-1, len(sizes))
				}
				for i, n := range sizes {
					want := ixPattern(i+1, n)
					if req, ok := requests.get(1, uint16(i+1)); !ok {
						t.Errorf("request %d (%d bytes) never reassembled", i+1, n)
					} else if string(req.data) != string(want) {
						t.Errorf("request %d reassembled to %d bytes that differ from the %d sent", i+1, len(req.data), n)
					}
					if rep, ok := replies.get(1, uint16(i+1)); ok && string(rep.data) != string(want) {
						t.Errorf("reply %d reassembled to %d bytes that differ from the %d sent", i+1, len(rep.data), n)
					}
				}
				if e := append(requests.errors(), replies.errors()...); len(e) > 0 {
					t.Errorf("raw handlers saw bad messages: %v", e)
				}
				if d := a.port.ImpairStats(emu.Out).Duplicated + b.port.ImpairStats(emu.Out).Duplicated; d == 0 {
					t.Error("no frame was duplicated: the simulation tested nothing")
				}
				if r := a.port.ImpairStats(emu.Out).Reordered; r == 0 {
					t.Error("no frame was reordered: the simulation tested nothing")
				}
				ra, rb := ixReasm(a.s, v6).Stats(), ixReasm(b.s, v6).Stats()
				if rb.ReasmOKs < uint64(len(sizes)) || ra.ReasmOKs < uint64(len(sizes)) {
					t.Errorf("ReasmOKs responder %d, sender %d; want ≥ %d", rb.ReasmOKs, ra.ReasmOKs, len(sizes))
				}
				st := a.s.Stats()
				if fc := st.IP.FragCreates.Load() + st.IP6.FragCreates.Load(); fc == 0 {
					t.Error("sender FragCreates is 0")
				}
				t.Logf("responder reassembly %+v; sender %+v", rb, ra)
				// Duplicates of finished datagrams start entries that can
				// only time out; after the timeout nothing is held.
				time.Sleep(fragment.DefaultIPv6Timeout + time.Second)
				for _, h := range []*testHost{a, b} {
					r := ixReasm(h.s, v6)
					if p, m := r.Pending(), r.MemoryUsed(); p != 0 || m != 0 {
						t.Errorf("after the timeout: %d datagrams pending, %d bytes held", p, m)
					}
				}
			})
		})
	}
}

func ixReasm(s *Stack, v6 bool) *fragment.Reassembler {
	if v6 {
		return s.reasm6
	}
	return s.reasm4
}

// fragsSeen returns, per fragmented datagram among frames, whether its
// first fragment is there: what the wire delivered, to judge reassembly
// against.
func fragsSeen(frames []wireFrame) map[uint32]bool {
	seen := make(map[uint32]bool) // datagram ID → offset-zero fragment seen
	for _, fr := range frames {
		switch fr.eth.EtherType() {
		case wire.EtherTypeIPv4:
			ip, err := wire.ParseIPv4(fr.eth.Payload())
			if err != nil || !ip.IsFragment() {
				continue
			}
			id := uint32(ip.ID())
			seen[id] = seen[id] || ip.FragmentOffset() == 0
		case wire.EtherTypeIPv6:
			ip, err := wire.ParseIPv6(fr.eth.Payload())
			if err != nil {
				continue
			}
			it := ip.ExtHeaders()
			for h, ok := it.Next(); ok; h, ok = it.Next() {
				if h.Type == wire.IPProtoFragment {
					if f, err := wire.ParseIPv6Fragment(h.Raw); err == nil {
						seen[f.ID()] = seen[f.ID()] || f.FragmentOffset() == 0
					}
					break
				}
			}
		}
	}
	return seen
}

// TestFragLoss: over a lossy link each large datagram either reassembles
// intact or not at all; those of which some fragments arrived time out
// (RFC 791 §3.2 / RFC 8200 §4.5 reassembly timer), are counted in
// ReasmTimeout and ReasmFails, release their memory, and those whose first
// fragment arrived are answered with ICMP Time Exceeded code 1 (RFC 792,
// RFC 1122 §3.3.2, RFC 8200 §4.5).
func TestFragLoss(t *testing.T) {
	for _, fam := range fragFamilies {
		t.Run(fam.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := newTestNet(t, 81)
				a := newTestHost(t, nw, Options{Seed: 3}, fam.src)
				var got frameLog // what b's NIC receives
				bs := New(Options{Seed: 4})
				t.Cleanup(func() { bs.Close() })
				bn, err := bs.AddNIC(&tapEndpoint{nw.NewPort(emu.PortConfig{}), &got}, NICOptions{NoDAD: true, NoAutoconf: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := bn.AddAddress(Address{Prefix: netip.MustParsePrefix(fam.dst)}); err != nil {
					t.Fatal(err)
				}
				bn.SetUp(true)
				dst := netip.MustParsePrefix(fam.dst).Addr()
				v6 := dst.Is6()
				requests := ixCollectEchoes(t, bs, v6, false)
				replies := ixCollectEchoes(t, a.s, v6, true)
				ixPing(t, a.s, replies, dst, 2, 0, ixPattern(0, 32), 5*time.Second)
				a.port.SetImpairments(emu.Out, emu.Impairments{Loss: 0.04})

				st := bs.Stats()
				fails0, tmo0 := st.IP.ReasmFails.Load()+st.IP6.ReasmFails.Load(), st.IP.ReasmTimeout.Load()+st.IP6.ReasmTimeout.Load()
				te0 := st.ICMP.OutTimeExcds.Load() + st.ICMP6.OutTimeExcds.Load()
				r0 := ixReasm(bs, v6).Stats()
				sizes := fragSizes(30)
				for i, n := range sizes {
					if err := ixSendEcho(a.s, dst, 2, uint16(i+1), ixPattern(i+1, n), WriteOptions{}); err != nil {
						t.Fatalf("echo %d: %v", i+1, err)
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(time.Second) // everything in flight has landed
				delivered := 0
				for i, n := range sizes {
					req, ok := requests.get(2, uint16(i+1))
					if !ok {
						continue
					}
					delivered++
					if string(req.data) != string(ixPattern(i+1, n)) || req.count != 1 {
						t.Errorf("request %d: %d bytes (sent %d), delivered %d times", i+1, len(req.data), n, req.count)
					}
				}
				started := len(fragsSeen(got.all()))
				lost := a.port.ImpairStats(emu.Out).Lost
				if lost == 0 || delivered == len(sizes) || delivered == 0 {
					t.Fatalf("loss %d frames, %d of %d datagrams delivered: the simulation tested nothing", lost, delivered, len(sizes))
				}
				incomplete := started - delivered
				if incomplete <= 0 {
					t.Fatalf("%d datagrams started, %d delivered", started, delivered)
				}

				time.Sleep(fragment.DefaultIPv6Timeout + time.Second)
				r := ixReasm(bs, v6)
				rs := r.Stats()
				if got := rs.ReasmOKs - r0.ReasmOKs; got != uint64(delivered) {
					t.Errorf("reassembler ReasmOKs +%d, want %d", got, delivered)
				}
				if got := rs.ReasmTimeout - r0.ReasmTimeout; got != uint64(incomplete) {
					t.Errorf("reassembler ReasmTimeout +%d, want %d (datagrams with some but not all fragments)", got, incomplete)
				}
				if p, m := r.Pending(), r.MemoryUsed(); p != 0 || m != 0 {
					t.Errorf("after the timeout: %d pending, %d bytes held", p, m)
				}
				fails := st.IP.ReasmFails.Load() + st.IP6.ReasmFails.Load() - fails0
				tmo := st.IP.ReasmTimeout.Load() + st.IP6.ReasmTimeout.Load() - tmo0
				if fails < uint64(incomplete) {
					t.Errorf("stack ReasmFails +%d, want ≥ %d", fails, incomplete)
				}
				if tmo != uint64(incomplete) {
					t.Errorf("stack ReasmTimeout +%d, want %d", tmo, incomplete)
				}
				// Time Exceeded only for those whose first fragment came
				// (the error quotes it), subject to the ICMP rate limit.
				withFirst := 0
				for _, f := range fragsSeen(got.all()) {
					if f {
						withFirst++
					}
				}
				withFirst -= delivered
				te := st.ICMP.OutTimeExcds.Load() + st.ICMP6.OutTimeExcds.Load() - te0
				if withFirst > 0 && te == 0 {
					t.Errorf("%d incomplete datagrams had their first fragment but no Time Exceeded was sent", withFirst)
				}
				if te > uint64(max(withFirst, 0)) {
					t.Errorf("%d Time Exceeded sent for %d incomplete datagrams with a first fragment", te, withFirst)
				}
				t.Logf("lost %d frames; %d datagrams started, %d delivered, %d timed out (%d with first fragment, %d Time Exceeded); stack ReasmFails +%d",
					lost, started, delivered, incomplete, withFirst, te, fails)
			})
		})
	}
}

// ixSinkHost is a stack with one NIC on a ixSinkEndpoint: frames go in by
// DeliverFrame, synchronously, and what it sends is discarded.
type ixSinkHost struct {
	s    *Stack
	nic  *NIC
	peer wire.MAC
}

func newIxSinkHost(t testing.TB, opts Options, addrs ...string) *ixSinkHost {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(newIxSinkEndpoint("sink", 1500, wire.MAC{2, 0, 0, 0, 0x81, 1}), NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &ixSinkHost{s: s, nic: n, peer: wire.MAC{2, 0, 0, 0, 0x81, 2}}
}

// frag delivers one hand-made fragment of protocol 253 (RFC 3692
// experimentation) from src to dst: offset and data in bytes.
func (h *ixSinkHost) frag(src, dst netip.Addr, id uint32, off int, more bool, data []byte) {
	var ip []byte
	et := wire.EtherTypeIPv4
	if src.Is4() {
		ip = ixIPv4(wire.IPv4Fields{ID: uint16(id), MF: more, FragmentOffset: off, Protocol: 253, Src: src, Dst: dst}, data)
	} else {
		et = wire.EtherTypeIPv6
		ip = ixIPv6(wire.IPv6Fields{NextHeader: wire.IPProtoFragment, Src: src, Dst: dst}, ixIPv6Frag(253, off, more, id, data))
	}
	h.nic.DeliverFrame(ixEthFrame(h.nic.MAC(), h.peer, 0, et, ip))
}

// collect253 records the payloads of protocol 253 datagrams delivered to
// raw handlers (IPv4's header stripped).
func collect253(t testing.TB, s *Stack, v6 bool) *[][]byte {
	var mu sync.Mutex
	got := new([][]byte)
	remove := s.AddRawHandler(v6, 253, func(pi *PacketInfo, pkt []byte) {
		if !v6 {
			ip, err := wire.ParseIPv4(pkt)
			if err != nil {
				return
			}
			pkt = ip.Payload()
		}
		mu.Lock()
		*got = append(*got, append([]byte(nil), pkt...))
		mu.Unlock()
	})
	t.Cleanup(remove)
	return got
}

// TestFragOverlap: a datagram with overlapping fragments is discarded
// whole, even when the overlapping bytes agree (RFC 5722 §4 for IPv6;
// IPv4 as Linux does since CVE-2018-5391), and for IPv6 so are its
// fragments still to come; exact duplicates are harmless; fragments of
// other datagrams are not disturbed.
func TestFragOverlap(t *testing.T) {
	for _, fam := range []struct {
		name     string
		src, dst string
	}{{"ipv4", "10.81.0.2", "10.81.0.1"}, {"ipv6", "fd00:81::2", "fd00:81::1"}} {
		t.Run(fam.name, func(t *testing.T) {
			h := newIxSinkHost(t, Options{}, "10.81.0.1/24", "fd00:81::1/64")
			src, dst := mustAddr(fam.src), mustAddr(fam.dst)
			v6 := src.Is6()
			got := collect253(t, h.s, v6)
			st := h.s.Stats()
			fails := func() uint64 { return st.IP.ReasmFails.Load() + st.IP6.ReasmFails.Load() }
			data := ixPattern(81, 48)

			// A clean datagram in two fragments, the last first.
			h.frag(src, dst, 1, 24, false, data[24:])
			h.frag(src, dst, 1, 0, true, data[:24])
			if len(*got) != 1 || string((*got)[0]) != string(data) {
				t.Fatalf("clean datagram: delivered %d payloads", len(*got))
			}

			// Exact duplicates of every fragment: delivered once.
			h.frag(src, dst, 2, 0, true, data[:24])
			h.frag(src, dst, 2, 0, true, data[:24])
			h.frag(src, dst, 2, 24, false, data[24:])
			if len(*got) != 2 || string((*got)[1]) != string(data) {
				t.Fatalf("with a duplicate fragment: %d payloads delivered, want 2", len(*got))
			}

			for _, tc := range []struct {
				name   string
				second []byte // the fragment at offset 16
			}{
				{"different bytes", ixPattern(99, 16)},
				{"same bytes", data[16:32]},
			} {
				id := uint32(3)
				if tc.name == "same bytes" {
					id = 4
				}
				n, f0 := len(*got), fails()
				h.frag(src, dst, id, 0, true, data[:24])
				h.frag(src, dst, id, 16, true, tc.second) // overlaps 16..24
				h.frag(src, dst, id, 32, false, data[32:])
				// The rest of the datagram, without overlap: for IPv6 the
				// datagram is dead (RFC 5722: "including those not yet
				// received").
				h.frag(src, dst, id, 24, true, data[24:32])
				if len(*got) != n {
					t.Errorf("%s: overlapping datagram was delivered", tc.name)
				}
				if fails() == f0 {
					t.Errorf("%s: ReasmFails did not move", tc.name)
				}
				if v6 {
					h.frag(src, dst, id, 0, true, data[:24])
					h.frag(src, dst, id, 24, false, data[24:])
					if len(*got) != n {
						t.Errorf("%s: fragments of the discarded datagram reassembled later", tc.name)
					}
				}
			}
			if o := ixReasm(h.s, v6).Stats().Overlaps; o < 2 {
				t.Errorf("reassembler counted %d overlaps, want 2", o)
			}
			// Another datagram is unaffected.
			n := len(*got)
			h.frag(src, dst, 9, 0, true, data[:24])
			h.frag(src, dst, 9, 24, false, data[24:])
			if len(*got) != n+1 {
				t.Error("a clean datagram after the overlaps was not delivered")
			}
		})
	}
}

// TestFragMemoryCap: a flood of first fragments that never complete
// (Linux ipfrag_high_thresh) keeps the reassembly memory within
// Config.MemoryLimit by evicting the oldest datagrams, which count as
// failures, and a datagram that completes still gets through afterwards.
func TestFragMemoryCap(t *testing.T) {
	const limit = 64 << 10
	c4, c6 := fragment.IPv4Config(), fragment.IPv6Config()
	c4.MemoryLimit, c6.MemoryLimit = limit, limit
	h := newIxSinkHost(t, Options{IPv4Reassembly: c4, IPv6Reassembly: c6}, "10.82.0.1/24", "fd00:82::1/64")
	for _, fam := range []struct {
		name     string
		src, dst string
	}{{"ipv4", "10.82.0.2", "10.82.0.1"}, {"ipv6", "fd00:82::2", "fd00:82::1"}} {
		t.Run(fam.name, func(t *testing.T) {
			src, dst := mustAddr(fam.src), mustAddr(fam.dst)
			v6 := src.Is6()
			r := ixReasm(h.s, v6)
			got := collect253(t, h.s, v6)
			st := h.s.Stats()
			fails0 := st.IP.ReasmFails.Load() + st.IP6.ReasmFails.Load()
			chunk := ixPattern(82, 1000)
			peak := 0
			for id := range uint32(2000) {
				h.frag(src, dst, 100+id, 0, true, chunk)
				peak = max(peak, r.MemoryUsed())
				if r.MemoryUsed() > limit {
					t.Fatalf("after %d fragments %d bytes held, above the %d limit", id+1, r.MemoryUsed(), limit)
				}
			}
			if peak < limit/2 {
				t.Errorf("peak memory %d: the flood did not reach the limit %d", peak, limit)
			}
			if ev := r.Stats().Evictions; ev == 0 {
				t.Error("no evictions under the flood")
			}
			if f := st.IP.ReasmFails.Load() + st.IP6.ReasmFails.Load() - fails0; f == 0 {
				t.Error("stack ReasmFails did not move under the flood")
			}
			data := ixPattern(83, 3000)
			h.frag(src, dst, 7, 0, true, data[:1480])
			h.frag(src, dst, 7, 1480, false, data[1480:])
			if len(*got) != 1 || string((*got)[0]) != string(data) {
				t.Errorf("a complete datagram after the flood: %d delivered", len(*got))
			}
			t.Logf("peak %d bytes, %d pending, %+v", peak, r.Pending(), r.Stats())
		})
	}
}

// TestJumboEmu: two stacks on 9000-byte-MTU ports exchange the largest
// unfragmented echo (8972 / 8952 data bytes) whole: no fragment is made
// or reassembled on either side.
func TestJumboEmu(t *testing.T) {
	nw := newTestNet(t, 84)
	pc := emu.PortConfig{MTU: 9000}
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	a := newTestHostNIC(t, nw, Options{}, no, pc, "10.84.0.1/24", "fd00:84::1/64")
	b := newTestHostNIC(t, nw, Options{}, no, pc, "10.84.0.2/24", "fd00:84::2/64")
	for _, tc := range []struct {
		dst  string
		size int
	}{{"10.84.0.2", 9000 - 20 - 8}, {"fd00:84::2", 9000 - 40 - 8}} {
		t.Run(tc.dst, func(t *testing.T) {
			dst := mustAddr(tc.dst)
			replies := ixCollectEchoes(t, a.s, dst.Is6(), true)
			ixPing(t, a.s, replies, dst, 0x84, 1, ixPattern(84, tc.size), 5*time.Second)
			// DontFragment: the request must fit as is.
			if err := ixSendEcho(a.s, dst, 0x84, 2, ixPattern(85, tc.size), WriteOptions{DontFragment: true}); err != nil {
				t.Errorf("DF echo of %d bytes on a 9000 MTU: %v", tc.size, err)
			}
			if err := ixSendEcho(a.s, dst, 0x84, 3, ixPattern(85, tc.size+1), WriteOptions{DontFragment: true}); err == nil {
				t.Errorf("DF echo of %d bytes (one over the MTU) was accepted", tc.size+1)
			}
		})
	}
	for name, h := range map[string]*testHost{"a": a, "b": b} {
		st := h.s.Stats()
		if v := st.IP.FragCreates.Load() + st.IP6.FragCreates.Load(); v != 0 {
			t.Errorf("%s FragCreates %d, want 0", name, v)
		}
		if v := st.IP.ReasmReqds.Load() + st.IP6.ReasmReqds.Load(); v != 0 {
			t.Errorf("%s ReasmReqds %d, want 0", name, v)
		}
	}
	if d := a.port.MTUDropped() + b.port.MTUDropped(); d != 0 {
		t.Errorf("emu dropped %d frames as too big", d)
	}
}
