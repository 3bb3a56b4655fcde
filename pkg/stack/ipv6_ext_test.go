package stack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Extension header processing (RFC 8200 §4) on crafted packets injected
// into b's input, with a (the source) catching the ICMPv6 errors.

const protoTest = 253 // RFC 3692 experimental: b has a raw handler for it

// pkt6 builds an IPv6 packet from a's address to dst with the given next
// header and payload.
func pkt6(dst netip.Addr, next uint8, payload []byte) []byte {
	b := make([]byte, 40+len(payload))
	(&wire.IPv6Fields{NextHeader: next, HopLimit: 64, Src: mustAddr("2001:db8::1"), Dst: dst,
		PayloadLen: len(payload)}).Encode(b)
	copy(b[40:], payload)
	return b
}

// opts6 builds an options header carrying one option (after PadN so the
// option sits at offset 4 of the header).
func opts6(next, typ uint8) []byte {
	f := wire.IPv6OptionsFields{NextHeader: next, Options: wire.AppendIPv6Option(wire.AppendIPv6Option(nil, wire.IPv6OptPadN, nil), typ, []byte{1, 2})}
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

func routing6(next, typ, left uint8) []byte {
	b := make([]byte, 24) // length 2: one address for type 0
	b[0], b[1], b[2], b[3] = next, 2, typ, left
	return b
}

func frag6(next uint8, off int, more bool, id uint32, data []byte) []byte {
	b := make([]byte, 8+len(data))
	(&wire.IPv6FragmentFields{NextHeader: next, Offset: off, More: more, ID: id}).Encode(b)
	copy(b[8:], data)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var testData = []byte("0123456789abcdef")

func TestIPv6ExtensionHeaders(t *testing.T) {
	uni, multi := mustAddr("2001:db8::2"), mustAddr("ff02::1")
	type want struct {
		deliver   bool
		icmp      bool
		typ, code uint8
		pointer   uint32
	}
	deliver := want{deliver: true}
	drop := want{}
	pp := func(code uint8, ptr uint32) want {
		return want{icmp: true, typ: wire.ICMPv6ParamProblem, code: code, pointer: ptr}
	}
	cases := []struct {
		name string
		pkts [][]byte
		want want
	}{
		{"plain", [][]byte{pkt6(uni, protoTest, testData)}, deliver},
		{"hbh-first", [][]byte{pkt6(uni, 0, cat(opts6(protoTest, 0x1f), testData))}, deliver},
		{"hbh-not-first", [][]byte{pkt6(uni, 60, cat(opts6(0, 0x1f), opts6(protoTest, 0x1f), testData))},
			pp(wire.ICMPv6CodeUnrecognizedNext, 40)},
		{"opt-00-skip", [][]byte{pkt6(uni, 60, cat(opts6(protoTest, 0x1f), testData))}, deliver},
		{"opt-01-discard", [][]byte{pkt6(uni, 60, cat(opts6(protoTest, 0x5f), testData))}, drop},
		{"opt-10-icmp", [][]byte{pkt6(uni, 60, cat(opts6(protoTest, 0x9f), testData))},
			pp(wire.ICMPv6CodeUnrecognizedOption, 44)},
		{"opt-10-icmp-multicast", [][]byte{pkt6(multi, 60, cat(opts6(protoTest, 0x9f), testData))},
			pp(wire.ICMPv6CodeUnrecognizedOption, 44)},
		{"opt-11-icmp", [][]byte{pkt6(uni, 0, cat(opts6(protoTest, 0xdf), testData))},
			pp(wire.ICMPv6CodeUnrecognizedOption, 44)},
		{"opt-11-multicast-silent", [][]byte{pkt6(multi, 0, cat(opts6(protoTest, 0xdf), testData))}, drop},
		{"router-alert", [][]byte{pkt6(uni, 0, cat(opts6(protoTest, wire.IPv6OptRouterAlert), testData))}, deliver},
		{"routing-type0-rejected", [][]byte{pkt6(uni, 43, cat(routing6(protoTest, 0, 1), testData))},
			pp(wire.ICMPv6CodeErroneousHeader, 42)},
		{"routing-unknown-rejected", [][]byte{pkt6(uni, 43, cat(routing6(protoTest, 200, 1), testData))},
			pp(wire.ICMPv6CodeErroneousHeader, 42)},
		{"routing-segments-left-0", [][]byte{pkt6(uni, 43, cat(routing6(protoTest, 0, 0), testData))}, deliver},
		{"unknown-next-header", [][]byte{pkt6(uni, 254, testData)}, pp(wire.ICMPv6CodeUnrecognizedNext, 6)},
		{"unknown-after-destopts", [][]byte{pkt6(uni, 60, cat(opts6(254, 0x1f), testData))},
			pp(wire.ICMPv6CodeUnrecognizedNext, 40)},
		{"unknown-next-header-multicast", [][]byte{pkt6(multi, 254, testData)}, drop},
		{"no-next-header", [][]byte{pkt6(uni, 59, testData)}, drop},
		{"atomic-fragment", [][]byte{pkt6(uni, 44, frag6(protoTest, 0, false, 7, testData))}, deliver},
		// RFC 6946 §4: an atomic fragment does not disturb a pending
		// datagram with its identification, nor completes it.
		{"atomic-fragment-with-pending", [][]byte{
			pkt6(uni, 44, frag6(protoTest, 8, true, 8, testData)),
			pkt6(uni, 44, frag6(protoTest, 0, false, 8, testData)),
		}, deliver},
		{"fragments", [][]byte{
			pkt6(uni, 44, frag6(protoTest, 16, false, 9, testData)),
			pkt6(uni, 44, frag6(protoTest, 0, true, 9, testData)),
		}, deliver},
		// RFC 5722: an overlap discards the whole datagram, even when
		// the rest would complete it.
		{"overlap", [][]byte{
			pkt6(uni, 44, frag6(protoTest, 0, true, 10, testData)),
			pkt6(uni, 44, frag6(protoTest, 8, true, 10, testData)),
			pkt6(uni, 44, frag6(protoTest, 16, false, 10, testData)),
		}, drop},
		// RFC 7112: the first fragment must carry the whole header chain.
		{"first-fragment-incomplete-chain", [][]byte{pkt6(uni, 44, frag6(60, 0, true, 12, opts6(wire.IPProtoUDP, 0x1f)))},
			pp(wire.ICMPv6CodeIncompleteHeaderChain, 0)},
		{"fragment-unaligned", [][]byte{pkt6(uni, 44, frag6(protoTest, 0, true, 11, testData[:10]))},
			pp(wire.ICMPv6CodeErroneousHeader, 4)},
	}
	a, b := pair6Opts(t, 80, Options{Seed: 80, ICMPRateLimit: -1}, emu.PortConfig{}, emu.PortConfig{})
	delivered := make(chan []byte, 16)
	b.s.AddRawHandler(true, protoTest, func(pi *PacketInfo, pkt []byte) {
		delivered <- bytes.Clone(pkt)
	})
	errs := icmp6Catcher(t, a.s, wire.ICMPv6ParamProblem, wire.ICMPv6DstUnreachable)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.pkts {
				pt := PacketHost
				if wire.IPv6(p).Dst().IsMulticast() {
					pt = PacketMulticast
				}
				orig := bytes.Clone(p)
				b.s.handleIPv6(b.nic, p, pt)
				if !bytes.Equal(orig, p) {
					t.Fatal("input modified the received packet")
				}
			}
			switch {
			case c.want.deliver:
				got := wait6Bytes(t, delivered)
				want := testData
				if c.name == "fragments" {
					want = cat(testData, testData)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("delivered %q, want %q", got, want)
				}
			case c.want.icmp:
				m := wait6(t, errs, "parameter problem")
				im := wire.ICMPv6(m.msg)
				if im.Type() != c.want.typ || im.Code() != c.want.code || im.Pointer() != c.want.pointer {
					t.Errorf("got type %d code %d pointer %d, want %d %d %d", im.Type(), im.Code(), im.Pointer(),
						c.want.typ, c.want.code, c.want.pointer)
				}
				if !bytes.Equal(im.Original(), c.pkts[len(c.pkts)-1]) {
					t.Error("error does not quote the invoking packet")
				}
			}
			if !c.want.deliver {
				select {
				case got := <-delivered:
					t.Errorf("delivered %q", got)
				case <-time.After(30 * time.Millisecond):
				}
			}
			if !c.want.icmp {
				expectNone6(t, errs, 30*time.Millisecond, "ICMPv6 error")
			}
		})
	}
	if got := b.s.stats.IP6.InUnknownProtos.Load(); got < 3 {
		t.Errorf("Ip6InUnknownProtos = %d", got)
	}
}

