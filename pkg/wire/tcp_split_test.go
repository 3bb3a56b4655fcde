package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

var (
	splitSrc4, splitDst4 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	splitSrc6, splitDst6 = netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::2")
)

// splitTCPFields is an ACK data segment with timestamps, as Linux sends them.
func splitTCPFields(flags wire.TCPFlags) wire.TCPFields {
	return wire.TCPFields{SrcPort: 40000, DstPort: 5201, Seq: 0xfffffc00, Ack: 0x01020304,
		Flags: flags, Window: 502,
		Options: wire.TCPOptions{HasTimestamps: true, TSVal: 11, TSEcr: 22}}
}

func splitPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i>>8)
	}
	return b
}

// splitPacket4 builds an IPv4 TCP packet with valid checksums.
func splitPacket4(ip wire.IPv4Fields, tf wire.TCPFields, payload []byte) []byte {
	seg := transportTCP(tf, payload, ip.Src, ip.Dst)
	ip.PayloadLen = len(seg)
	b := make([]byte, ip.Len()+len(seg))
	ip.Encode(b)
	copy(b[ip.Len():], seg)
	return b
}

// splitPacket6 builds an IPv6 TCP packet with a valid checksum.
func splitPacket6(tf wire.TCPFields, payload []byte) []byte {
	seg := transportTCP(tf, payload, splitSrc6, splitDst6)
	ip := wire.IPv6Fields{TrafficClass: 0x02, FlowLabel: 0x12345, NextHeader: wire.IPProtoTCP, HopLimit: 64,
		Src: splitSrc6, Dst: splitDst6, PayloadLen: len(seg)}
	b := make([]byte, wire.IPv6HeaderLen+len(seg))
	ip.Encode(b)
	copy(b[wire.IPv6HeaderLen:], seg)
	return b
}

// splitCheck verifies the invariants of a successful split of pkt: every
// segment parses, its checksums verify, its payload is at most max, the
// sequence numbers are consecutive, the payloads concatenate to the
// original's, and the headers are the original's but for the fields a
// split must change. It returns the segments' TCP views.
func splitCheck(t *testing.T, pkt []byte, segs [][]byte, maxPayload int) []wire.TCP {
	t.Helper()
	var src, dst netip.Addr
	var ipHdr []byte
	var orig wire.TCP
	v6 := pkt[0]>>4 == 6
	var id uint16
	if v6 {
		h, _ := wire.ParseIPv6(pkt)
		src, dst, ipHdr = h.Src(), h.Dst(), h.Header()
		orig, _ = wire.ParseTCP(h.Payload())
	} else {
		h, _ := wire.ParseIPv4(pkt)
		src, dst, ipHdr, id = h.Src(), h.Dst(), h.Header(), h.ID()
		orig, _ = wire.ParseTCP(h.Payload())
	}
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	var data []byte
	var views []wire.TCP
	seq := orig.Seq()
	for i, s := range segs {
		var l4 []byte
		if v6 {
			h, err := wire.ParseIPv6(s)
			if err != nil || len(h) != len(s) {
				t.Fatalf("segment %d: %v (%d of %d bytes)", i, err, len(h), len(s))
			}
			if !bytes.Equal(h[:4], ipHdr[:4]) || !bytes.Equal(h[6:40], ipHdr[6:40]) {
				t.Fatalf("segment %d: IPv6 header %x, original %x", i, h.Header(), ipHdr)
			}
			l4 = h.Payload()
		} else {
			h, err := wire.ParseIPv4(s)
			if err != nil || len(h) != len(s) {
				t.Fatalf("segment %d: %v (%d of %d bytes)", i, err, len(h), len(s))
			}
			if !h.ChecksumValid() {
				t.Fatalf("segment %d: IPv4 header checksum invalid", i)
			}
			if h.ID() != id+uint16(i) {
				t.Fatalf("segment %d: ID %#x, want %#x", i, h.ID(), id+uint16(i))
			}
			if h.HeaderLen() != len(ipHdr) || !bytes.Equal(h[:2], ipHdr[:2]) || !bytes.Equal(h[6:10], ipHdr[6:10]) ||
				!bytes.Equal(h[12:h.HeaderLen()], ipHdr[12:]) {
				t.Fatalf("segment %d: IPv4 header %x, original %x", i, h.Header(), ipHdr)
			}
			l4 = h.Payload()
		}
		tcp, err := wire.ParseTCP(l4)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if !tcp.ChecksumValid(src, dst) {
			t.Fatalf("segment %d: TCP checksum invalid", i)
		}
		if tcp.Seq() != seq {
			t.Fatalf("segment %d: seq %#x, want %#x", i, tcp.Seq(), seq)
		}
		if len(tcp.Payload()) > maxPayload || (len(segs) > 1 && len(tcp.Payload()) == 0) {
			t.Fatalf("segment %d: %d bytes of payload, max %d", i, len(tcp.Payload()), maxPayload)
		}
		if i < len(segs)-1 && len(tcp.Payload()) != maxPayload {
			t.Fatalf("segment %d of %d: %d bytes, want %d", i, len(segs), len(tcp.Payload()), maxPayload)
		}
		if !bytes.Equal(tcp[:4], orig[:4]) || !bytes.Equal(tcp[8:12], orig[8:12]) || !bytes.Equal(tcp[14:16], orig[14:16]) ||
			!bytes.Equal(tcp[18:tcp.HeaderLen()], orig[18:orig.HeaderLen()]) {
			t.Fatalf("segment %d: TCP header %x, original %x", i, tcp[:tcp.HeaderLen()], orig[:orig.HeaderLen()])
		}
		want := orig.Flags()
		if i > 0 {
			want &^= wire.TCPFlagCWR
		}
		if i < len(segs)-1 {
			want &^= wire.TCPFlagFIN | wire.TCPFlagPSH
		}
		if tcp.Flags() != want {
			t.Fatalf("segment %d: flags %v, want %v", i, tcp.Flags(), want)
		}
		seq += uint32(len(tcp.Payload()))
		data = append(data, tcp.Payload()...)
		views = append(views, tcp)
	}
	if !bytes.Equal(data, orig.Payload()) {
		t.Fatalf("the segments carry %d bytes that differ from the original %d", len(data), len(orig.Payload()))
	}
	return views
}

