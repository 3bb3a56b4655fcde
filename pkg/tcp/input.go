package tcp

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/tcp/isn"
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// segment is a received segment's fields.
type segment struct {
	seq, ack seqnum.Value
	flags    wire.TCPFlags
	wnd      uint16
	opts     wire.TCPOptions
	payload  []byte
	ecn      uint8     // the IP header's ECN field (RFC 3168 §5)
	now      time.Time // when it is processed: one clock read serves the whole segment
}

func parseSegment(t wire.TCP) segment {
	s := segment{seq: seqnum.Value(t.Seq()), ack: seqnum.Value(t.Ack()), flags: t.Flags(), wnd: t.Window(), payload: t.Payload()}
	s.opts, _ = t.Options() // the options before a malformed one still count (as Linux)
	return s
}

func (s *segment) has(f wire.TCPFlags) bool { return s.flags&f != 0 }

// segLen is SEG.LEN: the payload plus SYN and FIN.
func (s *segment) segLen() seqnum.Size {
	n := seqnum.Size(len(s.payload))
	if s.has(wire.TCPFlagSYN) {
		n++
	}
	if s.has(wire.TCPFlagFIN) {
		n++
	}
	return n
}

// handleSegment runs one segment through the state machine (RFC 9293
// §3.10.7).
func (e *endpoint) handleSegment(seg *segment, local, remote netip.AddrPort, nic int) {
	seg.now = time.Now()
	e.mu.Lock()
	switch e.state {
	case StateListen:
		if e.local.Port() != local.Port() {
			e.mu.Unlock()
			e.p.respondReset(seg, local, remote, nic)
			return
		}
		e.listenInput(seg, local, remote, nic, nil)
		return
	case StateClosed:
		e.mu.Unlock()
		e.p.respondReset(seg, local, remote, nic)
		return
	case StateSynSent:
		e.synSentInput(seg)
	case StateTimeWait:
		if e.timeWaitSynOK(seg) {
			// RFC 9293 §3.10.7.4, RFC 6191; Linux TCP_TW_SYN: the old
			// incarnation ends and the listener takes the SYN, with an ISN
			// beyond anything the old one sent (Linux: tw_snd_nxt + 65535 + 2).
			iss := e.sndMax.Add(65535 + 2)
			e.closeLocked()
			e.unlock()
			e.p.synAfterTimeWait(seg, local, remote, nic, iss)
			return
		}
		e.connInput(seg)
	default:
		e.connInput(seg)
	}
	e.unlock()
}

// timeWaitSynOK reports whether a SYN for a connection in TIME_WAIT may
// open a new one (Linux tcp_timewait_state_process): not rejected by
// PAWS, and either its TSval newer than TS.Recent (RFC 6191 §2) or,
// without timestamps, its sequence number beyond the old RCV.NXT.
func (e *endpoint) timeWaitSynOK(seg *segment) bool {
	if !seg.has(wire.TCPFlagSYN) || seg.has(wire.TCPFlagACK|wire.TCPFlagRST) {
		return false
	}
	ts := e.tsOK && seg.opts.HasTimestamps
	if ts && int32(seg.opts.TSVal-e.tsRecent) < 0 {
		return false // PAWS (RFC 7323 §5.3)
	}
	return e.rcvNxt.LessThan(seg.seq) || (ts && int32(seg.opts.TSVal-e.tsRecent) > 0)
}

// synAfterTimeWait hands a SYN that ended a TIME_WAIT to the listener of
// its port, which starts the new connection at iss; with no listener it
// is answered with a reset (RFC 9293 §3.10.7.1).
func (p *Protocol) synAfterTimeWait(seg *segment, local, remote netip.AddrPort, nic int, iss seqnum.Value) {
	l := p.lookup(local, remote, nic)
	if l == nil {
		p.respondReset(seg, local, remote, nic)
		return
	}
	l.mu.Lock()
	if l.state != StateListen || l.local.Port() != local.Port() {
		l.mu.Unlock()
		l.handleSegment(seg, local, remote, nic) // another connection took the 4-tuple meanwhile
		return
	}
	l.listenInput(seg, local, remote, nic, &iss)
}

