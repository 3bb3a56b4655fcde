// Package rtt owns TCP's retransmission timeout: the RFC 6298 estimator of
// the smoothed round-trip time (SRTT) and its variation (RTTVAR), the RTO
// computed from them, and exponential backoff (RFC 6298 §5.5), with Linux's
// bounds rather than the RFC's 1 s floor: TCP_RTO_MIN 200 ms, TCP_RTO_MAX
// 120 s, and TCP_TIMEOUT_INIT 1 s before the first sample (RFC 6298 §2.1).
//
// The estimator is pure: the caller measures and passes in each sample.
// Karn's rule (RFC 6298 §3) is the caller's: a segment that was
// retransmitted must not yield a sample (its ACK is ambiguous) unless the
// sample comes from a timestamp echo (RFC 7323 §4), and while the timer is
// backed off the backed-off RTO is kept until a valid sample arrives.
package rtt

import "time"

// Linux's bounds (include/net/tcp.h) and RFC 6298's constants.
const (
	DefaultInitial = time.Second            // TCP_TIMEOUT_INIT; RFC 6298 §2.1
	DefaultMin     = 200 * time.Millisecond // TCP_RTO_MIN
	DefaultMax     = 120 * time.Second      // TCP_RTO_MAX
	Granularity    = time.Millisecond       // G: the clock granularity Linux measures RTT in
	k              = 4                      // K in RTO = SRTT + max(G, K·RTTVAR)
)

// Estimator is one connection's RTO state. The zero value is not usable;
// call New or NewWithBounds.
type Estimator struct {
	initial, min, max time.Duration
	srtt, rttvar      time.Duration
	rto               time.Duration // before backoff, already clamped
	backoff           uint          // number of doublings since the last sample or ResetBackoff
	hasSample         bool
}

// New returns an estimator with Linux's bounds: RTO 1 s until the first
// sample, then clamped to [200 ms, 120 s].
func New() *Estimator { return NewWithBounds(DefaultInitial, DefaultMin, DefaultMax) }

// NewWithBounds returns an estimator whose RTO is initial until the first
// sample and always lies within [min, max]. A max below min is raised to
// min, and initial is clamped into the bounds.
func NewWithBounds(initial, min, max time.Duration) *Estimator {
	if min < 0 {
		min = 0
	}
	if max < min {
		max = min
	}
	e := &Estimator{initial: initial, min: min, max: max}
	e.rto = e.clamp(initial)
	return e
}

func (e *Estimator) clamp(d time.Duration) time.Duration {
	return min(max(d, e.min), e.max)
}

// Sample feeds one round-trip measurement r (RFC 6298 §2.2, §2.3). The
// first sets SRTT = r and RTTVAR = r/2; later ones update RTTVAR with
// beta = 1/4 (using the SRTT from before this sample) and then SRTT with
// alpha = 1/8. The RTO becomes SRTT + max(G, 4·RTTVAR), clamped, and the
// backoff is cleared because the RTO is computed afresh (§2.3, §5.7's
// "new RTO from the new sample"). A negative r is ignored.
func (e *Estimator) Sample(r time.Duration) {
	if r < 0 {
		return
	}
	if !e.hasSample {
		e.srtt = r
		e.rttvar = r / 2
		e.hasSample = true
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		// One rounding per update keeps the arithmetic exact for the
		// round millisecond values tests and real clocks produce.
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	e.rto = e.clamp(e.srtt + max(Granularity, k*e.rttvar))
	e.backoff = 0
}

// RTO returns the current retransmission timeout, including backoff,
// never above the maximum.
func (e *Estimator) RTO() time.Duration {
	// rto <= max>>n means rto<<n <= max cannot overflow.
	if e.rto > e.max>>e.backoff {
		return e.max
	}
	return e.rto << e.backoff
}

// Backoff doubles the RTO after a retransmission timeout (RFC 6298 §5.5),
// capped at the maximum.
func (e *Estimator) Backoff() {
	if e.RTO() < e.max {
		e.backoff++
	}
}

// ResetBackoff undoes all backoff, returning RTO to the value computed from
// the samples (or the initial value). For example when an ACK acknowledges
// new data without a usable sample, as Linux clears icsk_backoff.
func (e *Estimator) ResetBackoff() { e.backoff = 0 }

// Backoffs returns how many times the RTO has been doubled since the last
// sample or ResetBackoff.
func (e *Estimator) Backoffs() int { return int(e.backoff) }

// SRTT returns the smoothed round-trip time, 0 before the first sample.
func (e *Estimator) SRTT() time.Duration { return e.srtt }

// RTTVar returns the round-trip time variation, 0 before the first sample.
func (e *Estimator) RTTVar() time.Duration { return e.rttvar }

// HasSample reports whether any sample has been taken.
func (e *Estimator) HasSample() bool { return e.hasSample }
