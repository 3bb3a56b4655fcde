package seqnum

import "testing"

func TestWrapAround(t *testing.T) {
	a := Value(0xfffffff0)
	b := a.Add(0x20) // wraps to 0x10
	if b != 0x10 {
		t.Fatalf("Add wrapped to %#x", b)
	}
	if !a.LessThan(b) || b.LessThan(a) || !a.LessThanEq(a) || a.LessThan(a) {
		t.Error("comparison across wrap-around is wrong")
	}
	if a.Size(b) != 0x20 {
		t.Errorf("Size %#x, want 0x20", a.Size(b))
	}
	if !Value(0xfffffff8).InRange(a, b) || !Value(4).InRange(a, b) || b.InRange(a, b) || Value(0x11).InWindow(a, 0x20) {
		t.Error("InRange/InWindow wrong across wrap-around")
	}
	if Max(a, b) != b || Min(a, b) != a {
		t.Error("Max/Min wrong across wrap-around")
	}
}

func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		a    Value
		n    Size
		b    Value
		m    Size
		want bool
	}{
		{10, 5, 14, 1, true},
		{10, 5, 15, 1, false},
		{10, 0, 10, 5, false},
		{0xfffffffe, 4, 1, 1, true},
		{0xfffffffe, 3, 1, 1, false},
	} {
		if got := Overlap(c.a, c.n, c.b, c.m); got != c.want {
			t.Errorf("Overlap(%#x,%d,%#x,%d) = %v", c.a, c.n, c.b, c.m, got)
		}
	}
}