// listenInput handles a segment for a listener (RFC 9293 §3.10.7.2): a
// SYN makes a child in SYN_RECV if the queues have room; an ACK is
// answered with a reset; anything else is dropped. It unlocks e. A
// non-nil iss is the child's ISN (a SYN that ended a TIME_WAIT).
func (e *endpoint) listenInput(seg *segment, local, remote netip.AddrPort, nic int, iss *seqnum.Value) {
	switch {
	case seg.has(wire.TCPFlagRST):
		e.mu.Unlock()
		return
	case seg.has(wire.TCPFlagACK) && !seg.has(wire.TCPFlagSYN):
		if !e.p.DisableSynCookies && e.cookieAckLocked(seg, local, remote, nic) {
			return
		}
		e.mu.Unlock()
		e.p.respondReset(seg, local, remote, nic)
		return
	case seg.has(wire.TCPFlagACK):
		e.mu.Unlock()
		e.p.respondReset(seg, local, remote, nic)
		return
	case !seg.has(wire.TCPFlagSYN):
		e.mu.Unlock()
		return
	}
	// Linux drops a SYN when the accept queue is full; when the SYN queue
	// is, it answers with a SYN cookie (RFC 4987 §3.6) and keeps no state.
	if len(e.acceptQ) > e.backlog {
		e.mu.Unlock()
		return
	}
	if e.synQ >= min(maxSynQueue, max(e.backlog, 8)) {
		if !e.p.DisableSynCookies {
			e.sendCookieLocked(seg, local, remote, nic)
		}
		e.mu.Unlock()
		return
	}
	c := &endpoint{p: e.p, family: e.family, uid: e.uid, priv: e.priv, state: StateClosed, opts: e.opts, parent: e}
	c.initConn()
	c.device.Store(e.device.Load())
	c.nodelay, c.cork, c.userMSS = e.nodelay, e.cork, e.userMSS
	c.keepIdle, c.keepIntvl, c.keepCnt = e.keepIdle, e.keepIntvl, e.keepCnt
	c.userTimeout, c.ccName = e.userTimeout, e.ccName
	c.rcvShift = e.rcvShift
	e.synQ++
	e.mu.Unlock()

	c.mu.Lock()
	c.local, c.remote = local, remote
	r, err := c.p.s.FindRoute(nic, local.Addr(), remote.Addr())
	if err != nil {
		c.mu.Unlock()
		e.synDone()
		return
	}
	c.route, c.routeGen, c.routeValid = r, c.p.s.RouteGeneration(), true
	c.p.mu.Lock()
	if _, busy := c.p.conns[fourTuple{local, remote}]; busy {
		c.p.mu.Unlock()
		c.mu.Unlock()
		e.synDone()
		return
	}
	c.p.conns[fourTuple{local, remote}] = c
	c.hashed = true
	c.p.mu.Unlock()
	c.p.track(c)
	now := time.Now()
	c.iss = c.p.isn(local, remote, now)
	if iss != nil {
		c.iss = *iss
	}
	c.sndUna, c.sndNxt, c.sndMax, c.sndSml = c.iss, c.iss, c.iss, c.iss
	c.tsOffset = c.p.tsOffset(local, remote, now)
	c.acceptSynLocked(seg)
	c.ecn.set(ecnOK, c.p.ecnSYNRequest(seg)) // RFC 3168 §6.1.1
	c.setState(StateSynRcvd)
	c.p.stats.PassiveOpens.Add(1)
	c.sendSynLocked(true)
	c.armRTOLocked()
	c.unlock()
}

// acceptSynLocked takes the peer's sequence number and options from its
// SYN (RFC 9293 §3.10.7.2/3; RFC 7323 §2.2, §3.2; RFC 2018 §2).
func (e *endpoint) acceptSynLocked(seg *segment) {
	e.irs = seg.seq
	e.rcvNxt = seg.seq + 1
	e.rcvAdv = e.rcvNxt
	e.ooo.Init(e.rcvNxt, ranges.MaxRangesFor(e.rcvBufLimit()))
	if e.warm != nil {
		e.warm.sackRep.Reset()
	}
	o := &seg.opts
	e.peerMSS = defaultMSS(e.remote.Addr())
	if o.HasMSS && o.MSS > 0 {
		e.peerMSS = int(o.MSS)
	}
	e.wsOK = o.HasWindowScale && !e.p.DisableWindowScaling
	if e.wsOK {
		e.sndShift = o.WindowShift()
	} else {
		e.sndShift, e.rcvShift = 0, 0
	}
	e.sackOK = o.SACKPermitted && !e.p.DisableSACK
	e.tsOK = o.HasTimestamps && !e.p.DisableTimestamps
	if e.tsOK {
		e.tsRecent = o.TSVal
	}
	e.sndWnd = int(seg.wnd) // never scaled in a SYN (RFC 7323 §2.2)
	e.maxSndWnd = e.sndWnd
	e.sndWl1 = seg.seq
	e.lastRecv = time.Now()
	e.updateMSSLocked()
}

// defaultMSS is what to assume without an MSS option (RFC 9293 §3.7.1;
// RFC 8200 §5 for IPv6).
func defaultMSS(a netip.Addr) int {
	if a.Is4() {
		return 536
	}
	return 1220
}

// synSentInput is RFC 9293 §3.10.7.3.
func (e *endpoint) synSentInput(seg *segment) {
	if seg.has(wire.TCPFlagACK) {
		if seg.ack.LessThanEq(e.iss) || e.sndNxt.LessThan(seg.ack) {
			if !seg.has(wire.TCPFlagRST) {
				e.sendRawResetLocked(seg.ack)
			}
			return
		}
	}
	if seg.has(wire.TCPFlagRST) {
		if seg.has(wire.TCPFlagACK) {
			e.failLocked(syscall.ECONNREFUSED)
		}
		return
	}
	if !seg.has(wire.TCPFlagSYN) {
		return
	}
	e.acceptSynLocked(seg)
	if seg.has(wire.TCPFlagACK) {
		// RFC 3168 §6.1.1: an ECN-setup SYN-ACK (ECE, not CWR) to our
		// ECN-setup SYN.
		e.ecn.set(ecnOK, e.ecn.has(ecnRequested) && seg.has(wire.TCPFlagECE) && !seg.has(wire.TCPFlagCWR))
		e.sndUna = seg.ack
		e.rtt.ResetBackoff()
		e.retries = 0
		if e.tsOK && seg.opts.TSEcr != 0 {
			e.rtt.Sample(e.tsRTT(seg.opts.TSEcr, seg.now))
		} else if e.rttTiming {
			e.rtt.Sample(seg.now.Sub(e.rttStart))
		}
		e.rttTiming = false
		e.rtoT.stop()
		e.establishLocked()
		e.sendAckLocked()
		return
	}
	// Simultaneous open (RFC 9293 §3.5, figure 8): SYN_RECV, SYN-ACK;
	// ECN if both SYNs were ECN-setup SYNs (Linux tcp_ecn_rcv_syn).
	e.ecn.set(ecnOK, e.ecn.has(ecnRequested) && e.p.ecnSYNRequest(seg))
	e.setState(StateSynRcvd)
	e.sendSynLocked(true)
	e.armRTOLocked()
}

