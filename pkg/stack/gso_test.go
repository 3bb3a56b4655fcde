package stack

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Forwarding of TCP GSO aggregates: packets longer than the ingress MTU,
// as a TAP with receive offload delivers them. An emulated port refuses
// frames over its MTU, so the aggregate is handed to the router's NIC
// directly, as the TAP link would.

// gsoSeg is a TCP segment a host received: its IP packet length, TTL or
// hop limit, sequence number and payload.
type gsoSeg struct {
	ipLen int
	ttl   uint8
	seq   uint32
	data  []byte
}

// captureTCP records the TCP segments s receives with valid checksums;
// one with a bad checksum fails the test.
func captureTCP(t *testing.T, s *Stack, v6 bool) chan gsoSeg {
	t.Helper()
	ch := make(chan gsoSeg, 256)
	remove := s.AddRawHandler(v6, wire.IPProtoTCP, func(pi *PacketInfo, pkt []byte) {
		l4, ipLen := pkt, len(pi.Network)+len(pkt)
		if !v6 {
			h := wire.IPv4(pkt)
			if !h.ChecksumValid() {
				t.Errorf("IPv4 header checksum invalid")
			}
			l4, ipLen = h.Payload(), len(h)
		}
		seg, err := wire.ParseTCP(l4)
		if err != nil || !seg.ChecksumValid(pi.Src, pi.Dst) {
			t.Errorf("bad TCP segment (%v)", err)
			return
		}
		ch <- gsoSeg{ipLen: ipLen, ttl: pi.TTL, seq: seg.Seq(), data: bytes.Clone(seg.Payload())}
	})
	t.Cleanup(remove)
	return ch
}

// collectSegs waits until the segments in ch carry want bytes, and
// returns them in sequence order.
func collectSegs(t *testing.T, ch chan gsoSeg, want int) []gsoSeg {
	t.Helper()
	var got []gsoSeg
	n := 0
	timeout := time.After(5 * time.Second)
	for n < want {
		select {
		case s := <-ch:
			got = append(got, s)
			n += len(s.data)
		case <-timeout:
			t.Fatalf("%d of %d bytes arrived in %d segments", n, want, len(got))
		}
	}
	slices.SortFunc(got, func(a, b gsoSeg) int { return int(int32(a.seq - b.seq)) })
	return got
}

// checkSegs checks that segs are consecutive segments of at most maxLen
// bytes of IP packet that carry data from seq on.
func checkSegs(t *testing.T, segs []gsoSeg, seq uint32, data []byte, maxLen int, ttl uint8) {
	t.Helper()
	var all []byte
	for i, s := range segs {
		if s.ipLen > maxLen || s.ttl != ttl || s.seq != seq+uint32(len(all)) {
			t.Fatalf("segment %d: %d bytes (max %d), TTL %d (want %d), seq %d (want %d)",
				i, s.ipLen, maxLen, s.ttl, ttl, s.seq, seq+uint32(len(all)))
		}
		all = append(all, s.data...)
	}
	if !bytes.Equal(all, data) {
		t.Fatalf("the segments carry %d bytes that are not the %d sent", len(all), len(data))
	}
}

// gsoTCP builds a checksummed TCP segment from src to dst.
func gsoTCP(src, dst netip.Addr, seq uint32, payload []byte) []byte {
	f := wire.TCPFields{SrcPort: 40000, DstPort: 5201, Seq: seq, Ack: 1, Window: 1000,
		Flags:   wire.TCPFlagACK | wire.TCPFlagPSH,
		Options: wire.TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2}, PayloadLen: len(payload)}
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	f.SetChecksum(b, src, dst)
	return b
}

// gsoAggregate4 is a DF (or not) IPv4 TCP aggregate of data
// from A (10.0.1.1) to B (10.0.2.1) in a frame for R.
func gsoAggregate4(x *routed, seq uint32, data []byte, df bool) []byte {
	src, dst := mustAddr("10.0.1.1"), mustAddr("10.0.2.1")
	ip := ixIPv4(wire.IPv4Fields{ID: 100, DF: df, Protocol: wire.IPProtoTCP, Src: src, Dst: dst}, gsoTCP(src, dst, seq, data))
	return ixEthFrame(x.r.nic.MAC(), x.a.nic.MAC(), 0, wire.EtherTypeIPv4, ip)
}

// TestIPv4ForwardGSOAggregate: an aggregate longer than the ingress MTU
// leaves R as segments that fit the ingress MTU (Linux skb_gso_segment),
// each forwarded as a datagram of its own.
func TestIPv4ForwardGSOAggregate(t *testing.T) {
	x := newRouted(t, Options{Seed: 2}, 0)
	rx := captureTCP(t, x.b.s, false)
	errs := captureICMP(t, x.a.s)
	data := pattern(10000)
	x.r.nic.DeliverFrame(gsoAggregate4(x, 5000, data, true))
	segs := collectSegs(t, rx, len(data))
	checkSegs(t, segs, 5000, data, 1500, 63)
	if len(segs) != 7 { // 1448 bytes each after 20 + 32 bytes of headers
		t.Errorf("%d segments, want 7", len(segs))
	}
	if v := x.r.s.Stats().IP.ForwDatagrams.Load(); v != 7 {
		t.Errorf("R ForwDatagrams %d, want 7", v)
	}
	noICMP(t, errs, wire.ICMPv4DestUnreachable, 100*time.Millisecond)
}

