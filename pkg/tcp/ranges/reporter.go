package ranges

import (
	"slices"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/wire"
)

// maxRecent is how many recently received segments a Reporter remembers.
// Each names a distinct range of the Set, so wire.TCPMaxSACKBlocks would do;
// the slack refills the option when remembered ranges are trimmed away.
const maxRecent = 2 * wire.TCPMaxSACKBlocks

// Reporter remembers which out-of-order ranges were reported most recently
// and which duplicate arrived last, and from them builds the SACK blocks of
// the next ACK. The zero Reporter is ready to use; it holds no pointer to a
// Set, which is passed to each call.
type Reporter struct {
	// recent holds the most recently received segments, latest first, each
	// in a different range of the Set when it was recorded. A segment stands
	// for the range that holds it now; ranges only grow by merging (which
	// Received sees) or shrink from below, so that range stays distinct.
	recent [maxRecent]Range
	n      int

	dsack    Range
	hasDSACK bool
}

// Reset forgets all recency and any pending D-SACK.
func (p *Reporter) Reset() { *p = Reporter{} }

// Received records that the segment [start, end) arrived and was added to
// set (call it after Set.Add). Its range becomes the first SACK block of the
// next ACK (RFC 2018 §4). A segment that is wholly below set's base
// (in-order data) or that set refused is not recorded: RFC 2018 §4 exempts a
// segment that advanced the cumulative ACK.
func (p *Reporter) Received(start, end seqnum.Value, set *Set) {
	seg, ok := set.clip(start, end)
	if !ok {
		return
	}
	holder, ok := set.Find(seg.Start)
	if !ok {
		return
	}
	// The new segment may have merged ranges that older entries stood for;
	// those now name the same block, so only the newest is kept.
	k := 0
	for _, e := range p.recent[:p.n] {
		if set.base.LessThan(e.End) && !holder.Contains(seqnum.Max(e.Start, set.base)) {
			p.recent[k] = e
			k++
		}
	}
	k = min(k, maxRecent-1)
	copy(p.recent[1:k+1], p.recent[:k])
	p.recent[0] = seg
	p.n = k + 1
}

// Duplicate records that [start, end) arrived although it had already been
// received, below RCV.NXT or inside an out-of-order range (RFC 2883 §4); the
// next Blocks reports it first, once. A later call replaces an unreported
// one: D-SACK describes the segment that triggered the ACK. A segment with
// several duplicate parts reports only the first (Set.FirstDuplicate).
func (p *Reporter) Duplicate(start, end seqnum.Value) {
	if !start.LessThan(end) {
		return
	}
	p.dsack, p.hasDSACK = Range{start, end}, true
}

// Blocks returns the SACK blocks for the ACK being sent, at most max (4
// without timestamps, 3 with; wire.TCPMaxSACKBlocks at most). See
// AppendBlocks.
func (p *Reporter) Blocks(rcvNxt seqnum.Value, max int, set *Set) []Range {
	return p.AppendBlocks(nil, rcvNxt, max, set)
}

// AppendBlocks appends the SACK blocks for the ACK being sent to dst.
//
// A pending D-SACK block comes first, followed by the range of set holding
// it (its last octet) if there is one above rcvNxt (RFC 2883 §4); the D-SACK is then forgotten,
// since each duplicate is reported once. Then come the ranges holding the
// most recently received segments, latest first, each once and none at or
// below rcvNxt (RFC 2018 §4), and then, while there is room, the other
// ranges of set, lowest first. Ranges are clipped to start at rcvNxt in
// case set was not trimmed to it.
func (p *Reporter) AppendBlocks(dst []Range, rcvNxt seqnum.Value, max int, set *Set) []Range {
	max = min(max, wire.TCPMaxSACKBlocks)
	if max <= 0 {
		return dst
	}
	start := len(dst)
	from := start // where blocks to dedupe against begin
	if p.hasDSACK {
		p.hasDSACK = false
		dst = append(dst, p.dsack)
		from++ // the D-SACK block may equal its holder; both are sent
		// The holder is the range the duplicate's last octet is in: one
		// wholly below the base has none, and must not borrow the range
		// that starts at the base.
		last := p.dsack.End - 1
		if _, in := set.Find(last); in && max > 1 {
			if h, ok := p.holder(last, rcvNxt, set); ok {
				dst = append(dst, h)
			}
		}
	}
	k := 0
	for _, e := range p.recent[:p.n] {
		h, ok := p.holder(e.Start, rcvNxt, set)
		if !ok {
			continue // trimmed or evicted: never reported again
		}
		p.recent[k] = e
		k++
		if len(dst)-start < max && !slices.Contains(dst[from:], h) {
			dst = append(dst, h)
		}
	}
	p.n = k
	// RFC 2018 §4 also wants as many distinct blocks as fit: ranges with no
	// recent segment (their entries aged out) fill the rest, lowest first,
	// as the holes nearest RCV.NXT matter most to the sender.
	for i := 0; i < set.Len() && len(dst)-start < max; i++ {
		h := set.At(i)
		if h.End.LessThanEq(rcvNxt) {
			continue
		}
		h.Start = seqnum.Max(h.Start, rcvNxt)
		if !slices.Contains(dst[from:], h) {
			dst = append(dst, h)
		}
	}
	return dst
}

// holder returns the range of set holding v, clipped to start at rcvNxt, if
// it reaches past rcvNxt.
func (p *Reporter) holder(v, rcvNxt seqnum.Value, set *Set) (Range, bool) {
	h, ok := set.Find(seqnum.Max(v, set.base))
	if !ok || h.End.LessThanEq(rcvNxt) {
		return Range{}, false
	}
	h.Start = seqnum.Max(h.Start, rcvNxt)
	return h, true
}
