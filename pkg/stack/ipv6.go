package stack

import (
	"errors"
	"net/netip"

	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// IPv6 input, output, extension headers, fragmentation and forwarding
// (RFC 8200), as Linux's ip6_input.c, exthdrs.c, reassembly.c,
// ip6_output.c and ip6_forward do it.

// handleIPv6 processes a received IPv6 packet. pkt is never modified: the
// views handed up alias it, and forwarding works on a copy.
func (s *Stack) handleIPv6(n *NIC, pkt []byte, pt PacketType) {
	st := &s.stats.IP6
	// Linux drops frames for another host before counting them
	// (ip6_rcv_core); they are only seen in promiscuous mode.
	if pt == PacketOtherHost {
		return
	}
	st.InReceives.Add(1)
	h, err := wire.ParseIPv6(pkt)
	if err != nil {
		if errors.Is(err, wire.ErrTruncated) && len(pkt) >= wire.IPv6HeaderLen {
			st.InTruncatedPkts.Add(1)
		} else {
			st.InHdrErrors.Add(1)
		}
		return
	}
	src, dst := h.Src(), h.Dst()
	st.InOctets.Add(uint64(len(h)))
	if dst.IsMulticast() {
		st.InMcastPkts.Add(1)
		st.InMcastOctets.Add(uint64(len(h)))
	}
	// RFC 4291 §2.7: a multicast address is never a source. Loopback
	// addresses never arrive from a real link (RFC 4291 §2.5.3), nor do
	// interface-local multicast ones (§2.7); Linux counts all of these
	// as header errors.
	if src.IsMulticast() ||
		(!n.loopback && (src.IsLoopback() || dst.IsLoopback() || dst.IsInterfaceLocalMulticast())) {
		st.InHdrErrors.Add(1)
		return
	}

	off, nhField, next := wire.IPv6HeaderLen, 6, h.NextHeader()
	if next == wire.IPProtoHopByHop {
		// RFC 8200 §4.3: every node on the path examines Hop-by-Hop
		// options, so they are processed before the routing decision
		// (Linux ipv6_parse_hopopts).
		it := h.ExtHeaders()
		eh, ok := it.Next()
		if !ok {
			st.InHdrErrors.Add(1)
			return
		}
		if !s.ipv6Options(n, h, pt, eh, off) {
			return
		}
		off, nhField, next = off+len(eh.Raw), off, eh.NextHeader()
	}

	tentative := false
	switch {
	case dst.IsMulticast():
		if !n.InGroup(dst) {
			st.InDiscards.Add(1) // not a group we joined (allmulti/promisc)
			return
		}
	default:
		ln, ok := s.localNIC(dst)
		if dst.IsLinkLocalUnicast() && !n.loopback {
			// A link-local address belongs to its own link only, and
			// the same one may sit on several links (RFC 4291 §2.5.6).
			ln, ok = n, n.hasAddress(dst)
		}
		if !ok {
			s.forward6(n, h, pt)
			return
		}
		state, _ := ln.addressState(dst)
		switch {
		case state.usable():
		case state == Tentative && next == wire.IPProtoICMPv6:
			// RFC 4862 §5.4: only NS and NA may reach a tentative
			// address (handleICMPv6 lets no other type through).
			tentative = true
		default: // Duplicate, or tentative and not ICMPv6: silently
			st.InAddrErrors.Add(1)
			return
		}
	}
	s.receiveLocal6(n, h, pt, tentative, off, nhField, next, false)
}

// receiveLocal6 walks the extension headers of a packet for us from
// offset off, where a header of type next starts, named by the byte at
// nhField, and delivers the upper layer. reassembled is set after a
// Fragment header has been dealt with (only one is accepted).
func (s *Stack) receiveLocal6(n *NIC, h wire.IPv6, pt PacketType, tentative bool, off, nhField int, next uint8, reassembled bool) {
	st := &s.stats.IP6
	if next == wire.IPProtoHopByHop && off != wire.IPv6HeaderLen {
		// RFC 8200 §4.3: Hop-by-Hop only right after the IPv6 header.
		st.InUnknownProtos.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedNext, uint32(nhField))
		return
	}
	it := wire.NewIPv6ExtIter(next, h[off:])
	for {
		eh, ok := it.Next()
		if !ok {
			break
		}
		abs := off + eh.Offset
		switch eh.Type {
		case wire.IPProtoHopByHop, wire.IPProtoDestOpts:
			if !s.ipv6Options(n, h, pt, eh, abs) {
				return
			}
		case wire.IPProtoRouting:
			rh, err := wire.ParseIPv6Routing(eh.Raw)
			if err != nil {
				st.InHdrErrors.Add(1)
				return
			}
			// RFC 8200 §4.4: with no segments left, an unrecognised
			// routing header is ignored. With segments left, we are asked
			// to route on, which we do for no type: type 0 is deprecated
			// (RFC 5095 §3), the others unrecognised — Parameter Problem
			// code 0 pointing at the Routing Type.
			if rh.SegmentsLeft() != 0 {
				st.InHdrErrors.Add(1)
				s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeErroneousHeader, uint32(abs+2))
				return
			}
		case wire.IPProtoFragment:
			s.fragment6(n, h, pt, tentative, eh, abs, nhField, reassembled)
			return
		case wire.IPProtoAH:
			// No IPsec: AH is an upper layer nobody handles.
			s.deliver6(n, h, pt, tentative, wire.IPProtoAH, abs, nhField)
			return
		}
		nhField = abs
		if eh.NextHeader() == wire.IPProtoHopByHop {
			st.InUnknownProtos.Add(1)
			s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedNext, uint32(nhField))
			return
		}
	}
	if err := it.Err(); err != nil {
		st.InHdrErrors.Add(1)
		return
	}
	proto, upper := it.Upper()
	s.deliver6(n, h, pt, tentative, proto, off+upper, nhField)
}

