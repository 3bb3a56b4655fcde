package socket

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/udp"
)

// Tests with the real UDP on a loopback stack.

func newUDPLayer(t testing.TB) *Layer {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	reg := &transport.Registry{}
	udp.New(s).Register(reg)
	return NewWithOptions(reg, Options{Interfaces: StackInterfaces(s)})
}

func udpSocket(t testing.TB, l *Layer, family int, bind syscall.Sockaddr) *Socket {
	t.Helper()
	s, err := l.Socket(family, syscall.SOCK_DGRAM, 0, transport.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if bind != nil {
		if err := s.Bind(bind); err != nil {
			t.Fatalf("bind %+v: %v", bind, err)
		}
	}
	return s
}

func TestUDPEchoLoopback(t *testing.T) {
	l := newUDPLayer(t)
	for _, c := range []struct {
		family int
		bind   syscall.Sockaddr
	}{
		{syscall.AF_INET, lo4(0)},
		{syscall.AF_INET6, &syscall.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}},
	} {
		srv := udpSocket(t, l, c.family, c.bind)
		cli := udpSocket(t, l, c.family, nil)
		if v, _ := srv.GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_PROTOCOL); v != syscall.IPPROTO_UDP {
			t.Errorf("SO_PROTOCOL = %d", v)
		}
		ttlOpt, pktOpt := syscall.IP_RECVTTL, syscall.IP_PKTINFO
		level := syscall.IPPROTO_IP
		if c.family == syscall.AF_INET6 {
			ttlOpt, pktOpt, level = syscall.IPV6_RECVHOPLIMIT, syscall.IPV6_RECVPKTINFO, syscall.IPPROTO_IPV6
		}
		srv.SetSockOptInt(level, ttlOpt, 1)
		srv.SetSockOptInt(level, pktOpt, 1)
		srv.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, testWait)
		cli.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, testWait)
		to, _ := srv.GetSockName()
		if _, err := cli.SendMsg([][]byte{[]byte("ec"), []byte("ho")}, TTLControl(c.family, 7), to, 0); err != nil {
			t.Fatal(err)
		}
		buf, oob := make([]byte, 100), make([]byte, 200)
		n, oobn, _, from, err := srv.RecvMsg([][]byte{buf}, oob, 0)
		if err != nil || string(buf[:n]) != "echo" {
			t.Fatalf("family %d: recv = %q, %v", c.family, buf[:n], err)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 2 {
			t.Fatalf("cmsgs %v %v", msgs, err)
		}
		for _, m := range msgs {
			if (m.Header.Type == syscall.IP_TTL && c.family == syscall.AF_INET) || m.Header.Type == syscall.IPV6_HOPLIMIT && c.family == syscall.AF_INET6 {
				if m.Data[0] != 7 {
					t.Errorf("received TTL %d, sent with a TTL cmsg of 7", m.Data[0])
				}
			}
		}
		if _, err := srv.SendTo(buf[:n], 0, from); err != nil {
			t.Fatal(err)
		}
		n, err = cli.Read(buf)
		if err != nil || string(buf[:n]) != "echo" {
			t.Fatalf("reply = %q, %v", buf[:n], err)
		}
	}
}

// A dual-stack AF_INET6 socket talks to an AF_INET one through
// v4-mapped addresses.
func TestUDPDualStack(t *testing.T) {
	l := newUDPLayer(t)
	srv := udpSocket(t, l, syscall.AF_INET6, &syscall.SockaddrInet6{})
	srv.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, testWait)
	sa, _ := srv.GetSockName()
	port := sa.(*syscall.SockaddrInet6).Port
	cli := udpSocket(t, l, syscall.AF_INET, nil)
	if _, err := cli.SendTo([]byte("v4"), 0, lo4(port)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, from, err := srv.RecvFrom(buf, 0)
	if err != nil || string(buf[:n]) != "v4" {
		t.Fatalf("recv = %q, %v", buf[:n], err)
	}
	f6, ok := from.(*syscall.SockaddrInet6)
	if !ok || netip.AddrFrom16(f6.Addr) != netip.MustParseAddr("::ffff:127.0.0.1") {
		t.Errorf("from = %+v, want ::ffff:127.0.0.1", from)
	}
}

func TestUDPConnectedRefused(t *testing.T) {
	l := newUDPLayer(t)
	closed := udpSocket(t, l, syscall.AF_INET, lo4(0))
	to, _ := closed.GetSockName()
	closed.Close() // nothing listens there now
	c := udpSocket(t, l, syscall.AF_INET, nil)
	c.SetSockOptInt(syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, testWait)
	if err := c.Connect(to); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	// With IP_RECVERR the error is also on the error queue.
	buf, oob := make([]byte, 100), make([]byte, 200)
	n, oobn, flags, _, err := c.RecvMsg([][]byte{buf}, oob, syscall.MSG_ERRQUEUE)
	if err != nil || flags&syscall.MSG_ERRQUEUE == 0 || string(buf[:n]) != "anyone?" {
		t.Fatalf("error queue = %q %#x %v", buf[:n], flags, err)
	}
	msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
	var found bool
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_RECVERR {
			found = len(m.Data) == sizeofExtendedErr+sizeofSockaddrIn && syscall.Errno(m.Data[0]) == syscall.ECONNREFUSED
		}
	}
	if !found {
		t.Errorf("no IP_RECVERR with ECONNREFUSED in %v", msgs)
	}
}

