package sniffer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/loopback"
	"github.com/stackbox/stackbox/pkg/pcap"
)

var _ link.Endpoint = (*Endpoint)(nil)
var _ link.Counter = (*Endpoint)(nil)

func frame(tag byte, n int) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = tag
	}
	f[0] = 0x02 // unicast destination
	return f
}

func readAll(t *testing.T, r io.Reader) [][]byte {
	t.Helper()
	pr, err := pcap.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		rec, err := pr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Data)
	}
}

func TestCapturesBothDirectionsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		w, err := pcap.NewWriter(&buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		lo := loopback.New(loopback.Config{MTU: 1500})
		e := New(lo, w)
		defer e.Close()
		var mu sync.Mutex
		var got [][]byte
		e.Attach(link.DispatcherFunc(func(f []byte) {
			mu.Lock()
			got = append(got, f)
			mu.Unlock()
		}))
		a, b := frame(1, 60), frame(2, 100)
		if n, err := e.WritePackets([][]byte{a}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
		synctest.Wait() // a comes back before b is written
		if n, err := e.WritePackets([][]byte{b}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
		synctest.Wait()
		if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
			t.Fatal("frames not passed on unchanged")
		}
		recs := readAll(t, &buf)
		want := [][]byte{a, a, b, b} // written, received, written, received
		if len(recs) != len(want) {
			t.Fatalf("%d records, want %d", len(recs), len(want))
		}
		for i := range want {
			if !bytes.Equal(recs[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
		if e.CaptureErrors() != 0 || e.CaptureErr() != nil {
			t.Fatal(e.CaptureErr())
		}
		if s := e.Stats(); s.TxFrames != 2 || s.RxFrames != 2 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestRefusedFramesNotCaptured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		w, _ := pcap.NewWriter(&buf, 0)
		e := New(loopback.New(loopback.Config{MTU: 100}), w)
		n, err := e.WritePackets([][]byte{frame(1, 60), frame(2, 14+101), frame(3, 60)})
		if n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
			t.Fatalf("%d, %v", n, err)
		}
		if _, err := e.WritePackets([][]byte{frame(1, 5)}); !errors.Is(err, link.ErrFrameShort) {
			t.Fatal(err)
		}
		e.Close()
		if recs := readAll(t, &buf); len(recs) != 1 {
			t.Fatalf("%d records, want only the frame that was sent", len(recs))
		}
		if _, err := e.WritePackets([][]byte{frame(1, 60)}); !errors.Is(err, link.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestCaptureErrorsDoNotStopTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := pcap.NewWriter(&failWriter{after: 1}, 0) // header only
		if err != nil {
			t.Fatal(err)
		}
		e := New(loopback.New(loopback.Config{}), w)
		defer e.Close()
		delivered := 0
		e.Attach(link.DispatcherFunc(func([]byte) { delivered++ }))
		if n, err := e.WritePackets([][]byte{frame(1, 60)}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
		synctest.Wait()
		if delivered != 1 || e.CaptureErrors() != 2 || e.CaptureErr() == nil {
			t.Fatalf("delivered %d, capture errors %d", delivered, e.CaptureErrors())
		}
	})
}

func TestNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	e, err := NewFile(loopback.New(loopback.Config{}), path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.WritePackets([][]byte{frame(7, 60)}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if recs := readAll(t, f); len(recs) != 1 || !bytes.Equal(recs[0], frame(7, 60)) {
		t.Fatalf("file holds %d records", len(recs))
	}
	lo := loopback.New(loopback.Config{})
	defer lo.Close() // NewFile leaves inner to the caller when it fails
	if _, err := NewFile(lo, filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Fatal("NewFile in a missing directory succeeded")
	}
}