// ipv6Options processes the options of a Hop-by-Hop or Destination
// Options header at offset abs; false means the packet is dropped.
func (s *Stack) ipv6Options(n *NIC, h wire.IPv6, pt PacketType, eh wire.IPv6ExtHeader, abs int) bool {
	st := &s.stats.IP6
	opts, err := wire.ParseIPv6Options(eh.Raw)
	if err != nil {
		st.InHdrErrors.Add(1)
		return false
	}
	hbh := eh.Type == wire.IPProtoHopByHop
	it := opts.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch {
		case o.Type == wire.IPv6OptPad1 || o.Type == wire.IPv6OptPadN:
			continue
		case hbh && o.Type == wire.IPv6OptRouterAlert:
			// RFC 2711: recognised; MLD reads it. A wrong length is
			// dropped as Linux's ipv6_hop_ra does.
			if _, ok := o.RouterAlert(); !ok {
				st.InHdrErrors.Add(1)
				return false
			}
			continue
		case hbh && o.Type == wire.IPv6OptJumboPayload:
			// RFC 2675 §3: a Jumbo Payload option with a non-zero
			// payload length (ParseIPv6 refused the zero one) is a
			// Parameter Problem code 0 pointing at the option type.
			st.InHdrErrors.Add(1)
			s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeErroneousHeader, uint32(abs+o.Offset))
			return false
		}
		// RFC 8200 §4.2: the two high bits of an unrecognised type say
		// what to do.
		switch o.Action() {
		case wire.IPv6OptionSkip:
			continue
		case wire.IPv6OptionDiscard:
		case wire.IPv6OptionDiscardICMP:
			s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedOption, uint32(abs+o.Offset))
		case wire.IPv6OptionDiscardICMPUnicast:
			if !h.Dst().IsMulticast() {
				s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedOption, uint32(abs+o.Offset))
			}
		}
		st.InHdrErrors.Add(1)
		return false
	}
	if it.Err() != nil {
		st.InHdrErrors.Add(1)
		return false
	}
	return true
}

