package wire

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// IPv4 options (RFC 791 §3.1 "Options"; Router Alert RFC 2113). An option is
// either a single octet (End of Option List, No Operation) or a type octet,
// a length octet counting the whole option, and data. The route options and
// Timestamp carry a pointer, the 1-based offset within the option of the
// next free slot; a pointer past the end means the option is full.

// IPv4 option types (the whole type octet: copied flag, class, number).
const (
	IPv4OptEOL         uint8 = 0   // End of Option List
	IPv4OptNOP         uint8 = 1   // No Operation
	IPv4OptRecordRoute uint8 = 7   // Record Route
	IPv4OptTimestamp   uint8 = 68  // Internet Timestamp
	IPv4OptLSRR        uint8 = 131 // Loose Source and Record Route
	IPv4OptSSRR        uint8 = 137 // Strict Source and Record Route
	IPv4OptRouterAlert uint8 = 148 // Router Alert (RFC 2113)
)

// Timestamp option flags (RFC 791 §3.1 "Internet Timestamp").
const (
	// IPv4TimestampOnly: each entry is a 32-bit timestamp.
	IPv4TimestampOnly uint8 = 0
	// IPv4TimestampAndAddr: each entry is an address then a timestamp.
	IPv4TimestampAndAddr uint8 = 1
	// IPv4TimestampPrespecified: addresses are filled in by the sender and
	// only the named hosts add their timestamp.
	IPv4TimestampPrespecified uint8 = 3
)

// Route and timestamp option geometry.
const (
	ipv4RouteHeaderLen = 3 // type, length, pointer
	ipv4RouteMinPtr    = 4
	ipv4TSHeaderLen    = 4 // type, length, pointer, overflow/flag
	ipv4TSMinPtr       = 5
	// IPv4MaxRouteSlots is how many addresses fit in a route option (39 bytes).
	IPv4MaxRouteSlots = (IPv4MaxOptionLen - ipv4RouteHeaderLen) / 4
)

// ipv4OptionName names an option type for error messages.
func ipv4OptionName(t uint8) string {
	switch t {
	case IPv4OptRecordRoute:
		return "record route option"
	case IPv4OptTimestamp:
		return "timestamp option"
	case IPv4OptLSRR:
		return "loose source route option"
	case IPv4OptSSRR:
		return "strict source route option"
	case IPv4OptRouterAlert:
		return "router alert option"
	}
	return "option"
}

// ipv4CheckOptions validates a header's option bytes.
func ipv4CheckOptions(b []byte) error {
	it := NewIPv4OptionIter(b)
	for {
		if _, ok := it.Next(); !ok {
			return it.Err()
		}
	}
}

// IPv4OptionIter walks the options of a header without allocating. It skips
// No Operation padding, stops at End of Option List, and checks each
// option's length (and pointer, for the options that have one) before
// yielding it.
type IPv4OptionIter struct {
	b   []byte
	err error
}

// NewIPv4OptionIter returns an iterator over raw option bytes.
func NewIPv4OptionIter(opts []byte) IPv4OptionIter { return IPv4OptionIter{b: opts} }

// Next returns the next option, or false at the end of the list or on a
// malformed option (then Err says why).
func (it *IPv4OptionIter) Next() (IPv4Option, bool) {
	for len(it.b) > 0 {
		switch it.b[0] {
		case IPv4OptEOL:
			it.b = nil
			return nil, false
		case IPv4OptNOP:
			it.b = it.b[1:]
			continue
		}
		o, err := ipv4SplitOption(it.b)
		if err != nil {
			it.b, it.err = nil, err
			return nil, false
		}
		it.b = it.b[len(o):]
		return o, true
	}
	return nil, false
}

// Err returns the error that stopped the iteration, or nil.
func (it *IPv4OptionIter) Err() error { return it.err }

