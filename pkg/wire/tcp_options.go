package wire

import (
	"encoding/binary"
	"strconv"
)

// TCP option kinds (IANA "TCP Option Kind Numbers").
const (
	TCPOptionEOL           uint8 = 0 // end of option list (RFC 9293 §3.2)
	TCPOptionNOP           uint8 = 1 // no-operation, used as padding
	TCPOptionMSS           uint8 = 2 // maximum segment size (RFC 9293 §3.7.1)
	TCPOptionWindowScale   uint8 = 3 // RFC 7323 §2
	TCPOptionSACKPermitted uint8 = 4 // RFC 2018 §2
	TCPOptionSACK          uint8 = 5 // RFC 2018 §3
	TCPOptionTimestamps    uint8 = 8 // RFC 7323 §3
)

// Fixed option lengths, kind and length bytes included.
const (
	tcpOptLenMSS           = 4
	tcpOptLenWindowScale   = 3
	tcpOptLenSACKPermitted = 2
	tcpOptLenTimestamps    = 10
	tcpOptLenSACKBlock     = 8
)

// TCPMaxWindowShift is the largest window scale shift a receiver honours;
// RFC 7323 §2.3 says to use 14 when a larger one is received.
const TCPMaxWindowShift = 14

// TCPMaxSACKBlocks is how many SACK blocks fit in the 40 bytes of option
// space (RFC 2018 §3).
const TCPMaxSACKBlocks = 4

// TCPSACKBlock is one block of a SACK option: the bytes Left up to but not
// including Right have been received (RFC 2018 §3).
type TCPSACKBlock struct {
	Left, Right uint32
}

// TCPOptions holds the options this package understands. It is a plain
// value: parsing fills it without allocating, and TCPFields encodes it.
type TCPOptions struct {
	HasMSS bool
	MSS    uint16

	HasWindowScale bool
	// WindowScale is the shift as transmitted. A receiver uses
	// WindowShift, which caps it at 14 (RFC 7323 §2.3); a sender must
	// not send more than 14.
	WindowScale uint8

	SACKPermitted bool

	// SACKBlocks[:NumSACKBlocks] are the blocks of a SACK option, first
	// block first (RFC 2018 §4: the most recently received first).
	SACKBlocks    [TCPMaxSACKBlocks]TCPSACKBlock
	NumSACKBlocks int

	HasTimestamps bool
	TSVal, TSEcr  uint32
}

// WindowShift returns the window scale shift to apply: WindowScale capped
// at TCPMaxWindowShift (RFC 7323 §2.3), 0 when there is no option.
func (o *TCPOptions) WindowShift() uint8 {
	if !o.HasWindowScale {
		return 0
	}
	return min(o.WindowScale, TCPMaxWindowShift)
}

// SACK returns the SACK blocks, SACKBlocks[:NumSACKBlocks] (clamped to the
// array).
func (o *TCPOptions) SACK() []TCPSACKBlock {
	return o.SACKBlocks[:max(0, min(o.NumSACKBlocks, TCPMaxSACKBlocks))]
}