func wait6Bytes(t testing.TB, ch chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(3 * time.Second):
		t.Fatal("nothing delivered within 3s")
	}
	return nil
}

// TestIPv6PortUnreachable: a transport that finds no endpoint gets port
// unreachable sent, but not for a multicast destination.
func TestIPv6PortUnreachable(t *testing.T) {
	a, b := pair6(t, 81, emu.PortConfig{}, emu.PortConfig{})
	b.s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	errs := icmp6Catcher(t, a.s, wire.ICMPv6DstUnreachable)
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), wire.IPProtoUDP, testData), PacketHost)
	m := wait6(t, errs, "port unreachable")
	if m.msg[1] != wire.ICMPv6CodePortUnreachable {
		t.Fatalf("code %d", m.msg[1])
	}
	b.s.handleIPv6(b.nic, pkt6(mustAddr("ff02::1"), wire.IPProtoUDP, testData), PacketMulticast)
	expectNone6(t, errs, 50*time.Millisecond, "port unreachable for multicast")
	// RFC 4443 §2.4 (e.3): nor for a unicast packet in a link-layer
	// broadcast or multicast frame.
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), wire.IPProtoUDP, testData), PacketBroadcast)
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), wire.IPProtoUDP, testData), PacketMulticast)
	expectNone6(t, errs, 50*time.Millisecond, "port unreachable for a link-layer broadcast")
	if got := b.s.stats.ICMP6.OutDestUnreachs.Load(); got != 1 {
		t.Errorf("Icmp6OutDestUnreachs = %d, want 1", got)
	}
}

