package socket

import (
	"container/heap"
	"errors"
	"github.com/stackbox/stackbox/pkg/deadline"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// firstFD is the first descriptor handed out: 0, 1 and 2 are stdin,
// stdout and stderr in a process, and a tool (or a netd client) that
// treats 0 as "no socket" stays correct.
const firstFD = 3

// Options configure a Layer.
type Options struct {
	// Interfaces maps IPv6 zones to sockaddr scope ids; nil spells
	// scope ids as decimal zones ("%2").
	Interfaces Interfaces
}

// Layer is the socket table over one registry of protocols.
type Layer struct {
	reg *transport.Registry
	ifs Interfaces

	mu    sync.Mutex // guards socks, free, next
	socks map[int]*Socket
	free  fdHeap // closed descriptors, reused lowest first as POSIX says
	next  int
}

// New returns a layer whose sockets come from reg.
func New(reg *transport.Registry) *Layer { return NewWithOptions(reg, Options{}) }

// NewWithOptions returns a layer with options.
func NewWithOptions(reg *transport.Registry, o Options) *Layer {
	return &Layer{reg: reg, ifs: o.Interfaces, socks: make(map[int]*Socket), next: firstFD}
}

// Interfaces is the zone resolver the layer was given (may be nil).
func (l *Layer) Interfaces() Interfaces { return l.ifs }

// Socket is socket(2): typ may carry SOCK_NONBLOCK and SOCK_CLOEXEC (the
// latter is accepted and means nothing here). The errors are the
// registry's (EAFNOSUPPORT, ESOCKTNOSUPPORT, EPROTONOSUPPORT, EPERM…).
func (l *Layer) Socket(family, typ, protocol int, cred transport.Cred) (*Socket, error) {
	flags := typ & (syscall.SOCK_NONBLOCK | syscall.SOCK_CLOEXEC)
	typ &^= flags
	if typ&^0xf != 0 {
		return nil, syscall.EINVAL // unknown type flags, as Linux
	}
	ep, err := l.reg.New(transport.NewRequest{Family: family, Type: typ, Protocol: protocol, Cred: cred})
	if err != nil {
		return nil, err
	}
	if protocol == 0 {
		protocol = ep.Info().Protocol // SO_PROTOCOL names the default (IPPROTO_UDP)
	}
	return l.add(ep, family, typ, protocol, flags&syscall.SOCK_NONBLOCK != 0), nil
}

// Wrap puts an endpoint made elsewhere (a protocol's own constructor) in
// the table as a socket of (family, typ, protocol).
func (l *Layer) Wrap(ep transport.Endpoint, family, typ, protocol int) *Socket {
	return l.add(ep, family, typ, protocol, false)
}

func (l *Layer) add(ep transport.Endpoint, family, typ, protocol int, nonblock bool) *Socket {
	s := &Socket{
		l: l, ep: ep, family: family, typ: typ, proto: protocol,
		closeCh: make(chan struct{}),
		rdl:     deadline.New(), wdl: deadline.New(),
	}
	s.nonblock.Store(nonblock)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.free.Len() > 0 {
		s.fd = heap.Pop(&l.free).(int)
	} else {
		s.fd = l.next
		l.next++
	}
	l.socks[s.fd] = s
	return s
}

func (l *Layer) remove(s *Socket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.socks[s.fd] == s {
		delete(l.socks, s.fd)
		heap.Push(&l.free, s.fd)
	}
}

// Lookup finds an open socket by descriptor.
func (l *Layer) Lookup(fd int) (*Socket, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.socks[fd]
	return s, ok
}

// Sockets returns the open sockets in descriptor order (for netstat).
func (l *Layer) Sockets() []*Socket {
	l.mu.Lock()
	out := make([]*Socket, 0, len(l.socks))
	for _, s := range l.socks {
		out = append(out, s)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b *Socket) int { return a.fd - b.fd })
	return out
}

type fdHeap []int

