// Package raw owns raw IP sockets: socket(AF_INET|AF_INET6, SOCK_RAW,
// protocol), as Linux's raw(7) and raw6 (RFC 3542 for IPv6).
//
// Receive: every endpoint registers a stack raw handler for its family and
// protocol and sees each packet of that protocol addressed to this host,
// IPv4 with its IP header (as Linux), IPv6 as the payload after the
// extension headers (RFC 3542 §3), filtered by the bound address, the
// connected peer, SO_BINDTODEVICE, ICMP_FILTER / ICMP6_FILTER and, for
// IPv6 sockets with IPV6_CHECKSUM, the checksum. ICMP errors quoting a
// packet of the socket's protocol (Linux raw_icmp_error) go to the error
// queue with IP_RECVERR and to SO_ERROR as raw_err decides.
//
// Send: IPv4 without IP_HDRINCL gets its header from the stack; with it
// (always for IPPROTO_RAW) the caller writes the header and the stack only
// fills in what raw_send_hdrinc does. IPv6 ICMPv6 sockets always have
// their checksum computed (RFC 3542 §3.1), others with IPV6_CHECKSUM.
//
// Lock order: endpoint.mu, then the stack's locks (route lookups), then
// the leaves: the DatagramQueue locks and the lock of Protocol.eps (the
// open sockets, for netstat). An endpoint's queues, SO_ERROR and shutdown
// state are a transport.DatagramEndpoint guarded by endpoint.mu. Nothing
// is held while writing a packet or notifying waiters.
package raw

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Option numbers the syscall package lacks.
const (
	SOL_RAW       = syscall.IPPROTO_RAW // the level of ICMP_FILTER (Linux SOL_RAW is 255)
	ICMP_FILTER   = 1                   // linux/icmp.h
	ICMP6_FILTER  = 1                   // linux/icmpv6.h, level IPPROTO_ICMPV6
	IPV6_CHECKSUM = 7                   // linux/in6.h
)

// Protocol is the raw socket table of one stack.
type Protocol struct {
	s   *stack.Stack
	eps transport.EndpointSet[*endpoint]
}

// New returns the raw socket protocol for s.
func New(s *stack.Stack) *Protocol {
	return &Protocol{s: s}
}

// Register makes p serve SOCK_RAW for AF_INET and AF_INET6 with any
// protocol 1..255; the constructor refuses callers without privilege
// (CAP_NET_RAW) with EPERM, as Linux's inet_create.
func (p *Protocol) Register(r *transport.Registry) {
	for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
		r.Register(fam, syscall.SOCK_RAW, -1, func(req transport.NewRequest) (transport.Endpoint, error) {
			if !req.Cred.Privileged {
				return nil, syscall.EPERM
			}
			return p.NewEndpoint(req.Family, req.Protocol)
		})
	}
}

// NewEndpoint opens a raw socket of family (AF_INET, AF_INET6) for the IP
// protocol number protocol (1..255). IPPROTO_RAW implies IP_HDRINCL.
func (p *Protocol) NewEndpoint(family, protocol int) (transport.Endpoint, error) {
	if family != syscall.AF_INET && family != syscall.AF_INET6 {
		return nil, syscall.EAFNOSUPPORT
	}
	if protocol <= 0 || protocol > 255 {
		return nil, syscall.EPROTONOSUPPORT
	}
	e := &endpoint{
		p: p, s: p.s, IPAddrs: transport.IPAddrs{V6: family == syscall.AF_INET6}, proto: uint8(protocol),
		opts: transport.NewOptions(transport.StackInterfaces(p.s)), csumOff: -1,
		members: transport.NewMemberships(p.s),
	}
	if !e.V6 && protocol == syscall.IPPROTO_RAW {
		e.opts.HdrIncl = true
	}
	if e.V6 && protocol == syscall.IPPROTO_ICMPV6 {
		e.csumOff = 2 // RFC 3542 §3.1: the kernel always computes it
	}
	p.eps.Add(e)
	e.removeRaw = p.s.AddRawHandler(e.V6, e.proto, e.handlePacket)
	e.removeErr = p.s.AddErrorHandler(e.V6, e.proto, e.handleError)
	return e, nil
}

