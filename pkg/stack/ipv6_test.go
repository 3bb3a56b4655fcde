package stack

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// icmp6Msg is an ICMPv6 message a raw handler saw.
type icmp6Msg struct {
	src, dst netip.Addr
	hop      uint8
	network  []byte
	msg      []byte
}

// icmp6Catcher registers a raw ICMPv6 handler on s and returns the channel
// of messages of the given types (all types when none are given).
func icmp6Catcher(t testing.TB, s *Stack, types ...uint8) chan icmp6Msg {
	t.Helper()
	ch := make(chan icmp6Msg, 64)
	remove := s.AddRawHandler(true, wire.IPProtoICMPv6, func(pi *PacketInfo, pkt []byte) {
		if len(pkt) == 0 {
			return
		}
		if len(types) > 0 && !bytes.Contains(types, pkt[:1]) {
			return
		}
		select {
		case ch <- icmp6Msg{pi.Src, pi.Dst, pi.TTL, bytes.Clone(pi.Network), bytes.Clone(pkt)}:
		default:
		}
	})
	t.Cleanup(remove)
	return ch
}

// pair6 makes two hosts on one emulated network with static neighbour
// entries for each other (NDP is not needed for these tests).
func pair6(t testing.TB, seed uint64, pcA, pcB emu.PortConfig) (a, b *testHost) {
	return pair6Opts(t, seed, Options{Seed: seed}, pcA, pcB)
}

func pair6Opts(t testing.TB, seed uint64, opts Options, pcA, pcB emu.PortConfig) (a, b *testHost) {
	t.Helper()
	nw := newTestNet(t, seed)
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	a = newTestHostNIC(t, nw, opts, no, pcA, "2001:db8::1/64", "fe80::1/64")
	opts.Seed++
	b = newTestHostNIC(t, nw, opts, no, pcB, "2001:db8::2/64", "fe80::2/64")
	link6(t, a, b, "2001:db8::2", "fe80::2")
	link6(t, b, a, "2001:db8::1", "fe80::1")
	return a, b
}

// link6 seeds from's neighbour cache with to's addresses.
func link6(t testing.TB, from, to *testHost, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if err := from.nic.NDP().AddStatic(mustAddr(a), to.nic.MAC()); err != nil {
			t.Fatal(err)
		}
	}
}

// sendEcho6 sends an echo request from s to dst with size data bytes.
func sendEcho6(t testing.TB, s *Stack, nic int, dst netip.Addr, id, seq uint16, size int, o WriteOptions) error {
	t.Helper()
	r, err := s.FindRoute(nic, netip.Addr{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPacket(wire.ICMPv6ErrorHeaderLen + size)
	b := p.Bytes()
	for i := range size {
		b[wire.ICMPv6ErrorHeaderLen+i] = byte(i * 7)
	}
	f := wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.ICMPv6EchoRest(id, seq), PayloadLen: size}
	f.Encode(b)
	f.SetChecksum(b, r.Src, r.Dst)
	o.Proto = wire.IPProtoICMPv6
	return s.WritePacket(&r, p, o)
}

func wait6(t testing.TB, ch chan icmp6Msg, what string) icmp6Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(3 * time.Second):
		t.Fatalf("no %s within 3s", what)
	}
	return icmp6Msg{}
}

func expectNone6(t testing.TB, ch chan icmp6Msg, d time.Duration, what string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected %s: type %d code %d from %v", what, m.msg[0], m.msg[1], m.src)
	case <-time.After(d):
	}
}

