package isn

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

var (
	t0     = time.Date(2026, 12, 2, 6, 48, 0, 0, time.UTC)
	local  = netip.MustParseAddrPort("192.0.2.1:80")
	remote = netip.MustParseAddrPort("198.51.100.7:40000")
)

// The ISN advances by one every 4 µs for a given 4-tuple: a new
// incarnation starts above the old one's sequence space (RFC 6528 §3).
func TestISNMonotonic(t *testing.T) {
	g := NewGenerator(1)
	prev := g.ISN(local, remote, t0)
	for _, d := range []time.Duration{4 * time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour} {
		now := t0.Add(d)
		got := g.ISN(local, remote, now)
		if want := g.ISN(local, remote, t0).Add(seqnum.Size(d / Tick)); got != want {
			t.Fatalf("at +%v ISN %#x, want %#x (one per 4 µs)", d, got, want)
		}
		if !prev.LessThan(got) {
			t.Fatalf("at +%v ISN %#x not after %#x", d, got, prev)
		}
		prev = got
	}
	// Within one tick the ISN does not change.
	if g.ISN(local, remote, t0.Add(3*time.Microsecond)) != g.ISN(local, remote, t0) {
		t.Error("ISN changed within a 4 µs tick")
	}
}

func TestISNTuplesDiffer(t *testing.T) {
	g := NewGenerator(1)
	tuples := [][2]netip.AddrPort{
		{local, remote},
		{remote, local},
		{netip.MustParseAddrPort("192.0.2.2:80"), remote},
		{netip.MustParseAddrPort("192.0.2.1:81"), remote},
		{local, netip.MustParseAddrPort("198.51.100.8:40000")},
		{local, netip.MustParseAddrPort("198.51.100.7:40001")},
		{netip.MustParseAddrPort("[2001:db8::1]:80"), netip.MustParseAddrPort("[2001:db8::7]:40000")},
	}
	seen := map[seqnum.Value]int{}
	for i, tu := range tuples {
		v := g.ISN(tu[0], tu[1], t0)
		if j, dup := seen[v]; dup {
			t.Errorf("tuples %d and %d share ISN %#x", j, i, v)
		}
		seen[v] = i
	}
	// An IPv4 peer is the same peer written as IPv4-mapped IPv6.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(remote.Addr().As16()), remote.Port())
	if g.ISN(local, mapped, t0) != g.ISN(local, remote, t0) {
		t.Error("IPv4-mapped spelling of the peer gives another ISN")
	}
}

func TestISNSeed(t *testing.T) {
	a, b, c := NewGenerator(42), NewGenerator(42), NewGenerator(43)
	if a.ISN(local, remote, t0) != b.ISN(local, remote, t0) {
		t.Error("same seed, different ISN")
	}
	if a.ISN(local, remote, t0) == c.ISN(local, remote, t0) {
		t.Error("different seeds, same ISN")
	}
	// Seed 0 takes a random key: two such generators disagree (on all
	// four of these tuples but with probability 2^-128).
	r1, r2 := NewGenerator(0), NewGenerator(0)
	same := 0
	for p := uint16(1); p <= 4; p++ {
		rp := netip.AddrPortFrom(remote.Addr(), p)
		if r1.ISN(local, rp, t0) == r2.ISN(local, rp, t0) {
			same++
		}
	}
	if same == 4 {
		t.Error("two random-keyed generators agree")
	}
}
