// Package ping owns Linux-style ping sockets: socket(AF_INET, SOCK_DGRAM,
// IPPROTO_ICMP) and socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), which
// let unprivileged programs send ICMP echo requests and read the replies
// (Linux net/ipv4/ping.c, net/ipv6/ping.c).
//
// The socket's "port" is the ICMP echo identifier: bind takes the one
// given or picks a free one, and every echo request the program writes
// leaves with that identifier and a checksum the stack computes. Echo
// replies are matched to a socket by identifier, bound address and bound
// device (ping_lookup) and read as the ICMP message without the IP
// header. ICMP errors quoting one of the socket's requests reach it as
// ping_err decides: on the error queue with IP_RECVERR/IPV6_RECVERR, and
// as SO_ERROR with IP_RECVERR or, for hard errors, when connected.
//
// The Protocol installs one raw handler and one error handler per family
// with the stack when it is made; the handlers find the socket by
// identifier in Protocol.idents.
//
// Lock order: endpoint.mu, then Protocol.mu (the identifier table), then
// the stack's locks (route lookups), then the leaves: the DatagramQueue
// locks and the lock of Protocol.eps (the open sockets, for netstat). An
// endpoint's queues, SO_ERROR and shutdown state are a
// transport.DatagramEndpoint guarded by endpoint.mu. The packet path
// takes Protocol.mu alone to find a socket and then that socket's mu.
// Nothing is held while writing a packet or notifying waiters.
package ping

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Protocol is the ping socket table of one stack.
type Protocol struct {
	s *stack.Stack

	groupLo, groupHi atomic.Uint32 // net.ipv4.ping_group_range

	mu     sync.Mutex
	idents map[uint16][]*endpoint // one identifier space for both families, as Linux's ping_table
	rover  uint16

	eps transport.EndpointSet[*endpoint]
}

// New returns the ping socket protocol for s and installs its handlers.
// The group range starts as Debian's "0 2147483647" (every group).
func New(s *stack.Stack) *Protocol {
	p := &Protocol{s: s, idents: make(map[uint16][]*endpoint)}
	p.groupHi.Store(2147483647)
	s.AddRawHandler(false, wire.IPProtoICMP, p.input4)
	s.AddRawHandler(true, wire.IPProtoICMPv6, p.input6)
	s.AddErrorHandler(false, wire.IPProtoICMP, p.inputError)
	s.AddErrorHandler(true, wire.IPProtoICMPv6, p.inputError)
	return p
}

// SetGroupRange sets which group IDs may open ping sockets (Linux's
// ping_group_range); lo > hi allows nobody but privileged callers.
func (p *Protocol) SetGroupRange(lo, hi uint32) {
	p.groupLo.Store(lo)
	p.groupHi.Store(hi)
}

func (p *Protocol) allowed(c transport.Cred) bool {
	return c.Privileged || (p.groupLo.Load() <= c.GID && c.GID <= p.groupHi.Load())
}

// Register makes p serve SOCK_DGRAM with IPPROTO_ICMP (AF_INET) and
// IPPROTO_ICMPV6 (AF_INET6); callers outside the group range get EACCES,
// as Linux's ping_init_sock.
func (p *Protocol) Register(r *transport.Registry) {
	for _, c := range []struct{ family, proto int }{
		{syscall.AF_INET, syscall.IPPROTO_ICMP}, {syscall.AF_INET6, syscall.IPPROTO_ICMPV6},
	} {
		r.Register(c.family, syscall.SOCK_DGRAM, c.proto, func(req transport.NewRequest) (transport.Endpoint, error) {
			if !p.allowed(req.Cred) {
				return nil, syscall.EACCES
			}
			return p.NewEndpoint(req.Family)
		})
	}
}

// NewEndpoint opens a ping socket of family AF_INET or AF_INET6.
func (p *Protocol) NewEndpoint(family int) (transport.Endpoint, error) {
	if family != syscall.AF_INET && family != syscall.AF_INET6 {
		return nil, syscall.EAFNOSUPPORT
	}
	e := &endpoint{p: p, s: p.s, IPAddrs: transport.IPAddrs{V6: family == syscall.AF_INET6},
		opts: transport.NewOptions(transport.StackInterfaces(p.s))}
	p.eps.Add(e)
	return e, nil
}

// Endpoints describes the open ping sockets for netstat.
func (p *Protocol) Endpoints() []transport.Info { return p.eps.Infos() }

