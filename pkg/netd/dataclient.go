package netd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/deadline"
	"github.com/stackbox/stackbox/pkg/host"
)

// aLongTimeAgo is a deadline in the past: it wakes a blocked call.
var aLongTimeAgo = time.Unix(1, 0)

// Dial implements host.Net: the connection is made by netd's stack and
// its traffic relayed over a stream of its own.
func (c *Client) Dial(ctx context.Context, network, address string, o *host.SocketOptions) (net.Conn, error) {
	conn, err := c.openSocket(ctx, SocketRequest{Op: "dial", Network: network, Address: address, Options: o})
	if err != nil {
		return nil, err
	}
	return conn.(net.Conn), nil
}

// Listen implements host.Net.
func (c *Client) Listen(ctx context.Context, network, address string, o *host.SocketOptions) (net.Listener, error) {
	conn, err := c.openSocket(ctx, SocketRequest{Op: "listen", Network: network, Address: address, Options: o})
	if err != nil {
		return nil, err
	}
	return conn.(*remoteListener), nil
}

// ListenPacket implements host.Net.
func (c *Client) ListenPacket(ctx context.Context, network, address string, o *host.SocketOptions) (host.PacketConn, error) {
	conn, err := c.openSocket(ctx, SocketRequest{Op: "listen_packet", Network: network, Address: address, Options: o})
	if err != nil {
		return nil, err
	}
	return conn.(*remotePacketConn), nil
}

// openSocket asks netd for a socket on a connection of its own, which
// becomes the socket's stream. ctx bounds the request (a dial's connect,
// an accept's wait); cancelling it closes the connection, which netd
// sees and abandons the request.
func (c *Client) openSocket(ctx context.Context, req SocketRequest) (any, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, host.Errorf(syscall.EBADF, "netd client for %s is closed", c.path)
	}
	if req.Options != nil {
		o := *req.Options
		o.Cred = nil // netd decides who we are
		req.Options = &o
	}
	var d net.Dialer
	uc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, c.transportError(err).(*transportErr).he
	}
	if dl, ok := ctx.Deadline(); ok {
		uc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(aLongTimeAgo) })
	info, br, err := c.upgrade(uc, req)
	// The connection's deadline is the context's, and may pass a moment
	// before the context says so.
	dl, hasDL := ctx.Deadline()
	if !stop() || ctx.Err() != nil || err != nil && hasDL && !time.Now().Before(dl) {
		uc.Close()
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &host.Error{Errno: syscall.ETIMEDOUT, Msg: "netd: " + req.Op + " " + req.Address + ": i/o timeout"}
		}
		return nil, &host.Error{Errno: syscall.ECANCELED, Msg: "netd: " + req.Op + " " + req.Address + ": " + ctx.Err().Error()}
	}
	if err != nil {
		uc.Close()
		return nil, err
	}
	uc.SetDeadline(time.Time{})
	switch info.Kind {
	case "stream":
		return &remoteConn{uc: uc, br: br, network: req.Network, laddr: netAddrOf(req.Network, info.Local), raddr: netAddrOf(req.Network, info.Remote)}, nil
	case "packet":
		return newRemotePacketConn(uc, br, req.Network, info), nil
	case "listener":
		return newRemoteListener(c, uc, req.Network, info), nil
	}
	uc.Close()
	return nil, host.Errorf(syscall.EPROTO, "netd: unknown socket kind %q", info.Kind)
}

