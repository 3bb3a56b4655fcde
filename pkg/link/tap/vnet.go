package tap

import (
	"encoding/binary"
	"errors"

	"github.com/stackbox/stackbox/pkg/wire"
)

// The virtio-net header (virtio 1.x §5.1.6 "struct virtio_net_hdr", Linux
// include/uapi/linux/virtio_net.h) that a tap opened with IFF_VNET_HDR puts
// in front of every frame, both ways. Without TUNSETVNETLE/BE it is in the
// host's byte order (legacy virtio). We use the 10-byte form (no
// num_buffers), the tun driver's default TUNSETVNETHDRSZ.
const vnetHdrLen = 10

// Header flags and GSO types.
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum partial, from CsumStart
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the kernel verified it

	vnetGSONone  = 0
	vnetGSOTCPv4 = 1
	vnetGSOUDP   = 3
	vnetGSOTCPv6 = 4
	vnetGSOUDPL4 = 5
	vnetGSOECN   = 0x80 // with a TCP type: the aggregate's first segment carries CWR
)

// vnetHdr is a parsed virtio-net header.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

var (
	errVnetShort = errors.New("frame shorter than its virtio-net header")
	errVnetCsum  = errors.New("virtio-net checksum offsets outside the frame")
	errVnetGSO   = errors.New("virtio-net GSO type we did not enable")
)

func parseVnetHdr(b []byte) (vnetHdr, error) {
	if len(b) < vnetHdrLen {
		return vnetHdr{}, errVnetShort
	}
	e := binary.NativeEndian
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     e.Uint16(b[2:]),
		gsoSize:    e.Uint16(b[4:]),
		csumStart:  e.Uint16(b[6:]),
		csumOffset: e.Uint16(b[8:]),
	}, nil
}

// finishRx makes frame (the Ethernet frame after the header h) an ordinary
// one the stack can check: a partial checksum is completed as the kernel's
// skb_checksum_help does — the field holds the pseudo-header sum, so the
// sum from CsumStart to the end, field included, is the checksum. A TCP
// aggregate (GSO TCPv4/TCPv6, up to 64 KiB) stays whole: its IP header
// already covers all of it, and TCP takes segments longer than the MSS.
// Only the GSO types TUNSETOFFLOAD enabled are accepted.
func finishRx(h vnetHdr, frame []byte) error {
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSONone, vnetGSOTCPv4, vnetGSOTCPv6:
	default:
		return errVnetGSO
	}
	if h.flags&vnetFlagNeedsCsum == 0 {
		return nil
	}
	start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if start < 14 || at+2 > len(frame) || h.csumOffset%2 != 0 {
		return errVnetCsum
	}
	sum := ^wire.Checksum(frame[start:], 0)
	if sum == 0 {
		sum = 0xffff // as the kernel does (CSUM_MANGLED_0): 0 means "none" to UDP
	}
	binary.BigEndian.PutUint16(frame[at:], sum)
	return nil
}
