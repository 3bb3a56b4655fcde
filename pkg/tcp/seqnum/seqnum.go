// Package seqnum is TCP sequence-number arithmetic modulo 2^32 (RFC 9293
// §3.4): comparisons that stay right across wrap-around, as long as the
// values compared lie within 2^31 of each other.
package seqnum

// Value is a sequence number.
type Value uint32

// Size is a length in sequence space (bytes plus SYN and FIN).
type Size uint32

// LessThan reports whether v comes before w.
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v comes before w or is w.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// InRange reports whether a <= v < b.
func (v Value) InRange(a, b Value) bool { return a.LessThanEq(v) && v.LessThan(b) }

// InWindow reports whether v lies in the window of size starting at first
// (first <= v < first+size).
func (v Value) InWindow(first Value, size Size) bool { return v.InRange(first, first.Add(size)) }

// Add returns v advanced by s.
func (v Value) Add(s Size) Value { return v + Value(s) }

// Size returns the distance from v to w (w - v).
func (v Value) Size(w Value) Size { return Size(w - v) }

// Max returns the later of v and w.
func Max(v, w Value) Value {
	if v.LessThan(w) {
		return w
	}
	return v
}

// Min returns the earlier of v and w.
func Min(v, w Value) Value {
	if v.LessThan(w) {
		return v
	}
	return w
}

// Overlap reports whether [a, a+n) and [b, b+m) share a sequence number.
func Overlap(a Value, n Size, b Value, m Size) bool {
	return n > 0 && m > 0 && a.LessThan(b.Add(m)) && b.LessThan(a.Add(n))
}