// upgrade sends the request and reads netd's answer: 101 with the
// socket's description, or the error.
func (c *Client) upgrade(uc net.Conn, req SocketRequest) (SocketInfo, *bufio.Reader, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return SocketInfo{}, nil, host.Errorf(syscall.EINVAL, "netd: encoding the request: %v", err)
	}
	hr, err := http.NewRequest("POST", "http://netd/v1/sockets", bytes.NewReader(body))
	if err != nil {
		return SocketInfo{}, nil, host.Errorf(syscall.EINVAL, "netd: %v", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Connection", "Upgrade")
	hr.Header.Set("Upgrade", upgradeProto)
	if err := hr.Write(uc); err != nil {
		return SocketInfo{}, nil, c.transportError(err).(*transportErr).he
	}
	br := bufio.NewReaderSize(uc, maxChunk)
	resp, err := http.ReadResponse(br, hr)
	if err != nil {
		return SocketInfo{}, nil, c.transportError(err).(*transportErr).he
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var he host.Error
		if json.Unmarshal(b, &he) != nil || he.Errno == 0 {
			return SocketInfo{}, nil, host.Errorf(errnoOfStatus(resp.StatusCode), "netd: POST /v1/sockets: %s", resp.Status)
		}
		return SocketInfo{}, nil, &he
	}
	var info SocketInfo
	if err := json.Unmarshal([]byte(resp.Header.Get(socketHeader)), &info); err != nil {
		return SocketInfo{}, nil, host.Errorf(syscall.EPROTO, "netd: bad %s header: %v", socketHeader, err)
	}
	return info, br, nil
}

// netAddrOf makes the net.Addr Go's net would for network.
func netAddrOf(network string, ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		return net.TCPAddrFromAddrPort(ap)
	case "udp", "udp4", "udp6":
		return net.UDPAddrFromAddrPort(ap)
	}
	a := ap.Addr()
	return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

func opError(op, network string, src, addr net.Addr, syscallName string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: network, Source: src, Addr: addr, Err: os.NewSyscallError(syscallName, errno)}
}

// remoteConn is a stream socket of netd's stack.
type remoteConn struct {
	uc           net.Conn
	br           *bufio.Reader
	network      string
	laddr, raddr net.Addr

	// Read side, under rmu: the frame being read survives a deadline
	// in the middle of it.
	rmu       sync.Mutex
	hdr       [frameHeaderLen]byte
	hdrN      int
	kind      byte
	remaining int // bytes of the current frame still to read
	payload   [4]byte
	payloadN  int
	rerr      error // sticky: EOF or the socket's error

	wmu    sync.Mutex
	broken atomic.Pointer[error] // the socket failed: writes fail too
	closed atomic.Bool
}

