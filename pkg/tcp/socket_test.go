package tcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

// inetHost is a stack with the whole socket layer (socket.NewInet, so
// TCP through the registry) on an emulated network.
func inetHost(t *testing.T, nw *emu.Network, addrs ...string) (*socket.Inet, *gonet.Dialer) {
	t.Helper()
	return inetHostPort(t, nw, emu.PortConfig{}, addrs...)
}

// inetHostPort is inetHost on a port configured as pc (impairments).
func inetHostPort(t *testing.T, nw *emu.Network, pc emu.PortConfig, addrs ...string) (*socket.Inet, *gonet.Dialer) {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(nw.NewPort(pc), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	in := socket.NewInet(s)
	return in, &gonet.Dialer{Layer: in.Layer, Cred: transport.Cred{Privileged: true}}
}

// bulkHandler answers a GET with body and a POST with the length and
// SHA-256 of what was posted.
func bulkHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		io.WriteString(w, body)
	})
}

// postSum posts 2 MiB to a bulkHandler at url, checks its answer and
// returns what it posted.
func postSum(t *testing.T, client *http.Client, url string) []byte {
	t.Helper()
	up := bytes.Repeat([]byte("stackbox"), 1<<18) // 2 MiB
	resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(up), sha256.Sum256(up)); string(b) != want {
		t.Errorf("POST answer %q, want %q", b, want)
	}
	return up
}

