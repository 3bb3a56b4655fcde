package traceroute

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// Origins of a sock_extended_err (linux/errqueue.h).
const (
	originLocal = 1
	originICMP  = 2
	originICMP6 = 3
)

// extErr is struct sock_extended_err with its offender (SO_EE_OFFENDER):
// the node that sent the ICMP error.
type extErr struct {
	errno     syscall.Errno
	origin    uint8
	typ, code uint8
	info      uint32
	offender  netip.Addr
}

// parseErr finds the IP_RECVERR / IPV6_RECVERR message among Linux
// cmsgs; nil when there is none or it is malformed. It never panics on
// short or garbage input.
func parseErr(oob []byte) *extErr {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if !(m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_RECVERR) &&
			!(m.Header.Level == syscall.SOL_IPV6 && m.Header.Type == syscall.IPV6_RECVERR) {
			continue
		}
		d := m.Data
		if len(d) < 16 {
			continue
		}
		e := &extErr{
			errno:  syscall.Errno(binary.NativeEndian.Uint32(d)),
			origin: d[4], typ: d[5], code: d[6],
			info: binary.NativeEndian.Uint32(d[8:]),
		}
		if o := d[16:]; len(o) >= 2 {
			switch binary.NativeEndian.Uint16(o) {
			case syscall.AF_INET:
				if len(o) >= 8 {
					e.offender = netip.AddrFrom4([4]byte(o[4:8]))
				}
			case syscall.AF_INET6:
				if len(o) >= 24 {
					e.offender = netip.AddrFrom16([16]byte(o[8:24])).Unmap()
				}
			}
		}
		return e
	}
	return nil
}

// icmpErr reports whether e is an ICMP error traceroute takes (source
// quench and redirects are not about the path: recv_reply skips them).
func icmpErr(e *extErr, v6 bool) bool {
	if e == nil {
		return false
	}
	if e.origin == originLocal {
		// A probe too big for the first link with -F (Linux >= 3.13
		// reports it as a local error, no more ICMP).
		return e.errno == syscall.EMSGSIZE
	}
	if v6 {
		return e.origin == originICMP6
	}
	return e.origin == originICMP && e.typ != icmp4SourceQuench && e.typ != icmp4Redirect
}

// common is what every method needs.
type common struct {
	t    *tracer
	src  netip.Addr // -s, or invalid
	data []byte
}

func (c *common) deliver(r reply) {
	select {
	case c.t.events <- r:
	case <-c.t.done:
	}
}

// level is the socket option level of the destination's family.
func (c *common) level() int {
	if c.t.v6() {
		return syscall.IPPROTO_IPV6
	}
	return syscall.IPPROTO_IP
}

// opts are tune_socket's options: IP_RECVERR, path MTU discovery off
// unless -F (so big probes are fragmented, as traceroute's default),
// the TOS, and the TTL when ttl > 0.
func (c *common) opts(ttl int) []host.SockOpt {
	lvl := c.level()
	pmtu := syscall.IP_PMTUDISC_DONT
	if c.t.o.dontFrag {
		pmtu = syscall.IP_PMTUDISC_DO
	}
	var so []host.SockOpt
	if c.t.v6() {
		so = append(so, host.SockOpt{Level: lvl, Name: syscall.IPV6_RECVERR, Value: 1},
			host.SockOpt{Level: lvl, Name: syscall.IPV6_MTU_DISCOVER, Value: pmtu})
		if c.t.o.tos >= 0 {
			so = append(so, host.SockOpt{Level: lvl, Name: syscall.IPV6_TCLASS, Value: c.t.o.tos})
		}
		if ttl > 0 {
			so = append(so, host.SockOpt{Level: lvl, Name: syscall.IPV6_UNICAST_HOPS, Value: ttl})
		}
		return so
	}
	so = append(so, host.SockOpt{Level: lvl, Name: syscall.IP_RECVERR, Value: 1},
		host.SockOpt{Level: lvl, Name: syscall.IP_MTU_DISCOVER, Value: pmtu})
	if c.t.o.tos >= 0 {
		so = append(so, host.SockOpt{Level: lvl, Name: syscall.IP_TOS, Value: c.t.o.tos})
	}
	if ttl > 0 {
		so = append(so, host.SockOpt{Level: lvl, Name: syscall.IP_TTL, Value: ttl})
	}
	return so
}

// routeSource is the source address for the destination: -s, or the one
// the route gives, found as traceroute finds it, by connecting a UDP
// socket (which fails as connect does when there is no route).
func (c *common) routeSource(port int) (netip.Addr, error) {
	if c.src.IsValid() {
		return c.src, nil
	}
	t := c.t
	u, err := t.h.Dial(t.ctx, c.network("udp"), netip.AddrPortFrom(t.dst, uint16(port)).String(), &host.SocketOptions{Device: t.o.iface})
	if err != nil {
		return netip.Addr{}, &sysError{what: "connect", err: err}
	}
	defer u.Close()
	if ua, ok := u.LocalAddr().(*net.UDPAddr); ok && ua.AddrPort().Addr().IsValid() {
		return ua.AddrPort().Addr().Unmap(), nil
	}
	return netip.Addr{}, &sysError{what: "getsockname", err: syscall.EADDRNOTAVAIL}
}