// establishLocked enters ESTABLISHED.
func (e *endpoint) establishLocked() {
	e.sb.Init(e.sndUna, ranges.MaxRangesFor(e.sndBufLimit()))
	e.setState(StateEstablished)
	e.connected = true
	e.chooseCongestionLocked()
	e.initCongestionLocked()
	e.armKeepaliveLocked()
	e.pending |= waiter.EventOut | waiter.EventWrNorm
}

// failLocked ends a connection with an error for the application.
func (e *endpoint) failLocked(err syscall.Errno) {
	switch e.state {
	case StateSynSent, StateSynRcvd:
		e.p.stats.AttemptFails.Add(1)
	case StateEstablished, StateCloseWait:
		if err == syscall.ECONNRESET {
			e.p.stats.EstabResets.Add(1)
		}
	}
	if !e.appClosed {
		e.soErr = err
	}
	e.closeLocked()
}

// acceptable is the segment acceptability test of RFC 9293 §3.10.7.4.
func (e *endpoint) acceptable(seg *segment) bool {
	wnd := seqnum.Size(e.rcvAdv - e.rcvNxt)
	if e.rcvAdv.LessThan(e.rcvNxt) {
		wnd = 0
	}
	n := seg.segLen()
	switch {
	case n == 0 && wnd == 0:
		return seg.seq == e.rcvNxt
	case n == 0:
		return seg.seq.InWindow(e.rcvNxt, wnd)
	case wnd == 0:
		return false
	}
	last := seg.seq.Add(n - 1)
	return seg.seq.InWindow(e.rcvNxt, wnd) || last.InWindow(e.rcvNxt, wnd)
}

// connInput handles a segment in SYN_RECV and the synchronized states
// (RFC 9293 §3.10.7.4, with RFC 5961 and RFC 7323 §5 PAWS).
func (e *endpoint) connInput(seg *segment) {
	e.lastRecv = seg.now
	e.kaProbes = 0
	if seg.has(wire.TCPFlagACK) {
		e.zwProbes = 0
	}
	if e.state == StateTimeWait {
		e.timeWaitInput(seg)
		return
	}
	// SYN_RECV: a retransmitted SYN means our SYN-ACK was lost.
	if e.state == StateSynRcvd && seg.has(wire.TCPFlagSYN) && !seg.has(wire.TCPFlagACK) && seg.seq == e.irs {
		e.sendSynLocked(true)
		return
	}
	// PAWS (RFC 7323 §5.3): a timestamp older than TS.Recent is a
	// segment from an earlier incarnation of the sequence space.
	if e.tsOK && seg.opts.HasTimestamps && !seg.has(wire.TCPFlagRST) && int32(seg.opts.TSVal-e.tsRecent) < 0 {
		e.sendOOWAckLocked(seg)
		return
	}
	if !e.acceptable(seg) {
		if !seg.has(wire.TCPFlagRST) {
			if len(seg.payload) > 0 && seg.seq.LessThan(e.rcvNxt) {
				end := seg.seq.Add(seqnum.Size(len(seg.payload)))
				e.warmLocked(seg.now).sackRep.Duplicate(seg.seq, end) // RFC 2883 D-SACK
			}
			e.sendOOWAckLocked(seg)
		}
		return
	}
	if seg.has(wire.TCPFlagRST) {
		// RFC 5961 §3.2: only an exact RST resets; an in-window one gets
		// a challenge ACK.
		if seg.seq != e.rcvNxt {
			e.sendChallengeAckLocked()
			return
		}
		switch e.state {
		case StateSynRcvd:
			if e.parent != nil {
				e.p.stats.AttemptFails.Add(1)
				e.appClosed = true // a passive child that was never accepted
				e.closeLocked()
				return
			}
			e.failLocked(syscall.ECONNREFUSED)
		case StateCloseWait:
			e.failLocked(syscall.EPIPE)
		default:
			// CLOSING and LAST_ACK too: RFC 9293 §3.10.7.4 just
			// closes, Linux's tcp_reset also leaves ECONNRESET for a
			// socket still open (half-closed with shutdown).
			e.failLocked(syscall.ECONNRESET)
		}
		return
	}
	if seg.has(wire.TCPFlagSYN) {
		// RFC 5961 §4.2: a SYN in a synchronized state (or SYN_RECV) gets
		// a challenge ACK, whatever its sequence number.
		e.sendChallengeAckLocked()
		return
	}
	if !seg.has(wire.TCPFlagACK) {
		return
	}
	// RFC 7323 §4.3: TS.Recent follows the segment that covers
	// Last.ACK.sent.
	if e.tsOK && seg.opts.HasTimestamps && seg.seq.LessThanEq(e.lastAckSent) && int32(seg.opts.TSVal-e.tsRecent) >= 0 {
		e.tsRecent = seg.opts.TSVal
	}
	if e.state == StateSynRcvd {
		if !(e.sndUna.LessThan(seg.ack) && seg.ack.LessThanEq(e.sndNxt)) {
			e.sendRawResetLocked(seg.ack)
			return
		}
		if e.parent != nil && e.parent.acceptFull.Load() {
			// Linux (tcp_abort_on_overflow off): the ACK is dropped and the
			// child stays in SYN_RECV; the SYN-ACK retransmission asks the
			// client to ACK again, by when accept may have made room.
			return
		}
		e.sndWnd = int(seg.wnd) << e.sndShift
		e.maxSndWnd = max(e.maxSndWnd, e.sndWnd)
		e.sndWl1, e.sndWl2 = seg.seq, seg.ack
		e.sndUna = seg.ack
		if e.tsOK && seg.opts.TSEcr != 0 {
			e.rtt.Sample(e.tsRTT(seg.opts.TSEcr, seg.now))
		} else if e.rttTiming && e.retries == 0 {
			e.rtt.Sample(seg.now.Sub(e.rttStart))
		}
		e.rttTiming = false
		e.retries = 0
		e.rtt.ResetBackoff()
		e.rtoT.stop()
		e.establishLocked()
		if par := e.parent; par != nil {
			e.after = append(e.after, func() { par.childEstablished(e) })
		}
	}
	if !e.ackInput(seg) {
		return
	}
	e.dataInput(seg)
	e.outputAtLocked(seg.now, false)
}

