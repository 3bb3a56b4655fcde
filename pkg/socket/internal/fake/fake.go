// Package fake is an in-memory network of transport endpoints, for the
// tests of the socket layer and its adapters: datagram endpoints with
// connected-socket ECONNREFUSED and an error queue, and pipe-like stream
// endpoints with listeners, connects that complete (or are refused)
// asynchronously and bounded buffers, so every blocking path of the
// layer runs before the real TCP exists. It is not a protocol: no
// packets, no wildcard binds beyond exact address matches.
package fake

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// Net is an in-memory network of fake endpoints, so the socket
// layer's blocking paths (accept, connect in progress, full send
// buffers, EOF) run before the real protocols exist. Datagrams go to
// the endpoint bound to the destination; a connected datagram endpoint
// whose peer is missing gets ECONNREFUSED, as from an ICMP port
// unreachable. Stream connects complete after ConnectDelay (port
// BlackholePort never completes; a missing listener is refused).
type Net struct {
	mu        sync.Mutex
	dgrams    map[netip.AddrPort]*Dgram
	listeners map[netip.AddrPort]*Stream
	nextPort  uint16
	// StreamBuf is each stream direction's buffer, 64 KiB by default;
	// set it before connecting.
	StreamBuf int
}

const (
	// ConnectDelay is how long a stream handshake takes.
	ConnectDelay = 2 * time.Millisecond
	// BlackholePort is a port whose connects never complete.
	BlackholePort = 9
)

// NewNet returns an empty network.
func NewNet() *Net {
	return &Net{
		dgrams:    make(map[netip.AddrPort]*Dgram),
		listeners: make(map[netip.AddrPort]*Stream),
		nextPort:  40000,
		StreamBuf: 64 << 10,
	}
}

// Registry serves SOCK_DGRAM (UDP numbers) and SOCK_STREAM (TCP numbers)
// for both families from the fake network.
func (n *Net) Registry() *transport.Registry {
	r := &transport.Registry{}
	for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
		dg := func(req transport.NewRequest) (transport.Endpoint, error) { return n.newDgram(req.Family), nil }
		st := func(req transport.NewRequest) (transport.Endpoint, error) { return n.newStream(req.Family), nil }
		r.Register(fam, syscall.SOCK_DGRAM, 0, dg)
		r.Register(fam, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP, dg)
		r.Register(fam, syscall.SOCK_STREAM, 0, st)
		r.Register(fam, syscall.SOCK_STREAM, syscall.IPPROTO_TCP, st)
	}
	return r
}

// norm keys the tables by the unmapped address.
func norm(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

func (n *Net) ephemeral() uint16 {
	n.nextPort++
	return n.nextPort
}

func loopbackOf(family int) netip.Addr {
	if family == syscall.AF_INET6 {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// ---- datagrams ----

// Dgram is a datagram endpoint: UDP-like, one datagram per Read, options
// through transport.Options with the control messages they ask for.
type Dgram struct {
	n      *Net
	family int
	q      waiter.Queue

	mu     sync.Mutex
	local  netip.AddrPort
	remote netip.AddrPort
	rq     []transport.Datagram
	errq   []transport.Datagram
	soErr  syscall.Errno
	shutRd bool
	closed bool
	opts   transport.Options
	sent   transport.WriteOptions

	readinessCalls atomic.Int64
}

// ReadinessCalls counts the calls of Readiness (what a poller costs).
func (e *Dgram) ReadinessCalls() int64 { return e.readinessCalls.Load() }

func (n *Net) newDgram(family int) *Dgram {
	return &Dgram{n: n, family: family, opts: transport.NewOptions(nil)}
}

func (e *Dgram) Queue() *waiter.Queue { return &e.q }

func (e *Dgram) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.readinessCalls.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	if len(e.rq) > 0 || e.soErr != 0 || e.shutRd {
		r |= waiter.EventIn
	}
	if !e.closed {
		r |= waiter.EventOut
	}
	if e.soErr != 0 || len(e.errq) > 0 {
		r |= waiter.EventErr
	}
	return r & waiter.Normalize(mask)
}

func (e *Dgram) bindLocked(a netip.AddrPort) error {
	if a.Port() == 0 {
		a = netip.AddrPortFrom(a.Addr(), e.n.ephemeral())
	}
	if _, busy := e.n.dgrams[norm(a)]; busy {
		return syscall.EADDRINUSE
	}
	if e.local.IsValid() {
		delete(e.n.dgrams, norm(e.local))
	}
	e.n.dgrams[norm(a)] = e
	e.local = a
	return nil
}

func (e *Dgram) Bind(a netip.AddrPort) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.local.IsValid() {
		return syscall.EINVAL
	}
	return e.bindLocked(a)
}

func (e *Dgram) autobind() {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.local.IsValid() {
		e.bindLocked(netip.AddrPortFrom(loopbackOf(e.family), 0))
	}
}

func (e *Dgram) Connect(a netip.AddrPort) error {
	e.autobind()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remote = a // invalid: dissolved
	return nil
}

func (e *Dgram) Listen(int) error { return syscall.EOPNOTSUPP }
func (e *Dgram) Accept() (transport.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
}

func (e *Dgram) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := &e.rq
	if o.ErrQueue {
		q = &e.errq
	} else if e.soErr != 0 {
		err := e.soErr
		e.soErr = 0
		return transport.ReadResult{}, err
	}
	if len(*q) == 0 {
		if e.shutRd && !o.ErrQueue {
			return transport.ReadResult{}, nil
		}
		return transport.ReadResult{}, syscall.EAGAIN
	}
	d := (*q)[0]
	if !o.Peek {
		*q = (*q)[1:]
	}
	res := transport.ReadResult{N: transport.CopyOut(dst, d.Data), From: d.From, Control: d.Control}
	if res.N < len(d.Data) {
		res.Truncated = true
		if o.Trunc {
			res.N = len(d.Data)
		}
	}
	return res, nil
}

