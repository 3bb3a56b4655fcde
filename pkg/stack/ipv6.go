package stack

import "github.com/stackbox/stackbox/pkg/stack/fragment"

func (s *Stack) handleIPv6(n *NIC, pkt []byte, pt PacketType) {}

func (s *Stack) writeIPv6(r *Route, pkt *Packet, o WriteOptions) error { return nil }

func (s *Stack) reassemblyTimeout6(e fragment.Expired) {}