type noEndpoint struct{}

func (noEndpoint) HandlePacket(*PacketInfo, []byte) bool { return false }
func (noEndpoint) HandleError(*ICMPError)                {}

// TestIPv6ErrorDelivery: an ICMPv6 error quoting one of our UDP packets
// reaches the UDP transport with the quoted addresses and payload.
func TestIPv6ErrorDelivery(t *testing.T) {
	a, b := pair6(t, 82, emu.PortConfig{}, emu.PortConfig{})
	got := make(chan ICMPError, 4)
	a.s.RegisterTransport(wire.IPProtoUDP, errCatcher(got))
	// b answers a's UDP with port unreachable (no transport on b at all:
	// parameter problem; so register one that refuses).
	b.s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	r, err := a.s.FindRoute(0, netip.Addr{}, mustAddr("2001:db8::2"))
	if err != nil {
		t.Fatal(err)
	}
	udp := []byte{0x30, 0x39, 0x00, 0x35, 0, 16, 0, 0, 'h', 'e', 'l', 'l', 'o', '!', '!', '!'}
	if err := a.s.WritePacket(&r, NewPacketFrom(udp), WriteOptions{Proto: wire.IPProtoUDP}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Type != wire.ICMPv6DstUnreachable || e.Code != wire.ICMPv6CodePortUnreachable ||
			e.Proto != wire.IPProtoUDP || e.Dst != mustAddr("2001:db8::2") || e.Src != r.Src ||
			!bytes.Equal(e.Payload, udp) || e.From != mustAddr("2001:db8::2") {
			t.Errorf("error %+v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no error delivered")
	}
}

type errCatcher chan ICMPError

func (errCatcher) HandlePacket(*PacketInfo, []byte) bool { return true }
func (c errCatcher) HandleError(e *ICMPError) {
	x := *e
	x.Payload = bytes.Clone(e.Payload)
	c <- x
}

// TestIPv6ChecksumAndTentative: a bad ICMPv6 checksum is counted and not
// answered; a tentative address answers nothing but hands NS/NA to NDP.
func TestIPv6ChecksumAndTentative(t *testing.T) {
	a, b := pair6(t, 83, emu.PortConfig{}, emu.PortConfig{})
	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	echo := make([]byte, 12)
	(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: 1}).Encode(echo)
	wire.SetICMPv6Checksum(echo, mustAddr("2001:db8::1"), mustAddr("2001:db8::2"))
	bad := bytes.Clone(echo)
	bad[2] ^= 0xff
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), 58, bad), PacketHost)
	if b.s.stats.ICMP6.InCsumErrors.Load() != 1 || b.s.stats.ICMP6.InErrors.Load() != 1 ||
		b.s.stats.ICMP6.InMsgs.Load() != 0 {
		t.Errorf("bad checksum: InCsumErrors %d InErrors %d InMsgs %d, want 1 1 0", b.s.stats.ICMP6.InCsumErrors.Load(),
			b.s.stats.ICMP6.InErrors.Load(), b.s.stats.ICMP6.InMsgs.Load())
	}
	expectNone6(t, replies, 30*time.Millisecond, "reply to a bad checksum")

	// A tentative address (DAD on for it).
	if err := b.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::3/64"), State: Tentative}); err != nil {
		t.Fatal(err)
	}
	b.nic.setAddressState(mustAddr("2001:db8::3"), Tentative)
	echo3 := make([]byte, 12)
	(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: 2}).Encode(echo3)
	wire.SetICMPv6Checksum(echo3, mustAddr("2001:db8::1"), mustAddr("2001:db8::3"))
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::3"), 58, echo3), PacketHost)
	expectNone6(t, replies, 30*time.Millisecond, "reply from a tentative address")
	errs := icmp6Catcher(t, a.s, wire.ICMPv6ParamProblem)
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::3"), 254, testData), PacketHost)
	expectNone6(t, errs, 30*time.Millisecond, "error about a packet to a tentative address")
	if got := b.s.stats.IP6.InAddrErrors.Load(); got != 1 {
		t.Errorf("Ip6InAddrErrors = %d, want 1", got)
	}
	// The good one is answered.
	b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), 58, echo), PacketHost)
	wait6(t, replies, "echo reply")
}