func (e *Dgram) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	e.autobind()
	e.mu.Lock()
	to := o.To
	if !to.IsValid() {
		to = e.remote
	}
	from := e.local
	e.sent = o
	connected := e.remote.IsValid()
	e.mu.Unlock()
	if !to.IsValid() {
		return 0, syscall.EDESTADDRREQ
	}
	data := make([]byte, transport.TotalLen(src))
	transport.Gather(data, src)
	e.n.mu.Lock()
	peer := e.n.dgrams[norm(to)]
	e.n.mu.Unlock()
	if peer == nil {
		if connected {
			e.mu.Lock()
			e.soErr = syscall.ECONNREFUSED
			e.mu.Unlock()
			e.q.Notify(waiter.EventErr | waiter.EventIn)
		}
		return len(data), nil
	}
	if peer.family == syscall.AF_INET6 && from.Addr().Is4() {
		from = netip.AddrPortFrom(netip.AddrFrom16(from.Addr().As16()), from.Port())
	} else if peer.family == syscall.AF_INET {
		from = norm(from)
	}
	peer.deliver(transport.Datagram{Data: data, From: from})
	return len(data), nil
}

// deliver queues a datagram with the control messages the options ask
// for, as a real endpoint's packet path would.
func (e *Dgram) deliver(d transport.Datagram) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	if e.opts.RecvTTL {
		d.Control.HasTTL, d.Control.TTL = true, 64
	}
	if e.opts.RecvTOS {
		d.Control.HasTOS, d.Control.TOS = true, 0x10
	}
	if e.opts.PktInfo {
		d.Control.HasPktInfo, d.Control.IfIndex, d.Control.Dst = true, 1, e.local.Addr()
	}
	e.rq = append(e.rq, d)
	e.mu.Unlock()
	e.q.Notify(waiter.EventIn)
}

// QueueError puts an ICMP error on the error queue (IP_RECVERR).
func (e *Dgram) QueueError(d transport.Datagram) {
	e.mu.Lock()
	e.errq = append(e.errq, d)
	e.mu.Unlock()
	e.q.Notify(waiter.EventErr)
}

// Available is FIONREAD: the next datagram's length.
func (e *Dgram) Available() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.rq) == 0 {
		return 0
	}
	return len(e.rq[0].Data)
}

func (e *Dgram) Shutdown(how int) error {
	e.mu.Lock()
	if !e.remote.IsValid() {
		e.mu.Unlock()
		return syscall.ENOTCONN
	}
	if how != syscall.SHUT_WR {
		e.shutRd = true
	}
	e.mu.Unlock()
	e.q.Notify(waiter.EventIn)
	return nil
}

func (e *Dgram) Close() error {
	e.n.mu.Lock()
	e.mu.Lock()
	if e.local.IsValid() && e.n.dgrams[norm(e.local)] == e {
		delete(e.n.dgrams, norm(e.local))
	}
	e.closed = true
	e.rq = nil
	e.mu.Unlock()
	e.n.mu.Unlock()
	e.q.Notify(waiter.EventHUp)
	return nil
}

func (e *Dgram) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.local
}

func (e *Dgram) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.remote.IsValid() {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.remote, nil
}

