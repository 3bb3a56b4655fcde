package nc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/applettest"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// The shared applet-test scaffolding (internal/applettest).
var (
	opener = applettest.Opener
	pair   = applettest.Pair
)

type syncBuf = applettest.SyncBuf

type result struct {
	out, err string
	status   int
}

// proc is an nc running in the background.
type proc struct {
	out, err syncBuf
	status   int
	done     chan struct{}
	cancel   context.CancelFunc
}

// start runs nc on h with stdin in the background; it is cancelled
// after 30 s at the latest.
func start(t *testing.T, h host.Host, stdin io.Reader, args ...string) *proc {
	t.Helper()
	return startWith(t, h, stdin, nil, args...)
}

func startWith(t *testing.T, h host.Host, stdin io.Reader, stdout io.Writer, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p := &proc{done: make(chan struct{}), cancel: cancel}
	env := &applet.Env{Stdin: stdin, Stdout: &p.out, Stderr: &p.err, Getenv: func(string) string { return "" }}
	if stdout != nil {
		env.Stdout = stdout
	}
	go func() {
		defer close(p.done)
		p.status = Applet(opener(h)).Main(ctx, env, append([]string{"nc"}, args...))
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// wait waits for p to exit by itself, failing the test after d.
func (p *proc) wait(t *testing.T, d time.Duration, what string) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cancel()
		<-p.done
		t.Fatalf("%s: still running after %v; stdout %q stderr %q", what, d, p.out.String(), p.err.String())
	}
	return result{p.out.String(), p.err.String(), p.status}
}

// stop cancels p (SIGINT) and returns what it did.
func (p *proc) stop() result {
	p.cancel()
	<-p.done
	return result{p.out.String(), p.err.String(), p.status}
}

// runNC runs nc to completion (at most 20 s).
func runNC(t *testing.T, h host.Host, stdin string, args ...string) result {
	t.Helper()
	return start(t, h, strings.NewReader(stdin), args...).wait(t, 20*time.Second, strings.Join(args, " "))
}

// waitListen waits (at most 5 s) until h has a socket on port in state
// (LISTEN for TCP, "" for a bound UDP socket).
func waitListen(t *testing.T, h host.Host, proto string, port uint16) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		socks, err := h.Sockets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			if s.Local.Port() == port && strings.HasPrefix(s.Proto, proto) && (proto == "udp" || s.State == "LISTEN") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s socket on port %d after 5 s", proto, port)
}

// Our client to our listener: the listener's -v lines name the client's
// address and port, the client's -v line the service (* with -n), the
// data arrives, and -N's half-close ends both with status 0.
func TestClientToListener(t *testing.T) {
	a, b := pair(t, 71)
	l := start(t, b, strings.NewReader(""), "-lvn", "5001")
	waitListen(t, b, "tcp", 5001)
	c := runNC(t, a, "hello\n", "-vn", "-N", "10.71.0.2", "5001")
	if c.status != 0 || c.err != "Connection to 10.71.0.2 5001 port [tcp/*] succeeded!\n" || c.out != "" {
		t.Errorf("client: exit %d, stdout %q, stderr %q", c.status, c.out, c.err)
	}
	r := l.wait(t, 10*time.Second, "listener")
	if r.status != 0 || r.out != "hello\n" {
		t.Errorf("listener: exit %d, stdout %q", r.status, r.out)
	}
	if !regexp.MustCompile(`^Listening on 0\.0\.0\.0 5001\nConnection received on 10\.71\.0\.1 \d+\n$`).MatchString(r.err) {
		t.Errorf("listener stderr %q", r.err)
	}
}

// The listener sends: with -N its stdin's EOF half-closes, a -d client
// prints what came and exits at the end of the stream, and the listener
// exits when the client closes.
func TestListenerToClient(t *testing.T) {
	a, b := pair(t, 72)
	l := start(t, b, strings.NewReader("reply-from-server\n"), "-N", "-l", "-p", "5001")
	waitListen(t, b, "tcp", 5001)
	c := runNC(t, a, "", "-d", "10.72.0.2", "5001")
	if c.status != 0 || c.out != "reply-from-server\n" || c.err != "" {
		t.Errorf("client: exit %d, stdout %q, stderr %q", c.status, c.out, c.err)
	}
	if r := l.wait(t, 10*time.Second, "listener"); r.status != 0 || r.out != "" || r.err != "" {
		t.Errorf("listener: %+v", r)
	}
}

