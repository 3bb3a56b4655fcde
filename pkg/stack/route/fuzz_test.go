package route

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

// model is a brute-force routing table: a list scanned in full, the
// reference the fuzz test checks Table against.
type model struct {
	rs  []modelRoute
	seq uint64
}

type modelRoute struct {
	r   Route
	seq uint64
}

// before reports whether a sorts before b among routes of one prefix.
func (a modelRoute) before(b modelRoute) bool {
	if a.r.Metric != b.r.Metric {
		return a.r.Metric < b.r.Metric
	}
	return a.seq < b.seq
}

// norm is what Add stores for the routes the fuzzer makes (gateways are
// onlink, so no gateway check applies).
func (m *model) norm(r Route) Route {
	if r.Type == TypeUnspec {
		r.Type = TypeUnicast
	}
	if r.Protocol == ProtoUnspec {
		r.Protocol = ProtoBoot
	}
	if r.Dst.Addr().Is6() && r.Metric == 0 {
		r.Metric = 1024
	}
	return r
}

func (m *model) add(r Route) error {
	r = m.norm(r)
	for _, o := range m.rs {
		if identical(&o.r, &r) {
			return syscall.EEXIST
		}
	}
	m.seq++
	m.rs = append(m.rs, modelRoute{r, m.seq})
	return nil
}

func (m *model) replace(r Route) {
	r = m.norm(r)
	first := -1
	for i, o := range m.rs {
		if o.r.Dst == r.Dst && o.r.Metric == r.Metric && (first < 0 || o.before(m.rs[first])) {
			first = i
		}
	}
	var seq uint64
	if first >= 0 {
		seq = m.rs[first].seq
	} else {
		m.seq++
		seq = m.seq
	}
	kept := m.rs[:0]
	for i, o := range m.rs {
		if i != first && !identical(&o.r, &r) {
			kept = append(kept, o)
		}
	}
	m.rs = append(kept, modelRoute{r, seq})
}

func (m *model) del(mt Match) error {
	best := -1
	for i, o := range m.rs {
		if mt.matches(&o.r) && (best < 0 || o.before(m.rs[best])) {
			best = i
		}
	}
	if best < 0 {
		return syscall.ESRCH
	}
	m.rs = append(m.rs[:best], m.rs[best+1:]...)
	return nil
}

func (m *model) lookup(dst netip.Addr, nic int) (Route, bool) {
	best := -1
	for i, o := range m.rs {
		if !o.r.Dst.Contains(dst) || (nic > 0 && o.r.NIC != nic && !o.r.Type.Reject()) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := m.rs[best]
		if o.r.Dst.Bits() > b.r.Dst.Bits() || (o.r.Dst.Bits() == b.r.Dst.Bits() && o.before(b)) {
			best = i
		}
	}
	if best < 0 {
		return Route{}, false
	}
	return m.rs[best].r, true
}

// fuzzReader hands out the fuzz input a byte at a time, zeros when spent.
type fuzzReader struct{ b []byte }

func (f *fuzzReader) next() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

// addr makes an address from a small space so prefixes overlap often:
// family from the flag, a few varied bits at several depths. mapped turns
// IPv4 into IPv4-mapped IPv6 (which must only meet IPv6 routes).
func (f *fuzzReader) addr(v6, mapped bool) netip.Addr {
	a, b := f.next(), f.next()
	v4 := [4]byte{10 + a&1, a >> 6, b & 0xf0, b << 4}
	if !v6 {
		if mapped {
			return netip.AddrFrom16(netip.AddrFrom4(v4).As16())
		}
		return netip.AddrFrom4(v4)
	}
	return netip.AddrFrom16([16]byte{0xfd, a & 1, a >> 6, 0, 0, 0, 0, b & 0xc0, 8: b & 0x30, 15: b & 0x0f})
}

var v6Lens = [...]int{0, 1, 8, 15, 16, 17, 24, 56, 64, 65, 72, 120, 124, 127, 128}

