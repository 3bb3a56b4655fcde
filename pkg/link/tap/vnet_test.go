package tap

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// tcpFrame is an Ethernet frame with an IPv4 TCP segment carrying data,
// and the offset of its TCP header.
func tcpFrame(t testing.TB, data []byte) ([]byte, int) {
	t.Helper()
	src, dst := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")
	seg := make([]byte, wire.TCPMinHeaderLen+len(data))
	tf := wire.TCPFields{SrcPort: 80, DstPort: 4000, Seq: 1, Ack: 2, Flags: wire.TCPFlagACK, Window: 100, PayloadLen: len(data)}
	tf.Encode(seg)
	copy(seg[wire.TCPMinHeaderLen:], data)
	tf.SetChecksum(seg, src, dst)
	ip := make([]byte, wire.IPv4MinHeaderLen+len(seg))
	f := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoTCP, Src: src, Dst: dst, PayloadLen: len(seg)}
	f.Encode(ip)
	copy(ip[wire.IPv4MinHeaderLen:], seg)
	frame := make([]byte, 14+len(ip))
	binary.BigEndian.PutUint16(frame[12:], wire.EtherTypeIPv4)
	copy(frame[14:], ip)
	return frame, 14 + wire.IPv4MinHeaderLen
}

func vnetBytes(h vnetHdr) []byte {
	b := make([]byte, vnetHdrLen)
	b[0], b[1] = h.flags, h.gsoType
	e := binary.NativeEndian
	e.PutUint16(b[2:], h.hdrLen)
	e.PutUint16(b[4:], h.gsoSize)
	e.PutUint16(b[6:], h.csumStart)
	e.PutUint16(b[8:], h.csumOffset)
	return b
}

func TestParseVnetHdr(t *testing.T) {
	want := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv6, hdrLen: 74, gsoSize: 1428, csumStart: 54, csumOffset: 16}
	got, err := parseVnetHdr(append(vnetBytes(want), 1, 2, 3))
	if err != nil || got != want {
		t.Errorf("parseVnetHdr = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseVnetHdr(make([]byte, vnetHdrLen-1)); !errors.Is(err, errVnetShort) {
		t.Errorf("short header: %v", err)
	}
}

// TestFinishRxPartialChecksum: the kernel's CHECKSUM_PARTIAL frame holds
// the pseudo-header sum in the TCP checksum field; finishRx makes it the
// real checksum, which TCP then verifies.
func TestFinishRxPartialChecksum(t *testing.T) {
	frame, th := tcpFrame(t, []byte("partial checksum from the kernel"))
	ip := wire.IPv4(frame[14:])
	seg := wire.TCP(ip.Payload())
	// What the kernel leaves: the pseudo-header sum, not complemented.
	binary.BigEndian.PutUint16(frame[th+16:], wire.PseudoHeaderChecksum(wire.IPProtoTCP, ip.Src(), ip.Dst(), uint32(len(seg))))
	if seg.ChecksumValid(ip.Src(), ip.Dst()) {
		t.Fatal("the partial checksum verifies before finishRx")
	}
	h := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(th), csumOffset: 16}
	if err := finishRx(h, frame); err != nil {
		t.Fatal(err)
	}
	if !seg.ChecksumValid(ip.Src(), ip.Dst()) {
		t.Error("checksum invalid after finishRx")
	}
	// Without NEEDS_CSUM the frame is left as it is.
	before := append([]byte(nil), frame...)
	if err := finishRx(vnetHdr{flags: vnetFlagDataValid, csumStart: 1}, frame); err != nil || string(before) != string(frame) {
		t.Errorf("a frame without NEEDS_CSUM changed or failed: %v", err)
	}
}

func TestFinishRxRejects(t *testing.T) {
	frame, th := tcpFrame(t, []byte("x"))
	for _, c := range []struct {
		name string
		h    vnetHdr
		want error
	}{
		{"UDP fragmentation offload", vnetHdr{gsoType: vnetGSOUDP}, errVnetGSO},
		{"UDP segmentation offload", vnetHdr{gsoType: vnetGSOUDPL4}, errVnetGSO},
		{"checksum start in the Ethernet header", vnetHdr{flags: vnetFlagNeedsCsum, csumStart: 4}, errVnetCsum},
		{"checksum field past the end", vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(th), csumOffset: uint16(len(frame))}, errVnetCsum},
		{"checksum field at an odd offset", vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(th), csumOffset: 15}, errVnetCsum},
		{"start past the end", vnetHdr{flags: vnetFlagNeedsCsum, csumStart: 0xffff, csumOffset: 0xffff}, errVnetCsum},
	} {
		if err := finishRx(c.h, frame); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// An aggregate with ECN is accepted: it is TCP.
	if err := finishRx(vnetHdr{gsoType: vnetGSOTCPv4 | vnetGSOECN}, frame); err != nil {
		t.Errorf("TCPv4|ECN aggregate: %v", err)
	}
}

