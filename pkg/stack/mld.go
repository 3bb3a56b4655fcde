package stack

import "net/netip"

type mldState struct{}

func (n *NIC) mldJoined(g netip.Addr) {}
func (n *NIC) mldLeft(g netip.Addr)   {}
func (n *NIC) closeMLD()              {}
