package tcp

import (
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/tcp/cc"
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// DefaultCongestion is the congestion control of new connections
// (Linux's default, net.ipv4.tcp_congestion_control).
const DefaultCongestion = cc.NameCubic

// rcvShiftFor is our window scale (RFC 7323 §2.3): the smallest shift
// that lets the 16-bit field cover the receive buffer.
func rcvShiftFor(buf int) uint8 {
	var s uint8
	for s < wire.TCPMaxWindowShift && buf>>s > 65535 {
		s++
	}
	return s
}

// routeLocked returns the cached route, looked up again when the stack's
// routes changed.
func (e *endpoint) routeLocked() (stack.Route, bool) {
	if e.routeValid && e.routeGen == e.p.s.RouteGeneration() {
		return e.route, true
	}
	r, err := e.p.s.FindRoute(e.boundDevice(), e.local.Addr(), e.remote.Addr())
	if err != nil {
		return stack.Route{}, false
	}
	e.route, e.routeGen, e.routeValid = r, e.p.s.RouteGeneration(), true
	return r, true
}

// ipHeaderLen is the IP header in front of our segments.
func (e *endpoint) ipHeaderLen() int {
	if e.remote.Addr().Is4() {
		return 20
	}
	return 40
}

// pathMTU is the route's MTU lowered by what ICMP told us.
func (e *endpoint) pathMTU() int {
	mtu := 1500
	if r, ok := e.routeLocked(); ok && r.MTU > 0 {
		mtu = r.MTU
	}
	if e.pmtu > 0 {
		mtu = min(mtu, e.pmtu)
	}
	// The IP length fields cap a packet at 65535 bytes whatever the link
	// (loopback's MTU is 65536): Linux's MSS on lo is 65483 for it.
	return min(mtu, 65535)
}

// advertisedMSS is the MSS option of our SYN: the path MTU less the IP
// and TCP headers (RFC 9293 §3.7.1), or TCP_MAXSEG.
func (e *endpoint) advertisedMSS() int {
	m := e.pathMTU() - e.ipHeaderLen() - wire.TCPMinHeaderLen
	if e.userMSS > 0 {
		m = min(m, e.userMSS)
	}
	return max(min(m, 65535), 88)
}

// updateMSSLocked recomputes the send MSS (RFC 9293 §3.7.1: the smaller
// of the peer's MSS and our path's, less the options every segment
// carries).
func (e *endpoint) updateMSSLocked() {
	m := min(e.peerMSS, e.pathMTU()-e.ipHeaderLen()-wire.TCPMinHeaderLen)
	if e.userMSS > 0 {
		m = min(m, e.userMSS)
	}
	if e.tsOK {
		m -= 12
	}
	e.mss = max(m, 64)
	if e.cc != nil {
		e.cc.SetMSS(e.mss)
	}
}

func (e *endpoint) initCongestionLocked() {
	if e.cc != nil {
		return
	}
	a, err := cc.New(DefaultCongestion, e.mss)
	if err != nil {
		a = cc.NewReno(e.mss)
	}
	e.cc = a
}

func (e *endpoint) cwndLocked() int {
	if e.cc == nil {
		return 1 << 30
	}
	return e.cc.Cwnd()
}

func (e *endpoint) inflight() int { return int(e.sndUna.Size(e.sndNxt)) }

func (e *endpoint) ccAck(acked int, now time.Time) {
	if e.cc != nil && acked > 0 {
		e.cc.OnAck(acked, e.rtt.SRTT(), now)
	}
}

// ccCongestion enters fast recovery. ssthresh comes from the flight less
// what limited transmit sent beyond cwnd (RFC 5681 §3.2 step 2: "additional
// data sent in limited transmit MUST NOT be included in this
// calculation"); PRR starts from the whole flight (RFC 6937 RecoverFS), as
// those segments are in the network.
func (e *endpoint) ccCongestion() {
	lt := e.ltSent
	e.ltAcks, e.ltSent = 0, 0
	if e.cc == nil {
		return
	}
	inflight := int(e.sndUna.Size(e.sndMax))
	if !e.ecnLossLocked() { // an ECN reduction in this window has done it (ecn.go)
		e.cc.OnCongestion(time.Now(), max(inflight-lt, 0))
	}
	e.prr.Start(e.cc.Ssthresh(), inflight)
	e.prrBudget = 0
}

// smallOutLocked reports whether a segment shorter than the MSS is
// unacknowledged. Nagle's rule (RFC 896, RFC 1122 §4.2.3.4) holds back a
// short segment while data is in flight; Linux (tcp_nagle_check,
// tcp_minshall_check) and this follow Minshall's variant, which holds it
// only while an earlier short one is in flight, so the tail of a write
// larger than the MSS leaves with the full segments before it instead of
// waiting for their ACK (a delayed one, often).
func (e *endpoint) smallOutLocked() bool {
	return e.sndUna.LessThan(e.sndSml) && e.sndSml.LessThanEq(e.sndNxt)
}

// limitedTransmitLocked is what Limited Transmit (RFC 3042 §2; RFC 5681
// §3.2 step 2) adds to cwnd for sending new data: one SMSS for each of the
// first two duplicate ACKs (with SACK, those carrying new SACK
// information), so the amount outstanding stays within cwnd + 2·SMSS and
// each such ACK lets out at most one previously unsent segment, if the
// peer's window allows and there is data. cwnd itself is not changed, and
// what goes beyond it is kept out of the ssthresh of the recovery that may
// follow (ltSent, ccCongestion). Before recovery only: neither fast
// recovery (PRR paces it) nor the loss recovery after a timeout. With
// SACK, RACK (RFC 8985 §6.2) may judge the hole lost on any of these
// ACKs or when its reordering timer fires; recovery then takes over.
// Only for data never sent: not while going back after a timeout
// without SACK (SND.NXT below SND.MAX).
func (e *endpoint) limitedTransmitLocked() int {
	if e.ltAcks == 0 || e.inRecovery || e.inLoss || e.sndNxt != e.sndMax {
		return 0
	}
	return e.ltAcks * e.mss
}

func (e *endpoint) ccRecoveryExit() {
	if e.cc != nil {
		e.cc.OnRecoveryExit(time.Now())
	}
	e.prrBudget = 0
}

// prrAckLocked lets RFC 6937 decide what this ACK in recovery allows us
// to send. Without SACK, pipe is the flight less one segment per
// duplicate ACK (RFC 6675 §5's estimate with only dupacks to go by).
func (e *endpoint) prrAckLocked(delivered int) {
	pipe := max(int(e.sndUna.Size(e.sndMax))-e.dupAcks*e.mss, 0)
	e.prrBudget = e.prr.OnAck(delivered, pipe, e.mss)
}

// tsNow is our TSval clock: milliseconds (RFC 7323 §5.4) with a
// per-connection offset.
func (e *endpoint) tsNow() uint32 { return e.tsAt(time.Now()) }

func (e *endpoint) tsAt(now time.Time) uint32 { return tsClock(now) + e.tsOffset }

// tsEpoch anchors tsClock to the monotonic clock.
var tsEpoch = time.Now()

// tsClock is the timestamp clock before any offset: milliseconds of the
// monotonic clock, as Linux's tcp_clock_ms, so a step of the wall clock
// (NTP, date) cannot move TSvals back and have peers drop our segments
// as old (RFC 7323 §5.3 PAWS; §5.4 asks for a monotone clock).
func tsClock(now time.Time) uint32 { return uint32(now.Sub(tsEpoch).Milliseconds()) }

// tsRTT is the round-trip time a TSecr measures at now.
func (e *endpoint) tsRTT(ecr uint32, now time.Time) time.Duration {
	d := int32(e.tsAt(now) - ecr)
	if d < 0 {
		return 0
	}
	return time.Duration(d) * time.Millisecond
}

// windowLocked is the window field of a segment we send: the free
// receive buffer, scaled (RFC 7323 §2.3), with receiver-side silly window
// avoidance (RFC 9293 §3.8.6.2.2: the right edge moves only by at least
// min(buffer/2, MSS)) and never shrinking the right edge already offered
// (RFC 9293 §3.8.6).
func (e *endpoint) windowLocked() uint16 {
	free := e.rcvMemRoomLocked(max(e.opts.RcvBuf-e.rcv.n, 0))
	cur := 0
	if e.rcvNxt.LessThan(e.rcvAdv) {
		cur = int(e.rcvNxt.Size(e.rcvAdv))
	}
	step := min(e.opts.RcvBuf/2, max(e.mss, 536))
	if free > cur && free-cur < step {
		free = cur
	}
	free = max(free, cur)
	free = min(free, 65535<<e.rcvShift)
	w := free >> e.rcvShift
	if w<<e.rcvShift < cur {
		w = (cur + 1<<e.rcvShift - 1) >> e.rcvShift
	}
	w = min(w, 65535)
	e.rcvAdv = e.rcvNxt.Add(seqnum.Size(w << e.rcvShift))
	return uint16(w)
}

// maybeWindowUpdateLocked sends a window update after a read freed enough
// buffer: the window at least doubles and grows by a segment (Linux
// tcp_cleanup_rbuf), so a closed window reopens without a probe.
func (e *endpoint) maybeWindowUpdateLocked() {
	switch e.state {
	case StateEstablished, StateFinWait1, StateFinWait2:
	default:
		return
	}
	cur := 0
	if e.rcvNxt.LessThan(e.rcvAdv) {
		cur = int(e.rcvNxt.Size(e.rcvAdv))
	}
	free := e.rcvMemRoomLocked(e.opts.RcvBuf - e.rcv.n)
	if free >= 2*cur && free-cur >= max(e.mss, 536) {
		e.sendAckLocked()
	}
}

// emitLocked builds one segment and queues it for writing after the
// unlock. The payload is n bytes of the send buffer from offset off.
func (e *endpoint) emitLocked(seq seqnum.Value, flags wire.TCPFlags, off, n int) {
	e.emitAtLocked(time.Time{}, seq, flags, off, n)
}

// emitAtLocked is emitLocked with the time for the timestamp option
// (zero: read the clock if one is needed).
func (e *endpoint) emitAtLocked(now time.Time, seq seqnum.Value, flags wire.TCPFlags, off, n int) {
	r, ok := e.routeLocked()
	if !ok {
		return
	}
	// A caller's time may have been read before it took e.mu (the packet
	// path reads the clock on arrival) while another goroutine built a
	// segment at a later time: segments must not go back in time, or
	// the peer's PAWS check (RFC 7323 §5.3) drops the later one as old,
	// and RACK's records (RFC 8985 §6.1) stop being in transmit order.
	if !now.IsZero() && now.Before(e.lastEmit) {
		now = e.lastEmit
	}
	ecnFlags, ect := e.ecnOutLocked(seq, flags, n) // RFC 3168 §6.1
	flags |= ecnFlags
	f := wire.TCPFields{SrcPort: e.local.Port(), DstPort: e.remote.Port(), Seq: uint32(seq), Flags: flags, PayloadLen: n}
	syn := flags&wire.TCPFlagSYN != 0
	if flags&wire.TCPFlagACK != 0 {
		f.Ack = uint32(e.rcvNxt)
	}
	if flags&wire.TCPFlagRST == 0 {
		if syn {
			f.Window = uint16(min(e.opts.RcvBuf, 65535)) // a SYN's window is never scaled
			e.rcvAdv = e.rcvNxt.Add(seqnum.Size(f.Window))
		} else {
			f.Window = e.windowLocked()
		}
	}
	active := e.state == StateSynSent || (e.state == StateClosed && syn)
	if syn {
		f.Options.HasMSS, f.Options.MSS = true, uint16(e.advertisedMSS())
		if (active && !e.p.DisableWindowScaling) || e.wsOK {
			f.Options.HasWindowScale, f.Options.WindowScale = true, e.rcvShift
		}
		f.Options.SACKPermitted = (active && !e.p.DisableSACK) || e.sackOK
	}
	if (syn && active && !e.p.DisableTimestamps) || e.tsOK {
		if now.IsZero() {
			now = time.Now()
		}
		e.lastEmit = now
		f.Options.HasTimestamps, f.Options.TSVal = true, e.tsAt(now)
		if !active {
			f.Options.TSEcr = e.tsRecent
		}
	}
	if e.sackOK && !syn && flags&wire.TCPFlagRST == 0 {
		maxBlocks := wire.TCPMaxSACKBlocks
		if e.tsOK {
			maxBlocks = 3
		}
		var buf [wire.TCPMaxSACKBlocks]ranges.Range
		var fresh ranges.Reporter // nothing received out of order or twice lately
		rep := &fresh
		if e.warm != nil {
			rep = &e.warm.sackRep
		}
		blocks := rep.AppendBlocks(buf[:0], e.rcvNxt, maxBlocks, &e.ooo)
		ranges.PutOptions(&f.Options, blocks)
		// The blocks share the segment with the data: keep the packet
		// within the path MTU by sending fewer (RFC 2018 §3 lets the
		// sender include as many as fit).
		for f.Options.NumSACKBlocks > 0 && e.ipHeaderLen()+f.Len()+n > e.pathMTU() {
			f.Options.NumSACKBlocks--
		}
	}
	pkt := stack.NewPacket(f.Len() + n)
	b := pkt.Bytes()
	f.Encode(b)
	if n > 0 {
		e.snd.get(off, b[f.Len():])
	}
	f.SetChecksum(b, r.Src, r.Dst)
	// The ECN field is TCP's (RFC 3168 §6.1; Linux masks it out of
	// IP_TOS and IPV6_TCLASS for stream sockets).
	tos := e.opts.TrafficClass(r.Dst)&^wire.ECNMask | ect
	wo := stack.WriteOptions{Proto: wire.IPProtoTCP, TTL: e.opts.HopLimit(r.Dst), TOS: tos,
		DontFragment: r.Dst.Is4() && e.opts.PMTUDisc != syscall.IP_PMTUDISC_DONT}
	e.outq = append(e.outq, outPkt{r: r, pkt: pkt, wo: wo})
	if flags&wire.TCPFlagRST != 0 {
		e.p.stats.OutRsts.Add(1)
	}
	if flags&wire.TCPFlagACK != 0 {
		e.lastAckSent = e.rcvNxt
		e.delackSegs = 0
		e.delackT.stop()
	}
	if e.sackOK && !syn && (n > 0 || flags&wire.TCPFlagFIN != 0) && flags&wire.TCPFlagRST == 0 {
		if now.IsZero() {
			now = time.Now()
		}
		e.lastEmit = now
		end := seq.Add(seqnum.Size(n))
		if flags&wire.TCPFlagFIN != 0 {
			end++
		}
		e.rackSentLocked(now, seq, end, seq.LessThan(e.sndMax))
	}
	if (n > 0 || flags&(wire.TCPFlagSYN|wire.TCPFlagFIN) != 0) && seq.LessThan(e.sndMax) {
		e.p.stats.RetransSegs.Add(1)
		e.totalRetrans++
	} else {
		e.p.stats.OutSegs.Add(1)
	}
}

// sendSynLocked sends our SYN, or SYN-ACK.
func (e *endpoint) sendSynLocked(synAck bool) {
	flags := wire.TCPFlagSYN | e.ecnSynFlags(synAck)
	if synAck {
		flags |= wire.TCPFlagACK
	}
	if e.sndNxt == e.iss && e.retries == 0 {
		e.rttTiming, e.rttSeq, e.rttStart = true, e.iss, time.Now()
	}
	e.emitLocked(e.iss, flags, 0, 0)
	e.sndNxt = e.iss + 1
	e.sndMax = e.sndNxt
}

// sendAckLocked sends a bare ACK now. Its sequence number is SND.MAX,
// not SND.NXT: after a timeout SND.NXT goes back to SND.UNA, and the
// peer, which may hold everything up to SND.MAX, would find an ACK with
// an older sequence number unacceptable (Linux tcp_acceptable_seq).
func (e *endpoint) sendAckLocked() { e.emitLocked(e.sndMax, wire.TCPFlagACK, 0, 0) }

// ackNowLocked acknowledges at once instead of delaying.
func (e *endpoint) ackNowLocked() { e.sendAckLocked() }

// sendResetLocked aborts with <SEQ=SND.NXT><ACK=RCV.NXT><RST,ACK>
// (RFC 9293 §3.10.5; Linux tcp_send_active_reset).
func (e *endpoint) sendResetLocked() {
	e.emitLocked(e.sndMax, wire.TCPFlagRST|wire.TCPFlagACK, 0, 0)
}

// sendRawResetLocked answers an unacceptable ACK with <SEQ=SEG.ACK><RST>.
func (e *endpoint) sendRawResetLocked(seq seqnum.Value) {
	e.emitLocked(seq, wire.TCPFlagRST, 0, 0)
}

// outputLocked sends what the send and congestion windows allow, with
// sender-side silly window avoidance and Nagle (RFC 9293 §3.8.6.2.1,
// RFC 1122 §4.2.3.4). more (MSG_MORE) holds back a partial segment.
func (e *endpoint) outputLocked(more bool) {
	switch e.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
	default:
		return
	}
	e.outputAtLocked(time.Now(), more)
}

