// Package sack owns the sender's SACK scoreboard for conservative loss
// recovery, RFC 6675: which parts of [SND.UNA, SND.NXT) the receiver has
// selectively acknowledged, and from that the routines of RFC 6675 §4
// (Update, IsLost, SetPipe as Pipe, NextSeg), plus D-SACK detection (RFC
// 2883 §4, RFC 3708 §2). It also holds RACK's time-based loss detection
// (RFC 8985 §6, type RACK), the Tail Loss Probe timeout (§7.2, PTO) and
// the probe episode's outcome (§7.4, type TLP), as pure logic; choosing and
// sending the probe (§7.3) is the caller's.
//
// The scoreboard holds byte ranges, not segments, so it is cheap and
// bounded: at most a given number of SACKed ranges are kept (a
// ranges.Set; pkg/tcp bounds it by its send buffer, ranges.MaxRangesFor). When a new disjoint block would exceed the bound the highest
// range is forgotten; that only makes the sender more conservative — the
// forgotten bytes count in the pipe and support fewer loss inferences — and
// the receiver keeps reporting recent blocks, so it is soon relearned.
//
// Sequence numbers follow RFC 6675 with one shift: RFC 6675's HighACK,
// HighData and HighRxt name the last octet of something (inclusive), while
// here sndUna, sndNxt and highRxt are one past it, as SND.UNA and SND.NXT
// are. So sndUna is HighACK+1, sndNxt is HighData+1, and highRxt is
// HighRxt+1 (sndUna when nothing was retransmitted in this recovery).
//
// After a retransmission timeout (RFC 6675 §5.1) a sender may discard the
// scoreboard (RFC 2018 §8 lets the receiver renege) or keep it. This one
// keeps it, as Linux's tcp_enter_loss does, and treats every unSACKed octet
// sent before the timeout as lost (MarkLost); Reset discards everything,
// for a sender that detects reneging (Reneged) or prefers RFC 2018's rule.
package sack