// ParseTCPOptions parses the option bytes of a TCP header (TCP.OptionBytes).
// NOPs are skipped and an EOL ends the list (RFC 9293 §3.2); options of
// other kinds are skipped by their length (TCP.OptionIter yields them).
// A repeated option overwrites the earlier one.
//
// A bad option length, an option running past the header, a known option
// whose length differs from its fixed one, or a SACK option that is not a
// whole number of 1 to 4 blocks is a *Error naming the option. The options
// before the fault are still returned: Linux, for one, keeps them and
// ignores the rest.
func ParseTCPOptions(b []byte) (TCPOptions, error) {
	var o TCPOptions
	it := NewTCPOptionIter(b)
	for it.Next() {
		kind, data := it.Kind(), it.Data()
		switch kind {
		case TCPOptionMSS:
			if len(data) != tcpOptLenMSS-2 {
				return o, tcpOptBadLen(kind, len(data), tcpOptLenMSS)
			}
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(data)
		case TCPOptionWindowScale:
			if len(data) != tcpOptLenWindowScale-2 {
				return o, tcpOptBadLen(kind, len(data), tcpOptLenWindowScale)
			}
			o.HasWindowScale, o.WindowScale = true, data[0]
		case TCPOptionSACKPermitted:
			if len(data) != tcpOptLenSACKPermitted-2 {
				return o, tcpOptBadLen(kind, len(data), tcpOptLenSACKPermitted)
			}
			o.SACKPermitted = true
		case TCPOptionTimestamps:
			if len(data) != tcpOptLenTimestamps-2 {
				return o, tcpOptBadLen(kind, len(data), tcpOptLenTimestamps)
			}
			o.HasTimestamps = true
			o.TSVal = binary.BigEndian.Uint32(data[0:4])
			o.TSEcr = binary.BigEndian.Uint32(data[4:8])
		case TCPOptionSACK:
			n := len(data) / tcpOptLenSACKBlock
			if len(data)%tcpOptLenSACKBlock != 0 || n < 1 || n > TCPMaxSACKBlocks {
				return o, newError(ErrMalformed, "tcp", tcpOptionName(kind),
					"length %d is not 2 plus 1 to %d blocks of 8 bytes", len(data)+2, TCPMaxSACKBlocks)
			}
			o.SACKBlocks, o.NumSACKBlocks = [TCPMaxSACKBlocks]TCPSACKBlock{}, n
			for i := range n {
				o.SACKBlocks[i] = TCPSACKBlock{
					Left:  binary.BigEndian.Uint32(data[i*8:]),
					Right: binary.BigEndian.Uint32(data[i*8+4:]),
				}
			}
		}
	}
	return o, it.Err()
}

func tcpOptBadLen(kind uint8, dataLen, want int) *Error {
	return newError(ErrMalformed, "tcp", tcpOptionName(kind), "length %d, want %d", dataLen+2, want)
}

// tcpOptionName names an option kind for error messages.
func tcpOptionName(kind uint8) string {
	switch kind {
	case TCPOptionMSS:
		return "MSS option"
	case TCPOptionWindowScale:
		return "window scale option"
	case TCPOptionSACKPermitted:
		return "SACK-permitted option"
	case TCPOptionSACK:
		return "SACK option"
	case TCPOptionTimestamps:
		return "timestamps option"
	}
	return "option " + strconv.Itoa(int(kind)) // error path only
}

// TCPOptionIter walks the options of a TCP header without allocating:
//
//	it := seg.OptionIter()
//	for it.Next() {
//		kind, data := it.Kind(), it.Data()
//		…
//	}
//	if err := it.Err(); err != nil { … }
//
// It yields every option but NOP and EOL, and stops at EOL (what follows is
// padding), at the end of the bytes, or at an option whose length is bad.
type TCPOptionIter struct {
	b    []byte
	kind uint8
	data []byte
	err  error
}

// NewTCPOptionIter returns an iterator over the option bytes b.
func NewTCPOptionIter(b []byte) TCPOptionIter { return TCPOptionIter{b: b} }

// Next advances to the next option and reports whether there is one.
func (it *TCPOptionIter) Next() bool {
	for len(it.b) > 0 && it.err == nil {
		kind := it.b[0]
		switch kind {
		case TCPOptionEOL:
			it.b = nil
			return false
		case TCPOptionNOP:
			it.b = it.b[1:]
			continue
		}
		if len(it.b) < 2 {
			it.err = newError(ErrTruncated, "tcp", tcpOptionName(kind), "length byte runs past the header")
			break
		}
		n := int(it.b[1])
		if n < 2 {
			it.err = newError(ErrMalformed, "tcp", tcpOptionName(kind), "bad option length %d", n)
			break
		}
		if n > len(it.b) {
			it.err = newError(ErrTruncated, "tcp", tcpOptionName(kind),
				"length %d runs past the header, %d bytes left", n, len(it.b))
			break
		}
		it.kind, it.data = kind, it.b[2:n]
		it.b = it.b[n:]
		return true
	}
	it.kind, it.data = 0, nil
	return false
}