// Read implements net.Conn.
func (c *remoteConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.kind == frameData && c.remaining > 0 {
			if len(b) == 0 {
				return 0, nil
			}
			n, err := c.br.Read(b[:min(len(b), c.remaining)])
			c.remaining -= n
			if c.remaining == 0 {
				c.kind, c.hdrN = 0, 0
			}
			if err != nil {
				return n, c.streamErr("read", err)
			}
			return n, nil
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
}

// nextFrame reads (the rest of) a frame header and of a non-data frame's
// payload, keeping what it got when a deadline interrupts it.
func (c *remoteConn) nextFrame() error {
	for c.hdrN < frameHeaderLen {
		n, err := c.br.Read(c.hdr[c.hdrN:])
		c.hdrN += n
		if err != nil {
			return c.streamErr("read", err)
		}
	}
	if c.kind == 0 {
		kind, n, err := parseFrameHeader(c.hdr[:])
		if err != nil {
			c.rerr = c.opErr("read", err)
			return c.rerr
		}
		c.kind, c.remaining, c.payloadN = kind, n, 0
	}
	switch c.kind {
	case frameData:
		if c.remaining == 0 {
			c.kind, c.hdrN = 0, 0
		}
		return nil
	case frameEOF:
		c.rerr = io.EOF
		return nil
	case frameError:
		if c.remaining != 4 {
			c.rerr = c.opErr("read", errors.New("netd: bad error frame"))
			return c.rerr
		}
		for c.payloadN < 4 {
			n, err := c.br.Read(c.payload[c.payloadN:])
			c.payloadN += n
			if err != nil {
				return c.streamErr("read", err)
			}
		}
		errno := syscall.Errno(binary.BigEndian.Uint32(c.payload[:]))
		c.rerr = opError("read", c.network, c.laddr, c.raddr, "read", errno)
		e := opError("write", c.network, c.laddr, c.raddr, "write", errno)
		c.broken.Store(&e)
		return nil
	}
	c.rerr = c.opErr("read", errors.New("netd: unexpected frame on a stream socket"))
	return c.rerr
}

func (c *remoteConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}

// streamErr maps an error of the Unix stream: a deadline is the
// socket's deadline; netd going away mid-stream resets the connection.
func (c *remoteConn) streamErr(op string, err error) error {
	if c.closed.Load() {
		return c.opErr(op, net.ErrClosed)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errnoOf(err) != 0 {
		return opError(op, c.network, c.laddr, c.raddr, op, syscall.ECONNRESET)
	}
	return c.opErr(op, err)
}

// Write implements net.Conn: b goes out in data frames of up to 64 KiB,
// each written with the frame header in one writev.
func (c *remoteConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if e := c.broken.Load(); e != nil {
		return 0, *e
	}
	sent := 0
	for sent < len(b) {
		chunk := b[sent:min(len(b), sent+maxChunk)]
		if err := writeFrame(c.uc, frameData, chunk); err != nil {
			return sent, c.streamErr("write", err)
		}
		sent += len(chunk)
	}
	return sent, nil
}

// CloseWrite is shutdown(SHUT_WR): the peer reads EOF.
func (c *remoteConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if err := writeFrame(c.uc, frameShutWr); err != nil {
		return c.streamErr("close", err)
	}
	return nil
}

// Close closes the socket: netd closes its end (a FIN, or a reset with
// unread data, as close(2)).
func (c *remoteConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	return c.uc.Close()
}

func (c *remoteConn) LocalAddr() net.Addr                { return c.laddr }
func (c *remoteConn) RemoteAddr() net.Addr               { return c.raddr }
func (c *remoteConn) SetDeadline(t time.Time) error      { return c.uc.SetDeadline(t) }
func (c *remoteConn) SetReadDeadline(t time.Time) error  { return c.uc.SetReadDeadline(t) }
func (c *remoteConn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// dgram is one message (or pending error) from netd.
type dgram struct {
	data, oob []byte
	flags     int
	from      netip.AddrPort
	errno     syscall.Errno
}

// Queue bounds: like a socket's receive buffer, a full queue drops what
// arrives (and counts it), so a client that does not read cannot make
// the stream stall its own answers.
const (
	recvQueueLen = 256
	errQueueLen  = 64
)

// remotePacketConn is a datagram, ping or raw socket of netd's stack. A
// goroutine reads its stream: messages into the receive and error
// queues, answers to the one call in flight.
type remotePacketConn struct {
	uc           net.Conn
	network      string
	laddr, raddr net.Addr

	recv    chan dgram
	errq    chan dgram
	answers chan []byte
	done    chan struct{} // the reader has stopped
	drops   atomic.Uint64

	callMu sync.Mutex // one send or option call at a time
	rdl    *deadline.Deadline
	wdl    *deadline.Deadline
	closed atomic.Bool
}

func newRemotePacketConn(uc net.Conn, br *bufio.Reader, network string, info SocketInfo) *remotePacketConn {
	c := &remotePacketConn{
		uc: uc, network: network,
		laddr: netAddrOf(network, info.Local), raddr: netAddrOf(network, info.Remote),
		recv: make(chan dgram, recvQueueLen), errq: make(chan dgram, errQueueLen),
		answers: make(chan []byte, 1), done: make(chan struct{}),
		rdl: deadline.New(), wdl: deadline.New(),
	}
	go c.reader(br)
	return c
}

func (c *remotePacketConn) reader(br *bufio.Reader) {
	defer close(c.done)
	for {
		kind, p, err := readFrame(br, nil)
		if err != nil {
			return
		}
		switch kind {
		case frameRecv, frameErrQ:
			flags, from, oob, data, err := parseMsg(p)
			if err != nil {
				return
			}
			q := c.recv
			if kind == frameErrQ {
				q = c.errq
			}
			select {
			case q <- dgram{data: data, oob: oob, flags: flags, from: from}:
			default:
				c.drops.Add(1)
			}
		case frameError:
			errno, err := parseErrno(p)
			if err != nil {
				return
			}
			select {
			case c.recv <- dgram{errno: errno}:
			default:
				c.drops.Add(1)
			}
		case frameAnswer:
			select {
			case c.answers <- p:
			default:
				return // an answer nobody asked for
			}
		default:
			return
		}
	}
}

func (c *remotePacketConn) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: err}
}

// gone is the error of a call on a socket whose stream has ended.
func (c *remotePacketConn) gone(op string) error {
	if c.closed.Load() {
		return c.opErr(op, nil, net.ErrClosed)
	}
	return c.opErr(op, nil, os.NewSyscallError(op, syscall.ECONNRESET))
}

// RecvMsg implements host.PacketConn.
func (c *remotePacketConn) RecvMsg(b, oob []byte, flags int) (n, oobn, rflags int, from netip.AddrPort, err error) {
	if c.closed.Load() {
		return 0, 0, 0, from, c.gone("read")
	}
	var d dgram
	if flags&syscall.MSG_ERRQUEUE != 0 {
		select {
		case d = <-c.errq:
		default:
			return 0, 0, 0, from, c.opErr("read", nil, os.NewSyscallError("recvmsg", syscall.EAGAIN))
		}
		rflags = syscall.MSG_ERRQUEUE
	} else {
		dch, passed := c.rdl.Done()
		if passed {
			return 0, 0, 0, from, c.opErr("read", nil, os.ErrDeadlineExceeded)
		}
		select {
		case d = <-c.recv:
		case <-dch:
			return 0, 0, 0, from, c.opErr("read", nil, os.ErrDeadlineExceeded)
		case <-c.done:
			// What arrived before the stream ended is still read.
			select {
			case d = <-c.recv:
			default:
				return 0, 0, 0, from, c.gone("read")
			}
		}
		if d.errno != 0 {
			return 0, 0, 0, from, c.opErr("read", nil, os.NewSyscallError("recvmsg", d.errno))
		}
	}
	n = copy(b, d.data)
	oobn = copy(oob, d.oob)
	rflags |= d.flags
	if n < len(d.data) {
		rflags |= syscall.MSG_TRUNC
	}
	if oobn < len(d.oob) {
		rflags |= syscall.MSG_CTRUNC
	}
	return n, oobn, rflags, d.from, nil
}

// call sends one request frame and waits for its answer.
func (c *remotePacketConn) call(op string, addr net.Addr, kind byte, parts ...[]byte) (syscall.Errno, int, error) {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	if c.closed.Load() {
		return 0, 0, c.gone(op)
	}
	dch, passed := c.wdl.Done()
	if passed {
		return 0, 0, c.opErr(op, addr, os.ErrDeadlineExceeded)
	}
	if err := writeFrame(c.uc, kind, parts...); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, 0, c.opErr(op, addr, os.ErrDeadlineExceeded)
		}
		return 0, 0, c.gone(op)
	}
	select {
	case p := <-c.answers:
		errno, v, err := parseAnswer(p)
		if err != nil {
			return 0, 0, c.opErr(op, addr, err)
		}
		return errno, v, nil
	case <-c.done:
		return 0, 0, c.gone(op)
	case <-dch:
		// The answer still comes; the stream is out of step with the
		// calls from now on, so the socket cannot be used further.
		c.Close()
		return 0, 0, c.opErr(op, addr, os.ErrDeadlineExceeded)
	}
}

