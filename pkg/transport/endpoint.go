package transport

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/waiter"
)

// Endpoint is one socket's protocol state. Every method is non-blocking
// and safe for concurrent use. Methods a protocol does not support return
// syscall.EOPNOTSUPP.
type Endpoint interface {
	// Queue is where the endpoint announces readiness changes.
	Queue() *waiter.Queue
	// Readiness returns the events of mask that hold now (EventErr and
	// EventHUp whether asked for or not).
	Readiness(mask waiter.EventMask) waiter.EventMask

	// Bind gives the endpoint a local address; port 0 picks an
	// ephemeral port (RFC 6056).
	Bind(addr netip.AddrPort) error
	// Connect sets the peer. Datagram endpoints take it at once (an
	// invalid addr dissolves the association, like AF_UNSPEC); a
	// stream endpoint starts its handshake and returns EINPROGRESS.
	Connect(addr netip.AddrPort) error
	// Listen makes a stream endpoint accept connections.
	Listen(backlog int) error
	// Accept takes one established connection off the accept queue.
	Accept() (Endpoint, netip.AddrPort, error)
	// Read receives into the buffers in order (scatter). For datagram
	// endpoints one call returns one datagram.
	Read(dst [][]byte, o ReadOptions) (ReadResult, error)
	// Write sends the buffers in order (gather). Datagram endpoints
	// send all of it as one datagram or nothing; a stream endpoint may
	// take part and report how much.
	Write(src [][]byte, o WriteOptions) (int, error)
	// Shutdown closes one or both directions (syscall.SHUT_RD, SHUT_WR,
	// SHUT_RDWR).
	Shutdown(how int) error
	// Close releases the endpoint; SO_LINGER governs what a stream
	// endpoint does with unsent data.
	Close() error

	// LocalAddr is the bound address (zero port when not bound).
	LocalAddr() netip.AddrPort
	// RemoteAddr is the peer, or ENOTCONN.
	RemoteAddr() (netip.AddrPort, error)

	// SetSockOpt and GetSockOpt take Linux's level and option numbers
	// (syscall.SOL_SOCKET, syscall.IPPROTO_IP, …); values are typed as
	// Options documents. Unknown options are ENOPROTOOPT.
	SetSockOpt(level, name int, v any) error
	GetSockOpt(level, name int) (any, error)

	// Info describes the endpoint for netstat.
	Info() Info
}

// ReadOptions are the recv flags an endpoint honours.
type ReadOptions struct {
	Peek bool // MSG_PEEK: leave the data queued
	// Trunc (MSG_TRUNC) makes ReadResult.N the datagram's full length
	// even when the buffers were shorter.
	Trunc bool
	// ErrQueue (MSG_ERRQUEUE) reads a queued ICMP error (IP_RECVERR).
	ErrQueue bool
	// WaitAll (MSG_WAITALL) is a stream endpoint's hint; the blocking
	// layer loops.
	WaitAll bool
	// OOB (MSG_OOB) reads urgent data.
	OOB bool
}

// ReadResult is what Read returns besides the error.
type ReadResult struct {
	// N is the bytes copied (the full datagram length with Trunc).
	N int
	// Truncated: the datagram was longer than the buffers (MSG_TRUNC
	// in msg_flags).
	Truncated bool
	// From is the sender (datagrams) or the peer.
	From netip.AddrPort
	// Control holds the ancillary data the socket asked for.
	Control ControlMessages
}

// ControlMessages is recvmsg's ancillary data, each present only when the
// matching option is on.
type ControlMessages struct {
	HasTTL bool // IP_RECVTTL / IPV6_RECVHOPLIMIT
	TTL    uint8
	HasTOS bool // IP_RECVTOS / IPV6_RECVTCLASS
	TOS    uint8
	// HasPktInfo: IP_PKTINFO / IPV6_RECVPKTINFO — the interface a
	// datagram arrived on and the address it was sent to.
	HasPktInfo bool
	IfIndex    int
	Dst        netip.Addr
	// Err is a queued error read with ErrQueue (IP_RECVERR).
	Err *SockExtendedErr
}

// SockExtendedErr is Linux's struct sock_extended_err for an ICMP error,
// with the offender (the node that sent it).
type SockExtendedErr struct {
	Errno    int    // what the error means for the socket (ECONNREFUSED…)
	Origin   uint8  // SO_EE_ORIGIN_ICMP (2) or SO_EE_ORIGIN_ICMP6 (3)
	Type     uint8  // ICMP type
	Code     uint8  // ICMP code
	Info     uint32 // the MTU of a fragmentation-needed / packet too big
	Offender netip.Addr
}

// Linux's error origins (linux/errqueue.h).
const (
	OriginICMP  = 2
	OriginICMP6 = 3
)

// WriteOptions are the send flags and per-call settings.
type WriteOptions struct {
	// To is the destination of sendto; the zero value uses the
	// connected peer (EDESTADDRREQ without one).
	To netip.AddrPort
	// More (MSG_MORE) asks a stream endpoint to wait for more data.
	More bool
	// DontRoute (MSG_DONTROUTE) sends only to directly connected hosts.
	DontRoute bool
	// OOB (MSG_OOB) sends urgent data.
	OOB bool
	// NoSignal (MSG_NOSIGNAL) is accepted; Go has no SIGPIPE here.
	NoSignal bool
	// TTL and TOS, when Has*, override the socket's for this packet
	// (IP_TTL / IPV6_HOPLIMIT and IP_TOS / IPV6_TCLASS control messages).
	HasTTL bool
	TTL    uint8
	HasTOS bool
	TOS    uint8
	// Src and IfIndex (IP_PKTINFO / IPV6_PKTINFO) pick the source
	// address and interface for this packet.
	Src     netip.Addr
	IfIndex int
}

// Info is one line of netstat.
type Info struct {
	// Proto is "udp", "udp6", "tcp", "tcp6", "raw", "raw6" (ping
	// sockets list as "icmp"/"icmp6"), as netstat prints it.
	Proto string
	// Protocol is the IP protocol number (the raw socket's protocol).
	Protocol int
	Local    netip.AddrPort
	// Remote is the peer, zero when not connected.
	Remote netip.AddrPort
	// State is the TCP state name ("LISTEN", "ESTABLISHED", …), or for
	// UDP and ping sockets "ESTABLISHED" when connected and "" otherwise;
	// raw sockets report the numeric socket state as /proc/net/raw and
	// netstat -w do ("7", TCP_CLOSE; "1" when connected), and their
	// Local port is the protocol number.
	State string
	// RecvQ and SendQ are the bytes queued (netstat's Recv-Q, Send-Q).
	RecvQ, SendQ int
	// Drops counts datagrams dropped for a full receive queue.
	Drops uint64
}
