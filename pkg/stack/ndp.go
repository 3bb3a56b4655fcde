package stack

import (
	"net/netip"
	"sync"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Neighbour Discovery (RFC 4861): neighbour solicitations and
// advertisements, router solicitations, the host side of router
// advertisements and redirects. Duplicate address detection and stateless
// address autoconfiguration (RFC 4862) are in slaac.go.
//
// NDP messages are built here whole, IPv6 header included, and written to
// the link directly: NDP must pick the link-layer destination itself (a
// unicast probe goes to the cached address, an advertisement to the
// solicitor's link-layer address) and must never be fragmented, routed or
// resolved through the cache it feeds.

// Protocol constants (RFC 4861 §10, RFC 4862 §5.1, Linux defaults).
const (
	ndpHopLimit             = 255 // RFC 4861 §6.1, §7.1: proof the sender is on-link
	maxRtrSolicitationDelay = time.Second
	rtrSolicitationInterval = 4 * time.Second // RFC 4861 §10 and Linux rtr_solicit_interval
	maxRtrSolicitations     = 3
	defaultRetransTimer     = time.Second
	defaultDADTransmits     = 1 // RFC 4862 §5.1 DupAddrDetectTransmits
	// redirectLifetime bounds how long a redirected host route lives: RFC
	// 4861 §8.3 gives it no lifetime; Linux ages such routes out when unused,
	// we expire them after a fixed time so a stale redirect heals.
	redirectLifetime = 10 * time.Minute
	// raRouteMetric is the metric of default routes learned from router
	// advertisements and raPrefixMetric that of on-link prefix routes, as in
	// Linux (IP6_RT_PRIO_USER, IP6_RT_PRIO_ADDRCONF).
	raRouteMetric  = 1024
	raPrefixMetric = 256
	maxDNSEntries  = 16 // bound on remembered RDNSS servers and DNSSL domains per NIC
)

var defaultRoute6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)

// ndpState is a NIC's NDP and SLAAC state beyond the neighbour cache. Its
// mutex is a leaf: nothing is called while it is held.
type ndpState struct {
	mu     sync.Mutex
	closed bool
	dad    map[netip.Addr]*dadRun

	rsTimer *time.Timer
	rsLeft  int    // router solicitations still to send
	rsGen   uint64 // bumped to cancel a running solicitation sequence

	// autoconfOff: DAD failed for the link-local address, so the NIC forms
	// no SLAAC addresses until it goes down (Linux stops autoconf then too).
	autoconfOff  bool
	dadTransmits int // 0: defaultDADTransmits; <0: none

	retrans     time.Duration // RetransTimer from router advertisements; 0: default
	curHopLimit uint8         // Cur Hop Limit from router advertisements; 0: unset
	managed     bool          // M flag of the last router advertisement
	other       bool          // O flag of the last router advertisement
	mtu         int           // MTU option from router advertisements; 0: none
	rdnss       []dnsEntry[netip.Addr]
	dnssl       []dnsEntry[string]
	conflicts   uint64 // advertisements from others for our preferred addresses
}

type dnsEntry[T comparable] struct {
	v       T
	expires time.Time // zero: never
}

// sendNDP finishes msg (a whole NDP message with a zero checksum), puts an
// IPv6 header with hop limit 255 in front and writes it to mac; a zero mac
// means the multicast MAC for a multicast dst, else resolution through the
// neighbour cache.
func (n *NIC) sendNDP(src, dst netip.Addr, mac wire.MAC, pkt *Packet) error {
	msg := pkt.Bytes()
	wire.SetICMPv6Checksum(msg, src, dst)
	h := wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: ndpHopLimit, Src: src, Dst: dst, PayloadLen: len(msg)}
	h.Encode(pkt.Prepend(h.Len()))
	st := &n.s.stats
	st.IP6.OutRequests.Add(1)
	st.IP6.OutOctets.Add(uint64(pkt.Len()))
	st.ICMP6.OutMsgs.Add(1)
	st.ICMP6Msg.Out[msg[0]].Add(1)
	switch {
	case dst.IsMulticast():
		st.IP6.OutMcastPkts.Add(1)
		st.IP6.OutMcastOctets.Add(uint64(pkt.Len()))
		mac = wire.IPv6MulticastMAC(dst)
	case mac.IsZero():
		return n.sendIPv6(dst, pkt)
	}
	return n.writeFrame(mac, wire.EtherTypeIPv6, pkt)
}

