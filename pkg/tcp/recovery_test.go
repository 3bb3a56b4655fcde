package tcp

import (
	"bytes"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestRTOKeepsSACK: a burst loss at the head of a flight whose
// retransmissions are lost too ends in a retransmission timeout while the
// rest of the flight is SACKed. After the timeout only the holes go again
// (RFC 6675 §5.1 with the scoreboard kept, as Linux tcp_enter_loss), not
// the SACKed segments that go-back-N would resend.
func TestRTOKeepsSACK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		mss := int(tcpInfoOf(t, c).SndMSS)
		const segs, lost = 10, 4 // the initial window; the first four are lost
		c.mu.Lock()
		iss := uint32(c.iss)
		c.mu.Unlock()
		sends := map[uint32]int{} // transmissions by offset
		rec.setDrop(func(r segRecord) bool {
			if r.n == 0 {
				return false
			}
			off := r.seq - iss - 1
			sends[off]++
			// The original and the first retransmission of each of the
			// first segments are lost.
			return int(off) < lost*mss && sends[off] <= 2
		})
		data := randomBytes(3, segs*mss)
		retrans := a.tcp.Stats().RetransSegs.Load()
		start := time.Now()
		if err := writeAll(c, data, time.Second); err != nil {
			t.Fatal(err)
		}
		got, err := readN(s, len(data), 10*time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, dump(c))
		}
		if !bytes.Equal(got, data) {
			t.Fatal("data differs")
		}
		took := time.Since(start)
		rec.setDrop(nil)
		n := a.tcp.Stats().RetransSegs.Load() - retrans
		t.Logf("repaired in %v with %d retransmitted segments", took, n)
		if took < 200*time.Millisecond {
			t.Errorf("repaired in %v: the test wants a timeout", took)
		}
		for _, r := range rec.sent() {
			if r.n == 0 || r.flags&wire.TCPFlagSYN != 0 {
				continue
			}
			if off := int(r.seq - iss - 1); off >= lost*mss && sends[uint32(off)] > 1 {
				t.Errorf("SACKed segment at offset %d sent %d times", off, sends[uint32(off)])
				sends[uint32(off)] = 1 // once per offset
			}
		}
		// Each lost segment went three times (two lost); nothing else
		// was resent.
		if want := uint64(2 * lost); n != want {
			t.Errorf("%d retransmitted segments, want %d", n, want)
		}
		c.Shutdown(syscall.SHUT_WR)
		if rest, err := readAll(s, time.Second); err != nil || len(rest) != 0 {
			t.Fatalf("EOF: %d bytes, %v", len(rest), err)
		}
	})
}

// TestBurstLossManyHoles: slow start overshoots a 1 Gbit/s, 20 ms path
// with a short queue, which drops hundreds of segments from one flight,
// far more holes than the 32 ranges a fixed bound would keep. The
// receiver keeps every out-of-order range and the sender every SACKed
// one (ranges.MaxRangesFor), so only dropped segments go again: with 32
// the receiver forgot ranges it held and the sender resent segments that
// had arrived (1,173 spurious of 1,866 retransmissions in a 32 MiB run).
func TestBurstLossManyHoles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 3)
		a := newHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond, Rate: 1_000_000_000, Limit: 300}}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.2/24")
		c, s := connPair(t, a, b, false)
		data := randomBytes(5, 16<<20)
		errc := make(chan error, 1)
		go func() {
			err := writeAll(c, data, time.Minute)
			c.Close()
			errc <- err
		}()
		got, err := readAll(s, time.Minute)
		if werr := <-errc; err == nil {
			err = werr
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d of %d bytes, %v\n%s\n%s", len(got), len(data), err, dump(c), dump(s))
		}
		dropped := a.port.ImpairStats(emu.Out).QueueDropped
		retrans := a.tcp.Stats().RetransSegs.Load()
		t.Logf("%d segments dropped by the queue, %d retransmitted", dropped, retrans)
		if dropped < 100 {
			t.Fatalf("only %d drops: the case does not make many holes", dropped)
		}
		if retrans > dropped+dropped/20 {
			t.Errorf("%d retransmissions for %d drops", retrans, dropped)
		}
	})
}

// ltSend is a data segment the sender put on the link, with the sender's
// state when it went (read in the recorder's hook, which runs after the
// endpoint built the segment and let its lock go).
type ltSend struct {
	off        int // offset in the stream
	n          int
	fresh      bool // above everything sent before (new data)
	cwnd       int
	dupAcks    int
	inRecovery bool
}

