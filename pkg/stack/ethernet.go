package stack

import (
	"github.com/stackbox/stackbox/pkg/wire"
)

// PacketType classifies a received frame by its destination, as Linux's
// skb->pkt_type does.
type PacketType uint8

const (
	PacketHost      PacketType = iota // unicast to us
	PacketBroadcast                   // link-layer broadcast
	PacketMulticast                   // link-layer multicast
	PacketOtherHost                   // unicast to someone else (promiscuous mode)
)

// DeliverFrame is the NIC's link.Dispatcher: it takes one received
// Ethernet frame, which the stack owns from then on, demultiplexes
// 802.1Q-tagged frames to the VLAN sub-interface, filters by destination
// and hands the payload to ARP, IPv4 or IPv6.
func (n *NIC) DeliverFrame(frame []byte) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		n.stats.RxErrors.Add(1)
		return
	}
	target := n
	switch eth.TagCount() {
	case 0:
	case 1:
		n.mu.RLock()
		target = n.vlans[eth.VLANID(0)]
		n.mu.RUnlock()
		if target == nil {
			// Linux counts frames for a VLAN nobody configured as
			// dropped on the parent.
			n.stats.RxPackets.Add(1)
			n.stats.RxBytes.Add(uint64(len(frame)))
			n.stats.RxDropped.Add(1)
			return
		}
	default: // QinQ: no stacked sub-interfaces
		n.stats.RxPackets.Add(1)
		n.stats.RxBytes.Add(uint64(len(frame)))
		n.stats.RxDropped.Add(1)
		return
	}
	if target != n {
		// The parent sees the tagged frame too, as in Linux.
		n.stats.RxPackets.Add(1)
		n.stats.RxBytes.Add(uint64(len(frame)))
	}
	target.receive(eth)
}

func (n *NIC) receive(eth wire.Ethernet) {
	n.stats.RxPackets.Add(1)
	n.stats.RxBytes.Add(uint64(len(eth)))
	dst := eth.Dst()
	n.mu.RLock()
	up, mac, promisc, allmulti := n.up, n.mac, n.promisc, n.allmulti
	var joined bool
	if dst.IsMulticast() && !dst.IsBroadcast() {
		joined = n.groupMACs[dst] > 0
	}
	n.mu.RUnlock()
	if !up {
		n.stats.RxDropped.Add(1)
		return
	}
	var pt PacketType
	switch {
	case n.loopback || dst == mac:
		pt = PacketHost
	case dst.IsBroadcast():
		pt = PacketBroadcast
	case dst.IsMulticast():
		if !joined && !allmulti && !promisc {
			return // filtered, as a NIC's multicast filter would
		}
		pt = PacketMulticast
		n.stats.RxMulticast.Add(1)
	default:
		if !promisc {
			return
		}
		pt = PacketOtherHost
	}
	payload := eth.Payload()
	switch eth.EtherType() {
	case wire.EtherTypeARP:
		n.handleARP(payload, pt)
	case wire.EtherTypeIPv4:
		n.s.handleIPv4(n, payload, pt)
	case wire.EtherTypeIPv6:
		n.s.handleIPv6(n, payload, pt)
	default:
		n.stats.RxUnknownProto.Add(1)
	}
}

// writeFrame prepends the Ethernet header (with this NIC's VLAN tag) to
// pkt and sends it. It owns pkt.
func (n *NIC) writeFrame(dst wire.MAC, etherType uint16, pkt *Packet) error {
	n.mu.RLock()
	up, src := n.up, n.mac
	n.mu.RUnlock()
	if !up {
		n.stats.TxDropped.Add(1)
		return ErrNICDown
	}
	f := wire.EthernetFields{Dst: dst, Src: src, EtherType: etherType}
	if n.parent != nil {
		f.Tags[0] = wire.VLANTag{VID: n.vlan}
		f.NumTags = 1
	}
	if n.loopback {
		f.Dst, f.Src = wire.MAC{}, wire.MAC{}
	}
	f.Encode(pkt.Prepend(f.Len()))
	frame := pkt.Bytes()
	if b := pkt.batch; b != nil {
		pkt.batch = nil
		b.add(n, frame)
		return nil
	}
	if _, err := n.ep.WritePackets([][]byte{frame}); err != nil {
		n.stats.TxErrors.Add(1)
		return err
	}
	n.stats.TxPackets.Add(1)
	n.stats.TxBytes.Add(uint64(len(frame)))
	return nil
}
