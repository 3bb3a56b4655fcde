// Package waiter is readiness notification for endpoints: an endpoint
// owns a Queue and calls Notify when it becomes readable, writable or
// fails; whoever waits (a blocking socket call, poll, an epoll instance, a
// Go adapter) registers an Entry whose callback runs on Notify.
//
// Callbacks run on the notifier's goroutine (often the packet path) with
// the queue's lock held: they must not block and must not call back into
// the endpoint. Waking a channel (NewChannelEntry) or appending to a
// ready list is what they are for. This keeps waiting free of a goroutine
// per endpoint, which is what lets epoll watch 10,000 sockets.
//
// Lock order: Queue.mu is a leaf; endpoints call Notify without holding
// their own locks.
package waiter

import "sync"

// EventMask is a set of readiness events, with Linux's poll(2) bit values
// so the socket layer can hand them out unchanged.
type EventMask uint32

const (
	EventIn     EventMask = 0x001  // POLLIN: data (or a connection) to read
	EventPri    EventMask = 0x002  // POLLPRI: urgent data
	EventOut    EventMask = 0x004  // POLLOUT: room to write
	EventErr    EventMask = 0x008  // POLLERR: a pending error (SO_ERROR)
	EventHUp    EventMask = 0x010  // POLLHUP: both directions shut down
	EventRdNorm EventMask = 0x040  // POLLRDNORM (reported with EventIn)
	EventWrNorm EventMask = 0x100  // POLLWRNORM (reported with EventOut)
	EventRdHUp  EventMask = 0x2000 // POLLRDHUP: the peer shut down writing

	// EventAll is every event a waiter can ask for.
	EventAll = EventIn | EventPri | EventOut | EventErr | EventHUp | EventRdNorm | EventWrNorm | EventRdHUp
	// alwaysOn are reported whether asked for or not, as poll(2) does.
	alwaysOn = EventErr | EventHUp
)

// Normalize adds the events poll(2) reports unasked (POLLERR, POLLHUP)
// to a requested mask.
func Normalize(mask EventMask) EventMask { return mask | alwaysOn }

// Callback is notified with the events that fired.
type Callback func(ready EventMask)

// Entry is one waiter on a Queue.
type Entry struct {
	mask EventMask
	cb   Callback
	q    *Queue
	prev *Entry
	next *Entry
}

// NewEntry returns an entry that calls cb for events in mask (plus
// EventErr and EventHUp, which always wake).
func NewEntry(mask EventMask, cb Callback) *Entry {
	return &Entry{mask: Normalize(mask), cb: cb}
}

// NewChannelEntry returns an entry that makes a non-blocking send on a
// one-slot channel when any event in mask fires; the channel is what a
// blocking call selects on.
func NewChannelEntry(mask EventMask) (*Entry, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return NewEntry(mask, func(EventMask) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}), ch
}

// SetMask changes the events an entry wakes for.
func (e *Entry) SetMask(mask EventMask) {
	if e.q != nil {
		e.q.mu.Lock()
		defer e.q.mu.Unlock()
	}
	e.mask = Normalize(mask)
}

// Queue is the set of entries waiting on one endpoint. The zero value is
// ready to use.
type Queue struct {
	mu   sync.Mutex
	head *Entry
	n    int
}

// Register adds e; an entry is on at most one queue at a time.
func (q *Queue) Register(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.q != nil {
		panic("waiter: entry registered twice")
	}
	e.q = q
	e.prev = nil
	e.next = q.head
	if q.head != nil {
		q.head.prev = e
	}
	q.head = e
	q.n++
}

// Unregister removes e; removing an entry that is not registered here
// does nothing.
func (q *Queue) Unregister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.q != q {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.q, e.prev, e.next = nil, nil, nil
	q.n--
}

// Len is the number of registered entries.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Notify wakes every entry interested in any of the events in ready.
// Call it after changing state, without holding the endpoint's lock.
func (q *Queue) Notify(ready EventMask) {
	if ready == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for e := q.head; e != nil; e = e.next {
		if m := ready & e.mask; m != 0 {
			e.cb(m)
		}
	}
}
