package neighbor

import (
	"errors"
	"net/netip"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// State is the reachability state of an entry (RFC 4861 §7.3.2, with the
// Linux additions FAILED and PERMANENT). The names are the ones `ip neigh`
// prints.
type State uint8

// The states. The zero value is not a state: no entry ever holds it.
const (
	// Incomplete: resolution is in progress; multicast (NDP) or broadcast
	// (ARP) solicitations go out every RetransTime. Packets wait in the
	// entry's queue.
	Incomplete State = iota + 1
	// Reachable: the neighbour was confirmed reachable within the last
	// ReachableTime.
	Reachable
	// Stale: the address is known but unconfirmed; nothing happens until a
	// packet is sent (RFC 4861 §7.3.3).
	Stale
	// Delay: a packet was sent to a Stale entry; upper layers have
	// DelayFirstProbeTime to confirm reachability before probing starts.
	Delay
	// Probe: unicast solicitations every RetransTime, at most
	// MaxUnicastSolicit of them.
	Probe
	// Failed: resolution or probing failed. The entry stays (so tools show
	// it) until garbage collection removes it; sending to it restarts
	// resolution, as Linux does.
	Failed
	// Permanent: a static entry (`arp -s`, `ip neigh add … nud permanent`);
	// nothing received changes it and it never expires.
	Permanent
)

var stateNames = [...]string{
	Incomplete: "INCOMPLETE",
	Reachable:  "REACHABLE",
	Stale:      "STALE",
	Delay:      "DELAY",
	Probe:      "PROBE",
	Failed:     "FAILED",
	Permanent:  "PERMANENT",
}

// String returns the state's name as `ip neigh` prints it.
func (s State) String() string {
	if s >= Incomplete && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "NONE"
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s >= Incomplete && s <= Permanent }

// HasAddr reports whether an entry in state s holds a usable link-layer
// address (Linux NUD_VALID): every state except Incomplete and Failed.
func (s State) HasAddr() bool { return s.Valid() && s != Incomplete && s != Failed }

// AdvFlags describe a received advertisement: a Neighbor Advertisement's
// R, S and O bits (RFC 4861 §4.4) and whether it carried a Target
// Link-Layer Address option. An ARP reply unicast to us is
// Solicited|Override, as Linux treats it; a broadcast one should go
// through Learn instead.
type AdvFlags uint8

const (
	// Solicited: the S bit, the advertisement answers a solicitation.
	Solicited AdvFlags = 1 << iota
	// Override: the O bit, the advertisement may replace a cached address.
	Override
	// Router: the R bit, the sender is a router.
	Router
	// NoLinkAddr: no Target Link-Layer Address option; the mac argument is
	// ignored.
	NoLinkAddr
)

// LearnFlags qualify Learn.
type LearnFlags uint8

const (
	// Create: create a Stale entry when none exists (a Neighbor or Router
	// Solicitation, Router Advertisement or Redirect with a link-layer
	// address option, RFC 4861 §7.2.3, §6.3.4, §8.3; an ARP request whose
	// target is one of our addresses). Without it only an existing entry is
	// updated: RFC 826 "merge" for ARP packets not addressed to us.
	Create LearnFlags = 1 << iota
	// IsRouter: the sender is known to be a router (a Router
	// Advertisement, or the target of a Redirect), so set the entry's
	// router flag (RFC 4861 §6.3.4, §8.3).
	IsRouter
)

// Errors returned by the input methods.
var (
	// ErrInvalidAddress: the protocol address is not a unicast address a
	// neighbour can hold (invalid, unspecified, multicast, broadcast…).
	ErrInvalidAddress = errors.New("neighbor: not a unicast neighbour address")
	// ErrInvalidLinkAddress: the hardware address is zero, or multicast
	// where a station address is required.
	ErrInvalidLinkAddress = errors.New("neighbor: invalid link-layer address")
	// ErrLocalAddress: the packet claims one of our own addresses
	// (Config.IsLocal); the cache ignored it and the owner should run its
	// address conflict handling (RFC 5227 §2.4).
	ErrLocalAddress = errors.New("neighbor: address is one of ours")
	// ErrTableFull: no entry could be made because every entry is
	// permanent.
	ErrTableFull = errors.New("neighbor: table full")
	// ErrClosed: the cache was closed.
	ErrClosed = errors.New("neighbor: cache closed")
)

// Entry is a snapshot of one neighbour for display tools (`arp -a`,
// `ip -s neigh`).
type Entry struct {
	Addr  netip.Addr
	MAC   wire.MAC // zero unless State.HasAddr()
	State State
	// Router is NDP's IsRouter flag (`ip neigh` prints "router").
	Router bool
	// Queued is the number of packets waiting for resolution.
	Queued int
	// Probes is the number of solicitations sent in the current state.
	Probes int
	// Updated is the last state change, Used the last packet sent through
	// the entry, Confirmed the last reachability confirmation (zero if
	// never). `ip -s neigh` prints their ages as "used U/C/Upd".
	Updated, Used, Confirmed time.Time
}

// Stats count the cache's work. The names follow Linux's per-table
// statistics (`ip -s ntable`, /proc/net/stat/arp_cache).
type Stats struct {
	Lookups uint64 // Resolve calls
	Hits    uint64 // Resolve calls answered with an address at once
	Allocs  uint64 // entries created
	// Destroys counts entries removed for any reason.
	Destroys uint64
	// ResFailed counts entries that went to Failed (resolution or probing
	// gave up).
	ResFailed uint64
	// UnresolvedDiscards counts packets dropped rather than handed back:
	// queue overflow (the oldest goes), an evicted or deleted entry's
	// queue, a full table, an invalid address, a closed cache.
	UnresolvedDiscards uint64
	// ForcedGCRuns counts entries evicted to make room for a new one.
	ForcedGCRuns uint64
	// PeriodicGCRuns counts runs of the periodic sweep.
	PeriodicGCRuns uint64
	// TableFulls counts new entries refused because nothing was evictable.
	TableFulls uint64
	// SolicitsSent counts multicast/broadcast solicitations, ProbesSent
	// unicast ones.
	SolicitsSent, ProbesSent uint64
}

// Config holds the per-NIC, per-family parameters (the Linux
// /proc/sys/net/ipv{4,6}/neigh/IFACE/* values and RFC 4861 §10 constants).
// A zero or negative field takes its default.
type Config struct {
	// BaseReachableTime: REACHABLE lasts a random ReachableTime drawn
	// uniformly from [0.5, 1.5) × this (RFC 4861 §6.3.2). Default 30 s.
	BaseReachableTime time.Duration
	// ReachableRecompute: how often ReachableTime is drawn again
	// ("at least every few hours", RFC 4861 §6.3.4). Default 300 s, as Linux.
	ReachableRecompute time.Duration
	// RetransTime between solicitations. Default 1 s.
	RetransTime time.Duration
	// DelayFirstProbeTime spent in DELAY. Default 5 s.
	DelayFirstProbeTime time.Duration
	// MaxMulticastSolicit: broadcast/multicast solicitations while
	// INCOMPLETE before giving up. Default 3.
	MaxMulticastSolicit int
	// MaxUnicastSolicit: unicast probes in PROBE before giving up. Default 3.
	MaxUnicastSolicit int
	// QueueLen bounds the packets queued per unresolved entry (RFC 4861
	// §7.2.2: the newest replaces the oldest). Default 16.
	QueueLen int
	// QueueBytes, if positive, also bounds the queued bytes per entry, as
	// measured by the handler's PacketSize method (see PacketSizer). The
	// newest packet is always kept. Default: no byte bound.
	QueueBytes int
	// MaxEntries is the hard bound on the table (Linux gc_thresh3).
	// Default 1024.
	MaxEntries int
	// GCInterval: how often the periodic sweep runs. Default 30 s.
	GCInterval time.Duration
	// GCStaleTime: the sweep removes STALE and FAILED entries neither used
	// nor updated for this long (Linux gc_staletime). Default 60 s.
	GCStaleTime time.Duration
	// LockTime: an address learned less than this long ago is not replaced
	// by a different one (Linux locktime; ARP sets 1 s so the first of
	// several proxy replies wins). Default 0: no lock.
	LockTime time.Duration
	// Seed seeds the ReachableTime randomisation; 0 picks a random seed.
	Seed uint64
	// IsLocal, if set, reports whether an address is one of ours on this
	// NIC. Received packets claiming it are not cached (ErrLocalAddress).
	// It is called without the cache's lock held.
	IsLocal func(netip.Addr) bool
}

func (c Config) withDefaults() Config {
	setD := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setI := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setD(&c.BaseReachableTime, 30*time.Second)
	setD(&c.ReachableRecompute, 300*time.Second)
	setD(&c.RetransTime, time.Second)
	setD(&c.DelayFirstProbeTime, 5*time.Second)
	setI(&c.MaxMulticastSolicit, 3)
	setI(&c.MaxUnicastSolicit, 3)
	setI(&c.QueueLen, 16)
	setI(&c.MaxEntries, 1024)
	setD(&c.GCInterval, 30*time.Second)
	setD(&c.GCStaleTime, 60*time.Second)
	if c.QueueBytes < 0 {
		c.QueueBytes = 0
	}
	if c.LockTime < 0 {
		c.LockTime = 0
	}
	return c
}

// Handler is the cache's owner: the NIC's ARP or NDP code. The cache calls
// it without holding its lock, so a handler may call back into the cache.
// Calls for different addresses may come concurrently from different
// goroutines (callers of the input methods and timer goroutines).
type Handler[P any] interface {
	// SendSolicit asks for an ARP request or Neighbor Solicitation for
	// target: broadcast (ARP) or to the solicited-node multicast group
	// (NDP) when unicastTo is zero, else a unicast probe to unicastTo.
	// If hasPrompt, prompt is the newest packet waiting for the address:
	// RFC 4861 §7.2.2 and Linux take the solicitation's source address from
	// it when it is one of ours.
	SendSolicit(target netip.Addr, unicastTo wire.MAC, prompt P, hasPrompt bool)
	// Resolved reports that target, which had no address, now has mac,
	// and hands back the packets that waited for it, oldest first, to be
	// sent. pending may be empty; the owner owns the slice.
	Resolved(target netip.Addr, mac wire.MAC, pending []P)
	// Unreachable reports that resolution or probing of target failed
	// (the entry is now FAILED) and hands back the packets that waited;
	// the owner answers them with ICMP address unreachable (RFC 1122
	// §2.3.2.2, RFC 4861 §7.2.2). pending may be empty.
	Unreachable(target netip.Addr, pending []P)
}

// PacketSizer is an optional interface of a Handler: with it and a
// positive Config.QueueBytes, queues are bounded in bytes as well.
type PacketSizer[P any] interface {
	PacketSize(P) int
}

// PromptCopier is an optional interface of a Handler whose packets are
// modified when sent (headers prepended in place): the cache then hands
// SendSolicit a copy of the prompting packet, made under its lock, instead
// of the queued packet itself, which a concurrent Resolved may be sending.
type PromptCopier[P any] interface {
	CopyPrompt(p P) P
}
