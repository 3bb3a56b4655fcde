package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMP for IPv4 (RFC 792; next-hop MTU from RFC 1191; the original
// datagram length attribute of RFC 4884). Every message starts with type,
// code, checksum and a 4-byte "rest of header" whose meaning depends on
// the type; error messages then quote the offending datagram.

// ICMPv4 message types (RFC 792, RFC 950, RFC 1256).
const (
	ICMPv4EchoReply          uint8 = 0
	ICMPv4DestUnreachable    uint8 = 3
	ICMPv4SourceQuench       uint8 = 4 // deprecated by RFC 6633; parsed, never sent
	ICMPv4Redirect           uint8 = 5
	ICMPv4Echo               uint8 = 8
	ICMPv4RouterAdvert       uint8 = 9
	ICMPv4RouterSolicit      uint8 = 10
	ICMPv4TimeExceeded       uint8 = 11
	ICMPv4ParamProblem       uint8 = 12
	ICMPv4Timestamp          uint8 = 13
	ICMPv4TimestampReply     uint8 = 14
	ICMPv4InfoRequest        uint8 = 15
	ICMPv4InfoReply          uint8 = 16
	ICMPv4AddressMaskRequest uint8 = 17
	ICMPv4AddressMaskReply   uint8 = 18
)

// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
const (
	ICMPv4NetUnreachable          uint8 = 0
	ICMPv4HostUnreachable         uint8 = 1
	ICMPv4ProtoUnreachable        uint8 = 2
	ICMPv4PortUnreachable         uint8 = 3
	ICMPv4FragmentationNeeded     uint8 = 4 // carries the next-hop MTU (RFC 1191)
	ICMPv4SourceRouteFailed       uint8 = 5
	ICMPv4NetUnknown              uint8 = 6
	ICMPv4HostUnknown             uint8 = 7
	ICMPv4SourceHostIsolated      uint8 = 8
	ICMPv4NetProhibited           uint8 = 9
	ICMPv4HostProhibited          uint8 = 10
	ICMPv4NetUnreachableForTOS    uint8 = 11
	ICMPv4HostUnreachableForTOS   uint8 = 12
	ICMPv4CommProhibited          uint8 = 13
	ICMPv4HostPrecedenceViolation uint8 = 14
	ICMPv4PrecedenceCutoff        uint8 = 15
)

// Time Exceeded codes.
const (
	ICMPv4TTLExceeded        uint8 = 0
	ICMPv4ReassemblyExceeded uint8 = 1
)

// Redirect codes.
const (
	ICMPv4RedirectNet       uint8 = 0
	ICMPv4RedirectHost      uint8 = 1
	ICMPv4RedirectNetForTOS uint8 = 2
	ICMPv4RedirectHostTOS   uint8 = 3
)

// Parameter Problem codes (RFC 792, RFC 1122 §3.2.2.5).
const (
	ICMPv4ParamPointer       uint8 = 0 // the pointer names the bad octet
	ICMPv4ParamMissingOption uint8 = 1
	ICMPv4ParamBadLength     uint8 = 2
)

// ICMPv4HeaderLen is the fixed header: type, code, checksum, rest of header.
const ICMPv4HeaderLen = 8

// ICMPv4 is a validated view of an ICMP message, made by ParseICMPv4. It
// spans the whole IP payload.
type ICMPv4 []byte

// ParseICMPv4 validates an ICMP message: it must hold the 8-byte header.
// The type-specific layout needs nothing more; accessors of fields a type
// does not have return bytes 4–7 read as that field.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, truncated("icmpv4", "header", ICMPv4HeaderLen, len(b))
	}
	return ICMPv4(b), nil
}

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPv4) Code() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// ChecksumValid reports whether the checksum over the whole message verifies.
func (m ICMPv4) ChecksumValid() bool { return Checksum(m, 0) == 0xffff }

// RestOfHeader returns bytes 4–7 as one word.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// IsError reports whether the type is an error message, which quotes a
// datagram and must never be answered by another error (RFC 1122 §3.2.2).
func (m ICMPv4) IsError() bool { return ICMPv4IsError(m.Type()) }