// ipv4SplitOption validates the multi-octet option at the front of b and
// returns it.
func ipv4SplitOption(b []byte) (IPv4Option, error) {
	t := b[0]
	name := ipv4OptionName(t)
	if len(b) < 2 {
		return nil, newError(ErrMalformed, "ipv4", name, "type %d has no length octet", t)
	}
	l := int(b[1])
	if l < 2 {
		return nil, newError(ErrMalformed, "ipv4", name, "type %d: length %d is below 2", t, l)
	}
	if l > len(b) {
		return nil, newError(ErrMalformed, "ipv4", name, "type %d: length %d exceeds the %d bytes of options left", t, l, len(b))
	}
	o := IPv4Option(b[:l])
	switch t {
	case IPv4OptRecordRoute, IPv4OptLSRR, IPv4OptSSRR:
		if l < ipv4RouteHeaderLen {
			return nil, newError(ErrMalformed, "ipv4", name, "length %d is below 3", l)
		}
		// As Linux's ip_options_compile: pointer ≥ 4, and a pointer inside the
		// option must leave room for a whole address.
		p := int(o[2])
		if p < ipv4RouteMinPtr {
			return nil, newError(ErrMalformed, "ipv4", name, "pointer %d is below 4", p)
		}
		if p <= l && p+3 > l {
			return nil, newError(ErrMalformed, "ipv4", name, "pointer %d leaves no room for an address in %d bytes", p, l)
		}
	case IPv4OptTimestamp:
		if l < ipv4TSHeaderLen {
			return nil, newError(ErrMalformed, "ipv4", name, "length %d is below 4", l)
		}
		p := int(o[2])
		if p < ipv4TSMinPtr {
			return nil, newError(ErrMalformed, "ipv4", name, "pointer %d is below 5", p)
		}
		size := o.timestampEntryLen()
		if size == 0 {
			return nil, newError(ErrMalformed, "ipv4", name, "flag %d is not 0, 1 or 3", o[3]&0x0f)
		}
		if p <= l && p+size-1 > l {
			return nil, newError(ErrMalformed, "ipv4", name, "pointer %d leaves no room for a %d-byte entry in %d bytes", p, size, l)
		}
	case IPv4OptRouterAlert:
		if l != 4 {
			return nil, newError(ErrMalformed, "ipv4", name, "length %d, want 4", l)
		}
	}
	return o, nil
}

// IPv4Option is one multi-octet option: type, length, data. The typed
// accessors below check their bounds, so they are safe on any bytes; on an
// option yielded by IPv4OptionIter they are also consistent with the
// option's length and pointer.
type IPv4Option []byte

// Type returns the option type (IPv4OptRecordRoute, …).
func (o IPv4Option) Type() uint8 {
	if len(o) == 0 {
		return IPv4OptEOL
	}
	return o[0]
}

// Copied reports whether the option is copied into every fragment (RFC 791).
func (o IPv4Option) Copied() bool { return o.Type()&0x80 != 0 }

// Data returns the bytes after the type and length octets.
func (o IPv4Option) Data() []byte {
	if len(o) < 2 {
		return nil
	}
	return o[2:]
}

// Pointer returns the pointer octet of a route or timestamp option: the
// 1-based offset of the next free slot.
func (o IPv4Option) Pointer() uint8 {
	if len(o) < 3 {
		return 0
	}
	return o[2]
}

func (o IPv4Option) isRoute() bool {
	t := o.Type()
	return (t == IPv4OptRecordRoute || t == IPv4OptLSRR || t == IPv4OptSSRR) && len(o) >= ipv4RouteHeaderLen
}

// RouteSlots returns how many addresses a route option (Record Route, LSRR,
// SSRR) has room for; 0 for other options.
func (o IPv4Option) RouteSlots() int {
	if !o.isRoute() {
		return 0
	}
	return (len(o) - ipv4RouteHeaderLen) / 4
}

// RouteUsed returns how many slots of a route option lie before the
// pointer: addresses recorded so far, or source-route hops already visited.
func (o IPv4Option) RouteUsed() int {
	if !o.isRoute() || o[2] < ipv4RouteMinPtr {
		return 0
	}
	return min(int(o[2]-ipv4RouteMinPtr)/4, o.RouteSlots())
}

// RouteFull reports whether a route option's pointer is past its end.
func (o IPv4Option) RouteFull() bool { return o.isRoute() && int(o[2]) > len(o) }

// RouteAddr returns address slot i of a route option, or the zero Addr if
// there is no slot i.
func (o IPv4Option) RouteAddr(i int) netip.Addr {
	if i < 0 || i >= o.RouteSlots() {
		return netip.Addr{}
	}
	off := ipv4RouteHeaderLen + 4*i
	return netip.AddrFrom4([4]byte(o[off : off+4]))
}

// RouteNext returns the address in the slot the pointer names: for a
// source route option the next hop to forward to (RFC 791). ok is false
// when the route is exhausted.
func (o IPv4Option) RouteNext() (a netip.Addr, ok bool) {
	if !o.isRoute() || o[2] < ipv4RouteMinPtr || int(o[2])+3 > len(o) {
		return netip.Addr{}, false
	}
	p := int(o[2]) - 1
	return netip.AddrFrom4([4]byte(o[p : p+4])), true
}

