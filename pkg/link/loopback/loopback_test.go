package loopback

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stackbox/stackbox/pkg/link"
)

var _ link.Endpoint = (*Endpoint)(nil)
var _ link.Counter = (*Endpoint)(nil)

func frame(n int, tag byte) []byte {
	f := make([]byte, n)
	f[12], f[13] = 0x08, 0x00
	for i := 14; i < n; i++ {
		f[i] = tag
	}
	return f
}

func TestLoopbackDeliversCopiesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(Config{})
		defer e.Close()
		if e.MTU() != DefaultMTU || !e.MAC().IsZero() || e.Capabilities()&link.CapLoopback == 0 {
			t.Fatalf("mtu %d mac %v caps %v", e.MTU(), e.MAC(), e.Capabilities())
		}
		var got [][]byte
		e.Attach(link.DispatcherFunc(func(f []byte) { got = append(got, f) }))
		frames := [][]byte{frame(60, 1), frame(100, 2), frame(14+DefaultMTU, 3)}
		if n, err := e.WritePackets(frames); n != 3 || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
		// Delivery is asynchronous: nothing may have arrived on this goroutine.
		want := [][]byte{bytes.Clone(frames[0]), bytes.Clone(frames[1]), bytes.Clone(frames[2])}
		for _, f := range frames {
			f[20] = 0xee // the caller keeps its buffers; the endpoint copied them
		}
		synctest.Wait()
		if len(got) != 3 {
			t.Fatalf("got %d frames, want 3", len(got))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs (order or copy)", i)
			}
		}
		s := e.Stats()
		if s.TxFrames != 3 || s.RxFrames != 3 || s.RxBytes != uint64(60+100+14+DefaultMTU) {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestLoopbackRejectsBadFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(Config{MTU: 1500})
		defer e.Close()
		n, err := e.WritePackets([][]byte{frame(60, 1), frame(14+1501, 2), frame(60, 3)})
		if n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
			t.Fatalf("oversized: %d, %v", n, err)
		}
		n, err = e.WritePackets([][]byte{make([]byte, 13)})
		if n != 0 || !errors.Is(err, link.ErrFrameShort) {
			t.Fatalf("runt: %d, %v", n, err)
		}
		// A VLAN-tagged frame may be 4 bytes longer.
		tagged := frame(18+1500, 0)
		tagged[12], tagged[13] = 0x81, 0x00
		if n, err := e.WritePackets([][]byte{tagged}); n != 1 || err != nil {
			t.Fatalf("tagged: %d, %v", n, err)
		}
	})
}

func TestLoopbackQueueFullAndNoDispatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(Config{QueueLen: 4})
		defer e.Close()
		// No dispatcher: frames are dropped and counted.
		e.WritePackets([][]byte{frame(60, 1), frame(60, 2)})
		synctest.Wait()
		if s := e.Stats(); s.RxDropped != 2 || s.RxFrames != 0 {
			t.Fatalf("no dispatcher: %+v", s)
		}
		// A dispatcher that blocks holds one frame; the queue holds 4 more.
		release := make(chan struct{})
		delivered := 0
		e.Attach(link.DispatcherFunc(func([]byte) { <-release; delivered++ }))
		batch := make([][]byte, 10)
		for i := range batch {
			batch[i] = frame(60, byte(i))
		}
		if n, err := e.WritePackets(batch[:1]); n != 1 || err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the goroutine is now blocked in the dispatcher
		if n, err := e.WritePackets(batch[1:]); n != 9 || err != nil {
			t.Fatalf("WritePackets = %d, %v (a full queue drops, it does not fail)", n, err)
		}
		if s := e.Stats(); s.RxDropped != 2+5 {
			t.Fatalf("queue-full drops %d, want 7", s.RxDropped)
		}
		close(release)
		synctest.Wait()
		if delivered != 5 {
			t.Fatalf("delivered %d, want 5", delivered)
		}
	})
}

func TestLoopbackClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(Config{})
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := e.WritePackets([][]byte{frame(60, 0)}); !errors.Is(err, link.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		// synctest.Test fails if the delivery goroutine outlived Close.
	})
}
