package raw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

const wait = 5 * time.Second

func newRaw(t testing.TB, p *Protocol, v6 bool, proto int) transport.Endpoint {
	t.Helper()
	fam := syscall.AF_INET
	if v6 {
		fam = syscall.AF_INET6
	}
	ep, err := p.NewEndpoint(fam, proto)
	stacktest.NoErr(t, err)
	t.Cleanup(func() { ep.Close() })
	return ep
}

// echo4 is an ICMP echo request with its checksum (IPv4 raw sockets send
// what they are given); echo6 leaves the checksum to the stack.
func echo4(typ uint8, id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	copy(b[8:], data)
	f := wire.ICMPv4Fields{Type: typ, Ident: id, Seq: seq, PayloadLen: len(data)}
	f.Encode(b)
	return b
}

func echo6(typ uint8, id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	return b
}

// readUntil reads datagrams until match accepts one (skipping NDP and the
// like), or fails after the wait.
func readUntil(t *testing.T, ep transport.Endpoint, match func([]byte) bool) ([]byte, transport.ReadResult) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		b, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, time.Until(deadline))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if match(b) {
			return b, res
		}
	}
	t.Fatalf("no matching packet")
	return nil, transport.ReadResult{}
}

// gotWithin reports whether a datagram match accepts arrives within d.
func gotWithin(t *testing.T, ep transport.Endpoint, d time.Duration, match func([]byte) bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, max(time.Until(deadline), 0))
		if err != nil {
			return false
		}
		if match(b) {
			return true
		}
	}
}

func icmp4Is(typ uint8, id uint16) func([]byte) bool {
	return func(b []byte) bool {
		h, err := wire.ParseIPv4(b)
		if err != nil || h.Protocol() != wire.IPProtoICMP {
			return false
		}
		m, err := wire.ParseICMPv4(h.Payload())
		return err == nil && m.Type() == typ && m.Ident() == id
	}
}

func icmp6Is(typ uint8, id uint16) func([]byte) bool {
	return func(b []byte) bool {
		return len(b) >= 8 && b[0] == typ && binary.BigEndian.Uint16(b[4:]) == id
	}
}

// TestRawPrivilege: SOCK_RAW needs privilege (EPERM) and a protocol.
func TestRawPrivilege(t *testing.T) {
	s := stacktest.NewStack(t, stack.Options{})
	p := New(s)
	var r transport.Registry
	p.Register(&r)
	for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
		if _, err := r.New(transport.NewRequest{Family: fam, Type: syscall.SOCK_RAW, Protocol: 1, Cred: transport.Cred{UID: 1000}}); !errors.Is(err, syscall.EPERM) {
			t.Errorf("unprivileged raw socket: %v, want EPERM", err)
		}
		ep, err := r.New(transport.NewRequest{Family: fam, Type: syscall.SOCK_RAW, Protocol: 17, Cred: transport.Cred{Privileged: true}})
		if err != nil {
			t.Fatalf("privileged raw socket: %v", err)
		}
		in := ep.Info()
		if (in.Proto != "raw" && in.Proto != "raw6") || in.Protocol != 17 || in.Local.Port() != 17 || in.State != "7" {
			t.Errorf("Info %+v", in)
		}
		if len(p.Endpoints()) != 1 {
			t.Errorf("Endpoints %+v", p.Endpoints())
		}
		ep.Close()
		if len(p.Endpoints()) != 0 {
			t.Errorf("Endpoints after close %+v", p.Endpoints())
		}
		if _, err := r.New(transport.NewRequest{Family: fam, Type: syscall.SOCK_RAW, Protocol: 0, Cred: transport.Cred{Privileged: true}}); !errors.Is(err, syscall.EPROTONOSUPPORT) {
			t.Errorf("protocol 0: %v, want EPROTONOSUPPORT", err)
		}
	}
}

