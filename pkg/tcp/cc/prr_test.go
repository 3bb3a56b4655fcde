package cc

import (
	"slices"
	"testing"
)

// RFC 6937 §5's first example: one segment of a 20-segment window lost,
// Reno's ssthresh of 10. The sender sends on every other ACK, so that the
// flight comes down to ssthresh by the end of recovery; once pipe reaches
// ssthresh (ACK 17) the slow start bound keeps it there.
func TestPRRSingleLoss(t *testing.T) {
	var p PRR
	p.Start(10*mss, 20*mss)
	pipe := 20 * mss
	var got []int
	for i := 1; i <= 19; i++ {
		pipe -= mss // this ACK SACKs one segment
		if i == 1 {
			pipe -= mss // and the first marks the hole lost
		}
		n := p.OnAck(mss, pipe, mss)
		p.Sent(n)
		pipe += n
		got = append(got, n/mss)
	}
	want := []int{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1}
	if !slices.Equal(got, want) {
		t.Errorf("sndcnt per ACK %v\nwant %v", got, want)
	}
	if pipe != 10*mss || p.Out() != 10*mss || p.Delivered() != 19*mss {
		t.Errorf("pipe %d out %d delivered %d, want pipe = ssthresh", pipe, p.Out(), p.Delivered())
	}
}

// CUBIC's ssthresh of 0.7·RecoverFS: CEIL(prr_delivered·14/20) − prr_out
// gives 1, 2, 3, 3, 4 sent after the first five ACKs.
func TestPRRProportional(t *testing.T) {
	var p PRR
	p.Start(14*mss, 20*mss)
	var got []int
	for range 5 {
		n := p.OnAck(mss, 18*mss, mss)
		p.Sent(n)
		got = append(got, n)
	}
	if want := []int{1000, 1000, 1000, 0, 1000}; !slices.Equal(got, want) {
		t.Errorf("sndcnt %v, want %v", got, want)
	}
	// A sender that sent more than allowed gets nothing, not a negative count.
	p.Sent(5 * mss)
	if n := p.OnAck(mss, 18*mss, mss); n != 0 {
		t.Errorf("sndcnt %d after overshoot, want 0", n)
	}
}

// Heavy loss: pipe below ssthresh. The cases are cumulative. PRR-SSRB sends what was delivered plus
// one MSS per ACK, like slow start, but no more than ssthresh − pipe.
func TestPRRSlowStartBound(t *testing.T) {
	var p PRR
	p.Start(10*mss, 20*mss)
	for _, c := range []struct{ delivered, pipe, sent, want int }{
		{mss, 5 * mss, 2 * mss, 2 * mss}, // max(1−0, 1) + 1
		{mss, 6 * mss, 2 * mss, 2 * mss}, // max(2−2, 1) + 1
		{3 * mss, 5 * mss, 0, 4 * mss},   // a stretch ACK: max(5−4, 3) + 1
		{mss, 4 * mss, 0, 3 * mss},       // nothing was sent: max(6−4, 1) + 1
		{mss, 9 * mss, mss, mss},         // capped by ssthresh − pipe
		{mss, 10 * mss, 0, 0},            // pipe at ssthresh
	} {
		if got := p.OnAck(c.delivered, c.pipe, mss); got != c.want {
			t.Fatalf("OnAck(%d, pipe %d) = %d, want %d", c.delivered, c.pipe, got, c.want)
		}
		p.Sent(c.sent)
	}
}
