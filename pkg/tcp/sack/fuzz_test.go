package sack

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// board is the scoreboard as one bit per octet offset from an origin, with
// RFC 6675's routines written octet by octet from their definitions.
type board struct {
	sacked    [512]bool
	una, nxt  int
	max       int
	lostBelow int // -1: no timeout mark
}

func (b *board) runs() [][2]int {
	var out [][2]int
	for i := b.una; i < b.nxt; i++ {
		if b.sacked[i] && (i == b.una || !b.sacked[i-1]) {
			j := i
			for j < b.nxt && b.sacked[j] {
				j++
			}
			out = append(out, [2]int{i, j})
		}
	}
	return out
}

func (b *board) add(s, e int) (evicted bool) {
	s = max(s, b.una)
	for i := s; i < e; i++ {
		b.sacked[i] = true
	}
	if r := b.runs(); len(r) > b.max {
		for i := r[len(r)-1][0]; i < r[len(r)-1][1]; i++ {
			b.sacked[i] = false
		}
		return true
	}
	return false
}

func (b *board) acked(una int) {
	if una <= b.una {
		return
	}
	for i := b.una; i < una; i++ {
		b.sacked[i] = false
	}
	b.una = una
	if b.lostBelow >= 0 && b.lostBelow <= una {
		b.lostBelow = -1
	}
}

// isLost is RFC 6675 IsLost for an octet: DupThresh discontiguous SACKed
// sequences above it, or more than (DupThresh-1)*SMSS SACKed octets above.
func (b *board) isLost(seq, smss int) bool {
	if seq < b.una || seq >= len(b.sacked) || b.sacked[seq] {
		return false
	}
	if b.lostBelow >= 0 && seq < b.lostBelow {
		return true
	}
	runs, octets := 0, 0
	for i := seq + 1; i < b.nxt; i++ {
		if b.sacked[i] {
			octets++
			if !b.sacked[i-1] {
				runs++
			}
		}
	}
	return runs >= DupThresh || octets > (DupThresh-1)*smss
}

// pipe is RFC 6675 SetPipe, octet by octet.
func (b *board) pipe(highRxt, smss int) int {
	p := 0
	for i := b.una; i < b.nxt; i++ {
		if b.sacked[i] {
			continue
		}
		if !b.isLost(i, smss) {
			p++
		}
		if i < highRxt {
			p++
		}
	}
	return p
}

func (b *board) highSacked() int {
	for i := b.nxt - 1; i >= b.una; i-- {
		if b.sacked[i] {
			return i + 1
		}
	}
	return -1
}

// nextSeg is NextSeg rules 1-3 from the definitions: the smallest qualifying
// octet, and the run from it of octets that qualify the same way, at most
// SMSS.
func (b *board) nextSeg(highRxt, smss, newData int) (int, int, bool) {
	hs := b.highSacked()
	run := func(s int, ok func(int) bool) int {
		n := 0
		for s+n < b.nxt && n < smss && ok(s+n) {
			n++
		}
		return n
	}
	unsacked := func(i int) bool { return !b.sacked[i] }
	lost := func(i int) bool { return !b.sacked[i] && b.isLost(i, smss) }
	marked := func(i int) bool { return b.lostBelow >= 0 && i < b.lostBelow }
	for s := max(b.una, highRxt); s < b.nxt; s++ {
		if lost(s) && (s < hs || marked(s)) {
			return s, run(s, lost), true
		}
	}
	if newData > 0 {
		return b.nxt, min(newData, smss), true
	}
	for s := max(b.una, highRxt); s < hs; s++ {
		if unsacked(s) {
			return s, run(s, unsacked), true
		}
	}
	return 0, 0, false
}

func (b *board) rescue(smss int) (int, int, bool) {
	for i := b.nxt - 1; i >= b.una; i-- {
		if !b.sacked[i] {
			n := 0
			for i-n >= b.una && n < smss && !b.sacked[i-n] {
				n++
			}
			return i - n + 1, n, true
		}
	}
	return 0, 0, false
}