func (h fdHeap) Len() int           { return len(h) }
func (h fdHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h fdHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *fdHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *fdHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Socket is one open socket. Its methods are safe for concurrent use
// and have Linux's semantics; errors are syscall.Errno values, possibly
// wrapped by the endpoint (test them with errors.Is).
type Socket struct {
	l                  *Layer
	fd                 int
	family, typ, proto int
	ep                 transport.Endpoint

	nonblock  atomic.Bool
	rcvTimeo  atomic.Int64 // SO_RCVTIMEO as a time.Duration; 0: forever
	sndTimeo  atomic.Int64
	listening atomic.Bool
	closed    atomic.Bool
	closeCh   chan struct{} // closed by Close: wakes blocked calls
	rdl, wdl  *deadline.Deadline

	epMu     sync.Mutex // guards watchers
	watchers map[*Epoll]struct{}
}

// FD is the socket's descriptor in its layer.
func (s *Socket) FD() int { return s.fd }

// Family is the address family (AF_INET, AF_INET6).
func (s *Socket) Family() int { return s.family }

// Type is SOCK_STREAM, SOCK_DGRAM or SOCK_RAW.
func (s *Socket) Type() int { return s.typ }

// Protocol is the IP protocol number.
func (s *Socket) Protocol() int { return s.proto }

// Endpoint is the protocol endpoint under the socket.
func (s *Socket) Endpoint() transport.Endpoint { return s.ep }

// Layer is the layer the socket belongs to.
func (s *Socket) Layer() *Layer { return s.l }

// Info describes the socket for netstat.
func (s *Socket) Info() transport.Info { return s.ep.Info() }

// Closed reports whether Close was called.
func (s *Socket) Closed() bool { return s.closed.Load() }

// Readiness returns the events of mask that hold now (plus EventErr and
// EventHUp); a closed socket is POLLNVAL.
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	if s.closed.Load() {
		return PollNVal
	}
	return s.ep.Readiness(mask)
}

// SetNonblock sets O_NONBLOCK (fcntl F_SETFL).
func (s *Socket) SetNonblock(on bool) { s.nonblock.Store(on) }

// Nonblock reports O_NONBLOCK.
func (s *Socket) Nonblock() bool { return s.nonblock.Load() }

// SetReadDeadline makes blocked and future receives (and accepts) fail
// with ErrDeadlineExceeded once t passes; the zero time removes it. It is
// what net.Conn deadlines are made of.
func (s *Socket) SetReadDeadline(t time.Time) { s.rdl.Set(t) }

// SetWriteDeadline is SetReadDeadline for sends and connects.
func (s *Socket) SetWriteDeadline(t time.Time) { s.wdl.Set(t) }

// block runs op, and while it says EAGAIN and the call may block, waits
// for an event of mask on the endpoint's queue and retries. It gives up
// with EAGAIN after timeout (SO_RCVTIMEO/SO_SNDTIMEO, 0 meaning never),
// ErrDeadlineExceeded when the deadline dl passes, EBADF when the socket
// is closed.
func (s *Socket) block(nonblock bool, mask waiter.EventMask, timeout time.Duration, dl *deadline.Deadline, op func() error) error {
	dch, passed := dl.Done()
	if passed {
		return ErrDeadlineExceeded
	}
	err := op()
	if nonblock || !errors.Is(err, syscall.EAGAIN) {
		return err
	}
	// Register before retrying, so an event between the failed attempt
	// and the select is not lost: it leaves a token in the channel.
	e, ready := waiter.NewChannelEntry(mask)
	q := s.ep.Queue()
	q.Register(e)
	defer q.Unregister(e)
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		if err = op(); !errors.Is(err, syscall.EAGAIN) {
			return err
		}
		select {
		case <-ready:
		case <-expired:
			return syscall.EAGAIN
		case <-dch:
			return ErrDeadlineExceeded
		case <-s.closeCh:
			return syscall.EBADF
		}
	}
}

// Bind is bind(2).
func (s *Socket) Bind(sa syscall.Sockaddr) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	ap, err := ToAddrPort(s.family, s.typ, OpBind, sa, s.l.ifs)
	if err != nil {
		return err
	}
	return s.ep.Bind(ap)
}

