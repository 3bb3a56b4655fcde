package fragment

import (
	"bytes"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Family says which IP version a datagram belongs to; it selects the
// family-specific rules (see Key and Config.MaxDatagram).
type Family uint8

// The IP families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Key names the datagram a fragment belongs to. It is comparable and used
// as a map key.
//
// IPv4: source, destination, protocol and the 16-bit identification (RFC
// 791 §3.2). IPv6: source, destination and the 32-bit identification, with
// Proto left zero, because the Next Header of the fragments may differ and
// only the offset-zero fragment's value counts (RFC 8200 §4.5). Link-local
// addresses carry their zone, which keeps interfaces apart.
type Key struct {
	Family   Family
	Src, Dst netip.Addr
	Proto    uint8
	ID       uint32
}

// Packet is one received fragment as the stack parsed it.
type Packet struct {
	// Offset of Data within the datagram's fragmentable part, in bytes (the
	// header field times 8).
	Offset int
	// More is the M / MF flag: more fragments follow.
	More bool
	// Header is every byte of the fragment packet before Data: for IPv4 the
	// IP header with options; for IPv6 the fixed header, the extension
	// headers and the Fragment header itself. The offset-zero fragment's
	// Header is kept (copied) and returned with the datagram, so the stack
	// can build the reassembled header from it, and with an expiry, so the
	// stack can quote it in ICMP. IPv4 counts every fragment's Header
	// toward Config.MaxDatagram.
	Header []byte
	// Data is the fragment's data; it is copied, the caller keeps it.
	Data []byte
}

// Datagram is a reassembled datagram. The reassembler keeps no reference to
// it: the slices belong to the caller.
type Datagram struct {
	// Header is the offset-zero fragment's Packet.Header.
	Header []byte
	// Data is the datagram's whole fragmentable part.
	Data []byte
	// Buf is Data with Config.Headroom bytes in front of it
	// (Data == Buf[Config.Headroom:]), so the stack can write the
	// reassembled headers in place without copying the data again. For an
	// atomic fragment, which is returned as passed, Buf is Data.
	Buf []byte
}

// Expired is a datagram that timed out after its offset-zero fragment had
// arrived: what the stack needs for ICMP Time Exceeded code 1 ("fragment
// reassembly time exceeded"). The slices belong to the callee.
type Expired struct {
	Key Key
	// Header and Data are the offset-zero fragment as received.
	Header []byte
	Data   []byte
}

// Config tunes a Reassembler. Zero fields take the defaults below.
type Config struct {
	// Timeout is how long a datagram may take to complete, counted from its
	// first fragment. Default 30 s (Linux ipfrag_time for IPv4); RFC 8200
	// §4.5 sets 60 s for IPv6 (IPv6Config).
	Timeout time.Duration
	// MemoryLimit bounds the bytes held by all pending datagrams together.
	// Default 4 MiB (Linux ipfrag_high_thresh).
	MemoryLimit int
	// MaxDatagram is the largest datagram, default 65535. IPv4: the total
	// length, IP header included (RFC 791 §3.1), checked for every fragment
	// with its own header and again with the first fragment's header.
	// IPv6: a fragment must end within MaxDatagram bytes of the
	// fragmentable part (RFC 8200 §4.5, else ErrTooBig and an ICMP
	// Parameter Problem), and the reassembled Payload Length must not exceed
	// it either (ErrOversize).
	MaxDatagram int
	// MaxFragments bounds the fragments kept per datagram, and so the
	// bookkeeping per datagram. Default 2048, enough for a 65535-byte IPv4
	// datagram sent over the minimum 68-byte MTU (48 data bytes each).
	MaxFragments int
	// Headroom is reserved in front of each reassembled datagram's data
	// (see Datagram.Buf). It is charged to MemoryLimit.
	Headroom int
	// OnTimeout, if set, is called for every datagram that times out after
	// its offset-zero fragment arrived, without the Reassembler's lock held.
	OnTimeout func(Expired)
	// OnFail, if set, is called, without the lock held, for every pending
	// datagram that fails without an OnTimeout call: one that timed out
	// before its offset-zero fragment arrived (timedOut true) or one
	// evicted to stay within MemoryLimit (timedOut false). With OnTimeout
	// it lets the owner count every failure, as Linux counts
	// ReasmFails/ReasmTimeout for each expired or dropped queue
	// (ip_expire, ip_defrag).
	OnFail func(k Key, timedOut bool)
}

// Defaults.
const (
	DefaultIPv4Timeout  = 30 * time.Second // Linux net.ipv4.ipfrag_time
	DefaultIPv6Timeout  = 60 * time.Second // RFC 8200 §4.5
	DefaultMemoryLimit  = 4 << 20          // Linux net.ipv4.ipfrag_high_thresh
	DefaultMaxDatagram  = 65535
	DefaultMaxFragments = 2048
)

// IPv4Config returns the defaults for IPv4 reassembly.
func IPv4Config() Config {
	return Config{Timeout: DefaultIPv4Timeout, MemoryLimit: DefaultMemoryLimit,
		MaxDatagram: DefaultMaxDatagram, MaxFragments: DefaultMaxFragments}
}

// IPv6Config returns the defaults for IPv6 reassembly.
func IPv6Config() Config {
	c := IPv4Config()
	c.Timeout = DefaultIPv6Timeout
	return c
}

// Errors from Process. Those marked "discards the datagram" also drop every
// fragment received so far and remember the key until the datagram's
// timeout, so later fragments of it get ErrDiscarded.
var (
	// ErrMalformed: a negative offset, one not a multiple of 8 or beyond the
	// 13-bit field, or a fragment without data.
	ErrMalformed = errors.New("fragment: malformed fragment")
	// ErrUnaligned: a fragment with More set whose data is not a multiple of
	// 8 bytes. IPv6: send ICMP Parameter Problem code 0 pointing at the
	// Payload Length field (RFC 8200 §4.5).
	ErrUnaligned = errors.New("fragment: non-final fragment length is not a multiple of 8")
	// ErrTooBig: the fragment ends beyond Config.MaxDatagram. IPv6: send
	// ICMP Parameter Problem code 0 pointing at the Fragment Offset field
	// (RFC 8200 §4.5).
	ErrTooBig = errors.New("fragment: fragment extends beyond the maximum datagram size")
	// ErrOversize: the first fragment's headers plus the datagram's length
	// exceed Config.MaxDatagram. Discards the datagram.
	ErrOversize = errors.New("fragment: reassembled datagram would exceed the maximum size")
	// ErrLengthConflict: a last fragment disagreeing with an earlier last
	// fragment, data beyond a known end, or a last fragment ending before
	// data already received. Discards the datagram.
	ErrLengthConflict = errors.New("fragment: fragment conflicts with the datagram's length")
	// ErrOverlap: the fragment overlaps data already received and is not an
	// exact duplicate (RFC 5722; CVE-2018-5391). Discards the datagram.
	ErrOverlap = errors.New("fragment: overlapping fragment")
	// ErrTooManyFragments: the datagram already holds Config.MaxFragments
	// fragments. Discards the datagram.
	ErrTooManyFragments = errors.New("fragment: too many fragments")
	// ErrNoMemory: the datagram cannot fit within Config.MemoryLimit even
	// after evicting every other. The datagram is dropped.
	ErrNoMemory = errors.New("fragment: reassembly memory limit reached")
	// ErrDiscarded: the datagram was discarded earlier and its timeout has
	// not yet run out.
	ErrDiscarded = errors.New("fragment: datagram was discarded")
	// ErrClosed: the Reassembler was closed.
	ErrClosed = errors.New("fragment: reassembler closed")
)

// Stats are the reassembly counters, named after Linux /proc/net/snmp
// (RFC 2011 ipReasm*; the IPv6 Ip6Reasm* counters mean the same).
type Stats struct {
	// ReasmReqds counts fragments received (every Process call).
	ReasmReqds uint64
	// ReasmOKs counts datagrams reassembled, atomic fragments included.
	ReasmOKs uint64
	// ReasmFails counts failures: each fragment rejected with an error
	// (once, even if it discarded its datagram), and each datagram that
	// timed out or was evicted.
	ReasmFails uint64
	// ReasmTimeout counts datagrams that timed out (also in ReasmFails).
	ReasmTimeout uint64
	// Overlaps counts datagrams discarded for overlapping fragments.
	Overlaps uint64
	// Duplicates counts exact duplicate fragments ignored.
	Duplicates uint64
	// Evictions counts pending datagrams evicted to stay within
	// MemoryLimit (also in ReasmFails).
	Evictions uint64
	// Atomic counts atomic fragments (offset 0, More clear; RFC 6946).
	Atomic uint64
}

// maxOffset is the largest offset the 13-bit field in 8-byte units can
// express (RFC 791 §3.1, RFC 8200 §4.5).
const maxOffset = 0x1fff * 8

// Memory charged besides the buffers: a rough size of an entry with its map
// slot and list links, and of one interval.
const (
	entryOverhead = 256
	spanSize      = 8
)

// IPv6 header bytes in Packet.Header that do not count toward the Payload
// Length of the reassembled packet: the fixed header and the Fragment
// header (RFC 8200 §4.5).
const ipv6Uncounted = 40 + 8

// span is one received fragment, [off, end) within the fragmentable part.
type span struct{ off, end int32 }

// entry is one pending (or discarded) datagram.
type entry struct {
	key        Key
	deadline   time.Time
	prev, next *entry // age list, oldest first

	dead     bool   // discarded; kept only to drop stragglers
	buf      []byte // Headroom bytes, then the data at its offset
	header   []byte // the offset-zero fragment's Header; nil until it arrives
	first    bool   // the offset-zero fragment arrived
	spans    []span // sorted, never overlapping
	received int    // data bytes received (sum of the spans)
	total    int    // data length, -1 until the last fragment arrives
	charge   int    // bytes charged to the memory limit
}

// Reassembler reassembles fragmented datagrams. Create it with New; it is
// safe for concurrent use.
type Reassembler struct {
	cfg Config

	mu         sync.Mutex
	pending    map[Key]*entry
	head, tail *entry // age list: creation order is deadline order
	used       int    // bytes charged by all entries
	timer      *time.Timer
	closed     bool
	stats      Stats
	failed     []failure // for OnFail, reported once the lock is released
}

// failure is a datagram to report to Config.OnFail.
type failure struct {
	key      Key
	timedOut bool
}

// New returns a Reassembler. Zero Config fields take the IPv4 defaults.
func New(cfg Config) *Reassembler {
	d := IPv4Config()
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.MemoryLimit <= 0 {
		cfg.MemoryLimit = d.MemoryLimit
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = d.MaxDatagram
	}
	if cfg.MaxFragments <= 0 {
		cfg.MaxFragments = d.MaxFragments
	}
	if cfg.Headroom < 0 {
		cfg.Headroom = 0
	}
	return &Reassembler{cfg: cfg, pending: make(map[Key]*entry)}
}

// Process adds one fragment. When it completes its datagram, Process returns
// the datagram and done = true. A nil error with done = false means the
// fragment was queued, or was an exact duplicate and ignored. An error
// means the fragment was dropped; see the Err variables for which also
// discard the datagram and which ask for an ICMP error. The fragment's
// bytes are copied; the caller keeps p.
func (r *Reassembler) Process(key Key, p Packet) (d Datagram, done bool, err error) {
	end := p.Offset + len(p.Data)
	r.mu.Lock()
	r.stats.ReasmReqds++
	switch {
	case r.closed:
		err = ErrClosed
	case p.Offset < 0 || p.Offset%8 != 0 || p.Offset > maxOffset:
		err = ErrMalformed
	case p.Offset == 0 && !p.More:
		// An atomic fragment is a whole datagram by itself and must not
		// touch a pending datagram with the same identification (RFC 6946
		// §4).
		r.stats.ReasmOKs++
		r.stats.Atomic++
		r.mu.Unlock()
		return Datagram{Header: p.Header, Data: p.Data, Buf: p.Data}, true, nil
	case len(p.Data) == 0:
		err = ErrMalformed
	case p.More && len(p.Data)%8 != 0:
		err = ErrUnaligned
	case key.Family == IPv4 && len(p.Header)+end > r.cfg.MaxDatagram,
		key.Family != IPv4 && end > r.cfg.MaxDatagram:
		err = ErrTooBig
	}
	if err != nil {
		r.stats.ReasmFails++
		r.mu.Unlock()
		return Datagram{}, false, err
	}

	now := time.Now()
	expired := r.expireLocked(now)
	e := r.pending[key]
	switch {
	case e == nil:
		e, err = r.create(key, now)
		if err == nil {
			d, done, err = r.add(e, p)
		}
	case e.dead:
		err = ErrDiscarded
	default:
		d, done, err = r.add(e, p)
	}
	if err != nil {
		r.stats.ReasmFails++
	}
	failed := r.takeFailedLocked()
	r.mu.Unlock()
	r.report(expired, failed)
	return d, done, err
}

// create makes a pending entry for key, evicting old datagrams if the
// overhead does not fit.
func (r *Reassembler) create(key Key, now time.Time) (*entry, error) {
	if !r.makeRoom(entryOverhead, nil) {
		return nil, ErrNoMemory
	}
	e := &entry{key: key, deadline: now.Add(r.cfg.Timeout), total: -1, charge: entryOverhead}
	r.used += entryOverhead
	r.pending[key] = e
	e.prev = r.tail
	if r.tail != nil {
		r.tail.next = e
	} else {
		r.head = e
		r.armLocked(now)
	}
	r.tail = e
	return e, nil
}

// add merges p into the live entry e.
func (r *Reassembler) add(e *entry, p Packet) (Datagram, bool, error) {
	off, end := p.Offset, p.Offset+len(p.Data)
	maxEnd := 0
	if n := len(e.spans); n > 0 {
		maxEnd = int(e.spans[n-1].end)
	}
	// Length rules (RFC 791 §3.2 and RFC 8200 §4.5 leave them implicit;
	// these are Linux's ip_frag_queue checks).
	if !p.More {
		if (e.total >= 0 && end != e.total) || end < maxEnd {
			return r.discard(e, ErrLengthConflict)
		}
	} else if e.total >= 0 && end > e.total {
		return r.discard(e, ErrLengthConflict)
	}

	// The first span that ends after off is the only one that can overlap
	// the start of p; if it starts before end, p overlaps it.
	i := r.search(e.spans, off)
	if i < len(e.spans) && int(e.spans[i].off) < end {
		s := e.spans[i]
		h := r.cfg.Headroom
		if int(s.off) == off && int(s.end) == end && bytes.Equal(e.buf[h+off:h+end], p.Data) {
			// Exact duplicate: the network may duplicate packets (RFC 8200
			// §4.5 lets us keep the datagram).
			r.stats.Duplicates++
			return Datagram{}, false, nil
		}
		r.stats.Overlaps++
		return r.discard(e, ErrOverlap)
	}
	if len(e.spans) >= r.cfg.MaxFragments {
		return r.discard(e, ErrTooManyFragments)
	}
	if !p.More {
		e.total = end
	}
	if off == 0 {
		e.first = true
	}
	if e.first && e.total >= 0 && r.headerCount(e.key, e.headerLen(p))+e.total > r.cfg.MaxDatagram {
		return r.discard(e, ErrOversize)
	}
	if !r.reserve(e, p) {
		r.remove(e)
		return Datagram{}, false, ErrNoMemory
	}
	copy(e.buf[r.cfg.Headroom+off:], p.Data)
	e.spans = e.spans[:len(e.spans)+1]
	copy(e.spans[i+1:], e.spans[i:])
	e.spans[i] = span{int32(off), int32(end)}
	e.received += len(p.Data)

	if e.total < 0 || e.received != e.total {
		return Datagram{}, false, nil
	}
	// Spans never overlap, so received == total means no holes are left.
	r.remove(e)
	r.stats.ReasmOKs++
	buf := e.buf[:r.cfg.Headroom+e.total]
	return Datagram{Header: e.header, Data: buf[r.cfg.Headroom:], Buf: buf}, true, nil
}

// search returns the index of the first span ending after off.
func (r *Reassembler) search(spans []span, off int) int {
	lo, hi := 0, len(spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if int(spans[m].end) <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// headerCount returns how many bytes of a first fragment's Header count
// toward MaxDatagram in the reassembled datagram.
func (r *Reassembler) headerCount(k Key, n int) int {
	if k.Family == IPv4 {
		return n // the total length includes the header
	}
	// IPv6 Payload Length excludes the fixed header, and the Fragment
	// header is removed by reassembly.
	return max(n-ipv6Uncounted, 0)
}

// headerLen is the length of the first fragment's header once p is added.
func (e *entry) headerLen(p Packet) int {
	if p.Offset == 0 {
		return len(p.Header)
	}
	return len(e.header)
}

// reserve makes room in e for p: a buffer reaching p's end, a slot for its
// span, and p's Header if p is the first fragment. The memory is charged before anything is allocated, evicting
// older datagrams if needed, so MemoryLimit holds at all times. While the
// datagram's length is unknown the buffer doubles (in-order arrival then
// copies each byte about once more); once the last fragment has arrived it
// is sized exactly. It reports false if p cannot fit even alone.
func (r *Reassembler) reserve(e *entry, p Packet) bool {
	h := r.cfg.Headroom
	end := p.Offset + len(p.Data)
	spanCap := cap(e.spans)
	if len(e.spans) == spanCap {
		spanCap = min(max(8, 4*spanCap), r.cfg.MaxFragments)
	}
	hdrCap := cap(e.header)
	if p.Offset == 0 {
		hdrCap = len(p.Header)
	}
	bufLen := len(e.buf)
	if h+end > bufLen {
		bufLen = h + e.total
		if e.total < 0 {
			bufLen = h + min(max(end, 2*(len(e.buf)-h)), r.cfg.MaxDatagram)
		}
	}
	charge := func(bufLen int) int { return entryOverhead + bufLen + hdrCap + spanCap*spanSize }
	if r.used-e.charge+charge(bufLen) > r.cfg.MemoryLimit && bufLen > h+end {
		bufLen = max(h+end, len(e.buf)) // settle for what this fragment needs
	}
	if !r.makeRoom(charge(bufLen)-e.charge, e) {
		return false
	}
	if bufLen > len(e.buf) {
		nb := make([]byte, bufLen)
		copy(nb, e.buf)
		e.buf = nb
	}
	if spanCap > cap(e.spans) {
		ns := make([]span, len(e.spans), spanCap)
		copy(ns, e.spans)
		e.spans = ns
	}
	if p.Offset == 0 {
		e.header = append(make([]byte, 0, len(p.Header)), p.Header...)
	}
	r.used += charge(bufLen) - e.charge
	e.charge = charge(bufLen)
	return true
}

// makeRoom evicts the oldest datagrams other than keep until need more
// bytes fit within the memory limit, and reports whether they do.
func (r *Reassembler) makeRoom(need int, keep *entry) bool {
	for x := r.head; x != nil && r.used+need > r.cfg.MemoryLimit; {
		next := x.next
		if x != keep {
			if !x.dead {
				r.stats.Evictions++
				r.stats.ReasmFails++
				r.noteFailedLocked(x.key, false)
			}
			r.remove(x)
		}
		x = next
	}
	return r.used+need <= r.cfg.MemoryLimit
}

// discard drops e's data but keeps its key until its deadline, so that
// later fragments of the datagram are dropped too (RFC 5722 §4).
func (r *Reassembler) discard(e *entry, err error) (Datagram, bool, error) {
	e.dead = true
	e.buf, e.header, e.spans = nil, nil, nil
	r.used -= e.charge - entryOverhead
	e.charge = entryOverhead
	return Datagram{}, false, err
}

// remove unlinks e and releases its memory.
func (r *Reassembler) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		r.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		r.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(r.pending, e.key)
	r.used -= e.charge
	e.charge = 0
}

// expireLocked removes every entry whose deadline has passed and returns
// the expiries to report.
func (r *Reassembler) expireLocked(now time.Time) []Expired {
	var out []Expired
	for r.head != nil && !now.Before(r.head.deadline) {
		e := r.head
		r.remove(e)
		if e.dead {
			continue
		}
		r.stats.ReasmTimeout++
		r.stats.ReasmFails++
		if !e.first {
			r.noteFailedLocked(e.key, true)
		}
		// ICMP Time Exceeded is sent only if the offset-zero fragment
		// arrived (RFC 8200 §4.5; RFC 1122 §3.3.2 quotes that fragment).
		if e.first && r.cfg.OnTimeout != nil {
			h := r.cfg.Headroom
			n := int(e.spans[0].end)
			out = append(out, Expired{Key: e.key, Header: e.header, Data: e.buf[h : h+n : h+n]})
		}
	}
	return out
}

// armLocked makes the timer fire at the oldest entry's deadline.
func (r *Reassembler) armLocked(now time.Time) {
	if r.head == nil || r.closed {
		return
	}
	d := r.head.deadline.Sub(now)
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.onTimer)
	} else {
		r.timer.Reset(d)
	}
}