// TestRawReceiveICMP: raw ICMP sockets see every ICMP message for the
// host, IPv4 with its IP header, IPv6 without (RFC 3542 §3); the
// stack computes ICMPv6 checksums (B answers only a correct one).
func TestRawReceiveICMP(t *testing.T) {
	l := newLab(t)
	pa, pb := New(l.A), New(l.B)

	a4, b4 := newRaw(t, pa, false, syscall.IPPROTO_ICMP), newRaw(t, pb, false, syscall.IPPROTO_ICMP)
	stacktest.NoErr(t, b4.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1))
	stacktest.NoErr(t, b4.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVTTL, 1))
	_, err := a4.Write([][]byte{echo4(wire.ICMPv4Echo, 0x77, 1, []byte("raw4"))}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	req, res := readUntil(t, b4, icmp4Is(wire.ICMPv4Echo, 0x77))
	h := wire.IPv4(req)
	if h.Src() != addrA4 || h.Dst() != addrB4 || h.TTL() != 63 || !h.ChecksumValid() || !bytes.HasSuffix(req, []byte("raw4")) {
		t.Errorf("B's raw socket got %x", req)
	}
	if res.From != netip.AddrPortFrom(addrA4, 0) {
		t.Errorf("From %v", res.From)
	}
	if c := res.Control; !c.HasPktInfo || c.Dst != addrB4 || c.IfIndex == 0 || !c.HasTTL || c.TTL != 63 {
		t.Errorf("control messages %+v", c)
	}
	rep, _ := readUntil(t, a4, icmp4Is(wire.ICMPv4EchoReply, 0x77))
	if wire.IPv4(rep).Src() != addrB4 {
		t.Errorf("reply %x", rep)
	}

	a6, b6 := newRaw(t, pa, true, syscall.IPPROTO_ICMPV6), newRaw(t, pb, true, syscall.IPPROTO_ICMPV6)
	stacktest.NoErr(t, b6.SetSockOpt(syscall.IPPROTO_IPV6, syscall.IPV6_RECVHOPLIMIT, 1))
	_, err = a6.Write([][]byte{echo6(wire.ICMPv6EchoRequest, 0x66, 2, []byte("raw6"))}, transport.WriteOptions{To: netip.AddrPortFrom(addrB6, 0)})
	stacktest.NoErr(t, err)
	req, res = readUntil(t, b6, icmp6Is(wire.ICMPv6EchoRequest, 0x66))
	if !wire.ICMPv6(req).ChecksumValid(addrA6, addrB6) || !bytes.HasSuffix(req, []byte("raw6")) || res.From.Addr() != addrA6 {
		t.Errorf("B's raw6 socket got %x from %v", req, res.From)
	}
	if !res.Control.HasTTL || res.Control.TTL != 63 {
		t.Errorf("hop limit control message %+v", res.Control)
	}
	rep, res = readUntil(t, a6, icmp6Is(wire.ICMPv6EchoReply, 0x66))
	if res.From.Addr() != addrB6 || !bytes.HasSuffix(rep, []byte("raw6")) {
		t.Errorf("reply %x from %v", rep, res.From)
	}
}

