// Package udp is the User Datagram Protocol (RFC 768, RFC 1122 §4.1,
// RFC 8200 §8.1 for IPv6) on a stack.Stack: the transport handler the
// stack hands UDP packets and ICMP errors to, the demultiplexing of
// datagrams to sockets, and the sockets themselves (transport.Endpoint).
//
// It owns: the demultiplexing table (exact 4-tuple first, then the bound
// address and port, then the wildcard and port — hash lookups keyed by
// port, never a scan over all sockets), SO_REUSEPORT groups (unicast
// spread by a keyed flow hash), multicast and broadcast fan-out
// (IP_MULTICAST_ALL semantics), port reservations through pkg/ports,
// checksums, ICMP error delivery (SO_ERROR, IP_RECVERR error queues) and
// the /proc/net/snmp Udp and Udp6 counters.
//
// Lock order: endpoint.mu → table.mu, and endpoint.mu → the ports
// manager's lock and the stack's own locks (route lookups, interface and
// address queries in bind and connect). endpoint.mcMu (memberships; a
// join may send an IGMP/MLD report) is never held with endpoint.mu. The
// DatagramQueues' locks and that of Protocol.eps (the open endpoints, for
// netstat) are leaves. An endpoint's queues, SO_ERROR and shutdown state
// are a transport.DatagramEndpoint guarded by endpoint.mu. The packet path takes table.mu shared
// to find the endpoints and releases it, then takes each endpoint's mu
// only to read its options, and pushes onto the endpoint's queue; no
// endpoint lock is held across WritePacket (a looped multicast or
// broadcast copy may come back to the sending socket) and
// waiter.Queue.Notify is called with no lock held.
package udp

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/stackbox/stackbox/pkg/ports"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Payload limits: the 16-bit length fields of IPv4 (65535 minus a 20-byte
// header and the 8-byte UDP header) and of UDP itself for IPv6.
const (
	MaxPayload4 = 65507
	MaxPayload6 = 65527
)

// Counters are one line of /proc/net/snmp ("Udp:") or /proc/net/snmp6
// ("Udp6…"), named as Linux names them.
type Counters struct {
	// InDatagrams counts datagrams read by applications (Linux counts
	// at recvmsg, not at arrival).
	InDatagrams atomic.Uint64
	// NoPorts counts unicast datagrams no socket wanted (answered with
	// port unreachable).
	NoPorts atomic.Uint64
	// InErrors counts datagrams dropped for a bad header, a bad
	// checksum or a full receive queue.
	InErrors     atomic.Uint64
	OutDatagrams atomic.Uint64
	// RcvbufErrors counts datagrams dropped for a full receive queue.
	RcvbufErrors atomic.Uint64
	SndbufErrors atomic.Uint64
	InCsumErrors atomic.Uint64
	// IgnoredMulti counts multicast and broadcast datagrams no socket
	// wanted.
	IgnoredMulti atomic.Uint64
}

// Stats are the protocol's counters: the embedded Counters are the IPv4
// ("Udp:") line, V6 the IPv6 ("Udp6") one. Datagrams are counted by the
// IP version they travel in.
type Stats struct {
	Counters
	V6 Counters
}

func (s *Stats) of(v6 bool) *Counters {
	if v6 {
		return &s.V6
	}
	return &s.Counters
}

// Protocol is UDP on one stack.
type Protocol struct {
	s     *stack.Stack
	ports *ports.Manager
	stats Stats
	seed  maphash.Seed // SO_REUSEPORT flow hash key
	seq   atomic.Uint64

	tab table

	eps transport.EndpointSet[*endpoint]
}

// New creates UDP on s and registers it as s's handler for protocol 17.
func New(s *stack.Stack) *Protocol {
	p := &Protocol{
		s: s, ports: ports.NewManager(), seed: maphash.MakeSeed(),
	}
	p.tab.init()
	s.RegisterTransport(wire.IPProtoUDP, p)
	return p
}

// Stats returns the live counters.
func (p *Protocol) Stats() *Stats { return &p.stats }