// fragment6 handles a Fragment header at offset abs (RFC 8200 §4.5).
func (s *Stack) fragment6(n *NIC, h wire.IPv6, pt PacketType, tentative bool, eh wire.IPv6ExtHeader, abs, nhField int, reassembled bool) {
	st := &s.stats.IP6
	fh := wire.IPv6Fragment(eh.Raw)
	st.ReasmReqds.Add(1)
	if reassembled {
		// A fragment header inside a reassembled datagram: no nesting.
		st.ReasmFails.Add(1)
		st.InHdrErrors.Add(1)
		return
	}
	dataOff := abs + wire.IPv6FragmentHeaderLen
	if fh.FragmentOffset() == 0 && !fh.More() {
		// RFC 6946 §4: an atomic fragment is processed on its own, in
		// place, never mixed with fragments of the same identification.
		st.ReasmOKs.Add(1)
		s.receiveLocal6(n, h, pt, tentative, dataOff, abs, fh.NextHeader(), true)
		return
	}
	if tentative {
		st.ReasmFails.Add(1)
		return
	}
	if fh.FragmentOffset() == 0 && !headerChainComplete(fh.NextHeader(), h[dataOff:]) {
		// RFC 8200 §4.5 (RFC 7112): the first fragment must hold the
		// whole header chain, up to the upper-layer header; Parameter
		// Problem code 3, pointer 0, as Linux's ipv6frag_thdr_truncated.
		st.ReasmFails.Add(1)
		st.InHdrErrors.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeIncompleteHeaderChain, 0)
		return
	}
	src, dst := h.Src(), h.Dst()
	if src.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// Link-local addresses are per link: keep interfaces apart.
		src, dst = src.WithZone(n.name), dst.WithZone(n.name)
	}
	key := fragment.Key{Family: fragment.IPv6, Src: src, Dst: dst, ID: fh.ID()}
	d, done, err := s.reasm6.Process(key, fragment.Packet{
		Offset: fh.FragmentOffset(), More: fh.More(), Header: h[:dataOff], Data: h[dataOff:],
	})
	if err != nil {
		st.ReasmFails.Add(1)
		switch {
		case errors.Is(err, fragment.ErrUnaligned):
			// RFC 8200 §4.5: point at the Payload Length.
			st.InHdrErrors.Add(1)
			s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeErroneousHeader, 4)
		case errors.Is(err, fragment.ErrTooBig):
			// RFC 8200 §4.5: point at the Fragment Offset.
			st.InHdrErrors.Add(1)
			s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeErroneousHeader, uint32(abs+2))
		}
		return
	}
	if !done {
		return
	}
	// The reassembled packet: the first fragment's unfragmentable part
	// with the Fragment header taken out (its Next Header moves to the
	// header that named it), then the data (RFC 8200 §4.5).
	hdr := d.Header[:len(d.Header)-wire.IPv6FragmentHeaderLen]
	nextHdr := d.Header[len(d.Header)-wire.IPv6FragmentHeaderLen]
	total := len(hdr) + len(d.Data)
	if total-wire.IPv6HeaderLen > wire.IPv6MaxPayloadLen {
		st.ReasmFails.Add(1)
		return
	}
	buf := make([]byte, total)
	copy(buf, hdr)
	copy(buf[len(hdr):], d.Data)
	buf[nhField] = nextHdr
	buf[4], buf[5] = byte((total-wire.IPv6HeaderLen)>>8), byte(total-wire.IPv6HeaderLen)
	st.ReasmOKs.Add(1)
	s.receiveLocal6(n, wire.IPv6(buf), pt, false, len(hdr), nhField, nextHdr, true)
}

