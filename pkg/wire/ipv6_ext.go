package wire

import (
	"encoding/binary"
)

// IPv6 extension headers (RFC 8200 §4): the chain walk, Hop-by-Hop and
// Destination Options with their TLV options, the Routing and Fragment
// headers, and the length rule of the Authentication Header (RFC 4302).

// IPv6ExtMaxHeaders bounds the extension header walk. RFC 8200 §4.1 allows
// each header type once (Destination Options twice), so a legitimate chain
// is far shorter; a longer one is an attack on the walk, and RFC 8504 §5.3
// lets a host limit the number of extension headers it processes.
const IPv6ExtMaxHeaders = 16

// IPv6ExtHeader is one extension header found by IPv6ExtIter.
type IPv6ExtHeader struct {
	Type   uint8  // the next-header value that named it (IPProtoHopByHop, …)
	Offset int    // from the start of the IPv6 payload
	Raw    []byte // the whole header, exactly its length
}

// NextHeader returns the type of the header after this one.
func (e IPv6ExtHeader) NextHeader() uint8 { return e.Raw[0] }

// IPv6ExtIter walks an IPv6 extension header chain without allocating:
//
//	it := pkt.ExtHeaders()
//	for h, ok := it.Next(); ok; h, ok = it.Next() { … }
//	if it.Err() != nil { drop }
//	proto, off := it.Upper()
//
// Every header's length is checked against the buffer before it is yielded.
// The walk ends at the first type that is not an extension header this
// package walks (the upper layer, or an unknown header, which the caller
// treats as an unrecognised next header, RFC 8200 §4), at ESP (whose
// contents are encrypted) and at No Next Header. It also ends after a
// Fragment header with a non-zero offset, since what follows is fragment
// data rather than headers: Upper then reports the fragment header's next
// header and the offset of that data.
type IPv6ExtIter struct {
	b     []byte
	next  uint8 // type of the header at off
	off   int
	count int
	done  bool
	err   error
}

// NewIPv6ExtIter starts a walk over payload, the bytes after the fixed
// IPv6 header, whose first header has type next.
func NewIPv6ExtIter(next uint8, payload []byte) IPv6ExtIter {
	return IPv6ExtIter{b: payload, next: next}
}

// ipv6IsExtHeader reports whether t is a header the walk steps over.
func ipv6IsExtHeader(t uint8) bool {
	switch t {
	case IPProtoHopByHop, IPProtoRouting, IPProtoFragment, IPProtoDestOpts, IPProtoAH:
		return true
	}
	return false
}

// Next returns the next extension header, or false at the end of the chain
// or on an error (see Err).
func (it *IPv6ExtIter) Next() (IPv6ExtHeader, bool) {
	if it.done || !ipv6IsExtHeader(it.next) {
		it.done = true
		return IPv6ExtHeader{}, false
	}
	if it.count == IPv6ExtMaxHeaders {
		return it.fail(newError(ErrUnsupported, "ipv6", "extension headers",
			"more than %d in one packet", IPv6ExtMaxHeaders))
	}
	// RFC 8200 §4.3: Hop-by-Hop must immediately follow the IPv6 header.
	if it.next == IPProtoHopByHop && it.count > 0 {
		return it.fail(newError(ErrMalformed, "ipv6", "next header",
			"hop-by-hop options header at offset %d is not first", it.off))
	}
	rest := it.b[it.off:]
	if len(rest) < 2 {
		return it.fail(truncated("ipv6", ipv6ExtName(it.next), 2, len(rest)))
	}
	var n int
	switch it.next {
	case IPProtoFragment:
		n = IPv6FragmentHeaderLen
	case IPProtoAH:
		n = (int(rest[1]) + 2) * 4 // RFC 4302 §2.2: in 4-byte units, minus 2
	default:
		n = (int(rest[1]) + 1) * 8 // RFC 8200 §4.3–4.6: 8-byte units, minus the first
	}
	if n > len(rest) {
		return it.fail(newError(ErrTruncated, "ipv6", ipv6ExtName(it.next),
			"%d-byte header at offset %d exceeds the %d bytes left", n, it.off, len(rest)))
	}
	h := IPv6ExtHeader{Type: it.next, Offset: it.off, Raw: rest[:n:n]}
	it.count++
	it.off += n
	it.next = rest[0]
	if h.Type == IPProtoFragment && IPv6Fragment(h.Raw).FragmentOffset() != 0 {
		it.done = true // fragment data follows, not headers
	}
	return h, true
}

func (it *IPv6ExtIter) fail(err error) (IPv6ExtHeader, bool) {
	it.err = err
	it.done = true
	return IPv6ExtHeader{}, false
}

