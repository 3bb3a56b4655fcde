package gonet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/socket/internal/fake"
)

const testWait = 5 * time.Second

func newFakeDialer(t *testing.T) (*Dialer, *fake.Net) {
	t.Helper()
	n := fake.NewNet()
	return &Dialer{Layer: socket.New(n.Registry())}, n
}

// result runs f in a goroutine; wait bounds how long the test waits.
func result(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testWait):
		t.Fatal("call did not return in time")
		return nil
	}
}

func notYet(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("returned early: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
}

// isTimeout checks what callers of Go's net rely on for a deadline.
func isTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s: %v (%T) is not a deadline timeout", what, err, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s: %T is not a *net.OpError", what, err)
	}
}

func TestPacketConnEcho(t *testing.T) {
	d, _ := newFakeDialer(t)
	ctx := context.Background()
	srv, err := d.ListenPacket(ctx, "udp4", "127.0.0.1:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if la, ok := srv.LocalAddr().(*net.UDPAddr); !ok || la.String() != "127.0.0.1:5300" {
		t.Errorf("LocalAddr = %v (%T)", srv.LocalAddr(), srv.LocalAddr())
	}
	if rc, ok := srv.(net.Conn); !ok || rc.RemoteAddr() != nil {
		t.Errorf("unconnected PacketConn: RemoteAddr should be a nil interface")
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	c, err := d.DialContext(ctx, "udp", "127.0.0.1:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ra, ok := c.RemoteAddr().(*net.UDPAddr); !ok || ra.String() != "127.0.0.1:5300" {
		t.Errorf("RemoteAddr = %v", c.RemoteAddr())
	}
	c.SetDeadline(time.Now().Add(testWait))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("echo = %q, %v", buf[:n], err)
	}
	// The connected conn is a PacketConn too, as net.UDPConn is.
	pc := c.(net.PacketConn)
	if _, err := pc.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("WriteTo an *net.IPAddr on UDP: %v, want EINVAL", err)
	}
	if _, err := pc.WriteTo([]byte("again"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5300}); err != nil {
		t.Fatal(err)
	}
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "again" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if ua, ok := from.(*net.UDPAddr); !ok || ua.Port != 5300 || !ua.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("from = %v (%T)", from, from)
	}
}

func TestDeadlines(t *testing.T) {
	d, _ := newFakeDialer(t)
	pc, err := d.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 10)

	pc.SetReadDeadline(time.Now().Add(-time.Second))
	_, _, err = pc.ReadFrom(buf)
	isTimeout(t, "read past the deadline", err)

	pc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	_, _, err = pc.ReadFrom(buf)
	isTimeout(t, "blocked read", err)
	if time.Since(start) < 30*time.Millisecond {
		t.Error("deadline fired early")
	}

	// Extended while blocked: the read waits for the datagram.
	pc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	got := result(func() error { _, _, err := pc.ReadFrom(buf); return err })
	time.Sleep(10 * time.Millisecond)
	pc.SetReadDeadline(time.Now().Add(testWait))
	time.Sleep(60 * time.Millisecond)
	c, err := d.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	if err := wait(t, got); err != nil {
		t.Errorf("read with an extended deadline: %v", err)
	}

	// SetDeadline in the past wakes a pending read; clearing it lets
	// reads block again.
	pc.SetDeadline(time.Time{})
	got = result(func() error { _, _, err := pc.ReadFrom(buf); return err })
	notYet(t, got)
	pc.SetDeadline(time.Now())
	isTimeout(t, "read woken by SetDeadline(now)", wait(t, got))
	pc.SetDeadline(time.Time{})
	c.Write([]byte("y"))
	pc.SetReadDeadline(time.Now().Add(testWait))
	if _, _, err := pc.ReadFrom(buf); err != nil {
		t.Errorf("read after clearing the deadline: %v", err)
	}
	// Write deadlines too.
	c.SetWriteDeadline(time.Unix(1, 0))
	_, err = c.Write([]byte("z"))
	isTimeout(t, "write past the deadline", err)
}

func TestConnectedUDPRefused(t *testing.T) {
	d, _ := newFakeDialer(t)
	c, err := d.Dial("udp", "127.0.0.1:9999") // nobody there
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testWait))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 10))
	checkRefused(t, err)
}

// checkRefused: ECONNREFUSED inside *net.OpError and *os.SyscallError.
func checkRefused(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v (%T): not ECONNREFUSED", err, err)
	}
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || !errors.As(err, &se) {
		t.Errorf("%v: want *net.OpError wrapping *os.SyscallError", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%v: ECONNREFUSED is not a timeout", err)
	}
}

