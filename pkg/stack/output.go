package stack

import (
	"fmt"
	"net/netip"

	"github.com/stackbox/stackbox/pkg/stack/route"
)

// RouteKind says how a Route delivers.
type RouteKind uint8

const (
	RouteUnicast   RouteKind = iota // to a host, directly or through a gateway
	RouteLocal                      // to one of our own addresses, through lo
	RouteBroadcast                  // to 255.255.255.255 or a subnet broadcast
	RouteMulticast                  // to a multicast group
)

// Route is a resolved path for sending: what FindRoute returns and
// WritePacket takes. Transports cache it and call FindRoute again when
// Stack.RouteGeneration changes.
type Route struct {
	NIC      *NIC
	Src, Dst netip.Addr
	NextHop  netip.Addr
	// MTU is the largest IP packet for this path: the route's or NIC's
	// MTU, lowered by path MTU discovery.
	MTU  int
	Kind RouteKind
}

// RouteGeneration changes whenever a route changes; a cached Route is
// stale when it does (path MTU changes are read at each WritePacket).
func (s *Stack) RouteGeneration() uint64 { return s.policy.Generation() }

// FindRoute picks the interface, source address and next hop for
// sending to dst. nicIndex, if not 0, binds the lookup to that interface
// (SO_BINDTODEVICE, IP_MULTICAST_IF, an IPv6 zone); src, if valid, must be
// one of our addresses (EADDRNOTAVAIL otherwise) and is used as is.
func (s *Stack) FindRoute(nicIndex int, src, dst netip.Addr) (Route, error) {
	dst = dst.Unmap()
	src = src.Unmap()
	if z := dst.Zone(); z != "" {
		if nicIndex == 0 {
			n, ok := s.NICByName(z)
			if !ok {
				return Route{}, fmt.Errorf("stack: zone %q: %w", z, ErrNoSuchNIC)
			}
			nicIndex = n.index
		}
		dst = dst.WithZone("")
	}
	if !dst.IsValid() || dst.IsUnspecified() {
		return Route{}, fmt.Errorf("stack: bad destination %v: %w", dst, ErrInvalid)
	}
	if src.IsValid() && !src.IsUnspecified() {
		if src.Is4() != dst.Is4() {
			return Route{}, fmt.Errorf("stack: source %v and destination %v differ in family: %w", src, dst, ErrInvalid)
		}
		if !s.IsLocal(src) {
			return Route{}, fmt.Errorf("stack: source %v: %w", src, ErrAddrNotAvail)
		}
	} else {
		src = netip.Addr{}
	}
	var bound *NIC
	if nicIndex != 0 {
		n, ok := s.NIC(nicIndex)
		if !ok {
			return Route{}, ErrNoSuchNIC
		}
		bound = n
	}

	r := Route{Dst: dst, NextHop: dst}
	switch {
	case s.IsLocal(dst) && (bound == nil || bound.loopback || bound.hasAddress(dst)):
		r.Kind = RouteLocal
		r.NIC = s.lo
		if r.NIC == nil {
			r.NIC, _ = s.localNIC(dst)
		}
		if !src.IsValid() {
			src = dst
		}
	case dst.IsMulticast() || dst == broadcast4:
		r.Kind = RouteMulticast
		if dst == broadcast4 {
			r.Kind = RouteBroadcast
		}
		r.NIC = bound
		if r.NIC == nil {
			if rt, ok := s.lookupRoute(route.Flow{Dst: dst, Src: src}); ok && !rt.Type.Reject() {
				r.NIC, _ = s.NIC(rt.NIC)
			}
		}
		if r.NIC == nil {
			r.NIC = s.firstUpNIC(dst.Is4())
		}
		if r.NIC == nil {
			return Route{}, s.noRoute(dst, ErrNetUnreach)
		}
	default:
		f := route.Flow{Dst: dst, Src: src}
		if bound != nil {
			f.OIF = bound.index
		}
		rt, ok := s.lookupRoute(f)
		if bound != nil {
			if !ok && (bound.onLink(dst) || dst.IsLinkLocalUnicast()) {
				// Bound to a device with no route: Linux sends on-link.
				rt, ok = routeOnLink(bound, dst), true
			}
		}
		if !ok {
			return Route{}, s.noRoute(dst, ErrNetUnreach)
		}
		if rt.Type.Reject() {
			return Route{}, s.noRoute(dst, rejectError(rt))
		}
		n, found := s.NIC(rt.NIC)
		if !found {
			return Route{}, s.noRoute(dst, ErrNetUnreach)
		}
		r.NIC = n
		if rt.Gateway.IsValid() {
			r.NextHop = rt.Gateway
		}
		if rt.MTU > 0 {
			r.MTU = rt.MTU
		}
		if !src.IsValid() && rt.Src.IsValid() && s.IsLocal(rt.Src) {
			src = rt.Src
		}
		if dst.Is4() && (n.directedBroadcast(dst)) {
			r.Kind = RouteBroadcast
		}
	}
	if !src.IsValid() {
		a, ok := r.NIC.primaryAddress(dst)
		if !ok {
			a, ok = s.anyAddress(dst)
		}
		if !ok && dst == broadcast4 && bound != nil {
			// Linux (ip_route_output_key_hash_rcu) sends a limited
			// broadcast from a device-bound socket with source 0.0.0.0
			// when the device has no address: a DHCP client's DISCOVER
			// (RFC 2131 §4.1).
			a, ok = netip.IPv4Unspecified(), true
		}
		if !ok {
			return Route{}, fmt.Errorf("stack: no source address for %v: %w", dst, ErrAddrNotAvail)
		}
		src = a
	}
	r.Src = src
	nm := r.NIC.MTU()
	if dst.Is6() {
		nm = r.NIC.IPv6MTU()
	}
	if r.MTU == 0 || r.MTU > nm {
		r.MTU = nm
	}
	return r, nil
}

