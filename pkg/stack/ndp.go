package stack

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/wire"
)

type ndpState struct{}

func (n *NIC) sendNeighborSolicit(target netip.Addr, unicastTo wire.MAC, prompt *Packet, has bool) {}
func (n *NIC) addressAdded6(a Address, up bool)                                                    {}
func (n *NIC) addressRemoved6(a Address)                                                           {}
func (n *NIC) linkUp6(addrs []Address)                                                             {}
func (n *NIC) linkDown6()                                                                          {}
func (n *NIC) closeNDP()                                                                           {}

// handleNDP processes a received NDP message (RS 133, RA 134, NS 135,
// NA 136, redirect 137); msg is the whole ICMPv6 message, checksum
// verified by the caller, and pi.TTL the hop limit (RFC 4861 requires 255;
// the NDP code checks it).
func (s *Stack) handleNDP(pi *PacketInfo, msg []byte) {}
