package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 (RFC 791, with the host requirements of RFC 1122 §3.2.1).

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by
// the IPv4 protocol field and the IPv6 next-header field.
const (
	IPProtoHopByHop uint8 = 0 // IPv6 Hop-by-Hop Options (RFC 8200)
	IPProtoICMP     uint8 = 1
	IPProtoIGMP     uint8 = 2
	IPProtoIPIP     uint8 = 4 // IPv4 in IPv4 (RFC 2003)
	IPProtoTCP      uint8 = 6
	IPProtoUDP      uint8 = 17
	IPProtoIPv6     uint8 = 41 // IPv6 encapsulation (RFC 2473, 6in4)
	IPProtoRouting  uint8 = 43 // IPv6 Routing header
	IPProtoFragment uint8 = 44 // IPv6 Fragment header
	IPProtoGRE      uint8 = 47
	IPProtoESP      uint8 = 50
	IPProtoAH       uint8 = 51
	IPProtoICMPv6   uint8 = 58
	IPProtoNoNext   uint8 = 59 // IPv6 No Next Header
	IPProtoDestOpts uint8 = 60 // IPv6 Destination Options
	IPProtoSCTP     uint8 = 132
	IPProtoUDPLite  uint8 = 136
	IPProtoRaw      uint8 = 255 // reserved; raw sockets use it as "any"
)

// IPv4 sizes and limits.
const (
	IPv4MinHeaderLen = 20
	IPv4MaxHeaderLen = 60 // IHL is 4 bits of 32-bit words
	IPv4MaxOptionLen = IPv4MaxHeaderLen - IPv4MinHeaderLen
	IPv4MaxTotalLen  = 65535
	// IPv4MinMTU is the datagram size every host must accept without
	// fragmentation being required of the sender (RFC 791 §3.2 "Total Length").
	IPv4MinMTU = 68
	// IPv4MinReassemblyLen is the size every host must be able to reassemble
	// (RFC 791, RFC 1122 §3.3.2).
	IPv4MinReassemblyLen = 576
)

// IPv4 flag bits as they sit in the flags/fragment-offset word.
const (
	ipv4FlagReserved = 0x8000
	ipv4FlagDF       = 0x4000
	ipv4FlagMF       = 0x2000
	ipv4FragOffMask  = 0x1fff
)

// IPv4 is a validated view of an IPv4 datagram, made by ParseIPv4 (trimmed
// to the total length) or ParseIPv4Quoted (possibly cut short).
type IPv4 []byte

// ParseIPv4 validates an IPv4 header and its options and returns the
// datagram trimmed to its total length, so link-layer padding is dropped.
// It checks version 4, IHL ≥ 5, IHL*4 ≤ total length ≤ len(b), and every
// option's length and pointer (see IPv4OptionIter). The header checksum is
// not checked: see ChecksumValid.
func ParseIPv4(b []byte) (IPv4, error) {
	hl, err := ipv4CheckHeader(b)
	if err != nil {
		return nil, err
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl {
		return nil, newError(ErrMalformed, "ipv4", "total length", "%d is less than the %d-byte header", tl, hl)
	}
	if tl > len(b) {
		return nil, newError(ErrTruncated, "ipv4", "total length", "%d exceeds the %d-byte buffer", tl, len(b))
	}
	return IPv4(b[:tl]), nil
}

// ParseIPv4Quoted validates the IPv4 header quoted in an ICMP error
// message, of which the sender may have kept only the header and the first
// bytes of payload (RFC 792: 64 bits; RFC 1812 §4.3.2.3: as much as fits in
// 576 bytes). The header and its options must be whole; the payload may be
// shorter than the total length claims. The view is b trimmed to
// min(total length, len(b)); TotalLen still returns the claimed length.
func ParseIPv4Quoted(b []byte) (IPv4, error) {
	hl, err := ipv4CheckHeader(b)
	if err != nil {
		return nil, err
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl {
		return nil, newError(ErrMalformed, "ipv4", "total length", "%d is less than the %d-byte header", tl, hl)
	}
	return IPv4(b[:min(tl, len(b))]), nil
}

// ipv4CheckHeader validates what precedes the payload and returns the
// header length in bytes.
func ipv4CheckHeader(b []byte) (int, error) {
	if len(b) < IPv4MinHeaderLen {
		return 0, truncated("ipv4", "header", IPv4MinHeaderLen, len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return 0, newError(ErrMalformed, "ipv4", "version", "%d, want 4", v)
	}
	hl := int(b[0]&0x0f) * 4
	if hl < IPv4MinHeaderLen {
		return 0, newError(ErrMalformed, "ipv4", "ihl", "%d words, the minimum is 5", hl/4)
	}
	if hl > len(b) {
		return 0, newError(ErrTruncated, "ipv4", "ihl", "%d-byte header exceeds the %d-byte buffer", hl, len(b))
	}
	if err := ipv4CheckOptions(b[IPv4MinHeaderLen:hl]); err != nil {
		return 0, err
	}
	return hl, nil
}

// Version returns 4.
func (h IPv4) Version() uint8 { return h[0] >> 4 }

// HeaderLen returns the header length in bytes (IHL*4), options included.
func (h IPv4) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the whole type-of-service octet (DSCP and ECN).
func (h IPv4) TOS() uint8 { return h[1] }

// DSCP returns the differentiated services code point (RFC 2474).
func (h IPv4) DSCP() uint8 { return h[1] >> 2 }

// ECN returns the explicit congestion notification bits (RFC 3168).
func (h IPv4) ECN() uint8 { return h[1] & ECNMask }

// The ECN field's codepoints, the low two bits of the IPv4 TOS octet and
// the IPv6 traffic class (RFC 3168 §5).
const (
	ECNNotECT = 0 // not ECN-capable
	ECNECT1   = 1 // ECN-capable transport, ECT(1)
	ECNECT0   = 2 // ECN-capable transport, ECT(0)
	ECNCE     = 3 // congestion experienced
	ECNMask   = 3
)

// TotalLen returns the total length field: header plus payload.
func (h IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(h[2:])) }

// ID returns the identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// Flags returns the three flag bits (reserved, DF, MF) as the low bits of a byte.
func (h IPv4) Flags() uint8 { return h[6] >> 5 }

// DF reports the Don't Fragment flag.
func (h IPv4) DF() bool { return h[6]&(ipv4FlagDF>>8) != 0 }

// MF reports the More Fragments flag.
func (h IPv4) MF() bool { return h[6]&(ipv4FlagMF>>8) != 0 }

// FragmentOffset returns the fragment offset in bytes (the field counts 8-byte units).
func (h IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(h[6:])&ipv4FragOffMask) * 8
}

// IsFragment reports whether the datagram is a fragment: MF set or a nonzero offset.
func (h IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(h[6:])&(ipv4FlagMF|ipv4FragOffMask) != 0
}

// TTL returns the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol returns the protocol of the payload (IPProtoTCP, …).
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum returns the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:]) }