// RouteRecord stores a in the slot the pointer names and advances the
// pointer, as a router or the originating host does for Record Route, and
// as a router does for a source route after taking RouteNext as its next
// hop, replacing it with its own address (RFC 791, RFC 1812 §5.2.4). It reports false, changing nothing, when the
// option is full or not a route option. The caller must then recompute the
// header checksum (IPv4.UpdateChecksum).
func (o IPv4Option) RouteRecord(a netip.Addr) bool {
	if !o.isRoute() || o[2] < ipv4RouteMinPtr || int(o[2])+3 > len(o) {
		return false
	}
	p := int(o[2]) - 1
	ipv4PutAddr(o[p:p+4], a)
	o[2] += 4
	return true
}

// timestampEntryLen returns the bytes per entry of a timestamp option by its
// flag, or 0 for an unknown flag.
func (o IPv4Option) timestampEntryLen() int {
	if o.Type() != IPv4OptTimestamp || len(o) < ipv4TSHeaderLen {
		return 0
	}
	switch o[3] & 0x0f {
	case IPv4TimestampOnly:
		return 4
	case IPv4TimestampAndAddr, IPv4TimestampPrespecified:
		return 8
	}
	return 0
}

// TimestampFlag returns the flag of a timestamp option.
func (o IPv4Option) TimestampFlag() uint8 {
	if o.Type() != IPv4OptTimestamp || len(o) < ipv4TSHeaderLen {
		return 0
	}
	return o[3] & 0x0f
}

// TimestampOverflow returns the overflow count of a timestamp option: how
// many hosts could not record for lack of space.
func (o IPv4Option) TimestampOverflow() uint8 {
	if o.Type() != IPv4OptTimestamp || len(o) < ipv4TSHeaderLen {
		return 0
	}
	return o[3] >> 4
}

// TimestampSlots returns how many entries a timestamp option has room for.
func (o IPv4Option) TimestampSlots() int {
	size := o.timestampEntryLen()
	if size == 0 {
		return 0
	}
	return (len(o) - ipv4TSHeaderLen) / size
}

// TimestampUsed returns how many entries lie before the pointer.
func (o IPv4Option) TimestampUsed() int {
	size := o.timestampEntryLen()
	if size == 0 || o[2] < ipv4TSMinPtr {
		return 0
	}
	return min(int(o[2]-ipv4TSMinPtr)/size, o.TimestampSlots())
}

// TimestampEntry returns entry i of a timestamp option: the address (the
// zero Addr for flag 0, which records none) and the timestamp, in
// milliseconds since midnight UT unless the high bit marks a non-standard
// value. ok is false if there is no entry i.
func (o IPv4Option) TimestampEntry(i int) (addr netip.Addr, ts uint32, ok bool) {
	if i < 0 || i >= o.TimestampSlots() {
		return netip.Addr{}, 0, false
	}
	size := o.timestampEntryLen()
	off := ipv4TSHeaderLen + size*i
	if size == 8 {
		addr = netip.AddrFrom4([4]byte(o[off : off+4]))
		off += 4
	}
	return addr, binary.BigEndian.Uint32(o[off:]), true
}

// TimestampRecord adds an entry as a host on the path does (RFC 791): with
// address a for flags 1, or only when the next prespecified address equals
// a for flag 3. When the option is full it counts the host in the overflow
// field instead (the field saturates at 15, where RFC 791 says the datagram
// should be dropped with a parameter problem; the caller checks
// TimestampOverflow). It reports whether the option changed; the caller
// then recomputes the header checksum.
func (o IPv4Option) TimestampRecord(a netip.Addr, ts uint32) bool {
	size := o.timestampEntryLen()
	if size == 0 || o[2] < ipv4TSMinPtr {
		return false
	}
	p := int(o[2]) - 1
	if p+size > len(o) {
		if o[3]>>4 == 15 {
			return false
		}
		o[3] += 0x10
		return true
	}
	if o.TimestampFlag() == IPv4TimestampPrespecified {
		if netip.AddrFrom4([4]byte(o[p:p+4])) != a.Unmap() {
			return false
		}
	} else if size == 8 {
		ipv4PutAddr(o[p:p+4], a)
	}
	binary.BigEndian.PutUint32(o[p+size-4:], ts)
	o[2] += uint8(size)
	return true
}