// Endpoints describes the open raw sockets for netstat.
func (p *Protocol) Endpoints() []transport.Info { return p.eps.Infos() }

type endpoint struct {
	p     *Protocol
	s     *stack.Stack
	proto uint8

	removeRaw, removeErr func()

	mu sync.Mutex
	// The queues, SO_ERROR, the shutdown and closed flags (under mu).
	transport.DatagramEndpoint
	// The family, the bound (or connect-chosen) address and the peer
	// (under mu; the family never changes).
	transport.IPAddrs
	opts    transport.Options
	members transport.Memberships
	filter  uint32    // ICMP_FILTER: types (< 32) to block
	filter6 [8]uint32 // ICMP6_FILTER: RFC 3542 §3.2, bit set blocks
	csumOff int       // IPV6_CHECKSUM offset, -1: off
}

func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ReadinessLocked(mask)
}

// Bind sets the local address (the port is ignored: the protocol is the
// socket's). Linux raw_bind accepts our addresses, multicast and
// broadcast; an IPv6 zone binds to that interface.
func (e *endpoint) Bind(addr netip.AddrPort) error {
	a, err := e.Family(addr.Addr())
	if err != nil {
		if e.V6 {
			return syscall.EADDRNOTAVAIL
		}
		return err
	}
	a, nic, err := transport.StackInterfaces(e.s).SplitZone(a)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !e.s.IsLocal(a) && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return syscall.EADDRNOTAVAIL
	}
	if a.IsLinkLocalUnicast() && nic == 0 {
		return syscall.EINVAL // RFC 3493: a link-local address needs its scope
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Closed {
		return syscall.EBADF
	}
	if a.IsUnspecified() {
		a = netip.Addr{}
	}
	e.Local, e.Bound = a, a.IsValid()
	if nic != 0 {
		e.opts.BoundDevice = nic
	}
	return nil
}

// Connect sets the peer whose packets the socket receives and to which
// it sends by default; the zero AddrPort dissolves it (AF_UNSPEC). As
// ip4_datagram_connect, an unbound socket takes the route's source.
func (e *endpoint) Connect(addr netip.AddrPort) error {
	if !addr.Addr().IsValid() {
		e.mu.Lock()
		e.Peer = netip.Addr{}
		if !e.Bound {
			e.Local = netip.Addr{}
		}
		e.mu.Unlock()
		return nil
	}
	a, err := e.Family(addr.Addr())
	if err != nil {
		return err
	}
	e.mu.Lock()
	nic, src, bcast := e.opts.BoundDevice, e.Local, e.opts.Broadcast
	e.mu.Unlock()
	r, err := transport.ConnectRoute(e.s, nic, src, a, bcast)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Peer = a.WithZone("")
	if !e.Local.IsValid() {
		e.Local = r.Src
	}
	return nil
}

func (e *endpoint) Listen(int) error { return syscall.EOPNOTSUPP }

func (e *endpoint) Accept() (transport.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
}

// handlePacket is the stack's raw handler (the packet path).
func (e *endpoint) handlePacket(pi *stack.PacketInfo, pkt []byte) {
	e.mu.Lock()
	ok := e.accept(pi, pkt)
	var d transport.Datagram
	limit := e.opts.RcvBuf
	if ok {
		d = transport.Datagram{Data: pkt, From: netip.AddrPortFrom(e.fromAddr(pi.Src, pi.NIC), 0),
			Control: transport.ControlFor(&e.opts, pi)}
	}
	e.mu.Unlock()
	if ok && e.Rcv.Push(d, limit) {
		e.Q.Notify(waiter.EventIn | waiter.EventRdNorm)
	}
}

// fromAddr is the sender as the socket reports it: link-local IPv6 peers
// carry their interface as the zone (sin6_scope_id).
func (e *endpoint) fromAddr(a netip.Addr, n *stack.NIC) netip.Addr {
	if e.V6 && n != nil && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return a.WithZone(n.Name())
	}
	return a
}