// TestRawFilters: ICMP_FILTER blocks the IPv4 types whose bits are set;
// ICMP6_FILTER (RFC 3542 §3.2) the ICMPv6 types whose bits are set, given
// as [8]uint32 or as the 32 bytes of struct icmp6_filter.
func TestRawFilters(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	open, filtered := newRaw(t, p, false, syscall.IPPROTO_ICMP), newRaw(t, p, false, syscall.IPPROTO_ICMP)
	stacktest.NoErr(t, filtered.SetSockOpt(SOL_RAW, ICMP_FILTER, uint32(1<<wire.ICMPv4EchoReply)))
	if v, err := filtered.GetSockOpt(SOL_RAW, ICMP_FILTER); err != nil || v != 1 {
		t.Errorf("ICMP_FILTER reads %v, %v", v, err)
	}
	_, err := open.Write([][]byte{echo4(wire.ICMPv4Echo, 0x55, 1, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	readUntil(t, open, icmp4Is(wire.ICMPv4EchoReply, 0x55))
	if gotWithin(t, filtered, 100*time.Millisecond, icmp4Is(wire.ICMPv4EchoReply, 0x55)) {
		t.Errorf("ICMP_FILTER let an echo reply through")
	}
	udp := newRaw(t, p, false, syscall.IPPROTO_UDP)
	if err := udp.SetSockOpt(SOL_RAW, ICMP_FILTER, 1); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("ICMP_FILTER on a UDP raw socket: %v", err)
	}

	block := newRaw(t, p, true, syscall.IPPROTO_ICMPV6)
	var f [8]uint32
	f[wire.ICMPv6EchoReply>>5] |= 1 << (wire.ICMPv6EchoReply & 31) // ICMP6_FILTER_SETBLOCK
	stacktest.NoErr(t, block.SetSockOpt(syscall.IPPROTO_ICMPV6, ICMP6_FILTER, f))
	only := newRaw(t, p, true, syscall.IPPROTO_ICMPV6)
	pass := bytes.Repeat([]byte{0xff}, 32) // ICMP6_FILTER_SETBLOCKALL, then SETPASS(129)
	w := binary.NativeEndian.Uint32(pass[4*(wire.ICMPv6EchoReply>>5):])
	binary.NativeEndian.PutUint32(pass[4*(wire.ICMPv6EchoReply>>5):], w&^(1<<(wire.ICMPv6EchoReply&31)))
	stacktest.NoErr(t, only.SetSockOpt(syscall.IPPROTO_ICMPV6, ICMP6_FILTER, pass))
	if v, _ := block.GetSockOpt(syscall.IPPROTO_ICMPV6, ICMP6_FILTER); v != f {
		t.Errorf("ICMP6_FILTER reads %v", v)
	}
	_, err = only.Write([][]byte{echo6(wire.ICMPv6EchoRequest, 0x56, 1, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(addrB6, 0)})
	stacktest.NoErr(t, err)
	// The pass-only-129 socket's first message is the reply: NDP was blocked.
	b, _, err := stacktest.ReadWithin(only, transport.ReadOptions{}, wait)
	if err != nil || !icmp6Is(wire.ICMPv6EchoReply, 0x56)(b) {
		t.Errorf("pass-129 socket read %x, %v", b, err)
	}
	if gotWithin(t, block, 100*time.Millisecond, icmp6Is(wire.ICMPv6EchoReply, 0x56)) {
		t.Errorf("ICMP6_FILTER let an echo reply through")
	}
	if err := newRaw(t, p, false, syscall.IPPROTO_ICMP).SetSockOpt(syscall.IPPROTO_ICMPV6, ICMP6_FILTER, f); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("ICMP6_FILTER on an IPv4 socket: %v", err)
	}
}

// TestRawHeaderIncluded: with IP_HDRINCL (IPPROTO_RAW) the peer receives
// the header we wrote, with the total length, ID, source and checksum
// filled in where we left them zero (raw_send_hdrinc), and bad headers
// are refused.
func TestRawHeaderIncluded(t *testing.T) {
	l := newLab(t)
	pa, pr := New(l.A), New(l.R)
	snd := newRaw(t, pa, false, syscall.IPPROTO_RAW)
	rcv := newRaw(t, pr, false, 253)
	payload := []byte("header included")
	hdr := func(id uint16, src netip.Addr, total int) []byte {
		b := make([]byte, 20+len(payload))
		b[0], b[1] = 0x45, 0x28
		binary.BigEndian.PutUint16(b[2:], uint16(total))
		binary.BigEndian.PutUint16(b[4:], id)
		b[6] = 0x40 // DF
		b[8], b[9] = 9, 253
		if src.IsValid() {
			s := src.As4()
			copy(b[12:], s[:])
		}
		d := addrR4.As4()
		copy(b[16:], d[:])
		copy(b[20:], payload)
		return b
	}
	to := transport.WriteOptions{To: netip.AddrPortFrom(addrR4, 0)}

	// Everything left to the stack.
	sent := hdr(0, netip.Addr{}, 0)
	n, err := snd.Write([][]byte{sent}, to)
	if err != nil || n != len(sent) {
		t.Fatalf("write: %d, %v", n, err)
	}
	got, _, err := stacktest.ReadWithin(rcv, transport.ReadOptions{}, wait)
	stacktest.NoErr(t, err)
	h := wire.IPv4(got)
	if len(got) != len(sent) || h.TotalLen() != len(sent) || h.ID() == 0 || h.Src() != addrA4 || !h.ChecksumValid() ||
		!bytes.Equal(got[:2], sent[:2]) || !bytes.Equal(got[6:10], sent[6:10]) || !bytes.Equal(got[16:], sent[16:]) {
		t.Errorf("received %x\nsent     %x", got, sent)
	}

	// A complete header arrives exactly as built, checksum filled.
	sent = hdr(0x1234, addrA4, 20+len(payload))
	_, err = snd.Write([][]byte{sent}, to)
	stacktest.NoErr(t, err)
	wire.IPv4(sent).UpdateChecksum()
	got, _, err = stacktest.ReadWithin(rcv, transport.ReadOptions{}, wait)
	stacktest.NoErr(t, err)
	if !bytes.Equal(got, sent) {
		t.Errorf("received %x\nwant     %x", got, sent)
	}

	short := hdr(0, netip.Addr{}, 0)
	short[0] = 0x44
	long := hdr(0, netip.Addr{}, 0)[:24]
	long[0] = 0x4f
	for name, b := range map[string][]byte{"IHL 4": short, "IHL beyond the data": long, "10 bytes": sent[:10]} {
		if _, err := snd.Write([][]byte{b}, to); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", name, err)
		}
	}
	big := make([]byte, 1600)
	copy(big, hdr(0, netip.Addr{}, 0)[:20])
	if _, err := snd.Write([][]byte{big}, to); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("over the MTU: %v, want EMSGSIZE", err)
	}

	// IP_HDRINCL on an ICMP socket: the echo goes out as written and R
	// answers it.
	icmp := newRaw(t, pa, false, syscall.IPPROTO_ICMP)
	stacktest.NoErr(t, icmp.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_HDRINCL, 1))
	e := echo4(wire.ICMPv4Echo, 0x99, 1, nil)
	pkt := hdr(0, netip.Addr{}, 0)[:20]
	pkt[9] = wire.IPProtoICMP
	_, err = icmp.Write([][]byte{pkt, e}, to)
	stacktest.NoErr(t, err)
	readUntil(t, icmp, icmp4Is(wire.ICMPv4EchoReply, 0x99))
}

