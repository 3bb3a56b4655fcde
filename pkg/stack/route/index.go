package route

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// entry is a route as stored: the Route value plus what the table keeps
// beside it.
type entry struct {
	r   Route
	seq uint64        // insertion order, for ties and for listing
	use atomic.Uint64 // lookups that returned this route
}

// key is an address as two 64-bit halves, masked to a prefix length. An
// IPv4 address sits in the low 32 bits of lo; the families have separate
// indexes, so their keys never meet.
type key struct{ hi, lo uint64 }

func keyOf(a netip.Addr) key {
	if a.Is4() {
		b := a.As4()
		return key{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return key{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// mask keeps the first n bits of k, an address of the given width.
func (k key) mask(n, width int) key {
	if width == 32 {
		if n == 0 {
			return key{}
		}
		return key{lo: k.lo & (uint64(0xffffffff) << (32 - n) & 0xffffffff)}
	}
	switch {
	case n == 0:
		return key{}
	case n <= 64:
		return key{hi: k.hi & (^uint64(0) << (64 - n))}
	case n == 128:
		return k
	default:
		return key{hi: k.hi, lo: k.lo & (^uint64(0) << (128 - n))}
	}
}

// index is the routes of one family, bucketed by prefix length and then by
// the masked destination. Lookup probes the populated lengths from the
// longest down (found with a bitmap), one hash lookup each, so its cost
// depends on how many distinct lengths are in use (at most 33 or 129), not
// on how many routes there are.
type index struct {
	width  int
	lens   [3]uint64 // bit n set: byLen[n] is not empty
	byLen  []map[key][]*entry
	routes int
}

func newIndex(width int) *index {
	return &index{width: width, byLen: make([]map[key][]*entry, width+1)}
}

// bucket returns the routes for exactly prefix p, best first.
func (x *index) bucket(p netip.Prefix) []*entry {
	m := x.byLen[p.Bits()]
	if m == nil {
		return nil
	}
	return m[keyOf(p.Addr())]
}

// less orders routes within a bucket: metric, then insertion.
func less(a, b *entry) bool {
	if a.r.Metric != b.r.Metric {
		return a.r.Metric < b.r.Metric
	}
	return a.seq < b.seq
}

func (x *index) insert(e *entry) {
	n := e.r.Dst.Bits()
	if x.byLen[n] == nil {
		x.byLen[n] = make(map[key][]*entry)
	}
	k := keyOf(e.r.Dst.Addr())
	b := x.byLen[n][k]
	i := 0
	for i < len(b) && less(b[i], e) {
		i++
	}
	x.byLen[n][k] = slices.Insert(b, i, e)
	x.lens[n/64] |= 1 << (n % 64)
	x.routes++
}

func (x *index) remove(e *entry) bool {
	n := e.r.Dst.Bits()
	m := x.byLen[n]
	if m == nil {
		return false
	}
	k := keyOf(e.r.Dst.Addr())
	b := m[k]
	for i, o := range b {
		if o != e {
			continue
		}
		if len(b) == 1 {
			delete(m, k)
			if len(m) == 0 {
				x.lens[n/64] &^= 1 << (n % 64)
			}
		} else {
			m[k] = slices.Delete(b, i, i+1)
		}
		x.routes--
		return true
	}
	return false
}

// lookup returns the best route for dst: the longest prefix holding a
// usable route, and in it the first (lowest metric, oldest) usable one. A
// route is usable when it has not expired and, if nic > 0, it leaves
// through nic or is a reject route (Linux applies reject routes whatever
// the outgoing interface, fib_table_lookup). now is read only if a
// candidate has an expiry time.
func (x *index) lookup(dst netip.Addr, nic int) *entry {
	k := keyOf(dst)
	var now time.Time
	for w := 2; w >= 0; w-- {
		word := x.lens[w]
		for word != 0 {
			hb := 63 - bits.LeadingZeros64(word)
			word &^= 1 << hb
			n := w*64 + hb
			for _, e := range x.byLen[n][k.mask(n, x.width)] {
				if nic > 0 && e.r.NIC != nic && !e.r.Type.Reject() {
					continue
				}
				if !e.r.Expires.IsZero() {
					if now.IsZero() {
						now = time.Now()
					}
					if !now.Before(e.r.Expires) {
						continue
					}
				}
				return e
			}
		}
	}
	return nil
}

// all calls f for every route, in no particular order.
func (x *index) all(f func(*entry)) {
	for _, m := range x.byLen {
		for _, b := range m {
			for _, e := range b {
				f(e)
			}
		}
	}
}
