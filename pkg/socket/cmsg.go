package socket

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/stackbox/stackbox/pkg/transport"
)

// Sizes of the Linux structures carried in control messages.
const (
	sizeofInPktinfo   = 12 // struct in_pktinfo
	sizeofIn6Pktinfo  = 20 // struct in6_pktinfo
	sizeofExtendedErr = 16 // struct sock_extended_err
	sizeofSockaddrIn  = 16
	sizeofSockaddrIn6 = 28
)

// cmsgLenSize is the width of cmsghdr.cmsg_len (size_t).
const cmsgLenSize = int(unsafe.Sizeof(syscall.Cmsghdr{}.Len))

// EncodeControl writes the control messages of c as Linux cmsgs into oob
// for a socket of family (AF_INET: IP_PKTINFO, IP_TTL, IP_TOS,
// IP_RECVERR at SOL_IP; AF_INET6: IPV6_PKTINFO, IPV6_HOPLIMIT,
// IPV6_TCLASS, IPV6_RECVERR at SOL_IPV6, for IPv4-mapped traffic too, as
// Linux's ipv6_recv_error and ip6_datagram_recv_ctl do). It returns the
// bytes used and whether some message did not fit (MSG_CTRUNC); messages
// are never cut in half.
func EncodeControl(family int, c transport.ControlMessages, oob []byte, ifs Interfaces) (n int, truncated bool) {
	put := func(level, typ int, data []byte) {
		space := syscall.CmsgSpace(len(data))
		if len(oob)-n < syscall.CmsgLen(len(data)) {
			truncated = true
			return
		}
		b := oob[n:]
		putCmsgHeader(b, syscall.CmsgLen(len(data)), level, typ)
		copy(b[syscall.CmsgLen(0):], data)
		// Zero the alignment padding so no stale bytes leak out.
		end := min(space, len(b))
		clear(b[syscall.CmsgLen(len(data)):end])
		n += end
	}
	var buf [sizeofExtendedErr + sizeofSockaddrIn6]byte
	ne := binary.NativeEndian
	if family == syscall.AF_INET {
		if c.HasPktInfo {
			d := buf[:sizeofInPktinfo]
			clear(d)
			ne.PutUint32(d[0:], uint32(c.IfIndex))
			dst := c.Dst.Unmap()
			if dst.Is4() {
				a := dst.As4()
				copy(d[4:8], a[:]) // ipi_spec_dst: the local address it came to
				copy(d[8:12], a[:])
			}
			put(syscall.SOL_IP, syscall.IP_PKTINFO, d)
		}
		if c.HasTTL {
			d := buf[:4]
			ne.PutUint32(d, uint32(c.TTL))
			put(syscall.SOL_IP, syscall.IP_TTL, d)
		}
		if c.HasTOS {
			put(syscall.SOL_IP, syscall.IP_TOS, []byte{c.TOS}) // one byte, as Linux
		}
		if c.Err != nil {
			d := buf[:sizeofExtendedErr+sizeofSockaddrIn]
			encodeExtendedErr(d, c.Err)
			if off := c.Err.Offender.Unmap(); off.Is4() {
				o := d[sizeofExtendedErr:]
				ne.PutUint16(o, syscall.AF_INET)
				a := off.As4()
				copy(o[4:8], a[:])
			}
			put(syscall.SOL_IP, syscall.IP_RECVERR, d)
		}
		return n, truncated
	}
	if c.HasPktInfo {
		d := buf[:sizeofIn6Pktinfo]
		clear(d)
		if c.Dst.IsValid() {
			a := c.Dst.As16()
			copy(d[0:16], a[:])
		}
		ne.PutUint32(d[16:], uint32(c.IfIndex))
		put(syscall.SOL_IPV6, syscall.IPV6_PKTINFO, d)
	}
	if c.HasTTL {
		d := buf[:4]
		ne.PutUint32(d, uint32(c.TTL))
		put(syscall.SOL_IPV6, syscall.IPV6_HOPLIMIT, d)
	}
	if c.HasTOS {
		d := buf[:4]
		ne.PutUint32(d, uint32(c.TOS))
		put(syscall.SOL_IPV6, syscall.IPV6_TCLASS, d)
	}
	if c.Err != nil {
		d := buf[:sizeofExtendedErr+sizeofSockaddrIn6]
		encodeExtendedErr(d, c.Err)
		if off := c.Err.Offender; off.IsValid() {
			o := d[sizeofExtendedErr:]
			ne.PutUint16(o, syscall.AF_INET6)
			a := off.As16()
			copy(o[8:24], a[:])
			ne.PutUint32(o[24:], scopeOf(off.Zone(), ifs))
		}
		put(syscall.SOL_IPV6, syscall.IPV6_RECVERR, d)
	}
	return n, truncated
}

func putCmsgHeader(b []byte, length, level, typ int) {
	ne := binary.NativeEndian
	if cmsgLenSize == 8 {
		ne.PutUint64(b, uint64(length))
	} else {
		ne.PutUint32(b, uint32(length))
	}
	ne.PutUint32(b[cmsgLenSize:], uint32(int32(level)))
	ne.PutUint32(b[cmsgLenSize+4:], uint32(int32(typ)))
}

// encodeExtendedErr fills struct sock_extended_err and zeroes the
// offender that follows it (AF_UNSPEC when there is none).
func encodeExtendedErr(d []byte, e *transport.SockExtendedErr) {
	clear(d)
	ne := binary.NativeEndian
	ne.PutUint32(d[0:], uint32(e.Errno))
	d[4] = e.Origin
	d[5] = e.Type
	d[6] = e.Code
	ne.PutUint32(d[8:], e.Info)
}

