package cc

import (
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"
)

const mss = 1000

var t0 = time.Unix(1_000_000, 0)

// round acknowledges one congestion window in ACKs of ackBytes (the last
// may be short), spread evenly over rtt from now, and returns now+rtt.
func round(a Algorithm, now time.Time, rtt time.Duration, ackBytes int) time.Time {
	w := a.Cwnd()
	n := (w + ackBytes - 1) / ackBytes
	for i := 1; i <= n; i++ {
		a.OnAck(min(ackBytes, w-(i-1)*ackBytes), rtt, now.Add(rtt*time.Duration(i)/time.Duration(n)))
	}
	return now.Add(rtt)
}

func mustNew(t *testing.T, name string) Algorithm {
	t.Helper()
	a, err := New(name, mss)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNew(t *testing.T) {
	if got := Available(); !slices.Equal(got, []string{"reno", "cubic"}) {
		t.Errorf("Available %q", got)
	}
	for _, name := range Available() {
		if a := mustNew(t, name); a.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, a.Name())
		}
	}
	if _, err := New("bbr", mss); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("unknown algorithm: %v, want ENOENT", err)
	}
	if _, err := New("reno", 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mss 0: %v, want EINVAL", err)
	}
}

func TestInitialWindow(t *testing.T) {
	for _, c := range []struct{ mss, iw int }{
		{536, 5360},   // 10·MSS
		{1460, 14600}, // 10·MSS = 14600
		{1000, 10000},
		{4000, 14600}, // the 14600 byte cap
		{9000, 18000}, // but never below 2·MSS
	} {
		if got := InitialWindow(c.mss); got != c.iw {
			t.Errorf("InitialWindow(%d) = %d, want %d", c.mss, got, c.iw)
		}
	}
	for _, name := range Available() {
		a, _ := New(name, 536)
		if a.Cwnd() != 5360 || a.Ssthresh() != InfiniteSsthresh {
			t.Errorf("%s: cwnd %d ssthresh %d", name, a.Cwnd(), a.Ssthresh())
		}
		// Before any ACK the initial window follows the negotiated MSS.
		a.SetMSS(1460)
		if a.Cwnd() != 14600 {
			t.Errorf("%s: after SetMSS(1460) cwnd %d, want 14600", name, a.Cwnd())
		}
	}
}

// Once running, an MSS change keeps the windows' size in segments.
func TestSetMSSScales(t *testing.T) {
	a := mustNew(t, "reno")
	a.OnCongestion(t0, 40*mss)
	a.SetMSS(500)
	if a.Cwnd() != 20*500 || a.Ssthresh() != 20*500 {
		t.Errorf("cwnd %d ssthresh %d, want 20 segments of 500", a.Cwnd(), a.Ssthresh())
	}
}

func TestSlowStartDoublesPerRTT(t *testing.T) {
	for _, name := range Available() {
		// One ACK per segment, and delayed ACKs every two: with ABC's
		// L = 2·SMSS both double the window each round trip.
		for _, per := range []int{mss, 2 * mss} {
			a := mustNew(t, name)
			now := t0
			want := 10 * mss
			for range 6 {
				now = round(a, now, 50*time.Millisecond, per)
				want *= 2
				if a.Cwnd() != want {
					t.Fatalf("%s, ACK every %d: cwnd %d, want %d", name, per, a.Cwnd(), want)
				}
			}
		}
	}
}

// RFC 3465: a stretch ACK grows the window by at most L = 2·SMSS.
func TestSlowStartABCLimit(t *testing.T) {
	a := mustNew(t, "reno")
	a.OnAck(8*mss, 0, t0)
	if a.Cwnd() != 12*mss {
		t.Errorf("cwnd %d, want %d", a.Cwnd(), 12*mss)
	}
}

func TestRenoCongestionAvoidance(t *testing.T) {
	a := mustNew(t, "reno")
	a.OnCongestion(t0, 40*mss)
	a.OnRecoveryExit(t0)
	now := t0
	for i := 1; i <= 10; i++ {
		now = round(a, now, 50*time.Millisecond, mss)
		if a.Cwnd() != (20+i)*mss {
			t.Fatalf("after %d rounds cwnd %d, want %d", i, a.Cwnd(), (20+i)*mss)
		}
	}
	// Delayed ACKs: byte counting still gives one SMSS per window.
	for range 10 {
		now = round(a, now, 50*time.Millisecond, 2*mss)
	}
	if a.Cwnd() < 39*mss || a.Cwnd() > 40*mss {
		t.Errorf("cwnd %d after 10 delayed-ACK rounds from 30 segments, want ~40", a.Cwnd())
	}
}

// Slow start stops at ssthresh and hands the rest of the ACK to
// congestion avoidance.
func TestSlowStartToAvoidance(t *testing.T) {
	a := mustNew(t, "reno")
	a.OnRTO(t0, 8*mss) // ssthresh 4 segments, cwnd 1
	for _, c := range []struct{ acked, cwnd int }{
		{mss, 2 * mss},
		{mss, 3 * mss},
		{2 * mss, 4 * mss}, // 1000 to reach ssthresh, 1000 counted in CA
		{2 * mss, 4 * mss}, // 3000 of 4000 counted
		{mss, 5 * mss},     // a full window counted: +1 SMSS
	} {
		a.OnAck(c.acked, 0, t0)
		if a.Cwnd() != c.cwnd {
			t.Fatalf("after ACK of %d cwnd %d, want %d", c.acked, a.Cwnd(), c.cwnd)
		}
	}
}

