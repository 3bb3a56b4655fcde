package socket

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/socket/internal/fake"
	"github.com/stackbox/stackbox/pkg/transport"
)

func parseCmsgs(t *testing.T, b []byte) map[[2]int32][]byte {
	t.Helper()
	msgs, err := syscall.ParseSocketControlMessage(b)
	if err != nil {
		t.Fatalf("our cmsgs do not parse: %v", err)
	}
	out := make(map[[2]int32][]byte)
	for _, m := range msgs {
		out[[2]int32{m.Header.Level, m.Header.Type}] = m.Data
	}
	return out
}

func key(level, typ int) [2]int32 { return [2]int32{int32(level), int32(typ)} }

func TestEncodeControlIPv4(t *testing.T) {
	c := transport.ControlMessages{
		HasTTL: true, TTL: 63, HasTOS: true, TOS: 0x28,
		HasPktInfo: true, IfIndex: 3, Dst: netip.MustParseAddr("192.0.2.7"),
		Err: &transport.SockExtendedErr{Errno: int(syscall.EHOSTUNREACH), Origin: transport.OriginICMP, Type: 3, Code: 1,
			Offender: netip.MustParseAddr("198.51.100.1")},
	}
	oob := make([]byte, 256)
	n, trunc := EncodeControl(syscall.AF_INET, c, oob, nil)
	if trunc {
		t.Fatal("truncated with room to spare")
	}
	want := syscall.CmsgSpace(sizeofInPktinfo) + syscall.CmsgSpace(4) + syscall.CmsgSpace(1) + syscall.CmsgSpace(sizeofExtendedErr+sizeofSockaddrIn)
	if n != want {
		t.Errorf("used %d bytes, want %d", n, want)
	}
	m := parseCmsgs(t, oob[:n])
	ne := binary.NativeEndian
	if d := m[key(syscall.SOL_IP, syscall.IP_TTL)]; len(d) != 4 || ne.Uint32(d) != 63 {
		t.Errorf("IP_TTL = %v", d)
	}
	if d := m[key(syscall.SOL_IP, syscall.IP_TOS)]; len(d) != 1 || d[0] != 0x28 {
		t.Errorf("IP_TOS = %v (Linux sends one byte)", d)
	}
	if d := m[key(syscall.SOL_IP, syscall.IP_PKTINFO)]; len(d) != 12 || ne.Uint32(d) != 3 ||
		netip.AddrFrom4([4]byte(d[8:12])).String() != "192.0.2.7" {
		t.Errorf("IP_PKTINFO = %v", d)
	}
	d := m[key(syscall.SOL_IP, syscall.IP_RECVERR)]
	if len(d) != 32 || syscall.Errno(ne.Uint32(d)) != syscall.EHOSTUNREACH || d[4] != 2 || d[5] != 3 || d[6] != 1 {
		t.Fatalf("IP_RECVERR = %v", d)
	}
	if ne.Uint16(d[16:]) != syscall.AF_INET || netip.AddrFrom4([4]byte(d[20:24])).String() != "198.51.100.1" {
		t.Errorf("offender = %v", d[16:])
	}
}

func TestEncodeControlIPv6(t *testing.T) {
	c := transport.ControlMessages{
		HasTTL: true, TTL: 255, HasTOS: true, TOS: 0xb8,
		HasPktInfo: true, IfIndex: 2, Dst: netip.MustParseAddr("2001:db8::2"),
		Err: &transport.SockExtendedErr{Errno: int(syscall.EMSGSIZE), Origin: transport.OriginICMP6, Type: 2, Info: 1280,
			Offender: netip.MustParseAddr("fe80::1%eth0")},
	}
	oob := make([]byte, 256)
	n, _ := EncodeControl(syscall.AF_INET6, c, oob, fakeIfs{"eth0": 2})
	m := parseCmsgs(t, oob[:n])
	ne := binary.NativeEndian
	if d := m[key(syscall.SOL_IPV6, syscall.IPV6_HOPLIMIT)]; len(d) != 4 || ne.Uint32(d) != 255 {
		t.Errorf("IPV6_HOPLIMIT = %v", d)
	}
	if d := m[key(syscall.SOL_IPV6, syscall.IPV6_TCLASS)]; len(d) != 4 || ne.Uint32(d) != 0xb8 {
		t.Errorf("IPV6_TCLASS = %v", d)
	}
	if d := m[key(syscall.SOL_IPV6, syscall.IPV6_PKTINFO)]; len(d) != 20 || ne.Uint32(d[16:]) != 2 ||
		netip.AddrFrom16([16]byte(d[:16])).String() != "2001:db8::2" {
		t.Errorf("IPV6_PKTINFO = %v", d)
	}
	d := m[key(syscall.SOL_IPV6, syscall.IPV6_RECVERR)]
	if len(d) != 44 || syscall.Errno(ne.Uint32(d)) != syscall.EMSGSIZE || d[4] != 3 || ne.Uint32(d[8:]) != 1280 {
		t.Fatalf("IPV6_RECVERR = %v", d)
	}
	o := d[16:]
	if ne.Uint16(o) != syscall.AF_INET6 || netip.AddrFrom16([16]byte(o[8:24])).String() != "fe80::1" || ne.Uint32(o[24:]) != 2 {
		t.Errorf("offender = %v", o)
	}

	// Too little room: whole messages only, and MSG_CTRUNC.
	small := make([]byte, syscall.CmsgSpace(sizeofIn6Pktinfo)+syscall.CmsgSpace(4)+4)
	n, trunc := EncodeControl(syscall.AF_INET6, c, small, nil)
	if !trunc || n != syscall.CmsgSpace(sizeofIn6Pktinfo)+syscall.CmsgSpace(4) {
		t.Errorf("small buffer: n %d trunc %v", n, trunc)
	}
	if len(parseCmsgs(t, small[:n])) != 2 {
		t.Error("truncated output does not hold the two messages that fit")
	}
}

