package tcp

import (
	"bytes"
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
