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
// Lock order: endpoint.mu, then Protocol.mu, then the stack's locks (route
// lookups), then the DatagramQueue locks (leaves). The packet path takes
// Protocol.mu alone to find a socket and then that socket's mu. Nothing is
// held while writing a packet or notifying waiters.
package ping

import (
	"encoding/binary"
	"net/netip"
	"strconv"
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
	eps    map[*endpoint]struct{}
}

// New returns the ping socket protocol for s and installs its handlers.
// The group range starts as Debian's "0 2147483647" (every group).
func New(s *stack.Stack) *Protocol {
	p := &Protocol{s: s, idents: make(map[uint16][]*endpoint), eps: make(map[*endpoint]struct{})}
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
	e := &endpoint{p: p, s: p.s, v6: family == syscall.AF_INET6,
		opts: transport.NewOptions(transport.StackInterfaces(p.s))}
	p.mu.Lock()
	p.eps[e] = struct{}{}
	p.mu.Unlock()
	return e, nil
}

// Endpoints describes the open ping sockets for netstat.
func (p *Protocol) Endpoints() []transport.Info {
	p.mu.Lock()
	list := make([]*endpoint, 0, len(p.eps))
	for e := range p.eps {
		list = append(list, e)
	}
	p.mu.Unlock()
	out := make([]transport.Info, 0, len(list))
	for _, e := range list {
		out = append(out, e.Info())
	}
	return out
}

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
		if e.v6 != v6 {
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
	p    *Protocol
	s    *stack.Stack
	v6   bool
	q    waiter.Queue
	rcv  transport.DatagramQueue
	errq transport.DatagramQueue // pushed and popped under mu

	// What lookup reads without e.mu (it runs under Protocol.mu, which
	// nests inside e.mu): the bound address (nil: any) and device.
	snapLocal atomic.Pointer[netip.Addr]
	snapDev   atomic.Int32

	mu     sync.Mutex
	opts   transport.Options
	ident  uint16 // 0: not bound yet
	reuse  bool   // SO_REUSEADDR when the identifier was taken (under Protocol.mu)
	local  netip.Addr
	bound  bool // local came from Bind
	peer   netip.Addr
	soErr  syscall.Errno
	shutRd bool
	shutWr bool
	closed bool
}

func (e *endpoint) Queue() *waiter.Queue { return &e.q }

func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	var r waiter.EventMask
	if e.rcv.Len() > 0 {
		r |= waiter.EventIn | waiter.EventRdNorm
	}
	e.mu.Lock()
	if e.soErr != 0 || e.errq.Len() > 0 {
		r |= waiter.EventErr
	}
	if e.shutRd {
		r |= waiter.EventRdHUp | waiter.EventIn | waiter.EventRdNorm
	}
	if e.shutRd && e.shutWr {
		r |= waiter.EventHUp
	}
	if !e.closed {
		r |= waiter.EventOut | waiter.EventWrNorm
	}
	e.mu.Unlock()
	return r & waiter.Normalize(mask)
}

// family checks an address against the socket's family: IPv4 only for
// AF_INET; IPv6 only for AF_INET6 (ping_v6_sendmsg refuses IPv4-mapped
// destinations with EINVAL).
func (e *endpoint) family(a netip.Addr) (netip.Addr, error) {
	if e.v6 {
		if a.Is4() || a.Is4In6() {
			return a, syscall.EINVAL
		}
		return a, nil
	}
	a = a.Unmap()
	if !a.Is4() {
		return a, syscall.EAFNOSUPPORT
	}
	return a, nil
}

// setLocal records the local address; under mu.
func (e *endpoint) setLocal(a netip.Addr) {
	e.local = a
	if a.IsValid() {
		e.snapLocal.Store(&a)
	} else {
		e.snapLocal.Store(nil)
	}
}