func TestParseControl(t *testing.T) {
	var oob []byte
	oob = append(oob, TTLControl(syscall.AF_INET, 5)...)
	oob = append(oob, TOSControl(syscall.AF_INET, 0x10)...)
	oob = append(oob, PktInfoControl(syscall.AF_INET, netip.MustParseAddr("10.0.0.2"), 4)...)
	var o transport.WriteOptions
	if err := ParseControl(syscall.AF_INET, oob, &o); err != nil {
		t.Fatal(err)
	}
	if !o.HasTTL || o.TTL != 5 || !o.HasTOS || o.TOS != 0x10 || o.IfIndex != 4 || o.Src.String() != "10.0.0.2" {
		t.Errorf("parsed %+v", o)
	}
	// One-byte IP_TOS, as Linux accepts.
	o = transport.WriteOptions{}
	if err := ParseControl(syscall.AF_INET, cmsg(syscall.SOL_IP, syscall.IP_TOS, []byte{7}), &o); err != nil || o.TOS != 7 {
		t.Errorf("1-byte IP_TOS: %+v %v", o, err)
	}

	oob = append(TTLControl(syscall.AF_INET6, 9), TOSControl(syscall.AF_INET6, -1)...)
	oob = append(oob, PktInfoControl(syscall.AF_INET6, netip.MustParseAddr("2001:db8::9"), 2)...)
	o = transport.WriteOptions{}
	if err := ParseControl(syscall.AF_INET6, oob, &o); err != nil {
		t.Fatal(err)
	}
	if !o.HasTTL || o.TTL != 9 || o.HasTOS || o.IfIndex != 2 || o.Src.String() != "2001:db8::9" {
		t.Errorf("parsed %+v (IPV6_TCLASS -1 means the default)", o)
	}
	// IPv6 cmsgs mean nothing to an AF_INET socket and are skipped, as
	// Linux's ip_cmsg_send does.
	o = transport.WriteOptions{}
	if err := ParseControl(syscall.AF_INET, TTLControl(syscall.AF_INET6, 9), &o); err != nil || o.HasTTL {
		t.Errorf("IPV6_HOPLIMIT on AF_INET: %+v %v", o, err)
	}
	// An IPv4 source on an AF_INET6 socket is v4-mapped.
	o = transport.WriteOptions{}
	if err := ParseControl(syscall.AF_INET6, PktInfoControl(syscall.AF_INET, netip.MustParseAddr("10.0.0.2"), 0), &o); err != nil || !o.Src.Is4In6() {
		t.Errorf("IP_PKTINFO on AF_INET6: %+v %v", o, err)
	}
	for name, bad := range map[string][]byte{
		"ttl 0":        TTLControl(syscall.AF_INET, 0),
		"ttl 256":      TTLControl(syscall.AF_INET, 256),
		"hoplimit 256": TTLControl(syscall.AF_INET6, 256),
		"unknown type": intCmsg(syscall.SOL_IP, syscall.IP_RECVERR, 1),
		"SCM_RIGHTS":   intCmsg(syscall.SOL_SOCKET, syscall.SCM_RIGHTS, 0),
		"bad pktinfo":  cmsg(syscall.SOL_IP, syscall.IP_PKTINFO, []byte{1, 2}),
	} {
		o = transport.WriteOptions{}
		if err := ParseControl(syscall.AF_INET6, bad, &o); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", name, err)
		}
	}
}

