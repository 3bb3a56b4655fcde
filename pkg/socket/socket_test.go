package socket

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/socket/internal/fake"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

const testWait = 5 * time.Second // bound on every wait in these tests

func newTestLayer(t *testing.T) (*Layer, *fake.Net) {
	t.Helper()
	n := fake.NewNet()
	return New(n.Registry()), n
}

func mustSocket(t *testing.T, l *Layer, family, typ int) *Socket {
	t.Helper()
	s, err := l.Socket(family, typ, 0, transport.Cred{})
	if err != nil {
		t.Fatalf("socket(%d, %d): %v", family, typ, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lo4(port int) *syscall.SockaddrInet4 {
	return &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
}

// async runs f and returns a channel with its error; await bounds the wait.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func await(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testWait):
		t.Fatal("call did not return in time")
		return nil
	}
}

// stillBlocked checks that ch has no result yet.
func stillBlocked(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("call returned early: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
}

func boundPair(t *testing.T, l *Layer) (a, b *Socket) {
	t.Helper()
	a = mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	b = mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	if err := a.Bind(lo4(0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(lo4(0)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSocketCreationAndTable(t *testing.T) {
	l, _ := newTestLayer(t)
	s, err := l.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, transport.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Nonblock() {
		t.Error("SOCK_NONBLOCK did not make the socket non-blocking")
	}
	for _, c := range []struct{ name, want int }{
		{syscall.SO_TYPE, syscall.SOCK_DGRAM},
		{syscall.SO_DOMAIN, syscall.AF_INET},
		{syscall.SO_PROTOCOL, syscall.IPPROTO_UDP},
		{syscall.SO_ACCEPTCONN, 0},
	} {
		if v, err := s.GetSockOptInt(syscall.SOL_SOCKET, c.name); err != nil || v != c.want {
			t.Errorf("getsockopt(%d) = %d, %v; want %d", c.name, v, err, c.want)
		}
	}
	if err := s.SetSockOptInt(syscall.SOL_SOCKET, syscall.SO_TYPE, 1); !errors.Is(err, syscall.ENOPROTOOPT) {
		t.Errorf("setsockopt SO_TYPE: %v, want ENOPROTOOPT", err)
	}
	// Options the layer does not own reach the endpoint.
	if err := s.SetSockOptInt(syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_BROADCAST); v != 1 {
		t.Errorf("SO_BROADCAST = %d after setting it", v)
	}
	if _, err := l.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0, transport.Cred{}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("AF_UNIX: %v, want EAFNOSUPPORT", err)
	}
	if _, err := l.Socket(syscall.AF_INET, syscall.SOCK_SEQPACKET, 0, transport.Cred{}); !errors.Is(err, syscall.ESOCKTNOSUPPORT) {
		t.Errorf("SOCK_SEQPACKET: %v, want ESOCKTNOSUPPORT", err)
	}
	if _, err := l.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|0x100000, 0, transport.Cred{}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unknown type flag: %v, want EINVAL", err)
	}

	// Descriptors: small, lowest free reused, Lookup and Sockets agree.
	a := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	b := mustSocket(t, l, syscall.AF_INET6, syscall.SOCK_STREAM)
	if s.FD() != firstFD || a.FD() != firstFD+1 || b.FD() != firstFD+2 {
		t.Fatalf("fds %d %d %d", s.FD(), a.FD(), b.FD())
	}
	if got, ok := l.Lookup(a.FD()); !ok || got != a {
		t.Error("Lookup did not find the socket")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("second close: %v, want EBADF", err)
	}
	if _, ok := l.Lookup(firstFD); ok {
		t.Error("closed socket still in the table")
	}
	c := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	if c.FD() != firstFD {
		t.Errorf("new socket got fd %d, want the lowest free %d", c.FD(), firstFD)
	}
	all := l.Sockets()
	if len(all) != 3 || all[0] != c || all[1] != a || all[2] != b {
		t.Errorf("Sockets() = %v", all)
	}
	if _, err := s.Recv(make([]byte, 1), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("recv on closed socket: %v, want EBADF", err)
	}
}

func TestDatagramBlockingAndNonblocking(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	buf := make([]byte, 100)
	if _, err := a.Recv(buf, syscall.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("MSG_DONTWAIT recv on empty queue: %v, want EAGAIN", err)
	}
	a.SetNonblock(true)
	if _, err := a.Recv(buf, 0); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("non-blocking recv: %v, want EAGAIN", err)
	}
	a.SetNonblock(false)

	var from syscall.Sockaddr
	var n int
	done := async(func() (err error) {
		n, from, err = a.RecvFrom(buf, 0)
		return err
	})
	stillBlocked(t, done)
	to, _ := a.GetSockName()
	if _, err := b.SendTo([]byte("hello"), 0, to); err != nil {
		t.Fatal(err)
	}
	if err := await(t, done); err != nil {
		t.Fatal(err)
	}
	bn, _ := b.GetSockName()
	if string(buf[:n]) != "hello" || from.(*syscall.SockaddrInet4).Port != bn.(*syscall.SockaddrInet4).Port {
		t.Errorf("got %q from %+v, want hello from %+v", buf[:n], from, bn)
	}

	// Connected: send without an address, and AF_UNSPEC (nil) dissolves.
	if err := b.Connect(to); err != nil {
		t.Fatal(err)
	}
	if peer, err := b.GetPeerName(); err != nil || peer.(*syscall.SockaddrInet4).Port != to.(*syscall.SockaddrInet4).Port {
		t.Errorf("getpeername = %+v, %v", peer, err)
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Read(buf); err != nil || n != 1 {
		t.Fatalf("read = %d, %v", n, err)
	}
	if err := b.Connect(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetPeerName(); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("getpeername after AF_UNSPEC connect: %v, want ENOTCONN", err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("write unconnected: %v, want EDESTADDRREQ", err)
	}
}

func TestRecvTimeout(t *testing.T) {
	l, _ := newTestLayer(t)
	a, _ := boundPair(t, l)
	if err := a.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, syscall.Timeval{Usec: 50000}); err != nil {
		t.Fatal(err)
	}
	if v, err := a.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO); err != nil || v != 50*time.Millisecond {
		t.Errorf("SO_RCVTIMEO = %v, %v", v, err)
	}
	start := time.Now()
	_, err := a.Recv(make([]byte, 10), 0)
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("recv with SO_RCVTIMEO: %v, want EAGAIN", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Errorf("timed out after %v, before SO_RCVTIMEO", el)
	}
	if err := a.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, -time.Second); !errors.Is(err, syscall.EDOM) {
		t.Errorf("negative SO_SNDTIMEO: %v, want EDOM", err)
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	l, _ := newTestLayer(t)
	a, _ := boundPair(t, l)
	read := async(func() error { _, err := a.Recv(make([]byte, 10), 0); return err })
	ln := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	if err := ln.Bind(lo4(8080)); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(5); err != nil {
		t.Fatal(err)
	}
	accept := async(func() error { _, _, err := ln.Accept(); return err })
	stillBlocked(t, read)
	stillBlocked(t, accept)
	a.Close()
	ln.Close()
	if err := await(t, read); !errors.Is(err, syscall.EBADF) {
		t.Errorf("blocked recv after close: %v, want EBADF", err)
	}
	if err := await(t, accept); !errors.Is(err, syscall.EBADF) {
		t.Errorf("blocked accept after close: %v, want EBADF", err)
	}
}

// streamPair connects a client to a listener on port and returns the
// client, the accepted socket and the listener.
func streamPair(t *testing.T, l *Layer, port int) (c, s, ln *Socket) {
	t.Helper()
	ln = mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	if err := ln.Bind(lo4(port)); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(16); err != nil {
		t.Fatal(err)
	}
	if v, _ := ln.GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); v != 1 {
		t.Error("SO_ACCEPTCONN is not 1 on a listener")
	}
	var peer syscall.Sockaddr
	accepted := async(func() (err error) {
		s, peer, err = ln.Accept()
		return err
	})
	c = mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	if err := c.Connect(lo4(port)); err != nil {
		t.Fatalf("blocking connect: %v", err)
	}
	if err := await(t, accepted); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cn, _ := c.GetSockName()
	if peer.(*syscall.SockaddrInet4).Port != cn.(*syscall.SockaddrInet4).Port {
		t.Errorf("accept peer %+v, client is %+v", peer, cn)
	}
	return c, s, ln
}

func TestStreamConnect(t *testing.T) {
	l, _ := newTestLayer(t)
	c, s, ln := streamPair(t, l, 80)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Available(); err != nil || n != 4 {
		t.Errorf("Available on a stream = %d, %v; want 4", n, err)
	}
	buf := make([]byte, 10)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}
	if n, from, err := s.RecvFrom(buf, syscall.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) || from != nil {
		t.Errorf("recvfrom on drained stream = %d, %v, %v", n, from, err)
	}

	// Non-blocking connect: EINPROGRESS, then writable with SO_ERROR 0.
	ln.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, 3*time.Second)
	nb := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK)
	if err := nb.Connect(lo4(80)); !errors.Is(err, syscall.EINPROGRESS) {
		t.Fatalf("non-blocking connect: %v, want EINPROGRESS", err)
	}
	if err := nb.Connect(lo4(80)); !errors.Is(err, syscall.EALREADY) {
		t.Errorf("second connect: %v, want EALREADY", err)
	}
	fds := []PollFd{{Socket: nb, Events: waiter.EventOut}}
	if n, _ := Poll(fds, testWait); n != 1 || fds[0].Revents&waiter.EventOut == 0 {
		t.Fatalf("poll after connect: %d %#x", n, fds[0].Revents)
	}
	if v, err := nb.GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || v != 0 {
		t.Errorf("SO_ERROR = %d, %v", v, err)
	}
	ns, _, err := ln.Accept4(syscall.SOCK_NONBLOCK)
	if err != nil {
		t.Fatalf("accept4 of the queued connection: %v", err)
	}
	if !ns.Nonblock() {
		t.Error("accept4(SOCK_NONBLOCK) gave a blocking socket")
	}
	if v, _ := ns.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO); v != 3*time.Second {
		t.Errorf("accepted socket's SO_RCVTIMEO = %v, want the listener's 3s", v)
	}
	ns.Close()
	ln.SetNonblock(true)
	if _, _, err := ln.Accept(); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("accept on an empty non-blocking listener: %v, want EAGAIN", err)
	}
	if _, _, err := ln.Accept4(0x40000000); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("accept4 with a bad flag: %v, want EINVAL", err)
	}

	// Refused: blocking connect reports it; non-blocking through SO_ERROR.
	r := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	if err := r.Connect(lo4(81)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
	}
	r2 := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK)
	if err := r2.Connect(lo4(81)); !errors.Is(err, syscall.EINPROGRESS) {
		t.Fatal(err)
	}
	fds = []PollFd{{Socket: r2, Events: waiter.EventOut}}
	if n, _ := Poll(fds, testWait); n != 1 || fds[0].Revents&waiter.EventErr == 0 {
		t.Fatalf("poll after refused connect: %d %#x", n, fds[0].Revents)
	}
	if v, _ := r2.GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != int(syscall.ECONNREFUSED) {
		t.Errorf("SO_ERROR = %d, want ECONNREFUSED", v)
	}

	// A connect that never completes gives up after SO_SNDTIMEO with
	// EINPROGRESS, as Linux.
	bh := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	bh.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, 30*time.Millisecond)
	if err := bh.Connect(lo4(fake.BlackholePort)); !errors.Is(err, syscall.EINPROGRESS) {
		t.Errorf("timed-out connect: %v, want EINPROGRESS", err)
	}
	// Closing wakes a connect blocked without a timeout.
	bh2 := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_STREAM)
	conn := async(func() error { return bh2.Connect(lo4(fake.BlackholePort)) })
	stillBlocked(t, conn)
	bh2.Close()
	if err := await(t, conn); !errors.Is(err, syscall.EBADF) {
		t.Errorf("connect after close: %v, want EBADF", err)
	}
}