// childEstablished moves a child that completed its handshake to the
// accept queue, or resets it if the listener is gone or full.
func (l *endpoint) childEstablished(c *endpoint) {
	l.mu.Lock()
	if l.synQ > 0 {
		l.synQ--
	}
	ok := l.state == StateListen && len(l.acceptQ) <= l.backlog
	if ok {
		l.acceptQ = append(l.acceptQ, c)
		l.acceptFull.Store(len(l.acceptQ) > l.backlog)
		l.pending |= waiter.EventIn | waiter.EventRdNorm
	}
	l.unlock()
	if !ok {
		c.mu.Lock()
		c.parent = nil
		c.mu.Unlock()
		c.abort(true)
	}
}

// ackInput processes SEG.ACK (RFC 9293 §3.10.7.4, fifth step; RFC 5961
// §5.2; RFC 5681 §3.2; RFC 6582). It reports whether processing goes on.
func (e *endpoint) ackInput(seg *segment) bool {
	ack := seg.ack
	// RFC 5961 §5.2: an ACK for data never sent, or older than the
	// largest window the peer could have seen, gets a challenge ACK.
	if e.sndMax.LessThan(ack) {
		e.sendChallengeAckLocked()
		return false
	}
	if ack.LessThan(e.sndUna.Add(-seqnum.Size(max(e.maxSndWnd, 65535)))) {
		e.sendChallengeAckLocked()
		return false
	}
	wnd := int(seg.wnd) << e.sndShift
	e.ecnEchoAckLocked(seg) // RFC 3168 §6.1.2
	if e.sackOK {
		e.sackAckLocked(seg, ack, wnd)
	} else if e.sndUna.LessThan(ack) {
		e.newAckLocked(seg, ack)
	} else if ack == e.sndUna && len(seg.payload) == 0 && !seg.has(wire.TCPFlagFIN) &&
		wnd == e.sndWnd && e.sndUna != e.sndMax {
		e.dupAckLocked()
	}
	// Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ, or equal and
	// SND.WL2 =< SEG.ACK).
	if e.sndWl1.LessThan(seg.seq) || (e.sndWl1 == seg.seq && e.sndWl2.LessThanEq(ack)) {
		opened := e.sndWnd == 0 && wnd > 0
		e.sndWnd = wnd
		e.maxSndWnd = max(e.maxSndWnd, wnd)
		e.sndWl1, e.sndWl2 = seg.seq, ack
		if opened {
			e.retries = 0
			e.rtt.ResetBackoff()
			if e.sndNxt == e.sndUna {
				e.rtoT.stop() // the persist timer: the window is open
			}
		}
	}
	finAcked := e.finAcked
	switch e.state {
	case StateFinWait1:
		if finAcked {
			e.setState(StateFinWait2)
			e.pending |= waiter.EventOut // for SO_LINGER's wait (Lingering)
			if e.appClosed {
				e.twT.set(e.p.FinTimeout, e.onTimeWait)
			}
		}
	case StateClosing:
		if finAcked {
			e.enterTimeWaitLocked()
			return false
		}
	case StateLastAck:
		if finAcked {
			e.closeLocked()
			return false
		}
	}
	return true
}

