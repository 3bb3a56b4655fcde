package stack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// ICMP for IPv4 (RFC 792, RFC 1122 §3.2.2, RFC 1812 §4.3), counted in
// s.stats.ICMP and s.stats.ICMPMsg as Linux counts /proc/net/snmp.

// redirectTimeout is how long a route learned from a redirect lives
// (Linux keeps redirects as route exceptions that age out after
// ip_rt_gc_timeout, 300 s).
const redirectTimeout = 300 * time.Second

// icmpQuoteLimit bounds an ICMP error to 576 bytes (RFC 1812 §4.3.2.3),
// as Linux's icmp_send: the quote gets what is left after the IP and ICMP
// headers.
const icmpQuoteLimit = 576 - wire.IPv4MinHeaderLen - wire.ICMPv4HeaderLen

// countICMPIn counts a received message by type.
func (s *Stack) countICMPIn(t uint8) {
	st := &s.stats.ICMP
	s.stats.ICMPMsg.In[t].Add(1)
	switch t {
	case wire.ICMPv4DestUnreachable:
		st.InDestUnreachs.Add(1)
	case wire.ICMPv4TimeExceeded:
		st.InTimeExcds.Add(1)
	case wire.ICMPv4ParamProblem:
		st.InParmProbs.Add(1)
	case wire.ICMPv4SourceQuench:
		st.InSrcQuenchs.Add(1)
	case wire.ICMPv4Redirect:
		st.InRedirects.Add(1)
	case wire.ICMPv4Echo:
		st.InEchos.Add(1)
	case wire.ICMPv4EchoReply:
		st.InEchoReps.Add(1)
	case wire.ICMPv4Timestamp:
		st.InTimestamps.Add(1)
	case wire.ICMPv4TimestampReply:
		st.InTimestampReps.Add(1)
	case wire.ICMPv4AddressMaskRequest:
		st.InAddrMasks.Add(1)
	case wire.ICMPv4AddressMaskReply:
		st.InAddrMaskReps.Add(1)
	}
}

// countICMPOut counts a sent message by type (Linux icmp_out_count).
func (s *Stack) countICMPOut(t uint8) {
	st := &s.stats.ICMP
	st.OutMsgs.Add(1)
	s.stats.ICMPMsg.Out[t].Add(1)
	switch t {
	case wire.ICMPv4DestUnreachable:
		st.OutDestUnreachs.Add(1)
	case wire.ICMPv4TimeExceeded:
		st.OutTimeExcds.Add(1)
	case wire.ICMPv4ParamProblem:
		st.OutParmProbs.Add(1)
	case wire.ICMPv4SourceQuench:
		st.OutSrcQuenchs.Add(1)
	case wire.ICMPv4Redirect:
		st.OutRedirects.Add(1)
	case wire.ICMPv4Echo:
		st.OutEchos.Add(1)
	case wire.ICMPv4EchoReply:
		st.OutEchoReps.Add(1)
	case wire.ICMPv4Timestamp:
		st.OutTimestamps.Add(1)
	case wire.ICMPv4TimestampReply:
		st.OutTimestampReps.Add(1)
	case wire.ICMPv4AddressMaskRequest:
		st.OutAddrMasks.Add(1)
	case wire.ICMPv4AddressMaskReply:
		st.OutAddrMaskReps.Add(1)
	}
}

