package ranges

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// model is a Set as a bitmap of offsets from an origin, with the same
// bound: when there are too many runs the highest goes.
type model struct {
	bits [1024]bool
	base int // offset of the Set's base
	max  int
}

func (m *model) runs() [][2]int {
	var out [][2]int
	for i := m.base; i < len(m.bits); i++ {
		if m.bits[i] && (i == m.base || !m.bits[i-1]) {
			j := i
			for j < len(m.bits) && m.bits[j] {
				j++
			}
			out = append(out, [2]int{i, j})
		}
	}
	return out
}

func (m *model) add(s, e int) (added int, evicted [2]int, ok bool) {
	s = max(s, m.base)
	var fresh []int
	for i := s; i < e; i++ {
		if !m.bits[i] {
			m.bits[i] = true
			fresh = append(fresh, i)
		}
	}
	if r := m.runs(); len(r) > m.max {
		evicted, ok = r[len(r)-1], true
		for i := evicted[0]; i < evicted[1]; i++ {
			m.bits[i] = false
		}
	}
	for _, i := range fresh {
		if m.bits[i] {
			added++
		}
	}
	return added, evicted, ok
}

func (m *model) firstDup(s, e int) (int, int, bool) {
	if s >= e {
		return 0, 0, false
	}
	if s < m.base {
		return s, min(e, m.base), true
	}
	for i := s; i < e; i++ {
		if m.bits[i] {
			j := i
			for j < e && m.bits[j] {
				j++
			}
			return i, j, true
		}
	}
	return 0, 0, false
}

// FuzzSet runs random Add, TrimBelow and Advance operations on a Set (and a
// Reporter over it) based anywhere in sequence space, checking each against
// the bitmap model.
func FuzzSet(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xfe, 0x00, 3, 0, 10, 5, 0, 30, 5, 0, 20, 12, 1, 20, 2, 0, 40, 50, 3, 30})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 100, 1, 0, 50, 1, 0, 150, 1, 2, 60})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xf0, 8, 0, 1, 1, 0, 3, 1, 0, 5, 1, 0, 2, 3, 2, 0, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 5 {
			return
		}
		origin := seqnum.Value(binary.BigEndian.Uint32(data))
		m := &model{max: int(data[4]%8) + 1}
		s := New(origin, m.max)
		var rep Reporter
		v := func(off int) seqnum.Value { return origin.Add(seqnum.Size(off)) }
		data = data[5:]
		for len(data) >= 3 {
			op, a, b := data[0]%4, int(data[1]), int(data[2])
			data = data[3:]
			switch op {
			case 0, 1: // Add [a*2, a*2+b) offsets, possibly below the base
				start, end := a*2, a*2+b
				ds, de, dok := m.firstDup(start, end)
				d, ok := s.FirstDuplicate(v(start), v(end))
				if ok != dok || ok && d != (Range{v(ds), v(de)}) {
					t.Fatalf("FirstDuplicate(%d, %d) = %v, %v; model [%d, %d) %v", start, end, d, ok, ds, de, dok)
				}
				if ok {
					rep.Duplicate(d.Start, d.End)
				}
				wantAdded, wantEv, wantOK := m.add(start, end)
				added, ev, evOK := s.AddEvict(v(start), v(end))
				if int(added) != wantAdded || evOK != wantOK || evOK && ev != (Range{v(wantEv[0]), v(wantEv[1])}) {
					t.Fatalf("AddEvict(%d, %d) = %d, %v, %v; model %d, %v, %v", start, end, added, ev, evOK, wantAdded, wantEv, wantOK)
				}
				rep.Received(v(start), v(end), s)
				blocks := rep.Blocks(s.Base(), 4, s)
				checkBlocks(t, m, v, blocks, ok)
				if end > m.base && s.Contains(v(max(start, m.base))) != m.bits[max(start, m.base)] {
					t.Fatal("Contains disagrees with the model")
				}
				if !ok && max(start, m.base) < end && m.bits[max(start, m.base)] {
					// No D-SACK: the first block holds this segment.
					if len(blocks) == 0 || !blocks[0].Contains(v(max(start, m.base))) {
						t.Fatalf("first block %v does not hold segment [%d, %d)", blocks, start, end)
					}
				}
			case 2: // TrimBelow
				seq := a * 4
				r, ok := s.TrimBelow(v(seq))
				if seq > m.base {
					m.base = seq
				}
				var want [2]int
				runs := m.runs()
				wantOK := len(runs) > 0 && runs[0][0] == seq
				if wantOK {
					want = runs[0]
				}
				if ok != wantOK || ok && r != (Range{v(want[0]), v(want[1])}) {
					t.Fatalf("TrimBelow(%d) = %v, %v; model %v, %v", seq, r, ok, want, wantOK)
				}
			case 3: // Advance from the base
				nxt := s.Advance(s.Base())
				if runs := m.runs(); len(runs) > 0 && runs[0][0] == m.base {
					m.base = runs[0][1]
				}
				if nxt != v(m.base) || s.Base() != nxt {
					t.Fatalf("Advance = %d, base %d; model base %d", nxt, s.Base(), v(m.base))
				}
			}
			runs := m.runs()
			var want []Range
			var covered seqnum.Size
			for _, r := range runs {
				want = append(want, Range{v(r[0]), v(r[1])})
				covered += seqnum.Size(r[1] - r[0])
			}
			if got := s.Ranges(); !slices.Equal(got, want) {
				t.Fatalf("ranges %v, model %v", got, want)
			}
			if s.Len() != len(runs) || s.Covered() != covered || s.Len() > m.max {
				t.Fatalf("Len %d Covered %d, model %d %d", s.Len(), s.Covered(), len(runs), covered)
			}
			for off := max(0, m.base-3); off < 600; off++ {
				if s.Contains(v(off)) != (off >= m.base && m.bits[off]) {
					t.Fatalf("Contains(%d) wrong", off)
				}
			}
		}
	})
}

// checkBlocks checks a report: after an optional D-SACK, distinct ranges of
// the set, as many as fit in 4 blocks.
func checkBlocks(t *testing.T, m *model, v func(int) seqnum.Value, blocks []Range, dsack bool) {
	t.Helper()
	if len(blocks) > 4 {
		t.Fatalf("%d blocks", len(blocks))
	}
	runs := m.runs()
	d := 0
	if dsack {
		d = 1
	}
	if len(blocks) != min(4, d+len(runs)) {
		t.Fatalf("%d blocks %v for %d ranges (D-SACK %v): not as many as fit", len(blocks), blocks, len(runs), dsack)
	}
	blocks = blocks[d:]
	for i, b := range blocks {
		if slices.Contains(blocks[:i], b) {
			t.Fatalf("block %v repeated in %v", b, blocks)
		}
		if !slices.ContainsFunc(runs, func(r [2]int) bool { return b == Range{v(r[0]), v(r[1])} }) {
			t.Fatalf("block %v is not a range of %v", b, runs)
		}
	}
}
