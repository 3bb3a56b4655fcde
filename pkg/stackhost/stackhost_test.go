package stackhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
)

// pair starts two Hosts on one emulated network named after the test,
// eth0 10.61.0.1/24 and 10.61.0.2/24.
func pair(t *testing.T) (a, b *Host) {
	t.Helper()
	spec := fmt.Sprintf("emu:stackhost-%s", t.Name())
	ctx := context.Background()
	for i, h := range []**Host{&a, &b} {
		var err error
		*h, err = Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		if err := hh.AddAddress(ctx, "eth0", netip.MustParsePrefix(fmt.Sprintf("10.61.0.%d/24", i+1)), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func find(t *testing.T, its []host.Interface, name string) host.Interface {
	t.Helper()
	for _, it := range its {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no interface %s in %+v", name, its)
	return host.Interface{}
}

// Interfaces report lo and eth0 with Linux flag bits, addresses with the
// computed broadcast, and counters that move with traffic.
func TestInterfacesAndCounters(t *testing.T) {
	a, b := pair(t)
	ctx := context.Background()
	// TCP across the link moves both NICs' counters and the Tcp section.
	ln, err := (&gonet.Dialer{Layer: b.Inet().Layer}).Listen(ctx, "tcp", "10.61.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello")
			c.Close()
		}
	}()
	c, err := (&gonet.Dialer{Layer: a.Inet().Layer, Timeout: 5 * time.Second}).DialContext(ctx, "tcp", "10.61.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	its, err := a.Interfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lo, eth := find(t, its, "lo"), find(t, its, "eth0")
	if lo.Flags != host.FlagUp|host.FlagLoopback|host.FlagRunning || lo.MAC != "" {
		t.Errorf("lo flags %#x mac %q", lo.Flags, lo.MAC)
	}
	if want := host.FlagUp | host.FlagBroadcast | host.FlagRunning | host.FlagMulticast; eth.Flags != want {
		t.Errorf("eth0 flags %d, want %d (4163 as Linux)", eth.Flags, want)
	}
	var v4 host.Addr
	for _, ad := range eth.Addrs {
		if ad.Prefix.Addr().Is4() {
			v4 = ad
		}
	}
	if v4.Prefix != netip.MustParsePrefix("10.61.0.1/24") || v4.Broadcast != netip.MustParseAddr("10.61.0.255") || v4.Scope != "global" {
		t.Errorf("eth0 IPv4 %+v", v4)
	}
	if eth.Stats.RxPackets == 0 || eth.Stats.TxPackets == 0 || eth.Stats.RxBytes == 0 || eth.MTU != 1500 || eth.TxQueueLen != 1000 {
		t.Errorf("eth0 %+v", eth)
	}
	cs, err := a.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]host.CounterSection{}
	for _, s := range cs {
		sec[s.Name] = s
	}
	if v, _ := sec["Tcp"].Get("ActiveOpens"); v != 1 {
		t.Errorf("Tcp ActiveOpens %d, want 1", v)
	}
	if v, _ := sec["Ip"].Get("InReceives"); v == 0 {
		t.Errorf("Ip InReceives 0 after traffic (sections %v)", cs)
	}
	if _, ok := sec["Udp"]; !ok {
		t.Error("no Udp section")
	}
	// The listener is a socket netstat sees.
	socks, err := b.Sockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listening := false
	for _, s := range socks {
		if s.Proto == "tcp" && s.State == "LISTEN" && s.Local == netip.MustParseAddrPort("10.61.0.2:8080") {
			listening = true
		}
	}
	if !listening {
		t.Errorf("listener missing from %+v", socks)
	}
}

func TestInterfaceSettersAndErrors(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	if _, err := a.Interface(ctx, "eth9"); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("unknown interface: %v, want ENODEV", err)
	}
	if err := a.SetMTU(ctx, "eth0", 1400); err != nil {
		t.Fatal(err)
	}
	if err := a.SetMTU(ctx, "eth0", 10); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("MTU 10: %v, want EINVAL", err)
	}
	if err := a.SetMAC(ctx, "eth0", "02:00:00:00:61:01"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetMAC(ctx, "eth0", "zz"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad MAC: %v", err)
	}
	if err := a.SetPromisc(ctx, "eth0", true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetUp(ctx, "eth0", false); err != nil {
		t.Fatal(err)
	}
	it, err := a.Interface(ctx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if it.MTU != 1400 || it.MAC != "02:00:00:00:61:01" || it.Flags != host.FlagBroadcast|host.FlagMulticast|host.FlagPromisc {
		t.Errorf("after setters: %+v (flags %d)", it, it.Flags)
	}
	if err := a.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.61.0.1/24"), netip.Addr{}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate address: %v, want EEXIST", err)
	}
	if err := a.DelAddress(ctx, "eth0", netip.MustParseAddr("10.61.0.77")); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("missing address: %v, want EADDRNOTAVAIL", err)
	}
	// IPv6 add and delete.
	p6 := netip.MustParsePrefix("fd61::1/64")
	if err := a.AddAddress(ctx, "eth0", p6, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := a.DelAddress(ctx, "eth0", p6.Addr()); err != nil {
		t.Fatal(err)
	}
}

// An alias carries a labelled address, lists as its own interface, and
// taking it down removes the address.
func TestAlias(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	p := netip.MustParsePrefix("10.62.0.1/24")
	if err := a.AddAddress(ctx, "eth0:1", p, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	al, err := a.Interface(ctx, "eth0:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(al.Addrs) != 1 || al.Addrs[0].Prefix != p || al.Addrs[0].Label != "eth0:1" {
		t.Fatalf("alias %+v", al)
	}
	its, _ := a.Interfaces(ctx)
	find(t, its, "eth0:1")
	if err := a.SetUp(ctx, "eth0:1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Interface(ctx, "eth0:1"); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("alias after down: %v, want ENODEV", err)
	}
	eth, _ := a.Interface(ctx, "eth0")
	for _, ad := range eth.Addrs {
		if ad.Prefix == p {
			t.Errorf("alias address still on eth0")
		}
	}
}

func TestRoutes(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	def := host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.61.0.2")}
	if err := a.AddRoute(ctx, def); err != nil {
		t.Fatal(err)
	}
	if err := a.AddRoute(ctx, def); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate route: %v, want EEXIST", err)
	}
	if err := a.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.9.0.0/16"), Gateway: netip.MustParseAddr("192.0.2.1")}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("off-link gateway: %v, want ENETUNREACH", err)
	}
	if err := a.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.63.0.5/32"), Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	rs, err := a.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[netip.Prefix]string{}
	for _, r := range rs {
		if r.Dev == "eth0" {
			flags[r.Dst] = host.RouteFlagString(r.Flags)
		}
	}
	for p, want := range map[string]string{"0.0.0.0/0": "UG", "10.63.0.5/32": "UH", "10.61.0.0/24": "U"} {
		if got := flags[netip.MustParsePrefix(p)]; got != want {
			t.Errorf("route %s flags %q, want %q (all %v)", p, got, want, flags)
		}
	}
	if err := a.DelRoute(ctx, host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	if err := a.DelRoute(ctx, host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0")}); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("deleting a missing route: %v, want ESRCH", err)
	}
}

func TestNeighbors(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	ip := netip.MustParseAddr("10.61.0.7")
	if err := a.AddNeighbor(ctx, host.Neighbor{Addr: ip, MAC: "02:00:00:00:00:07"}); err != nil {
		t.Fatal(err)
	}
	ns, err := a.Neighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range ns {
		if n.Addr == ip {
			found = n.Permanent && n.State == "PERMANENT" && n.MAC == "02:00:00:00:00:07" && n.Dev == "eth0"
		}
	}
	if !found {
		t.Errorf("static entry missing or wrong: %+v", ns)
	}
	if err := a.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("192.0.2.9"), MAC: "02:00:00:00:00:09"}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("off-link neighbour: %v", err)
	}
	if err := a.DelNeighbor(ctx, "", ip); err != nil {
		t.Fatal(err)
	}
	if err := a.DelNeighbor(ctx, "", ip); !errors.Is(err, syscall.ENXIO) {
		t.Errorf("deleting a missing entry: %v, want ENXIO", err)
	}
}

// Sockets come in a stable order, and lo's 127.0.0.0/8 is not listed as
// route -n on Linux does not list it.
func TestSocketOrderAndLoopbackRoute(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	d := &gonet.Dialer{Layer: a.Inet().Layer}
	for port := 9000; port < 9008; port++ {
		ln, err := d.Listen(ctx, "tcp4", fmt.Sprintf("10.61.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	first, _ := a.Sockets(ctx)
	for i := 0; i < 5; i++ {
		again, _ := a.Sockets(ctx)
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("order changed:\n%v\n%v", first, again)
		}
	}
	for i := 1; i < len(first); i++ {
		if first[i-1].Local.Compare(first[i].Local) > 0 {
			t.Fatalf("not sorted by local address: %v", first)
		}
	}
	rs, _ := a.Routes(ctx)
	for _, r := range rs {
		if r.Dev == "lo" && r.Dst.Addr().Is4() {
			t.Errorf("lo route listed: %+v", r)
		}
	}
}