// handleICMPv4 processes an ICMP message addressed to us (h is the whole
// datagram, reassembled if it was fragmented). Raw handlers get it
// afterwards from deliverIPv4.
func (s *Stack) handleICMPv4(pi *PacketInfo, h wire.IPv4) {
	st := &s.stats.ICMP
	st.InMsgs.Add(1)
	m, err := wire.ParseICMPv4(h.Payload())
	if err != nil {
		st.InErrors.Add(1)
		return
	}
	if !m.ChecksumValid() {
		st.InCsumErrors.Add(1)
		st.InErrors.Add(1)
		return
	}
	s.countICMPIn(m.Type())
	if m.Type() > wire.ICMPv4AddressMaskReply {
		st.InErrors.Add(1) // Linux icmp_rcv: beyond NR_ICMP_TYPES
		return
	}
	if pi.Broadcast || pi.Dst.IsMulticast() {
		// Linux icmp_rcv: to a broadcast or multicast address only echo,
		// timestamp and address mask messages are acceptable, and echo and
		// timestamp are ignored (icmp_echo_ignore_broadcasts=1, RFC 1122
		// §3.2.2.6 allows either).
		switch m.Type() {
		case wire.ICMPv4AddressMaskRequest, wire.ICMPv4AddressMaskReply:
		default:
			st.InErrors.Add(1)
		}
		return
	}
	switch m.Type() {
	case wire.ICMPv4Echo:
		s.icmpv4Echo(pi, h, m)
	case wire.ICMPv4Timestamp:
		s.icmpv4Timestamp(pi, h, m)
	case wire.ICMPv4DestUnreachable, wire.ICMPv4SourceQuench, wire.ICMPv4TimeExceeded,
		wire.ICMPv4ParamProblem, wire.ICMPv4Redirect:
		s.icmpv4ErrorIn(pi, m)
	}
}

// echoOptions4 builds the options of a reply from those of the request,
// as Linux's ip_options_echo: Record Route and Timestamp are returned with
// our entry as the receiving hop added (writeIPv4 adds the entry of the
// reply's sender), so `ping -R` sees the whole round trip (RFC 791, RFC
// 1122 §3.2.2.6). Source routes and Router Alert are not echoed.
func echoOptions4(dst []byte, req wire.IPv4, us netip.Addr, now time.Time) []byte {
	it := req.OptionIter()
	for {
		o, ok := it.Next()
		if !ok {
			return dst
		}
		switch o.Type() {
		case wire.IPv4OptRecordRoute:
			start := len(dst)
			dst = append(dst, o...)
			wire.IPv4Option(dst[start:]).RouteRecord(us)
		case wire.IPv4OptTimestamp:
			start := len(dst)
			dst = append(dst, o...)
			wire.IPv4Option(dst[start:]).TimestampRecord(us, ipv4Timestamp(now))
		}
	}
}

// icmpv4Echo answers an echo request with a reply carrying the same
// identifier, sequence number and data (RFC 792), from the address it was
// sent to (RFC 1122 §3.2.2.6).
func (s *Stack) icmpv4Echo(pi *PacketInfo, h wire.IPv4, m wire.ICMPv4) {
	var ob [wire.IPv4MaxOptionLen]byte
	opts := echoOptions4(ob[:0], h, pi.Dst, time.Now())
	s.icmpv4Reply(pi, h, opts, wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, Ident: m.Ident(), Seq: m.Seq()}, m.Data())
}

// icmpv4Timestamp answers a timestamp request (RFC 792): originate copied,
// receive and transmit set to now.
func (s *Stack) icmpv4Timestamp(pi *PacketInfo, h wire.IPv4, m wire.ICMPv4) {
	d := m.Data()
	if len(d) < 12 {
		s.stats.ICMP.InErrors.Add(1)
		return
	}
	var out [12]byte
	copy(out[:4], d[:4])
	ts := ipv4Timestamp(time.Now())
	binary.BigEndian.PutUint32(out[4:], ts)
	binary.BigEndian.PutUint32(out[8:], ts)
	s.icmpv4Reply(pi, h, nil, wire.ICMPv4Fields{Type: wire.ICMPv4TimestampReply, Ident: m.Ident(), Seq: m.Seq()}, out[:])
}

// icmpv4Reply sends a query reply back to the request's source.
func (s *Stack) icmpv4Reply(pi *PacketInfo, h wire.IPv4, opts []byte, f wire.ICMPv4Fields, data []byte) {
	r, err := s.FindRoute(0, pi.Dst, pi.Src)
	if err != nil {
		s.stats.ICMP.OutErrors.Add(1)
		return
	}
	p := NewPacket(wire.ICMPv4HeaderLen + len(data))
	b := p.Bytes()
	copy(b[wire.ICMPv4HeaderLen:], data)
	f.PayloadLen = len(data)
	f.Encode(b)
	s.countICMPOut(f.Type)
	if err := s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoICMP, TOS: h.TOS(), IPv4Options: opts}); err != nil {
		s.stats.ICMP.OutErrors.Add(1)
	}
}

// pmtuPlateaus are RFC 1191 §7's plateau table, for routers that send
// fragmentation needed without a next-hop MTU.
var pmtuPlateaus = [...]int{32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68}

