package tcp

import (
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// onRTO is the retransmission timer (RFC 6298 §5.4–5.7), which is also
// the SYN timer and, with nothing in flight, the persist timer.
func (e *endpoint) onRTO() {
	e.mu.Lock()
	defer e.unlock()
	if !e.rtoT.fired() {
		return
	}
	timedOut := func() {
		err := syscall.ETIMEDOUT
		if e.softErr != 0 {
			err = e.softErr
		}
		e.failLocked(err)
	}
	switch e.state {
	case StateSynSent, StateSynRcvd:
		limit := e.p.SynRetries
		if e.state == StateSynRcvd && e.parent != nil {
			limit = e.p.SynAckRetr
		}
		if e.retries >= limit {
			if e.parent != nil {
				e.p.stats.AttemptFails.Add(1)
				e.appClosed = true
				e.closeLocked()
				return
			}
			timedOut()
			return
		}
		e.retries++
		e.rtt.Backoff()
		e.rttTiming = false
		e.sendSynLocked(e.state == StateSynRcvd)
		e.armRTOLocked()
		return
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
	default:
		return
	}
	kind := e.rtoKind
	e.rtoKind = kindRTO
	if e.sndUna == e.sndMax {
		e.persistLocked()
		return
	}
	switch kind {
	case kindPTO:
		e.onPTOLocked()
		return
	case kindReo:
		e.onReoTimerLocked()
		return
	}
	if e.retries == 0 {
		// The oldest unacknowledged byte has waited one (unbacked-off)
		// RTO since it was sent or since the last ACK (Linux retrans_stamp).
		e.stuckSince = time.Now().Add(-e.rtt.RTO())
		if r := e.warm; r != nil && r.rack != nil && r.rack.tlp.InFlight() && r.rack.probeFrom.Before(e.stuckSince) {
			e.stuckSince = r.rack.probeFrom // a loss probe went first (RFC 8985 §7.3)
		}
	}
	// TCP_USER_TIMEOUT, when set, replaces tcp_retries2 (Linux
	// retransmits_timed_out).
	if e.userTimedOutLocked(e.stuckSince) || (e.userTimeout == 0 && e.retries >= e.p.Retries2) {
		timedOut()
		return
	}
	e.retries++
	e.rtt.Backoff()
	e.rttTiming = false
	if e.cc != nil {
		e.cc.OnRTO(time.Now(), int(e.sndUna.Size(e.sndMax)))
	}
	e.inRecovery, e.dupAcks, e.ltAcks, e.ltSent = false, 0, 0, 0
	e.recover = e.sndMax // RFC 6582 §3.2 step 4 after a timeout
	e.tlpResetLocked()   // RFC 8985 §7.1
	if e.sackOK {
		// RFC 6675 §5.1, as Linux tcp_enter_loss: the SACK information
		// is kept and every unSACKed octet sent is lost; only those are
		// resent, chosen by NextSeg, from cwnd = the loss window in slow
		// start (lossRecoverLocked). A SACKed SND.UNA means the receiver
		// reneged (RFC 2018 §8; Linux tcp_timeout_mark_lost): then the
		// blocks are forgotten and everything goes again.
		if e.sb.Reneged(e.sndUna) {
			e.sb.Reset()
		}
		e.sb.MarkLost(e.sndMax)
		e.inLoss = true
		e.highRxt = e.sndUna
		e.sndNxt = e.sndMax
		sent := e.lossRecoverLocked(time.Now())
		if !sent {
			// Nothing fit: retransmit the first segment anyway.
			e.retransmitFirstLocked()
			e.highRxt = e.sndUna.Add(seqnum.Size(min(e.snd.n, e.mss)))
		}
	} else {
		// Go back to SND.UNA: the send buffer is the retransmission queue.
		e.sndNxt = e.sndUna
		e.outputLocked(false)
		if e.sndNxt == e.sndUna {
			// Nothing fit (a zero window): retransmit the first segment anyway.
			e.retransmitFirstLocked()
			e.sndNxt = e.sndUna.Add(seqnum.Size(min(e.snd.n, e.mss)))
		}
	}
	e.armRTOLocked()
	e.clampRTOLocked(e.stuckSince)
}

// userTimedOutLocked reports whether TCP_USER_TIMEOUT (RFC 5482) has run
// out for data or probes unanswered since since.
func (e *endpoint) userTimedOutLocked(since time.Time) bool {
	return e.userTimeout > 0 && time.Since(since) >= e.userTimeout
}

// clampRTOLocked brings the retransmission or persist timer forward to
// when TCP_USER_TIMEOUT runs out (Linux tcp_clamp_rto_to_user_timeout,
// tcp_clamp_probe0_to_user_timeout).
func (e *endpoint) clampRTOLocked(since time.Time) {
	if e.userTimeout == 0 || !e.rtoT.armed() {
		return
	}
	left := time.Until(since.Add(e.userTimeout))
	if left < time.Until(e.rtoT.at) {
		e.rtoT.set(max(left, time.Millisecond), e.onRTO)
	}
}

// persistLocked probes a window that does not let data out (RFC 9293
// §3.8.6.1): a zero window gets Linux's probe, an ACK with an old
// sequence number that makes the peer announce its window; a small
// window gets what fits, silly or not.
func (e *endpoint) persistLocked() {
	avail := e.snd.n - e.inflight()
	if avail <= 0 && !e.finQueued {
		return
	}
	if e.sndWnd == 0 {
		// Linux tcp_probe_timer: tcp_retries2 probes that bring back no
		// ACK at all end the connection; answered ones go on forever.
		// With TCP_USER_TIMEOUT, unanswered probes end it when that has
		// passed since the first of them.
		if e.zwProbes == 0 {
			e.stuckSince = time.Now()
		}
		if e.userTimedOutLocked(e.stuckSince) || (e.userTimeout == 0 && e.zwProbes >= e.p.Retries2) {
			err := syscall.ETIMEDOUT
			if e.softErr != 0 {
				err = e.softErr
			}
			e.failLocked(err)
			return
		}
		e.zwProbes++
		e.emitLocked(e.sndUna-1, wire.TCPFlagACK, 0, 0)
		e.rtt.Backoff()
		e.rtoT.set(e.rtt.RTO(), e.onRTO)
		e.clampRTOLocked(e.stuckSince)
		return
	}
	n := min(avail, e.mss, e.sndWnd)
	if n > 0 {
		e.emitLocked(e.sndNxt, wire.TCPFlagACK|wire.TCPFlagPSH, e.inflight(), n)
		e.sndNxt = e.sndNxt.Add(seqnum.Size(n))
		if e.sndMax.LessThan(e.sndNxt) {
			e.sndMax = e.sndNxt
		}
	}
	e.outputLocked(false)
	e.armRTOLocked()
}

// onDelAck sends the delayed ACK (RFC 1122 §4.2.3.2; Linux's 40 ms).
func (e *endpoint) onDelAck() {
	e.mu.Lock()
	defer e.unlock()
	if !e.delackT.fired() || !e.state.synchronized() || e.state == StateTimeWait {
		return
	}
	e.sendAckLocked()
}

// ringIdle is how long a connection's rings stay allocated while empty.
// A busy connection keeps its buffers, as Linux keeps a socket's
// forward-allocated memory (sk_forward_alloc) between packets and
// reclaims it from its timers (sk_mem_reclaim); one idle for this long
// gives them back.
const ringIdle = time.Second

// ringsEmptiedLocked notes that a ring became empty: the memory goes back
// if the rings are still empty ringIdle from now. Each emptying pushes the
// deadline back, which does not touch the runtime timer (timer.arm).
//
// Under memory pressure an empty ring goes back at once (Linux reclaims
// a socket's forward allocation eagerly then: sk_mem_reclaim from
// sk_mem_uncharge and the timers).
func (e *endpoint) ringsEmptiedLocked(now time.Time) {
	if e.p.memPressure.Load() {
		if e.rcv.n == 0 && e.ooo.Len() == 0 {
			e.releaseRingLocked(&e.rcv)
		}
		e.releaseRingLocked(&e.snd)
	}
	if len(e.rcv.b) == 0 && len(e.snd.b) == 0 {
		return
	}
	e.warmLocked(now).idleT.arm(now, ringIdle, e, (*endpoint).onRingIdle)
}

// warmState is the part of an endpoint that only a connection moving
// data needs.
type warmState struct {
	idleT    timer         // gives the rings' memory back (ringIdle)
	outSpare []outPkt      // the other of the two outq slices (endpoint.unlock)
	tx       stack.TxBatch // the flusher's: one flush, one write per link

	// Receive buffer auto-tuning (Linux tcp_rcvq_space, tcp_rcv_rtt_est).
	rcvSpace    int          // bytes read in the last measured round trip
	rcvSpaceSeq seqnum.Value // the read point when the measurement began
	rcvSpaceAt  time.Time    // when it began
	rcvRTT      time.Duration

	// The SACK blocks to report (RFC 2018 §4, RFC 2883): state only
	// while data arrives out of order or twice.
	sackRep ranges.Reporter

	rack *rackState // RACK-TLP (RFC 8985), on a SACK connection
}

// warmLocked returns the warm state, made if need be with the idle
// timer armed, so that it goes again once the rings are idle.
func (e *endpoint) warmLocked(now time.Time) *warmState {
	if e.warm == nil {
		e.warm = new(warmState)
		e.warm.idleT.arm(now, ringIdle, e, (*endpoint).onRingIdle)
	}
	return e.warm
}

// onRingIdle frees the rings that are empty. One still in use is kept;
// it re-arms the timer when it empties.
func (e *endpoint) onRingIdle() {
	e.mu.Lock()
	defer e.unlock()
	if e.warm == nil || !e.warm.idleT.fired() {
		return
	}
	if e.rcv.n == 0 && e.ooo.Len() == 0 {
		e.releaseRingLocked(&e.rcv)
	}
	e.releaseRingLocked(&e.snd)
	if len(e.rcv.b) == 0 && len(e.snd.b) == 0 {
		e.warm = nil
	}
}

// onTimeWait ends TIME_WAIT after 2·MSL, or an orphaned FIN_WAIT_2
// after tcp_fin_timeout.
func (e *endpoint) onTimeWait() {
	e.mu.Lock()
	defer e.unlock()
	if !e.twT.fired() {
		return
	}
	if e.state == StateTimeWait || e.state == StateFinWait2 {
		e.closeLocked()
	}
}

// armKeepaliveLocked starts the keep-alive timer (RFC 1122 §4.2.3.6) if
// SO_KEEPALIVE is on.
func (e *endpoint) armKeepaliveLocked() {
	if !e.opts.KeepAlive || (e.state != StateEstablished && e.state != StateCloseWait) {
		e.kaT.stop()
		return
	}
	e.kaT.set(e.keepIdle, e.onKeepalive)
}

// onKeepalive probes an idle connection: after TCP_KEEPIDLE of silence
// a probe every TCP_KEEPINTVL, and after TCP_KEEPCNT unanswered ones the
// connection is reset with ETIMEDOUT (Linux tcp_keepalive_timer).
func (e *endpoint) onKeepalive() {
	e.mu.Lock()
	defer e.unlock()
	if !e.kaT.fired() || !e.opts.KeepAlive || (e.state != StateEstablished && e.state != StateCloseWait) {
		return
	}
	if e.sndUna != e.sndMax {
		// Data in flight: the retransmission timer watches the peer.
		e.kaT.set(e.keepIdle, e.onKeepalive)
		return
	}
	idle := time.Since(e.lastRecv)
	if e.kaProbes == 0 && idle < e.keepIdle {
		e.kaT.set(e.keepIdle-idle, e.onKeepalive)
		return
	}
	// Linux tcp_keepalive_timer: with TCP_USER_TIMEOUT set, probes go on
	// until that much silence, whatever TCP_KEEPCNT says.
	if (e.userTimeout > 0 && e.kaProbes > 0 && idle >= e.userTimeout) || (e.userTimeout == 0 && e.kaProbes >= e.keepCnt) {
		e.sendResetLocked()
		e.failLocked(syscall.ETIMEDOUT)
		return
	}
	// The probe carries SND.UNA-1, so the peer must answer it (RFC 1122
	// §4.2.3.6).
	e.emitLocked(e.sndUna-1, wire.TCPFlagACK, 0, 0)
	e.kaProbes++
	e.kaT.set(e.keepIntvl, e.onKeepalive)
}

// icmpError handles an ICMP error about a segment of this connection:
// the quoted sequence number must be one in flight (RFC 5927 §4.1).
// Fragmentation needed / packet too big lowers the MSS and resends
// (RFC 1191, RFC 8201); a hard error ends a connection attempt, anything
// else is remembered and reported if the connection times out (RFC 1122
// §4.2.3.9; Linux tcp_v4_err).
func (e *endpoint) icmpError(ie *stack.ICMPError, seq seqnum.Value) {
	e.mu.Lock()
	defer e.unlock()
	switch e.state {
	case StateListen, StateClosed, StateTimeWait:
		return
	}
	if !seq.InRange(e.sndUna, e.sndMax) && seq != e.sndUna {
		return
	}
	errno, fatal := ie.Errno()
	if errno == syscall.EMSGSIZE {
		min := 68
		if ie.IsIPv6() {
			min = 1280
		}
		if ie.MTU >= min && ie.MTU < e.pathMTU() {
			e.pmtu = ie.MTU
			old := e.mss
			e.updateMSSLocked()
			if e.mss < old && e.state.synchronized() {
				e.sndNxt = e.sndUna // resend in smaller segments (Linux tcp_simple_retransmit)
				e.outputLocked(false)
			}
		}
		return
	}
	if (e.state == StateSynSent || e.state == StateSynRcvd) && fatal && e.parent == nil {
		e.failLocked(errno)
		return
	}
	e.softErr = errno
}
