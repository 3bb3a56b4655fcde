package stack

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/wire"
)

// arpState is a NIC's ARP state beyond the neighbour cache.
type arpState struct{}

// handleARP processes a received ARP packet.
func (n *NIC) handleARP(payload []byte, pt PacketType) {}

// sendARPRequest sends an ARP request for target (broadcast, or unicast
// to unicastTo when probing).
func (n *NIC) sendARPRequest(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {}

func (n *NIC) addressAdded4(a Address, up bool) {}
func (n *NIC) addressRemoved4(a Address)        {}
func (n *NIC) linkUp4(addrs []Address)          {}
func (n *NIC) linkDown4()                       {}
func (n *NIC) closeARP()                        {}
