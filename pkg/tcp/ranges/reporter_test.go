package ranges

import (
	"slices"
	"testing"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// receiver is the part of a TCP receiver that uses a Set and a Reporter,
// as pkg/tcp is meant to: duplicates are reported before the data is added,
// in-order data advances RCV.NXT past whatever was waiting.
type receiver struct {
	nxt seqnum.Value
	set *Set
	rep Reporter
	max int
}

func newReceiver(nxt seqnum.Value, max int) *receiver {
	return &receiver{nxt: nxt, set: New(nxt, 0), max: max}
}

func (r *receiver) segment(start, end uint32) (ack seqnum.Value, blocks []Range) {
	s, e := seqnum.Value(start), seqnum.Value(end)
	if d, ok := r.set.FirstDuplicate(s, e); ok {
		r.rep.Duplicate(d.Start, d.End)
	}
	if s.LessThanEq(r.nxt) {
		if r.nxt.LessThan(e) {
			r.nxt = r.set.Advance(e)
		}
	} else {
		r.set.Add(s, e)
		r.rep.Received(s, e, r.set)
	}
	return r.nxt, r.rep.Blocks(r.nxt, r.max, r.set)
}

type step struct {
	start, end uint32
	ack        uint32
	blocks     []Range
}

func run(t *testing.T, r *receiver, steps []step) {
	t.Helper()
	for i, st := range steps {
		ack, blocks := r.segment(st.start, st.end)
		if ack != seqnum.Value(st.ack) || !slices.Equal(blocks, st.blocks) {
			t.Errorf("step %d: segment %d-%d: ACK %d SACK %v, want ACK %d SACK %v",
				i, st.start, st.end-1, ack, blocks, st.ack, st.blocks)
		}
	}
}

// RFC 2018 §4, case 2: the first segment is dropped, the other seven arrive.
func TestRFC2018Case2(t *testing.T) {
	var steps []step
	for i := uint32(1); i < 8; i++ {
		steps = append(steps, step{5000 + 500*i, 5500 + 500*i, 5000, rs(5500, 5500+500*i)})
	}
	run(t, newReceiver(5000, 3), steps)
}

// RFC 2018 §4, case 3: the 2nd, 4th, 6th and 8th segments are dropped;
// then case 4: the 4th arrives, then the 2nd.
func TestRFC2018Case3And4(t *testing.T) {
	r := newReceiver(5000, 3)
	run(t, r, []step{
		{5000, 5500, 5500, nil},
		{6000, 6500, 5500, rs(6000, 6500)},
		{7000, 7500, 5500, rs(7000, 7500, 6000, 6500)},
		{8000, 8500, 5500, rs(8000, 8500, 7000, 7500, 6000, 6500)},
		{6500, 7000, 5500, rs(6000, 7500, 8000, 8500)},
		{5500, 6000, 7500, rs(8000, 8500)},
	})
}

// The first block names the latest segment and the rest follow by recency,
// not by sequence; the fourth block needs a fourth slot (no timestamps).
func TestRecencyOrder(t *testing.T) {
	r := newReceiver(0, 4)
	run(t, r, []step{
		{400, 500, 0, rs(400, 500)},
		{200, 300, 0, rs(200, 300, 400, 500)},
		{600, 700, 0, rs(600, 700, 200, 300, 400, 500)},
		{800, 900, 0, rs(800, 900, 600, 700, 200, 300, 400, 500)},
		{1000, 1100, 0, rs(1000, 1100, 800, 900, 600, 700, 200, 300)},
		// An old range reported again comes first again.
		{500, 510, 0, rs(400, 510, 1000, 1100, 800, 900, 600, 700)},
	})
	r.max = 3
	run(t, r, []step{{1200, 1300, 0, rs(1200, 1300, 400, 510, 1000, 1100)}})
	// Blocks beyond what fits in the option are never returned.
	if got := r.rep.Blocks(r.nxt, 9, r.set); len(got) != 4 {
		t.Errorf("max 9 returned %d blocks", len(got))
	}
	if got := r.rep.Blocks(r.nxt, 0, r.set); len(got) != 0 {
		t.Errorf("max 0 returned %v", got)
	}
}

// RFC 2883 §4.1.1, example 1: ACKs lost, 3000-3499 retransmitted.
func TestRFC2883Example1(t *testing.T) {
	run(t, newReceiver(3000, 4), []step{
		{3000, 3500, 3500, nil},
		{3500, 4000, 4000, nil},
		{3000, 3500, 4000, rs(3000, 3500)},
	})
}

// RFC 2883 §4.1.2, example 2: an out-of-order segment, then a duplicate.
func TestRFC2883Example2(t *testing.T) {
	run(t, newReceiver(3000, 4), []step{
		{3000, 3500, 3500, nil},
		{3500, 4000, 4000, nil},
		{4500, 5000, 4000, rs(4500, 5000)},
		{3000, 3500, 4000, rs(3000, 3500, 4500, 5000)},
	})
}

// RFC 2883 §4.1.3, example 3: a duplicate of an out-of-order segment; the
// second block is the larger block holding it.
func TestRFC2883Example3(t *testing.T) {
	run(t, newReceiver(3500, 4), []step{
		{3500, 4000, 4000, nil},
		{4500, 5000, 4000, rs(4500, 5000)},
		{5000, 5500, 4000, rs(4500, 5500)},
		{5000, 5500, 4000, rs(5000, 5500, 4500, 5500)},
		// Reported once: the next ACK has no D-SACK.
		{6000, 6500, 4000, rs(6000, 6500, 4500, 5500)},
	})
}

// RFC 2883 §4.2.1, example 4: a retransmission half of which was received.
func TestRFC2883Example4(t *testing.T) {
	run(t, newReceiver(500, 4), []step{
		{500, 1000, 1000, nil},
		{2000, 2500, 1000, rs(2000, 2500)},
		{1000, 1500, 1500, rs(2000, 2500)},
		{1000, 2000, 2500, rs(1000, 1500)},
	})
}

// RFC 2883 §4.2.2, example 5: two duplicate subsegments below the new
// cumulative ACK; only the first is reported.
func TestRFC2883Example5(t *testing.T) {
	run(t, newReceiver(500, 4), []step{
		{500, 1000, 1000, nil},
		{3000, 3500, 1000, rs(3000, 3500)},
		{1000, 1500, 1500, rs(3000, 3500)},
		{2000, 2500, 1500, rs(2000, 2500, 3000, 3500)},
		{1000, 2500, 2500, rs(1000, 1500, 3000, 3500)},
	})
}

// Modelled on RFC 2883 §4.2.3, example 6: two duplicate subsegments above
// the cumulative ACK; the first is reported, then the block holding it.
func TestRFC2883Example6(t *testing.T) {
	run(t, newReceiver(500, 4), []step{
		{500, 1000, 1000, nil},
		{3500, 4000, 1000, rs(3500, 4000)},
		{1500, 2000, 1000, rs(1500, 2000, 3500, 4000)},
		{2500, 3000, 1000, rs(2500, 3000, 1500, 2000, 3500, 4000)},
		{1500, 3000, 1000, rs(1500, 2000, 1500, 3000, 3500, 4000)},
	})
}

// With room for one block only the D-SACK goes; with timestamps (3) the
// D-SACK, its holder and one more.
func TestDSACKRoom(t *testing.T) {
	r := newReceiver(0, 1)
	r.segment(100, 200)
	r.segment(300, 400)
	if _, b := r.segment(100, 200); !slices.Equal(b, rs(100, 200)) {
		t.Errorf("max 1: %v", b)
	}
	r.max = 3
	r.segment(500, 600)
	if _, b := r.segment(300, 400); !slices.Equal(b, rs(300, 400, 300, 400, 500, 600)) {
		t.Errorf("max 3: %v", b)
	}
	// A D-SACK for a range since trimmed or a wholly old one has no holder.
	r.rep.Duplicate(10, 20)
	if b := r.rep.Blocks(r.nxt, 3, r.set); !slices.Equal(b, rs(10, 20, 300, 400, 500, 600)) {
		t.Errorf("old D-SACK: %v", b)
	}
	r.rep.Duplicate(30, 30)
	if b := r.rep.Blocks(r.nxt, 3, r.set); !slices.Equal(b, rs(300, 400, 500, 600, 100, 200)) {
		t.Errorf("empty D-SACK reported: %v", b)
	}
}

// Evicted and trimmed ranges drop out of the report; an in-order segment
// is not recorded.
func TestReporterForgets(t *testing.T) {
	r := newReceiver(0, 4)
	r.set.Init(0, 2)
	r.segment(100, 200)
	r.segment(300, 400)
	r.segment(50, 60) // evicts 300-400
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(50, 60, 100, 200)) {
		t.Errorf("after eviction: %v", b)
	}
	r.segment(500, 600) // refused: the set is full and it is highest
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(50, 60, 100, 200)) {
		t.Errorf("after refusal: %v", b)
	}
	// Advances to 200; 50-60 was had, so it is a D-SACK (RFC 2883 §4.2.1).
	if _, b := r.segment(0, 150); !slices.Equal(b, rs(50, 60)) {
		t.Errorf("cumulative ACK over a duplicate: %v", b)
	}
	if r.nxt != 200 || r.set.Len() != 0 {
		t.Fatalf("nxt %d, %d ranges", r.nxt, r.set.Len())
	}
	if b := r.rep.Blocks(r.nxt, 4, r.set); len(b) != 0 {
		t.Errorf("after the ACK passed everything: %v", b)
	}
	if r.rep.n != 0 {
		t.Errorf("%d stale entries kept", r.rep.n)
	}
	// The caller may ask for blocks above an RCV.NXT it has not trimmed to.
	r.segment(300, 400)
	if b := r.rep.Blocks(350, 4, r.set); !slices.Equal(b, rs(350, 400)) {
		t.Errorf("untrimmed: %v", b)
	}
	// Reset forgets recency, so the set's ranges are all there is to report.
	r.rep.Reset()
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(300, 400)) {
		t.Errorf("after Reset: %v", b)
	}
}