// Bind sets the local address and the identifier (the port; 0 picks a
// free one): ping_bind, with ping_check_bind_addr's address rules.
func (e *endpoint) Bind(addr netip.AddrPort) error {
	a, err := e.family(addr.Addr())
	if err != nil {
		return err
	}
	nic := 0
	if z := a.Zone(); z != "" {
		n, ok := zoneNIC(e.s, z)
		if !ok {
			return syscall.ENODEV
		}
		nic, a = n, a.WithZone("")
	}
	switch {
	case a.IsUnspecified():
	case e.v6 && (a.IsMulticast() || (a.IsLinkLocalUnicast() && nic == 0)):
		return syscall.EINVAL
	case !e.s.IsLocal(a) && !(!e.v6 && (a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))):
		return syscall.EADDRNOTAVAIL
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
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
	e.bound = a.IsValid()
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

func zoneNIC(s *stack.Stack, z string) (int, bool) {
	if n, ok := s.NICByName(z); ok {
		return n.Index(), true
	}
	if i, err := strconv.Atoi(z); err == nil {
		if n, ok := s.NIC(i); ok {
			return n.Index(), true
		}
	}
	return 0, false
}

// Connect sets the default destination (the zero AddrPort dissolves it);
// as ip4_datagram_connect, an unbound socket takes the route's source.
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return syscall.EBADF
	}
	if !addr.Addr().IsValid() {
		e.peer = netip.Addr{}
		if !e.bound {
			e.setLocal(netip.Addr{})
		}
		e.mu.Unlock()
		return nil
	}
	if err := e.autobind(); err != nil {
		e.mu.Unlock()
		return err
	}
	nic, src, bcast := e.opts.BoundDevice, e.local, e.opts.Broadcast
	e.mu.Unlock()
	a, err := e.family(addr.Addr())
	if err != nil {
		return err
	}
	if src.IsMulticast() {
		src = netip.Addr{}
	}
	r, err := e.s.FindRoute(nic, src, a)
	if err != nil {
		return err
	}
	if r.Kind == stack.RouteBroadcast && !bcast {
		return syscall.EACCES
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peer = a.WithZone("")
	if !e.local.IsValid() {
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
	if e.closed {
		e.mu.Unlock()
		return
	}
	from := pi.Src
	if e.v6 && pi.NIC != nil && from.IsLinkLocalUnicast() {
		from = from.WithZone(pi.NIC.Name()) // sin6_scope_id
	}
	d := transport.Datagram{Data: msg, From: netip.AddrPortFrom(from, 0), Control: controlFor(&e.opts, pi)}
	limit := e.opts.RcvBuf
	e.mu.Unlock()
	if e.rcv.Push(d, limit) {
		e.q.Notify(waiter.EventIn | waiter.EventRdNorm)
	}
}

func controlFor(o *transport.Options, pi *stack.PacketInfo) transport.ControlMessages {
	var c transport.ControlMessages
	if o.RecvTTL {
		c.HasTTL, c.TTL = true, pi.TTL
	}
	if o.RecvTOS {
		c.HasTOS, c.TOS = true, pi.TOS
	}
	if o.PktInfo {
		c.HasPktInfo, c.IfIndex, c.Dst = true, nicIndex(pi.NIC), pi.Dst
	}
	return c
}

// handleError is ping_err for this socket.
func (e *endpoint) handleError(ie *stack.ICMPError) {
	e.mu.Lock()
	notify := e.deliverError(ie)
	e.mu.Unlock()
	if notify {
		e.q.Notify(waiter.EventErr)
	}
}

// deliverError applies ping_err's rules; under mu.
func (e *endpoint) deliverError(ie *stack.ICMPError) bool {
	if e.closed {
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
		if !fatal || !e.peer.IsValid() {
			return false
		}
	} else {
		e.errq.Push(errDatagram(ie, errno), e.opts.RcvBuf)
	}
	e.soErr = errno
	return true
}

// errDatagram is the error queue entry ip_icmp_error / ipv6_icmp_error
// make for a ping socket: the quoted echo request (ICMP header and data,
// so the reader sees the sequence number), from the request's
// destination with port 0, and the sock_extended_err (ee_info: the MTU or
// the parameter problem pointer).
func errDatagram(ie *stack.ICMPError, errno syscall.Errno) transport.Datagram {
	ee := &transport.SockExtendedErr{Errno: int(errno), Type: ie.Type, Code: ie.Code, Offender: ie.From,
		Origin: transport.OriginICMP}
	if ie.IsIPv6() {
		ee.Origin = transport.OriginICMP6
	}
	switch {
	case ie.MTU != 0:
		ee.Info = uint32(ie.MTU)
	case ie.Pointer != 0:
		ee.Info = uint32(ie.Pointer)
	}
	return transport.Datagram{Data: ie.Payload, From: netip.AddrPortFrom(ie.Dst, 0),
		Control: transport.ControlMessages{Err: ee}}
}

func (e *endpoint) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	if o.OOB {
		return transport.ReadResult{}, syscall.EOPNOTSUPP
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return transport.ReadResult{}, syscall.EBADF
	}
	if o.ErrQueue {
		defer e.mu.Unlock()
		d, ok := e.errq.Pop(o.Peek)
		if !ok {
			return transport.ReadResult{}, syscall.EAGAIN
		}
		if !o.Peek {
			// sock_dequeue_err_skb: SO_ERROR follows the queue.
			e.soErr = 0
			if next, ok := e.errq.Pop(true); ok && next.Control.Err != nil {
				e.soErr = syscall.Errno(next.Control.Err.Errno)
			}
		}
		return result(d, dst, o), nil
	}
	if err := e.soErr; err != 0 {
		e.soErr = 0 // a pending error comes before any data
		e.mu.Unlock()
		return transport.ReadResult{}, err
	}
	shut := e.shutRd
	e.mu.Unlock()
	d, ok := e.rcv.Pop(o.Peek)
	if !ok {
		if shut {
			return transport.ReadResult{}, nil
		}
		return transport.ReadResult{}, syscall.EAGAIN
	}
	return result(d, dst, o), nil
}

