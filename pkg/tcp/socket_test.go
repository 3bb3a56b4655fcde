package tcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
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
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		io.WriteString(w, body)
	})}
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
	up := bytes.Repeat([]byte("stackbox"), 1<<18) // 2 MiB
	resp, err := client.Post("http://10.0.0.2/up", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(up), sha256.Sum256(up)); string(b) != want {
		t.Errorf("POST answer %q, want %q", b, want)
	}
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
