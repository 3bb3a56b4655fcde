package sack

import (
	"slices"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// Four segments of 100 octets sent 1 ms apart from t0; the fourth is
// SACKed after an RTT of 50 ms.
func rackScenario() (*RACK, []Segment) {
	var segs []Segment
	for i := range 4 {
		segs = append(segs, Segment{t0.Add(ms(i)), seqnum.Value(1100 + 100*i)})
	}
	var r RACK
	r.OnAck(segs[3].XmitTime, segs[3].EndSeq, ms(50))
	r.DetectReordering(segs[3].EndSeq, false)
	return &r, segs
}

func detect(r *RACK, now time.Time, reoWnd time.Duration, segs []Segment) ([]seqnum.Value, time.Duration) {
	var lost []seqnum.Value
	n, to := r.DetectLoss(now, reoWnd, slices.Values(segs), func(s Segment) { lost = append(lost, s.EndSeq) })
	if n != len(lost) {
		panic("count and callbacks differ")
	}
	return lost, to
}

func TestRACKDetectLoss(t *testing.T) {
	r, segs := rackScenario()
	out := segs[:3]
	if m, _ := r.MinRTT(); m != ms(50) || r.RTT() != ms(50) {
		t.Fatalf("MinRTT %v RTT %v", m, r.RTT())
	}
	// Not reordering-aware yet, not in recovery, 1 SACKed: window is min_RTT/4.
	reo := r.ReoWnd(ms(60), false, 1)
	if reo != ms(50)/4 {
		t.Fatalf("ReoWnd %v", reo)
	}
	// At the delivery (t0+3ms+50ms): segment i is lost at t0+i ms+50ms+12.5ms.
	now := t0.Add(ms(53))
	lost, to := detect(r, now, reo, out)
	// The timeout is for the last of them (RFC 8985 takes the maximum).
	if len(lost) != 0 || to != ms(64)+500*time.Microsecond-ms(53) {
		t.Errorf("at %v: lost %v, timeout %v", now.Sub(t0), lost, to)
	}
	now = t0.Add(ms(63))
	lost, to = detect(r, now, reo, out)
	if !slices.Equal(lost, []seqnum.Value{1100}) || to != ms(64)+500*time.Microsecond-ms(63) {
		t.Errorf("at 63ms: lost %v, timeout %v", lost, to)
	}
	lost, to = detect(r, t0.Add(ms(70)), reo, out)
	if len(lost) != 3 || to != 0 {
		t.Errorf("at 70ms: lost %v, timeout %v", lost, to)
	}
	// With a zero window (e.g. in recovery) everything sent before is lost
	// one RTT after it was sent.
	lost, _ = detect(r, t0.Add(ms(51)), 0, out)
	if !slices.Equal(lost, []seqnum.Value{1100, 1200}) {
		t.Errorf("zero window: lost %v", lost)
	}
	// Segments sent after the delivered one are never judged by it.
	later := []Segment{{t0.Add(ms(10)), 1600}, {t0.Add(ms(3)), 1550}}
	if lost, to := detect(r, t0.Add(time.Second), 0, later); len(lost) != 0 || to != 0 {
		t.Errorf("later segments: lost %v, timeout %v", lost, to)
	}
	// A nil markLost only counts.
	if n, _ := r.DetectLoss(t0.Add(time.Second), 0, slices.Values(out), nil); n != 3 {
		t.Errorf("count %d", n)
	}
}

func TestRACKSentAfter(t *testing.T) {
	var r RACK
	if n, to := r.DetectLoss(t0.Add(time.Hour), 0, slices.Values([]Segment{{t0, 100}}), nil); n != 0 || to != 0 {
		t.Error("loss detected before any delivery")
	}
	// Same transmission time: the higher sequence was sent after.
	r.OnAck(t0, 300, ms(10))
	lost, _ := detect(&r, t0.Add(ms(20)), 0, []Segment{{t0, 200}, {t0, 400}})
	if !slices.Equal(lost, []seqnum.Value{200}) {
		t.Errorf("tie-break: lost %v", lost)
	}
	// An older segment's delivery does not move RACK back, but its RTT is
	// the latest (RFC 8985 §6.2 step 2 sets RACK.rtt unconditionally).
	r.OnAck(t0.Add(-ms(5)), 100, ms(30))
	if r.xmitTime != t0 || r.endSeq != 300 || r.RTT() != ms(30) {
		t.Errorf("RACK moved back: %v %d %v", r.xmitTime, r.endSeq, r.RTT())
	}
	if m, _ := r.MinRTT(); m != ms(10) {
		t.Errorf("MinRTT %v", m)
	}
	if !r.AmbiguousRTT(ms(5)) || r.AmbiguousRTT(ms(10)) {
		t.Error("AmbiguousRTT")
	}
	r.SetMinRTT(ms(2))
	if m, ok := r.MinRTT(); m != ms(2) || !ok {
		t.Error("SetMinRTT")
	}
	// Wrap-around in the tie-break.
	var w RACK
	w.OnAck(t0, 0x10, ms(1))
	if lost, _ := detect(&w, t0.Add(ms(2)), 0, []Segment{{t0, 0xfffffff0}}); len(lost) != 1 {
		t.Error("tie-break across the wrap")
	}
}

func TestRACKReordering(t *testing.T) {
	var r RACK
	r.DetectReordering(1000, false)
	r.DetectReordering(1200, false)
	r.DetectReordering(1100, true) // a retransmission filling the hole
	if r.ReorderingSeen() {
		t.Fatal("a retransmission below FACK is not reordering")
	}
	r.OnAck(t0, 1200, ms(40))
	// No reordering: zero window in recovery or with DupThresh SACKed.
	if r.ReoWnd(ms(100), true, 0) != 0 || r.ReoWnd(ms(100), false, 3) != 0 || r.ReoWnd(ms(100), false, 2) != ms(10) {
		t.Error("ReoWnd before reordering")
	}
	r.DetectReordering(1150, false)
	if !r.ReorderingSeen() {
		t.Fatal("an original below FACK is reordering")
	}
	if r.ReoWnd(ms(100), true, 5) != ms(10) {
		t.Error("ReoWnd after reordering ignores recovery")
	}
	if r.ReoWnd(ms(5), false, 0) != ms(5) {
		t.Error("ReoWnd not capped at SRTT")
	}
}

func TestRACKReoWndAdaptation(t *testing.T) {
	var r RACK
	r.OnAck(t0, 100, ms(40))
	r.DetectReordering(100, false)
	r.DetectReordering(50, false)
	if r.ReoWndMult() != 1 {
		t.Fatal("initial multiplier")
	}
	r.UpdateReoWnd(1000, 2000, true, false)
	if r.ReoWndMult() != 2 || r.ReoWnd(time.Second, false, 0) != ms(20) {
		t.Fatalf("after a D-SACK: mult %d", r.ReoWndMult())
	}
	// More D-SACKs in the same round do not grow it.
	r.UpdateReoWnd(1500, 2500, true, false)
	if r.ReoWndMult() != 2 {
		t.Fatal("grew twice in a round")
	}
	// Once SND.UNA passes the round's SND.NXT, a D-SACK grows it again.
	r.UpdateReoWnd(2000, 3000, true, false)
	if r.ReoWndMult() != 3 {
		t.Fatalf("second round: mult %d", r.ReoWndMult())
	}
	// 16 recoveries without D-SACK reset it.
	for i := range 15 {
		r.UpdateReoWnd(seqnum.Value(4000+i), 5000, false, true)
	}
	if r.ReoWndMult() != 3 {
		t.Fatal("reset before 16 recoveries")
	}
	r.UpdateReoWnd(4100, 5000, false, false) // an ACK that ends no recovery
	r.UpdateReoWnd(4200, 5000, false, true)
	if r.ReoWndMult() != 1 {
		t.Fatalf("after 16 recoveries: mult %d", r.ReoWndMult())
	}
}

func TestPTO(t *testing.T) {
	d := DefaultMaxAckDelay
	for _, c := range []struct {
		srtt    time.Duration
		has     bool
		flight  int
		delay   time.Duration
		rtoLeft time.Duration
		want    time.Duration
	}{
		{ms(30), true, 5, d, 0, ms(60)},
		{ms(30), true, 1, d, 0, ms(260)},
		{ms(30), true, 1, ms(25), 0, ms(85)},
		{0, false, 3, d, 0, time.Second},
		{0, false, 1, d, 0, time.Second},
		{ms(30), true, 5, d, ms(40), ms(40)},
		{ms(30), true, 1, d, time.Second, ms(260)},
		{0, false, 1, d, ms(700), ms(700)},
	} {
		if got := PTO(c.srtt, c.has, c.flight, c.delay, c.rtoLeft); got != c.want {
			t.Errorf("PTO(%v, %v, %d, %v, %v) = %v, want %v", c.srtt, c.has, c.flight, c.delay, c.rtoLeft, got, c.want)
		}
	}
}

// RFC 8985 §7.4.2, TLP_process_ack, one case at a time.
func TestTLPProcessAck(t *testing.T) {
	none := ranges.Range{}
	for _, c := range []struct {
		name       string
		retrans    bool
		ack        seqnum.Value
		dsack      ranges.Range
		hasDSACK   bool
		dupNoSACK  bool
		want       TLPOutcome
		stillThere bool
	}{
		{"ACK below the probe", true, 1900, none, false, false, TLPPending, true},
		{"new-data probe delivered", false, 2000, none, false, false, TLPNoLoss, false},
		{"D-SACK of the probe", true, 2000, ranges.Range{Start: 1900, End: 2000}, true, false, TLPNoLoss, false},
		{"D-SACK of something else", true, 2000, ranges.Range{Start: 1500, End: 1600}, true, false, TLPPending, true},
		{"ACK beyond: a loss repaired", true, 2100, none, false, false, TLPRepaired, false},
		{"duplicate ACK without SACK", true, 2000, none, false, true, TLPNoLoss, false},
		{"ACK at the probe, undecided", true, 2000, none, false, false, TLPPending, true},
	} {
		var p TLP
		p.Sent(2000, c.retrans)
		if !p.InFlight() {
			t.Fatal("probe not in flight after Sent")
		}
		if got := p.OnAck(c.ack, c.dsack, c.hasDSACK, c.dupNoSACK); got != c.want || p.InFlight() != c.stillThere {
			t.Errorf("%s: OnAck = %v, in flight %v", c.name, got, p.InFlight())
		}
	}
	var p TLP
	if p.OnAck(5000, ranges.Range{}, false, true) != TLPPending {
		t.Error("an ACK without a probe ended an episode")
	}
	p.Sent(0x10, true) // across the wrap
	if p.OnAck(0xfffffff0, ranges.Range{}, false, true) != TLPPending || p.OnAck(0x20, ranges.Range{}, false, false) != TLPRepaired {
		t.Error("TLP across the wrap")
	}
	p.Sent(100, true)
	p.Reset()
	if p.InFlight() {
		t.Error("Reset kept the probe")
	}
}
