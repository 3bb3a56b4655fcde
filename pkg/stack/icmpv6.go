package stack

import (
	"net/netip"
	"sync/atomic"

	"github.com/stackbox/stackbox/pkg/wire"
)

// ICMPv6 (RFC 4443): echo, errors received and sent, and the dispatch of
// NDP and MLD messages to their handlers.

// handleICMPv6 processes an ICMPv6 message for us. h is the whole packet
// (for the addresses), msg the ICMPv6 message. A packet to a tentative
// address only feeds DAD (RFC 4862 §5.4).
func (s *Stack) handleICMPv6(pi *PacketInfo, h wire.IPv6, msg []byte, tentative bool) {
	st := &s.stats.ICMP6
	if len(msg) < wire.ICMPv6HeaderLen {
		st.InErrors.Add(1)
		return
	}
	// RFC 4443 §2.3: the checksum covers the pseudo-header. Linux
	// counts InMsgs and the type only for messages that pass it.
	if !wire.ICMPv6(msg).ChecksumValid(pi.Src, pi.Dst) {
		st.InCsumErrors.Add(1)
		st.InErrors.Add(1)
		return
	}
	t := msg[0]
	st.InMsgs.Add(1)
	s.stats.ICMP6Msg.In[t].Add(1)
	if c := s.icmp6TypeCounter(true, t); c != nil {
		c.Add(1)
	}
	m, err := wire.ParseICMPv6(msg)
	if err != nil {
		st.InErrors.Add(1) // too short for its type
		return
	}
	if tentative {
		if t == wire.ICMPv6NeighborSolicit || t == wire.ICMPv6NeighborAdvert {
			s.handleNDP(pi, m)
		}
		return
	}
	switch t {
	case wire.ICMPv6EchoRequest:
		s.icmpv6Echo(pi, m)
	case wire.ICMPv6DstUnreachable, wire.ICMPv6PacketTooBig, wire.ICMPv6TimeExceeded, wire.ICMPv6ParamProblem:
		s.icmpv6ErrorReceived(pi, m)
	case wire.ICMPv6MLDQuery, wire.ICMPv6MLDReport, wire.ICMPv6MLDDone, wire.ICMPv6MLDv2Report:
		s.handleMLD(pi, m)
	case wire.ICMPv6RouterSolicit, wire.ICMPv6RouterAdvert, wire.ICMPv6NeighborSolicit,
		wire.ICMPv6NeighborAdvert, wire.ICMPv6Redirect:
		s.handleNDP(pi, m)
	}
	// Raw ICMPv6 sockets see every message (RFC 3542 §3.1), after the
	// stack's own answer.
	s.deliverRaw(pi, msg)
}

// icmpv6Echo answers an echo request (RFC 4443 §4.2), also one sent to a
// multicast group, as Linux does (icmp_echo_ignore_multicast is 0): the
// reply then comes from our address on that NIC.
func (s *Stack) icmpv6Echo(pi *PacketInfo, m wire.ICMPv6) {
	if pi.Src.IsUnspecified() {
		return // nobody to answer (RFC 4443 §2.2)
	}
	var src netip.Addr
	if !pi.Dst.IsMulticast() {
		src = pi.Dst
	}
	r, err := s.routeBack6(pi.NIC, src, pi.Src)
	if err != nil {
		return
	}
	p := NewPacketFrom(m)
	b := p.Bytes()
	b[0] = wire.ICMPv6EchoReply
	wire.SetICMPv6Checksum(b, r.Src, r.Dst)
	// Linux reflects the traffic class of the request.
	s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoICMPv6, TOS: pi.TOS})
}

// routeBack6 finds the route for answering a packet that arrived on n
// from dst: bound to n for a link-local peer; src, if valid, must be ours.
func (s *Stack) routeBack6(n *NIC, src, dst netip.Addr) (Route, error) {
	nic := 0
	if n != nil && (dst.IsLinkLocalUnicast() || src.IsLinkLocalUnicast()) && !n.loopback {
		nic = n.index
	}
	if src.IsValid() && !s.IsLocal(src) {
		src = netip.Addr{}
	}
	if !src.IsValid() && n != nil && !n.loopback {
		// The incoming NIC's address, unless it is link-local and the
		// peer is not: then the stack picks one of wide enough scope.
		if a, ok := n.primaryAddress(dst); ok && (!a.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast()) {
			src = a
		}
	}
	r, err := s.FindRoute(nic, src, dst)
	if err != nil {
		s.stats.IP6.OutNoRoutes.Add(1)
	}
	return r, err
}

