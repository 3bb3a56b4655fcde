package tcp

import (
	"iter"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/sack"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// RACK-TLP (RFC 8985) on a SACK connection: the endpoint side of
// pkg/tcp/sack's RACK and TLP logic. Each outstanding segment's last
// transmission time is kept (rackSeg, one per segment in flight, so at
// most the send buffer over the MSS); each ACK feeds the segments it
// newly delivered to RACK, which then marks as lost those sent more than
// the reordering window before the most recently sent delivered one
// (§6.2), arming the reordering timer for those not yet due (§6.3). A
// loss so detected starts SACK recovery in place of RFC 6675's DupThresh
// rule. At the tail, with nothing SACKed and no recovery, the
// retransmission timer is first a probe timeout (PTO, §7.2), which sends
// new data or the last segment again (§7.3).

// rackSeg is one transmitted segment: it ends at end and starts where the
// one before it ends (the first at rackStart).
type rackSeg struct {
	end    seqnum.Value
	xmit   time.Time
	rexmit bool // retransmitted (RACK ignores it for reordering)
	sacked bool
	lost   bool
}

// rackState lives in the warm state: a connection moving data has it.
type rackState struct {
	rack      sack.RACK
	tlp       sack.TLP
	segs      []rackSeg // the live records; base is their array
	base      []rackSeg
	nRexmit   int          // records in segs that were retransmitted
	rackStart seqnum.Value // where segs[0] starts
	lostEnd   seqnum.Value // the end of the highest segment RACK marked lost
	lostSet   bool
	// lostRexmit: RACK marked a retransmitted segment lost, which NextSeg
	// (at or above HighRxt) would not resend (rackLostRexmitLocked).
	lostRexmit bool
	// When the PTO was armed (the last ACK or new data), and so since
	// when a probe's data has waited (for TCP_USER_TIMEOUT, stuckSince).
	ptoFrom, probeFrom time.Time
}

// ptoMin is added to every PTO (Linux TCP_TIMEOUT_MIN).
const ptoMin = 2 * time.Millisecond

// reoWndMin is the least reordering window once one applies.
const reoWndMin = time.Millisecond

// Kinds of what the retransmission timer currently is (e.rtoKind).
const (
	kindRTO = iota
	kindPTO // the Tail Loss Probe timeout (RFC 8985 §7.2)
	kindReo // the RACK reordering timer (RFC 8985 §6.3)
)

func (e *endpoint) rackLocked(now time.Time) *rackState {
	w := e.warmLocked(now)
	if w.rack == nil {
		w.rack = new(rackState)
	}
	return w.rack
}

// rackSentLocked records the transmission of [seq, end) at now.
func (e *endpoint) rackSentLocked(now time.Time, seq, end seqnum.Value, rexmit bool) {
	r := e.rackLocked(now)
	if len(r.segs) == 0 {
		r.rackStart = seq
	}
	if !rexmit {
		if len(r.segs) > 0 && r.segs[len(r.segs)-1].end != seq {
			return // not contiguous (cannot happen for new data)
		}
		r.push(rackSeg{end: end, xmit: now})
		return
	}
	start := r.rackStart
	for i := range r.segs {
		s := &r.segs[i]
		if !start.LessThan(end) {
			break
		}
		if seq.LessThan(s.end) {
			if !s.rexmit {
				r.nRexmit++
			}
			s.xmit, s.rexmit, s.lost = now, true, false
		}
		start = s.end
	}
	if len(r.segs) > 0 && start.LessThan(end) {
		// A resend in larger segments (after an MSS change) that runs
		// past SND.MAX: the rest is new.
		r.push(rackSeg{end: end, xmit: now})
	}
}

// push appends a record, reusing the array's front, which trimming
// acknowledged records freed, before growing it: amortised O(1), and the
// array at most twice the flight.
func (r *rackState) push(s rackSeg) {
	if len(r.segs) == cap(r.segs) {
		if 2*len(r.segs) > cap(r.base) {
			r.segs = append(r.segs, s)
			r.base = r.segs[:0]
			return
		}
		r.segs = r.base[:copy(r.base[:cap(r.base)], r.segs)]
	}
	r.segs = append(r.segs, s)
}

// rackAckLocked is RFC 8985 §6.2 for an ACK: the newly delivered
// segments go to RACK, acknowledged ones are dropped, and DetectLoss
// marks the lost ones in the scoreboard. exitingRecovery is whether the
// ACK ended fast or RTO recovery (for the reordering window's decay). ecr
// is the ACK's timestamp echo if it advanced SND.UNA (0 for none): it is
// the TSval of the segment that filled the hole at the old SND.UNA (RFC
// 7323 §4.3), so an echo older than that segment's retransmission shows
// the original arrived late rather than lost (Eifel detection, RFC 3522;
// Linux tcp_packet_delayed), which is reordering; without this a
// reordering seen first on a segment taken for lost would go unnoticed,
// the window stay 0 and the next reordering again cause spurious
// retransmissions. It reports whether any segment is now lost.
func (e *endpoint) rackAckLocked(now time.Time, dsack, exitingRecovery bool, ecr uint32) bool {
	if e.warm == nil || e.warm.rack == nil {
		return false
	}
	r := e.warm.rack
	start, drop, sackedSegs := r.rackStart, 0, 0
	highSacked, anySacked := e.sb.HighSacked()
	for i := range r.segs {
		s := &r.segs[i]
		segStart := start
		start = s.end
		cum := s.end.LessThanEq(e.sndUna)
		if cum {
			drop = i + 1
			if s.rexmit {
				r.nRexmit--
			}
		} else if !anySacked || !segStart.LessThan(highSacked) {
			break // nothing above is SACKed
		}
		newly := false
		switch {
		case s.sacked:
		case cum:
			newly = true
		case e.sb.IsSacked(segStart) && e.sb.IsSacked(s.end-1):
			s.sacked, newly = true, true
		}
		if s.sacked && !cum {
			sackedSegs++
		}
		if !newly {
			continue
		}
		s.sacked = true
		rtt := now.Sub(s.xmit)
		delayedOriginal := i == 0 && cum && s.rexmit && ecr != 0 && int32(ecr-e.tsAt(s.xmit)) < 0
		if !s.rexmit || !delayedOriginal && !r.rack.AmbiguousRTT(rtt) {
			r.rack.OnAck(s.xmit, s.end, rtt) // §6.2 steps 1, 2
		}
		r.rack.DetectReordering(s.end, s.rexmit && !delayedOriginal) // step 3
	}
	if drop > 0 {
		r.rackStart = r.segs[drop-1].end
		r.segs = r.segs[drop:]
		if len(r.segs) == 0 {
			r.segs = r.base[:0]
		}
	}
	if r.lostSet && r.lostEnd.LessThanEq(e.sndUna) {
		r.lostSet = false
	}
	r.rack.UpdateReoWnd(e.sndUna, e.sndMax, dsack, exitingRecovery) // step 4
	return e.rackDetectLocked(now, sackedSegs)
}

// rackDetectLocked is RACK_detect_loss (RFC 8985 §6.2 step 5, §6.3):
// lost segments are marked in the scoreboard (every unSACKed octet below
// the highest lost one: earlier segments were sent earlier), and the
// reordering timer is armed for those not yet due.
func (e *endpoint) rackDetectLocked(now time.Time, sackedSegs int) bool {
	r := e.warm.rack
	reoWnd := r.rack.ReoWnd(e.rtt.SRTT(), e.inRecovery || e.inLoss, sackedSegs)
	if reoWnd > 0 || r.rack.ReorderingSeen() {
		// Linux 4.10-4.17 (tcp_rack_mark_lost) kept the window at 1 ms
		// at least: a path whose minimum RTT sample is about nothing
		// (an ACK and a data segment both fast) would else have none.
		reoWnd = max(reoWnd, reoWndMin)
	}
	cur := -1
	latest, latestEnd, _ := r.rack.Latest()
	segs := iter.Seq[sack.Segment](func(yield func(sack.Segment) bool) {
		for i := range r.segs {
			s := &r.segs[i]
			if r.nRexmit == 0 && (s.xmit.After(latest) || s.xmit.Equal(latest) && latestEnd.LessThan(s.end)) {
				// Without retransmissions the records are in order of
				// transmission: none from here was sent before RACK's.
				return
			}
			if s.sacked || s.lost {
				continue
			}
			if s.rexmit && !latest.After(s.xmit) {
				// RFC 8985's tie-break by sequence would call a resend
				// made at the same clock reading as a higher original
				// "sent before" it; only a segment sent later in time
				// says a retransmission is lost (with a coarse or fake
				// clock the tie-break made it resend at once, again).
				continue
			}
			cur = i
			if !yield(sack.Segment{XmitTime: s.xmit, EndSeq: s.end}) {
				return
			}
		}
	})
	_, reoTimeout := r.rack.DetectLoss(now, reoWnd, segs, func(sack.Segment) {
		s := &r.segs[cur]
		s.lost = true
		r.lostRexmit = r.lostRexmit || s.rexmit
		if !r.lostSet || r.lostEnd.LessThan(s.end) {
			r.lostEnd, r.lostSet = s.end, true
		}
	})
	if reoTimeout > 0 && (e.rtoKind != kindRTO || !e.rtoT.armed() || now.Add(reoTimeout).Before(e.rtoT.at)) {
		e.rtoT.arm(now, reoTimeout, e, (*endpoint).onRTO)
		e.rtoKind = kindReo
	}
	if !r.lostSet {
		return false
	}
	if !e.inLoss { // after a timeout all of it is marked lost already
		e.sb.MarkLost(r.lostEnd)
	}
	return true
}

// rackLostRexmitLocked finds a retransmission that RACK has since marked
// lost (RFC 8985 §2.2: a retransmission is judged like any segment, by
// when it was sent): the first unSACKed one, up to an MSS of it. RFC 6675's
// NextSeg resends nothing below HighRxt, so without this a lost
// retransmission waited for the retransmission timeout. Resending it
// clears its mark (rackSentLocked); when none is left the flag goes.
func (e *endpoint) rackLostRexmitLocked() (start seqnum.Value, length int, ok bool) {
	if e.warm == nil || e.warm.rack == nil || !e.warm.rack.lostRexmit {
		return 0, 0, false
	}
	r := e.warm.rack
	start = r.rackStart
	for i := range r.segs {
		s := &r.segs[i]
		segStart := start
		start = s.end
		if s.lost && s.rexmit && !s.sacked && e.sndUna.LessThan(s.end) {
			segStart = seqnum.Max(segStart, e.sndUna)
			return segStart, min(int(segStart.Size(s.end)), e.mss), true
		}
	}
	r.lostRexmit = false
	return 0, 0, false
}

// rackResentLocked notes the resend of a lost retransmission at [start,
// start+length): Karn's rule, and HighRxt moves past it only when the
// resend reaches it, so NextSeg neither sends it again nor skips a hole
// between HighRxt and it.
func (e *endpoint) rackResentLocked(start seqnum.Value, length int) {
	e.rttTiming = false
	if start.LessThanEq(e.highRxt) {
		e.highRxt = seqnum.Max(e.highRxt, start.Add(seqnum.Size(length)))
	}
}

// schedulePTOLocked arms the probe timeout in place of the
// retransmission timer when RFC 8985 §7.2 allows: SACK, data in flight,
// nothing SACKed, no recovery and no probe in flight. It runs after each
// output; the PTO restarts when new data went out or the timer was the
// RTO (which an ACK of new data restarts).
func (e *endpoint) schedulePTOLocked(now time.Time, sentNew bool) {
	if !e.sackOK || e.warm == nil || e.warm.rack == nil || e.rtoKind == kindReo {
		return
	}
	r := e.warm.rack
	switch e.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
	default:
		return
	}
	if e.sndUna == e.sndMax || e.inRecovery || e.inLoss || e.retries > 0 || e.sb.SackedBytes() > 0 ||
		r.tlp.InFlight() || !e.rtt.HasSample() || r.lostSet {
		if e.rtoKind == kindPTO {
			e.armRTOLocked()
		}
		return
	}
	if e.rtoKind == kindPTO && !sentNew {
		return
	}
	flight := (int(e.sndUna.Size(e.sndMax)) + e.mss - 1) / e.mss
	// Linux tcp_schedule_loss_probe adds TCP_TIMEOUT_MIN (2 ms) so a
	// path with a tiny SRTT does not probe at once.
	pto := min(sack.PTO(e.rtt.SRTT(), true, flight, sack.DefaultMaxAckDelay, 0)+ptoMin, e.rtt.RTO())
	e.rtoT.arm(now, pto, e, (*endpoint).onRTO)
	e.rtoKind = kindPTO
	r.ptoFrom = now
}