// ICMPv4IsError reports whether t is an ICMP error message type.
func ICMPv4IsError(t uint8) bool {
	switch t {
	case ICMPv4DestUnreachable, ICMPv4SourceQuench, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// Ident returns the identifier of an echo, echo reply, timestamp or
// information message.
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// Seq returns the sequence number of those messages.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Data returns the bytes after the 8-byte header: an echo's data, or the
// body of any other message.
func (m ICMPv4) Data() []byte { return m[ICMPv4HeaderLen:] }

// NextHopMTU returns the next-hop MTU of a Fragmentation Needed message
// (RFC 1191 §4); 0 means an old router that does not report it.
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Gateway returns the gateway address of a Redirect.
func (m ICMPv4) Gateway() netip.Addr { return netip.AddrFrom4([4]byte(m[4:8])) }

// Pointer returns the octet offset a Parameter Problem points at.
func (m ICMPv4) Pointer() uint8 { return m[4] }

// OriginalLen returns the RFC 4884 length attribute of a Destination
// Unreachable, Time Exceeded or Parameter Problem message: the length in
// bytes of the quoted datagram when extensions follow it, 0 when absent
// (the RFC 792 layout) or when the message type has no such attribute.
func (m ICMPv4) OriginalLen() int {
	switch m.Type() {
	case ICMPv4DestUnreachable, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return int(m[5]) * 4
	}
	return 0
}

// Original returns the quoted datagram of an error message, as much of it
// as is present; nil for other types. When an RFC 4884 length attribute is
// present and fits, the quote ends there and Extensions returns the rest.
// An attribute that does not fit is ignored, as RFC 4884 §5 allows.
func (m ICMPv4) Original() []byte {
	if !m.IsError() {
		return nil
	}
	if n := m.OriginalLen(); n > 0 && ICMPv4HeaderLen+n <= len(m) {
		return m[ICMPv4HeaderLen : ICMPv4HeaderLen+n]
	}
	return m[ICMPv4HeaderLen:]
}

// Extensions returns the RFC 4884 extension structure after the quoted
// datagram (header and objects, undecoded), or nil if there is none.
func (m ICMPv4) Extensions() []byte {
	if !m.IsError() {
		return nil
	}
	if n := m.OriginalLen(); n > 0 && ICMPv4HeaderLen+n < len(m) {
		return m[ICMPv4HeaderLen+n:]
	}
	return nil
}

// ICMPv4Fields builds an ICMP header. The payload (echo data, quoted
// datagram) is not part of the builder: it must already be in place right
// after the header, at b[8:8+PayloadLen], when Encode runs, because the
// checksum covers it. This matches back-to-front building, where the
// payload is written first.
//
// Bytes 4–7 come from the fields that suit Type: Ident and Seq for echo,
// echo reply, timestamp, information and address mask messages; MTU (code
// 4) and OriginalLen for Destination Unreachable; Gateway for Redirect;
// Pointer and OriginalLen for Parameter Problem; OriginalLen for Time
// Exceeded; Rest verbatim for every other type (Source Quench, router
// discovery, unknown types).
type ICMPv4Fields struct {
	Type, Code uint8
	Ident, Seq uint16
	MTU        uint16     // next-hop MTU (RFC 1191)
	Gateway    netip.Addr // redirect target (IPv4)
	Pointer    uint8
	// OriginalLen is the RFC 4884 length attribute in bytes (a multiple of
	// 4, at most 1020); 0 for the classic layout without extensions.
	OriginalLen int
	Rest        [4]byte
	PayloadLen  int
}

// Len returns ICMPv4HeaderLen: the header only, see the type doc.
func (f *ICMPv4Fields) Len() int { return ICMPv4HeaderLen }

// Encode writes the header to b[:8] and computes the checksum over it and
// the PayloadLen bytes after it; b must hold 8+PayloadLen bytes.
func (f *ICMPv4Fields) Encode(b []byte) {
	_ = b[ICMPv4HeaderLen+f.PayloadLen-1]
	b[0], b[1] = f.Type, f.Code
	b[2], b[3] = 0, 0
	words := uint8(f.OriginalLen / 4)
	switch f.Type {
	case ICMPv4EchoReply, ICMPv4Echo, ICMPv4Timestamp, ICMPv4TimestampReply,
		ICMPv4InfoRequest, ICMPv4InfoReply, ICMPv4AddressMaskRequest, ICMPv4AddressMaskReply:
		binary.BigEndian.PutUint16(b[4:], f.Ident)
		binary.BigEndian.PutUint16(b[6:], f.Seq)
	case ICMPv4DestUnreachable:
		b[4], b[5] = 0, words
		binary.BigEndian.PutUint16(b[6:], f.MTU)
	case ICMPv4Redirect:
		ipv4PutAddr(b[4:8], f.Gateway)
	case ICMPv4ParamProblem:
		b[4], b[5], b[6], b[7] = f.Pointer, words, 0, 0
	case ICMPv4TimeExceeded:
		b[4], b[5], b[6], b[7] = 0, words, 0, 0
	default:
		copy(b[4:8], f.Rest[:])
	}
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b[:ICMPv4HeaderLen+f.PayloadLen], 0))
}
