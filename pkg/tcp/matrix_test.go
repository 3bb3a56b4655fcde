package tcp

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
)

// linkProfile is a bandwidth/delay setting of the matrix; Delay is one
// way (each port's outgoing direction), so the RTT is twice it.
type linkProfile struct {
	name  string
	rate  uint64 // bits per second, 0 unlimited
	delay time.Duration
	limit int // serialiser queue, about a bandwidth-delay product
}

var matrixProfiles = []linkProfile{
	{"10Mbit-50ms", 10_000_000, 50 * time.Millisecond, 100},
	{"100Mbit-5ms", 100_000_000, 5 * time.Millisecond, 100},
	{"unlimited-1ms", 0, time.Millisecond, 0},
}

// TestTransferMatrix moves data both ways at once over every combination
// of seed × loss (0, 1, 5, 20 %) × corruption × bandwidth/delay ×
// reordering × duplication, checks both streams byte for byte, that the
// receivers' checksums caught the corrupted frames (InCsumErrors, never
// more than were corrupted) and that both ends close cleanly: EOF each
// way, no error or reset of an established connection, both FINs
// acknowledged and both ends in TIME_WAIT or CLOSE. Cases run in parallel; fake time is free, so the bounds are
// generous and the sizes small enough for CPU under -race.
func TestTransferMatrix(t *testing.T) {
	for _, seed := range []uint64{11, 12} {
		for _, loss := range []float64{0, 0.01, 0.05, 0.20} {
			for _, corrupt := range []float64{0, 0.02} {
				for _, prof := range matrixProfiles {
					for _, reorder := range []bool{false, true} {
						for _, dup := range []bool{false, true} {
							name := fmt.Sprintf("seed%d/loss%v/corrupt%v/%s/reorder%v/dup%v", seed, loss, corrupt, prof.name, reorder, dup)
							t.Run(name, func(t *testing.T) {
								t.Parallel()
								runMatrixCase(t, seed, loss, corrupt, prof, reorder, dup)
							})
						}
					}
				}
			}
		}
	}
}

// runMatrixCase is one case: reorder sends 5 % of frames late (with
// jitter of a tenth of the delay), dup sends 2 % twice.
func runMatrixCase(t *testing.T, seed uint64, loss, corrupt float64, prof linkProfile, reorder, dup bool) {
	size := 512 << 10
	if loss >= 0.2 {
		size = 256 << 10
	}
	if testing.Short() {
		size /= 4
	}
	const bound = time.Hour // fake time
	synctest.Test(t, func(t *testing.T) {
		im := emu.Impairments{Loss: loss, Corrupt: corrupt, Rate: prof.rate, Delay: prof.delay, Limit: prof.limit}
		if reorder {
			im.Reorder, im.Jitter = 0.05, prof.delay/10
		}
		if dup {
			im.Duplicate = 0.02
		}
		a, b := pairWith(t, seed, im)
		// At 20 % loss each way the RTO can reach its 120 s cap (echoed
		// timestamps measure ACKs delayed by loss and the peer's backoff),
		// and a FIN retransmitted a few times at that after the peer's
		// TIME_WAIT ended draws a reset. An hour of TIME_WAIT lets every
		// FIN be acknowledged.
		a.tcp.TimeWait, b.tcp.TimeWait = time.Hour, time.Hour
		c, s := connPair(t, a, b, seed%2 == 0)
		up, down := randomBytes(seed, size), randomBytes(seed+100, size)
		start := time.Now()
		errc := make(chan error, 2)
		for _, w := range []struct {
			ep   *endpoint
			data []byte
		}{{c, up}, {s, down}} {
			go func() {
				err := writeAll(w.ep, w.data, bound)
				if err == nil {
					err = w.ep.Shutdown(syscall.SHUT_WR)
				}
				errc <- err
			}()
		}
		gotDown := make(chan []byte, 1)
		go func() {
			d, err := readAll(c, bound)
			if err != nil {
				t.Errorf("client read: %v\nclient %s\nserver %s", err, dump(c), dump(s))
			}
			gotDown <- d
		}()
		gotUp, err := readAll(s, bound)
		if err != nil {
			t.Errorf("server read: %v\nclient %s\nserver %s", err, dump(c), dump(s))
		}
		d := <-gotDown
		for range 2 {
			if err := <-errc; err != nil {
				t.Errorf("write: %v", err)
			}
		}
		if !bytes.Equal(gotUp, up) {
			t.Errorf("upstream: %d bytes, want %d, equal prefix %d", len(gotUp), len(up), commonPrefix(gotUp, up))
		}
		if !bytes.Equal(d, down) {
			t.Errorf("downstream: %d bytes, want %d, equal prefix %d", len(d), len(down), commonPrefix(d, down))
		}
		if t.Failed() {
			return
		}
		elapsed := time.Since(start)
		for _, ep := range []*endpoint{c, s} {
			if v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v.(int) != 0 {
				t.Errorf("SO_ERROR %v", syscall.Errno(v.(int)))
			}
		}
		c.Close()
		s.Close()
		closed := time.Now()
		// Both ends leave FIN_WAIT/LAST_ACK/CLOSING once their FIN is
		// acknowledged, however many tries that takes. TIME_WAIT may end
		// early: a duplicated or repeated last ACK reaching the closed peer
		// draws a reset at RCV.NXT, which kills TIME_WAIT as in Linux
		// (tcp_rfc1337 off), so either end may be in CLOSE.
		done := func(st string) bool { return st == "TIME_WAIT" || st == "CLOSE" }
		for deadline := time.Now().Add(time.Hour); ; {
			synctest.Wait()
			cs, ss := c.Info().State, s.Info().State
			if done(cs) && done(ss) {
				for _, ep := range []*endpoint{c, s} {
					ep.mu.Lock()
					fin := ep.finAcked && ep.finRcvd
					ep.mu.Unlock()
					if !fin {
						in := tcpInfo(ep)
						t.Errorf("closed without both FINs acknowledged after %v: %s srtt=%dus rttvar=%dus\nclient %s\nserver %s", time.Since(closed), dump(ep), in.RTT, in.RTTVar, dump(c), dump(s))
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not closed after an hour: client %s, server %s\nclient %s\nserver %s", cs, ss, dump(c), dump(s))
			}
			time.Sleep(250 * time.Millisecond)
		}
		for _, h := range []*host{a, b} {
			if n := h.tcp.Stats().EstabResets.Load(); n != 0 {
				t.Errorf("%d established connections reset", n)
			}
		}
		// Checksums: every frame corrupted on the way to a host is at most
		// one checksum error there; with corruption on, some must be caught.
		var caught uint64
		for _, p := range [][2]*host{{a, b}, {b, a}} {
			rx, tx := p[0], p[1]
			n, hit := rx.tcp.Stats().InCsumErrors.Load(), tx.port.ImpairStats(emu.Out).Corrupted
			if n > hit {
				t.Errorf("%d checksum errors counted, %d frames corrupted", n, hit)
			}
			caught += n
		}
		if corrupt > 0 && caught == 0 {
			t.Errorf("no checksum errors with corruption on")
		}
		t.Logf("%v of fake time, %d retransmitted, %d checksum errors", elapsed,
			a.tcp.Stats().RetransSegs.Load()+b.tcp.Stats().RetransSegs.Load(), caught)
	})
}
