// Package dhcptest is a small DHCPv4 server on a stackhost for tests of
// DHCP clients: it offers 10.70.0.100 (then .101, … after a DECLINE) on
// 10.70.0.0/24, answers as RFC 2131 §4.3 says, can NAK, ignore unicast or
// go silent, and records what it received.
package dhcptest

import (
	"context"
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

// Server is the test DHCP server. Its fields after mu may be changed
// through Set while it runs.
type Server struct {
	h    *stackhost.Host
	conn host.PacketConn

	mu        sync.Mutex
	Got       []Seen
	Next      byte // last octet of the next address offered
	Lease     time.Duration
	MTU       int
	NakNext   int  // NAK this many REQUESTs
	NoUnicast bool // ignore unicast (renewing) REQUESTs
	Silent    bool // ignore everything
	Declined  map[netip.Addr]bool
}

// Seen is one message the server received.
type Seen struct {
	T      dhcpv4.MessageType
	From   netip.AddrPort
	Ciaddr netip.Addr
	Req    netip.Addr // option 50
	SrvID  bool       // option 54 present
	Bcast  bool       // sent to 255.255.255.255
	M      *dhcpv4.DHCPv4
}

// The server's address and the first address it offers.
var (
	ServerIP = netip.MustParseAddr("10.70.0.1")
	FirstIP  = netip.MustParseAddr("10.70.0.100")
)

// Lab starts a client host and a server host on an emu network named
// for the test; clientSpec is appended to the client's link spec
// (",loss=0.3"). Both are closed when the test ends.
func Lab(t testing.TB, clientSpec string) (*stackhost.Host, *Server) {
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
	if err := sh.AddAddress(ctx, "eth0", netip.PrefixFrom(ServerIP, 24), netip.Addr{}); err != nil {
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
	s := &Server{h: sh, conn: conns[0], Next: 100, Lease: time.Hour, MTU: 1400, Declined: map[netip.Addr]bool{}}
	for i, c := range conns {
		done := make(chan struct{})
		go s.serve(c, i == 1, done)
		t.Cleanup(func() { c.Close(); <-done })
	}
	return ch, s
}

// serve answers on c until it is closed; bcast marks the broadcast socket.
func (s *Server) serve(c host.PacketConn, bcast bool, done chan struct{}) {
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
		s.Got = append(s.Got, Seen{T: m.MessageType(), From: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Ciaddr: ci, Req: rq, SrvID: m.ServerIdentifier() != nil, Bcast: bcast, M: m})
		reply := s.answer(m, ci, rq, bcast)
		s.mu.Unlock()
		if reply == nil {
			continue
		}
		reply.Options.Del(dhcpv4.OptionClientIdentifier) // not echoed, as dnsmasq
		to := netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), 68)
		if !ci.IsUnspecified() && !m.IsBroadcast() {
			to = netip.AddrPortFrom(ci, 68)
		}
		s.conn.WriteTo(reply.ToBytes(), net.UDPAddrFromAddrPort(to))
	}
}

// answer is called with s.mu held.
func (s *Server) answer(m *dhcpv4.DHCPv4, ci, rq netip.Addr, bcast bool) *dhcpv4.DHCPv4 {
	if s.Silent {
		return nil
	}
	offer := netip.AddrFrom4([4]byte{10, 70, 0, s.Next})
	opts := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ServerIP.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(ServerIP.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 70, 0, 53))),
		dhcpv4.WithOption(dhcpv4.OptDomainName("lab")),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.Lease)),
	}
	if s.MTU > 0 {
		opts = append(opts, dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(s.MTU >> 8), byte(s.MTU)}))
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(offer.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeRequest:
		if s.NoUnicast && !bcast {
			return nil
		}
		if s.NakNext > 0 {
			s.NakNext--
			r, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ServerIP.AsSlice())), dhcpv4.WithOption(dhcpv4.OptMessage("wrong network")))
			return r
		}
		addr := rq
		if !ci.IsUnspecified() {
			addr = ci
		}
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(addr.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeDecline:
		s.Declined[rq] = true
		s.Next++
	}
	return nil
}

// Seen returns what the server received so far.
func (s *Server) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.Got...)
}

// Set runs f with the server locked, to change how it answers.
func (s *Server) Set(f func(*Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Count counts the received messages of type t.
func (s *Server) Count(t dhcpv4.MessageType) int {
	n := 0
	for _, g := range s.Seen() {
		if g.T == t {
			n++
		}
	}
	return n
}
