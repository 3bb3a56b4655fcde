package stack

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/wire"
)

// arpNeighbors and ndpNeighbors connect a NIC's neighbour caches to its
// ARP and NDP code: the cache asks for solicitations and hands back the
// packets that waited for an address.
type arpNeighbors struct{ n *NIC }
type ndpNeighbors struct{ n *NIC }

func (h arpNeighbors) SendSolicit(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {
	h.n.sendARPRequest(target, unicastTo, prompt, has)
}

func (h arpNeighbors) Resolved(_ netip.Addr, mac wire.MAC, pending []*Packet) {
	for _, p := range pending {
		h.n.writeFrame(mac, wire.EtherTypeIPv4, p)
	}
}

// Unreachable answers each packet that waited with ICMP host unreachable
// (RFC 1122 §2.3.2.2), as Linux does from arp_error_report.
func (h arpNeighbors) Unreachable(_ netip.Addr, pending []*Packet) {
	for _, p := range pending {
		h.n.s.stats.IP.OutDiscards.Add(1)
		h.n.s.icmpv4HostUnreachable(h.n, p.Bytes())
	}
}

func (arpNeighbors) PacketSize(p *Packet) int { return p.Len() }

// CopyPrompt gives SendSolicit its own copy of the prompting packet: the
// queued one may be having its Ethernet header prepended by a concurrent
// Resolved (neighbor.PromptCopier).
func (arpNeighbors) CopyPrompt(p *Packet) *Packet { return p.Clone() }

func (h ndpNeighbors) SendSolicit(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {
	h.n.sendNeighborSolicit(target, unicastTo, prompt, has)
}

func (h ndpNeighbors) Resolved(_ netip.Addr, mac wire.MAC, pending []*Packet) {
	for _, p := range pending {
		h.n.writeFrame(mac, wire.EtherTypeIPv6, p)
	}
}

// Unreachable answers each packet that waited with ICMPv6 address
// unreachable (RFC 4861 §7.2.2).
func (h ndpNeighbors) Unreachable(_ netip.Addr, pending []*Packet) {
	for _, p := range pending {
		h.n.s.icmpv6AddressUnreachable(h.n, p.Bytes())
	}
}

func (ndpNeighbors) PacketSize(p *Packet) int { return p.Len() }

// CopyPrompt: see arpNeighbors.CopyPrompt.
func (ndpNeighbors) CopyPrompt(p *Packet) *Packet { return p.Clone() }

// sendIPv4 sends an IPv4 packet (header included) to the next hop on this
// NIC: broadcast and multicast map to their MAC, unicast goes through ARP
// (the packet waits in the cache while the address is resolved).
func (n *NIC) sendIPv4(nextHop netip.Addr, pkt *Packet) error {
	var mac wire.MAC
	switch {
	case n.loopback:
	case nextHop == broadcast4 || n.directedBroadcast(nextHop):
		mac = wire.BroadcastMAC
	case nextHop.IsMulticast():
		mac = wire.IPv4MulticastMAC(nextHop)
	default:
		// A packet the cache keeps may leave on another goroutine,
		// without this one's batch.
		b := pkt.batch
		pkt.batch = nil
		m, ok := n.arp.Resolve(nextHop, pkt)
		if !ok {
			return nil // queued, or dropped and counted by the cache
		}
		pkt.batch = b
		mac = m
	}
	return n.writeFrame(mac, wire.EtherTypeIPv4, pkt)
}

// sendIPv6 sends an IPv6 packet to the next hop on this NIC, through NDP
// for unicast next hops.
func (n *NIC) sendIPv6(nextHop netip.Addr, pkt *Packet) error {
	var mac wire.MAC
	switch {
	case n.loopback:
	case nextHop.IsMulticast():
		mac = wire.IPv6MulticastMAC(nextHop)
	default:
		b := pkt.batch // as in sendIPv4
		pkt.batch = nil
		m, ok := n.ndp.Resolve(nextHop, pkt)
		if !ok {
			return nil
		}
		pkt.batch = b
		mac = m
	}
	return n.writeFrame(mac, wire.EtherTypeIPv6, pkt)
}