// -k keeps accepting: two clients one after another, both delivered;
// the listener runs until it is stopped.
func TestKeepListening(t *testing.T) {
	a, b := pair(t, 73)
	l := start(t, b, strings.NewReader(""), "-lk", "5001")
	waitListen(t, b, "tcp", 5001)
	for _, s := range []string{"one\n", "two\n"} {
		if c := runNC(t, a, s, "-N", "10.73.0.2", "5001"); c.status != 0 {
			t.Fatalf("client %q: %+v", s, c)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.out.String() != "one\ntwo\n" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-l.done:
		t.Fatal("-k listener exited after its clients")
	default:
	}
	if r := l.stop(); r.out != "one\ntwo\n" {
		t.Errorf("-k listener output %q", r.out)
	}
}

// Without -N, EOF on stdin does not half-close: a server that waits for
// EOF never sees it. With -N it does, and answers; nc prints the answer
// and exits when the server closes.
func TestHalfClose(t *testing.T) {
	a, b := pair(t, 74)
	ln, err := b.Listen(context.Background(), "tcp4", "10.74.0.2:5009", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(time.Second))
				got, err := io.ReadAll(c)
				if err != nil {
					fmt.Fprintf(c, "no EOF, got %q\n", got)
					return
				}
				fmt.Fprintf(c, "EOF after %q\n", got)
			}()
		}
	}()
	if r := runNC(t, a, "x\n", "-N", "10.74.0.2", "5009"); r.status != 0 || r.out != "EOF after \"x\\n\"\n" {
		t.Errorf("-N: %+v", r)
	}
	if r := runNC(t, a, "x\n", "10.74.0.2", "5009"); r.status != 0 || r.out != "no EOF, got \"x\\n\"\n" {
		t.Errorf("without -N: %+v", r)
	}
	// -q 0 quits at stdin's EOF, before the server's answer.
	if r := runNC(t, a, "x\n", "-q", "0", "10.74.0.2", "5009"); r.status != 0 || r.out != "" {
		t.Errorf("-q 0: %+v", r)
	}
}

// UDP both ways: the client's datagram reaches the listener, which
// answers its first sender; the client's -w 1 ends it after a quiet
// second; the listener never exits by itself.
func TestUDP(t *testing.T) {
	a, b := pair(t, 75)
	l := start(t, b, strings.NewReader("udp-back\n"), "-u", "-lvn", "5002")
	waitListen(t, b, "udp", 5002)
	began := time.Now()
	c := runNC(t, a, "udp-hi\n", "-u", "-w", "1", "10.75.0.2", "5002")
	if c.status != 0 || c.out != "udp-back\n" {
		t.Errorf("client: %+v", c)
	}
	if el := time.Since(began); el < time.Second {
		t.Errorf("client with -w 1 exited after %v", el)
	}
	select {
	case <-l.done:
		t.Fatal("UDP listener exited")
	case <-time.After(100 * time.Millisecond):
	}
	r := l.stop()
	if r.out != "udp-hi\n" {
		t.Errorf("listener stdout %q", r.out)
	}
	if !regexp.MustCompile(`^Bound on 0\.0\.0\.0 5002\nConnection received on 10\.75\.0\.1 \d+\n$`).MatchString(r.err) {
		t.Errorf("listener stderr %q", r.err)
	}
}

