package stack

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// IPv4 input, output and forwarding (RFC 791, RFC 1122 §3.2.1, RFC 1812
// §4–5), counted in s.stats.IP with the meaning Linux gives each counter.
//
// Where this differs from Linux, on purpose or for now:
//   - Received bytes are never modified, so the Record Route and
//     Timestamp entries Linux writes into a packet it receives for itself
//     appear only where they leave the stack: in forwarded copies and in
//     echo replies (echoOptions4), which is what `ping -R` sees.
//   - A truncated datagram (total length beyond the frame) counts as
//     InHdrErrors: IPStats has no InTruncatedPkts.
//   - Broadcasts, and multicast to a group the outgoing NIC joined when
//     WriteOptions.Loop asks (IP_MULTICAST_LOOP, on by default for
//     sockets), are looped back to the sending stack's own sockets as
//     Linux does (loop.go); the looped copy is delivered whole, from its
//     own goroutine.

// ipv4Opts locates the options of a received header that need processing:
// offsets of each option within the header (0: absent).
type ipv4Opts struct {
	rr, ts, srr int
	strict      bool // srr is a Strict Source and Record Route
	ra          bool // Router Alert present
}

// scanOptions4 classifies the options of a parsed header (already checked
// by wire.ParseIPv4) and applies the checks Linux's ip_options_compile adds:
// a single source route, a 4-byte Router Alert, and a full timestamp whose
// overflow counter is saturated (RFC 791: the datagram is then discarded
// with a parameter problem). bad is the offset of the offending octet, or
// -1.
func scanOptions4(h wire.IPv4) (o ipv4Opts, bad int) {
	if h.HeaderLen() == wire.IPv4MinHeaderLen {
		return o, -1
	}
	it := h.OptionIter()
	for {
		opt, ok := it.Next()
		if !ok {
			return o, -1
		}
		off := cap(h) - cap(opt) // opt aliases h: its offset within the header
		switch opt.Type() {
		case wire.IPv4OptRecordRoute:
			if o.rr == 0 {
				o.rr = off
			}
		case wire.IPv4OptTimestamp:
			if o.ts == 0 {
				o.ts = off
			}
			if opt.TimestampUsed() >= opt.TimestampSlots() && int(opt.Pointer()) > len(opt) && opt.TimestampOverflow() == 15 {
				return o, off + 3
			}
		case wire.IPv4OptLSRR, wire.IPv4OptSSRR:
			if o.srr != 0 {
				return o, off
			}
			o.srr, o.strict = off, opt.Type() == wire.IPv4OptSSRR
		case wire.IPv4OptRouterAlert:
			if len(opt) != 4 {
				return o, off + 1
			}
			o.ra = true
		}
	}
}

// optionAt returns the option at offset off of a parsed header.
func optionAt(h wire.IPv4, off int) wire.IPv4Option {
	return wire.IPv4Option(h[off : off+int(h[off+1])])
}

// badOptionOffset finds the offset within the header of the octet that
// made wire.ParseIPv4 reject the options, for the parameter problem
// pointer (RFC 792; the octets Linux's ip_options_compile points at: the
// type for a bad length, the length for a length below the option's
// minimum, the pointer for a bad pointer, the flag octet for a bad
// timestamp flag).
func badOptionOffset(hdr []byte) int {
	opts := hdr[wire.IPv4MinHeaderLen:]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case wire.IPv4OptEOL:
			return wire.IPv4MinHeaderLen + i
		case wire.IPv4OptNOP:
			i++
			continue
		}
		it := wire.NewIPv4OptionIter(opts[i:])
		o, ok := it.Next()
		if ok {
			i += len(o)
			continue
		}
		at := wire.IPv4MinHeaderLen + i
		rem := len(opts) - i
		if rem < 2 || opts[i+1] < 2 || int(opts[i+1]) > rem {
			return at
		}
		l := int(opts[i+1])
		switch opts[i] {
		case wire.IPv4OptRecordRoute, wire.IPv4OptLSRR, wire.IPv4OptSSRR:
			if l < 3 {
				return at + 1
			}
		case wire.IPv4OptRouterAlert:
			return at + 1
		case wire.IPv4OptTimestamp:
			if l < 4 {
				return at + 1
			}
			if opts[i+2] >= 5 && opts[i+3]&0x0f != 0 && opts[i+3]&0x0f != 1 && opts[i+3]&0x0f != 3 {
				return at + 3
			}
		}
		return at + 2
	}
	return wire.IPv4MinHeaderLen
}