// outputAtLocked is outputLocked at time now (the caller's clock read),
// then the probe timeout when it applies (RFC 8985 §7.2).
func (e *endpoint) outputAtLocked(now time.Time, more bool) {
	high := e.sndMax
	e.transmitLocked(now, more)
	e.schedulePTOLocked(now, high != e.sndMax)
}

func (e *endpoint) transmitLocked(now time.Time, more bool) {
	switch e.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
	default:
		return
	}
	if e.cc != nil && e.sndNxt == e.sndUna && !e.lastSend.IsZero() {
		if idle := now.Sub(e.lastSend); idle > e.rtt.RTO() {
			e.cc.OnIdle(now, idle, e.rtt.RTO())
		}
	}
	if e.inRecovery && e.sackOK {
		e.sackRecoverLocked()
		return
	}
	if e.inLoss {
		e.lossRecoverLocked(now)
		return
	}
	for {
		sent := e.inflight()
		if sent > e.snd.n {
			return // the FIN is out
		}
		avail := e.snd.n - sent
		if avail == 0 && !e.finQueued {
			return
		}
		cwnd := e.cwndLocked()
		lt := e.limitedTransmitLocked()
		usable := max(min(e.sndWnd, cwnd+lt)-sent, 0)
		if e.inRecovery {
			usable = min(usable, e.prrBudget)
		}
		n := min(avail, e.mss, usable)
		if avail > 0 && n <= 0 {
			e.armPersistLocked()
			return
		}
		full := n == e.mss
		tail := n == avail
		nagleOK := (e.nodelay || sent == 0 || !e.smallOutLocked()) && !e.cork && !more
		if !full && !(tail && (nagleOK || e.finQueued)) && !(n > 0 && n >= e.maxSndWnd/2 && !e.cork && !more) {
			e.armPersistLocked()
			return
		}
		fin := e.finQueued && tail
		flags := wire.TCPFlagACK
		if tail && n > 0 {
			flags |= wire.TCPFlagPSH
		}
		if fin {
			flags |= wire.TCPFlagFIN
		}
		seq := e.sndNxt
		e.emitAtLocked(now, seq, flags, sent, n)
		e.sndNxt = seq.Add(seqnum.Size(n))
		if n < e.mss {
			e.sndSml = e.sndNxt // Linux tcp_minshall_update
		}
		if fin {
			e.sndNxt++
		}
		if e.sndMax.LessThan(e.sndNxt) {
			if !e.rttTiming && !e.tsOK && seq == e.sndMax {
				e.rttTiming, e.rttSeq, e.rttStart = true, seq, now
			}
			e.sndMax = e.sndNxt
		}
		if e.inRecovery {
			e.prrBudget -= n
			e.prr.Sent(n)
		} else if lt > 0 && sent+n > cwnd {
			e.ltSent += min(sent+n-cwnd, n)
		}
		e.lastSend = now
		if !e.rtoT.armed() {
			e.rtoT.arm(now, e.rtt.RTO(), e, (*endpoint).onRTO)
		}
		if fin {
			return
		}
	}
}

