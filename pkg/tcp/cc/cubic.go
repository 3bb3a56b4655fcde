package cc

import (
	"math"
	"time"
)

// CUBIC's constants (RFC 9438 §5).
const (
	cubicC    = 0.4 // segments/s^3
	cubicBeta = 0.7
	// alphaCubic makes the Reno-friendly estimate grow as fast on average
	// as Reno does with a 0.5 reduction (RFC 9438 §4.3).
	alphaCubic = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// Cubic is CUBIC (RFC 9438) with fast convergence and the Reno-friendly
// region, without HyStart: slow start is the same as Reno's. Its window
// curve is in segments, as the RFC's constants are.
type Cubic struct {
	window
	wLastMax   float64   // W_max for fast convergence (§4.7): the window at the last loss, or 0
	cwndPrior  float64   // cwnd when ssthresh was last set (§4.6), for alpha's switch to 1
	epochStart time.Time // start of this congestion-avoidance stage; zero until its first ACK
	origin     float64   // the plateau W(t) turns at: W_max, or cwnd_epoch if above it
	k          float64   // K, seconds from the epoch start to the plateau
	wEst       float64   // W_est, the Reno-friendly estimate (§4.3)
	pending    float64   // fractional bytes of growth not yet added to cwnd
	rtt        time.Duration
}

// NewCubic returns a CUBIC controller with the RFC 6928 initial window.
func NewCubic(mss int) *Cubic { return &Cubic{window: newWindow(max(mss, 1))} }

func (c *Cubic) Name() string { return NameCubic }

func (c *Cubic) segs(bytes int) float64 { return float64(bytes) / float64(c.mss) }

// w is W_cubic(t) = C·(t−K)^3 + W_max (RFC 9438 eq. 1), t in seconds since
// the epoch start.
func (c *Cubic) w(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.origin
}

func (c *Cubic) OnAck(acked int, rtt time.Duration, now time.Time) {
	if acked <= 0 {
		return
	}
	if rtt > 0 {
		c.rtt = rtt
	}
	acked = c.slowStart(acked)
	if acked == 0 {
		return
	}
	cwnd := c.segs(c.cwnd)
	if c.epochStart.IsZero() {
		c.epochStart = now
		c.pending = 0
		if cwnd < c.wLastMax {
			c.origin = c.wLastMax
			c.k = math.Cbrt((c.wLastMax - cwnd) / cubicC) // eq. 2 with cwnd_epoch
		} else {
			// Past the last maximum (or after an RTO, §4.8): grow from
			// here, convex from the start.
			c.origin = cwnd
			c.k = 0
		}
		c.wEst = cwnd
	}
	t := max(now.Sub(c.epochStart).Seconds(), 0)

	// §4.2: aim at where the curve will be one RTT from now, growing at
	// most by half the window per RTT and never shrinking on an ACK.
	target := min(max(c.w(t+c.rtt.Seconds()), cwnd), 1.5*cwnd)
	c.pending += (target - cwnd) / cwnd * float64(acked)
	grow := int(c.pending)
	c.pending -= float64(grow)
	next := c.cwnd + grow

	// §4.3: wherever standard Reno would have the larger window, take
	// Reno's. alpha becomes 1 once the estimate regains the window before
	// the loss.
	alpha := alphaCubic
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst += alpha * c.segs(acked) / cwnd
	if c.w(t) < c.wEst {
		next = max(next, int(c.wEst*float64(c.mss)))
	}
	c.cwnd = min(next, maxCwnd)
}

// reduce sets W_max, cwnd_prior and ends the epoch; the new ssthresh is
// beta_cubic times the flight size (§4.6).
func (c *Cubic) reduce(inflight int) int {
	cwnd := c.segs(c.cwnd)
	if cwnd < c.wLastMax {
		// Fast convergence (§4.7): a window that stopped short of the last
		// maximum is released further, to make room for new flows.
		c.wLastMax = cwnd * (1 + cubicBeta) / 2
	} else {
		c.wLastMax = cwnd
	}
	c.cwndPrior = cwnd
	c.epochStart = time.Time{}
	c.pending = 0
	return int(float64(inflight) * cubicBeta)
}

func (c *Cubic) OnCongestion(_ time.Time, inflight int) { c.enterRecovery(c.reduce(inflight)) }

func (c *Cubic) OnRecoveryExit(time.Time) { c.exitRecovery() }

// OnRTO follows Reno's loss window but sets ssthresh with beta_cubic, and
// the next epoch starts with K = 0 and W_max = cwnd_epoch (RFC 9438 §4.8;
// Linux's bictcp_reset on entering Loss likewise forgets W_max).
func (c *Cubic) OnRTO(_ time.Time, inflight int) {
	ssthresh := c.ssthresh
	if !c.afterRTO { // a repeated timeout keeps ssthresh, W_max and cwnd_prior
		ssthresh = c.reduce(inflight)
	}
	c.wLastMax = 0
	c.epochStart = time.Time{}
	c.timeout(ssthresh)
}

// OnIdle also moves the epoch start forward by the idle time, as Linux's
// CUBIC does on CA_EVENT_TX_START, so that the curve does not leap ahead
// by time in which nothing was sent.
func (c *Cubic) OnIdle(now time.Time, idle, rto time.Duration) {
	if !c.epochStart.IsZero() && idle > 0 {
		c.epochStart = c.epochStart.Add(idle)
		if c.epochStart.After(now) {
			c.epochStart = now
		}
	}
	c.restart(idle, rto)
}

var _ Algorithm = (*Cubic)(nil)