// bindIdent gives e identifier id, or a free one when id is 0 (Linux
// ping_get_port: a rover from 1 that skips 0; sockets share an identifier
// only when both set SO_REUSEADDR). Called with e.mu held.
func (p *Protocol) bindIdent(e *endpoint, id uint16, reuse bool) (uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	free := func(id uint16) bool {
		for _, o := range p.idents[id] {
			if !reuse || !o.reuse {
				return false
			}
		}
		return true
	}
	if id == 0 {
		for range 1 << 16 {
			p.rover++
			if p.rover != 0 && free(p.rover) {
				id = p.rover
				break
			}
		}
		if id == 0 {
			return 0, syscall.EAGAIN
		}
	} else if !free(id) {
		return 0, syscall.EADDRINUSE
	}
	e.reuse = reuse
	p.idents[id] = append(p.idents[id], e)
	return id, nil
}

func (p *Protocol) release(e *endpoint, id uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idents[id]
	for i, o := range list {
		if o == e {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.idents, id)
	} else {
		p.idents[id] = list
	}
}

// lookup finds the socket for identifier id of a packet (or error) that
// arrived for local address dst on nic (ping_lookup: family, bound
// address and bound device; the peer of a connected socket is not
// checked, as in Linux).
func (p *Protocol) lookup(v6 bool, id uint16, dst netip.Addr, nic int) *endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.idents[id] {
		if e.V6 != v6 {
			continue
		}
		if l := e.snapLocal.Load(); l != nil && *l != dst {
			continue
		}
		if d := e.snapDev.Load(); d != 0 && int(d) != nic {
			continue
		}
		return e
	}
	return nil
}

// input4 takes ICMP packets (IPv4 header included) from the stack and
// hands echo replies to their socket, as icmp_rcv → ping_rcv.
func (p *Protocol) input4(pi *stack.PacketInfo, pkt []byte) {
	if pi.Broadcast || pi.Dst.IsMulticast() {
		return // icmp_rcv drops echo replies to broadcast and multicast
	}
	hl := len(pi.Network)
	if len(pkt) < hl+wire.ICMPv4HeaderLen {
		return
	}
	m := wire.ICMPv4(pkt[hl:])
	if m.Type() != wire.ICMPv4EchoReply || !m.ChecksumValid() {
		return
	}
	if e := p.lookup(false, m.Ident(), pi.Dst, nicIndex(pi.NIC)); e != nil {
		e.deliver(pi, m)
	}
}

// input6 takes ICMPv6 messages (checksum verified by the stack) and hands
// echo replies to their socket.
func (p *Protocol) input6(pi *stack.PacketInfo, msg []byte) {
	if len(msg) < wire.ICMPv6ErrorHeaderLen || msg[0] != wire.ICMPv6EchoReply {
		return
	}
	m := wire.ICMPv6(msg)
	if e := p.lookup(true, m.Ident(), pi.Dst, nicIndex(pi.NIC)); e != nil {
		e.deliver(pi, msg)
	}
}

// inputError takes ICMP errors quoting an ICMP or ICMPv6 packet and gives
// those about an echo request to its socket (icmp_err / icmpv6_err →
// ping_err).
func (p *Protocol) inputError(ie *stack.ICMPError) {
	q := ie.Payload
	if len(q) < 8 {
		return
	}
	want := wire.ICMPv4Echo
	if ie.IsIPv6() {
		want = wire.ICMPv6EchoRequest
	}
	if q[0] != want {
		return
	}
	id := binary.BigEndian.Uint16(q[4:])
	if e := p.lookup(ie.IsIPv6(), id, ie.Src, nicIndex(ie.NIC)); e != nil {
		e.handleError(ie)
	}
}

func nicIndex(n *stack.NIC) int {
	if n == nil {
		return 0
	}
	return n.Index()
}

type endpoint struct {
	p *Protocol
	s *stack.Stack

	// What lookup reads without e.mu (it runs under Protocol.mu, which
	// nests inside e.mu): the bound address (nil: any) and device.
	snapLocal atomic.Pointer[netip.Addr]
	snapDev   atomic.Int32

	mu sync.Mutex
	// The queues, SO_ERROR, the shutdown and closed flags (under mu).
	transport.DatagramEndpoint
	// The family, the local address (set through setLocal) and the peer
	// (under mu; the family never changes).
	transport.IPAddrs
	opts  transport.Options
	ident uint16 // 0: not bound yet
	reuse bool   // SO_REUSEADDR when the identifier was taken (under Protocol.mu)
}

func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ReadinessLocked(mask)
}

// setLocal records the local address; under mu.
func (e *endpoint) setLocal(a netip.Addr) {
	e.Local = a
	if a.IsValid() {
		e.snapLocal.Store(&a)
	} else {
		e.snapLocal.Store(nil)
	}
}