// TestHTTPBetweenStacks: net/http over gonet conns over our TCP, between
// two stacks: GETs on one kept-alive connection, a large POST, both
// address families, and the server's shutdown.
func TestHTTPBetweenStacks(t *testing.T) {
	nw := emu.NewNetwork(11)
	t.Cleanup(func() { nw.Close() })
	cin, cd := inetHost(t, nw, "10.0.0.1/24", "2001:db8::1/64")
	sin, sd := inetHost(t, nw, "10.0.0.2/24", "2001:db8::2/64")
	ln, err := sd.Listen(context.Background(), "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	srv := &http.Server{Handler: bulkHandler(body)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{DialContext: cd.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, host := range []string{"10.0.0.2", "[2001:db8::2]"} {
		for range 3 {
			resp, err := client.Get("http://" + host + "/x")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != body {
				t.Fatalf("GET %s: %d bytes, %v", host, len(b), err)
			}
		}
	}
	postSum(t, client, "http://10.0.0.2/up")
	// One connection per family carried the GETs (keep-alive), as netstat
	// on the client shows.
	est := 0
	for _, e := range cin.Endpoints() {
		if e.Proto[:3] == "tcp" && e.State == "ESTABLISHED" {
			est++
		}
	}
	if est < 2 {
		t.Errorf("client has %d established connections, want the kept-alive ones: %+v", est, cin.Endpoints())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	_ = sin
}

// TestHTTPSBetweenStacks: crypto/tls and net/http over our TCP between
// two stacks, on a link that loses, reorders and duplicates frames: an
// HTTPS GET of 1 MiB and a 2 MiB POST arrive intact, and a raw TLS
// stream half-closed with CloseWrite (close_notify, then our FIN) still
// gets the server's answer after it.
func TestHTTPSBetweenStacks(t *testing.T) {
	nw := emu.NewNetwork(13)
	t.Cleanup(func() { nw.Close() })
	pc := emu.PortConfig{Out: emu.Impairments{Loss: 0.02, Reorder: 0.02, Duplicate: 0.01, Delay: time.Millisecond}}
	_, cd := inetHostPort(t, nw, pc, "10.0.0.1/24")
	_, sd := inetHostPort(t, nw, pc, "10.0.0.2/24")
	ln, err := sd.Listen(context.Background(), "tcp", "10.0.0.2:443")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	// httptest brings the certificate and a client that trusts it; the
	// loopback listener it opens is swapped for ours before it starts.
	srv := httptest.NewUnstartedServer(bulkHandler(body))
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Timeout = 30 * time.Second
	tr := client.Transport.(*http.Transport)
	tr.DialContext = cd.DialContext
	tr.TLSClientConfig.ServerName = "example.com" // the name httptest's certificate holds
	resp, err := client.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != body || resp.TLS == nil {
		t.Fatalf("GET: %d bytes, %v, TLS %v", len(b), err, resp.TLS != nil)
	}
	up := postSum(t, client, srv.URL+"/up")
	tr.CloseIdleConnections()

	// A raw TLS stream with half-close, on a listener of its own.
	ln2, err := sd.Listen(context.Background(), "tcp", "10.0.0.2:8443")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	tln := tls.NewListener(ln2, srv.TLS)
	answered := make(chan error, 1)
	go func() {
		c, err := tln.Accept()
		if err != nil {
			answered <- err
			return
		}
		defer c.Close()
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil { // until close_notify
			answered <- err
			return
		}
		_, err = fmt.Fprintf(c, "%x", h.Sum(nil))
		answered <- err
	}()
	raw, err := cd.Dial("tcp", "10.0.0.2:8443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, tr.TLSClientConfig.Clone())
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	defer tc.Close()
	if _, err := tc.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("reading after CloseWrite: %v", err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(up)); string(got) != want {
		t.Errorf("answer after half-close %q, want %q", got, want)
	}
	if err := <-answered; err != nil {
		t.Errorf("server: %v", err)
	}
}

// TestEpollOverTCP: epoll on real TCP sockets between two stacks, as an
// event loop drives them: EPOLLIN on a listener with a connection
// waiting, EPOLLOUT when a non-blocking connect completes, EPOLLIN for
// data, EPOLLIN|EPOLLRDHUP for the peer's FIN, EPOLLERR|EPOLLHUP after
// its RST, and EPOLLOUT|EPOLLERR|EPOLLHUP with SO_ERROR ECONNREFUSED for a
// refused connect (Linux tcp_poll).
func TestEpollOverTCP(t *testing.T) {
	nw := emu.NewNetwork(14)
	t.Cleanup(func() { nw.Close() })
	cin, _ := inetHost(t, nw, "10.0.0.1/24")
	sin, _ := inetHost(t, nw, "10.0.0.2/24")
	cred := transport.Cred{Privileged: true}
	sock := func(l *socket.Layer) *socket.Socket {
		s, err := l.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0, cred)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// expect waits up to 5 s for one event on ep with all of want set.
	expect := func(ep *socket.Epoll, data uint64, want uint32) uint32 {
		t.Helper()
		ev := make([]socket.EpollEvent, 4)
		n, err := ep.Wait(ev, 5*time.Second)
		if err != nil || n != 1 || ev[0].Data != data || ev[0].Events&want != want {
			t.Fatalf("epoll: %d events %+v (%v), want %#x for %d", n, ev[:n], err, want, data)
		}
		return ev[0].Events
	}
	server := addr4(7)
	lis := sock(sin.Layer)
	if err := lis.Bind(server); err != nil {
		t.Fatal(err)
	}
	if err := lis.Listen(8); err != nil {
		t.Fatal(err)
	}
	sep, cep := sin.Layer.EpollCreate(), cin.Layer.EpollCreate()
	t.Cleanup(func() { sep.Close(); cep.Close() })
	sep.Ctl(socket.EPOLL_CTL_ADD, lis, socket.EpollEvent{Events: socket.EPOLLIN, Data: 1})

	c := sock(cin.Layer)
	if err := c.Connect(server); !errors.Is(err, syscall.EINPROGRESS) {
		t.Fatalf("non-blocking connect: %v, want EINPROGRESS", err)
	}
	cep.Ctl(socket.EPOLL_CTL_ADD, c, socket.EpollEvent{Events: socket.EPOLLOUT | socket.EPOLLIN | socket.EPOLLRDHUP, Data: 2})
	if ev := expect(cep, 2, socket.EPOLLOUT); ev&(socket.EPOLLERR|socket.EPOLLHUP|socket.EPOLLIN) != 0 {
		t.Fatalf("connected: events %#x, want only EPOLLOUT", ev)
	}
	expect(sep, 1, socket.EPOLLIN)
	conn, _, err := lis.Accept4(syscall.SOCK_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sep.Ctl(socket.EPOLL_CTL_ADD, conn, socket.EpollEvent{Events: socket.EPOLLIN | socket.EPOLLRDHUP, Data: 3})
	cep.Ctl(socket.EPOLL_CTL_MOD, c, socket.EpollEvent{Events: socket.EPOLLIN | socket.EPOLLRDHUP, Data: 2})

	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if ev := expect(sep, 3, socket.EPOLLIN); ev&socket.EPOLLRDHUP != 0 {
		t.Fatalf("data: events %#x, RDHUP before any FIN", ev)
	}
	buf := make([]byte, 16)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	c.Shutdown(syscall.SHUT_WR)
	expect(sep, 3, socket.EPOLLIN|socket.EPOLLRDHUP)
	if n, err := conn.Read(buf); n != 0 || err != nil {
		t.Fatalf("read after FIN: %d, %v, want EOF", n, err)
	}
	// The server aborts (SO_LINGER 0): the client sees the RST.
	if err := conn.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	expect(cep, 2, socket.EPOLLERR|socket.EPOLLHUP)
	if v, err := c.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || v != int(syscall.ECONNRESET) {
		t.Fatalf("SO_ERROR after the RST: %v (%v), want ECONNRESET", v, err)
	}

	// A refused connect (c, hung up, stays ready: level-triggered).
	cep.Ctl(socket.EPOLL_CTL_DEL, c, socket.EpollEvent{})
	r := sock(cin.Layer)
	if err := r.Connect(addr4(9)); !errors.Is(err, syscall.EINPROGRESS) {
		t.Fatalf("connect: %v", err)
	}
	cep.Ctl(socket.EPOLL_CTL_ADD, r, socket.EpollEvent{Events: socket.EPOLLOUT, Data: 4})
	expect(cep, 4, socket.EPOLLOUT|socket.EPOLLERR|socket.EPOLLHUP)
	if v, err := r.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || v != int(syscall.ECONNREFUSED) {
		t.Fatalf("SO_ERROR of a refused connect: %v (%v), want ECONNREFUSED", v, err)
	}
}

// addr4 is 10.0.0.2:port.
func addr4(port int) *syscall.SockaddrInet4 {
	return &syscall.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 0, 2}}
}

// TestDialRefusedThroughSocketLayer: a refused connect surfaces as a
// *net.OpError wrapping ECONNREFUSED, as from Go's net package.
func TestDialRefusedThroughSocketLayer(t *testing.T) {
	nw := emu.NewNetwork(12)
	t.Cleanup(func() { nw.Close() })
	_, cd := inetHost(t, nw, "10.0.0.1/24")
	inetHost(t, nw, "10.0.0.2/24")
	_, err := cd.Dial("tcp", "10.0.0.2:81")
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v", err)
	}
}