func (e *Dgram) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Set(level, name, v)
}

func (e *Dgram) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		err := e.soErr
		e.soErr = 0
		return int(err), nil
	}
	return e.opts.Get(level, name)
}

func (e *Dgram) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return transport.Info{Proto: "udp", Protocol: syscall.IPPROTO_UDP, Local: e.local, Remote: e.remote}
}

// ---- streams ----

// Stream is a listener or one end of a connection. The two ends of a
// connection share one lock (pair.mu) so a write into the peer's buffer
// and the peer's read never deadlock.
type Stream struct {
	n      *Net
	family int
	q      waiter.Queue

	mu *sync.Mutex // the pair's lock (its own until connected)

	local, remote netip.AddrPort
	peer          *Stream
	state         int
	soErr         syscall.Errno
	rbuf          []byte
	rdEOF         bool // peer shut down writing (or closed)
	wrShut        bool
	backlog       []*Stream
	opts          transport.Options
}

const (
	stClosed = iota
	stConnecting
	stConnected
	stListening
)

func (n *Net) newStream(family int) *Stream {
	return &Stream{n: n, family: family, mu: new(sync.Mutex), opts: transport.NewOptions(nil)}
}

func (e *Stream) Queue() *waiter.Queue { return &e.q }

func (e *Stream) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	switch e.state {
	case stListening:
		if len(e.backlog) > 0 {
			r |= waiter.EventIn
		}
	case stConnected:
		if len(e.rbuf) > 0 || e.rdEOF {
			r |= waiter.EventIn
		}
		if e.rdEOF {
			r |= waiter.EventRdHUp
		}
		if !e.wrShut && e.peer != nil && len(e.peer.rbuf) < e.n.StreamBuf {
			r |= waiter.EventOut
		}
		if e.rdEOF && e.wrShut {
			r |= waiter.EventHUp
		}
	}
	if e.soErr != 0 {
		r |= waiter.EventErr | waiter.EventHUp
	}
	return r & waiter.Normalize(mask)
}

func (e *Stream) Bind(a netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.local.IsValid() {
		return syscall.EINVAL
	}
	if a.Port() == 0 {
		e.n.mu.Lock()
		a = netip.AddrPortFrom(a.Addr(), e.n.ephemeral())
		e.n.mu.Unlock()
	}
	e.local = a
	return nil
}

func (e *Stream) Listen(backlog int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stClosed {
		return syscall.EINVAL
	}
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if _, busy := e.n.listeners[norm(e.local)]; busy {
		return syscall.EADDRINUSE
	}
	e.n.listeners[norm(e.local)] = e
	e.state = stListening
	return nil
}

func (e *Stream) Connect(a netip.AddrPort) error {
	e.mu.Lock()
	switch e.state {
	case stConnecting:
		e.mu.Unlock()
		return syscall.EALREADY
	case stConnected:
		e.mu.Unlock()
		return syscall.EISCONN
	case stListening:
		e.mu.Unlock()
		return syscall.EINVAL
	}
	if !e.local.IsValid() {
		e.n.mu.Lock()
		e.local = netip.AddrPortFrom(loopbackOf(e.family), e.n.ephemeral())
		e.n.mu.Unlock()
	}
	e.state, e.remote = stConnecting, a
	e.mu.Unlock()
	if a.Port() != BlackholePort {
		time.AfterFunc(ConnectDelay, func() { e.complete(a) })
	}
	return syscall.EINPROGRESS
}

// complete is the end of the handshake: a connection to the listener, or
// a refusal.
func (e *Stream) complete(a netip.AddrPort) {
	e.n.mu.Lock()
	l := e.n.listeners[norm(a)]
	e.n.mu.Unlock()
	e.mu.Lock()
	if e.state != stConnecting {
		e.mu.Unlock()
		return
	}
	if l == nil {
		e.state, e.soErr = stClosed, syscall.ECONNREFUSED
		e.mu.Unlock()
		e.q.Notify(waiter.EventErr | waiter.EventHUp)
		return
	}
	srv := &Stream{n: e.n, family: l.family, mu: e.mu, state: stConnected, opts: transport.NewOptions(nil),
		local: a, remote: e.local, peer: e}
	e.peer, e.state = srv, stConnected
	e.mu.Unlock()
	l.mu.Lock()
	ok := l.state == stListening
	if ok {
		l.backlog = append(l.backlog, srv)
	}
	l.mu.Unlock()
	if !ok {
		e.mu.Lock()
		e.state, e.soErr, e.peer = stClosed, syscall.ECONNREFUSED, nil
		e.mu.Unlock()
		e.q.Notify(waiter.EventErr | waiter.EventHUp)
		return
	}
	e.q.Notify(waiter.EventOut)
	l.q.Notify(waiter.EventIn)
}