// FuzzScoreboard runs random SACKs, ACKs, timeouts and transmissions on a
// Scoreboard based anywhere in sequence space and checks it and its RFC 6675
// routines against the octet-by-octet board.
func FuzzScoreboard(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0x00, 3, 10, 0, 40, 10, 1, 60, 10, 2, 80, 5, 3, 0, 0, 0, 20, 30})
	f.Add([]byte{0, 0, 0, 0, 8, 3, 0, 0, 0, 5, 2, 0, 9, 2, 0, 13, 2, 0, 17, 2, 4, 0, 0})
	f.Add([]byte{0x80, 0, 0, 0, 1, 0, 50, 2, 0, 10, 2, 5, 0, 0, 1, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 5 {
			return
		}
		origin := seqnum.Value(binary.BigEndian.Uint32(data))
		b := &board{max: int(data[4]%8) + 1, nxt: 100, lostBelow: -1}
		s := New(origin, b.max)
		v := func(off int) seqnum.Value { return origin.Add(seqnum.Size(off)) }
		data = data[5:]
		for len(data) >= 3 {
			op, x, y := data[0]%6, int(data[1]), int(data[2])
			data = data[3:]
			smss := int(x%128) + 1 // large SMSS makes the count rule matter
			switch op {
			case 0, 1: // an ACK of una+x/4 with up to three blocks from the rest
				ack := min(b.una+x/4, b.nxt)
				var blocks []ranges.Range
				for i := 0; i < 3 && len(data) >= 2; i++ {
					st := int(data[0])
					blocks = append(blocks, ranges.Range{Start: v(st), End: v(st + int(data[1]%64))})
					data = data[2:]
				}
				_, wantD := DSACK(v(ack), blocks)
				if len(blocks) > 0 && !blocks[0].Empty() {
					b0 := blocks[0]
					covered := slices.ContainsFunc(blocks[1:], func(o ranges.Range) bool {
						return o.Start.LessThanEq(b0.Start) && b0.End.LessThanEq(o.End)
					})
					if want := b0.Start.LessThan(v(ack)) || covered; want != wantD {
						t.Fatalf("DSACK(%d, %v) = %v", v(ack), blocks, wantD)
					}
				}
				b.acked(ack)
				fresh, evicted := 0, false
				for i, blk := range blocks {
					if i == 0 && wantD {
						continue
					}
					st, en := int(blk.Start-origin), int(blk.End-origin)
					if en <= st || en > b.nxt || en <= b.una {
						continue
					}
					for j := max(st, b.una); j < en; j++ {
						if !b.sacked[j] {
							fresh++
						}
					}
					if b.add(st, en) {
						evicted = true
					}
				}
				n, d := s.Update(v(ack), v(b.nxt), blocks)
				if d != wantD {
					t.Fatalf("Update dsack %v, want %v", d, wantD)
				}
				if !evicted && int(n) != fresh {
					// Without evictions newlySacked is exactly the new octets.
					t.Fatalf("newly SACKed %d, model %d", n, fresh)
				}
			case 2: // send y/8 new octets
				b.nxt = min(b.nxt+y/8, len(b.sacked))
			case 3: // timeout
				s.MarkLost(v(b.nxt))
				b.lostBelow = b.nxt
			case 4: // plain ACK
				ack := min(b.una+x, b.nxt)
				s.Acked(v(ack))
				b.acked(ack)
			case 5: // reneging response
				if s.Reneged(v(b.una)) != (b.una < b.nxt && b.sacked[b.una]) {
					t.Fatal("Reneged disagrees")
				}
				if y%4 == 0 {
					s.Reset()
					b.sacked = [512]bool{}
					b.lostBelow = -1
				}
			}
			check(t, s, b, v, smss, y)
		}
	})
}

func check(t *testing.T, s *Scoreboard, b *board, v func(int) seqnum.Value, smss, y int) {
	t.Helper()
	var want []ranges.Range
	octets := 0
	for _, r := range b.runs() {
		want = append(want, ranges.Range{Start: v(r[0]), End: v(r[1])})
		octets += r[1] - r[0]
	}
	if got := s.Ranges(); !slices.Equal(got, want) {
		t.Fatalf("ranges %v, model %v", got, want)
	}
	if int(s.SackedBytes()) != octets || s.Len() > b.max {
		t.Fatalf("SackedBytes %d, model %d; Len %d", s.SackedBytes(), octets, s.Len())
	}
	hs, ok := s.HighSacked()
	if mhs := b.highSacked(); ok != (mhs >= 0) || ok && hs != v(mhs) {
		t.Fatalf("HighSacked %d, %v; model %d", hs, ok, mhs)
	}
	for i := max(0, b.una-2); i < b.nxt+2; i++ {
		if got, want := s.IsLost(v(i), smss), b.isLost(i, smss); got != want {
			t.Fatalf("IsLost(%d, smss %d) = %v, model %v", i, smss, got, want)
		}
		if s.IsSacked(v(i)) != (i >= b.una && i < len(b.sacked) && b.sacked[i]) {
			t.Fatalf("IsSacked(%d) wrong", i)
		}
	}
	highRxt := b.una + y%(b.nxt-b.una+1)
	if got, want := s.Pipe(v(b.una), v(b.nxt), v(highRxt), smss), b.pipe(highRxt, smss); got != want {
		t.Fatalf("Pipe(highRxt %d, smss %d) = %d, model %d", highRxt, smss, got, want)
	}
	newData := 0
	if y%3 == 0 {
		newData = y % 20
	}
	st, n, ok := s.NextSeg(v(b.una), v(b.nxt), v(highRxt), smss, newData)
	mst, mn, mok := b.nextSeg(highRxt, smss, newData)
	if ok != mok || ok && (st != v(mst) || n != mn) {
		t.Fatalf("NextSeg(highRxt %d, smss %d, new %d) = %d+%d %v, model %d+%d %v", highRxt, smss, newData, st, n, ok, v(mst), mn, mok)
	}
	st, n, ok = s.Rescue(v(b.una), v(b.nxt), smss)
	mst, mn, mok = b.rescue(smss)
	if ok != mok || ok && (st != v(mst) || n != mn) {
		t.Fatalf("Rescue = %d+%d %v, model %d+%d %v", st, n, ok, v(mst), mn, mok)
	}
}
