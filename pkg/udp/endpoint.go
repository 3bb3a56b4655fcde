package udp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/stackbox/stackbox/pkg/ports"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// endpoint is one UDP socket. Addresses are kept unmapped inside (an
// AF_INET6 socket's IPv4 peers as IPv4) and presented in the socket's
// family at the API (IPv4-mapped for AF_INET6).
type endpoint struct {
	p      *Protocol
	family int
	uid    uint32
	priv   bool         // may bind ports below 1024 (CAP_NET_BIND_SERVICE)
	device atomic.Int64 // SO_BINDTODEVICE, read by the packet path

	mu sync.Mutex
	// The queues (the error queue: IP_RECVERR), SO_ERROR, the shutdown
	// and closed flags (under mu).
	transport.DatagramEndpoint
	opts     transport.Options
	res      *ports.Reservation
	bindAddr netip.Addr     // what bind named (unmapped); invalid: the wildcard
	userPort bool           // the port was bound explicitly (kept on disconnect)
	local    netip.AddrPort // unmapped; invalid until bound
	// src is the source address the local address implies (bound or
	// chosen by connect), invalid for a wildcard, multicast or
	// broadcast binding (Linux inet_saddr); bindSrc is bind's.
	src, bindSrc netip.Addr
	remote       netip.AddrPort // unmapped; invalid unless connected
	ent          *ent

	mcMu   sync.Mutex // memberships; never held with mu
	mships transport.Memberships
}

func (p *Protocol) newEndpoint(family int, cred transport.Cred) (*endpoint, error) {
	if family != syscall.AF_INET && family != syscall.AF_INET6 {
		return nil, fmt.Errorf("udp: family %d: %w", family, syscall.EAFNOSUPPORT)
	}
	e := &endpoint{p: p, family: family, uid: cred.UID, priv: cred.Privileged,
		opts: transport.NewOptions(transport.StackInterfaces(p.s)), mships: transport.NewMemberships(p.s)}
	p.eps.Add(e)
	return e, nil
}

func (e *endpoint) v6() bool { return e.family == syscall.AF_INET6 }

func (e *endpoint) boundDevice() int { return int(e.device.Load()) }

// present converts an internal address to the socket's family.
func (e *endpoint) present(a netip.Addr) netip.Addr {
	if e.v6() && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

func (e *endpoint) presentAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(e.present(ap.Addr()), ap.Port())
}

// wildcard is the socket's unspecified address, internally.
func (e *endpoint) wildcard() netip.Addr {
	if e.v6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// userAddr checks an address given to Bind/Connect/Write against the
// family and returns it unmapped with the zone's interface (0 if none).
// An AF_INET6 socket takes IPv4 and IPv4-mapped addresses alike (the
// callers refuse them under IPV6_V6ONLY); an AF_INET socket refuses IPv6
// with EAFNOSUPPORT.
func (e *endpoint) userAddr(a netip.Addr) (netip.Addr, int, error) {
	if !a.IsValid() {
		return e.wildcard(), 0, nil
	}
	zone := 0
	if z := a.Zone(); z != "" {
		n, ok := e.p.s.NICByName(z)
		if !ok {
			return netip.Addr{}, 0, fmt.Errorf("udp: zone %q: %w", z, syscall.ENODEV)
		}
		zone = n.Index()
		a = a.WithZone("")
	}
	if !e.v6() && a.Is6() && !a.Is4In6() {
		return netip.Addr{}, 0, fmt.Errorf("udp: %v on an AF_INET socket: %w", a, syscall.EAFNOSUPPORT)
	}
	return a.Unmap(), zone, nil
}

// isBroadcast reports 255.255.255.255 or the broadcast address of one of
// the stack's IPv4 subnets.
func (e *endpoint) isBroadcast(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	for _, n := range e.p.s.NICs() {
		for _, ad := range n.Addresses() {
			pf := ad.Prefix
			if !pf.Addr().Is4() || pf.Bits() >= 31 || !pf.Contains(a) {
				continue
			}
			b := pf.Masked().Addr().As4()
			m := ^uint32(0) >> pf.Bits()
			v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | m
			if netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) == a {
				return true
			}
		}
	}
	return false
}

