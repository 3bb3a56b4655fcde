package fragment

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// FuzzReassemble drives a Reassembler with fragment sequences read from the
// fuzz input: fragments cut from fixed reference datagrams (consistent),
// arbitrary fragments (inconsistent: any offset, length, flag and bytes),
// and time steps. It checks that nothing panics, that the memory charged
// never exceeds the limit, and that a datagram completed from consistent
// fragments only (and the first fragment quoted by an expiry) equals the
// reference bytes.
func FuzzReassemble(f *testing.F) {
	// In-order, reverse and duplicated pieces of keys 0 and 2, which
	// complete; then pieces of key 1 around a time step and garbage.
	f.Add([]byte{255, 1, 15, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 2, 2, 0, 0, 2, 1, 0, 0, 2, 0, 0, 0})
	f.Add([]byte{200, 2, 31, 1, 2, 0, 0, 1, 0, 0, 0, 0x0c, 10, 0, 0, 0x0b, 1, 2, 3, 1, 1, 0, 0})
	// Overlapping consistent ranges, garbage, and time steps.
	f.Add([]byte{4, 0x00, 0x40, 0, 4, 0, 0, 1, 4, 0, 16, 3, 8, 0x10, 0, 7, 12, 200, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 0x10, 0x00, 7, 0x48, 0xff, 0xff, 0x08, 0xcb, 0x07, 0x00, 0x01, 0x0e, 0x09, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		synctest.Test(t, func(t *testing.T) { fuzzReassemble(t, in) })
	})
}

