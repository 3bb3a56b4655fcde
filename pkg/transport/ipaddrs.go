package transport

import (
	"net/netip"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
)

// IPAddrs is the addressing the IP-level datagram sockets share: raw IP
// and ping sockets, whose "port" is the protocol number or the ICMP
// identifier rather than a port of their own. They have one family
// without dual stack, a local address (bound, or chosen by connect) and
// a connected peer. Embedded next to DatagramEndpoint, its fields are
// guarded by the endpoint's lock, except V6, which never changes.
type IPAddrs struct {
	V6    bool       // AF_INET6
	Local netip.Addr // bound or connect-chosen address; zero: any
	Bound bool       // Local came from Bind (connect's choice is undone on disconnect)
	Peer  netip.Addr // connected peer; zero: none
}

// Family checks an address against the socket's family and normalises
// it: AF_INET takes IPv4 (unmapped), else EAFNOSUPPORT; AF_INET6 takes
// IPv6 only, EINVAL for IPv4 and IPv4-mapped addresses (raw6 and ping6
// sockets are IPv6 only; ping_v6_sendmsg).
func (a *IPAddrs) Family(x netip.Addr) (netip.Addr, error) {
	if a.V6 {
		if x.Is4() || x.Is4In6() {
			return x, syscall.EINVAL
		}
		return x, nil
	}
	x = x.Unmap()
	if !x.Is4() {
		return x, syscall.EAFNOSUPPORT
	}
	return x, nil
}

// LocalOrAnyLocked is the local address, or the family's unspecified
// address when there is none.
func (a *IPAddrs) LocalOrAnyLocked() netip.Addr {
	if a.Local.IsValid() {
		return a.Local
	}
	if a.V6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// RemoteLocked is Endpoint.RemoteAddr: the peer with port 0, or
// ENOTCONN.
func (a *IPAddrs) RemoteLocked() (netip.AddrPort, error) {
	if !a.Peer.IsValid() {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return netip.AddrPortFrom(a.Peer, 0), nil
}

// DestinationLocked picks a send's destination and how to route it, as
// raw_sendmsg and ping_common_sendmsg do: the sendto address, else the
// peer (EDESTADDRREQ without either), checked by Family; the interface
// from IP_PKTINFO, else SO_BINDTODEVICE, else for multicast
// IP_MULTICAST_IF; the source from IP_PKTINFO, else for IPv4 multicast
// IP_MULTICAST_IF's address, else the bound address unless it is a
// multicast one.
func (a *IPAddrs) DestinationLocked(opts *Options, o WriteOptions) (dst netip.Addr, nic int, src netip.Addr, err error) {
	dst = o.To.Addr()
	if !dst.IsValid() {
		dst = a.Peer
	}
	if !dst.IsValid() {
		return dst, 0, src, syscall.EDESTADDRREQ
	}
	if dst, err = a.Family(dst); err != nil {
		return dst, 0, src, err
	}
	nic, src = opts.BoundDevice, o.Src
	if o.IfIndex != 0 {
		nic = o.IfIndex
	}
	if dst.IsMulticast() && nic == 0 {
		nic = opts.MulticastIf
		if !src.IsValid() && !a.V6 && opts.MulticastAddr.IsValid() {
			src = opts.MulticastAddr
		}
	}
	if !src.IsValid() && a.Local.IsValid() && !a.Local.IsMulticast() {
		src = a.Local
	}
	return dst, nic, src, nil
}

// ConnectRoute is ip4_datagram_connect's route for a datagram socket
// without ports: from src (none for a multicast source) on the NIC nic
// (0: any) to dst, and EACCES for a broadcast route without
// SO_BROADCAST. The caller takes the route's source as its local
// address when it has none.
func ConnectRoute(s *stack.Stack, nic int, src, dst netip.Addr, broadcast bool) (stack.Route, error) {
	if src.IsMulticast() {
		src = netip.Addr{}
	}
	r, err := s.FindRoute(nic, src, dst)
	if err != nil {
		return r, err
	}
	if r.Kind == stack.RouteBroadcast && !broadcast {
		return r, syscall.EACCES
	}
	return r, nil
}
