package ping

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/raw"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// fuzzLink is a NIC whose received frames the test hands over itself,
// synchronously; what the stack sends is dropped.
type fuzzLink struct {
	mu sync.Mutex
	d  link.Dispatcher
}

var fuzzMAC = wire.MAC{0x02, 0, 0, 0, 0x83, 1}

func (l *fuzzLink) Name() string                         { return "fuzz" }
func (l *fuzzLink) MTU() int                             { return 1500 }
func (l *fuzzLink) MAC() wire.MAC                        { return fuzzMAC }
func (l *fuzzLink) Capabilities() link.Capabilities      { return 0 }
func (l *fuzzLink) WritePackets(f [][]byte) (int, error) { return len(f), nil }
func (l *fuzzLink) Close() error                         { return nil }
func (l *fuzzLink) Attach(d link.Dispatcher) {
	l.mu.Lock()
	l.d = d
	l.mu.Unlock()
}

func (l *fuzzLink) deliver(frame []byte) {
	l.mu.Lock()
	d := l.d
	l.mu.Unlock()
	if d != nil {
		d.DeliverFrame(frame)
	}
}

var (
	fuzzUs4, fuzzPeer4 = netip.MustParseAddr("10.83.0.1"), netip.MustParseAddr("10.83.0.2")
	fuzzUs6, fuzzPeer6 = netip.MustParseAddr("fd83::1"), netip.MustParseAddr("fd83::2")
)

// fuzzFrame wraps an ICMP or ICMPv6 message from the peer to us in IP and
// Ethernet headers; fix sets the ICMP checksum right.
func fuzzFrame(v6 bool, msg []byte, fix bool) []byte {
	msg = append([]byte(nil), msg[:min(len(msg), 1400)]...)
	eth := make([]byte, 14)
	copy(eth, fuzzMAC[:])
	eth[6], eth[11] = 0x02, 0x02
	if v6 {
		if fix && len(msg) >= 4 {
			wire.SetICMPv6Checksum(msg, fuzzPeer6, fuzzUs6)
		}
		binary.BigEndian.PutUint16(eth[12:], 0x86dd)
		h := make([]byte, 40)
		f := wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: 64, Src: fuzzPeer6, Dst: fuzzUs6, PayloadLen: len(msg)}
		f.Encode(h)
		return append(append(eth, h...), msg...)
	}
	if fix && len(msg) >= 4 {
		msg[2], msg[3] = 0, 0
		binary.BigEndian.PutUint16(msg[2:], ^wire.Checksum(msg, 0))
	}
	binary.BigEndian.PutUint16(eth[12:], 0x0800)
	f := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoICMP, Src: fuzzPeer4, Dst: fuzzUs4, PayloadLen: len(msg)}
	h := make([]byte, f.Len())
	f.Encode(h)
	return append(append(eth, h...), msg...)
}

// fuzzError is an ICMP error quoting a packet we sent (proto, with
// transport bytes quote) to the peer.
func fuzzError(v6 bool, typ, code uint8, proto uint8, quote []byte) []byte {
	var q []byte
	if v6 {
		q = make([]byte, 40)
		f := wire.IPv6Fields{NextHeader: proto, HopLimit: 64, Src: fuzzUs6, Dst: fuzzPeer6, PayloadLen: len(quote)}
		f.Encode(q)
	} else {
		f := wire.IPv4Fields{TTL: 64, Protocol: proto, Src: fuzzUs4, Dst: fuzzPeer4, PayloadLen: len(quote)}
		q = make([]byte, f.Len())
		f.Encode(q)
	}
	q = append(q, quote...)
	m := make([]byte, 8+len(q))
	m[0], m[1] = typ, code
	copy(m[8:], q)
	return m
}

