package stack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/wire"
)

// drainICMP counts the captured messages of type typ and code, discarding
// the rest, without waiting.
func drainICMP(ch chan icmpRx, typ, code uint8) (n int, last icmpRx) {
	for {
		select {
		case r := <-ch:
			if r.icmp().Type() == typ && r.icmp().Code() == code {
				n++
				last = r
			}
		default:
			return n, last
		}
	}
}

func TestICMPv4ErrorRateLimitPerHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPair(t, 0)
		rx := captureICMP(t, a.s)
		burst := func(n int) int {
			for range n {
				if err := sendProto(a.s, mustAddr("10.0.0.2"), 99, []byte("12345678"), WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait()
			got, _ := drainICMP(rx, wire.ICMPv4DestUnreachable, wire.ICMPv4ProtoUnreachable)
			return got
		}
		st := &b.s.Stats().ICMP
		// Linux: a burst of 6 (XRLIM_BURST_FACTOR), then one per second.
		if got := burst(10); got != 6 {
			t.Fatalf("first burst: %d errors, want 6", got)
		}
		if v := st.OutRateLimitHost.Load(); v != 4 {
			t.Errorf("OutRateLimitHost %d, want 4", v)
		}
		time.Sleep(time.Second)
		if got := burst(3); got != 1 {
			t.Fatalf("after 1s: %d errors, want 1", got)
		}
		if v := st.OutRateLimitHost.Load(); v != 6 {
			t.Errorf("OutRateLimitHost %d, want 6", v)
		}
		// Fragmentation needed is exempt: path MTU discovery needs it.
		pkt := ipv4Packet(t, wire.IPv4Fields{TTL: 64, DF: true, Protocol: 99, Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.9")}, make([]byte, 8))
		for range 3 {
			b.s.sendICMPv4Error(b.nic, PacketHost, pkt, wire.ICMPv4Fields{Type: 3, Code: 4, MTU: 1000})
		}
		synctest.Wait()
		if got, _ := drainICMP(rx, 3, 4); got != 3 {
			t.Errorf("frag needed sent %d times, want 3", got)
		}
		time.Sleep(10 * time.Second)
		if got := burst(10); got != 6 {
			t.Fatalf("after refill: %d errors, want 6", got)
		}
		if v := st.OutDestUnreachs.Load(); v != 6+1+3+6 {
			t.Errorf("OutDestUnreachs %d", v)
		}
	})
}

func TestICMPv4ErrorRateLimitGlobal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 41)
		a := newTestHost(t, nw, Options{Seed: 1}, "10.0.0.1/24")
		b := newTestHost(t, nw, Options{Seed: 2, ICMPRateLimit: -1, ICMPMsgsBurst: 3, ICMPMsgsPerSec: 2}, "10.0.0.2/24")
		neighbours(t, a.nic, "10.0.0.1", b.nic, "10.0.0.2")
		rx := captureICMP(t, a.s)
		for range 10 {
			sendProto(a.s, mustAddr("10.0.0.2"), 99, []byte("12345678"), WriteOptions{})
		}
		synctest.Wait()
		if got, _ := drainICMP(rx, 3, 2); got != 3 {
			t.Fatalf("%d errors, want the burst of 3", got)
		}
		if v := b.s.Stats().ICMP.OutRateLimitGlobal.Load(); v != 7 {
			t.Errorf("OutRateLimitGlobal %d, want 7", v)
		}
		time.Sleep(time.Second) // 2 tokens per second
		for range 5 {
			sendProto(a.s, mustAddr("10.0.0.2"), 99, []byte("12345678"), WriteOptions{})
		}
		synctest.Wait()
		if got, _ := drainICMP(rx, 3, 2); got != 2 {
			t.Fatalf("%d errors after 1s, want 2", got)
		}
	})
}

