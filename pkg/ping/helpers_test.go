package ping

import (
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/internal/stacktest"
)

// The tests' network is stacktest's routed lab number 81: host A —
// router R — host B, each side its own switch. A is 10.81.1.2 / fd81:1::2,
// R 10.81.1.1 and 10.81.2.1 / fd81:1::1 and fd81:2::1, B 10.81.2.2 /
// fd81:2::2. R has a prohibit route for 10.81.9.0/24 and fd81:9::/64 and
// no route beyond.
func newLab(t testing.TB) *stacktest.Routed { return stacktest.NewRouted(t, 81) }

var (
	addrA4, addrA6 = netip.MustParseAddr("10.81.1.2"), netip.MustParseAddr("fd81:1::2")
	addrR4, addrR6 = netip.MustParseAddr("10.81.1.1"), netip.MustParseAddr("fd81:1::1")
	addrB4, addrB6 = netip.MustParseAddr("10.81.2.2"), netip.MustParseAddr("fd81:2::2")
)
