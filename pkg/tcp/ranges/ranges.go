// Package ranges owns the receiver's bookkeeping of out-of-order data: a
// bounded set of disjoint half-open sequence ranges [Start, End) above
// RCV.NXT (Set), and the choice of SACK blocks to report for it (Reporter).
//
// The data itself sits in the receive buffer at its offset; a Set only
// records which sequence numbers past RCV.NXT hold data. Ranges are kept
// sorted by their distance from a base (RCV.NXT), so order stays right across
// wrap-around at 2^32 for any window below 2^31.
//
// A Set holds at most a fixed number of ranges. RFC 9293 §3.10.7.4 lets a
// receiver drop out-of-order segments, and RFC 2018 §8 lets it discard data
// it has SACKed (the sender keeps everything until it is cumulatively
// acknowledged), so when a new disjoint range would exceed the bound the
// highest range goes: that is the new one if it lies above all others,
// otherwise the old highest. Low ranges are kept because they are the next
// to become in-order and deliverable; the highest data is the furthest from
// being useful. Linux's tcp_prune_ofo_queue likewise drops from the top of
// the out-of-order queue.
//
// Reporter chooses SACK blocks as RFC 2018 §4 says (the block holding the
// most recently received segment first, then the most recently reported
// others) and puts a D-SACK block first when a duplicate arrived (RFC 2883
// §4).
package ranges

