package wire

import (
	"encoding/binary"
	"net/netip"
)

// TCP segmentation of an aggregate: the software counterpart of TCP
// segmentation offload, as Linux's skb_gso_segment (tcp_gso_segment,
// inet_gso_segment, ipv6_gso_segment) does it for a GSO packet it must
// forward or send on a link that cannot segment.

// SplitTCP cuts pkt, an IPv4 or IPv6 packet (the first nibble decides)
// carrying one TCP segment, into segments of at most maxPayload bytes of
// TCP payload each, and returns them as new packets; pkt is not modified.
//
// Every segment gets a copy of the IP header and of the TCP header,
// options included. The sequence number advances by the payload before
// it. FIN and PSH stay only on the last segment and CWR only on the
// first (RFC 3168 §6.1.2: CWR marks one reduction), as tcp_gso_segment
// does. IPv4 segments get their own total length, the original ID plus
// the segment's index (as Linux TSO numbers them) and a new header
// checksum; IPv6 segments their own payload length. The TCP checksum is
// recomputed over each segment and its pseudo-header.
//
// IPv4 options are copied to every segment. An IPv6 packet must carry TCP
// right after the fixed header: extension headers are ErrUnsupported.
// A fragment, another protocol, a SYN, RST or URG segment that needs
// cutting (GRO and TSO aggregate plain data only), and a maxPayload below
// 1 are errors too. So are a bad IPv4 header checksum and a bad TCP
// checksum: a router that re-segments must not give corrupted data valid
// checksums (RFC 9293 §3.1: the checksum is end to end).
//
// A packet whose payload already fits is returned as one copy.
func SplitTCP(pkt []byte, maxPayload int) ([][]byte, error) {
	if len(pkt) < 1 {
		return nil, truncated("ip", "version", 1, 0)
	}
	var ipHdr, seg []byte
	var src, dst netip.Addr
	switch v := pkt[0] >> 4; v {
	case 4:
		h, err := ParseIPv4(pkt)
		if err != nil {
			return nil, err
		}
		switch {
		case h.IsFragment():
			return nil, newError(ErrUnsupported, "ipv4", "fragment offset", "a fragment cannot be segmented")
		case h.Protocol() != IPProtoTCP:
			return nil, newError(ErrUnsupported, "ipv4", "protocol", "%d is not TCP", h.Protocol())
		case !h.ChecksumValid():
			return nil, newError(ErrMalformed, "ipv4", "checksum", "header checksum %#04x does not verify", h.Checksum())
		}
		ipHdr, seg, src, dst = h.Header(), h.Payload(), h.Src(), h.Dst()
	case 6:
		h, err := ParseIPv6(pkt)
		if err != nil {
			return nil, err
		}
		if h.NextHeader() != IPProtoTCP {
			return nil, newError(ErrUnsupported, "ipv6", "next header", "%d is not TCP", h.NextHeader())
		}
		ipHdr, seg, src, dst = h.Header(), h.Payload(), h.Src(), h.Dst()
	default:
		return nil, newError(ErrMalformed, "ip", "version", "%d, want 4 or 6", v)
	}
	t, err := ParseTCP(seg)
	if err != nil {
		return nil, err
	}
	if maxPayload < 1 {
		return nil, newError(ErrMalformed, "tcp", "segment size", "%d bytes of payload per segment, need at least 1", maxPayload)
	}
	if !t.ChecksumValid(src, dst) {
		return nil, newError(ErrMalformed, "tcp", "checksum", "%#04x does not verify", t.Checksum())
	}
	payload := t.Payload()
	n := max(1, (len(payload)+maxPayload-1)/maxPayload)
	if flags := t.Flags(); n > 1 && flags&(TCPFlagSYN|TCPFlagRST|TCPFlagURG) != 0 {
		return nil, newError(ErrUnsupported, "tcp", "flags", "%v segment cannot be segmented", flags)
	}

	iphl, thl := len(ipHdr), t.HeaderLen()
	hdrs := iphl + thl
	buf := make([]byte, n*hdrs+len(payload)) // one allocation for all
	out := make([][]byte, n)
	seq, flags, v6 := t.Seq(), t.Flags(), pkt[0]>>4 == 6
	var id uint16
	if !v6 {
		id = IPv4(pkt).ID()
	}
	for i := range n {
		data := payload[min(i*maxPayload, len(payload)):min((i+1)*maxPayload, len(payload))]
		b := buf[: hdrs+len(data) : hdrs+len(data)]
		buf = buf[len(b):]
		copy(b, ipHdr)
		copy(b[iphl:], t[:thl])
		copy(b[hdrs:], data)

		th := b[iphl:]
		f := flags
		if i > 0 {
			f &^= TCPFlagCWR
		}
		if i < n-1 {
			f &^= TCPFlagFIN | TCPFlagPSH
		}
		binary.BigEndian.PutUint32(th[4:], seq+uint32(i*maxPayload))
		binary.BigEndian.PutUint16(th[12:], binary.BigEndian.Uint16(th[12:])&^tcpFlagMask|uint16(f))
		th[16], th[17] = 0, 0
		binary.BigEndian.PutUint16(th[16:], ^tcpSum(th, src, dst))

		if v6 {
			binary.BigEndian.PutUint16(b[4:], uint16(len(th)))
		} else {
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			binary.BigEndian.PutUint16(b[4:], id+uint16(i))
			b[10], b[11] = 0, 0
			binary.BigEndian.PutUint16(b[10:], ^Checksum(b[:iphl], 0))
		}
		out[i] = b
	}
	return out, nil
}
