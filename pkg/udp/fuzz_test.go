package udp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// sinkEndpoint is a link that discards what the stack writes; the fuzzer
// delivers frames by calling the NIC's DeliverFrame itself.
type sinkEndpoint struct{ link.Base }

func (e *sinkEndpoint) WritePackets(frames [][]byte) (int, error) { return len(frames), nil }
func (e *sinkEndpoint) Close() error                              { return nil }

type fuzzRig struct {
	s   *stack.Stack
	nic *stack.NIC
	p   *Protocol
	eps []transport.Endpoint
}

func newFuzzRig(t testing.TB) *fuzzRig {
	s := stacktest.NewStack(t, stack.Options{Seed: 1})
	ep := &sinkEndpoint{}
	ep.Init("sink", 1500, wire.MAC{2, 0, 0, 0, 0, 1}, 0)
	n := stacktest.AddNIC(t, s, ep, "10.0.0.2/24", "2001:db8::2/64")
	r := &fuzzRig{s: s, nic: n, p: New(s)}
	mk := func(fam int, addr netip.AddrPort, setup func(transport.Endpoint)) {
		e, err := r.p.NewEndpoint(fam)
		if err != nil {
			t.Fatal(err)
		}
		e.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		e.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		if setup != nil {
			setup(e)
		}
		if err := e.Bind(addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		r.eps = append(r.eps, e)
	}
	mk(syscall.AF_INET, ap(netip.Addr{}, 53), nil)
	mk(syscall.AF_INET6, ap(netip.IPv6Unspecified(), 53), func(e transport.Endpoint) {
		e.SetSockOpt(syscall.SOL_SOCKET, transport.SO_REUSEPORT, 1)
	})
	mk(syscall.AF_INET6, ap(netip.IPv6Unspecified(), 53), func(e transport.Endpoint) {
		e.SetSockOpt(syscall.SOL_SOCKET, transport.SO_REUSEPORT, 1)
	})
	mk(syscall.AF_INET, ap(addrB4, 53), func(e transport.Endpoint) {
		e.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
		e.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
	})
	mk(syscall.AF_INET, ap(netip.Addr{}, 54), func(e transport.Endpoint) {
		e.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, transport.Membership{Group: netip.MustParseAddr("239.0.0.53")})
	})
	c, _ := r.p.NewEndpoint(syscall.AF_INET)
	c.Bind(ap(netip.Addr{}, 55))
	c.Connect(ap(netip.MustParseAddr("10.0.0.1"), 53))
	t.Cleanup(func() { c.Close() })
	r.eps = append(r.eps, c)
	return r
}

// FuzzUDPInput feeds arbitrary UDP headers and payloads through the
// stack's input path (Ethernet, IP, UDP demultiplexing) to bound sockets:
// unicast, broadcast and multicast, over IPv4 and IPv6, with the checksum
// made right or left as fuzzed. Nothing may panic and no queue may grow
// past its SO_RCVBUF.
func FuzzUDPInput(f *testing.F) {
	f.Add(byte(0), []byte("\x12\x34\x00\x35\x00\x0c\x00\x00data"), true)
	f.Add(byte(1), []byte("\x12\x34\x00\x35\x00\x0c\x00\x00data"), true)
	f.Add(byte(2), []byte("\x12\x34\x00\x36\x00\x08\x00\x00"), true)
	f.Add(byte(3), []byte("\x12\x34\x00\x35\xff\xff\x00\x00"), false)
	f.Add(byte(4), []byte("\x00\x35\x00\x37\x00\x09\x00\x00x"), true)
	f.Add(byte(1), []byte("\x12\x34\x00\x35\x00\x04"), false)
	r := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, sel byte, udp []byte, fix bool) {
		if len(udp) > 9000 {
			return
		}
		srcs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")}
		dsts := []netip.Addr{addrB4, addrB6, netip.MustParseAddr("239.0.0.53"), netip.MustParseAddr("10.0.0.255"),
			netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("ff02::1")}
		dst := dsts[int(sel)%len(dsts)]
		src := srcs[0]
		if dst.Is6() {
			src = srcs[1]
		}
		u := append([]byte(nil), udp...)
		if fix && len(u) >= 8 {
			l := int(binary.BigEndian.Uint16(u[4:6]))
			if l >= 8 && l <= len(u) {
				u[6], u[7] = 0, 0
				c := ^wire.Checksum(u[:l], wire.PseudoHeaderChecksum(wire.IPProtoUDP, src, dst, uint32(l)))
				if c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(u[6:8], c)
			}
		}
		var ip []byte
		et := wire.EtherTypeIPv4
		if dst.Is4() {
			h := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoUDP, Src: src, Dst: dst, PayloadLen: len(u)}
			if h.Len()+len(u) > wire.IPv4MaxTotalLen {
				return
			}
			ip = make([]byte, h.Len()+len(u))
			h.Encode(ip)
			copy(ip[h.Len():], u)
		} else {
			et = wire.EtherTypeIPv6
			h := wire.IPv6Fields{HopLimit: 64, NextHeader: wire.IPProtoUDP, Src: src, Dst: dst, PayloadLen: len(u)}
			ip = make([]byte, h.Len()+len(u))
			h.Encode(ip)
			copy(ip[h.Len():], u)
		}
		dmac := r.nic.MAC()
		if dst.IsMulticast() {
			if dst.Is4() {
				dmac = wire.IPv4MulticastMAC(dst)
			} else {
				dmac = wire.IPv6MulticastMAC(dst)
			}
		} else if dst != addrB4 && dst != addrB6 {
			dmac = wire.BroadcastMAC
		}
		e := wire.EthernetFields{Dst: dmac, Src: wire.MAC{2, 0, 0, 0, 0, 9}, EtherType: et}
		frame := make([]byte, e.Len()+len(ip))
		e.Encode(frame)
		copy(frame[e.Len():], ip)
		r.nic.DeliverFrame(frame)

		buf := make([]byte, 100)
		for i, ep := range r.eps {
			in := ep.Info()
			limit, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF)
			// One datagram may always be admitted to an empty queue.
			if in.RecvQ > limit.(int)+65535 {
				t.Fatalf("socket %d holds %d bytes, SO_RCVBUF %d", i, in.RecvQ, limit)
			}
			if sel&0x80 != 0 { // drain sometimes, with the flags varied
				ep.Read([][]byte{buf}, transport.ReadOptions{Trunc: sel&0x40 != 0, Peek: sel&0x20 != 0})
				ep.Read([][]byte{buf}, transport.ReadOptions{ErrQueue: true})
			}
		}
	})
}