// ltSetup connects a to b across a 10 Mbit/s link with 10 ms each way
// (so the duplicate ACKs of one flight come about 1.2 ms apart, well
// inside RACK's reordering window of min RTT/4) and drops the first
// transmission of the first data segment. With sack false both ends go
// without SACK and timestamps (NewReno). The client uses Reno so the
// ssthresh of the recovery is FlightSize/2 exactly; mtu 0 is the
// default 1500. It returns the client, the server and the record of the
// data segments the client sent.
func ltSetup(t *testing.T, sack bool, mtu int) (c, s *endpoint, sends func() []ltSend) {
	t.Helper()
	nw := newNet(t, 7)
	a, rec := newRecHost(t, nw, emu.PortConfig{MTU: mtu, Out: emu.Impairments{Delay: 10 * time.Millisecond, Rate: 10_000_000}}, "10.0.0.1/24")
	b := newHost(t, nw, emu.PortConfig{MTU: mtu, Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.2/24")
	if !sack {
		for _, h := range []*host{a, b} {
			h.tcp.DisableSACK, h.tcp.DisableTimestamps = true, true
		}
	}
	c, s = connPair(t, a, b, false)
	// A byte from the server brings the client its scaled window: the
	// duplicate ACKs must not differ in window from the ACK before them
	// (RFC 5681 §2), which the SYN-ACK's unscaled one would.
	if err := writeAll(s, []byte{1}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := readN(c, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSockOpt(syscall.IPPROTO_TCP, TCP_CONGESTION, "reno"); err != nil {
		t.Fatal(err)
	}
	if got := tcpInfoOf(t, c).Options&TCPIOptSACK != 0; got != sack {
		t.Fatalf("SACK negotiated: %v, want %v", got, sack)
	}
	c.mu.Lock()
	iss := uint32(c.iss)
	c.mu.Unlock()
	var mu sync.Mutex
	var log []ltSend
	high, dropped := 0, false
	rec.setDrop(func(r segRecord) bool {
		if r.n == 0 || r.flags&wire.TCPFlagSYN != 0 {
			return false
		}
		off := int(r.seq - iss - 1)
		c.mu.Lock()
		l := ltSend{off: off, n: r.n, fresh: off >= high, cwnd: c.cwndLocked(), dupAcks: c.dupAcks, inRecovery: c.inRecovery}
		c.mu.Unlock()
		high = max(high, off+r.n)
		mu.Lock()
		log = append(log, l)
		mu.Unlock()
		if off == 0 && !dropped {
			dropped = true
			return true
		}
		return false
	})
	return c, s, func() []ltSend {
		mu.Lock()
		defer mu.Unlock()
		return append([]ltSend(nil), log...)
	}
}

// ltBeforeRecovery is the segments sent before the first retransmission
// or recovery, all new.
func ltBeforeRecovery(sends []ltSend) []ltSend {
	for i, l := range sends {
		if !l.fresh || l.inRecovery {
			return sends[:i]
		}
	}
	return sends
}

// TestLimitedTransmit: the first segment of a flight that fills the
// initial window is lost and more data waits. On each of the first two
// duplicate ACKs exactly one new segment goes out (RFC 3042 §2), with
// cwnd unchanged, then the third starts recovery (fast retransmit
// without SACK, RACK's DupThresh-SACKed rule with it, RFC 8985 §6.2),
// whose ssthresh leaves the two limited transmit segments out of
// FlightSize (RFC 5681 §3.2 step 2). Nothing times out and only the lost
// segment is resent.
func TestLimitedTransmit(t *testing.T) {
	for _, sack := range []bool{true, false} {
		name := "NewReno"
		if sack {
			name = "SACK"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s, sends := ltSetup(t, sack, 0)
				mss := int(tcpInfoOf(t, c).SndMSS)
				iw := int(tcpInfoOf(t, c).SndCwnd) * mss
				if iw != 10*mss {
					t.Fatalf("initial window %d, want 10 segments of %d", iw, mss)
				}
				data := randomBytes(11, 20*mss)
				if err := writeAll(c, data, time.Second); err != nil {
					t.Fatal(err)
				}
				got, err := readN(s, len(data), 10*time.Second)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%d of %d bytes, %v\n%s", len(got), len(data), err, dump(c))
				}
				perDup := map[int][]ltSend{} // new segments before recovery, by the duplicate ACKs counted
				for _, l := range ltBeforeRecovery(sends()) {
					perDup[l.dupAcks] = append(perDup[l.dupAcks], l)
					if l.cwnd != iw {
						t.Errorf("new segment at %d sent with cwnd %d, want %d unchanged", l.off, l.cwnd, iw)
					}
				}
				if n := len(perDup[0]); n != 10 {
					t.Errorf("%d segments in the initial flight, want 10", n)
				}
				for d := 1; d <= 2; d++ {
					if l := perDup[d]; len(l) != 1 || l[0].off != (9+d)*mss || l[0].n != mss {
						t.Errorf("on duplicate ACK %d sent %+v, want one segment at offset %d", d, l, (9+d)*mss)
					}
				}
				for d, l := range perDup {
					if d > 2 {
						t.Errorf("%d new segments on duplicate ACK %d outside recovery: %+v", len(l), d, l)
					}
				}
				in := tcpInfoOf(t, c)
				if in.TotalRetrans != 1 {
					t.Errorf("%d retransmissions, want 1 (the lost segment)\n%s", in.TotalRetrans, dump(c))
				}
				// Reno: ssthresh = FlightSize/2 with the 10 segments of cwnd,
				// not the 12 sent.
				if in.SndSsthresh != 5 {
					t.Errorf("ssthresh %d segments, want 5", in.SndSsthresh)
				}
				if a := c.p.Stats(); a.RetransSegs.Load() != 1 {
					t.Errorf("%d retransmitted segments, want 1", a.RetransSegs.Load())
				}
			})
		})
	}
}

