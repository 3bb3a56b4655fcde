package wire_test

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// TCP and UDP frames for the tshark harness (tshark_test.go), over IPv4 and
// IPv6, built entirely with our builders.

var (
	transportMACA = wire.MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	transportMACB = wire.MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}

	transportV4A = netip.MustParseAddr("192.0.2.1")
	transportV4B = netip.MustParseAddr("192.0.2.2")
	transportV6A = netip.MustParseAddr("2001:db8::1")
	transportV6B = netip.MustParseAddr("2001:db8::2")
)

// transportIPFrame wraps the transport segment l4 in an IP header of src's
// family and an Ethernet header.
func transportIPFrame(t *testing.T, src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	t.Helper()
	eth := wire.EthernetFields{Dst: transportMACB, Src: transportMACA}
	var ipLen int
	var encodeIP func([]byte)
	if src.Is4() {
		ip := wire.IPv4Fields{ID: 0x1234, DF: true, TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(l4)}
		eth.EtherType = wire.EtherTypeIPv4
		ipLen, encodeIP = ip.Len(), ip.Encode
	} else {
		ip := wire.IPv6Fields{FlowLabel: 0x12345, NextHeader: proto, HopLimit: 64, Src: src, Dst: dst, PayloadLen: len(l4)}
		eth.EtherType = wire.EtherTypeIPv6
		ipLen, encodeIP = ip.Len(), ip.Encode
	}
	frame := make([]byte, eth.Len()+ipLen+len(l4))
	eth.Encode(frame)
	encodeIP(frame[eth.Len():])
	copy(frame[eth.Len()+ipLen:], l4)
	return frame
}

// transportTCP builds a checksummed TCP segment.
func transportTCP(f wire.TCPFields, payload []byte, src, dst netip.Addr) []byte {
	f.PayloadLen = len(payload)
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	f.SetChecksum(b, src, dst)
	return b
}

// transportUDP builds a UDP datagram, checksummed unless noChecksum.
func transportUDP(f wire.UDPFields, payload []byte, src, dst netip.Addr, noChecksum bool) []byte {
	f.PayloadLen = len(payload)
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	if !noChecksum {
		f.SetChecksum(b, src, dst)
	}
	return b
}

// transportSynOptions are what Linux puts on a SYN.
var transportSynOptions = wire.TCPOptions{
	HasMSS: true, MSS: 1460,
	SACKPermitted: true,
	HasTimestamps: true, TSVal: 0x01020304,
	HasWindowScale: true, WindowScale: 7,
}

// transportTCPCases are the TCP segments registered for both families.
var transportTCPCases = []struct {
	name    string
	f       wire.TCPFields
	payload []byte
	flags   wire.TCPFlags
}{
	{name: "syn", f: wire.TCPFields{
		SrcPort: 41000, DstPort: 7777, Seq: 1000, Window: 64240,
		Flags: wire.TCPFlagSYN, Options: transportSynOptions,
	}},
	{name: "syn-ecn", f: wire.TCPFields{
		SrcPort: 41001, DstPort: 7777, Seq: 1000, Window: 64240,
		Flags:   wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR,
		Options: wire.TCPOptions{HasMSS: true, MSS: 1220, HasWindowScale: true, WindowScale: 14},
	}},
	{name: "syn-ack", f: wire.TCPFields{
		SrcPort: 7777, DstPort: 41000, Seq: 90000, Ack: 1001, Window: 65160,
		Flags: wire.TCPFlagSYN | wire.TCPFlagACK,
		Options: wire.TCPOptions{
			HasMSS: true, MSS: 1460, SACKPermitted: true,
			HasTimestamps: true, TSVal: 0x0a0b0c0d, TSEcr: 0x01020304,
			HasWindowScale: true, WindowScale: 7,
		},
	}},
	{name: "data-sack-ts", payload: []byte("stackbox segment payload\n"), f: wire.TCPFields{
		SrcPort: 41000, DstPort: 7777, Seq: 1001, Ack: 95000, Window: 502,
		Flags: wire.TCPFlagPSH | wire.TCPFlagACK,
		Options: wire.TCPOptions{
			HasTimestamps: true, TSVal: 0x01020404, TSEcr: 0x0a0b0c0d,
			SACKBlocks:    [4]wire.TCPSACKBlock{{96000, 97000}, {98000, 99000}, {100000, 101000}},
			NumSACKBlocks: 3,
		},
	}},
	{name: "ack-sack4", f: wire.TCPFields{
		SrcPort: 41000, DstPort: 7777, Seq: 1026, Ack: 95000, Window: 502,
		Flags: wire.TCPFlagACK,
		Options: wire.TCPOptions{
			SACKBlocks:    [4]wire.TCPSACKBlock{{96000, 97000}, {98000, 99000}, {100000, 101000}, {102000, 103000}},
			NumSACKBlocks: 4,
		},
	}},
	{name: "urgent", payload: []byte("!"), f: wire.TCPFields{
		SrcPort: 41000, DstPort: 7777, Seq: 1026, Ack: 95000, Window: 502,
		Flags: wire.TCPFlagURG | wire.TCPFlagACK, Urgent: 1,
	}},
	{name: "fin", f: wire.TCPFields{
		SrcPort: 41000, DstPort: 7777, Seq: 1027, Ack: 95000, Window: 502,
		Flags:   wire.TCPFlagFIN | wire.TCPFlagACK,
		Options: wire.TCPOptions{HasTimestamps: true, TSVal: 0x01020504, TSEcr: 0x0a0b0d0d},
	}},
	{name: "rst", f: wire.TCPFields{
		SrcPort: 7777, DstPort: 41002, Seq: 0, Ack: 5001,
		Flags: wire.TCPFlagRST | wire.TCPFlagACK,
	}},
}

