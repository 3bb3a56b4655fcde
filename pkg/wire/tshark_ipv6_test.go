package wire_test

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// IPv6, ICMPv6, NDP and MLD frames for the tshark harness (tshark_test.go),
// built entirely with our builders.

var (
	ipv6TsMACA = wire.MAC{0x02, 0x00, 0x5e, 0x60, 0x00, 0x01}
	ipv6TsMACB = wire.MAC{0x02, 0x00, 0x5e, 0x60, 0x00, 0x02}

	ipv6TsA    = netip.MustParseAddr("2001:db8:6::1")
	ipv6TsB    = netip.MustParseAddr("2001:db8:6::2")
	ipv6TsLLA  = netip.MustParseAddr("fe80::5eff:fe60:1")
	ipv6TsLLB  = netip.MustParseAddr("fe80::5eff:fe60:2")
	ipv6TsAll  = netip.MustParseAddr("ff02::1")
	ipv6TsRtrs = netip.MustParseAddr("ff02::2")
	ipv6TsMLD2 = netip.MustParseAddr("ff02::16")
)

// ipv6TsFrame wraps an IPv6 payload (extension headers and upper layer,
// first header of type next) in an IPv6 and an Ethernet header. A
// multicast destination gets its 33:33 group MAC.
func ipv6TsFrame(src, dst netip.Addr, hopLimit, next uint8, payload []byte) []byte {
	eth := wire.EthernetFields{Dst: ipv6TsMACB, Src: ipv6TsMACA, EtherType: wire.EtherTypeIPv6}
	if dst.IsMulticast() {
		eth.Dst = wire.IPv6MulticastMAC(dst)
	}
	ip := wire.IPv6Fields{NextHeader: next, HopLimit: hopLimit, Src: src, Dst: dst, PayloadLen: len(payload)}
	frame := make([]byte, eth.Len()+ip.Len()+len(payload))
	eth.Encode(frame)
	ip.Encode(frame[eth.Len():])
	copy(frame[eth.Len()+ip.Len():], payload)
	return frame
}

// ipv6TsMsg encodes an NDP or MLD builder and checksums it.
func ipv6TsMsg(f interface {
	Len() int
	Encode([]byte)
}, src, dst netip.Addr) []byte {
	b := make([]byte, f.Len())
	f.Encode(b)
	wire.SetICMPv6Checksum(b, src, dst)
	return b
}

// ipv6TsEcho builds a checksummed echo message.
func ipv6TsEcho(typ uint8, seq uint16, data []byte, src, dst netip.Addr) []byte {
	f := wire.ICMPv6Fields{Type: typ, Rest: wire.ICMPv6EchoRest(0x4242, seq), PayloadLen: len(data)}
	b := make([]byte, f.Len()+len(data))
	f.Encode(b)
	copy(b[f.Len():], data)
	f.SetChecksum(b, src, dst)
	return b
}

// ipv6TsEchoPacket is a whole echo request packet from B to A, to quote
// in error messages.
func ipv6TsEchoPacket() []byte {
	msg := ipv6TsEcho(wire.ICMPv6EchoRequest, 7, []byte("stackbox ipv6 echo data"), ipv6TsB, ipv6TsA)
	return ipv6TsFrame(ipv6TsB, ipv6TsA, 64, wire.IPProtoICMPv6, msg)[wire.EthernetHeaderLen:]
}

// ipv6TsHopByHopMLD prepends the Router Alert hop-by-hop header MLD needs.
func ipv6TsHopByHopMLD(msg []byte) []byte {
	h := wire.IPv6OptionsFields{NextHeader: wire.IPProtoICMPv6, RouterAlert: true, RouterAlertValue: wire.IPv6RouterAlertMLD}
	b := make([]byte, h.Len()+len(msg))
	h.Encode(b)
	copy(b[h.Len():], msg)
	return b
}