// ParseControl reads the cmsgs given to sendmsg into o, as Linux's
// ip_cmsg_send and ip6_datagram_send_ctl do: IP_TTL, IP_TOS and
// IP_PKTINFO at SOL_IP; IPV6_HOPLIMIT, IPV6_TCLASS and IPV6_PKTINFO at
// SOL_IPV6 (AF_INET6 sockets only, which take both levels since they may
// send to IPv4-mapped peers). Unknown types at those levels and at
// SOL_SOCKET are EINVAL; other levels are skipped. Source addresses are
// v4-mapped for AF_INET6.
func ParseControl(family int, oob []byte, o *transport.WriteOptions) error {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return syscall.EINVAL
	}
	ne := binary.NativeEndian
	intData := func(d []byte, lo, hi int) (int, error) {
		if len(d) != 4 {
			return 0, syscall.EINVAL
		}
		v := int(int32(ne.Uint32(d)))
		if v < lo || v > hi {
			return 0, syscall.EINVAL
		}
		return v, nil
	}
	for _, m := range msgs {
		d := m.Data
		switch m.Header.Level {
		case syscall.SOL_SOCKET:
			return syscall.EINVAL
		case syscall.SOL_IP:
			switch m.Header.Type {
			case syscall.IP_TTL:
				v, err := intData(d, 1, 255)
				if err != nil {
					return err
				}
				o.HasTTL, o.TTL = true, uint8(v)
			case syscall.IP_TOS:
				var v int
				if len(d) == 1 {
					v = int(d[0])
				} else if v, err = intData(d, 0, 255); err != nil {
					return err
				}
				o.HasTOS, o.TOS = true, uint8(v)
			case syscall.IP_PKTINFO:
				if len(d) != sizeofInPktinfo {
					return syscall.EINVAL
				}
				o.IfIndex = int(int32(ne.Uint32(d[0:])))
				src := netip.AddrFrom4([4]byte(d[4:8]))
				o.Src = netip.Addr{}
				if !src.IsUnspecified() {
					o.Src = src
					if family == syscall.AF_INET6 {
						o.Src = netip.AddrFrom16(src.As16())
					}
				}
			default:
				return syscall.EINVAL
			}
		case syscall.SOL_IPV6:
			if family != syscall.AF_INET6 {
				continue
			}
			switch m.Header.Type {
			case syscall.IPV6_HOPLIMIT:
				v, err := intData(d, -1, 255)
				if err != nil {
					return err
				}
				o.HasTTL, o.TTL = v >= 0, uint8(max(v, 0))
			case syscall.IPV6_TCLASS:
				v, err := intData(d, -1, 255)
				if err != nil {
					return err
				}
				o.HasTOS, o.TOS = v >= 0, uint8(max(v, 0))
			case syscall.IPV6_PKTINFO:
				if len(d) != sizeofIn6Pktinfo {
					return syscall.EINVAL
				}
				src := netip.AddrFrom16([16]byte(d[0:16]))
				o.Src = netip.Addr{}
				if !src.IsUnspecified() {
					o.Src = src
				}
				o.IfIndex = int(int32(ne.Uint32(d[16:])))
			default:
				return syscall.EINVAL
			}
		}
	}
	return nil
}

// Control message builders for senders (tests, tools such as ping and
// traceroute that set a per-packet TTL): each returns one cmsg to append
// to sendmsg's oob.

// TTLControl is IP_TTL (AF_INET) or IPV6_HOPLIMIT (AF_INET6).
func TTLControl(family, ttl int) []byte {
	if family == syscall.AF_INET {
		return intCmsg(syscall.SOL_IP, syscall.IP_TTL, ttl)
	}
	return intCmsg(syscall.SOL_IPV6, syscall.IPV6_HOPLIMIT, ttl)
}

// TOSControl is IP_TOS (AF_INET) or IPV6_TCLASS (AF_INET6).
func TOSControl(family, tos int) []byte {
	if family == syscall.AF_INET {
		return intCmsg(syscall.SOL_IP, syscall.IP_TOS, tos)
	}
	return intCmsg(syscall.SOL_IPV6, syscall.IPV6_TCLASS, tos)
}

// PktInfoControl is IP_PKTINFO (ipi_spec_dst = src) or IPV6_PKTINFO.
func PktInfoControl(family int, src netip.Addr, ifIndex int) []byte {
	ne := binary.NativeEndian
	if family == syscall.AF_INET {
		d := make([]byte, sizeofInPktinfo)
		ne.PutUint32(d, uint32(ifIndex))
		if src.IsValid() {
			a := src.Unmap().As4()
			copy(d[4:8], a[:])
		}
		return cmsg(syscall.SOL_IP, syscall.IP_PKTINFO, d)
	}
	d := make([]byte, sizeofIn6Pktinfo)
	if src.IsValid() {
		a := src.As16()
		copy(d, a[:])
	}
	ne.PutUint32(d[16:], uint32(ifIndex))
	return cmsg(syscall.SOL_IPV6, syscall.IPV6_PKTINFO, d)
}

func intCmsg(level, typ, v int) []byte {
	d := make([]byte, 4)
	binary.NativeEndian.PutUint32(d, uint32(int32(v)))
	return cmsg(level, typ, d)
}

func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	putCmsgHeader(b, syscall.CmsgLen(len(data)), level, typ)
	copy(b[syscall.CmsgLen(0):], data)
	return b
}
