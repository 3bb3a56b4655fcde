//go:build linux

package gonet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// The Go adapters against the Linux kernel, as the applets will use them:
// our stack behind a TAP at 10.82.0.2 / fd82::2, the kernel in the lab
// namespace at 10.82.0.1 / fd82::1 with Go net sockets as its peers. No
// traffic leaves the namespace.

const ioWait = 5 * time.Second

type gonetLab struct {
	l *netlab.Lab
	d *Dialer
}

func newGonetLab(t *testing.T) *gonetLab {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.82.0.1/24")}})
	l.MustIP(t, "-6", "addr", "add", "fd82::1/64", "dev", tp.Dev, "nodad")
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.82.0.2/24", "fd82::2/64"} {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	// An unprivileged user, as a tool run by anyone: UDP and ping
	// sockets need no privilege.
	return &gonetLab{l: l, d: &Dialer{Layer: socket.NewInet(s).Layer, Cred: transport.Cred{UID: 1000, GID: 1000}}}
}

// kernelUDP opens a kernel UDP socket inside the namespace, closed at the
// end of the test.
func (g *gonetLab) kernelUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := g.l.Do(func() error {
		pc, err := net.ListenPacket(network, addr)
		if err == nil {
			c = pc.(*net.UDPConn)
		}
		return err
	}); err != nil {
		t.Fatalf("kernel socket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInteropDialUDPToKernelEcho(t *testing.T) {
	g := newGonetLab(t)
	for _, c := range []struct{ network, bind, host string }{
		{"udp4", "10.82.0.1:0", "10.82.0.1"},
		{"udp6", "[fd82::1]:0", "fd82::1"},
	} {
		srv := g.kernelUDP(t, c.network, c.bind)
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := srv.ReadFrom(buf)
				if err != nil {
					return
				}
				srv.WriteTo(buf[:n], from)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), ioWait)
		conn, err := g.d.DialContext(ctx, c.network, net.JoinHostPort(c.host, itoa(srv.LocalAddr().(*net.UDPAddr).Port)))
		cancel()
		if err != nil {
			t.Fatalf("%s: dial: %v", c.network, err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(ioWait))
		buf := make([]byte, 64)
		// The first datagram may wait for ARP/NDP; later ones do not.
		for i, msg := range []string{"hello kernel", "again"} {
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatalf("%s: write %d: %v", c.network, i, err)
			}
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != msg {
				t.Fatalf("%s: echo %d = %q, %v", c.network, i, buf[:n], err)
			}
		}
		if ra := conn.RemoteAddr().(*net.UDPAddr); ra.IP.String() != c.host {
			t.Errorf("%s: RemoteAddr %v", c.network, ra)
		}
	}
}

func TestInteropKernelToOurPacketConn(t *testing.T) {
	g := newGonetLab(t)
	ours, err := g.d.ListenPacket(context.Background(), "udp", ":0") // dual-stack
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	port := ours.LocalAddr().(*net.UDPAddr).Port
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := ours.ReadFrom(buf)
			if err != nil {
				return
			}
			ours.WriteTo(append([]byte("re: "), buf[:n]...), from)
		}
	}()
	for _, c := range []struct{ network, bind, to string }{
		{"udp4", "10.82.0.1:0", "10.82.0.2"},
		{"udp6", "[fd82::1]:0", "fd82::2"},
	} {
		k := g.kernelUDP(t, c.network, c.bind)
		k.SetDeadline(time.Now().Add(ioWait))
		to := &net.UDPAddr{IP: net.ParseIP(c.to), Port: port}
		if _, err := k.WriteTo([]byte(c.network), to); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, from, err := k.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "re: "+c.network {
			t.Fatalf("%s: kernel got %q, %v", c.network, buf[:n], err)
		}
		// A dual-stack socket answers an IPv4 peer from its IPv4 address.
		if got := from.(*net.UDPAddr).IP.String(); got != c.to {
			t.Errorf("%s: reply from %s, want %s", c.network, got, c.to)
		}
	}
}

func TestInteropConnectedUDPRefusedByKernel(t *testing.T) {
	g := newGonetLab(t)
	// A port nothing listens on: bind one and close it again.
	k := g.kernelUDP(t, "udp4", "10.82.0.1:0")
	port := k.LocalAddr().(*net.UDPAddr).Port
	k.Close()
	conn, err := g.d.Dial("udp4", net.JoinHostPort("10.82.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioWait))
	buf := make([]byte, 16)
	var rerr error
	// The kernel rate-limits its errors; a few datagrams make sure one
	// comes back.
	for i := 0; i < 5 && rerr == nil; i++ {
		conn.Write([]byte("anyone?"))
		conn.SetReadDeadline(time.Now().Add(time.Second))
		_, rerr = conn.Read(buf)
		if errors.Is(rerr, syscall.ECONNREFUSED) {
			break
		}
		if ne, ok := rerr.(net.Error); ok && ne.Timeout() {
			rerr = nil
		}
	}
	if !errors.Is(rerr, syscall.ECONNREFUSED) {
		t.Fatalf("read after the kernel's port unreachable: %v, want ECONNREFUSED", rerr)
	}
	var oe *net.OpError
	if !errors.As(rerr, &oe) || oe.Op != "read" {
		t.Errorf("error %T %v is not a read *net.OpError", rerr, rerr)
	}
}

func TestInteropPingSocketToKernel(t *testing.T) {
	g := newGonetLab(t)
	for _, c := range []struct {
		network, host string
		v6            bool
	}{
		{"ping4", "10.82.0.1", false},
		{"ping6", "fd82::1", true},
	} {
		pc, err := g.d.ListenPacket(context.Background(), c.network, "")
		if err != nil {
			t.Fatalf("%s: %v", c.network, err)
		}
		defer pc.Close()
		pc.SetDeadline(time.Now().Add(ioWait))
		var msg []byte
		if c.v6 {
			f := wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.ICMPv6EchoRest(0, 7), PayloadLen: 4}
			msg = make([]byte, f.Len()+4)
			f.Encode(msg)
		} else {
			f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Seq: 7, PayloadLen: 4}
			msg = make([]byte, f.Len()+4)
			f.Encode(msg)
		}
		copy(msg[len(msg)-4:], "sbx!")
		if _, err := pc.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(c.host)}); err != nil {
			t.Fatalf("%s: write: %v", c.network, err)
		}
		buf := make([]byte, 128)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: no echo reply: %v", c.network, err)
		}
		wantType := wire.ICMPv4EchoReply
		if c.v6 {
			wantType = wire.ICMPv6EchoReply
		}
		if n != len(msg) || buf[0] != wantType || string(buf[n-4:n]) != "sbx!" || buf[7] != 7 {
			t.Errorf("%s: reply % x", c.network, buf[:n])
		}
		if ip := from.(*net.IPAddr).IP.String(); ip != c.host {
			t.Errorf("%s: reply from %s", c.network, ip)
		}
	}
}