func init() {
	add := func(name, protocols string, frame func(t *testing.T) []byte) {
		tsharkCases = append(tsharkCases, tsharkCase{Name: name, WantProtocols: protocols, Frame: frame})
	}
	add("icmpv6/echo-request", "ipv6:icmpv6", func(t *testing.T) []byte {
		return ipv6TsFrame(ipv6TsA, ipv6TsB, 64, wire.IPProtoICMPv6,
			ipv6TsEcho(wire.ICMPv6EchoRequest, 1, []byte("0123456789abcdef"), ipv6TsA, ipv6TsB))
	})
	add("icmpv6/echo-reply", "ipv6:icmpv6", func(t *testing.T) []byte {
		return ipv6TsFrame(ipv6TsB, ipv6TsA, 64, wire.IPProtoICMPv6,
			ipv6TsEcho(wire.ICMPv6EchoReply, 1, []byte("0123456789abcdef"), ipv6TsB, ipv6TsA))
	})
	for _, e := range []struct {
		name string
		f    wire.ICMPv6Fields
	}{
		{"dst-unreachable-port", wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable, Code: wire.ICMPv6CodePortUnreachable}},
		{"dst-unreachable-noroute", wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable, Code: wire.ICMPv6CodeNoRoute}},
		{"packet-too-big", wire.ICMPv6Fields{Type: wire.ICMPv6PacketTooBig, Rest: 1280}},
		{"time-exceeded", wire.ICMPv6Fields{Type: wire.ICMPv6TimeExceeded, Code: wire.ICMPv6CodeHopLimitExceeded}},
		{"param-problem", wire.ICMPv6Fields{Type: wire.ICMPv6ParamProblem, Code: wire.ICMPv6CodeUnrecognizedNext, Rest: 6}},
	} {
		add("icmpv6/"+e.name, "ipv6:icmpv6:ipv6:icmpv6", func(t *testing.T) []byte {
			orig := ipv6TsEchoPacket()
			f := e.f
			f.PayloadLen = len(orig)
			b := make([]byte, f.Len()+len(orig))
			f.Encode(b)
			copy(b[f.Len():], orig)
			f.SetChecksum(b, ipv6TsA, ipv6TsB)
			return ipv6TsFrame(ipv6TsA, ipv6TsB, 64, wire.IPProtoICMPv6, b)
		})
	}
	add("ndp/router-solicitation", "ipv6:icmpv6", func(t *testing.T) []byte {
		return ipv6TsFrame(ipv6TsLLA, ipv6TsRtrs, 255, wire.IPProtoICMPv6,
			ipv6TsMsg(&wire.NDPRouterSolicitFields{SourceLinkAddr: ipv6TsMACA}, ipv6TsLLA, ipv6TsRtrs))
	})
	add("ndp/router-advertisement", "ipv6:icmpv6", func(t *testing.T) []byte {
		f := &wire.NDPRouterAdvertFields{
			CurHopLimit: 64, Managed: true, Other: true, RouterLifetime: 1800, ReachableTime: 30000, RetransTimer: 1000,
			SourceLinkAddr: ipv6TsMACB, MTU: 1500,
			Prefixes: []wire.NDPPrefixFields{{Prefix: netip.MustParsePrefix("2001:db8:6::/64"), OnLink: true,
				Autonomous: true, ValidLifetime: 86400, PreferredLifetime: 14400}},
			RDNSS: []netip.Addr{ipv6TsB}, RDNSSLifetime: 600,
			DNSSL: []string{"example.com", "lab.example.org"}, DNSSLLifetime: 600,
		}
		return ipv6TsFrame(ipv6TsLLB, ipv6TsAll, 255, wire.IPProtoICMPv6, ipv6TsMsg(f, ipv6TsLLB, ipv6TsAll))
	})
	add("ndp/neighbor-solicitation", "ipv6:icmpv6", func(t *testing.T) []byte {
		dst := wire.IPv6SolicitedNode(ipv6TsB)
		return ipv6TsFrame(ipv6TsA, dst, 255, wire.IPProtoICMPv6,
			ipv6TsMsg(&wire.NDPNeighborSolicitFields{Target: ipv6TsB, SourceLinkAddr: ipv6TsMACA}, ipv6TsA, dst))
	})
	add("ndp/neighbor-solicitation-dad", "ipv6:icmpv6", func(t *testing.T) []byte {
		src, dst := netip.IPv6Unspecified(), wire.IPv6SolicitedNode(ipv6TsA)
		return ipv6TsFrame(src, dst, 255, wire.IPProtoICMPv6,
			ipv6TsMsg(&wire.NDPNeighborSolicitFields{Target: ipv6TsA}, src, dst))
	})
	add("ndp/neighbor-advertisement", "ipv6:icmpv6", func(t *testing.T) []byte {
		f := &wire.NDPNeighborAdvertFields{Router: true, Solicited: true, Override: true, Target: ipv6TsB, TargetLinkAddr: ipv6TsMACB}
		return ipv6TsFrame(ipv6TsB, ipv6TsA, 255, wire.IPProtoICMPv6, ipv6TsMsg(f, ipv6TsB, ipv6TsA))
	})
	add("ndp/redirect", "ipv6:icmpv6", func(t *testing.T) []byte {
		f := &wire.NDPRedirectFields{Target: netip.MustParseAddr("fe80::c"), Destination: ipv6TsA,
			TargetLinkAddr: wire.MAC{2, 0, 0, 0, 0, 0x0c}, Redirected: ipv6TsEchoPacket()}
		return ipv6TsFrame(ipv6TsLLA, ipv6TsLLB, 255, wire.IPProtoICMPv6, ipv6TsMsg(f, ipv6TsLLA, ipv6TsLLB))
	})
	add("mld/v2-report", "ipv6:ipv6.hopopts:icmpv6", func(t *testing.T) []byte {
		f := &wire.MLDv2ReportFields{Records: []wire.MLDv2RecordFields{
			{Type: wire.MLDv2ChangeToExclude, MulticastAddr: wire.IPv6SolicitedNode(ipv6TsA)},
			{Type: wire.MLDv2AllowNewSources, MulticastAddr: netip.MustParseAddr("ff3e::1234"), Sources: []netip.Addr{ipv6TsB, ipv6TsA}},
			{Type: wire.MLDv2ModeIsInclude, MulticastAddr: netip.MustParseAddr("ff05::1:3"), Sources: []netip.Addr{ipv6TsB}},
		}}
		return ipv6TsFrame(ipv6TsLLA, ipv6TsMLD2, 1, wire.IPProtoHopByHop, ipv6TsHopByHopMLD(ipv6TsMsg(f, ipv6TsLLA, ipv6TsMLD2)))
	})
	add("mld/v2-query", "ipv6:ipv6.hopopts:icmpv6", func(t *testing.T) []byte {
		f := &wire.MLDv2QueryFields{MaxRespCode: 10000, QRV: 2, QQIC: 125, MulticastAddr: netip.MustParseAddr("ff3e::1234"),
			Sources: []netip.Addr{ipv6TsA}}
		return ipv6TsFrame(ipv6TsLLB, ipv6TsAll, 1, wire.IPProtoHopByHop, ipv6TsHopByHopMLD(ipv6TsMsg(f, ipv6TsLLB, ipv6TsAll)))
	})
	for _, v1 := range []struct {
		name string
		typ  uint8
		dst  netip.Addr
	}{{"v1-report", wire.ICMPv6MLDReport, netip.MustParseAddr("ff05::1:3")}, {"v1-done", wire.ICMPv6MLDDone, ipv6TsRtrs}} {
		add("mld/"+v1.name, "ipv6:ipv6.hopopts:icmpv6", func(t *testing.T) []byte {
			f := &wire.MLDv1Fields{Type: v1.typ, MulticastAddr: netip.MustParseAddr("ff05::1:3")}
			return ipv6TsFrame(ipv6TsLLA, v1.dst, 1, wire.IPProtoHopByHop, ipv6TsHopByHopMLD(ipv6TsMsg(f, ipv6TsLLA, v1.dst)))
		})
	}
	add("ipv6/destination-options", "ipv6:ipv6.dstopts:icmpv6", func(t *testing.T) []byte {
		msg := ipv6TsEcho(wire.ICMPv6EchoRequest, 3, []byte("dstopts"), ipv6TsA, ipv6TsB)
		// An option Wireshark does not know (action: skip), then padding.
		d := wire.IPv6OptionsFields{NextHeader: wire.IPProtoICMPv6, Options: wire.AppendIPv6Option(nil, 0x1e, []byte{0xaa, 0xbb, 0xcc})}
		b := make([]byte, d.Len()+len(msg))
		d.Encode(b)
		copy(b[d.Len():], msg)
		return ipv6TsFrame(ipv6TsA, ipv6TsB, 64, wire.IPProtoDestOpts, b)
	})
	// One echo request of 3000 data bytes in three fragments; tshark
	// reassembles them in the capture.
	const fragData, fragSize = 3000, 1232
	echo := func() []byte {
		data := make([]byte, fragData)
		for i := range data {
			data[i] = byte(i)
		}
		return ipv6TsEcho(wire.ICMPv6EchoRequest, 9, data, ipv6TsA, ipv6TsB)
	}
	for i := 0; i*fragSize < fragData+8; i++ {
		add("ipv6/fragment-"+string(rune('0'+i)), "ipv6:ipv6.fraghdr", func(t *testing.T) []byte {
			msg := echo()
			part := msg[i*fragSize : min((i+1)*fragSize, len(msg))]
			fh := wire.IPv6FragmentFields{NextHeader: wire.IPProtoICMPv6, Offset: i * fragSize,
				More: (i+1)*fragSize < len(msg), ID: 0x5eed0001}
			b := make([]byte, fh.Len()+len(part))
			fh.Encode(b)
			copy(b[fh.Len():], part)
			return ipv6TsFrame(ipv6TsA, ipv6TsB, 64, wire.IPProtoFragment, b)
		})
	}
	// A deliberately broken frame: an NA whose checksum is off by one.
	tsharkCases = append(tsharkCases, tsharkCase{Name: "ndp/bad-checksum", WantProblem: "checksum", Frame: func(t *testing.T) []byte {
		f := &wire.NDPNeighborAdvertFields{Solicited: true, Target: ipv6TsB, TargetLinkAddr: ipv6TsMACB}
		msg := ipv6TsMsg(f, ipv6TsB, ipv6TsA)
		msg[3]++
		return ipv6TsFrame(ipv6TsB, ipv6TsA, 255, wire.IPProtoICMPv6, msg)
	}})
}
