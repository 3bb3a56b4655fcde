package cc

import (
	"math"
	"testing"
	"time"
)

// cubicAtLoss returns CUBIC grown by slow start to 1280 segments, then cut
// by a loss with all of it in flight, recovered, at t0.
func cubicAtLoss(t *testing.T) *Cubic {
	c := NewCubic(mss)
	for range 7 { // 10 → 1280 segments
		round(c, t0, time.Millisecond, mss)
	}
	if c.Cwnd() != 1280*mss {
		t.Fatalf("cwnd %d after slow start", c.Cwnd())
	}
	c.OnCongestion(t0, c.Cwnd())
	c.OnRecoveryExit(t0)
	return c
}

func TestCubicBeta(t *testing.T) {
	c := cubicAtLoss(t)
	if c.Ssthresh() != 896*mss || c.Cwnd() != 896*mss {
		t.Fatalf("ssthresh %d cwnd %d, want 0.7·1280 segments", c.Ssthresh(), c.Cwnd())
	}
	if c.wLastMax != 1280 {
		t.Errorf("W_max %v, want 1280", c.wLastMax)
	}
	// ssthresh comes from the flight size.
	d := NewCubic(mss)
	d.OnCongestion(t0, 100*mss)
	if d.Ssthresh() != 70*mss {
		t.Errorf("ssthresh %d, want 70 segments", d.Ssthresh())
	}
}

// The window follows W(t) = C(t−K)^3 + W_max, t from the epoch start
// (the first ACK in congestion avoidance): concave up to the plateau at
// W_max at t = K, convex beyond.
func TestCubicCurve(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c := cubicAtLoss(t)
	epoch := t0.Add(rtt / 896) // the first ACK of the first round
	k := math.Cbrt(1280 * (1 - 0.7) / 0.4)
	w := func(t float64) float64 { return 0.4*math.Pow(t-k, 3) + 1280 }
	now := t0
	var atK float64
	for i := 0; i < 200; i++ { // 20 s, about 2K
		now = round(c, now, rtt, mss)
		el := now.Sub(epoch).Seconds()
		got := float64(c.Cwnd()) / mss
		// Each ACK aims at W one RTT ahead, so the window lies between
		// W(t) and W(t+RTT).
		lo, hi := w(el)-0.5, w(el+rtt.Seconds())+0.5
		if got < lo || got > hi {
			t.Fatalf("t=%.2fs: cwnd %.1f segments, want within [%.1f, %.1f]", el, got, lo, hi)
		}
		if math.Abs(el-k) < rtt.Seconds()/2 {
			atK = got
		}
	}
	if math.Abs(atK-1280) > 2 {
		t.Errorf("cwnd %.1f at t=K, want the plateau at W_max 1280", atK)
	}
	if got := float64(c.Cwnd()) / mss; got < 1500 {
		t.Errorf("cwnd %.1f after 2K, want convex growth well past W_max", got)
	}
}

// A loss before the window regains the last maximum releases bandwidth:
// W_max becomes cwnd·(1+beta)/2 (RFC 9438 §4.7), and the new plateau is
// there rather than at the window the loss cut.
func TestCubicFastConvergence(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c := cubicAtLoss(t)
	now := t0
	for range 10 {
		now = round(c, now, rtt, mss)
	}
	before := float64(c.Cwnd()) / mss
	if before >= 1280 {
		t.Fatalf("cwnd %.1f already past W_max", before)
	}
	c.OnCongestion(now, c.Cwnd())
	c.OnRecoveryExit(now)
	wmax := before * 1.7 / 2
	if math.Abs(c.wLastMax-wmax) > 1e-9 {
		t.Fatalf("W_max %v, want %v", c.wLastMax, wmax)
	}
	cwnd := float64(c.Cwnd()) / mss
	k := math.Cbrt((wmax - cwnd) / 0.4)
	for range int(k / rtt.Seconds()) {
		now = round(c, now, rtt, mss)
	}
	if got := float64(c.Cwnd()) / mss; math.Abs(got-wmax) > 0.02*wmax {
		t.Errorf("cwnd %.1f after K=%.2fs, want the plateau near %.1f (not %.1f)", got, k, wmax, before)
	}
	// A loss at or above the last maximum sets W_max to the window.
	d := NewCubic(mss)
	d.cwnd = 100 * mss
	d.OnCongestion(now, 100*mss) // W_max 100
	d.OnRecoveryExit(now)
	d.OnCongestion(now, 100*mss) // cwnd 70 < W_max 100: released to 59.5
	if d.wLastMax != 70*1.7/2 {
		t.Errorf("W_max %v, want 59.5", d.wLastMax)
	}
}

