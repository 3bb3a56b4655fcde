package gonet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/services"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/transport"
)

// Dialer opens connections on a socket layer, as net.Dialer does on the
// host. Its DialContext fits net/http.Transport.DialContext and
// crypto/tls.Dialer.NetDialer's role (through a net.Dialer-shaped
// closure); its Listen and ListenPacket are net.ListenConfig's.
type Dialer struct {
	Layer *socket.Layer
	// Cred opens the sockets (raw sockets and low ports need
	// Privileged).
	Cred transport.Cred
	// LocalAddr, if set, is bound before connecting (*net.UDPAddr,
	// *net.TCPAddr or *net.IPAddr).
	LocalAddr net.Addr
	// Timeout bounds a dial (with the context's deadline, whichever
	// comes first).
	Timeout time.Duration
	// Resolver looks up host names; without it only IP literals and
	// "localhost" are accepted.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// Control, if set, is called on each new socket before it is bound
	// or connected (as net.Dialer.Control): socket options that must be
	// in place for the first packet (IP_TTL, SO_BINDTODEVICE).
	Control func(s *socket.Socket) error
}

// netSpec is a parsed network name.
type netSpec struct {
	name   string
	family int // 0: by address; AF_INET or AF_INET6 forced by a 4/6 suffix
	typ    int
	proto  int
	kind   addrKind
	ports  bool // the address has a port
}

// Networks: "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"; raw IP as
// "ip:PROTO", "ip4:PROTO", "ip6:PROTO" (PROTO a number or icmp, igmp,
// tcp, udp, ipv6-icmp); and unprivileged ICMP echo (ping) sockets as
// "ping4", "ping6" (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), what
// golang.org/x/net/icmp calls "udp4").
func parseNetwork(network string) (netSpec, error) {
	sp := netSpec{name: network, ports: true}
	base := network
	if i := strings.IndexByte(network, ':'); i >= 0 {
		base = network[:i]
		p, ok := protoNumber(network[i+1:])
		if !ok || (base != "ip" && base != "ip4" && base != "ip6") {
			return sp, net.UnknownNetworkError(network)
		}
		sp.typ, sp.proto, sp.kind, sp.ports = syscall.SOCK_RAW, p, kindIP, false
	}
	switch base {
	case "tcp", "tcp4", "tcp6":
		sp.typ, sp.kind = syscall.SOCK_STREAM, kindTCP
	case "udp", "udp4", "udp6":
		sp.typ, sp.kind = syscall.SOCK_DGRAM, kindUDP
	case "ping4":
		sp.typ, sp.proto, sp.kind, sp.ports = syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP, kindIP, false
	case "ping6":
		sp.typ, sp.proto, sp.kind, sp.ports = syscall.SOCK_DGRAM, syscall.IPPROTO_ICMPV6, kindIP, false
	case "ip", "ip4", "ip6":
		if sp.typ != syscall.SOCK_RAW {
			return sp, net.UnknownNetworkError(network)
		}
	default:
		return sp, net.UnknownNetworkError(network)
	}
	switch base[len(base)-1] {
	case '4':
		sp.family = syscall.AF_INET
	case '6':
		sp.family = syscall.AF_INET6
	}
	return sp, nil
}

func protoNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 255
	}
	switch strings.ToLower(s) {
	case "icmp":
		return syscall.IPPROTO_ICMP, true
	case "igmp":
		return syscall.IPPROTO_IGMP, true
	case "tcp":
		return syscall.IPPROTO_TCP, true
	case "udp":
		return syscall.IPPROTO_UDP, true
	case "ipv6-icmp", "icmpv6", "ipv6icmp":
		return syscall.IPPROTO_ICMPV6, true
	}
	return 0, false
}

func parsePort(network, s string) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	proto := "tcp"
	if strings.HasPrefix(network, "udp") {
		proto = "udp"
	}
	if p, ok := services.Port(strings.ToLower(s), proto); ok {
		return p, nil
	}
	return 0, &net.DNSError{Err: "unknown port", Name: network + "/" + s, IsNotFound: true}
}

// splitAddress splits "host:port" (or a bare host for IP networks).
func splitAddress(sp netSpec, address string) (host string, port uint16, err error) {
	if !sp.ports {
		return address, 0, nil
	}
	h, p, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	if p == "" {
		return h, 0, nil
	}
	port, err = parsePort(sp.name, p)
	return h, port, err
}

