package tcp

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/transport"
)

// autotuneTransfer moves size bytes from a client to a server over a
// path with a 40 ms round trip, SO_RCVBUF and SO_SNDBUF set explicitly
// or not, and returns how long it took (fake time) and both ends.
func autotuneTransfer(t *testing.T, size int, locked bool) (time.Duration, *endpoint, *endpoint) {
	a, b := pairWith(t, 11, emu.Impairments{Delay: 20 * time.Millisecond, Rate: 100e6, Limit: 10000})
	l := b.open(t, syscall.AF_INET)
	c := a.open(t, syscall.AF_INET)
	if locked {
		// What the defaults are anyway: only the lock differs.
		if err := l.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, transport.DefaultRcvBuf/2); err != nil {
			t.Fatal(err)
		}
		if err := c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_SNDBUF, transport.DefaultSndBuf/2); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Bind(ap(netip.Addr{}, 90)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(4); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, c, ap(addrB4, 90))
	s := accept(t, l, 10*time.Second)
	data := randomBytes(5, size)
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		err := writeAll(c, data, time.Minute)
		c.Shutdown(syscall.SHUT_WR)
		werr <- err
	}()
	got, err := readAll(s, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, not what was sent", len(got))
	}
	return time.Since(start), c, s
}

func tcpInfoOf(t *testing.T, ep *endpoint) TCPInfo {
	v, err := ep.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return v.(TCPInfo)
}

func sockBuf(t *testing.T, ep *endpoint, name int) int {
	v, err := ep.GetSockOpt(syscall.SOL_SOCKET, name)
	if err != nil {
		t.Fatal(err)
	}
	return v.(int)
}

// TestBufferAutoTuning: without SO_RCVBUF/SO_SNDBUF the receive buffer
// grows toward twice what the application reads per round trip and the
// send buffer toward twice the congestion window (Linux
// tcp_rcv_space_adjust, tcp_sndbuf_expand), with a window scale chosen
// for tcp_rmem[2]; the transfer over a long path is much faster than
// with the buffers set explicitly, which stay as set, with the window
// scale their size needs. Afterwards the idle connection gives its rings
// back.
func TestBufferAutoTuning(t *testing.T) {
	const size = 8 << 20
	synctest.Test(t, func(t *testing.T) {
		fixed, c, s := autotuneTransfer(t, size, true)
		if got := sockBuf(t, s, syscall.SO_RCVBUF); got != transport.DefaultRcvBuf {
			t.Errorf("SO_RCVBUF set: grew to %d", got)
		}
		if got := sockBuf(t, c, syscall.SO_SNDBUF); got != transport.DefaultSndBuf {
			t.Errorf("SO_SNDBUF set: grew to %d", got)
		}
		if in := tcpInfoOf(t, s); in.RcvWscale != rcvShiftFor(transport.DefaultRcvBuf) {
			t.Errorf("SO_RCVBUF set: window scale %d", in.RcvWscale)
		}

		tuned, c, s := autotuneTransfer(t, size, false)
		t.Logf("%d MiB over a 40 ms round trip: %v with fixed buffers, %v auto-tuned", size>>20, fixed, tuned)
		rb, sb := sockBuf(t, s, syscall.SO_RCVBUF), sockBuf(t, c, syscall.SO_SNDBUF)
		t.Logf("auto-tuned SO_RCVBUF %d, SO_SNDBUF %d", rb, sb)
		if rb <= transport.DefaultRcvBuf || rb > autoRcvBufMax {
			t.Errorf("auto-tuned SO_RCVBUF %d", rb)
		}
		if sb <= transport.DefaultSndBuf || sb > autoSndBufMax {
			t.Errorf("auto-tuned SO_SNDBUF %d", sb)
		}
		if in := tcpInfoOf(t, s); in.RcvWscale != 7 {
			t.Errorf("window scale %d, want 7 (for tcp_rmem[2])", in.RcvWscale)
		}
		if tuned > fixed/2 {
			t.Errorf("auto-tuned transfer took %v, fixed buffers %v", tuned, fixed)
		}

		time.Sleep(2 * ringIdle)
		synctest.Wait()
		for _, ep := range []*endpoint{c, s} {
			ep.mu.Lock()
			held, warm := len(ep.rcv.b)+len(ep.snd.b), ep.warm != nil
			ep.mu.Unlock()
			if held != 0 || warm {
				t.Errorf("idle for %v: %d ring bytes held, warm state %v", 2*ringIdle, held, warm)
			}
		}
	})
}
