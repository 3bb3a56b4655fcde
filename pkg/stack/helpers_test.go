package stack

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/link/emu"
)

// Shared test helpers: stacks on an emulated network.

// newTestNet returns an emulated network closed at the end of the test.
func newTestNet(t testing.TB, seed uint64) *emu.Network {
	t.Helper()
	nw := emu.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	return nw
}

// testHost is a stack with one NIC (eth0) on an emulated network.
type testHost struct {
	s    *Stack
	nic  *NIC
	port *emu.Port
}

// newTestHost makes a stack with one up NIC on nw carrying addrs
// ("10.0.0.1/24", "2001:db8::1/64"). IPv6 DAD is off unless opts ask for
// it through NICOptions (use newTestHostNIC).
func newTestHost(t testing.TB, nw *emu.Network, opts Options, addrs ...string) *testHost {
	t.Helper()
	return newTestHostNIC(t, nw, opts, NICOptions{NoDAD: true, NoAutoconf: true}, emu.PortConfig{}, addrs...)
}

func newTestHostNIC(t testing.TB, nw *emu.Network, opts Options, no NICOptions, pc emu.PortConfig, addrs ...string) *testHost {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	port := nw.NewPort(pc)
	n, err := s.AddNIC(port, no)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &testHost{s: s, nic: n, port: port}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
