package stack

import (
	"net/netip"
	"slices"
	"syscall"

	"github.com/stackbox/stackbox/pkg/wire"
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
	// Quoted is the whole quote from the invoking packet's IP header on
	// (what an IP_HDRINCL raw socket reads from its error queue).
	Quoted []byte
}

// Errno converts the error as Linux's icmp_err_convert and
// icmpv6_err_convert do: the errno a socket sees and whether the error is
// hard (fatal: a connected socket reports it even without IP_RECVERR).
// Fragmentation needed and Packet Too Big give EMSGSIZE, not fatal here;
// sockets decide by their IP_MTU_DISCOVER setting.
func (e *ICMPError) Errno() (errno syscall.Errno, fatal bool) {
	if e.IsIPv6() {
		switch e.Type {
		case wire.ICMPv6DstUnreachable:
			if int(e.Code) < len(unreach6) {
				u := unreach6[e.Code]
				return u.errno, u.fatal
			}
			return syscall.EPROTO, true
		case wire.ICMPv6PacketTooBig:
			return syscall.EMSGSIZE, false
		case wire.ICMPv6ParamProblem:
			return syscall.EPROTO, true
		case wire.ICMPv6TimeExceeded:
			return syscall.EHOSTUNREACH, false
		}
		return syscall.EPROTO, false
	}
	switch e.Type {
	case wire.ICMPv4ParamProblem:
		return syscall.EPROTO, true
	case wire.ICMPv4SourceQuench, wire.ICMPv4Redirect:
		return syscall.EREMOTEIO, false // ping.c: "not a real error but ping wants to see it"
	case wire.ICMPv4DestUnreachable:
		if int(e.Code) < len(unreach4) {
			u := unreach4[e.Code]
			return u.errno, u.fatal
		}
	}
	return syscall.EHOSTUNREACH, false // time exceeded and the rest
}

type errConv struct {
	errno syscall.Errno
	fatal bool
}

// unreach4 is Linux's icmp_err_convert, by Destination Unreachable code.
var unreach4 = [...]errConv{
	{syscall.ENETUNREACH, false},  // net unreachable
	{syscall.EHOSTUNREACH, false}, // host unreachable
	{syscall.ENOPROTOOPT, true},   // protocol unreachable
	{syscall.ECONNREFUSED, true},  // port unreachable
	{syscall.EMSGSIZE, false},     // fragmentation needed
	{syscall.EOPNOTSUPP, false},   // source route failed
	{syscall.ENETUNREACH, true},   // net unknown
	{syscall.EHOSTDOWN, true},     // host unknown
	{syscall.ENONET, true},        // source host isolated
	{syscall.ENETUNREACH, true},   // net prohibited
	{syscall.EHOSTUNREACH, true},  // host prohibited
	{syscall.ENETUNREACH, false},  // net unreachable for TOS
	{syscall.EHOSTUNREACH, false}, // host unreachable for TOS
	{syscall.EHOSTUNREACH, true},  // communication prohibited
	{syscall.EHOSTUNREACH, true},  // host precedence violation
	{syscall.EHOSTUNREACH, true},  // precedence cutoff
}

// unreach6 is Linux's tab_unreach of icmpv6_err_convert.
var unreach6 = [...]errConv{
	{syscall.ENETUNREACH, false},  // no route
	{syscall.EACCES, true},        // administratively prohibited
	{syscall.EHOSTUNREACH, false}, // beyond scope
	{syscall.EHOSTUNREACH, false}, // address unreachable
	{syscall.ECONNREFUSED, true},  // port unreachable
	{syscall.EACCES, true},        // source address failed policy
	{syscall.EACCES, true},        // reject route
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

// ErrorHandler receives ICMP errors quoting a packet of one protocol, for
// sockets that are not a registered transport: raw sockets (Linux's
// raw_icmp_error) and ping sockets (ping_err, for quoted ICMP echo
// requests). It runs on the receiving goroutine and may keep views of e's
// slices but must not modify them.
type ErrorHandler func(e *ICMPError)

// rawEntry is a raw handler (h) or an error handler (eh).
type rawEntry struct {
	ipv6  bool
	proto uint8
	h     RawHandler
	eh    ErrorHandler
}

// AddRawHandler registers a raw handler for one family and protocol and
// returns the function that removes it. Raw handlers see packets before
// the transport handler and in addition to it; ICMP and ICMPv6 included
// (after the stack has answered echo requests itself).
func (s *Stack) AddRawHandler(ipv6 bool, proto uint8, h RawHandler) (remove func()) {
	return s.addRawEntry(&rawEntry{ipv6: ipv6, proto: proto, h: h})
}

// AddErrorHandler registers h for the ICMP (ipv6 false) or ICMPv6 errors
// whose quoted packet is of protocol proto, in addition to that
// protocol's transport, and returns the function that removes it.
// Registering one never makes the stack answer packets of proto with
// protocol or port unreachable.
func (s *Stack) AddErrorHandler(ipv6 bool, proto uint8, h ErrorHandler) (remove func()) {
	return s.addRawEntry(&rawEntry{ipv6: ipv6, proto: proto, eh: h})
}

func (s *Stack) addRawEntry(e *rawEntry) (remove func()) {
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
		if e.h != nil && e.ipv6 == v6 && e.proto == pi.Proto {
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

// deliverError hands an ICMP error to the transport of the quoted packet
// and to the error handlers of its protocol.
func (s *Stack) deliverError(e *ICMPError) {
	if slot := s.transports[e.Proto].Load(); slot != nil {
		slot.h.HandleError(e)
	}
	s.rawMu.RLock()
	list := s.raw
	s.rawMu.RUnlock()
	v6 := e.IsIPv6()
	for _, r := range list {
		if r.eh != nil && r.ipv6 == v6 && r.proto == e.Proto {
			r.eh(e)
		}
	}
}

// CountICMPv4Out counts an ICMP message of type t that a socket sends, in
// OutMsgs and the type's counter, as Linux's __ip_make_skb does for every
// ICMP packet a socket builds (WritePacket does not look inside IPv4
// payloads; ICMPv6 is counted by WritePacket itself).
func (s *Stack) CountICMPv4Out(t uint8) { s.countICMPOut(t) }