// RouterAlertValue returns the value of a Router Alert option (0: every
// router examines the packet, RFC 2113 §2.1).
func (o IPv4Option) RouterAlertValue() uint16 {
	if o.Type() != IPv4OptRouterAlert || len(o) < 4 {
		return 0
	}
	return binary.BigEndian.Uint16(o[2:])
}

// UpdateChecksum recomputes the header checksum in place, after an option
// was changed (RouteRecord, TimestampRecord) or a field rewritten.
func (h IPv4) UpdateChecksum() {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^Checksum(h[:h.HeaderLen()], 0))
}

// Option builders. Each appends one option to b and returns the extended
// slice, so a caller with a [40]byte array builds options without
// allocating. Arguments out of range are programming errors and panic.

// AppendIPv4RecordRoute appends an empty Record Route option with room for
// slots addresses (1 to IPv4MaxRouteSlots; ping -R asks for 9).
func AppendIPv4RecordRoute(b []byte, slots int) []byte {
	if slots < 1 || slots > IPv4MaxRouteSlots {
		panic("wire: record route slots out of range 1..9")
	}
	l := ipv4RouteHeaderLen + 4*slots
	b = append(b, IPv4OptRecordRoute, uint8(l), ipv4RouteMinPtr)
	return ipv4AppendZeros(b, 4*slots)
}

// AppendIPv4SourceRoute appends a Loose (strict false) or Strict Source and
// Record Route option listing route, pointer at the first entry. Per RFC 791
// the datagram's destination is the first hop and route holds the hops after
// it, the final destination last.
func AppendIPv4SourceRoute(b []byte, strict bool, route ...netip.Addr) []byte {
	if len(route) < 1 || len(route) > IPv4MaxRouteSlots {
		panic("wire: source route length out of range 1..9")
	}
	t := IPv4OptLSRR
	if strict {
		t = IPv4OptSSRR
	}
	b = append(b, t, uint8(ipv4RouteHeaderLen+4*len(route)), ipv4RouteMinPtr)
	for _, a := range route {
		b = append(b, 0, 0, 0, 0)
		ipv4PutAddr(b[len(b)-4:], a)
	}
	return b
}

// AppendIPv4Timestamp appends an empty Timestamp option with flag
// IPv4TimestampOnly (up to 9 slots) or IPv4TimestampAndAddr (up to 4).
func AppendIPv4Timestamp(b []byte, flag uint8, slots int) []byte {
	size := 4
	switch flag {
	case IPv4TimestampOnly:
	case IPv4TimestampAndAddr:
		size = 8
	default:
		panic("wire: AppendIPv4Timestamp flag must be 0 or 1")
	}
	if slots < 1 || ipv4TSHeaderLen+size*slots > IPv4MaxOptionLen {
		panic("wire: timestamp slots out of range")
	}
	b = append(b, IPv4OptTimestamp, uint8(ipv4TSHeaderLen+size*slots), ipv4TSMinPtr, flag)
	return ipv4AppendZeros(b, size*slots)
}

// AppendIPv4TimestampPrespecified appends a Timestamp option with flag 3
// naming the hosts (1 to 4) that should record their timestamps.
func AppendIPv4TimestampPrespecified(b []byte, addrs ...netip.Addr) []byte {
	if len(addrs) < 1 || ipv4TSHeaderLen+8*len(addrs) > IPv4MaxOptionLen {
		panic("wire: prespecified timestamp addresses out of range 1..4")
	}
	b = append(b, IPv4OptTimestamp, uint8(ipv4TSHeaderLen+8*len(addrs)), ipv4TSMinPtr, IPv4TimestampPrespecified)
	for _, a := range addrs {
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
		ipv4PutAddr(b[len(b)-8:], a)
	}
	return b
}

// ipv4AppendZeros appends n zero bytes, allocating only when b lacks the
// capacity (append of a make'd slice allocates under the race detector).
func ipv4AppendZeros(b []byte, n int) []byte {
	b = slices.Grow(b, n)
	b = b[:len(b)+n]
	clear(b[len(b)-n:])
	return b
}

// AppendIPv4RouterAlert appends a Router Alert option with value 0, which
// IGMP messages carry (RFC 2113, RFC 2236 §2, RFC 3376 §4).
func AppendIPv4RouterAlert(b []byte) []byte {
	return append(b, IPv4OptRouterAlert, 4, 0, 0)
}
