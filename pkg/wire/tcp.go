package wire

import (
	"encoding/binary"
	"net/netip"
)

// TCP header sizes (RFC 9293 §3.1): the data offset counts 32-bit words, so
// a header is 20 to 60 bytes and holds at most 40 bytes of options.
const (
	TCPMinHeaderLen  = 20
	TCPMaxHeaderLen  = 60
	TCPMaxOptionsLen = TCPMaxHeaderLen - TCPMinHeaderLen
)

// TCPFlags holds the control bits of a TCP header: the eight of RFC 9293
// §3.1 and the AE bit (RFC 3168 reserved it, RFC 3540 used it as NS, AccECN
// uses it as AE), in their header positions counted from bit 0 of byte 13.
type TCPFlags uint16

// TCP control bits.
const (
	TCPFlagFIN TCPFlags = 1 << iota // no more data from sender
	TCPFlagSYN                      // synchronize sequence numbers
	TCPFlagRST                      // reset the connection
	TCPFlagPSH                      // push function
	TCPFlagACK                      // acknowledgment field is significant
	TCPFlagURG                      // urgent pointer field is significant
	TCPFlagECE                      // ECN-Echo (RFC 3168)
	TCPFlagCWR                      // congestion window reduced (RFC 3168)
	TCPFlagAE                       // accurate ECN; formerly NS (RFC 3540, historic)

	tcpFlagMask = 1<<9 - 1
)

// Has reports whether every bit of want is set in f.
func (f TCPFlags) Has(want TCPFlags) bool { return f&want == want }

// tcpFlagLetters are tcpdump's letters, in bit order (tcpdump prints them so).
const tcpFlagLetters = "FSRP.UEWe"

// String formats the flags as tcpdump does: "[S]", "[S.]", "[P.]", "[F.]",
// "[R]", and "[none]" when no bit is set.
func (f TCPFlags) String() string {
	f &= tcpFlagMask
	if f == 0 {
		return "[none]"
	}
	var b [2 + len(tcpFlagLetters)]byte
	n := 0
	b[n] = '['
	n++
	for i := range len(tcpFlagLetters) {
		if f&(1<<i) != 0 {
			b[n] = tcpFlagLetters[i]
			n++
		}
	}
	b[n] = ']'
	n++
	return string(b[:n])
}

// TCP is a view of a TCP segment (RFC 9293 §3.1), made by ParseTCP: header,
// options and payload.
type TCP []byte

// ParseTCP checks that b, the whole IP payload, holds a TCP header whose
// data offset covers at least the fixed header and at most b. The payload
// is the rest of b: TCP has no length field, so the caller passes exactly
// the segment the IP header delimits.
//
// ParseTCP does not look inside the options: a malformed option does not
// make the segment unreadable, and RFC 9293 §3.1 (MUST-7) leaves the
// response to the receiver. Options parses them.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, truncated("tcp", "header", TCPMinHeaderLen, len(b))
	}
	hl := int(b[12]>>4) * 4
	if hl < TCPMinHeaderLen {
		return nil, newError(ErrMalformed, "tcp", "data offset", "%d bytes is shorter than the %d-byte header", hl, TCPMinHeaderLen)
	}
	if hl > len(b) {
		return nil, newError(ErrTruncated, "tcp", "data offset", "%d bytes exceeds the %d-byte segment", hl, len(b))
	}
	return TCP(b), nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:2]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:4]) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[4:8]) }

// Ack returns the acknowledgment number (meaningful when ACK is set).
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[8:12]) }

// DataOffset returns the data offset field: the header length in 32-bit words.
func (t TCP) DataOffset() uint8 { return t[12] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (t TCP) HeaderLen() int { return int(t[12]>>4) * 4 }

// Flags returns the control bits, AE included. The three reserved bits
// are not part of it.
func (t TCP) Flags() TCPFlags { return TCPFlags(binary.BigEndian.Uint16(t[12:14])) & tcpFlagMask }

// Reserved returns the three reserved bits between data offset and AE,
// which a sender must zero and a receiver must ignore (RFC 9293 §3.1).
func (t TCP) Reserved() uint8 { return t[12] >> 1 & 7 }

// Window returns the window field, not yet scaled.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:16]) }

// Checksum returns the checksum field as transmitted.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:18]) }

// Urgent returns the urgent pointer (meaningful when URG is set).
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[18:20]) }

// OptionBytes returns the raw options, padding included.
func (t TCP) OptionBytes() []byte { return t[TCPMinHeaderLen:t.HeaderLen()] }

// Options parses the options; see ParseTCPOptions.
func (t TCP) Options() (TCPOptions, error) { return ParseTCPOptions(t.OptionBytes()) }

// OptionIter returns an iterator over every option, known or not.
func (t TCP) OptionIter() TCPOptionIter { return NewTCPOptionIter(t.OptionBytes()) }

// Payload returns the data after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// ChecksumValid verifies the checksum over the pseudo-header of src and dst
// (the enclosing IP header's addresses, both IPv4 or both IPv6) and the
// whole segment (RFC 9293 §3.1). TCP has no "no checksum" value.
func (t TCP) ChecksumValid(src, dst netip.Addr) bool {
	return tcpSum(t, src, dst) == 0xffff
}

func tcpSum(b []byte, src, dst netip.Addr) uint16 {
	return Checksum(b, PseudoHeaderChecksum(IPProtoTCP, src, dst, uint32(len(b))))
}

// TCPFields builds a TCP header.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            TCPFlags
	Window           uint16
	Urgent           uint16
	// Options are encoded in canonical order, padded with NOP to a
	// multiple of 4 bytes; see TCPOptions.Len for what fits.
	Options TCPOptions
	// PayloadLen is the number of payload bytes that follow the header;
	// SetChecksum covers them.
	PayloadLen int
}

// Len returns the header length: 20 bytes plus the encoded options.
func (f *TCPFields) Len() int { return TCPMinHeaderLen + f.Options.Len() }

// Encode writes the header and options into b[:f.Len()] with a zero
// checksum, for SetChecksum or a checksum offload to fill. Flag bits
// outside TCPFlags are dropped; reserved bits are zero.
func (f *TCPFields) Encode(b []byte) {
	hl := f.Len()
	_ = b[hl-1]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint32(b[4:8], f.Seq)
	binary.BigEndian.PutUint32(b[8:12], f.Ack)
	binary.BigEndian.PutUint16(b[12:14], uint16(hl/4)<<12|uint16(f.Flags&tcpFlagMask))
	binary.BigEndian.PutUint16(b[14:16], f.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:20], f.Urgent)
	f.Options.Encode(b[TCPMinHeaderLen:hl])
}

// SetChecksum computes the checksum of the segment that Encode wrote at the
// front of b, with its PayloadLen payload bytes already in place after the
// header, and stores it.
func (f *TCPFields) SetChecksum(b []byte, src, dst netip.Addr) {
	if f.PayloadLen < 0 {
		panic("wire: TCPFields.PayloadLen is negative")
	}
	s := b[:f.Len()+f.PayloadLen]
	s[16], s[17] = 0, 0
	binary.BigEndian.PutUint16(s[16:18], ^tcpSum(s, src, dst))
}