// noRoute counts a failed output route lookup (OutNoRoutes, as Linux
// counts it when a socket's lookup fails) and returns err.
func (s *Stack) noRoute(dst netip.Addr, err error) error {
	if dst.Is4() {
		s.stats.IP.OutNoRoutes.Add(1)
	} else {
		s.stats.IP6.OutNoRoutes.Add(1)
	}
	return err
}

func routeOnLink(n *NIC, dst netip.Addr) route.Route {
	return route.Route{Dst: netip.PrefixFrom(dst, dst.BitLen()), NIC: n.index}
}

func rejectError(rt interface{ String() string }) error {
	return fmt.Errorf("stack: %s: %w", rt.String(), ErrHostUnreach)
}

// firstUpNIC returns the first up, non-loopback NIC with an address of
// the family (the fallback for multicast and broadcast without a route).
func (s *Stack) firstUpNIC(v4 bool) *NIC {
	for _, n := range s.NICs() {
		if n.loopback || !n.IsUp() {
			continue
		}
		for _, a := range n.Addresses() {
			if a.Prefix.Addr().Is4() == v4 {
				return n
			}
		}
	}
	return nil
}

// anyAddress returns some usable address of the family, on any NIC
// (Linux falls back to any address when the output NIC has none).
func (s *Stack) anyAddress(dst netip.Addr) (netip.Addr, bool) {
	for _, n := range s.NICs() {
		if n.loopback && !dst.IsLoopback() {
			continue
		}
		if a, ok := n.primaryAddress(dst); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// WriteOptions are the per-packet IP settings of WritePacket.
type WriteOptions struct {
	// Proto is the transport protocol number (IPv4 protocol, IPv6 next
	// header of the payload).
	Proto uint8
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 takes the default (1 for
	// multicast, as IP_MULTICAST_TTL's default).
	TTL uint8
	// TOS is the IPv4 type of service or IPv6 traffic class.
	TOS uint8
	// DontFragment sets DF on IPv4 and refuses to fragment (EMSGSIZE
	// when the packet exceeds the path MTU), as IP_PMTUDISC_DO does; for
	// IPv6 it refuses source fragmentation (IPV6_DONTFRAG).
	DontFragment bool
	// IPv4Options are raw IPv4 options (IP_OPTIONS), written as given and
	// padded to a multiple of four bytes.
	IPv4Options []byte
	// RouterAlert6 adds an IPv6 hop-by-hop Router Alert option with
	// value 0 (RFC 2711; MLD, RFC 2710 §3).
	RouterAlert6 bool
	// Loop delivers a copy of a multicast packet to this stack's own
	// sockets too, when the NIC has joined the group (IP_MULTICAST_LOOP,
	// IPV6_MULTICAST_LOOP). Broadcasts are always looped, as Linux does.
	Loop bool
	// HeaderIncluded: pkt already holds the IPv4 header (IP_HDRINCL).
	// The stack fills in what Linux's raw_send_hdrinc does (total length,
	// a zero ID, a zero source, the checksum) and sends it unfragmented.
	HeaderIncluded bool
	// Batch, when set, holds the frame for a later Batch.Flush instead of
	// writing it now (see TxBatch).
	Batch *TxBatch
}

// WritePacket prepends the IP header to pkt (which holds the transport
// header and payload), fragments it to the route's MTU if allowed, and
// sends it. It owns pkt from then on.
func (s *Stack) WritePacket(r *Route, pkt *Packet, o WriteOptions) error {
	if r.NIC == nil {
		return ErrNetUnreach
	}
	if r.Dst.Is4() {
		return s.writeIPv4(r, pkt, o)
	}
	return s.writeIPv6(r, pkt, o)
}