// newAckLocked handles an ACK that acknowledges new data.
func (e *endpoint) newAckLocked(seg *segment, ack seqnum.Value) {
	acked := int(e.sndUna.Size(ack))
	dataAcked := min(acked, e.snd.n)
	e.ltAcks, e.ltSent = 0, 0 // a new episode of duplicate ACKs starts afresh
	if acked > dataAcked && e.finQueued {
		e.finAcked = true // the FIN sits right after the data
	}
	e.snd.consume(dataAcked)
	if e.snd.n == 0 {
		e.ringsEmptiedLocked(seg.now)
	}
	e.bytesAcked += uint64(dataAcked)
	e.sndUna = ack
	if e.sndNxt.LessThan(ack) {
		e.sndNxt = ack
	}
	// RTT: from the timestamp echo (valid even for retransmissions,
	// RFC 7323 §4.1), else from the timed segment unless it was
	// retransmitted (Karn's rule, RFC 6298 §3).
	if e.tsOK && seg.opts.HasTimestamps && seg.opts.TSEcr != 0 {
		e.rtt.Sample(e.tsRTT(seg.opts.TSEcr, seg.now))
	} else if e.rttTiming && e.rttSeq.LessThan(ack) {
		e.rtt.Sample(seg.now.Sub(e.rttStart))
	}
	if e.rttTiming && e.rttSeq.LessThan(ack) {
		e.rttTiming = false
	}
	e.retries = 0
	e.rtt.ResetBackoff()
	if e.inLoss && !ack.LessThan(e.recover) {
		e.inLoss = false // all that was outstanding at the timeout is acknowledged
	}
	if e.inRecovery {
		if e.recover.LessThan(ack) || e.recover == ack {
			// Full acknowledgment (RFC 6582 §3.2 step 3).
			e.inRecovery = false
			e.dupAcks = 0
			e.ccRecoveryExit()
		} else {
			// Partial acknowledgment: the next hole is lost too
			// (NewReno; with SACK the scoreboard decides).
			e.dupAcks = 0
			if !e.sackOK {
				e.prrAckLocked(dataAcked)
				e.retransmitFirstLocked()
			}
		}
	} else {
		e.dupAcks = 0
		if !e.ecnHoldsCwndLocked(seg) {
			e.ccAck(dataAcked, seg.now)
		}
		e.sndBufExpandLocked()
	}
	if e.sndUna == e.sndMax {
		e.rtoT.stop()
	} else {
		e.armRTOAtLocked(seg.now) // RFC 6298 §5.3
	}
	e.pending |= waiter.EventOut | waiter.EventWrNorm
}

// dupAckLocked counts a duplicate ACK; the first two allow limited
// transmit (RFC 3042 §2, limitedTransmitLocked), the third starts fast
// retransmit (RFC 5681 §3.2) and NewReno recovery (RFC 6582).
func (e *endpoint) dupAckLocked() {
	e.dupAcks++
	if e.inRecovery {
		e.prrAckLocked(e.mss) // a duplicate ACK stands for one segment delivered
		return
	}
	e.ltAcks = min(e.ltAcks+1, 2)
	if e.dupAcks != 3 {
		return // the output after this ACK sends what limited transmit allows
	}
	// RFC 6582 §3.2 step 1: only if the ACK covers more than "recover".
	if e.recover != 0 && !e.recover.LessThan(e.sndUna) && e.recover != e.sndUna {
		return
	}
	e.inRecovery = true
	e.recover = e.sndMax
	e.ccCongestion()
	e.retransmitFirstLocked()
}