func result(d transport.Datagram, dst [][]byte, o transport.ReadOptions) transport.ReadResult {
	n := transport.CopyOut(dst, d.Data)
	r := transport.ReadResult{N: n, From: d.From, Control: d.Control}
	if n < len(d.Data) {
		r.Truncated = true
		if o.Trunc {
			r.N = len(d.Data)
		}
	}
	return r
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
	if e.closed {
		e.mu.Unlock()
		return 0, syscall.EBADF
	}
	if e.shutWr {
		e.mu.Unlock()
		return 0, syscall.EPIPE
	}
	if err := e.autobind(); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	if err := e.soErr; err != 0 {
		e.soErr = 0
		e.mu.Unlock()
		return 0, err
	}
	dst := o.To.Addr()
	if !dst.IsValid() {
		dst = e.peer
	}
	if !dst.IsValid() {
		e.mu.Unlock()
		return 0, syscall.EDESTADDRREQ
	}
	dst, err := e.family(dst)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	nic, srcAddr := e.opts.BoundDevice, o.Src
	if o.IfIndex != 0 {
		nic = o.IfIndex
	}
	if dst.IsMulticast() && nic == 0 {
		nic = e.opts.MulticastIf
		if !srcAddr.IsValid() && !e.v6 && e.opts.MulticastAddr.IsValid() {
			srcAddr = e.opts.MulticastAddr
		}
	}
	if !srcAddr.IsValid() && e.local.IsValid() && !e.local.IsMulticast() {
		srcAddr = e.local
	}
	proto := uint8(wire.IPProtoICMP)
	if e.v6 {
		proto = wire.IPProtoICMPv6
	}
	wo := stack.WriteOptions{Proto: proto, TTL: e.opts.HopLimit(dst), TOS: e.opts.TrafficClass(dst),
		DontFragment: e.opts.DontFragment(), Loop: e.opts.Loop(dst)}
	id, bcast := e.ident, e.opts.Broadcast
	e.mu.Unlock()
	if o.HasTTL {
		wo.TTL = o.TTL
	}
	if o.HasTOS {
		wo.TOS = o.TOS
	}

	if total < wire.ICMPv4HeaderLen {
		return 0, syscall.EINVAL
	}
	pkt := stack.NewPacket(total)
	b := pkt.Bytes()
	transport.Gather(b, src)
	want := wire.ICMPv4Echo
	if e.v6 {
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
	if e.v6 {
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
	if how < syscall.SHUT_RD || how > syscall.SHUT_RDWR {
		return syscall.EINVAL
	}
	e.mu.Lock()
	if how != syscall.SHUT_WR {
		e.shutRd = true
	}
	if how != syscall.SHUT_RD {
		e.shutWr = true
	}
	connected := e.peer.IsValid()
	e.mu.Unlock()
	e.q.Notify(waiter.EventIn | waiter.EventRdHUp | waiter.EventHUp | waiter.EventOut)
	if !connected {
		return syscall.ENOTCONN
	}
	return nil
}

func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	id := e.ident
	e.errq.Clear()
	e.mu.Unlock()
	if id != 0 {
		e.p.release(e, id)
	}
	e.rcv.Clear()
	e.p.mu.Lock()
	delete(e.p.eps, e)
	e.p.mu.Unlock()
	e.q.Notify(waiter.EventHUp | waiter.EventIn | waiter.EventOut)
	return nil
}

// LocalAddr is the bound address with the identifier as the port.
func (e *endpoint) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return netip.AddrPortFrom(e.localOrAny(), e.ident)
}

func (e *endpoint) localOrAny() netip.Addr {
	if e.local.IsValid() {
		return e.local
	}
	if e.v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func (e *endpoint) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.peer.IsValid() {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return netip.AddrPortFrom(e.peer, 0), nil
}

// Available is FIONREAD: the next reply's length.
func (e *endpoint) Available() int {
	n, _ := e.rcv.NextLen()
	return n
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
		err := e.soErr
		e.soErr = 0
		return err, nil
	}
	return e.opts.Get(level, name)
}

// Info describes the socket for netstat ("icmp"/"icmp6", the identifier
// as the local port).
func (e *endpoint) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := transport.Info{Proto: "icmp", Protocol: syscall.IPPROTO_ICMP,
		Local: netip.AddrPortFrom(e.localOrAny(), e.ident), RecvQ: e.rcv.Bytes(), Drops: e.rcv.Drops()}
	if e.v6 {
		in.Proto, in.Protocol = "icmp6", syscall.IPPROTO_ICMPV6
	}
	if e.peer.IsValid() {
		in.Remote, in.State = netip.AddrPortFrom(e.peer, 0), "ESTABLISHED"
	}
	return in
}