// TestLimitedTransmitNoData: as TestLimitedTransmit with exactly the
// initial window written: the duplicate ACKs find no new data, so nothing
// goes but the lost segment's fast retransmit.
func TestLimitedTransmitNoData(t *testing.T) {
	for _, sack := range []bool{true, false} {
		name := "NewReno"
		if sack {
			name = "SACK"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s, sends := ltSetup(t, sack, 0)
				mss := int(tcpInfoOf(t, c).SndMSS)
				data := randomBytes(12, 10*mss)
				start := time.Now()
				if err := writeAll(c, data, time.Second); err != nil {
					t.Fatal(err)
				}
				got, err := readN(s, len(data), 10*time.Second)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%d of %d bytes, %v\n%s", len(got), len(data), err, dump(c))
				}
				if took := time.Since(start); took >= 200*time.Millisecond {
					t.Errorf("repaired in %v: a timeout, not fast retransmit", took)
				}
				all := sends()
				fresh := 0
				for _, l := range all {
					if l.fresh {
						fresh++
					} else if l.off != 0 {
						t.Errorf("segment at %d resent", l.off)
					}
				}
				if fresh != 10 || len(all) != 11 {
					t.Errorf("%d data segments sent (%d new), want the 10 and one retransmission: %+v", len(all), fresh, all)
				}
				c.Shutdown(syscall.SHUT_WR)
				if rest, err := readAll(s, time.Second); err != nil || len(rest) != 0 {
					t.Fatalf("EOF: %d bytes, %v", len(rest), err)
				}
			})
		})
	}
}

// TestLimitedTransmitSmallWindow: on a 9000-byte MTU the initial window
// is two segments (RFC 6928: max(2·MSS, 14600) bytes), so a loss of the
// first leaves one duplicate ACK, too few for fast retransmit without
// limited transmit: the repair waited for the retransmission timeout
// (at least 200 ms). With it the duplicate ACK lets a third segment out,
// its duplicate ACK a fourth, and the fourth's is the third duplicate
// (RFC 3042 §1's case for the mechanism). Without SACK, so RACK's timer
// does not decide first.
func TestLimitedTransmitSmallWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s, sends := ltSetup(t, false, 9000)
		mss := int(tcpInfoOf(t, c).SndMSS)
		if cw := tcpInfoOf(t, c).SndCwnd; cw != 2 {
			t.Fatalf("initial window of %d segments (MSS %d), want 2", cw, mss)
		}
		data := randomBytes(13, 8*mss)
		start := time.Now()
		if err := writeAll(c, data, time.Second); err != nil {
			t.Fatal(err)
		}
		got, err := readN(s, len(data), 10*time.Second)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d of %d bytes, %v\n%s", len(got), len(data), err, dump(c))
		}
		if took := time.Since(start); took >= 200*time.Millisecond {
			t.Errorf("repaired in %v: a timeout, not fast retransmit", took)
		}
		perDup := map[int]int{}
		for _, l := range ltBeforeRecovery(sends()) {
			perDup[l.dupAcks]++
			if l.cwnd != 2*mss {
				t.Errorf("new segment at %d sent with cwnd %d, want %d", l.off, l.cwnd, 2*mss)
			}
		}
		if perDup[0] != 2 || perDup[1] != 1 || perDup[2] != 1 || len(perDup) != 3 {
			t.Errorf("new segments by duplicate ACKs before recovery: %v, want 2, 1, 1", perDup)
		}
		if n := tcpInfoOf(t, c).TotalRetrans; n != 1 {
			t.Errorf("%d retransmissions, want 1", n)
		}
	})
}
