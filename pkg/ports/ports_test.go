package ports

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
)

var (
	any4  = netip.IPv4Unspecified()
	any6  = netip.IPv6Unspecified()
	a4    = netip.MustParseAddr("10.0.0.1")
	b4    = netip.MustParseAddr("10.0.0.2")
	a6    = netip.MustParseAddr("2001:db8::1")
	map4  = netip.MustParseAddr("::ffff:10.0.0.1")
	peer  = netip.MustParseAddrPort("192.0.2.7:53")
	peer2 = netip.MustParseAddrPort("192.0.2.8:53")
)

func TestConflictRules(t *testing.T) {
	tests := []struct {
		name string
		a, b Binding
		want bool
	}{
		{"same addr", Binding{Addr: a4}, Binding{Addr: a4}, true},
		{"different addr", Binding{Addr: a4}, Binding{Addr: b4}, false},
		{"v4 wildcard vs addr", Binding{Addr: any4}, Binding{Addr: a4}, true},
		{"zero Addr is 0.0.0.0", Binding{}, Binding{Addr: b4}, true},
		{"v4-mapped is v4", Binding{Addr: map4}, Binding{Addr: a4}, true},
		{"v6 wildcard dual covers v4", Binding{Addr: any6}, Binding{Addr: a4}, true},
		{"v6 wildcard dual covers v4 wildcard", Binding{Addr: any6}, Binding{Addr: any4}, true},
		{"v6only wildcard leaves v4", Binding{Addr: any6, V6Only: true}, Binding{Addr: any4}, false},
		{"v6 addr vs v4 wildcard", Binding{Addr: a6}, Binding{Addr: any4}, false},
		{"v6 wildcard vs v6 addr", Binding{Addr: any6, V6Only: true}, Binding{Addr: a6}, true},
		{"both reuseaddr", Binding{Addr: a4, ReuseAddr: true}, Binding{Addr: a4, ReuseAddr: true}, false},
		{"one reuseaddr", Binding{Addr: a4, ReuseAddr: true}, Binding{Addr: a4}, true},
		{"reuseport same uid", Binding{Addr: any4, ReusePort: true, UID: 5}, Binding{Addr: any4, ReusePort: true, UID: 5}, false},
		{"reuseport other uid", Binding{Addr: any4, ReusePort: true, UID: 5}, Binding{Addr: any4, ReusePort: true, UID: 6}, true},
		{"reuseport one side", Binding{Addr: any4, ReusePort: true}, Binding{Addr: any4}, true},
		{"different devices", Binding{Addr: any4, Device: 2}, Binding{Addr: any4, Device: 3}, false},
		{"device vs none", Binding{Addr: any4, Device: 2}, Binding{Addr: any4}, true},
	}
	for _, tc := range tests {
		if got := Conflict(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Conflict = %v, want %v", tc.name, got, tc.want)
		}
		if got := Conflict(tc.b, tc.a); got != tc.want {
			t.Errorf("%s (swapped): Conflict = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestReserveAndRelease(t *testing.T) {
	m := NewManager()
	r1, err := m.Reserve(Binding{Addr: any4, Port: 5000}, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(Binding{Addr: a4, Port: 5000}, netip.AddrPort{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second bind: %v, want EADDRINUSE", err)
	}
	if _, err := m.Reserve(Binding{Addr: any6, V6Only: true, Port: 5000}, netip.AddrPort{}); err != nil {
		t.Fatalf("v6only beside v4 wildcard: %v", err)
	}
	if _, err := m.Reserve(Binding{Addr: any6, Port: 5000}, netip.AddrPort{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("dual-stack beside v4 wildcard: %v, want EADDRINUSE", err)
	}
	r1.Release()
	r1.Release() // twice is harmless
	r2, err := m.Reserve(Binding{Addr: a4, Port: 5000}, netip.AddrPort{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if r2.Port() != 5000 || r2.Binding().Addr != a4 {
		t.Fatalf("reservation %+v", r2.Binding())
	}
	if !m.InUse(5000) || m.InUse(5001) {
		t.Fatal("InUse wrong")
	}
}

func TestEphemeralInRangeAndUnique(t *testing.T) {
	m := NewManager()
	first, last := m.Range()
	if first != 32768 || last != 60999 {
		t.Fatalf("range %d-%d", first, last)
	}
	seen := map[uint16]bool{}
	for range 2000 {
		r, err := m.Reserve(Binding{Addr: any4}, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		p := r.Port()
		if p < first || p > last {
			t.Fatalf("port %d outside range", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

func TestEphemeralSkipsBoundPorts(t *testing.T) {
	m := NewManager()
	if err := m.SetRange(40000, 40009); err != nil {
		t.Fatal(err)
	}
	// A reuseaddr holder still makes the port unavailable for ephemeral use.
	for p := uint16(40000); p < 40009; p++ {
		if _, err := m.Reserve(Binding{Addr: any4, Port: p, ReuseAddr: true}, netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := m.Reserve(Binding{Addr: a4, ReuseAddr: true}, peer)
	if err != nil {
		t.Fatal(err)
	}
	if r.Port() != 40009 {
		t.Fatalf("got %d, want the one free port 40009", r.Port())
	}
	if _, err := m.Reserve(Binding{Addr: a4}, peer); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("exhausted: %v, want EADDRNOTAVAIL", err)
	}
	// Another family's specific address does not overlap: still free.
	if _, err := m.Reserve(Binding{Addr: a6}, peer); err != nil {
		t.Fatalf("v6 address: %v", err)
	}
}

func TestSetRangeInvalid(t *testing.T) {
	m := NewManager()
	if err := m.SetRange(0, 10); !errors.Is(err, syscall.EINVAL) {
		t.Fatal(err)
	}
	if err := m.SetRange(20, 10); !errors.Is(err, syscall.EINVAL) {
		t.Fatal(err)
	}
}

// RFC 6056 Algorithm 4: consecutive picks for one peer step through the
// range from a per-peer offset; another peer starts elsewhere; another
// manager (another key) picks differently.
func TestAlgorithm4(t *testing.T) {
	m := NewManager()
	accept := func(uint16) bool { return true }
	p1, _ := m.PickEphemeral(a4, peer, accept)
	p2, _ := m.PickEphemeral(a4, peer, accept)
	if p2 != p1+1 && !(p1 == 60999 && p2 == 32768) {
		t.Fatalf("successive picks %d %d do not step", p1, p2)
	}
	// Ports for other peers (and managers) are spread: over 20 peers,
	// not all start at the same place.
	starts := map[uint16]bool{}
	for i := range 20 {
		pp := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 53)
		p, _ := NewManager().PickEphemeral(a4, pp, accept)
		starts[p] = true
	}
	if len(starts) < 15 {
		t.Fatalf("only %d distinct first ports over 20 keyed peers", len(starts))
	}
	// ok decides: reject everything but one port.
	want := uint16(45678)
	p, err := m.PickEphemeral(a4, peer2, func(p uint16) bool { return p == want })
	if err != nil || p != want {
		t.Fatalf("PickEphemeral = %d, %v", p, err)
	}
	if _, err := m.PickEphemeral(a4, peer2, func(uint16) bool { return false }); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("none acceptable: %v", err)
	}
}

// A property test: random binds and releases against a model. After every
// step the live reservations are pairwise free of conflicts (same port),
// and every refused bind had a live conflicting holder.
func TestPropertyRandomBinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{any4, any6, a4, b4, a6, map4, {}}
	m := NewManager()
	m.SetRange(1000, 1015)
	var live []*Reservation
	for step := range 5000 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(live))
			live[i].Release()
			live = append(live[:i], live[i+1:]...)
			continue
		}
		b := Binding{
			Addr:      addrs[rng.IntN(len(addrs))],
			Port:      uint16(1000 + rng.IntN(17)), // 1016 is out of range: a named port
			V6Only:    rng.IntN(2) == 0,
			Device:    rng.IntN(3),
			ReuseAddr: rng.IntN(3) == 0,
			ReusePort: rng.IntN(3) == 0,
			UID:       uint32(rng.IntN(2)),
		}
		if rng.IntN(4) == 0 {
			b.Port = 0
		}
		r, err := m.Reserve(b, netip.AddrPort{})
		if err != nil {
			if b.Port == 0 {
				if !errors.Is(err, syscall.EADDRNOTAVAIL) {
					t.Fatalf("step %d: ephemeral: %v", step, err)
				}
				for p := uint16(1000); p <= 1015; p++ {
					free := true
					for _, x := range live {
						if x.Port() == p && Overlap(x.Binding(), b) {
							free = false
						}
					}
					if free {
						t.Fatalf("step %d: EADDRNOTAVAIL with port %d free", step, p)
					}
				}
				continue
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("step %d: %v", step, err)
			}
			found := false
			for _, x := range live {
				if x.Port() == b.Port && Conflict(x.Binding(), b) {
					found = true
				}
			}
			if !found {
				t.Fatalf("step %d: %+v refused without a conflicting holder", step, b)
			}
			continue
		}
		if b.Port == 0 {
			if r.Port() < 1000 || r.Port() > 1015 {
				t.Fatalf("step %d: ephemeral %d out of range", step, r.Port())
			}
			for _, x := range live {
				if x.Port() == r.Port() && Overlap(x.Binding(), r.Binding()) {
					t.Fatalf("step %d: ephemeral %d overlaps a holder", step, r.Port())
				}
			}
		} else {
			for _, x := range live {
				if x.Port() == r.Port() && Conflict(x.Binding(), r.Binding()) {
					t.Fatalf("step %d: %+v granted beside conflicting %+v", step, r.Binding(), x.Binding())
				}
			}
		}
		live = append(live, r)
		if m.Len() != len(live) {
			t.Fatalf("step %d: manager holds %d, model %d", step, m.Len(), len(live))
		}
	}
}

func BenchmarkReserveEphemeral(b *testing.B) {
	m := NewManager()
	for b.Loop() {
		r, err := m.Reserve(Binding{Addr: any4}, peer)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}
