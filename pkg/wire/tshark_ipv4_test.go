package wire_test

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Ethernet, ARP, IPv4 (with options), ICMPv4 and IGMP frames for the tshark
// harness (tshark_test.go), built entirely with our builders.

var (
	v4tsMACA = wire.MAC{0x02, 0x00, 0x5e, 0x40, 0x00, 0x01}
	v4tsMACB = wire.MAC{0x02, 0x00, 0x5e, 0x40, 0x00, 0x02}
	v4tsA    = netip.MustParseAddr("192.0.2.1")
	v4tsB    = netip.MustParseAddr("192.0.2.2")
	v4tsR    = netip.MustParseAddr("198.51.100.1") // a router on the path
)

// v4tsFrame wraps an IPv4 payload (already encoded, checksums done) in an
// IPv4 header and an Ethernet header with the given VLAN tags.
func v4tsFrame(ip wire.IPv4Fields, payload []byte, tags ...wire.VLANTag) []byte {
	eth := wire.EthernetFields{Dst: v4tsMACB, Src: v4tsMACA, EtherType: wire.EtherTypeIPv4, NumTags: len(tags)}
	if ip.Dst.IsMulticast() {
		eth.Dst = wire.IPv4MulticastMAC(ip.Dst)
	}
	copy(eth.Tags[:], tags)
	ip.PayloadLen = len(payload)
	b := make([]byte, eth.Len()+ip.Len()+len(payload))
	eth.Encode(b)
	ip.Encode(b[eth.Len():])
	copy(b[eth.Len()+ip.Len():], payload)
	return b
}

// v4tsICMP encodes an ICMP message over body (echo data or a quoted datagram).
func v4tsICMP(f wire.ICMPv4Fields, body []byte) []byte {
	b := make([]byte, wire.ICMPv4HeaderLen+len(body))
	copy(b[wire.ICMPv4HeaderLen:], body)
	f.PayloadLen = len(body)
	f.Encode(b)
	return b
}

// v4tsEchoDatagram is the IPv4 datagram of an echo request from A to dst,
// as an ICMP error would quote it.
func v4tsEchoDatagram(dst netip.Addr, ttl uint8, dataLen int) []byte {
	data := make([]byte, dataLen)
	for i := range data {
		data[i] = byte(i)
	}
	icmp := v4tsICMP(wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 0x4242, Seq: 7}, data)
	ip := wire.IPv4Fields{ID: 0x0101, DF: true, TTL: ttl, Protocol: wire.IPProtoICMP, Src: v4tsA, Dst: dst, PayloadLen: len(icmp)}
	b := make([]byte, ip.Len()+len(icmp))
	ip.Encode(b)
	copy(b[ip.Len():], icmp)
	return b
}

// v4tsARP builds an ARP frame.
func v4tsARP(a wire.ARPFields, dst wire.MAC, tags ...wire.VLANTag) []byte {
	eth := wire.EthernetFields{Dst: dst, Src: a.SenderMAC, EtherType: wire.EtherTypeARP, NumTags: len(tags)}
	copy(eth.Tags[:], tags)
	b := make([]byte, eth.Len()+a.Len())
	eth.Encode(b)
	a.Encode(b[eth.Len():])
	return b
}

func v4tsError(typ, code uint8, f wire.ICMPv4Fields, quoted []byte) []byte {
	f.Type, f.Code = typ, code
	return v4tsFrame(wire.IPv4Fields{TOS: 0xc0, TTL: 64, Protocol: wire.IPProtoICMP, Src: v4tsR, Dst: v4tsA}, v4tsICMP(f, quoted))
}

