package transport

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"time"
)

// Linux's buffer limits (net.core.rmem_default/wmem_default, rmem_max,
// wmem_max, and the minimums of sock_setsockopt). Linux doubles the value
// a program sets, to leave room for its bookkeeping, and getsockopt
// returns the doubled value; we do the same so programs see what they
// would see on Linux.
// SO_REUSEPORT is Linux's option number (the syscall package lacks it).
const SO_REUSEPORT = 0xf

// IP_MULTICAST_ALL is Linux's option number (the syscall package lacks it).
const IP_MULTICAST_ALL = 49

const (
	DefaultRcvBuf = 212992
	DefaultSndBuf = 212992
	MaxRcvBuf     = 212992
	MaxSndBuf     = 212992
	MinRcvBuf     = 2304
	MinSndBuf     = 4608
)

// Options are the socket options every endpoint shares (SOL_SOCKET and the
// IP-level ones), stored in one place. Endpoints embed one, handle the
// options that need their own state (memberships, SO_ERROR, TCP's) and
// pass the rest to Set and Get, under the endpoint's own lock.
//
// Values (what Set takes and Get returns): integers and booleans as int
// (Set also takes bool, the sized integer types and the 1- or 4-byte
// []byte of a raw setsockopt); SO_LINGER as syscall.Linger; SO_RCVTIMEO
// and SO_SNDTIMEO as time.Duration (Set also takes syscall.Timeval);
// SO_BINDTODEVICE as an interface index (int) on Get and an index or a
// name (string) on Set, through the Interfaces given to NewOptions;
// IP_MULTICAST_IF as netip.Addr (or an ip_mreqn-style MulticastIf);
// IPV6_MULTICAST_IF as an interface index.
type Options struct {
	ReuseAddr bool // SO_REUSEADDR
	ReusePort bool // SO_REUSEPORT
	KeepAlive bool // SO_KEEPALIVE
	Broadcast bool // SO_BROADCAST: may send to broadcast addresses
	// RcvBufLock and SndBufLock say SO_RCVBUF or SO_SNDBUF was set: a
	// protocol that sizes its buffers itself (TCP's auto-tuning) leaves
	// them alone (Linux SOCK_RCVBUF_LOCK, SOCK_SNDBUF_LOCK).
	RcvBufLock, SndBufLock bool
	Linger                 syscall.Linger
	RcvBuf                 int // bytes, already doubled
	SndBuf                 int
	RcvTimeo               time.Duration // 0: block forever
	SndTimeo               time.Duration
	// BoundDevice is SO_BINDTODEVICE's interface index (0: none).
	BoundDevice int

	// IPv4 (IPPROTO_IP).
	TTL           int // IP_TTL; -1: the stack's default
	TOS           uint8
	MulticastTTL  int        // IP_MULTICAST_TTL, default 1
	MulticastLoop bool       // IP_MULTICAST_LOOP, default on
	MulticastAddr netip.Addr // IP_MULTICAST_IF by address
	MulticastIf   int        // IP_MULTICAST_IF / IPV6_MULTICAST_IF by index
	HdrIncl       bool       // IP_HDRINCL (raw sockets)
	RecvErr       bool       // IP_RECVERR / IPV6_RECVERR
	RecvTTL       bool       // IP_RECVTTL / IPV6_RECVHOPLIMIT
	RecvTOS       bool       // IP_RECVTOS / IPV6_RECVTCLASS
	PktInfo       bool       // IP_PKTINFO / IPV6_RECVPKTINFO
	PMTUDisc      int        // IP_MTU_DISCOVER / IPV6_MTU_DISCOVER
	MulticastAll  bool       // IP_MULTICAST_ALL, default on

	// IPv6 (IPPROTO_IPV6).
	V6Only         bool // IPV6_V6ONLY
	UnicastHops    int  // IPV6_UNICAST_HOPS; -1: the stack's default
	MulticastHops  int  // IPV6_MULTICAST_HOPS, default 1
	TClass         int  // IPV6_TCLASS; -1: 0
	MulticastLoop6 bool

	ifs Interfaces
}

// Interfaces resolves interface names for SO_BINDTODEVICE and checks
// indexes; the stack satisfies it through StackInterfaces.
type Interfaces interface {
	IndexByName(name string) (int, bool)
	HasIndex(index int) bool
}

// MulticastIf is IP_MULTICAST_IF given as struct ip_mreqn: an interface
// index and/or an address.
type MulticastIf struct {
	Addr    netip.Addr
	IfIndex int
}

