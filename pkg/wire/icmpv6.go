package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6 (RFC 4443). Neighbour Discovery messages are in ndp.go, Multicast
// Listener Discovery in mld.go; ParseICMPv6 validates those too.

// ICMPv6 message types.
const (
	ICMPv6DstUnreachable  uint8 = 1   // RFC 4443 §3.1
	ICMPv6PacketTooBig    uint8 = 2   // RFC 4443 §3.2
	ICMPv6TimeExceeded    uint8 = 3   // RFC 4443 §3.3
	ICMPv6ParamProblem    uint8 = 4   // RFC 4443 §3.4
	ICMPv6EchoRequest     uint8 = 128 // RFC 4443 §4.1
	ICMPv6EchoReply       uint8 = 129 // RFC 4443 §4.2
	ICMPv6MLDQuery        uint8 = 130 // RFC 2710 §3, RFC 3810 §5.1
	ICMPv6MLDReport       uint8 = 131 // MLDv1 report, RFC 2710 §3
	ICMPv6MLDDone         uint8 = 132 // RFC 2710 §3
	ICMPv6RouterSolicit   uint8 = 133 // RFC 4861 §4.1
	ICMPv6RouterAdvert    uint8 = 134 // RFC 4861 §4.2
	ICMPv6NeighborSolicit uint8 = 135 // RFC 4861 §4.3
	ICMPv6NeighborAdvert  uint8 = 136 // RFC 4861 §4.4
	ICMPv6Redirect        uint8 = 137 // RFC 4861 §4.5
	ICMPv6MLDv2Report     uint8 = 143 // RFC 3810 §5.2
)

// Destination Unreachable codes (RFC 4443 §3.1).
const (
	ICMPv6CodeNoRoute          uint8 = 0
	ICMPv6CodeAdminProhibited  uint8 = 1
	ICMPv6CodeBeyondScope      uint8 = 2
	ICMPv6CodeAddrUnreachable  uint8 = 3
	ICMPv6CodePortUnreachable  uint8 = 4
	ICMPv6CodeSrcPolicyFailed  uint8 = 5
	ICMPv6CodeRejectRoute      uint8 = 6
	ICMPv6CodeSrcRoutingHeader uint8 = 7 // error in source routing header, RFC 6554 §11.2
)

// Time Exceeded codes (RFC 4443 §3.3).
const (
	ICMPv6CodeHopLimitExceeded  uint8 = 0
	ICMPv6CodeReassemblyTimeout uint8 = 1
)

// Parameter Problem codes (RFC 4443 §3.4, RFC 7112 §3).
const (
	ICMPv6CodeErroneousHeader       uint8 = 0
	ICMPv6CodeUnrecognizedNext      uint8 = 1
	ICMPv6CodeUnrecognizedOption    uint8 = 2
	ICMPv6CodeIncompleteHeaderChain uint8 = 3
)

// ICMPv6 sizes.
const (
	ICMPv6HeaderLen = 4 // type, code, checksum
	// ICMPv6ErrorHeaderLen is the fixed part of an error message and of an
	// echo message: the header and one 32-bit word.
	ICMPv6ErrorHeaderLen = 8
	// ICMPv6ErrorMaxLen is the largest error message: an error must fit,
	// with its IPv6 header, in the minimum MTU (RFC 4443 §2.4 (c)).
	ICMPv6ErrorMaxLen = IPv6MinMTU - IPv6HeaderLen
)

// ICMPv6 is a validated view of an ICMPv6 message, made by ParseICMPv6.
type ICMPv6 []byte