// Bind sets the local address and the identifier (the port; 0 picks a
// free one): ping_bind, with ping_check_bind_addr's address rules.
func (e *endpoint) Bind(addr netip.AddrPort) error {
	a, err := e.Family(addr.Addr())
	if err != nil {
		return err
	}
	a, nic, err := transport.StackInterfaces(e.s).SplitZone(a)
	if err != nil {
		return err
	}
	switch {
	case a.IsUnspecified():
	case e.V6 && (a.IsMulticast() || (a.IsLinkLocalUnicast() && nic == 0)):
		return syscall.EINVAL
	case !e.s.IsLocal(a) && !(!e.V6 && (a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))):
		return syscall.EADDRNOTAVAIL
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Closed {
		return syscall.EBADF
	}
	if e.ident != 0 {
		return syscall.EINVAL
	}
	id, err := e.p.bindIdent(e, addr.Port(), e.opts.ReuseAddr)
	if err != nil {
		return err
	}
	e.ident = id
	if a.IsUnspecified() {
		a = netip.Addr{}
	}
	e.setLocal(a)
	e.Bound = a.IsValid()
	if nic != 0 {
		e.opts.BoundDevice = nic
		e.snapDev.Store(int32(nic))
	}
	return nil
}

// autobind gives an unbound socket an identifier (inet_autobind, before
// connect and send); under mu.
func (e *endpoint) autobind() error {
	if e.ident != 0 {
		return nil
	}
	id, err := e.p.bindIdent(e, 0, e.opts.ReuseAddr)
	if err != nil {
		return syscall.EAGAIN
	}
	e.ident = id
	return nil
}

// Connect sets the default destination (the zero AddrPort dissolves it);
// as ip4_datagram_connect, an unbound socket takes the route's source.
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return syscall.EBADF
	}
	if !addr.Addr().IsValid() {
		e.Peer = netip.Addr{}
		if !e.Bound {
			e.setLocal(netip.Addr{})
		}
		e.mu.Unlock()
		return nil
	}
	if err := e.autobind(); err != nil {
		e.mu.Unlock()
		return err
	}
	nic, src, bcast := e.opts.BoundDevice, e.Local, e.opts.Broadcast
	e.mu.Unlock()
	a, err := e.Family(addr.Addr())
	if err != nil {
		return err
	}
	r, err := transport.ConnectRoute(e.s, nic, src, a, bcast)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Peer = a.WithZone("")
	if !e.Local.IsValid() {
		e.setLocal(r.Src)
	}
	return nil
}

func (e *endpoint) Listen(int) error { return syscall.EOPNOTSUPP }

func (e *endpoint) Accept() (transport.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
}

// deliver queues an echo reply (the ICMP message); the packet path.
func (e *endpoint) deliver(pi *stack.PacketInfo, msg []byte) {
	e.mu.Lock()
	if e.Closed {
		e.mu.Unlock()
		return
	}
	from := pi.Src
	if e.V6 && pi.NIC != nil && from.IsLinkLocalUnicast() {
		from = from.WithZone(pi.NIC.Name()) // sin6_scope_id
	}
	d := transport.Datagram{Data: msg, From: netip.AddrPortFrom(from, 0), Control: transport.ControlFor(&e.opts, pi)}
	limit := e.opts.RcvBuf
	e.mu.Unlock()
	if e.Rcv.Push(d, limit) {
		e.Q.Notify(waiter.EventIn | waiter.EventRdNorm)
	}
}

// handleError is ping_err for this socket.
func (e *endpoint) handleError(ie *stack.ICMPError) {
	e.mu.Lock()
	notify := e.deliverError(ie)
	e.mu.Unlock()
	if notify {
		e.Q.Notify(waiter.EventErr)
	}
}

// deliverError applies ping_err's rules; under mu.
func (e *endpoint) deliverError(ie *stack.ICMPError) bool {
	if e.Closed {
		return false
	}
	errno, fatal := ie.Errno()
	if !ie.IsIPv6() && ie.Type == wire.ICMPv4DestUnreachable && ie.Code == wire.ICMPv4FragmentationNeeded {
		if e.opts.PMTUDisc == syscall.IP_PMTUDISC_DONT {
			return false // the path MTU is learnt; nothing to report
		}
		fatal = true
	}
	if !e.opts.RecvErr {
		// Without IP_RECVERR only a hard error on a connected socket is
		// reported (RFC 1122 §4.1.3.3 as ping_err reads it).
		if !fatal || !e.Peer.IsValid() {
			return false
		}
	} else {
		// The quoted echo request (ICMP header and data, so the reader
		// sees the sequence number).
		e.ErrQ.Push(transport.ICMPErrorDatagram(ie, errno, ie.Payload), e.opts.RcvBuf)
	}
	e.SoErr = errno
	return true
}