// dataInput places the segment's data and FIN (RFC 9293 §3.10.7.4,
// seventh and eighth steps).
func (e *endpoint) dataInput(seg *segment) {
	switch e.state {
	case StateEstablished, StateFinWait1, StateFinWait2:
	default:
		return // the peer's FIN came already: anything more is ignored
	}
	data := seg.payload
	seq := seg.seq
	fin := seg.has(wire.TCPFlagFIN)
	if len(data) > 0 && e.ecnInputLocked(seg) {
		// RFC 3168 §6.1.3: ECE from now on; this segment's ACK goes
		// at once (Linux tcp_enter_quickack_mode on CE).
		defer func() {
			if e.state != StateClosed && e.lastAckSent != e.rcvNxt {
				e.ackNowLocked()
			}
		}()
	}
	if len(data) > 0 && e.appClosed {
		// Linux tcp_rcv_state_process: new data for a closed socket
		// cannot be delivered; reset (TCPAbortOnData).
		e.sendResetLocked()
		e.closeLocked()
		return
	}
	// Trim what was already received.
	if seq.LessThan(e.rcvNxt) {
		k := int(seq.Size(e.rcvNxt))
		if k > len(data) {
			k = len(data)
		}
		data = data[k:]
		seq = seq.Add(seqnum.Size(k))
	}
	if len(data) > 0 {
		e.bytesReceived += uint64(len(data))
		// A segment longer than the MSS we advertised is an aggregate a
		// link coalesced (link.CapRXCoalesce); its sender's segments are
		// no larger than our MSS (Linux measures rcv_mss from gso_size).
		if e.rcvMSSCap == 0 {
			e.rcvMSSCap = e.advertisedMSS()
		}
		e.rcvMSS = max(e.rcvMSS, min(len(seg.payload), e.rcvMSSCap))
		off := e.rcv.n + int(e.rcvNxt.Size(seq))
		room := e.opts.RcvBuf - off
		if room <= 0 {
			e.sendAckLocked() // beyond our buffer: dropped
			return
		}
		if len(data) > room {
			data, fin = data[:room], false
		}
		if !e.rcvScheduleLocked(seq, off, len(data)) {
			// No memory for any of it (the counters are kept there).
			e.sendAckLocked()
			return
		}
		if fit := len(e.rcv.b) - off; len(data) > fit {
			data, fin = data[:fit], false // the part the memory we got holds
		}
		end := seq.Add(seqnum.Size(len(data)))
		e.rcvRTTSampleLocked(seg)
		if seq == e.rcvNxt {
			e.rcv.put(off, data)
			e.rcv.n += len(data)
			e.rcvNxt = end
			filled := e.ooo.Len() > 0
			if nxt := e.ooo.Advance(e.rcvNxt); nxt != e.rcvNxt {
				e.rcv.n += int(e.rcvNxt.Size(nxt))
				e.rcvNxt = nxt
			}
			e.pending |= waiter.EventIn | waiter.EventRdNorm
			if filled {
				e.ackNowLocked() // RFC 5681 §4.2: an ACK for filling a hole at once
			} else {
				// An aggregate counts as the segments it holds.
				e.delackSegs += max(1, len(data)/max(e.rcvMSS, 1))
				if e.delackSegs >= 2 { // RFC 5681 §4.2: at least every second full segment
					e.ackNowLocked()
				} else {
					e.delackT.arm(seg.now, delAckTimeout, e, (*endpoint).onDelAck)
				}
			}
		} else {
			// Out of order: keep it at its offset, ACK at once (RFC 5681
			// §4.2) with SACK blocks (RFC 2018 §4).
			if d, ok := e.ooo.FirstDuplicate(seq, end); ok {
				e.warmLocked(seg.now).sackRep.Duplicate(d.Start, d.End)
			}
			added, ev, evicted := e.ooo.AddEvict(seq, end)
			if added > 0 && !(evicted && ev.Start == seq) {
				e.rcv.put(off, data)
			}
			e.warmLocked(seg.now).sackRep.Received(seq, end, &e.ooo)
			if fin {
				e.oooFin, e.oooFinSeq = true, end
				fin = false
			}
			e.ackNowLocked()
		}
	} else if len(seg.payload) > 0 {
		e.warmLocked(seg.now).sackRep.Duplicate(seg.seq, seg.seq.Add(seqnum.Size(len(seg.payload))))
		e.ackNowLocked()
	}
	if fin && seq.Add(seqnum.Size(len(data))) == e.rcvNxt {
		e.finInputLocked()
	} else if e.oooFin && e.oooFinSeq == e.rcvNxt {
		e.finInputLocked()
	}
}

// finInputLocked consumes the peer's FIN (RFC 9293 §3.10.7.4, eighth
// step).
func (e *endpoint) finInputLocked() {
	e.oooFin = false
	e.rcvNxt++
	e.finRcvd = true
	e.pending |= waiter.EventIn | waiter.EventRdNorm | waiter.EventRdHUp
	switch e.state {
	case StateEstablished:
		e.setState(StateCloseWait)
	case StateFinWait1:
		if e.finAcked {
			e.enterTimeWaitLocked()
		} else {
			e.setState(StateClosing)
		}
	case StateFinWait2:
		e.enterTimeWaitLocked()
	}
	e.ackNowLocked()
}

// enterTimeWaitLocked starts TIME_WAIT (RFC 9293 §3.10.7.4: 2·MSL),
// unless MaxTimeWait connections are in it already: then, as Linux's
// tcp_time_wait when inet_twsk_alloc fails, the connection just closes
// (TCPTimeWaitOverflow).
func (e *endpoint) enterTimeWaitLocked() {
	if e.p.timeWaits.Load() >= int64(e.p.MaxTimeWait) {
		e.p.stats.TimeWaitOverflow.Add(1)
		e.closeLocked()
		return
	}
	e.setState(StateTimeWait)
	e.rtoT.stop()
	e.delackT.stop()
	e.kaT.stop()
	e.freeRingLocked(&e.snd)
	e.twT.set(e.p.TimeWait, e.onTimeWait)
	e.pending |= waiter.EventAll
}

// timeWaitInput: a retransmitted FIN is acknowledged again and restarts
// the 2·MSL timer; a RST ends TIME_WAIT early only if exact (RFC 1337
// says ignore it; Linux, with tcp_rfc1337 off, accepts it); a SYN gets a
// challenge ACK (RFC 5961 §4); everything else is acknowledged.
func (e *endpoint) timeWaitInput(seg *segment) {
	if seg.has(wire.TCPFlagRST) {
		if seg.seq == e.rcvNxt {
			e.closeLocked()
		}
		return
	}
	if seg.has(wire.TCPFlagFIN) && seg.seq.Add(seqnum.Size(len(seg.payload))+1) == e.rcvNxt {
		e.twT.set(e.p.TimeWait, e.onTimeWait)
	}
	e.sendAckLocked()
}

// oowRateLimit is Linux's tcp_invalid_ratelimit: at most one ACK per
// half second answers out-of-window pure ACKs and other segments that
// only provoke an ACK. Without it two ends that disagree about the
// sequence space (a forged segment was accepted, say) answer each
// other's ACKs forever.
const oowRateLimit = 500 * time.Millisecond

