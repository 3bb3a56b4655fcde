package stack

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/wire"
)

// The NIC input fuzzer: arbitrary frames into a fully configured router
// (both families, a VLAN, forwarding, a second NIC, multicast groups).
// Whatever arrives: no panic, the received bytes are never modified, and
// the reassembly memory and neighbour caches stay within their bounds.

var (
	fuzzOurMAC  = wire.MAC{2, 0, 0, 0, 0x90, 1}
	fuzzPeerMAC = wire.MAC{2, 0, 0, 0, 0x90, 2}
)

// fuzzReasmLimit is the reassembly memory limit of the fuzzed stack.
const fuzzReasmLimit = 256 << 10

// newFuzzStack builds the router the fuzzer feeds: eth0 (10.90.0.1/24,
// fd00:90::1/64, fe80::1/64), eth0.10 (10.90.10.1/24, fd00:90:10::1/64)
// and eth1 (10.91.0.1/24, fd00:91::1/64), a default route each way, and
// groups 239.1.2.3 and ff05::1:3 joined on eth0.
func newFuzzStack(t testing.TB) (*Stack, []*NIC) {
	c4, c6 := fragment.IPv4Config(), fragment.IPv6Config()
	c4.MemoryLimit, c6.MemoryLimit = fuzzReasmLimit, fuzzReasmLimit
	s := New(Options{IPv4Forwarding: true, IPv6Forwarding: true, Seed: 90,
		IPv4Reassembly: c4, IPv6Reassembly: c6})
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	eth0, err := s.AddNIC(newIxSinkEndpoint("sink0", 1500, fuzzOurMAC), no)
	if err != nil {
		t.Fatal(err)
	}
	eth1, err := s.AddNIC(newIxSinkEndpoint("sink1", 1500, wire.MAC{2, 0, 0, 0, 0x91, 1}), no)
	if err != nil {
		t.Fatal(err)
	}
	vlan, err := s.AddVLAN(eth0, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for n, addrs := range map[*NIC][]string{
		eth0: {"10.90.0.1/24", "fd00:90::1/64", "fe80::1/64"},
		vlan: {"10.90.10.1/24", "fd00:90:10::1/64"},
		eth1: {"10.91.0.1/24", "fd00:91::1/64"},
	} {
		for _, a := range addrs {
			if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a), NoDAD: true}); err != nil {
				t.Fatal(err)
			}
		}
		n.SetUp(true)
	}
	eth0.JoinGroup(mustAddr("239.1.2.3"))
	eth0.JoinGroup(mustAddr("ff05::1:3"))
	return s, []*NIC{eth0, vlan, eth1}
}

