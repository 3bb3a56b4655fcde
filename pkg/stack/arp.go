package stack

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// ARP (RFC 826) with the RFC 5227 announcements and conflict detection for
// addresses in use, and Linux's proxy ARP. The neighbour cache (n.arp)
// holds the bindings and runs the timers of resolution; this file parses
// and builds the packets and decides what to learn and what to answer.
//
// Linux behaviour followed (sysctl defaults): arp_ignore=0 (answer for any
// local address of the host, with the receiving NIC's MAC), arp_announce=0
// (a request's sender address is the waiting packet's source when that is
// local), arp_accept=0 (an unsolicited ARP packet only updates an entry
// that exists), arp_filter=0.
//
// Differences from Linux: proxy replies go out at once (no proxy_delay
// randomisation), and a gratuitous packet arriving within the cache's 1 s
// lock time of an entry's last update does not override it (Linux's
// is_garp does; the neighbour cache has no such override). The second
// RFC 5227 announcement, 2 s later, gets through.

// RFC 5227 §1.1 constants that apply to an address already in use (the
// stack configures IPv4 addresses at once, as Linux does: no probing, so
// PROBE_WAIT, PROBE_NUM and friends do not apply).
const (
	ARPAnnounceNum      = 2                // ANNOUNCE_NUM
	ARPAnnounceInterval = 2 * time.Second  // ANNOUNCE_INTERVAL
	ARPDefendInterval   = 10 * time.Second // DEFEND_INTERVAL
)

// maxConflicts bounds the conflicts AddressConflicts remembers (the
// newest are kept).
const maxConflicts = 16

// Conflict is one received ARP packet that claimed an address of ours with
// another hardware address (RFC 5227 §2.4).
type Conflict struct {
	Addr netip.Addr // our address
	MAC  wire.MAC   // the other claimant's hardware address
	Time time.Time
	// Defended reports whether we answered it with an announcement (at
	// most one per ARPDefendInterval per address).
	Defended bool
}

// ARPStats are a NIC's ARP counters.
type ARPStats struct {
	InRequests, InReplies   uint64 // valid requests and replies received
	OutRequests, OutReplies uint64 // sent (requests include probes and announcements)
	Announcements           uint64 // gratuitous requests sent (RFC 5227 §2.3 and defences)
	ProxyReplies            uint64 // replies sent for other hosts (proxy ARP)
	Conflicts, Defences     uint64 // RFC 5227 §2.4 conflicts seen, and defended
	Dropped                 uint64 // parsed but unacceptable (bad addresses, unknown op, ...)
}

// arpState is a NIC's ARP state beyond the neighbour cache. mu is a leaf
// lock: never held while sending or calling the cache.
type arpState struct {
	proxy atomic.Bool

	inRequests, inReplies, outRequests, outReplies atomic.Uint64
	announcements, proxyReplies                    atomic.Uint64
	conflicts, defences, dropped                   atomic.Uint64

	mu         sync.Mutex
	closed     bool
	announce   map[netip.Addr]*announcer
	lastDefend map[netip.Addr]time.Time
	history    []Conflict
}

// announcer is the pending series of announcements for one address.
type announcer struct {
	timer *time.Timer
	left  int // announcements still to send after the current one
}

// SetProxyARP turns proxy ARP on or off (Linux
// net.ipv4.conf.IFACE.proxy_arp). When on and IPv4 forwarding is enabled
// (Linux answers for others only on a forwarding interface), the NIC
// answers requests for addresses that are not the host's but that it
// routes through another interface, with its own MAC.
func (n *NIC) SetProxyARP(on bool) { n.v4.proxy.Store(on) }

// ProxyARP reports whether proxy ARP is on.
func (n *NIC) ProxyARP() bool { return n.v4.proxy.Load() }

// ARPStats returns the NIC's ARP counters.
func (n *NIC) ARPStats() ARPStats {
	v := &n.v4
	return ARPStats{
		InRequests: v.inRequests.Load(), InReplies: v.inReplies.Load(),
		OutRequests: v.outRequests.Load(), OutReplies: v.outReplies.Load(),
		Announcements: v.announcements.Load(), ProxyReplies: v.proxyReplies.Load(),
		Conflicts: v.conflicts.Load(), Defences: v.defences.Load(), Dropped: v.dropped.Load(),
	}
}

// AddressConflicts returns the most recent address conflicts seen on this
// NIC (at most 16), oldest first.
func (n *NIC) AddressConflicts() []Conflict {
	n.v4.mu.Lock()
	defer n.v4.mu.Unlock()
	return append([]Conflict(nil), n.v4.history...)
}

