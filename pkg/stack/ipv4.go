package stack

import "github.com/stackbox/stackbox/pkg/stack/fragment"

func (s *Stack) handleIPv4(n *NIC, pkt []byte, pt PacketType) {}

func (s *Stack) writeIPv4(r *Route, pkt *Packet, o WriteOptions) error { return nil }

func (s *Stack) reassemblyTimeout4(e fragment.Expired) {}