// SendMsg implements host.PacketConn.
func (c *remotePacketConn) SendMsg(b, oob []byte, to netip.AddrPort) (int, error) {
	if len(b) > 1<<16 || len(oob) > 1<<10 {
		return 0, c.opErr("write", netAddrOf(c.network, to), os.NewSyscallError("sendmsg", syscall.EMSGSIZE))
	}
	errno, n, err := c.call("write", netAddrOf(c.network, to), frameSend, msgHeader(0, to, oob), b)
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, c.opErr("write", netAddrOf(c.network, to), os.NewSyscallError("sendmsg", errno))
	}
	return n, nil
}

// SetSockOptInt implements host.PacketConn.
func (c *remotePacketConn) SetSockOptInt(level, name, value int) error {
	errno, _, err := c.call("set", nil, frameSetOpt, int32s(level, name, value))
	if err != nil {
		return err
	}
	if errno != 0 {
		return c.opErr("set", nil, os.NewSyscallError("setsockopt", errno))
	}
	return nil
}

// GetSockOptInt implements host.PacketConn.
func (c *remotePacketConn) GetSockOptInt(level, name int) (int, error) {
	errno, v, err := c.call("get", nil, frameGetOpt, int32s(level, name))
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, c.opErr("get", nil, os.NewSyscallError("getsockopt", errno))
	}
	return v, nil
}

