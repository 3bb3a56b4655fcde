package tcp

import (
	"strings"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/cc"
	"github.com/stackbox/stackbox/pkg/transport"
)

// TCPInfo is what getsockopt(IPPROTO_TCP, TCP_INFO) returns: the basics
// of Linux's struct tcp_info, with its units (microseconds, segments).
type TCPInfo struct {
	State         State
	Retransmits   uint8  // consecutive timeouts now (tcpi_retransmits)
	Options       uint8  // TCPI_OPT_TIMESTAMPS 1, _SACK 2, _WSCALE 4, _ECN 8, _ECN_SEEN 16
	SndWscale     uint8  // the peer's shift (applied to its windows)
	RcvWscale     uint8  // ours
	RTO           uint32 // µs
	SndMSS        uint32
	RcvMSS        uint32
	Unacked       uint32 // segments in flight
	RTT           uint32 // smoothed, µs
	RTTVar        uint32 // µs
	SndSsthresh   uint32 // segments
	SndCwnd       uint32 // segments
	TotalRetrans  uint32
	BytesAcked    uint64
	BytesReceived uint64
	SndWnd        uint32 // bytes
	RcvWnd        uint32 // bytes
	Congestion    string // TCP_CONGESTION
}

// Linux's tcpi_options bits.
const (
	TCPIOptTimestamps = 1
	TCPIOptSACK       = 2
	TCPIOptWscale     = 4
)

// Linux's option numbers the syscall package lacks.
const (
	TCP_CONGESTION   = 13
	TCP_USER_TIMEOUT = 18 // RFC 5482
)

func (e *endpoint) tcpInfoLocked() TCPInfo {
	in := TCPInfo{State: e.state, Retransmits: uint8(min(e.retries, 255)), SndMSS: uint32(e.mss),
		RcvMSS: uint32(max(e.rcvMSS, 536)), RTO: uint32(e.rtt.RTO() / time.Microsecond),
		RTT: uint32(e.rtt.SRTT() / time.Microsecond), RTTVar: uint32(e.rtt.RTTVar() / time.Microsecond),
		TotalRetrans: uint32(e.totalRetrans), BytesAcked: e.bytesAcked, BytesReceived: e.bytesReceived,
		SndWnd: uint32(e.sndWnd)}
	if e.rcvNxt.LessThan(e.rcvAdv) {
		in.RcvWnd = uint32(e.rcvNxt.Size(e.rcvAdv))
	}
	if e.tsOK {
		in.Options |= TCPIOptTimestamps
	}
	if e.sackOK {
		in.Options |= TCPIOptSACK
	}
	if e.wsOK {
		in.Options |= TCPIOptWscale
		in.SndWscale, in.RcvWscale = e.sndShift, e.rcvShift
	}
	if e.ecn.has(ecnOK) {
		in.Options |= TCPIOptECN
	}
	if e.ecn.has(ecnSeen) {
		in.Options |= TCPIOptECNSeen
	}
	if m := max(e.mss, 1); e.state.synchronized() {
		in.Unacked = uint32((e.inflight() + m - 1) / m)
	}
	if e.cc != nil {
		m := max(e.mss, 1)
		in.SndCwnd = uint32(e.cc.Cwnd() / m)
		in.SndSsthresh = uint32(min(e.cc.Ssthresh()/m, 0x7fffffff))
	}
	in.Congestion = e.congestionLocked()
	return in
}

// SetSockOpt implements transport.Endpoint: the IPPROTO_TCP options here,
// the common ones through transport.Options.
func (e *endpoint) SetSockOpt(level, name int, v any) error {
	if level == syscall.SOL_SOCKET {
		switch name {
		case syscall.SO_ERROR, syscall.SO_TYPE, syscall.SO_PROTOCOL, syscall.SO_DOMAIN, syscall.SO_ACCEPTCONN:
			return syscall.ENOPROTOOPT
		}
	}
	e.mu.Lock()
	defer e.unlock()
	if level == syscall.IPPROTO_TCP {
		return e.setTCPOptLocked(name, v)
	}
	if level == syscall.IPPROTO_IPV6 && !e.v6() {
		return syscall.ENOPROTOOPT
	}
	if level == syscall.IPPROTO_IPV6 && name == syscall.IPV6_V6ONLY && e.local.IsValid() {
		return syscall.EINVAL
	}
	if err := e.opts.Set(level, name, v); err != nil {
		return err
	}
	if level == syscall.SOL_SOCKET {
		switch name {
		case syscall.SO_BINDTODEVICE:
			e.device.Store(int64(e.opts.BoundDevice))
		case syscall.SO_KEEPALIVE:
			e.armKeepaliveLocked()
		case syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE:
			// The window scale is fixed at the handshake; a buffer larger
			// than it can announce is used only up to 65535 << shift.
			e.maybeWindowUpdateLocked()
		}
	}
	return nil
}