// sendNeighborSolicit sends a neighbour solicitation for target: to its
// solicited-node group, or to unicastTo when the cache probes (RFC 4861
// §7.2.2, §7.3.3). The source is the prompting packet's if that is ours,
// else the best address of the NIC; with none usable, nothing is sent.
func (n *NIC) sendNeighborSolicit(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {
	var src netip.Addr
	if has && prompt != nil {
		if h, err := wire.ParseIPv6(prompt.Bytes()); err == nil {
			if st, ok := n.addressState(h.Src()); ok && st.usable() {
				src = h.Src()
			}
		}
	}
	if !src.IsValid() {
		a, ok := n.primaryAddress(target)
		if !ok {
			return // RFC 4861 §7.2.2: no usable source, no solicitation
		}
		src = a
	}
	dst, mac := wire.IPv6SolicitedNode(target), wire.MAC{}
	if !unicastTo.IsZero() {
		dst, mac = target, unicastTo
	}
	f := wire.NDPNeighborSolicitFields{Target: target, SourceLinkAddr: n.MAC()}
	pkt := NewPacket(f.Len())
	f.Encode(pkt.Bytes())
	n.sendNDP(src, dst, mac, pkt)
}

// sendDADSolicit sends the duplicate address detection probe for a: from
// ::, to its solicited-node group, without a link-layer address option
// (RFC 4862 §5.4.2).
func (n *NIC) sendDADSolicit(a netip.Addr) {
	f := wire.NDPNeighborSolicitFields{Target: a}
	pkt := NewPacket(f.Len())
	f.Encode(pkt.Bytes())
	n.sendNDP(netip.IPv6Unspecified(), wire.IPv6SolicitedNode(a), wire.MAC{}, pkt)
}

// sendNeighborAdvert sends an advertisement for our address target to dst
// (at mac if known).
func (n *NIC) sendNeighborAdvert(target, dst netip.Addr, mac wire.MAC, solicited bool) {
	f := wire.NDPNeighborAdvertFields{
		Router:         n.s.forwarding(true),
		Solicited:      solicited,
		Override:       true, // not an anycast or proxied address (RFC 4861 §7.2.4)
		Target:         target,
		TargetLinkAddr: n.MAC(),
	}
	pkt := NewPacket(f.Len())
	f.Encode(pkt.Bytes())
	n.sendNDP(target, dst, mac, pkt)
}

// sendRouterSolicit sends a router solicitation to all-routers from the
// link-local address with our link-layer address, or from :: without it
// when there is no usable link-local address yet (RFC 4861 §6.3.7, §4.1).
func (n *NIC) sendRouterSolicit() {
	src, ok := n.linkLocal6()
	f := wire.NDPRouterSolicitFields{}
	if ok {
		f.SourceLinkAddr = n.MAC()
	} else {
		src = netip.IPv6Unspecified()
	}
	pkt := NewPacket(f.Len())
	f.Encode(pkt.Bytes())
	n.sendNDP(src, allRouters6, wire.MAC{}, pkt)
}

// linkLocal6 returns a usable link-local address of the NIC.
func (n *NIC) linkLocal6() (netip.Addr, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, a := range n.addrs {
		if ad := a.Prefix.Addr(); ad.Is6() && ad.IsLinkLocalUnicast() && a.State.usable() {
			return ad, true
		}
	}
	return netip.Addr{}, false
}

// ndpLinkAddr walks the options of an NDP message and returns the
// link-layer address option of type typ, if any. ok is false if the options
// are malformed (RFC 4861 §4.6: a zero length discards the message).
func ndpLinkAddr(it wire.NDPOptionIter, typ uint8) (mac wire.MAC, has, ok bool) {
	for o, more := it.Next(); more; o, more = it.Next() {
		if o.Type == typ {
			if m, good := o.LinkAddr(); good {
				mac, has = m, true
			}
		}
	}
	return mac, has, it.Err() == nil
}

// handleNDP processes a received NDP message (RS 133, RA 134, NS 135,
// NA 136, redirect 137); msg is the whole ICMPv6 message, checksum
// verified by the caller, and pi.TTL the hop limit (RFC 4861 requires 255;
// the NDP code checks it).
func (s *Stack) handleNDP(pi *PacketInfo, msg []byte) {
	n := pi.NIC
	if n == nil || n.loopback {
		return
	}
	m, err := wire.ParseICMPv6(msg) // code 0, lengths and options (§6.1, §7.1, §8.1)
	if err != nil || pi.TTL != ndpHopLimit {
		s.stats.ICMP6.InErrors.Add(1)
		return
	}
	var valid bool
	switch m.Type() {
	case wire.ICMPv6NeighborSolicit:
		valid = n.handleNeighborSolicit(pi, m)
	case wire.ICMPv6NeighborAdvert:
		valid = n.handleNeighborAdvert(pi, m)
	case wire.ICMPv6RouterSolicit:
		valid = n.handleRouterSolicit(pi, m)
	case wire.ICMPv6RouterAdvert:
		valid = n.handleRouterAdvert(pi, m)
	case wire.ICMPv6Redirect:
		valid = n.handleRedirect(pi, m)
	default:
		valid = true
	}
	if !valid {
		s.stats.ICMP6.InErrors.Add(1)
	}
}

// isSolicitedNode reports whether a is a solicited-node multicast address.
func isSolicitedNode(a netip.Addr) bool {
	return a.Is6() && a == wire.IPv6SolicitedNode(a)
}

// handleNeighborSolicit answers solicitations for our addresses and
// detects duplicates of tentative ones (RFC 4861 §7.1.1, §7.2.3, §7.2.4;
// RFC 4862 §5.4.3). It reports false for an invalid message.
func (n *NIC) handleNeighborSolicit(pi *PacketInfo, m wire.ICMPv6) bool {
	ns, _ := m.NeighborSolicit()
	target := ns.Target()
	if target.IsMulticast() {
		return false
	}
	sllao, hasSLLAO, ok := ndpLinkAddr(ns.Options(), wire.NDPOptSourceLinkAddr)
	if !ok {
		return false
	}
	fromDAD := pi.Src.IsUnspecified()
	if fromDAD && (!isSolicitedNode(pi.Dst) || hasSLLAO) {
		return false // §7.1.1
	}
	if pi.Src.IsMulticast() {
		return false
	}
	st, mine := n.addressState(target)
	if !mine {
		return true // not for us (no proxy NDP)
	}
	switch {
	case st == Tentative:
		if fromDAD {
			n.dadFailed(target) // RFC 4862 §5.4.3: another node is trying the same address
		}
		return true // a unicast-sourced NS for a tentative address is ignored
	case !st.usable():
		return true
	}
	if fromDAD {
		// Defend our address: advertise to all nodes, unsolicited
		// (RFC 4861 §7.2.4).
		n.sendNeighborAdvert(target, allNodes6, wire.MAC{}, false)
		return true
	}
	var mac wire.MAC
	if hasSLLAO {
		n.ndp.Learn(pi.Src, sllao, neighbor.Create) // §7.2.3
		mac = sllao
	}
	n.sendNeighborAdvert(target, pi.Src, mac, true)
	return true
}

// handleNeighborAdvert feeds advertisements to the neighbour cache and
// detects duplicates of our tentative addresses (RFC 4861 §7.1.2, §7.2.5;
// RFC 4862 §5.4.4).
func (n *NIC) handleNeighborAdvert(pi *PacketInfo, m wire.ICMPv6) bool {
	na, _ := m.NeighborAdvert()
	target := na.Target()
	if target.IsMulticast() || (pi.Dst.IsMulticast() && na.Solicited()) {
		return false
	}
	tllao, hasTLLAO, ok := ndpLinkAddr(na.Options(), wire.NDPOptTargetLinkAddr)
	if !ok {
		return false
	}
	if st, mine := n.addressState(target); mine {
		if hasTLLAO && tllao == n.MAC() {
			return true // our own advertisement looped back
		}
		switch {
		case st == Tentative:
			n.dadFailed(target)
		case st.usable():
			// Someone else claims an address we hold; RFC 4862 §5.4.4
			// leaves what to do open. Like Linux we keep the address and
			// only note it.
			n.v6.mu.Lock()
			n.v6.conflicts++
			n.v6.mu.Unlock()
		}
		return true
	}
	var f neighbor.AdvFlags
	if na.Solicited() {
		f |= neighbor.Solicited
	}
	if na.Override() {
		f |= neighbor.Override
	}
	if na.Router() {
		f |= neighbor.Router
	}
	if !hasTLLAO {
		f |= neighbor.NoLinkAddr
	}
	cleared, _ := n.ndp.HandleAdvertisement(target, tllao, f)
	if cleared {
		// §7.2.5: a neighbour that stopped being a router leaves the
		// default router list.
		n.removeDefaultRouter(target)
	}
	return true
}

// handleRouterSolicit: hosts discard solicitations (RFC 4861 §6.2.6); a
// router records the sender's link-layer address. Sending advertisements
// is not implemented.
func (n *NIC) handleRouterSolicit(pi *PacketInfo, m wire.ICMPv6) bool {
	rs, _ := m.RouterSolicit()
	sllao, has, ok := ndpLinkAddr(rs.Options(), wire.NDPOptSourceLinkAddr)
	if !ok || (pi.Src.IsUnspecified() && has) {
		return false // §6.1.1
	}
	if has && n.s.forwarding(true) {
		n.ndp.Learn(pi.Src, sllao, neighbor.Create)
	}
	return true
}

// removeDefaultRouter deletes the default route through router on n.
func (n *NIC) removeDefaultRouter(router netip.Addr) {
	n.s.routes.Delete(route.Match{
		Dst: defaultRoute6, Gateway: router, NIC: n.index, Protocol: route.ProtoRA,
	})
}

// handleRedirect installs a host route from a redirect sent by the
// current first-hop router for its destination (RFC 4861 §8.1, §8.3).
func (n *NIC) handleRedirect(pi *PacketInfo, m wire.ICMPv6) bool {
	rd, _ := m.Redirect()
	target, dest := rd.Target(), rd.Destination()
	if !pi.Src.IsLinkLocalUnicast() || dest.IsMulticast() ||
		!(target.IsLinkLocalUnicast() || target == dest) {
		return false
	}
	tllao, hasTLLAO, ok := ndpLinkAddr(rd.Options(), wire.NDPOptTargetLinkAddr)
	if !ok {
		return false
	}
	if n.s.forwarding(true) {
		return true // routers do not act on redirects (§8.3)
	}
	rt, found := n.s.routes.Lookup(dest)
	if !found || rt.NIC != n.index || !rt.Gateway.IsValid() || rt.Gateway != pi.Src.WithZone("") {
		return false // §8.1: only the current first hop may redirect
	}
	if hasTLLAO {
		f := neighbor.Create
		if target != dest {
			f |= neighbor.IsRouter
		}
		n.ndp.Learn(target, tllao, f)
	}
	r := route.Route{
		Dst: netip.PrefixFrom(dest, 128), NIC: n.index, Protocol: route.ProtoRedirect,
		OnLink: true, Expires: time.Now().Add(redirectLifetime),
	}
	if target != dest {
		r.Gateway = target
	}
	n.s.routes.Delete(route.Match{Dst: r.Dst, NIC: n.index, Protocol: route.ProtoRedirect})
	if n.s.routes.Add(r) == nil {
		n.s.armRouteExpiry()
	}
	return true
}