// ipv4HeaderOK does the checks of Linux's ip_rcv_core that come before
// the header checksum: length, version, IHL and total length.
func ipv4HeaderOK(b []byte) bool {
	if len(b) < wire.IPv4MinHeaderLen || b[0]>>4 != 4 {
		return false
	}
	hl := int(b[0]&0x0f) * 4
	tl := int(binary.BigEndian.Uint16(b[2:]))
	return hl >= wire.IPv4MinHeaderLen && hl <= tl && tl <= len(b)
}

// martianSource4 reports a source address no packet from a link may carry
// (RFC 1812 §5.3.7, Linux ip_route_input_slow): multicast, limited
// broadcast, class E, loopback, one of our own addresses, and 0.0.0.0/8
// except for the unspecified source of a host that has no address yet
// (DHCP to 255.255.255.255, IGMP and link-local multicast, as Linux
// allows).
func (s *Stack) martianSource4(n *NIC, src, dst netip.Addr, proto uint8) bool {
	b := src.As4()
	switch {
	case src.IsMulticast(), src == broadcast4, b[0] >= 240, src.IsLoopback():
		return true
	case b[0] == 0:
		if !src.IsUnspecified() {
			return true
		}
		return !(dst == broadcast4 || (dst.IsMulticast() && (isLocalMulticast4(dst) || proto == wire.IPProtoIGMP)))
	case n.directedBroadcast(src):
		return true
	}
	return s.IsLocal(src)
}

// anyDirectedBroadcast reports whether a is the broadcast address of a
// subnet on any NIC.
func (s *Stack) anyDirectedBroadcast(a netip.Addr) bool {
	for _, n := range s.NICs() {
		if n.directedBroadcast(a) {
			return true
		}
	}
	return false
}

// isLocalMulticast4 reports 224.0.0.0/24, the link-local groups.
func isLocalMulticast4(a netip.Addr) bool {
	b := a.As4()
	return b[0] == 224 && b[1] == 0 && b[2] == 0
}

