package socket

import (
	"slices"

	"github.com/stackbox/stackbox/pkg/ping"
	"github.com/stackbox/stackbox/pkg/raw"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/tcp"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/udp"
)

// Inet is the socket layer of one Internet stack with every transport
// protocol registered for AF_INET and AF_INET6: what the daemon and the
// standalone tools open sockets through.
type Inet struct {
	*Layer
	Stack *stack.Stack
	TCP   *tcp.Protocol
	UDP   *udp.Protocol
	Ping  *ping.Protocol
	Raw   *raw.Protocol
}

// NewInet registers TCP (SOCK_STREAM), UDP (SOCK_DGRAM), ping sockets (SOCK_DGRAM with
// IPPROTO_ICMP / IPPROTO_ICMPV6) and raw sockets (SOCK_RAW) on s and
// returns the layer over them, with IPv6 zones mapped to s's interfaces.
// Call it once per stack: each protocol installs its handlers in s.
func NewInet(s *stack.Stack) *Inet {
	reg := &transport.Registry{}
	in := &Inet{Stack: s, UDP: udp.New(s), Ping: ping.New(s), Raw: raw.New(s)}
	in.TCP = tcp.New(s)
	in.TCP.Register(reg)
	in.UDP.Register(reg)
	in.Ping.Register(reg)
	in.Raw.Register(reg)
	in.Layer = NewWithOptions(reg, Options{Interfaces: StackInterfaces(s)})
	return in
}

// Endpoints lists every open endpoint of the stack's protocols, TCP first
// then UDP, ping and raw sockets, as netstat reads them (sockets opened
// through the layer or directly).
func (in *Inet) Endpoints() []transport.Info {
	return slices.Concat(in.TCP.Endpoints(), in.UDP.Endpoints(), in.Ping.Endpoints(), in.Raw.Endpoints())
}