// Readiness implements transport.Endpoint: readable with a datagram queued
// or after SHUT_RD (a read returns 0 then), always writable while open,
// EventErr while an error is pending (SO_ERROR or the error queue), as
// Linux's datagram_poll.
func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ReadinessLocked(mask)
}

// newEntLocked builds the demultiplexing entry for the current state.
func (e *endpoint) newEntLocked() *ent {
	t := &ent{ep: e, local: e.local, remote: e.remote, inet: !e.v6(),
		reuse: e.opts.ReusePort, uid: e.uid, seq: e.p.seq.Add(1)}
	a := e.local.Addr()
	switch {
	case !e.v6():
		t.v4 = true
	case a.Is4():
		t.v4 = true // bound or connected through an IPv4-mapped address
	case a.IsUnspecified():
		t.v6 = true
		t.v4 = !e.opts.V6Only
		if e.remote.IsValid() {
			t.v4, t.v6 = e.remote.Addr().Is4(), e.remote.Addr().Is6()
		}
	default:
		t.v6 = true
	}
	return t
}

// rehashLocked puts the current state into the table.
func (e *endpoint) rehashLocked() {
	nw := e.newEntLocked()
	e.p.tab.replace(e.ent, nw)
	e.ent = nw
}

// Bind implements transport.Endpoint (Linux inet_bind / inet6_bind).
func (e *endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Closed {
		return syscall.EBADF
	}
	if e.local.IsValid() {
		return fmt.Errorf("udp: already bound to %v: %w", e.presentAP(e.local), syscall.EINVAL)
	}
	a, zone, err := e.userAddr(addr.Addr())
	if err != nil {
		return err
	}
	if e.v6() && a.Is4() && e.opts.V6Only {
		return fmt.Errorf("udp: IPv4-mapped %v on an IPV6_V6ONLY socket: %w", addr.Addr(), syscall.EINVAL)
	}
	if a.Is6() && a.IsLinkLocalUnicast() && zone == 0 && e.boundDevice() == 0 {
		return fmt.Errorf("udp: link-local %v needs a scope: %w", a, syscall.EINVAL)
	}
	if !a.IsUnspecified() && !a.IsMulticast() && !e.p.s.IsLocal(a) && !e.isBroadcast(a) {
		return fmt.Errorf("udp: bind %v: %w", a, syscall.EADDRNOTAVAIL)
	}
	if p := addr.Port(); p != 0 && p < PrivilegedPorts && !e.priv {
		// Linux: ports below ip_unprivileged_port_start need
		// CAP_NET_BIND_SERVICE.
		return fmt.Errorf("udp: port %d: %w", p, syscall.EACCES)
	}
	if zone != 0 {
		e.opts.BoundDevice = zone
		e.device.Store(int64(zone))
	}
	if err := e.bindLocked(a, addr.Port(), netip.AddrPort{}); err != nil {
		return err
	}
	e.bindAddr = a
	e.userPort = addr.Port() != 0
	return nil
}

// bindLocked reserves the port (0: ephemeral, for the peer remote) and
// enters the socket into the table.
func (e *endpoint) bindLocked(a netip.Addr, port uint16, remote netip.AddrPort) error {
	r, err := e.p.ports.Reserve(ports.Binding{Addr: a, Port: port, V6Only: e.v6() && e.opts.V6Only,
		Device: e.boundDevice(), ReuseAddr: e.opts.ReuseAddr, ReusePort: e.opts.ReusePort, UID: e.uid}, remote)
	if err != nil {
		return err
	}
	e.res = r
	e.local = netip.AddrPortFrom(a, r.Port())
	e.src = netip.Addr{}
	if !a.IsUnspecified() && !a.IsMulticast() && !e.isBroadcast(a) {
		e.src = a
	}
	e.bindSrc = e.src
	e.rehashLocked()
	return nil
}

