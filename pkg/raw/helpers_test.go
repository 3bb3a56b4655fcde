package raw

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/internal/stacktest"
)

// The tests' network is stacktest's routed lab number 82: host A —
// router R — host B, each side its own switch. A is 10.82.1.2 / fd82:1::2,
// R 10.82.1.1 and 10.82.2.1 / fd82:1::1 and fd82:2::1, B 10.82.2.2 /
// fd82:2::2. R has a prohibit route for 10.82.9.0/24 and fd82:9::/64 and
// no route beyond.
func newLab(t testing.TB) *stacktest.Routed { return stacktest.NewRouted(t, 82) }

var (
	addrA4, addrA6 = netip.MustParseAddr("10.82.1.2"), netip.MustParseAddr("fd82:1::2")
	addrR4, addrR6 = netip.MustParseAddr("10.82.1.1"), netip.MustParseAddr("fd82:1::1")
	addrB4, addrB6 = netip.MustParseAddr("10.82.2.2"), netip.MustParseAddr("fd82:2::2")
)
