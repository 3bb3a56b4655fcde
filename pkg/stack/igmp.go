package stack

import "net/netip"

type igmpState struct{}

func (n *NIC) igmpJoined(g netip.Addr) {}
func (n *NIC) igmpLeft(g netip.Addr)   {}
func (n *NIC) closeIGMP()              {}