func TestStreamBlockingWriteAndWaitAll(t *testing.T) {
	l, n := newTestLayer(t)
	n.StreamBuf = 1000
	c, s, _ := streamPair(t, l, 80)
	data := bytes.Repeat([]byte("0123456789"), 1000) // ten buffers' worth
	var wn int
	wrote := async(func() (err error) { wn, err = c.SendMsg([][]byte{data[:3333], data[3333:]}, nil, nil, 0); return err })
	stillBlocked(t, wrote)
	got := make([]byte, len(data))
	// MSG_WAITALL loops over partial reads until the buffers are full.
	rn, _, _, _, err := s.RecvMsg([][]byte{got[:5000], got[5000:]}, nil, syscall.MSG_WAITALL)
	if err != nil || rn != len(data) {
		t.Fatalf("recvmsg MSG_WAITALL = %d, %v", rn, err)
	}
	if err := await(t, wrote); err != nil || wn != len(data) {
		t.Fatalf("blocking write = %d, %v", wn, err)
	}
	if !bytes.Equal(got, data) {
		t.Error("data differs")
	}
	// A non-blocking write into a full buffer takes what fits, then EAGAIN.
	c.SetNonblock(true)
	if n, err := c.Write(data); err != nil || n != 1000 {
		t.Errorf("non-blocking write = %d, %v; want 1000", n, err)
	}
	if _, err := c.Write(data); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("write into a full buffer: %v, want EAGAIN", err)
	}
	// SO_SNDTIMEO bounds a blocked write.
	c.SetNonblock(false)
	c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, 20*time.Millisecond)
	if _, err := c.Write(data); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("write with SO_SNDTIMEO into a full buffer: %v, want EAGAIN", err)
	}
	// MSG_WAITALL stops at EOF with what it has.
	s.Recv(make([]byte, 1000), 0) // drain
	c.Write([]byte("abc"))
	c.Shutdown(syscall.SHUT_WR)
	rn, err = s.Recv(make([]byte, 10), syscall.MSG_WAITALL)
	if err != nil || rn != 3 {
		t.Errorf("MSG_WAITALL before EOF = %d, %v; want 3", rn, err)
	}
	if rn, err = s.Read(make([]byte, 10)); err != nil || rn != 0 {
		t.Errorf("read at EOF = %d, %v; want 0, nil", rn, err)
	}
}