// setTTL sets the TTL (hop limit) of a socket shared by all probes.
func (c *common) setTTL(pc host.PacketConn, ttl int) error {
	name, what := syscall.IP_TTL, "setsockopt IP_TTL"
	if c.t.v6() {
		name, what = syscall.IPV6_UNICAST_HOPS, "setsockopt IPV6_UNICAST_HOPS"
	}
	if err := pc.SetSockOptInt(c.level(), name, ttl); err != nil {
		return &sysError{what: what, err: err}
	}
	return nil
}

// socketOptions are the options of a method's socket.
func (c *common) socketOptions(ttl int) *host.SocketOptions {
	return &host.SocketOptions{Device: c.t.o.iface, Options: c.opts(ttl)}
}

func (c *common) network(proto string) string {
	if c.t.v6() {
		return proto + "6"
	}
	return proto + "4"
}

// tooBig is a probe the first link cannot carry unfragmented (-F):
// Linux queues that as a local EMSGSIZE error with the MTU, which
// traceroute prints as "!F-MTU" for a probe nobody answered.
type tooBig struct{ mtu int }

func (e *tooBig) Error() string { return "message too long" }

// sendFailed is do_send's verdict on a failed send: ENOBUFS and EAGAIN
// are transient (retry: try later), EMSGSIZE is a tooBig probe (our
// stack does not queue the local error Linux does, so the MTU comes from
// IP_MTU of a socket connected to the destination), anything else is
// fatal.
func (c *common) sendFailed(err error) (retry bool, fatal error) {
	switch {
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.EAGAIN):
		return true, nil
	case errors.Is(err, syscall.EMSGSIZE):
		return false, &tooBig{c.pathMTU()}
	}
	return false, &sysError{what: "send", err: err}
}

// pathMTU is IP_MTU (IPV6_MTU) of a UDP socket connected to the
// destination: the MTU of the route there; 0 when unknown.
func (c *common) pathMTU() int {
	t := c.t
	u, err := t.h.Dial(t.ctx, c.network("udp"), netip.AddrPortFrom(t.dst, 9).String(), &host.SocketOptions{Device: t.o.iface})
	if err != nil {
		return 0
	}
	defer u.Close()
	pc, ok := u.(host.PacketConn)
	if !ok {
		return 0
	}
	name := syscall.IP_MTU
	if t.v6() {
		name = syscall.IPV6_MTU
	}
	mtu, err := pc.GetSockOptInt(c.level(), name)
	if err != nil {
		return 0
	}
	return mtu
}

// sendShared sends on a socket all probes share (ping, raw). An ICMP
// error not yet read is the socket's pending error, which sendmsg
// returns once (Linux sock_error, as ours) without sending; reading the
// error queue re-arms it while more errors are queued. So such an errno
// makes the loop read the queue itself (handling what it finds, as the
// reader would) and send again; an errno that comes back every time
// (no route) is fatal.
func (c *common) sendShared(m method, send func() error, drain func(func(reply))) error {
	var err error
	for range 64 {
		if err = send(); err == nil || !icmpErrno(err) {
			return err
		}
		drain(func(r reply) { c.t.handle(m, r) })
	}
	return err
}

