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
