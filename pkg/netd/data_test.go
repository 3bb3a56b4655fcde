package netd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// dataPair is a stack served by netd (10.63.0.1, eth0) and a peer stack
// on the same emulated network (10.63.0.2) used directly, and a client
// of the served one.
func dataPair(t *testing.T, opts ServerOptions) (served, peer *stackhost.Host, c *Client, srv *Server) {
	t.Helper()
	ctx := context.Background()
	spec := "emu:netd-data-" + t.Name()
	for i, h := range []**stackhost.Host{&served, &peer} {
		var err error
		if *h, err = stackhost.Start(spec); err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		if err := hh.AddAddress(ctx, "eth0", netip.MustParsePrefix(fmt.Sprintf("10.63.0.%d/24", i+1)), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	path, srv := serve(t, served, opts)
	return served, peer, dial(t, path), srv
}

func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(interface{ CloseWrite() error }).CloseWrite()
			}()
		}
	}()
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A TCP connection made through netd carries 4 MiB each way intact,
// half-closes, and netstat names the client that owns it.
func TestDataStreamDial(t *testing.T) {
	ctx := tctx(t)
	_, peer, c, _ := dataPair(t, ServerOptions{PeerCred: rootCred})
	ln, err := peer.Listen(ctx, "tcp", "10.63.0.2:7000", nil)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	conn, err := c.Dial(ctx, "tcp", "10.63.0.2:7000", &host.SocketOptions{Local: netip.MustParseAddrPort("10.63.0.1:40100")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.LocalAddr().String() != "10.63.0.1:40100" || conn.RemoteAddr().String() != "10.63.0.2:7000" {
		t.Errorf("addresses %v → %v", conn.LocalAddr(), conn.RemoteAddr())
	}
	data := make([]byte, 4<<20)
	rand.Read(data)
	go func() {
		conn.Write(data)
		conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	// Small reads exercise frames split across calls.
	var got bytes.Buffer
	buf := make([]byte, 1000)
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sha256.Sum256(got.Bytes()) != sha256.Sum256(data) {
		t.Fatalf("echo of %d bytes came back as %d different bytes", len(data), got.Len())
	}
	socks, err := c.Sockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range socks {
		if s.Local == netip.MustParseAddrPort("10.63.0.1:40100") {
			found = true
			if s.PID != 1 || s.Program != programOf(1) {
				t.Errorf("socket %+v: owner is not the client (pid 1, %q)", s, programOf(1))
			}
		}
	}
	if !found {
		t.Errorf("connection not in %+v", socks)
	}
}

// A listener opened through netd accepts the peer's connections; data
// flows both ways and the peer's FIN reads as EOF; a closed listener's
// Accept fails with net.ErrClosed; Accept honours its deadline.
func TestDataStreamListen(t *testing.T) {
	ctx := tctx(t)
	_, peer, c, _ := dataPair(t, ServerOptions{PeerCred: rootCred})
	ln, err := c.Listen(ctx, "tcp", ":7001", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != "[::]:7001" && ln.Addr().String() != "0.0.0.0:7001" {
		t.Errorf("listener address %v", ln.Addr())
	}
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Accept past its deadline: %v", err)
	}
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Time{})
	for i := range 3 {
		pc, err := peer.Dial(ctx, "tcp", "10.63.0.1:7001", nil)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if sc.RemoteAddr().String() != pc.LocalAddr().String() {
			t.Errorf("accepted %v, peer is %v", sc.RemoteAddr(), pc.LocalAddr())
		}
		msg := fmt.Sprintf("hello %d", i)
		pc.Write([]byte(msg))
		pc.(interface{ CloseWrite() error }).CloseWrite()
		got, err := io.ReadAll(sc)
		if err != nil || string(got) != msg {
			t.Fatalf("read %q, %v; want %q then EOF", got, err, msg)
		}
		sc.Write([]byte("bye"))
		sc.Close()
		back, err := io.ReadAll(pc)
		if err != nil || string(back) != "bye" {
			t.Fatalf("peer read %q, %v", back, err)
		}
		pc.Close()
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// Errors keep their errno through netd: a refused connection, a reset in
// the middle of a stream, a read deadline (after which reading goes on).
func TestDataStreamErrors(t *testing.T) {
	ctx := tctx(t)
	_, peer, c, _ := dataPair(t, ServerOptions{PeerCred: rootCred})
	if _, err := c.Dial(ctx, "tcp", "10.63.0.2:9", nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a closed port: %v, want ECONNREFUSED", err)
	}
	ln, err := peer.Listen(ctx, "tcp", ":7002", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.Dial(ctx, "tcp", "10.63.0.2:7002", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	conn.SetReadDeadline(time.Time{})
	sc.Write([]byte("x"))
	b := make([]byte, 10)
	if n, err := conn.Read(b); err != nil || string(b[:n]) != "x" {
		t.Fatalf("read after the deadline: %q, %v", b[:n], err)
	}
	// SO_LINGER 0: close sends a reset.
	sc.(interface{ SetLinger(int) error }).SetLinger(0)
	sc.Close()
	if _, err := conn.Read(b); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's reset: %v, want ECONNRESET", err)
	}
	if _, err := conn.Write([]byte("late")); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("write after the reset: %v, want ECONNRESET", err)
	}
}

// UDP through netd: echo both ways with addresses, socket options, a
// port unreachable reported as ECONNREFUSED with its details in the
// error queue (IP_RECVERR), and a read deadline.
func TestDataPacket(t *testing.T) {
	ctx := tctx(t)
	_, peer, c, _ := dataPair(t, ServerOptions{PeerCred: rootCred})
	echo, err := peer.ListenPacket(ctx, "udp4", "10.63.0.2:5353", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		b := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(b)
			if err != nil {
				return
			}
			echo.WriteTo(b[:n], from)
		}
	}()
	pc, err := c.ListenPacket(ctx, "udp4", "10.63.0.1:0", &host.SocketOptions{Options: []host.SockOpt{
		{Level: syscall.IPPROTO_IP, Name: syscall.IP_RECVERR, Value: 1},
		{Level: syscall.IPPROTO_IP, Name: syscall.IP_RECVTTL, Value: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 20 {
		msg := bytes.Repeat([]byte{byte(i)}, 100+i*50)
		if _, err := pc.WriteTo(msg, &net.UDPAddr{IP: net.IPv4(10, 63, 0, 2), Port: 5353}); err != nil {
			t.Fatal(err)
		}
		b, oob := make([]byte, 2000), make([]byte, 128)
		n, oobn, _, from, err := pc.RecvMsg(b, oob, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:n], msg) || from != netip.MustParseAddrPort("10.63.0.2:5353") || oobn == 0 {
			t.Fatalf("datagram %d: %d bytes from %v, %d bytes of cmsgs", i, n, from, oobn)
		}
	}
	// Truncation is reported as recvmsg does.
	pc.WriteTo(make([]byte, 300), &net.UDPAddr{IP: net.IPv4(10, 63, 0, 2), Port: 5353})
	if n, _, rflags, _, err := pc.RecvMsg(make([]byte, 100), nil, 0); err != nil || n != 100 || rflags&syscall.MSG_TRUNC == 0 {
		t.Errorf("short read: %d, flags %#x, %v", n, rflags, err)
	}
	if v, err := pc.GetSockOptInt(syscall.IPPROTO_IP, syscall.IP_RECVERR); err != nil || v != 1 {
		t.Errorf("IP_RECVERR = %d, %v", v, err)
	}
	if err := pc.SetSockOptInt(syscall.IPPROTO_IP, syscall.IP_TTL, 300); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IP_TTL 300: %v, want EINVAL", err)
	}
	if _, err := pc.SendMsg([]byte("x"), nil, netip.MustParseAddrPort("192.0.2.1:53")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("send to an unrouted network: %v, want ENETUNREACH", err)
	}
	// A closed port: the ICMP error comes back as the read's errno, then
	// from the error queue.
	if _, err := pc.SendMsg([]byte("x"), nil, netip.MustParseAddrPort("10.63.0.2:9")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := pc.RecvMsg(make([]byte, 10), nil, 0); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	oob := make([]byte, 256)
	if _, oobn, rflags, _, err := pc.RecvMsg(make([]byte, 10), oob, syscall.MSG_ERRQUEUE); err != nil || oobn == 0 || rflags&syscall.MSG_ERRQUEUE == 0 {
		t.Errorf("error queue: %d bytes of cmsgs, flags %#x, %v", oobn, rflags, err)
	}
	if _, _, _, _, err := pc.RecvMsg(make([]byte, 10), oob, syscall.MSG_ERRQUEUE); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("empty error queue: %v, want EAGAIN", err)
	}
	pc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, _, err := pc.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v", err)
	}
	// A connected UDP socket from Dial.
	dc, err := c.Dial(ctx, "udp", "10.63.0.2:5353", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	dc.SetDeadline(time.Now().Add(10 * time.Second))
	dc.Write([]byte("ping"))
	b := make([]byte, 10)
	if n, err := dc.Read(b); err != nil || string(b[:n]) != "ping" {
		t.Errorf("connected UDP: %q, %v", b[:n], err)
	}
}

// Ping sockets through netd are open to everyone; raw sockets, low
// ports and other users' listeners are not.
func TestDataAccess(t *testing.T) {
	ctx := tctx(t)
	var uid atomic.Uint32
	uid.Store(1000)
	peerCred := func(net.Conn) (Cred, error) { return Cred{UID: uid.Load(), GID: uid.Load(), PID: 1}, nil }
	_, _, c, _ := dataPair(t, ServerOptions{PeerCred: peerCred})
	pc, err := c.ListenPacket(ctx, "ping4", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := pc.SendMsg([]byte{8, 0, 0, 0, 0, 0, 0, 1}, nil, netip.MustParseAddrPort("10.63.0.2:0")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	if n, _, _, from, err := pc.RecvMsg(b, nil, 0); err != nil || n != 8 || b[0] != 0 || from.Addr() != netip.MustParseAddr("10.63.0.2") {
		t.Errorf("echo reply %x from %v, %v", b[:n], from, err)
	}
	if _, err := c.ListenPacket(ctx, "ip4:icmp", "", nil); !errors.Is(err, syscall.EPERM) {
		t.Errorf("raw socket as uid 1000: %v, want EPERM", err)
	}
	if _, err := c.Listen(ctx, "tcp", ":80", nil); !errors.Is(err, syscall.EACCES) {
		t.Errorf("port 80 as uid 1000: %v, want EACCES", err)
	}
	ln, err := c.Listen(ctx, "tcp", ":8080", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	uid.Store(1001) // another user tries to take its connections
	if _, err := ln.Accept(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("accept on uid 1000's listener as uid 1001: %v, want EPERM", err)
	}
	uid.Store(0)
	if _, err := c.ListenPacket(ctx, "ip4:icmp", "", nil); err != nil {
		t.Errorf("raw socket as root: %v", err)
	}
}

// Shutting netd down closes its clients' connections with a FIN: the
// peer reads EOF, not a reset.
func TestDataShutdownSendsFIN(t *testing.T) {
	ctx := tctx(t)
	_, peer, c, srv := dataPair(t, ServerOptions{PeerCred: rootCred})
	ln, err := peer.Listen(ctx, "tcp", ":7003", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.Dial(ctx, "tcp", "10.63.0.2:7003", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := sc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("peer read %d, %v after netd's shutdown; want EOF", n, err)
	}
	if _, err := c.Dial(ctx, "tcp", "10.63.0.2:7003", nil); err == nil {
		t.Error("dial through a shut down netd worked")
	}
}

// Bad socket requests get errors, not sockets.
func TestDataBadRequests(t *testing.T) {
	ctx := tctx(t)
	_, _, c, _ := dataPair(t, ServerOptions{PeerCred: rootCred})
	for _, tc := range []struct {
		req   SocketRequest
		errno syscall.Errno
	}{
		{SocketRequest{Op: "bind"}, syscall.EINVAL},
		{SocketRequest{Op: "accept", Listener: 99}, syscall.EBADF},
	} {
		if _, err := c.openSocket(ctx, tc.req); !errors.Is(err, tc.errno) {
			t.Errorf("%+v: %v, want %v", tc.req, err, tc.errno)
		}
	}
	if _, err := c.Dial(ctx, "sctp", "10.63.0.2:1", nil); err == nil {
		t.Error("dial sctp worked")
	}
	path := c.Path()
	status, body, _ := raw(t, path, "POST", "/v1/sockets", `{"op":"dial","network":"tcp","address":"10.63.0.2:1"}`)
	if status != 400 {
		t.Errorf("POST /v1/sockets without Upgrade: %d %s", status, body)
	}
}

// errSocket is a datagram socket whose sends report a pending ICMP error
// that waits in its error queue, as when a send takes SO_ERROR before
// the relay's reader does.
type errSocket struct {
	host.PacketConn
	errq   chan struct{}
	closed chan struct{}
}

func (e *errSocket) SendMsg(b, oob []byte, to netip.AddrPort) (int, error) {
	return 0, &net.OpError{Op: "write", Net: "udp4", Err: os.NewSyscallError("sendmsg", syscall.ECONNREFUSED)}
}

func (e *errSocket) RecvMsg(b, oob []byte, flags int) (int, int, int, netip.AddrPort, error) {
	if flags&syscall.MSG_ERRQUEUE != 0 {
		select {
		case <-e.errq:
			return copy(b, "err"), copy(oob, "cmsg"), syscall.MSG_ERRQUEUE, netip.MustParseAddrPort("10.63.0.2:9"), nil
		default:
			return 0, 0, 0, netip.AddrPort{}, os.NewSyscallError("recvmsg", syscall.EAGAIN)
		}
	}
	<-e.closed
	return 0, 0, 0, netip.AddrPort{}, net.ErrClosed
}

func (e *errSocket) Close() error { close(e.closed); return nil }

// A send that returns a pending ICMP error still leaves the error's
// details readable with MSG_ERRQUEUE right after, as traceroute's probes
// on one socket need: the relay sends the queue before the answer.
func TestDataSendTakesPendingError(t *testing.T) {
	cu, su := net.Pipe()
	sock := &errSocket{errq: make(chan struct{}, 1), closed: make(chan struct{})}
	sock.errq <- struct{}{}
	done := make(chan struct{})
	go func() { servePacket(su, bufio.NewReader(su), sock); close(done) }()
	pc := newRemotePacketConn(cu, bufio.NewReader(cu), "udp4", SocketInfo{})
	if _, err := pc.SendMsg([]byte("x"), nil, netip.MustParseAddrPort("10.63.0.2:9")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("send: %v, want ECONNREFUSED", err)
	}
	b, oob := make([]byte, 10), make([]byte, 10)
	n, oobn, rflags, from, err := pc.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
	if err != nil || string(b[:n]) != "err" || string(oob[:oobn]) != "cmsg" || rflags&syscall.MSG_ERRQUEUE == 0 || from.Port() != 9 {
		t.Errorf("error queue after the send's error: %q %q %#x %v %v", b[:n], oob[:oobn], rflags, from, err)
	}
	pc.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end when the client closed")
	}
}
