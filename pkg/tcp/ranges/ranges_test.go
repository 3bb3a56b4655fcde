package ranges

import (
	"slices"
	"testing"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

func rs(v ...uint32) []Range {
	var out []Range
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, Range{seqnum.Value(v[i]), seqnum.Value(v[i+1])})
	}
	return out
}

func wantRanges(t *testing.T, s *Set, want []Range) {
	t.Helper()
	if got := s.Ranges(); !slices.Equal(got, want) {
		t.Fatalf("ranges %v, want %v", got, want)
	}
}

func TestRange(t *testing.T) {
	r := Range{0xfffffff0, 0x10}
	if r.Len() != 0x20 || r.Empty() || !r.Contains(0) || !r.Contains(0xfffffff0) || r.Contains(0x10) {
		t.Errorf("wrap-around range %v wrong: len %d", r, r.Len())
	}
	if e := (Range{5, 5}); !e.Empty() || e.Len() != 0 {
		t.Error("[5,5) not empty")
	}
	if e := (Range{6, 5}); !e.Empty() || e.Len() != 0 {
		t.Error("inverted range not empty")
	}
	if !r.Covers(Range{0, 0x10}) || r.Covers(Range{0, 0x11}) || r.Covers(Range{3, 3}) {
		t.Error("Covers wrong")
	}
	if r.String() != "[4294967280, 16)" {
		t.Errorf("String %q", r.String())
	}
	if b := r.Block(); b != (wire.TCPSACKBlock{Left: 0xfffffff0, Right: 0x10}) || FromBlock(b) != r {
		t.Errorf("Block round trip: %+v", b)
	}
}

func TestPutOptions(t *testing.T) {
	var o wire.TCPOptions
	o.NumSACKBlocks = 4
	o.SACKBlocks[3] = wire.TCPSACKBlock{Left: 9, Right: 9}
	blocks := rs(1, 2, 3, 4)
	if n := PutOptions(&o, blocks); n != 2 || o.NumSACKBlocks != 2 {
		t.Fatalf("PutOptions wrote %d, NumSACKBlocks %d", n, o.NumSACKBlocks)
	}
	if got := AppendBlocks(nil, o.SACK()); !slices.Equal(got, blocks) {
		t.Errorf("round trip %v", got)
	}
	if o.SACKBlocks[3] != (wire.TCPSACKBlock{}) {
		t.Error("stale block left in the option")
	}
	if n := PutOptions(&o, rs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)); n != wire.TCPMaxSACKBlocks {
		t.Errorf("PutOptions of 5 blocks wrote %d", n)
	}
}

func TestAddMerges(t *testing.T) {
	s := New(1000, 0)
	steps := []struct {
		start, end uint32
		added      seqnum.Size
		want       []Range
	}{
		{2000, 2500, 500, rs(2000, 2500)},
		{3000, 3500, 500, rs(2000, 2500, 3000, 3500)},
		{1500, 1600, 100, rs(1500, 1600, 2000, 2500, 3000, 3500)},
		{2500, 2600, 100, rs(1500, 1600, 2000, 2600, 3000, 3500)}, // touches above
		{1900, 2000, 100, rs(1500, 1600, 1900, 2600, 3000, 3500)}, // touches below
		{2000, 2500, 0, rs(1500, 1600, 1900, 2600, 3000, 3500)},   // duplicate
		{2550, 2700, 100, rs(1500, 1600, 1900, 2700, 3000, 3500)}, // half duplicate
		{1550, 3200, 600, rs(1500, 3500)},                         // chain: bridges three
		{900, 1100, 100, rs(1000, 1100, 1500, 3500)},              // below base clipped
		{500, 900, 0, rs(1000, 1100, 1500, 3500)},                 // wholly below base
		{1200, 1200, 0, rs(1000, 1100, 1500, 3500)},               // empty
		{1300, 1200, 0, rs(1000, 1100, 1500, 3500)},               // inverted
		{1000, 4000, 3000 - 100 - 2000, rs(1000, 4000)},           // swallows all
		{999, 4001, 1, rs(1000, 4001)},
	}
	for i, st := range steps {
		if got := s.Add(seqnum.Value(st.start), seqnum.Value(st.end)); got != st.added {
			t.Errorf("step %d Add(%d, %d) = %d, want %d", i, st.start, st.end, got, st.added)
		}
		wantRanges(t, s, st.want)
	}
	if s.Covered() != 3001 {
		t.Errorf("Covered %d", s.Covered())
	}
}