// FuzzVnetRx feeds arbitrary header+frame bytes to the reader's parsing:
// no panic, and when a partial checksum is completed, the sum over the
// checksummed range with the field's former content (the pseudo-header
// sum) verifies.
func FuzzVnetRx(f *testing.F) {
	frame, th := tcpFrame(f, []byte("seed"))
	f.Add(append(vnetBytes(vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(th), csumOffset: 16}), frame...))
	f.Add(append(vnetBytes(vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1448, hdrLen: 54}), frame...))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseVnetHdr(b)
		if err != nil {
			return
		}
		fr := append([]byte(nil), b[vnetHdrLen:]...)
		var partial uint16
		at := int(h.csumStart) + int(h.csumOffset)
		if at+2 <= len(fr) {
			partial = binary.BigEndian.Uint16(fr[at:])
		}
		if err := finishRx(h, fr); err != nil || h.flags&vnetFlagNeedsCsum == 0 {
			return
		}
		// The stored checksum C = ^(P + D); P + D + C must be all ones.
		c := binary.BigEndian.Uint16(fr[at:])
		binary.BigEndian.PutUint16(fr[at:], 0)
		if s := wire.ChecksumCombine(wire.Checksum(fr[h.csumStart:], partial), c); s != 0xffff {
			t.Fatalf("completed checksum %#04x does not verify: sum %#04x", c, s)
		}
	})
}

// segments builds n consecutive TCP segments of one flow, as our stack
// sends them: IPv4 with DF and IDs counting up, or IPv6, with a
// timestamp option, payloads of size bytes (the last one last bytes),
// PSH on the last.
func segments(t testing.TB, v6 bool, n, size, last int) [][]byte {
	t.Helper()
	src, dst := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")
	if v6 {
		src, dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	}
	var frames [][]byte
	seq := uint32(0xfffff000) // wraps inside the run
	for i := range n {
		p := size
		if i == n-1 {
			p = last
		}
		tf := wire.TCPFields{SrcPort: 5001, DstPort: 40000, Seq: seq, Ack: 77, Flags: wire.TCPFlagACK, Window: 512, PayloadLen: p}
		tf.Options.HasTimestamps, tf.Options.TSVal, tf.Options.TSEcr = true, 1234, 99
		if i == n-1 {
			tf.Flags |= wire.TCPFlagPSH
		}
		seg := make([]byte, tf.Len()+p)
		tf.Encode(seg)
		for j := range p {
			seg[tf.Len()+j] = byte(int(seq) + j)
		}
		tf.SetChecksum(seg, src, dst)
		seq += uint32(p)
		var ip []byte
		et := wire.EtherTypeIPv4
		if v6 {
			et = wire.EtherTypeIPv6
			f := wire.IPv6Fields{NextHeader: wire.IPProtoTCP, HopLimit: 64, Src: src, Dst: dst, PayloadLen: len(seg)}
			ip = make([]byte, wire.IPv6HeaderLen+len(seg))
			f.Encode(ip)
		} else {
			f := wire.IPv4Fields{ID: uint16(0xfffe + i), DF: true, TTL: 64, Protocol: wire.IPProtoTCP, Src: src, Dst: dst, PayloadLen: len(seg)}
			ip = make([]byte, f.Len()+len(seg))
			f.Encode(ip)
		}
		copy(ip[len(ip)-len(seg):], seg)
		fr := make([]byte, 14+len(ip))
		copy(fr, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(fr[12:], et)
		copy(fr[14:], ip)
		frames = append(frames, fr)
	}
	return frames
}

// roundTrip is what the kernel does with an aggregate we write: it
// completes the partial checksum (finishRx does what the kernel does)
// and segments it at the GSO size (wire.SplitTCP as tcp_gso_segment),
// giving back IP packets.
func roundTrip(t testing.TB, r tcpRun, run [][]byte) [][]byte {
	t.Helper()
	var vb [vnetHdrLen]byte
	hdr := aggregate(r, run, &vb, nil)
	agg := append([]byte(nil), hdr...)
	for _, f := range run {
		agg = append(agg, f[len(hdr):]...)
	}
	vh, err := parseVnetHdr(vb[:])
	if err != nil {
		t.Fatal(err)
	}
	if int(vh.hdrLen) != len(hdr) || vh.flags != vnetFlagNeedsCsum {
		t.Fatalf("virtio-net header %+v for %d bytes of headers", vh, len(hdr))
	}
	if err := finishRx(vh, agg); err != nil {
		t.Fatal(err)
	}
	segs, err := wire.SplitTCP(agg[14:], int(vh.gsoSize))
	if err != nil {
		t.Fatalf("the aggregate does not split: %v", err)
	}
	return segs
}

// TestCoalesceRoundTrip: consecutive segments become one aggregate that,
// segmented again at its GSO size as the kernel does, gives back exactly
// the packets we had (IPv4 IDs included, which count up as TSO's do).
func TestCoalesceRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		frames := segments(t, v6, 10, 1448, 600)
		r, k := coalesce(frames)
		if k != 10 {
			t.Fatalf("v6 %v: coalesced %d of 10 frames", v6, k)
		}
		segs := roundTrip(t, r, frames)
		if len(segs) != 10 {
			t.Fatalf("v6 %v: %d segments back, want 10", v6, len(segs))
		}
		for i, s := range segs {
			if want := frames[i][14:]; string(s) != string(want) {
				t.Errorf("v6 %v: segment %d differs from what was coalesced:\n got % x\nwant % x", v6, i, s[:60], want[:60])
			}
		}
	}
}