// armPersistLocked starts the persist timer when data waits for a window
// and nothing in flight would bring an ACK (RFC 9293 §3.8.6.1).
func (e *endpoint) armPersistLocked() {
	if e.sndNxt == e.sndUna && !e.rtoT.armed() {
		e.armRTOLocked()
	}
}

// retransmitFirstLocked resends the first unacknowledged segment (fast
// retransmit, RFC 5681 §3.2; a partial ACK, RFC 6582 §3.2).
func (e *endpoint) retransmitFirstLocked() {
	n := min(e.snd.n, e.mss, int(e.sndUna.Size(e.sndMax)))
	flags := wire.TCPFlagACK
	if n == e.snd.n && e.finQueued && e.sndUna.Add(seqnum.Size(n)).LessThan(e.sndMax) {
		flags |= wire.TCPFlagFIN
	}
	if n == 0 && flags&wire.TCPFlagFIN == 0 {
		return
	}
	if e.rttTiming {
		e.rttTiming = false // Karn's rule
	}
	e.emitLocked(e.sndUna, flags, 0, n)
	if e.inRecovery {
		e.prr.Sent(n)
	}
	e.armRTOLocked()
}

func (e *endpoint) armRTOLocked() { e.armRTOAtLocked(time.Now()) }

func (e *endpoint) armRTOAtLocked(now time.Time) {
	e.rtoKind = kindRTO // from a PTO or reordering timer: the RTO restarts
	e.rtoT.arm(now, e.rtt.RTO(), e, (*endpoint).onRTO)
}