// TestRawIPv6Checksum: IPV6_CHECKSUM makes the stack fill in the checksum
// at the offset on send and verify it on receive (RFC 3542 §3.1); it is
// not settable on ICMPv6 sockets, odd offsets are refused.
func TestRawIPv6Checksum(t *testing.T) {
	l := newLab(t)
	pa, pr := New(l.A), New(l.R)
	snd, plain := newRaw(t, pa, true, 253), newRaw(t, pa, true, 253)
	check, anyEp := newRaw(t, pr, true, 253), newRaw(t, pr, true, 253)
	for _, ep := range []transport.Endpoint{snd, check} {
		stacktest.NoErr(t, ep.SetSockOpt(syscall.IPPROTO_IPV6, IPV6_CHECKSUM, 2))
	}
	if v, _ := check.GetSockOpt(syscall.IPPROTO_IPV6, IPV6_CHECKSUM); v != 2 {
		t.Errorf("IPV6_CHECKSUM reads %v", v)
	}
	to := transport.WriteOptions{To: netip.AddrPortFrom(addrR6, 0)}
	_, err := snd.Write([][]byte{[]byte("\x01\x02\x00\x00summed")}, to)
	stacktest.NoErr(t, err)
	for _, ep := range []transport.Endpoint{check, anyEp} {
		b, _, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, wait)
		if err != nil || wire.Checksum(b, wire.PseudoHeaderChecksum(253, addrA6, addrR6, uint32(len(b)))) != 0xffff {
			t.Errorf("received %x, %v: checksum not filled in", b, err)
		}
	}
	_, err = plain.Write([][]byte{[]byte("\x01\x02\xde\xadwrong!")}, to)
	stacktest.NoErr(t, err)
	if _, _, err := stacktest.ReadWithin(anyEp, transport.ReadOptions{}, wait); err != nil {
		t.Errorf("socket without IPV6_CHECKSUM: %v", err)
	}
	stacktest.NoRead(t, check, transport.ReadOptions{}, 50*time.Millisecond)

	if _, err := snd.Write([][]byte{[]byte("\x01\x02\x03")}, to); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("checksum offset beyond the data: %v", err)
	}
	if err := snd.SetSockOpt(syscall.IPPROTO_IPV6, IPV6_CHECKSUM, 3); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("odd offset: %v", err)
	}
	icmp6 := newRaw(t, pa, true, syscall.IPPROTO_ICMPV6)
	if err := icmp6.SetSockOpt(syscall.IPPROTO_IPV6, IPV6_CHECKSUM, 4); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IPV6_CHECKSUM on ICMPv6: %v", err)
	}
}

