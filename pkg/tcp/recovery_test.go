package tcp

import (
	"bytes"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

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