// Ports is the port manager (its ephemeral range is
// net.ipv4.ip_local_port_range).
func (p *Protocol) Ports() *ports.Manager { return p.ports }

// PrivilegedPorts is Linux's net.ipv4.ip_unprivileged_port_start: ports
// below it need privilege to bind.
const PrivilegedPorts = 1024

// NewEndpoint opens a socket of the family (syscall.AF_INET or AF_INET6)
// for the stack's own process: UID 0, privileged. Sockets opened for
// clients go through Register's constructor, which takes their
// credentials.
func (p *Protocol) NewEndpoint(family int) (transport.Endpoint, error) {
	return p.newEndpoint(family, transport.Cred{Privileged: true})
}

// Register makes p serve socket(AF_INET or AF_INET6, SOCK_DGRAM, 0 or
// IPPROTO_UDP).
func (p *Protocol) Register(r *transport.Registry) {
	c := func(req transport.NewRequest) (transport.Endpoint, error) {
		return p.newEndpoint(req.Family, req.Cred)
	}
	for _, f := range []int{syscall.AF_INET, syscall.AF_INET6} {
		r.Register(f, syscall.SOCK_DGRAM, 0, c)
		r.Register(f, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP, c)
	}
}

// Endpoints describes every open endpoint that has a port (netstat -u;
// as in Linux's /proc/net/udp, a socket that was never bound or used is
// in no table and not listed).
func (p *Protocol) Endpoints() []transport.Info {
	return slices.DeleteFunc(p.eps.Infos(), func(in transport.Info) bool { return in.Local.Port() == 0 })
}

// ent is an endpoint's place in the demultiplexing table: an immutable
// snapshot of what the lookup compares, replaced whenever the endpoint
// binds, connects or disconnects.
type ent struct {
	ep     *endpoint
	local  netip.AddrPort // unmapped; the family's unspecified address for a wildcard
	remote netip.AddrPort // unmapped; zero when not connected
	v4, v6 bool           // the IP versions it receives
	inet   bool           // an AF_INET socket (preferred over dual-stack for IPv4)
	reuse  bool           // SO_REUSEPORT at bind time
	uid    uint32
	seq    uint64 // bind order: the newest of equals gets unicast, as Linux
}

func (t *ent) wildcard() bool { return t.local.Addr().IsUnspecified() }

func (t *ent) accepts(v6 bool) bool {
	if v6 {
		return t.v6
	}
	return t.v4
}

type tuple struct {
	local, remote netip.AddrPort
}

// table is the demultiplexing table. Slices in it are never modified in
// place (copy on write), so a reader may use one after unlocking.
type table struct {
	mu        sync.RWMutex
	connected map[tuple][]*ent          // connected sockets, by 4-tuple
	bound     map[netip.AddrPort][]*ent // unconnected, bound to an address
	wild      map[uint16][]*ent         // unconnected, bound to a wildcard
	byPort    map[uint16][]*ent         // every socket, for multicast fan-out
}

func (t *table) init() {
	t.connected = make(map[tuple][]*ent)
	t.bound = make(map[netip.AddrPort][]*ent)
	t.wild = make(map[uint16][]*ent)
	t.byPort = make(map[uint16][]*ent)
}

func addTo[K comparable](m map[K][]*ent, k K, e *ent) {
	m[k] = append(slices.Clip(m[k]), e)
}

func removeFrom[K comparable](m map[K][]*ent, k K, e *ent) {
	l := m[k]
	i := slices.Index(l, e)
	if i < 0 {
		return
	}
	if len(l) == 1 {
		delete(m, k)
		return
	}
	m[k] = slices.Delete(slices.Clone(l), i, i+1)
}

