package cc

// PRR is Proportional Rate Reduction (RFC 6937) with the slow start
// reduction bound (PRR-SSRB): during fast recovery it spreads the window
// reduction over the ACKs of one round trip, sending ssthresh/RecoverFS of
// what is delivered while pipe is above ssthresh, and catching up like slow
// start (at most one SMSS beyond what was delivered per ACK) once heavy
// losses have pushed pipe below it.
//
// Use: when recovery starts, after the algorithm's OnCongestion, call
// Start(Ssthresh(), inflight); on every ACK in recovery call OnAck with the
// bytes newly delivered (cumulatively acked plus newly SACKed) and pipe
// (RFC 6675's estimate of bytes in flight after this ACK), send up to the
// returned sndcnt bytes (Linux sets cwnd = pipe + sndcnt), and report what was actually sent with Sent.
type PRR struct {
	ssthresh  int
	recoverFS int // FlightSize at the start of recovery
	delivered int // prr_delivered
	out       int // prr_out
}

// Start begins a recovery episode with the algorithm's new ssthresh and the
// flight size at the time (RecoverFS).
func (p *PRR) Start(ssthresh, inflight int) {
	*p = PRR{ssthresh: ssthresh, recoverFS: max(inflight, 1)}
}

// OnAck accounts deliveredBytes and returns sndcnt, how many bytes may be
// sent in response to this ACK (never negative). pipe is the flight size
// estimate before sending and mss the sender MSS.
func (p *PRR) OnAck(deliveredBytes, pipe, mss int) (sndcnt int) {
	p.delivered += max(deliveredBytes, 0)
	if pipe > p.ssthresh {
		// Proportional part: CEIL(prr_delivered·ssthresh/RecoverFS) − prr_out,
		// with the ceiling taken in whole segments as Linux's packet-counted
		// PRR does, so that a sender never needs to send a runt to keep up.
		num := int64(p.delivered) * int64(p.ssthresh)
		den := int64(p.recoverFS) * int64(max(mss, 1))
		sndcnt = int((num+den-1)/den)*mss - p.out
	} else {
		// SSRB: limit = MAX(prr_delivered − prr_out, DeliveredData) + MSS.
		limit := max(p.delivered-p.out, deliveredBytes) + mss
		sndcnt = min(p.ssthresh-pipe, limit)
	}
	return max(sndcnt, 0)
}

// Sent records n bytes (new data or retransmission) sent during recovery
// (prr_out).
func (p *PRR) Sent(n int) { p.out += max(n, 0) }

// Delivered returns prr_delivered, the bytes delivered since Start.
func (p *PRR) Delivered() int { return p.delivered }

// Out returns prr_out, the bytes sent since Start.
func (p *PRR) Out() int { return p.out }