// Connect is connect(2). A nil sockaddr is AF_UNSPEC: it dissolves a
// datagram socket's association (the syscall package cannot express an
// AF_UNSPEC sockaddr). A stream connect in progress is EINPROGRESS on a
// non-blocking socket; a blocking one waits until the endpoint is
// writable or fails, then reports SO_ERROR; when SO_SNDTIMEO expires
// first it is EINPROGRESS, as Linux.
func (s *Socket) Connect(sa syscall.Sockaddr) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	var ap netip.AddrPort
	if sa != nil {
		var err error
		if ap, err = ToAddrPort(s.family, s.typ, OpConnect, sa, s.l.ifs); err != nil {
			return err
		}
	}
	err := s.ep.Connect(ap)
	if !errors.Is(err, syscall.EINPROGRESS) || s.nonblock.Load() {
		return err
	}
	var ready waiter.EventMask
	err = s.block(false, waiter.EventOut, time.Duration(s.sndTimeo.Load()), s.wdl, func() error {
		if ready = s.ep.Readiness(waiter.EventOut); ready != 0 {
			return nil
		}
		return syscall.EAGAIN
	})
	if errors.Is(err, syscall.EAGAIN) {
		return syscall.EINPROGRESS
	}
	if err != nil {
		return err
	}
	if e := s.soError(); e != 0 {
		return e
	}
	if ready&waiter.EventOut == 0 {
		return syscall.ECONNABORTED // closed without an error to report
	}
	return nil
}

// soError reads and clears SO_ERROR.
func (s *Socket) soError() syscall.Errno {
	v, err := s.ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err != nil {
		return 0
	}
	return errnoValue(v)
}

func errnoValue(v any) syscall.Errno {
	switch e := v.(type) {
	case syscall.Errno:
		return e
	case error:
		var en syscall.Errno
		if errors.As(e, &en) {
			return en
		}
		return syscall.EIO
	}
	n, _ := transport.IntValue(v)
	return syscall.Errno(n)
}

// Listen is listen(2).
func (s *Socket) Listen(backlog int) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	if err := s.ep.Listen(backlog); err != nil {
		return err
	}
	s.listening.Store(true)
	return nil
}

// Accept is accept(2).
func (s *Socket) Accept() (*Socket, syscall.Sockaddr, error) { return s.Accept4(0) }

