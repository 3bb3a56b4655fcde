package transport

import (
	"errors"
	"net/netip"
	"strconv"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
)

func TestMembershipsShareNICJoins(t *testing.T) {
	net := emu.NewNetwork(1)
	t.Cleanup(func() { net.Close() })
	s := stack.New(stack.Options{Seed: 1})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(net.NewPort(emu.PortConfig{}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix("10.9.0.2/24")}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	g := netip.MustParseAddr("239.1.2.3")

	a, b := NewMemberships(s), NewMemberships(s)
	if err := a.Join(Membership{Group: g, IfIndex: n.Index()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(Membership{Group: g, IfAddr: netip.MustParseAddr("10.9.0.2")}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second join of the same group and NIC: %v, want EADDRINUSE", err)
	}
	if err := b.Join(Membership{Group: netip.MustParseAddr("::ffff:239.1.2.3")}); err != nil {
		t.Fatalf("join by route with a v4-mapped group: %v", err)
	}
	if !a.Has(g, n.Index()) || !b.Has(g, 0) || !n.InGroup(g) {
		t.Fatal("memberships not recorded")
	}
	a.LeaveAll()
	if !n.InGroup(g) {
		t.Error("the NIC left a group another socket still holds")
	}
	if err := b.Leave(Membership{Group: g, IfIndex: n.Index()}); err != nil {
		t.Fatal(err)
	}
	if n.InGroup(g) {
		t.Error("the NIC kept a group nobody holds")
	}
	if err := b.Leave(Membership{Group: g, IfIndex: n.Index()}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("leaving a group not joined: %v, want EADDRNOTAVAIL", err)
	}
	if err := a.Join(Membership{Group: netip.MustParseAddr("10.9.0.7")}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("joining a unicast address: %v, want EINVAL", err)
	}
	if err := a.Join(Membership{Group: g, IfIndex: 99}); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("joining on a missing NIC: %v, want ENODEV", err)
	}
	ifs := StackInterfaces(s)
	if i, ok := ifs.IndexByName(n.Name()); !ok || i != n.Index() || !ifs.HasIndex(i) || ifs.HasIndex(99) {
		t.Error("StackInterfaces does not see the NIC")
	}
	if name, ok := ifs.NameByIndex(n.Index()); !ok || name != n.Name() {
		t.Errorf("NameByIndex(%d) = %q, %v", n.Index(), name, ok)
	}
	if _, ok := ifs.NameByIndex(99); ok {
		t.Error("NameByIndex(99) found a NIC")
	}
	for _, z := range []string{n.Name(), strconv.Itoa(n.Index())} {
		if i, ok := ifs.ZoneIndex(z); !ok || i != n.Index() {
			t.Errorf("ZoneIndex(%q) = %d, %v", z, i, ok)
		}
	}
	if _, ok := ifs.ZoneIndex("99"); ok {
		t.Error("ZoneIndex(99) found a NIC")
	}
}