// TestRawBindConnect: a raw socket sees only packets to its bound address
// and, when connected, from its peer.
func TestRawBindConnect(t *testing.T) {
	l := newLab(t)
	pa, pb := New(l.A), New(l.B)
	toA, toR := newRaw(t, pb, false, 253), newRaw(t, pb, false, 253)
	stacktest.NoErr(t, toA.Connect(netip.AddrPortFrom(addrA4, 0)))
	stacktest.NoErr(t, toR.Connect(netip.AddrPortFrom(addrR4, 0)))
	lo := newRaw(t, pb, false, 253)
	stacktest.NoErr(t, lo.Bind(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)))
	if err := lo.Bind(netip.AddrPortFrom(addrA4, 0)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("bind to a foreign address: %v", err)
	}
	snd := newRaw(t, pa, false, 253)
	_, err := snd.Write([][]byte{[]byte("to B")}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	b, _, err := stacktest.ReadWithin(toA, transport.ReadOptions{}, wait)
	if err != nil || !bytes.HasSuffix(b, []byte("to B")) {
		t.Errorf("connected to A: %x, %v", b, err)
	}
	stacktest.NoRead(t, toR, transport.ReadOptions{}, 50*time.Millisecond)
	stacktest.NoRead(t, lo, transport.ReadOptions{}, 0)
	if ra, err := toA.RemoteAddr(); err != nil || ra.Addr() != addrA4 || toA.LocalAddr().Addr() != addrB4 {
		t.Errorf("connected: remote %v %v local %v", ra, err, toA.LocalAddr())
	}
	if in := toA.Info(); in.State != "1" || in.Remote.Addr() != addrA4 {
		t.Errorf("Info %+v", in)
	}
}

// TestRawErrors: ICMP errors about what a raw socket sent: on its error
// queue with IP_RECVERR (payload after the IP header, or the whole quote
// with IP_HDRINCL), and as SO_ERROR on a connected socket for hard ones
// (raw_err, rawv6_err).
func TestRawErrors(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	type tc struct {
		name      string
		v6        bool
		proto     int
		dst       netip.Addr
		msg       []byte
		ttl       uint8
		typ, code uint8
		errno     syscall.Errno
		offender  netip.Addr
		fatal     bool
	}
	for _, c := range []tc{
		{"v4-proto-unreachable", false, 253, addrB4, []byte("no such protocol"), 0,
			wire.ICMPv4DestUnreachable, wire.ICMPv4ProtoUnreachable, syscall.ENOPROTOOPT, addrB4, true},
		{"v4-ttl", false, syscall.IPPROTO_ICMP, addrB4, echo4(wire.ICMPv4Echo, 0x31, 1, nil), 1,
			wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, syscall.EHOSTUNREACH, addrR4, false},
		{"v6-noroute", true, syscall.IPPROTO_ICMPV6, netip.MustParseAddr("fd99::1"), echo6(wire.ICMPv6EchoRequest, 0x32, 1, nil), 0,
			wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, syscall.ENETUNREACH, addrR6, false},
		{"v6-unknown-next-header", true, 253, addrB6, []byte("no such protocol"), 0,
			wire.ICMPv6ParamProblem, wire.ICMPv6CodeUnrecognizedNext, syscall.EPROTO, addrB6, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lvl, opt := syscall.IPPROTO_IP, syscall.IP_RECVERR
			if c.v6 {
				lvl, opt = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR
			}
			wo := transport.WriteOptions{To: netip.AddrPortFrom(c.dst, 0), HasTTL: c.ttl != 0, TTL: c.ttl}
			ep := newRaw(t, p, c.v6, c.proto)
			stacktest.NoErr(t, ep.SetSockOpt(lvl, opt, 1))
			_, err := ep.Write([][]byte{c.msg}, wo)
			stacktest.NoErr(t, err)
			b, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{ErrQueue: true}, wait)
			if err != nil {
				t.Fatalf("error queue: %v", err)
			}
			ee := res.Control.Err
			if ee == nil || ee.Type != c.typ || ee.Code != c.code || ee.Errno != int(c.errno) || ee.Offender != c.offender {
				t.Fatalf("extended error %+v", ee)
			}
			// The quote is what we sent (a checksum the stack filled in
			// aside).
			if len(b) < len(c.msg) || !bytes.Equal(b[4:len(c.msg)], c.msg[4:]) || res.From.Addr() != c.dst {
				t.Errorf("error payload %x from %v, sent %x", b, res.From, c.msg)
			}

			conn := newRaw(t, p, c.v6, c.proto)
			stacktest.NoErr(t, conn.Connect(netip.AddrPortFrom(c.dst, 0)))
			_, err = conn.Write([][]byte{c.msg}, transport.WriteOptions{HasTTL: c.ttl != 0, TTL: c.ttl})
			stacktest.NoErr(t, err)
			if c.fatal {
				deadline := time.Now().Add(wait)
				for time.Now().Before(deadline) {
					if v, _ := conn.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != syscall.Errno(0) {
						if v != c.errno {
							t.Errorf("SO_ERROR %v, want %v", v, c.errno)
						}
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				t.Errorf("no SO_ERROR on the connected socket")
			} else {
				time.Sleep(100 * time.Millisecond)
				if v, _ := conn.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != syscall.Errno(0) {
					t.Errorf("soft error reported without IP_RECVERR: %v", v)
				}
			}
		})
	}

	// With IP_HDRINCL the error queue returns the whole quoted packet.
	// (Errors go by the quoted protocol, as raw_icmp_error: an
	// IPPROTO_RAW socket would hear none.)
	ep := newRaw(t, p, false, 253)
	stacktest.NoErr(t, ep.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_HDRINCL, 1))
	stacktest.NoErr(t, ep.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVERR, 1))
	pkt := make([]byte, 28)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 253
	d := addrB4.As4()
	copy(pkt[16:], d[:])
	_, err := ep.Write([][]byte{pkt}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	b, _, err := stacktest.ReadWithin(ep, transport.ReadOptions{ErrQueue: true}, wait)
	if err != nil || len(b) != 28 || b[0] != 0x45 || b[9] != 253 || wire.IPv4(b).Src() != addrA4 {
		t.Errorf("IP_HDRINCL error payload %x, %v", b, err)
	}
}