// icmpErrno reports the errnos an ICMP error leaves on a socket
// (icmp_err_convert, icmpv6_err_convert).
func icmpErrno(err error) bool {
	for _, e := range []syscall.Errno{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ECONNREFUSED,
		syscall.EPROTO, syscall.EHOSTDOWN, syscall.EACCES, syscall.ENONET, syscall.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// pending reports whether a read error is an errno waiting for the
// error queue (as Linux returns a queued ICMP error once) rather than
// the socket closing.
func pending(err error) bool {
	var errno syscall.Errno
	return !errors.Is(err, net.ErrClosed) && errors.As(err, &errno) && errno != syscall.EBADF
}

// udpMethod is the default method (and -U): one connected UDP socket per
// probe, so each probe's errors come from its own error queue.
type udpMethod struct {
	common
	port  int
	fixed bool
	conns map[int]host.PacketConn
}

func (u *udpMethod) send(idx, ttl int) (time.Time, error) {
	t := u.t
	so := u.socketOptions(ttl)
	if u.src.IsValid() {
		so.Local = netip.AddrPortFrom(u.src, 0)
	}
	c, err := t.h.Dial(t.ctx, u.network("udp"), netip.AddrPortFrom(t.dst, uint16(u.port)).String(), so)
	if err != nil {
		if u.src.IsValid() && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return time.Time{}, &sysError{what: "bind", err: err}
		}
		return time.Time{}, &sysError{what: "connect", err: err}
	}
	pc, ok := c.(host.PacketConn)
	if !ok {
		c.Close()
		return time.Time{}, &sysError{what: "socket", err: syscall.EPROTONOSUPPORT}
	}
	sent := time.Now()
	if _, err := pc.Write(u.data); err != nil {
		pc.Close()
		retry, fatal := u.sendFailed(err)
		if retry {
			return time.Time{}, nil
		}
		return sent, fatal
	}
	if u.conns == nil {
		u.conns = make(map[int]host.PacketConn)
	}
	u.conns[idx] = pc
	go u.read(idx, pc)
	if !u.fixed {
		u.port = (u.port + 1) & 0xffff
	}
	return sent, nil
}

// read waits for probe idx's answer: a datagram from the destination
// (its UDP port answered) or an ICMP error from the error queue. It
// ends when the socket closes.
func (u *udpMethod) read(idx int, pc host.PacketConn) {
	b, oob := make([]byte, 512), make([]byte, 512)
	for range 64 {
		_, _, _, from, err := pc.RecvMsg(b, oob, 0)
		if err == nil {
			if from.Addr().Unmap() == u.t.dst {
				u.deliver(reply{idx: idx, from: u.t.dst, at: time.Now()})
				return
			}
			continue
		}
		if !pending(err) {
			return
		}
		for range 8 {
			_, oobn, _, _, err := pc.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
			if err != nil {
				break
			}
			if ee := parseErr(oob[:oobn]); icmpErr(ee, u.t.v6()) {
				u.deliver(reply{idx: idx, at: time.Now(), ee: ee})
				return
			}
		}
	}
}

func (u *udpMethod) finished(idx int) {
	if pc, ok := u.conns[idx]; ok {
		pc.Close()
		delete(u.conns, idx)
	}
}

func (u *udpMethod) close() {
	for idx := range u.conns {
		u.finished(idx)
	}
}

// icmpMethod is -I: echo requests with sequence numbers from -p (default
// 1) over one ping socket.
type icmpMethod struct {
	common
	pc      host.PacketConn
	seqBase uint16
}

func newICMP(c common) (method, error) {
	t := c.t
	// The module's init connects its socket: no route fails here.
	if _, err := c.routeSource(0); err != nil {
		return nil, err
	}
	bind := ""
	if c.src.IsValid() {
		bind = c.src.String()
	}
	pc, err := t.h.ListenPacket(t.ctx, c.network("ping"), bind, c.socketOptions(0))
	if err != nil {
		if bind != "" && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, &sysError{what: "bind", err: err}
		}
		return nil, &sysError{what: "socket", err: err}
	}
	m := &icmpMethod{common: c, pc: pc, seqBase: 1}
	if t.o.port >= 0 {
		m.seqBase = uint16(t.o.port)
	}
	go m.read()
	return m, nil
}

func (m *icmpMethod) echoTypes() (request, reply byte) {
	if m.t.v6() {
		return 128, 129 // RFC 4443 §4
	}
	return 8, 0 // RFC 792
}

func (m *icmpMethod) send(idx, ttl int) (time.Time, error) {
	if err := m.setTTL(m.pc, ttl); err != nil {
		return time.Time{}, err
	}
	req, _ := m.echoTypes()
	pkt := make([]byte, 8+len(m.data))
	pkt[0] = req
	binary.BigEndian.PutUint16(pkt[6:], m.seqBase+uint16(idx))
	copy(pkt[8:], m.data)
	var sent time.Time
	err := m.sendShared(m, func() error {
		sent = time.Now()
		_, err := m.pc.SendMsg(pkt, nil, netip.AddrPortFrom(m.t.dst, 0))
		return err
	}, m.drain)
	if err != nil {
		if retry, fatal := m.sendFailed(err); retry {
			return time.Time{}, nil
		} else {
			return sent, fatal
		}
	}
	return sent, nil
}

// read takes echo replies from the destination and errors quoting our
// requests, until the socket closes.
func (m *icmpMethod) read() {
	_, rep := m.echoTypes()
	b, oob := make([]byte, 2048), make([]byte, 512)
	for {
		n, _, _, from, err := m.pc.RecvMsg(b, oob, 0)
		if err == nil {
			if n >= 8 && b[0] == rep && from.Addr().Unmap() == m.t.dst {
				idx := int(binary.BigEndian.Uint16(b[6:]) - m.seqBase)
				m.deliver(reply{idx: idx, from: m.t.dst, at: time.Now()})
			}
			continue
		}
		if !pending(err) {
			return
		}
		m.drain(m.deliver)
	}
}

// drain reads the error queue until it is empty and gives the errors
// quoting our requests to fn.
func (m *icmpMethod) drain(fn func(reply)) {
	req, _ := m.echoTypes()
	b, oob := make([]byte, 2048), make([]byte, 512)
	for range 64 {
		n, oobn, _, _, err := m.pc.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
		if err != nil {
			return
		}
		ee := parseErr(oob[:oobn])
		if icmpErr(ee, m.t.v6()) && n >= 8 && b[0] == req {
			idx := int(binary.BigEndian.Uint16(b[6:]) - m.seqBase)
			fn(reply{idx: idx, at: time.Now(), ee: ee})
		}
	}
}

func (m *icmpMethod) finished(int) {}
func (m *icmpMethod) close()       { m.pc.Close() }