// sackRecoverLocked sends during SACK-based recovery what PRR allows,
// segment by segment as RFC 6675 §4 NextSeg picks them: lost holes
// first, then new data, then other holes.
func (e *endpoint) sackRecoverLocked() {
	for e.prrBudget > 0 {
		off := int(e.sndUna.Size(e.sndMax))
		newData := 0
		if off <= e.snd.n {
			room := max(e.sndWnd-off, 0)
			newData = min(e.snd.n-off, room)
			if newData == 0 && e.finQueued && off == e.snd.n {
				newData = 1 // the FIN
			}
		}
		start, length, again := e.rackLostRexmitLocked()
		ok := again
		if !again {
			start, length, ok = e.sb.NextSeg(e.sndUna, e.sndMax, e.highRxt, e.mss, newData)
		}
		if !ok {
			return
		}
		if length > e.prrBudget && e.prrBudget < e.mss {
			return
		}
		length = min(length, e.prrBudget)
		e.emitRangeLocked(start, length)
		if again {
			e.rackResentLocked(start, length)
		} else if start == e.sndMax {
			e.sndMax = e.sndMax.Add(seqnum.Size(length))
			e.sndNxt = e.sndMax
		} else {
			e.highRxt = start.Add(seqnum.Size(length))
			e.rttTiming = false // Karn's rule
		}
		e.prrBudget -= length
		e.prr.Sent(length)
		e.lastSend = time.Now()
		if !e.rtoT.armed() {
			e.armRTOLocked()
		}
	}
}