// onTimer expires due datagrams. The timer may fire for an entry already
// completed (it is not moved when the head goes); it then just re-arms.
func (r *Reassembler) onTimer() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	expired := r.expireLocked(now)
	r.armLocked(now)
	failed := r.takeFailedLocked()
	r.mu.Unlock()
	r.report(expired, failed)
}

// noteFailedLocked queues a failure for OnFail; r.mu is held.
func (r *Reassembler) noteFailedLocked(k Key, timedOut bool) {
	if r.cfg.OnFail != nil {
		r.failed = append(r.failed, failure{k, timedOut})
	}
}

// takeFailedLocked returns the failures queued for OnFail; r.mu is held.
func (r *Reassembler) takeFailedLocked() []failure {
	f := r.failed
	r.failed = nil
	return f
}

// report calls OnTimeout and OnFail; the caller must not hold r.mu.
func (r *Reassembler) report(expired []Expired, failed []failure) {
	for _, x := range expired {
		r.cfg.OnTimeout(x)
	}
	for _, f := range failed {
		r.cfg.OnFail(f.key, f.timedOut)
	}
}

// Stats returns a snapshot of the counters.
func (r *Reassembler) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Pending returns the number of datagrams being reassembled, discarded
// ones still remembered included.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// MemoryUsed returns the bytes charged against Config.MemoryLimit.
func (r *Reassembler) MemoryUsed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// Close drops every pending datagram and stops the timer; later calls to
// Process return ErrClosed. Expiries found before Close may still be
// reported to OnTimeout while or after Close returns; none are found after.
func (r *Reassembler) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	clear(r.pending)
	r.head, r.tail = nil, nil
	r.used = 0
}