// accept applies raw_v4_match / raw_v6_match and the filters; under mu.
func (e *endpoint) accept(pi *stack.PacketInfo, pkt []byte) bool {
	if e.Closed {
		return false
	}
	if e.Local.IsValid() && e.Local != pi.Dst {
		return false
	}
	if e.Peer.IsValid() && e.Peer != pi.Src {
		return false
	}
	if e.opts.BoundDevice != 0 && (pi.NIC == nil || pi.NIC.Index() != e.opts.BoundDevice) {
		return false
	}
	if pi.Dst.IsMulticast() && !e.opts.MulticastAll && !e.members.Has(pi.Dst, nicIndex(pi.NIC)) {
		return false
	}
	if !e.V6 {
		if e.proto == wire.IPProtoICMP {
			// Linux icmp_filter: a message too short for its type is
			// blocked; types from 32 up are never blocked.
			hl := len(pi.Network)
			if len(pkt) < hl+wire.ICMPv4HeaderLen {
				return false
			}
			if t := pkt[hl]; t < 32 && e.filter&(1<<t) != 0 {
				return false
			}
		}
		return true
	}
	if e.proto == wire.IPProtoICMPv6 {
		// Linux icmpv6_filter; the stack verified the checksum.
		if len(pkt) < wire.ICMPv6HeaderLen {
			return false
		}
		t := pkt[0]
		return e.filter6[t>>5]&(1<<(t&31)) == 0
	}
	if e.csumOff >= 0 {
		// rawv6_rcv: with IPV6_CHECKSUM the kernel verifies the sum.
		if e.csumOff+2 > len(pkt) {
			return false
		}
		sum := wire.Checksum(pkt, wire.PseudoHeaderChecksum(e.proto, pi.Src, pi.Dst, uint32(len(pkt))))
		if sum != 0xffff {
			return false
		}
	}
	return true
}

func nicIndex(n *stack.NIC) int {
	if n == nil {
		return 0
	}
	return n.Index()
}

// handleError is the stack's error handler for the socket's protocol:
// Linux raw_err / rawv6_err.
func (e *endpoint) handleError(ie *stack.ICMPError) {
	e.mu.Lock()
	notify := e.deliverError(ie)
	e.mu.Unlock()
	if notify {
		e.Q.Notify(waiter.EventErr)
	}
}

// deliverError queues and records ie if it concerns this socket; under mu.
func (e *endpoint) deliverError(ie *stack.ICMPError) bool {
	if e.Closed {
		return false
	}
	// raw_v4_match on the quoted header: our packet went from the bound
	// address to the connected peer.
	if (e.Local.IsValid() && !e.Local.IsMulticast() && e.Local != ie.Src) ||
		(e.Peer.IsValid() && e.Peer != ie.Dst) ||
		(e.opts.BoundDevice != 0 && nicIndex(ie.NIC) != e.opts.BoundDevice) {
		return false
	}
	connected := e.Peer.IsValid()
	if !e.opts.RecvErr && !connected {
		return false
	}
	errno, fatal := ie.Errno()
	if tooBig(ie) {
		if e.V6 {
			fatal = e.opts.PMTUDisc == syscall.IP_PMTUDISC_DO
		} else {
			fatal = e.opts.PMTUDisc != syscall.IP_PMTUDISC_DONT
		}
	}
	if e.opts.RecvErr {
		payload := ie.Payload
		if e.opts.HdrIncl {
			payload = ie.Quoted
		}
		e.ErrQ.Push(transport.ICMPErrorDatagram(ie, errno, payload), e.opts.RcvBuf)
	}
	if e.opts.RecvErr || fatal {
		e.SoErr = errno
	}
	return true
}

// tooBig reports fragmentation needed / Packet Too Big.
func tooBig(ie *stack.ICMPError) bool {
	if ie.IsIPv6() {
		return ie.Type == wire.ICMPv6PacketTooBig
	}
	return ie.Type == wire.ICMPv4DestUnreachable && ie.Code == wire.ICMPv4FragmentationNeeded
}

// Read returns one datagram (or, with ErrQueue, one queued error).
func (e *endpoint) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	if o.OOB {
		return transport.ReadResult{}, syscall.EOPNOTSUPP
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, _, err := e.ReadLocked(dst, o)
	return r, err
}

