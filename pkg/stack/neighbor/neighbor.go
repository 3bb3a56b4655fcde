// Package neighbor is the neighbour cache of one NIC for one address
// family: the state machine behind ARP (RFC 826) for IPv4 and Neighbor
// Unreachability Detection (RFC 4861 §7.3) for IPv6, with the Linux
// additions (FAILED and PERMANENT states, garbage collection, a bounded
// table). It is protocol logic only: it never builds or parses a packet.
// It asks its owner, through a Handler, to send solicitations, and hands
// back the packets that waited for an address, either to be sent
// (Resolved) or to be answered with ICMP unreachable (Unreachable).
//
// The owner feeds it:
//   - Resolve for every outgoing unicast packet (the fast path),
//   - HandleAdvertisement for Neighbor Advertisements and ARP replies,
//   - Learn for solicitations, router advertisements, redirects and ARP
//     requests (RFC 4861 §7.2.3, RFC 826 merge),
//   - ConfirmReachable for upper-layer hints (TCP progress, §7.3.1),
//   - AddStatic, Delete, Flush for administration.
//
// The owner keeps its own addresses out of the cache: it does not Resolve
// them, and with Config.IsLocal set the cache refuses to learn them,
// returning ErrLocalAddress, which is the owner's cue for RFC 5227 conflict
// handling. Proxy ARP, gratuitous ARP and duplicate address detection are
// the owner's business.
//
// Timers: each entry has one time.AfterFunc timer, driven by a deadline
// kept in the entry, and the cache has one periodic timer for garbage
// collection and redrawing ReachableTime. Only the time package is used,
// so the cache runs under testing/synctest fake time. Close stops them all.
//
// Locking: one mutex per Cache guards everything in it, including every
// entry. It is a leaf lock: the cache calls out (Handler methods,
// Config.IsLocal) only with it released, so the owner may hold its own
// locks while calling in, and a handler may call back into the cache.
// Handler calls for one address can therefore race with a fast-path
// Resolve on another goroutine: a packet sent through the fast path just
// after resolution may overtake the queued ones handed to Resolved.
package neighbor

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Cache is a neighbour cache. P is the owner's pending-packet type.
type Cache[P any] struct {
	h     Handler[P]
	sizer PacketSizer[P] // nil: no byte bound

	mu        sync.Mutex
	cfg       Config
	closed    bool
	table     map[netip.Addr]*entry[P]
	lists     [numClasses]list[P]
	rng       *rand.Rand
	reachable time.Duration // the current random ReachableTime
	drawnAt   time.Time
	gcTimer   *time.Timer
	stats     Stats
}

type pending[P any] struct {
	pkt  P
	size int
}

type entry[P any] struct {
	addr   netip.Addr
	mac    wire.MAC
	state  State
	router bool
	probes int

	queue  []pending[P] // non-empty only while Incomplete
	qbytes int

	updated, used, confirmed time.Time

	deadline time.Time // zero: no timer event pending
	timer    *time.Timer
	removed  bool

	class      int
	prev, next *entry[P]
}

// Eviction classes, in the order victims are taken (RFC 4861 gives no
// order; this follows the brief and Linux's preference for dead entries):
// FAILED, then STALE, then other entries with an address, and only then
// INCOMPLETE entries, whose queued packets are lost. PERMANENT entries are
// in no class and never evicted. Within a class the least recently used
// goes first.
const (
	classFailed = iota
	classStale
	classValid
	classIncomplete
	numClasses
	classNone = -1
)

func classOf(s State) int {
	switch s {
	case Failed:
		return classFailed
	case Stale:
		return classStale
	case Reachable, Delay, Probe:
		return classValid
	case Incomplete:
		return classIncomplete
	}
	return classNone
}

// list is an intrusive doubly linked list, least recently used at head.
type list[P any] struct{ head, tail *entry[P] }