func init() {
	echo := func(opts []byte, tags ...wire.VLANTag) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			data := []byte("stackbox ping payload, 32 bytes")
			icmp := v4tsICMP(wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 0x1234, Seq: 1}, data)
			return v4tsFrame(wire.IPv4Fields{ID: 7, DF: true, TTL: 64, Protocol: wire.IPProtoICMP, Src: v4tsA, Dst: v4tsB, Options: opts}, icmp, tags...)
		}
	}
	var rr, ts, tsa, lsrr, ra [wire.IPv4MaxOptionLen]byte
	quoteEcho := v4tsEchoDatagram(v4tsB, 1, 32)
	igmp := func(f wire.IGMPFields, dst netip.Addr) []byte {
		b := make([]byte, f.Len())
		f.Encode(b)
		return v4tsFrame(wire.IPv4Fields{TOS: 0xc0, DF: true, TTL: 1, Protocol: wire.IPProtoIGMP, Src: v4tsA, Dst: dst,
			Options: wire.AppendIPv4RouterAlert(ra[:0])}, b)
	}
	group := netip.MustParseAddr("239.1.2.3")

	tsharkCases = append(tsharkCases,
		tsharkCase{Name: "arp/request", WantProtocols: "eth:ethertype:arp", Frame: func(t *testing.T) []byte {
			return v4tsARP(wire.ARPFields{Op: wire.ARPRequest, SenderMAC: v4tsMACA, SenderIP: v4tsA, TargetIP: v4tsB}, wire.BroadcastMAC)
		}},
		tsharkCase{Name: "arp/reply", WantProtocols: "eth:ethertype:arp", Frame: func(t *testing.T) []byte {
			return v4tsARP(wire.ARPFields{Op: wire.ARPReply, SenderMAC: v4tsMACB, SenderIP: v4tsB, TargetMAC: v4tsMACA, TargetIP: v4tsA}, v4tsMACA)
		}},
		tsharkCase{Name: "arp/gratuitous", WantProtocols: "eth:ethertype:arp", Frame: func(t *testing.T) []byte {
			return v4tsARP(wire.ARPFields{Op: wire.ARPRequest, SenderMAC: v4tsMACA, SenderIP: v4tsA, TargetIP: v4tsA}, wire.BroadcastMAC)
		}},
		tsharkCase{Name: "arp/qinq", WantProtocols: "eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:arp", Frame: func(t *testing.T) []byte {
			return v4tsARP(wire.ARPFields{Op: wire.ARPRequest, SenderMAC: v4tsMACA, SenderIP: v4tsA, TargetIP: v4tsB}, wire.BroadcastMAC,
				wire.VLANTag{TPID: wire.EtherTypeQinQ, VID: 200, DEI: true}, wire.VLANTag{VID: 300, PCP: 3})
		}},
		tsharkCase{Name: "icmp/ipv4/echo", WantProtocols: "eth:ethertype:ip:icmp:data", Frame: echo(nil)},
		tsharkCase{Name: "icmp/ipv4/vlan/echo", WantProtocols: "eth:ethertype:vlan:ethertype:ip:icmp",
			Frame: echo(nil, wire.VLANTag{VID: 100, PCP: 5})},
		tsharkCase{Name: "icmp/ipv4/echo-reply", WantProtocols: "ip:icmp", Frame: func(t *testing.T) []byte {
			icmp := v4tsICMP(wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, Ident: 0x1234, Seq: 1}, []byte("pong"))
			return v4tsFrame(wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoICMP, Src: v4tsB, Dst: v4tsA}, icmp)
		}},
		tsharkCase{Name: "ipv4/option/record-route", WantProtocols: "ip:icmp",
			Frame: echo(wire.AppendIPv4RecordRoute(append(rr[:0], wire.IPv4OptNOP), 9))},
		tsharkCase{Name: "ipv4/option/timestamp", WantProtocols: "ip:icmp",
			Frame: echo(wire.AppendIPv4Timestamp(ts[:0], wire.IPv4TimestampOnly, 9))},
		tsharkCase{Name: "ipv4/option/timestamp-addr", WantProtocols: "ip:icmp",
			Frame: echo(wire.AppendIPv4Timestamp(tsa[:0], wire.IPv4TimestampAndAddr, 4))},
		tsharkCase{Name: "ipv4/option/lsrr+router-alert", WantProtocols: "ip:icmp",
			Frame: echo(wire.AppendIPv4RouterAlert(wire.AppendIPv4SourceRoute(lsrr[:0], false, v4tsR, v4tsB)))},
		tsharkCase{Name: "ipv4/fragment", WantProtocols: "eth:ethertype:ip", Frame: func(t *testing.T) []byte {
			// A middle fragment: tshark cannot reassemble it, but the header must decode.
			return v4tsFrame(wire.IPv4Fields{ID: 99, MF: true, FragmentOffset: 1480, TTL: 64, Protocol: wire.IPProtoICMP, Src: v4tsA, Dst: v4tsB}, make([]byte, 64))
		}},
		tsharkCase{Name: "icmp/ipv4/net-unreachable", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			return v4tsError(wire.ICMPv4DestUnreachable, wire.ICMPv4NetUnreachable, wire.ICMPv4Fields{}, quoteEcho)
		}},
		tsharkCase{Name: "icmp/ipv4/port-unreachable", WantProtocols: "ip:icmp:ip:udp", Frame: func(t *testing.T) []byte {
			udp := wire.UDPFields{SrcPort: 40000, DstPort: 9}
			seg := make([]byte, udp.Len()+5)
			copy(seg[udp.Len():], "hello")
			udp.PayloadLen = 5
			udp.Encode(seg)
			udp.SetChecksum(seg, v4tsA, v4tsB)
			ip := wire.IPv4Fields{ID: 3, DF: true, TTL: 64, Protocol: wire.IPProtoUDP, Src: v4tsA, Dst: v4tsB, PayloadLen: len(seg)}
			dg := make([]byte, ip.Len()+len(seg))
			ip.Encode(dg)
			copy(dg[ip.Len():], seg)
			return v4tsError(wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, wire.ICMPv4Fields{}, dg)
		}},
		tsharkCase{Name: "icmp/ipv4/frag-needed", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			// RFC 792 quote: header plus 64 bits of the 1228-byte datagram.
			return v4tsError(wire.ICMPv4DestUnreachable, wire.ICMPv4FragmentationNeeded, wire.ICMPv4Fields{MTU: 1000},
				v4tsEchoDatagram(v4tsB, 64, 1200)[:28])
		}},
		tsharkCase{Name: "icmp/ipv4/time-exceeded", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			return v4tsError(wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, wire.ICMPv4Fields{}, quoteEcho)
		}},
		tsharkCase{Name: "icmp/ipv4/redirect", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			return v4tsError(wire.ICMPv4Redirect, wire.ICMPv4RedirectHost, wire.ICMPv4Fields{Gateway: netip.MustParseAddr("192.0.2.254")}, quoteEcho)
		}},
		tsharkCase{Name: "icmp/ipv4/parameter-problem", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			return v4tsError(wire.ICMPv4ParamProblem, wire.ICMPv4ParamPointer, wire.ICMPv4Fields{Pointer: 8}, quoteEcho)
		}},
		tsharkCase{Name: "icmp/ipv4/source-quench", WantProtocols: "ip:icmp:ip:icmp", Frame: func(t *testing.T) []byte {
			return v4tsError(wire.ICMPv4SourceQuench, 0, wire.ICMPv4Fields{}, quoteEcho)
		}},
		tsharkCase{Name: "icmp/ipv4/bad-checksum", WantProblem: "checksum", Frame: func(t *testing.T) []byte {
			f := echo(nil)(t)
			f[len(f)-1] ^= 0xff // payload changed after the ICMP checksum
			return f
		}},
		tsharkCase{Name: "igmp/v2-report", WantProtocols: "ip:igmp", Frame: func(t *testing.T) []byte {
			return igmp(wire.IGMPFields{Type: wire.IGMPv2Report, Group: group}, group)
		}},
		tsharkCase{Name: "igmp/v2-leave", WantProtocols: "ip:igmp", Frame: func(t *testing.T) []byte {
			return igmp(wire.IGMPFields{Type: wire.IGMPLeaveGroup, Group: group}, netip.MustParseAddr("224.0.0.2"))
		}},
		tsharkCase{Name: "igmp/v3-report", WantProtocols: "ip:igmp", Frame: func(t *testing.T) []byte {
			f := wire.IGMPv3ReportFields{Records: []wire.IGMPv3RecordFields{
				{Type: wire.IGMPv3ChangeToExclude, Group: group},
				{Type: wire.IGMPv3AllowNewSources, Group: netip.MustParseAddr("232.1.1.1"), Sources: []netip.Addr{v4tsR, v4tsB}},
			}}
			b := make([]byte, f.Len())
			f.Encode(b)
			return v4tsFrame(wire.IPv4Fields{TOS: 0xc0, DF: true, TTL: 1, Protocol: wire.IPProtoIGMP, Src: v4tsA,
				Dst: netip.MustParseAddr("224.0.0.22"), Options: wire.AppendIPv4RouterAlert(ra[:0])}, b)
		}},
		tsharkCase{Name: "igmp/v3-query", WantProtocols: "ip:igmp", Frame: func(t *testing.T) []byte {
			q := wire.IGMPv3QueryFields{MaxRespCode: 100, QRV: 2, QQIC: 125}
			b := make([]byte, q.Len())
			q.Encode(b)
			return v4tsFrame(wire.IPv4Fields{TOS: 0xc0, TTL: 1, Protocol: wire.IPProtoIGMP, Src: v4tsR,
				Dst: netip.MustParseAddr("224.0.0.1"), Options: wire.AppendIPv4RouterAlert(ra[:0])}, b)
		}},
	)
}