// replace swaps old for nw (either may be nil).
func (t *table) replace(old, nw *ent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old != nil {
		switch {
		case old.remote.IsValid():
			removeFrom(t.connected, tuple{old.local, old.remote}, old)
		case old.wildcard():
			removeFrom(t.wild, old.local.Port(), old)
		default:
			removeFrom(t.bound, old.local, old)
		}
		removeFrom(t.byPort, old.local.Port(), old)
	}
	if nw != nil {
		switch {
		case nw.remote.IsValid():
			addTo(t.connected, tuple{nw.local, nw.remote}, nw)
		case nw.wildcard():
			addTo(t.wild, nw.local.Port(), nw)
		default:
			addTo(t.bound, nw.local, nw)
		}
		addTo(t.byPort, nw.local.Port(), nw)
	}
}

// flowHash spreads unicast datagrams over a SO_REUSEPORT group: one flow
// (4-tuple) always reaches the same socket while the group is unchanged.
func (p *Protocol) flowHash(src, dst netip.AddrPort) uint64 {
	var b [36]byte
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(b[0:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[32:], src.Port())
	binary.BigEndian.PutUint16(b[34:], dst.Port())
	return maphash.Bytes(p.seed, b[:])
}

// lookup finds the socket for a unicast datagram from src to dst arriving
// on the NIC with index nic (Linux's udp4_lib_lookup2 order: a connected
// socket of the exact 4-tuple, then a socket bound to the destination
// address, then one bound to the wildcard). Within a step a socket bound
// to the arrival device beats an unbound one and, for IPv4, an AF_INET
// socket beats a dual-stack one.
func (p *Protocol) lookup(src, dst netip.AddrPort, nic int) *ent {
	v6 := dst.Addr().Is6()
	p.tab.mu.RLock()
	c := p.tab.connected[tuple{dst, src}]
	b := p.tab.bound[dst]
	w := p.tab.wild[dst.Port()]
	p.tab.mu.RUnlock()
	for _, l := range [][]*ent{c, b, w} {
		if e := p.pick(l, src, dst, nic, v6); e != nil {
			return e
		}
	}
	return nil
}

// pick chooses among the candidates of one lookup step.
func (p *Protocol) pick(l []*ent, src, dst netip.AddrPort, nic int, v6 bool) *ent {
	var best *ent
	bestScore := -1
	var group []*ent // the best score's SO_REUSEPORT members
	for _, e := range l {
		if !e.accepts(v6) {
			continue
		}
		score := 0
		switch d := e.ep.boundDevice(); {
		case d == nic:
			score += 2
		case d != 0:
			continue // bound to another device
		}
		if e.inet && !v6 {
			score++
		}
		switch {
		case score > bestScore:
			best, bestScore = e, score
			group = append(group[:0], e)
		case score == bestScore:
			if e.seq > best.seq {
				best = e
			}
			group = append(group, e)
		}
	}
	if best == nil || !best.reuse {
		return best
	}
	// SO_REUSEPORT: spread over the members that share best's owner.
	members := group[:0]
	for _, e := range group {
		if e.reuse && e.uid == best.uid {
			members = append(members, e)
		}
	}
	if len(members) < 2 {
		return best
	}
	slices.SortFunc(members, func(a, b *ent) int { return cmp.Compare(a.seq, b.seq) })
	return members[p.flowHash(src, dst)%uint64(len(members))]
}

// HandlePacket receives one UDP datagram (stack.TransportHandler). It
// returns false when no socket wants a unicast datagram, and the stack
// answers with port unreachable (RFC 1122 §4.1.3.1).
func (p *Protocol) HandlePacket(pi *stack.PacketInfo, payload []byte) bool {
	v6 := pi.Dst.Is6()
	c := p.stats.of(v6)
	u, err := wire.ParseUDP(payload)
	if err != nil {
		c.InErrors.Add(1) // a short or inconsistent header: dropped silently
		return true
	}
	// RFC 768: a zero checksum means none was computed, allowed over
	// IPv4; over IPv6 the checksum is mandatory and a zero one is
	// discarded (RFC 8200 §8.1). Linux counts both cases as checksum
	// errors, before looking for a socket (no ICMP for a bad datagram).
	if !u.ChecksumValid(pi.Src, pi.Dst) {
		c.InCsumErrors.Add(1)
		c.InErrors.Add(1)
		return true
	}
	src := netip.AddrPortFrom(pi.Src.Unmap(), u.SrcPort())
	dst := netip.AddrPortFrom(pi.Dst.Unmap(), u.DstPort())
	nic := 0
	if pi.NIC != nil {
		nic = pi.NIC.Index()
	}
	if pi.Broadcast || pi.Dst.IsMulticast() {
		return p.deliverMulti(pi, u, src, dst, nic, c)
	}
	e := p.lookup(src, dst, nic)
	if e == nil {
		c.NoPorts.Add(1)
		return false
	}
	e.ep.deliver(pi, u, src, c)
	return true
}

// deliverMulti hands a multicast or broadcast datagram to every socket
// that wants it (Linux __udp4_lib_mcast_deliver, __udp_is_mcast_sock):
// bound to the port and to the wildcard or the destination address,
// connected (if at all) to the sender, bound (if at all) to the arrival
// device, and for multicast either a member of the group on that NIC or
// with IP_MULTICAST_ALL on.
func (p *Protocol) deliverMulti(pi *stack.PacketInfo, u wire.UDP, src, dst netip.AddrPort, nic int, c *Counters) bool {
	v6 := dst.Addr().Is6()
	p.tab.mu.RLock()
	l := p.tab.byPort[dst.Port()]
	p.tab.mu.RUnlock()
	n := 0
	for _, e := range l {
		if !e.accepts(v6) || (!e.wildcard() && e.local.Addr() != dst.Addr()) {
			continue
		}
		if e.remote.IsValid() && e.remote != src {
			continue
		}
		if d := e.ep.boundDevice(); d != 0 && d != nic {
			continue
		}
		if dst.Addr().IsMulticast() && !e.ep.wantsGroup(dst.Addr(), nic) {
			continue
		}
		e.ep.deliver(pi, u, src, c)
		n++
	}
	if n == 0 {
		c.IgnoredMulti.Add(1)
		return false
	}
	return true
}

// HandleError delivers an ICMP error quoting a datagram we sent to the
// socket that sent it (stack.TransportHandler): the quoted header names
// its local and remote address and port, looked up as a datagram from
// the remote would be (Linux __udp4_lib_err).
func (p *Protocol) HandleError(ie *stack.ICMPError) {
	if len(ie.Payload) < wire.UDPHeaderLen {
		return
	}
	sport := binary.BigEndian.Uint16(ie.Payload[0:2])
	dport := binary.BigEndian.Uint16(ie.Payload[2:4])
	local := netip.AddrPortFrom(ie.Src.Unmap(), sport)
	remote := netip.AddrPortFrom(ie.Dst.Unmap(), dport)
	nic := 0
	if ie.NIC != nil {
		nic = ie.NIC.Index()
	}
	e := p.lookup(remote, local, nic)
	if e == nil {
		return
	}
	errno, hard, ok := convertICMP(ie)
	if !ok {
		return
	}
	e.ep.icmpError(ie, errno, hard, remote)
}

// convertICMP maps an ICMP error to the errno a socket sees and whether
// it is a hard error: Linux's icmp_err_convert / icmpv6_err_convert
// (ICMPError.Errno) as __udp4_lib_err and __udp6_lib_err apply them —
// fragmentation needed and packet too big are hard (the caller drops them
// under IP_PMTUDISC_DONT). ok is false for what a UDP socket ignores:
// source quench, redirects and Destination Unreachable codes past 15.
func convertICMP(ie *stack.ICMPError) (errno syscall.Errno, hard, ok bool) {
	if !ie.IsIPv6() {
		switch ie.Type {
		case wire.ICMPv4DestUnreachable:
			if ie.Code > 15 {
				return 0, false, false
			}
		case wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem:
		default:
			return 0, false, false
		}
	}
	errno, hard = ie.Errno()
	if errno == syscall.EMSGSIZE {
		hard = true
	}
	return errno, hard, true
}