// fuzzSeeds are valid frames of each kind the stack handles, as pairs
// (the second may be empty) so reassembly can complete.
func fuzzSeeds() [][2][]byte {
	peer4, our4 := mustAddr("10.90.0.2"), mustAddr("10.90.0.1")
	peer6, our6 := mustAddr("fd00:90::2"), mustAddr("fd00:90::1")
	ll6 := mustAddr("fe80::2")
	v4 := func(f wire.IPv4Fields, payload []byte) []byte {
		return ixEthFrame(fuzzOurMAC, fuzzPeerMAC, 0, wire.EtherTypeIPv4, ixIPv4(f, payload))
	}
	v6 := func(dstMAC wire.MAC, f wire.IPv6Fields, payload []byte) []byte {
		return ixEthFrame(dstMAC, fuzzPeerMAC, 0, wire.EtherTypeIPv6, ixIPv6(f, payload))
	}
	icmp6 := func(msg []byte, src, dst netip.Addr) []byte {
		wire.SetICMPv6Checksum(msg, src, dst)
		return msg
	}
	arp := func(op uint16, dst wire.MAC, target wire.MAC) []byte {
		f := wire.ARPFields{Op: op, SenderMAC: fuzzPeerMAC, SenderIP: peer4, TargetMAC: target, TargetIP: our4}
		b := make([]byte, f.Len())
		f.Encode(b)
		return ixEthFrame(dst, fuzzPeerMAC, 0, wire.EtherTypeARP, b)
	}
	echo := ixPattern(90, 64)
	big := ixEchoMsg(false, false, peer4, our4, 9, 1, ixPattern(91, 2000))
	big6 := ixEchoMsg(true, false, peer6, our6, 9, 1, ixPattern(91, 2000))

	ns := wire.NDPNeighborSolicitFields{Target: our6, SourceLinkAddr: fuzzPeerMAC}
	nsb := make([]byte, ns.Len())
	ns.Encode(nsb)
	snm := wire.IPv6SolicitedNode(our6)
	ra := wire.NDPRouterAdvertFields{CurHopLimit: 64, RouterLifetime: 1800, SourceLinkAddr: fuzzPeerMAC, MTU: 1500,
		Prefixes: []wire.NDPPrefixFields{{Prefix: netip.MustParsePrefix("fd00:99::/64"), OnLink: true, Autonomous: true,
			ValidLifetime: 86400, PreferredLifetime: 14400}}}
	rab := make([]byte, ra.Len())
	ra.Encode(rab)
	igmpq := wire.IGMPFields{Type: wire.IGMPMembershipQuery, MaxRespCode: 100}
	igmpb := make([]byte, igmpq.Len())
	igmpq.Encode(igmpb)
	mldq := wire.MLDv2QueryFields{MaxRespCode: 1000, QRV: 2, QQIC: 125}
	mldb := make([]byte, mldq.Len())
	mldq.Encode(mldb)
	hbh := wire.IPv6OptionsFields{NextHeader: wire.IPProtoICMPv6, RouterAlert: true}
	hbhb := make([]byte, hbh.Len())
	hbh.Encode(hbhb)
	udp := wire.UDPFields{SrcPort: 5000, DstPort: 9, PayloadLen: 4}
	udpb := make([]byte, udp.Len()+4)
	udp.Encode(udpb)

	return [][2][]byte{
		{arp(wire.ARPRequest, wire.BroadcastMAC, wire.MAC{}), nil},
		{arp(wire.ARPReply, fuzzOurMAC, fuzzOurMAC), nil},
		{v4(wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: peer4, Dst: our4},
			ixEchoMsg(false, false, peer4, our4, 1, 1, echo)), nil},
		{v6(fuzzOurMAC, wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: peer6, Dst: our6},
			ixEchoMsg(true, false, peer6, our6, 1, 1, echo)), nil},
		// Fragments: the first and last of a 2008-byte echo.
		{v4(wire.IPv4Fields{ID: 7, MF: true, Protocol: wire.IPProtoICMP, Src: peer4, Dst: our4}, big[:1480]),
			v4(wire.IPv4Fields{ID: 7, FragmentOffset: 1480, Protocol: wire.IPProtoICMP, Src: peer4, Dst: our4}, big[1480:])},
		{v6(fuzzOurMAC, wire.IPv6Fields{NextHeader: wire.IPProtoFragment, Src: peer6, Dst: our6},
			ixIPv6Frag(wire.IPProtoICMPv6, 0, true, 7, big6[:1448])),
			v6(fuzzOurMAC, wire.IPv6Fields{NextHeader: wire.IPProtoFragment, Src: peer6, Dst: our6},
				ixIPv6Frag(wire.IPProtoICMPv6, 1448, false, 7, big6[1448:]))},
		// Neighbour Solicitation to the solicited-node group, hop limit 255.
		{v6(wire.IPv6MulticastMAC(snm), wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: peer6, Dst: snm},
			icmp6(nsb, peer6, snm)), nil},
		// Router Advertisement from a link-local router to all nodes.
		{v6(wire.IPv6MulticastMAC(allNodes6), wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: ll6, Dst: allNodes6},
			icmp6(rab, ll6, allNodes6)), nil},
		// IGMPv2 general query with Router Alert, TTL 1.
		{ixEthFrame(wire.IPv4MulticastMAC(allNodes4), fuzzPeerMAC, 0, wire.EtherTypeIPv4,
			ixIPv4(wire.IPv4Fields{TTL: 1, Protocol: wire.IPProtoIGMP, Src: peer4, Dst: allNodes4,
				Options: wire.AppendIPv4RouterAlert(nil)}, igmpb)), nil},
		// MLDv2 general query behind a Hop-by-Hop Router Alert.
		{v6(wire.IPv6MulticastMAC(allNodes6), wire.IPv6Fields{NextHeader: wire.IPProtoHopByHop, HopLimit: 1, Src: ll6, Dst: allNodes6},
			append(hbhb, icmp6(mldb, ll6, allNodes6)...)), nil},
		// VLAN 10, and a VLAN nobody has.
		{ixEthFrame(fuzzOurMAC, fuzzPeerMAC, 10, wire.EtherTypeIPv4, ixIPv4(wire.IPv4Fields{Protocol: wire.IPProtoICMP,
			Src: mustAddr("10.90.10.2"), Dst: mustAddr("10.90.10.1")}, ixEchoMsg(false, false, netip.Addr{}, netip.Addr{}, 2, 1, echo))), nil},
		{ixEthFrame(fuzzOurMAC, fuzzPeerMAC, 11, wire.EtherTypeIPv4, ixIPv4(wire.IPv4Fields{Protocol: wire.IPProtoICMP,
			Src: mustAddr("10.90.10.2"), Dst: mustAddr("10.90.10.1")}, ixEchoMsg(false, false, netip.Addr{}, netip.Addr{}, 2, 1, echo))), nil},
		// To be forwarded out of eth1, and with TTL 1 (Time Exceeded).
		{v4(wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: peer4, Dst: mustAddr("10.91.0.2")},
			ixEchoMsg(false, false, netip.Addr{}, netip.Addr{}, 3, 1, echo)), nil},
		{v4(wire.IPv4Fields{TTL: 1, Protocol: wire.IPProtoICMP, Src: peer4, Dst: mustAddr("10.91.0.2")},
			ixEchoMsg(false, false, netip.Addr{}, netip.Addr{}, 3, 2, echo)), nil},
		{v6(fuzzOurMAC, wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: peer6, Dst: mustAddr("fd00:91::2")},
			ixEchoMsg(true, false, peer6, mustAddr("fd00:91::2"), 3, 1, echo)), nil},
		// UDP to a closed port (Port Unreachable), multicast echo.
		{v4(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer4, Dst: our4}, udpb), nil},
		{ixEthFrame(wire.IPv4MulticastMAC(mustAddr("239.1.2.3")), fuzzPeerMAC, 0, wire.EtherTypeIPv4,
			ixIPv4(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer4, Dst: mustAddr("239.1.2.3")}, udpb)), nil},
	}
}