func (e *endpoint) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	if o.OOB {
		return 0, syscall.EOPNOTSUPP
	}
	total := transport.TotalLen(src)
	e.mu.Lock()
	if err := e.SendCheckLocked(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	if err := e.TakeErrorLocked(); err != 0 {
		e.mu.Unlock() // sock_alloc_send_skb reports and clears it
		return 0, err
	}
	dst, nic, src2, err := e.DestinationLocked(&e.opts, o)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	wo := e.opts.StackWriteOptions(e.proto, dst, o)
	hdrincl, bcast, csumOff := e.opts.HdrIncl && !e.V6, e.opts.Broadcast, e.csumOff
	e.mu.Unlock()
	if total > 0xffff {
		return 0, syscall.EMSGSIZE
	}
	if e.V6 && e.proto == syscall.IPPROTO_RAW {
		return 0, syscall.EOPNOTSUPP // no IPv6 header inclusion (IPV6_HDRINCL) yet
	}
	r, err := e.s.FindRoute(nic, src2, dst)
	if err != nil {
		return 0, err
	}
	if r.Kind == stack.RouteBroadcast && !bcast {
		return 0, syscall.EACCES // Linux: broadcasts need SO_BROADCAST
	}
	if o.DontRoute && r.NextHop != r.Dst {
		return 0, syscall.ENETUNREACH
	}
	pkt := stack.NewPacket(total)
	b := pkt.Bytes()
	transport.Gather(b, src)
	switch {
	case hdrincl:
		wo = stack.WriteOptions{HeaderIncluded: true, Loop: wo.Loop}
	case e.V6 && csumOff >= 0:
		if csumOff+2 > len(b) {
			return 0, syscall.EINVAL // rawv6_push_pending_frames
		}
		b[csumOff], b[csumOff+1] = 0, 0
		sum := ^wire.Checksum(b, wire.PseudoHeaderChecksum(e.proto, r.Src, r.Dst, uint32(len(b))))
		binary.BigEndian.PutUint16(b[csumOff:], sum)
	case !e.V6 && e.proto == wire.IPProtoICMP && len(b) > 0:
		e.s.CountICMPv4Out(b[0])
	}
	if err := e.s.WritePacket(&r, pkt, wo); err != nil {
		return 0, err
	}
	return total, nil
}

// Shutdown marks the directions closed; as inet_shutdown, an unconnected
// socket is marked but answers ENOTCONN.
func (e *endpoint) Shutdown(how int) error {
	e.mu.Lock()
	err := e.ShutdownLocked(how)
	connected := e.Peer.IsValid()
	e.mu.Unlock()
	if err != nil {
		return err
	}
	e.NotifyShutdown()
	if !connected {
		return syscall.ENOTCONN
	}
	return nil
}

func (e *endpoint) Close() error {
	e.mu.Lock()
	if !e.CloseLocked() {
		e.mu.Unlock()
		return nil
	}
	e.members.LeaveAll()
	e.mu.Unlock()
	e.removeRaw()
	e.removeErr()
	e.p.eps.Remove(e)
	e.Release()
	return nil
}

// LocalAddr is the bound address with the protocol as the port, as
// Linux's getsockname reports for raw sockets (inet_sport = protocol).
func (e *endpoint) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return netip.AddrPortFrom(e.LocalOrAnyLocked(), uint16(e.proto))
}

func (e *endpoint) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.RemoteLocked()
}

