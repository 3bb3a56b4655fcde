package gonet

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/ping"
	"github.com/stackbox/stackbox/pkg/raw"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/udp"
)

// Tests over the real protocols on a loopback stack.

func newStackDialer(t *testing.T) *Dialer {
	d, _ := newStackDialerPing(t)
	return d
}

func newStackDialerPing(t *testing.T) (*Dialer, *ping.Protocol) {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	reg := &transport.Registry{}
	udp.New(s).Register(reg)
	p := ping.New(s)
	p.Register(reg)
	raw.New(s).Register(reg)
	l := socket.NewWithOptions(reg, socket.Options{Interfaces: socket.StackInterfaces(s)})
	return &Dialer{Layer: l, Cred: transport.Cred{Privileged: true}}, p
}

func TestUDPPacketConnOnStack(t *testing.T) {
	d := newStackDialer(t)
	ctx := context.Background()
	// "udp" on the wildcard is dual-stack, as in Go.
	srv, err := d.ListenPacket(ctx, "udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if s := srv.(*PacketConn).Socket(); s.Family() != syscall.AF_INET6 {
		t.Errorf("udp wildcard socket is family %d, want AF_INET6", s.Family())
	}
	port := srv.LocalAddr().(*net.UDPAddr).Port
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	for _, c := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1"}, {"udp6", "::1"}, {"udp", "localhost"},
	} {
		conn, err := d.DialContext(ctx, c.network, net.JoinHostPort(c.addr, itoa(port)))
		if err != nil {
			t.Fatalf("%s: %v", c.network, err)
		}
		conn.SetDeadline(time.Now().Add(testWait))
		if _, err := conn.Write([]byte("ping " + c.network)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "ping "+c.network {
			t.Fatalf("%s echo = %q, %v", c.network, buf[:n], err)
		}
		// The server saw an IPv4 client as IPv4, not ::ffff:.
		la := conn.LocalAddr().(*net.UDPAddr)
		if c.network == "udp4" && la.IP.To4() == nil {
			t.Errorf("udp4 local address %v", la)
		}
		conn.Close()
	}
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

// ECONNREFUSED from the stack's ICMP port unreachable surfaces through
// gonet with errors.Is.
func TestUDPRefusedOnStack(t *testing.T) {
	d := newStackDialer(t)
	pc, err := d.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	c, err := d.Dial("udp", addr)
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

// TCP does not exist yet: the registry's error, as an *net.OpError.
func TestTCPNotYet(t *testing.T) {
	d := newStackDialer(t)
	_, err := d.Dial("tcp", "127.0.0.1:80")
	var oe *net.OpError
	if !errors.As(err, &oe) || !(errors.Is(err, syscall.ESOCKTNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT)) {
		t.Errorf("dial tcp without TCP: %v", err)
	}
}

// echoRequest is an ICMP(v6) echo request with a zero checksum (the ping
// socket fills it; the raw test computes it).
func echoRequest(typ byte, id, seq uint16, payload string) []byte {
	b := []byte{typ, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}
	return append(b, payload...)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestPingPacketConn(t *testing.T) {
	d := newStackDialer(t)
	for _, c := range []struct {
		network, dst string
		req, reply   byte
	}{{"ping4", "127.0.0.1", 8, 0}, {"ping6", "::1", 128, 129}} {
		pc, err := d.ListenPacket(context.Background(), c.network, "")
		if err != nil {
			t.Fatalf("%s: %v", c.network, err)
		}
		pc.SetDeadline(time.Now().Add(testWait))
		dst := &net.IPAddr{IP: net.ParseIP(c.dst)}
		if _, err := pc.WriteTo(echoRequest(c.req, 0, 1, "hello"), dst); err != nil {
			t.Fatalf("%s write: %v", c.network, err)
		}
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s read: %v", c.network, err)
		}
		ip, ok := from.(*net.IPAddr)
		if !ok || !ip.IP.Equal(dst.IP) {
			t.Errorf("%s: from %v (%T), want *net.IPAddr %v", c.network, from, from, dst)
		}
		if n < 8 || buf[0] != c.reply || string(buf[8:n]) != "hello" {
			t.Errorf("%s: reply % x", c.network, buf[:n])
		}
		pc.Close()
	}
}

func TestRawICMPConn(t *testing.T) {
	d := newStackDialer(t)
	c, err := d.Dial("ip4:icmp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.RemoteAddr().(*net.IPAddr); !ok {
		t.Errorf("RemoteAddr is %T, want *net.IPAddr", c.RemoteAddr())
	}
	req := echoRequest(8, 0x1234, 7, "raw")
	cs := checksum(req)
	req[2], req[3] = byte(cs>>8), byte(cs)
	c.SetDeadline(time.Now().Add(testWait))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	// A raw IPv4 socket reads whole IP packets: the request itself (it
	// arrives on lo too) and then the reply.
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no echo reply: %v", err)
		}
		if n < 20 {
			continue
		}
		hl := int(buf[0]&0xf) * 4
		if n >= hl+8 && buf[hl] == 0 && buf[hl+4] == 0x12 && buf[hl+5] == 0x34 {
			return
		}
	}
}