// Accept4 is accept4(2): flags may be SOCK_NONBLOCK and SOCK_CLOEXEC.
// It blocks for SO_RCVTIMEO at most, as Linux.
func (s *Socket) Accept4(flags int) (*Socket, syscall.Sockaddr, error) {
	if s.closed.Load() {
		return nil, nil, syscall.EBADF
	}
	if flags&^(syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC) != 0 {
		return nil, nil, syscall.EINVAL
	}
	var (
		nep  transport.Endpoint
		peer netip.AddrPort
	)
	err := s.block(s.nonblock.Load(), waiter.EventIn, time.Duration(s.rcvTimeo.Load()), s.rdl, func() (err error) {
		nep, peer, err = s.ep.Accept()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	ns := s.l.add(nep, s.family, s.typ, s.proto, flags&syscall.SOCK_NONBLOCK != 0)
	// Linux clones the listener's sock, timeouts included (but not
	// O_NONBLOCK, which belongs to the file).
	ns.rcvTimeo.Store(s.rcvTimeo.Load())
	ns.sndTimeo.Store(s.sndTimeo.Load())
	return ns, ToSockaddr(s.family, peer, s.l.ifs), nil
}

// Read is read(2).
func (s *Socket) Read(b []byte) (int, error) { return s.Recv(b, 0) }

// Write is write(2).
func (s *Socket) Write(b []byte) (int, error) { return s.Send(b, 0) }

// Recv is recv(2).
func (s *Socket) Recv(b []byte, flags int) (int, error) {
	n, _, _, _, err := s.RecvMsg([][]byte{b}, nil, flags)
	return n, err
}

// RecvFrom is recvfrom(2).
func (s *Socket) RecvFrom(b []byte, flags int) (int, syscall.Sockaddr, error) {
	n, _, _, from, err := s.RecvMsg([][]byte{b}, nil, flags)
	return n, from, err
}

// Send is send(2).
func (s *Socket) Send(b []byte, flags int) (int, error) {
	return s.SendMsg([][]byte{b}, nil, nil, flags)
}

// SendTo is sendto(2); a nil to uses the connected peer.
func (s *Socket) SendTo(b []byte, flags int, to syscall.Sockaddr) (int, error) {
	return s.SendMsg([][]byte{b}, nil, to, flags)
}

// RecvMsg is recvmsg(2): it scatters into bufs, writes the ancillary
// data the socket's options ask for into oob as Linux cmsgs, and returns
// the bytes received (the datagram's full length with MSG_TRUNC), the
// bytes of oob used, msg_flags (MSG_TRUNC, MSG_CTRUNC, MSG_ERRQUEUE) and
// the sender (nil for stream sockets, as Linux leaves msg_name empty).
//
// flags: MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, MSG_WAITALL (a stream socket
// loops until bufs are full, the peer closes, an error or a timeout),
// MSG_ERRQUEUE (never blocks, as Linux), MSG_OOB.
func (s *Socket) RecvMsg(bufs [][]byte, oob []byte, flags int) (n, oobn, recvflags int, from syscall.Sockaddr, err error) {
	if s.closed.Load() {
		return 0, 0, 0, nil, syscall.EBADF
	}
	ro := transport.ReadOptions{
		Peek:     flags&syscall.MSG_PEEK != 0,
		Trunc:    flags&syscall.MSG_TRUNC != 0,
		ErrQueue: flags&syscall.MSG_ERRQUEUE != 0,
		WaitAll:  flags&syscall.MSG_WAITALL != 0,
		OOB:      flags&syscall.MSG_OOB != 0,
	}
	nonblock := s.nonblock.Load() || flags&syscall.MSG_DONTWAIT != 0 || ro.ErrQueue
	timeout := time.Duration(s.rcvTimeo.Load())
	var res transport.ReadResult
	read := func(dst [][]byte) func() error {
		return func() (err error) {
			res, err = s.ep.Read(dst, ro)
			return err
		}
	}
	if err = s.block(nonblock, waiter.EventIn, timeout, s.rdl, read(bufs)); err != nil {
		return 0, 0, 0, nil, err
	}
	n = res.N
	if s.typ == syscall.SOCK_STREAM && ro.WaitAll && !ro.Peek && !nonblock {
		total := transport.TotalLen(bufs)
		for n > 0 && n < total {
			if err = s.block(false, waiter.EventIn, timeout, s.rdl, read(advance(bufs, n))); err != nil || res.N == 0 {
				break
			}
			n += res.N
		}
		// Linux returns what arrived before the error; the error
		// comes with the next call.
		err = nil
	}
	if res.Truncated {
		recvflags |= syscall.MSG_TRUNC
	}
	if ro.ErrQueue && res.Control.Err != nil {
		recvflags |= syscall.MSG_ERRQUEUE
	}
	var ctrunc bool
	oobn, ctrunc = EncodeControl(s.family, res.Control, oob, s.l.ifs)
	if ctrunc {
		recvflags |= syscall.MSG_CTRUNC
	}
	if s.typ != syscall.SOCK_STREAM && res.From.IsValid() {
		from = ToSockaddr(s.family, res.From, s.l.ifs)
	}
	return n, oobn, recvflags, from, nil
}

// advance drops the first n bytes of bufs.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) == 0 {
		return nil
	}
	out := make([][]byte, len(bufs))
	copy(out, bufs)
	out[0] = out[0][n:]
	return out
}