// TestIPv6MalformedCounted: bad headers are counted drops.
func TestIPv6MalformedCounted(t *testing.T) {
	_, b := pair6(t, 84, emu.PortConfig{}, emu.PortConfig{})
	st := &b.s.stats.IP6
	good := pkt6(mustAddr("2001:db8::2"), protoTest, testData)
	short := good[:50] // payload length claims more
	b.s.handleIPv6(b.nic, short, PacketHost)
	if st.InTruncatedPkts.Load() != 1 {
		t.Errorf("InTruncatedPkts = %d", st.InTruncatedPkts.Load())
	}
	v4 := bytes.Clone(good)
	v4[0] = 0x45
	b.s.handleIPv6(b.nic, v4, PacketHost)
	b.s.handleIPv6(b.nic, good[:20], PacketHost)
	mc := bytes.Clone(good)
	copy(mc[8:24], mustAddr("ff02::1").AsSlice())
	b.s.handleIPv6(b.nic, mc, PacketHost)
	if st.InHdrErrors.Load() != 3 {
		t.Errorf("InHdrErrors = %d, want 3", st.InHdrErrors.Load())
	}
	other := pkt6(mustAddr("2001:db8::99"), protoTest, testData)
	b.s.handleIPv6(b.nic, other, PacketHost)
	if st.InAddrErrors.Load() != 1 {
		t.Errorf("InAddrErrors = %d, want 1 (not ours, not forwarding)", st.InAddrErrors.Load())
	}
	// Padding after the payload is trimmed, not delivered.
	delivered := make(chan []byte, 1)
	b.s.AddRawHandler(true, protoTest, func(pi *PacketInfo, pkt []byte) { delivered <- bytes.Clone(pkt) })
	b.s.handleIPv6(b.nic, append(bytes.Clone(good), 0, 0, 0, 0), PacketHost)
	if got := wait6Bytes(t, delivered); !bytes.Equal(got, testData) {
		t.Errorf("delivered %q", got)
	}
}