func fuzzReassemble(t *testing.T, in []byte) {
	limit := 1024 + int(in[0])*512
	base := 1 + int(binary.BigEndian.Uint16(in[1:]))%6000
	// Consistent fragments are either pieces of a fixed split of the
	// datagram (so sequences complete) or arbitrary ranges of it.
	piece := 8 * (1 + int(in[2]%64))
	keys := [4]Key{key4(1), {Family: IPv4, Src: src4, Dst: dst4, Proto: 6, ID: 1}, key6(1), key6(2)}
	var refs [4][]byte
	var hdrs [4][]byte
	for i := range refs {
		refs[i] = make([]byte, base+i*9)
		for j := range refs[i] {
			refs[i][j] = byte(j*7 + i*31 + j>>8)
		}
		hdrs[i] = testHeader(48, uint32(i))
	}

	var mu sync.Mutex
	var tainted [4]bool // an inconsistent fragment was sent since the last completion
	index := func(k Key) int {
		for i := range keys {
			if keys[i] == k {
				return i
			}
		}
		t.Errorf("unknown key %v", k)
		return 0
	}
	r := New(Config{
		Timeout:      time.Second,
		MemoryLimit:  limit,
		MaxFragments: 32,
		Headroom:     int(in[0] % 16),
		OnTimeout: func(x Expired) {
			mu.Lock()
			defer mu.Unlock()
			i := index(x.Key)
			if !tainted[i] && (!bytes.Equal(x.Header, hdrs[i]) || !bytes.HasPrefix(refs[i], x.Data)) {
				t.Errorf("expiry of key %d quotes a first fragment that was never sent", i)
			}
		},
	})
	defer r.Close()

	// send processes one fragment of key i and checks the outcome.
	send := func(i int, p Packet) {
		d, done, err := r.Process(keys[i], p)
		if done && err != nil {
			t.Fatalf("done with error %v", err)
		}
		if m := r.MemoryUsed(); m > limit {
			t.Fatalf("memory %d exceeds the limit %d", m, limit)
		}
		if !done {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !tainted[i] {
			if !bytes.Equal(d.Data, refs[i]) || !bytes.Equal(d.Header, hdrs[i]) {
				t.Fatalf("key %d: reassembled %d bytes differ from the reference %d", i, len(d.Data), len(refs[i]))
			}
			if len(d.Buf) < len(d.Data) || !bytes.Equal(d.Buf[len(d.Buf)-len(d.Data):], d.Data) {
				t.Fatalf("key %d: Buf does not end with Data", i)
			}
		}
		// An atomic fragment leaves the pending datagram alone.
		if p.Offset != 0 || p.More {
			tainted[i] = false
		}
	}
	// consistent returns the reference bytes [off, end) of key i as a fragment.
	consistent := func(i, off, end int, otherHeader bool) Packet {
		p := Packet{Offset: off, More: end < len(refs[i]), Data: refs[i][off:end], Header: hdrs[i]}
		if otherHeader && off != 0 {
			p.Header = testHeader(20, 99) // later fragments' headers do not matter
		}
		return p
	}

	ops := in[3:]
	for n := 0; len(ops) >= 4 && n < 1000; n, ops = n+1, ops[4:] {
		op, a, b, c := ops[0], ops[1], ops[2], ops[3]
		i := int(op & 3)
		ref := refs[i]
		pieces := (len(ref) + piece - 1) / piece
		switch op >> 2 & 3 {
		case 0: // one piece, or with bit 6 all pieces in turn starting at piece a
			count := 1
			if op&0x40 != 0 {
				count = pieces
			}
			for k := range count {
				off := (int(a) + k) % pieces * piece
				send(i, consistent(i, off, min(off+piece, len(ref)), op&0x80 != 0))
			}
		case 1: // a consistent range of any aligned offset and length
			off := int(binary.BigEndian.Uint16([]byte{a, b})) % len(ref) &^ 7
			send(i, consistent(i, off, min(off+(int(c)+1)*8, len(ref)), op&0x80 != 0))
		case 2: // anything
			off := int(binary.BigEndian.Uint16([]byte{a, b}))
			if op&0x40 != 0 {
				off &^= 7
			}
			data := make([]byte, int(c))
			for j := range data {
				data[j] = byte(j) ^ op
			}
			mu.Lock()
			tainted[i] = true
			mu.Unlock()
			send(i, Packet{Offset: off, More: op&0x80 != 0, Data: data, Header: testHeader(int(op>>4), 7)})
		case 3: // let time pass
			time.Sleep(time.Duration(a) * 10 * time.Millisecond)
			synctest.Wait()
		}
	}
	st := r.Stats()
	if st.ReasmFails < st.ReasmTimeout+st.Evictions {
		t.Fatalf("stats %+v: failures below timeouts plus evictions", st)
	}
}

// FuzzCopiedOptions checks CopiedOptions on any option bytes: no panic, a
// result padded to 32-bit words, only options with the copied flag, and a
// result that filters to itself.
func FuzzCopiedOptions(f *testing.F) {
	f.Add([]byte{7, 7, 4, 0, 0, 0, 0, 1, 131, 7, 4, 192, 0, 2, 1, 0})
	f.Add([]byte{148, 4, 0, 0, 68, 8, 5, 0, 0, 0, 0, 0})
	f.Add([]byte{137, 2, 1, 0, 131})
	f.Fuzz(func(t *testing.T, opts []byte) {
		got, err := CopiedOptions(nil, opts)
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("error %v with output %x", err, got)
			}
			return
		}
		if len(got)%4 != 0 || len(got) > len(opts)+3 {
			t.Fatalf("%d bytes of output from %d", len(got), len(opts))
		}
		for i := 0; i < len(got) && got[i] != 0; i += int(got[i+1]) {
			if got[i]&0x80 == 0 {
				t.Fatalf("option type %d without the copied flag kept", got[i])
			}
		}
		again, err := CopiedOptions(nil, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("filtering %x again gives %x, %v", got, again, err)
		}
	})
}

// FuzzPlan checks Plan's pieces for any sizes: contiguous cover of the
// payload, each fragment within the MTU, non-final pieces a nonzero
// multiple of 8, offsets within the 13-bit field.
func FuzzPlan(f *testing.F) {
	f.Add(uint16(65000), uint16(1500), uint8(20), uint8(20))
	f.Add(uint16(100), uint16(68), uint8(60), uint8(24))
	f.Add(uint16(9000), uint16(1280), uint8(48), uint8(48))
	f.Fuzz(func(t *testing.T, n, mtu uint16, first, rest uint8) {
		pieces, err := Plan(nil, int(n)+int(n>>1), int(mtu), int(first), int(rest))
		if err != nil {
			return
		}
		total := int(n) + int(n>>1)
		next := 0
		for i, p := range pieces {
			hl := int(rest)
			if i == 0 {
				hl = int(first)
			}
			last := i == len(pieces)-1
			if p.Offset != next || p.Offset > maxOffset || p.More == last ||
				hl+p.Len > int(mtu) || (!last && (p.Len == 0 || p.Len%8 != 0)) {
				t.Fatalf("Plan(%d, %d, %d, %d): bad piece %d %+v", total, mtu, first, rest, i, p)
			}
			next += p.Len
		}
		if next != total {
			t.Fatalf("Plan(%d, %d, %d, %d): pieces cover %d bytes", total, mtu, first, rest, next)
		}
	})
}
