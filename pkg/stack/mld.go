package stack

import "net/netip"

type mldState struct{}

func (n *NIC) mldJoined(g netip.Addr) {}
func (n *NIC) mldLeft(g netip.Addr)   {}
func (n *NIC) closeMLD()              {}

// handleMLD processes a received MLD message (query 130, report 131,
// done 132, MLDv2 report 143); msg is the whole ICMPv6 message, checksum
// verified by the caller.
func (s *Stack) handleMLD(pi *PacketInfo, msg []byte) {}
