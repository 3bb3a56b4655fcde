package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Lookups run while other goroutines add and delete routes; with -race
// this checks the locking, and every answer must be one of the routes that
// can match: the stable default route, or a churned /24 or /32 blackhole
// that covers dst.
func TestConcurrentLookup(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254")})

	const writers, readers, rounds = 2, 4, 200 // rounds < 256: one byte of the address
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(w), byte(i)}), 32)
				r := Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(w), byte(i), 0}), 24), Gateway: ip("10.0.0.9")}
				if err := tb.Add(r); err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				if err := tb.Replace(Route{Dst: p, Type: TypeBlackhole}); err != nil {
					t.Errorf("Replace: %v", err)
					return
				}
				if i%2 == 0 {
					if err := tb.Delete(Match{Dst: r.Dst}); err != nil {
						t.Errorf("Delete: %v", err)
						return
					}
				}
			}
		})
	}
	for g := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range rounds * 4 {
				dst := netip.AddrFrom4([4]byte{172, 16 + byte(rng.IntN(3)), byte(rng.IntN(rounds)), 1})
				r, ok := tb.Lookup(dst)
				if !ok || !r.Dst.Contains(dst) || (r.Dst.Bits() != 0 && r.Dst.Bits() != 24 && r.Type != TypeBlackhole) {
					t.Errorf("Lookup(%v) = %v, %v", dst, r, ok)
					return
				}
				gen := tb.Generation()
				_ = tb.Routes()
				if tb.Generation() < gen {
					t.Error("generation went backwards")
					return
				}
			}
		})
	}
	wg.Wait()
	// Odd rounds left their /24s.
	want := 1 + 1 + writers*(rounds/2) + writers*rounds
	if n := len(tb.Routes()); n != want {
		t.Errorf("%d routes at the end, want %d", n, want)
	}
}

func TestGeneration(t *testing.T) {
	tb := New()
	steps := []struct {
		name    string
		f       func() error
		changes bool
	}{
		{"address", func() error { return tb.AddressAdded(1, pfx("10.0.0.1/24")) }, true},
		{"same address", func() error { return tb.AddressAdded(1, pfx("10.0.0.1/24")) }, false},
		{"add", func() error { return tb.Add(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.2")}) }, true},
		{"duplicate add", func() error { tb.Add(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.2")}); return nil }, false},
		{"lookup", func() error { tb.Lookup(ip("1.1.1.1")); tb.Routes(); return nil }, false},
		{"replace", func() error { return tb.Replace(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.3")}) }, true},
		{"delete", func() error { return tb.Delete(Match{Dst: pfx("0.0.0.0/0")}) }, true},
		{"failed delete", func() error { tb.Delete(Match{Dst: pfx("0.0.0.0/0")}); return nil }, false},
		{"second address", func() error { return tb.AddressAdded(1, pfx("10.0.0.2/24")) }, true},
		{"address removed", func() error { return tb.AddressRemoved(1, pfx("10.0.0.1/24")) }, true},
		{"remove NIC", func() error { tb.RemoveNIC(1); return nil }, true},
		{"remove unknown NIC", func() error { tb.RemoveNIC(1); return nil }, false},
		{"nothing to expire", func() error { tb.Expire(farFuture); return nil }, false},
	}
	for _, s := range steps {
		gen := tb.Generation()
		if err := s.f(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed := tb.Generation() != gen; changed != s.changes {
			t.Errorf("%s: generation changed = %v, want %v", s.name, changed, s.changes)
		}
	}
}

var farFuture = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)

// benchTable returns a table of n IPv4 routes with prefix lengths spread
// over /8 to /32 (a realistic mix, so the lookup probes many lengths), and
// addresses to look up, half of them inside some route.
func benchTable(b *testing.B, n int) (*Table, []netip.Addr) {
	tb := New()
	if err := tb.AddressAdded(1, pfx("192.0.2.1/24")); err != nil {
		b.Fatal(err)
	}
	if err := tb.Add(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("192.0.2.254")}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var dsts []netip.Addr
	for added := 2; added < n; {
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		p := netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
		if err := tb.Add(Route{Dst: p, Gateway: ip("192.0.2.9"), Metric: uint32(rng.IntN(3))}); err != nil {
			continue // a duplicate draw
		}
		added++
		dsts = append(dsts, a, netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), 1, 1}))
	}
	return tb, dsts
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tb, dsts := benchTable(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := tb.Lookup(dsts[i%len(dsts)]); !ok {
					b.Fatal("no route")
				}
				i++
			}
		})
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb := lab(t)
	dst := ip("10.200.51.200")
	dst6 := ip("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() {
		tb.Lookup(dst)
		tb.LookupNIC(dst6, 2)
	}); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}
