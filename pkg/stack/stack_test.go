package stack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

func TestLoopbackNIC(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	lo := s.Loopback()
	if lo == nil || lo.Name() != "lo" || lo.Index() != 1 {
		t.Fatalf("lo = %v", lo)
	}
	if f := lo.Flags(); f.String() != "UP,LOOPBACK,RUNNING" {
		t.Errorf("lo flags %q", f)
	}
	var got []string
	for _, a := range lo.Addresses() {
		got = append(got, a.Prefix.String())
	}
	if len(got) != 2 || got[0] != "127.0.0.1/8" || got[1] != "::1/128" {
		t.Errorf("lo addresses %v", got)
	}
	if !s.IsLocal(mustAddr("127.0.0.1")) || !s.IsLocal(mustAddr("::1")) {
		t.Error("loopback addresses are not local")
	}
}

func TestNICNamesAndVLANs(t *testing.T) {
	nw := newTestNet(t, 1)
	s := New(Options{})
	defer s.Close()
	a, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{})
	if a.Name() != "eth0" || b.Name() != "eth1" || a.Index() != 2 || b.Index() != 3 {
		t.Fatalf("names %s/%d %s/%d", a.Name(), a.Index(), b.Name(), b.Index())
	}
	if _, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{Name: "eth0"}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate name: %v", err)
	}
	v, err := s.AddVLAN(a, 10, "")
	if err != nil || v.Name() != "eth0.10" {
		t.Fatalf("vlan %v %v", v, err)
	}
	if p, vid := v.Parent(); p != a || vid != 10 {
		t.Errorf("parent %v %d", p, vid)
	}
	if _, err := s.AddVLAN(a, 10, "x"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate VLAN: %v", err)
	}
	if _, err := s.AddVLAN(a, 4095, ""); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("VLAN 4095: %v", err)
	}
	if _, err := s.AddVLAN(v, 11, ""); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("VLAN on VLAN: %v", err)
	}
	if err := s.RemoveNIC(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.NICByName("eth0.10"); ok {
		t.Error("VLAN survived its parent")
	}
	if err := a.SetMTU(100000); err == nil {
		t.Error("MTU above the link's accepted")
	}
}

func TestConnectedRoutesFollowAddressesAndLink(t *testing.T) {
	nw := newTestNet(t, 2)
	s := New(Options{})
	defer s.Close()
	n, _ := s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
	if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("10.1.2.3/24")}); err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("10.1.2.3/24")}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate address: %v", err)
	}
	if a := n.Addresses()[0]; a.Broadcast != mustAddr("10.1.2.255") {
		t.Errorf("broadcast %v", a.Broadcast)
	}
	if _, err := s.FindRoute(0, netip.Addr{}, mustAddr("10.1.2.9")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("route while down: %v", err)
	}
	if v := s.stats.IP.OutNoRoutes.Load(); v != 1 {
		t.Errorf("OutNoRoutes %d, want 1", v)
	}
	n.SetUp(true)
	r, err := s.FindRoute(0, netip.Addr{}, mustAddr("10.1.2.9"))
	if err != nil || r.NIC != n || r.Src != mustAddr("10.1.2.3") || r.NextHop != mustAddr("10.1.2.9") || r.MTU != n.MTU() {
		t.Fatalf("route %+v %v", r, err)
	}
	r, err = s.FindRoute(0, netip.Addr{}, mustAddr("10.1.2.3"))
	if err != nil || r.Kind != RouteLocal || r.NIC != s.Loopback() {
		t.Errorf("local route %+v %v", r, err)
	}
	r, err = s.FindRoute(0, netip.Addr{}, mustAddr("10.1.2.255"))
	if err != nil || r.Kind != RouteBroadcast {
		t.Errorf("broadcast route %+v %v", r, err)
	}
	if _, err := s.FindRoute(0, mustAddr("10.9.9.9"), mustAddr("10.1.2.9")); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("foreign source: %v", err)
	}
	n.SetUp(false)
	if _, ok := s.Routes().Lookup(mustAddr("10.1.2.9")); ok {
		t.Error("connected route survived link down")
	}
	n.SetUp(true)
	if err := n.RemoveAddress(mustAddr("10.1.2.3")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Routes().Lookup(mustAddr("10.1.2.9")); ok {
		t.Error("connected route survived its address")
	}
}

func TestSourceSelection6(t *testing.T) {
	nw := newTestNet(t, 3)
	h := newTestHost(t, nw, Options{}, "fe80::1/64", "2001:db8:1::1/64", "2001:db8:2::1/64")
	for dst, want := range map[string]string{
		"fe80::9":       "fe80::1",
		"2001:db8:2::9": "2001:db8:2::1",
		"2001:db8:1::9": "2001:db8:1::1",
	} {
		a, ok := h.nic.primaryAddress(mustAddr(dst))
		if !ok || a != mustAddr(want) {
			t.Errorf("source for %s = %v, want %s", dst, a, want)
		}
	}
}

func TestSnapshotNames(t *testing.T) {
	s := New(Options{NoLoopback: true})
	defer s.Close()
	s.stats.ICMPMsg.In[8].Add(2)
	sec := s.Snapshot()
	if sec[0].Name != "Ip" || sec[0].Counters[0].Name != "Forwarding" || sec[0].Counters[2].Name != "InReceives" {
		t.Errorf("Ip section %+v", sec[0].Counters[:3])
	}
	if v, ok := sec[2].Get("InType8"); !ok || v != 2 {
		t.Errorf("IcmpMsg %+v", sec[2])
	}
}

