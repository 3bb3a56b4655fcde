package stack

import (
	"net/netip"
	"slices"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// IPv6 stateless address autoconfiguration (RFC 4862): the link-local
// address, duplicate address detection, router solicitation, and what a
// host learns from router advertisements (RFC 4861 §6.3.4): default
// routers, on-link prefixes, autonomous addresses, link parameters and the
// DNS options of RFC 8106.

// dadRun is one address's running duplicate address detection.
type dadRun struct {
	timer *time.Timer
	left  int // solicitations still to send
}

// infiniteLifetime is the all-ones lifetime of RFC 4861 §4.6.2.
const infiniteLifetime = 0xffffffff

// twoHours is the floor of RFC 4862 §5.5.3 (e) for valid lifetimes that an
// unauthenticated advertisement may shorten.
const twoHours = 2 * time.Hour

// eui64 returns the modified EUI-64 interface identifier of mac (RFC 4291
// Appendix A): the universal/local bit flipped and ff:fe in the middle.
func eui64(mac wire.MAC) [8]byte {
	return [8]byte{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
}

// slaacAddr returns the address made of the first 64 bits of prefix and
// the NIC's interface identifier.
func slaacAddr(prefix netip.Addr, mac wire.MAC) netip.Addr {
	b := prefix.As16()
	id := eui64(mac)
	copy(b[8:], id[:])
	return netip.AddrFrom16(b)
}

// LinkLocalAddress returns the EUI-64 link-local address a NIC with
// hardware address mac forms (RFC 4862 §5.3, RFC 4291 Appendix A).
func LinkLocalAddress(mac wire.MAC) netip.Addr {
	return slaacAddr(netip.MustParseAddr("fe80::"), mac)
}

// SetDADTransmits sets DupAddrDetectTransmits for the NIC (RFC 4862 §5.1,
// Linux dad_transmits): how many solicitations DAD sends; 0 turns DAD off
// for addresses added later. The default is 1.
func (n *NIC) SetDADTransmits(k int) {
	if k <= 0 {
		k = -1
	}
	n.v6.mu.Lock()
	n.v6.dadTransmits = k
	n.v6.mu.Unlock()
}

func (v *ndpState) retransLocked() time.Duration {
	if v.retrans > 0 {
		return v.retrans
	}
	return defaultRetransTimer
}

// address6 returns a copy of our address a.
func (n *NIC) address6(a netip.Addr) (Address, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if e := n.findAddressLocked(a); e != nil {
		return e.Address, true
	}
	return Address{}, false
}

// addressAdded6 starts DAD for a new tentative address on an up NIC, or
// router solicitation when a usable link-local address appears.
func (n *NIC) addressAdded6(a Address, up bool) {
	if !up || n.loopback {
		return
	}
	switch {
	case a.State == Tentative:
		n.startDAD(a.Prefix.Addr())
	case a.State.usable() && a.Prefix.Addr().IsLinkLocalUnicast():
		n.startRouterSolicitation(true)
	}
}

func (n *NIC) addressRemoved6(a Address) {
	n.v6.mu.Lock()
	if r := n.v6.dad[a.Prefix.Addr()]; r != nil {
		r.timer.Stop()
		delete(n.v6.dad, a.Prefix.Addr())
	}
	n.v6.mu.Unlock()
}

// linkUp6 forms the link-local address (unless autoconfiguration is off),
// runs DAD for tentative addresses and solicits routers.
func (n *NIC) linkUp6(addrs []Address) {
	if n.loopback {
		return
	}
	n.mu.RLock()
	auto, mac, dad := !n.noAutoconf, n.mac, !n.noDAD
	n.mu.RUnlock()
	hasLL, usableLL := false, false
	for _, a := range addrs {
		ad := a.Prefix.Addr()
		if !ad.Is6() {
			continue
		}
		if a.State.usable() && dad && !a.NoDAD {
			// RFC 4862 §5.4: DAD runs again whenever the interface is
			// (re)initialised, as Linux does on link up.
			n.setAddressState(ad, Tentative)
			a.State = Tentative
		}
		if ad.IsLinkLocalUnicast() {
			hasLL = true
			usableLL = usableLL || a.State.usable()
		}
		if a.State == Tentative {
			n.startDAD(ad)
		}
	}
	if !hasLL && auto {
		// RFC 4862 §5.3; AddAddress calls addressAdded6, which runs DAD and
		// then solicits routers.
		n.AddAddress(Address{Prefix: netip.PrefixFrom(LinkLocalAddress(mac), 64), Origin: OriginLinkLocal})
		return
	}
	if usableLL {
		n.startRouterSolicitation(true)
	}
}

// linkDown6 stops DAD and router solicitation and forgets what router
// advertisements configured on the NIC's routes.
func (n *NIC) linkDown6() {
	if n.loopback {
		return
	}
	n.stopNDPTimers(false)
	for _, r := range n.s.routes.Routes() {
		if r.NIC == n.index && (r.Protocol == route.ProtoRA || r.Protocol == route.ProtoRedirect) {
			n.s.routes.Delete(route.Match{Dst: r.Dst, Gateway: r.Gateway, NIC: r.NIC, Protocol: r.Protocol, Metric: r.Metric, MetricSet: true})
		}
	}
}

func (n *NIC) closeNDP() { n.stopNDPTimers(true) }

func (n *NIC) stopNDPTimers(closing bool) {
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	if closing {
		n.v6.closed = true
	}
	for a, r := range n.v6.dad {
		r.timer.Stop()
		delete(n.v6.dad, a)
	}
	n.stopRSLocked()
	n.v6.autoconfOff = false
}

func (n *NIC) stopRSLocked() {
	n.v6.rsGen++
	n.v6.rsLeft = 0
	if n.v6.rsTimer != nil {
		n.v6.rsTimer.Stop()
		n.v6.rsTimer = nil
	}
}

// startDAD runs duplicate address detection for tentative address a (RFC
// 4862 §5.4): after a random delay of up to MAX_RTR_SOLICITATION_DELAY
// (§5.4.2), DupAddrDetectTransmits solicitations RetransTimer apart; if
// no conflict arrives by RetransTimer after the last one, the address
// becomes preferred.
func (n *NIC) startDAD(a netip.Addr) {
	delay := n.s.randDuration(maxRtrSolicitationDelay)
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	if n.v6.closed {
		return
	}
	if n.v6.dad == nil {
		n.v6.dad = make(map[netip.Addr]*dadRun)
	}
	if old := n.v6.dad[a]; old != nil {
		old.timer.Stop()
	}
	k := n.v6.dadTransmits
	switch {
	case k == 0:
		k = defaultDADTransmits
	case k < 0:
		k = 0
	}
	r := &dadRun{left: k}
	n.v6.dad[a] = r
	if k == 0 {
		delay = 0
	}
	r.timer = time.AfterFunc(delay, func() { n.dadStep(a, r) })
}

func (n *NIC) dadStep(a netip.Addr, r *dadRun) {
	n.v6.mu.Lock()
	if n.v6.dad[a] != r {
		n.v6.mu.Unlock()
		return
	}
	if r.left > 0 {
		r.left--
		r.timer = time.AfterFunc(n.v6.retransLocked(), func() { n.dadStep(a, r) })
		n.v6.mu.Unlock()
		n.sendDADSolicit(a)
		return
	}
	delete(n.v6.dad, a)
	n.v6.mu.Unlock()
	n.dadSucceeded(a)
}

// dadSucceeded makes tentative address a preferred (or deprecated, if its
// preferred lifetime ran out meanwhile) and, for a link-local address,
// starts router solicitation.
func (n *NIC) dadSucceeded(a netip.Addr) {
	ad, ok := n.address6(a)
	if !ok || ad.State != Tentative {
		return
	}
	st := Preferred
	if !ad.PreferredUntil.IsZero() && !time.Now().Before(ad.PreferredUntil) {
		st = Deprecated
	}
	n.setAddressState(a, st)
	if a.IsLinkLocalUnicast() {
		n.startRouterSolicitation(false) // DAD already waited the random delay
	}
}

// dadFailed marks tentative address a duplicate (RFC 4862 §5.4.5). When it
// is the link-local address formed from the hardware address, the NIC
// stops autoconfiguration, as every address formed from the same
// identifier would collide too (Linux does the same).
func (n *NIC) dadFailed(a netip.Addr) {
	n.v6.mu.Lock()
	if r := n.v6.dad[a]; r != nil {
		r.timer.Stop()
		delete(n.v6.dad, a)
	}
	n.v6.mu.Unlock()
	ad, ok := n.setAddressState(a, Duplicate)
	if ok && ad.Origin == OriginLinkLocal {
		n.v6.mu.Lock()
		n.v6.autoconfOff = true
		n.stopRSLocked()
		n.v6.mu.Unlock()
	}
}

// startRouterSolicitation sends up to MAX_RTR_SOLICITATIONS router
// solicitations RTR_SOLICITATION_INTERVAL apart, the first after a random
// delay of up to MAX_RTR_SOLICITATION_DELAY if delay (RFC 4861 §6.3.7).
// Routers do not solicit.
func (n *NIC) startRouterSolicitation(delay bool) {
	if n.s.forwarding(true) || !n.IsUp() {
		return
	}
	var d time.Duration
	if delay {
		d = n.s.randDuration(maxRtrSolicitationDelay)
	}
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	if n.v6.closed || n.v6.autoconfOff {
		return
	}
	n.stopRSLocked()
	n.v6.rsLeft = maxRtrSolicitations
	gen := n.v6.rsGen
	n.v6.rsTimer = time.AfterFunc(d, func() { n.rsStep(gen) })
}

func (n *NIC) rsStep(gen uint64) {
	n.v6.mu.Lock()
	if n.v6.rsGen != gen || n.v6.rsLeft <= 0 {
		n.v6.mu.Unlock()
		return
	}
	n.v6.rsLeft--
	if n.v6.rsLeft > 0 {
		n.v6.rsTimer = time.AfterFunc(rtrSolicitationInterval, func() { n.rsStep(gen) })
	} else {
		n.v6.rsTimer = nil
	}
	n.v6.mu.Unlock()
	n.sendRouterSolicit()
}

// handleRouterAdvert validates a router advertisement (RFC 4861 §6.1.2)
// and, on a host, applies it (§6.3.4, RFC 4862 §5.5.3, RFC 8106 §5.3).
func (n *NIC) handleRouterAdvert(pi *PacketInfo, m wire.ICMPv6) bool {
	ra, _ := m.RouterAdvert()
	if !pi.Src.IsLinkLocalUnicast() {
		return false
	}
	sllao, hasSLLAO, ok := ndpLinkAddr(ra.Options(), wire.NDPOptSourceLinkAddr)
	if !ok {
		return false
	}
	if n.s.forwarding(true) {
		return true // a router does not configure itself from advertisements
	}
	now := time.Now()
	src := pi.Src.WithZone("")
	n.v6.mu.Lock()
	n.stopRSLocked() // §6.3.7: a router answered
	n.v6.managed, n.v6.other = ra.Managed(), ra.Other()
	if h := ra.CurHopLimit(); h != 0 {
		n.v6.curHopLimit = h
	}
	if t := ra.RetransTimer(); t != 0 {
		n.v6.retrans = time.Duration(t) * time.Millisecond
	}
	n.v6.mu.Unlock()
	if t := ra.ReachableTime(); t != 0 {
		n.ndp.SetBaseReachableTime(time.Duration(t) * time.Millisecond)
	}
	if t := ra.RetransTimer(); t != 0 {
		n.ndp.SetRetransTime(time.Duration(t) * time.Millisecond)
	}
	if hasSLLAO {
		n.ndp.Learn(src, sllao, neighbor.Create|neighbor.IsRouter)
	}
	// Default router list (§6.3.4): a default route through the router.
	n.removeDefaultRouter(src)
	if lt := ra.RouterLifetime(); lt != 0 {
		n.s.routes.Add(route.Route{
			Dst: defaultRoute6, Gateway: src, NIC: n.index, OnLink: true,
			Protocol: route.ProtoRA, Metric: raRouteMetric,
			Expires: now.Add(time.Duration(lt) * time.Second),
		})
	}
	it := ra.Options()
	for o, more := it.Next(); more; o, more = it.Next() {
		switch o.Type {
		case wire.NDPOptMTU:
			if mtu, ok := o.MTU(); ok {
				n.raMTU(mtu)
			}
		case wire.NDPOptPrefixInfo:
			if p, ok := o.PrefixInfo(); ok {
				n.raPrefix(p, now)
			}
		case wire.NDPOptRDNSS:
			if r, ok := o.RDNSS(); ok {
				n.raRDNSS(r, now)
			}
		case wire.NDPOptDNSSL:
			if d, ok := o.DNSSL(); ok {
				n.raDNSSL(d, now)
			}
		}
	}
	n.s.armRouteExpiry()
	return true
}

// raMTU takes an advertised link MTU if it is at least the IPv6 minimum and
// no more than the link's (RFC 4861 §6.3.4).
func (n *NIC) raMTU(mtu uint32) {
	if mtu < wire.IPv6MinMTU || mtu > uint32(n.MTU()) {
		return
	}
	n.v6.mu.Lock()
	n.v6.mtu = int(mtu)
	n.v6.mu.Unlock()
}

// lifetimeEnd converts an advertised lifetime in seconds to an end time,
// zero for infinity.
func lifetimeEnd(now time.Time, secs uint32) time.Time {
	if secs == infiniteLifetime {
		return time.Time{}
	}
	return now.Add(time.Duration(secs) * time.Second)
}

// raPrefix applies one Prefix Information option: the on-link flag makes
// or refreshes a prefix route (RFC 4861 §6.3.4), the autonomous flag an
// address (RFC 4862 §5.5.3).
func (n *NIC) raPrefix(p wire.NDPPrefixInfo, now time.Time) {
	prefix := p.Prefix()
	valid, preferred := p.ValidLifetime(), p.PreferredLifetime()
	if !prefix.IsValid() || prefix.Addr().IsLinkLocalUnicast() || prefix.Addr().IsMulticast() {
		return // §6.3.4 and RFC 4862 §5.5.3 (b)
	}
	if preferred > valid {
		return // RFC 4862 §5.5.3 (c); Linux ignores the whole option
	}
	prefix = prefix.Masked()
	if p.OnLink() {
		n.s.routes.Delete(route.Match{Dst: prefix, NIC: n.index, Protocol: route.ProtoRA})
		if valid != 0 {
			n.s.routes.Add(route.Route{
				Dst: prefix, NIC: n.index, Protocol: route.ProtoRA, Metric: raPrefixMetric,
				Expires: lifetimeEnd(now, valid),
			})
		}
	}
	if !p.Autonomous() || prefix.Bits() != 64 {
		return // RFC 4862 §5.5.3 (d): the identifier is 64 bits
	}
	n.mu.RLock()
	off, mac := n.noAutoconf, n.mac
	n.mu.RUnlock()
	n.v6.mu.Lock()
	off = off || n.v6.autoconfOff
	n.v6.mu.Unlock()
	if off {
		return
	}
	addr := slaacAddr(prefix.Addr(), mac)
	cur, exists := n.address6(addr)
	if !exists {
		if valid == 0 {
			return // §5.5.3 (d)
		}
		n.AddAddress(Address{
			Prefix: netip.PrefixFrom(addr, 64), Origin: OriginSLAAC,
			ValidUntil: lifetimeEnd(now, valid), PreferredUntil: lifetimeEnd(now, preferred),
			// RFC 5942 §4: an address does not make its prefix on-link;
			// only the L flag does.
			NoPrefixRoute: true,
		})
		return
	}
	if cur.Origin != OriginSLAAC || cur.State == Duplicate {
		return
	}
	// §5.5.3 (e): the preferred lifetime is taken as is; the valid one is
	// guarded against shortening below two hours.
	validUntil := cur.ValidUntil
	received := lifetimeEnd(now, valid)
	remaining := time.Duration(1<<63 - 1)
	if !validUntil.IsZero() {
		remaining = validUntil.Sub(now)
	}
	switch {
	case valid == infiniteLifetime || time.Duration(valid)*time.Second > twoHours ||
		(!received.IsZero() && !validUntil.IsZero() && received.After(validUntil)):
		validUntil = received
	case remaining <= twoHours:
		// keep the remaining lifetime
	default:
		validUntil = now.Add(twoHours)
	}
	preferredUntil := lifetimeEnd(now, preferred)
	if !validUntil.IsZero() && (preferredUntil.IsZero() || preferredUntil.After(validUntil)) {
		preferredUntil = validUntil
	}
	n.SetAddressLifetimes(addr, validUntil, preferredUntil)
}

// raRDNSS records the servers of an RDNSS option; lifetime 0 removes them
// (RFC 8106 §5.1, §5.3.1).
func (n *NIC) raRDNSS(r wire.NDPRDNSS, now time.Time) {
	lt := r.Lifetime()
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	for i := range r.NumAddrs() {
		a := r.Addr(i)
		n.v6.rdnss = updateDNS(n.v6.rdnss, a, lt, now)
	}
}

// raDNSSL records the domains of a DNSSL option (RFC 8106 §5.2, §5.3.1).
func (n *NIC) raDNSSL(d wire.NDPDNSSL, now time.Time) {
	names, err := d.AppendDomains(nil)
	if err != nil {
		return // §5.3.1: a malformed option is ignored
	}
	lt := d.Lifetime()
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	for _, name := range names {
		n.v6.dnssl = updateDNS(n.v6.dnssl, name, lt, now)
	}
}

func updateDNS[T comparable](list []dnsEntry[T], v T, lifetime uint32, now time.Time) []dnsEntry[T] {
	list = slices.DeleteFunc(list, func(e dnsEntry[T]) bool {
		return e.v == v || (!e.expires.IsZero() && !now.Before(e.expires))
	})
	if lifetime == 0 || len(list) >= maxDNSEntries {
		return list
	}
	return append(list, dnsEntry[T]{v: v, expires: lifetimeEnd(now, lifetime)})
}

func liveDNS[T comparable](list []dnsEntry[T]) []T {
	now := time.Now()
	var out []T
	for _, e := range list {
		if e.expires.IsZero() || now.Before(e.expires) {
			out = append(out, e.v)
		}
	}
	return out
}

// DNSServers returns the recursive DNS servers router advertisements
// announced on this NIC (RFC 8106 RDNSS) whose lifetime has not run out,
// in the order learned.
func (n *NIC) DNSServers() []netip.Addr {
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	return liveDNS(n.v6.rdnss)
}

// SearchDomains returns the DNS search list router advertisements
// announced on this NIC (RFC 8106 DNSSL) whose lifetime has not run out.
func (n *NIC) SearchDomains() []string {
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	return liveDNS(n.v6.dnssl)
}

// IPv6MTU returns the MTU for IPv6 on the NIC: the one a router advertised
// (RFC 4861 §6.3.4) if it is below the interface MTU, else the interface
// MTU.
func (n *NIC) IPv6MTU() int {
	mtu := n.MTU()
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	if n.v6.mtu > 0 && n.v6.mtu < mtu {
		return n.v6.mtu
	}
	return mtu
}

// CurHopLimit returns the hop limit for IPv6 packets sent on the NIC: the
// Cur Hop Limit a router advertised, else the stack's default.
func (n *NIC) CurHopLimit() uint8 {
	n.v6.mu.Lock()
	h := n.v6.curHopLimit
	n.v6.mu.Unlock()
	if h != 0 {
		return h
	}
	return n.s.opts.DefaultTTL
}

// RAFlags returns the Managed and Other flags of the last router
// advertisement received on the NIC (RFC 4861 §4.2): whether addresses
// (M) or other configuration (O) are available from DHCPv6.
func (n *NIC) RAFlags() (managed, other bool) {
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	return n.v6.managed, n.v6.other
}

// NDPConflicts counts neighbour advertisements from other nodes for
// addresses this NIC holds and uses (RFC 4862 §5.4.4).
func (n *NIC) NDPConflicts() uint64 {
	n.v6.mu.Lock()
	defer n.v6.mu.Unlock()
	return n.v6.conflicts
}
