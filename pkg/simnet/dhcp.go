package simnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/pkg/host"
)

// The gateway's DHCP pool on the LAN (RFC 2131 §4.3).
var (
	poolFirst = netip.MustParseAddr("192.168.64.100")
	poolSize  = 100
	// LeaseTime is what the gateway's DHCP server grants.
	LeaseTime = time.Hour
)

// dhcpServer hands out the LAN's addresses: one per client hardware
// address, kept across its requests; an address declined (in use) is
// not offered again.
type dhcpServer struct {
	conn host.PacketConn

	mu       sync.Mutex
	byMAC    map[string]netip.Addr
	taken    map[netip.Addr]string // address → MAC
	declined map[netip.Addr]bool
}

func (n *Network) serveDHCP(h host.Host, dev string) error {
	c, err := h.ListenPacket(context.Background(), "udp4", "0.0.0.0:67", &host.SocketOptions{
		Device: dev, Cred: service.Cred,
		Options: []host.SockOpt{{Level: syscall.SOL_SOCKET, Name: syscall.SO_BROADCAST, Value: 1}},
	})
	if err != nil {
		return fmt.Errorf("simnet: DHCP: %w", err)
	}
	s := &dhcpServer{conn: c, byMAC: map[string]netip.Addr{}, taken: map[netip.Addr]string{}, declined: map[netip.Addr]bool{}}
	n.dhcp = s
	done := make(chan struct{})
	go s.serve(done)
	n.stops = append(n.stops, func() { c.Close(); <-done })
	return nil
}

func (s *dhcpServer) serve(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for {
		k, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			var en syscall.Errno
			if asErrno(err, &en) && en != syscall.EBADF {
				continue
			}
			return
		}
		m, err := dhcpv4.FromBytes(buf[:k])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootRequest || len(m.ClientHWAddr) != 6 {
			continue
		}
		reply := s.answer(m)
		if reply == nil {
			continue
		}
		// §4.1: to ciaddr when the client has one, else broadcast (our
		// stack cannot unicast to an address it has no ARP entry for).
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 68)
		if ci, ok := netip.AddrFromSlice(m.ClientIPAddr.To4()); ok && !ci.IsUnspecified() {
			to = netip.AddrPortFrom(ci, 68)
		}
		s.conn.WriteTo(reply.ToBytes(), net.UDPAddrFromAddrPort(to))
	}
}

// answer is the reply to m, nil for none.
func (s *dhcpServer) answer(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	s.mu.Lock()
	defer s.mu.Unlock()
	mac := m.ClientHWAddr.String()
	opts := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(Gateway.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(ClientAddr.Bits(), 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(Gateway.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptDNS(Nameserver.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptDomainName(Domain)),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IPv4(192, 168, 64, 255))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(LeaseTime)),
	}
	nak := func(msg string) *dhcpv4.DHCPv4 {
		r, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(Gateway.AsSlice())), dhcpv4.WithOption(dhcpv4.OptMessage(msg)))
		return r
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		a, ok := s.pick(mac, m.RequestedIPAddress())
		if !ok {
			return nil // pool exhausted: no offer (§4.3.1)
		}
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(a.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeRequest:
		if sid := m.ServerIdentifier(); sid != nil && !sid.Equal(Gateway.AsSlice()) {
			return nil // the client chose another server
		}
		want, _ := netip.AddrFromSlice(m.RequestedIPAddress().To4())
		if ci, ok := netip.AddrFromSlice(m.ClientIPAddr.To4()); ok && !ci.IsUnspecified() {
			want = ci // renewing or rebinding (§4.3.2)
		}
		if !inPool(want) || s.declined[want] || s.taken[want] != "" && s.taken[want] != mac {
			return nak("address not available")
		}
		s.bindLocked(mac, want)
		r, _ := dhcpv4.NewReplyFromRequest(m, append(opts, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(want.AsSlice()))...)
		return r
	case dhcpv4.MessageTypeDecline:
		if a, ok := netip.AddrFromSlice(m.RequestedIPAddress().To4()); ok {
			s.declined[a] = true
			s.freeLocked(mac)
		}
	case dhcpv4.MessageTypeRelease:
		s.freeLocked(mac)
	}
	return nil
}

func inPool(a netip.Addr) bool {
	if !a.Is4() || a.Less(poolFirst) {
		return false
	}
	b, f := a.As4(), poolFirst.As4()
	return b[0] == f[0] && b[1] == f[1] && b[2] == f[2] && int(b[3])-int(f[3]) < poolSize
}

// pick is the address to offer mac: its own, the one it asks for if
// free, else the first free one.
func (s *dhcpServer) pick(mac string, requested net.IP) (netip.Addr, bool) {
	if a, ok := s.byMAC[mac]; ok {
		return a, true
	}
	if r, ok := netip.AddrFromSlice(requested.To4()); ok && inPool(r) && s.taken[r] == "" && !s.declined[r] {
		return r, true
	}
	for a, i := poolFirst, 0; i < poolSize; a, i = a.Next(), i+1 {
		if s.taken[a] == "" && !s.declined[a] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (s *dhcpServer) bindLocked(mac string, a netip.Addr) {
	s.freeLocked(mac)
	s.byMAC[mac], s.taken[a] = a, mac
}

func (s *dhcpServer) freeLocked(mac string) {
	if a, ok := s.byMAC[mac]; ok {
		delete(s.taken, a)
		delete(s.byMAC, mac)
	}
}

func asErrno(err error, en *syscall.Errno) bool { return errors.As(err, en) }

// leased reports whether a is leased to someone.
func (s *dhcpServer) leased(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taken[a] != ""
}