// lossRecoverLocked sends during the loss recovery that follows a
// retransmission timeout on a SACK connection (RFC 6675 §5.1): while
// cwnd − pipe (SetPipe, with every unSACKed octet below the timeout's
// SND.NXT lost) leaves room, the segment NextSeg picks — the unSACKed
// holes first, then new data. cwnd starts at the loss window and grows
// in slow start with what is acknowledged or SACKed. It reports whether
// it sent anything.
func (e *endpoint) lossRecoverLocked(now time.Time) (sent bool) {
	for {
		room := e.cwndLocked() - e.sb.Pipe(e.sndUna, e.sndMax, e.highRxt, e.mss)
		if room <= 0 {
			return sent
		}
		off := int(e.sndUna.Size(e.sndMax))
		newData := 0
		if off <= e.snd.n {
			newData = min(e.snd.n-off, max(e.sndWnd-off, 0))
			if newData == 0 && e.finQueued && off == e.snd.n {
				newData = 1 // the FIN
			}
		}
		start, length, again := e.rackLostRexmitLocked()
		ok := again
		if !again {
			start, length, ok = e.sb.NextSeg(e.sndUna, e.sndMax, e.highRxt, e.mss, newData)
		}
		if !ok || length > room {
			return sent
		}
		e.emitRangeLocked(start, length)
		if again {
			e.rackResentLocked(start, length)
		} else if start == e.sndMax {
			e.sndMax = e.sndMax.Add(seqnum.Size(length))
			e.sndNxt = e.sndMax
		} else {
			e.highRxt = seqnum.Max(e.highRxt, start.Add(seqnum.Size(length)))
			e.rttTiming = false // Karn's rule
		}
		sent = true
		e.lastSend = now
		if !e.rtoT.armed() {
			e.rtoT.arm(now, e.rtt.RTO(), e, (*endpoint).onRTO)
		}
	}
}