// Unprivileged callers get the protocols' EPERM / EACCES through gonet.
func TestPrivilegeErrors(t *testing.T) {
	d, p := newStackDialerPing(t)
	p.SetGroupRange(1, 0) // Linux's default: nobody
	d.Cred = transport.Cred{UID: 1000, GID: 1000}
	if _, err := d.Dial("ip4:icmp", "127.0.0.1"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("raw socket without privilege: %v, want EPERM", err)
	}
	if _, err := d.ListenPacket(context.Background(), "ping4", ""); !errors.Is(err, syscall.EACCES) {
		t.Errorf("ping socket outside ping_group_range: %v, want EACCES", err)
	}
}

// ReadMsg and WriteMsg carry Linux cmsgs; buffer sizes reach the
// endpoint.
func TestPacketConnMsg(t *testing.T) {
	d := newStackDialer(t)
	pc, err := d.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := pc.(*PacketConn)
	if err := p.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Socket().GetSockOptInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF); v != 8192 {
		t.Errorf("SO_RCVBUF = %d after SetReadBuffer(4096), want Linux's doubled 8192", v)
	}
	if err := p.Socket().SetSockOptInt(syscall.IPPROTO_IP, syscall.IP_RECVTTL, 1); err != nil {
		t.Fatal(err)
	}
	n, oobn, err := p.WriteMsg([]byte("ttl"), socket.TTLControl(syscall.AF_INET, 9), p.LocalAddr())
	if err != nil || n != 3 || oobn == 0 {
		t.Fatalf("WriteMsg = %d, %d, %v", n, oobn, err)
	}
	p.SetDeadline(time.Now().Add(testWait))
	buf, oob := make([]byte, 10), make([]byte, 64)
	n, oobn, flags, from, err := p.ReadMsg(buf, oob)
	if err != nil || string(buf[:n]) != "ttl" || flags != 0 {
		t.Fatalf("ReadMsg = %q %#x %v", buf[:n], flags, err)
	}
	if _, ok := from.(*net.UDPAddr); !ok {
		t.Errorf("from is %T", from)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 || msgs[0].Header.Type != syscall.IP_TTL || msgs[0].Data[0] != 9 {
		t.Errorf("cmsgs %+v %v", msgs, err)
	}
}

func TestRawIPv6Listen(t *testing.T) {
	d := newStackDialer(t)
	pc, err := d.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::1")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := pc.(*PacketConn).Socket()
	if s.Family() != syscall.AF_INET6 || s.Type() != syscall.SOCK_RAW || s.Protocol() != syscall.IPPROTO_ICMPV6 {
		t.Errorf("socket %d/%d/%d", s.Family(), s.Type(), s.Protocol())
	}
	if a, ok := pc.LocalAddr().(*net.IPAddr); !ok || a.String() != "::1" {
		t.Errorf("LocalAddr = %v (%T)", pc.LocalAddr(), pc.LocalAddr())
	}
	if _, err := d.ListenPacket(context.Background(), "ip4:nope", ""); !errors.As(err, new(net.UnknownNetworkError)) {
		t.Errorf("unknown protocol name: %v", err)
	}
}
