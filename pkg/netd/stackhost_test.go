package netd

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// startStack is a real stack on an emulated network of its own.
func startStack(t *testing.T) *stackhost.Host {
	t.Helper()
	h, err := stackhost.Start("emu:netd-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// quiet drops what moves by itself (traffic counters), so two reads of a
// live stack compare equal.
func quiet(ifs []host.Interface) []host.Interface {
	out := make([]host.Interface, len(ifs))
	for i, ifc := range ifs {
		ifc.Stats = host.Stats{}
		out[i] = ifc
	}
	return out
}

// TestStackhost runs the round trip over the real in-process stack: the
// answers through the socket equal the stack's own, the changes land in
// the stack, its errors keep their errno, and a user changes nothing.
func TestStackhost(t *testing.T) {
	ctx := context.Background()
	sh := startStack(t)
	path, _ := serve(t, sh, ServerOptions{PeerCred: rootCred})
	c := dial(t, path)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	p := netip.MustParsePrefix("10.62.0.1/24")
	must("AddAddress", c.AddAddress(ctx, "eth0", p, netip.Addr{}))
	must("AddAddress alias", c.AddAddress(ctx, "eth0:1", netip.MustParsePrefix("10.62.0.9/24"), netip.Addr{}))
	must("AddAddress v6", c.AddAddress(ctx, "eth0", netip.MustParsePrefix("fd00:62::1/64"), netip.Addr{}))
	must("SetMTU", c.SetMTU(ctx, "eth0", 1400))
	must("SetMAC", c.SetMAC(ctx, "eth0", "02:62:00:00:00:01"))
	must("SetPromisc", c.SetPromisc(ctx, "eth0", true))
	rt := host.Route{Dst: netip.MustParsePrefix("172.16.0.0/12"), Gateway: netip.MustParseAddr("10.62.0.254"), Metric: 7}
	must("AddRoute", c.AddRoute(ctx, rt))
	nb := host.Neighbor{Addr: netip.MustParseAddr("10.62.0.7"), MAC: "02:62:00:00:00:07", Dev: "eth0"}
	must("AddNeighbor", c.AddNeighbor(ctx, nb))

	ln, err := (&gonet.Dialer{Layer: sh.Inet().Layer}).Listen(ctx, "tcp", "10.62.0.1:8080")
	must("Listen", err)
	defer ln.Close()

	// Reads through the socket equal the stack's own.
	ifs, err := c.Interfaces(ctx)
	must("Interfaces", err)
	direct, _ := sh.Interfaces(ctx)
	same(t, "Interfaces", quiet(ifs), quiet(direct))
	eth, err := c.Interface(ctx, "eth0")
	must("Interface", err)
	if eth.MTU != 1400 || eth.MAC != "02:62:00:00:00:01" || eth.Flags&host.FlagPromisc == 0 {
		t.Errorf("eth0 after the changes: mtu %d mac %s flags %#x", eth.MTU, eth.MAC, eth.Flags)
	}
	alias, err := c.Interface(ctx, "eth0:1")
	must("Interface eth0:1", err)
	dalias, _ := sh.Interface(ctx, "eth0:1")
	same(t, "Interface eth0:1", quiet([]host.Interface{alias}), quiet([]host.Interface{dalias}))
	if len(alias.Addrs) != 1 || alias.Addrs[0].Prefix.Addr() != netip.MustParseAddr("10.62.0.9") || alias.Addrs[0].Label != "eth0:1" {
		t.Errorf("eth0:1 addresses %+v", alias.Addrs)
	}
	routes, err := c.Routes(ctx)
	must("Routes", err)
	droutes, _ := sh.Routes(ctx)
	for i := range routes {
		// Use counts lookups, which traffic of the stack's own may bump.
		routes[i].Use = 0
	}
	for i := range droutes {
		droutes[i].Use = 0
	}
	same(t, "Routes", routes, droutes)
	found := false
	for _, r := range routes {
		found = found || (r.Dst == rt.Dst && r.Gateway == rt.Gateway && r.Metric == 7 && r.Dev == "eth0")
	}
	if !found {
		t.Errorf("route %+v not in %+v", rt, routes)
	}
	neigh, err := c.Neighbors(ctx)
	must("Neighbors", err)
	dneigh, _ := sh.Neighbors(ctx)
	same(t, "Neighbors", neigh, dneigh)
	socks, err := c.Sockets(ctx)
	must("Sockets", err)
	dsocks, _ := sh.Sockets(ctx)
	same(t, "Sockets", socks, dsocks)
	if len(socks) == 0 {
		t.Error("no sockets listed; the test listens on 10.62.0.1:8080")
	}
	// Counters may move between reads: the socket's answer lies between
	// two direct reads.
	before, _ := sh.Counters(ctx)
	counters, err := c.Counters(ctx)
	must("Counters", err)
	after, _ := sh.Counters(ctx)
	if len(counters) == 0 || len(counters) != len(before) || len(counters) != len(after) {
		t.Fatalf("Counters: %d sections, the stack has %d", len(counters), len(before))
	}
	for i, sec := range counters {
		if sec.Name != before[i].Name || len(sec.Counters) != len(before[i].Counters) {
			t.Fatalf("section %d: %s with %d counters, the stack has %s with %d", i, sec.Name, len(sec.Counters), before[i].Name, len(before[i].Counters))
		}
		for j, ct := range sec.Counters {
			lo, hi := before[i].Counters[j], after[i].Counters[j]
			if ct.Name != lo.Name || ct.Value < lo.Value || ct.Value > hi.Value {
				t.Errorf("%s %s = %d, the stack had %d then %d", sec.Name, ct.Name, ct.Value, lo.Value, hi.Value)
			}
		}
	}

	// The stack's errors arrive as they are.
	for _, tc := range []struct {
		name  string
		errno syscall.Errno
		call  func(host.Host) error
	}{
		{"unknown interface", syscall.ENODEV, func(h host.Host) error { _, err := h.Interface(ctx, "eth9"); return err }},
		{"duplicate address", syscall.EEXIST, func(h host.Host) error { return h.AddAddress(ctx, "eth0", p, netip.Addr{}) }},
		{"missing route", syscall.ESRCH, func(h host.Host) error {
			return h.DelRoute(ctx, host.Route{Dst: netip.MustParsePrefix("192.168.99.0/24")})
		}},
		{"proxy neighbor", syscall.EOPNOTSUPP, func(h host.Host) error {
			return h.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("10.62.0.8"), MAC: "02:62:00:00:00:08", Dev: "eth0", Proxy: true})
		}},
		{"address on unknown interface", syscall.ENODEV, func(h host.Host) error {
			return h.AddAddress(ctx, "eth9", netip.MustParsePrefix("10.63.0.1/24"), netip.Addr{})
		}},
	} {
		want, got := tc.call(sh), tc.call(c)
		if !errors.Is(want, tc.errno) {
			t.Errorf("%s: the stack says %v, want errno %v (test premise)", tc.name, want, tc.errno)
		}
		if !errors.Is(got, tc.errno) {
			t.Errorf("%s: %v over the socket, want errno %v", tc.name, got, tc.errno)
		}
		same(t, tc.name, got, want)
	}

	// A user reads everything and changes nothing.
	upath, _ := serve(t, sh, ServerOptions{PeerCred: userCred(1000, 1000)})
	uc := dial(t, upath)
	snap := func() any {
		ifs, _ := sh.Interfaces(ctx)
		rs, _ := sh.Routes(ctx)
		for i := range rs {
			rs[i].Use = 0
		}
		ns, _ := sh.Neighbors(ctx)
		return []any{quiet(ifs), rs, ns}
	}
	was := snap()
	if got, err := uc.Interfaces(ctx); err != nil || len(got) != len(ifs) {
		t.Errorf("user Interfaces: %d, %v", len(got), err)
	}
	for _, err := range []error{
		uc.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.62.0.50/24"), netip.Addr{}),
		uc.DelAddress(ctx, "eth0", p.Addr()),
		uc.SetUp(ctx, "eth0", false),
		uc.SetMTU(ctx, "eth0", 1300),
		uc.SetMAC(ctx, "eth0", "02:62:00:00:00:99"),
		uc.SetPromisc(ctx, "eth0", false),
		uc.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.99.0.0/16"), Gateway: netip.MustParseAddr("10.62.0.254")}),
		uc.DelRoute(ctx, rt),
		uc.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("10.62.0.51"), MAC: "02:62:00:00:00:51", Dev: "eth0"}),
		uc.DelNeighbor(ctx, "eth0", nb.Addr),
	} {
		if !errors.Is(err, syscall.EPERM) {
			t.Errorf("user mutation: %v, want EPERM", err)
		}
	}
	same(t, "stack after refused mutations", snap(), was)

	// And the deletes, as root.
	must("DelRoute", c.DelRoute(ctx, rt))
	must("DelNeighbor", c.DelNeighbor(ctx, "eth0", nb.Addr))
	must("DelAddress alias", c.DelAddress(ctx, "eth0:1", netip.MustParseAddr("10.62.0.9")))
	must("SetUp false", c.SetUp(ctx, "eth0", false))
	if _, err := sh.Interface(ctx, "eth0:1"); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("eth0:1 after deleting its address: %v", err)
	}
	eth, _ = sh.Interface(ctx, "eth0")
	if eth.Flags&host.FlagUp != 0 {
		t.Errorf("eth0 still up: flags %#x", eth.Flags)
	}
	droutes, _ = sh.Routes(ctx)
	for _, r := range droutes {
		if r.Dst == rt.Dst {
			t.Errorf("route still there: %+v", r)
		}
	}
	dneigh, _ = sh.Neighbors(ctx)
	for _, n := range dneigh {
		if n.Addr == nb.Addr {
			t.Errorf("neighbor still there: %+v", n)
		}
	}
}
