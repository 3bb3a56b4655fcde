package sack

import (
	"slices"
	"testing"

	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

func rs(v ...uint32) []ranges.Range {
	var out []ranges.Range
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, ranges.Range{Start: seqnum.Value(v[i]), End: seqnum.Value(v[i+1])})
	}
	return out
}

const smss = 100

// Ten segments of 100 octets, 1000 to 1999, are outstanding.
const una, nxt = seqnum.Value(1000), seqnum.Value(2000)

type seg struct {
	start seqnum.Value
	n     int
	ok    bool
}

func nextSeg(s *Scoreboard, highRxt seqnum.Value, newData int) seg {
	start, n, ok := s.NextSeg(una, nxt, highRxt, smss, newData)
	return seg{start, n, ok}
}

// Three contiguous segments SACKed: more than 2*SMSS octets above the
// first two, so they are lost (RFC 6675 §4 IsLost, second rule).
func TestLostByBytes(t *testing.T) {
	s := New(una, 0)
	if n, d := s.Update(una, nxt, rs(1200, 1500)); n != 300 || d {
		t.Fatalf("Update = %d, %v", n, d)
	}
	for seq, want := range map[seqnum.Value]bool{
		999: false, 1000: true, 1199: true, 1200: false, 1499: false, 1500: false, 1999: false,
	} {
		if got := s.IsLost(seq, smss); got != want {
			t.Errorf("IsLost(%d) = %v", seq, got)
		}
	}
	// Holes: [1000,1200) lost, [1500,2000) in flight.
	if p := s.Pipe(una, nxt, una, smss); p != 500 {
		t.Errorf("Pipe = %d, want 500", p)
	}
	if p := s.Pipe(una, nxt, 1200, smss); p != 700 {
		t.Errorf("Pipe after retransmitting the hole = %d, want 700", p)
	}
	if p := s.Pipe(una, nxt, 1150, smss); p != 650 {
		t.Errorf("Pipe with half the hole retransmitted = %d, want 650", p)
	}
	for _, c := range []struct {
		highRxt seqnum.Value
		newData int
		want    seg
	}{
		{una, 0, seg{1000, 100, true}},   // rule 1
		{una, 500, seg{1000, 100, true}}, // rule 1 before new data
		{1100, 0, seg{1100, 100, true}},
		{1150, 0, seg{1150, 50, true}},    // up to the SACKed data
		{1200, 500, seg{2000, 100, true}}, // rule 2
		{1200, 30, seg{2000, 30, true}},
		{1200, 0, seg{}}, // nothing unSACKed below the highest SACK is left
	} {
		if got := nextSeg(s, c.highRxt, c.newData); got != c.want {
			t.Errorf("NextSeg(highRxt %d, new %d) = %+v, want %+v", c.highRxt, c.newData, got, c.want)
		}
	}
	if start, n, ok := s.Rescue(una, nxt, smss); start != 1900 || n != 100 || !ok {
		t.Errorf("Rescue = %d, %d, %v", start, n, ok)
	}
	if s.SackedBytes() != 300 || s.Len() != 1 {
		t.Errorf("SackedBytes %d Len %d", s.SackedBytes(), s.Len())
	}
	if h, ok := s.HighSacked(); h != 1500 || !ok {
		t.Errorf("HighSacked = %d, %v", h, ok)
	}
}