// plateauBelow returns the largest plateau below length.
func plateauBelow(length int) int {
	for _, p := range pmtuPlateaus {
		if p < length {
			return p
		}
	}
	return wire.IPv4MinMTU
}

// icmpv4ErrorIn handles an error message about a datagram we sent:
// path MTU (RFC 1191), redirects (RFC 1122 §3.2.2.2), and delivery to the
// transport of the quoted datagram (RFC 1122 §3.2.2.1).
func (s *Stack) icmpv4ErrorIn(pi *PacketInfo, m wire.ICMPv4) {
	q, err := wire.ParseIPv4Quoted(m.Original())
	if err != nil {
		s.stats.ICMP.InErrors.Add(1)
		return
	}
	if q.Dst() == broadcast4 {
		return // icmp_ignore_bogus_error_responses: nobody answers broadcasts
	}
	switch m.Type() {
	case wire.ICMPv4SourceQuench:
		return // RFC 6633: ignored
	case wire.ICMPv4Redirect:
		s.icmpv4Redirect(pi, m, q)
		return
	}
	e := &ICMPError{NIC: pi.NIC, From: pi.Src, Type: m.Type(), Code: m.Code(),
		Src: q.Src(), Dst: q.Dst(), Proto: q.Protocol(), Payload: q.Payload(), Quoted: q}
	switch {
	case m.Type() == wire.ICMPv4DestUnreachable && m.Code() == wire.ICMPv4FragmentationNeeded:
		mtu := int(m.NextHopMTU())
		if mtu == 0 {
			mtu = plateauBelow(q.TotalLen())
		}
		// Linux raises an absurdly small MTU to min_pmtu (552).
		e.MTU = s.pmtu.update(q.Dst(), max(mtu, minPMTU4))
	case m.Type() == wire.ICMPv4ParamProblem:
		e.Pointer = int(m.Pointer())
	}
	if q.FragmentOffset() != 0 || len(e.Payload) < 8 {
		return // RFC 792: the quote must hold the first 8 transport bytes
	}
	s.deliverError(e)
}

// icmpv4Redirect installs a host route through the new gateway when the
// redirect is believable (RFC 1122 §3.2.2.2): it comes from the current
// first hop for the destination, and the new gateway is on the link.
// Network redirects are treated as host redirects (RFC 1122, RFC 1812
// §5.2.7.2).
func (s *Stack) icmpv4Redirect(pi *PacketInfo, m wire.ICMPv4, q wire.IPv4) {
	dst, gw := q.Dst(), m.Gateway()
	if m.Code() > wire.ICMPv4RedirectHostTOS || !gw.IsValid() || gw.IsUnspecified() || gw.IsMulticast() ||
		gw == broadcast4 || pi.NIC.directedBroadcast(gw) || s.IsLocal(gw) || !pi.NIC.onLink(gw) {
		return
	}
	cur, ok := s.routes.Lookup(dst)
	if !ok || cur.Type.Reject() || cur.Gateway != pi.Src || cur.NIC != pi.NIC.index || gw == cur.Gateway {
		return
	}
	err := s.routes.Replace(route.Route{Dst: netip.PrefixFrom(dst, 32), Gateway: gw, NIC: pi.NIC.index,
		Protocol: route.ProtoRedirect, Expires: time.Now().Add(redirectTimeout)})
	if err == nil {
		s.armRouteExpiry()
	}
}

// icmpErrorRateLimited reports the types Linux's icmp_ratemask limits
// (destination unreachable, source quench, time exceeded, parameter
// problem), except fragmentation needed, which path MTU discovery needs
// (icmpv4_mask_allow). Redirects are limited here too, in place of Linux's
// separate redirect backoff.
func icmpErrorRateLimited(typ, code uint8) bool {
	switch typ {
	case wire.ICMPv4DestUnreachable:
		return code != wire.ICMPv4FragmentationNeeded
	case wire.ICMPv4SourceQuench, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem, wire.ICMPv4Redirect:
		return true
	}
	return false
}