func TestSplitTCP(t *testing.T) {
	all := wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR | wire.TCPFlagECE
	ip4 := wire.IPv4Fields{TOS: 0x02, ID: 0xfffe, DF: true, TTL: 64, Protocol: wire.IPProtoTCP,
		Src: splitSrc4, Dst: splitDst4,
		Options: []byte{0x94, 0x04, 0x00, 0x00}} // Router Alert (RFC 2113), copied
	for _, tc := range []struct {
		name      string
		pkt       []byte
		max, segs int
	}{
		{"ipv4/even", splitPacket4(ip4, splitTCPFields(all), splitPayload(3000)), 1000, 3},
		{"ipv4/ragged", splitPacket4(ip4, splitTCPFields(all), splitPayload(2900)), 1000, 3},
		{"ipv4/fits", splitPacket4(ip4, splitTCPFields(all), splitPayload(1000)), 1000, 1},
		{"ipv4/empty", splitPacket4(ip4, splitTCPFields(wire.TCPFlagACK|wire.TCPFlagFIN), nil), 1000, 1},
		{"ipv4/64k", splitPacket4(ip4, splitTCPFields(wire.TCPFlagACK|wire.TCPFlagPSH), splitPayload(65535-24-32)), 1448, 46},
		{"ipv4/byte", splitPacket4(ip4, splitTCPFields(all), splitPayload(5)), 1, 5},
		{"ipv6/even", splitPacket6(splitTCPFields(all), splitPayload(2880)), 1428, 3},
		{"ipv6/64k", splitPacket6(splitTCPFields(wire.TCPFlagACK), splitPayload(65535-32)), 1428, 46},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.pkt)
			segs, err := wire.SplitTCP(tc.pkt, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, tc.pkt) {
				t.Fatal("SplitTCP modified its input")
			}
			if len(segs) != tc.segs {
				t.Fatalf("%d segments, want %d", len(segs), tc.segs)
			}
			splitCheck(t, tc.pkt, segs, tc.max)
			// Writing to a segment touches neither the input nor the
			// next segment.
			segs[0] = append(segs[0], 0xee)
			if len(segs) > 1 && segs[1][0] == 0xee {
				t.Fatal("segments share their tails")
			}
		})
	}
}