// A D-SACK's holder is the range its last octet lies in: none for one
// below the base, even with a range starting at the base (TrimBelow leaves
// it there); that range for one straddling the base.
func TestDSACKHolderAtBase(t *testing.T) {
	r := newReceiver(0, 4)
	r.segment(600, 700)
	r.set.Add(400, 500)
	r.set.TrimBelow(400)
	r.nxt = 400
	r.rep.Duplicate(350, 400)
	if b := r.rep.Blocks(400, 4, r.set); !slices.Equal(b, rs(350, 400, 600, 700, 400, 500)) {
		t.Errorf("D-SACK below the base: %v", b)
	}
	r.rep.Duplicate(350, 450)
	if b := r.rep.Blocks(400, 4, r.set); !slices.Equal(b, rs(350, 450, 400, 500, 600, 700)) {
		t.Errorf("D-SACK straddling the base: %v", b)
	}
}

// Ranges without a remembered segment fill the option, lowest first, after
// the recent ones (RFC 2018 §4: as many distinct blocks as possible).
func TestReporterFills(t *testing.T) {
	r := newReceiver(0, 4)
	for _, st := range []uint32{600, 100, 500, 200, 400, 300} {
		r.segment(st, st+50)
	}
	r.rep.Reset()
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(100, 150, 200, 250, 300, 350, 400, 450)) {
		t.Errorf("no recency: %v", b)
	}
	_, b := r.segment(550, 560)
	if !slices.Equal(b, rs(500, 560, 100, 150, 200, 250, 300, 350)) {
		t.Errorf("one recent: %v", b)
	}
	r.rep.Duplicate(600, 650)
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(600, 650, 600, 650, 500, 560, 100, 150)) {
		t.Errorf("D-SACK, holder, recent, fill: %v", b)
	}
	// Fill is clipped to an untrimmed RCV.NXT too.
	if b := r.rep.Blocks(220, 4, r.set); !slices.Equal(b, rs(500, 560, 220, 250, 300, 350, 400, 450)) {
		t.Errorf("fill above 220: %v", b)
	}
}

