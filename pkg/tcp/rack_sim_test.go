package tcp

import (
	"bytes"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/rtt"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestTailLossProbe: the last two segments of a request are lost. The
// Tail Loss Probe (RFC 8985 §7) resends the last one after 2·SRTT, its
// SACK lets RACK find the other lost (§6.2), and the request is whole in
// a few round trips, before the retransmission timeout (at least 200 ms
// after the last ACK) would have fired.
func TestTailLossProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		cfg := emu.PortConfig{Out: emu.Impairments{Delay: 20 * time.Millisecond}}
		a, rec := newRecHost(t, nw, cfg, "10.0.0.1/24", "2001:db8::1/64")
		b := newHost(t, nw, cfg, "10.0.0.2/24", "2001:db8::2/64")
		c, s := connPair(t, a, b, false)
		mss := int(tcpInfoOf(t, c).SndMSS)
		c.mu.Lock()
		iss := uint32(c.iss)
		c.mu.Unlock()
		const segs = 10
		sends := map[uint32]int{}
		rec.setDrop(func(r segRecord) bool {
			if r.n == 0 {
				return false
			}
			off := r.seq - iss - 1
			sends[off]++
			return int(off) >= (segs-2)*mss && sends[off] == 1
		})
		data := randomBytes(9, segs*mss)
		retrans := a.tcp.Stats().RetransSegs.Load()
		start := time.Now()
		if err := writeAll(c, data, time.Second); err != nil {
			t.Fatal(err)
		}
		got, err := readN(s, len(data), 10*time.Second)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes, %v\n%s", len(got), err, dump(c))
		}
		took := time.Since(start)
		n := a.tcp.Stats().RetransSegs.Load() - retrans
		t.Logf("tail loss of 2 segments repaired in %v (RTT 40 ms), %d retransmissions", took, n)
		// By the retransmission timeout alone the repair took 340 ms. The
		// probe goes out 2·SRTT after the last ACK: 145 ms in, or 192 ms
		// in 1 run of 3 where the goroutines' interleaving delays that
		// ACK (the whole flight is sent at once either way), so the
		// repair ends at 205 or 252 ms. That the first retransmission is
		// the last segment (below) shows it was the probe: an RTO resends
		// SND.UNA first.
		if took >= 300*time.Millisecond {
			t.Errorf("repaired in %v, want under 300 ms (no RTO: 340 ms)", took)
		}
		if n != 2 {
			t.Errorf("%d retransmissions, want 2 (the probe and the other lost segment)", n)
		}
		probed := false
		for _, r := range rec.sent() {
			off := int(r.seq - iss - 1)
			if r.n > 0 && sends[uint32(off)] > 1 && !probed {
				// The first retransmission is the probe: the last segment,
				// 2·SRTT after the last ACK.
				probed = true
				t.Logf("probe of offset %d at %v", off, r.at.Sub(start))
				if off != (segs-1)*mss || r.at.Sub(start) >= 240*time.Millisecond {
					t.Errorf("first retransmission: offset %d at %v, want the last segment's probe before 240 ms", off, r.at.Sub(start))
				}
			}
			if r.n > 0 && r.flags&wire.TCPFlagSYN == 0 && int(r.seq-iss-1) < (segs-2)*mss && sends[r.seq-iss-1] > 1 {
				t.Errorf("segment at %d resent", r.seq-iss-1)
			}
		}
	})
}

// TestRACKReordering: a path that reorders by jitter of ±3 ms on a 40 ms
// round trip, within RACK's reordering window (min RTT/4), and loses
// nothing. RACK (RFC 8985 §6.2) waits the window before calling a segment
// lost, so at most the first reordering, before one is seen, may cause
// spurious retransmissions (0-4 of the first flight's segments, as the
// scheduling of the goroutines falls); RFC 6675's DupThresh alone resends
// whenever three later segments overtake one (31-34 times here). That
// first episode must teach RACK: the original of a segment it resent
// arrives late, which the timestamp echo shows (before that 1 run in 8
// had a second episode, 7 retransmissions in all).
func TestRACKReordering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 5, emu.Impairments{Delay: 20 * time.Millisecond, Jitter: 3 * time.Millisecond})
		c, s := connPair(t, a, b, false)
		data := randomBytes(4, 2<<20)
		errc := make(chan error, 1)
		go func() {
			err := writeAll(c, data, time.Minute)
			c.Shutdown(syscall.SHUT_WR)
			errc <- err
		}()
		got, err := readAll(s, time.Minute)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		n := a.tcp.Stats().RetransSegs.Load()
		t.Logf("2 MiB with ±3 ms jitter: %d retransmissions (none needed)", n)
		if n > 5 { // DupThresh alone: 31-34
			t.Errorf("%d spurious retransmissions", n)
		}
	})
}

