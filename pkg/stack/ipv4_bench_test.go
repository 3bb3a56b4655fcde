package stack

import (
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// BenchmarkIPv4InputDeliver measures the input path for a datagram to a
// raw handler: header checks, classification, delivery.
func BenchmarkIPv4InputDeliver(b *testing.B) {
	_, h := newPair(b, 0)
	h.s.AddRawHandler(false, 99, func(*PacketInfo, []byte) {})
	pkt := ipv4Packet(b, wire.IPv4Fields{TTL: 64, Protocol: 99, Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, make([]byte, 1400))
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		h.s.handleIPv4(h.nic, pkt, PacketHost)
	}
}

// BenchmarkIPv4Forward measures forwarding one 1420-byte datagram (copy,
// TTL decrement, route lookup, output to the emulated link).
func BenchmarkIPv4Forward(b *testing.B) {
	x := newRouted(b, Options{Seed: 2}, 0)
	pkt := ipv4Packet(b, wire.IPv4Fields{TTL: 64, Protocol: 99, Src: mustAddr("10.0.1.1"), Dst: mustAddr("10.0.2.1")}, make([]byte, 1400))
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		x.r.s.handleIPv4(x.r.nic, pkt, PacketHost)
	}
}
