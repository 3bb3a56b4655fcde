package cc

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestSwitch: a controller taking over mid-connection keeps cwnd and
// ssthresh (Linux tcp_reinit_congestion_control), also in the middle of
// a recovery whose exit then lands on the carried ssthresh; an unknown
// name is ENOENT.
func TestSwitch(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c := NewCubic(mss)
	now := t0
	for range 5 {
		now = round(c, now, rtt, 2*mss)
	}
	c.OnCongestion(now, c.Cwnd())
	cw, st := c.Cwnd(), c.Ssthresh()
	if st == InfiniteSsthresh {
		t.Fatal("no ssthresh after the loss")
	}
	r, err := Switch(NameReno, mss, c)
	if err != nil || r.Name() != NameReno {
		t.Fatalf("Switch: %v %v", r, err)
	}
	if r.Cwnd() != cw || r.Ssthresh() != st {
		t.Fatalf("cwnd %d ssthresh %d, want %d %d", r.Cwnd(), r.Ssthresh(), cw, st)
	}
	r.OnRecoveryExit(now)
	if r.Cwnd() != st {
		t.Fatalf("after recovery cwnd %d, want ssthresh %d", r.Cwnd(), st)
	}
	back, _ := Switch(NameCubic, mss, r)
	if back.Cwnd() != st || back.Ssthresh() != st {
		t.Fatalf("back to cubic: %d %d", back.Cwnd(), back.Ssthresh())
	}
	now = round(back, now, rtt, 2*mss)
	if back.Cwnd() <= st {
		t.Fatalf("cubic does not grow from the carried window: %d", back.Cwnd())
	}
	// A fresh controller stays pristine: the MSS still sets its IW.
	f, _ := Switch(NameReno, mss, NewCubic(mss))
	f.SetMSS(2 * mss)
	if f.Cwnd() != InitialWindow(2*mss) {
		t.Fatalf("pristine switch: cwnd %d", f.Cwnd())
	}
	if _, err := Switch("bbr", mss, c); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unknown: %v", err)
	}
}