// icmpv6ErrorReceived hands an error about one of our packets to the
// transport that sent it, and learns path MTUs from Packet Too Big.
func (s *Stack) icmpv6ErrorReceived(pi *PacketInfo, m wire.ICMPv6) {
	q, err := wire.ParseIPv6Quoted(m.Original())
	if err != nil {
		s.stats.ICMP6.InErrors.Add(1)
		return
	}
	e := &ICMPError{NIC: pi.NIC, From: pi.Src, Type: m.Type(), Code: m.Code(), Src: q.Src(), Dst: q.Dst(), Quoted: q}
	switch m.Type() {
	case wire.ICMPv6PacketTooBig:
		// RFC 8201 §4: never below the IPv6 minimum MTU; a smaller
		// value still lowers the path MTU to 1280.
		mtu := max(int(m.MTU()), wire.IPv6MinMTU)
		e.MTU = mtu
		// Only about a packet we sent (RFC 8201 §5.2: the quoted packet
		// must identify a flow of ours).
		if s.IsLocal(q.Src()) {
			e.MTU = s.pmtu.update(q.Dst(), mtu)
		}
	case wire.ICMPv6ParamProblem:
		e.Pointer = int(m.Pointer())
	}
	// Find the upper-layer header of the quoted packet; fragment data
	// (a non-zero offset) has none.
	it := q.ExtHeaders()
	for eh, ok := it.Next(); ok; eh, ok = it.Next() {
		if eh.Type == wire.IPProtoFragment && wire.IPv6Fragment(eh.Raw).FragmentOffset() != 0 {
			return
		}
	}
	if it.Err() != nil {
		return
	}
	proto, off := it.Upper()
	e.Proto = proto
	e.Payload = q.Payload()[off:]
	s.deliverError(e)
}

// sendICMPv6Error sends an ICMPv6 error about orig, a packet received on
// n (or one we could not deliver), subject to RFC 4443 §2.4 (e) and the
// rate limit.
func (s *Stack) sendICMPv6Error(n *NIC, orig []byte, typ, code uint8, param uint32) {
	s.icmpv6Error(n, orig, PacketHost, typ, code, param)
}

// icmpv6AddressUnreachable answers a packet whose next hop did not
// resolve (RFC 4861 §7.2.2: address unreachable, code 3).
func (s *Stack) icmpv6AddressUnreachable(n *NIC, ipPacket []byte) {
	s.stats.IP6.OutDiscards.Add(1)
	s.icmpv6Error(n, ipPacket, PacketHost, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeAddrUnreachable, 0)
}

// icmpv6Error is sendICMPv6Error with the link-layer class of the
// invoking packet.
func (s *Stack) icmpv6Error(n *NIC, orig []byte, pt PacketType, typ, code uint8, param uint32) {
	q, err := wire.ParseIPv6Quoted(orig)
	if err != nil {
		return
	}
	src, dst := q.Src(), q.Dst()
	// RFC 4443 §2.4 (e): no error to a multicast destination or a
	// link-layer multicast/broadcast, except Packet Too Big and Parameter
	// Problem code 2 (unrecognised option, RFC 8200 §4.2); none about a
	// packet from :: or a multicast source.
	exempt := typ == wire.ICMPv6PacketTooBig ||
		(typ == wire.ICMPv6ParamProblem && code == wire.ICMPv6CodeUnrecognizedOption)
	if !exempt && (dst.IsMulticast() || pt == PacketMulticast || pt == PacketBroadcast) {
		return
	}
	if src.IsUnspecified() || src.IsMulticast() {
		return
	}
	if icmpv6IsErrorOrRedirect(q) {
		return // RFC 4443 §2.4 (e.1, e.2)
	}
	// Linux's default icmpv6_ratemask (0-1,3-127) limits every error but
	// Packet Too Big, which PMTU discovery cannot do without.
	if typ != wire.ICMPv6PacketTooBig && s.icmpRateLimited(src, &s.stats.ICMP6.OutRateLimitHost) {
		return
	}
	// The source: the invoking packet's destination when it is one of
	// our unicast addresses, else an address of the incoming NIC.
	var from netip.Addr
	if !dst.IsMulticast() && s.IsLocal(dst) {
		from = dst
	}
	r, err := s.routeBack6(n, from, src)
	if err != nil {
		s.stats.ICMP6.OutErrors.Add(1)
		return
	}
	// RFC 4443 §2.4 (c): quote as much as fits in the minimum MTU.
	qlen := min(len(orig), wire.ICMPv6ErrorMaxLen-wire.ICMPv6ErrorHeaderLen)
	f := wire.ICMPv6Fields{Type: typ, Code: code, Rest: param, PayloadLen: qlen}
	p := NewPacket(wire.ICMPv6ErrorHeaderLen + qlen)
	b := p.Bytes()
	f.Encode(b)
	copy(b[wire.ICMPv6ErrorHeaderLen:], orig[:qlen])
	f.SetChecksum(b, r.Src, r.Dst)
	if err := s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoICMPv6}); err != nil {
		s.stats.ICMP6.OutErrors.Add(1)
	}
}