// -z scans: a range and a list with refused and open ports, each with
// its -v line; the service name unless -n; status 0 when one port is
// open, 1 when none is; UDP ports answer port unreachable when closed.
func TestScan(t *testing.T) {
	a, b := pair(t, 76)
	ctx := context.Background()
	for _, p := range []string{"5004", "8080"} {
		ln, err := b.Listen(ctx, "tcp4", "10.76.0.2:"+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	r := runNC(t, a, "", "-zv", "10.76.0.2", "5003-5005", "8080")
	want := "nc: connect to 10.76.0.2 port 5003 (tcp) failed: Connection refused\n" +
		"Connection to 10.76.0.2 5004 port [tcp/*] succeeded!\n" +
		"nc: connect to 10.76.0.2 port 5005 (tcp) failed: Connection refused\n" +
		"Connection to 10.76.0.2 8080 port [tcp/http-alt] succeeded!\n"
	if r.status != 0 || r.err != want || r.out != "" {
		t.Errorf("-zv: exit %d\n%s\nwant\n%s", r.status, r.err, want)
	}
	if r := runNC(t, a, "", "-zvn", "10.76.0.2", "8080"); r.err != "Connection to 10.76.0.2 8080 port [tcp/*] succeeded!\n" {
		t.Errorf("-zvn: %+v", r)
	}
	if r := runNC(t, a, "", "-z", "10.76.0.2", "5005-5003"); r.status != 0 || r.err != "" {
		t.Errorf("-z reversed range with an open port: %+v", r)
	}
	if r := runNC(t, a, "", "-z", "10.76.0.2", "5005"); r.status != 1 || r.err != "" {
		t.Errorf("-z closed port: %+v", r)
	}
	if r := runNC(t, a, "", "10.76.0.2", "5005"); r.status != 1 || r.err != "" {
		t.Errorf("connect to a closed port without -v: %+v", r)
	}

	pc, err := b.ListenPacket(ctx, "udp4", "10.76.0.2:53", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if r := runNC(t, a, "", "-zvu", "10.76.0.2", "53"); r.status != 0 || r.err != "Connection to 10.76.0.2 53 port [udp/domain] succeeded!\n" {
		t.Errorf("-zvu open: %+v", r)
	}
	if r := runNC(t, a, "", "-zvu", "10.76.0.2", "9999"); r.status != 1 || r.err != "" {
		t.Errorf("-zvu closed: %+v", r)
	}
}

// -w bounds a connect that gets no answer (an address nobody has), with
// netcat's "timed out" line and status 1.
func TestConnectTimeout(t *testing.T) {
	a, _ := pair(t, 77)
	began := time.Now()
	r := runNC(t, a, "", "-zv", "-w", "1", "10.77.0.99", "80")
	if r.status != 1 || r.err != "nc: connect to 10.77.0.99 port 80 (tcp) timed out: Operation now in progress\n" {
		t.Errorf("%+v", r)
	}
	if el := time.Since(began); el < 900*time.Millisecond || el > 5*time.Second {
		t.Errorf("-w 1 timed out after %v", el)
	}
}

// A refused connection with -v prints connect's error and exits 1; -s
// binds the source, and an address that is not ours cannot be bound.
func TestRefusedAndSource(t *testing.T) {
	a, b := pair(t, 78)
	if r := runNC(t, a, "", "-v", "10.78.0.2", "81"); r.status != 1 || r.err != "nc: connect to 10.78.0.2 port 81 (tcp) failed: Connection refused\n" {
		t.Errorf("refused: %+v", r)
	}
	l := start(t, b, strings.NewReader(""), "-lvn", "10.78.0.2", "5001")
	waitListen(t, b, "tcp", 5001)
	if r := runNC(t, a, "src\n", "-N", "-s", "10.78.0.1", "-p", "41234", "10.78.0.2", "5001"); r.status != 0 {
		t.Errorf("-s -p: %+v", r)
	}
	r := l.wait(t, 10*time.Second, "listener")
	if r.out != "src\n" || !strings.Contains(r.err, "Listening on 10.78.0.2 5001\nConnection received on 10.78.0.1 41234\n") {
		t.Errorf("listener: %+v", r)
	}
	if r := runNC(t, a, "", "-s", "10.78.0.9", "10.78.0.2", "5001"); r.status != 1 || r.err != "nc: bind failed: Cannot assign requested address\n" {
		t.Errorf("-s foreign address: %+v", r)
	}
}

// 8 MiB through nc both ways without loss: client to listener, then the
// listener sending to a -d client, compared by SHA-256.
func TestLargeTransfer(t *testing.T) {
	a, b := pair(t, 79)
	data := make([]byte, 8<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	for i, dir := range []string{"client to listener", "listener to client"} {
		port := fmt.Sprint(5001 + i)
		h := sha256.New()
		var count countWriter
		sink := io.MultiWriter(h, &count)
		var l *proc
		var c result
		if i == 0 {
			l = startWith(t, b, strings.NewReader(""), sink, "-l", port)
			waitListen(t, b, "tcp", uint16(5001+i))
			c = runNC(t, a, string(data), "-N", "10.79.0.2", port)
		} else {
			l = start(t, b, bytes.NewReader(data), "-N", "-l", port)
			waitListen(t, b, "tcp", uint16(5001+i))
			p := startWith(t, a, strings.NewReader(""), sink, "-d", "10.79.0.2", port)
			c = p.wait(t, 20*time.Second, "client")
		}
		r := l.wait(t, 20*time.Second, "listener")
		if c.status != 0 || r.status != 0 {
			t.Fatalf("%s: client %+v, listener %+v", dir, c, r)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("%s: %d bytes arrived, SHA-256 %x, want %x", dir, count.n, got, want)
		}
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func multi(w ...io.Writer) io.Writer { return io.MultiWriter(w...) }

// Against a server that accepts and stays silent: -w 1 ends the session
// a quiet second after stdin's EOF, -q 1 a second after it, and without
// either nc keeps the connection (OpenBSD: EOF on stdin alone ends
// nothing).
func TestIdleAndQuit(t *testing.T) {
	a, b := pair(t, 82)
	ln, err := b.Listen(context.Background(), "tcp4", "10.82.0.2:5010", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	for _, flag := range []string{"-w", "-q"} {
		began := time.Now()
		r := runNC(t, a, "x\n", flag, "1", "10.82.0.2", "5010")
		if el := time.Since(began); r.status != 0 || el < 900*time.Millisecond || el > 5*time.Second {
			t.Errorf("%s 1: exit %d after %v (%+v)", flag, r.status, el, r)
		}
	}
	p := start(t, a, strings.NewReader("x\n"), "10.82.0.2", "5010")
	select {
	case <-p.done:
		t.Errorf("without -w or -q nc exited at stdin's EOF: %+v", p.stop())
	case <-time.After(1500 * time.Millisecond):
		if r := p.stop(); r.status != 130 {
			t.Errorf("interrupted: exit %d, want 130", r.status)
		}
	}
}

// IPv6: -6 listens on ::, and a client reaches it by an IPv6 literal.
func TestIPv6(t *testing.T) {
	a, b := pair(t, 83)
	ctx := context.Background()
	for i, h := range []*stackhost.Host{a, b} {
		if err := h.AddAddress(ctx, "eth0", netip.MustParsePrefix(fmt.Sprintf("fd83::%d/64", i+1)), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	// Until DAD ends the addresses are tentative and cannot be used.
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range []*stackhost.Host{a, b} {
		for tentative := true; tentative; {
			it, err := h.Interface(ctx, "eth0")
			if err != nil {
				t.Fatal(err)
			}
			tentative = false
			for _, ad := range it.Addrs {
				tentative = tentative || ad.State == "tentative"
			}
			if time.Now().After(deadline) {
				t.Fatalf("addresses still tentative: %+v", it.Addrs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	l := start(t, b, strings.NewReader(""), "-6", "-lvn", "5001")
	waitListen(t, b, "tcp", 5001)
	if c := runNC(t, a, "six\n", "-vn", "-N", "fd83::2", "5001"); c.status != 0 || c.err != "Connection to fd83::2 5001 port [tcp/*] succeeded!\n" {
		t.Errorf("client: %+v", c)
	}
	r := l.wait(t, 10*time.Second, "listener")
	if r.status != 0 || r.out != "six\n" || !regexp.MustCompile(`^Listening on :: 5001\nConnection received on fd83::1 \d+\n$`).MatchString(r.err) {
		t.Errorf("listener: %+v", r)
	}
}