// NewOptions returns Linux's defaults; ifs may be nil (SO_BINDTODEVICE
// by name then fails with ENODEV).
func NewOptions(ifs Interfaces) Options {
	return Options{
		RcvBuf: DefaultRcvBuf, SndBuf: DefaultSndBuf,
		TTL: -1, MulticastTTL: 1, MulticastLoop: true, MulticastLoop6: true, MulticastAll: true,
		UnicastHops: -1, MulticastHops: 1, TClass: -1,
		PMTUDisc: syscall.IP_PMTUDISC_WANT,
		ifs:      ifs,
	}
}

// Set stores a common option. It returns ENOPROTOOPT for options it does
// not know (the endpoint's own, or none), EINVAL for bad values.
func (o *Options) Set(level, name int, v any) error {
	switch level {
	case syscall.SOL_SOCKET:
		return o.setSocket(name, v)
	case syscall.IPPROTO_IP:
		return o.setIP(name, v)
	case syscall.IPPROTO_IPV6:
		return o.setIPv6(name, v)
	}
	return syscall.ENOPROTOOPT
}

func (o *Options) setSocket(name int, v any) error {
	if name == syscall.SO_LINGER {
		l, ok := v.(syscall.Linger)
		if !ok {
			if p, ok2 := v.(*syscall.Linger); ok2 && p != nil {
				l, ok = *p, true
			}
		}
		if !ok {
			return syscall.EINVAL
		}
		o.Linger = l
		return nil
	}
	switch name {
	case syscall.SO_RCVTIMEO, syscall.SO_SNDTIMEO:
		d, err := DurationValue(v)
		if err != nil {
			return err
		}
		if name == syscall.SO_RCVTIMEO {
			o.RcvTimeo = d
		} else {
			o.SndTimeo = d
		}
		return nil
	case syscall.SO_BINDTODEVICE:
		return o.bindToDevice(v)
	}
	n, err := IntValue(v)
	if err != nil {
		return err
	}
	if f := o.flag(syscall.SOL_SOCKET, name); f != nil {
		*f = n != 0
		return nil
	}
	switch name {
	case syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE:
		o.RcvBufLock = true
		o.RcvBuf = max(min(n, MaxRcvBuf)*2, MinRcvBuf)
		if name == syscall.SO_RCVBUFFORCE {
			o.RcvBuf = max(n*2, MinRcvBuf)
		}
	case syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE:
		o.SndBufLock = true
		o.SndBuf = max(min(n, MaxSndBuf)*2, MinSndBuf)
		if name == syscall.SO_SNDBUFFORCE {
			o.SndBuf = max(n*2, MinSndBuf)
		}
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

func (o *Options) bindToDevice(v any) error {
	switch d := v.(type) {
	case string:
		if d == "" {
			o.BoundDevice = 0
			return nil
		}
		if o.ifs == nil {
			return syscall.ENODEV
		}
		i, ok := o.ifs.IndexByName(d)
		if !ok {
			return syscall.ENODEV
		}
		o.BoundDevice = i
		return nil
	case []byte:
		// A raw setsockopt passes the name, maybe NUL-terminated.
		for i, c := range d {
			if c == 0 {
				d = d[:i]
				break
			}
		}
		return o.bindToDevice(string(d))
	}
	n, err := IntValue(v)
	if err != nil {
		return err
	}
	if n != 0 && (o.ifs == nil || !o.ifs.HasIndex(n)) {
		return syscall.ENODEV
	}
	o.BoundDevice = n
	return nil
}

func (o *Options) setIP(name int, v any) error {
	if name == syscall.IP_MULTICAST_IF {
		switch a := v.(type) {
		case netip.Addr:
			if a.IsValid() && !a.Unmap().Is4() {
				return syscall.EINVAL
			}
			o.MulticastAddr, o.MulticastIf = a.Unmap(), 0
			if a.IsUnspecified() {
				o.MulticastAddr = netip.Addr{}
			}
			return nil
		case MulticastIf:
			if a.IfIndex != 0 && (o.ifs == nil || !o.ifs.HasIndex(a.IfIndex)) {
				return syscall.ENODEV
			}
			o.MulticastAddr, o.MulticastIf = a.Addr.Unmap(), a.IfIndex
			if a.Addr.IsUnspecified() {
				o.MulticastAddr = netip.Addr{}
			}
			return nil
		}
		return syscall.EINVAL
	}
	n, err := IntValue(v)
	if err != nil {
		return err
	}
	if f := o.flag(syscall.IPPROTO_IP, name); f != nil {
		*f = n != 0
		return nil
	}
	switch name {
	case syscall.IP_TTL:
		if n == -1 {
			o.TTL = -1
			return nil
		}
		if n < 1 || n > 255 {
			return syscall.EINVAL
		}
		o.TTL = n
	case syscall.IP_TOS:
		o.TOS = uint8(n)
	case syscall.IP_MULTICAST_TTL:
		if n == -1 {
			n = 1
		}
		if n < 0 || n > 255 {
			return syscall.EINVAL
		}
		o.MulticastTTL = n
	case syscall.IP_MTU_DISCOVER:
		return o.setPMTUDisc(n)
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

func (o *Options) setIPv6(name int, v any) error {
	n, err := IntValue(v)
	if err != nil {
		return err
	}
	if f := o.flag(syscall.IPPROTO_IPV6, name); f != nil {
		*f = n != 0
		return nil
	}
	switch name {
	case syscall.IPV6_UNICAST_HOPS:
		if n < -1 || n > 255 {
			return syscall.EINVAL
		}
		o.UnicastHops = n
	case syscall.IPV6_MULTICAST_HOPS:
		if n < -1 || n > 255 {
			return syscall.EINVAL
		}
		if n == -1 {
			n = 1
		}
		o.MulticastHops = n
	case syscall.IPV6_MULTICAST_IF:
		if n != 0 && (o.ifs == nil || !o.ifs.HasIndex(n)) {
			return syscall.ENODEV
		}
		o.MulticastIf = n
	case syscall.IPV6_MULTICAST_LOOP:
		if n != 0 && n != 1 {
			return syscall.EINVAL
		}
		o.MulticastLoop6 = n != 0
	case syscall.IPV6_TCLASS:
		if n < -1 || n > 255 {
			return syscall.EINVAL
		}
		o.TClass = n
	case syscall.IPV6_MTU_DISCOVER:
		return o.setPMTUDisc(n)
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

// setPMTUDisc is IP_MTU_DISCOVER and IPV6_MTU_DISCOVER (IP_PMTUDISC_DONT
// to IP_PMTUDISC_OMIT).
func (o *Options) setPMTUDisc(n int) error {
	if n < syscall.IP_PMTUDISC_DONT || n > syscall.IP_PMTUDISC_PROBE+2 {
		return syscall.EINVAL
	}
	o.PMTUDisc = n
	return nil
}

// flag is the field of a common on/off option (set with any non-zero
// value, read as 0 or 1), or nil for another option.
func (o *Options) flag(level, name int) *bool {
	switch level {
	case syscall.SOL_SOCKET:
		switch name {
		case syscall.SO_REUSEADDR:
			return &o.ReuseAddr
		case SO_REUSEPORT:
			return &o.ReusePort
		case syscall.SO_KEEPALIVE:
			return &o.KeepAlive
		case syscall.SO_BROADCAST:
			return &o.Broadcast
		}
	case syscall.IPPROTO_IP:
		switch name {
		case syscall.IP_MULTICAST_LOOP:
			return &o.MulticastLoop
		case IP_MULTICAST_ALL:
			return &o.MulticastAll
		case syscall.IP_HDRINCL:
			return &o.HdrIncl
		case syscall.IP_RECVERR:
			return &o.RecvErr
		case syscall.IP_RECVTTL:
			return &o.RecvTTL
		case syscall.IP_RECVTOS:
			return &o.RecvTOS
		case syscall.IP_PKTINFO:
			return &o.PktInfo
		}
	case syscall.IPPROTO_IPV6:
		switch name {
		case syscall.IPV6_V6ONLY:
			return &o.V6Only
		case syscall.IPV6_RECVERR:
			return &o.RecvErr
		case syscall.IPV6_RECVHOPLIMIT:
			return &o.RecvTTL
		case syscall.IPV6_RECVTCLASS:
			return &o.RecvTOS
		case syscall.IPV6_RECVPKTINFO:
			return &o.PktInfo
		}
	}
	return nil
}

// Get returns a common option's value (ENOPROTOOPT for others).
func (o *Options) Get(level, name int) (any, error) {
	if f := o.flag(level, name); f != nil {
		return boolInt(*f), nil
	}
	switch level {
	case syscall.SOL_SOCKET:
		switch name {
		case syscall.SO_LINGER:
			return o.Linger, nil
		case syscall.SO_RCVBUF:
			return o.RcvBuf, nil
		case syscall.SO_SNDBUF:
			return o.SndBuf, nil
		case syscall.SO_RCVTIMEO:
			return o.RcvTimeo, nil
		case syscall.SO_SNDTIMEO:
			return o.SndTimeo, nil
		case syscall.SO_BINDTODEVICE:
			return o.BoundDevice, nil
		}
	case syscall.IPPROTO_IP:
		switch name {
		case syscall.IP_TTL:
			if o.TTL < 0 {
				return 64, nil
			}
			return o.TTL, nil
		case syscall.IP_TOS:
			return int(o.TOS), nil
		case syscall.IP_MULTICAST_TTL:
			return o.MulticastTTL, nil
		case syscall.IP_MULTICAST_IF:
			if o.MulticastAddr.IsValid() {
				return o.MulticastAddr, nil
			}
			return netip.IPv4Unspecified(), nil
		case syscall.IP_MTU_DISCOVER:
			return o.PMTUDisc, nil
		}
	case syscall.IPPROTO_IPV6:
		switch name {
		case syscall.IPV6_UNICAST_HOPS:
			if o.UnicastHops < 0 {
				return 64, nil
			}
			return o.UnicastHops, nil
		case syscall.IPV6_MULTICAST_HOPS:
			return o.MulticastHops, nil
		case syscall.IPV6_MULTICAST_IF:
			return o.MulticastIf, nil
		case syscall.IPV6_MULTICAST_LOOP:
			return boolInt(o.MulticastLoop6), nil
		case syscall.IPV6_TCLASS:
			return max(o.TClass, 0), nil
		case syscall.IPV6_MTU_DISCOVER:
			return o.PMTUDisc, nil
		}
	}
	return nil, syscall.ENOPROTOOPT
}

// HopLimit is the TTL (IPv4) or hop limit (IPv6) for a packet to dst under
// these options, 0 meaning the stack's default (which WritePacket fills
// in; for multicast the default is 1, as both options' defaults are).
func (o *Options) HopLimit(dst netip.Addr) uint8 {
	switch {
	case dst.Is4() || dst.Is4In6():
		if dst.Unmap().IsMulticast() {
			return uint8(o.MulticastTTL)
		}
		if o.TTL > 0 {
			return uint8(o.TTL)
		}
	case dst.IsMulticast():
		return uint8(o.MulticastHops)
	case o.UnicastHops >= 0:
		if o.UnicastHops == 0 {
			return 0 // hop limit 0 cannot be asked of WritePacket; use the default
		}
		return uint8(o.UnicastHops)
	}
	return 0
}

// TrafficClass is the TOS (IPv4) or traffic class (IPv6) for dst.
func (o *Options) TrafficClass(dst netip.Addr) uint8 {
	if dst.Is4() || dst.Is4In6() {
		return o.TOS
	}
	return uint8(max(o.TClass, 0))
}

// DontFragment reports whether packets must not be fragmented
// (IP_PMTUDISC_DO or PROBE).
func (o *Options) DontFragment() bool {
	return o.PMTUDisc == syscall.IP_PMTUDISC_DO || o.PMTUDisc == syscall.IP_PMTUDISC_PROBE
}

// Loop reports whether a multicast packet to dst is also delivered to
// local sockets (IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP).
func (o *Options) Loop(dst netip.Addr) bool {
	if dst.Is4() || dst.Is4In6() {
		return o.MulticastLoop
	}
	return o.MulticastLoop6
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// IntValue converts an option value to an int: int and the sized integer
// types, bool, and the 1-, 2- or 4-byte native-endian []byte of a raw
// setsockopt (Linux takes a single byte for the byte-sized IP options).
func IntValue(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int8:
		return int(n), nil
	case int16:
		return int(n), nil
	case int32:
		return int(n), nil
	case int64:
		return int(n), nil
	case uint8:
		return int(n), nil
	case uint16:
		return int(n), nil
	case uint32:
		return int(n), nil
	case uint64:
		return int(n), nil
	case uint:
		return int(n), nil
	case bool:
		return boolInt(n), nil
	case []byte:
		switch len(n) {
		case 1:
			return int(n[0]), nil
		case 2:
			return int(int16(binary.NativeEndian.Uint16(n))), nil
		case 4, 8:
			return int(int32(binary.NativeEndian.Uint32(n))), nil
		}
	}
	return 0, fmt.Errorf("transport: option value %T: %w", v, syscall.EINVAL)
}

// DurationValue converts SO_RCVTIMEO/SO_SNDTIMEO values: time.Duration or
// syscall.Timeval (a zero value means no timeout). Negative durations are
// EDOM as Linux's sock_set_timeout says for a bad timeval.
func DurationValue(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		if d < 0 {
			return 0, syscall.EDOM
		}
		return d, nil
	case syscall.Timeval:
		if d.Sec < 0 || d.Usec < 0 || d.Usec >= 1000000 {
			return 0, syscall.EDOM
		}
		return time.Duration(d.Sec)*time.Second + time.Duration(d.Usec)*time.Microsecond, nil
	case *syscall.Timeval:
		if d == nil {
			return 0, syscall.EFAULT
		}
		return DurationValue(*d)
	}
	return 0, fmt.Errorf("transport: timeout value %T: %w", v, syscall.EINVAL)
}