// handleARP processes a received ARP packet.
func (n *NIC) handleARP(payload []byte, pt PacketType) {
	a, err := wire.ParseARP(payload)
	if err != nil {
		n.stats.RxErrors.Add(1)
		return
	}
	v := &n.v4
	if n.loopback || pt == PacketOtherHost {
		// Linux arp_rcv drops ARP for other hosts seen in promiscuous
		// mode; the loopback has no ARP.
		v.dropped.Add(1)
		return
	}
	op := a.Op()
	switch op {
	case wire.ARPRequest:
		v.inRequests.Add(1)
	case wire.ARPReply:
		v.inReplies.Add(1)
	default:
		v.dropped.Add(1) // RFC 826: other opcodes are not ours to handle
		return
	}
	sha, sip, tip := a.SenderMAC(), a.SenderIP(), a.TargetIP()
	mac := n.MAC()
	if sha == mac {
		return // our own packet, reflected
	}
	// A station address must be unicast; a sender claiming a multicast,
	// broadcast or loopback IP, or asking for one, is bogus (Linux
	// arp_process drops multicast and loopback targets the same way).
	if sha.IsMulticast() || sha.IsZero() ||
		sip.IsMulticast() || sip == broadcast4 || sip.IsLoopback() ||
		tip.IsMulticast() || tip == broadcast4 || tip.IsLoopback() {
		v.dropped.Add(1)
		return
	}
	// Any local address of the host counts, as with Linux arp_ignore=0;
	// the answer carries this NIC's MAC.
	local := n.s.IsLocal(tip)

	if sip.IsUnspecified() {
		// An RFC 5227 §2.1.1 probe: it must not touch any cache. For an
		// address in use it is no conflict (we are not probing); answer
		// it, as Linux does, so the prober sees the address is taken.
		if op == wire.ARPRequest && local {
			n.sendARP(wire.ARPReply, sha, tip, sha, netip.IPv4Unspecified())
		}
		return
	}

	var proxy bool
	switch {
	case op == wire.ARPRequest && local:
		// RFC 826: the requester expects to talk to us; remember it.
		err = n.arp.Learn(sip, sha, neighbor.Create)
	case op == wire.ARPReply && local && pt == PacketHost:
		// An answer to our request: REACHABLE, as in Linux arp_process.
		_, err = n.arp.HandleAdvertisement(sip, sha, neighbor.Solicited|neighbor.Override)
	case op == wire.ARPRequest && !a.IsGratuitous() && n.proxyFor(tip):
		proxy = true
		err = n.arp.Learn(sip, sha, neighbor.Create)
	default:
		// RFC 826 merge: update an entry we already have (this is how
		// gratuitous ARP, RFC 5227 §3, reaches us); create nothing
		// (arp_accept=0).
		err = n.arp.Learn(sip, sha, 0)
	}
	if errors.Is(err, neighbor.ErrLocalAddress) {
		// The sender claims an address of this NIC from another MAC.
		n.addressConflict(sip, sha)
		return
	}
	if op != wire.ARPRequest || !(local || proxy) {
		return
	}
	n.sendARP(wire.ARPReply, sha, tip, sha, sip)
	if proxy {
		v.proxyReplies.Add(1)
	}
}

// proxyFor reports whether this NIC answers a request for tip by
// proxy: proxy ARP on, IPv4 forwarding on, and a unicast route to tip
// through another NIC (Linux arp_fwd_proxy). A route back out of the NIC
// the request came in on means the target is on that link and can answer
// for itself.
func (n *NIC) proxyFor(tip netip.Addr) bool {
	if !n.ProxyARP() || !n.s.forwarding(false) || tip.IsUnspecified() {
		return false
	}
	r, ok := n.s.Routes().Lookup(tip)
	if !ok || (r.Type != route.TypeUnicast && r.Type != route.TypeUnspec) || r.NIC == n.index {
		return false
	}
	return true
}

// addressConflict records a conflicting ARP packet for our address addr
// from mac and defends the address by broadcasting one announcement,
// unless it did so less than ARPDefendInterval ago (RFC 5227 §2.4 (b)).
// Unlike the second half of (b), the address is not given up: it was
// configured by the administrator, and Linux never drops it either. The
// conflict stays visible in AddressConflicts.
func (n *NIC) addressConflict(addr netip.Addr, mac wire.MAC) {
	v := &n.v4
	v.conflicts.Add(1)
	now := time.Now()
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	last, seen := v.lastDefend[addr]
	defend := !seen || now.Sub(last) >= ARPDefendInterval
	if defend {
		if v.lastDefend == nil {
			v.lastDefend = make(map[netip.Addr]time.Time)
		}
		v.lastDefend[addr] = now
	}
	if len(v.history) == maxConflicts {
		v.history = append(v.history[:0], v.history[1:]...)
	}
	v.history = append(v.history, Conflict{Addr: addr, MAC: mac, Time: now, Defended: defend})
	v.mu.Unlock()
	if defend {
		v.defences.Add(1)
		n.sendAnnouncement(addr)
	}
}

// sendARP builds and sends one ARP packet in an Ethernet frame to ethDst,
// with this NIC's MAC as sender.
func (n *NIC) sendARP(op uint16, ethDst wire.MAC, sip netip.Addr, tha wire.MAC, tip netip.Addr) {
	f := wire.ARPFields{Op: op, SenderMAC: n.MAC(), SenderIP: sip, TargetMAC: tha, TargetIP: tip}
	pkt := NewPacket(f.Len())
	f.Encode(pkt.Bytes())
	if n.writeFrame(ethDst, wire.EtherTypeARP, pkt) != nil {
		return
	}
	if op == wire.ARPRequest {
		n.v4.outRequests.Add(1)
	} else {
		n.v4.outReplies.Add(1)
	}
}