// autobindLocked binds an unbound socket to the wildcard and an ephemeral
// port (Linux inet_autobind, on the first send or connect).
func (e *endpoint) autobindLocked(remote netip.AddrPort) error {
	if e.local.IsValid() {
		return nil
	}
	return e.bindLocked(e.wildcard(), 0, remote)
}

// Connect implements transport.Endpoint: it sets the default peer and
// filters what is received to it (RFC 1122 §4.1.3.4 leaves this to the
// application interface; Linux ip4_datagram_connect). The zero AddrPort
// dissolves the association (AF_UNSPEC).
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Closed {
		return syscall.EBADF
	}
	if !addr.Addr().IsValid() {
		e.disconnectLocked()
		return nil
	}
	dst, zone, err := e.userAddr(addr.Addr())
	if err != nil {
		return err
	}
	if e.v6() && dst.Is4() && e.opts.V6Only {
		return fmt.Errorf("udp: IPv4-mapped peer on an IPV6_V6ONLY socket: %w", syscall.ENETUNREACH)
	}
	if e.local.IsValid() && !e.local.Addr().IsUnspecified() && e.local.Addr().Is4() != dst.Is4() {
		return fmt.Errorf("udp: peer %v and local %v differ in family: %w", dst, e.local.Addr(), syscall.EAFNOSUPPORT)
	}
	if dst.IsUnspecified() {
		// Linux connects to the unspecified address as to the local host.
		if dst.Is4() {
			dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			dst = netip.IPv6Loopback()
		}
	}
	r, err := e.routeLocked(dst, zone, netip.Addr{}, 0)
	if err != nil {
		return err
	}
	if (r.Kind == stack.RouteBroadcast || e.isBroadcast(dst)) && !e.opts.Broadcast {
		return fmt.Errorf("udp: connect to broadcast %v without SO_BROADCAST: %w", dst, syscall.EACCES)
	}
	remote := netip.AddrPortFrom(dst, addr.Port())
	if err := e.autobindLocked(remote); err != nil {
		return err
	}
	if e.local.Addr().IsUnspecified() {
		e.local = netip.AddrPortFrom(r.Src, e.local.Port())
		e.src = r.Src
	}
	e.remote = remote
	e.rehashLocked()
	return nil
}

// disconnectLocked undoes connect (Linux udp_disconnect): the peer goes,
// a local address connect chose goes back to what bind named, and a port
// connect chose is released.
func (e *endpoint) disconnectLocked() {
	e.remote = netip.AddrPort{}
	if !e.local.IsValid() {
		return
	}
	if !e.userPort {
		if e.res != nil {
			e.res.Release()
			e.res = nil
		}
		e.p.tab.replace(e.ent, nil)
		e.ent, e.local, e.src, e.bindSrc = nil, netip.AddrPort{}, netip.Addr{}, netip.Addr{}
		return
	}
	a := e.bindAddr
	if !a.IsValid() {
		a = e.wildcard()
	}
	e.local = netip.AddrPortFrom(a, e.local.Port())
	e.src = e.bindSrc
	e.rehashLocked()
}

// routeLocked finds the route to dst for this socket: the interface from
// a zone, the per-packet ifindex, SO_BINDTODEVICE or (multicast)
// IP_MULTICAST_IF, the source from the per-packet source, the bound
// address or IP_MULTICAST_IF's address.
func (e *endpoint) routeLocked(dst netip.Addr, zone int, src netip.Addr, ifindex int) (stack.Route, error) {
	nic := ifindex
	if nic == 0 {
		nic = zone
	}
	if nic == 0 {
		nic = e.boundDevice()
	}
	if !src.IsValid() {
		src = e.src
	}
	if dst.IsMulticast() || (dst.Is4() && dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		if nic == 0 {
			nic = e.opts.MulticastIf
		}
		if dst.Is4() && e.opts.MulticastAddr.IsValid() {
			if nic == 0 {
				nic = e.nicOf(e.opts.MulticastAddr)
			}
			if !src.IsValid() {
				src = e.opts.MulticastAddr
			}
		}
	}
	r, err := e.p.s.FindRoute(nic, src, dst)
	if err != nil {
		return stack.Route{}, err
	}
	return r, nil
}