// ParseICMPv6 validates an ICMPv6 message: at least the 4-byte header, and
// for each type this package decodes, the minimum length of that message
// and every length inside it (Neighbour Discovery options, MLD source
// lists and records), so the typed views never read out of range. Unknown
// types need only the header. The checksum is not checked: see
// ChecksumValid.
func ParseICMPv6(b []byte) (ICMPv6, error) {
	if len(b) < ICMPv6HeaderLen {
		return nil, truncated("icmpv6", "header", ICMPv6HeaderLen, len(b))
	}
	m := ICMPv6(b)
	switch t := m.Type(); t {
	case ICMPv6DstUnreachable, ICMPv6PacketTooBig, ICMPv6TimeExceeded, ICMPv6ParamProblem,
		ICMPv6EchoRequest, ICMPv6EchoReply:
		if len(b) < ICMPv6ErrorHeaderLen {
			return nil, truncated("icmpv6", icmpv6TypeName(t), ICMPv6ErrorHeaderLen, len(b))
		}
	case ICMPv6RouterSolicit, ICMPv6RouterAdvert, ICMPv6NeighborSolicit, ICMPv6NeighborAdvert, ICMPv6Redirect:
		if err := ndpCheck(m); err != nil {
			return nil, err
		}
	case ICMPv6MLDQuery, ICMPv6MLDReport, ICMPv6MLDDone, ICMPv6MLDv2Report:
		if err := mldCheck(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func icmpv6TypeName(t uint8) string {
	switch t {
	case ICMPv6DstUnreachable:
		return "destination unreachable"
	case ICMPv6PacketTooBig:
		return "packet too big"
	case ICMPv6TimeExceeded:
		return "time exceeded"
	case ICMPv6ParamProblem:
		return "parameter problem"
	case ICMPv6EchoRequest:
		return "echo request"
	case ICMPv6EchoReply:
		return "echo reply"
	case ICMPv6MLDQuery:
		return "mld query"
	case ICMPv6MLDReport:
		return "mld report"
	case ICMPv6MLDDone:
		return "mld done"
	case ICMPv6RouterSolicit:
		return "router solicitation"
	case ICMPv6RouterAdvert:
		return "router advertisement"
	case ICMPv6NeighborSolicit:
		return "neighbor solicitation"
	case ICMPv6NeighborAdvert:
		return "neighbor advertisement"
	case ICMPv6Redirect:
		return "redirect"
	case ICMPv6MLDv2Report:
		return "mldv2 report"
	}
	return "message"
}

// Type returns the message type.
func (m ICMPv6) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPv6) Code() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// IsError reports whether this is an error message (types 0–127, RFC 4443 §2.1).
func (m ICMPv6) IsError() bool { return m[0] < 128 }

// Body returns the message after the 4-byte header.
func (m ICMPv6) Body() []byte { return m[ICMPv6HeaderLen:] }

// ChecksumValid reports whether the checksum verifies over the message and
// the IPv6 pseudo-header of src and dst (RFC 4443 §2.3).
func (m ICMPv6) ChecksumValid(src, dst netip.Addr) bool {
	return Checksum(m, PseudoHeaderChecksum(IPProtoICMPv6, src, dst, uint32(len(m)))) == 0xffff
}

// word returns the 32-bit word at off, or 0 if the message is too short
// (only for types ParseICMPv6 does not decode).
func (m ICMPv6) word(off int) uint32 {
	if len(m) < off+4 {
		return 0
	}
	return binary.BigEndian.Uint32(m[off:])
}

// Ident returns the identifier of an echo request or reply.
func (m ICMPv6) Ident() uint16 { return uint16(m.word(4) >> 16) }

// Seq returns the sequence number of an echo request or reply.
func (m ICMPv6) Seq() uint16 { return uint16(m.word(4)) }

// EchoData returns the data of an echo request or reply (from byte 8).
func (m ICMPv6) EchoData() []byte { return m.after(ICMPv6ErrorHeaderLen) }

// MTU returns the next-hop MTU of a Packet Too Big message.
func (m ICMPv6) MTU() uint32 { return m.word(4) }

// Pointer returns the offset of the problem in the invoking packet for a
// Parameter Problem message.
func (m ICMPv6) Pointer() uint32 { return m.word(4) }

// Original returns as much of the invoking packet as an error message
// carries (from byte 8); parse it with ParseIPv6Quoted.
func (m ICMPv6) Original() []byte { return m.after(ICMPv6ErrorHeaderLen) }

func (m ICMPv6) after(off int) []byte {
	if len(m) < off {
		return m[len(m):]
	}
	return m[off:]
}

// ICMPv6Fields builds the 8-byte fixed part of an echo or error message;
// the data or invoking packet follows it in the buffer. Encode leaves the
// checksum 0: once the whole message is in place, SetChecksum fills it in.
// Neighbour Discovery and MLD messages have their own builders, finished
// by SetICMPv6Checksum.
type ICMPv6Fields struct {
	Type, Code uint8
	// Rest is the second 32-bit word: Ident<<16 | Seq for echo messages
	// (see ICMPv6EchoRest), the MTU for Packet Too Big, the pointer for
	// Parameter Problem, 0 (unused) for the other errors.
	Rest uint32
	// PayloadLen is the length of the echo data or invoking packet after
	// the fixed part, which SetChecksum covers.
	PayloadLen int
}

// ICMPv6EchoRest packs an echo identifier and sequence number into
// ICMPv6Fields.Rest.
func ICMPv6EchoRest(ident, seq uint16) uint32 { return uint32(ident)<<16 | uint32(seq) }

// Len returns 8.
func (f *ICMPv6Fields) Len() int { return ICMPv6ErrorHeaderLen }

// Encode writes the fixed part to b[:8] with a zero checksum.
func (f *ICMPv6Fields) Encode(b []byte) {
	_ = b[ICMPv6ErrorHeaderLen-1]
	b[0], b[1], b[2], b[3] = f.Type, f.Code, 0, 0
	binary.BigEndian.PutUint32(b[4:], f.Rest)
}

// SetChecksum computes the checksum of the message that Encode wrote at the
// front of b, with its PayloadLen bytes already in place after the fixed
// part, for the pseudo-header of src and dst, and stores it.
func (f *ICMPv6Fields) SetChecksum(b []byte, src, dst netip.Addr) {
	SetICMPv6Checksum(b[:ICMPv6ErrorHeaderLen+f.PayloadLen], src, dst)
}

// SetICMPv6Checksum computes the checksum of the whole ICMPv6 message msg
// (header and body in place, any checksum value) for the pseudo-header of
// src and dst, and stores it (RFC 4443 §2.3).
func SetICMPv6Checksum(msg []byte, src, dst netip.Addr) {
	_ = msg[ICMPv6HeaderLen-1]
	msg[2], msg[3] = 0, 0
	sum := Checksum(msg, PseudoHeaderChecksum(IPProtoICMPv6, src, dst, uint32(len(msg))))
	binary.BigEndian.PutUint16(msg[2:], ^sum)
}