// onPTOLocked sends the loss probe (RFC 8985 §7.3): a segment of new
// data if the window allows, else the last segment again; then the RTO.
func (e *endpoint) onPTOLocked() {
	now := time.Now()
	r := e.rackLocked(now)
	off := int(e.sndUna.Size(e.sndMax))
	n := 0
	if off < e.snd.n {
		n = min(e.snd.n-off, e.mss, max(e.sndWnd-off, 0))
	}
	if n > 0 {
		start := e.sndMax
		e.emitRangeLocked(start, n)
		e.sndMax = start.Add(seqnum.Size(n))
		e.sndNxt = e.sndMax
		r.tlp.Sent(e.sndMax, false)
	} else {
		length := min(e.mss, off)
		e.emitRangeLocked(e.sndMax.Add(-seqnum.Size(length)), length)
		e.rttTiming = false // Karn's rule
		r.tlp.Sent(e.sndMax, true)
	}
	r.probeFrom = r.ptoFrom
	e.lastSend = now
	e.armRTOLocked()
}

// onReoTimerLocked is the reordering timer (RFC 8985 §6.3): loss
// detection again, and recovery if it finds a loss.
func (e *endpoint) onReoTimerLocked() {
	now := time.Now()
	e.armRTOLocked()
	if e.warm == nil || e.warm.rack == nil {
		return
	}
	sacked := 0
	for _, s := range e.warm.rack.segs {
		if s.sacked {
			sacked++
		}
	}
	if e.rackDetectLocked(now, sacked) && !e.inRecovery && !e.inLoss {
		e.enterSACKRecoveryLocked(0)
	}
	e.outputAtLocked(now, false)
}

// tlpAckLocked is TLP_process_ack (RFC 8985 §7.4): a probe that repaired
// a loss makes congestion control respond as to one.
func (e *endpoint) tlpAckLocked(now time.Time, ack seqnum.Value, blocks []ranges.Range) {
	if e.warm == nil || e.warm.rack == nil || !e.warm.rack.tlp.InFlight() {
		return
	}
	d, has := sack.DSACK(e.sndUna, blocks)
	if e.warm.rack.tlp.OnAck(ack, d, has, false) == sack.TLPRepaired && e.cc != nil {
		e.cc.OnCongestion(now, e.cc.Cwnd())
		e.cc.OnRecoveryExit(now)
	}
}

// tlpResetLocked ends a probe episode on entering recovery (§7.1).
func (e *endpoint) tlpResetLocked() {
	if e.warm != nil && e.warm.rack != nil {
		e.warm.rack.tlp.Reset()
	}
}