// TestRawReceiveQueueBound: a flood beyond SO_RCVBUF is dropped and
// counted, not queued without bound.
func TestRawReceiveQueueBound(t *testing.T) {
	s := stacktest.NewStack(t, stack.Options{})
	p := New(s)
	rcv, snd := newRaw(t, p, false, 253), newRaw(t, p, false, 253)
	stacktest.NoErr(t, rcv.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096))
	lo := transport.WriteOptions{To: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}
	for range 100 {
		_, err := snd.Write([][]byte{make([]byte, 1000)}, lo)
		stacktest.NoErr(t, err)
	}
	deadline := time.Now().Add(wait)
	for rcv.Info().Drops == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	in := rcv.Info()
	if in.Drops == 0 || in.RecvQ > 8192 {
		t.Errorf("Info %+v: want drops and a bounded queue", in)
	}
}

// TestRawBroadcastLoop: a broadcast from a raw socket (with SO_BROADCAST,
// EACCES without) reaches the link and is looped to our own raw sockets,
// with and without IP_HDRINCL, as Linux's ip_mc_output does.
func TestRawBroadcastLoop(t *testing.T) {
	l := newLab(t)
	pa, pr := New(l.A), New(l.R)
	own, peer := newRaw(t, pa, false, 253), newRaw(t, pr, false, 253)
	bcast := netip.MustParseAddr("10.82.1.255")
	to := transport.WriteOptions{To: netip.AddrPortFrom(bcast, 0)}
	snd := newRaw(t, pa, false, 253)
	if _, err := snd.Write([][]byte{[]byte("bcast")}, to); !errors.Is(err, syscall.EACCES) {
		t.Errorf("broadcast without SO_BROADCAST: %v", err)
	}
	stacktest.NoErr(t, snd.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1))
	hdr := make([]byte, 20, 30)
	hdr[0], hdr[8], hdr[9] = 0x45, 1, 253
	b4 := bcast.As4()
	copy(hdr[16:], b4[:])
	for _, hdrincl := range []int{0, 1} {
		stacktest.NoErr(t, snd.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_HDRINCL, hdrincl))
		msg := []byte("bcast")
		if hdrincl == 1 {
			msg = append(hdr, "bcast"...)
		}
		_, err := snd.Write([][]byte{msg}, to)
		stacktest.NoErr(t, err)
		for _, ep := range []transport.Endpoint{own, peer} {
			b, _, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, wait)
			if err != nil || wire.IPv4(b).Dst() != bcast || !bytes.HasSuffix(b, []byte("bcast")) {
				t.Errorf("IP_HDRINCL %d: got %x, %v", hdrincl, b, err)
			}
		}
	}
}
