package stack

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// FuzzIPv4Input feeds arbitrary bytes to the IPv4 input of a forwarding,
// source-route-accepting stack with two NICs, so every path (options,
// reassembly, forwarding, ICMP) sees hostile input. It must never panic,
// and the input must never be modified.
func FuzzIPv4Input(f *testing.F) {
	src, dst := mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
	seed := func(fl wire.IPv4Fields, payload []byte) []byte {
		fl.PayloadLen = len(payload)
		b := make([]byte, fl.Len()+len(payload))
		fl.Encode(b)
		copy(b[fl.Len():], payload)
		return b
	}
	echo := []byte{8, 0, 0xf7, 0xfd, 0, 1, 0, 1}
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst}, echo), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst, Options: wire.AppendIPv4RecordRoute(nil, 9)}, echo), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst, Options: wire.AppendIPv4Timestamp(nil, 1, 4)}, echo), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 99, Src: src, Dst: dst,
		Options: wire.AppendIPv4SourceRoute(nil, true, mustAddr("10.0.2.1"))}, []byte("x")), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 2, Protocol: 17, Src: src, Dst: mustAddr("10.0.2.1"), DF: true}, make([]byte, 1480)), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst, MF: true, ID: 5}, make([]byte, 16)), uint8(0))
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst, FragmentOffset: 16, ID: 5}, echo), uint8(0))
	icmpErr := append([]byte{3, 4, 0, 0, 0, 0, 2, 0}, seed(wire.IPv4Fields{TTL: 64, Protocol: 17, Src: dst, Dst: mustAddr("10.9.9.9")}, make([]byte, 8))...)
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst}, icmpErr), uint8(0))
	redirect := append([]byte{5, 1, 0, 0, 10, 0, 0, 3}, seed(wire.IPv4Fields{TTL: 64, Protocol: 17, Src: dst, Dst: mustAddr("10.9.9.9")}, make([]byte, 8))...)
	f.Add(seed(wire.IPv4Fields{TTL: 64, Protocol: 1, Src: src, Dst: dst}, redirect), uint8(1))

	nw := newTestNet(f, 99)
	h := newTestHost(f, nw, Options{Seed: 5, IPv4Forwarding: true, AcceptSourceRoute: true, ICMPRateLimit: -1}, "10.0.0.2/24")
	n2, err := h.s.AddNIC(nw.NewPort(emu.PortConfig{MTU: 1000}), NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		f.Fatal(err)
	}
	n2.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.2.254/24")})
	n2.SetUp(true)
	h.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix("10.9.0.0/16"), Gateway: mustAddr("10.0.0.1")})
	h.nic.ARP().AddStatic(mustAddr("10.0.0.1"), wire.MAC{2, 0, 0, 0, 0, 1})
	n2.ARP().AddStatic(mustAddr("10.0.2.1"), wire.MAC{2, 0, 0, 0, 0, 2})

	f.Fuzz(func(t *testing.T, b []byte, pt uint8) {
		orig := string(b)
		h.s.handleIPv4(h.nic, b, PacketType(pt%3))
		if string(b) != orig {
			t.Fatal("handleIPv4 modified the received bytes")
		}
	})
}