// sendOOWAckLocked answers an unacceptable segment (RFC 9293 §3.10.7.4):
// at once if it carried data or a SYN (the sender needs the ACK to
// recover), rate-limited if it was a bare ACK (Linux tcp_oow_rate_limited).
func (e *endpoint) sendOOWAckLocked(seg *segment) {
	if len(seg.payload) == 0 && !seg.has(wire.TCPFlagSYN) {
		e.sendChallengeAckLocked()
		return
	}
	e.sendAckLocked()
}

// sendChallengeAckLocked sends a challenge ACK (RFC 5961 §3.2, §4.2,
// §5.2), at most one per oowRateLimit (RFC 5961 §7).
func (e *endpoint) sendChallengeAckLocked() {
	now := time.Now()
	if !e.lastOOWAck.IsZero() && now.Sub(e.lastOOWAck) < oowRateLimit {
		return
	}
	e.lastOOWAck = now
	e.sendAckLocked()
}

// sackAckLocked processes an ACK on a SACK connection: the scoreboard
// takes the blocks, and loss recovery is RFC 6675's (entered after three
// duplicate ACKs or when IsLost says SND.UNA is lost, §5), paced by PRR
// (RFC 6937), the segments chosen by NextSeg.
func (e *endpoint) sackAckLocked(seg *segment, ack seqnum.Value, wnd int) {
	var buf [wire.TCPMaxSACKBlocks]ranges.Range
	blocks := ranges.AppendBlocks(buf[:0], seg.opts.SACK())
	advanced := e.sndUna.LessThan(ack)
	acked := 0
	recovering := e.inRecovery || e.inLoss
	if advanced {
		acked = min(int(e.sndUna.Size(ack)), e.snd.n)
		e.newAckLocked(seg, ack)
	}
	newly, dsack := e.sb.Update(e.sndUna, e.sndMax, blocks)
	e.tlpAckLocked(seg.now, ack, blocks)
	exiting := recovering && !e.inRecovery && !e.inLoss
	var ecr uint32
	if advanced && e.tsOK && seg.opts.HasTimestamps {
		ecr = seg.opts.TSEcr
	}
	rackLost := e.rackAckLocked(seg.now, dsack, exiting, ecr) // RFC 8985 §6.2
	if !advanced && e.sndUna != e.sndMax && (newly > 0 || (len(seg.payload) == 0 && !seg.has(wire.TCPFlagFIN) && wnd == e.sndWnd)) {
		e.dupAcks++ // RFC 6675 §2: an ACK that SACKs new data counts as a duplicate
		if newly > 0 && !e.inRecovery && !e.inLoss {
			// Limited transmit (RFC 3042 §2, which RFC 6675 §5 step 3
			// allows; here with RFC 3042's cwnd + 2·SMSS bound, not
			// step 3's pipe-based one): only for an ACK with new SACK
			// information (RFC 3042 §2's note), so a misbehaving
			// receiver cannot repeat ACKs to draw data out of us.
			e.ltAcks = min(e.ltAcks+1, 2)
		}
	}
	if e.inLoss {
		// After a timeout (RFC 6675 §5.1) newly SACKed data grows cwnd
		// in slow start as acknowledged data does (Linux counts both as
		// delivered); outputAtLocked resends via lossRecoverLocked.
		e.ccAck(int(newly), seg.now)
		return
	}
	if e.inRecovery {
		if advanced && !ack.LessThan(e.recover) {
			return // newAckLocked ended the recovery
		}
		e.prrBudget = e.prr.OnAck(acked+int(newly), e.sb.Pipe(e.sndUna, e.sndMax, e.highRxt, e.mss), e.mss)
		e.sackRecoverLocked()
		return
	}
	// RACK's time-based detection (RFC 8985 §6) decides loss in place
	// of RFC 6675's DupThresh rule.
	if e.sndUna == e.sndMax || !rackLost {
		return
	}
	e.enterSACKRecoveryLocked(acked + int(newly))
}

// enterSACKRecoveryLocked starts SACK recovery (RFC 6675 §5 step 4) for a
// loss RACK detected, delivered being what the ACK delivered.
func (e *endpoint) enterSACKRecoveryLocked(delivered int) {
	// RFC 6582's guard against a second reduction for one window.
	if e.recover != 0 && e.sndUna.LessThan(e.recover) {
		return
	}
	e.inRecovery = true
	e.recover = e.sndMax
	e.highRxt = e.sndUna
	e.tlpResetLocked() // RFC 8985 §7.1
	e.ccCongestion()
	e.prrBudget = e.prr.OnAck(delivered, e.sb.Pipe(e.sndUna, e.sndMax, e.highRxt, e.mss), e.mss)
	if e.prrBudget < e.mss {
		e.prrBudget = e.mss // the fast retransmit itself goes at once (RFC 6675 §5 step 4.3)
	}
	e.sackRecoverLocked()
}

