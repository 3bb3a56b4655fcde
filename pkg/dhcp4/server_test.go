package dhcp4

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// testServer is a small DHCP server on a peer stackhost: it offers
// 10.70.0.100 (then .101, … after a DECLINE), answers as RFC 2131 §4.3
// says, and records what it received.
type testServer struct {
	h    *stackhost.Host
	conn host.PacketConn

	mu       sync.Mutex
	got      []seen
	next     byte // last octet of the next address offered
	lease    time.Duration
	mtu      int
	nakNext  int  // NAK this many REQUESTs
	noUni    bool // ignore unicast (renewing) REQUESTs
	silent   bool // ignore everything
	declined map[netip.Addr]bool
}

type seen struct {
	t      dhcpv4.MessageType
	from   netip.AddrPort
	ciaddr netip.Addr
	req    netip.Addr // option 50
	srvID  bool       // option 54 present
	bcast  bool       // sent to 255.255.255.255
	m      *dhcpv4.DHCPv4
}

var (
	serverIP = netip.MustParseAddr("10.70.0.1")
	firstIP  = netip.MustParseAddr("10.70.0.100")
)

// lab starts a client host and a server host on emu network name (spec
// options after the name go to the client's link).
func lab(t *testing.T, clientSpec string) (*stackhost.Host, *testServer) {
	t.Helper()
	ctx := context.Background()
	name := "dhcp4-" + t.Name()
	ch, err := stackhost.Start("emu:" + name + clientSpec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	sh, err := stackhost.Start("emu:" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	if err := sh.AddAddress(ctx, "eth0", netip.PrefixFrom(serverIP, 24), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	// Two sockets, so the server knows broadcast from unicast requests.
	var conns [2]host.PacketConn
	for i, a := range []string{"10.70.0.1:67", "255.255.255.255:67"} {
		c, err := sh.ListenPacket(ctx, "udp4", a, &host.SocketOptions{Device: "eth0",
			Options: []host.SockOpt{{Level: syscall.SOL_SOCKET, Name: syscall.SO_BROADCAST, Value: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	s := &testServer{h: sh, conn: conns[0], next: 100, lease: time.Hour, mtu: 1400, declined: map[netip.Addr]bool{}}
	for i, c := range conns {
		done := make(chan struct{})
		go s.serve(c, i == 1, done)
		t.Cleanup(func() { c.Close(); <-done })
	}
	return ch, s
}

func (s *testServer) serve(c host.PacketConn, bcast bool, done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootRequest {
			continue
		}
		ap := from.(*net.UDPAddr).AddrPort()
		ci, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
		rq, _ := netip.AddrFromSlice(m.RequestedIPAddress().To4())
		s.mu.Lock()
		s.got = append(s.got, seen{t: m.MessageType(), from: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ciaddr: ci, req: rq, srvID: m.ServerIdentifier() != nil, bcast: bcast, m: m})
		reply := s.answer(m, ci, rq, bcast)
		s.mu.Unlock()
		if reply == nil {
			continue
		}
		to := netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), 68)
		if !ci.IsUnspecified() && !m.IsBroadcast() {
			to = netip.AddrPortFrom(ci, 68)
		}
		s.conn.WriteTo(reply.ToBytes(), net.UDPAddrFromAddrPort(to))
	}
}

// answer is called with s.mu held.
func (s *testServer) answer(m *dhcpv4.DHCPv4, ci, rq netip.Addr, bcast bool) *dhcpv4.DHCPv4 {
	if s.silent {
		return nil
	}
	offer := netip.AddrFrom4([4]byte{10, 70, 0, s.next})
	opts := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(serverIP.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 70, 0, 53))),
		dhcpv4.WithOption(dhcpv4.OptDomainName("lab")),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.lease)),
	}
	if s.mtu > 0 {
		opts = append(opts, dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(s.mtu >> 8), byte(s.mtu)}))
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(offer.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeRequest:
		if s.noUni && !bcast {
			return nil
		}
		if s.nakNext > 0 {
			s.nakNext--
			r, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP.AsSlice())), dhcpv4.WithOption(dhcpv4.OptMessage("wrong network")))
			return r
		}
		addr := rq
		if !ci.IsUnspecified() {
			addr = ci
		}
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(addr.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeDecline:
		s.declined[rq] = true
		s.next++
	}
	return nil
}

func (s *testServer) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.got...)
}

func (s *testServer) set(f func(*testServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *testServer) count(t dhcpv4.MessageType) int {
	n := 0
	for _, g := range s.seen() {
		if g.t == t {
			n++
		}
	}
	return n
}

// events records a client's events.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(ev string, l *Lease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ev
	if l != nil && l.Address.IsValid() {
		s += " " + l.Address.String()
	}
	e.got = append(e.got, s)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.got)
}

func fast(n int) time.Duration { return 500 * time.Millisecond }

func newClient(t *testing.T, h host.Host, leaseFile string, ev *events) *Client {
	t.Helper()
	c, err := New(context.Background(), Config{Host: h, Interface: "eth0", LeaseFile: leaseFile, Wait: fast, Event: ev.add,
		Log: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