func TestShutdown(t *testing.T) {
	l, _ := newTestLayer(t)
	c, s, _ := streamPair(t, l, 80)
	if err := c.Shutdown(7); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("shutdown(7): %v, want EINVAL", err)
	}
	read := async(func() error {
		n, err := s.Read(make([]byte, 10))
		if err == nil && n != 0 {
			return errors.New("data instead of EOF")
		}
		return err
	})
	stillBlocked(t, read)
	if err := c.Shutdown(syscall.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if err := await(t, read); err != nil {
		t.Errorf("read after peer's SHUT_WR: %v, want EOF", err)
	}
	if r := s.Readiness(waiter.EventRdHUp); r&waiter.EventRdHUp == 0 {
		t.Errorf("readiness after peer's SHUT_WR = %#x, want RDHUP", r)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after SHUT_WR: %v, want EPIPE", err)
	}
	u := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	if err := u.Shutdown(syscall.SHUT_RD); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("shutdown of an unconnected datagram socket: %v, want ENOTCONN", err)
	}
}

func TestPeekTruncAvailable(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	to, _ := a.GetSockName()
	b.SendTo([]byte("0123456789"), 0, to)
	b.SendTo([]byte("abc"), 0, to)
	if n, err := a.Available(); err != nil || n != 10 {
		t.Errorf("Available = %d, %v; want the next datagram's 10", n, err)
	}
	buf := make([]byte, 4)
	n, _, flags, _, err := a.RecvMsg([][]byte{buf}, nil, syscall.MSG_PEEK)
	if err != nil || n != 4 || flags&syscall.MSG_TRUNC == 0 || string(buf) != "0123" {
		t.Errorf("peek = %d %#x %q %v", n, flags, buf, err)
	}
	n, _, flags, _, err = a.RecvMsg([][]byte{buf[:2], buf[2:]}, nil, syscall.MSG_TRUNC)
	if err != nil || n != 10 || flags&syscall.MSG_TRUNC == 0 || string(buf) != "0123" {
		t.Errorf("recv MSG_TRUNC = %d %#x %q %v; want the full length 10", n, flags, buf, err)
	}
	n, _, flags, _, err = a.RecvMsg([][]byte{buf}, nil, 0)
	if err != nil || n != 3 || flags != 0 {
		t.Errorf("recv = %d %#x %v", n, flags, err)
	}
	if n, _ := a.Available(); n != 0 {
		t.Errorf("Available on an empty queue = %d", n)
	}
}