// Src returns the source address.
func (h IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Dst returns the destination address.
func (h IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// Header returns the header bytes, options included.
func (h IPv4) Header() []byte { return h[:h.HeaderLen()] }

// Options returns the raw option bytes (padding included), empty if none.
func (h IPv4) Options() []byte { return h[IPv4MinHeaderLen:h.HeaderLen()] }

// OptionIter returns an iterator over the options; Parse already validated
// them, so it yields no error for a parsed view.
func (h IPv4) OptionIter() IPv4OptionIter { return NewIPv4OptionIter(h.Options()) }

// Payload returns the bytes after the header: up to the total length, or
// fewer for a view made by ParseIPv4Quoted from a cut-short datagram.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():] }

// ChecksumValid reports whether the header checksum verifies.
func (h IPv4) ChecksumValid() bool { return Checksum(h[:h.HeaderLen()], 0) == 0xffff }

// DecrementTTL lowers the TTL by one in place and updates the header
// checksum incrementally (RFC 1624), as a forwarding router does
// (RFC 1812 §5.3.1). It returns the new TTL; a TTL already 0 is left alone.
func (h IPv4) DecrementTTL() uint8 {
	if h[8] == 0 {
		return 0
	}
	old := binary.BigEndian.Uint16(h[8:])
	h[8]--
	binary.BigEndian.PutUint16(h[10:], ChecksumUpdate(h.Checksum(), old, binary.BigEndian.Uint16(h[8:])))
	return h[8]
}

// IPv4Fields builds an IPv4 header. Encode computes the header checksum.
type IPv4Fields struct {
	TOS            uint8 // DSCP<<2 | ECN
	ID             uint16
	DF, MF         bool
	FragmentOffset int // in bytes; must be a multiple of 8 below 65536
	TTL            uint8
	Protocol       uint8
	// Src and Dst must be IPv4 (or IPv4-mapped); the zero Addr is 0.0.0.0.
	Src, Dst netip.Addr
	// Options are the raw option bytes, at most IPv4MaxOptionLen; Encode pads
	// them to a multiple of 4 with End of Option List (RFC 791). Build them
	// with the AppendIPv4… functions.
	Options []byte
	// PayloadLen is the length of what follows the header; the total length
	// written is Len()+PayloadLen.
	PayloadLen int
}

// Len returns the header length: 20 bytes plus the options rounded up to 4.
func (f *IPv4Fields) Len() int { return IPv4MinHeaderLen + (len(f.Options)+3)&^3 }

// Encode writes the header to b[:f.Len()] and sets its checksum; b must be
// at least that long. Options longer than IPv4MaxOptionLen, a total length
// above 65535 or a fragment offset that is not a multiple of 8 are
// programming errors and panic, since no valid header carries them.
func (f *IPv4Fields) Encode(b []byte) {
	hl := f.Len()
	if hl > IPv4MaxHeaderLen {
		panic("wire: IPv4Fields.Options longer than 40 bytes")
	}
	tl := hl + f.PayloadLen
	if f.PayloadLen < 0 || tl > IPv4MaxTotalLen {
		panic("wire: IPv4Fields total length out of range")
	}
	if f.FragmentOffset < 0 || f.FragmentOffset%8 != 0 || f.FragmentOffset/8 > ipv4FragOffMask {
		panic("wire: IPv4Fields.FragmentOffset not a multiple of 8 below 65536")
	}
	_ = b[hl-1]
	b[0] = 4<<4 | uint8(hl/4)
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:], uint16(tl))
	binary.BigEndian.PutUint16(b[4:], f.ID)
	ff := uint16(f.FragmentOffset / 8)
	if f.DF {
		ff |= ipv4FlagDF
	}
	if f.MF {
		ff |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(b[6:], ff)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	ipv4PutAddr(b[12:16], f.Src)
	ipv4PutAddr(b[16:20], f.Dst)
	n := copy(b[IPv4MinHeaderLen:hl], f.Options)
	clear(b[IPv4MinHeaderLen+n : hl]) // End of Option List padding
	binary.BigEndian.PutUint16(b[10:], ^Checksum(b[:hl], 0))
}

// ipv4PutAddr writes an IPv4 address into b[:4]. The zero Addr becomes
// 0.0.0.0; an IPv6 address is a programming error and panics.
func ipv4PutAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		clear(b[:4])
		return
	}
	a = a.Unmap()
	if !a.Is4() {
		panic("wire: IPv6 address " + a.String() + " where IPv4 is required")
	}
	v := a.As4()
	copy(b[:4], v[:])
}
