package emu

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Impairments describe what happens to frames passing one direction of a
// port, in the spirit of Linux netem. A zero Impairments passes frames
// untouched and without delay.
//
// The model, per frame, in this order:
//  1. Loss: dropped with probability Loss.
//  2. Duplication: with probability Duplicate a second copy follows it.
//  3. Corruption: each copy, with probability Corrupt, has one random bit
//     of one random byte flipped. Then, with probability CE, a copy that is
//     an ECN-capable IPv4 or IPv6 packet (ECT(0) or ECT(1) in its TOS or
//     traffic class, RFC 3168 §5) is marked Congestion Experienced instead
//     of being dropped, as an AQM router does (RFC 3168 §5, §6.1.1 end; the
//     IPv4 header checksum is updated). Not-ECT and already-CE packets, and
//     frames that are not IP, are left alone and draw no random number.
//  4. Rate: with Rate > 0 (bits per second) each copy waits for the
//     serialiser, a FIFO that sends len(frame)*8/Rate seconds per frame
//     (frame bytes only: no preamble, FCS or inter-frame gap). At most
//     Limit copies wait or are being serialised; more are tail-dropped.
//  5. Delay: after serialisation the copy is delayed by Delay plus a jitter
//     drawn uniformly from [-Jitter, +Jitter] (never below zero). With
//     probability Reorder it skips the delay and jitter (netem's reorder):
//     it overtakes frames still being delayed, so reordering needs Delay>0.
//     Jitter alone reorders too, as it does in netem without a rate.
//
// Random draws are taken only for the impairments that are enabled, from
// the port's own PCG stream, so a given seed, configuration and sequence of
// frames gives the same outcome every run.
type Impairments struct {
	Loss      float64       // probability in [0,1]
	Duplicate float64       // probability in [0,1]
	Corrupt   float64       // probability in [0,1]
	Reorder   float64       // probability in [0,1]
	CE        float64       // probability in [0,1] of marking an ECT packet CE
	Delay     time.Duration // ≥ 0
	Jitter    time.Duration // ≥ 0
	Rate      uint64        // bits per second; 0 means unlimited
	Limit     int           // frames queued at the serialiser; 0 means DefaultLimit
}

// DefaultLimit is the serialiser queue length when Impairments.Limit is 0
// (Linux's default txqueuelen).
const DefaultLimit = 1000

// Validate reports the first value that is out of range.
func (im Impairments) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", im.Loss}, {"duplicate", im.Duplicate}, {"corrupt", im.Corrupt}, {"reorder", im.Reorder}, {"ce", im.CE}} {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			return fmt.Errorf("emu: %s probability %v is not between 0 and 1", p.name, p.v)
		}
	}
	if im.Delay < 0 {
		return fmt.Errorf("emu: negative delay %v", im.Delay)
	}
	if im.Jitter < 0 {
		return fmt.Errorf("emu: negative jitter %v", im.Jitter)
	}
	if im.Limit < 0 {
		return fmt.Errorf("emu: negative queue limit %d", im.Limit)
	}
	return nil
}

// sanitized clamps out-of-range values (NewPort and SetImpairments take
// any value; Validate is for callers that want an error instead).
func (im Impairments) sanitized() Impairments {
	clamp := func(p float64) float64 {
		if !(p > 0) { // NaN and negatives
			return 0
		}
		return min(p, 1)
	}
	im.Loss, im.Duplicate = clamp(im.Loss), clamp(im.Duplicate)
	im.Corrupt, im.Reorder = clamp(im.Corrupt), clamp(im.Reorder)
	im.CE = clamp(im.CE)
	im.Delay, im.Jitter = max(im.Delay, 0), max(im.Jitter, 0)
	if im.Limit <= 0 {
		im.Limit = DefaultLimit
	}
	return im
}

// ImpairCounters count what one direction's impairments did. Reordered
// counts the frames that skipped the delay (they may or may not have
// overtaken another); QueueDropped the serialiser's tail drops; CEMarked
// the ECT packets marked Congestion Experienced.
type ImpairCounters struct {
	Lost, Duplicated, Corrupted, Reordered, QueueDropped, CEMarked uint64
}

// pending is a frame copy waiting for its delivery instant.
type pending struct {
	at    time.Time
	seq   uint64 // ties keep arrival order
	frame []byte
}

type pendingHeap []pending

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(pending)) }
func (h *pendingHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = pending{}
	*h = old[:len(old)-1]
	return p
}

// shaper applies one direction's impairments and hands surviving frames
// to next, never while holding its own lock. Delayed frames wait in a heap
// served by a single timer, so Close has one timer to stop.
type shaper struct {
	next func(frame []byte)

	mu        sync.Mutex
	imp       Impairments
	rng       *rand.Rand
	departs   []time.Time // serialiser FIFO: when each queued copy finishes
	busyUntil time.Time
	heap      pendingHeap
	seq       uint64
	timer     *time.Timer
	firing    bool // a fire loop is passing frames on; others wait their turn
	closed    bool
	count     ImpairCounters
}

func newShaper(imp Impairments, src rand.Source, next func([]byte)) *shaper {
	return &shaper{imp: imp.sanitized(), rng: rand.New(src), next: next}
}

func (s *shaper) set(imp Impairments) {
	s.mu.Lock()
	s.imp = imp.sanitized()
	s.mu.Unlock()
}