func FuzzIPv6Input(f *testing.F) {
	uni := mustAddr("2001:db8::2")
	f.Add(pkt6(uni, protoTest, testData))
	f.Add(pkt6(uni, 0, cat(opts6(protoTest, 0x9f), testData)))
	f.Add(pkt6(uni, 43, cat(routing6(protoTest, 0, 1), testData)))
	f.Add(pkt6(uni, 44, frag6(58, 0, true, 1, testData)))
	f.Add(pkt6(uni, 44, frag6(58, 8, false, 1, testData)))
	f.Add(pkt6(mustAddr("ff02::1"), 58, []byte{128, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(pkt6(uni, 58, []byte{1, 4, 0, 0, 0, 0, 0, 0}))
	nw := emu.NewNetwork(1)
	defer nw.Close()
	h := newTestHost(f, nw, Options{Seed: 1, IPv6Forwarding: true}, "2001:db8::2/64", "fe80::2/64")
	h.s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	h.s.AddRawHandler(true, protoTest, func(*PacketInfo, []byte) {})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		h.s.handleIPv6(h.nic, b, PacketHost)
		h.s.handleIPv6(h.nic, b, PacketMulticast)
		if !bytes.Equal(orig, b) {
			t.Fatal("input modified the packet")
		}
	})
}

// FuzzICMPv6Input feeds arbitrary ICMPv6 messages, with a valid checksum,
// to a host: errors quoting anything, echo, NDP and MLD types.
func FuzzICMPv6Input(f *testing.F) {
	uni := mustAddr("2001:db8::2")
	quoted := pkt6(mustAddr("2001:db8::2"), wire.IPProtoUDP, testData)
	for _, typ := range []uint8{1, 2, 3, 4} {
		f.Add(append([]byte{typ, 0, 0, 0, 0, 0, 5, 0}, quoted...), false)
	}
	f.Add(append([]byte{2, 0, 0, 0, 0, 0, 5, 0}, pkt6(uni, 44, frag6(17, 0, true, 1, testData))...), false)
	f.Add([]byte{128, 0, 0, 0, 0, 1, 0, 1, 'x'}, true)
	f.Add([]byte{135, 0, 0, 0, 0, 0, 0, 0}, false)
	nw := emu.NewNetwork(2)
	defer nw.Close()
	h := newTestHost(f, nw, Options{Seed: 2}, "2001:db8::2/64")
	h.s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	f.Fuzz(func(t *testing.T, msg []byte, multicast bool) {
		if len(msg) < 4 || len(msg) > 2000 {
			return
		}
		dst, pt := uni, PacketHost
		if multicast {
			dst, pt = mustAddr("ff02::1"), PacketMulticast
		}
		p := pkt6(dst, wire.IPProtoICMPv6, msg)
		wire.SetICMPv6Checksum(p[40:], mustAddr("2001:db8::1"), dst)
		orig := bytes.Clone(p)
		h.s.handleIPv6(h.nic, p, pt)
		if !bytes.Equal(orig, p) {
			t.Fatal("input modified the packet")
		}
	})
}

// refuser finds no endpoint for any packet and records errors.
type refuser chan ICMPError

func (refuser) HandlePacket(*PacketInfo, []byte) bool { return false }
func (c refuser) HandleError(e *ICMPError)            { c <- *e }

// TestIPv6LoopbackPortUnreachable: UDP to a closed port on one of our
// own addresses comes back through lo as port unreachable to the sending
// transport (ECONNREFUSED on loopback, as in Linux).
func TestIPv6LoopbackPortUnreachable(t *testing.T) {
	a, _ := pair6(t, 85, emu.PortConfig{}, emu.PortConfig{})
	got := make(refuser, 4)
	a.s.RegisterTransport(wire.IPProtoUDP, got)
	for _, dst := range []string{"::1", "2001:db8::1"} {
		r, err := a.s.FindRoute(0, netip.Addr{}, mustAddr(dst))
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != RouteLocal {
			t.Fatalf("route to %s is not local", dst)
		}
		udp := []byte{0x30, 0x39, 0x9c, 0x41, 0, 8, 0, 0}
		if err := a.s.WritePacket(&r, NewPacketFrom(udp), WriteOptions{Proto: wire.IPProtoUDP}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-got:
			if e.Code != wire.ICMPv6CodePortUnreachable || e.Dst != mustAddr(dst) || e.From != mustAddr(dst) {
				t.Errorf("%s: error %+v", dst, e)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no port unreachable", dst)
		}
	}
}