func (e *Stream) Accept() (transport.Endpoint, netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stListening {
		return nil, netip.AddrPort{}, syscall.EINVAL
	}
	if len(e.backlog) == 0 {
		return nil, netip.AddrPort{}, syscall.EAGAIN
	}
	c := e.backlog[0]
	e.backlog = e.backlog[1:]
	return c, c.remote, nil
}

func (e *Stream) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	e.mu.Lock()
	if e.soErr != 0 {
		err := e.soErr
		e.soErr = 0
		e.mu.Unlock()
		return transport.ReadResult{}, err
	}
	if e.state != stConnected {
		e.mu.Unlock()
		return transport.ReadResult{}, syscall.ENOTCONN
	}
	if len(e.rbuf) == 0 {
		eof := e.rdEOF
		e.mu.Unlock()
		if eof {
			return transport.ReadResult{}, nil
		}
		return transport.ReadResult{}, syscall.EAGAIN
	}
	n := transport.CopyOut(dst, e.rbuf)
	if !o.Peek {
		e.rbuf = e.rbuf[n:]
	}
	peer := e.peer
	e.mu.Unlock()
	if peer != nil && !o.Peek {
		peer.q.Notify(waiter.EventOut)
	}
	return transport.ReadResult{N: n, From: e.remote}, nil
}

func (e *Stream) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	e.mu.Lock()
	if e.state != stConnected {
		e.mu.Unlock()
		return 0, syscall.ENOTCONN
	}
	if e.wrShut || e.peer == nil || e.peer.state != stConnected {
		e.mu.Unlock()
		return 0, syscall.EPIPE
	}
	p := e.peer
	room := e.n.StreamBuf - len(p.rbuf)
	if room <= 0 {
		e.mu.Unlock()
		return 0, syscall.EAGAIN
	}
	n := 0
	for _, b := range src {
		c := min(len(b), room-n)
		p.rbuf = append(p.rbuf, b[:c]...)
		n += c
	}
	e.mu.Unlock()
	p.q.Notify(waiter.EventIn)
	return n, nil
}

func (e *Stream) Shutdown(how int) error {
	e.mu.Lock()
	if e.state != stConnected {
		e.mu.Unlock()
		return syscall.ENOTCONN
	}
	var p *Stream
	if how != syscall.SHUT_RD && !e.wrShut {
		e.wrShut = true
		if e.peer != nil {
			e.peer.rdEOF = true
			p = e.peer
		}
	}
	if how != syscall.SHUT_WR {
		e.rdEOF = true
	}
	e.mu.Unlock()
	e.q.Notify(waiter.EventIn | waiter.EventOut | waiter.EventRdHUp)
	if p != nil {
		p.q.Notify(waiter.EventIn | waiter.EventRdHUp)
	}
	return nil
}

func (e *Stream) Close() error {
	e.mu.Lock()
	p := e.peer
	if p != nil {
		p.rdEOF = true
		p.peer = nil
	}
	wasListening := e.state == stListening
	e.state, e.peer, e.backlog = stClosed, nil, nil
	e.mu.Unlock()
	if wasListening {
		e.n.mu.Lock()
		if e.n.listeners[norm(e.local)] == e {
			delete(e.n.listeners, norm(e.local))
		}
		e.n.mu.Unlock()
	}
	e.q.Notify(waiter.EventHUp)
	if p != nil {
		p.q.Notify(waiter.EventIn | waiter.EventRdHUp | waiter.EventOut)
	}
	return nil
}

func (e *Stream) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.local
}

func (e *Stream) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stConnected {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.remote, nil
}

func (e *Stream) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Set(level, name, v)
}

func (e *Stream) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		err := e.soErr
		e.soErr = 0
		return int(err), nil
	}
	return e.opts.Get(level, name)
}

func (e *Stream) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := map[int]string{stClosed: "CLOSE", stConnecting: "SYN_SENT", stConnected: "ESTABLISHED", stListening: "LISTEN"}[e.state]
	return transport.Info{Proto: "tcp", Protocol: syscall.IPPROTO_TCP, Local: e.local, Remote: e.remote, State: st, RecvQ: len(e.rbuf)}
}

// LastSent returns the WriteOptions of the last Write (what SendMsg made
// of its flags and cmsgs).
func (e *Dgram) LastSent() transport.WriteOptions {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}