// Discontiguous single segments: two are not enough, the third makes the
// octets below all three lost (RFC 6675 §4 IsLost, first rule).
func TestLostByCount(t *testing.T) {
	s := New(una, 0)
	s.Update(una, nxt, rs(1200, 1300, 1400, 1500))
	if s.IsLost(1000, smss) || s.IsLost(1300, smss) {
		t.Fatal("lost with two SACKed segments of 2*SMSS")
	}
	if got := nextSeg(s, una, 0); got != (seg{1000, 100, true}) {
		t.Errorf("rule 3 before any loss: %+v", got)
	}
	if n, _ := s.Update(una, nxt, rs(1600, 1700, 1400, 1500, 1200, 1300)); n != 100 {
		t.Fatalf("newly SACKed %d", n)
	}
	for seq, want := range map[seqnum.Value]bool{
		1000: true, 1199: true, 1300: false, 1399: false, 1500: false, 1700: false,
	} {
		if got := s.IsLost(seq, smss); got != want {
			t.Errorf("IsLost(%d) = %v", seq, got)
		}
	}
	// Rule 1 picks the lost hole; past it only rule 3's not-lost holes.
	if got := nextSeg(s, una, 0); got != (seg{1000, 100, true}) {
		t.Errorf("rule 1: %+v", got)
	}
	if got := nextSeg(s, 1200, 0); got != (seg{1300, 100, true}) {
		t.Errorf("rule 3: %+v", got)
	}
	if got := nextSeg(s, 1200, 1); got != (seg{2000, 1, true}) {
		t.Errorf("rule 2 before rule 3: %+v", got)
	}
	if got := nextSeg(s, 1600, 0); got != (seg{}) {
		t.Errorf("above the highest SACK: %+v", got)
	}
	// Pipe: [1000,1200) lost; [1300,1400), [1500,1600), [1700,2000) not.
	if p := s.Pipe(una, nxt, una, smss); p != 500 {
		t.Errorf("Pipe = %d", p)
	}
}

// The count rule alone: three one-octet SACKs, far below 2*SMSS octets.
func TestLostByCountOnly(t *testing.T) {
	s := New(una, 0)
	s.Update(una, nxt, rs(1100, 1101, 1200, 1201))
	if s.IsLost(1000, smss) {
		t.Fatal("lost with two discontiguous SACKs")
	}
	s.Update(una, nxt, rs(1300, 1301))
	if !s.IsLost(1000, smss) || !s.IsLost(1099, smss) || s.IsLost(1101, smss) {
		t.Error("three discontiguous SACKs above do not make an octet lost")
	}
	if p := s.Pipe(una, nxt, una, smss); p != 1000-3-100 {
		t.Errorf("Pipe = %d", p)
	}
}

func TestThresholdExact(t *testing.T) {
	s := New(una, 0)
	s.Update(una, nxt, rs(1100, 1300))
	if s.IsLost(1000, smss) {
		t.Error("exactly 2*SMSS SACKed above is not lost")
	}
	s.Update(una, nxt, rs(1300, 1301))
	if !s.IsLost(1000, smss) {
		t.Error("2*SMSS+1 SACKed above is lost")
	}
}

func TestDSACK(t *testing.T) {
	for _, c := range []struct {
		name   string
		blocks []ranges.Range
		want   bool
	}{
		{"below the ACK", rs(500, 600, 1200, 1300), true},
		{"straddles the ACK", rs(900, 1100), true},
		{"covered by the second", rs(1200, 1300, 1100, 1400), true},
		{"equal to the second", rs(1200, 1300, 1200, 1300), true},
		{"covered by the third", rs(1200, 1300, 1500, 1600, 1100, 1400), true},
		{"ordinary", rs(1200, 1300, 1500, 1600), false},
		{"overlaps but not covered", rs(1200, 1300, 1250, 1400), false},
		{"none", nil, false},
		{"empty first", rs(1200, 1200, 1100, 1400), false},
	} {
		if _, got := DSACK(una, c.blocks); got != c.want {
			t.Errorf("%s: DSACK = %v", c.name, got)
		}
		s := New(una, 0)
		if _, got := s.Update(una, nxt, c.blocks); got != c.want {
			t.Errorf("%s: Update dsack = %v", c.name, got)
		}
	}
	// The D-SACK block is not taken as a SACK.
	s := New(una, 0)
	if n, d := s.Update(una, nxt, rs(1200, 1300, 1100, 1400)); n != 300 || !d || !slices.Equal(s.Ranges(), rs(1100, 1400)) {
		t.Errorf("Update with D-SACK = %d, %v, %v", n, d, s.Ranges())
	}
	if n, d := s.Update(1500, nxt, rs(1400, 1500, 1600, 1700)); n != 100 || !d || !slices.Equal(s.Ranges(), rs(1600, 1700)) {
		t.Errorf("D-SACK below the ACK = %d, %v, %v", n, d, s.Ranges())
	}
}

