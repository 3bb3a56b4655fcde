package ping

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"time"
)

// ICMP echo types (RFC 792, RFC 4443 §4).
const (
	echoRequest4, echoReply4 = 8, 0
	echoRequest6, echoReply6 = 128, 129
)

// Origins of a sock_extended_err (linux/errqueue.h).
const (
	originLocal = 1
	originICMP  = 2
	originICMP6 = 3
)

// timevalLen is sizeof(struct timeval) on 64-bit Linux: iputils puts
// the send time at the start of the data when the data has room for it.
const timevalLen = 16

// fillPattern is iputils' default payload: byte i of the data is i.
func fillPattern(data []byte) {
	for i := range data {
		data[i] = byte(i)
	}
}

// echo builds an echo request with sequence seq: the ICMP header
// (identifier and checksum are the ping socket's to fill), the data
// pattern and, when timing, the send time as a native struct timeval.
func echo(v6 bool, seq uint16, datalen int, timing bool, sent time.Time) []byte {
	b := make([]byte, 8+datalen)
	b[0] = echoRequest4
	if v6 {
		b[0] = echoRequest6
	}
	binary.BigEndian.PutUint16(b[6:], seq)
	fillPattern(b[8:])
	if timing {
		putTimeval(b[8:], sent)
	}
	return b
}

func putTimeval(b []byte, t time.Time) {
	us := t.UnixMicro()
	binary.NativeEndian.PutUint64(b[0:], uint64(us/1e6))
	binary.NativeEndian.PutUint64(b[8:], uint64(us%1e6))
}

func timevalMicros(b []byte) int64 {
	return int64(binary.NativeEndian.Uint64(b[0:]))*1e6 + int64(binary.NativeEndian.Uint64(b[8:]))
}

// checksum is the Internet checksum (RFC 1071) of b; 0 for a valid
// ICMPv4 message.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) > 1 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// containsPattern is iputils' contains_pattern_in_payload: a reply is
// ours only if the data after the timestamp is the pattern we sent (as
// far as the reply goes).
func containsPattern(data []byte, datalen int) bool {
	for i := timevalLen; i < datalen && i < len(data); i++ {
		if data[i] != byte(i) {
			return false
		}
	}
	return true
}

// extErr is struct sock_extended_err and its offender (SO_EE_OFFENDER).
type extErr struct {
	errno      syscall.Errno
	origin     uint8
	typ, code  uint8
	info, data uint32
	offender   netip.Addr
}

// control is what ping reads from a recvmsg's control messages: the
// reply's TTL or hop limit and a queued error.
type control struct {
	ttl    int // -1: none
	err    *extErr
	parsed bool
}

// parseControl reads Linux cmsgs: IP_TTL / IPV6_HOPLIMIT and
// IP_RECVERR / IPV6_RECVERR. Malformed messages are skipped; it never
// panics on short or garbage input.
func parseControl(oob []byte) control {
	c := control{ttl: -1}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return c
	}
	c.parsed = true
	for _, m := range msgs {
		d := m.Data
		switch {
		case m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_TTL,
			m.Header.Level == syscall.SOL_IPV6 && m.Header.Type == syscall.IPV6_HOPLIMIT:
			if len(d) >= 4 {
				c.ttl = int(binary.NativeEndian.Uint32(d))
			} else if len(d) >= 1 {
				c.ttl = int(d[0])
			}
		case m.Header.Level == syscall.SOL_IP && m.Header.Type == syscall.IP_RECVERR,
			m.Header.Level == syscall.SOL_IPV6 && m.Header.Type == syscall.IPV6_RECVERR:
			if len(d) < 16 {
				continue
			}
			e := &extErr{
				errno:  syscall.Errno(binary.NativeEndian.Uint32(d)),
				origin: d[4], typ: d[5], code: d[6],
				info: binary.NativeEndian.Uint32(d[8:]),
				data: binary.NativeEndian.Uint32(d[12:]),
			}
			o := d[16:]
			if len(o) >= 2 {
				switch binary.NativeEndian.Uint16(o) {
				case syscall.AF_INET:
					if len(o) >= 8 {
						e.offender = netip.AddrFrom4([4]byte(o[4:8]))
					}
				case syscall.AF_INET6:
					if len(o) >= 24 {
						e.offender = netip.AddrFrom16([16]byte(o[8:24]))
					}
				}
			}
			c.err = e
		}
	}
	return c
}