import (
	"fmt"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Range is the half-open sequence range [Start, End). It is empty when End
// is not after Start.
type Range struct {
	Start, End seqnum.Value
}

// Len returns the number of sequence numbers in r, 0 if it is empty.
func (r Range) Len() seqnum.Size {
	if r.Empty() {
		return 0
	}
	return r.Start.Size(r.End)
}

// Empty reports whether r holds no sequence number.
func (r Range) Empty() bool { return !r.Start.LessThan(r.End) }

// Contains reports whether v lies in r.
func (r Range) Contains(v seqnum.Value) bool { return v.InRange(r.Start, r.End) }

// Covers reports whether every sequence number of o lies in r; an empty o
// is covered by nothing, so it never looks like a D-SACK.
func (r Range) Covers(o Range) bool {
	return !o.Empty() && r.Start.LessThanEq(o.Start) && o.End.LessThanEq(r.End)
}

func (r Range) String() string { return fmt.Sprintf("[%d, %d)", r.Start, r.End) }

// Block returns r in its wire form.
func (r Range) Block() wire.TCPSACKBlock {
	return wire.TCPSACKBlock{Left: uint32(r.Start), Right: uint32(r.End)}
}

// FromBlock returns the range a SACK block names.
func FromBlock(b wire.TCPSACKBlock) Range {
	return Range{seqnum.Value(b.Left), seqnum.Value(b.Right)}
}

// AppendBlocks appends the ranges the SACK blocks name to dst, in order.
func AppendBlocks(dst []Range, blocks []wire.TCPSACKBlock) []Range {
	for _, b := range blocks {
		dst = append(dst, FromBlock(b))
	}
	return dst
}

// PutOptions writes blocks into o's SACK option, as many as fit
// (wire.TCPMaxSACKBlocks), and returns how many it wrote.
func PutOptions(o *wire.TCPOptions, blocks []Range) int {
	n := min(len(blocks), wire.TCPMaxSACKBlocks)
	o.SACKBlocks = [wire.TCPMaxSACKBlocks]wire.TCPSACKBlock{}
	for i := range n {
		o.SACKBlocks[i] = blocks[i].Block()
	}
	o.NumSACKBlocks = n
	return n
}

// DefaultMaxRanges is the bound of a Set whose bound was not given. A
// window of 64 KiB in 1460-byte segments has at most 23 holes; 32 leaves
// room while keeping every operation a short scan. Sets for scaled
// windows take a bound from their buffer (MaxRangesFor).
const DefaultMaxRanges = 32

// MaxRangesFor is the bound for the ranges of a buffer of bufBytes: one
// range per KiB, enough for every other segment of the buffer missing
// down to segments of 512 bytes (a window of full-sized segments has at
// most one range per two segments), and never below DefaultMaxRanges. A
// bound below that makes the set forget ranges in a burst of losses (the
// receiver drops data it holds, the sender resends data that arrived);
// storage grows only as ranges are added, so an idle set holds none.
func MaxRangesFor(bufBytes int) int { return max(DefaultMaxRanges, bufBytes/1024) }

// Set is a bounded set of disjoint, non-adjacent, non-empty ranges at or
// after a base, kept in order of their distance from the base. The zero Set
// is empty with base 0 and bound DefaultMaxRanges; Init gives it a base.
//
// Sequence numbers are placed relative to the base as seqnum does: one that
// is before the base (by signed 32-bit distance) is below it, and is never
// in the set.
type Set struct {
	base seqnum.Value
	max  int
	r    []Range
}

// New returns an empty set based at base holding at most maxRanges ranges
// (DefaultMaxRanges if maxRanges <= 0).
func New(base seqnum.Value, maxRanges int) *Set {
	s := new(Set)
	s.Init(base, maxRanges)
	return s
}

// Init empties s, bases it at base and bounds it to maxRanges ranges
// (DefaultMaxRanges if maxRanges <= 0), reusing its storage. Storage is
// allocated as ranges are added, and kept.
func (s *Set) Init(base seqnum.Value, maxRanges int) {
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	s.base, s.max = base, maxRanges
	s.r = s.r[:0]
}

// Base returns the base: nothing below it is in the set.
func (s *Set) Base() seqnum.Value { return s.base }

// MaxRanges returns the bound on the number of ranges.
func (s *Set) MaxRanges() int {
	if s.max <= 0 {
		return DefaultMaxRanges
	}
	return s.max
}

// off is v's distance from the base, the sort key.
func (s *Set) off(v seqnum.Value) uint32 { return uint32(v - s.base) }

// clip returns [start, end) without its part below the base; it is empty
// when nothing is left.
func (s *Set) clip(start, end seqnum.Value) (Range, bool) {
	if !start.LessThan(end) || end.LessThanEq(s.base) {
		return Range{}, false
	}
	return Range{seqnum.Max(start, s.base), end}, true
}

// search returns the index of the first range whose End is at or after
// off (with adjacent set, at or after; else strictly after).
func (s *Set) search(off uint32, adjacent bool) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		e := s.off(s.r[m].End)
		if e > off || adjacent && e == off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Add puts [start, end) in the set, merging it with the ranges it overlaps
// or touches, and returns how many sequence numbers it newly covers: 0 means
// a duplicate (or a range refused for the bound, see AddEvict). The part
// below the base is ignored.
func (s *Set) Add(start, end seqnum.Value) (added seqnum.Size) {
	added, _, _ = s.AddEvict(start, end)
	return added
}

// AddEvict is Add reporting what the bound cost. When [start, end) is
// disjoint from every range and the set is full, the highest range is
// dropped: evicted is that range and ok is true. If the new range would
// itself be the highest it is the one dropped, so added is 0 and evicted is
// the new range; otherwise evicted is an old range whose data the caller no
// longer holds as received (RFC 2018 §8 reneging) and must not deliver.
func (s *Set) AddEvict(start, end seqnum.Value) (added seqnum.Size, evicted Range, ok bool) {
	if s.max <= 0 {
		s.Init(s.base, 0)
	}
	n, valid := s.clip(start, end)
	if !valid {
		return 0, Range{}, false
	}
	os, oe := s.off(n.Start), s.off(n.End)
	i := s.search(os, true)
	j := i
	for j < len(s.r) && s.off(s.r[j].Start) <= oe {
		j++
	}
	if i == j {
		if len(s.r) >= s.max {
			if i == len(s.r) {
				return 0, n, true
			}
			evicted, ok = s.r[len(s.r)-1], true
			s.r = s.r[:len(s.r)-1]
		}
		if s.r == nil {
			s.r = make([]Range, 0, min(s.max, 8))
		}
		s.r = append(s.r, Range{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = n
		return n.Len(), evicted, ok
	}
	added = n.Len()
	for _, r := range s.r[i:j] {
		lo, hi := max(os, s.off(r.Start)), min(oe, s.off(r.End))
		if lo < hi {
			added -= seqnum.Size(hi - lo)
		}
	}
	merged := Range{s.r[i].Start, s.r[j-1].End}
	if os < s.off(merged.Start) {
		merged.Start = n.Start
	}
	if oe > s.off(merged.End) {
		merged.End = n.End
	}
	s.r[i] = merged
	s.r = append(s.r[:i+1], s.r[j:]...)
	return added, Range{}, false
}

// Contains reports whether v is in a range of the set.
func (s *Set) Contains(v seqnum.Value) bool {
	_, ok := s.Find(v)
	return ok
}

// Find returns the range holding v, if there is one.
func (s *Set) Find(v seqnum.Value) (Range, bool) {
	if v.LessThan(s.base) {
		return Range{}, false
	}
	ov := s.off(v)
	i := s.search(ov, false)
	if i < len(s.r) && s.off(s.r[i].Start) <= ov {
		return s.r[i], true
	}
	return Range{}, false
}

// FirstDuplicate returns the lowest part of [start, end) that was already
// received: the part below the base (data at or before RCV.NXT) if any,
// else the lowest overlap with a range. It is what RFC 2883 §4 has the
// receiver report in a D-SACK block; call it before Add.
func (s *Set) FirstDuplicate(start, end seqnum.Value) (Range, bool) {
	if !start.LessThan(end) {
		return Range{}, false
	}
	if start.LessThan(s.base) {
		return Range{start, seqnum.Min(end, s.base)}, true
	}
	os, oe := s.off(start), s.off(end)
	i := s.search(os, false)
	if i < len(s.r) && s.off(s.r[i].Start) < oe {
		r := s.r[i]
		return Range{seqnum.Max(start, r.Start), seqnum.Min(end, r.End)}, true
	}
	return Range{}, false
}

// TrimBelow drops every sequence number below seq and makes seq the base;
// it does nothing if seq is below the base. It returns the range that now
// starts at seq, if one does: in-order data that was waiting, which the
// caller delivers before advancing RCV.NXT past it and trimming again (or
// let Advance do the loop). The range stays in the set until trimmed.
func (s *Set) TrimBelow(seq seqnum.Value) (Range, bool) {
	if seq.LessThan(s.base) {
		return Range{}, false
	}
	i := s.search(s.off(seq), false)
	s.r = append(s.r[:0], s.r[i:]...)
	s.base = seq
	if len(s.r) == 0 || seq.LessThan(s.r[0].Start) {
		return Range{}, false
	}
	s.r[0].Start = seq
	return s.r[0], true
}

// Advance trims everything below rcvNxt and then past every range that has
// become contiguous with it, returning the new RCV.NXT. Ranges never touch,
// so at most one range is consumed.
func (s *Set) Advance(rcvNxt seqnum.Value) seqnum.Value {
	if r, ok := s.TrimBelow(rcvNxt); ok {
		rcvNxt = r.End
		s.TrimBelow(rcvNxt)
	}
	return rcvNxt
}

// First returns the lowest range.
func (s *Set) First() (Range, bool) {
	if len(s.r) == 0 {
		return Range{}, false
	}
	return s.r[0], true
}

// Last returns the highest range.
func (s *Set) Last() (Range, bool) {
	if len(s.r) == 0 {
		return Range{}, false
	}
	return s.r[len(s.r)-1], true
}

// Len returns the number of ranges.
func (s *Set) Len() int { return len(s.r) }

// Covered returns the number of sequence numbers in the set.
func (s *Set) Covered() seqnum.Size {
	var n seqnum.Size
	for _, r := range s.r {
		n += r.Len()
	}
	return n
}

// At returns the i'th range, lowest first; it panics unless 0 <= i < Len.
// With Len it walks the set without copying it.
func (s *Set) At(i int) Range { return s.r[i] }

// Ranges returns a copy of the ranges, lowest first.
func (s *Set) Ranges() []Range { return append([]Range(nil), s.r...) }

// Clear empties the set, keeping its base and bound.
func (s *Set) Clear() { s.r = s.r[:0] }

// TrimAbove drops every sequence number at or after seq (the top of the
// set, as Linux's tcp_prune_ofo_queue prunes from the highest sequence
// down) and returns how many it dropped. A range that straddles seq keeps
// its part below. What is dropped is never reported again: a Reporter
// only reports what the set holds.
func (s *Set) TrimAbove(seq seqnum.Value) (dropped seqnum.Size) {
	if seq.LessThan(s.base) {
		seq = s.base
	}
	i := s.search(s.off(seq), false) // the first range ending after seq
	if i == len(s.r) {
		return 0
	}
	for _, r := range s.r[i:] {
		dropped += r.Len()
	}
	if s.r[i].Start.LessThan(seq) {
		dropped -= s.r[i].Start.Size(seq)
		s.r[i].End = seq
		i++
	}
	s.r = s.r[:i]
	return dropped
}