func init() {
	families := []struct {
		name, proto string
		src, dst    netip.Addr
	}{
		{"ipv4", "ip", transportV4A, transportV4B},
		{"ipv6", "ipv6", transportV6A, transportV6B},
	}
	for _, fam := range families {
		for _, c := range transportTCPCases {
			want := "eth:ethertype:" + fam.proto + ":tcp"
			if len(c.payload) > 0 {
				want += ":data"
			}
			tsharkCases = append(tsharkCases, tsharkCase{
				Name: "tcp/" + fam.name + "/" + c.name,
				Frame: func(t *testing.T) []byte {
					return transportIPFrame(t, fam.src, fam.dst, wire.IPProtoTCP, transportTCP(c.f, c.payload, fam.src, fam.dst))
				},
				WantProtocols: want,
			})
		}
		tsharkCases = append(tsharkCases,
			tsharkCase{
				Name: "udp/" + fam.name + "/payload",
				Frame: func(t *testing.T) []byte {
					u := transportUDP(wire.UDPFields{SrcPort: 41000, DstPort: 7778}, []byte("stackbox datagram"), fam.src, fam.dst, false)
					return transportIPFrame(t, fam.src, fam.dst, wire.IPProtoUDP, u)
				},
				WantProtocols: "eth:ethertype:" + fam.proto + ":udp:data",
			},
			tsharkCase{
				Name: "udp/" + fam.name + "/empty",
				Frame: func(t *testing.T) []byte {
					u := transportUDP(wire.UDPFields{SrcPort: 41000, DstPort: 7778}, nil, fam.src, fam.dst, false)
					return transportIPFrame(t, fam.src, fam.dst, wire.IPProtoUDP, u)
				},
				WantProtocols: "eth:ethertype:" + fam.proto + ":udp",
			},
			// A TCP checksum off by one bit must be caught.
			tsharkCase{
				Name: "broken/tcp/" + fam.name + "/bad-checksum",
				Frame: func(t *testing.T) []byte {
					seg := transportTCP(transportTCPCases[0].f, nil, fam.src, fam.dst)
					seg[17] ^= 1
					return transportIPFrame(t, fam.src, fam.dst, wire.IPProtoTCP, seg)
				},
				WantProtocols: "tcp",
				WantProblem:   "checksum",
			},
			// A UDP length field longer than the datagram.
			tsharkCase{
				Name: "broken/udp/" + fam.name + "/bad-length",
				Frame: func(t *testing.T) []byte {
					u := transportUDP(wire.UDPFields{SrcPort: 41000, DstPort: 7778}, []byte("x"), fam.src, fam.dst, false)
					u[5] += 4
					return transportIPFrame(t, fam.src, fam.dst, wire.IPProtoUDP, u)
				},
				WantProtocols: "udp",
				WantProblem:   "length",
			},
		)
	}
	tsharkCases = append(tsharkCases,
		// RFC 768: zero means "no checksum", legal over IPv4.
		tsharkCase{
			Name: "udp/ipv4/zero-checksum",
			Frame: func(t *testing.T) []byte {
				u := transportUDP(wire.UDPFields{SrcPort: 41000, DstPort: 7778}, []byte("no checksum"), transportV4A, transportV4B, true)
				return transportIPFrame(t, transportV4A, transportV4B, wire.IPProtoUDP, u)
			},
			WantProtocols: "eth:ethertype:ip:udp:data",
		},
		// RFC 8200 §8.1: over IPv6 the same datagram is invalid.
		tsharkCase{
			Name: "broken/udp/ipv6/zero-checksum",
			Frame: func(t *testing.T) []byte {
				u := transportUDP(wire.UDPFields{SrcPort: 41000, DstPort: 7778}, []byte("no checksum"), transportV6A, transportV6B, true)
				return transportIPFrame(t, transportV6A, transportV6B, wire.IPProtoUDP, u)
			},
			WantProtocols: "udp",
			WantProblem:   "checksum",
		},
		// An IPv4 total length beyond the frame.
		tsharkCase{
			Name: "broken/ipv4/total-length",
			Frame: func(t *testing.T) []byte {
				seg := transportTCP(transportTCPCases[0].f, nil, transportV4A, transportV4B)
				f := transportIPFrame(t, transportV4A, transportV4B, wire.IPProtoTCP, seg)
				ip := f[wire.EthernetHeaderLen:]
				// Raise the total length and keep the header checksum
				// right, so only the length is wrong.
				old := uint16(ip[2])<<8 | uint16(ip[3])
				ip[3] += 40
				c := wire.ChecksumUpdate(uint16(ip[10])<<8|uint16(ip[11]), old, old+40)
				ip[10], ip[11] = byte(c>>8), byte(c)
				return f
			},
			WantProtocols: "ip",
			WantProblem:   "length",
		},
		// A TCP option whose length runs past the header.
		tsharkCase{
			Name: "broken/tcp/ipv4/option-overrun",
			Frame: func(t *testing.T) []byte {
				f := wire.TCPFields{SrcPort: 41000, DstPort: 7777, Seq: 1, Flags: wire.TCPFlagSYN,
					Options: wire.TCPOptions{HasMSS: true, MSS: 1460}}
				seg := make([]byte, f.Len())
				f.Encode(seg)
				seg[wire.TCPMinHeaderLen+1] = 12 // MSS claims 12 bytes, 4 remain
				f.SetChecksum(seg, transportV4A, transportV4B)
				return transportIPFrame(t, transportV4A, transportV4B, wire.IPProtoTCP, seg)
			},
			WantProtocols: "tcp",
			WantProblem:   "option",
		},
	)
}