// handleIPv4 takes one received IPv4 packet (a view of the frame: never
// modified).
func (s *Stack) handleIPv4(n *NIC, pkt []byte, pt PacketType) {
	if pt == PacketOtherHost {
		return // Linux ip_rcv_core drops these before counting them
	}
	st := &s.stats.IP
	st.InReceives.Add(1)
	if !ipv4HeaderOK(pkt) {
		st.InHdrErrors.Add(1)
		return
	}
	hl := int(pkt[0]&0x0f) * 4
	if wire.Checksum(pkt[:hl], 0) != 0xffff {
		st.InHdrErrors.Add(1)
		return
	}
	h, err := wire.ParseIPv4(pkt) // trims link padding; fails only on options now
	if err != nil {
		st.InHdrErrors.Add(1)
		s.sendICMPv4Error(n, pt, pkt[:binary.BigEndian.Uint16(pkt[2:])], wire.ICMPv4Fields{
			Type: wire.ICMPv4ParamProblem, Pointer: uint8(badOptionOffset(pkt[:hl]))})
		return
	}
	src, dst := h.Src(), h.Dst()
	if !n.loopback && s.martianSource4(n, src, dst, h.Protocol()) {
		st.InDiscards.Add(1)
		return
	}

	// Destination class (RFC 1122 §3.2.1.3; the weak host model of
	// §3.3.4.2, as Linux: any of our addresses on any NIC).
	var bcast bool
	local := false
	switch {
	case dst == broadcast4:
		local, bcast = true, true
	case dst.IsMulticast():
		if !n.InGroup(dst) && dst != allNodes4 {
			return // not joined and not forwarded: Linux drops silently
		}
		local = true
	case n.directedBroadcast(dst):
		local, bcast = true, true
	case (dst.IsLoopback() || dst.As4()[0] == 0) && !n.loopback:
		st.InAddrErrors.Add(1) // martian destination
		return
	case s.IsLocal(dst):
		local = true
	case s.anyDirectedBroadcast(dst):
		// Linux's local table holds every interface's broadcast address,
		// so a datagram to another subnet's broadcast address is received
		// as a broadcast, not forwarded (bc_forwarding=0).
		local, bcast = true, true
	}

	opts, bad := scanOptions4(h)
	if bad >= 0 {
		st.InHdrErrors.Add(1)
		s.sendICMPv4Error(n, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4ParamProblem, Pointer: uint8(bad)})
		return
	}
	if opts.srr != 0 {
		// Source routing is off by default (accept_source_route=0);
		// Linux's ip_rcv_options drops such packets without counting.
		if !s.opts.AcceptSourceRoute {
			return
		}
		switch {
		case bcast || dst.IsMulticast():
			return // ip_options_rcv_srr: only unicast may be source routed
		case local:
			if next, ok := optionAt(h, opts.srr).RouteNext(); ok {
				// We are a listed hop with more to go (RFC 791):
				// forward to the next address in the route.
				if !s.forwarding(false) {
					st.InAddrErrors.Add(1)
					return
				}
				s.forwardIPv4(n, pt, h, opts, next)
				return
			}
		case opts.strict && s.forwarding(false):
			// A strict route whose current hop is not us (RFC 1812
			// §5.2.4.1); Linux points at the destination address.
			s.sendICMPv4Error(n, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4ParamProblem, Pointer: 16})
			st.InHdrErrors.Add(1)
			return
		}
	}

	if !local {
		if s.forwarding(false) {
			s.forwardIPv4(n, pt, h, opts, netip.Addr{})
			return
		}
		st.InAddrErrors.Add(1)
		return
	}

	if h.IsFragment() {
		st.ReasmReqds.Add(1)
		key := fragment.Key{Family: fragment.IPv4, Src: src, Dst: dst, Proto: h.Protocol(), ID: uint32(h.ID())}
		d, done, err := s.reasm4.Process(key, fragment.Packet{
			Offset: h.FragmentOffset(), More: h.MF(), Header: h.Header(), Data: h.Payload()})
		if err != nil {
			st.ReasmFails.Add(1)
			return
		}
		if !done {
			return
		}
		total := len(d.Header) + len(d.Data)
		if total > wire.IPv4MaxTotalLen {
			st.ReasmFails.Add(1)
			return
		}
		b := make([]byte, total)
		copy(b, d.Header)
		copy(b[len(d.Header):], d.Data)
		binary.BigEndian.PutUint16(b[2:], uint16(total))
		b[6], b[7] = b[6]&0x40, 0 // the first fragment's DF stays, as Linux's ip_frag_reasm
		h = wire.IPv4(b)
		h.UpdateChecksum()
		st.ReasmOKs.Add(1)
	}
	s.deliverIPv4(n, pt, h, bcast)
}

// deliverIPv4 hands a whole local datagram to ICMP, IGMP, raw handlers
// and transports (Linux ip_local_deliver_finish).
func (s *Stack) deliverIPv4(n *NIC, pt PacketType, h wire.IPv4, bcast bool) {
	st := &s.stats.IP
	pi := &PacketInfo{NIC: n, Src: h.Src(), Dst: h.Dst(), Proto: h.Protocol(), TTL: h.TTL(),
		TOS: h.TOS(), Type: pt, Broadcast: bcast, Network: h.Header()}
	payload := h.Payload()
	internal := false
	switch pi.Proto {
	case wire.IPProtoICMP:
		s.handleICMPv4(pi, h)
		internal = true
	case wire.IPProtoIGMP:
		s.handleIGMP(pi, payload)
		internal = true
	}
	raw := s.deliverRaw(pi, h)
	handled, known := s.deliverTransport(pi, payload)
	switch {
	case known:
		st.InDelivers.Add(1)
		if !handled && !internal && !bcast && !pi.Dst.IsMulticast() {
			// RFC 1122 §3.2.2.1: port unreachable from the transport
			// (never for ICMP or IGMP, which the stack itself takes).
			s.sendICMPv4Error(n, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable})
		}
	case internal || raw:
		st.InDelivers.Add(1)
	default:
		st.InUnknownProtos.Add(1)
		if !bcast && !pi.Dst.IsMulticast() {
			s.sendICMPv4Error(n, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4ProtoUnreachable})
		}
	}
}

// ipv4Timestamp is the RFC 791 timestamp: milliseconds since midnight UT.
func ipv4Timestamp(t time.Time) uint32 {
	t = t.UTC()
	y, m, d := t.Date()
	return uint32(t.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)).Milliseconds())
}