func TestStreamDialListen(t *testing.T) {
	d, _ := newFakeDialer(t)
	ctx := context.Background()
	ln, err := d.Listen(ctx, "tcp4", "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || a.Port != 7 {
		t.Errorf("Addr = %v", ln.Addr())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	c, err := d.DialContext(ctx, "tcp", "localhost:echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
		t.Errorf("RemoteAddr is %T", c.RemoteAddr())
	}
	tc := c.(*Conn)
	if err := tc.SetKeepAlive(true); err != nil {
		t.Fatal(err)
	}
	if err := tc.SetLinger(5); err != nil {
		t.Fatal(err)
	}
	if v, _ := tc.Socket().GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 1 {
		t.Error("SetKeepAlive did not reach SO_KEEPALIVE")
	}
	if v, _ := tc.Socket().GetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER); v != (syscall.Linger{Onoff: 1, Linger: 5}) {
		t.Errorf("SO_LINGER = %v", v)
	}
	c.SetDeadline(time.Now().Add(testWait))
	msg := strings.Repeat("stream data ", 20000) // more than the buffers
	go func() { io.WriteString(c, msg); c.(*Conn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("echo: %d bytes, %v; want %d", len(got), err, len(msg))
	}
	// Closing a conn wakes its blocked read with net.ErrClosed.
	c2, err := d.Dial("tcp4", "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	r := result(func() error { _, err := c2.Read(make([]byte, 1)); return err })
	notYet(t, r)
	c2.Close()
	if err := wait(t, r); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a closed conn: %v, want net.ErrClosed", err)
	}
	if err := c2.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	// Closing the listener wakes Accept with net.ErrClosed.
	ln2, _ := d.Listen(ctx, "tcp", "127.0.0.1:8")
	acc := result(func() error { _, err := ln2.Accept(); return err })
	notYet(t, acc)
	ln2.Close()
	if err := wait(t, acc); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v, want net.ErrClosed", err)
	}
}

func TestDialErrors(t *testing.T) {
	d, _ := newFakeDialer(t)
	_, err := d.Dial("tcp", "127.0.0.1:81")
	checkRefused(t, err)
	var oe *net.OpError
	if errors.As(err, &oe) && (oe.Op != "dial" || oe.Addr.String() != "127.0.0.1:81") {
		t.Errorf("OpError = %+v", oe)
	}

	// No resolver: names are a DNS error; a resolver is used when set.
	_, err = d.Dial("udp", "example.com:53")
	var de *net.DNSError
	if !errors.As(err, &de) || de.Name != "example.com" {
		t.Errorf("name without a resolver: %v (%T)", err, err)
	}
	d.Resolver = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "echo.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("nxdomain")
	}
	c, err := d.Dial("udp", "echo.test:53")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err = d.Dial("udp", "nx.test:53"); !errors.As(err, &de) {
		t.Errorf("resolver failure: %v", err)
	}
	if _, err = d.Dial("udp6", "127.0.0.1:53"); err == nil {
		t.Error("udp6 to an IPv4 literal succeeded")
	}
	if _, err = d.Dial("sctp", "127.0.0.1:1"); !errors.As(err, new(net.UnknownNetworkError)) {
		t.Errorf("unknown network: %v", err)
	}
	// Raw sockets are not in this registry: the registry's error.
	if _, err = d.Dial("ip4:icmp", "127.0.0.1"); !errors.Is(err, syscall.ESOCKTNOSUPPORT) {
		t.Errorf("ip4:icmp without raw sockets: %v", err)
	}

	// Cancelling the context aborts a connect that hangs.
	ctx, cancel := context.WithCancel(context.Background())
	r := result(func() error {
		_, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", fake.BlackholePort))
		return err
	})
	notYet(t, r)
	cancel()
	if err := wait(t, r); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled dial: %v, want context.Canceled", err)
	}
	// Timeout bounds it, as a timeout error.
	d.Timeout = 30 * time.Millisecond
	_, err = d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fake.BlackholePort))
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("timed-out dial: %v", err)
	}
}

// net/http runs over gonet conns: server on a Listener, client through
// the Dialer.
func TestHTTPOverGonet(t *testing.T) {
	d, _ := newFakeDialer(t)
	ln, err := d.Listen(context.Background(), "tcp", "127.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("payload ", 50000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got %d", len(b))
			return
		}
		io.WriteString(w, body)
	})}
	served := result(func() error { return srv.Serve(ln) })
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testWait}
	for i := 0; i < 3; i++ { // keep-alive reuses the conn
		resp, err := client.Get("http://127.0.0.1/x")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != body {
			t.Fatalf("GET: %d bytes, %v", len(b), err)
		}
	}
	resp, err := client.Post("http://localhost/up", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("got %d", len(body)) {
		t.Errorf("POST answer %q", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := wait(t, served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
}
