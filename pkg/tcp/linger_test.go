package tcp_test

import (
	"bytes"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

// lingerHost is a stack with the socket layer whose link delays each
// frame it sends by delay.
func lingerHost(t *testing.T, nw *emu.Network, delay time.Duration, addr string) *socket.Inet {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(nw.NewPort(emu.PortConfig{Out: emu.Impairments{Delay: delay}}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(addr)}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	return socket.NewInet(s)
}

// TestLingerClose: close(2) with SO_LINGER {1, 3 s} on a connection with
// data in flight waits until the data and the FIN are acknowledged
// (Linux sk_stream_wait_close), however short or long that takes, but
// no longer than the linger time; then the connection carries on in the
// background (FIN_WAIT1, no reset, as on Linux) and the peer still gets
// every byte and the EOF.
func TestLingerClose(t *testing.T) {
	const delay = 5 * time.Millisecond // each way
	cred := transport.Cred{Privileged: true}
	setup := func(t *testing.T) (client, server *socket.Socket) {
		nw := emu.NewNetwork(3)
		t.Cleanup(func() { nw.Close() })
		cin := lingerHost(t, nw, delay, "10.0.0.1/24")
		sin := lingerHost(t, nw, delay, "10.0.0.2/24")
		l, err := sin.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0, cred)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		if err := l.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192); err != nil {
			t.Fatal(err)
		}
		if err := l.Bind(&syscall.SockaddrInet4{Port: 80}); err != nil {
			t.Fatal(err)
		}
		if err := l.Listen(4); err != nil {
			t.Fatal(err)
		}
		c, err := cin.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0, cred)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1, Linger: 3}); err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(&syscall.SockaddrInet4{Port: 80, Addr: [4]byte{10, 0, 0, 2}}); err != nil {
			t.Fatal(err)
		}
		s, _, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return c, s
	}
	readAll := func(s *socket.Socket) []byte {
		var out bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := s.Read(buf)
			out.Write(buf[:n])
			if n == 0 || err != nil {
				if err != nil && err != io.EOF {
					t.Errorf("read: %v", err)
				}
				return out.Bytes()
			}
		}
	}
	t.Run("acknowledged", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, s := setup(t)
			data := bytes.Repeat([]byte("x"), 4000)
			if _, err := c.Write(data); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte)
			go func() { got <- readAll(s) }()
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			// The FIN's ACK is a round trip away at least.
			if d := time.Since(start); d < 2*delay || d > time.Second {
				t.Errorf("close took %v, want a round trip or so", d)
			}
			if st := c.Info().State; st == "FIN_WAIT1" {
				t.Errorf("close returned in %s", st)
			}
			if b := <-got; !bytes.Equal(b, data) {
				t.Errorf("peer read %d bytes, want %d", len(b), len(data))
			}
		})
	})
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, s := setup(t)
			c.SetNonblock(true) // close lingers all the same, as on Linux
			data := bytes.Repeat([]byte("y"), 64<<10)
			n, err := c.Write(data)
			if err != nil || n <= 8192 {
				t.Fatalf("wrote %d, %v", n, err)
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 3*time.Second || d > 3*time.Second+100*time.Millisecond {
				t.Errorf("close took %v, want the linger time, 3 s", d)
			}
			if st := c.Info().State; st != "FIN_WAIT1" {
				t.Errorf("after the linger time the connection is in %s, want FIN_WAIT1 (carrying on)", st)
			}
			if b := readAll(s); !bytes.Equal(b, data[:n]) {
				t.Errorf("peer read %d bytes, want %d", len(b), n)
			}
		})
	})
}