// recordOptions4 does a hop's Record Route and Timestamp work on the
// options of header h (RFC 791): record addr in a Record Route with room,
// and addr and the time in a Timestamp. It reports whether h changed (the
// caller then recomputes the checksum).
func recordOptions4(h []byte, addr netip.Addr, now time.Time) bool {
	if len(h) <= wire.IPv4MinHeaderLen {
		return false
	}
	changed := false
	it := wire.NewIPv4OptionIter(h[wire.IPv4MinHeaderLen:])
	for {
		o, ok := it.Next()
		if !ok {
			return changed
		}
		switch o.Type() {
		case wire.IPv4OptRecordRoute:
			if o.RouteRecord(addr) {
				changed = true
			}
		case wire.IPv4OptTimestamp:
			if o.TimestampRecord(addr, ipv4Timestamp(now)) {
				changed = true
			}
		}
	}
}

// writeIPv4 prepends the IPv4 header and sends pkt on r, fragmenting it
// when it exceeds the path MTU (RFC 791 §3.2) unless DontFragment.
func (s *Stack) writeIPv4(r *Route, pkt *Packet, o WriteOptions) error {
	if o.HeaderIncluded {
		return s.writeIPv4Included(r, pkt, o)
	}
	st := &s.stats.IP
	ttl := o.TTL
	if ttl == 0 {
		ttl = s.opts.DefaultTTL
		if r.Dst.IsMulticast() {
			ttl = 1 // IP_MULTICAST_TTL default (RFC 1112 §6.1)
		}
	}
	mtu := r.MTU
	if mtu <= 0 {
		mtu = r.NIC.MTU()
	}
	if pm, ok := s.pmtu.get(r.Dst); ok && pm < mtu {
		mtu = pm
	}
	if len(o.IPv4Options) > wire.IPv4MaxOptionLen {
		return ErrInvalid
	}
	// The sender's share of Record Route and Timestamp: Linux's
	// ip_options_build records the source address in the first free slot.
	var ob [wire.IPv4MaxOptionLen]byte
	opts := append(ob[:0], o.IPv4Options...)
	f := wire.IPv4Fields{TOS: o.TOS, DF: o.DontFragment, TTL: ttl, Protocol: o.Proto,
		Src: r.Src, Dst: r.Dst, Options: opts, PayloadLen: pkt.Len()}
	hl := f.Len()
	total := hl + pkt.Len()
	if total > wire.IPv4MaxTotalLen || (total > mtu && o.DontFragment) {
		return ErrMsgSize // EMSGSIZE before anything is counted, as ip_append_data
	}
	f.ID = uint16(s.ipID.Add(1))
	st.OutRequests.Add(1)
	hdr := pkt.Prepend(hl)
	f.Encode(hdr)
	if recordOptions4(hdr, r.Src, time.Now()) {
		wire.IPv4(hdr).UpdateChecksum()
	}
	s.loop4(r, o, pkt.Bytes())
	if total > mtu {
		if o.Batch != nil {
			o.Batch.Flush() // the fragments go now, after what is held
		}
		return s.fragment4(r.NIC, r.NextHop, wire.IPv4(pkt.Bytes()), mtu)
	}
	pkt.batch = o.Batch
	return s.output4(r.NIC, r.NextHop, pkt)
}

// writeIPv4Included sends a datagram whose IPv4 header the caller wrote
// (IP_HDRINCL), as Linux's raw_send_hdrinc: the header must be whole (IHL
// at least 5 and within the data, else EINVAL); the stack fills in the
// total length, an ID when zero, the source when zero (the route's) and
// the header checksum, and sends it as it is, never fragmented: EMSGSIZE
// beyond the device MTU. The destination in the header is left alone; the
// route (from the address the caller sent to) decides where it goes.
// Broadcasts, and multicast with o.Loop, are looped back as any other.
func (s *Stack) writeIPv4Included(r *Route, pkt *Packet, o WriteOptions) error {
	b := pkt.Bytes()
	if len(b) < wire.IPv4MinHeaderLen {
		return ErrInvalid
	}
	hl := int(b[0]&0x0f) * 4
	if hl < wire.IPv4MinHeaderLen || hl > len(b) {
		return ErrInvalid
	}
	if len(b) > r.NIC.MTU() || len(b) > wire.IPv4MaxTotalLen {
		return ErrMsgSize
	}
	h := wire.IPv4(b)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	if h.ID() == 0 {
		binary.BigEndian.PutUint16(b[4:], uint16(s.ipID.Add(1)))
	}
	if h.Src().IsUnspecified() {
		src := r.Src.As4()
		copy(b[12:16], src[:])
	}
	h.UpdateChecksum()
	s.stats.IP.OutRequests.Add(1)
	if h.Protocol() == wire.IPProtoICMP && len(b) >= hl+wire.ICMPv4HeaderLen {
		s.countICMPOut(b[hl])
	}
	s.loop4(r, o, b) // ip_mc_output loops these too (o.Loop)
	return s.output4(r.NIC, r.NextHop, pkt)
}

