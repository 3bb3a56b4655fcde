package tcp

import (
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Explicit Congestion Notification for TCP (RFC 3168 §6.1), as Linux
// does it with net.ipv4.tcp_ecn (Protocol.ECN):
//
//   - Negotiation (§6.1.1): an ECN-setup SYN carries ECE and CWR, the
//     ECN-setup SYN-ACK ECE only; a SYN-ACK answering any other SYN never
//     has ECE. A SYN that is itself ECT is not taken as an ECN request
//     (§6.1.1: SYNs are Not-ECT; Linux tcp_ecn_create_request). A
//     retransmitted SYN goes without ECE and CWR (§6.1.1.1's fallback,
//     Linux tcp_ecn_clear_syn), though a late ECN-setup SYN-ACK to the
//     first one still counts. SYN cookies carry the peer's request in
//     the timestamp (pkg/tcp/isn), so only with timestamps.
//   - Sending (§6.1.4, §6.1.5, §6.1.6): only new data goes out ECT(0);
//     pure ACKs, SYNs, FIN-only segments, retransmissions, window and
//     keep-alive probes are Not-ECT. The ECN bits of IP_TOS and
//     IPV6_TCLASS are the stack's for TCP (as Linux masks them for
//     stream sockets).
//   - Receiving (§6.1.3): a data segment marked CE makes every segment we
//     send carry ECE until one with CWR arrives (a CE on that one starts
//     it again); the change is ACKed at once (Linux's quick ACK on CE).
//   - Reacting (§6.1.2): an ACK with ECE reduces the congestion window as
//     a loss would (the algorithm's OnCongestion: ssthresh from the
//     flight, cwnd = ssthresh), without retransmitting, at most once per
//     window of data (until data sent after the reduction is
//     acknowledged) and not during loss recovery, which has reduced
//     already; the next new data segment carries CWR. Neither an ACK
//     with ECE nor one within the reduction's window grows cwnd. A loss
//     found within that window enters recovery without reducing a
//     second time (Linux: from TCP_CA_CWR into Recovery keeps the
//     reduced ssthresh).
//
// §6.1.2's reset of the retransmission timer for an ECE when cwnd is one
// segment does not arise: a reduction leaves at least two (cc's floor,
// as Linux's), and the one-segment loss window after a timeout ignores
// ECE. Not done: ECN nonces (RFC 3540, historic), Accurate ECN, and
// per-route ECN (Linux's "ip route ... features ecn").

// Values of Protocol.ECN, as net.ipv4.tcp_ecn.
const (
	ECNOff    = 0 // never: our SYNs do not ask, and requests are refused
	ECNOn     = 1 // ask on outgoing connections, accept on incoming ones
	ECNAccept = 2 // accept when the peer asks, never ask (Linux's default)
	// DefaultECN is Linux's default.
	DefaultECN = ECNAccept
)

// Linux's tcpi_options ECN bits.
const (
	TCPIOptECN     = 8  // ECN was negotiated
	TCPIOptECNSeen = 16 // a segment with ECT or CE has arrived
)

// ecnState is a connection's ECN state, bits packed so that an idle
// endpoint stays in its allocation size class.
type ecnState uint8

const (
	ecnRequested  ecnState = 1 << iota // our SYN asked (Protocol.ECN was ECNOn)
	ecnOK                              // negotiated (TCPI_OPT_ECN)
	ecnEcho                            // a CE arrived: ECE until the peer's CWR (Linux TCP_ECN_DEMAND_CWR)
	ecnSeen                            // an ECT or CE segment arrived (TCPI_OPT_ECN_SEEN)
	ecnCWR                             // in a reduction's window, until SND.UNA passes ecnHigh (TCP_CA_CWR)
	ecnCWRPending                      // the next new data carries CWR (TCP_ECN_QUEUE_CWR)
)

func (s ecnState) has(f ecnState) bool { return s&f != 0 }

func (s *ecnState) set(f ecnState, on bool) {
	if on {
		*s |= f
	} else {
		*s &^= f
	}
}

// ecnSYNRequest reports whether a received SYN asks for ECN (RFC 3168
// §6.1.1) in a way we accept: ECE and CWR, a Not-ECT IP header, and our
// setting allows it.
func (p *Protocol) ecnSYNRequest(seg *segment) bool {
	return p.ECN != ECNOff && seg.has(wire.TCPFlagECE) && seg.has(wire.TCPFlagCWR) &&
		seg.ecn == wire.ECNNotECT
}

// ecnSynFlags are the ECN flags of our SYN or SYN-ACK (RFC 3168 §6.1.1).
func (e *endpoint) ecnSynFlags(synAck bool) wire.TCPFlags {
	switch {
	case synAck && e.ecn.has(ecnOK):
		return wire.TCPFlagECE
	case !synAck && e.ecn.has(ecnRequested) && e.retries == 0:
		return wire.TCPFlagECE | wire.TCPFlagCWR
	}
	return 0
}

// ecnOutLocked decides the ECN of a segment being built: the flags it
// gains (ECE, CWR) and the ECN field of its IP header.
func (e *endpoint) ecnOutLocked(seq seqnum.Value, flags wire.TCPFlags, n int) (wire.TCPFlags, uint8) {
	if !e.ecn.has(ecnOK) || flags&(wire.TCPFlagSYN|wire.TCPFlagRST) != 0 {
		return 0, wire.ECNNotECT
	}
	var add wire.TCPFlags
	if e.ecn.has(ecnEcho) {
		add |= wire.TCPFlagECE // §6.1.3: until the peer's CWR
	}
	// New data only (§6.1.5: retransmissions are Not-ECT; §6.1.4: pure
	// ACKs; §6.1.6: window probes carry no data here).
	if n > 0 && !seq.LessThan(e.sndMax) {
		if e.ecn.has(ecnCWRPending) {
			add |= wire.TCPFlagCWR // §6.1.2: the first new data after the reduction
			e.ecn.set(ecnCWRPending, false)
		}
		return add, wire.ECNECT0
	}
	return add, wire.ECNNotECT
}

// ecnInputLocked handles a received data segment's CWR flag and IP ECN
// field on an ECN connection (RFC 3168 §6.1.3), before its data is
// queued. It reports whether the segment started a demand for CWR,
// which is to be acknowledged at once.
func (e *endpoint) ecnInputLocked(seg *segment) bool {
	if !e.ecn.has(ecnOK) {
		return false
	}
	if seg.has(wire.TCPFlagCWR) {
		e.ecn.set(ecnEcho, false)
	}
	if seg.ecn != wire.ECNNotECT {
		e.ecn.set(ecnSeen, true)
	}
	if seg.ecn == wire.ECNCE && !e.ecn.has(ecnEcho) {
		e.ecn.set(ecnEcho, true)
		return true
	}
	return false
}

// ecnEchoAckLocked reacts to an ACK carrying ECE (RFC 3168 §6.1.2).
func (e *endpoint) ecnEchoAckLocked(seg *segment) {
	if !e.ecn.has(ecnOK) || !seg.has(wire.TCPFlagECE) || e.cc == nil {
		return
	}
	if e.inRecovery || e.inLoss || e.ecnInCWRLocked() {
		return // reduced already for this window
	}
	e.cc.OnCongestion(seg.now, int(e.sndUna.Size(e.sndMax)))
	e.ecnHigh = e.sndMax
	e.ecn |= ecnCWR | ecnCWRPending
	e.p.stats.ECNReductions.Add(1)
}

// ecnHoldsCwndLocked reports whether an ACK of new data must not grow
// cwnd: it carries ECE (§6.1.2: the sender "SHOULD NOT increase the
// congestion window in response to the receipt of an ECN-Echo ACK"), or
// it falls in an ECN reduction's window (as Linux's TCP_CA_CWR, where
// the reduction, not congestion avoidance, sets cwnd).
func (e *endpoint) ecnHoldsCwndLocked(seg *segment) bool {
	return e.ecn.has(ecnOK) && (seg.has(wire.TCPFlagECE) || e.ecnInCWRLocked())
}

// ecnInCWRLocked reports whether an ECN reduction's window is still
// outstanding. It is held until something above the window is
// acknowledged, so that the CWR sent after it has reached the receiver
// (Linux tcp_fastretrans_alert's TCP_CA_CWR exit).
func (e *endpoint) ecnInCWRLocked() bool {
	if e.ecn.has(ecnCWR) && e.ecnHigh.LessThan(e.sndUna) {
		e.ecn.set(ecnCWR, false)
	}
	return e.ecn.has(ecnCWR)
}

// ecnLossLocked is called as loss recovery starts: inside an ECN
// reduction's window it reports true, and the window is not reduced a
// second time.
func (e *endpoint) ecnLossLocked() bool {
	if !e.ecnInCWRLocked() {
		return false
	}
	e.ecn.set(ecnCWR, false)
	return true
}