// Err returns the error that stopped the walk, or nil.
func (it *IPv6ExtIter) Err() error { return it.err }

// Offset returns the offset, from the start of the IPv6 payload, of the
// header the walk is looking at: after an error, the one at fault.
func (it *IPv6ExtIter) Offset() int { return it.off }

// Upper returns the upper-layer protocol (or ESP, No Next Header, or an
// unrecognised next header) and its offset from the start of the IPv6
// payload. It is meaningful once Next has returned false with Err nil; it
// walks the rest of the chain itself if needed.
func (it *IPv6ExtIter) Upper() (proto uint8, offset int) {
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	return it.next, it.off
}

func ipv6ExtName(t uint8) string {
	switch t {
	case IPProtoHopByHop:
		return "hop-by-hop options header"
	case IPProtoRouting:
		return "routing header"
	case IPProtoFragment:
		return "fragment header"
	case IPProtoDestOpts:
		return "destination options header"
	case IPProtoAH:
		return "authentication header"
	}
	return "extension header"
}

// Option types of Hop-by-Hop and Destination Options headers.
const (
	IPv6OptPad1          uint8 = 0x00 // RFC 8200 §4.2
	IPv6OptPadN          uint8 = 0x01 // RFC 8200 §4.2
	IPv6OptRouterAlert   uint8 = 0x05 // RFC 2711
	IPv6OptJumboPayload  uint8 = 0xc2 // RFC 2675
	ipv6OptRouterAlertSz       = 2
	ipv6OptJumboSz             = 4
)

// Router Alert values (RFC 2711 §2.1, RFC 2710 §3).
const (
	IPv6RouterAlertMLD uint16 = 0
)

// IPv6OptionAction is what a node must do with an option type it does not
// recognise, from the two high bits of the type (RFC 8200 §4.2).
type IPv6OptionAction uint8

const (
	// IPv6OptionSkip: skip over the option and continue.
	IPv6OptionSkip IPv6OptionAction = 0
	// IPv6OptionDiscard: discard the packet silently.
	IPv6OptionDiscard IPv6OptionAction = 1
	// IPv6OptionDiscardICMP: discard and send a Parameter Problem, code 2,
	// pointing at the option type, whatever the destination.
	IPv6OptionDiscardICMP IPv6OptionAction = 2
	// IPv6OptionDiscardICMPUnicast: as IPv6OptionDiscardICMP, but only if
	// the destination was not a multicast address.
	IPv6OptionDiscardICMPUnicast IPv6OptionAction = 3
)

// IPv6Option is one TLV option of a Hop-by-Hop or Destination Options header.
type IPv6Option struct {
	Type   uint8
	Offset int    // of the type byte, from the start of the options header
	Data   []byte // the option data; empty for Pad1
}

// Action returns what to do if the type is not recognised (RFC 8200 §4.2).
func (o IPv6Option) Action() IPv6OptionAction { return IPv6OptionAction(o.Type >> 6) }

// MayChange reports whether the option data may change en route (RFC 8200
// §4.2), which matters to the Authentication Header.
func (o IPv6Option) MayChange() bool { return o.Type&0x20 != 0 }

// RouterAlert returns the value of a Router Alert option.
func (o IPv6Option) RouterAlert() (uint16, bool) {
	if o.Type != IPv6OptRouterAlert || len(o.Data) != ipv6OptRouterAlertSz {
		return 0, false
	}
	return binary.BigEndian.Uint16(o.Data), true
}

// JumboPayloadLen returns the length carried by a Jumbo Payload option.
func (o IPv6Option) JumboPayloadLen() (uint32, bool) {
	if o.Type != IPv6OptJumboPayload || len(o.Data) != ipv6OptJumboSz {
		return 0, false
	}
	return binary.BigEndian.Uint32(o.Data), true
}

// IPv6OptionIter walks the options of a Hop-by-Hop or Destination Options
// header without allocating. Pad1 and PadN are yielded too, so the caller
// sees every byte; it skips them.
type IPv6OptionIter struct {
	b   []byte // the whole options header
	off int
	err error
}

// Next returns the next option, or false at the end or on an error.
func (it *IPv6OptionIter) Next() (IPv6Option, bool) {
	if it.err != nil || it.off >= len(it.b) {
		return IPv6Option{}, false
	}
	t := it.b[it.off]
	if t == IPv6OptPad1 {
		o := IPv6Option{Type: t, Offset: it.off, Data: it.b[it.off+1 : it.off+1]}
		it.off++
		return o, true
	}
	if it.off+2 > len(it.b) {
		it.err = newError(ErrTruncated, "ipv6-opts", "option length",
			"option type %#02x at offset %d has no length byte", t, it.off)
		return IPv6Option{}, false
	}
	end := it.off + 2 + int(it.b[it.off+1])
	if end > len(it.b) {
		it.err = newError(ErrTruncated, "ipv6-opts", "option length",
			"option type %#02x at offset %d: %d data bytes exceed the header", t, it.off, it.b[it.off+1])
		return IPv6Option{}, false
	}
	o := IPv6Option{Type: t, Offset: it.off, Data: it.b[it.off+2 : end : end]}
	it.off = end
	return o, true
}