func TestNewRenoHalving(t *testing.T) {
	a := mustNew(t, "reno")
	round(a, t0, time.Millisecond, mss) // cwnd 20 segments
	round(a, t0, time.Millisecond, mss) // 40
	// ssthresh follows FlightSize, not cwnd (RFC 5681 eq. 4).
	a.OnCongestion(t0, 30*mss)
	if a.Ssthresh() != 15*mss || a.Cwnd() != 15*mss {
		t.Fatalf("ssthresh %d cwnd %d, want 15 segments", a.Ssthresh(), a.Cwnd())
	}
	a.OnRecoveryExit(t0)
	if a.Cwnd() != 15*mss {
		t.Fatalf("after recovery cwnd %d, want ssthresh", a.Cwnd())
	}
	a.OnCongestion(t0, mss)
	if a.Ssthresh() != 2*mss {
		t.Errorf("ssthresh %d, want the 2·SMSS floor", a.Ssthresh())
	}
}

func TestRTOLossWindow(t *testing.T) {
	for _, c := range []struct {
		name     string
		ssthresh int
	}{{"reno", 15 * mss}, {"cubic", 21 * mss}} { // FlightSize/2, FlightSize·0.7 (RFC 9438 §4.8)
		a := mustNew(t, c.name)
		round(a, t0, time.Millisecond, mss)
		round(a, t0, time.Millisecond, mss)
		a.OnRTO(t0, 30*mss)
		if a.Cwnd() != mss || a.Ssthresh() != c.ssthresh {
			t.Fatalf("%s: cwnd %d ssthresh %d, want %d %d", c.name, a.Cwnd(), a.Ssthresh(), mss, c.ssthresh)
		}
		// The same segment times out again: ssthresh is held whatever
		// the flight is now.
		a.OnRTO(t0, 2*mss)
		if a.Cwnd() != mss || a.Ssthresh() != c.ssthresh {
			t.Fatalf("%s: second RTO: cwnd %d ssthresh %d", c.name, a.Cwnd(), a.Ssthresh())
		}
		a.OnAck(mss, 0, t0)
		if a.Cwnd() != 2*mss {
			t.Fatalf("%s: slow start after RTO: cwnd %d", c.name, a.Cwnd())
		}
		// New data was acked: the next RTO is a new loss.
		a.OnRTO(t0, 10*mss)
		if a.Ssthresh() != c.ssthresh/3 {
			t.Errorf("%s: third RTO ssthresh %d, want %d", c.name, a.Ssthresh(), c.ssthresh/3)
		}
	}
}

func TestIdleRestart(t *testing.T) {
	const rto = 300 * time.Millisecond
	for _, name := range Available() {
		a := mustNew(t, name)
		for range 4 { // 160 segments
			round(a, t0, time.Millisecond, mss)
		}
		a.OnCongestion(t0, 200*mss)
		a.OnRecoveryExit(t0) // cwnd = ssthresh = 100 (reno) or 140 (cubic) segments
		w := a.Cwnd()
		a.OnIdle(t0, rto/2, rto)
		if a.Cwnd() != w {
			t.Fatalf("%s: idle below RTO changed cwnd to %d", name, a.Cwnd())
		}
		a.OnIdle(t0, rto*5/2, rto) // halved twice: once per whole RTO beyond the first
		if a.Cwnd() != w/4 || a.Ssthresh() != w {
			t.Fatalf("%s: cwnd %d ssthresh %d, want %d %d", name, a.Cwnd(), a.Ssthresh(), w/4, w)
		}
		a.OnIdle(t0, 100*rto, rto) // never below the initial window
		if a.Cwnd() != InitialWindow(mss) {
			t.Fatalf("%s: long idle cwnd %d, want IW", name, a.Cwnd())
		}
		// A window already below IW is not raised (RW = min(IW, cwnd)).
		a.OnRTO(t0, 10*mss)
		a.OnIdle(t0, 100*rto, rto)
		if a.Cwnd() != mss {
			t.Errorf("%s: idle raised cwnd to %d", name, a.Cwnd())
		}
	}
}

// After idle, ssthresh remembers 3/4 of a window that had grown well past
// it, so slow start can climb back (Linux's tcp_current_ssthresh).
func TestIdleRemembersWindow(t *testing.T) {
	a := mustNew(t, "reno")
	a.OnCongestion(t0, 40*mss) // ssthresh = cwnd = 20 segments
	now := t0
	for range 8 {
		now = round(a, now, time.Millisecond, mss)
	}
	if a.Cwnd() != 28*mss {
		t.Fatalf("cwnd %d, want 28 segments", a.Cwnd())
	}
	a.OnIdle(now, 700*time.Millisecond, 400*time.Millisecond) // one halving
	if a.Ssthresh() != 21*mss || a.Cwnd() != 14*mss {
		t.Errorf("ssthresh %d cwnd %d, want 21 and 14 segments", a.Ssthresh(), a.Cwnd())
	}
}
