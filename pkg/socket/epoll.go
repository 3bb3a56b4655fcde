package socket

import (
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/waiter"
)

// epoll_ctl operations and event flags, with Linux's values.
const (
	EPOLL_CTL_ADD = 1
	EPOLL_CTL_DEL = 2
	EPOLL_CTL_MOD = 3

	EPOLLIN        = uint32(waiter.EventIn)
	EPOLLPRI       = uint32(waiter.EventPri)
	EPOLLOUT       = uint32(waiter.EventOut)
	EPOLLERR       = uint32(waiter.EventErr)
	EPOLLHUP       = uint32(waiter.EventHUp)
	EPOLLRDNORM    = uint32(waiter.EventRdNorm)
	EPOLLWRNORM    = uint32(waiter.EventWrNorm)
	EPOLLRDHUP     = uint32(waiter.EventRdHUp)
	EPOLLEXCLUSIVE = uint32(1) << 28 // accepted; every waiter wakes
	EPOLLWAKEUP    = uint32(1) << 29 // accepted; nothing suspends here
	EPOLLONESHOT   = uint32(1) << 30
	EPOLLET        = uint32(1) << 31
)

// EpollEvent is struct epoll_event.
type EpollEvent struct {
	Events uint32
	Data   uint64
}

// Epoll is an epoll instance. The waiter callback of each watched socket
// puts it on the ready list; Wait looks only at the ready list, checks
// each socket's readiness again (so a level-triggered socket that was
// drained is dropped) and keeps level-triggered ones that are still
// ready on the list for the next Wait, as Linux's ep_send_events does.
type Epoll struct {
	l *Layer

	mu      sync.Mutex // guards items and closed; held around endpoint Readiness calls
	items   map[*Socket]*epItem
	closed  bool
	closeCh chan struct{}

	// readyMu guards the ready list and the items' link and armed state.
	// It is a leaf: the waiter callbacks take it on the packet path.
	readyMu    sync.Mutex
	head, tail *epItem
	nready     int
	wake       chan struct{} // one slot: "the ready list grew"
}

type epItem struct {
	e      *Epoll
	s      *Socket
	events uint32 // guarded by Epoll.mu
	data   uint64 // guarded by Epoll.mu
	entry  *waiter.Entry

	// guarded by Epoll.readyMu
	prev, next *epItem
	linked     bool
	disarmed   bool // EPOLLONESHOT reported; MOD re-arms
}

// EpollCreate is epoll_create1(2).
func (l *Layer) EpollCreate() *Epoll {
	return &Epoll{
		l:       l,
		items:   make(map[*Socket]*epItem),
		closeCh: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
}

func eventMask(ev uint32) waiter.EventMask { return askMask(waiter.EventMask(ev)) }

// notify is the waiter callback: it runs under the socket queue's lock,
// often on the packet path, so it only links the item and signals.
func (it *epItem) notify(waiter.EventMask) {
	e := it.e
	e.readyMu.Lock()
	if !it.disarmed && !it.linked {
		e.pushLocked(it)
	}
	e.readyMu.Unlock()
	e.signal()
}

func (e *Epoll) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Epoll) pushLocked(it *epItem) {
	it.linked = true
	it.next, it.prev = nil, e.tail
	if e.tail != nil {
		e.tail.next = it
	} else {
		e.head = it
	}
	e.tail = it
	e.nready++
}

func (e *Epoll) unlinkLocked(it *epItem) {
	if !it.linked {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		e.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		e.tail = it.prev
	}
	it.prev, it.next, it.linked = nil, nil, false
	e.nready--
}