// Read returns one echo reply (or, with ErrQueue, one queued error).
func (e *endpoint) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	if o.OOB {
		return transport.ReadResult{}, syscall.EOPNOTSUPP
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, _, err := e.ReadLocked(dst, o)
	return r, err
}

// Write sends one echo request: the caller's ICMP message, type 8 (128
// for IPv6) code 0, at least the 8-byte header, else EINVAL
// (ping_common_sendmsg); the identifier is replaced by the socket's and
// the checksum computed.
func (e *endpoint) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	if o.OOB {
		return 0, syscall.EOPNOTSUPP
	}
	total := transport.TotalLen(src)
	if total > 0xffff {
		return 0, syscall.EMSGSIZE
	}
	e.mu.Lock()
	if err := e.SendCheckLocked(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	if err := e.autobind(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	if err := e.TakeErrorLocked(); err != 0 {
		e.mu.Unlock()
		return 0, err
	}
	dst, nic, srcAddr, err := e.DestinationLocked(&e.opts, o)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	proto := uint8(wire.IPProtoICMP)
	if e.V6 {
		proto = wire.IPProtoICMPv6
	}
	wo := e.opts.StackWriteOptions(proto, dst, o)
	id, bcast := e.ident, e.opts.Broadcast
	e.mu.Unlock()

	if total < wire.ICMPv4HeaderLen {
		return 0, syscall.EINVAL
	}
	pkt := stack.NewPacket(total)
	b := pkt.Bytes()
	transport.Gather(b, src)
	want := wire.ICMPv4Echo
	if e.V6 {
		want = wire.ICMPv6EchoRequest
	}
	if b[0] != want || b[1] != 0 {
		return 0, syscall.EINVAL
	}
	r, err := e.s.FindRoute(nic, srcAddr, dst)
	if err != nil {
		return 0, err
	}
	if r.Kind == stack.RouteBroadcast && !bcast {
		return 0, syscall.EACCES
	}
	if o.DontRoute && r.NextHop != r.Dst {
		return 0, syscall.ENETUNREACH
	}
	binary.BigEndian.PutUint16(b[4:], id)
	if e.V6 {
		wire.SetICMPv6Checksum(b, r.Src, r.Dst)
	} else {
		b[2], b[3] = 0, 0
		binary.BigEndian.PutUint16(b[2:], ^wire.Checksum(b, 0))
		e.s.CountICMPv4Out(wire.ICMPv4Echo)
	}
	if err := e.s.WritePacket(&r, pkt, wo); err != nil {
		return 0, err
	}
	return total, nil
}

// Shutdown marks directions closed; ENOTCONN when not connected (the
// flags are set all the same, as inet_shutdown).
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
	id := e.ident
	e.mu.Unlock()
	if id != 0 {
		e.p.release(e, id)
	}
	e.p.eps.Remove(e)
	e.Release()
	return nil
}

// LocalAddr is the bound address with the identifier as the port.
func (e *endpoint) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return netip.AddrPortFrom(e.LocalOrAnyLocked(), e.ident)
}

func (e *endpoint) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.RemoteLocked()
}

func (e *endpoint) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		return syscall.ENOPROTOOPT
	}
	if level == syscall.IPPROTO_IP && name == syscall.IP_HDRINCL {
		return syscall.ENOPROTOOPT // raw sockets only
	}
	if err := e.opts.Set(level, name, v); err != nil {
		return err
	}
	if level == syscall.SOL_SOCKET && name == syscall.SO_BINDTODEVICE {
		e.snapDev.Store(int32(e.opts.BoundDevice))
	}
	return nil
}

func (e *endpoint) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		return e.TakeErrorLocked(), nil
	}
	return e.opts.Get(level, name)
}

// Info describes the socket for netstat ("icmp"/"icmp6", the identifier
// as the local port).
func (e *endpoint) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := transport.Info{Proto: "icmp", Protocol: syscall.IPPROTO_ICMP,
		Local: netip.AddrPortFrom(e.LocalOrAnyLocked(), e.ident), RecvQ: e.Rcv.Bytes(), Drops: e.Rcv.Drops()}
	if e.V6 {
		in.Proto, in.Protocol = "icmp6", syscall.IPPROTO_ICMPV6
	}
	if e.Peer.IsValid() {
		in.Remote, in.State = netip.AddrPortFrom(e.Peer, 0), "ESTABLISHED"
	}
	return in
}