func TestICMPv4ReassemblyTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A 5 s timeout keeps the test clear of the neighbour cache's 30 s
		// garbage collection timer.
		rc := fragment.IPv4Config()
		rc.Timeout = 5 * time.Second
		a, b := newPairOpts(t, 0, Options{Seed: 1}, Options{Seed: 2, IPv4Reassembly: rc})
		rx := captureICMP(t, a.s)
		first := ipv4Packet(t, wire.IPv4Fields{ID: 77, MF: true, TTL: 64, Protocol: 99,
			Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, []byte("first 16 bytes!!"))
		later := ipv4Packet(t, wire.IPv4Fields{ID: 78, FragmentOffset: 16, TTL: 64, Protocol: 99,
			Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, []byte("tail"))
		b.nic.DeliverFrame(frameTo(b.nic, b.nic.MAC(), first))
		b.nic.DeliverFrame(frameTo(b.nic, b.nic.MAC(), later))
		synctest.Wait()
		st := &b.s.Stats().IP
		if st.ReasmReqds.Load() != 2 || st.ReasmOKs.Load() != 0 {
			t.Fatalf("reqds %d oks %d", st.ReasmReqds.Load(), st.ReasmOKs.Load())
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if n, _ := drainICMP(rx, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyExceeded); n != 0 {
			t.Fatal("time exceeded before the timeout")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		n, r := drainICMP(rx, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyExceeded)
		if n != 1 {
			t.Fatalf("%d reassembly time exceeded messages, want 1 (only the datagram whose first fragment came)", n)
		}
		q := mustQuoted(t, r.icmp())
		if q.ID() != 77 || r.pi.Src != mustAddr("10.0.0.2") || string(q.Payload()[:8]) != "first 16" {
			t.Errorf("quote id %d from %v payload %q", q.ID(), r.pi.Src, q.Payload())
		}
		// Both datagrams timed out: Linux's ip_expire counts each, first
		// fragment or not.
		if v := st.ReasmTimeout.Load(); v != 2 {
			t.Errorf("ReasmTimeout %d, want 2", v)
		}
		if v := st.ReasmFails.Load(); v < 2 {
			t.Errorf("ReasmFails %d", v)
		}
	})
}

func TestICMPv4ErrorRules(t *testing.T) {
	nw := newTestNet(t, 31)
	h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
	mk := func(f wire.IPv4Fields, payload []byte) []byte {
		if f.TTL == 0 {
			f.TTL = 64
		}
		if !f.Src.IsValid() {
			f.Src = mustAddr("10.0.0.7")
		}
		if !f.Dst.IsValid() {
			f.Dst = mustAddr("10.0.0.1")
		}
		if f.Protocol == 0 {
			f.Protocol = wire.IPProtoUDP
		}
		return ipv4Packet(t, f, payload)
	}
	icmp := func(typ uint8) []byte { return []byte{typ, 0, 0, 0, 0, 0, 0, 0} }
	cases := []struct {
		name string
		pt   PacketType
		pkt  []byte
		want bool
	}{
		{"unicast UDP", PacketHost, mk(wire.IPv4Fields{}, make([]byte, 8)), true},
		{"link broadcast", PacketBroadcast, mk(wire.IPv4Fields{}, make([]byte, 8)), false},
		{"link multicast", PacketMulticast, mk(wire.IPv4Fields{}, make([]byte, 8)), false},
		{"to limited broadcast", PacketHost, mk(wire.IPv4Fields{Dst: broadcast4}, make([]byte, 8)), false},
		{"to directed broadcast", PacketHost, mk(wire.IPv4Fields{Dst: mustAddr("10.0.0.255")}, make([]byte, 8)), false},
		{"to multicast", PacketHost, mk(wire.IPv4Fields{Dst: mustAddr("224.0.0.9")}, make([]byte, 8)), false},
		{"from 0.0.0.0", PacketHost, mk(wire.IPv4Fields{Src: mustAddr("0.0.0.0")}, make([]byte, 8)), false},
		{"from 0/8", PacketHost, mk(wire.IPv4Fields{Src: mustAddr("0.1.2.3")}, make([]byte, 8)), false},
		{"from broadcast", PacketHost, mk(wire.IPv4Fields{Src: broadcast4}, make([]byte, 8)), false},
		{"from multicast", PacketHost, mk(wire.IPv4Fields{Src: mustAddr("239.1.1.1")}, make([]byte, 8)), false},
		{"from class E", PacketHost, mk(wire.IPv4Fields{Src: mustAddr("240.0.0.1")}, make([]byte, 8)), false},
		{"from subnet broadcast", PacketHost, mk(wire.IPv4Fields{Src: mustAddr("10.0.0.255")}, make([]byte, 8)), false},
		{"first fragment", PacketHost, mk(wire.IPv4Fields{MF: true}, make([]byte, 8)), true},
		{"later fragment", PacketHost, mk(wire.IPv4Fields{FragmentOffset: 8}, make([]byte, 8)), false},
		{"about echo request", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(8)), true},
		{"about echo reply", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(0)), true},
		{"about dest unreachable", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(3)), false},
		{"about source quench", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(4)), false},
		{"about time exceeded", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(11)), false},
		{"about redirect", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(5)), false},
		{"about parameter problem", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(12)), false},
		{"about unknown ICMP type", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(200)), false},
		{"about empty ICMP", PacketHost, mk(wire.IPv4Fields{Protocol: 1}, nil), false},
		{"truncated header", PacketHost, mk(wire.IPv4Fields{}, nil)[:12], false},
	}
	for _, c := range cases {
		if got := h.s.icmpv4ErrorAllowed(h.nic, c.pt, c.pkt); got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.want)
		}
	}
	// And end to end: nothing is sent for a refused case.
	before := h.s.Stats().ICMP.OutMsgs.Load()
	h.s.sendICMPv4Error(h.nic, PacketHost, mk(wire.IPv4Fields{Protocol: 1}, icmp(3)), wire.ICMPv4Fields{Type: 3, Code: 2})
	if h.s.Stats().ICMP.OutMsgs.Load() != before {
		t.Error("error sent about an error")
	}
}