// icmpv6IsErrorOrRedirect reports whether the quoted packet q is an
// ICMPv6 error or redirect; a packet whose ICMPv6 type cannot be read
// counts as one, as in Linux's is_ineligible.
func icmpv6IsErrorOrRedirect(q wire.IPv6) bool {
	it := q.ExtHeaders()
	for eh, ok := it.Next(); ok; eh, ok = it.Next() {
		if eh.Type == wire.IPProtoFragment && wire.IPv6Fragment(eh.Raw).FragmentOffset() != 0 {
			return false // a later fragment: no ICMPv6 header to look at
		}
	}
	if it.Err() != nil {
		return false
	}
	proto, off := it.Upper()
	if proto != wire.IPProtoICMPv6 {
		return false
	}
	pl := q.Payload()
	if off >= len(pl) {
		return true
	}
	t := pl[off]
	return t < 128 || t == wire.ICMPv6Redirect
}

// countICMPv6Out counts an outgoing ICMPv6 message of type t, whoever
// sends it (WritePacket with Proto 58 calls it once per message).
func (s *Stack) countICMPv6Out(t uint8) {
	st := &s.stats.ICMP6
	st.OutMsgs.Add(1)
	s.stats.ICMP6Msg.Out[t].Add(1)
	if c := s.icmp6TypeCounter(false, t); c != nil {
		c.Add(1)
	}
}

// icmp6TypeCounter returns the named Icmp6In…/Icmp6Out… counter of type
// t, if Linux has one.
func (s *Stack) icmp6TypeCounter(in bool, t uint8) *atomic.Uint64 {
	st := &s.stats.ICMP6
	type pair struct{ in, out *atomic.Uint64 }
	var p pair
	switch t {
	case wire.ICMPv6DstUnreachable:
		p = pair{&st.InDestUnreachs, &st.OutDestUnreachs}
	case wire.ICMPv6PacketTooBig:
		p = pair{&st.InPktTooBigs, &st.OutPktTooBigs}
	case wire.ICMPv6TimeExceeded:
		p = pair{&st.InTimeExcds, &st.OutTimeExcds}
	case wire.ICMPv6ParamProblem:
		p = pair{&st.InParmProblems, &st.OutParmProblems}
	case wire.ICMPv6EchoRequest:
		p = pair{&st.InEchos, &st.OutEchos}
	case wire.ICMPv6EchoReply:
		p = pair{&st.InEchoReplies, &st.OutEchoReplies}
	case wire.ICMPv6MLDQuery:
		p = pair{&st.InGroupMembQueries, &st.OutGroupMembQueries}
	case wire.ICMPv6MLDReport:
		p = pair{&st.InGroupMembResponses, &st.OutGroupMembResponses}
	case wire.ICMPv6MLDDone:
		p = pair{&st.InGroupMembReductions, &st.OutGroupMembReductions}
	case wire.ICMPv6RouterSolicit:
		p = pair{&st.InRouterSolicits, &st.OutRouterSolicits}
	case wire.ICMPv6RouterAdvert:
		p = pair{&st.InRouterAdvertisements, &st.OutRouterAdvertisements}
	case wire.ICMPv6NeighborSolicit:
		p = pair{&st.InNeighborSolicits, &st.OutNeighborSolicits}
	case wire.ICMPv6NeighborAdvert:
		p = pair{&st.InNeighborAdvertisements, &st.OutNeighborAdvertisements}
	case wire.ICMPv6Redirect:
		p = pair{&st.InRedirects, &st.OutRedirects}
	case wire.ICMPv6MLDv2Report:
		p = pair{&st.InMLDv2Reports, &st.OutMLDv2Reports}
	default:
		return nil
	}
	if in {
		return p.in
	}
	return p.out
}