// headerChainComplete reports whether data, the fragmentable part of a
// first fragment starting with a header of type next, holds every
// extension header and the fixed part of a TCP, UDP or ICMPv6 header.
func headerChainComplete(next uint8, data []byte) bool {
	it := wire.NewIPv6ExtIter(next, data)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if errors.Is(it.Err(), wire.ErrTruncated) {
		return false
	}
	proto, off := it.Upper()
	need := 0
	switch proto {
	case wire.IPProtoTCP:
		need = 20
	case wire.IPProtoUDP:
		need = 8
	case wire.IPProtoICMPv6:
		need = wire.ICMPv6ErrorHeaderLen
	}
	return off+need <= len(data)
}

// deliver6 hands the upper-layer protocol at offset upper to ICMPv6, the
// raw handlers and the transport.
func (s *Stack) deliver6(n *NIC, h wire.IPv6, pt PacketType, tentative bool, proto uint8, upper, nhField int) {
	st := &s.stats.IP6
	pi := &PacketInfo{
		NIC: n, Src: h.Src(), Dst: h.Dst(), Proto: proto, TTL: h.HopLimit(),
		TOS: h.TrafficClass(), Type: pt, Network: h[:upper:upper],
	}
	payload := h[upper:]
	if proto == wire.IPProtoICMPv6 {
		st.InDelivers.Add(1)
		s.handleICMPv6(pi, h, payload, tentative)
		return
	}
	if tentative {
		st.InAddrErrors.Add(1)
		return
	}
	if proto == wire.IPProtoNoNext {
		st.InDelivers.Add(1) // RFC 8200 §4.7: nothing follows
		return
	}
	raw := s.deliverRaw(pi, payload)
	handled, known := s.deliverTransport(pi, payload)
	if !raw && !known {
		// RFC 8200 §4: an unrecognised Next Header is a Parameter
		// Problem code 1 pointing at it (Linux: only without a raw
		// socket for the protocol).
		st.InUnknownProtos.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedNext, uint32(nhField))
		return
	}
	st.InDelivers.Add(1)
	if known && !handled && !h.Dst().IsMulticast() {
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodePortUnreachable, 0)
	}
}

// forward6 forwards a packet that is not for us (RFC 8200, RFC 4443), or
// drops it when forwarding is off.
func (s *Stack) forward6(n *NIC, h wire.IPv6, pt PacketType) {
	st := &s.stats.IP6
	if !s.forwarding(true) || n.loopback {
		st.InAddrErrors.Add(1)
		return
	}
	if pt != PacketHost {
		st.InDiscards.Add(1) // Linux forwards only frames sent to us
		return
	}
	if segs := splitAggregate(n, h, wire.IPv6HeaderLen, h.NextHeader()); segs != nil {
		// A GSO aggregate from an offloading link: each segment takes
		// the whole path below, Packet Too Big included.
		for _, seg := range segs {
			s.forward6(n, wire.IPv6(seg), pt)
		}
		return
	}
	src, dst := h.Src(), h.Dst()
	if src.IsUnspecified() || dst.IsUnspecified() {
		st.InAddrErrors.Add(1)
		return
	}
	if src.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast() {
		// RFC 4291 §2.5.6: link-local packets never leave their link;
		// RFC 4443 §3.1 code 2, beyond scope of source address.
		st.InAddrErrors.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeBeyondScope, 0)
		return
	}
	rt, ok := s.lookupRoute(route.Flow{Dst: dst, Src: h.Src(), IIF: n.index})
	if !ok {
		st.InNoRoutes.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, 0)
		return
	}
	switch rt.Type {
	case route.TypeBlackhole:
		st.InDiscards.Add(1)
		return
	case route.TypeUnreachable:
		st.InNoRoutes.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, 0)
		return
	case route.TypeProhibit:
		st.InDiscards.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeAdminProhibited, 0)
		return
	}
	out, ok := s.NIC(rt.NIC)
	if !ok || out == nil {
		st.InNoRoutes.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, 0)
		return
	}
	// RFC 8200 §3, RFC 4443 §3.3: a router must not forward a packet
	// whose hop limit would reach zero.
	if h.HopLimit() <= 1 {
		st.InHdrErrors.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6TimeExceeded, wire.ICMPv6CodeHopLimitExceeded, 0)
		return
	}
	mtu := out.IPv6MTU()
	if rt.MTU > 0 && rt.MTU < mtu {
		mtu = rt.MTU
	}
	mtu = max(mtu, wire.IPv6MinMTU)
	if len(h) > mtu {
		// RFC 8200 §5: routers never fragment; RFC 4443 §3.2: tell the
		// source the MTU of the next link.
		st.InTooBigErrors.Add(1)
		st.FragFails.Add(1)
		s.icmpv6Error(n, h, pt, wire.ICMPv6PacketTooBig, 0, uint32(mtu))
		return
	}
	// Received bytes are never modified: forward a copy.
	p := NewPacketFrom(h)
	p.Bytes()[7] = h.HopLimit() - 1
	nh := dst
	if rt.Gateway.IsValid() {
		nh = rt.Gateway
	}
	st.OutForwDatagrams.Add(1)
	s.countOut6(dst, p.Len())
	out.sendIPv6(nh, p)
}