// Ctl is epoll_ctl(2): EPOLL_CTL_ADD (EEXIST if watched), EPOLL_CTL_MOD
// and EPOLL_CTL_DEL (ENOENT if not), EBADF for a closed socket or
// instance. ADD and MOD report readiness that already holds.
func (e *Epoll) Ctl(op int, s *Socket, ev EpollEvent) error {
	if s == nil {
		return syscall.EBADF
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || s.closed.Load() {
		return syscall.EBADF
	}
	it := e.items[s]
	switch op {
	case EPOLL_CTL_ADD:
		if it != nil {
			return syscall.EEXIST
		}
		it = &epItem{e: e, s: s, events: ev.Events, data: ev.Data}
		it.entry = waiter.NewEntry(eventMask(ev.Events), it.notify)
		s.epMu.Lock()
		if s.closed.Load() { // lost a race with Close, which will not see us
			s.epMu.Unlock()
			return syscall.EBADF
		}
		if s.watchers == nil {
			s.watchers = make(map[*Epoll]struct{})
		}
		s.watchers[e] = struct{}{}
		s.epMu.Unlock()
		e.items[s] = it
		s.ep.Queue().Register(it.entry)
	case EPOLL_CTL_MOD:
		if it == nil {
			return syscall.ENOENT
		}
		it.events, it.data = ev.Events, ev.Data
		it.entry.SetMask(eventMask(ev.Events))
		e.readyMu.Lock()
		it.disarmed = false
		e.readyMu.Unlock()
	case EPOLL_CTL_DEL:
		if it == nil {
			return syscall.ENOENT
		}
		e.removeLocked(it)
		return nil
	default:
		return syscall.EINVAL
	}
	if m := eventMask(it.events); reportMask(m, s.ep.Readiness(m)) != 0 {
		e.readyMu.Lock()
		if !it.linked {
			e.pushLocked(it)
		}
		e.readyMu.Unlock()
		e.signal()
	}
	return nil
}

func (e *Epoll) removeLocked(it *epItem) {
	delete(e.items, it.s)
	it.s.ep.Queue().Unregister(it.entry)
	e.readyMu.Lock()
	e.unlinkLocked(it)
	e.readyMu.Unlock()
	it.s.epMu.Lock()
	delete(it.s.watchers, e)
	it.s.epMu.Unlock()
}

// forget drops s (it is being closed).
func (e *Epoll) forget(s *Socket) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if it := e.items[s]; it != nil {
		e.removeLocked(it)
	}
}

// Len is the number of watched sockets.
func (e *Epoll) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.items)
}

// Wait is epoll_wait(2): it fills events with up to len(events) ready
// sockets and returns how many, waiting up to timeout for one (negative:
// forever; zero: not at all). It returns EBADF when the instance is
// closed, EINVAL for an empty events.
func (e *Epoll) Wait(events []EpollEvent, timeout time.Duration) (int, error) {
	if len(events) == 0 {
		return 0, syscall.EINVAL
	}
	var expired <-chan time.Time
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return 0, syscall.EBADF
		}
		n := e.harvestLocked(events)
		e.mu.Unlock()
		if n > 0 || timeout == 0 {
			return n, nil
		}
		if expired == nil && timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-e.wake:
		case <-expired:
			return 0, nil
		case <-e.closeCh:
			return 0, syscall.EBADF
		}
	}
}

// harvestLocked takes items off the ready list, at most as many as were
// on it when it started (so items the callbacks add meanwhile wait for
// the next call instead of making this one loop).
func (e *Epoll) harvestLocked(events []EpollEvent) int {
	e.readyMu.Lock()
	budget := e.nready
	e.readyMu.Unlock()
	n := 0
	var again []*epItem // level-triggered items that reported: recheck next time
	for ; budget > 0 && n < len(events); budget-- {
		e.readyMu.Lock()
		it := e.head
		if it != nil {
			e.unlinkLocked(it)
		}
		e.readyMu.Unlock()
		if it == nil {
			break
		}
		m := eventMask(it.events)
		r := reportMask(m, it.s.ep.Readiness(m))
		if r == 0 {
			continue // drained since the event: nothing to report
		}
		events[n] = EpollEvent{Events: uint32(r), Data: it.data}
		n++
		switch {
		case it.events&EPOLLONESHOT != 0:
			e.readyMu.Lock()
			it.disarmed = true
			e.readyMu.Unlock()
		case it.events&EPOLLET != 0:
			// The next event links it again.
		default:
			again = append(again, it)
		}
	}
	e.readyMu.Lock()
	for _, it := range again {
		if !it.linked && !it.disarmed {
			e.pushLocked(it)
		}
	}
	more := e.head != nil
	e.readyMu.Unlock()
	if more {
		e.signal() // another waiter may take what this one left
	}
	return n
}

// Close closes the instance: its watches go, and blocked Waits return
// EBADF.
func (e *Epoll) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return syscall.EBADF
	}
	e.closed = true
	for _, it := range e.items {
		e.removeLocked(it)
	}
	close(e.closeCh)
	return nil
}