// SendMsg is sendmsg(2): it gathers bufs, takes per-packet settings from
// the cmsgs in oob (see ParseControl) and sends to to, or the connected
// peer when to is nil (stream sockets ignore to, as Linux's TCP does).
// flags: MSG_DONTWAIT, MSG_MORE, MSG_OOB, MSG_DONTROUTE, MSG_NOSIGNAL
// (there is no SIGPIPE: EPIPE is returned either way). A blocking stream
// send loops until everything is queued or SO_SNDTIMEO expires, and then
// reports what was queued, as Linux.
func (s *Socket) SendMsg(bufs [][]byte, oob []byte, to syscall.Sockaddr, flags int) (int, error) {
	if s.closed.Load() {
		return 0, syscall.EBADF
	}
	wo := transport.WriteOptions{
		More:      flags&syscall.MSG_MORE != 0,
		DontRoute: flags&syscall.MSG_DONTROUTE != 0,
		OOB:       flags&syscall.MSG_OOB != 0,
		NoSignal:  flags&syscall.MSG_NOSIGNAL != 0,
	}
	if to != nil && s.typ != syscall.SOCK_STREAM {
		var err error
		if wo.To, err = ToAddrPort(s.family, s.typ, OpSend, to, s.l.ifs); err != nil {
			return 0, err
		}
	}
	if err := ParseControl(s.family, oob, &wo); err != nil {
		return 0, err
	}
	nonblock := s.nonblock.Load() || flags&syscall.MSG_DONTWAIT != 0
	timeout := time.Duration(s.sndTimeo.Load())
	var n int
	write := func(src [][]byte) func() error {
		return func() (err error) {
			n, err = s.ep.Write(src, wo)
			return err
		}
	}
	err := s.block(nonblock, waiter.EventOut, timeout, s.wdl, write(bufs))
	if s.typ != syscall.SOCK_STREAM || err != nil || nonblock {
		return n, err
	}
	sent, total := n, transport.TotalLen(bufs)
	for sent < total {
		if err = s.block(false, waiter.EventOut, timeout, s.wdl, write(advance(bufs, sent))); err != nil || n == 0 {
			break // n == 0 without EAGAIN would spin: report what went
		}
		sent += n
	}
	if sent > 0 {
		return sent, nil
	}
	return 0, err
}

// Shutdown is shutdown(2).
func (s *Socket) Shutdown(how int) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	if how != syscall.SHUT_RD && how != syscall.SHUT_WR && how != syscall.SHUT_RDWR {
		return syscall.EINVAL
	}
	return s.ep.Shutdown(how)
}

// Close is close(2): it wakes every call blocked on the socket (they
// return EBADF), takes it out of every epoll set and of the table, and
// closes the endpoint. With SO_LINGER on and a timeout, an endpoint that
// is a Lingerer makes it wait, up to the timeout, until what it still has
// to send is acknowledged (Linux tcp_close → sk_stream_wait_close, which
// blocks whatever O_NONBLOCK says). Past the timeout close returns and
// the connection carries on in the background, as on Linux (which sends
// no reset then).
func (s *Socket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return syscall.EBADF
	}
	var lg syscall.Linger
	if v, err := s.ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER); err == nil {
		lg, _ = v.(syscall.Linger)
	}
	close(s.closeCh)
	s.rdl.Stop()
	s.wdl.Stop()
	s.leaveEpolls()
	s.l.remove(s)
	err := s.ep.Close()
	if l, ok := s.ep.(Lingerer); ok && lg.Onoff != 0 && lg.Linger > 0 {
		lingerWait(l, s.ep.Queue(), time.Duration(lg.Linger)*time.Second)
	}
	return err
}

// Lingerer is an endpoint whose Close may leave data or a FIN to be
// acknowledged: Lingering reports whether it still does (Linux's
// sk_stream_closing: FIN_WAIT1, CLOSING, LAST_ACK), and the endpoint's
// queue is notified with EventOut or EventHUp when that ends.
type Lingerer interface {
	Lingering() bool
}

// lingerWait waits for l to stop lingering, at most d.
func lingerWait(l Lingerer, q *waiter.Queue, d time.Duration) {
	e, ready := waiter.NewChannelEntry(waiter.EventOut | waiter.EventHUp)
	q.Register(e)
	defer q.Unregister(e)
	t := time.NewTimer(d)
	defer t.Stop()
	for l.Lingering() {
		select {
		case <-ready:
		case <-t.C:
			return
		}
	}
}

// GetSockName is getsockname(2): an AF_INET6 socket reports IPv4 peers
// v4-mapped, and the zone as scope id.
func (s *Socket) GetSockName() (syscall.Sockaddr, error) {
	if s.closed.Load() {
		return nil, syscall.EBADF
	}
	return ToSockaddr(s.family, s.ep.LocalAddr(), s.l.ifs), nil
}

// GetPeerName is getpeername(2) (ENOTCONN without a peer).
func (s *Socket) GetPeerName() (syscall.Sockaddr, error) {
	if s.closed.Load() {
		return nil, syscall.EBADF
	}
	ap, err := s.ep.RemoteAddr()
	if err != nil {
		return nil, err
	}
	return ToSockaddr(s.family, ap, s.l.ifs), nil
}

