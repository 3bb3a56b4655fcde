package sack

import (
	"iter"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// RACK is the state of RACK loss detection, RFC 8985 §6: a segment is lost
// when a segment sent sufficiently later (by more than the reordering
// window, after an RTT) has been delivered. It is pure: the caller passes
// the time and the segments, and keeps the per-segment flags. The zero
// RACK is ready (reo_wnd_mult 1, nothing delivered yet).
//
// The minimum RTT is the plain minimum of the samples given to OnAck;
// RFC 8985 §6.2 step 1 suggests a windowed minimum, which a caller that
// keeps one can impose with SetMinRTT.
type RACK struct {
	// The most recently sent segment known delivered (RACK.xmit_ts,
	// RACK.end_seq) and the RTT of the latest delivery (RACK.rtt).
	xmitTime  time.Time
	endSeq    seqnum.Value
	rtt       time.Duration
	delivered bool

	minRTT    time.Duration
	hasMinRTT bool

	fack           seqnum.Value // RACK.fack, valid when hasFACK
	hasFACK        bool
	reorderingSeen bool

	reoWndMult    int // RACK.reo_wnd_mult minus 1, so the zero RACK has 1
	reoWndPersist int
	dsackRound    seqnum.Value // RACK.dsack_round, valid when inDSACKRound
	inDSACKRound  bool
}

// Segment is what RACK needs of an outstanding segment: when it was last
// (re)transmitted and where it ends.
type Segment struct {
	XmitTime time.Time
	EndSeq   seqnum.Value
}

// sentAfter is RACK_sent_after: whether (t1, seq1) was sent after (t2,
// seq2), ties in time broken by sequence (segments sent in one burst).
func sentAfter(t1 time.Time, seq1 seqnum.Value, t2 time.Time, seq2 seqnum.Value) bool {
	return t1.After(t2) || t1.Equal(t2) && seq2.LessThan(seq1)
}

// AmbiguousRTT reports whether an RTT sample of a retransmitted segment is
// shorter than the minimum RTT, so it must come from an earlier
// transmission (RFC 8985 §6.2 step 2); such a delivery, like one whose
// timestamp echo predates the retransmission, is not given to OnAck.
func (r *RACK) AmbiguousRTT(rtt time.Duration) bool { return r.hasMinRTT && rtt < r.minRTT }

// OnAck is RFC 8985 §6.2 steps 1 and 2 for one newly delivered
// (cumulatively or selectively acknowledged) segment, last transmitted at
// xmitTime and ending at endSeq, whose delivery took rtt. Call it for each
// such segment in ascending order of transmission time, skipping
// retransmissions whose RTT is ambiguous (AmbiguousRTT, or a TSecr before
// xmitTime).
func (r *RACK) OnAck(xmitTime time.Time, endSeq seqnum.Value, rtt time.Duration) {
	if !r.hasMinRTT || rtt < r.minRTT {
		r.minRTT, r.hasMinRTT = rtt, true
	}
	r.rtt = rtt
	if !r.delivered || sentAfter(xmitTime, endSeq, r.xmitTime, r.endSeq) {
		r.xmitTime, r.endSeq, r.delivered = xmitTime, endSeq, true
	}
}

// SetMinRTT replaces the minimum RTT (RACK.min_RTT), for a caller keeping
// a windowed minimum.
func (r *RACK) SetMinRTT(d time.Duration) { r.minRTT, r.hasMinRTT = d, true }

// MinRTT returns the minimum RTT, if there has been a sample.
func (r *RACK) MinRTT() (time.Duration, bool) { return r.minRTT, r.hasMinRTT }

// Latest returns RACK.xmit_ts and RACK.end_seq, the most recently sent
// segment known delivered, if there is one.
func (r *RACK) Latest() (xmitTime time.Time, endSeq seqnum.Value, ok bool) {
	return r.xmitTime, r.endSeq, r.delivered
}

// RTT returns RACK.rtt, the RTT of the latest delivery given to OnAck.
func (r *RACK) RTT() time.Duration { return r.rtt }

// DetectReordering is RFC 8985 §6.2 step 3 for one newly delivered
// segment, called in ascending order of end sequence: a segment that was
// never retransmitted and ends below the highest delivered sequence (the
// forward-most ACK) arrived out of order.
func (r *RACK) DetectReordering(endSeq seqnum.Value, retransmitted bool) {
	switch {
	case !r.hasFACK || r.fack.LessThan(endSeq):
		r.fack, r.hasFACK = endSeq, true
	case endSeq.LessThan(r.fack) && !retransmitted:
		r.reorderingSeen = true
	}
}

// ReorderingSeen reports whether reordering has been detected.
func (r *RACK) ReorderingSeen() bool { return r.reorderingSeen }

// UpdateReoWnd is RFC 8985 §6.2 step 4's adaptation, once per ACK: the
// reordering window grows by a quarter of the minimum RTT for each round
// trip whose ACKs carried a D-SACK (the retransmissions were spurious), and
// falls back to one quarter after 16 recoveries without one. sndUna and
// sndNxt are after the ACK; exitingRecovery is whether this ACK ends fast or
// RTO recovery.
func (r *RACK) UpdateReoWnd(sndUna, sndNxt seqnum.Value, dsack, exitingRecovery bool) {
	if r.inDSACKRound && r.dsackRound.LessThanEq(sndUna) {
		r.inDSACKRound = false
	}
	switch {
	case !r.inDSACKRound && dsack:
		r.dsackRound, r.inDSACKRound = sndNxt, true
		r.reoWndMult++
		r.reoWndPersist = 16
	case exitingRecovery:
		r.reoWndPersist--
		if r.reoWndPersist <= 0 {
			r.reoWndMult = 0
		}
	}
}

// ReoWndMult returns RACK.reo_wnd_mult.
func (r *RACK) ReoWndMult() int { return r.reoWndMult + 1 }

// ReoWnd is RACK_reo_wnd (RFC 8985 §6.2 step 4): zero until reordering is
// seen if the sender is in recovery or DupThresh segments are SACKed (so
// RACK is as quick as RFC 6675 then), else reo_wnd_mult quarters of the
// minimum RTT, at most srtt.
func (r *RACK) ReoWnd(srtt time.Duration, inRecovery bool, segsSacked int) time.Duration {
	if !r.reorderingSeen && (inRecovery || segsSacked >= DupThresh) {
		return 0
	}
	return min(time.Duration(r.reoWndMult+1)*r.minRTT/4, srtt)
}

// DetectLoss is RACK_detect_loss (RFC 8985 §6.2 step 5, and §6.3 when the
// reordering timer fires). segs are the outstanding segments neither
// acknowledged, SACKed nor already marked lost. Each sent before the most
// recently sent delivered segment is lost once reoWnd (from ReoWnd) and
// RACK.rtt have passed since it was sent: markLost is called on it. It
// returns how many were marked, and, if others are still waiting, how long
// until the last of them is due: the reordering timer to arm (0 for none).
// That is the maximum, as in RFC 8985 and Linux: one timer covers them all,
// and DetectLoss runs again when it fires.
func (r *RACK) DetectLoss(now time.Time, reoWnd time.Duration, segs iter.Seq[Segment], markLost func(Segment)) (lost int, reoTimeout time.Duration) {
	if !r.delivered {
		return 0, 0
	}
	for seg := range segs {
		if !sentAfter(r.xmitTime, r.endSeq, seg.XmitTime, seg.EndSeq) {
			continue
		}
		remaining := seg.XmitTime.Add(r.rtt + reoWnd).Sub(now)
		if remaining <= 0 {
			lost++
			if markLost != nil {
				markLost(seg)
			}
		} else {
			reoTimeout = max(reoTimeout, remaining)
		}
	}
	return lost, reoTimeout
}

// DefaultMaxAckDelay is RFC 8985 §7.2's recommended TLP.max_ack_delay, the
// sender's estimate of the receiver's worst-case delayed-ACK timer
// (WCDelAckT).
const DefaultMaxAckDelay = 200 * time.Millisecond

// PTO is TLP_calc_PTO, the Tail Loss Probe timeout of RFC 8985 §7.2: twice
// the smoothed RTT (one second without an RTT sample), plus maxAckDelay
// when only one segment is in flight, as its ACK may be delayed; never
// later than the RTO: rtoRemaining is the time left until the
// retransmission timer fires (<= 0 if it is not armed).
func PTO(srtt time.Duration, hasSRTT bool, flightSegs int, maxAckDelay, rtoRemaining time.Duration) time.Duration {
	pto := time.Second
	if hasSRTT {
		pto = 2 * srtt
		if flightSegs == 1 {
			pto += maxAckDelay
		}
	}
	if rtoRemaining > 0 {
		pto = min(pto, rtoRemaining)
	}
	return pto
}

// TLP is the state of a loss probe episode (RFC 8985 §7.1, §7.4):
// TLP.end_seq and TLP.is_retrans. The zero TLP has no probe in flight.
type TLP struct {
	endSeq    seqnum.Value
	inFlight  bool
	isRetrans bool
}

// TLPOutcome is what an ACK says about the probe in flight.
type TLPOutcome int

const (
	// TLPPending: the episode goes on (no probe, or not yet decided).
	TLPPending TLPOutcome = iota
	// TLPNoLoss: the episode is over and nothing was lost.
	TLPNoLoss
	// TLPRepaired: the probe repaired a loss, so congestion control must
	// react to it (RFC 8985 §7.4.2).
	TLPRepaired
)

// Reset forgets the episode; RFC 8985 §7.1 resets it when a connection
// starts and on entering fast or RTO recovery.
func (t *TLP) Reset() { *t = TLP{} }

// InFlight reports whether a probe is in flight; while it is, no other may
// be sent (RFC 8985 §7.3, first condition).
func (t *TLP) InFlight() bool { return t.inFlight }

// Sent records a probe sent when SND.NXT (after it) was sndNxt;
// retransmitted is whether it resent data rather than sending new data.
func (t *TLP) Sent(sndNxt seqnum.Value, retransmitted bool) {
	t.endSeq, t.inFlight, t.isRetrans = sndNxt, true, retransmitted
}

// OnAck is TLP_process_ack (RFC 8985 §7.4.2) for an ACK of ack. dsack is
// the ACK's D-SACK block if it has one (DSACK); it matches the probe when
// it ends at TLP.end_seq, the end of the resent last segment, and means both
// the original and the probe arrived. dupAckNoSACK is whether the ACK is a
// duplicate ACK without any SACK option, which says the same for a peer
// without SACK.
func (t *TLP) OnAck(ack seqnum.Value, dsack ranges.Range, hasDSACK, dupAckNoSACK bool) TLPOutcome {
	if !t.inFlight || ack.LessThan(t.endSeq) {
		return TLPPending
	}
	switch {
	case !t.isRetrans: // a probe of new data was delivered
	case hasDSACK && dsack.End == t.endSeq:
	case t.endSeq.LessThan(ack):
		t.Reset()
		return TLPRepaired
	case dupAckNoSACK:
	default:
		return TLPPending
	}
	t.Reset()
	return TLPNoLoss
}