func (l *list[P]) pushBack(e *entry[P]) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *list[P]) remove(e *entry[P]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// effects are the handler calls one operation produces, made after the
// lock is released. No operation produces more than one of each.
type effects[P any] struct {
	solicit        bool
	solTarget      netip.Addr
	solUnicast     wire.MAC
	solPrompt      P
	solHasPrompt   bool
	resolved       bool
	resTarget      netip.Addr
	resMAC         wire.MAC
	resPending     []P
	unreachable    bool
	unreachTarget  netip.Addr
	unreachPending []P
}

func (c *Cache[P]) run(ef *effects[P]) {
	if ef.resolved {
		c.h.Resolved(ef.resTarget, ef.resMAC, ef.resPending)
	}
	if ef.solicit {
		c.h.SendSolicit(ef.solTarget, ef.solUnicast, ef.solPrompt, ef.solHasPrompt)
	}
	if ef.unreachable {
		c.h.Unreachable(ef.unreachTarget, ef.unreachPending)
	}
}

// New makes a cache with cfg (zero fields take their defaults) reporting
// to h. If h implements PacketSizer[P], Config.QueueBytes applies.
func New[P any](cfg Config, h Handler[P]) *Cache[P] {
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	c := &Cache[P]{
		h:     h,
		cfg:   cfg,
		table: make(map[netip.Addr]*entry[P]),
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	if s, ok := h.(PacketSizer[P]); ok {
		c.sizer = s
	}
	c.drawReachable(time.Now())
	// Under the lock: periodic may run (and read gcTimer) before
	// AfterFunc's result is stored.
	c.mu.Lock()
	c.gcTimer = time.AfterFunc(cfg.GCInterval, c.periodic)
	c.mu.Unlock()
	return c
}

// drawReachable picks ReachableTime uniformly from [0.5, 1.5) ×
// BaseReachableTime (RFC 4861 §6.3.2 MIN/MAX_RANDOM_FACTOR).
func (c *Cache[P]) drawReachable(now time.Time) {
	base := int64(c.cfg.BaseReachableTime)
	c.reachable = time.Duration(base/2 + c.rng.Int64N(base))
	c.drawnAt = now
}

// normalize makes the map key: the cache is per NIC, so zones carry no
// information, and an IPv4-mapped address means the IPv4 one.
func normalize(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// neighbourAddr reports whether a can be a neighbour's unicast address.
func neighbourAddr(a netip.Addr) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	return true
}

// stationMAC reports whether m can be a neighbour's hardware address as
// learned from the network (RFC 1812 §3.3.2: not a multicast address).
func stationMAC(m wire.MAC) bool { return !m.IsZero() && !m.IsMulticast() }

// setState moves e to s, keeping the eviction lists in step.
func (c *Cache[P]) setState(e *entry[P], s State, now time.Time) {
	if cl := classOf(s); cl != e.class {
		if e.class != classNone {
			c.lists[e.class].remove(e)
		}
		e.class = cl
		if cl != classNone {
			c.lists[cl].pushBack(e)
		}
	}
	e.state = s
	e.updated = now
}

// touch marks e most recently used.
func (c *Cache[P]) touch(e *entry[P], now time.Time) {
	e.used = now
	if e.class != classNone && c.lists[e.class].tail != e {
		c.lists[e.class].remove(e)
		c.lists[e.class].pushBack(e)
	}
}

func (c *Cache[P]) arm(e *entry[P], now time.Time, d time.Duration) {
	e.deadline = now.Add(d)
	if e.timer == nil {
		e.timer = time.AfterFunc(d, func() { c.fire(e) })
	} else {
		e.timer.Reset(d)
	}
}

func (c *Cache[P]) disarm(e *entry[P]) {
	e.deadline = time.Time{}
	if e.timer != nil {
		e.timer.Stop()
	}
}

// alloc makes a new entry for addr (state still unset), evicting one if
// the table is full. It returns nil when nothing can be evicted.
func (c *Cache[P]) alloc(addr netip.Addr, now time.Time) *entry[P] {
	if len(c.table) >= c.cfg.MaxEntries {
		var victim *entry[P]
		for i := range c.lists {
			if victim = c.lists[i].head; victim != nil {
				break
			}
		}
		if victim == nil {
			c.stats.TableFulls++
			return nil
		}
		c.stats.UnresolvedDiscards += uint64(len(victim.queue))
		c.stats.ForcedGCRuns++
		c.remove(victim)
	}
	e := &entry[P]{addr: addr, class: classNone, updated: now, used: now}
	c.table[addr] = e
	c.stats.Allocs++
	return e
}

func (c *Cache[P]) remove(e *entry[P]) {
	delete(c.table, e.addr)
	if e.class != classNone {
		c.lists[e.class].remove(e)
		e.class = classNone
	}
	c.disarm(e)
	e.removed = true
	e.queue = nil
	e.qbytes = 0
	c.stats.Destroys++
}

// enqueue adds pkt to e's queue, dropping the oldest packets beyond the
// bounds (RFC 4861 §7.2.2). The newest packet is always kept.
func (c *Cache[P]) enqueue(e *entry[P], pkt P) {
	size := 0
	if c.sizer != nil && c.cfg.QueueBytes > 0 {
		size = c.sizer.PacketSize(pkt)
	}
	e.queue = append(e.queue, pending[P]{pkt, size})
	e.qbytes += size
	drop := 0
	for len(e.queue)-drop > c.cfg.QueueLen ||
		(c.cfg.QueueBytes > 0 && e.qbytes > c.cfg.QueueBytes && len(e.queue)-drop > 1) {
		e.qbytes -= e.queue[drop].size
		drop++
	}
	if drop > 0 {
		c.stats.UnresolvedDiscards += uint64(drop)
		n := copy(e.queue, e.queue[drop:])
		clear(e.queue[n:]) // let the dropped packets be collected
		e.queue = e.queue[:n]
	}
}

// takeQueue empties e's queue into a fresh slice for the handler.
func (c *Cache[P]) takeQueue(e *entry[P]) []P {
	if len(e.queue) == 0 {
		return nil
	}
	out := make([]P, len(e.queue))
	for i, q := range e.queue {
		out[i] = q.pkt
	}
	e.queue = nil
	e.qbytes = 0
	return out
}

// solicit records a solicitation for e: broadcast/multicast when to is
// zero, else unicast.
func (c *Cache[P]) solicit(ef *effects[P], e *entry[P], to wire.MAC) {
	ef.solicit = true
	ef.solTarget = e.addr
	ef.solUnicast = to
	if n := len(e.queue); n > 0 {
		ef.solPrompt, ef.solHasPrompt = e.queue[n-1].pkt, true
	}
	if to.IsZero() {
		c.stats.SolicitsSent++
	} else {
		c.stats.ProbesSent++
	}
}

// startResolution moves e to INCOMPLETE and sends the first solicitation
// (RFC 4861 §7.2.2).
func (c *Cache[P]) startResolution(ef *effects[P], e *entry[P], now time.Time) {
	c.setState(e, Incomplete, now)
	e.mac = wire.MAC{}
	e.probes = 1
	c.solicit(ef, e, wire.MAC{})
	c.arm(e, now, c.cfg.RetransTime)
}

// fail moves e to FAILED and hands its queue to Unreachable.
func (c *Cache[P]) fail(ef *effects[P], e *entry[P], now time.Time) {
	c.setState(e, Failed, now)
	e.mac = wire.MAC{}
	e.probes = 0
	c.disarm(e)
	c.stats.ResFailed++
	ef.unreachable = true
	ef.unreachTarget = e.addr
	ef.unreachPending = c.takeQueue(e)
}

// gotAddr gives an address-less (INCOMPLETE or FAILED) entry its address
// in state s (Reachable or Stale) and hands the queue to Resolved. A STALE
// entry whose queued packets are now sent goes on to DELAY, as sending to
// a STALE entry does (RFC 4861 §7.3.3; Linux does the same).
func (c *Cache[P]) gotAddr(ef *effects[P], e *entry[P], mac wire.MAC, s State, now time.Time) {
	e.mac = mac
	e.probes = 0
	switch {
	case s == Reachable:
		c.reach(e, now)
	case len(e.queue) > 0:
		c.setState(e, Delay, now)
		c.arm(e, now, c.cfg.DelayFirstProbeTime)
	default:
		c.stale(e, now)
	}
	ef.resolved = true
	ef.resTarget = e.addr
	ef.resMAC = mac
	ef.resPending = c.takeQueue(e)
}

// reach records a reachability confirmation: e becomes REACHABLE for
// ReachableTime from now. An entry already REACHABLE only moves its
// confirmation time; its timer re-arms itself when it fires.
func (c *Cache[P]) reach(e *entry[P], now time.Time) {
	e.confirmed = now
	if e.state == Reachable && !e.deadline.IsZero() {
		return
	}
	c.setState(e, Reachable, now)
	e.probes = 0
	c.arm(e, now, c.reachable)
}

// stale moves e to STALE, where no timer runs.
func (c *Cache[P]) stale(e *entry[P], now time.Time) {
	c.setState(e, Stale, now)
	e.probes = 0
	c.disarm(e)
}

// locked reports whether Config.LockTime forbids replacing e's address.
func (c *Cache[P]) locked(e *entry[P], now time.Time) bool {
	return c.cfg.LockTime > 0 && now.Sub(e.updated) < c.cfg.LockTime
}

// fire runs e's timer event (RFC 4861 Appendix C, timer rows).
func (c *Cache[P]) fire(e *entry[P]) {
	var ef effects[P]
	c.mu.Lock()
	now := time.Now()
	// A stopped timer's function may still run, and a re-armed timer may
	// fire for its old deadline: the deadline in the entry is the truth.
	if c.closed || e.removed || e.deadline.IsZero() || now.Before(e.deadline) {
		c.mu.Unlock()
		return
	}
	e.deadline = time.Time{}
	switch e.state {
	case Incomplete:
		if e.probes < c.cfg.MaxMulticastSolicit {
			e.probes++
			c.solicit(&ef, e, wire.MAC{})
			c.arm(e, now, c.cfg.RetransTime)
		} else {
			c.fail(&ef, e, now)
		}
	case Reachable:
		// Confirmations while REACHABLE only move e.confirmed.
		if until := e.confirmed.Add(c.reachable); now.Before(until) {
			c.arm(e, now, until.Sub(now))
		} else {
			c.stale(e, now)
		}
	case Delay:
		c.setState(e, Probe, now)
		e.probes = 1
		c.solicit(&ef, e, e.mac)
		c.arm(e, now, c.cfg.RetransTime)
	case Probe:
		if e.probes < c.cfg.MaxUnicastSolicit {
			e.probes++
			c.solicit(&ef, e, e.mac)
			c.arm(e, now, c.cfg.RetransTime)
		} else {
			c.fail(&ef, e, now)
		}
	}
	c.mu.Unlock()
	c.run(&ef)
}

// periodic redraws ReachableTime when due and removes STALE and FAILED
// entries unused for GCStaleTime (Linux neigh_periodic_work).
func (c *Cache[P]) periodic() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := time.Now()
	if now.Sub(c.drawnAt) >= c.cfg.ReachableRecompute {
		c.drawReachable(now)
	}
	c.stats.PeriodicGCRuns++
	for _, e := range c.table {
		if e.state != Stale && e.state != Failed {
			continue
		}
		last := e.used
		if e.updated.After(last) {
			last = e.updated
		}
		if now.Sub(last) >= c.cfg.GCStaleTime {
			c.remove(e)
		}
	}
	c.gcTimer.Reset(c.cfg.GCInterval)
}

// Resolve returns the link-layer address for the next hop addr, to send
// pkt to. When the cache holds an address (REACHABLE, STALE, DELAY, PROBE,
// PERMANENT) it returns it, and ok; the caller sends pkt itself. Sending
// through a STALE entry starts NUD: the entry goes to DELAY (RFC 4861
// §7.3.3). Otherwise pkt is queued (oldest dropped beyond the bounds) and
// resolution starts if it is not running; pkt comes back later through
// Resolved or Unreachable. If addr is not a unicast address, the table is
// full of permanent entries or the cache is closed, pkt is dropped and
// counted. Multicast and broadcast destinations are the owner's to map.
func (c *Cache[P]) Resolve(addr netip.Addr, pkt P) (mac wire.MAC, ok bool) {
	addr = normalize(addr)
	var ef effects[P]
	c.mu.Lock()
	c.stats.Lookups++
	if c.closed || !neighbourAddr(addr) {
		c.stats.UnresolvedDiscards++
		c.mu.Unlock()
		return wire.MAC{}, false
	}
	now := time.Now()
	e := c.table[addr]
	if e == nil {
		if e = c.alloc(addr, now); e == nil {
			c.stats.UnresolvedDiscards++
			c.mu.Unlock()
			return wire.MAC{}, false
		}
		c.enqueue(e, pkt)
		c.startResolution(&ef, e, now)
		c.mu.Unlock()
		c.run(&ef)
		return wire.MAC{}, false
	}
	c.touch(e, now)
	switch e.state {
	case Stale:
		c.setState(e, Delay, now)
		c.arm(e, now, c.cfg.DelayFirstProbeTime)
		fallthrough
	case Reachable, Delay, Probe, Permanent:
		c.stats.Hits++
		mac = e.mac
		c.mu.Unlock()
		return mac, true
	case Incomplete:
		c.enqueue(e, pkt)
	case Failed:
		// As Linux: a new packet to a FAILED neighbour tries again.
		c.enqueue(e, pkt)
		c.startResolution(&ef, e, now)
	}
	c.mu.Unlock()
	c.run(&ef)
	return wire.MAC{}, false
}

// HandleAdvertisement applies a received Neighbor Advertisement, or an ARP
// reply (Solicited|Override), for addr with the target link-layer address
// mac, following RFC 4861 §7.2.5 exactly:
//   - no entry: ignored (unsolicited advertisements create nothing);
//   - INCOMPLETE (or FAILED): without a link-layer address ignored; else
//     the address is recorded, the entry goes to REACHABLE if Solicited,
//     else STALE (DELAY if packets were queued, since they are sent now),
//     and the queued packets go to Resolved;
//   - otherwise, if Override is clear and mac differs from the cached
//     address, a REACHABLE entry goes to STALE keeping its address, and
//     nothing else changes;
//   - otherwise the address is taken (if given), the entry goes to
//     REACHABLE if Solicited, else to STALE if the address changed, else
//     keeps its state; the router flag is taken from Router.
//
// PERMANENT entries are never changed. routerCleared reports that the
// entry's router flag went from true to false, in which case the owner
// must remove the neighbour from its default router list (§7.2.5).
func (c *Cache[P]) HandleAdvertisement(addr netip.Addr, mac wire.MAC, f AdvFlags) (routerCleared bool, err error) {
	addr = normalize(addr)
	hasMAC := f&NoLinkAddr == 0
	if !neighbourAddr(addr) {
		return false, ErrInvalidAddress
	}
	if hasMAC && !stationMAC(mac) {
		return false, ErrInvalidLinkAddress
	}
	if c.cfg.IsLocal != nil && c.cfg.IsLocal(addr) {
		return false, ErrLocalAddress
	}
	var ef effects[P]
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, ErrClosed
	}
	now := time.Now()
	e := c.table[addr]
	switch {
	case e == nil || e.state == Permanent:
	case !e.state.HasAddr():
		if hasMAC {
			s := Stale
			if f&Solicited != 0 {
				s = Reachable
			}
			e.router = f&Router != 0
			c.gotAddr(&ef, e, mac, s, now)
		}
	default:
		differs := hasMAC && mac != e.mac
		override := f&Override != 0 && !c.locked(e, now)
		if differs && !override {
			if e.state == Reachable {
				c.stale(e, now)
			}
			break
		}
		if differs {
			e.mac = mac
		}
		switch {
		case f&Solicited != 0:
			c.reach(e, now)
		case differs:
			c.stale(e, now)
		}
		routerCleared = e.router && f&Router == 0
		e.router = f&Router != 0
	}
	c.mu.Unlock()
	c.run(&ef)
	return routerCleared, nil
}

