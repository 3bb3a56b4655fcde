package host

import (
	"context"
	"net"
	"net/netip"
)

// Net is the data side of a Host: sockets on its stack, in the terms of
// Go's net package, so the everyday tools (ping, nc, fetch, …) run the
// same code on netd and on a private stack.
//
// Networks are those of package gonet: "tcp", "tcp4", "tcp6", "udp",
// "udp4", "udp6", raw IP as "ip4:PROTO" / "ip6:PROTO", and unprivileged
// ICMP echo (ping) sockets as "ping4", "ping6". Addresses are IP literals
// (or "localhost") with a port where the network has ports; name
// resolution is the tool's job.
type Net interface {
	// Dial connects. Streams come back as a net.Conn that also has
	// CloseWrite (half-close, as *net.TCPConn); datagram networks as a
	// PacketConn connected to address.
	Dial(ctx context.Context, network, address string, o *SocketOptions) (net.Conn, error)
	// Listen opens a listening stream socket (SO_REUSEADDR set, as Go's
	// net.Listen does).
	Listen(ctx context.Context, network, address string, o *SocketOptions) (net.Listener, error)
	// ListenPacket opens a datagram, ping or raw socket bound to address
	// (for IP networks the address has no port and may be empty: unbound).
	ListenPacket(ctx context.Context, network, address string, o *SocketOptions) (PacketConn, error)
}

// SocketOptions are applied to a new socket before it is bound or
// connected. A nil *SocketOptions is the zero value.
type SocketOptions struct {
	// Local is bound before connecting (Dial only; zero: the stack picks).
	Local netip.AddrPort `json:"local,omitzero"`
	// Device binds the socket to an interface (SO_BINDTODEVICE).
	Device string `json:"device,omitempty"`
	// Options are integer socket options set in order (IP_TTL, IP_TOS,
	// SO_BROADCAST, IP_RECVERR, IP_MTU_DISCOVER, …).
	Options []SockOpt `json:"options,omitempty"`
	// Cred is who opens the socket. A netd client never sends it (netd
	// takes the peer's credentials from the Unix socket and sets it for
	// the stack it serves); nil on a private stack means this process.
	Cred *Cred `json:"-"`
}

// SockOpt is one integer setsockopt(2) call.
type SockOpt struct {
	Level int `json:"level"`
	Name  int `json:"name"`
	Value int `json:"value"`
}

// Cred is the identity a socket is opened for: Privileged stands for
// CAP_NET_RAW and CAP_NET_BIND_SERVICE (raw sockets, ports below 1024).
// PID and Program name the owner for netstat -p (0 and "": unknown).
type Cred struct {
	UID, GID   uint32
	Privileged bool
	PID        int
	Program    string
}

// PacketConn is a datagram, ping or raw socket: a net.PacketConn (and a
// net.Conn once connected) with the recvmsg/sendmsg and setsockopt calls
// ping and traceroute need.
type PacketConn interface {
	net.Conn
	net.PacketConn
	// RecvMsg is recvmsg(2): one datagram into b and its control
	// messages into oob as Linux cmsgs (IP_TTL with IP_RECVTTL,
	// IP_RECVERR's sock_extended_err, …); rflags is msg_flags
	// (MSG_TRUNC, MSG_CTRUNC, MSG_ERRQUEUE). flags: 0 or MSG_ERRQUEUE,
	// which never blocks (EAGAIN when no error is queued). As on Linux,
	// with an error pending (an ICMP error with IP_RECVERR) a plain read
	// returns that errno once; the details then wait in the error queue.
	RecvMsg(b, oob []byte, flags int) (n, oobn, rflags int, from netip.AddrPort, err error)
	// SendMsg is sendmsg(2) to to (zero: the connected peer) with
	// per-packet control messages in oob (IP_TTL, IP_TOS, IP_PKTINFO).
	SendMsg(b, oob []byte, to netip.AddrPort) (int, error)
	SetSockOptInt(level, name, value int) error
	GetSockOptInt(level, name int) (int, error)
}