// sendARPRequest sends an ARP request for target (broadcast, or unicast
// to unicastTo when probing).
//
// The sender address follows Linux arp_announce=0: the source of the
// packet waiting for the address when it is a local address, else this
// NIC's address on target's subnet or its first one, else any other
// interface's IPv4 address (Linux inet_select_addr). With no IPv4 address
// anywhere the request goes out with sender 0.0.0.0, which is the RFC 5227
// probe form: it asks without polluting anyone's cache, and Linux sends
// the same then.
func (n *NIC) sendARPRequest(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {
	if n.loopback || !target.Is4() {
		return
	}
	var src netip.Addr
	if has && prompt != nil {
		if ip, err := wire.ParseIPv4Quoted(prompt.Bytes()); err == nil && n.s.IsLocal(ip.Src()) {
			src = ip.Src()
		}
	}
	if !src.IsValid() {
		src, _ = n.primaryAddress(target)
	}
	if !src.IsValid() {
		for _, o := range n.s.NICs() {
			if o == n || o.loopback {
				continue
			}
			if a, ok := o.primaryAddress(target); ok {
				src = a
				break
			}
		}
	}
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	ethDst, tha := wire.BroadcastMAC, wire.MAC{}
	if !unicastTo.IsZero() {
		ethDst, tha = unicastTo, unicastTo
	}
	n.sendARP(wire.ARPRequest, ethDst, src, tha, target)
}

// sendAnnouncement broadcasts an ARP Announcement for addr: a request with
// sender and target IP both addr (RFC 5227 §2.3), which updates the caches
// of hosts that hold addr.
func (n *NIC) sendAnnouncement(addr netip.Addr) {
	if !n.IsUp() || !n.hasAddress(addr) {
		return
	}
	n.v4.announcements.Add(1)
	n.sendARP(wire.ARPRequest, wire.BroadcastMAC, addr, wire.MAC{}, addr)
}

// startAnnouncing sends the first of ARPAnnounceNum announcements for addr
// now and schedules the rest ARPAnnounceInterval apart (RFC 5227 §2.3; we
// do not probe, so there is no ANNOUNCE_WAIT before the first). A series
// already running for addr starts over.
func (n *NIC) startAnnouncing(addr netip.Addr) {
	if n.loopback {
		return
	}
	v := &n.v4
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if old := v.announce[addr]; old != nil {
		old.timer.Stop()
		delete(v.announce, addr)
	}
	if ARPAnnounceNum > 1 {
		if v.announce == nil {
			v.announce = make(map[netip.Addr]*announcer)
		}
		an := &announcer{left: ARPAnnounceNum - 1}
		an.timer = time.AfterFunc(ARPAnnounceInterval, func() { n.announceTick(addr, an) })
		v.announce[addr] = an
	}
	v.mu.Unlock()
	n.sendAnnouncement(addr)
}

// announceTick sends the next announcement of series an.
func (n *NIC) announceTick(addr netip.Addr, an *announcer) {
	v := &n.v4
	v.mu.Lock()
	if v.closed || v.announce[addr] != an {
		v.mu.Unlock()
		return // stopped or replaced meanwhile
	}
	an.left--
	if an.left > 0 {
		an.timer.Reset(ARPAnnounceInterval)
	} else {
		delete(v.announce, addr)
	}
	v.mu.Unlock()
	n.sendAnnouncement(addr)
}

// stopAnnouncing stops the series for addr, or every series if addr is
// not valid.
func (n *NIC) stopAnnouncing(addr netip.Addr) {
	v := &n.v4
	v.mu.Lock()
	for a, an := range v.announce {
		if !addr.IsValid() || a == addr {
			an.timer.Stop()
			delete(v.announce, a)
		}
	}
	v.mu.Unlock()
}

func (n *NIC) addressAdded4(a Address, up bool) {
	if up && a.State.usable() {
		n.startAnnouncing(a.Prefix.Addr())
	}
}

func (n *NIC) addressRemoved4(a Address) {
	addr := a.Prefix.Addr()
	n.stopAnnouncing(addr)
	n.v4.mu.Lock()
	delete(n.v4.lastDefend, addr)
	n.v4.mu.Unlock()
}

func (n *NIC) linkUp4(addrs []Address) {
	for _, a := range addrs {
		if a.Prefix.Addr().Is4() && a.State.usable() {
			n.startAnnouncing(a.Prefix.Addr())
		}
	}
}

func (n *NIC) linkDown4() { n.stopAnnouncing(netip.Addr{}) }

func (n *NIC) closeARP() {
	n.v4.mu.Lock()
	n.v4.closed = true
	n.v4.mu.Unlock()
	n.stopAnnouncing(netip.Addr{})
}