// TestRACKRecordsCoverFlight: the per-segment transmit records stay
// contiguous and cover [SND.UNA, SND.MAX) when a resend in smaller
// segments (after the MSS fell) runs past SND.MAX and new data follows.
func TestRACKRecordsCoverFlight(t *testing.T) {
	e := &endpoint{sackOK: true, warm: &warmState{}}
	t0 := time.Unix(1000, 0)
	send := func(at time.Time, seq, end seqnum.Value) {
		e.rackSentLocked(at, seq, end, seq.LessThan(e.sndMax))
		if e.sndMax.LessThan(end) {
			e.sndMax = end
		}
	}
	e.sndUna, e.sndMax = 1000, 1000
	send(t0, 1000, 2448)
	send(t0, 2448, 3896)
	t1 := t0.Add(time.Millisecond)
	for seq := seqnum.Value(1000); seq.LessThan(4792); seq += 948 {
		send(t1, seq, seq+948) // the last one runs past SND.MAX (3896)
	}
	send(t1, 4792, 5740)
	r := e.warm.rack
	at := r.rackStart
	for _, s := range r.segs {
		if !at.LessThan(s.end) {
			t.Fatalf("records out of order: %+v", r.segs)
		}
		at = s.end
	}
	if r.rackStart != e.sndUna || at != e.sndMax {
		t.Fatalf("records cover [%d, %d), flight [%d, %d): %+v", r.rackStart, at, e.sndUna, e.sndMax, r.segs)
	}
}

// TestPTOFloor: with an SRTT of about nothing (a LAN, or loopback with
// the millisecond timestamp clock) the probe timeout is still 2·SRTT plus
// Linux's TCP_TIMEOUT_MIN (2 ms), not an immediate probe.
func TestPTOFloor(t *testing.T) {
	e := &endpoint{sackOK: true, state: StateEstablished, mss: 1000, rtt: rtt.New(), warm: &warmState{rack: &rackState{}}}
	e.rtt.Sample(0)
	e.sndUna, e.sndMax = 1000, 5000
	now := time.Now()
	e.mu.Lock()
	e.schedulePTOLocked(now, true)
	kind, at := e.rtoKind, e.rtoT.at
	e.rtoT.stop()
	e.mu.Unlock()
	if kind != kindPTO || at.Sub(now) != 2*time.Millisecond {
		t.Fatalf("timer kind %d in %v, want the PTO in 2ms", kind, at.Sub(now))
	}
}

// TestRACKReorderingFastFrames: 5 % of frames skip the 1 ms delay both
// ways, so some data segment and its ACK both go fast and RACK's minimum
// RTT falls to about nothing; the reordering window keeps Linux's 1 ms
// floor and spurious retransmissions stay fewer (106-156 here, 230-243
// without the floor).
func TestRACKReorderingFastFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 1, emu.Impairments{Reorder: 0.05, Delay: time.Millisecond, Jitter: 500 * time.Microsecond})
		c, s := connPair(t, a, b, false)
		data := randomBytes(1, 2<<20)
		go func() {
			writeAll(c, data, time.Minute)
			c.Shutdown(syscall.SHUT_WR)
		}()
		got, err := readAll(s, time.Minute)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
		n := a.tcp.Stats().RetransSegs.Load()
		t.Logf("2 MiB, 5 %% of frames reordered by 1 ms: %d retransmissions (none needed)", n)
		if n > 190 {
			t.Errorf("%d spurious retransmissions", n)
		}
	})
}

// TestRACKDelayedOriginalIsReordering: a segment taken for lost and resent
// is then acknowledged by an ACK whose timestamp echo predates the
// resend, so the original arrived, late (RFC 3522): RACK counts that as
// reordering (RFC 8985 §6.2 step 3), as it would for a segment never
// resent, while an echo of the resend itself leaves it ambiguous.
func TestRACKDelayedOriginalIsReordering(t *testing.T) {
	for _, tc := range []struct {
		name      string
		echoAt    time.Duration // whose TSval the ACK echoes, after t0
		reordered bool
	}{
		{"echo of the original", 0, true},
		{"echo of the resend", 30 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &endpoint{sackOK: true, tsOK: true, rtt: rtt.New(), warm: &warmState{}}
			t0 := time.Unix(1000, 0)
			e.sndUna, e.sndMax = 1000, 1000
			for _, seq := range []seqnum.Value{1000, 2000} {
				e.rackSentLocked(t0, seq, seq+1000, false)
				e.sndMax = seq + 1000
			}
			// [2000, 3000) is SACKed first; [1000, 2000) is resent.
			e.sb.Update(e.sndUna, e.sndMax, []ranges.Range{{Start: 2000, End: 3000}})
			e.rackAckLocked(t0.Add(20*time.Millisecond), false, false, 0)
			e.rackSentLocked(t0.Add(30*time.Millisecond), 1000, 2000, true)
			// The hole is filled: the ACK covers both.
			e.sndUna = 3000
			e.sb.Update(e.sndUna, e.sndMax, nil)
			e.rackAckLocked(t0.Add(40*time.Millisecond), false, false, e.tsAt(t0.Add(tc.echoAt)))
			if got := e.warm.rack.rack.ReorderingSeen(); got != tc.reordered {
				t.Fatalf("reordering seen %v, want %v", got, tc.reordered)
			}
		})
	}
}