func TestDeadlines(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	to, _ := a.GetSockName()
	buf := make([]byte, 10)

	// A deadline in the past fails calls at once, even with data queued.
	b.SendTo([]byte("x"), 0, to)
	a.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := a.Read(buf); !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})
	if n, err := a.Read(buf); err != nil || n != 1 {
		t.Fatalf("read after clearing the deadline = %d, %v", n, err)
	}

	// A pending read fails when the deadline passes (start is taken
	// first: the deadline counts from the moment it is set).
	start := time.Now()
	a.SetReadDeadline(start.Add(40 * time.Millisecond))
	if _, err := a.Read(buf); !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("blocked read at the deadline: %v", err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Error("deadline fired early")
	}

	// Extending the deadline of a blocked read lets it succeed.
	a.SetReadDeadline(time.Now().Add(40 * time.Millisecond))
	read := async(func() error { _, err := a.Read(buf); return err })
	time.Sleep(10 * time.Millisecond)
	a.SetReadDeadline(time.Now().Add(testWait))
	time.Sleep(80 * time.Millisecond) // past the first deadline
	b.SendTo([]byte("y"), 0, to)
	if err := await(t, read); err != nil {
		t.Errorf("read with an extended deadline: %v", err)
	}

	// Moving the deadline into the past wakes a blocked read.
	a.SetReadDeadline(time.Time{})
	read = async(func() error { _, err := a.Read(buf); return err })
	stillBlocked(t, read)
	a.SetReadDeadline(time.Unix(1, 0))
	if err := await(t, read); !errors.Is(err, ErrDeadlineExceeded) {
		t.Errorf("read after the deadline moved to the past: %v", err)
	}
	// The write deadline is separate.
	if _, err := b.SendTo([]byte("z"), 0, to); err != nil {
		t.Errorf("write with only a read deadline set: %v", err)
	}
	b.SetWriteDeadline(time.Unix(1, 0))
	if _, err := b.SendTo([]byte("z"), 0, to); !errors.Is(err, ErrDeadlineExceeded) {
		t.Errorf("write past the write deadline: %v", err)
	}
}

