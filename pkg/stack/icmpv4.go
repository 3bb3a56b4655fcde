package stack

// icmpv4HostUnreachable answers an IPv4 packet that could not be
// delivered to its next hop.
func (s *Stack) icmpv4HostUnreachable(n *NIC, ipPacket []byte) {}
