package socket

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/socket/internal/fake"
	"github.com/stackbox/stackbox/pkg/waiter"
)

func TestPoll(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	to, _ := a.GetSockName()
	fds := []PollFd{{Socket: a, Events: waiter.EventIn}, {Socket: nil, Events: waiter.EventIn}}
	start := time.Now()
	if n, err := Poll(fds, 30*time.Millisecond); n != 0 || err != nil {
		t.Fatalf("poll with nothing ready = %d, %v", n, err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Error("poll returned before its timeout")
	}
	if n, _ := Poll(fds, 0); n != 0 {
		t.Errorf("poll(0) = %d", n)
	}
	// A datagram arriving wakes a poll waiting forever.
	res := async(func() error {
		n, err := Poll(fds, -1)
		if err == nil && (n != 1 || fds[0].Revents != waiter.EventIn) {
			return errors.New("wrong revents")
		}
		return err
	})
	stillBlocked(t, res)
	b.SendTo([]byte("x"), 0, to)
	if err := await(t, res); err != nil {
		t.Fatalf("poll: %v (revents %#x)", err, fds[0].Revents)
	}
	// POLLRDNORM / POLLWRNORM, and POLLOUT on a writable socket.
	fds = []PollFd{{Socket: a, Events: waiter.EventRdNorm | waiter.EventOut}}
	if n, _ := Poll(fds, 0); n != 1 || fds[0].Revents != waiter.EventRdNorm|waiter.EventOut {
		t.Errorf("revents = %#x, want RDNORM|OUT", fds[0].Revents)
	}
	// A closed socket is POLLNVAL.
	b.Close()
	fds = []PollFd{{Socket: b, Events: waiter.EventIn}}
	if n, _ := Poll(fds, 0); n != 1 || fds[0].Revents != PollNVal {
		t.Errorf("closed socket: revents %#x, want POLLNVAL", fds[0].Revents)
	}
}

func waitN(t *testing.T, e *Epoll, max int, timeout time.Duration) []EpollEvent {
	t.Helper()
	ev := make([]EpollEvent, max)
	n, err := e.Wait(ev, timeout)
	if err != nil {
		t.Fatalf("epoll wait: %v", err)
	}
	return ev[:n]
}

func TestEpollLevelTriggered(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	to, _ := a.GetSockName()
	e := l.EpollCreate()
	defer e.Close()
	if err := e.Ctl(EPOLL_CTL_ADD, a, EpollEvent{Events: EPOLLIN, Data: 42}); err != nil {
		t.Fatal(err)
	}
	if err := e.Ctl(EPOLL_CTL_ADD, a, EpollEvent{Events: EPOLLIN}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second ADD: %v, want EEXIST", err)
	}
	if err := e.Ctl(EPOLL_CTL_MOD, b, EpollEvent{Events: EPOLLIN}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("MOD of an unwatched socket: %v, want ENOENT", err)
	}
	if err := e.Ctl(EPOLL_CTL_DEL, b, EpollEvent{}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("DEL of an unwatched socket: %v, want ENOENT", err)
	}
	if err := e.Ctl(99, a, EpollEvent{}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad op: %v, want EINVAL", err)
	}
	if _, err := e.Wait(nil, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("wait with no room: %v, want EINVAL", err)
	}
	if ev := waitN(t, e, 8, 20*time.Millisecond); len(ev) != 0 {
		t.Fatalf("nothing sent, got %v", ev)
	}
	b.SendTo([]byte("1"), 0, to)
	b.SendTo([]byte("2"), 0, to)
	// Level-triggered: reported until drained.
	for i := 0; i < 3; i++ {
		ev := waitN(t, e, 8, testWait)
		if len(ev) != 1 || ev[0].Data != 42 || ev[0].Events != EPOLLIN {
			t.Fatalf("wait %d: %v", i, ev)
		}
	}
	a.Recv(make([]byte, 10), 0)
	if ev := waitN(t, e, 8, 0); len(ev) != 1 {
		t.Fatalf("one datagram still queued, got %v", ev)
	}
	a.Recv(make([]byte, 10), 0)
	if ev := waitN(t, e, 8, 0); len(ev) != 0 {
		t.Fatalf("drained, got %v", ev)
	}
	// MOD to EPOLLOUT: writable now, reported at once.
	if err := e.Ctl(EPOLL_CTL_MOD, a, EpollEvent{Events: EPOLLOUT, Data: 7}); err != nil {
		t.Fatal(err)
	}
	if ev := waitN(t, e, 8, 0); len(ev) != 1 || ev[0].Events != EPOLLOUT || ev[0].Data != 7 {
		t.Fatalf("after MOD to EPOLLOUT: %v", ev)
	}
	if err := e.Ctl(EPOLL_CTL_DEL, a, EpollEvent{}); err != nil {
		t.Fatal(err)
	}
	if ev := waitN(t, e, 8, 0); len(ev) != 0 {
		t.Fatalf("after DEL: %v", ev)
	}
	if a.Endpoint().Queue().Len() != 0 {
		t.Error("DEL left a waiter entry on the socket's queue")
	}
}

func TestEpollEdgeTriggeredAndOneshot(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	c, _ := boundPair(t, l)
	toA, _ := a.GetSockName()
	toC, _ := c.GetSockName()
	e := l.EpollCreate()
	defer e.Close()
	e.Ctl(EPOLL_CTL_ADD, a, EpollEvent{Events: EPOLLIN | EPOLLET, Data: 1})
	e.Ctl(EPOLL_CTL_ADD, c, EpollEvent{Events: EPOLLIN | EPOLLONESHOT, Data: 2})

	b.SendTo([]byte("1"), 0, toA)
	if ev := waitN(t, e, 8, testWait); len(ev) != 1 || ev[0].Data != 1 {
		t.Fatalf("ET first edge: %v", ev)
	}
	// Not drained, but no new edge: not reported again.
	if ev := waitN(t, e, 8, 20*time.Millisecond); len(ev) != 0 {
		t.Fatalf("ET without a new edge: %v", ev)
	}
	// A new datagram is a new edge.
	b.SendTo([]byte("2"), 0, toA)
	if ev := waitN(t, e, 8, testWait); len(ev) != 1 || ev[0].Data != 1 {
		t.Fatalf("ET second edge: %v", ev)
	}

	// ONESHOT: reported once, then disarmed until MOD.
	b.SendTo([]byte("x"), 0, toC)
	if ev := waitN(t, e, 8, testWait); len(ev) != 1 || ev[0].Data != 2 {
		t.Fatalf("oneshot: %v", ev)
	}
	b.SendTo([]byte("y"), 0, toC)
	if ev := waitN(t, e, 8, 20*time.Millisecond); len(ev) != 0 {
		t.Fatalf("disarmed oneshot reported: %v", ev)
	}
	if err := e.Ctl(EPOLL_CTL_MOD, c, EpollEvent{Events: EPOLLIN | EPOLLONESHOT, Data: 3}); err != nil {
		t.Fatal(err)
	}
	if ev := waitN(t, e, 8, testWait); len(ev) != 1 || ev[0].Data != 3 {
		t.Fatalf("re-armed oneshot: %v", ev)
	}
}

func TestEpollRDHUPAndClose(t *testing.T) {
	l, _ := newTestLayer(t)
	c, s, _ := streamPair(t, l, 80)
	e := l.EpollCreate()
	if err := e.Ctl(EPOLL_CTL_ADD, s, EpollEvent{Events: EPOLLIN | EPOLLRDHUP, Data: 5}); err != nil {
		t.Fatal(err)
	}
	got := async(func() error {
		ev := make([]EpollEvent, 4)
		n, err := e.Wait(ev, -1)
		if err == nil && (n != 1 || ev[0].Events&EPOLLRDHUP == 0 || ev[0].Events&EPOLLIN == 0) {
			return errors.New("want EPOLLIN|EPOLLRDHUP")
		}
		return err
	})
	stillBlocked(t, got)
	c.Shutdown(syscall.SHUT_WR)
	if err := await(t, got); err != nil {
		t.Fatal(err)
	}
	// A closed socket leaves the set.
	s.Close()
	if e.Len() != 0 {
		t.Errorf("closed socket still watched (%d)", e.Len())
	}
	if err := e.Ctl(EPOLL_CTL_ADD, s, EpollEvent{Events: EPOLLIN}); !errors.Is(err, syscall.EBADF) {
		t.Errorf("ADD of a closed socket: %v, want EBADF", err)
	}
	// Closing the instance wakes a blocked Wait.
	u := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	e.Ctl(EPOLL_CTL_ADD, u, EpollEvent{Events: EPOLLPRI})
	wait := async(func() error { _, err := e.Wait(make([]EpollEvent, 1), -1); return err })
	stillBlocked(t, wait)
	e.Close()
	if err := await(t, wait); !errors.Is(err, syscall.EBADF) {
		t.Errorf("wait on a closed epoll: %v, want EBADF", err)
	}
	if u.Endpoint().Queue().Len() != 0 {
		t.Error("epoll close left an entry on the socket's queue")
	}
}

// More ready sockets than room: Wait reports in batches and every ready
// socket is reported (fairness of the ready list).
func TestEpollBatches(t *testing.T) {
	l, _ := newTestLayer(t)
	e := l.EpollCreate()
	defer e.Close()
	src := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	const n = 20
	for i := 0; i < n; i++ {
		s := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
		s.Bind(lo4(0))
		e.Ctl(EPOLL_CTL_ADD, s, EpollEvent{Events: EPOLLIN | EPOLLET, Data: uint64(i)})
		to, _ := s.GetSockName()
		src.SendTo([]byte("x"), 0, to)
	}
	seen := map[uint64]bool{}
	for len(seen) < n {
		ev := waitN(t, e, 3, testWait)
		if len(ev) == 0 || len(ev) > 3 {
			t.Fatalf("batch of %d", len(ev))
		}
		for _, x := range ev {
			if seen[x.Data] {
				t.Fatalf("socket %d reported twice under EPOLLET", x.Data)
			}
			seen[x.Data] = true
		}
	}
}

// Wait looks only at sockets that had an event: with 2,000 watched and 3
// ready, it asks about the 3 (plus the ones it keeps level-triggered),
// never the rest.
func TestEpollWaitDoesNotScan(t *testing.T) {
	l, _ := newTestLayer(t)
	e := l.EpollCreate()
	defer e.Close()
	src := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	const total = 2000
	socks := make([]*Socket, total)
	for i := range socks {
		socks[i] = mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
		socks[i].Bind(lo4(0))
		e.Ctl(EPOLL_CTL_ADD, socks[i], EpollEvent{Events: EPOLLIN, Data: uint64(i)})
	}
	calls := func() (n int64) {
		for _, s := range socks {
			n += s.Endpoint().(*fake.Dgram).ReadinessCalls()
		}
		return n
	}
	before := calls()
	for _, i := range []int{5, 500, 1999} {
		to, _ := socks[i].GetSockName()
		src.SendTo([]byte("x"), 0, to)
	}
	ev := waitN(t, e, 16, testWait)
	for len(ev) < 3 {
		more := waitN(t, e, 16, testWait)
		if len(more) == 0 {
			break
		}
		ev = more
	}
	if len(ev) != 3 {
		t.Fatalf("got %v, want the 3 sockets sent to", ev)
	}
	if n := calls() - before; n > 3*4 {
		t.Errorf("Wait made %d readiness calls for 3 ready sockets of %d", n, total)
	}
}

// Two goroutines waiting with room for one event each share two ready
// edge-triggered sockets: the one that wakes first leaves the other
// socket on the list and wakes the second.
func TestEpollConcurrentWaiters(t *testing.T) {
	l, _ := newTestLayer(t)
	e := l.EpollCreate()
	defer e.Close()
	a, src := boundPair(t, l)
	b := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	b.Bind(lo4(0))
	e.Ctl(EPOLL_CTL_ADD, a, EpollEvent{Events: EPOLLIN | EPOLLET, Data: 1})
	e.Ctl(EPOLL_CTL_ADD, b, EpollEvent{Events: EPOLLIN | EPOLLET, Data: 2})
	got := make(chan uint64, 2)
	for i := 0; i < 2; i++ {
		go func() {
			ev := make([]EpollEvent, 1)
			if n, err := e.Wait(ev, testWait); err == nil && n == 1 {
				got <- ev[0].Data
				return
			}
			got <- 0
		}()
	}
	time.Sleep(20 * time.Millisecond) // both blocked
	for _, s := range []*Socket{a, b} {
		to, _ := s.GetSockName()
		src.SendTo([]byte("x"), 0, to)
	}
	x, y := <-got, <-got
	if x+y != 3 || x == y {
		t.Errorf("waiters got %d and %d, want 1 and 2", x, y)
	}
}