// sendCookieLocked answers a SYN with a SYN-ACK whose sequence number is
// a SYN cookie (RFC 4987 §3.6, Linux's scheme in pkg/tcp/isn): the MSS
// rides in the cookie, window scale and SACK-permitted in the timestamp,
// so without timestamps they are lost, as on Linux.
func (e *endpoint) sendCookieLocked(seg *segment, local, remote netip.AddrPort, nic int) {
	now := time.Now()
	o := &seg.opts
	mss := defaultMSS(remote.Addr())
	if o.HasMSS && o.MSS > 0 {
		mss = int(o.MSS)
	}
	cookie, _ := e.p.cookies.Make(local, remote, seg.seq, mss, now)
	ecn := e.p.ecnSYNRequest(seg) && o.HasTimestamps && !e.p.DisableTimestamps
	r, err := e.p.s.FindRoute(nic, local.Addr(), remote.Addr())
	if err != nil {
		return
	}
	hdr := 40
	if remote.Addr().Is6() {
		hdr = 60
	}
	ours := min(r.MTU, 65535) - hdr
	if e.userMSS > 0 {
		ours = min(ours, e.userMSS)
	}
	f := wire.TCPFields{SrcPort: local.Port(), DstPort: remote.Port(), Seq: uint32(cookie), Ack: uint32(seg.seq + 1),
		Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: uint16(min(e.opts.RcvBuf, 65535))}
	f.Options.HasMSS, f.Options.MSS = true, uint16(max(ours, 88))
	ws := -1
	if o.HasWindowScale && !e.p.DisableWindowScaling {
		ws = int(o.WindowShift())
		f.Options.HasWindowScale, f.Options.WindowScale = true, e.rcvShift
	}
	sackOK := o.SACKPermitted && !e.p.DisableSACK
	f.Options.SACKPermitted = sackOK
	if o.HasTimestamps && !e.p.DisableTimestamps {
		f.Options.HasTimestamps = true
		f.Options.TSVal = isn.EncodeTSOptions(tsClock(now), ws, sackOK, ecn)
		f.Options.TSEcr = o.TSVal
	} else {
		f.Options.HasWindowScale, f.Options.SACKPermitted = false, false
	}
	if ecn {
		f.Flags |= wire.TCPFlagECE // RFC 3168 §6.1.1, remembered in the TSval
	}
	e.p.sendControl(nic, local, remote, &f)
}

// cookieAckLocked completes a cookie handshake: an ACK for a listener
// whose acknowledgment number is a valid cookie becomes an established
// child straight away, in the accept queue. It reports whether it did so
// (and then has unlocked e).
func (e *endpoint) cookieAckLocked(seg *segment, local, remote netip.AddrPort, nic int) bool {
	now := time.Now()
	mss, ok := e.p.cookies.Check(local, remote, seg.seq-1, seg.ack, now)
	if !ok {
		return false
	}
	if len(e.acceptQ) > e.backlog {
		e.mu.Unlock()
		return true // dropped: the client will retransmit
	}
	r, err := e.p.s.FindRoute(nic, local.Addr(), remote.Addr())
	if err != nil {
		e.mu.Unlock()
		return true
	}
	c := &endpoint{p: e.p, family: e.family, uid: e.uid, priv: e.priv, state: StateClosed, opts: e.opts, parent: e}
	c.initConn()
	c.device.Store(e.device.Load())
	c.nodelay, c.cork, c.userMSS = e.nodelay, e.cork, e.userMSS
	c.keepIdle, c.keepIntvl, c.keepCnt = e.keepIdle, e.keepIntvl, e.keepCnt
	c.userTimeout, c.ccName = e.userTimeout, e.ccName
	c.mu.Lock()
	c.local, c.remote = local, remote
	c.route, c.routeGen, c.routeValid = r, c.p.s.RouteGeneration(), true
	c.p.mu.Lock()
	if _, busy := c.p.conns[fourTuple{local, remote}]; busy {
		c.p.mu.Unlock()
		c.mu.Unlock()
		e.mu.Unlock()
		return true
	}
	c.p.conns[fourTuple{local, remote}] = c
	c.hashed = true
	c.p.mu.Unlock()
	c.p.track(c)
	c.irs, c.rcvNxt = seg.seq-1, seg.seq
	c.iss, c.sndUna, c.sndNxt, c.sndMax = seg.ack-1, seg.ack, seg.ack, seg.ack
	c.rcvAdv = c.rcvNxt.Add(seqnum.Size(min(e.opts.RcvBuf, 65535)))
	c.ooo.Init(c.rcvNxt, ranges.MaxRangesFor(c.rcvBufLimit()))
	c.peerMSS = mss
	if ws, sackOK, ecn, ok := isn.DecodeTSOptions(seg.opts.TSEcr); seg.opts.HasTimestamps && ok && !e.p.DisableTimestamps {
		c.tsOK, c.tsRecent = true, seg.opts.TSVal
		if ws >= 0 {
			c.wsOK, c.sndShift, c.rcvShift = true, uint8(ws), e.rcvShift
		}
		c.sackOK = sackOK
		c.ecn.set(ecnOK, ecn && e.p.ECN != ECNOff)
	}
	c.sndWnd = int(seg.wnd) << c.sndShift
	c.maxSndWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = seg.seq, seg.ack
	c.lastRecv = now
	c.updateMSSLocked()
	c.p.stats.PassiveOpens.Add(1)
	c.establishLocked()
	e.acceptQ = append(e.acceptQ, c)
	e.acceptFull.Store(len(e.acceptQ) > e.backlog)
	e.pending |= waiter.EventIn | waiter.EventRdNorm
	if len(seg.payload) > 0 || seg.has(wire.TCPFlagFIN) {
		c.dataInput(seg)
	}
	e.unlock() // the listener first: c's segments are written with no listener lock held
	c.unlock()
	return true
}