func TestUpdateValidation(t *testing.T) {
	s := New(una, 0)
	n, _ := s.Update(una, nxt, rs(
		1900, 2100, // past SND.NXT: bogus, ignored
		1500, 1500, // empty
		1700, 1600, // inverted
		1800, 1900,
		800, 1100, // partly acknowledged: the rest counts (not first, not a D-SACK)
	))
	if n != 200 || !slices.Equal(s.Ranges(), rs(1000, 1100, 1800, 1900)) {
		t.Fatalf("Update = %d, %v", n, s.Ranges())
	}
	if n, _ := s.Update(una, nxt, rs(1800, 1900, 1000, 1100)); n != 0 {
		t.Errorf("repeated blocks newly SACKed %d", n)
	}
	if !s.Reneged(una) || s.Reneged(1100) {
		t.Error("Reneged: the octet at SND.UNA is SACKed")
	}
	// The ACK moves past the first range and into the second.
	if n, _ := s.Update(1850, nxt, nil); n != 0 || !slices.Equal(s.Ranges(), rs(1850, 1900)) {
		t.Errorf("after ACK 1850: %v", s.Ranges())
	}
	s.Acked(1200) // older: ignored
	if !slices.Equal(s.Ranges(), rs(1850, 1900)) {
		t.Errorf("an older ACK changed the board: %v", s.Ranges())
	}
	s.Acked(nxt)
	if s.Len() != 0 || s.SackedBytes() != 0 {
		t.Error("everything acknowledged, board not empty")
	}
	if _, ok := s.HighSacked(); ok {
		t.Error("HighSacked of an empty board")
	}
	if _, _, ok := s.Rescue(nxt, nxt, smss); ok {
		t.Error("Rescue with nothing outstanding")
	}
}

func TestWrapAround(t *testing.T) {
	const u = seqnum.Value(0xffffff00)
	n := u.Add(1000) // 0x2e8
	s := New(u, 0)
	got, _ := s.Update(u, n, rs(0xffffffc0, 0x40, 0x100, 0x140))
	if got != 0x80+0x40 || !slices.Equal(s.Ranges(), rs(0xffffffc0, 0x40, 0x100, 0x140)) {
		t.Fatalf("Update across the wrap = %d, %v", got, s.Ranges())
	}
	// 192 octets above u: with SMSS 64 that is more than 2*SMSS.
	if !s.IsLost(u, 64) || !s.IsLost(0xffffffbf, 64) || s.IsLost(0x40, 64) || !s.IsSacked(0) {
		t.Error("IsLost across the wrap")
	}
	if st, l, ok := s.NextSeg(u, n, u, 64, 0); st != u || l != 64 || !ok {
		t.Errorf("NextSeg = %#x, %d, %v", st, l, ok)
	}
	// Holes: [u, 0xffffffc0) lost (0xc0); [0x40, 0x100), [0x140, n) not.
	if p := s.Pipe(u, n, u, 64); p != 0xc0+int(n-0x140) {
		t.Errorf("Pipe = %d", p)
	}
	if _, d := s.Update(0x10, n, rs(0xfffffff0, 0x10)); !d {
		t.Error("D-SACK below an ACK across the wrap not seen")
	}
	if !slices.Equal(s.Ranges(), rs(0x10, 0x40, 0x100, 0x140)) {
		t.Errorf("after ACK 0x10: %v", s.Ranges())
	}
}