import (
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// DupThresh is RFC 6675's DupThresh: how many discontiguous SACKed
// sequences above an octet make it lost (RFC 6675 §2, §4 IsLost).
const DupThresh = 3

// DefaultMaxRanges bounds a Scoreboard whose bound was not given.
const DefaultMaxRanges = ranges.DefaultMaxRanges

// Scoreboard is the sender's record of SACKed ranges above SND.UNA. The
// zero Scoreboard is empty, based at 0 with bound DefaultMaxRanges; Init
// gives it a base. Only Update, as the ranges it holds outgrow its
// storage, and Ranges allocate; storage is kept across Init and Reset.
type Scoreboard struct {
	set ranges.Set
	// lostBelow, when lostSet, is SND.NXT at the last retransmission
	// timeout: every unSACKed octet before it is lost.
	lostBelow seqnum.Value
	lostSet   bool
}

// New returns an empty scoreboard based at sndUna holding at most
// maxRanges SACKed ranges (DefaultMaxRanges if maxRanges <= 0).
func New(sndUna seqnum.Value, maxRanges int) *Scoreboard {
	s := new(Scoreboard)
	s.Init(sndUna, maxRanges)
	return s
}

// Init empties s and bases it at sndUna with the given bound
// (DefaultMaxRanges if maxRanges <= 0), reusing its storage.
func (s *Scoreboard) Init(sndUna seqnum.Value, maxRanges int) {
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	s.set.Init(sndUna, maxRanges)
	s.lostSet = false
}

// Reset discards all SACK information and any timeout marking, keeping the
// base and bound: RFC 2018 §8's response to a timeout, or to reneging.
func (s *Scoreboard) Reset() {
	s.set.Clear()
	s.lostSet = false
}

// MarkLost is the scoreboard's part of a retransmission timeout: SACK
// information is kept, and every unSACKed octet before sndNxt (SND.NXT
// when the timer fired) is lost from now on, whatever IsLost's SACK rules
// say, until it is cumulatively acknowledged (Linux tcp_enter_loss).
func (s *Scoreboard) MarkLost(sndNxt seqnum.Value) {
	s.lostBelow, s.lostSet = sndNxt, true
}

// DSACK reports whether the first of blocks is a D-SACK (RFC 2883 §4, RFC
// 3708 §2): below the cumulative acknowledgement sndUna, or covered by a
// later block, which a receiver only does to report a duplicate.
func DSACK(sndUna seqnum.Value, blocks []ranges.Range) (ranges.Range, bool) {
	if len(blocks) == 0 || blocks[0].Empty() {
		return ranges.Range{}, false
	}
	b := blocks[0]
	if b.Start.LessThan(sndUna) {
		return b, true
	}
	for _, o := range blocks[1:] {
		if o.Covers(b) {
			return b, true
		}
	}
	return ranges.Range{}, false
}

// Update takes the ACK of SND.UNA = sndUna (after this ACK; an ACK older
// than SND.UNA should not be given, as its stale blocks could look like a
// D-SACK) with the SACK blocks it carried, while SND.NXT is sndNxt. It
// drops what is cumulatively acknowledged, records the blocks, and returns
// how many octets were newly SACKed and whether the first block was a
// D-SACK (see DSACK). A D-SACK block is not recorded; a block reaching past
// sndNxt is bogus and ignored, as Linux's tcp_is_sackblock_valid does; the
// part of a block below sndUna is ignored. newlySacked counts what each
// block added when it was added, even if the bound later forgot it: the
// receiver did get those octets.
func (s *Scoreboard) Update(sndUna, sndNxt seqnum.Value, blocks []ranges.Range) (newlySacked seqnum.Size, dsack bool) {
	s.Acked(sndUna)
	if _, dsack = DSACK(sndUna, blocks); dsack {
		blocks = blocks[1:]
	}
	for _, b := range blocks {
		if b.Empty() || sndNxt.LessThan(b.End) || b.End.LessThanEq(sndUna) {
			continue
		}
		newlySacked += s.set.Add(b.Start, b.End)
	}
	return newlySacked, dsack
}

// Acked drops everything below sndUna, the new SND.UNA; a value below the
// current base is ignored.
func (s *Scoreboard) Acked(sndUna seqnum.Value) {
	s.set.TrimBelow(sndUna)
	if s.lostSet && s.lostBelow.LessThanEq(s.set.Base()) {
		s.lostSet = false
	}
}

// Reneged reports whether the octet at sndUna is SACKed: the receiver
// SACKed data it has not acknowledged cumulatively although nothing before
// it is missing, so it must have discarded it (RFC 2018 §8). Call it after
// Update; a sender may then Reset (Linux waits a little first).
func (s *Scoreboard) Reneged(sndUna seqnum.Value) bool {
	r, ok := s.set.First()
	return ok && r.Start == sndUna
}

// IsSacked reports whether seq has been SACKed.
func (s *Scoreboard) IsSacked(seq seqnum.Value) bool { return s.set.Contains(seq) }

// SackedBytes returns how many octets above SND.UNA are SACKed.
func (s *Scoreboard) SackedBytes() seqnum.Size { return s.set.Covered() }

// HighSacked returns one past the highest SACKed octet, if any is SACKed.
func (s *Scoreboard) HighSacked() (seqnum.Value, bool) {
	r, ok := s.set.Last()
	return r.End, ok
}

// Ranges returns the SACKed ranges, lowest first.
func (s *Scoreboard) Ranges() []ranges.Range { return s.set.Ranges() }

// Len returns the number of SACKed ranges.
func (s *Scoreboard) Len() int { return s.set.Len() }

// IsLost is RFC 6675 §4 IsLost: seq is lost when DupThresh discontiguous
// SACKed ranges lie above it or more than (DupThresh-1)*smss SACKed octets
// do; or when a timeout marked it (MarkLost). A SACKed or cumulatively
// acknowledged octet is not lost.
func (s *Scoreboard) IsLost(seq seqnum.Value, smss int) bool {
	if seq.LessThan(s.set.Base()) || s.set.Contains(seq) {
		return false
	}
	if s.lostSet && seq.LessThan(s.lostBelow) {
		return true
	}
	lost := false
	s.holes(seq, seq+1, smss, func(h hole) bool {
		lost = h.lost
		return false
	})
	return lost
}

// hole is a maximal unSACKed interval of [SND.UNA, SND.NXT) and whether
// IsLost's SACK rule holds for it: every octet of a hole has the same
// SACKed ranges above it, so the rule holds for all of it or none.
type hole struct {
	ranges.Range
	lost bool
}

// holes calls f on each hole of [from, to), lowest first, until f returns
// false.
func (s *Scoreboard) holes(from, to seqnum.Value, smss int, f func(hole) bool) {
	n := s.set.Len()
	limit := uint64(DupThresh-1) * uint64(max(smss, 0))
	above := uint64(s.set.Covered()) // SACKed octets in ranges i.. below
	at := from
	for i := range n {
		r := s.set.At(i)
		if !at.LessThan(to) {
			return
		}
		if at.LessThan(r.Start) {
			lost := n-i >= DupThresh || above > limit
			if !f(hole{ranges.Range{Start: at, End: seqnum.Min(r.Start, to)}, lost}) {
				return
			}
		}
		at = seqnum.Max(at, r.End)
		above -= uint64(r.Len())
	}
	if at.LessThan(to) {
		f(hole{ranges.Range{Start: at, End: to}, false})
	}
}

// split calls f on the parts of h below and at-or-above v (the empty one
// skipped), each with whether it lies below v.
func split(h ranges.Range, v seqnum.Value, f func(r ranges.Range, below bool)) {
	if h.Start.LessThan(v) {
		f(ranges.Range{Start: h.Start, End: seqnum.Min(h.End, v)}, true)
	}
	if v.LessThan(h.End) {
		f(ranges.Range{Start: seqnum.Max(h.Start, v), End: h.End}, false)
	}
}

// Pipe is RFC 6675 §4 SetPipe: the octets of [sndUna, sndNxt) thought to
// be in the network. Each unSACKed octet counts once if it is not lost and
// once more if it was retransmitted (below highRxt).
func (s *Scoreboard) Pipe(sndUna, sndNxt, highRxt seqnum.Value, smss int) int {
	pipe := 0
	s.holes(sndUna, sndNxt, smss, func(h hole) bool {
		split(h.Range, s.lostEdge(h.Start), func(r ranges.Range, markedLost bool) {
			if !markedLost && !h.lost {
				pipe += int(r.Len())
			}
		})
		split(h.Range, highRxt, func(r ranges.Range, retransmitted bool) {
			if retransmitted {
				pipe += int(r.Len())
			}
		})
		return true
	})
	return pipe
}

// lostEdge returns the end of the octets marked lost by a timeout, or v
// (so that nothing lies below it) when there is none.
func (s *Scoreboard) lostEdge(v seqnum.Value) seqnum.Value {
	if s.lostSet {
		return s.lostBelow
	}
	return v
}

// NextSeg is RFC 6675 §4 NextSeg, rules 1 to 3: what to send next during
// recovery. It returns the first octet and length (at most smss, never
// running into SACKed data) of
//
//  1. the first lost unSACKed octets at or after highRxt and below the
//     highest SACKed octet (after a timeout, every unSACKed octet below the
//     mark is lost and eligible, even above the highest SACK);
//  2. else newData > 0 octets of unsent data at sndNxt (newData is what the
//     send buffer and the receive window allow now);
//  3. else the first unSACKed octets at or after highRxt below the highest
//     SACKed octet, lost or not.
//
// A start of sndNxt is new data; otherwise the caller retransmits and sets
// highRxt to start+length. ok is false when nothing qualifies; rule 4 is
// Rescue.
func (s *Scoreboard) NextSeg(sndUna, sndNxt, highRxt seqnum.Value, smss, newData int) (start seqnum.Value, length int, ok bool) {
	if smss <= 0 {
		return 0, 0, false
	}
	highSacked, any := s.HighSacked()
	from := seqnum.Max(sndUna, highRxt)
	seg := func(r ranges.Range) (seqnum.Value, int, bool) {
		return r.Start, min(int(r.Len()), smss), true
	}
	var found, fallback ranges.Range
	s.holes(sndUna, sndNxt, smss, func(h hole) bool {
		r := h.Range
		r.Start = seqnum.Max(r.Start, from)
		if r.Empty() {
			return true
		}
		below := any && r.Start.LessThan(highSacked)
		if below && h.lost {
			found = r
			return false
		}
		if s.lostSet && r.Start.LessThan(s.lostBelow) {
			found = ranges.Range{Start: r.Start, End: seqnum.Min(r.End, s.lostBelow)}
			return false
		}
		if below && fallback.Empty() {
			fallback = r
		}
		return below || s.lostSet
	})
	switch {
	case !found.Empty():
		return seg(found)
	case newData > 0:
		return sndNxt, min(newData, smss), true
	case !fallback.Empty():
		return seg(fallback)
	}
	return 0, 0, false
}

// Rescue is RFC 6675 §4 NextSeg rule 4, the rescue retransmission: up to
// smss octets ending at the highest outstanding unSACKed octet of [sndUna,
// sndNxt). The caller allows one per recovery (while SND.UNA is above
// RescueRxt, then setting RescueRxt to the recovery point) and does not
// move highRxt for it.
func (s *Scoreboard) Rescue(sndUna, sndNxt seqnum.Value, smss int) (start seqnum.Value, length int, ok bool) {
	if smss <= 0 {
		return 0, 0, false
	}
	var last ranges.Range
	s.holes(sndUna, sndNxt, smss, func(h hole) bool {
		last = h.Range
		return true
	})
	if last.Empty() {
		return 0, 0, false
	}
	n := min(int(last.Len()), smss)
	return last.End - seqnum.Value(n), n, true
}