func TestInfoAndInterfaces(t *testing.T) {
	n := fake.NewNet()
	l := NewWithOptions(n.Registry(), Options{Interfaces: fakeIfs{"eth0": 2}})
	s := mustSocket(t, l, syscall.AF_INET6, syscall.SOCK_DGRAM)
	if err := s.Bind(&syscall.SockaddrInet6{Port: 5353, Addr: netip.MustParseAddr("fe80::1").As16(), ZoneId: 2}); err != nil {
		t.Fatal(err)
	}
	if got := s.Endpoint().LocalAddr(); got.Addr().Zone() != "eth0" {
		t.Errorf("bound %v: zone id 2 should name eth0", got)
	}
	sa, _ := s.GetSockName()
	if s6 := sa.(*syscall.SockaddrInet6); s6.ZoneId != 2 || s6.Port != 5353 {
		t.Errorf("getsockname = %+v", s6)
	}
	if info := s.Info(); info.Proto != "udp" || info.Local.Port() != 5353 {
		t.Errorf("Info = %+v", info)
	}
}

type fakeIfs map[string]int

func (f fakeIfs) IndexByName(name string) (int, bool) { i, ok := f[name]; return i, ok }
func (f fakeIfs) NameByIndex(i int) (string, bool) {
	for k, v := range f {
		if v == i {
			return k, true
		}
	}
	return "", false
}
