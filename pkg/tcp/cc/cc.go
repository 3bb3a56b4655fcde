// Package cc owns TCP congestion control: the congestion window and slow
// start threshold of one connection, grown on ACKs and cut on loss, for the
// algorithms setsockopt(TCP_CONGESTION) can select — "reno" (NewReno,
// RFC 5681 §3.1 with RFC 6582's recovery) and "cubic" (RFC 9438) — plus
// Proportional Rate Reduction (PRR, RFC 6937), which paces sending during
// fast recovery whichever algorithm chose the new ssthresh.
//
// Windows are counted in bytes. Slow start uses Appropriate Byte Counting
// (RFC 3465) with L = 2·SMSS, so delayed ACKs still double the window each
// round trip; congestion avoidance counts acknowledged bytes and adds one
// SMSS per window's worth. The initial window is RFC 6928's
// min(10·MSS, max(2·MSS, 14600)).
//
// Everything here is pure: the caller passes in the time, the bytes
// acknowledged and the flight size, and reads the window back. What stays
// with the caller (the TCP state machine):
//   - detecting loss (three duplicate ACKs or SACK, RFC 5681 §3.2 and
//     RFC 6675) and calling OnCongestion once per loss episode;
//   - the recover point (RFC 6582 §3.2 step 2: snd.nxt at entry), telling a
//     partial ACK (below recover: retransmit the next hole, stay in
//     recovery, do not call OnAck) from a full ACK (call OnRecoveryExit);
//   - how much to send while in recovery: PRR's sndcnt (cwnd = pipe +
//     sndcnt, as Linux does), or RFC 5681's window inflation;
//   - Karn's rule for the RTT passed to OnAck (see package rtt), and not
//     calling OnAck when the sender was application-limited if it wants the
//     window to stay validated (RFC 7661).
package cc

import (
	"fmt"
	"syscall"
	"time"
)

// Algorithm is one connection's congestion controller.
type Algorithm interface {
	// Name is the algorithm's name as TCP_CONGESTION reports it.
	Name() string
	// Cwnd is the congestion window in bytes.
	Cwnd() int
	// Ssthresh is the slow start threshold in bytes; InfiniteSsthresh
	// until the first loss.
	Ssthresh() int
	// SetMSS sets the sender maximum segment size (SMSS). Before any ACK
	// or loss it recomputes the initial window; afterwards both windows
	// keep their size in segments, as Linux counts them in packets.
	SetMSS(mss int)
	// OnAck reports acked bytes of new data cumulatively acknowledged
	// outside fast recovery (including while retransmitting after an RTO),
	// with the current smoothed RTT and time.
	OnAck(acked int, rtt time.Duration, now time.Time)
	// OnCongestion enters fast recovery on fast retransmit: ssthresh is
	// derived from inflight (FlightSize, RFC 5681 eq. 4) and cwnd is set to
	// it, ready for PRR to pace the recovery.
	OnCongestion(now time.Time, inflight int)
	// OnRecoveryExit leaves fast recovery on the full ACK: cwnd = ssthresh
	// (RFC 6582 §3.2 step 3, option 2).
	OnRecoveryExit(now time.Time)
	// OnRTO reacts to a retransmission timeout: cwnd becomes the loss
	// window of one SMSS and ssthresh is derived from inflight (RFC 5681
	// §3.1); a further timeout before any new data is acknowledged keeps
	// ssthresh.
	OnRTO(now time.Time, inflight int)
	// OnIdle is called when sending resumes after nothing was in flight for
	// idle. If idle exceeds rto the window decays as Linux's
	// tcp_cwnd_restart does: halved per RTO idle, never below RFC 5681
	// §4.1's restart window min(IW, cwnd), with 3/4 of the old window
	// remembered in ssthresh so slow start can climb back (the RFC 2861 and
	// RFC 7661 compromise).
	OnIdle(now time.Time, idle, rto time.Duration)
}

// InfiniteSsthresh is ssthresh before the first loss: Linux's
// TCP_INFINITE_SSTHRESH, "arbitrarily high" in RFC 5681 §3.1.
const InfiniteSsthresh = 0x7fffffff

// maxCwnd bounds the window far above any TCP window (2^30 with scaling) so
// that the arithmetic cannot overflow.
const maxCwnd = InfiniteSsthresh

// Names of the algorithms, as TCP_CONGESTION takes and reports them.
const (
	NameReno  = "reno"
	NameCubic = "cubic"
	// Default is what a new socket gets, as Linux's default.
	Default = NameCubic
)

// Available lists the algorithms New accepts, in the order Linux's
// tcp_available_congestion_control lists them.
func Available() []string { return []string{NameReno, NameCubic} }

// New returns a controller for the named algorithm with sender MSS mss. An
// unknown name is an error wrapping syscall.ENOENT, as setsockopt
// (TCP_CONGESTION) fails on Linux; a non-positive mss wraps syscall.EINVAL.
func New(name string, mss int) (Algorithm, error) {
	if mss <= 0 {
		return nil, fmt.Errorf("cc: mss %d: %w", mss, syscall.EINVAL)
	}
	switch name {
	case NameReno:
		return NewReno(mss), nil
	case NameCubic:
		return NewCubic(mss), nil
	}
	return nil, fmt.Errorf("cc: congestion control %q: %w", name, syscall.ENOENT)
}