// nicOf returns the index of the NIC that holds address a (0 if none).
func (e *endpoint) nicOf(a netip.Addr) int {
	for _, n := range e.p.s.NICs() {
		for _, ad := range n.Addresses() {
			if ad.Prefix.Addr() == a {
				return n.Index()
			}
		}
	}
	return 0
}

// Listen implements transport.Endpoint: not for datagrams.
func (e *endpoint) Listen(int) error { return syscall.EOPNOTSUPP }

// Accept implements transport.Endpoint: not for datagrams.
func (e *endpoint) Accept() (transport.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
}

// Read implements transport.Endpoint: one datagram per call. A pending
// error comes first and is returned once (Linux sock_error in
// __skb_recv_udp); after SHUT_RD an empty queue reads as 0 bytes.
func (e *endpoint) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	if o.OOB {
		return transport.ReadResult{}, syscall.EINVAL // Linux udp_recvmsg: no urgent data
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if o.ErrQueue {
		// One queued ICMP error: the payload of the datagram that caused
		// it, its destination, and the extended error. Unlike a data
		// read it does not check for a closed socket (whose error queue
		// is empty: EAGAIN).
		return e.ReadErrQueueLocked(dst, o)
	}
	res, ok, err := e.ReadLocked(dst, o)
	if ok && !o.Peek {
		e.p.stats.of(res.From.Addr().Is6() && !res.From.Addr().Is4In6()).InDatagrams.Add(1)
	}
	return res, err
}

// Write implements transport.Endpoint: one datagram, all or nothing. It
// never blocks: UDP has no send buffer to fill here.
func (e *endpoint) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	if o.OOB {
		return 0, syscall.EOPNOTSUPP // Linux udp_sendmsg
	}
	size := transport.TotalLen(src)
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return 0, syscall.EBADF
	}
	if err := e.TakeErrorLocked(); err != 0 {
		e.mu.Unlock()
		return 0, err
	}
	if e.ShutWr {
		e.mu.Unlock()
		return 0, syscall.EPIPE
	}
	r, wo, lport, to, err := e.prepareLocked(o, size)
	e.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Build the datagram outside the lock: the checksum over a large
	// payload is the expensive part, and WritePacket may deliver a looped
	// copy back to this very socket.
	pkt := stack.NewPacket(wire.UDPHeaderLen + size)
	b := pkt.Bytes()
	transport.Gather(b[wire.UDPHeaderLen:], src)
	f := wire.UDPFields{SrcPort: lport, DstPort: to.Port(), PayloadLen: size}
	f.Encode(b)
	f.SetChecksum(b, r.Src, r.Dst) // always computed; a computed 0 goes as 0xffff
	c := e.p.stats.of(r.Dst.Is6())
	if err := e.p.s.WritePacket(&r, pkt, wo); err != nil {
		if errors.Is(err, syscall.ENOBUFS) {
			c.SndbufErrors.Add(1)
		}
		return 0, err
	}
	c.OutDatagrams.Add(1)
	return size, nil
}

