package rtt

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func check(t *testing.T, e *Estimator, srtt, rttvar, rto time.Duration) {
	t.Helper()
	if e.SRTT() != srtt || e.RTTVar() != rttvar || e.RTO() != rto {
		t.Fatalf("SRTT %v RTTVAR %v RTO %v, want %v %v %v", e.SRTT(), e.RTTVar(), e.RTO(), srtt, rttvar, rto)
	}
}

func TestInitial(t *testing.T) {
	e := New()
	if e.HasSample() {
		t.Fatal("HasSample before any sample")
	}
	check(t, e, 0, 0, time.Second)
}

// The values are worked by hand from RFC 6298 §2.2 and §2.3.
func TestFormulas(t *testing.T) {
	e := New()
	// First: SRTT = R, RTTVAR = R/2, RTO = 100 + 4·50.
	e.Sample(100 * ms)
	if !e.HasSample() {
		t.Fatal("no HasSample after a sample")
	}
	check(t, e, 100*ms, 50*ms, 300*ms)
	// RTTVAR = 3/4·50 + 1/4·|100-200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5;
	// RTO = 112.5 + 4·62.5 = 362.5.
	e.Sample(200 * ms)
	check(t, e, 112500*time.Microsecond, 62500*time.Microsecond, 362500*time.Microsecond)
	// RTTVAR = 3/4·62.5 + 1/4·|112.5-100| = 50 (the old SRTT is used);
	// SRTT = 7/8·112.5 + 1/8·100 = 110.9375; RTO = 110.9375 + 200.
	e.Sample(100 * ms)
	check(t, e, 110937500*time.Nanosecond, 50*ms, 310937500*time.Nanosecond)
}

func TestNegativeSampleIgnored(t *testing.T) {
	e := New()
	e.Sample(-ms)
	if e.HasSample() {
		t.Fatal("a negative sample counted")
	}
	e.Sample(100 * ms)
	e.Sample(-ms)
	check(t, e, 100*ms, 50*ms, 300*ms)
}

func TestMinClamp(t *testing.T) {
	e := New()
	e.Sample(10 * ms) // 10 + 4·5 = 30 ms, below TCP_RTO_MIN
	check(t, e, 10*ms, 5*ms, 200*ms)
}

func TestMaxClamp(t *testing.T) {
	e := New()
	e.Sample(100 * time.Second) // 100 + 4·50 s
	check(t, e, 100*time.Second, 50*time.Second, 120*time.Second)
}

// With a steady RTT the variation decays to nothing and the clock
// granularity G is what keeps the RTO above SRTT.
func TestGranularity(t *testing.T) {
	e := NewWithBounds(time.Second, 0, time.Minute)
	for range 100 {
		e.Sample(10 * ms)
	}
	check(t, e, 10*ms, 0, 11*ms)
}

func TestBackoff(t *testing.T) {
	e := New()
	want := time.Second
	for i := range 6 {
		e.Backoff()
		want *= 2
		if e.RTO() != want || e.Backoffs() != i+1 {
			t.Fatalf("after %d backoffs RTO %v (%d), want %v", i+1, e.RTO(), e.Backoffs(), want)
		}
	}
	// 64 s doubled is 128 s, capped at 120 s, and it stays there.
	for range 100 {
		e.Backoff()
		if e.RTO() != DefaultMax {
			t.Fatalf("RTO %v above the cap", e.RTO())
		}
	}
	if e.Backoffs() != 7 {
		t.Errorf("Backoffs %d, want 7: doubling stops at the cap", e.Backoffs())
	}
	e.ResetBackoff()
	if e.RTO() != time.Second || e.Backoffs() != 0 {
		t.Fatalf("after ResetBackoff RTO %v, want 1s", e.RTO())
	}
}

func TestSampleClearsBackoff(t *testing.T) {
	e := New()
	e.Sample(100 * ms)
	e.Backoff()
	e.Backoff()
	if e.RTO() != 1200*ms {
		t.Fatalf("backed-off RTO %v, want 1.2s", e.RTO())
	}
	e.Sample(100 * ms) // RTTVAR 3/4·50 = 37.5, RTO 100 + 150
	check(t, e, 100*ms, 37500*time.Microsecond, 250*ms)
}

// RFC 6298 proper: a 1 s floor, initial 1 s, and a 60 s ceiling.
func TestNewWithBounds(t *testing.T) {
	e := NewWithBounds(time.Second, time.Second, time.Minute)
	e.Sample(100 * ms)
	check(t, e, 100*ms, 50*ms, time.Second)
	for range 10 {
		e.Backoff()
	}
	if e.RTO() != time.Minute {
		t.Fatalf("RTO %v, want the 60 s cap", e.RTO())
	}
	if got := NewWithBounds(5*time.Second, 0, 2*time.Second).RTO(); got != 2*time.Second {
		t.Errorf("initial above max: RTO %v, want it clamped to 2s", got)
	}
	if got := NewWithBounds(time.Second, 3*time.Second, time.Second).RTO(); got != 3*time.Second {
		t.Errorf("max below min: RTO %v, want 3s", got)
	}
}
