// Package gonet adapts sockets of package socket to Go's net interfaces:
// net.Conn for stream and connected datagram sockets, net.PacketConn for
// datagram sockets (UDP, ping and raw ICMP), net.Listener, and a Dialer
// whose DialContext fits net/http.Transport and crypto/tls.Dialer.
//
// Deadlines are the socket's own (socket.SetReadDeadline): timers that
// close the channel a blocked call selects on, so no goroutine waits per
// connection. Errors are *net.OpError wrapping *os.SyscallError (or the
// errno's context), so errors.Is(err, syscall.ECONNREFUSED) holds, a
// deadline is errors.Is(err, os.ErrDeadlineExceeded) with Timeout() true,
// and a closed conn is errors.Is(err, net.ErrClosed).
//
// Locks: the adapters hold none of their own across calls into the
// socket layer (whose lock order package socket documents).
package gonet

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/socket"
)

// addrKind is which net.Addr type a socket's addresses are.
type addrKind int

const (
	kindUDP addrKind = iota
	kindTCP
	kindIP
)

func netAddr(kind addrKind, ap netip.AddrPort) net.Addr {
	// Go's own conns show IPv4 peers of dual-stack sockets as IPv4.
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	switch kind {
	case kindTCP:
		return net.TCPAddrFromAddrPort(ap)
	case kindIP:
		a := ap.Addr()
		return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	return net.UDPAddrFromAddrPort(ap)
}

// addrPort takes the address out of a net.Addr of the kinds we make.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		return addrPortOf(a.IP, a.Zone, a.Port)
	case *net.TCPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		return addrPortOf(a.IP, a.Zone, a.Port)
	case *net.IPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		return addrPortOf(a.IP, a.Zone, 0)
	}
	return netip.AddrPort{}, false
}

func addrPortOf(ip net.IP, zone string, port int) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		if len(ip) != 0 {
			return netip.AddrPort{}, false
		}
		a = netip.IPv6Unspecified()
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if zone != "" && a.Is6() {
		a = a.WithZone(zone)
	}
	if port < 0 || port > 0xffff {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// mapErr turns a socket error into what Go's net puts in an OpError.
func mapErr(syscallName string, closed bool, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	if closed && errors.Is(err, syscall.EBADF) {
		return net.ErrClosed
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		// The bare errno, so OpError.Timeout and Temporary see it; the
		// endpoint's wrapping text is dropped as Go's net does.
		return os.NewSyscallError(syscallName, en)
	}
	return err
}

// conn is what stream and datagram conns share.
type conn struct {
	s       *socket.Socket
	network string
	kind    addrKind
	raddr   net.Addr // nil when not connected
	closed  atomic.Bool
}

func (c *conn) init(s *socket.Socket, network string, kind addrKind) {
	c.s, c.network, c.kind = s, network, kind
	if ap, err := s.Endpoint().RemoteAddr(); err == nil {
		c.raddr = netAddr(kind, ap)
	}
}

func (c *conn) opErr(op, syscallName string, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: addr, Err: mapErr(syscallName, c.closed.Load(), err)}
}

// Socket is the underlying socket.
func (c *conn) Socket() *socket.Socket { return c.s }

// LocalAddr is the bound address (*net.UDPAddr, *net.TCPAddr or
// *net.IPAddr; the unspecified address before binding).
func (c *conn) LocalAddr() net.Addr {
	ap := c.s.Endpoint().LocalAddr()
	if !ap.Addr().IsValid() {
		a := netip.IPv4Unspecified()
		if c.s.Family() == syscall.AF_INET6 {
			a = netip.IPv6Unspecified()
		}
		ap = netip.AddrPortFrom(a, ap.Port())
	}
	return netAddr(c.kind, ap)
}

// RemoteAddr is the peer, or nil when the socket is not connected.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// Close closes the socket; calls blocked on it return net.ErrClosed.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", "close", c.raddr, syscall.EBADF)
	}
	if err := c.s.Close(); err != nil {
		return c.opErr("close", "close", c.raddr, err)
	}
	return nil
}

// SetDeadline sets both deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", "setsockopt", nil, syscall.EBADF)
	}
	c.s.SetReadDeadline(t)
	c.s.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline: reads blocked now and later fail with a timeout once t
// passes (zero: no deadline).
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", "setsockopt", nil, syscall.EBADF)
	}
	c.s.SetReadDeadline(t)
	return nil
}

// SetWriteDeadline is SetReadDeadline for writes.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", "setsockopt", nil, syscall.EBADF)
	}
	c.s.SetWriteDeadline(t)
	return nil
}