// prepareLocked checks a send and resolves its route and IP options.
func (e *endpoint) prepareLocked(o transport.WriteOptions, size int) (stack.Route, stack.WriteOptions, uint16, netip.AddrPort, error) {
	var (
		r    stack.Route
		wo   stack.WriteOptions
		to   netip.AddrPort
		zone int
	)
	if o.To.Addr().IsValid() {
		a, z, err := e.userAddr(o.To.Addr())
		if err != nil {
			return r, wo, 0, to, err
		}
		if e.v6() && a.Is4() && e.opts.V6Only {
			return r, wo, 0, to, fmt.Errorf("udp: IPv4-mapped destination on an IPV6_V6ONLY socket: %w", syscall.ENETUNREACH)
		}
		if o.To.Port() == 0 {
			return r, wo, 0, to, fmt.Errorf("udp: destination port 0: %w", syscall.EINVAL)
		}
		to, zone = netip.AddrPortFrom(a, o.To.Port()), z
	} else {
		if !e.remote.IsValid() {
			return r, wo, 0, to, syscall.EDESTADDRREQ
		}
		to = e.remote
	}
	if e.local.IsValid() && !e.local.Addr().IsUnspecified() && e.local.Addr().Is4() != to.Addr().Is4() {
		if to.Addr().Is4() {
			return r, wo, 0, to, fmt.Errorf("udp: IPv4 destination from IPv6 %v: %w", e.local.Addr(), syscall.ENETUNREACH)
		}
		return r, wo, 0, to, fmt.Errorf("udp: IPv6 destination from IPv4 %v: %w", e.local.Addr(), syscall.EAFNOSUPPORT)
	}
	v6 := to.Addr().Is6()
	if (v6 && size > MaxPayload6) || (!v6 && size > MaxPayload4) {
		return r, wo, 0, to, fmt.Errorf("udp: %d-byte datagram: %w", size, syscall.EMSGSIZE)
	}
	dst := to.Addr()
	if dst.IsUnspecified() {
		if dst.Is4() {
			dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			dst = netip.IPv6Loopback()
		}
		to = netip.AddrPortFrom(dst, to.Port())
	}
	src := o.Src
	if src.IsValid() {
		src = src.Unmap().WithZone("")
		if src.IsUnspecified() {
			src = netip.Addr{}
		}
	}
	r, err := e.routeLocked(dst, zone, src, o.IfIndex)
	if err != nil {
		return r, wo, 0, to, err
	}
	if o.DontRoute && r.NextHop != r.Dst {
		return r, wo, 0, to, fmt.Errorf("udp: %v is not on a connected network: %w", dst, syscall.ENETUNREACH)
	}
	// RFC 1122 §3.3.6 leaves broadcast sending to the host; Linux asks
	// for SO_BROADCAST and says EACCES without it.
	// (FindRoute classifies 255.255.255.255 and every subnet broadcast
	// address it routes to as RouteBroadcast.)
	if r.Kind == stack.RouteBroadcast && !e.opts.Broadcast {
		return r, wo, 0, to, fmt.Errorf("udp: send to broadcast %v without SO_BROADCAST: %w", dst, syscall.EACCES)
	}
	if err := e.autobindLocked(to); err != nil {
		return r, wo, 0, to, err
	}
	wo = e.opts.StackWriteOptions(wire.IPProtoUDP, dst, o)
	wo.DontFragment = wo.DontFragment && !v6
	return r, wo, e.local.Port(), to, nil
}

// Shutdown implements transport.Endpoint. As on Linux, an unconnected
// socket answers ENOTCONN but the directions are shut all the same
// (inet_shutdown), which is how a blocked reader is woken.
func (e *endpoint) Shutdown(how int) error {
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return syscall.EBADF
	}
	if err := e.ShutdownLocked(how); err != nil {
		e.mu.Unlock()
		return err
	}
	connected := e.remote.IsValid()
	e.mu.Unlock()
	e.NotifyShutdown()
	if !connected {
		return syscall.ENOTCONN
	}
	return nil
}

// Close implements transport.Endpoint: it leaves the socket's groups,
// frees the port and drops what is queued.
func (e *endpoint) Close() error {
	e.mu.Lock()
	if !e.CloseLocked() {
		e.mu.Unlock()
		return nil
	}
	e.p.tab.replace(e.ent, nil)
	e.ent = nil
	if e.res != nil {
		e.res.Release()
		e.res = nil
	}
	e.mu.Unlock()
	e.p.eps.Remove(e)
	e.mcMu.Lock()
	e.mships.LeaveAll()
	e.mcMu.Unlock()
	e.Release()
	return nil
}