// Err returns the error that stopped the walk, or nil.
func (it *IPv6OptionIter) Err() error { return it.err }

// IPv6Options is a validated view of a Hop-by-Hop or Destination Options
// header (RFC 8200 §4.3, §4.6), made by ParseIPv6Options.
type IPv6Options []byte

// ParseIPv6Options validates an options header and every option's length
// within it, and returns it trimmed to its length. Router Alert and Jumbo
// Payload options must have their defined lengths; unrecognised options are
// left to the caller, which acts on IPv6Option.Action.
func ParseIPv6Options(b []byte) (IPv6Options, error) {
	if len(b) < 2 {
		return nil, truncated("ipv6-opts", "header", 2, len(b))
	}
	n := (int(b[1]) + 1) * 8
	if n > len(b) {
		return nil, newError(ErrTruncated, "ipv6-opts", "header length",
			"%d bytes exceed the %d-byte buffer", n, len(b))
	}
	h := IPv6Options(b[:n:n])
	it := h.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch o.Type {
		case IPv6OptRouterAlert:
			if len(o.Data) != ipv6OptRouterAlertSz {
				return nil, newError(ErrMalformed, "ipv6-opts", "router alert",
					"%d data bytes, want %d", len(o.Data), ipv6OptRouterAlertSz)
			}
		case IPv6OptJumboPayload:
			if len(o.Data) != ipv6OptJumboSz {
				return nil, newError(ErrMalformed, "ipv6-opts", "jumbo payload",
					"%d data bytes, want %d", len(o.Data), ipv6OptJumboSz)
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return h, nil
}

// NextHeader returns the type of the header that follows.
func (h IPv6Options) NextHeader() uint8 { return h[0] }

// Len returns the header length in bytes.
func (h IPv6Options) Len() int { return len(h) }

// Options returns an iterator over the options.
func (h IPv6Options) Options() IPv6OptionIter { return IPv6OptionIter{b: h, off: 2} }

// RouterAlert returns the value of the first Router Alert option.
func (h IPv6Options) RouterAlert() (uint16, bool) {
	it := h.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if v, ok := o.RouterAlert(); ok {
			return v, true
		}
	}
	return 0, false
}

// Routing header types (IANA "IPv6 Routing Types").
const (
	// IPv6RoutingType0 is deprecated (RFC 5095 §3): a node must treat it as
	// an unrecognised routing type, and only when Segments Left is 0 may it
	// go on processing the packet.
	IPv6RoutingType0   uint8 = 0
	IPv6RoutingType2   uint8 = 2 // Mobile IPv6 (RFC 6275)
	IPv6RoutingRPL     uint8 = 3 // RFC 6554
	IPv6RoutingSegment uint8 = 4 // Segment Routing Header (RFC 8754)
)

const ipv6RoutingMinLen = 8

// IPv6Routing is a validated view of a Routing header (RFC 8200 §4.4).
type IPv6Routing []byte

// ParseIPv6Routing validates a Routing header's length and returns it
// trimmed to that length.
func ParseIPv6Routing(b []byte) (IPv6Routing, error) {
	if len(b) < ipv6RoutingMinLen {
		return nil, truncated("ipv6-route", "header", ipv6RoutingMinLen, len(b))
	}
	n := (int(b[1]) + 1) * 8
	if n > len(b) {
		return nil, newError(ErrTruncated, "ipv6-route", "header length",
			"%d bytes exceed the %d-byte buffer", n, len(b))
	}
	return IPv6Routing(b[:n:n]), nil
}

// NextHeader returns the type of the header that follows.
func (h IPv6Routing) NextHeader() uint8 { return h[0] }

// Len returns the header length in bytes.
func (h IPv6Routing) Len() int { return len(h) }

// RoutingType returns the routing type.
func (h IPv6Routing) RoutingType() uint8 { return h[2] }

// SegmentsLeft returns the number of route segments still to visit.
func (h IPv6Routing) SegmentsLeft() uint8 { return h[3] }

// Data returns the type-specific data (from byte 4).
func (h IPv6Routing) Data() []byte { return h[4:] }

// IPv6FragmentHeaderLen is the fixed size of a Fragment header.
const IPv6FragmentHeaderLen = 8

// IPv6Fragment is a validated view of a Fragment header (RFC 8200 §4.5).
type IPv6Fragment []byte

// ParseIPv6Fragment checks that b holds a whole Fragment header and
// returns it trimmed to its 8 bytes.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, error) {
	if len(b) < IPv6FragmentHeaderLen {
		return nil, truncated("ipv6-frag", "header", IPv6FragmentHeaderLen, len(b))
	}
	return IPv6Fragment(b[:IPv6FragmentHeaderLen:IPv6FragmentHeaderLen]), nil
}

