package tcp

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
)

// TestManyConnections: 16 connections at once over one lossy link, each
// moving 256 KiB both ways while others are reset mid-stream, under the
// race detector: the per-endpoint locks, the shared tables and the
// listener's accept queue hold up, and the survivors' data is intact.
func TestManyConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 5, emu.Impairments{Loss: 0.01, Delay: time.Millisecond})
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 64)
		const n = 16
		size := 256 << 10
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		// Server: echo each connection's bytes back with its own.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				s := accept(t, l, time.Minute)
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := readAll(s, 5*time.Minute)
					if err != nil {
						if len(got) < size && errorsIsReset(err) {
							s.Close()
							return // a client that aborts
						}
						errs <- fmt.Errorf("server read: %v", err)
						return
					}
					if err := writeAll(s, got, 5*time.Minute); err != nil && !errorsIsReset(err) {
						errs <- fmt.Errorf("server write: %v", err)
					}
					s.Close()
				}()
			}
		}()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := a.open(t, syscall.AF_INET)
				if err := connect(t, c, ap(addrB4, 80), time.Minute); err != nil {
					errs <- err
					return
				}
				data := randomBytes(uint64(i), size)
				if i%4 == 3 {
					writeAll(c, data[:size/2], time.Minute)
					c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1})
					c.Close() // abort mid-stream
					return
				}
				if err := writeAll(c, data, 5*time.Minute); err != nil {
					errs <- fmt.Errorf("client %d write: %v", i, err)
					return
				}
				c.Shutdown(syscall.SHUT_WR)
				got, err := readAll(c, 5*time.Minute)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("client %d: echo of %d bytes, %v", i, len(got), err)
				}
				c.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		time.Sleep(2 * time.Minute) // TIME_WAIT and orphans finish
		synctest.Wait()
		for _, h := range []*host{a, b} {
			for _, in := range h.tcp.Endpoints() {
				if in.State != "LISTEN" {
					t.Errorf("left over: %+v", in)
				}
			}
			if n := h.tcp.Stats().CurrEstab.Load(); n != 0 {
				t.Errorf("CurrEstab %d at the end", n)
			}
		}
	})
}

func errorsIsReset(err error) bool {
	return err == syscall.ECONNRESET || err == syscall.EPIPE
}

// TestLoopback: a connection to ourselves over the loopback interface.
func TestLoopback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		lo := netip.MustParseAddr("127.0.0.1")
		l := a.listen(t, syscall.AF_INET, ap(lo, 7), 4)
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(lo, 7))
		s := accept(t, l, time.Second)
		data := randomBytes(8, 1<<20)
		go func() { writeAll(c, data, time.Minute); c.Close() }()
		got, err := readAll(s, time.Minute)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes over loopback, %v", len(got), err)
		}
	})
}