func TestCoalesceStops(t *testing.T) {
	base := func() [][]byte { return segments(t, false, 6, 1000, 1000) }
	cases := []struct {
		name   string
		mangle func(f [][]byte)
		want   int
	}{
		{"all join", func([][]byte) {}, 6},
		{"a gap in sequence", func(f [][]byte) { f[3][14+20+7]++ }, 3},
		{"another ACK number", func(f [][]byte) { f[2][14+20+11]++ }, 2},
		{"another window", func(f [][]byte) { f[4][14+20+15]++ }, 4},
		{"another timestamp", func(f [][]byte) { f[1][14+20+20+5]++ }, 1},
		{"PSH in the middle", func(f [][]byte) { f[2][14+20+13] |= byte(wire.TCPFlagPSH) }, 3},
		{"FIN", func(f [][]byte) { f[0][14+20+13] |= byte(wire.TCPFlagFIN) }, 1},
		{"a longer segment", func(f [][]byte) { f[1] = append(f[1], 0) }, 1},
		{"another TTL", func(f [][]byte) { f[5][14+8]-- }, 5},
		{"another destination MAC", func(f [][]byte) { f[1][0] ^= 2 }, 1},
		{"no DF", func(f [][]byte) { f[0][14+6] = 0 }, 1},
		{"IPv4 options", func(f [][]byte) { f[0][14] = 0x46 }, 1},
		{"a VLAN tag", func(f [][]byte) { binary.BigEndian.PutUint16(f[0][12:], 0x8100) }, 1},
	}
	for _, c := range cases {
		f := base()
		c.mangle(f)
		if _, k := coalesce(f); k != c.want {
			t.Errorf("%s: %d frames coalesced, want %d", c.name, k, c.want)
		}
	}
	// A short segment ends the run with it.
	f := segments(t, false, 3, 1000, 1000)
	f = append(f[:1], segments(t, false, 1, 500, 500)...)
	// (its sequence number does not follow: only the length rule is
	// tested when it does)
	if _, k := coalesce(f); k != 1 {
		t.Errorf("unrelated short segment joined: %d", k)
	}
	// The aggregate stays within a 64 KiB IP packet.
	big := segments(t, false, 60, 1448, 1448)
	if r, k := coalesce(big); k*1448+r.ipLen+r.tcpLen > wire.IPv4MaxTotalLen || k < 40 {
		t.Errorf("%d segments of 1448 bytes in one aggregate", k)
	}
}

// FuzzCoalesce: arbitrary frames, some derived from a valid run, never
// make coalesce or aggregate panic, and whatever is coalesced round-trips
// through the kernel's completion and segmentation to the same payload.
func FuzzCoalesce(f *testing.F) {
	f.Add([]byte{}, uint16(0), byte(0), false)
	f.Add([]byte{1}, uint16(40), byte(0xff), true)
	f.Fuzz(func(t *testing.T, junk []byte, at uint16, val byte, v6 bool) {
		frames := segments(t, v6, 4, 300, 200)
		i := int(at) % (len(frames) + 1)
		if i == len(frames) {
			frames = append(frames, junk)
		} else if len(junk) > 0 {
			// Corrupt one byte of frame i, or replace it with junk.
			if int(at)/8%2 == 0 {
				fr := frames[i]
				fr[int(junk[0])%len(fr)] ^= val
			} else {
				frames[i] = junk
			}
		}
		if len(frames[0]) == 0 {
			return
		}
		r, k := coalesce(frames)
		if k < 2 {
			return
		}
		var want []byte
		for _, fr := range frames[:k] {
			want = append(want, fr[14+r.ipLen+r.tcpLen:]...)
		}
		segs := roundTrip(t, r, frames[:k])
		var got []byte
		for _, s := range segs {
			tcp, err := wire.ParseTCP(s[r.ipLen:])
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tcp.Payload()...)
		}
		if string(got) != string(want) {
			t.Fatalf("payload changed: %d bytes in, %d out", len(want), len(got))
		}
	})
}