// Kind returns the current option's kind.
func (it *TCPOptionIter) Kind() uint8 { return it.kind }

// Data returns the current option's value: the bytes after kind and length.
func (it *TCPOptionIter) Data() []byte { return it.data }

// Err returns the error that stopped the iteration, if any.
func (it *TCPOptionIter) Err() error { return it.err }

// Encoding. The layout follows Linux (tcp_options_write), which middleboxes
// have seen for decades: MSS; SACK-permitted and timestamps together, or
// each after two NOPs; NOP and window scale; two NOPs and the SACK blocks.
// Every option stays 4-byte aligned, so no trailing padding is needed.

// tcpOptSACKBase is the aligned space a SACK option needs besides its
// blocks: NOP, NOP, kind, length.
const tcpOptSACKBase = 4

// fixedLen is the encoded length of every option but SACK.
func (o *TCPOptions) fixedLen() int {
	n := 0
	if o.HasMSS {
		n += tcpOptLenMSS
	}
	if o.HasTimestamps {
		n += 12 // SACK-permitted + TS, or NOP NOP TS
	} else if o.SACKPermitted {
		n += 4 // NOP NOP SACK-permitted
	}
	if o.HasWindowScale {
		n += 4 // NOP WS
	}
	return n
}

// sackBlocksToSend is how many of the SACK blocks fit beside the other
// options: RFC 2018 §3 allows 4 alone and 3 with timestamps.
func (o *TCPOptions) sackBlocksToSend() int {
	n := len(o.SACK())
	room := (TCPMaxOptionsLen - o.fixedLen() - tcpOptSACKBase) / tcpOptLenSACKBlock
	return max(0, min(n, room))
}

// Len returns the encoded length of the options, a multiple of 4 and at
// most 40. SACK blocks that do not fit beside the other options (the fixed
// ones need at most 20 bytes) are left out, last blocks first, as RFC 2018
// §4 allows: the first block must be the most recent.
func (o *TCPOptions) Len() int {
	n := o.fixedLen()
	if s := o.sackBlocksToSend(); s > 0 {
		n += tcpOptSACKBase + s*tcpOptLenSACKBlock
	}
	return n
}

// Encode writes the options into b[:o.Len()].
func (o *TCPOptions) Encode(b []byte) {
	if o.Len() == 0 {
		return
	}
	_ = b[o.Len()-1]
	i := 0
	if o.HasMSS {
		b[i], b[i+1] = TCPOptionMSS, tcpOptLenMSS
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += tcpOptLenMSS
	}
	if o.HasTimestamps {
		if o.SACKPermitted {
			b[i], b[i+1] = TCPOptionSACKPermitted, tcpOptLenSACKPermitted
		} else {
			b[i], b[i+1] = TCPOptionNOP, TCPOptionNOP
		}
		b[i+2], b[i+3] = TCPOptionTimestamps, tcpOptLenTimestamps
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACKPermitted, tcpOptLenSACKPermitted
		i += 4
	}
	if o.HasWindowScale {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionWindowScale, tcpOptLenWindowScale, o.WindowScale
		i += 4
	}
	if s := o.sackBlocksToSend(); s > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACK, byte(2+s*tcpOptLenSACKBlock)
		i += 4
		for _, blk := range o.SACKBlocks[:s] {
			binary.BigEndian.PutUint32(b[i:], blk.Left)
			binary.BigEndian.PutUint32(b[i+4:], blk.Right)
			i += tcpOptLenSACKBlock
		}
	}
}
