package route

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// connected returns the connected (proto kernel) routes of tb as strings.
func connected(tb *Table) []string {
	var s []string
	for _, r := range tb.Routes() {
		if r.Protocol == ProtoKernel {
			s = append(s, r.String())
		}
	}
	return s
}

func TestConnectedRoutesFollowAddresses(t *testing.T) {
	tb := New()
	type step struct {
		add  bool
		nic  int
		addr string
		want []string // connected routes afterwards
	}
	steps := []step{
		{true, 1, "10.0.0.1/24", []string{"10.0.0.0/24 dev #1 proto kernel src 10.0.0.1"}},
		// A second address in the prefix shares the route.
		{true, 1, "10.0.0.2/24", []string{"10.0.0.0/24 dev #1 proto kernel src 10.0.0.1"}},
		// Adding it again changes nothing.
		{true, 1, "10.0.0.2/24", []string{"10.0.0.0/24 dev #1 proto kernel src 10.0.0.1"}},
		// The same prefix on another interface gets its own route.
		{true, 2, "10.0.0.3/24", []string{
			"10.0.0.0/24 dev #1 proto kernel src 10.0.0.1",
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3"}},
		// The same address with another prefix length is another prefix.
		{true, 1, "10.0.0.1/16", []string{
			"10.0.0.0/24 dev #1 proto kernel src 10.0.0.1",
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"10.0.0.0/16 dev #1 proto kernel src 10.0.0.1"}},
		// Removing the route's source promotes the next address.
		{false, 1, "10.0.0.1/24", []string{
			"10.0.0.0/24 dev #1 proto kernel src 10.0.0.2",
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"10.0.0.0/16 dev #1 proto kernel src 10.0.0.1"}},
		// Removing the last address of the prefix removes the route.
		{false, 1, "10.0.0.2/24", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"10.0.0.0/16 dev #1 proto kernel src 10.0.0.1"}},
		{false, 1, "10.0.0.1/16", []string{"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3"}},
		// An IPv4 /32 address gets no route (fib_add_ifaddr).
		{true, 1, "10.9.0.1/32", []string{"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3"}},
		// IPv6: the prefix route with metric 256, no source, /128 too.
		{true, 1, "fd00::1/64", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00::/64 dev #1 proto kernel metric 256"}},
		{true, 1, "fd00::2/64", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00::/64 dev #1 proto kernel metric 256"}},
		{true, 1, "fd00:8::1/128", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00::/64 dev #1 proto kernel metric 256",
			"fd00:8::1/128 dev #1 proto kernel metric 256"}},
		{false, 1, "fd00::1/64", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00::/64 dev #1 proto kernel metric 256",
			"fd00:8::1/128 dev #1 proto kernel metric 256"}},
		{false, 1, "fd00::2/64", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00:8::1/128 dev #1 proto kernel metric 256"}},
		{false, 1, "10.9.0.1/32", []string{
			"10.0.0.0/24 dev #2 proto kernel src 10.0.0.3",
			"fd00:8::1/128 dev #1 proto kernel metric 256"}},
	}
	for i, s := range steps {
		gen := tb.Generation()
		var err error
		if s.add {
			err = tb.AddressAdded(s.nic, pfx(s.addr))
		} else {
			err = tb.AddressRemoved(s.nic, pfx(s.addr))
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := connected(tb); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%v %s on #%d):\n got %q\nwant %q", i, s.add, s.addr, s.nic, got, s.want)
		}
		if changed := tb.Generation() != gen; changed != (i != 2) {
			t.Errorf("step %d: generation changed = %v", i, changed)
		}
	}
}

// Once an address is gone from every interface, routes using it as their
// preferred source go too (fib_sync_down_addr); while another interface
// still has it they stay.
func TestAddressRemovalDropsRoutesWithItsSource(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	mustAddr(t, tb, 2, "10.0.0.1/16")
	mustAddr(t, tb, 1, "192.168.0.1/24")
	mustAdd(t, tb, Route{Dst: pfx("10.50.0.0/16"), Gateway: ip("192.168.0.2"), Src: ip("10.0.0.1")})
	mustAdd(t, tb, Route{Dst: pfx("10.51.0.0/16"), Gateway: ip("192.168.0.2")})

	if err := tb.AddressRemoved(1, pfx("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Lookup(ip("10.50.0.1")); !ok {
		t.Fatal("route removed while #2 still has its source")
	}
	if err := tb.AddressRemoved(2, pfx("10.0.0.1/16")); err != nil {
		t.Fatal(err)
	}
	if r, ok := tb.Lookup(ip("10.50.0.1")); ok {
		t.Errorf("route with a vanished source survived: %v", r)
	}
	if _, ok := tb.Lookup(ip("10.51.0.1")); !ok {
		t.Error("route without a source was removed")
	}
}

func TestConnectedErrors(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	tests := []struct {
		name string
		f    func() error
		want syscall.Errno
	}{
		{"remove unknown", func() error { return tb.AddressRemoved(1, pfx("10.0.0.2/24")) }, syscall.EADDRNOTAVAIL},
		{"remove other prefix length", func() error { return tb.AddressRemoved(1, pfx("10.0.0.1/16")) }, syscall.EADDRNOTAVAIL},
		{"remove on other NIC", func() error { return tb.AddressRemoved(2, pfx("10.0.0.1/24")) }, syscall.EADDRNOTAVAIL},
		{"NIC 0", func() error { return tb.AddressAdded(0, pfx("10.0.0.1/24")) }, syscall.EINVAL},
		{"invalid prefix", func() error { return tb.AddressAdded(1, netip.Prefix{}) }, syscall.EINVAL},
		{"unspecified", func() error { return tb.AddressAdded(1, pfx("0.0.0.0/8")) }, syscall.EINVAL},
		{"remove NIC 0", func() error { return tb.AddressRemoved(0, pfx("10.0.0.1/24")) }, syscall.EINVAL},
	}
	for _, tt := range tests {
		if err := tt.f(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := connected(tb); len(got) != 1 {
		t.Errorf("failed calls changed the routes: %q", got)
	}
}

// A connected route that was added by hand first is not duplicated, and
// the address's removal takes only the kernel's route.
func TestConnectedRouteAlreadyPresent(t *testing.T) {
	tb := New()
	mustAdd(t, tb, Route{Dst: pfx("10.0.0.0/24"), NIC: 1})
	mustAddr(t, tb, 1, "10.0.0.1/24")
	if n := len(tb.Routes()); n != 1 {
		t.Fatalf("%d routes, want 1", n)
	}
	if err := tb.AddressRemoved(1, pfx("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Lookup(ip("10.0.0.5")); !ok {
		t.Error("hand-made route removed with the address")
	}
}
