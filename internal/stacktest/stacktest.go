// Package stacktest is the scaffolding the transport protocols' tests
// share: stacks and NICs on emulated links, a routed lab (two hosts and
// a forwarding router between them), and reading an endpoint while
// waiting on its waiter.Queue with a timeout.
//
// Everything it makes is closed with t.Cleanup. The waits use the time
// package's timers, so they run on fake time inside a synctest bubble.
package stacktest

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// NewStack makes a stack, closed when the test ends.
func NewStack(t testing.TB, o stack.Options) *stack.Stack {
	s := stack.New(o)
	t.Cleanup(func() { s.Close() })
	return s
}

// NewNetwork makes an emulated switch, closed when the test ends.
func NewNetwork(t testing.TB, seed uint64) *emu.Network {
	t.Helper()
	nw := emu.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	return nw
}

// AddNIC attaches ep to s as a NIC without DAD or autoconfiguration,
// gives it the addresses (prefixes such as "10.0.0.1/24") and brings it
// up.
func AddNIC(t testing.TB, s *stack.Stack, ep link.Endpoint, prefixes ...string) *stack.NIC {
	t.Helper()
	n, err := s.AddNIC(ep, stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range prefixes {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return n
}

// Routed is a lab of three stacks on emulated links: host A — router R
// — host B, each side its own switch. With the lab's number n (10 to
// 99), A is 10.n.1.2 / fdn:1::2, R 10.n.1.1 and 10.n.2.1 / fdn:1::1 and
// fdn:2::1, B 10.n.2.2 / fdn:2::2 (the IPv6 prefix is written with n's
// decimal digits: lab 81 is fd81::/16). A and B route everything through
// R; R forwards both families, has no ICMP rate limit (the tests provoke
// many errors), a prohibit route for 10.n.9.0/24 and fdn:9::/64, and no
// route beyond.
type Routed struct {
	A, R, B *stack.Stack
}

// NewRouted builds lab n; different packages use different numbers so
// their addresses are told apart in traces.
func NewRouted(t testing.TB, n int) *Routed {
	t.Helper()
	if n < 10 || n > 99 {
		t.Fatalf("stacktest: lab number %d out of 10..99", n)
	}
	v4 := func(f string, a ...any) string { return fmt.Sprintf("10.%d.", n) + fmt.Sprintf(f, a...) }
	v6 := func(f string, a ...any) string { return fmt.Sprintf("fd%d:", n) + fmt.Sprintf(f, a...) }
	nw1, nw2 := NewNetwork(t, 1), NewNetwork(t, 2)
	l := &Routed{
		A: NewStack(t, stack.Options{}),
		R: NewStack(t, stack.Options{IPv4Forwarding: true, IPv6Forwarding: true, ICMPRateLimit: -1}),
		B: NewStack(t, stack.Options{}),
	}
	AddNIC(t, l.A, nw1.NewPort(emu.PortConfig{}), v4("1.2/24"), v6("1::2/64"))
	AddNIC(t, l.R, nw1.NewPort(emu.PortConfig{}), v4("1.1/24"), v6("1::1/64"))
	AddNIC(t, l.R, nw2.NewPort(emu.PortConfig{}), v4("2.1/24"), v6("2::1/64"))
	AddNIC(t, l.B, nw2.NewPort(emu.PortConfig{}), v4("2.2/24"), v6("2::2/64"))
	for s, gws := range map[*stack.Stack][]string{l.A: {v4("1.1"), v6("1::1")}, l.B: {v4("2.1"), v6("2::1")}} {
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
	for _, p := range []string{v4("9.0/24"), v6("9::/64")} {
		if err := l.R.Routes().Add(route.Route{Dst: netip.MustParsePrefix(p), Type: route.TypeProhibit}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// Wait blocks until ep reports one of mask or d passes, registering
// before checking so no wakeup is lost; it reports whether the events
// hold.
func Wait(ep transport.Endpoint, mask waiter.EventMask, d time.Duration) bool {
	e, ch := waiter.NewChannelEntry(mask)
	ep.Queue().Register(e)
	defer ep.Queue().Unregister(e)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if ep.Readiness(mask)&waiter.Normalize(mask) != 0 {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return ep.Readiness(mask)&waiter.Normalize(mask) != 0
		}
	}
}

// ReadWithin reads one datagram (or, with o.ErrQueue, one queued
// error), waiting up to d for it: what the read returned, or EAGAIN when
// nothing came in time.
func ReadWithin(ep transport.Endpoint, o transport.ReadOptions, d time.Duration) ([]byte, transport.ReadResult, error) {
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

// NoRead fails the test if anything can be read within d.
func NoRead(t testing.TB, ep transport.Endpoint, o transport.ReadOptions, d time.Duration) {
	t.Helper()
	if b, _, err := ReadWithin(ep, o, d); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("unexpected read: %x, %v", b, err)
	}
}

// Recv waits up to d for a datagram and returns it; the test fails on a
// read error or when none comes.
func Recv(t testing.TB, ep transport.Endpoint, d time.Duration) (string, transport.ReadResult) {
	t.Helper()
	b, res, err := ReadWithin(ep, transport.ReadOptions{}, d)
	switch {
	case errors.Is(err, syscall.EAGAIN):
		t.Fatalf("no datagram within %v", d)
	case err != nil:
		t.Fatalf("read: %v", err)
	}
	return string(b), res
}

// NoErr fails the test at once on an error.
func NoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
