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

// TestTransferImpaired moves 2 MiB each way at once over a link with
// seeded loss, reordering and duplication, and checks both streams byte
// for byte: retransmission (RTO and fast retransmit), out-of-order
// reassembly, duplicate suppression and FIN handling under impairment.
func TestTransferImpaired(t *testing.T) {
	size := 2 << 20
	if testing.Short() {
		size = 256 << 10
	}
	for _, seed := range []uint64{1, 2, 3} {
		for _, loss := range []float64{0, 0.01, 0.05} {
			for _, reorder := range []float64{0, 0.05} {
				for _, dup := range []float64{0, 0.02} {
					name := fmt.Sprintf("seed%d/loss%v/reorder%v/dup%v", seed, loss, reorder, dup)
					t.Run(name, func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							im := emu.Impairments{Loss: loss, Reorder: reorder, Duplicate: dup, Delay: time.Millisecond}
							if reorder > 0 {
								im.Jitter = 500 * time.Microsecond
							}
							a, b := pairWith(t, seed, im)
							c, s := connPair(t, a, b, seed%2 == 0)
							up, down := randomBytes(seed, size), randomBytes(seed+100, size)
							start := time.Now()
							errc := make(chan error, 2)
							go func() {
								err := writeAll(c, up, 10*time.Minute)
								c.Shutdown(syscall.SHUT_WR)
								errc <- err
							}()
							go func() {
								err := writeAll(s, down, 10*time.Minute)
								s.Shutdown(syscall.SHUT_WR)
								errc <- err
							}()
							gotDown := make(chan []byte, 1)
							go func() {
								d, err := readAll(c, 10*time.Minute)
								if err != nil {
									t.Errorf("%v\nclient %s\nserver %s", err, dump(c), dump(s))
								}
								gotDown <- d
							}()
							gotUp, err := readAll(s, 10*time.Minute)
							d := <-gotDown
							if err != nil {
								t.Fatalf("%v\nclient %s\nserver %s", err, dump(c), dump(s))
							}
							for range 2 {
								if err := <-errc; err != nil {
									t.Fatal(err)
								}
							}
							if !bytes.Equal(gotUp, up) {
								t.Fatalf("upstream: %d bytes, want %d, equal prefix %d", len(gotUp), len(up), commonPrefix(gotUp, up))
							}
							if !bytes.Equal(d, down) {
								t.Fatalf("downstream: %d bytes, want %d, equal prefix %d", len(d), len(down), commonPrefix(d, down))
							}
							t.Logf("%v of fake time, %d retransmitted segments", time.Since(start), a.tcp.Stats().RetransSegs.Load()+b.tcp.Stats().RetransSegs.Load())
						})
					})
				}
			}
		}
	}
}

// TestTransferNewReno is the impaired transfer with SACK, timestamps and
// window scaling turned off at both ends (a peer from before RFC 2018 and
// RFC 7323): loss is recovered by NewReno (RFC 6582) and timeouts, RTT is
// timed one segment at a time (Karn's rule), the window is 16 bits.
func TestTransferNewReno(t *testing.T) {
	size := 1 << 20
	for _, seed := range []uint64{4, 5} {
		for _, loss := range []float64{0.01, 0.05} {
			t.Run(fmt.Sprintf("seed%d/loss%v", seed, loss), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					a, b := pairWith(t, seed, emu.Impairments{Loss: loss, Reorder: 0.02, Delay: time.Millisecond, Jitter: 200 * time.Microsecond})
					for _, h := range []*host{a, b} {
						h.tcp.DisableSACK, h.tcp.DisableTimestamps, h.tcp.DisableWindowScaling = true, true, true
					}
					c, s := connPair(t, a, b, false)
					v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
					if in := v.(TCPInfo); in.Options != 0 || in.SndMSS != 1460 {
						t.Fatalf("options negotiated: %+v", in)
					}
					data := randomBytes(seed, size)
					errc := make(chan error, 1)
					go func() {
						err := writeAll(c, data, 10*time.Minute)
						c.Close()
						errc <- err
					}()
					got, err := readAll(s, 10*time.Minute)
					if werr := <-errc; err == nil {
						err = werr
					}
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("%d of %d bytes, %v\n%s\n%s", len(got), len(data), err, dump(c), dump(s))
					}
				})
			})
		}
	}
}