// FuzzICMPInput feeds arbitrary ICMP and ICMPv6 messages, and errors
// quoting our packets, through the stack to open ping and raw sockets
// (every option that changes the input path on): nothing may panic, and
// the sockets' queues stay readable.
func FuzzICMPInput(f *testing.F) {
	echoReq4 := echo(false, 1, []byte("seed"))
	binary.BigEndian.PutUint16(echoReq4[4:], 0x0101)
	echoReq6 := echo(true, 1, []byte("seed"))
	binary.BigEndian.PutUint16(echoReq6[4:], 0x0102)
	reply4 := append([]byte(nil), echoReq4...)
	reply4[0] = wire.ICMPv4EchoReply
	reply6 := append([]byte(nil), echoReq6...)
	reply6[0] = wire.ICMPv6EchoReply
	f.Add(false, reply4, true)
	f.Add(true, reply6, true)
	f.Add(false, echoReq4, true)
	f.Add(false, fuzzError(false, wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, wire.IPProtoICMP, echoReq4), true)
	f.Add(false, fuzzError(false, wire.ICMPv4DestUnreachable, wire.ICMPv4FragmentationNeeded, wire.IPProtoICMP, echoReq4), true)
	f.Add(false, fuzzError(false, wire.ICMPv4TimeExceeded, 0, wire.IPProtoICMP, echoReq4[:8]), true)
	f.Add(false, fuzzError(false, wire.ICMPv4ParamProblem, 0, wire.IPProtoUDP, make([]byte, 8)), true)
	f.Add(true, fuzzError(true, wire.ICMPv6DstUnreachable, 4, wire.IPProtoICMPv6, echoReq6), true)
	f.Add(true, fuzzError(true, wire.ICMPv6PacketTooBig, 0, wire.IPProtoICMPv6, echoReq6), true)
	f.Add(true, fuzzError(true, wire.ICMPv6ParamProblem, 1, wire.IPProtoUDP, make([]byte, 8)), true)
	f.Add(false, []byte{3}, false)
	f.Add(true, []byte{}, true)

	s := stacktest.NewStack(f, stack.Options{ICMPRateLimit: -1})
	fl := &fuzzLink{}
	stacktest.AddNIC(f, s, fl, "10.83.0.1/24", "fd83::1/64")
	p, rp := New(s), raw.New(s)
	var eps []transport.Endpoint
	open := func(ep transport.Endpoint, err error) transport.Endpoint {
		if err != nil {
			f.Fatal(err)
		}
		eps = append(eps, ep)
		return ep
	}
	p4, p6 := open(p.NewEndpoint(syscall.AF_INET)), open(p.NewEndpoint(syscall.AF_INET6))
	if err := p4.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0x0101)); err != nil {
		f.Fatal(err)
	}
	if err := p6.Bind(netip.AddrPortFrom(netip.IPv6Unspecified(), 0x0102)); err != nil {
		f.Fatal(err)
	}
	open(p.NewEndpoint(syscall.AF_INET)).Connect(netip.AddrPortFrom(fuzzPeer4, 0))
	r4 := open(rp.NewEndpoint(syscall.AF_INET, syscall.IPPROTO_ICMP))
	r6 := open(rp.NewEndpoint(syscall.AF_INET6, syscall.IPPROTO_ICMPV6))
	ru4 := open(rp.NewEndpoint(syscall.AF_INET, syscall.IPPROTO_UDP))
	ru6 := open(rp.NewEndpoint(syscall.AF_INET6, syscall.IPPROTO_UDP))
	ru4.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_HDRINCL, 1)
	ru6.SetSockOpt(syscall.IPPROTO_IPV6, raw.IPV6_CHECKSUM, 6)
	r4.SetSockOpt(raw.SOL_RAW, raw.ICMP_FILTER, 1<<wire.ICMPv4Redirect)
	for _, ep := range eps {
		lvl, recverr, pktinfo := syscall.IPPROTO_IP, syscall.IP_RECVERR, syscall.IP_PKTINFO
		if ep == p6 || ep == r6 || ep == ru6 {
			lvl, recverr, pktinfo = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, syscall.IPV6_RECVPKTINFO
		}
		for _, o := range []int{recverr, pktinfo} {
			if err := ep.SetSockOpt(lvl, o, 1); err != nil {
				f.Fatal(err)
			}
		}
	}
	buf := make([]byte, 2048)
	f.Fuzz(func(t *testing.T, v6 bool, msg []byte, fix bool) {
		fl.deliver(fuzzFrame(v6, msg, fix))
		for _, ep := range eps {
			ep.Readiness(waiter.EventAll)
			for _, eq := range []bool{false, true} {
				for range 64 {
					if _, err := ep.Read([][]byte{buf}, transport.ReadOptions{ErrQueue: eq}); err == syscall.EAGAIN {
						break
					}
				}
			}
		}
	})
}