func TestRateLimiter(t *testing.T) {
	var l rateLimiter
	l.init(Options{}.withDefaults())
	dst := mustAddr("192.0.2.1")
	allowed := 0
	for range 20 {
		if l.allow(dst) == limitAllow {
			allowed++
		}
	}
	if allowed != xrlimBurstFactor {
		t.Errorf("burst to one host allowed %d, want %d", allowed, xrlimBurstFactor)
	}
	if l.allow(mustAddr("127.0.0.1")) != limitAllow {
		t.Error("loopback limited")
	}
}

// A VLAN shares its parent's MAC, so its EUI-64 link-local address is the
// parent's: both may hold it (RFC 4291 §2.5.6), and removing one leaves
// the other local.
func TestLinkLocalOnSeveralLinks(t *testing.T) {
	nw := newTestNet(t, 4)
	h := newTestHost(t, nw, Options{}, "fe80::1/64", "2001:db8::1/64")
	v, err := h.s.AddVLAN(h.nic, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AddAddress(Address{Prefix: netip.MustParsePrefix("fe80::1/64"), NoDAD: true}); err != nil {
		t.Fatalf("same link-local on the VLAN: %v", err)
	}
	if err := v.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::1/64")}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("same global address on the VLAN: %v", err)
	}
	if err := h.nic.RemoveAddress(mustAddr("fe80::1")); err != nil {
		t.Fatal(err)
	}
	if n, ok := h.s.localNIC(mustAddr("fe80::1")); !ok || n != v {
		t.Errorf("after removal from eth0 the address is on %v %v, want eth0.10", n, ok)
	}
}

// Policy routing: a rule sends flows from one source through another
// table (`ip rule add from 10.1.0.1 lookup 100`), for locally originated
// packets (FindRoute) and forwarded ones alike (the IPv4 forwarding path
// looks up with the packet's source and incoming NIC).
func TestPolicyRouting(t *testing.T) {
	nw := newTestNet(t, 5)
	h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
	eth1, err := h.s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	eth1.AddAddress(Address{Prefix: netip.MustParsePrefix("10.1.0.1/24")})
	eth1.SetUp(true)
	if err := h.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.0.254"), NIC: h.nic.Index()}); err != nil {
		t.Fatal(err)
	}
	t100 := h.s.Policy().Table(100)
	if err := t100.Add(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr("10.1.0.254"), NIC: eth1.Index(), OnLink: true}); err != nil {
		t.Fatal(err)
	}
	gen := h.s.RouteGeneration()
	if err := h.s.Policy().AddRule(route.Rule{Priority: 100, Src: netip.MustParsePrefix("10.1.0.1/32"), Table: 100}); err != nil {
		t.Fatal(err)
	}
	if h.s.RouteGeneration() == gen {
		t.Error("RouteGeneration did not change with the rules")
	}
	dst := mustAddr("192.0.2.9")
	r, err := h.s.FindRoute(0, netip.Addr{}, dst)
	if err != nil || r.NIC != h.nic || r.NextHop != mustAddr("10.0.0.254") {
		t.Errorf("main table route %+v %v", r, err)
	}
	r, err = h.s.FindRoute(0, mustAddr("10.1.0.1"), dst)
	if err != nil || r.NIC != eth1 || r.NextHop != mustAddr("10.1.0.254") {
		t.Errorf("table 100 route %+v %v", r, err)
	}
	if err := h.s.Policy().AddRule(route.Rule{Priority: 50, Dst: netip.MustParsePrefix("192.0.2.0/24"), Action: route.ActionProhibit}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.FindRoute(0, netip.Addr{}, dst); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("prohibit rule: %v", err)
	}
}

// A forwarded packet is routed by its incoming interface too: a rule for
// packets arriving on R's A-side NIC sends them to a table whose route
// for B's subnet is a blackhole.
func TestPolicyRoutingForwarded(t *testing.T) {
	x := newRouted(t, Options{Seed: 2}, 0)
	rx := captureICMP(t, x.a.s)
	if err := sendEcho(x.a.s, mustAddr("10.0.2.1"), 1, 1, []byte("before"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitICMP(t, rx, wire.ICMPv4EchoReply)
	p := x.r.s.Policy()
	if err := p.Table(7).Add(route.Route{Dst: netip.MustParsePrefix("10.0.2.0/24"), Type: route.TypeBlackhole}); err != nil {
		t.Fatal(err)
	}
	if err := p.AddRule(route.Rule{Priority: 10, IIF: x.r.nic.Index(), Table: 7}); err != nil {
		t.Fatal(err)
	}
	fwd := x.r.s.Stats().IP.ForwDatagrams.Load()
	if err := sendEcho(x.a.s, mustAddr("10.0.2.1"), 1, 2, []byte("after"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	noICMP(t, rx, wire.ICMPv4EchoReply, 300*time.Millisecond)
	if v := x.r.s.Stats().IP.ForwDatagrams.Load(); v != fwd {
		t.Errorf("ForwDatagrams %d -> %d through a blackhole", fwd, v)
	}
	// R's own traffic (no incoming interface) still uses the main table.
	if r, err := x.r.s.FindRoute(0, netip.Addr{}, mustAddr("10.0.2.1")); err != nil || r.NIC != x.rb {
		t.Errorf("R's own route %+v %v", r, err)
	}
}