// With a short RTT and a small window Reno would grow faster than the
// cubic curve: CUBIC then follows W_est, growing by alpha_cubic ≈ 0.53
// segments per RTT until it regains cwnd_prior, then 1 per RTT like Reno
// (RFC 9438 §4.3).
func TestCubicRenoFriendly(t *testing.T) {
	const rtt = time.Millisecond
	c := NewCubic(mss)
	c.cwnd = 100 * mss
	c.OnCongestion(t0, c.Cwnd()) // 70 segments, W_max 100, K ≈ 4.2 s
	c.OnRecoveryExit(t0)
	now := t0
	for range 40 {
		now = round(c, now, rtt, mss)
	}
	// The curve alone would give about 0.4·(0.04−4.22)^3 + 100 ≈ 70.8.
	alpha := 3 * 0.3 / 1.7
	if got, want := float64(c.Cwnd())/mss, 70+40*alpha; math.Abs(got-want) > 1 {
		t.Fatalf("cwnd %.2f segments after 40 RTTs, want W_est ≈ %.2f", got, want)
	}
	for c.Cwnd() < 100*mss {
		now = round(c, now, rtt, mss)
	}
	from := c.Cwnd()
	for range 40 {
		now = round(c, now, rtt, mss)
	}
	if got := float64(c.Cwnd()-from) / mss; got < 39 || got > 41 {
		t.Errorf("grew %.1f segments in 40 RTTs past cwnd_prior, want ~40 (alpha 1)", got)
	}
}

// Idle time does not count towards t: the epoch start moves forward.
func TestCubicIdleShiftsEpoch(t *testing.T) {
	c := cubicAtLoss(t)
	now := round(c, t0, 100*time.Millisecond, mss)
	epoch := c.epochStart
	c.OnIdle(now.Add(5*time.Second), 5*time.Second, 10*time.Second)
	if got := c.epochStart.Sub(epoch); got != 5*time.Second {
		t.Errorf("epoch moved %v, want 5s", got)
	}
	c.OnIdle(now.Add(time.Second), time.Hour, 10*time.Second)
	if !c.epochStart.Equal(now.Add(time.Second)) {
		t.Errorf("epoch start %v is past now", c.epochStart)
	}
}

// After an RTO the next epoch starts with K = 0 from the window it has
// (RFC 9438 §4.8), so the window never plateaus at the old maximum.
func TestCubicAfterRTO(t *testing.T) {
	c := cubicAtLoss(t)
	c.OnRTO(t0, c.Cwnd()) // ssthresh 0.7·896 = 627.2 segments
	if c.Ssthresh() != 627200 || c.Cwnd() != mss {
		t.Fatalf("ssthresh %d cwnd %d", c.Ssthresh(), c.Cwnd())
	}
	now := t0
	for c.Cwnd() < c.Ssthresh() {
		now = round(c, now, 10*time.Millisecond, mss)
	}
	now = round(c, now, 10*time.Millisecond, mss)
	if c.k != 0 || c.origin != 627.2 {
		t.Errorf("K %v origin %v, want 0 and 627.2", c.k, c.origin)
	}
}