// Learn records that addr is at mac, from a packet that names its sender's
// link-layer address without being an answer to us: a Neighbor or Router
// Solicitation, Router Advertisement or Redirect (RFC 4861 §7.2.3, §6.3.4,
// §8.3), or an ARP request (RFC 826). With Create a missing entry is made
// STALE; without it only an existing one is updated (RFC 826 merge, for
// ARP packets not aimed at us). An address-less entry gets mac, goes
// STALE (DELAY if packets were queued) and hands its queue to Resolved; an entry with a different
// address takes mac and goes STALE; the same address changes nothing
// (Linux neigh_update). IsRouter sets the router flag; PERMANENT entries
// are never changed.
func (c *Cache[P]) Learn(addr netip.Addr, mac wire.MAC, f LearnFlags) error {
	addr = normalize(addr)
	if !neighbourAddr(addr) {
		return ErrInvalidAddress
	}
	if !stationMAC(mac) {
		return ErrInvalidLinkAddress
	}
	if c.cfg.IsLocal != nil && c.cfg.IsLocal(addr) {
		return ErrLocalAddress
	}
	var ef effects[P]
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	now := time.Now()
	e := c.table[addr]
	switch {
	case e == nil:
		if f&Create == 0 {
			break
		}
		if e = c.alloc(addr, now); e == nil {
			c.mu.Unlock()
			return ErrTableFull
		}
		e.mac = mac
		e.router = f&IsRouter != 0
		c.stale(e, now)
	case e.state == Permanent:
	case !e.state.HasAddr():
		if f&IsRouter != 0 {
			e.router = true
		}
		c.gotAddr(&ef, e, mac, Stale, now)
	default:
		if mac != e.mac {
			if c.locked(e, now) {
				break
			}
			e.mac = mac
			c.stale(e, now)
		}
		if f&IsRouter != 0 {
			e.router = true
		}
	}
	c.mu.Unlock()
	c.run(&ef)
	return nil
}