// LocalAddr implements transport.Endpoint.
func (e *endpoint) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.local.IsValid() {
		return netip.AddrPortFrom(e.wildcard(), 0)
	}
	return e.presentAP(e.local)
}

// RemoteAddr implements transport.Endpoint.
func (e *endpoint) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.remote.IsValid() {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.presentAP(e.remote), nil
}

// SetSockOpt implements transport.Endpoint: the memberships and
// SO_BINDTODEVICE here, the rest through transport.Options.
func (e *endpoint) SetSockOpt(level, name int, v any) error {
	if (level == syscall.IPPROTO_IP && (name == syscall.IP_ADD_MEMBERSHIP || name == syscall.IP_DROP_MEMBERSHIP)) ||
		(level == syscall.IPPROTO_IPV6 && (name == syscall.IPV6_JOIN_GROUP || name == syscall.IPV6_LEAVE_GROUP)) {
		var m transport.Membership
		switch x := v.(type) {
		case transport.Membership:
			m = x
		case *transport.Membership:
			if x == nil {
				return syscall.EFAULT
			}
			m = *x
		default:
			return fmt.Errorf("udp: membership value %T: %w", v, syscall.EINVAL)
		}
		if level == syscall.IPPROTO_IP && !m.Group.Unmap().Is4() || level == syscall.IPPROTO_IPV6 && !m.Group.Is6() {
			return fmt.Errorf("udp: group %v at this level: %w", m.Group, syscall.EINVAL)
		}
		if m.IfIndex == 0 && m.Group.Zone() != "" {
			if n, ok := e.p.s.NICByName(m.Group.Zone()); ok {
				m.IfIndex = n.Index()
			}
		}
		m.Group = m.Group.WithZone("")
		e.mcMu.Lock()
		defer e.mcMu.Unlock()
		if name == syscall.IP_ADD_MEMBERSHIP || name == syscall.IPV6_JOIN_GROUP {
			return e.mships.Join(m)
		}
		return e.mships.Leave(m)
	}
	if level == syscall.SOL_SOCKET && (name == syscall.SO_ERROR || name == syscall.SO_TYPE || name == syscall.SO_PROTOCOL || name == syscall.SO_DOMAIN) {
		return syscall.ENOPROTOOPT
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Closed {
		return syscall.EBADF
	}
	if level == syscall.IPPROTO_IPV6 && name == syscall.IPV6_V6ONLY && e.local.IsValid() {
		return syscall.EINVAL // Linux: not once bound
	}
	if level == syscall.IPPROTO_IPV6 && !e.v6() {
		return syscall.ENOPROTOOPT
	}
	if err := e.opts.Set(level, name, v); err != nil {
		return err
	}
	if level == syscall.SOL_SOCKET && name == syscall.SO_BINDTODEVICE {
		e.device.Store(int64(e.opts.BoundDevice))
	}
	return nil
}

// GetSockOpt implements transport.Endpoint.
func (e *endpoint) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET {
		switch name {
		case syscall.SO_ERROR:
			return int(e.TakeErrorLocked()), nil
		case syscall.SO_TYPE:
			return syscall.SOCK_DGRAM, nil
		case syscall.SO_PROTOCOL:
			return syscall.IPPROTO_UDP, nil
		case syscall.SO_DOMAIN:
			return e.family, nil
		case syscall.SO_ACCEPTCONN:
			return 0, nil
		}
	}
	if (level == syscall.IPPROTO_IP && name == syscall.IP_MTU) || (level == syscall.IPPROTO_IPV6 && name == syscall.IPV6_MTU) {
		if !e.remote.IsValid() {
			return nil, syscall.ENOTCONN
		}
		r, err := e.routeLocked(e.remote.Addr(), 0, netip.Addr{}, 0)
		if err != nil {
			return nil, err
		}
		return r.MTU, nil
	}
	if level == syscall.IPPROTO_IPV6 && !e.v6() {
		return nil, syscall.ENOPROTOOPT
	}
	return e.opts.Get(level, name)
}