// SetReadBuffer sets SO_RCVBUF.
func (c *conn) SetReadBuffer(bytes int) error {
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOptInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, bytes))
}

// SetWriteBuffer sets SO_SNDBUF.
func (c *conn) SetWriteBuffer(bytes int) error {
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOptInt(syscall.SOL_SOCKET, syscall.SO_SNDBUF, bytes))
}

// Write sends b (one datagram, or all of b on a stream).
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.s.Write(b)
	return n, c.opErr("write", "write", c.raddr, err)
}

// Conn is a stream connection.
type Conn struct{ conn }

// NewConn wraps a connected stream socket; the Conn owns it.
func NewConn(s *socket.Socket) *Conn {
	c := &Conn{}
	c.init(s, streamNetwork(s), kindTCP)
	return c
}

func streamNetwork(s *socket.Socket) string {
	if s.Family() == syscall.AF_INET6 {
		return "tcp6"
	}
	return "tcp4"
}

// Read reads what has arrived, io.EOF once the peer has shut down
// writing and everything is read.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.s.Read(b)
	if err != nil {
		return n, c.opErr("read", "read", c.raddr, err)
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// CloseWrite shuts down the sending side (net.TCPConn.CloseWrite).
func (c *Conn) CloseWrite() error {
	return c.opErr("close", "shutdown", c.raddr, c.s.Shutdown(syscall.SHUT_WR))
}

// SetKeepAlive sets SO_KEEPALIVE (net.TCPConn.SetKeepAlive).
func (c *Conn) SetKeepAlive(on bool) error {
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, on))
}

// SetNoDelay sets TCP_NODELAY (net.TCPConn.SetNoDelay).
func (c *Conn) SetNoDelay(on bool) error {
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, on))
}

// SetLinger sets SO_LINGER as net.TCPConn.SetLinger does: a negative
// sec turns it off, otherwise Close waits up to sec seconds for unsent
// data (0: discard it and reset).
func (c *Conn) SetLinger(sec int) error {
	l := syscall.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, l))
}

// CloseRead shuts down the receiving side.
func (c *Conn) CloseRead() error {
	return c.opErr("close", "shutdown", c.raddr, c.s.Shutdown(syscall.SHUT_RD))
}

// PacketConn is a datagram socket: net.PacketConn always, and a net.Conn
// with its peer when connected (as net.UDPConn). ReadFrom reports
// *net.UDPAddr for UDP and *net.IPAddr for ICMP and raw sockets.
type PacketConn struct{ conn }

// NewPacketConn wraps a datagram or raw socket; the PacketConn owns it.
// network names it in errors ("udp", "ip4:icmp", …).
func NewPacketConn(s *socket.Socket, network string) *PacketConn {
	kind := kindUDP
	if s.Type() == syscall.SOCK_RAW || s.Protocol() == syscall.IPPROTO_ICMP || s.Protocol() == syscall.IPPROTO_ICMPV6 {
		kind = kindIP
	}
	c := &PacketConn{}
	c.init(s, network, kind)
	return c
}

// Read receives one datagram (from anyone when not connected).
func (c *PacketConn) Read(b []byte) (int, error) {
	n, err := c.s.Read(b)
	return n, c.opErr("read", "read", c.raddr, err)
}

// ReadFrom receives one datagram and its sender.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.s.RecvFrom(b, 0)
	if err != nil {
		return n, nil, c.opErr("read", "recvfrom", nil, err)
	}
	return n, c.addrOf(from), nil
}

// ReadMsg receives one datagram with its control messages (Linux cmsgs
// as socket.EncodeControl writes them) and msg_flags.
func (c *PacketConn) ReadMsg(b, oob []byte) (n, oobn, flags int, addr net.Addr, err error) {
	n, oobn, flags, from, err := c.s.RecvMsg([][]byte{b}, oob, 0)
	if err != nil {
		return n, oobn, flags, nil, c.opErr("read", "recvmsg", nil, err)
	}
	return n, oobn, flags, c.addrOf(from), nil
}

func (c *PacketConn) addrOf(sa syscall.Sockaddr) net.Addr {
	ap, ok := socket.AddrPortOf(sa, c.s.Layer().Interfaces())
	if !ok {
		return nil
	}
	return netAddr(c.kind, ap)
}

func (c *PacketConn) sockaddr(addr net.Addr) (syscall.Sockaddr, error) {
	ap, ok := addrPort(addr)
	if !ok {
		return nil, syscall.EINVAL
	}
	if c.kind == kindUDP {
		if _, isIP := addr.(*net.IPAddr); isIP {
			return nil, syscall.EINVAL
		}
	}
	return socket.SockaddrOf(ap, c.s.Layer().Interfaces()), nil
}