// TestIPv4ForwardGSOAggregateSmallerMTU: the segments of an aggregate
// meet the next hop's MTU as any datagram would: fragmentation needed
// with that MTU under DF (RFC 1191 §4), quoting a segment; fragmented
// without DF.
func TestIPv4ForwardGSOAggregateSmallerMTU(t *testing.T) {
	t.Run("DF", func(t *testing.T) {
		x := newRouted(t, Options{Seed: 2}, 1000)
		errs := captureICMP(t, x.a.s)
		x.r.nic.DeliverFrame(gsoAggregate4(x, 1, pattern(10000), true))
		fn := waitICMP(t, errs, wire.ICMPv4DestUnreachable)
		if fn.icmp().Code() != wire.ICMPv4FragmentationNeeded || fn.icmp().NextHopMTU() != 1000 {
			t.Fatalf("code %d mtu %d, want fragmentation needed with MTU 1000", fn.icmp().Code(), fn.icmp().NextHopMTU())
		}
		if q, err := wire.ParseIPv4Quoted(fn.icmp().Original()); err != nil || q.TotalLen() != 1500 {
			t.Fatalf("quoted datagram of %d bytes (%v), want a 1500-byte segment", q.TotalLen(), err)
		}
	})
	t.Run("fragmented", func(t *testing.T) {
		// Without DF, R fragments each segment and B reassembles
		// segments, not the aggregate.
		x := newRouted(t, Options{Seed: 2}, 1000)
		rx := captureTCP(t, x.b.s, false)
		data := pattern(10000)
		x.r.nic.DeliverFrame(gsoAggregate4(x, 777, data, false))
		checkSegs(t, collectSegs(t, rx, len(data)), 777, data, 1500, 63)
		if v := x.b.s.Stats().IP.ReasmOKs.Load(); v != 7 {
			t.Errorf("B ReasmOKs %d, want 7", v)
		}
		if v := x.r.s.Stats().IP.FragOKs.Load(); v != 7 {
			t.Errorf("R FragOKs %d, want 7", v)
		}
	})
}

// gsoAggregate6 is an IPv6 TCP aggregate from A to B in a frame for R.
func gsoAggregate6(rn *routerNet, seq uint32, data []byte) []byte {
	src, dst := mustAddr("2001:db8:1::10"), mustAddr("2001:db8:2::10")
	ip := ixIPv6(wire.IPv6Fields{NextHeader: wire.IPProtoTCP, Src: src, Dst: dst}, gsoTCP(src, dst, seq, data))
	return ixEthFrame(rn.r1.nic.MAC(), rn.a.nic.MAC(), 0, wire.EtherTypeIPv6, ip)
}

// TestIPv6ForwardGSOAggregate: as TestIPv4ForwardGSOAggregate for IPv6,
// then Packet Too Big with the next hop's MTU (RFC 4443 §3.2) for
// segments that do not fit it.
func TestIPv6ForwardGSOAggregate(t *testing.T) {
	t.Run("fits", func(t *testing.T) {
		rn := newRouterNet(t, 80, 1500)
		rx := captureTCP(t, rn.b.s, true)
		errs := icmp6Catcher(t, rn.a.s, wire.ICMPv6PacketTooBig)
		data := pattern(20000)
		rn.r1.nic.DeliverFrame(gsoAggregate6(rn, 0xffffff00, data))
		segs := collectSegs(t, rx, len(data))
		checkSegs(t, segs, 0xffffff00, data, 1500, 63)
		if len(segs) != 15 { // 1428 bytes each after 40 + 32 bytes of headers
			t.Errorf("%d segments, want 15", len(segs))
		}
		if v := rn.rs.stats.IP6.OutForwDatagrams.Load(); v != 15 {
			t.Errorf("R Ip6OutForwDatagrams %d, want 15", v)
		}
		expectNone6(t, errs, 100*time.Millisecond, "Packet Too Big for an aggregate whose segments fit")
	})
	t.Run("PacketTooBig", func(t *testing.T) {
		rn := newRouterNet(t, 81, 1280)
		errs := icmp6Catcher(t, rn.a.s, wire.ICMPv6PacketTooBig)
		rn.r1.nic.DeliverFrame(gsoAggregate6(rn, 1, pattern(20000)))
		m := wait6(t, errs, "packet too big")
		if mtu := wire.ICMPv6(m.msg).MTU(); mtu != 1280 || m.src != mustAddr("2001:db8:1::1") {
			t.Fatalf("PTB MTU %d from %v, want 1280 from R", mtu, m.src)
		}
		if q, err := wire.ParseIPv6Quoted(wire.ICMPv6(m.msg).Original()); err != nil || q.PayloadLen() != 1460 {
			t.Fatalf("quoted packet with payload length %d (%v), want a 1500-byte segment", q.PayloadLen(), err)
		}
	})
}

// TestIPv4ForwardFullSegmentLoweredMTU: a segment that fits the link it
// came in on is no aggregate, though that interface's MTU was set lower;
// it is forwarded whole (a regression: TestPMTUChangeMidStream lowers
// R's MTUs mid-stream and saw its segments split instead of answered).
func TestIPv4ForwardFullSegmentLoweredMTU(t *testing.T) {
	x := newRouted(t, Options{Seed: 2}, 0)
	if err := x.r.nic.SetMTU(1400); err != nil {
		t.Fatal(err)
	}
	rx := captureTCP(t, x.b.s, false)
	data := pattern(1448)
	x.r.nic.DeliverFrame(gsoAggregate4(x, 9, data, true))
	segs := collectSegs(t, rx, len(data))
	checkSegs(t, segs, 9, data, 1500, 63)
	if len(segs) != 1 || segs[0].ipLen != 1500 {
		t.Fatalf("%d segments (first %d bytes), want the 1500-byte packet whole", len(segs), segs[0].ipLen)
	}
}
