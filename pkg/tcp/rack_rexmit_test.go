package tcp

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
)

// TestRACKLostRetransmission: a segment whose first retransmission is
// lost too is detected lost again by RACK once segments sent after that
// retransmission are SACKed (RFC 8985 §2.2, "lost retransmissions"), and
// resent a third time within the recovery, without waiting for the
// retransmission timeout RFC 6675 alone would need.
func TestRACKLostRetransmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		cfg := emu.PortConfig{Out: emu.Impairments{Delay: 5 * time.Millisecond}}
		a, rec := newRecHost(t, nw, cfg, "10.0.0.1/24")
		b := newHost(t, nw, cfg, "10.0.0.2/24")
		c, s := connPair(t, a, b, false)
		mss := int(tcpInfoOf(t, c).SndMSS)
		c.mu.Lock()
		iss := uint32(c.iss)
		c.mu.Unlock()
		const victim = 30 // a segment of the third flight
		sends := 0
		rec.setDrop(func(r segRecord) bool {
			if r.n == 0 || int(r.seq-iss-1) != victim*mss {
				return false
			}
			sends++
			return sends <= 2 // the original and the first retransmission
		})
		data := randomBytes(9, 400*mss)
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- writeAll(c, data, 10*time.Second) }()
		got, err := readN(s, len(data), 10*time.Second)
		if werr := <-errc; err == nil {
			err = werr
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d of %d bytes, %v\n%s", len(got), len(data), err, dump(c))
		}
		took := time.Since(start)
		n := a.tcp.Stats().RetransSegs.Load()
		t.Logf("%d segments in %v, the victim sent %d times, %d retransmissions", len(data)/mss, took, sends, n)
		if sends != 3 {
			t.Errorf("the victim went %d times, want 3", sends)
		}
		if n != 2 {
			t.Errorf("%d retransmissions, want 2 (the victim twice)", n)
		}
		if took >= 200*time.Millisecond {
			t.Errorf("took %v (a timeout is at least 200 ms)", took)
		}
	})
}
