package tcp

import "github.com/stackbox/stackbox/pkg/tcp/seqnum"

// Memory accounting across a Protocol's connections: Linux's
// net.ipv4.tcp_mem and the sk_forward_alloc charging of
// __sk_mem_raise_allocated / __sk_mem_reduce_allocated. What is charged
// is the allocation of the send and receive rings (len(ring.b)): it
// changes only when a ring grows (ring.ensure doubles it), shrinks
// (pruneRcvLocked) or is freed (idle, close), so the counter costs one
// atomic add per growth, never one per segment or byte.

// DefaultMemLimit is Protocol.MemLimit's default: 256 MiB. Linux derives
// tcp_mem from the machine's memory (tcp_init_mem: the limit is 1/16 of
// the free buffer pages, tcp_mem[2] 1.5 times that); a userspace stack
// does not know its share of the machine, so the default is fixed: an
// eighth of a notional 2 GiB budget, room for a thousand busy connections
// with the default buffers (some thirty at the auto-tuning maximum).
const DefaultMemLimit = 256 << 20

// memMinRing is what a ring may always hold, whatever the total: Linux
// lets a socket below tcp_rmem[0] / tcp_wmem[0] (4 KiB) allocate past
// the hard limit (__sk_mem_raise_allocated's "guarantee minimum buffer
// size"), so every connection can make progress and two ends on one
// Protocol cannot starve each other into a deadlock.
const memMinRing = ringMinAlloc

// memLimits returns the hard limit, the pressure threshold and the level
// below which pressure ends (Linux tcp_mem[2], [1], [0]; [0] is 3/4 of
// [1] by default there too).
func (p *Protocol) memLimits() (limit, pressure, low int64) {
	limit = p.MemLimit
	if limit <= 0 {
		limit = DefaultMemLimit
	}
	pressure = p.MemPressure
	if pressure <= 0 || pressure > limit {
		pressure = limit / 4 * 3
	}
	return limit, pressure, pressure / 4 * 3
}

// MemAllocated is the bytes the send and receive buffers of all the
// Protocol's connections hold now (the "mem" of /proc/net/sockstat's
// TCP line, in bytes rather than pages).
func (p *Protocol) MemAllocated() int64 { return p.mem.Load() }

// UnderMemoryPressure reports whether the total passed MemPressure and
// has not yet fallen below 3/4 of it (Linux tcp_under_memory_pressure).
func (p *Protocol) UnderMemoryPressure() bool { return p.memPressure.Load() }

// memCharge adds delta (negative: a release) to the total and moves in
// and out of memory pressure (Linux sk_enter_memory_pressure,
// sk_leave_memory_pressure). It returns the new total.
func (p *Protocol) memCharge(delta int) int64 {
	if delta == 0 {
		return p.mem.Load()
	}
	t := p.mem.Add(int64(delta))
	if delta > 0 {
		p.memNoteGrowth()
		return t
	}
	if p.memPressure.Load() {
		if _, _, low := p.memLimits(); t < low {
			p.memPressure.Store(false)
		}
	}
	return t
}

// memNoteGrowth enters memory pressure when the total passed
// MemPressure.
func (p *Protocol) memNoteGrowth() {
	if p.memPressure.Load() {
		return
	}
	if _, pressure, _ := p.memLimits(); p.mem.Load() > pressure && p.memPressure.CompareAndSwap(false, true) {
		p.stats.MemoryPressures.Add(1)
	}
}

// ringGrowLocked makes r hold offsets below size, charging the growth,
// unless the growth would take the total past MemLimit and r already
// holds its guaranteed minimum: then it reports false and r is unchanged
// (Linux sk_rmem_schedule / sk_wmem_schedule failing).
func (e *endpoint) ringGrowLocked(r *ring, size int) bool {
	c := r.capFor(size)
	need := c - len(r.b)
	if need == 0 {
		return true
	}
	if c > memMinRing {
		// Reserve the growth only if the total stays within the limit,
		// so the total never passes it even for a moment.
		limit, _, _ := e.p.memLimits()
		for {
			t := e.p.mem.Load()
			if t+int64(need) > limit {
				return false
			}
			if e.p.mem.CompareAndSwap(t, t+int64(need)) {
				break
			}
		}
		e.p.memNoteGrowth()
	} else {
		e.p.memCharge(need)
	}
	r.resize(c)
	return true
}

// ringCanGrowLocked reports whether r could grow to hold offsets below
// size now (no charge is made).
func (e *endpoint) ringCanGrowLocked(r *ring, size int) bool {
	c := r.capFor(size)
	need := c - len(r.b)
	if need == 0 || c <= memMinRing {
		return true
	}
	limit, _, _ := e.p.memLimits()
	return e.p.mem.Load()+int64(need) <= limit
}

