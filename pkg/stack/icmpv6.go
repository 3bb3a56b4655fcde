package stack

func (s *Stack) icmpv6AddressUnreachable(n *NIC, ipPacket []byte) {}