// emitRangeLocked sends the sequence range [start, start+length) of the
// send buffer, the FIN included when the range reaches it.
func (e *endpoint) emitRangeLocked(start seqnum.Value, length int) {
	off := int(e.sndUna.Size(start))
	n := max(min(length, e.snd.n-off), 0)
	flags := wire.TCPFlagACK
	if e.finQueued && off+length > e.snd.n {
		flags |= wire.TCPFlagFIN
	}
	if n > 0 && off+n == e.snd.n {
		flags |= wire.TCPFlagPSH
	}
	e.emitLocked(start, flags, off, n)
}

// rcvBufLimit is how large the receive buffer may become: the window
// scale chosen at the handshake must cover it (Linux
// tcp_select_initial_window takes the shift from tcp_rmem[2] unless
// SO_RCVBUF was set).
func (e *endpoint) rcvBufLimit() int {
	if e.opts.RcvBufLock {
		return e.opts.RcvBuf
	}
	return max(e.opts.RcvBuf, autoRcvBufMax)
}

// sndBufLimit is how large the send buffer may become (tcp_wmem[2]
// unless SO_SNDBUF was set).
func (e *endpoint) sndBufLimit() int {
	if e.opts.SndBufLock {
		return e.opts.SndBuf
	}
	return max(e.opts.SndBuf, autoSndBufMax)
}