// ConfirmReachable records an upper-layer reachability confirmation
// (RFC 4861 §7.3.1: e.g. new TCP data acknowledged): an entry with an
// address goes to REACHABLE. It reports whether an entry was confirmed.
// It is cheap when the entry is already REACHABLE, as it is per ACK.
func (c *Cache[P]) ConfirmReachable(addr netip.Addr) bool {
	addr = normalize(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.table[addr]
	if c.closed || e == nil || !e.state.HasAddr() || e.state == Permanent {
		return false
	}
	c.reach(e, time.Now())
	return true
}

// AddStatic makes addr a PERMANENT entry at mac (`arp -s`), replacing any
// entry; packets queued for it go to Resolved.
func (c *Cache[P]) AddStatic(addr netip.Addr, mac wire.MAC) error {
	addr = normalize(addr)
	if !neighbourAddr(addr) {
		return ErrInvalidAddress
	}
	if mac.IsZero() {
		return ErrInvalidLinkAddress
	}
	var ef effects[P]
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	now := time.Now()
	e := c.table[addr]
	if e == nil {
		if e = c.alloc(addr, now); e == nil {
			c.mu.Unlock()
			return ErrTableFull
		}
	}
	if len(e.queue) > 0 {
		ef.resolved = true
		ef.resTarget, ef.resMAC = addr, mac
		ef.resPending = c.takeQueue(e)
	}
	e.mac = mac
	e.probes = 0
	e.router = false
	c.setState(e, Permanent, now)
	c.disarm(e)
	c.mu.Unlock()
	c.run(&ef)
	return nil
}

// Delete removes addr's entry, whatever its state, dropping any packets
// queued for it. It reports whether there was one.
func (c *Cache[P]) Delete(addr netip.Addr) bool {
	addr = normalize(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.table[addr]
	if e == nil {
		return false
	}
	c.stats.UnresolvedDiscards += uint64(len(e.queue))
	c.remove(e)
	return true
}

// Flush removes every entry except PERMANENT ones (`ip neigh flush`),
// dropping queued packets. It returns the number removed.
func (c *Cache[P]) Flush() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.table {
		if e.state == Permanent {
			continue
		}
		c.stats.UnresolvedDiscards += uint64(len(e.queue))
		c.remove(e)
		n++
	}
	return n
}

// Close stops every timer and empties the cache, dropping queued packets.
// No handler call starts after Close returns; later calls into the cache
// do nothing (inputs return ErrClosed, Resolve drops). Close is idempotent.
func (c *Cache[P]) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.gcTimer.Stop()
	for _, e := range c.table {
		c.stats.UnresolvedDiscards += uint64(len(e.queue))
		c.remove(e)
	}
}

