package stack

import (
	"net/netip"
	"slices"
)

// PacketInfo describes a received packet to transport and raw handlers.
type PacketInfo struct {
	NIC      *NIC
	Src, Dst netip.Addr
	Proto    uint8
	// TTL is the IPv4 TTL or IPv6 hop limit as received.
	TTL uint8
	// TOS is the IPv4 TOS byte or IPv6 traffic class.
	TOS uint8
	// Type is the link-layer destination class.
	Type PacketType
	// Broadcast: Dst is an IPv4 broadcast address.
	Broadcast bool
	// Network holds the network header(s) as received: the IPv4 header
	// with options, or the IPv6 header and its extension headers; for a
	// reassembled datagram, the first fragment's headers.
	Network []byte
}

// ICMPError is an ICMP or ICMPv6 error about a packet we sent, delivered
// to the transport that sent it (for ECONNREFUSED, PMTU, traceroute).
type ICMPError struct {
	NIC *NIC
	// From is the node that sent the error.
	From       netip.Addr
	Type, Code uint8
	// MTU is the next-hop MTU of fragmentation needed / packet too big.
	MTU int
	// Pointer is a parameter problem's pointer.
	Pointer int
	// Src, Dst and Proto are from the quoted packet's header.
	Src, Dst netip.Addr
	Proto    uint8
	// Payload is the quoted transport header and whatever data followed
	// (at least 8 bytes for IPv4 errors, RFC 792).
	Payload []byte
}

// IsIPv6 reports whether the error is ICMPv6.
func (e *ICMPError) IsIPv6() bool { return e.Src.Is6() }

// TransportHandler is a transport protocol (UDP, TCP) as the stack sees
// it. Both methods run on the receiving goroutine; they may keep views of
// the slices they are given (the stack never modifies a received packet)
// but must not modify them.
type TransportHandler interface {
	// HandlePacket delivers a transport packet (checksum not yet
	// verified: that needs the pseudo-header, which pi has). It returns
	// false when no endpoint wants it, and the stack answers with ICMP
	// port unreachable (unless the packet was broadcast or multicast).
	HandlePacket(pi *PacketInfo, payload []byte) bool
	// HandleError delivers an ICMP error quoting one of its packets.
	HandleError(e *ICMPError)
}

type transportSlot struct{ h TransportHandler }

// RegisterTransport makes h the handler of IP protocol proto (IPv4 and
// IPv6 alike); nil removes it.
func (s *Stack) RegisterTransport(proto uint8, h TransportHandler) {
	if h == nil {
		s.transports[proto].Store(nil)
		return
	}
	s.transports[proto].Store(&transportSlot{h})
}

// RawHandler receives every packet of one protocol (a raw socket). For
// IPv4, packet starts with the IP header, as Linux raw sockets see it; for
// IPv6 it is the payload after the extension headers (RFC 3542 §3).
type RawHandler func(pi *PacketInfo, packet []byte)

type rawEntry struct {
	ipv6  bool
	proto uint8
	h     RawHandler
}

// AddRawHandler registers a raw handler for one family and protocol and
// returns the function that removes it. Raw handlers see packets before
// the transport handler and in addition to it; ICMP and ICMPv6 included
// (after the stack has answered echo requests itself).
func (s *Stack) AddRawHandler(ipv6 bool, proto uint8, h RawHandler) (remove func()) {
	e := &rawEntry{ipv6: ipv6, proto: proto, h: h}
	s.rawMu.Lock()
	s.raw = append(slices.Clip(s.raw), e)
	s.rawMu.Unlock()
	return func() {
		s.rawMu.Lock()
		defer s.rawMu.Unlock()
		if i := slices.Index(s.raw, e); i >= 0 {
			// A copy: deliverRaw ranges over the old slice without the
			// lock, and Delete shifts and zeroes in place.
			s.raw = slices.Delete(slices.Clone(s.raw), i, i+1)
		}
	}
}

// deliverRaw hands a packet to the raw handlers of its protocol and
// reports whether there was any.
func (s *Stack) deliverRaw(pi *PacketInfo, packet []byte) bool {
	s.rawMu.RLock()
	list := s.raw
	s.rawMu.RUnlock()
	found := false
	v6 := pi.Dst.Is6()
	for _, e := range list {
		if e.ipv6 == v6 && e.proto == pi.Proto {
			e.h(pi, packet)
			found = true
		}
	}
	return found
}

// deliverTransport hands a transport payload to its protocol's handler.
// It returns false if nobody took it (no handler, or the handler found no
// endpoint): the caller then sends protocol or port unreachable.
func (s *Stack) deliverTransport(pi *PacketInfo, payload []byte) (handled, knownProto bool) {
	slot := s.transports[pi.Proto].Load()
	if slot == nil {
		return false, false
	}
	return slot.h.HandlePacket(pi, payload), true
}

// deliverError hands an ICMP error to the transport of the quoted packet.
func (s *Stack) deliverError(e *ICMPError) {
	if slot := s.transports[e.Proto].Load(); slot != nil {
		slot.h.HandleError(e)
	}
}