func TestSplitTCPErrors(t *testing.T) {
	tf := splitTCPFields(wire.TCPFlagACK)
	ip4 := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoTCP, Src: splitSrc4, Dst: splitDst4}
	good4 := splitPacket4(ip4, tf, splitPayload(3000))
	good6 := splitPacket6(tf, splitPayload(3000))

	frag := ip4
	frag.MF = true
	udp := ip4
	udp.Protocol = wire.IPProtoUDP
	badIPSum := bytes.Clone(good4)
	badIPSum[10] ^= 1
	badTCPSum := bytes.Clone(good4)
	badTCPSum[len(badTCPSum)-1] ^= 1
	badTCPSum6 := bytes.Clone(good6)
	badTCPSum6[100] ^= 0x40
	hbh := bytes.Clone(good6)
	hbh[6] = wire.IPProtoHopByHop
	syn := tf
	syn.Flags = wire.TCPFlagSYN
	urg := tf
	urg.Flags |= wire.TCPFlagURG
	shortTCP := bytes.Clone(good4[:40])
	binary.BigEndian.PutUint16(shortTCP[2:], 40)
	shortTCP[20+12] = 0xf0 // data offset 60 > 20 bytes
	shortTCP[10], shortTCP[11] = 0, 0
	binary.BigEndian.PutUint16(shortTCP[10:], ^wire.Checksum(shortTCP[:20], 0))

	for _, tc := range []struct {
		name string
		pkt  []byte
		max  int
		kind error
	}{
		{"empty", nil, 1000, wire.ErrTruncated},
		{"version", append([]byte{0x50}, good4[1:]...), 1000, wire.ErrMalformed},
		{"ipv4/truncated", good4[:len(good4)-1], 1000, wire.ErrTruncated},
		{"ipv6/truncated", good6[:30], 1000, wire.ErrTruncated},
		{"ipv4/fragment", splitPacket4(frag, tf, splitPayload(3000)), 1000, wire.ErrUnsupported},
		{"ipv4/udp", splitPacket4(udp, tf, splitPayload(3000)), 1000, wire.ErrUnsupported},
		{"ipv6/hop-by-hop", hbh, 1000, wire.ErrUnsupported},
		{"ipv4/ip checksum", badIPSum, 1000, wire.ErrMalformed},
		{"ipv4/tcp checksum", badTCPSum, 1000, wire.ErrMalformed},
		{"ipv6/tcp checksum", badTCPSum6, 1000, wire.ErrMalformed},
		{"ipv4/tcp header", shortTCP, 1000, wire.ErrTruncated},
		{"max 0", good4, 0, wire.ErrMalformed},
		{"max -1", good6, -1, wire.ErrMalformed},
		{"syn", splitPacket4(ip4, syn, splitPayload(3000)), 1000, wire.ErrUnsupported},
		{"urg", splitPacket6(urg, splitPayload(3000)), 1000, wire.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.pkt)
			segs, err := wire.SplitTCP(tc.pkt, tc.max)
			var we *wire.Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &we) || segs != nil {
				t.Fatalf("got %d segments, error %v; want a *wire.Error of kind %v", len(segs), err, tc.kind)
			}
			if !bytes.Equal(in, tc.pkt) {
				t.Fatal("SplitTCP modified its input")
			}
		})
	}
	// A SYN that needs no cutting is returned as it is.
	if segs, err := wire.SplitTCP(splitPacket4(ip4, syn, splitPayload(10)), 1000); err != nil || len(segs) != 1 {
		t.Fatalf("small SYN: %d segments, %v", len(segs), err)
	}
}

// splitFixChecksums makes the checksums of b, if it parses as an IPv4 or
// IPv6 TCP packet, valid, so the fuzzer reaches the splitting itself.
func splitFixChecksums(b []byte) {
	if len(b) < 1 {
		return
	}
	var l4 []byte
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		h, err := wire.ParseIPv4(b)
		if err != nil {
			return
		}
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^wire.Checksum(h.Header(), 0))
		l4, src, dst = h.Payload(), h.Src(), h.Dst()
	case 6:
		h, err := wire.ParseIPv6(b)
		if err != nil {
			return
		}
		l4, src, dst = h.Payload(), h.Src(), h.Dst()
	}
	if len(l4) < wire.TCPMinHeaderLen {
		return
	}
	l4[16], l4[17] = 0, 0
	binary.BigEndian.PutUint16(l4[16:], ^wire.Checksum(l4, wire.PseudoHeaderChecksum(wire.IPProtoTCP, src, dst, uint32(len(l4)))))
}

func FuzzSplitTCP(f *testing.F) {
	ip4 := wire.IPv4Fields{ID: 7, DF: true, TTL: 64, Protocol: wire.IPProtoTCP, Src: splitSrc4, Dst: splitDst4,
		Options: []byte{0x01, 0x01, 0x01, 0x00}}
	all := wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR
	f.Add(splitPacket4(ip4, splitTCPFields(all), splitPayload(3000)), 1000, true)
	f.Add(splitPacket4(ip4, splitTCPFields(wire.TCPFlagACK), splitPayload(7)), 2, false)
	f.Add(splitPacket6(splitTCPFields(all), splitPayload(2000)), 1220, true)
	f.Add(splitPacket6(splitTCPFields(wire.TCPFlagSYN), splitPayload(20)), 3, true)
	f.Add([]byte{0x45}, 1, false)
	f.Fuzz(func(t *testing.T, b []byte, maxPayload int, fix bool) {
		if fix {
			splitFixChecksums(b)
		}
		if maxPayload > 1<<17 || maxPayload < -1 {
			maxPayload %= 1 << 17
		}
		in := bytes.Clone(b)
		segs, err := wire.SplitTCP(b, maxPayload)
		if !bytes.Equal(in, b) {
			t.Fatal("SplitTCP modified its input")
		}
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) || segs != nil {
				t.Fatalf("error %v is not a *wire.Error, or came with %d segments", err, len(segs))
			}
			return
		}
		if maxPayload < 1 {
			t.Fatalf("maxPayload %d accepted", maxPayload)
		}
		splitCheck(t, b, segs, maxPayload)
	})
}