func TestICMPv4QuoteLimit(t *testing.T) {
	a, b := newPair(t, 0)
	rx := captureICMP(t, a.s)
	if err := sendProto(a.s, mustAddr("10.0.0.2"), 99, pattern(1000), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := waitICMP(t, rx, wire.ICMPv4DestUnreachable)
	if r.h().TotalLen() != 576 || len(r.icmp().Original()) != 576-28 {
		t.Errorf("error total length %d, quote %d: want 576 and 548", r.h().TotalLen(), len(r.icmp().Original()))
	}
	_ = b
}

func TestICMPv4TimestampRequest(t *testing.T) {
	a, _ := newPair(t, 0)
	rx := captureICMP(t, a.s)
	r, _ := a.s.FindRoute(0, netip.Addr{}, mustAddr("10.0.0.2"))
	p := NewPacket(20)
	copy(p.Bytes()[8:], []byte{0, 0, 0x12, 0x34})
	f := wire.ICMPv4Fields{Type: wire.ICMPv4Timestamp, Ident: 4, Seq: 5, PayloadLen: 12}
	f.Encode(p.Bytes())
	if err := a.s.WritePacket(&r, p, WriteOptions{Proto: 1}); err != nil {
		t.Fatal(err)
	}
	rep := waitICMP(t, rx, wire.ICMPv4TimestampReply)
	d := rep.icmp().Data()
	if rep.icmp().Ident() != 4 || rep.icmp().Seq() != 5 || len(d) != 12 || string(d[:4]) != "\x00\x00\x12\x34" {
		t.Fatalf("timestamp reply % x", []byte(rep.icmp()))
	}
	if ts := uint32(d[4])<<24 | uint32(d[5])<<16 | uint32(d[6])<<8 | uint32(d[7]); ts >= 86400000 {
		t.Errorf("receive timestamp %d not in ms since midnight", ts)
	}
}

func TestICMPv4EchoToBroadcastIgnored(t *testing.T) {
	a, b := newPair(t, 0)
	rx := captureICMP(t, a.s)
	for _, dst := range []string{"10.0.0.255", "255.255.255.255"} {
		r, err := a.s.FindRoute(a.nic.Index(), netip.Addr{}, mustAddr(dst))
		if err != nil {
			t.Fatal(err)
		}
		p := NewPacket(8)
		f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 1, Seq: 1}
		f.Encode(p.Bytes())
		if err := a.s.WritePacket(&r, p, WriteOptions{Proto: 1}); err != nil {
			t.Fatal(err)
		}
	}
	noICMP(t, rx, wire.ICMPv4EchoReply, 300*time.Millisecond)
	if v := b.s.Stats().ICMP.InEchos.Load(); v != 2 {
		t.Errorf("B InEchos %d, want 2", v)
	}
	if v := b.s.Stats().ICMP.OutEchoReps.Load(); v != 0 {
		t.Errorf("B answered a broadcast echo")
	}
}