func TestWrapAround(t *testing.T) {
	base := seqnum.Value(0xfffffc00)
	s := New(base, 0)
	s.Add(0x100, 0x200)           // after the wrap
	s.Add(0xfffffe00, 0xffffff00) // before it
	s.Add(0xffffff80, 0x80)       // straddles it
	wantRanges(t, s, rs(0xfffffe00, 0xffffff00, 0xffffff80, 0x80, 0x100, 0x200))
	if !s.Contains(0) || !s.Contains(0xffffffff) || s.Contains(0x80) || s.Contains(0xffffff7f) {
		t.Error("Contains wrong across the wrap")
	}
	if got := s.Add(0xffffff00, 0x100); got != 0x80+0x80 {
		t.Errorf("bridging across the wrap added %d", got)
	}
	wantRanges(t, s, rs(0xfffffe00, 0x200))
	if r, ok := s.TrimBelow(0xfffffe00); !ok || r != (Range{0xfffffe00, 0x200}) {
		t.Errorf("TrimBelow = %v, %v", r, ok)
	}
	if nxt := s.Advance(0xfffffe00); nxt != 0x200 || s.Len() != 0 || s.Base() != 0x200 {
		t.Errorf("Advance to %#x, %d ranges, base %#x", nxt, s.Len(), s.Base())
	}
	// Far past the base in signed terms is below it.
	if s.Add(0x200+0x80000000, 0x200+0x80000010) != 0 {
		t.Error("a range 2^31 away was added")
	}
}

func TestBound(t *testing.T) {
	s := New(0, 3)
	s.Add(10, 20)
	s.Add(30, 40)
	s.Add(50, 60)
	// Highest new range is refused.
	added, ev, ok := s.AddEvict(70, 80)
	if added != 0 || !ok || ev != (Range{70, 80}) {
		t.Errorf("AddEvict above a full set = %d, %v, %v", added, ev, ok)
	}
	wantRanges(t, s, rs(10, 20, 30, 40, 50, 60))
	// A lower one evicts the highest.
	added, ev, ok = s.AddEvict(0, 5)
	if added != 5 || !ok || ev != (Range{50, 60}) {
		t.Errorf("AddEvict below = %d, %v, %v", added, ev, ok)
	}
	wantRanges(t, s, rs(0, 5, 10, 20, 30, 40))
	if s.Add(25, 28) != 3 {
		t.Error("middle range refused")
	}
	wantRanges(t, s, rs(0, 5, 10, 20, 25, 28))
	// Merging needs no room.
	added, _, ok = s.AddEvict(5, 10)
	if added != 5 || ok {
		t.Errorf("merge at full = %d, %v", added, ok)
	}
	wantRanges(t, s, rs(0, 20, 25, 28))
	if s.Len() != 2 || s.MaxRanges() != 3 {
		t.Errorf("Len %d MaxRanges %d", s.Len(), s.MaxRanges())
	}
	var z Set
	for i := range DefaultMaxRanges + 5 {
		z.Add(seqnum.Value(i*10), seqnum.Value(i*10+5))
	}
	if z.Len() != DefaultMaxRanges || z.MaxRanges() != DefaultMaxRanges {
		t.Errorf("zero Set holds %d ranges, bound %d", z.Len(), z.MaxRanges())
	}
}

func TestTrimBelow(t *testing.T) {
	s := New(100, 0)
	s.Add(200, 300)
	s.Add(400, 500)
	if _, ok := s.TrimBelow(150); ok || s.Base() != 150 || s.Len() != 2 {
		t.Fatal("trim before the first range")
	}
	if _, ok := s.TrimBelow(120); ok || s.Base() != 150 {
		t.Fatal("trim below the base moved it back")
	}
	if r, ok := s.TrimBelow(200); !ok || r != (Range{200, 300}) {
		t.Fatalf("TrimBelow(200) = %v, %v", r, ok)
	}
	wantRanges(t, s, rs(200, 300, 400, 500))
	if r, ok := s.TrimBelow(250); !ok || r != (Range{250, 300}) {
		t.Fatalf("TrimBelow inside a range = %v, %v", r, ok)
	}
	wantRanges(t, s, rs(250, 300, 400, 500))
	if _, ok := s.TrimBelow(300); ok {
		t.Fatal("TrimBelow at a range's end returned it")
	}
	wantRanges(t, s, rs(400, 500))
	if s.Contains(299) || !s.Contains(400) {
		t.Fatal("Contains after trim")
	}
	if nxt := s.Advance(350); nxt != 350 {
		t.Fatalf("Advance with a hole moved to %d", nxt)
	}
	if nxt := s.Advance(400); nxt != 500 || s.Len() != 0 {
		t.Fatalf("Advance = %d, %d ranges left", nxt, s.Len())
	}
	s.Add(600, 700)
	s.TrimBelow(1000)
	if s.Len() != 0 || s.Base() != 1000 {
		t.Fatal("trim past everything")
	}
	if _, ok := s.First(); ok {
		t.Fatal("First of an empty set")
	}
}

