package fragment

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// failLog records OnTimeout and OnFail calls.
type failLog struct {
	mu       sync.Mutex
	timeouts []Key
	fails    map[Key]bool // key → timedOut
	calls    int
}

func (l *failLog) config(c Config) Config {
	l.fails = make(map[Key]bool)
	c.OnTimeout = func(x Expired) {
		l.mu.Lock()
		l.timeouts = append(l.timeouts, x.Key)
		l.mu.Unlock()
	}
	c.OnFail = func(k Key, timedOut bool) {
		l.mu.Lock()
		l.fails[k] = timedOut
		l.calls++
		l.mu.Unlock()
	}
	return c
}

// TestOnFailTimeout: a datagram that times out without its first fragment
// goes to OnFail (timedOut), one with it to OnTimeout only; together they
// account for every ReasmTimeout.
func TestOnFailTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l failLog
		r := New(l.config(Config{Timeout: time.Second}))
		defer r.Close()
		hdr := testHeader(20, 1)
		if _, _, err := r.Process(key4(1), Packet{Offset: 8, More: true, Header: hdr, Data: make([]byte, 8)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Process(key4(2), Packet{Offset: 0, More: true, Header: hdr, Data: make([]byte, 8)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		if timedOut, ok := l.fails[key4(1)]; !ok || !timedOut || l.calls != 1 {
			t.Errorf("OnFail calls %d, %v: want one, for key 1, timed out", l.calls, l.fails)
		}
		if len(l.timeouts) != 1 || l.timeouts[0] != key4(2) {
			t.Errorf("OnTimeout for %v, want key 2 only", l.timeouts)
		}
		if s := r.Stats(); s.ReasmTimeout != 2 || s.ReasmFails != 2 {
			t.Errorf("stats %+v, want 2 timeouts", s)
		}
	})
}

// TestOnFailEviction: every datagram evicted to stay within MemoryLimit
// goes to OnFail (not timed out).
func TestOnFailEviction(t *testing.T) {
	var l failLog
	r := New(l.config(Config{MemoryLimit: 8 << 10}))
	defer r.Close()
	hdr := testHeader(20, 1)
	for id := range uint32(100) {
		r.Process(key4(id), Packet{Offset: 0, More: true, Header: hdr, Data: make([]byte, 1000)})
	}
	ev := r.Stats().Evictions
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev == 0 || uint64(l.calls) != ev || len(l.fails) != int(ev) {
		t.Fatalf("%d evictions, %d OnFail calls for %d keys", ev, l.calls, len(l.fails))
	}
	for k, timedOut := range l.fails {
		if timedOut {
			t.Errorf("eviction of %v reported as a timeout", k)
		}
	}
}