// resolve turns a host into addresses of the wanted family (0: any):
// IP literals, "localhost", else the Resolver.
func (d *Dialer) resolve(ctx context.Context, host string, family int, listen bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	switch {
	case host == "":
		if listen {
			return nil, nil // the wildcard
		}
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	case strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost"):
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
			break
		}
		if d.Resolver == nil {
			return nil, &net.DNSError{Err: "no resolver configured: only IP literals and localhost", Name: host, IsNotFound: true}
		}
		var err error
		if addrs, err = d.Resolver(ctx, host); err != nil {
			var de *net.DNSError
			if errors.As(err, &de) {
				return nil, err
			}
			return nil, &net.DNSError{Err: err.Error(), Name: host, UnwrapErr: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
		}
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if a.Is4In6() {
			a = a.Unmap()
		}
		if family == syscall.AF_INET && !a.Is4() || family == syscall.AF_INET6 && !a.Is6() {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return out, nil
}

// dialTimeout is a dial that ran out of time (Timeout, the context's
// deadline): "i/o timeout" as Go's net says, a net.Error whose Timeout
// is true, and errors.Is both os.ErrDeadlineExceeded and
// context.DeadlineExceeded.
type dialTimeout struct{}

func (dialTimeout) Error() string   { return "i/o timeout" }
func (dialTimeout) Timeout() bool   { return true }
func (dialTimeout) Temporary() bool { return true }
func (dialTimeout) Is(target error) bool {
	return target == os.ErrDeadlineExceeded || target == context.DeadlineExceeded
}

var errDialTimeout error = dialTimeout{}

// ctxErr maps a context's error as net.Dialer does: its deadline is a
// timeout, a cancellation stays context.Canceled.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errDialTimeout
	}
	return err
}

// aLongTimeAgo is a deadline that has passed: it wakes a blocked call.
var aLongTimeAgo = time.Unix(1, 0)

// Dial is DialContext with the background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network (see parseNetwork for the
// names): a *Conn for streams, a *PacketConn for datagram and raw
// sockets. Host names go through Resolver; the addresses are tried in
// order until one connects. Cancelling ctx (or its deadline, or
// Timeout) aborts a connect in progress.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	sp, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	host, port, err := splitAddress(sp, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	addrs, err := d.resolve(ctx, host, sp.family, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for _, a := range addrs {
		c, err := d.dialOne(ctx, sp, netip.AddrPortFrom(a, port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

func (d *Dialer) dialOne(ctx context.Context, sp netSpec, to netip.AddrPort) (net.Conn, error) {
	raddr := netAddr(sp.kind, to)
	fail := func(laddr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: sp.name, Source: laddr, Addr: raddr, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(nil, ctxErr(err))
	}
	family := familyOf(to.Addr())
	s, err := d.Layer.Socket(family, sp.typ, sp.proto, d.Cred)
	if err != nil {
		return nil, fail(nil, mapErr("socket", false, err))
	}
	if d.Control != nil {
		if err := d.Control(s); err != nil {
			s.Close()
			return nil, fail(nil, mapErr("setsockopt", false, err))
		}
	}
	ifs := d.Layer.Interfaces()
	if d.LocalAddr != nil {
		la, ok := addrPort(d.LocalAddr)
		if !ok || !la.Addr().IsUnspecified() && familyOf(la.Addr()) != family {
			s.Close()
			return nil, fail(d.LocalAddr, &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()})
		}
		if la.Addr().IsUnspecified() && family == syscall.AF_INET {
			la = netip.AddrPortFrom(netip.IPv4Unspecified(), la.Port())
		}
		if err := s.Bind(socket.ToSockaddr(family, la, ifs)); err != nil {
			s.Close()
			return nil, fail(d.LocalAddr, mapErr("bind", false, err))
		}
	}
	// A cancelled context moves the write deadline (which bounds
	// connect) into the past, waking the blocked connect; the callback
	// costs no goroutine until the context is done.
	if dl, ok := ctx.Deadline(); ok {
		s.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.SetWriteDeadline(aLongTimeAgo) })
	err = s.Connect(socket.ToSockaddr(family, to, ifs))
	if !stop() {
		// The context ended while connecting (or just after): report
		// that, as net.Dialer does.
		s.Close()
		return nil, fail(nil, ctxErr(ctx.Err()))
	}
	s.SetWriteDeadline(time.Time{})
	if err != nil {
		s.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The context's deadline, which the socket's timer may
			// see a moment before the context does.
			return nil, fail(nil, errDialTimeout)
		}
		return nil, fail(nil, mapErr("connect", false, err))
	}
	if sp.typ == syscall.SOCK_STREAM {
		return NewConn(s), nil
	}
	return NewPacketConn(s, sp.name), nil
}

