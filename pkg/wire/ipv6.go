package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 (RFC 8200). The extension header chain is in ipv6_ext.go.

// IPv6 sizes and limits.
const (
	IPv6HeaderLen = 40
	// IPv6MinMTU is the link MTU every IPv6 link must support (RFC 8200 §5).
	IPv6MinMTU = 1280
	// IPv6MaxPayloadLen is the largest payload a non-jumbogram carries.
	IPv6MaxPayloadLen = 65535
)

// IPv6 is a validated view of an IPv6 packet, made by ParseIPv6 (trimmed
// to 40 bytes plus the payload length) or ParseIPv6Quoted (possibly cut short).
type IPv6 []byte

// ParseIPv6 validates the fixed IPv6 header and returns the packet trimmed
// to 40 bytes plus its payload length, so link-layer padding is dropped. It
// checks version 6 and that the payload length fits the buffer. A payload
// length of 0 in front of a Hop-by-Hop header is a jumbogram (RFC 2675),
// which no link this stack drives can carry: ErrUnsupported. Extension
// headers are checked as they are walked (see IPv6.ExtHeaders).
func ParseIPv6(b []byte) (IPv6, error) {
	if err := ipv6CheckHeader(b); err != nil {
		return nil, err
	}
	pl := int(binary.BigEndian.Uint16(b[4:]))
	if pl == 0 && b[6] == IPProtoHopByHop {
		return nil, ipv6JumboError(b[IPv6HeaderLen:])
	}
	if IPv6HeaderLen+pl > len(b) {
		return nil, newError(ErrTruncated, "ipv6", "payload length",
			"%d exceeds the %d bytes after the header", pl, len(b)-IPv6HeaderLen)
	}
	return IPv6(b[:IPv6HeaderLen+pl]), nil
}

// ParseIPv6Quoted validates the IPv6 header quoted in an ICMPv6 error
// message, which carries as much of the invoking packet as fits in the
// minimum MTU (RFC 4443 §2.4 (c)), so the payload may be shorter than the
// payload length claims. The fixed header must be whole; the view is b
// trimmed to min(40+payload length, len(b)); PayloadLen still returns the
// claimed length.
func ParseIPv6Quoted(b []byte) (IPv6, error) {
	if err := ipv6CheckHeader(b); err != nil {
		return nil, err
	}
	pl := int(binary.BigEndian.Uint16(b[4:]))
	if pl == 0 && b[6] == IPProtoHopByHop {
		return IPv6(b), nil // a quoted jumbogram: keep what was quoted
	}
	return IPv6(b[:min(IPv6HeaderLen+pl, len(b))]), nil
}

func ipv6CheckHeader(b []byte) error {
	if len(b) < IPv6HeaderLen {
		return truncated("ipv6", "header", IPv6HeaderLen, len(b))
	}
	if v := b[0] >> 4; v != 6 {
		return newError(ErrMalformed, "ipv6", "version", "%d, want 6", v)
	}
	return nil
}

// ipv6JumboError explains a zero payload length in front of a Hop-by-Hop
// header: either a jumbogram (RFC 2675 §3) or a header the payload length
// cannot hold.
func ipv6JumboError(rest []byte) error {
	if hbh, err := ParseIPv6Options(rest); err == nil {
		it := hbh.Options()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if o.Type == IPv6OptJumboPayload {
				return newError(ErrUnsupported, "ipv6", "payload length",
					"0 with a Jumbo Payload option: jumbograms (RFC 2675) are not supported")
			}
		}
	}
	return newError(ErrMalformed, "ipv6", "payload length",
		"0 cannot hold the hop-by-hop options header that next header names")
}

// Version returns 6.
func (h IPv6) Version() uint8 { return h[0] >> 4 }

// TrafficClass returns the traffic class octet (DSCP and ECN).
func (h IPv6) TrafficClass() uint8 { return h[0]<<4 | h[1]>>4 }

// DSCP returns the differentiated services code point (RFC 2474).
func (h IPv6) DSCP() uint8 { return h.TrafficClass() >> 2 }

// ECN returns the explicit congestion notification bits (RFC 3168).
func (h IPv6) ECN() uint8 { return h.TrafficClass() & 3 }

// FlowLabel returns the 20-bit flow label (RFC 6437).
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:]) & 0xfffff }

// PayloadLen returns the payload length field: everything after the fixed
// header, extension headers included.
func (h IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(h[4:])) }

// NextHeader returns the type of the header that follows the fixed header.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit.
func (h IPv6) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Dst returns the destination address.
func (h IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// Header returns the 40-byte fixed header.
func (h IPv6) Header() []byte { return h[:IPv6HeaderLen] }

// Payload returns the bytes after the fixed header: the extension headers,
// if any, and the upper-layer data.
func (h IPv6) Payload() []byte { return h[IPv6HeaderLen:] }

// ExtHeaders returns an iterator over the extension header chain.
func (h IPv6) ExtHeaders() IPv6ExtIter { return NewIPv6ExtIter(h.NextHeader(), h.Payload()) }

// IPv6Fields builds the fixed IPv6 header.
type IPv6Fields struct {
	TrafficClass uint8  // DSCP<<2 | ECN
	FlowLabel    uint32 // 20 bits
	NextHeader   uint8
	HopLimit     uint8
	// Src and Dst must be IPv6 addresses (an IPv4-mapped one is IPv6); the
	// zero Addr is ::.
	Src, Dst netip.Addr
	// PayloadLen is the length of everything after the fixed header,
	// extension headers included.
	PayloadLen int
}

// Len returns 40.
func (f *IPv6Fields) Len() int { return IPv6HeaderLen }

// Encode writes the header to b[:40]; b must be at least that long. A
// payload length outside 0…65535, a flow label wider than 20 bits or an
// IPv4 address are programming errors and panic.
func (f *IPv6Fields) Encode(b []byte) {
	if f.PayloadLen < 0 || f.PayloadLen > IPv6MaxPayloadLen {
		panic("wire: IPv6Fields.PayloadLen out of range")
	}
	if f.FlowLabel > 0xfffff {
		panic("wire: IPv6Fields.FlowLabel wider than 20 bits")
	}
	_ = b[IPv6HeaderLen-1]
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel)
	binary.BigEndian.PutUint16(b[4:], uint16(f.PayloadLen))
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	ipv6PutAddr(b[8:24], f.Src)
	ipv6PutAddr(b[24:40], f.Dst)
}

// ipv6PutAddr writes an IPv6 address into b[:16]. The zero Addr becomes ::;
// an IPv4 address is a programming error and panics.
func ipv6PutAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		clear(b[:16])
		return
	}
	if a.Is4() {
		panic("wire: IPv4 address " + a.String() + " where IPv6 is required")
	}
	v := a.As16()
	copy(b[:16], v[:])
}

// IPv6MulticastMAC returns the Ethernet group address an IPv6 multicast
// address maps to: 33:33 followed by its low 32 bits (RFC 2464 §7). The
// result is meaningless for a non-multicast address.
func IPv6MulticastMAC(a netip.Addr) MAC {
	b := a.As16()
	return MAC{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// IPv6SolicitedNode returns the solicited-node multicast address of a
// unicast address, ff02::1:ffXX:XXXX with its low 24 bits (RFC 4291 §2.7.1),
// to which neighbour solicitations for it are sent.
func IPv6SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}