func (e *endpoint) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case level == SOL_RAW && name == ICMP_FILTER:
		if e.V6 || e.proto != wire.IPProtoICMP {
			return syscall.EOPNOTSUPP
		}
		n, err := transport.IntValue(v)
		if err != nil {
			return err
		}
		e.filter = uint32(n)
		return nil
	case level == syscall.IPPROTO_ICMPV6 && name == ICMP6_FILTER:
		if !e.V6 || e.proto != wire.IPProtoICMPv6 {
			return syscall.EOPNOTSUPP
		}
		return setFilter6(&e.filter6, v)
	case (level == syscall.IPPROTO_IPV6 || level == SOL_RAW) && name == IPV6_CHECKSUM && e.V6:
		if e.proto == wire.IPProtoICMPv6 && level == syscall.IPPROTO_IPV6 {
			// RFC 3542 §3.1: not at this level on ICMPv6 sockets (Linux
			// still takes it at SOL_RAW).
			return syscall.EINVAL
		}
		n, err := transport.IntValue(v)
		if err != nil {
			return err
		}
		if n > 0 && n&1 != 0 {
			return syscall.EINVAL // do_rawv6_setsockopt: odd offsets refused
		}
		e.csumOff = max(n, -1)
		return nil
	case level == syscall.IPPROTO_IP && name == syscall.IP_HDRINCL && e.V6:
		return syscall.ENOPROTOOPT
	case level == syscall.IPPROTO_IP && name == syscall.IP_HDRINCL && e.proto == syscall.IPPROTO_RAW:
		return nil // IPPROTO_RAW always includes the header
	case level == syscall.IPPROTO_IP && (name == syscall.IP_ADD_MEMBERSHIP || name == syscall.IP_DROP_MEMBERSHIP),
		level == syscall.IPPROTO_IPV6 && (name == syscall.IPV6_JOIN_GROUP || name == syscall.IPV6_LEAVE_GROUP):
		m, ok := v.(transport.Membership)
		if !ok {
			return syscall.EINVAL
		}
		if m.Group.Unmap().Is4() == e.V6 {
			return syscall.EINVAL
		}
		if name == syscall.IP_ADD_MEMBERSHIP || name == syscall.IPV6_JOIN_GROUP {
			return e.members.Join(m)
		}
		return e.members.Leave(m)
	case level == syscall.SOL_SOCKET && name == syscall.SO_ERROR:
		return syscall.ENOPROTOOPT
	}
	return e.opts.Set(level, name, v)
}

// setFilter6 stores ICMP6_FILTER from a [8]uint32 (or pointer) or the raw
// struct icmp6_filter bytes (native endian words; Linux copies at most 32
// bytes and keeps the rest of a shorter value).
func setFilter6(f *[8]uint32, v any) error {
	switch x := v.(type) {
	case [8]uint32:
		*f = x
	case *[8]uint32:
		if x == nil {
			return syscall.EFAULT
		}
		*f = *x
	case []byte:
		var b [32]byte
		for i, w := range f {
			binary.NativeEndian.PutUint32(b[4*i:], w)
		}
		copy(b[:], x)
		for i := range f {
			f[i] = binary.NativeEndian.Uint32(b[4*i:])
		}
	default:
		return syscall.EINVAL
	}
	return nil
}

func (e *endpoint) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case level == SOL_RAW && name == ICMP_FILTER:
		if e.V6 || e.proto != wire.IPProtoICMP {
			return nil, syscall.EOPNOTSUPP
		}
		return int(e.filter), nil
	case level == syscall.IPPROTO_ICMPV6 && name == ICMP6_FILTER:
		if !e.V6 || e.proto != wire.IPProtoICMPv6 {
			return nil, syscall.EOPNOTSUPP
		}
		return e.filter6, nil
	case (level == syscall.IPPROTO_IPV6 || level == SOL_RAW) && name == IPV6_CHECKSUM && e.V6:
		return e.csumOff, nil
	case level == syscall.SOL_SOCKET && name == syscall.SO_ERROR:
		return e.TakeErrorLocked(), nil
	}
	return e.opts.Get(level, name)
}

// Info describes the socket as /proc/net/raw and netstat -w do: the local
// port is the protocol and the state is the numeric socket state (7,
// TCP_CLOSE; 1, TCP_ESTABLISHED when connected).
func (e *endpoint) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := transport.Info{Proto: "raw", Protocol: int(e.proto),
		Local: netip.AddrPortFrom(e.LocalOrAnyLocked(), uint16(e.proto)),
		State: "7", RecvQ: e.Rcv.Bytes(), Drops: e.Rcv.Drops()}
	if e.V6 {
		in.Proto = "raw6"
	}
	if e.Peer.IsValid() {
		in.Remote, in.State = netip.AddrPortFrom(e.Peer, 0), "1"
	}
	return in
}
