package stack

import "github.com/stackbox/stackbox/pkg/wire"

// splitAggregate returns the segments of pkt, an IPv4 or IPv6 packet that
// arrived on in, when it is a TCP GSO aggregate; else nil.
//
// A link with receive offload (a TAP with IFF_VNET_HDR and TUNSETOFFLOAD
// TSO4/TSO6) hands the stack TCP "super-segments" of up to 64 KiB that the
// sender's kernel never cut up. A packet for forwarding that is longer than
// the MTU of the link it came in on cannot have crossed that link as it is,
// so a TCP one is such an aggregate. "The link" is the endpoint's MTU,
// not the interface's: an interface MTU set lower (ifconfig mtu) limits
// what we send, not the frames the link carries in, and a full-sized
// segment arriving on it is no aggregate. Measured against the next hop whole, it
// would draw fragmentation needed or Packet Too Big that the sender, whose
// real segments fit, cannot act on. Linux instead re-segments GSO packets it
// forwards (skb_gso_segment) and checks each segment against the next hop
// (ip_forward's skb_gso_validate_network_len); so does this: the segments
// carry the largest payload the sender could have put in one frame on that
// link. A packet that does not split (not TCP, a fragment, extension
// headers, bad checksums) is left to the normal checks.
func splitAggregate(in *NIC, pkt []byte, ipHdrLen int, proto uint8) [][]byte {
	mtu := in.ep.MTU()
	if len(pkt) <= mtu || proto != wire.IPProtoTCP || len(pkt) < ipHdrLen {
		return nil
	}
	t, err := wire.ParseTCP(pkt[ipHdrLen:])
	if err != nil {
		return nil
	}
	segs, err := wire.SplitTCP(pkt, mtu-ipHdrLen-t.HeaderLen())
	if err != nil {
		return nil
	}
	return segs
}