// SetSockOpt is setsockopt(2) with typed values (see transport.Options).
// The layer keeps SO_RCVTIMEO and SO_SNDTIMEO (time.Duration or
// syscall.Timeval) and refuses the read-only SO_TYPE, SO_DOMAIN,
// SO_PROTOCOL and SO_ACCEPTCONN with ENOPROTOOPT, as Linux; the rest goes
// to the endpoint.
func (s *Socket) SetSockOpt(level, name int, v any) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	if level == syscall.SOL_SOCKET {
		switch name {
		case syscall.SO_TYPE, syscall.SO_DOMAIN, syscall.SO_PROTOCOL, syscall.SO_ACCEPTCONN:
			return syscall.ENOPROTOOPT
		case syscall.SO_RCVTIMEO, syscall.SO_SNDTIMEO:
			d, err := transport.DurationValue(v)
			if err != nil {
				return err
			}
			if name == syscall.SO_RCVTIMEO {
				s.rcvTimeo.Store(int64(d))
			} else {
				s.sndTimeo.Store(int64(d))
			}
			return nil
		}
	}
	return s.ep.SetSockOpt(level, name, v)
}

// GetSockOpt is getsockopt(2): SO_TYPE, SO_DOMAIN, SO_PROTOCOL,
// SO_ACCEPTCONN (int) and SO_RCVTIMEO / SO_SNDTIMEO (time.Duration) from
// the layer, the rest from the endpoint.
func (s *Socket) GetSockOpt(level, name int) (any, error) {
	if s.closed.Load() {
		return nil, syscall.EBADF
	}
	if level == syscall.SOL_SOCKET {
		switch name {
		case syscall.SO_TYPE:
			return s.typ, nil
		case syscall.SO_DOMAIN:
			return s.family, nil
		case syscall.SO_PROTOCOL:
			return s.proto, nil
		case syscall.SO_ACCEPTCONN:
			if s.listening.Load() {
				return 1, nil
			}
			return 0, nil
		case syscall.SO_RCVTIMEO:
			return time.Duration(s.rcvTimeo.Load()), nil
		case syscall.SO_SNDTIMEO:
			return time.Duration(s.sndTimeo.Load()), nil
		}
	}
	return s.ep.GetSockOpt(level, name)
}

// SetSockOptInt sets an integer option.
func (s *Socket) SetSockOptInt(level, name, v int) error { return s.SetSockOpt(level, name, v) }

// GetSockOptInt reads an integer (or boolean, or SO_ERROR) option;
// options of other types are EINVAL.
func (s *Socket) GetSockOptInt(level, name int) (int, error) {
	v, err := s.GetSockOpt(level, name)
	if err != nil {
		return 0, err
	}
	if e, ok := v.(syscall.Errno); ok {
		return int(e), nil
	}
	return transport.IntValue(v)
}

// Availabler is what an endpoint implements to answer FIONREAD itself:
// a datagram endpoint the length of its next datagram, a stream endpoint
// the bytes it has queued.
type Availabler interface{ Available() int }

// Available is ioctl FIONREAD (SIOCINQ). Endpoints that implement
// Availabler answer exactly; for the others it is the receive queue's
// bytes from Info (netstat's Recv-Q), which for a datagram socket with
// several datagrams queued is more than Linux's next-datagram length. A
// peeking read would get that right but also consume a pending SO_ERROR
// (UDP returns it first), so it is not used.
func (s *Socket) Available() (int, error) {
	if s.closed.Load() {
		return 0, syscall.EBADF
	}
	if a, ok := s.ep.(Availabler); ok {
		return a.Available(), nil
	}
	return s.ep.Info().RecvQ, nil
}

// leaveEpolls removes the socket from every epoll set watching it.
func (s *Socket) leaveEpolls() {
	s.epMu.Lock()
	eps := make([]*Epoll, 0, len(s.watchers))
	for e := range s.watchers {
		eps = append(eps, e)
	}
	s.epMu.Unlock()
	for _, e := range eps {
		e.forget(s)
	}
}