func (f *fuzzReader) prefix(v6 bool) netip.Prefix {
	a := f.addr(v6, false)
	n := int(f.next())
	if v6 {
		n = v6Lens[n%len(v6Lens)]
	} else {
		n %= 33
	}
	return netip.PrefixFrom(a, n).Masked()
}

func (f *fuzzReader) route() Route {
	flags := f.next()
	v6 := flags&1 != 0
	r := Route{Dst: f.prefix(v6), Metric: uint32(flags>>1) & 3, Type: Type(flags>>3) % 5}
	if !r.Type.Reject() {
		r.NIC = 1 + int(flags>>6)%3
		if flags&4 != 0 {
			r.Gateway = f.addr(v6, false)
			r.OnLink = true
		}
	}
	return r
}

func (f *fuzzReader) match() Match {
	flags := f.next()
	v6 := flags&1 != 0
	m := Match{Dst: f.prefix(v6)}
	if flags&2 != 0 {
		m.Metric, m.MetricSet = uint32(flags>>5)&3, true
		if v6 && m.Metric == 0 {
			m.Metric = 1024
		}
	}
	if flags&4 != 0 {
		m.NIC = 1 + int(flags>>6)%3
	}
	if flags&8 != 0 {
		m.Gateway = f.addr(v6, false)
	}
	if flags&16 != 0 {
		m.Type = TypeUnicast
	}
	return m
}

func sameRoute(a, b Route) bool {
	a.Use, b.Use = 0, 0
	return a == b
}

// FuzzTable applies add, replace, delete and lookup operations decoded
// from the input to a Table and to the brute-force model, and requires the
// same answers, errors and generation changes from both.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 3, 0, 0})
	f.Add([]byte{0, 0x40, 1, 2, 8, 0, 0x44, 1, 2, 16, 3, 3, 0, 1, 2, 4, 0x41, 5, 6, 2, 0, 2, 1, 2, 8})
	f.Add([]byte{0, 9, 0, 0, 64, 0, 1, 255, 255, 5, 3, 1, 255, 255, 4, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		fr := &fuzzReader{b: data}
		tb, ref := New(), &model{}
		for step := 0; len(fr.b) > 0; step++ {
			gen := tb.Generation()
			op := fr.next() % 6
			var changed bool
			switch op {
			case 0: // add
				r := fr.route()
				err, want := tb.Add(r), ref.add(r)
				if !errors.Is(err, want) || (want == nil) != (err == nil) {
					t.Fatalf("step %d: Add(%v) = %v, model %v", step, r, err, want)
				}
				changed = err == nil
			case 1: // replace
				r := fr.route()
				if err := tb.Replace(r); err != nil {
					t.Fatalf("step %d: Replace(%v): %v", step, r, err)
				}
				ref.replace(r)
				changed = true
			case 2: // delete
				m := fr.match()
				err, want := tb.Delete(m), ref.del(m)
				if !errors.Is(err, want) || (want == nil) != (err == nil) {
					t.Fatalf("step %d: Delete(%+v) = %v, model %v", step, m, err, want)
				}
				changed = err == nil
			default: // lookup, with a NIC constraint or a mapped address
				flags := fr.next()
				dst := fr.addr(flags&1 != 0, flags&2 != 0)
				nic := 0
				if op == 4 {
					nic = int(flags>>2) % 4
				}
				got, ok := tb.LookupNIC(dst, nic)
				want, wok := ref.lookup(dst, nic)
				if ok != wok || !sameRoute(got, want) {
					t.Fatalf("step %d: LookupNIC(%v, %d) = %v, %v; model %v, %v", step, dst, nic, got, ok, want, wok)
				}
			}
			if (tb.Generation() != gen) != changed {
				t.Fatalf("step %d: op %d changed=%v but generation %d -> %d", step, op, changed, gen, tb.Generation())
			}
		}
		rs := tb.Routes()
		if len(rs) != len(ref.rs) {
			t.Fatalf("Routes has %d, model %d", len(rs), len(ref.rs))
		}
		for _, o := range ref.rs {
			found := false
			for _, r := range rs {
				found = found || sameRoute(r, o.r)
			}
			if !found {
				t.Fatalf("model route %v missing from Routes", o.r)
			}
		}
	})
}