func checkEchoReply(t testing.TB, m icmp6Msg, id, seq uint16, size int) {
	t.Helper()
	r, err := wire.ParseICMPv6(m.msg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type() != wire.ICMPv6EchoReply || r.Ident() != id || r.Seq() != seq {
		t.Fatalf("reply type %d id %d seq %d, want 129 %d %d", r.Type(), r.Ident(), r.Seq(), id, seq)
	}
	if !r.ChecksumValid(m.src, m.dst) {
		t.Error("reply checksum invalid")
	}
	data := r.EchoData()
	if len(data) != size {
		t.Fatalf("reply carries %d bytes, want %d", len(data), size)
	}
	for i := range data {
		if data[i] != byte(i*7) {
			t.Fatalf("reply data differs at %d", i)
		}
	}
}

func TestIPv6EchoRoundTrip(t *testing.T) {
	a, b := pair6(t, 60, emu.PortConfig{}, emu.PortConfig{})
	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	requests := icmp6Catcher(t, b.s, wire.ICMPv6EchoRequest)
	for seq := range uint16(3) {
		if err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::2"), 77, seq, 56, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		req := wait6(t, requests, "echo request at b")
		if req.hop != 64 || req.src != mustAddr("2001:db8::1") {
			t.Errorf("request hop %d src %v", req.hop, req.src)
		}
		checkEchoReply(t, wait6(t, replies, "echo reply"), 77, seq, 56)
	}
	// Link-local, bound to the NIC by the zone.
	if err := sendEcho6(t, a.s, 0, mustAddr("fe80::2%eth0"), 78, 1, 8, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	m := wait6(t, replies, "link-local echo reply")
	checkEchoReply(t, m, 78, 1, 8)
	if m.src != mustAddr("fe80::2") {
		t.Errorf("link-local reply from %v", m.src)
	}
	if got := b.s.stats.ICMP6.InEchos.Load(); got != 4 {
		t.Errorf("b Icmp6InEchos = %d, want 4", got)
	}
	if got := b.s.stats.ICMP6.OutEchoReplies.Load(); got != 4 {
		t.Errorf("b Icmp6OutEchoReplies = %d, want 4", got)
	}
	if got := a.s.stats.ICMP6Msg.Out[wire.ICMPv6EchoRequest].Load(); got != 4 {
		t.Errorf("a Icmp6OutType128 = %d, want 4", got)
	}
	if got := b.s.stats.IP6.InDelivers.Load(); got != 4 {
		t.Errorf("b Ip6InDelivers = %d, want 4", got)
	}
}

func TestIPv6EchoMulticastAndLoopback(t *testing.T) {
	a, b := pair6(t, 61, emu.PortConfig{}, emu.PortConfig{})
	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	// ff02::1: b answers from its own address on that link.
	if err := sendEcho6(t, a.s, a.nic.Index(), mustAddr("ff02::1"), 5, 1, 16, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	m := wait6(t, replies, "reply to ff02::1")
	checkEchoReply(t, m, 5, 1, 16)
	if m.src.IsMulticast() || !b.nic.hasAddress(m.src) {
		t.Errorf("multicast echo answered from %v", m.src)
	}
	if got := b.s.stats.IP6.InMcastPkts.Load(); got == 0 {
		t.Error("Ip6InMcastPkts not counted")
	}
	// Our own address goes through lo.
	if err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::1"), 6, 2, 16, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEchoReply(t, wait6(t, replies, "reply from ourselves"), 6, 2, 16)
	if err := sendEcho6(t, a.s, 0, mustAddr("::1"), 6, 3, 16, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEchoReply(t, wait6(t, replies, "reply from ::1"), 6, 3, 16)
}

func TestIPv6FragmentedEcho(t *testing.T) {
	a, b := pair6(t, 62, emu.PortConfig{}, emu.PortConfig{})
	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	if err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::2"), 9, 1, 4000, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEchoReply(t, wait6(t, replies, "4000-byte echo reply"), 9, 1, 4000)
	for _, h := range []*testHost{a, b} {
		st := &h.s.stats.IP6
		// B counts FragOKs after its last fragment is out, which may be
		// after A has the reply.
		eventually(t, func() bool { return st.FragOKs.Load() == 1 })
		// 4008 bytes of ICMPv6 over a 1500-byte MTU: 1448+1448+1112.
		if st.FragOKs.Load() != 1 || st.FragCreates.Load() != 3 {
			t.Errorf("FragOKs %d FragCreates %d, want 1 3", st.FragOKs.Load(), st.FragCreates.Load())
		}
		if st.ReasmReqds.Load() != 3 || st.ReasmOKs.Load() != 1 {
			t.Errorf("ReasmReqds %d ReasmOKs %d, want 3 1", st.ReasmReqds.Load(), st.ReasmOKs.Load())
		}
	}
	// Don't fragment: the caller is told.
	err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::2"), 9, 2, 4000, WriteOptions{DontFragment: true})
	if !errors.Is(err, ErrMsgSize) {
		t.Fatalf("DontFragment: %v, want ErrMsgSize", err)
	}
}

// TestIPv6PacketTooBigLowersPMTU: a PTB lowers the path MTU (RFC 8201 §4),
// never below 1280, and later packets are fragmented to it.
func TestIPv6PacketTooBigLowersPMTU(t *testing.T) {
	a, b := pair6(t, 63, emu.PortConfig{}, emu.PortConfig{})
	dst := mustAddr("2001:db8::2")
	ptbAbout := func(src string, mtu uint32) {
		// b tells a that a packet from src was too big.
		orig := make([]byte, 1300)
		(&wire.IPv6Fields{NextHeader: wire.IPProtoUDP, HopLimit: 64, Src: mustAddr(src),
			Dst: dst, PayloadLen: 1260}).Encode(orig)
		r, err := b.s.FindRoute(0, netip.Addr{}, mustAddr("2001:db8::1"))
		if err != nil {
			t.Fatal(err)
		}
		p := NewPacket(8 + len(orig))
		f := wire.ICMPv6Fields{Type: wire.ICMPv6PacketTooBig, Rest: mtu, PayloadLen: len(orig)}
		f.Encode(p.Bytes())
		copy(p.Bytes()[8:], orig)
		f.SetChecksum(p.Bytes(), r.Src, r.Dst)
		if err := b.s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoICMPv6}); err != nil {
			t.Fatal(err)
		}
	}
	waitPMTU := func(want int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if m, ok := a.s.PathMTU(dst); ok && m == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		m, _ := a.s.PathMTU(dst)
		t.Fatalf("path MTU %d, want %d", m, want)
	}
	ptb := func(mtu uint32) { ptbAbout("2001:db8::1", mtu) }
	// One about a packet that is not ours changes nothing (had it been
	// applied, the path MTU would be 1300 below).
	ptbAbout("2001:db8::77", 1300)
	ptb(1400)
	waitPMTU(1400)
	ptb(600) // below the minimum: 1280 (RFC 8201 §4)
	waitPMTU(1280)
	if got := a.s.stats.ICMP6.InPktTooBigs.Load(); got != 3 {
		t.Errorf("Icmp6InPktTooBigs = %d", got)
	}
	// A 1400-byte echo is now fragmented to 1280-byte packets.
	before := b.s.stats.IP6.ReasmReqds.Load()
	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	if err := sendEcho6(t, a.s, 0, dst, 3, 3, 1400, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEchoReply(t, wait6(t, replies, "echo after PTB"), 3, 3, 1400)
	if got := b.s.stats.IP6.ReasmReqds.Load() - before; got != 2 {
		t.Errorf("b reassembled %d fragments, want 2", got)
	}
	if got := a.s.stats.IP6.FragCreates.Load(); got != 2 {
		t.Errorf("a FragCreates = %d, want 2", got)
	}
	if err := sendEcho6(t, a.s, 0, dst, 3, 4, 1300, WriteOptions{DontFragment: true}); !errors.Is(err, ErrMsgSize) {
		t.Errorf("1300-byte DF echo over a 1280 path: %v", err)
	}
}

// routerNet is A — R — B on two emulated networks.
type routerNet struct {
	a, r1, r2, b *testHost
	rs           *Stack
}

func newRouterNet(t testing.TB, seed uint64, mtuB int) *routerNet {
	t.Helper()
	n1, n2 := newTestNet(t, seed), newTestNet(t, seed+100)
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	a := newTestHostNIC(t, n1, Options{Seed: seed}, no, emu.PortConfig{}, "2001:db8:1::10/64")
	b := newTestHostNIC(t, n2, Options{Seed: seed + 1}, no, emu.PortConfig{MTU: mtuB}, "2001:db8:2::10/64")
	rs := New(Options{Seed: seed + 2, IPv6Forwarding: true})
	t.Cleanup(func() { rs.Close() })
	mk := func(nw *emu.Network, addr string, pc emu.PortConfig) *testHost {
		n, err := rs.AddNIC(nw.NewPort(pc), no)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(addr)}); err != nil {
			t.Fatal(err)
		}
		n.SetUp(true)
		return &testHost{s: rs, nic: n}
	}
	r1 := mk(n1, "2001:db8:1::1/64", emu.PortConfig{})
	r2 := mk(n2, "2001:db8:2::1/64", emu.PortConfig{MTU: mtuB})
	link6(t, a, r1, "2001:db8:1::1")
	link6(t, r1, a, "2001:db8:1::10")
	link6(t, b, r2, "2001:db8:2::1")
	link6(t, r2, b, "2001:db8:2::10")
	for _, x := range []struct {
		h  *testHost
		gw string
	}{{a, "2001:db8:1::1"}, {b, "2001:db8:2::1"}} {
		if err := x.h.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: mustAddr(x.gw),
			NIC: x.h.nic.Index()}); err != nil {
			t.Fatal(err)
		}
	}
	return &routerNet{a: a, r1: r1, r2: r2, b: b, rs: rs}
}