// output4 hands a finished packet to the NIC (lo for local routes).
func (s *Stack) output4(n *NIC, nextHop netip.Addr, pkt *Packet) error {
	s.stats.IP.OutTransmits.Add(1)
	err := n.sendIPv4(nextHop, pkt)
	if err != nil {
		s.stats.IP.OutDiscards.Add(1)
	}
	return err
}

// fragment4 splits datagram h (which may itself be a fragment being
// forwarded) into fragments of at most mtu bytes and sends them (RFC 791
// §3.2 "Fragmentation"; options without the copied flag only in the
// first). h is copied; the caller keeps it.
func (s *Stack) fragment4(out *NIC, nextHop netip.Addr, h wire.IPv4, mtu int) error {
	st := &s.stats.IP
	hdr, payload := h.Header(), h.Payload()
	var rb [wire.IPv4MaxHeaderLen]byte
	rest, err := fragment.CopiedOptions(append(rb[:0], hdr[:wire.IPv4MinHeaderLen]...), hdr[wire.IPv4MinHeaderLen:])
	if err != nil {
		st.FragFails.Add(1)
		return ErrInvalid
	}
	var pb [64]fragment.Piece
	pieces, err := fragment.Plan(pb[:0], len(payload), mtu, len(hdr), len(rest))
	if err != nil {
		st.FragFails.Add(1)
		return ErrMsgSize
	}
	baseOff, baseMF := h.FragmentOffset(), h.MF()
	flags := binary.BigEndian.Uint16(hdr[6:]) & 0x4000 // keep DF (fragmenting only when clear)
	// Counted before sending, so a peer that has the datagram sees the
	// counters final.
	st.FragOKs.Add(1)
	st.FragCreates.Add(uint64(len(pieces)))
	var first error
	for i, p := range pieces {
		fh := hdr
		if i > 0 {
			fh = rest
		}
		fp := NewPacket(len(fh) + p.Len)
		b := fp.Bytes()
		copy(b, fh)
		copy(b[len(fh):], payload[p.Offset:p.Offset+p.Len])
		b[0] = 4<<4 | uint8(len(fh)/4)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		ff := flags | uint16((baseOff+p.Offset)/8)
		if p.More || baseMF {
			ff |= 0x2000
		}
		binary.BigEndian.PutUint16(b[6:], ff)
		wire.IPv4(b).UpdateChecksum()
		if err := s.output4(out, nextHop, fp); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// forwardIPv4 forwards a datagram not addressed to us (RFC 1812 §5.2,
// §5.3; Linux ip_forward). srrNext, when valid, is the next hop a source
// route option named (the datagram was addressed to us as a listed hop).
func (s *Stack) forwardIPv4(in *NIC, pt PacketType, h wire.IPv4, opts ipv4Opts, srrNext netip.Addr) {
	st := &s.stats.IP
	if pt != PacketHost {
		return // RFC 1812 §5.3.4: never forward link-layer broadcasts (Linux: silent drop)
	}
	if segs := splitAggregate(in, h, h.HeaderLen(), h.Protocol()); segs != nil {
		// A GSO aggregate from an offloading link: each segment takes
		// the whole path below (TTL, routes, DF against the next hop's
		// MTU, fragmentation, counters). opts holds header offsets,
		// which every segment shares.
		for _, seg := range segs {
			s.forwardIPv4(in, pt, wire.IPv4(seg), opts, srrNext)
		}
		return
	}
	dst := h.Dst()
	if srrNext.IsValid() {
		dst = srrNext
	}
	rt, ok := s.lookupRoute(route.Flow{Dst: dst, Src: h.Src(), IIF: in.index})
	if !ok {
		st.OutNoRoutes.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4NetUnreachable})
		return
	}
	switch rt.Type {
	case route.TypeBlackhole:
		st.InDiscards.Add(1)
		return
	case route.TypeUnreachable:
		st.InAddrErrors.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4HostUnreachable})
		return
	case route.TypeProhibit:
		st.InDiscards.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4CommProhibited})
		return
	}
	out, ok := s.NIC(rt.NIC)
	if !ok || out.loopback || !out.IsUp() {
		st.OutNoRoutes.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4NetUnreachable})
		return
	}
	if out.directedBroadcast(dst) {
		st.InAddrErrors.Add(1) // bc_forwarding=0: directed broadcasts are not forwarded
		return
	}
	// RFC 1812 §5.3.1: time exceeded in transit. Checked after the route
	// lookup, as Linux does (ip_route_input, then ip_forward): a packet
	// for a reject or missing route gets that route's answer, whatever
	// its TTL.
	if h.TTL() <= 1 {
		st.InHdrErrors.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4TimeExceeded, Code: wire.ICMPv4TTLExceeded})
		return
	}
	nextHop := dst
	if rt.Gateway.IsValid() {
		nextHop = rt.Gateway
	}
	if opts.strict && opts.srr != 0 && rt.Gateway.IsValid() {
		// RFC 1812 §5.2.4.1: the next strict hop must be a neighbour.
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4SourceRouteFailed})
		return
	}
	mtu := out.MTU()
	if rt.MTU > 0 && rt.MTU < mtu {
		mtu = rt.MTU
	}
	if h.TotalLen() > mtu && h.DF() {
		// RFC 1191 §4: fragmentation needed, with the next-hop MTU.
		st.FragFails.Add(1)
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable,
			Code: wire.ICMPv4FragmentationNeeded, MTU: uint16(mtu)})
		return
	}
	var outAddr netip.Addr // for Record Route, Timestamp and source routes
	if h.HeaderLen() > wire.IPv4MinHeaderLen {
		outAddr, _ = out.primaryAddress(dst)
	}

	// Redirect (RFC 1812 §5.2.7.2): the packet leaves by the interface it
	// came in on and its source is on that subnet, so the source could
	// have sent it to the next hop itself. Not for source-routed packets.
	if out == in && opts.srr == 0 && !s.opts.NoRedirects && in.onLink(h.Src()) && nextHop != h.Src() {
		s.sendICMPv4Error(in, pt, h, wire.ICMPv4Fields{Type: wire.ICMPv4Redirect,
			Code: wire.ICMPv4RedirectHost, Gateway: nextHop})
	}

	// The received bytes are not ours to change: work on a copy.
	p := NewPacketFrom(h)
	c := wire.IPv4(p.Bytes())
	c.DecrementTTL()
	changed := false
	if srrNext.IsValid() {
		// Replace the hop just used with our outgoing address and make the
		// next hop the destination (RFC 791 "Loose Source and Record Route").
		optionAt(c, opts.srr).RouteRecord(outAddr)
		b := srrNext.As4()
		copy(c[16:20], b[:])
		changed = true
	}
	if outAddr.IsValid() && recordOptions4(c.Header(), outAddr, time.Now()) {
		changed = true
	}
	if changed {
		c.UpdateChecksum()
	}
	st.ForwDatagrams.Add(1)
	if len(c) > mtu {
		s.fragment4(out, nextHop, c, mtu)
		return
	}
	s.output4(out, nextHop, p)
}

// reassemblyTimeout4 answers a datagram whose reassembly timed out after
// its first fragment arrived with ICMP time exceeded, code 1 (RFC 792,
// RFC 1122 §3.3.2; Linux ip_expire).
func (s *Stack) reassemblyTimeout4(e fragment.Expired) {
	s.stats.IP.ReasmTimeout.Add(1)
	s.stats.IP.ReasmFails.Add(1)
	if len(e.Header) < wire.IPv4MinHeaderLen {
		return
	}
	b := make([]byte, len(e.Header)+len(e.Data))
	copy(b, e.Header)
	copy(b[len(e.Header):], e.Data)
	h, err := wire.ParseIPv4Quoted(b)
	if err != nil {
		return
	}
	in, ok := s.localNIC(e.Key.Dst)
	if !ok {
		return
	}
	s.sendICMPv4Error(in, PacketHost, h, wire.ICMPv4Fields{Type: wire.ICMPv4TimeExceeded, Code: wire.ICMPv4ReassemblyExceeded})
}
