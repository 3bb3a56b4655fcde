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

// maxRun bounds the frames one aggregate takes (the kernel's tun driver
// takes any number of iovecs up to UIO_MAXIOV; 64 full segments are more
// than a 64 KiB IP packet holds at any MTU worth coalescing).
const maxRun = 64

// tcpRun is the start of a run of TCP segments that can go to the kernel
// as one GSO aggregate: the frame's layout and what must match.
type tcpRun struct {
	ipLen, tcpLen int  // header lengths
	v6            bool // IPv6, else IPv4
	seq           uint32
	payload       int // the first segment's payload: the GSO segment size
}

// runStart reports whether frame starts a run: an untagged IPv4 (no
// options, DF, not a fragment) or IPv6 (TCP the next header) frame, no
// padding, a TCP segment with data and only ACK (and PSH) set.
func runStart(f []byte) (tcpRun, bool) {
	var r tcpRun
	if len(f) < 14+20+20 {
		return r, false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case wire.EtherTypeIPv4:
		ip := f[14:]
		if ip[0] != 0x45 || binary.BigEndian.Uint16(ip[6:])&0xbfff != 0 || ip[6]&0x40 == 0 ||
			ip[9] != wire.IPProtoTCP || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			return r, false
		}
		r.ipLen = wire.IPv4MinHeaderLen
	case wire.EtherTypeIPv6:
		ip := f[14:]
		if len(ip) < wire.IPv6HeaderLen+20 || ip[0]>>4 != 6 || ip[6] != wire.IPProtoTCP ||
			int(binary.BigEndian.Uint16(ip[4:]))+wire.IPv6HeaderLen != len(ip) {
			return r, false
		}
		r.ipLen, r.v6 = wire.IPv6HeaderLen, true
	default:
		return r, false
	}
	tcp := f[14+r.ipLen:]
	r.tcpLen = int(tcp[12]>>4) * 4
	if r.tcpLen < 20 || r.tcpLen > len(tcp) || tcp[12]&0x0f != 0 || tcp[13]&^byte(wire.TCPFlagPSH) != byte(wire.TCPFlagACK) {
		return r, false
	}
	r.seq = binary.BigEndian.Uint32(tcp[4:])
	r.payload = len(tcp) - r.tcpLen
	return r, r.payload > 0
}

// joins reports whether f continues the run whose first frame is first
// and whose next sequence number is seq: the same Ethernet, IP (all but
// length, ID and checksum) and TCP header (all but the sequence number,
// checksum and PSH), the next sequence number, and a payload no longer
// than the first's (Linux tcp_gro_receive's conditions).
func (r *tcpRun) joins(first, f []byte, seq uint32) bool {
	h := 14 + r.ipLen + r.tcpLen
	if len(f) <= h || len(f) > len(first) {
		return false
	}
	if string(f[:14]) != string(first[:14]) {
		return false
	}
	ip, ip0 := f[14:], first[14:]
	if r.v6 {
		if string(ip[:4]) != string(ip0[:4]) || string(ip[6:40]) != string(ip0[6:40]) ||
			int(binary.BigEndian.Uint16(ip[4:]))+wire.IPv6HeaderLen != len(ip) {
			return false
		}
	} else {
		if string(ip[:2]) != string(ip0[:2]) || string(ip[6:10]) != string(ip0[6:10]) ||
			string(ip[12:20]) != string(ip0[12:20]) || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			return false
		}
	}
	t, t0 := ip[r.ipLen:], ip0[r.ipLen:]
	return binary.BigEndian.Uint32(t[4:]) == seq &&
		string(t[:4]) == string(t0[:4]) && string(t[8:13]) == string(t0[8:13]) &&
		t[13]&^byte(wire.TCPFlagPSH) == t0[13] && string(t[14:16]) == string(t0[14:16]) &&
		string(t[18:r.tcpLen]) == string(t0[18:r.tcpLen])
}

// coalesce returns how many frames from the start of frames form one run
// (1 when the first cannot start one or nothing joins it). A run ends
// after a segment with PSH or a short one, and stays within a 64 KiB IP
// packet.
func coalesce(frames [][]byte) (tcpRun, int) {
	r, ok := runStart(frames[0])
	if !ok || frames[0][14+r.ipLen+13]&byte(wire.TCPFlagPSH) != 0 {
		return r, 1
	}
	n, total := 1, r.ipLen+r.tcpLen+r.payload
	seq := r.seq + uint32(r.payload)
	for n < len(frames) && n < maxRun {
		f := frames[n]
		p := len(f) - 14 - r.ipLen - r.tcpLen
		if !r.joins(frames[0], f, seq) || total+p > wire.IPv4MaxTotalLen {
			break
		}
		n++
		total += p
		seq += uint32(p)
		if p < r.payload || f[14+r.ipLen+13]&byte(wire.TCPFlagPSH) != 0 {
			break
		}
	}
	return r, n
}

// aggregate builds the virtio-net header and the headers of the GSO
// frame for the run frames (as coalesce found it): the first frame's
// headers with the IP length covering every payload, the last frame's
// PSH, and the TCP checksum field holding the pseudo-header sum over the
// whole length, as Linux's __tcp_v4_send_check leaves it for a
// CHECKSUM_PARTIAL segment (the kernel completes it per segment).
func aggregate(r tcpRun, frames [][]byte, vh *[vnetHdrLen]byte, hdr []byte) []byte {
	h := 14 + r.ipLen + r.tcpLen
	hdr = append(hdr[:0], frames[0][:h]...)
	payload := 0
	for _, f := range frames {
		payload += len(f) - h
	}
	ip, tcp := hdr[14:], hdr[14+r.ipLen:]
	tcp[13] = frames[len(frames)-1][14+r.ipLen+13]
	tcpLen := r.tcpLen + payload
	var sum uint16
	if r.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen))
		sum = wire.PseudoHeaderChecksum(wire.IPProtoTCP, wire.IPv6(ip).Src(), wire.IPv6(ip).Dst(), uint32(tcpLen))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(r.ipLen+tcpLen))
		wire.IPv4(ip).UpdateChecksum()
		sum = wire.PseudoHeaderChecksum(wire.IPProtoTCP, wire.IPv4(ip).Src(), wire.IPv4(ip).Dst(), uint32(tcpLen))
	}
	binary.BigEndian.PutUint16(tcp[16:], sum)
	gso := uint8(vnetGSOTCPv4)
	if r.v6 {
		gso = vnetGSOTCPv6
	}
	e := binary.NativeEndian
	vh[0], vh[1] = vnetFlagNeedsCsum, gso
	e.PutUint16(vh[2:], uint16(h))
	e.PutUint16(vh[4:], uint16(r.payload))
	e.PutUint16(vh[6:], uint16(14+r.ipLen))
	e.PutUint16(vh[8:], 16)
	return hdr
}
