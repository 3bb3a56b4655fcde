package socket

import (
	"net/netip"
	"strconv"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

// Interfaces maps IPv6 zones (interface names, as the stack and netip
// spell them) to sockaddr scope ids (interface indexes) and back.
type Interfaces interface {
	IndexByName(name string) (int, bool)
	NameByIndex(index int) (string, bool)
}

// StackInterfaces resolves zones through a stack's NICs (the adapter
// transport.StackInterfaces gives the endpoints' options).
func StackInterfaces(s *stack.Stack) Interfaces { return transport.StackInterfaces(s) }

// zoneOf names scope id as a zone: the interface name when ifs knows
// it, else the number (netip and the stack accept either spelling for
// what they can resolve; a number keeps the information when nothing
// can).
func zoneOf(id uint32, ifs Interfaces) string {
	if id == 0 {
		return ""
	}
	if ifs != nil {
		if name, ok := ifs.NameByIndex(int(id)); ok {
			return name
		}
	}
	return strconv.FormatUint(uint64(id), 10)
}

// scopeOf is the inverse of zoneOf.
func scopeOf(zone string, ifs Interfaces) uint32 {
	if zone == "" {
		return 0
	}
	if ifs != nil {
		if i, ok := ifs.IndexByName(zone); ok {
			return uint32(i)
		}
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	return 0
}

// Op is the call a sockaddr is given to; they differ in what they accept
// on a family mismatch (see ToAddrPort).
type Op int

const (
	OpBind Op = iota
	OpConnect
	OpSend
)

// ToAddrPort converts a sockaddr given to bind, connect or sendto on a
// socket of family and type typ, with Linux's answers to a family
// mismatch:
//   - an AF_INET socket refuses sockaddr_in6 with EAFNOSUPPORT;
//   - an AF_INET6 socket refuses sockaddr_in in bind with EINVAL (it is
//     shorter than a sockaddr_in6), and in a stream connect with
//     EAFNOSUPPORT, but a datagram socket's connect and sendto take it
//     as the IPv4-mapped address (ip6_datagram_connect, udpv6_sendmsg);
//   - other sockaddr types are EAFNOSUPPORT, nil is EINVAL (callers
//     handle AF_UNSPEC before).
//
// AF_INET6 results carry IPv4-mapped addresses for IPv4 peers and the
// zone of a non-zero scope id.
func ToAddrPort(family, typ int, op Op, sa syscall.Sockaddr, ifs Interfaces) (netip.AddrPort, error) {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		ip := netip.AddrFrom4(a.Addr)
		if a.Port < 0 || a.Port > 0xffff {
			return netip.AddrPort{}, syscall.EINVAL
		}
		switch family {
		case syscall.AF_INET:
			return netip.AddrPortFrom(ip, uint16(a.Port)), nil
		case syscall.AF_INET6:
			if op == OpBind {
				return netip.AddrPort{}, syscall.EINVAL
			}
			if op == OpConnect && typ == syscall.SOCK_STREAM {
				return netip.AddrPort{}, syscall.EAFNOSUPPORT
			}
			return netip.AddrPortFrom(netip.AddrFrom16(ip.As16()), uint16(a.Port)), nil
		}
	case *syscall.SockaddrInet6:
		if a.Port < 0 || a.Port > 0xffff {
			return netip.AddrPort{}, syscall.EINVAL
		}
		if family != syscall.AF_INET6 {
			return netip.AddrPort{}, syscall.EAFNOSUPPORT
		}
		ip := netip.AddrFrom16(a.Addr)
		if z := zoneOf(a.ZoneId, ifs); z != "" && !ip.Is4In6() {
			ip = ip.WithZone(z)
		}
		return netip.AddrPortFrom(ip, uint16(a.Port)), nil
	case nil:
		return netip.AddrPort{}, syscall.EINVAL
	}
	return netip.AddrPort{}, syscall.EAFNOSUPPORT
}

// ToSockaddr converts an address to the sockaddr a socket of family
// reports: sockaddr_in for AF_INET, sockaddr_in6 for AF_INET6 (IPv4
// addresses v4-mapped, the zone as scope id). An invalid address gives
// the family's unspecified address, as getsockname on an unbound socket
// (so does an IPv6 address for AF_INET, which cannot hold it).
func ToSockaddr(family int, ap netip.AddrPort, ifs Interfaces) syscall.Sockaddr {
	ip := ap.Addr()
	if family == syscall.AF_INET {
		sa := &syscall.SockaddrInet4{Port: int(ap.Port())}
		if ip := ip.Unmap(); ip.Is4() {
			sa.Addr = ip.As4()
		}
		return sa
	}
	sa := &syscall.SockaddrInet6{Port: int(ap.Port())}
	if ip.IsValid() {
		sa.Addr = ip.As16() // As16 maps IPv4 addresses
		sa.ZoneId = scopeOf(ip.Zone(), ifs)
	}
	return sa
}

// SockaddrOf is the sockaddr of an address's own family: sockaddr_in for
// IPv4 (also v4-mapped), sockaddr_in6 for IPv6. Given to a socket, the
// socket's family rules apply (see ToAddrPort).
func SockaddrOf(ap netip.AddrPort, ifs Interfaces) syscall.Sockaddr {
	if ap.Addr().Unmap().Is4() {
		return ToSockaddr(syscall.AF_INET, ap, ifs)
	}
	return ToSockaddr(syscall.AF_INET6, ap, ifs)
}

// AddrPortOf converts a sockaddr as it is, without a socket's family
// rules (for the adapters): the address of a sockaddr_in or
// sockaddr_in6, ok false for anything else.
func AddrPortOf(sa syscall.Sockaddr, ifs Interfaces) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *syscall.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if z := zoneOf(a.ZoneId, ifs); z != "" && !ip.Is4In6() {
			ip = ip.WithZone(z)
		}
		return netip.AddrPortFrom(ip, uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}
