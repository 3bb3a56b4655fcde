package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDPHeaderLen is the length of the UDP header (RFC 768).
const UDPHeaderLen = 8

// udpMaxPayload is the most payload the 16-bit length field can describe.
const udpMaxPayload = 0xffff - UDPHeaderLen

// UDP is a view of a UDP datagram (RFC 768), made by ParseUDP: header and
// payload, exactly as long as its length field says.
type UDP []byte

// ParseUDP checks that b holds a UDP header whose length field covers at
// least the header and at most b, and returns the datagram trimmed to that
// length: bytes after it (link padding, or garbage) are not payload.
// b is the IP payload. IPv6 jumbograms (length field 0, RFC 2675) are not
// supported.
func ParseUDP(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, truncated("udp", "header", UDPHeaderLen, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < UDPHeaderLen {
		return nil, newError(ErrMalformed, "udp", "length", "%d is shorter than the %d-byte header", n, UDPHeaderLen)
	}
	if n > len(b) {
		return nil, newError(ErrTruncated, "udp", "length", "%d exceeds the %d-byte buffer", n, len(b))
	}
	return UDP(b[:n]), nil
}

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[0:2]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[2:4]) }

// Length returns the length field: header plus payload, in bytes.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:6]) }

// Checksum returns the checksum field as transmitted.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:8]) }

// HasChecksum reports whether the sender computed a checksum. A transmitted
// zero means "no checksum" (RFC 768): allowed over IPv4, invalid over IPv6
// (RFC 8200 §8.1), where a receiver must discard the datagram. A computed
// checksum of zero is sent as 0xffff, so it is never confused with "none".
func (u UDP) HasChecksum() bool { return u.Checksum() != 0 }

// Payload returns the data after the header.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:] }

// ChecksumValid verifies the checksum over the pseudo-header of src and dst
// (the addresses of the enclosing IP header, both IPv4 or both IPv6), the
// header and the payload. A datagram without a checksum (HasChecksum false)
// is valid over IPv4, where the checksum is optional (RFC 768), and invalid
// over IPv6, where it is mandatory (RFC 8200 §8.1).
func (u UDP) ChecksumValid(src, dst netip.Addr) bool {
	if !u.HasChecksum() {
		return src.Is4()
	}
	return udpSum(u, src, dst) == 0xffff
}

// udpSum is the one's complement sum over pseudo-header and datagram.
func udpSum(b []byte, src, dst netip.Addr) uint16 {
	return Checksum(b, PseudoHeaderChecksum(IPProtoUDP, src, dst, uint32(len(b))))
}

// UDPFields builds a UDP header.
type UDPFields struct {
	SrcPort, DstPort uint16
	// PayloadLen is the number of payload bytes that follow the header;
	// at most 65527, so that the length field can hold header plus payload.
	PayloadLen int
}

// Len returns the header length, UDPHeaderLen.
func (f *UDPFields) Len() int { return UDPHeaderLen }

// Encode writes the header into b[:UDPHeaderLen] with a zero checksum
// ("none", or to be filled by SetChecksum or a checksum offload). It panics
// if PayloadLen is out of range: that is a caller bug, not bad input.
func (f *UDPFields) Encode(b []byte) {
	if f.PayloadLen < 0 || f.PayloadLen > udpMaxPayload {
		panic("wire: UDPFields.PayloadLen out of range")
	}
	_ = b[UDPHeaderLen-1]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(UDPHeaderLen+f.PayloadLen))
	b[6], b[7] = 0, 0
}

// SetChecksum computes the checksum of the datagram that Encode wrote at
// the front of b, with its PayloadLen payload bytes already in place after
// the header, and stores it. A result of zero is sent as 0xffff (RFC 768),
// since zero means "no checksum".
func (f *UDPFields) SetChecksum(b []byte, src, dst netip.Addr) {
	d := b[:UDPHeaderLen+f.PayloadLen]
	d[6], d[7] = 0, 0
	c := ^udpSum(d, src, dst)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(d[6:8], c)
}