// ListenPacket opens a datagram (or raw) socket bound to address, as
// net.ListenConfig.ListenPacket: "udp" on a wildcard or empty host is a
// dual-stack AF_INET6 socket, as Go makes it; for "ip4:icmp" and
// "ping4"-style networks the address is a host without a port and may be
// empty (no bind).
func (d *Dialer) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	sp, err := parseNetwork(network)
	if err == nil && sp.typ == syscall.SOCK_STREAM {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	s, err := d.listenSocket(ctx, sp, address)
	if err != nil {
		return nil, err
	}
	return NewPacketConn(s, network), nil
}

// Listen opens a listening stream socket on address, with SO_REUSEADDR
// as Go's net.Listen sets it.
func (d *Dialer) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	sp, err := parseNetwork(network)
	if err == nil && sp.typ != syscall.SOCK_STREAM {
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	s, err := d.listenSocket(ctx, sp, address)
	if err != nil {
		return nil, err
	}
	if err := s.Listen(4096); err != nil { // Linux caps it at net.core.somaxconn
		s.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: netAddr(kindTCP, s.Endpoint().LocalAddr()), Err: mapErr("listen", false, err)}
	}
	return NewListener(s), nil
}

func (d *Dialer) listenSocket(ctx context.Context, sp netSpec, address string) (*socket.Socket, error) {
	fail := func(laddr net.Addr, err error) error {
		return &net.OpError{Op: "listen", Net: sp.name, Addr: laddr, Err: err}
	}
	host, port, err := splitAddress(sp, address)
	if err != nil {
		return nil, fail(nil, err)
	}
	addrs, err := d.resolve(ctx, host, sp.family, true)
	if err != nil {
		return nil, fail(nil, err)
	}
	var local netip.Addr
	if len(addrs) > 0 {
		local = addrs[0]
	}
	family := sp.family
	if family == 0 {
		family = syscall.AF_INET6
		if local.IsValid() && !local.IsUnspecified() && local.Is4() {
			family = syscall.AF_INET
		}
	}
	if !local.IsValid() || local.IsUnspecified() {
		local = netip.IPv4Unspecified()
		if family == syscall.AF_INET6 {
			local = netip.IPv6Unspecified()
		}
	}
	laddr := netAddr(sp.kind, netip.AddrPortFrom(local, port))
	s, err := d.Layer.Socket(family, sp.typ, sp.proto, d.Cred)
	if err != nil {
		return nil, fail(laddr, mapErr("socket", false, err))
	}
	if d.Control != nil {
		if err := d.Control(s); err != nil {
			s.Close()
			return nil, fail(laddr, mapErr("setsockopt", false, err))
		}
	}
	if sp.typ == syscall.SOCK_STREAM {
		s.SetSockOptInt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}
	// IP and ping sockets without an address stay unbound, as a raw
	// socket normally is.
	if sp.ports || address != "" {
		if err := s.Bind(socket.ToSockaddr(family, netip.AddrPortFrom(local, port), d.Layer.Interfaces())); err != nil {
			s.Close()
			return nil, fail(laddr, mapErr("bind", false, err))
		}
	}
	return s, nil
}

// DialTLS dials and runs the TLS handshake, which is crypto/tls.Dialer's
// job but cannot be given to it (its NetDialer must be a *net.Dialer);
// it fits net/http.Transport.DialTLSContext. config's ServerName
// defaults to the host of address; Timeout and ctx bound the handshake
// too, as they do for tls.Dialer.
func (d *Dialer) DialTLS(ctx context.Context, network, address string, config *tls.Config) (*tls.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	cfg := config.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(address); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