func (e *entry[P]) snapshot() Entry {
	return Entry{
		Addr: e.addr, MAC: e.mac, State: e.state, Router: e.router,
		Queued: len(e.queue), Probes: e.probes,
		Updated: e.updated, Used: e.used, Confirmed: e.confirmed,
	}
}

// Lookup returns addr's entry without using it (no state change).
func (c *Cache[P]) Lookup(addr netip.Addr) (Entry, bool) {
	addr = normalize(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.table[addr]; e != nil {
		return e.snapshot(), true
	}
	return Entry{}, false
}

// Entries returns a snapshot of every entry, sorted by address.
func (c *Cache[P]) Entries() []Entry {
	c.mu.Lock()
	out := make([]Entry, 0, len(c.table))
	for _, e := range c.table {
		out = append(out, e.snapshot())
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Len returns the number of entries.
func (c *Cache[P]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.table)
}

// Stats returns a snapshot of the counters.
func (c *Cache[P]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// ReachableTime returns the current random ReachableTime.
func (c *Cache[P]) ReachableTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reachable
}

// SetBaseReachableTime sets BaseReachableTime, as from a Router
// Advertisement's Reachable Time; a changed value draws a new
// ReachableTime at once (RFC 4861 §6.3.4). d <= 0 is ignored.
func (c *Cache[P]) SetBaseReachableTime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 && d != c.cfg.BaseReachableTime {
		c.cfg.BaseReachableTime = d
		c.drawReachable(time.Now())
	}
}

// SetRetransTime sets RetransTime, as from a Router Advertisement's
// Retrans Timer (RFC 4861 §6.3.4); it applies from the next
// solicitation. d <= 0 is ignored.
func (c *Cache[P]) SetRetransTime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.cfg.RetransTime = d
	}
}
