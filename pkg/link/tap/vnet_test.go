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