func TestICMPv4ChecksumError(t *testing.T) {
	_, b := newPair(t, 0)
	m := []byte{8, 0, 0, 0, 0, 1, 0, 1, 'x'} // checksum left zero
	pkt := ipv4Packet(t, wire.IPv4Fields{TTL: 64, Protocol: 1, Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, m)
	b.nic.DeliverFrame(frameTo(b.nic, b.nic.MAC(), pkt))
	st := b.s.Stats()
	if st.ICMP.InMsgs.Load() != 1 || st.ICMP.InCsumErrors.Load() != 1 || st.ICMP.InErrors.Load() != 1 || st.ICMP.InEchos.Load() != 0 {
		t.Errorf("msgs %d csum %d errors %d echos %d", st.ICMP.InMsgs.Load(), st.ICMP.InCsumErrors.Load(),
			st.ICMP.InErrors.Load(), st.ICMP.InEchos.Load())
	}
}

func TestICMPv4FragNeededWithoutMTU(t *testing.T) {
	// An old router sends fragmentation needed with MTU 0: RFC 1191's
	// plateau below the quoted length, but never under min_pmtu (552).
	_, b := newPair(t, 0)
	ta := &fakeTransport{errs: make(chan *ICMPError, 4)}
	b.s.RegisterTransport(wire.IPProtoUDP, ta)
	for _, c := range []struct {
		dst       string
		total     int
		mtu, want int
	}{
		{"10.9.0.1", 1500, 0, 1492},
		{"10.9.0.2", 1000, 0, 552},
		{"10.9.0.3", 1500, 300, 552},
		{"10.9.0.4", 1500, 1280, 1280},
	} {
		orig := ipv4Packet(t, wire.IPv4Fields{TTL: 64, DF: true, Protocol: wire.IPProtoUDP, Src: mustAddr("10.0.0.2"), Dst: mustAddr(c.dst)}, make([]byte, 8))
		orig[2], orig[3] = byte(c.total>>8), byte(c.total)
		wire.IPv4(orig).UpdateChecksum()
		m := buildICMPError(t, wire.ICMPv4Fields{Type: 3, Code: 4, MTU: uint16(c.mtu)}, orig)
		pkt := ipv4Packet(t, wire.IPv4Fields{TTL: 64, Protocol: 1, Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, m)
		b.nic.DeliverFrame(frameTo(b.nic, b.nic.MAC(), pkt))
		if got, _ := b.s.PathMTU(mustAddr(c.dst)); got != c.want {
			t.Errorf("%s: path MTU %d, want %d", c.dst, got, c.want)
		}
		select {
		case e := <-ta.errs:
			if e.MTU != c.want || e.Dst != mustAddr(c.dst) {
				t.Errorf("%s: error %+v", c.dst, e)
			}
		default:
			t.Errorf("%s: no error delivered to the transport", c.dst)
		}
	}
}

func TestICMPv4HostUnreachableOnARPFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Nobody answers ARP for 10.0.0.9: once the neighbour cache gives
		// up, the packet that waited is answered with host unreachable,
		// which comes back to our own transport (RFC 1122 §2.3.2.2).
		a, _ := newPair(t, 0)
		ta := &fakeTransport{accept: true, errs: make(chan *ICMPError, 4)}
		a.s.RegisterTransport(wire.IPProtoUDP, ta)
		if err := sendProto(a.s, mustAddr("10.0.0.9"), wire.IPProtoUDP, []byte{0, 1, 0, 2, 0, 8, 0, 0}, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case e := <-ta.errs:
			if e.Type != 3 || e.Code != 1 || e.Dst != mustAddr("10.0.0.9") || e.Proto != wire.IPProtoUDP {
				t.Fatalf("error %+v", e)
			}
		default:
			t.Fatal("no host unreachable after ARP failure")
		}
		if v := a.s.Stats().IP.OutDiscards.Load(); v != 1 {
			t.Errorf("OutDiscards %d", v)
		}
	})
}

// TestBroadcastFromUnaddressedNIC: a limited broadcast bound to a NIC
// with no IPv4 address goes out from 0.0.0.0, as Linux sends a DHCP
// DISCOVER (RFC 2131 §4.1); unbound, there is still no source.
func TestBroadcastFromUnaddressedNIC(t *testing.T) {
	nw := newTestNet(t, 0)
	a := newTestHost(t, nw, Options{})
	r, err := a.s.FindRoute(a.nic.Index(), netip.Addr{}, mustAddr("255.255.255.255"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Src != netip.IPv4Unspecified() || r.Kind != RouteBroadcast {
		t.Errorf("source %v kind %v, want 0.0.0.0 broadcast", r.Src, r.Kind)
	}
	if _, err := a.s.FindRoute(0, netip.Addr{}, mustAddr("255.255.255.255")); err == nil {
		t.Error("unbound broadcast from an unaddressed host found a route")
	}
	if _, err := a.s.FindRoute(a.nic.Index(), netip.Addr{}, mustAddr("10.0.0.9")); err == nil {
		t.Error("bound unicast from an unaddressed NIC found a route")
	}
}