// Info implements transport.Endpoint.
func (e *endpoint) Info() transport.Info {
	e.mu.Lock()
	in := transport.Info{Proto: "udp", Protocol: syscall.IPPROTO_UDP}
	if e.v6() {
		in.Proto = "udp6"
	}
	in.Local = netip.AddrPortFrom(e.wildcard(), 0)
	if e.local.IsValid() {
		in.Local = e.presentAP(e.local)
	}
	if e.remote.IsValid() {
		in.Remote = e.presentAP(e.remote)
		in.State = "ESTABLISHED"
	}
	e.mu.Unlock()
	in.RecvQ = e.Rcv.Bytes()
	in.Drops = e.Rcv.Drops()
	return in
}

// wantsGroup reports whether a multicast datagram to g arriving on the
// NIC nic is for this socket: it joined g there, or IP_MULTICAST_ALL is on
// (Linux ip_mc_sf_allow: a socket that did not join takes every group
// the interface joined unless it turned mc_all off).
func (e *endpoint) wantsGroup(g netip.Addr, nic int) bool {
	e.mcMu.Lock()
	joined := e.mships.Has(g, nic)
	e.mcMu.Unlock()
	if joined {
		return true
	}
	e.mu.Lock()
	all := e.opts.MulticastAll
	e.mu.Unlock()
	return all
}

// deliver queues a received datagram (a view of the packet: zero copy)
// with the control messages the socket asked for, and announces it.
func (e *endpoint) deliver(pi *stack.PacketInfo, u wire.UDP, src netip.AddrPort, c *Counters) {
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return
	}
	limit := e.opts.RcvBuf
	cm := transport.ControlFor(&e.opts, pi)
	if cm.HasPktInfo {
		cm.Dst = e.present(pi.Dst.Unmap())
	}
	e.mu.Unlock()
	from := e.present(src.Addr())
	if from.Is6() && !from.Is4In6() && from.IsLinkLocalUnicast() && pi.NIC != nil {
		from = from.WithZone(pi.NIC.Name()) // the sockaddr's scope id
	}
	d := transport.Datagram{Data: u.Payload(), From: netip.AddrPortFrom(from, src.Port()), Control: cm}
	if !e.Rcv.Push(d, limit) {
		c.RcvbufErrors.Add(1)
		c.InErrors.Add(1)
		return
	}
	e.Q.Notify(waiter.EventIn | waiter.EventRdNorm)
}

// icmpError records an ICMP error about a datagram this socket sent to
// remote (Linux __udp4_lib_err / __udp6_lib_err): with IP_RECVERR it is
// queued on the error queue and becomes SO_ERROR; without, only a hard
// error on a connected socket becomes SO_ERROR.
func (e *endpoint) icmpError(ie *stack.ICMPError, errno syscall.Errno, hard bool, remote netip.AddrPort) {
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return
	}
	if errno == syscall.EMSGSIZE && e.opts.PMTUDisc == syscall.IP_PMTUDISC_DONT {
		e.mu.Unlock()
		return // the path MTU is learnt by the stack; nothing to report
	}
	recverr, limit := e.opts.RecvErr, e.opts.RcvBuf
	if !recverr && (!hard || !e.remote.IsValid()) {
		e.mu.Unlock()
		return
	}
	e.SoErr = errno
	e.mu.Unlock()
	if recverr {
		var data []byte
		if len(ie.Payload) > wire.UDPHeaderLen {
			data = ie.Payload[wire.UDPHeaderLen:]
		}
		// As ip_icmp_error, with the addresses in the socket's family.
		d := transport.ICMPErrorDatagram(ie, errno, data)
		d.From = e.presentAP(remote)
		d.Control.Err.Offender = e.present(ie.From.Unmap())
		e.ErrQ.Push(d, limit)
	}
	e.Q.Notify(waiter.EventErr)
}