// Many ranges: recency is bounded but the report always fills up.
func TestReporterManyRanges(t *testing.T) {
	r := newReceiver(0, 4)
	for i := range uint32(20) {
		r.segment(100+i*100, 150+i*100)
	}
	_, b := r.segment(120, 130)
	if !slices.Equal(b, rs(120, 130, 100, 150, 2000, 2050, 1900, 1950)) {
		t.Errorf("blocks %v", b)
	}
	// Trim the recent ones away: the remembered older ones fill in.
	r.set.TrimBelow(1750)
	r.nxt = 1750
	if b := r.rep.Blocks(r.nxt, 4, r.set); !slices.Equal(b, rs(2000, 2050, 1900, 1950, 1800, 1850)) {
		t.Errorf("after trim: %v", b)
	}
}

func TestAppendBlocksKeepsDst(t *testing.T) {
	r := newReceiver(0, 4)
	r.segment(100, 200)
	dst := rs(1, 2)
	got := r.rep.AppendBlocks(dst, 0, 4, r.set)
	if !slices.Equal(got, rs(1, 2, 100, 200)) {
		t.Errorf("AppendBlocks %v", got)
	}
	// dst's own contents are not deduplicated against, and do not count.
	r.rep.Duplicate(100, 200)
	got = r.rep.AppendBlocks(rs(100, 200, 5, 6), 0, 2, r.set)
	if !slices.Equal(got, rs(100, 200, 5, 6, 100, 200, 100, 200)) {
		t.Errorf("AppendBlocks with D-SACK %v", got)
	}
}