func (s *shaper) get() Impairments {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imp
}

func (s *shaper) counters() ImpairCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// send impairs frame, which the shaper owns from now on.
func (s *shaper) send(frame []byte) {
	var now1, now2 []byte // copies to pass on at once, outside the lock
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	im := &s.imp
	if im.Loss > 0 && s.rng.Float64() < im.Loss {
		s.count.Lost++
		s.mu.Unlock()
		return
	}
	copies := [2][]byte{frame}
	if im.Duplicate > 0 && s.rng.Float64() < im.Duplicate {
		copies[1] = append([]byte(nil), frame...)
		s.count.Duplicated++
	}
	now := time.Now()
	for _, c := range copies {
		if c == nil {
			continue
		}
		if im.Corrupt > 0 && len(c) > 0 && s.rng.Float64() < im.Corrupt {
			bit := s.rng.IntN(len(c) * 8)
			c[bit/8] ^= 1 << (bit % 8)
			s.count.Corrupted++
		}
		if im.CE > 0 {
			if ip := ectIP(c); ip != nil && s.rng.Float64() < im.CE {
				markCE(ip)
				s.count.CEMarked++
			}
		}
		at := now
		if im.Rate > 0 {
			for len(s.departs) > 0 && !s.departs[0].After(now) {
				s.departs = s.departs[1:]
			}
			if len(s.departs) >= im.Limit {
				s.count.QueueDropped++
				continue
			}
			start := now
			if s.busyUntil.After(now) {
				start = s.busyUntil
			}
			// bits*1e9/rate: a 64 KiB frame at 1 bit/s still fits in int64.
			ser := time.Duration(uint64(len(c)) * 8 * uint64(time.Second) / im.Rate)
			s.busyUntil = start.Add(ser)
			s.departs = append(s.departs, s.busyUntil)
			at = s.busyUntil
		}
		if im.Delay > 0 || im.Jitter > 0 {
			if im.Reorder > 0 && s.rng.Float64() < im.Reorder {
				s.count.Reordered++
			} else {
				d := im.Delay
				if im.Jitter > 0 {
					d += time.Duration(s.rng.Int64N(2*int64(im.Jitter)+1)) - im.Jitter
				}
				at = at.Add(max(d, 0))
			}
		}
		if !at.After(now) && len(s.heap) == 0 && !s.firing {
			if now1 == nil {
				now1 = c
			} else {
				now2 = c
			}
			continue
		}
		s.schedule(at, c, now)
	}
	s.mu.Unlock()
	if now1 != nil {
		s.next(now1)
	}
	if now2 != nil {
		s.next(now2)
	}
}

// schedule queues c for instant at; s.mu is held.
func (s *shaper) schedule(at time.Time, c []byte, now time.Time) {
	s.seq++
	heap.Push(&s.heap, pending{at: at, seq: s.seq, frame: c})
	if s.heap[0].seq != s.seq {
		return // an earlier frame's timer is already set
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(at.Sub(now), s.fire)
	} else {
		s.timer.Reset(at.Sub(now))
	}
}

// fire passes on every frame that is due, in order, and re-arms the timer.
// Only one fire loop runs at a time (a timer Reset while a loop runs may
// start a second), so frames leave in heap order.
func (s *shaper) fire() {
	s.mu.Lock()
	if s.firing {
		s.mu.Unlock()
		return
	}
	s.firing = true
	for {
		if s.closed || len(s.heap) == 0 {
			break
		}
		now := time.Now()
		if s.heap[0].at.After(now) {
			s.timer.Reset(s.heap[0].at.Sub(now))
			break
		}
		p := heap.Pop(&s.heap).(pending)
		s.mu.Unlock()
		s.next(p.frame)
		s.mu.Lock()
	}
	s.firing = false
	s.mu.Unlock()
}

// close drops every pending frame and stops the timer.
func (s *shaper) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.heap = nil
	s.departs = nil
	if s.timer != nil {
		s.timer.Stop()
	}
}

// ectIP returns the IP header of frame, an Ethernet frame with up to two
// VLAN tags, when it carries an IPv4 or IPv6 packet whose ECN field is
// ECT(0) or ECT(1) (RFC 3168 §5); else nil.
func ectIP(frame []byte) []byte {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		return nil
	}
	ip := eth.Payload()
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return nil
		}
		if e := wire.IPv4(ip).ECN(); e == wire.ECNECT0 || e == wire.ECNECT1 {
			return ip
		}
	case wire.EtherTypeIPv6:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return nil
		}
		if e := wire.IPv6(ip).ECN(); e == wire.ECNECT0 || e == wire.ECNECT1 {
			return ip
		}
	}
	return nil
}

// markCE sets the ECN field of ip, an IPv4 or IPv6 header, to CE, fixing
// the IPv4 header checksum incrementally (RFC 1624).
func markCE(ip []byte) {
	if ip[0]>>4 == 4 {
		old := binary.BigEndian.Uint16(ip[0:2])
		ip[1] |= wire.ECNCE
		sum := binary.BigEndian.Uint16(ip[10:12])
		binary.BigEndian.PutUint16(ip[10:12], wire.ChecksumUpdate(sum, old, binary.BigEndian.Uint16(ip[0:2])))
		return
	}
	ip[1] |= wire.ECNCE << 4 // the traffic class's low bits are byte 1's high ones
}
