// Package loopback is the loopback link: every frame written comes back as
// a received frame, like Linux's lo. It needs no kernel device.
//
// A written frame is copied (the caller keeps its buffer) into a bounded
// queue and delivered later from the endpoint's own goroutine, never on the
// writer's: the stack may hold locks while it writes, and delivering
// synchronously would re-enter it under them. When the queue is full the
// frame is dropped and counted as RxDropped, as Linux counts a full backlog
// in netif_rx.
//
// Locks: none besides the link.Stats atomics and a closing RWMutex that
// WritePackets holds shared only while it queues (never while delivering).
package loopback

import (
	"sync"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Defaults.
const (
	// DefaultMTU is Linux lo's MTU.
	DefaultMTU = 65536
	// DefaultQueueLen is how many frames may wait for delivery (Linux's
	// netdev_max_backlog default is 1000).
	DefaultQueueLen = 1000
)

// Config configures a loopback endpoint; zero fields take the defaults.
type Config struct {
	MTU      int
	QueueLen int
}

// Endpoint is a loopback link. It implements link.Endpoint and link.Counter.
type Endpoint struct {
	link.Base // "loopback", MTU, the zero MAC (as Linux lo), CapLoopback, counters

	queue chan []byte
	done  chan struct{}
	wg    sync.WaitGroup

	// mu guards closed; WritePackets holds it shared while queueing so that
	// nothing is queued after Close has returned.
	mu     sync.RWMutex
	closed bool
}

// New starts a loopback endpoint and its delivery goroutine.
func New(cfg Config) *Endpoint {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	e := &Endpoint{
		queue: make(chan []byte, cfg.QueueLen),
		done:  make(chan struct{}),
	}
	e.Init("loopback", cfg.MTU, wire.MAC{}, link.CapLoopback)
	e.wg.Add(1)
	go e.deliver()
	return e
}

func (e *Endpoint) deliver() {
	defer e.wg.Done()
	for {
		select {
		case <-e.done:
			return
		case f := <-e.queue:
			e.Deliver(f)
		}
	}
}

// WritePackets copies each frame into the delivery queue.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return 0, link.ErrClosed
	}
	for i, f := range frames {
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
		e.CountSent(len(f))
		select {
		case e.queue <- append([]byte(nil), f...):
		default:
			e.Counters.RxDropped.Add(1)
		}
	}
	return len(frames), nil
}

// Close stops delivery and waits for the delivery goroutine to end; frames
// still queued are discarded. It must not be called from DeliverFrame.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.done)
	e.wg.Wait()
	return nil
}
