package raw

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// Test networks on the emulated link: host A — router R — host B, each
// side its own switch. A is 10.82.1.2 / fd82:1::2, R 10.82.1.1 and
// 10.82.2.1 / fd82:1::1 and fd82:2::1, B 10.82.2.2 / fd82:2::2. R has a
// prohibit route for 10.82.9.0/24 and fd82:9::/64 and no route beyond.

type lab struct {
	a, r, b *stack.Stack
}

var (
	addrA4, addrA6 = netip.MustParseAddr("10.82.1.2"), netip.MustParseAddr("fd82:1::2")
	addrR4, addrR6 = netip.MustParseAddr("10.82.1.1"), netip.MustParseAddr("fd82:1::1")
	addrB4, addrB6 = netip.MustParseAddr("10.82.2.2"), netip.MustParseAddr("fd82:2::2")
)

func addNIC(t testing.TB, s *stack.Stack, nw *emu.Network, addrs ...string) *stack.NIC {
	t.Helper()
	n, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return n
}

func newStack(t testing.TB, o stack.Options) *stack.Stack {
	s := stack.New(o)
	t.Cleanup(func() { s.Close() })
	return s
}

func newLab(t testing.TB) *lab {
	t.Helper()
	nw1, nw2 := emu.NewNetwork(1), emu.NewNetwork(2)
	t.Cleanup(func() { nw1.Close(); nw2.Close() })
	l := &lab{
		a: newStack(t, stack.Options{}),
		// No per-destination ICMP rate limit: the tests provoke many errors.
		r: newStack(t, stack.Options{IPv4Forwarding: true, IPv6Forwarding: true, ICMPRateLimit: -1}),
		b: newStack(t, stack.Options{}),
	}
	addNIC(t, l.a, nw1, "10.82.1.2/24", "fd82:1::2/64")
	addNIC(t, l.r, nw1, "10.82.1.1/24", "fd82:1::1/64")
	addNIC(t, l.r, nw2, "10.82.2.1/24", "fd82:2::1/64")
	addNIC(t, l.b, nw2, "10.82.2.2/24", "fd82:2::2/64")
	for s, gws := range map[*stack.Stack][]string{l.a: {"10.82.1.1", "fd82:1::1"}, l.b: {"10.82.2.1", "fd82:2::1"}} {
		for _, gw := range gws {
			g := netip.MustParseAddr(gw)
			dst := netip.MustParsePrefix("0.0.0.0/0")
			if g.Is6() {
				dst = netip.MustParsePrefix("::/0")
			}
			if err := s.Routes().Add(route.Route{Dst: dst, Gateway: g}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"10.82.9.0/24", "fd82:9::/64"} {
		if err := l.r.Routes().Add(route.Route{Dst: netip.MustParsePrefix(p), Type: route.TypeProhibit}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// waitRead reads one datagram, waiting up to d for it.
func waitRead(t testing.TB, ep transport.Endpoint, o transport.ReadOptions, d time.Duration) ([]byte, transport.ReadResult, error) {
	t.Helper()
	buf := make([]byte, 65536)
	entry, ch := waiter.NewChannelEntry(waiter.EventIn | waiter.EventErr)
	ep.Queue().Register(entry)
	defer ep.Queue().Unregister(entry)
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		res, err := ep.Read([][]byte{buf}, o)
		if !errors.Is(err, syscall.EAGAIN) {
			return buf[:min(res.N, len(buf))], res, err
		}
		select {
		case <-ch:
		case <-deadline.C:
			return nil, res, err
		}
	}
}

// noRead checks that nothing arrives within d.
func noRead(t testing.TB, ep transport.Endpoint, o transport.ReadOptions, d time.Duration) {
	t.Helper()
	if b, _, err := waitRead(t, ep, o, d); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("unexpected read: %x, %v", b, err)
	}
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
