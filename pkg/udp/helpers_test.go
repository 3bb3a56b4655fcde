package udp

import (
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Test fixtures: stacks with UDP on an emulated network, endpoints driven
// through their non-blocking calls and their waiter queues.

type host struct {
	s    *stack.Stack
	nic  *stack.NIC
	udp  *Protocol
	port *emu.Port
}

// newHost makes a stack with UDP and one up NIC on nw with addrs.
func newHost(t testing.TB, nw *emu.Network, addrs ...string) *host {
	t.Helper()
	s := stacktest.NewStack(t, stack.Options{})
	port := nw.NewPort(emu.PortConfig{})
	n := stacktest.AddNIC(t, s, port, addrs...)
	return &host{s: s, nic: n, udp: New(s), port: port}
}

// pair returns two hosts on one network: a at 10.0.0.1 and 2001:db8::1,
// b at 10.0.0.2 and 2001:db8::2.
func pair(t testing.TB) (a, b *host) {
	t.Helper()
	nw := stacktest.NewNetwork(t, 7)
	return newHost(t, nw, "10.0.0.1/24", "2001:db8::1/64"), newHost(t, nw, "10.0.0.2/24", "2001:db8::2/64")
}

var (
	addrA4 = netip.MustParseAddr("10.0.0.1")
	addrB4 = netip.MustParseAddr("10.0.0.2")
	addrA6 = netip.MustParseAddr("2001:db8::1")
	addrB6 = netip.MustParseAddr("2001:db8::2")
)

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// open makes an endpoint of the family, closed at the end of the test.
func (h *host) open(t testing.TB, family int) transport.Endpoint {
	t.Helper()
	ep, err := h.udp.NewEndpoint(family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// bound opens an endpoint and binds it.
func (h *host) bound(t testing.TB, family int, addr netip.AddrPort, opts ...[2]int) transport.Endpoint {
	t.Helper()
	ep := h.open(t, family)
	for _, o := range opts {
		if o[0] == 0 {
			continue
		}
		setOpt(t, ep, syscall.SOL_SOCKET, o[0], o[1])
	}
	if err := ep.Bind(addr); err != nil {
		t.Fatalf("bind %v: %v", addr, err)
	}
	return ep
}

func setOpt(t testing.TB, ep transport.Endpoint, level, name int, v any) {
	t.Helper()
	if err := ep.SetSockOpt(level, name, v); err != nil {
		t.Fatalf("setsockopt(%d, %d, %v): %v", level, name, v, err)
	}
}

func send(t testing.TB, ep transport.Endpoint, to netip.AddrPort, data string) {
	t.Helper()
	n, err := ep.Write([][]byte{[]byte(data)}, transport.WriteOptions{To: to})
	if err != nil || n != len(data) {
		t.Fatalf("write to %v: %d, %v", to, n, err)
	}
}

// recv waits up to 2 s (fake time inside a synctest bubble) for a
// datagram and returns it.
func recv(t testing.TB, ep transport.Endpoint) (string, transport.ReadResult) {
	t.Helper()
	return stacktest.Recv(t, ep, 2*time.Second)
}

// none fails if a datagram is queued (call after synctest.Wait or a pause).
func none(t testing.TB, ep transport.Endpoint, what string) {
	t.Helper()
	buf := make([]byte, 2000)
	if res, err := ep.Read([][]byte{buf}, transport.ReadOptions{}); err == nil {
		t.Fatalf("%s: unexpected datagram %q from %v", what, buf[:res.N], res.From)
	}
}

// sniffer records the frames an emulated port receives (a wire tap on the
// switch: broadcasts and multicast floods, unicast to its MAC).
type sniffer struct {
	mu     sync.Mutex
	frames [][]byte
	port   *emu.Port
}

func newSniffer(t testing.TB, nw *emu.Network) *sniffer {
	s := &sniffer{port: nw.NewPort(emu.PortConfig{})}
	s.port.Attach(link.DispatcherFunc(func(f []byte) {
		s.mu.Lock()
		s.frames = append(s.frames, f)
		s.mu.Unlock()
	}))
	t.Cleanup(func() { s.port.Close() })
	return s
}

// ipPayloads returns the IP payloads of recorded frames of one IP
// protocol (IGMP 2; for IPv6 the ICMPv6 messages after a hop-by-hop
// header), with their destinations.
func (s *sniffer) ipPackets(v6 bool) []wire.Ethernet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wire.Ethernet
	for _, f := range s.frames {
		eth, err := wire.ParseEthernet(f)
		if err != nil {
			continue
		}
		if (!v6 && eth.EtherType() == wire.EtherTypeIPv4) || (v6 && eth.EtherType() == wire.EtherTypeIPv6) {
			out = append(out, eth)
		}
	}
	return out
}

// igmpReports returns the groups of the IGMPv3 or v2 membership reports
// and leaves seen (record type 4 CHANGE_TO_EXCLUDE = join, 3
// CHANGE_TO_INCLUDE = leave; v2 report 0x16 / leave 0x17).
func (s *sniffer) igmp() (joins, leaves []netip.Addr) {
	for _, eth := range s.ipPackets(false) {
		ip, err := wire.ParseIPv4(eth.Payload())
		if err != nil || ip.Protocol() != wire.IPProtoIGMP {
			continue
		}
		b := ip.Payload()
		if len(b) < 8 {
			continue
		}
		switch b[0] {
		case 0x16:
			joins = append(joins, netip.AddrFrom4([4]byte(b[4:8])))
		case 0x17:
			leaves = append(leaves, netip.AddrFrom4([4]byte(b[4:8])))
		case 0x22: // IGMPv3 report: records from byte 8
			n := int(b[6])<<8 | int(b[7])
			off := 8
			for range n {
				if off+8 > len(b) {
					break
				}
				typ, aux, ns := b[off], int(b[off+1]), int(b[off+2])<<8|int(b[off+3])
				g := netip.AddrFrom4([4]byte(b[off+4 : off+8]))
				switch typ {
				case 2, 4: // MODE_IS_EXCLUDE, CHANGE_TO_EXCLUDE: member
					joins = append(joins, g)
				case 1, 3: // MODE_IS_INCLUDE / CHANGE_TO_INCLUDE with no sources: left
					if ns == 0 {
						leaves = append(leaves, g)
					}
				}
				off += 8 + 4*ns + 4*aux
			}
		}
	}
	return joins, leaves
}

// mld returns the groups of MLDv2 (or v1) reports and dones seen.
func (s *sniffer) mld() (joins, leaves []netip.Addr) {
	for _, eth := range s.ipPackets(true) {
		ip, err := wire.ParseIPv6(eth.Payload())
		if err != nil {
			continue
		}
		b := []byte(ip.Payload())
		next := ip.NextHeader()
		if next == wire.IPProtoHopByHop && len(b) >= 8 {
			next = b[0]
			b = b[(int(b[1])+1)*8:]
		}
		if next != wire.IPProtoICMPv6 || len(b) < 8 {
			continue
		}
		switch b[0] {
		case wire.ICMPv6MLDReport:
			if len(b) >= 24 {
				joins = append(joins, netip.AddrFrom16([16]byte(b[8:24])))
			}
		case wire.ICMPv6MLDDone:
			if len(b) >= 24 {
				leaves = append(leaves, netip.AddrFrom16([16]byte(b[8:24])))
			}
		case wire.ICMPv6MLDv2Report:
			n := int(b[6])<<8 | int(b[7])
			off := 8
			for range n {
				if off+20 > len(b) {
					break
				}
				typ, aux, ns := b[off], int(b[off+1]), int(b[off+2])<<8|int(b[off+3])
				g := netip.AddrFrom16([16]byte(b[off+4 : off+20]))
				switch typ {
				case 2, 4:
					joins = append(joins, g)
				case 1, 3:
					if ns == 0 {
						leaves = append(leaves, g)
					}
				}
				off += 20 + 16*ns + 4*aux
			}
		}
	}
	return joins, leaves
}

func contains(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// udpFrame builds an Ethernet frame carrying a UDP datagram from src to
// dst; csum: "good", "zero" or "bad".
func udpFrame(dstMAC, srcMAC wire.MAC, src, dst netip.AddrPort, payload []byte, csum string) []byte {
	u := make([]byte, wire.UDPHeaderLen+len(payload))
	f := wire.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), PayloadLen: len(payload)}
	f.Encode(u)
	copy(u[wire.UDPHeaderLen:], payload)
	switch csum {
	case "good":
		f.SetChecksum(u, src.Addr(), dst.Addr())
	case "bad":
		f.SetChecksum(u, src.Addr(), dst.Addr())
		u[6] ^= 0x5a
	}
	var ip []byte
	et := wire.EtherTypeIPv4
	if src.Addr().Is4() {
		h := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoUDP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: len(u)}
		ip = make([]byte, h.Len()+len(u))
		h.Encode(ip)
		copy(ip[h.Len():], u)
	} else {
		et = wire.EtherTypeIPv6
		h := wire.IPv6Fields{HopLimit: 64, NextHeader: wire.IPProtoUDP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: len(u)}
		ip = make([]byte, h.Len()+len(u))
		h.Encode(ip)
		copy(ip[h.Len():], u)
	}
	e := wire.EthernetFields{Dst: dstMAC, Src: srcMAC, EtherType: et}
	b := make([]byte, e.Len()+len(ip))
	e.Encode(b)
	copy(b[e.Len():], ip)
	return b
}