// icmpRateLimited reports whether the ICMP or ICMPv6 error to dst is over
// the rate limits, and counts it if so: in OutRateLimitGlobal of the
// "Icmp:" MIB for either family, as Linux does (there is no ICMPv6 one),
// and in host, the family's OutRateLimitHost.
func (s *Stack) icmpRateLimited(dst netip.Addr, host *atomic.Uint64) bool {
	switch s.icmpLimit.allow(dst) {
	case limitGlobal:
		s.stats.ICMP.OutRateLimitGlobal.Add(1)
		return true
	case limitHost:
		host.Add(1)
		return true
	}
	return false
}

// icmpv4ErrorAllowed applies RFC 1122 §3.2.2 and RFC 1812 §4.3.2.7: no
// error about an ICMP error (or unknown ICMP type), a fragment other than
// the first, a datagram sent to a broadcast or multicast address (IP or
// link layer), or one whose source does not name a single host.
func (s *Stack) icmpv4ErrorAllowed(in *NIC, pt PacketType, orig []byte) bool {
	if len(orig) < wire.IPv4MinHeaderLen || orig[0]>>4 != 4 {
		return false
	}
	hl := int(orig[0]&0x0f) * 4
	if hl < wire.IPv4MinHeaderLen || hl > len(orig) {
		return false
	}
	h := wire.IPv4(orig)
	if pt != PacketHost || h.FragmentOffset() != 0 {
		return false
	}
	src, dst := h.Src(), h.Dst()
	sb := src.As4()
	if src.IsUnspecified() || sb[0] == 0 || src == broadcast4 || src.IsMulticast() || sb[0] >= 240 {
		return false
	}
	if dst == broadcast4 || dst.IsMulticast() || (in != nil && (in.directedBroadcast(dst) || in.directedBroadcast(src))) {
		return false
	}
	if h.Protocol() == wire.IPProtoICMP {
		if len(orig) <= hl {
			return false
		}
		t := orig[hl]
		if t > wire.ICMPv4AddressMaskReply || wire.ICMPv4IsError(t) {
			return false
		}
	}
	return true
}

// sendICMPv4Error sends an ICMP error about orig (the offending datagram
// from its IP header on) received on in. f gives the type, code and the
// type's field (pointer, MTU, gateway).
//
// Source address: our address the datagram was sent to, if it was for
// us; otherwise the source the routing table picks for the reply, as
// Linux with icmp_errors_use_inbound_ifaddr=0. The quote is as much of
// the datagram as fits in 576 bytes (RFC 1812 §4.3.2.3, Linux icmp_send).
func (s *Stack) sendICMPv4Error(in *NIC, pt PacketType, orig []byte, f wire.ICMPv4Fields) {
	if !s.icmpv4ErrorAllowed(in, pt, orig) {
		return
	}
	h := wire.IPv4(orig)
	if icmpErrorRateLimited(f.Type, f.Code) && s.icmpRateLimited(h.Src(), &s.stats.ICMP.OutRateLimitHost) {
		return
	}
	var src netip.Addr
	if s.IsLocal(h.Dst()) {
		src = h.Dst()
	}
	r, err := s.FindRoute(0, src, h.Src())
	if err != nil {
		return
	}
	quote := orig[:min(len(orig), icmpQuoteLimit)]
	p := NewPacket(wire.ICMPv4HeaderLen + len(quote))
	b := p.Bytes()
	copy(b[wire.ICMPv4HeaderLen:], quote)
	f.PayloadLen = len(quote)
	f.Encode(b)
	s.countICMPOut(f.Type)
	// Linux icmp_send: the original TOS with precedence "internetwork
	// control" (RFC 1812 §4.3.2.5).
	tos := h.TOS()&0x1e | 0xc0
	if err := s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoICMP, TOS: tos}); err != nil {
		s.stats.ICMP.OutErrors.Add(1)
	}
}

// icmpv4HostUnreachable answers an IPv4 packet that could not be
// delivered to its next hop (ARP failed): host unreachable (RFC 1122
// §2.3.2.2, RFC 1812 §5.2.7.1), as Linux's ipv4_link_failure.
func (s *Stack) icmpv4HostUnreachable(n *NIC, ipPacket []byte) {
	h, err := wire.ParseIPv4Quoted(ipPacket)
	if err != nil {
		return
	}
	s.sendICMPv4Error(n, PacketHost, h, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4HostUnreachable})
}
