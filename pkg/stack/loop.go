package stack

import (
	"sync"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Multicast and broadcast loopback: the copy of an outgoing datagram that
// the sending host delivers to its own sockets (RFC 1112 §6.1: a host
// delivers a multicast datagram it sends to its own members of the group
// unless IP_MULTICAST_LOOP is off; RFC 3493 §5.2 says the same of
// IPV6_MULTICAST_LOOP). Linux's ip_mc_output / ip6_finish_output2 loop a
// copy back with dev_loopback_xmit when the socket asks (the default) and
// the outgoing device has joined the group, and always loop broadcasts
// (RTCF_BROADCAST), to 255.255.255.255 and to a subnet's broadcast address.
//
// The looped copy arrives as if received on the outgoing NIC (IP_PKTINFO
// names that interface, as on Linux). It is delivered from a goroutine of
// its own, never on the writer's: the writer may hold locks (a socket's,
// the stack's multicast state) that delivery to a socket would take again.
// The queue is bounded like the loopback link's (netdev_max_backlog); a
// copy that does not fit is dropped and counted in the IP InDiscards.
//
// Lock: loopQueue.mu is a leaf, held only to queue and dequeue.

// loopQueueLen bounds the looped copies waiting for delivery.
const loopQueueLen = 1000

type loopQueue struct {
	mu      sync.Mutex
	pending []loopedPacket
	running bool // a drain goroutine is at work
}

type loopedPacket struct {
	nic *NIC
	pkt []byte // the whole datagram, IP header first (our own copy)
	pt  PacketType
}

// loop4 decides whether the IPv4 datagram pkt (header encoded, not yet
// fragmented) being sent on r is also delivered locally, and queues a copy
// if so.
func (s *Stack) loop4(r *Route, o WriteOptions, pkt []byte) {
	n := r.NIC
	if n == nil || n.loopback || r.Kind == RouteLocal {
		return // lo delivers everything it sends anyway
	}
	switch {
	case r.Dst == broadcast4 || r.Kind == RouteBroadcast || n.directedBroadcast(r.Dst):
		s.queueLoop(n, pkt, PacketBroadcast)
	case r.Dst.IsMulticast() && o.Loop && n.InGroup(r.Dst):
		s.queueLoop(n, pkt, PacketMulticast)
	}
}

// loopsBack6 reports whether an IPv6 datagram sent on r with o is also
// delivered locally: multicast to a group the NIC joined, with Loop (IPv6
// has no broadcast).
func (s *Stack) loopsBack6(r *Route, o WriteOptions) bool {
	n := r.NIC
	return n != nil && !n.loopback && r.Kind != RouteLocal && o.Loop && r.Dst.IsMulticast() && n.InGroup(r.Dst)
}

// loop6 queues a copy of the IPv6 datagram pkt (header encoded, not
// fragmented) for local delivery when loopsBack6 says so.
func (s *Stack) loop6(r *Route, o WriteOptions, pkt []byte) {
	if s.loopsBack6(r, o) {
		s.queueLoop(r.NIC, pkt, PacketMulticast)
	}
}

// queueLoop copies pkt and queues it for local delivery on n.
func (s *Stack) queueLoop(n *NIC, pkt []byte, pt PacketType) {
	q := &s.loop
	q.mu.Lock()
	if len(q.pending) >= loopQueueLen {
		q.mu.Unlock()
		if pkt[0]>>4 == 4 {
			s.stats.IP.InDiscards.Add(1)
		} else {
			s.stats.IP6.InDiscards.Add(1)
		}
		return
	}
	q.pending = append(q.pending, loopedPacket{nic: n, pkt: append([]byte(nil), pkt...), pt: pt})
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go s.drainLoop()
	}
}

// drainLoop delivers the queued copies until none is left, then ends (no
// goroutine lingers between bursts, so nothing needs stopping on Close).
func (s *Stack) drainLoop() {
	q := &s.loop
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			q.pending = nil
			q.mu.Unlock()
			return
		}
		p := q.pending[0]
		q.pending[0] = loopedPacket{}
		q.pending = q.pending[1:]
		q.mu.Unlock()
		s.deliverLooped(p)
	}
}

// deliverLooped hands a looped datagram to the local protocols as if it had
// arrived on p.nic. The checks of the input path that guard against other
// hosts (martian sources: the source is our own address here) do not
// apply, as Linux's loopback skips them; the datagram is whole, so there is
// nothing to reassemble.
func (s *Stack) deliverLooped(p loopedPacket) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed || !p.nic.IsUp() {
		return
	}
	if p.pkt[0]>>4 == 4 {
		h, err := wire.ParseIPv4(p.pkt)
		if err != nil {
			return
		}
		s.stats.IP.InReceives.Add(1)
		s.deliverIPv4(p.nic, p.pt, h, p.pt == PacketBroadcast)
		return
	}
	h, err := wire.ParseIPv6(p.pkt)
	if err != nil {
		return
	}
	st := &s.stats.IP6
	st.InReceives.Add(1)
	st.InOctets.Add(uint64(len(h)))
	st.InMcastPkts.Add(1)
	st.InMcastOctets.Add(uint64(len(h)))
	s.receiveLocal6(p.nic, h, p.pt, false, wire.IPv6HeaderLen, 6, h.NextHeader(), false)
}