// RecvMsg returns the cmsgs the socket's options ask for; SendMsg hands
// the parsed cmsgs to the endpoint.
func TestMsgControlThroughSockets(t *testing.T) {
	l, _ := newTestLayer(t)
	a, b := boundPair(t, l)
	for _, opt := range []int{syscall.IP_RECVTTL, syscall.IP_RECVTOS, syscall.IP_PKTINFO} {
		if err := a.SetSockOptInt(syscall.IPPROTO_IP, opt, 1); err != nil {
			t.Fatal(err)
		}
	}
	to, _ := a.GetSockName()
	oob := append(TTLControl(syscall.AF_INET, 3), TOSControl(syscall.AF_INET, 0x20)...)
	if n, err := b.SendMsg([][]byte{[]byte("he"), []byte("llo")}, oob, to, syscall.MSG_DONTROUTE); err != nil || n != 5 {
		t.Fatalf("sendmsg = %d, %v", n, err)
	}
	sent := b.Endpoint().(*fake.Dgram).LastSent()
	if !sent.HasTTL || sent.TTL != 3 || !sent.HasTOS || sent.TOS != 0x20 || !sent.DontRoute {
		t.Errorf("endpoint got %+v", sent)
	}
	buf1, buf2 := make([]byte, 2), make([]byte, 10)
	roob := make([]byte, 128)
	n, oobn, flags, from, err := a.RecvMsg([][]byte{buf1, buf2}, roob, 0)
	if err != nil || n != 5 || string(buf1)+string(buf2[:3]) != "hello" || flags != 0 || from == nil {
		t.Fatalf("recvmsg = %d %q%q %#x %v %v", n, buf1, buf2[:3], flags, from, err)
	}
	m := parseCmsgs(t, roob[:oobn])
	if len(m) != 3 || m[key(syscall.SOL_IP, syscall.IP_TTL)] == nil || m[key(syscall.SOL_IP, syscall.IP_TOS)] == nil ||
		m[key(syscall.SOL_IP, syscall.IP_PKTINFO)] == nil {
		t.Errorf("cmsgs %v", m)
	}
	// No room for cmsgs: MSG_CTRUNC.
	b.SendTo([]byte("x"), 0, to)
	if _, oobn, flags, _, err = a.RecvMsg([][]byte{buf2}, nil, 0); err != nil || oobn != 0 || flags&syscall.MSG_CTRUNC == 0 {
		t.Errorf("recvmsg without oob room: oobn %d flags %#x %v", oobn, flags, err)
	}
	bad := cmsg(syscall.SOL_IP, syscall.IP_TTL, make([]byte, 4))
	putCmsgHeader(bad, 200, syscall.SOL_IP, syscall.IP_TTL) // claims more than there is
	if _, err := b.SendMsg([][]byte{buf1}, bad, to, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("sendmsg with a malformed cmsg: %v, want EINVAL", err)
	}
}

func TestErrQueue(t *testing.T) {
	l, _ := newTestLayer(t)
	a, _ := boundPair(t, l)
	// An empty error queue never blocks, even on a blocking socket.
	if _, _, _, _, err := a.RecvMsg([][]byte{make([]byte, 10)}, nil, syscall.MSG_ERRQUEUE); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("empty error queue: %v, want EAGAIN", err)
	}
	dst := netip.MustParseAddrPort("192.0.2.1:33434")
	a.Endpoint().(*fake.Dgram).QueueError(transport.Datagram{
		Data: []byte("orig"), From: dst,
		Control: transport.ControlMessages{Err: &transport.SockExtendedErr{
			Errno: int(syscall.ECONNREFUSED), Origin: transport.OriginICMP, Type: 3, Code: 3,
			Offender: netip.MustParseAddr("192.0.2.1")}},
	})
	buf, oob := make([]byte, 10), make([]byte, 128)
	n, oobn, flags, from, err := a.RecvMsg([][]byte{buf}, oob, syscall.MSG_ERRQUEUE)
	if err != nil || n != 4 || flags&syscall.MSG_ERRQUEUE == 0 {
		t.Fatalf("error queue read = %d %#x %v", n, flags, err)
	}
	if f, ok := from.(*syscall.SockaddrInet4); !ok || f.Port != 33434 {
		t.Errorf("from = %+v, want the original destination", from)
	}
	m := parseCmsgs(t, oob[:oobn])
	d := m[key(syscall.SOL_IP, syscall.IP_RECVERR)]
	if len(d) != 32 || syscall.Errno(binary.NativeEndian.Uint32(d)) != syscall.ECONNREFUSED {
		t.Errorf("IP_RECVERR = %v", d)
	}
}