// ixCheckBounds fails the test if the reassembly memory or a neighbour
// cache is beyond its bound.
func ixCheckBounds(t testing.TB, s *Stack, nics []*NIC) {
	t.Helper()
	if m := s.reasm4.MemoryUsed(); m > fuzzReasmLimit {
		t.Fatalf("IPv4 reassembly holds %d bytes, limit %d", m, fuzzReasmLimit)
	}
	if m := s.reasm6.MemoryUsed(); m > fuzzReasmLimit {
		t.Fatalf("IPv6 reassembly holds %d bytes, limit %d", m, fuzzReasmLimit)
	}
	for _, n := range nics {
		if l := n.ARP().Len(); l > 1024 {
			t.Fatalf("%s ARP cache %d entries", n.Name(), l)
		}
		if l := n.NDP().Len(); l > 1024 {
			t.Fatalf("%s NDP cache %d entries", n.Name(), l)
		}
	}
}

// TestNICSeedsDelivered: the fuzzer's seeds are what they claim, valid
// input the stack acts on; without this the fuzzer could be feeding
// frames the stack drops at the door.
func TestNICSeedsDelivered(t *testing.T) {
	s, nics := newFuzzStack(t)
	defer s.Close()
	for i, seed := range fuzzSeeds() {
		for _, f := range seed {
			if len(f) == 0 {
				continue
			}
			if _, err := wire.ParseEthernet(f); err != nil {
				t.Fatalf("seed %d: %v", i, err)
			}
			nics[0].DeliverFrame(append([]byte(nil), f...))
		}
	}
	ixCheckBounds(t, s, nics)
	st := s.Stats()
	for name, v := range map[string]uint64{
		"Ip InDelivers":       st.IP.InDelivers.Load(),
		"Ip ReasmOKs":         st.IP.ReasmOKs.Load(),
		"Ip ForwDatagrams":    st.IP.ForwDatagrams.Load(),
		"Icmp InEchos":        st.ICMP.InEchos.Load(),
		"Icmp OutTimeExcds":   st.ICMP.OutTimeExcds.Load(),
		"Ip6 InDelivers":      st.IP6.InDelivers.Load(),
		"Ip6 ReasmOKs":        st.IP6.ReasmOKs.Load(),
		"Ip6 OutForwDatagram": st.IP6.OutForwDatagrams.Load(),
		"Icmp6 InEchos":       st.ICMP6.InEchos.Load(),
		"Icmp6 InNeighborSol": st.ICMP6.InNeighborSolicits.Load(),
	} {
		if v == 0 {
			t.Errorf("%s is 0 after the seeds", name)
		}
	}
	if _, ok := nics[0].ARP().Lookup(mustAddr("10.90.0.2")); !ok {
		t.Error("the ARP seeds left no entry for the peer")
	}
	if nics[1].Stats().RxPackets.Load() == 0 {
		t.Error("the VLAN seed did not reach eth0.10")
	}
}

// FuzzNICDeliverFrame feeds two arbitrary frames to eth0 of the fuzz
// router. Run: go test -run XXX -fuzz FuzzNICDeliverFrame -fuzzminimizetime 3s ./pkg/stack/
// (the default minimisation budget, 60 s per new input, stalls the run:
// every input builds a whole stack).
func FuzzNICDeliverFrame(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		// A hang (deadlock) must not pass silently: the fuzzer has no
		// per-input timeout, so crash the worker with every goroutine's
		// stack, which makes the engine save the input.
		watchdog := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			panic(fmt.Sprintf("FuzzNICDeliverFrame: input still running after 10 s (%x / %x)\n%s", a, b, buf))
		})
		defer watchdog.Stop()
		s, nics := newFuzzStack(t)
		defer s.Close()
		for _, frame := range [][]byte{a, b} {
			in := append([]byte(nil), frame...)
			nics[0].DeliverFrame(in)
			if !bytes.Equal(in, frame) {
				t.Fatalf("the stack modified a received frame:\n in  %x\n now %x", frame, in)
			}
		}
		ixCheckBounds(t, s, nics)
	})
}