// rcvRTTSampleLocked measures the round trip as a receiver from the
// timestamp a data segment echoes (Linux tcp_rcv_rtt_measure_ts): an
// average with gain 1/8, a millisecond at least (our TSval clock's tick).
func (e *endpoint) rcvRTTSampleLocked(seg *segment) {
	if !e.tsOK || !seg.opts.HasTimestamps || seg.opts.TSEcr == 0 || len(seg.payload) < e.rcvMSS {
		return
	}
	m := max(e.tsRTT(seg.opts.TSEcr, seg.now), time.Millisecond)
	w := e.warmLocked(seg.now)
	if w.rcvRTT == 0 {
		w.rcvRTT = m
	} else {
		w.rcvRTT += (m - w.rcvRTT) / 8
	}
}

// rcvSpaceAdjustLocked is receive buffer auto-tuning (dynamic right
// sizing; Linux tcp_rcv_space_adjust), run as the application reads:
// once per receiver round trip, if the application read more than in the
// last one, the buffer (and so the window) grows to twice that plus
// sixteen segments, more if the rate is still rising, so the sender is
// never held back by our window while the application keeps up. Not if
// SO_RCVBUF was set.
//
// Under memory pressure the buffer does not grow (as Linux's
// tcp_grow_window and tcp_clamp_window hold rcv_ssthresh then).
func (e *endpoint) rcvSpaceAdjustLocked(now time.Time) {
	if e.opts.RcvBufLock || !e.state.synchronized() {
		return
	}
	w := e.warmLocked(now)
	read := e.rcvNxt.Add(-seqnum.Size(e.rcv.n))
	mss := max(e.rcvMSS, e.mss, 536)
	if w.rcvSpaceAt.IsZero() {
		// Linux tcp_init_buffer_space: the initial window's worth.
		w.rcvSpace, w.rcvSpaceSeq, w.rcvSpaceAt = 10*mss, read, now
		return
	}
	rtt := w.rcvRTT
	if rtt == 0 {
		rtt = e.rtt.SRTT()
	}
	if rtt == 0 || now.Sub(w.rcvSpaceAt) < rtt {
		return
	}
	copied := int(w.rcvSpaceSeq.Size(read))
	if copied > w.rcvSpace {
		win := 2*copied + 16*mss
		win += 2 * (win * (copied - w.rcvSpace) / w.rcvSpace)
		limit := min(autoRcvBufMax, 65535<<e.rcvShift)
		if win = min(win, limit); win > e.opts.RcvBuf && !e.p.memPressure.Load() {
			e.opts.RcvBuf = win
		}
		w.rcvSpace = copied
	}
	w.rcvSpaceSeq, w.rcvSpaceAt = read, now
}

// sndBufExpandLocked grows the send buffer to twice the congestion
// window when the window is not the limit, so the application can keep
// the pipe full (Linux tcp_should_expand_sndbuf, tcp_sndbuf_expand). Not
// if SO_SNDBUF was set, nor under memory pressure
// (tcp_should_expand_sndbuf checks tcp_under_memory_pressure).
func (e *endpoint) sndBufExpandLocked() {
	if e.opts.SndBufLock || e.cc == nil || e.p.memPressure.Load() {
		return
	}
	cwnd := e.cc.Cwnd()
	if e.inflight() >= cwnd {
		return
	}
	if want := min(2*cwnd, autoSndBufMax); want > e.opts.SndBuf {
		e.opts.SndBuf = want
	}
}