func TestFindFirstLast(t *testing.T) {
	s := New(0, 0)
	s.Add(10, 20)
	s.Add(30, 40)
	if r, ok := s.First(); !ok || r != (Range{10, 20}) {
		t.Error("First")
	}
	if r, ok := s.Last(); !ok || r != (Range{30, 40}) {
		t.Error("Last")
	}
	for v, want := range map[seqnum.Value]bool{9: false, 10: true, 19: true, 20: false, 29: false, 39: true, 40: false} {
		if r, ok := s.Find(v); ok != want || ok && !r.Contains(v) {
			t.Errorf("Find(%d) = %v, %v", v, r, ok)
		}
	}
	if s.At(0) != (Range{10, 20}) || s.At(1) != (Range{30, 40}) {
		t.Error("At")
	}
	s.Clear()
	if s.Len() != 0 || s.Base() != 0 {
		t.Error("Clear")
	}
}

func TestFirstDuplicate(t *testing.T) {
	s := New(1000, 0)
	s.Add(2000, 2500)
	s.Add(3000, 3500)
	for _, c := range []struct {
		start, end uint32
		want       Range
		ok         bool
	}{
		{500, 800, Range{500, 800}, true},
		{800, 1200, Range{800, 1000}, true},
		{1000, 2000, Range{}, false},
		{1500, 2100, Range{2000, 2100}, true},
		{2400, 3200, Range{2400, 2500}, true},
		{2500, 3000, Range{}, false},
		{2600, 4000, Range{3000, 3500}, true},
		{3500, 4000, Range{}, false},
		{2100, 2100, Range{}, false},
	} {
		r, ok := s.FirstDuplicate(seqnum.Value(c.start), seqnum.Value(c.end))
		if r != c.want || ok != c.ok {
			t.Errorf("FirstDuplicate(%d, %d) = %v, %v; want %v, %v", c.start, c.end, r, ok, c.want, c.ok)
		}
	}
}

func TestInitReusesStorage(t *testing.T) {
	s := New(0, 8)
	s.Add(1, 2)
	p := &s.r[:1][0]
	s.Init(50, 4)
	if s.Len() != 0 || s.Base() != 50 || s.MaxRanges() != 4 {
		t.Fatal("Init did not reset")
	}
	s.Add(60, 70)
	if &s.r[0] != p {
		t.Error("Init reallocated although the storage was big enough")
	}
	if n := testing.AllocsPerRun(100, func() {
		b := s.Base()
		s.Add(b+30, b+40)
		s.Add(b+10, b+20)
		s.Add(b+20, b+30)
		s.TrimBelow(s.Base() + 1000)
		s.Init(s.Base(), 4)
	}); n != 0 {
		t.Errorf("Add/TrimBelow allocate: %v", n)
	}
}

// TestLargeBound: a set bounded for a 4 MiB buffer keeps a burst of 2,000
// holes' ranges (every other 1448-byte segment) without evicting one, and
// an initialised set holds no storage until a range is added.
func TestLargeBound(t *testing.T) {
	if got := MaxRangesFor(4 << 20); got != 4096 {
		t.Fatalf("MaxRangesFor(4 MiB) = %d", got)
	}
	if got := MaxRangesFor(1000); got != DefaultMaxRanges {
		t.Fatalf("MaxRangesFor(1000) = %d", got)
	}
	var s Set
	s.Init(0, MaxRangesFor(4<<20))
	if cap(s.r) != 0 {
		t.Fatalf("Init allocated %d ranges", cap(s.r))
	}
	const mss = 1448
	for i := 2000 - 1; i >= 0; i-- { // highest first: each insert goes before the rest
		start := seqnum.Value(uint32(2*i+1) * mss)
		if _, _, evicted := s.AddEvict(start, start+mss); evicted {
			t.Fatalf("range %d evicted one", i)
		}
	}
	if s.Len() != 2000 || s.Covered() != 2000*mss {
		t.Fatalf("%d ranges covering %d", s.Len(), s.Covered())
	}
}

// TestSetTrimAbove: pruning from the top (tcp_prune_ofo_queue) keeps
// what lies below the cut, the part of a straddling range included.
func TestSetTrimAbove(t *testing.T) {
	var s Set
	s.Init(100, 0)
	s.Add(110, 120)
	s.Add(130, 140)
	s.Add(150, 160)
	if d := s.TrimAbove(135); d != 5+10 {
		t.Errorf("dropped %d, want 15", d)
	}
	if got := s.Ranges(); len(got) != 2 || got[1] != (Range{Start: 130, End: 135}) {
		t.Errorf("left %v", got)
	}
	if d := s.TrimAbove(50); d != 15 || s.Len() != 0 {
		t.Errorf("cut below the base dropped %d, left %v", d, s.Ranges())
	}
}