// A full board forgets its highest range to take a lower one, and refuses
// a new highest one.
func TestBounded(t *testing.T) {
	s := New(una, 3)
	n, _ := s.Update(una, nxt, rs(1900, 1950, 1700, 1750, 1500, 1550, 1300, 1350, 1100, 1150))
	if !slices.Equal(s.Ranges(), rs(1100, 1150, 1300, 1350, 1500, 1550)) {
		t.Fatalf("board %v", s.Ranges())
	}
	if n != 5*50 || s.SackedBytes() != 150 {
		// newlySacked counts what each block covered when added.
		t.Errorf("newly SACKed %d, SackedBytes %d", n, s.SackedBytes())
	}
	if s.Len() > 3 {
		t.Errorf("Len %d", s.Len())
	}
}

func TestMarkLost(t *testing.T) {
	s := New(una, 0)
	s.Update(una, nxt, rs(1200, 1300))
	s.MarkLost(nxt) // RTO: SACK information kept
	if !s.IsSacked(1200) || s.IsLost(1200, smss) {
		t.Error("SACKed octet lost after the timeout")
	}
	for _, seq := range []seqnum.Value{1000, 1199, 1300, 1999} {
		if !s.IsLost(seq, smss) {
			t.Errorf("IsLost(%d) false after the timeout", seq)
		}
	}
	if p := s.Pipe(una, nxt, una, smss); p != 0 {
		t.Errorf("Pipe after the timeout = %d", p)
	}
	// Above the highest SACK too, up to the mark, then new data.
	for _, c := range []struct {
		highRxt seqnum.Value
		want    seg
	}{
		{una, seg{1000, 100, true}},
		{1200, seg{1300, 100, true}},
		{1950, seg{1950, 50, true}},
	} {
		if got := nextSeg(s, c.highRxt, 0); got != c.want {
			t.Errorf("NextSeg(%d) = %+v, want %+v", c.highRxt, got, c.want)
		}
	}
	// Data sent after the timeout is not marked.
	if st, n, ok := s.NextSeg(una, 2100, 2000, smss, 0); ok {
		t.Errorf("NextSeg above the mark = %d, %d", st, n)
	}
	if s.IsLost(2050, smss) {
		t.Error("data sent after the timeout is lost")
	}
	s.Acked(1500)
	if !s.IsLost(1500, smss) {
		t.Error("mark lost before SND.UNA reached it")
	}
	s.Acked(nxt)
	s.Update(nxt, 2500, rs(2200, 2300))
	if s.IsLost(2000, smss) {
		t.Error("mark survived SND.UNA passing it")
	}
	s.MarkLost(2500)
	s.Reset()
	if s.Len() != 0 || s.IsLost(2000, smss) {
		t.Error("Reset kept SACKs or the mark")
	}
}

func TestZeroScoreboard(t *testing.T) {
	var s Scoreboard
	s.Init(una, 0)
	s.Update(una, nxt, rs(1500, 1600))
	var z Scoreboard
	z.Update(0, 1000, rs(100, 200))
	if s.Len() != 1 || z.Len() != 1 || z.SackedBytes() != 100 {
		t.Error("zero or Init'd Scoreboard unusable")
	}
}

func TestNoAllocs(t *testing.T) {
	s := New(una, 8)
	blocks := rs(1200, 1300, 1400, 1500, 1600, 1700)
	if n := testing.AllocsPerRun(100, func() {
		s.Update(una, nxt, blocks)
		s.IsLost(1000, smss)
		s.Pipe(una, nxt, 1100, smss)
		s.NextSeg(una, nxt, 1100, smss, 0)
		s.Rescue(una, nxt, smss)
		s.Reset()
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestBadSMSS(t *testing.T) {
	s := New(una, 0)
	s.Update(una, nxt, rs(1200, 1300))
	if _, _, ok := s.NextSeg(una, nxt, una, 0, 100); ok {
		t.Error("NextSeg with SMSS 0")
	}
	if _, _, ok := s.Rescue(una, nxt, -1); ok {
		t.Error("Rescue with negative SMSS")
	}
	if !s.IsLost(1000, 0) {
		t.Error("with SMSS 0 any SACKed octet above means lost")
	}
}