func TestIPv6Forwarding(t *testing.T) {
	rn := newRouterNet(t, 70, 1500)
	replies := icmp6Catcher(t, rn.a.s, wire.ICMPv6EchoReply)
	errs := icmp6Catcher(t, rn.a.s, wire.ICMPv6DstUnreachable, wire.ICMPv6TimeExceeded, wire.ICMPv6PacketTooBig)
	requests := icmp6Catcher(t, rn.b.s, wire.ICMPv6EchoRequest)
	bAddr := mustAddr("2001:db8:2::10")

	if err := sendEcho6(t, rn.a.s, 0, bAddr, 1, 1, 100, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if req := wait6(t, requests, "forwarded request"); req.hop != 63 {
		t.Errorf("forwarded hop limit %d, want 63", req.hop)
	}
	checkEchoReply(t, wait6(t, replies, "reply through R"), 1, 1, 100)
	if got := rn.rs.stats.IP6.OutForwDatagrams.Load(); got != 2 {
		t.Errorf("R Ip6OutForwDatagrams = %d, want 2", got)
	}

	t.Run("HopLimit", func(t *testing.T) {
		if err := sendEcho6(t, rn.a.s, 0, bAddr, 1, 2, 100, WriteOptions{TTL: 1}); err != nil {
			t.Fatal(err)
		}
		m := wait6(t, errs, "time exceeded")
		if m.msg[0] != wire.ICMPv6TimeExceeded || m.msg[1] != 0 || m.src != mustAddr("2001:db8:1::1") {
			t.Fatalf("got type %d code %d from %v", m.msg[0], m.msg[1], m.src)
		}
		q, err := wire.ParseIPv6Quoted(wire.ICMPv6(m.msg).Original())
		if err != nil || q.Dst() != bAddr || q.HopLimit() != 1 {
			t.Fatalf("quoted %v %v", q, err)
		}
	})
	t.Run("NoRoute", func(t *testing.T) {
		if err := sendEcho6(t, rn.a.s, 0, mustAddr("2001:db8:99::1"), 1, 3, 10, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		m := wait6(t, errs, "no route")
		if m.msg[0] != wire.ICMPv6DstUnreachable || m.msg[1] != wire.ICMPv6CodeNoRoute {
			t.Fatalf("got type %d code %d", m.msg[0], m.msg[1])
		}
		if rn.rs.stats.IP6.InNoRoutes.Load() != 1 {
			t.Error("R Ip6InNoRoutes not counted")
		}
	})
	t.Run("LinkLocalNotForwarded", func(t *testing.T) {
		// A packet from a link-local source to B, sent straight at R.
		p := NewPacket(8)
		f := wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest}
		f.Encode(p.Bytes())
		src := mustAddr("fe80::10")
		f.SetChecksum(p.Bytes(), src, bAddr)
		(&wire.IPv6Fields{NextHeader: 58, HopLimit: 64, Src: src, Dst: bAddr, PayloadLen: 8}).Encode(p.Prepend(40))
		if err := rn.a.nic.sendIPv6(mustAddr("2001:db8:1::1"), p); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for rn.rs.stats.ICMP6.OutDestUnreachs.Load() < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := rn.rs.stats.ICMP6.OutDestUnreachs.Load(); got != 2 {
			t.Fatalf("R sent %d destination unreachables, want 2 (no route, beyond scope)", got)
		}
		expectNone6(t, requests, 100*time.Millisecond, "link-local packet forwarded")
	})
}

// TestIPv6ForwardingRejectRoutes: a forwarded packet whose route is a
// reject type is dropped silently (blackhole) or answered with
// Destination Unreachable, code 0 for unreachable and code 1 for
// prohibit (RFC 4443 §3.1; Linux ip6_pkt_discard / ip6_pkt_prohibit).
func TestIPv6ForwardingRejectRoutes(t *testing.T) {
	rn := newRouterNet(t, 72, 1500)
	errs := icmp6Catcher(t, rn.a.s, wire.ICMPv6DstUnreachable)
	for i, tt := range []struct {
		typ  route.Type
		code int // -1: no error expected
	}{
		{route.TypeBlackhole, -1},
		{route.TypeUnreachable, int(wire.ICMPv6CodeNoRoute)},
		{route.TypeProhibit, int(wire.ICMPv6CodeAdminProhibited)},
	} {
		dst := netip.MustParsePrefix(fmt.Sprintf("2001:db8:7%d::/64", i))
		if err := rn.rs.Routes().Add(route.Route{Dst: dst, Type: tt.typ}); err != nil {
			t.Fatal(err)
		}
		discards := rn.rs.stats.IP6.InDiscards.Load()
		if err := sendEcho6(t, rn.a.s, 0, dst.Addr().Next(), 1, uint16(i), 10, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if tt.code < 0 {
			expectNone6(t, errs, 300*time.Millisecond, "error for a blackhole route")
			if rn.rs.stats.IP6.InDiscards.Load() == discards {
				t.Error("blackhole drop not counted in Ip6InDiscards")
			}
			continue
		}
		m := wait6(t, errs, fmt.Sprintf("error for route type %v", tt.typ))
		if m.msg[1] != uint8(tt.code) || m.src != mustAddr("2001:db8:1::1") {
			t.Errorf("route type %v: code %d from %v, want code %d from R", tt.typ, m.msg[1], m.src, tt.code)
		}
	}
	if got := rn.rs.stats.IP6.OutForwDatagrams.Load(); got != 0 {
		t.Errorf("R forwarded %d datagrams through reject routes", got)
	}
}

func TestIPv6ForwardingPacketTooBig(t *testing.T) {
	rn := newRouterNet(t, 71, 1280)
	errs := icmp6Catcher(t, rn.a.s, wire.ICMPv6PacketTooBig)
	replies := icmp6Catcher(t, rn.a.s, wire.ICMPv6EchoReply)
	bAddr := mustAddr("2001:db8:2::10")
	if err := sendEcho6(t, rn.a.s, 0, bAddr, 2, 1, 1400, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	m := wait6(t, errs, "packet too big")
	if mtu := wire.ICMPv6(m.msg).MTU(); mtu != 1280 || m.src != mustAddr("2001:db8:1::1") {
		t.Fatalf("PTB MTU %d from %v", mtu, m.src)
	}
	if got, _ := rn.a.s.PathMTU(bAddr); got != 1280 {
		t.Errorf("A's path MTU to B = %d, want 1280", got)
	}
	if rn.rs.stats.IP6.InTooBigErrors.Load() != 1 {
		t.Error("R Ip6InTooBigErrors not counted")
	}
	// The retry is fragmented by A and gets through.
	if err := sendEcho6(t, rn.a.s, 0, bAddr, 2, 2, 1400, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkEchoReply(t, wait6(t, replies, "reply after PTB"), 2, 2, 1400)
}

// TestIPv6RouterAlertAndUnspecifiedSource: the Router Alert hop-by-hop
// option (RFC 2711, value 0 for MLD), the unspecified source that DAD and
// MLD use, the multicast hop limit default of 1, and a fragmented packet
// whose unfragmentable part holds the Hop-by-Hop header (RFC 8200 §4.5).
func TestIPv6RouterAlertAndUnspecifiedSource(t *testing.T) {
	a, b := pair6(t, 64, emu.PortConfig{}, emu.PortConfig{})
	type got struct {
		pi      PacketInfo
		payload []byte
	}
	ch := make(chan got, 4)
	b.s.AddRawHandler(true, protoTest, func(pi *PacketInfo, pkt []byte) {
		x := *pi
		x.Network = bytes.Clone(pi.Network)
		ch <- got{x, bytes.Clone(pkt)}
	})
	recv := func() got {
		t.Helper()
		select {
		case g := <-ch:
			return g
		case <-time.After(3 * time.Second):
			t.Fatal("nothing delivered")
		}
		return got{}
	}
	checkRA := func(network []byte) {
		t.Helper()
		if len(network) != 48 || network[6] != wire.IPProtoHopByHop {
			t.Fatalf("network headers %x", network)
		}
		hbh, err := wire.ParseIPv6Options(network[40:])
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := hbh.RouterAlert(); !ok || v != wire.IPv6RouterAlertMLD || hbh.NextHeader() != protoTest {
			t.Errorf("router alert %d %v, next header %d", v, ok, hbh.NextHeader())
		}
	}

	group := mustAddr("ff02::1")
	r := Route{NIC: a.nic, Dst: group, NextHop: group, MTU: a.nic.MTU(), Kind: RouteMulticast}
	if err := a.s.WritePacket(&r, NewPacketFrom(testData), WriteOptions{Proto: protoTest, RouterAlert6: true}); err != nil {
		t.Fatal(err)
	}
	g := recv()
	if !g.pi.Src.IsUnspecified() || g.pi.Dst != group || g.pi.TTL != 1 || !bytes.Equal(g.payload, testData) {
		t.Errorf("got src %v dst %v hop %d payload %q", g.pi.Src, g.pi.Dst, g.pi.TTL, g.payload)
	}
	checkRA(g.pi.Network)

	big := bytes.Repeat(testData, 200) // 3200 bytes: three fragments
	ru, err := a.s.FindRoute(0, netip.Addr{}, mustAddr("2001:db8::2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.WritePacket(&ru, NewPacketFrom(big), WriteOptions{Proto: protoTest, RouterAlert6: true, TTL: 9}); err != nil {
		t.Fatal(err)
	}
	g = recv()
	if g.pi.TTL != 9 || !bytes.Equal(g.payload, big) {
		t.Errorf("reassembled hop %d, %d bytes", g.pi.TTL, len(g.payload))
	}
	checkRA(g.pi.Network)
	if got := a.s.stats.IP6.FragCreates.Load(); got != 3 {
		t.Errorf("FragCreates = %d, want 3", got)
	}
}
