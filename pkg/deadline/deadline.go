// Package deadline is one direction's I/O deadline for calls that block
// outside the Go runtime's poller (our sockets, netd's datagram queues):
// the SetReadDeadline / SetWriteDeadline semantics of net.Conn. It holds
// one mutex per Deadline, never across a callback.
package deadline

import (
	"os"
	"sync"
	"time"
)

// ErrExceeded is what a call returns when its deadline passes: os's, so
// errors.Is(err, os.ErrDeadlineExceeded) holds and it is a net.Error
// whose Timeout is true.
var ErrExceeded = os.ErrDeadlineExceeded

// Deadline is one direction's deadline: a channel that is closed when it
// passes, which blocked calls select on. A timer (time.AfterFunc: no
// goroutine until it fires) closes it. Moving a deadline that has not
// passed keeps the channel, so calls already blocked see the new time;
// setting one after it passed makes a fresh channel for the calls to come.
type Deadline struct {
	mu    sync.Mutex
	ch    chan struct{}
	timer *time.Timer
	gen   uint64 // a timer that fires after being superseded does nothing
	shut  bool   // ch is closed
}

// New returns a Deadline that is not set.
func New() *Deadline { return &Deadline{ch: make(chan struct{})} }

// Set moves the deadline to t; the zero time clears it.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		if d.shut {
			d.ch, d.shut = make(chan struct{}), false
		}
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		if !d.shut {
			close(d.ch)
			d.shut = true
		}
		return
	}
	if d.shut {
		d.ch, d.shut = make(chan struct{}), false
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.shut {
			close(d.ch)
			d.shut = true
		}
	})
}

// Done returns the channel closed when the deadline passes, and whether
// it already has.
func (d *Deadline) Done() (<-chan struct{}, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch, d.shut
}

// Stop releases the timer (on close).
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
