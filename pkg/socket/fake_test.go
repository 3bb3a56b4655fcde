package socket

import (
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// fakeNet is an in-memory network of fake endpoints, so the socket
// layer's blocking paths (accept, connect in progress, full send
// buffers, EOF) run before the real protocols exist. Datagrams go to
// the endpoint bound to the destination; a connected datagram endpoint
// whose peer is missing gets ECONNREFUSED, as from an ICMP port
// unreachable. Stream connects complete after connectDelay (port
// blackholePort never completes; a missing listener is refused).
type fakeNet struct {
	mu        sync.Mutex
	dgrams    map[netip.AddrPort]*fakeDgram
	listeners map[netip.AddrPort]*fakeStream
	nextPort  uint16
	streamBuf int // each stream direction's buffer
}

const (
	connectDelay  = 2 * time.Millisecond
	blackholePort = 9
)

func newFakeNet() *fakeNet {
	return &fakeNet{
		dgrams:    make(map[netip.AddrPort]*fakeDgram),
		listeners: make(map[netip.AddrPort]*fakeStream),
		nextPort:  40000,
		streamBuf: 64 << 10,
	}
}

// registry serves SOCK_DGRAM (UDP numbers) and SOCK_STREAM (TCP numbers)
// for both families from the fake network.
func (n *fakeNet) registry() *transport.Registry {
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

func (n *fakeNet) ephemeral() uint16 {
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

type fakeDgram struct {
	n      *fakeNet
	family int
	q      waiter.Queue

	mu       sync.Mutex
	local    netip.AddrPort
	remote   netip.AddrPort
	rq       []transport.Datagram
	errq     []transport.Datagram
	soErr    syscall.Errno
	shutRd   bool
	closed   bool
	opts     transport.Options
	lastSent transport.WriteOptions
}

func (n *fakeNet) newDgram(family int) *fakeDgram {
	return &fakeDgram{n: n, family: family, opts: transport.NewOptions(nil)}
}

func (e *fakeDgram) Queue() *waiter.Queue { return &e.q }

func (e *fakeDgram) Readiness(mask waiter.EventMask) waiter.EventMask {
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

func (e *fakeDgram) bindLocked(a netip.AddrPort) error {
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

func (e *fakeDgram) Bind(a netip.AddrPort) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.local.IsValid() {
		return syscall.EINVAL
	}
	return e.bindLocked(a)
}

func (e *fakeDgram) autobind() {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.local.IsValid() {
		e.bindLocked(netip.AddrPortFrom(loopbackOf(e.family), 0))
	}
}

func (e *fakeDgram) Connect(a netip.AddrPort) error {
	e.autobind()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remote = a // invalid: dissolved
	return nil
}

func (e *fakeDgram) Listen(int) error { return syscall.EOPNOTSUPP }
func (e *fakeDgram) Accept() (transport.Endpoint, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
}

func (e *fakeDgram) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
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

func (e *fakeDgram) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	e.autobind()
	e.mu.Lock()
	to := o.To
	if !to.IsValid() {
		to = e.remote
	}
	from := e.local
	e.lastSent = o
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
func (e *fakeDgram) deliver(d transport.Datagram) {
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

// queueError puts an ICMP error on the error queue (IP_RECVERR).
func (e *fakeDgram) queueError(d transport.Datagram) {
	e.mu.Lock()
	e.errq = append(e.errq, d)
	e.mu.Unlock()
	e.q.Notify(waiter.EventErr)
}

func (e *fakeDgram) Shutdown(how int) error {
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

func (e *fakeDgram) Close() error {
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

func (e *fakeDgram) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.local
}

func (e *fakeDgram) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.remote.IsValid() {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.remote, nil
}

func (e *fakeDgram) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Set(level, name, v)
}

func (e *fakeDgram) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		err := e.soErr
		e.soErr = 0
		return int(err), nil
	}
	return e.opts.Get(level, name)
}

func (e *fakeDgram) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return transport.Info{Proto: "udp", Protocol: syscall.IPPROTO_UDP, Local: e.local, Remote: e.remote}
}

// ---- streams ----

// fakeStream is a listener or one end of a connection. The two ends of a
// connection share one lock (pair.mu) so a write into the peer's buffer
// and the peer's read never deadlock.
type fakeStream struct {
	n      *fakeNet
	family int
	q      waiter.Queue

	mu *sync.Mutex // the pair's lock (its own until connected)

	local, remote netip.AddrPort
	peer          *fakeStream
	state         int
	soErr         syscall.Errno
	rbuf          []byte
	rdEOF         bool // peer shut down writing (or closed)
	wrShut        bool
	backlog       []*fakeStream
	opts          transport.Options
}

const (
	stClosed = iota
	stConnecting
	stConnected
	stListening
)

func (n *fakeNet) newStream(family int) *fakeStream {
	return &fakeStream{n: n, family: family, mu: new(sync.Mutex), opts: transport.NewOptions(nil)}
}

func (e *fakeStream) Queue() *waiter.Queue { return &e.q }

func (e *fakeStream) Readiness(mask waiter.EventMask) waiter.EventMask {
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
		if !e.wrShut && e.peer != nil && len(e.peer.rbuf) < e.n.streamBuf {
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

func (e *fakeStream) Bind(a netip.AddrPort) error {
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

func (e *fakeStream) Listen(backlog int) error {
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

func (e *fakeStream) Connect(a netip.AddrPort) error {
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
	if a.Port() != blackholePort {
		time.AfterFunc(connectDelay, func() { e.complete(a) })
	}
	return syscall.EINPROGRESS
}

// complete is the end of the handshake: a connection to the listener, or
// a refusal.
func (e *fakeStream) complete(a netip.AddrPort) {
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
	srv := &fakeStream{n: e.n, family: l.family, mu: e.mu, state: stConnected, opts: transport.NewOptions(nil),
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

func (e *fakeStream) Accept() (transport.Endpoint, netip.AddrPort, error) {
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

func (e *fakeStream) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
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

func (e *fakeStream) Write(src [][]byte, o transport.WriteOptions) (int, error) {
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
	room := e.n.streamBuf - len(p.rbuf)
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

func (e *fakeStream) Shutdown(how int) error {
	e.mu.Lock()
	if e.state != stConnected {
		e.mu.Unlock()
		return syscall.ENOTCONN
	}
	var p *fakeStream
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

func (e *fakeStream) Close() error {
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

func (e *fakeStream) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.local
}

func (e *fakeStream) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stConnected {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.remote, nil
}

func (e *fakeStream) SetSockOpt(level, name int, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Set(level, name, v)
}

func (e *fakeStream) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		err := e.soErr
		e.soErr = 0
		return int(err), nil
	}
	return e.opts.Get(level, name)
}

func (e *fakeStream) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := map[int]string{stClosed: "CLOSE", stConnecting: "SYN_SENT", stConnected: "ESTABLISHED", stListening: "LISTEN"}[e.state]
	return transport.Info{Proto: "tcp", Protocol: syscall.IPPROTO_TCP, Local: e.local, Remote: e.remote, State: st, RecvQ: len(e.rbuf)}
}