// NextHeader returns the type of the first header of the fragmentable part.
func (h IPv6Fragment) NextHeader() uint8 { return h[0] }

// FragmentOffset returns the offset of this fragment's data in bytes (the
// field counts 8-byte units).
func (h IPv6Fragment) FragmentOffset() int { return int(binary.BigEndian.Uint16(h[2:]) &^ 7) }

// More reports the M flag: more fragments follow.
func (h IPv6Fragment) More() bool { return h[3]&1 != 0 }

// ID returns the identification shared by all fragments of a packet.
func (h IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(h[4:]) }

// IPv6FragmentFields builds a Fragment header.
type IPv6FragmentFields struct {
	NextHeader uint8
	Offset     int // in bytes; a multiple of 8 below 65536
	More       bool
	ID         uint32
}

// Len returns 8.
func (f *IPv6FragmentFields) Len() int { return IPv6FragmentHeaderLen }

// Encode writes the header to b[:8]. An offset that is not a multiple of 8
// below 65536 is a programming error and panics.
func (f *IPv6FragmentFields) Encode(b []byte) {
	if f.Offset < 0 || f.Offset%8 != 0 || f.Offset > 0xfff8 {
		panic("wire: IPv6FragmentFields.Offset not a multiple of 8 below 65536")
	}
	_ = b[IPv6FragmentHeaderLen-1]
	b[0] = f.NextHeader
	b[1] = 0
	v := uint16(f.Offset)
	if f.More {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], f.ID)
}

// IPv6OptionsFields builds a Hop-by-Hop or Destination Options header:
// an optional Router Alert first, then Options, padded with Pad1/PadN to a
// multiple of 8 bytes (RFC 8200 §4.2).
type IPv6OptionsFields struct {
	NextHeader uint8
	// RouterAlert adds a Router Alert option (RFC 2711) with value
	// RouterAlertValue (IPv6RouterAlertMLD for MLD, RFC 2710 §3). It sits
	// at offset 2, which meets its 2n+0 alignment.
	RouterAlert      bool
	RouterAlertValue uint16
	// Options are further raw options (type, length, data …), written after
	// the Router Alert; meeting their alignment is up to the caller, who
	// can put PadN inside. Build them with AppendIPv6Option.
	Options []byte
}

func (f *IPv6OptionsFields) bodyLen() int {
	n := 2 + len(f.Options)
	if f.RouterAlert {
		n += 2 + ipv6OptRouterAlertSz
	}
	return n
}

// Len returns the header length: the options rounded up to 8 bytes.
func (f *IPv6OptionsFields) Len() int { return (f.bodyLen() + 7) &^ 7 }

// Encode writes the header to b[:f.Len()]. A header longer than 2048
// bytes cannot be expressed and panics.
func (f *IPv6OptionsFields) Encode(b []byte) {
	n := f.Len()
	if n > 256*8 {
		panic("wire: IPv6OptionsFields.Options too long")
	}
	_ = b[n-1]
	b[0] = f.NextHeader
	b[1] = uint8(n/8 - 1)
	off := 2
	if f.RouterAlert {
		b[2], b[3] = IPv6OptRouterAlert, ipv6OptRouterAlertSz
		binary.BigEndian.PutUint16(b[4:], f.RouterAlertValue)
		off = 6
	}
	off += copy(b[off:n], f.Options)
	ipv6PutPadding(b[off:n])
}

// ipv6PutPadding fills b with one Pad1 or PadN option (RFC 8200 §4.2).
func ipv6PutPadding(b []byte) {
	switch len(b) {
	case 0:
	case 1:
		b[0] = IPv6OptPad1
	default:
		b[0], b[1] = IPv6OptPadN, uint8(len(b)-2)
		clear(b[2:])
	}
}

// AppendIPv6Option appends one TLV option to b, for IPv6OptionsFields.Options.
// Data longer than 255 bytes is a programming error and panics.
func AppendIPv6Option(b []byte, typ uint8, data []byte) []byte {
	if len(data) > 255 {
		panic("wire: IPv6 option data longer than 255 bytes")
	}
	b = append(b, typ, uint8(len(data)))
	return append(b, data...)
}