// countOut6 counts one IPv6 packet handed to a NIC.
func (s *Stack) countOut6(dst netip.Addr, n int) {
	st := &s.stats.IP6
	st.OutTransmits.Add(1)
	st.OutOctets.Add(uint64(n))
	if dst.IsMulticast() {
		st.OutMcastPkts.Add(1)
		st.OutMcastOctets.Add(uint64(n))
	}
}

// writeIPv6 prepends the IPv6 header (and a Hop-by-Hop Router Alert if
// asked) to pkt and sends it, fragmenting at the source if it exceeds the
// path MTU (RFC 8200 §4.5, §5).
func (s *Stack) writeIPv6(r *Route, pkt *Packet, o WriteOptions) error {
	st := &s.stats.IP6
	st.OutRequests.Add(1)
	if o.Proto == wire.IPProtoICMPv6 && pkt.Len() > 0 {
		s.countICMPv6Out(pkt.Bytes()[0])
	}
	hop := o.TTL
	if hop == 0 {
		hop = r.NIC.CurHopLimit() // an RA's Cur Hop Limit (RFC 4861 §6.3.4)
		if r.Dst.IsMulticast() {
			hop = 1 // RFC 3493 §5.2: IPV6_MULTICAST_HOPS defaults to 1
		}
	}
	// r.Src may be the unspecified address (DAD, MLD before an address
	// exists): the zero Addr encodes as ::.
	fields := wire.IPv6Fields{TrafficClass: o.TOS, NextHeader: o.Proto, HopLimit: hop, Src: r.Src, Dst: r.Dst}
	var hbh wire.IPv6OptionsFields
	hbhLen := 0
	if o.RouterAlert6 {
		// RFC 2711, RFC 2710 §3: MLD messages carry Router Alert 0.
		hbh = wire.IPv6OptionsFields{NextHeader: o.Proto, RouterAlert: true, RouterAlertValue: wire.IPv6RouterAlertMLD}
		hbhLen = hbh.Len()
		fields.NextHeader = wire.IPProtoHopByHop
	}
	mtu := r.MTU
	if nm := r.NIC.IPv6MTU(); mtu <= 0 || mtu > nm {
		mtu = nm // the link MTU an RA announced (RFC 4861 §6.3.4)
	}
	if p, ok := s.pmtu.get(r.Dst); ok && p < mtu && r.Kind != RouteLocal {
		mtu = p
	}
	if wire.IPv6HeaderLen+hbhLen+pkt.Len() <= mtu {
		if hbhLen > 0 {
			hbh.Encode(pkt.Prepend(hbhLen))
		}
		if pkt.Len() > wire.IPv6MaxPayloadLen {
			st.OutDiscards.Add(1)
			return ErrMsgSize
		}
		fields.PayloadLen = pkt.Len()
		fields.Encode(pkt.Prepend(wire.IPv6HeaderLen))
		s.loop6(r, o, pkt.Bytes())
		s.countOut6(r.Dst, pkt.Len())
		pkt.batch = o.Batch
		return r.NIC.sendIPv6(r.NextHop, pkt)
	}
	if o.DontFragment || mtu < wire.IPv6MinMTU || hbhLen+pkt.Len() > wire.IPv6MaxPayloadLen {
		// IPV6_DONTFRAG: the caller learns the MTU instead (RFC 3542
		// §11.2). Below 1280 IPv6 does not work at all (RFC 8200 §5).
		st.FragFails.Add(1)
		return ErrMsgSize
	}
	if o.Batch != nil {
		o.Batch.Flush() // the fragments go now, after what is held
	}
	// Source fragmentation: the unfragmentable part (header and
	// Hop-by-Hop) is repeated in every fragment, followed by a Fragment
	// header and a piece of the rest (RFC 8200 §4.5).
	data := pkt.Bytes()
	hdrLen := wire.IPv6HeaderLen + hbhLen + wire.IPv6FragmentHeaderLen
	pieces, err := fragment.Plan(nil, len(data), mtu, hdrLen, hdrLen)
	if err != nil {
		st.FragFails.Add(1)
		return ErrMsgSize
	}
	if s.loopsBack6(r, o) {
		// The looped copy is the whole datagram, unfragmented.
		full := NewPacketFrom(data)
		if hbhLen > 0 {
			hbh.Encode(full.Prepend(hbhLen))
		}
		whole := fields
		whole.PayloadLen = full.Len()
		whole.Encode(full.Prepend(wire.IPv6HeaderLen))
		s.loop6(r, o, full.Bytes())
	}
	id := uint32(s.randUint64()) // RFC 7739: unpredictable identifications
	fh := wire.IPv6FragmentFields{NextHeader: o.Proto, ID: id}
	if hbhLen > 0 {
		hbh.NextHeader = wire.IPProtoFragment
	} else {
		fields.NextHeader = wire.IPProtoFragment
	}
	// Counted before sending, so a peer that has the datagram sees the
	// counters final.
	st.FragOKs.Add(1)
	st.FragCreates.Add(uint64(len(pieces)))
	var first error
	for _, pc := range pieces {
		p := NewPacket(hdrLen - wire.IPv6HeaderLen + pc.Len)
		b := p.Bytes()
		if hbhLen > 0 {
			hbh.Encode(b)
		}
		fh.Offset, fh.More = pc.Offset, pc.More
		fh.Encode(b[hbhLen:])
		copy(b[hbhLen+wire.IPv6FragmentHeaderLen:], data[pc.Offset:pc.Offset+pc.Len])
		fields.PayloadLen = p.Len()
		fields.Encode(p.Prepend(wire.IPv6HeaderLen))
		s.countOut6(r.Dst, p.Len())
		if err := r.NIC.sendIPv6(r.NextHop, p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// reassemblyTimeout6 answers a datagram whose first fragment arrived but
// which did not complete in time with Time Exceeded code 1 (RFC 8200 §4.5).
func (s *Stack) reassemblyTimeout6(e fragment.Expired) {
	st := &s.stats.IP6
	st.ReasmTimeout.Add(1)
	st.ReasmFails.Add(1)
	var n *NIC
	if z := e.Key.Dst.Zone(); z != "" {
		n, _ = s.NICByName(z)
	} else {
		n, _ = s.localNIC(e.Key.Dst)
	}
	orig := make([]byte, 0, len(e.Header)+len(e.Data))
	orig = append(append(orig, e.Header...), e.Data...)
	s.icmpv6Error(n, orig, PacketHost, wire.ICMPv6TimeExceeded, wire.ICMPv6CodeReassemblyTimeout, 0)
}
