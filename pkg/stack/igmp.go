package stack

import "net/netip"

type igmpState struct{}

func (n *NIC) igmpJoined(g netip.Addr) {}
func (n *NIC) igmpLeft(g netip.Addr)   {}
func (n *NIC) closeIGMP()              {}

// handleIGMP processes a received IGMP message (msg starts at the IGMP
// header; pi describes the IPv4 packet, whose checksum was verified).
func (s *Stack) handleIGMP(pi *PacketInfo, msg []byte) {}
