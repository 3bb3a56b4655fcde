package fragment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
)

// TestPlanRoundTrip splits payloads of many sizes for many MTUs, checks
// every piece against the rules, and reassembles them in a random order.
func TestPlanRoundTrip(t *testing.T) {
	type hdrs struct {
		fam         Family
		first, rest int
	}
	shapes := []hdrs{
		{IPv4, 20, 20}, // no options
		{IPv4, 60, 24}, // full options, only some copied
		{IPv6, 48, 48}, // fixed header + Fragment header
		{IPv6, 88, 88}, // with 40 bytes of unfragmentable extension headers
	}
	mtus := map[Family][]int{IPv4: {68, 296, 576, 1280, 1500, 9000}, IPv6: {1280, 1500, 4000, 9000}}
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		var pieces []Piece
		for _, h := range shapes {
			r := New(Config{})
			id := uint32(0)
			for _, mtu := range mtus[h.fam] {
				sizes := []int{1, 7, 8, 9, mtu - h.first, mtu - h.first + 1, 2*mtu + 3, 9000, 20000, 65000 - h.first}
				for range 10 {
					sizes = append(sizes, 1+rng.IntN(65000-h.first))
				}
				for _, n := range sizes {
					if n <= 0 {
						continue
					}
					var err error
					pieces, err = Plan(pieces[:0], n, mtu, h.first, h.rest)
					if err != nil {
						t.Fatalf("Plan(%d, mtu %d, %d/%d): %v", n, mtu, h.first, h.rest, err)
					}
					next := 0
					for i, p := range pieces {
						hl := h.rest
						if i == 0 {
							hl = h.first
						}
						last := i == len(pieces)-1
						switch {
						case p.Offset != next:
							t.Fatalf("n %d mtu %d: piece %d at %d, want %d", n, mtu, i, p.Offset, next)
						case hl+p.Len > mtu:
							t.Fatalf("n %d mtu %d: piece %d of %d+%d bytes exceeds the MTU", n, mtu, i, hl, p.Len)
						case p.More == last:
							t.Fatalf("n %d mtu %d: piece %d More = %v", n, mtu, i, p.More)
						case !last && (p.Len%8 != 0 || p.Len == 0):
							t.Fatalf("n %d mtu %d: non-final piece %d has %d bytes", n, mtu, i, p.Len)
						case !last && p.Len+hl+8 <= mtu:
							t.Fatalf("n %d mtu %d: piece %d of %d bytes wastes room", n, mtu, i, p.Len)
						}
						next += p.Len
					}
					if next != n {
						t.Fatalf("n %d mtu %d: pieces cover %d bytes", n, mtu, next)
					}
					if len(pieces) == 1 {
						continue // not fragmented
					}
					// Reassemble the pieces in a random order.
					data := make([]byte, n)
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					id++
					k := key4(id)
					if h.fam == IPv6 {
						k = key6(id)
					}
					order := rng.Perm(len(pieces))
					for j, pi := range order {
						p := pieces[pi]
						hl := h.rest
						if p.Offset == 0 {
							hl = h.first
						}
						got, done, err := r.Process(k, Packet{Offset: p.Offset, More: p.More, Header: make([]byte, hl), Data: data[p.Offset : p.Offset+p.Len]})
						if err != nil {
							t.Fatalf("n %d mtu %d: reassembly: %v", n, mtu, err)
						}
						if done != (j == len(order)-1) || (done && !bytes.Equal(got.Data, data)) {
							t.Fatalf("n %d mtu %d: done %v at %d of %d, data equal %v", n, mtu, done, j, len(order), bytes.Equal(got.Data, data))
						}
					}
				}
			}
			if r.Pending() != 0 {
				t.Fatalf("%d datagrams left pending", r.Pending())
			}
			r.Close()
		}
	})
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		name                string
		n, mtu, first, rest int
		want                error
	}{
		{"MTU below header + 8", 100, 27, 20, 20, ErrMTUTooSmall},
		{"later header too big", 100, 68, 20, 61, ErrMTUTooSmall},
		{"negative length", -1, 1500, 20, 20, ErrMalformed},
		{"offsets beyond 13 bits", 70000, 1500, 20, 20, ErrPayloadTooLong},
	}
	for _, c := range cases {
		if p, err := Plan(nil, c.n, c.mtu, c.first, c.rest); !errors.Is(err, c.want) || len(p) != 0 {
			t.Errorf("%s: %v, %v; want %v", c.name, p, err, c.want)
		}
	}
	// The largest plannable payload: the last piece starts at offset 65528.
	if _, err := Plan(nil, 65528+100, 1500, 20, 20); err != nil {
		t.Errorf("last offset 65528: %v", err)
	}
	// At the IPv4 minimum MTU a 60-byte header leaves exactly 8 bytes.
	p, err := Plan(nil, 20, 68, 60, 60)
	if err != nil || len(p) != 3 || p[0].Len != 8 || p[2].Len != 4 {
		t.Errorf("minimum MTU: %v, %v", p, err)
	}
	// A payload that fits needs no fragmentation.
	if p, err := Plan(nil, 1480, 1500, 20, 20); err != nil || len(p) != 1 || p[0] != (Piece{0, 1480, false}) {
		t.Errorf("fitting payload: %v, %v", p, err)
	}
}

func TestCopiedOptions(t *testing.T) {
	rr := []byte{7, 7, 4, 0, 0, 0, 0}       // Record Route, not copied
	lsrr := []byte{131, 7, 4, 192, 0, 2, 1} // Loose Source Route, copied
	ra := []byte{148, 4, 0, 0}              // Router Alert, copied
	ts := []byte{68, 8, 5, 0, 0, 0, 0, 0}   // Timestamp, not copied
	ssrr := []byte{137, 11, 4, 192, 0, 2, 1, 192, 0, 2, 2}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	cases := []struct {
		name string
		opts []byte
		want []byte
		err  error
	}{
		{"none", nil, nil, nil},
		{"record route only", cat(rr, []byte{0}), nil, nil},
		{"lsrr and rr", cat(lsrr, rr, []byte{0, 0}), cat(lsrr, []byte{0}), nil},
		{"nop padding dropped", cat([]byte{1, 1, 1, 1}, ra), ra, nil},
		{"everything", cat(rr, []byte{1}, ssrr, ts, ra, []byte{0}), cat(ssrr, ra, []byte{0}), nil},
		{"stops at end of list", cat([]byte{0}, ra, []byte{0, 0, 0}), nil, nil},
		{"truncated length", []byte{148}, nil, ErrBadOptions},
		{"length below 2", []byte{148, 1, 0, 0}, nil, ErrBadOptions},
		{"length beyond the area", []byte{131, 9, 4, 0}, nil, ErrBadOptions},
	}
	for _, c := range cases {
		prefix := []byte{0xaa}
		got, err := CopiedOptions(prefix, c.opts)
		if !errors.Is(err, c.err) || !bytes.Equal(got[1:], c.want) || got[0] != 0xaa {
			t.Errorf("%s: %x, %v; want %x, %v", c.name, got, err, c.want, c.err)
		}
		if (len(got)-1)%4 != 0 {
			t.Errorf("%s: %d bytes, not a multiple of 4", c.name, len(got)-1)
		}
	}
}