// WriteTo sends one datagram to addr (*net.UDPAddr for UDP; *net.IPAddr,
// or a *net.UDPAddr whose port is ignored, for ICMP and raw sockets).
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	sa, err := c.sockaddr(addr)
	if err != nil {
		return 0, c.opErr("write", "sendto", addr, err)
	}
	n, err := c.s.SendTo(b, 0, sa)
	return n, c.opErr("write", "sendto", addr, err)
}

// WriteMsg sends one datagram with control messages (see
// socket.ParseControl); a nil addr sends to the connected peer.
func (c *PacketConn) WriteMsg(b, oob []byte, addr net.Addr) (n, oobn int, err error) {
	var sa syscall.Sockaddr
	if addr != nil {
		if sa, err = c.sockaddr(addr); err != nil {
			return 0, 0, c.opErr("write", "sendmsg", addr, err)
		}
	}
	n, err = c.s.SendMsg([][]byte{b}, oob, sa, 0)
	if err != nil {
		return n, 0, c.opErr("write", "sendmsg", addr, err)
	}
	return n, len(oob), nil
}

// RecvMsg is recvmsg(2) with flags (MSG_ERRQUEUE reads a queued ICMP
// error and never blocks) and the sender as a netip.AddrPort: what
// host.PacketConn asks.
func (c *PacketConn) RecvMsg(b, oob []byte, flags int) (n, oobn, rflags int, from netip.AddrPort, err error) {
	n, oobn, rflags, sa, err := c.s.RecvMsg([][]byte{b}, oob, flags)
	if err != nil {
		return n, oobn, rflags, netip.AddrPort{}, c.opErr("read", "recvmsg", nil, err)
	}
	from, _ = socket.AddrPortOf(sa, c.s.Layer().Interfaces())
	return n, oobn, rflags, from, nil
}

// SendMsg is sendmsg(2) to to, or to the connected peer when to is zero.
func (c *PacketConn) SendMsg(b, oob []byte, to netip.AddrPort) (int, error) {
	var sa syscall.Sockaddr
	if to.IsValid() {
		sa = socket.SockaddrOf(to, c.s.Layer().Interfaces())
	}
	n, err := c.s.SendMsg([][]byte{b}, oob, sa, 0)
	if err != nil {
		var addr net.Addr
		if to.IsValid() {
			addr = netAddr(c.kind, to)
		}
		return n, c.opErr("write", "sendmsg", addr, err)
	}
	return n, nil
}

// SetSockOptInt is setsockopt(2) with an integer value.
func (c *PacketConn) SetSockOptInt(level, name, value int) error {
	return c.opErr("set", "setsockopt", nil, c.s.SetSockOptInt(level, name, value))
}

// GetSockOptInt is getsockopt(2) of an integer option.
func (c *PacketConn) GetSockOptInt(level, name int) (int, error) {
	v, err := c.s.GetSockOptInt(level, name)
	return v, c.opErr("get", "getsockopt", nil, err)
}

// Listener accepts stream connections.
type Listener struct {
	s       *socket.Socket
	network string
	closed  atomic.Bool
}

// NewListener wraps a listening stream socket; the Listener owns it.
func NewListener(s *socket.Socket) *Listener {
	return &Listener{s: s, network: streamNetwork(s)}
}

// Accept waits for a connection; after Close it fails with net.ErrClosed
// (what net/http.Server looks for).
func (l *Listener) Accept() (net.Conn, error) {
	ns, _, err := l.s.Accept()
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: mapErr("accept", l.closed.Load(), err)}
	}
	return NewConn(ns), nil
}

// Close stops listening; blocked Accepts return.
func (l *Listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.Addr(), Err: net.ErrClosed}
	}
	return l.s.Close()
}

// Addr is the listening address (*net.TCPAddr).
func (l *Listener) Addr() net.Addr { return netAddr(kindTCP, l.s.Endpoint().LocalAddr()) }

// SetDeadline bounds Accept, as net.TCPListener.SetDeadline.
func (l *Listener) SetDeadline(t time.Time) error {
	l.s.SetReadDeadline(t)
	return nil
}

// Socket is the underlying socket.
func (l *Listener) Socket() *socket.Socket { return l.s }

var (
	_ net.Conn       = (*Conn)(nil)
	_ net.Conn       = (*PacketConn)(nil)
	_ net.PacketConn = (*PacketConn)(nil)
	_ net.Listener   = (*Listener)(nil)
)