// addrPortOfNet is the address of a net.Addr a caller hands us.
func addrPortOfNet(a net.Addr) (netip.AddrPort, bool) {
	ap := addrPortOf(a)
	return ap, ap.IsValid()
}

func (c *remotePacketConn) Read(b []byte) (int, error) {
	n, _, _, _, err := c.RecvMsg(b, nil, 0)
	return n, err
}

func (c *remotePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, _, from, err := c.RecvMsg(b, nil, 0)
	if err != nil {
		return n, nil, err
	}
	return n, netAddrOf(c.network, from), nil
}

func (c *remotePacketConn) Write(b []byte) (int, error) { return c.SendMsg(b, nil, netip.AddrPort{}) }

func (c *remotePacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ap, ok := addrPortOfNet(addr)
	if !ok {
		return 0, c.opErr("write", addr, os.NewSyscallError("sendto", syscall.EINVAL))
	}
	return c.SendMsg(b, nil, ap)
}

// Drops counts messages dropped because the receive queue was full.
func (c *remotePacketConn) Drops() uint64 { return c.drops.Load() }

func (c *remotePacketConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", nil, net.ErrClosed)
	}
	c.rdl.Stop()
	c.wdl.Stop()
	return c.uc.Close()
}

func (c *remotePacketConn) LocalAddr() net.Addr  { return c.laddr }
func (c *remotePacketConn) RemoteAddr() net.Addr { return c.raddr }

func (c *remotePacketConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *remotePacketConn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

func (c *remotePacketConn) SetWriteDeadline(t time.Time) error {
	c.wdl.Set(t)
	return c.uc.SetWriteDeadline(t)
}

// remoteListener is a listening socket of netd's stack. Its stream only
// holds it open; each Accept is a request of its own.
type remoteListener struct {
	c       *Client
	uc      net.Conn
	network string
	id      uint64
	addr    net.Addr

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	mu     sync.Mutex
	dl     time.Time
	closed atomic.Bool
}

func newRemoteListener(c *Client, uc net.Conn, network string, info SocketInfo) *remoteListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &remoteListener{c: c, uc: uc, network: network, id: info.ID, addr: netAddrOf(network, info.Local), ctx: ctx, cancel: cancel}
}

// Accept implements net.Listener; after Close it fails with
// net.ErrClosed, as net/http.Server expects.
func (l *remoteListener) Accept() (net.Conn, error) {
	ctx := l.ctx
	l.mu.Lock()
	dl := l.dl
	l.mu.Unlock()
	if !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	conn, err := l.c.openSocket(ctx, SocketRequest{Op: "accept", Network: l.network, Listener: l.id})
	if err != nil {
		switch {
		case l.closed.Load():
			err = net.ErrClosed
		case errors.Is(err, syscall.ETIMEDOUT) && !dl.IsZero() && !time.Now().Before(dl):
			err = os.ErrDeadlineExceeded
		}
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
	}
	return conn.(net.Conn), nil
}

// SetDeadline bounds Accept, as net.TCPListener.SetDeadline.
func (l *remoteListener) SetDeadline(t time.Time) error {
	l.mu.Lock()
	l.dl = t
	l.mu.Unlock()
	return nil
}

func (l *remoteListener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.addr, Err: net.ErrClosed}
	}
	l.cancel()
	return l.uc.Close()
}

func (l *remoteListener) Addr() net.Addr { return l.addr }

var (
	_ host.PacketConn = (*remotePacketConn)(nil)
	_ net.Conn        = (*remoteConn)(nil)
	_ net.Listener    = (*remoteListener)(nil)
)