// freeRingLocked frees r and gives its charge back.
func (e *endpoint) freeRingLocked(r *ring) {
	k := len(r.b)
	*r = ring{}
	e.p.memCharge(-k)
}

// releaseRingLocked frees r if it is empty (ring.release), uncharging it.
func (e *endpoint) releaseRingLocked(r *ring) {
	e.p.memCharge(-r.release())
}

// memHeldLocked is what this connection has charged.
func (e *endpoint) memHeldLocked() int { return len(e.snd.b) + len(e.rcv.b) }

// sndSpaceLocked is how many more bytes a write may queue: the room
// SO_SNDBUF leaves, unless the ring would have to grow past what the
// total allows; then only the room the ring already has (at least its
// guaranteed minimum), so the write waits for ACKs to free it instead of
// growing (Linux sk_stream_memory_free, sk_stream_wait_memory).
func (e *endpoint) sndSpaceLocked() int {
	free := e.sndFreeLocked()
	if free <= 0 || e.ringCanGrowLocked(&e.snd, e.snd.n+free) {
		return free
	}
	held := max(len(e.snd.b), memMinRing)
	if e.ringCanGrowLocked(&e.snd, held+1) {
		// The next doubling still fits although the full SO_SNDBUF does not.
		held = e.snd.capFor(held + 1)
	}
	return max(min(free, held-e.snd.n), 0)
}

// rcvMemRoomLocked caps the window we offer at the hard limit: if the
// receive ring could not grow, the window is what the ring holds already
// (at least the guaranteed minimum), so the peer is told the truth, a
// zero window when the ring is full (Linux tcp_select_window under
// tcp_under_memory_pressure, tcp_clamp_window). free is the window the
// buffer size alone allows.
func (e *endpoint) rcvMemRoomLocked(free int) int {
	if free <= 0 {
		return free
	}
	held := max(len(e.rcv.b), memMinRing)
	if e.rcv.n+free <= held {
		return free
	}
	// The common case, far from the limit: one atomic load (a ring at
	// most doubles past what it must hold).
	limit, _, _ := e.p.memLimits()
	if e.p.mem.Load()+2*int64(e.rcv.n+free) <= limit || e.ringCanGrowLocked(&e.rcv, e.rcv.n+free) {
		return free
	}
	if e.ringCanGrowLocked(&e.rcv, held+1) {
		held = e.rcv.capFor(held + 1)
	}
	return max(min(free, held-e.rcv.n), 0)
}

// pruneRcvLocked is Linux's tcp_prune_ofo_queue for our single receive
// ring: when receive memory is refused at the hard limit, out-of-order
// data goes first. The ring shrinks to the smallest size that holds the
// unread in-order bytes (and the guaranteed minimum); out-of-order data
// above that is dropped from the top, and its ranges leave e.ooo, so no
// later SACK block reports it (RFC 2018 §8 reneging: the sender keeps
// SACKed data until it is acknowledged and resends it after a timeout,
// onRTO's Reneged check). It reports whether memory was freed.
func (e *endpoint) pruneRcvLocked() bool {
	e.p.stats.PruneCalled.Add(1)
	if e.ooo.Len() == 0 {
		return false
	}
	c := ringMinAlloc
	for c < e.rcv.n {
		c *= 2
	}
	if c >= len(e.rcv.b) {
		return false
	}
	keepEnd := e.rcvNxt.Add(seqnum.Size(c - e.rcv.n))
	if e.ooo.TrimAbove(keepEnd) > 0 {
		e.p.stats.OfoPruned.Add(1)
	}
	if e.oooFin && keepEnd.LessThan(e.oooFinSeq) {
		e.oooFin = false
	}
	e.p.memCharge(e.rcv.resize(c))
	return true
}

// rcvScheduleLocked gets the receive ring the memory for n bytes at
// offset off (of sequence number seq), or as much of it as the hard
// limit allows (Linux tcp_try_rmem_schedule). In-order data that is
// refused first has the out-of-order data pruned (tcp_prune_queue,
// tcp_prune_ofo_queue) and tries again; out-of-order data is simply
// dropped (tcp_data_queue_ofo's TCPOFODrop). It reports whether any of
// the bytes have room (the caller keeps what len(e.rcv.b) holds).
func (e *endpoint) rcvScheduleLocked(seq seqnum.Value, off, n int) bool {
	if off+n <= len(e.rcv.b) || e.ringGrowLocked(&e.rcv, off+n) {
		return true
	}
	inOrder := seq == e.rcvNxt
	if inOrder && e.pruneRcvLocked() && e.ringGrowLocked(&e.rcv, off+n) {
		return true
	}
	if off < len(e.rcv.b) {
		return true // part of it fits in what the ring holds
	}
	if inOrder {
		e.p.stats.RcvQDrop.Add(1)
	} else {
		e.p.stats.OFODrop.Add(1)
	}
	return false
}