// connect(AF_UNSPEC) — a nil sockaddr — dissolves the association.
func TestUDPConnectUnspec(t *testing.T) {
	l := newUDPLayer(t)
	a := udpSocket(t, l, syscall.AF_INET, lo4(0))
	b := udpSocket(t, l, syscall.AF_INET, lo4(0))
	to, _ := a.GetSockName()
	if err := b.Connect(to); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetPeerName(); err != nil {
		t.Fatalf("getpeername when connected: %v", err)
	}
	if err := b.Connect(nil); err != nil {
		t.Fatalf("connect AF_UNSPEC: %v", err)
	}
	if _, err := b.GetPeerName(); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("getpeername after AF_UNSPEC: %v, want ENOTCONN", err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("write after AF_UNSPEC: %v, want EDESTADDRREQ", err)
	}
}

// TestEpoll10000UDPSockets: one epoll over 10,000 bound UDP sockets
// reports exactly those that received a datagram, and watching them costs
// no goroutines.
func TestEpoll10000UDPSockets(t *testing.T) {
	const total, hit = 10000, 137
	l := newUDPLayer(t)
	e := l.EpollCreate()
	defer e.Close()
	before := runtime.NumGoroutine()
	socks := make([]*Socket, total)
	for i := range socks {
		socks[i] = udpSocket(t, l, syscall.AF_INET, lo4(0))
		if err := e.Ctl(EPOLL_CTL_ADD, socks[i], EpollEvent{Events: EPOLLIN, Data: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if g := runtime.NumGoroutine(); g > before+10 {
		t.Errorf("goroutines grew from %d to %d with %d watched sockets", before, g, total)
	}
	if n, _ := e.Wait(make([]EpollEvent, 16), 0); n != 0 {
		t.Fatalf("%d ready before anything was sent", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[uint64]bool{}
	for len(want) < hit {
		want[uint64(rng.IntN(total))] = true
	}
	src := udpSocket(t, l, syscall.AF_INET, nil)
	for i := range want {
		to, _ := socks[i].GetSockName()
		if _, err := src.SendTo([]byte{byte(i)}, 0, to); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint64]bool{}
	events := make([]EpollEvent, 64)
	deadline := time.Now().Add(testWait)
	for len(got) < hit && time.Now().Before(deadline) {
		n, err := e.Wait(events, time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events[:n] {
			if !want[ev.Data] {
				t.Fatalf("socket %d reported, nothing was sent to it", ev.Data)
			}
			if ev.Events&EPOLLIN == 0 {
				t.Fatalf("socket %d: events %#x", ev.Data, ev.Events)
			}
			// Level-triggered: drain it so it stops being reported.
			buf := make([]byte, 4)
			if n, err := socks[ev.Data].Recv(buf, syscall.MSG_DONTWAIT); err != nil || n != 1 || buf[0] != byte(ev.Data) {
				t.Fatalf("socket %d readable but recv = %d, %v", ev.Data, n, err)
			}
			got[ev.Data] = true
		}
	}
	if len(got) != hit {
		t.Fatalf("%d of %d sockets reported", len(got), hit)
	}
	if n, _ := e.Wait(events, 20*time.Millisecond); n != 0 {
		t.Errorf("%d reported after all were drained", n)
	}
	if g := runtime.NumGoroutine(); g > before+10 {
		t.Errorf("goroutines grew from %d to %d", before, g)
	}
}

// BenchmarkEpollWait10000: one datagram to one of 10,000 watched UDP
// sockets, then Wait and the read; the cost should not depend on how
// many sockets are watched.
func BenchmarkEpollWait10000(b *testing.B) {
	const total = 10000
	l := newUDPLayer(b)
	e := l.EpollCreate()
	defer e.Close()
	socks := make([]*Socket, total)
	addrs := make([]syscall.Sockaddr, total)
	for i := range socks {
		socks[i] = udpSocket(b, l, syscall.AF_INET, lo4(0))
		addrs[i], _ = socks[i].GetSockName()
		e.Ctl(EPOLL_CTL_ADD, socks[i], EpollEvent{Events: EPOLLIN, Data: uint64(i)})
	}
	src := udpSocket(b, l, syscall.AF_INET, nil)
	events := make([]EpollEvent, 8)
	buf := make([]byte, 16)
	rng := rand.New(rand.NewPCG(3, 4))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := rng.IntN(total)
		src.SendTo([]byte("x"), 0, addrs[k])
		n, err := e.Wait(events, testWait)
		if err != nil || n != 1 || events[0].Data != uint64(k) {
			b.Fatalf("wait = %d %v %v", n, events[:n], err)
		}
		socks[k].Recv(buf, syscall.MSG_DONTWAIT)
	}
}