// Switch returns a controller for the named algorithm to take over from
// the connection's current one, as setsockopt(TCP_CONGESTION) does
// mid-connection (Linux tcp_reinit_congestion_control): cwnd and
// ssthresh carry over, the new algorithm's own state (CUBIC's W_max and
// epoch) starts afresh. A nil from is New.
func Switch(name string, mss int, from Algorithm) (Algorithm, error) {
	a, err := New(name, mss)
	if err != nil || from == nil {
		return a, err
	}
	var w *window
	switch x := a.(type) {
	case *Reno:
		w = &x.window
	case *Cubic:
		w = &x.window
	}
	if cw, st := from.Cwnd(), from.Ssthresh(); cw != w.cwnd || st != w.ssthresh {
		w.cwnd, w.ssthresh, w.pristine = max(cw, mss), st, false
	}
	return a, nil
}

// InitialWindow is RFC 6928's initial window for a sender MSS.
func InitialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }

// window is the state and the rules Reno and CUBIC share.
type window struct {
	mss      int
	cwnd     int
	ssthresh int
	caAcked  int  // bytes acked towards the next congestion-avoidance SMSS (RFC 3465 bytes_acked)
	pristine bool // no ACK or loss yet: SetMSS recomputes the initial window
	afterRTO bool // an RTO with no new data acked since: a second keeps ssthresh
}

func newWindow(mss int) window {
	return window{mss: mss, cwnd: InitialWindow(mss), ssthresh: InfiniteSsthresh, pristine: true}
}

func (w *window) Cwnd() int     { return w.cwnd }
func (w *window) Ssthresh() int { return w.ssthresh }

func (w *window) SetMSS(mss int) {
	if mss <= 0 || mss == w.mss {
		return
	}
	if w.pristine {
		w.mss, w.cwnd = mss, InitialWindow(mss)
		return
	}
	scale := func(b int) int { return int(min(int64(b)*int64(mss)/int64(w.mss), maxCwnd)) }
	w.cwnd = max(scale(w.cwnd), mss)
	if w.ssthresh != InfiniteSsthresh {
		w.ssthresh = max(scale(w.ssthresh), 2*mss)
	}
	w.caAcked = scale(w.caAcked)
	w.mss = mss
}

// slowStart grows cwnd by the bytes acked, at most 2·SMSS per ACK (RFC
// 3465 §2.2, L = 2), stopping at ssthresh. It returns the acked bytes left
// over for congestion avoidance once ssthresh is reached.
func (w *window) slowStart(acked int) int {
	w.pristine, w.afterRTO = false, false
	if w.cwnd >= w.ssthresh {
		return acked
	}
	inc := min(acked, 2*w.mss)
	if room := w.ssthresh - w.cwnd; inc > room {
		w.cwnd = w.ssthresh
		return acked - room
	}
	w.cwnd += inc
	return 0
}

// renoAvoid adds one SMSS for every cwnd bytes acknowledged (RFC 3465 §2.1,
// RFC 5681 eq. 3), at most one per ACK.
func (w *window) renoAvoid(acked int) {
	w.caAcked += acked
	if w.caAcked >= w.cwnd {
		w.caAcked -= w.cwnd
		w.cwnd = min(w.cwnd+w.mss, maxCwnd)
	}
}

func (w *window) enterRecovery(ssthresh int) {
	w.pristine = false
	w.ssthresh = max(ssthresh, 2*w.mss)
	w.cwnd = w.ssthresh
	w.caAcked = 0
}

func (w *window) exitRecovery() {
	w.cwnd = w.ssthresh
	w.caAcked = 0
}

func (w *window) timeout(ssthresh int) {
	w.pristine = false
	if !w.afterRTO {
		// RFC 5681 §3.1: ssthresh is held when the segment timed out again.
		w.ssthresh = max(ssthresh, 2*w.mss)
	}
	w.afterRTO = true
	w.cwnd = w.mss
	w.caAcked = 0
}

// restart is tcp_cwnd_restart: see Algorithm.OnIdle.
func (w *window) restart(idle, rto time.Duration) {
	if rto <= 0 || idle <= rto {
		return
	}
	rw := min(InitialWindow(w.mss), w.cwnd)
	w.ssthresh = max(w.ssthresh, w.cwnd/2+w.cwnd/4)
	for d := idle - rto; d > 0 && w.cwnd > rw; d -= rto {
		w.cwnd /= 2
	}
	w.cwnd = max(w.cwnd, rw)
	w.caAcked = 0
}

// Reno is NewReno: slow start and additive increase per RFC 5681 §3.1,
// ssthresh = max(FlightSize/2, 2·SMSS) on loss.
type Reno struct{ window }

// NewReno returns a NewReno controller with the RFC 6928 initial window.
func NewReno(mss int) *Reno { return &Reno{newWindow(max(mss, 1))} }

func (r *Reno) Name() string { return NameReno }

func (r *Reno) OnAck(acked int, _ time.Duration, _ time.Time) {
	if acked <= 0 {
		return
	}
	if left := r.slowStart(acked); left > 0 {
		r.renoAvoid(left)
	}
}

func (r *Reno) OnCongestion(_ time.Time, inflight int) { r.enterRecovery(inflight / 2) }
func (r *Reno) OnRecoveryExit(time.Time)               { r.exitRecovery() }
func (r *Reno) OnRTO(_ time.Time, inflight int)        { r.timeout(inflight / 2) }
func (r *Reno) OnIdle(_ time.Time, idle, rto time.Duration) {
	r.restart(idle, rto)
}

var _ Algorithm = (*Reno)(nil)
