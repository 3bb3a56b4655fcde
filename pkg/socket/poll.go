package socket

import (
	"time"

	"github.com/stackbox/stackbox/pkg/waiter"
)

// PollNVal is POLLNVAL: the socket is closed.
const PollNVal waiter.EventMask = 0x020

// PollFd is struct pollfd with a socket instead of a descriptor; a nil
// Socket is skipped (a negative fd to poll(2)).
type PollFd struct {
	Socket  *Socket
	Events  waiter.EventMask
	Revents waiter.EventMask
}

// askMask is what to ask an endpoint for so that the *NORM events a
// caller wants are answered: POLLRDNORM is readable, POLLWRNORM writable.
func askMask(m waiter.EventMask) waiter.EventMask {
	if m&waiter.EventRdNorm != 0 {
		m |= waiter.EventIn
	}
	if m&waiter.EventWrNorm != 0 {
		m |= waiter.EventOut
	}
	return m & waiter.EventAll
}

// reportMask is the part of an endpoint's readiness r that answers a
// request for m (POLLERR and POLLHUP always, as poll(2)).
func reportMask(m, r waiter.EventMask) waiter.EventMask {
	if r&waiter.EventIn != 0 {
		r |= waiter.EventRdNorm
	}
	if r&waiter.EventOut != 0 {
		r |= waiter.EventWrNorm
	}
	return r & waiter.Normalize(m)
}

// Poll is poll(2): it fills Revents and returns how many entries have
// events, waiting up to timeout for one (a negative timeout waits
// forever, zero does not wait). Waiting registers one waiter entry per
// socket that all wake the same channel, for the duration of the call.
func Poll(fds []PollFd, timeout time.Duration) (int, error) {
	scan := func() int {
		n := 0
		for i := range fds {
			f := &fds[i]
			f.Revents = 0
			if f.Socket == nil {
				continue
			}
			if f.Socket.closed.Load() {
				f.Revents = PollNVal
			} else {
				f.Revents = reportMask(f.Events, f.Socket.ep.Readiness(askMask(f.Events)))
			}
			if f.Revents != 0 {
				n++
			}
		}
		return n
	}
	if n := scan(); n > 0 || timeout == 0 {
		return n, nil
	}
	wake := make(chan struct{}, 1)
	signal := func(waiter.EventMask) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	type reg struct {
		q *waiter.Queue
		e *waiter.Entry
	}
	regs := make([]reg, 0, len(fds))
	defer func() {
		for _, r := range regs {
			r.q.Unregister(r.e)
		}
	}()
	for _, f := range fds {
		if f.Socket == nil {
			continue
		}
		e := waiter.NewEntry(askMask(f.Events), signal)
		q := f.Socket.ep.Queue()
		q.Register(e)
		regs = append(regs, reg{q, e})
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		if n := scan(); n > 0 {
			return n, nil
		}
		select {
		case <-wake:
		case <-expired:
			return 0, nil
		}
	}
}