func (e *endpoint) setTCPOptLocked(name int, v any) error {
	if name == TCP_CONGESTION {
		return e.setCongestionLocked(v)
	}
	n, err := transport.IntValue(v)
	if err != nil {
		return err
	}
	switch name {
	case syscall.TCP_NODELAY:
		e.nodelay = n != 0
		if e.nodelay {
			e.outputLocked(false)
		}
	case syscall.TCP_CORK:
		e.cork = n != 0
		if !e.cork {
			e.outputLocked(false)
		}
	case syscall.TCP_MAXSEG:
		// Linux: 0 or 88…65535 (TCP_MIN_MSS … MAX_TCP_WINDOW).
		if n != 0 && (n < 88 || n > 65535) {
			return syscall.EINVAL
		}
		e.userMSS = n
		if e.state.synchronized() {
			e.updateMSSLocked()
		}
	case syscall.TCP_KEEPIDLE, syscall.TCP_KEEPINTVL:
		if n < 1 || n > 32767 {
			return syscall.EINVAL
		}
		if name == syscall.TCP_KEEPIDLE {
			e.keepIdle = time.Duration(n) * time.Second
			if e.kaT.armed() {
				e.armKeepaliveLocked()
			}
		} else {
			e.keepIntvl = time.Duration(n) * time.Second
		}
	case syscall.TCP_KEEPCNT:
		if n < 1 || n > 127 {
			return syscall.EINVAL
		}
		e.keepCnt = n
	case TCP_USER_TIMEOUT:
		// RFC 5482 with Linux's semantics: milliseconds, 0 for the
		// default (tcp_retries2, TCP_KEEPCNT).
		if n < 0 {
			return syscall.EINVAL
		}
		e.userTimeout = time.Duration(n) * time.Millisecond
	default:
		return syscall.ENOPROTOOPT
	}
	return nil
}

// congestionLocked is the name of the connection's congestion control,
// or of the one it will get.
func (e *endpoint) congestionLocked() string {
	switch {
	case e.cc != nil:
		return e.cc.Name()
	case e.ccName != "":
		return e.ccName
	case e.p.Congestion != "":
		return e.p.Congestion
	}
	return DefaultCongestion
}

// chooseCongestionLocked gives a connection being established the
// algorithm of TCP_CONGESTION or Protocol.Congestion (an unknown
// Protocol.Congestion is left to initCongestionLocked's fallback).
func (e *endpoint) chooseCongestionLocked() {
	if e.cc == nil {
		e.cc, _ = cc.New(e.congestionLocked(), e.mss)
	}
}

// setCongestionLocked is setsockopt(TCP_CONGESTION): the name as a string
// or bytes (up to a NUL, as C passes it); an unknown one is ENOENT. On a
// connection the new algorithm takes over at once with the current cwnd
// and ssthresh (cc.Switch; Linux tcp_reinit_congestion_control); a
// listener passes it to its children.
func (e *endpoint) setCongestionLocked(v any) error {
	var name string
	switch x := v.(type) {
	case string:
		name = x
	case []byte:
		name = string(x)
	default:
		return syscall.EINVAL
	}
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	var from cc.Algorithm
	if e.cc != nil {
		if e.cc.Name() == name {
			return nil
		}
		from = e.cc
	}
	a, err := cc.Switch(name, max(e.mss, 1), from)
	if err != nil {
		return syscall.ENOENT
	}
	e.ccName = name
	if from != nil {
		e.cc = a
	}
	return nil
}

// GetSockOpt implements transport.Endpoint. TCP_INFO returns a TCPInfo.
func (e *endpoint) GetSockOpt(level, name int) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch level {
	case syscall.SOL_SOCKET:
		switch name {
		case syscall.SO_ERROR:
			err := e.soErr
			e.soErr = 0
			return int(err), nil
		case syscall.SO_TYPE:
			return syscall.SOCK_STREAM, nil
		case syscall.SO_PROTOCOL:
			return syscall.IPPROTO_TCP, nil
		case syscall.SO_DOMAIN:
			return e.family, nil
		case syscall.SO_ACCEPTCONN:
			return boolInt(e.state == StateListen), nil
		}
	case syscall.IPPROTO_TCP:
		switch name {
		case syscall.TCP_NODELAY:
			return boolInt(e.nodelay), nil
		case syscall.TCP_CORK:
			return boolInt(e.cork), nil
		case syscall.TCP_MAXSEG:
			if e.state.synchronized() {
				return e.mss, nil
			}
			if e.userMSS > 0 {
				return e.userMSS, nil
			}
			return 536, nil // Linux's TCP_MSS_DEFAULT before a connection
		case syscall.TCP_KEEPIDLE:
			return int(e.keepIdle / time.Second), nil
		case syscall.TCP_KEEPINTVL:
			return int(e.keepIntvl / time.Second), nil
		case syscall.TCP_KEEPCNT:
			return e.keepCnt, nil
		case TCP_USER_TIMEOUT:
			return int(e.userTimeout / time.Millisecond), nil
		case syscall.TCP_INFO:
			return e.tcpInfoLocked(), nil
		case TCP_CONGESTION:
			return e.congestionLocked(), nil
		}
		return nil, syscall.ENOPROTOOPT
	case syscall.IPPROTO_IP:
		if name == syscall.IP_MTU {
			if !e.state.synchronized() {
				return nil, syscall.ENOTCONN
			}
			return e.pathMTU(), nil
		}
	case syscall.IPPROTO_IPV6:
		if !e.v6() {
			return nil, syscall.ENOPROTOOPT
		}
		if name == syscall.IPV6_MTU {
			if !e.state.synchronized() {
				return nil, syscall.ENOTCONN
			}
			return e.pathMTU(), nil
		}
	}
	return e.opts.Get(level, name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
