package fragment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("192.0.2.2")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
)

func key4(id uint32) Key { return Key{Family: IPv4, Src: src4, Dst: dst4, Proto: 17, ID: id} }
func key6(id uint32) Key { return Key{Family: IPv6, Src: src6, Dst: dst6, ID: id} }

// testHeader returns a fake header of n bytes whose bytes depend on id, so
// tests can tell which fragment's header was kept.
func testHeader(n int, id uint32) []byte {
	h := make([]byte, n)
	for i := range h {
		h[i] = byte(id) + byte(i)
	}
	return h
}

// datagram is a reference datagram and its fragments.
type datagram struct {
	key    Key
	header []byte
	data   []byte
	frags  []Packet
}

// hdrLens returns the header lengths of the first and later fragments used
// by these tests: IPv4 with options only in the first, IPv6 with a fixed
// header and a Fragment header.
func hdrLens(f Family) (first, rest int) {
	if f == IPv4 {
		return 28, 20
	}
	return 48, 48
}

// makeDatagram builds a random datagram of n bytes fragmented for mtu.
func makeDatagram(t testing.TB, rng *rand.Rand, key Key, n, mtu int) datagram {
	t.Helper()
	first, rest := hdrLens(key.Family)
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	d := datagram{key: key, header: testHeader(first, key.ID), data: data}
	pieces, err := Plan(nil, n, mtu, first, rest)
	if err != nil {
		t.Fatalf("Plan(%d, %d): %v", n, mtu, err)
	}
	for _, p := range pieces {
		h := testHeader(rest, key.ID+1)
		if p.Offset == 0 {
			h = d.header
		}
		d.frags = append(d.frags, Packet{Offset: p.Offset, More: p.More, Header: h, Data: data[p.Offset : p.Offset+p.Len]})
	}
	return d
}

// mustQueue processes p and fails unless it was queued without completing.
func mustQueue(t *testing.T, r *Reassembler, k Key, p Packet) {
	t.Helper()
	if _, done, err := r.Process(k, p); err != nil || done {
		t.Fatalf("Process(off %d len %d more %v) = done %v, %v; want queued", p.Offset, len(p.Data), p.More, done, err)
	}
}

// checkDone verifies a completed datagram against its reference.
func checkDone(t *testing.T, want datagram, got Datagram) {
	t.Helper()
	if !bytes.Equal(got.Data, want.data) {
		t.Fatalf("key %v: reassembled %d bytes differ from the %d sent", want.key, len(got.Data), len(want.data))
	}
	if !bytes.Equal(got.Header, want.header) {
		t.Fatalf("key %v: header %x, want the first fragment's %x", want.key, got.Header, want.header)
	}
}

type fragRef struct {
	d int // index of the datagram
	p Packet
}

// TestOrders reassembles many datagrams of both families whose fragments
// arrive in order, in reverse, shuffled, and interleaved with each other.
func TestOrders(t *testing.T) {
	orders := []string{"in-order", "reverse", "shuffled", "interleaved"}
	for _, fam := range []Family{IPv4, IPv6} {
		for _, order := range orders {
			t.Run(fmt.Sprintf("v%d/%s", fam, order), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(fam), uint64(len(order))))
					r := New(Config{})
					defer r.Close()
					var ds []datagram
					var all []fragRef
					for i := range 60 {
						k := key4(uint32(i))
						mtu := []int{68, 576, 1500, 9000}[i%4]
						if fam == IPv6 {
							k = key6(uint32(i) << 16)
							mtu = []int{1280, 1500, 9000}[i%3]
						}
						d := makeDatagram(t, rng, k, 1+rng.IntN(20000), mtu)
						ds = append(ds, d)
						for _, p := range d.frags {
							all = append(all, fragRef{i, p})
						}
					}
					switch order {
					case "reverse":
						for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
							all[i], all[j] = all[j], all[i]
						}
					case "shuffled":
						// Shuffle within each datagram only.
						for start := 0; start < len(all); {
							end := start + len(ds[all[start].d].frags)
							rng.Shuffle(end-start, func(i, j int) { all[start+i], all[start+j] = all[start+j], all[start+i] })
							start = end
						}
					case "interleaved":
						rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
					}
					left := make([]int, len(ds))
					for i, d := range ds {
						left[i] = len(d.frags)
					}
					completed := 0
					for _, f := range all {
						d := ds[f.d]
						left[f.d]--
						got, done, err := r.Process(d.key, f.p)
						if err != nil {
							t.Fatalf("Process: %v", err)
						}
						if done != (left[f.d] == 0) {
							t.Fatalf("datagram %d: done = %v with %d fragments left", f.d, done, left[f.d])
						}
						if done {
							checkDone(t, d, got)
							completed++
						}
					}
					if completed != len(ds) {
						t.Fatalf("%d datagrams completed, want %d", completed, len(ds))
					}
					st := r.Stats()
					if st.ReasmOKs != uint64(len(ds)) || st.ReasmReqds != uint64(len(all)) || st.ReasmFails != 0 {
						t.Fatalf("stats %+v, want %d OKs from %d fragments", st, len(ds), len(all))
					}
					if r.Pending() != 0 || r.MemoryUsed() != 0 {
						t.Fatalf("after completion: %d pending, %d bytes charged", r.Pending(), r.MemoryUsed())
					}
				})
			})
		}
	}
}

// TestDuplicates sends every fragment twice, in random order; exact
// duplicates are ignored and the datagram still completes once.
func TestDuplicates(t *testing.T) {
	for _, fam := range []Family{IPv4, IPv6} {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(fam)))
			r := New(Config{})
			defer r.Close()
			k := key4(9)
			if fam == IPv6 {
				k = key6(9)
			}
			d := makeDatagram(t, rng, k, 12000, 1500)
			seq := append(append([]Packet{}, d.frags...), d.frags...)
			// Keep one copy of the last-to-arrive fragment at the end so
			// completion happens last; duplicates of it come before.
			rng.Shuffle(len(seq)-1, func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
			lastIdx := len(seq) - 1
			dupOfLast := -1
			for i := range lastIdx {
				if seq[i].Offset == seq[lastIdx].Offset {
					dupOfLast = i
				}
			}
			seq[dupOfLast], seq[lastIdx-1] = seq[lastIdx-1], seq[dupOfLast]
			seq[lastIdx-1], seq[lastIdx] = seq[lastIdx], seq[lastIdx-1]
			// Now the two copies of one fragment are last; the one before
			// completes, the final one is a new datagram's first fragment.
			for i, p := range seq[:lastIdx] {
				got, done, err := r.Process(k, p)
				if err != nil {
					t.Fatalf("fragment %d: %v", i, err)
				}
				if done != (i == lastIdx-1) {
					t.Fatalf("fragment %d of %d: done = %v", i, lastIdx, done)
				}
				if done {
					checkDone(t, d, got)
				}
			}
			if st := r.Stats(); st.Duplicates != uint64(len(d.frags)-1) || st.ReasmFails != 0 || st.ReasmOKs != 1 {
				t.Fatalf("stats %+v, want %d duplicates", st, len(d.frags)-1)
			}
		})
	}
}

// TestOverlap covers every overlap shape for both families: the datagram
// is discarded, and later fragments of it are dropped until its timeout.
func TestOverlap(t *testing.T) {
	data := make([]byte, 64)
	for i := range data {
		data[i] = byte(i)
	}
	other := bytes.Repeat([]byte{0xee}, 64)
	type frag struct {
		off, end int
		more     bool
		bytes    []byte // data source; nil means data
	}
	cases := []struct {
		name     string
		have     []frag
		overlaps frag
	}{
		{"partial overlap of the start", []frag{{16, 32, true, nil}}, frag{8, 24, true, nil}},
		{"partial overlap of the end", []frag{{16, 32, true, nil}}, frag{24, 40, true, nil}},
		{"contained", []frag{{16, 48, true, nil}}, frag{24, 32, true, nil}},
		{"containing", []frag{{16, 24, true, nil}}, frag{8, 40, true, nil}},
		{"same offset, shorter", []frag{{16, 40, true, nil}}, frag{16, 24, true, nil}},
		{"same offset, longer", []frag{{16, 24, true, nil}}, frag{16, 40, true, nil}},
		{"same range, different data", []frag{{16, 24, true, nil}}, frag{16, 24, true, other}},
		{"spanning two", []frag{{8, 16, true, nil}, {24, 32, true, nil}}, frag{8, 32, true, nil}},
		{"last fragment overlapping", []frag{{16, 32, true, nil}}, frag{24, 64, false, nil}},
		{"first fragment overlapping", []frag{{0, 16, true, nil}}, frag{0, 24, true, nil}},
	}
	for _, fam := range []Family{IPv4, IPv6} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("v%d/%s", fam, c.name), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var timeouts int
					cfg := IPv4Config()
					k := key4(1)
					if fam == IPv6 {
						cfg, k = IPv6Config(), key6(1)
					}
					cfg.OnTimeout = func(Expired) { timeouts++ }
					r := New(cfg)
					defer r.Close()
					pkt := func(f frag) Packet {
						src := data
						if f.bytes != nil {
							src = f.bytes
						}
						return Packet{Offset: f.off, More: f.more, Header: testHeader(20, 0), Data: src[f.off:f.end]}
					}
					mustQueue(t, r, k, Packet{Offset: 0, More: true, Header: testHeader(20, 0), Data: data[:8]})
					for _, f := range c.have {
						if f.off == 0 {
							continue
						}
						mustQueue(t, r, k, pkt(f))
					}
					if c.have[0].off == 0 {
						// The first fragment already is data[:8]; widen it.
						mustQueue(t, r, k, pkt(frag{8, c.have[0].end, true, nil}))
					}
					if _, done, err := r.Process(k, pkt(c.overlaps)); !errors.Is(err, ErrOverlap) || done {
						t.Fatalf("overlapping fragment: done %v, err %v; want ErrOverlap", done, err)
					}
					// Every later fragment of the datagram is dropped, even
					// ones that would have completed it.
					for _, p := range []Packet{pkt(frag{48, 64, false, nil}), pkt(frag{0, 8, true, nil})} {
						if _, _, err := r.Process(k, p); !errors.Is(err, ErrDiscarded) {
							t.Fatalf("straggler: %v, want ErrDiscarded", err)
						}
					}
					st := r.Stats()
					if st.Overlaps != 1 || st.ReasmFails != 3 || st.ReasmOKs != 0 {
						t.Fatalf("stats %+v", st)
					}
					if r.MemoryUsed() != entryOverhead {
						t.Fatalf("discarded datagram still charges %d bytes", r.MemoryUsed())
					}
					// Its timeout ends the memory of it without an ICMP.
					time.Sleep(cfg.Timeout)
					synctest.Wait()
					if timeouts != 0 || r.Pending() != 0 {
						t.Fatalf("after the timeout: %d OnTimeout calls, %d pending", timeouts, r.Pending())
					}
					if st := r.Stats(); st.ReasmTimeout != 0 {
						t.Fatalf("a discarded datagram counted as timed out: %+v", st)
					}
					// The key is usable again.
					mustQueue(t, r, k, pkt(frag{0, 32, true, nil}))
					got, done, err := r.Process(k, pkt(frag{32, 64, false, nil}))
					if err != nil || !done || !bytes.Equal(got.Data, data) {
						t.Fatalf("new datagram after the timeout: done %v, err %v", done, err)
					}
				})
			})
		}
	}
}

// TestTimeout checks the expiry callback: called once at the timeout with
// the first fragment if it arrived, not called otherwise.
func TestTimeout(t *testing.T) {
	for _, fam := range []Family{IPv4, IPv6} {
		for _, withFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("v%d/first=%v", fam, withFirst), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var mu sync.Mutex
					var got []Expired
					cfg := IPv4Config()
					k := key4(3)
					if fam == IPv6 {
						cfg, k = IPv6Config(), key6(3)
					}
					cfg.OnTimeout = func(x Expired) {
						mu.Lock()
						got = append(got, x)
						mu.Unlock()
					}
					r := New(cfg)
					defer r.Close()
					hdr := testHeader(24, 3)
					first := bytes.Repeat([]byte{0xab}, 16)
					wantHdr, wantFirst := bytes.Clone(hdr), bytes.Clone(first)
					mustQueue(t, r, k, Packet{Offset: 32, More: true, Data: make([]byte, 16)})
					if withFirst {
						time.Sleep(time.Second) // the timeout counts from the first fragment to arrive
						mustQueue(t, r, k, Packet{Offset: 0, More: true, Header: hdr, Data: first})
						hdr[0] ^= 0xff // the reassembler keeps its own copy
						first[0] ^= 0xff
					}
					deadline := cfg.Timeout
					if withFirst {
						deadline -= time.Second
					}
					time.Sleep(deadline - time.Nanosecond)
					synctest.Wait()
					mu.Lock()
					n := len(got)
					mu.Unlock()
					if n != 0 || r.Pending() != 1 {
						t.Fatalf("before the timeout: %d expiries, %d pending", n, r.Pending())
					}
					time.Sleep(time.Nanosecond)
					synctest.Wait()
					if r.Pending() != 0 || r.MemoryUsed() != 0 {
						t.Fatalf("after the timeout: %d pending, %d bytes", r.Pending(), r.MemoryUsed())
					}
					mu.Lock()
					defer mu.Unlock()
					if !withFirst {
						if len(got) != 0 {
							t.Fatalf("OnTimeout called without the first fragment: %+v", got)
						}
					} else {
						if len(got) != 1 || got[0].Key != k || !bytes.Equal(got[0].Header, wantHdr) || !bytes.Equal(got[0].Data, wantFirst) {
							t.Fatalf("expiries %+v, want one for %v with the first fragment", got, k)
						}
					}
					if st := r.Stats(); st.ReasmTimeout != 1 || st.ReasmFails != 1 {
						t.Fatalf("stats %+v", st)
					}
				})
			})
		}
	}
}

// TestTimeoutCallbackReenters checks OnTimeout runs without the lock held:
// it may call back into the Reassembler.
func TestTimeoutCallbackReenters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r *Reassembler
		calls := 0
		r = New(Config{Timeout: time.Second, OnTimeout: func(x Expired) {
			calls++
			_ = r.Stats()
			_, _, _ = r.Process(x.Key, Packet{Offset: 0, More: true, Data: make([]byte, 8)})
		}})
		defer r.Close()
		mustQueue(t, r, key4(1), Packet{Offset: 0, More: true, Data: make([]byte, 8)})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if calls != 1 || r.Pending() != 1 {
			t.Fatalf("%d calls, %d pending; want 1 and the re-queued datagram", calls, r.Pending())
		}
	})
}

// TestExpiryInProcess checks that Process itself expires overdue datagrams
// (reporting them after unlocking), independent of the timer.
func TestExpiryInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var expired []Key
		r := New(Config{Timeout: time.Second, OnTimeout: func(x Expired) { expired = append(expired, x.Key) }})
		defer r.Close()
		for i := range 5 {
			mustQueue(t, r, key4(uint32(i)), Packet{Offset: 0, More: true, Data: make([]byte, 8)})
			time.Sleep(300 * time.Millisecond)
			synctest.Wait()
		}
		// At 1.5 s the first two (created at 0 and 0.3 s) expired by timer.
		if len(expired) != 2 || expired[0] != key4(0) || expired[1] != key4(1) {
			t.Fatalf("expired %v, want keys 0 and 1 oldest first", expired)
		}
	})
}

// TestMemoryLimit checks eviction of the oldest datagrams and that the
// limit is never exceeded.
func TestMemoryLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		const limit = 64 << 10
		r := New(Config{MemoryLimit: limit})
		defer r.Close()
		// Each datagram: 20000 bytes, all but its last fragment sent.
		var ds []datagram
		for i := range 8 {
			d := makeDatagram(t, rng, key4(uint32(i)), 20000, 1500)
			ds = append(ds, d)
			for _, p := range d.frags[:len(d.frags)-1] {
				mustQueue(t, r, d.key, p)
				if m := r.MemoryUsed(); m > limit {
					t.Fatalf("memory %d exceeds the limit %d", m, limit)
				}
			}
			time.Sleep(time.Millisecond)
		}
		st := r.Stats()
		if st.Evictions == 0 || st.ReasmFails != st.Evictions {
			t.Fatalf("stats %+v, want evictions", st)
		}
		// The survivors are the newest datagrams: eviction takes the oldest.
		r.mu.Lock()
		var present []bool
		for _, d := range ds {
			present = append(present, r.pending[d.key] != nil)
		}
		r.mu.Unlock()
		for i := 1; i < len(present); i++ {
			if present[i-1] && !present[i] {
				t.Fatalf("pending after eviction %v: an older datagram outlived a newer one", present)
			}
		}
		// The newest datagram survives and completes; the oldest was
		// evicted, so its last fragment starts a new, incomplete datagram.
		last := ds[len(ds)-1]
		got, done, err := r.Process(last.key, last.frags[len(last.frags)-1])
		if err != nil || !done {
			t.Fatalf("newest datagram: done %v, %v", done, err)
		}
		checkDone(t, last, got)
		mustQueue(t, r, ds[0].key, ds[0].frags[len(ds[0].frags)-1])

		// A datagram that cannot fit even alone is refused.
		small := New(Config{MemoryLimit: 4096})
		defer small.Close()
		big := makeDatagram(t, rng, key4(100), 20000, 1500)
		var errs []error
		for _, p := range big.frags {
			if _, _, err := small.Process(big.key, p); err != nil {
				errs = append(errs, err)
			}
			if m := small.MemoryUsed(); m > 4096 {
				t.Fatalf("memory %d exceeds the limit 4096", m)
			}
		}
		if len(errs) == 0 || !errors.Is(errs[0], ErrNoMemory) {
			t.Fatalf("errors %v, want ErrNoMemory", errs)
		}
		if tiny := New(Config{MemoryLimit: 10}); true {
			if _, _, err := tiny.Process(key4(1), Packet{Offset: 8, Data: make([]byte, 8)}); !errors.Is(err, ErrNoMemory) {
				t.Fatalf("limit below the overhead: %v, want ErrNoMemory", err)
			}
			tiny.Close()
		}
	})
}

// TestMalformed checks the per-fragment validation errors.
func TestMalformed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{})
		defer r.Close()
		b8 := make([]byte, 8)
		cases := []struct {
			name string
			key  Key
			p    Packet
			want error
		}{
			{"negative offset", key4(1), Packet{Offset: -8, More: true, Data: b8}, ErrMalformed},
			{"offset not a multiple of 8", key6(1), Packet{Offset: 12, More: true, Data: b8}, ErrMalformed},
			{"offset beyond 13 bits", key6(1), Packet{Offset: maxOffset + 8, Data: b8}, ErrMalformed},
			{"empty non-final", key4(1), Packet{Offset: 8, More: true}, ErrMalformed},
			{"empty final", key6(1), Packet{Offset: 8}, ErrMalformed},
			{"unaligned non-final v4", key4(1), Packet{Offset: 0, More: true, Data: make([]byte, 12)}, ErrUnaligned},
			{"unaligned non-final v6", key6(1), Packet{Offset: 8, More: true, Data: make([]byte, 9)}, ErrUnaligned},
			{"v6 end beyond 65535", key6(1), Packet{Offset: 65528, Data: b8}, ErrTooBig},
			{"v4 header and end beyond 65535", key4(1), Packet{Offset: 65512, Header: make([]byte, 20), Data: b8}, ErrTooBig},
		}
		for _, c := range cases {
			if _, done, err := r.Process(c.key, c.p); !errors.Is(err, c.want) || done {
				t.Errorf("%s: done %v, %v; want %v", c.name, done, err, c.want)
			}
		}
		if r.Pending() != 0 {
			t.Fatalf("malformed fragments created %d datagrams", r.Pending())
		}
		if st := r.Stats(); st.ReasmFails != uint64(len(cases)) || st.ReasmReqds != uint64(len(cases)) {
			t.Fatalf("stats %+v", st)
		}
		// The RFC 8200 §4.5 limit is inclusive: a fragment ending at 65535 is fine.
		mustQueue(t, r, key6(2), Packet{Offset: 65528, Data: make([]byte, 7)})
	})
}

// TestOversize checks the limit on the reassembled datagram with the first
// fragment's headers.
func TestOversize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{})
		defer r.Close()
		// IPv4: a 60-byte first header with 65480 bytes of data is 65540.
		mustQueue(t, r, key4(1), Packet{Offset: 65472, Header: make([]byte, 20), Data: make([]byte, 8)})
		if _, _, err := r.Process(key4(1), Packet{Offset: 0, More: true, Header: make([]byte, 60), Data: make([]byte, 8)}); !errors.Is(err, ErrOversize) {
			t.Fatalf("IPv4: %v, want ErrOversize", err)
		}
		// IPv6: 16 bytes of unfragmentable extension headers plus 65528
		// bytes of data exceed a 65535-byte Payload Length.
		mustQueue(t, r, key6(1), Packet{Offset: 0, More: true, Header: make([]byte, 40+16+8), Data: make([]byte, 8)})
		if _, _, err := r.Process(key6(1), Packet{Offset: 65520, Header: make([]byte, 48), Data: make([]byte, 8)}); !errors.Is(err, ErrOversize) {
			t.Fatalf("IPv6: %v, want ErrOversize", err)
		}
		// Exactly at the limit is fine.
		mustQueue(t, r, key6(2), Packet{Offset: 0, More: true, Header: make([]byte, 48+8), Data: make([]byte, 8)})
		mustQueue(t, r, key6(2), Packet{Offset: 65520, Data: make([]byte, 7)})
	})
}

// TestLengthConflict checks disagreements about where the datagram ends.
func TestLengthConflict(t *testing.T) {
	b16 := make([]byte, 16)
	cases := []struct {
		name  string
		have  []Packet
		later Packet
	}{
		{"two different last fragments", []Packet{{Offset: 32, Data: b16}}, Packet{Offset: 64, Data: b16}},
		{"data beyond the end", []Packet{{Offset: 32, Data: b16}}, Packet{Offset: 48, More: true, Data: b16}},
		{"last ends before data", []Packet{{Offset: 64, More: true, Data: b16}}, Packet{Offset: 32, Data: b16}},
	}
	for _, c := range cases {
		synctest.Test(t, func(t *testing.T) {
			r := New(Config{})
			defer r.Close()
			for _, p := range c.have {
				mustQueue(t, r, key6(1), p)
			}
			if _, _, err := r.Process(key6(1), c.later); !errors.Is(err, ErrLengthConflict) {
				t.Fatalf("%s: %v, want ErrLengthConflict", c.name, err)
			}
			if _, _, err := r.Process(key6(1), Packet{Offset: 0, More: true, Data: b16}); !errors.Is(err, ErrDiscarded) {
				t.Fatalf("%s: straggler: %v, want ErrDiscarded", c.name, err)
			}
		})
	}
}

// TestAtomic checks that atomic fragments complete at once and leave a
// pending datagram with the same key alone (RFC 6946).
func TestAtomic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(IPv6Config())
		defer r.Close()
		k := key6(77)
		part := bytes.Repeat([]byte{1}, 16)
		mustQueue(t, r, k, Packet{Offset: 0, More: true, Header: testHeader(48, 1), Data: part})
		atomic := []byte("atomic payload")
		got, done, err := r.Process(k, Packet{Offset: 0, Header: testHeader(48, 2), Data: atomic})
		if err != nil || !done || !bytes.Equal(got.Data, atomic) || !bytes.Equal(got.Header, testHeader(48, 2)) {
			t.Fatalf("atomic fragment: %q done %v err %v", got.Data, done, err)
		}
		// An empty atomic fragment (e.g. No Next Header) is a datagram too.
		if _, done, err := r.Process(k, Packet{Offset: 0, Header: testHeader(48, 2)}); err != nil || !done {
			t.Fatalf("empty atomic fragment: done %v, %v", done, err)
		}
		got, done, err = r.Process(k, Packet{Offset: 16, Data: []byte("tail")})
		if err != nil || !done || !bytes.Equal(got.Data, append(part, "tail"...)) || !bytes.Equal(got.Header, testHeader(48, 1)) {
			t.Fatalf("pending datagram after the atomic ones: %q done %v err %v", got.Data, done, err)
		}
		if st := r.Stats(); st.Atomic != 2 || st.ReasmOKs != 3 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestKeysKeptApart interleaves datagrams with the same identification but
// different source, destination, protocol or family.
func TestKeysKeptApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		r := New(Config{})
		defer r.Close()
		keys := []Key{
			key4(5),
			{Family: IPv4, Src: netip.MustParseAddr("192.0.2.9"), Dst: dst4, Proto: 17, ID: 5},
			{Family: IPv4, Src: src4, Dst: netip.MustParseAddr("192.0.2.9"), Proto: 17, ID: 5},
			{Family: IPv4, Src: src4, Dst: dst4, Proto: 6, ID: 5},
			key6(5),
			{Family: IPv6, Src: netip.MustParseAddr("fe80::1%eth0"), Dst: netip.MustParseAddr("fe80::2%eth0"), ID: 5},
			{Family: IPv6, Src: netip.MustParseAddr("fe80::1%eth1"), Dst: netip.MustParseAddr("fe80::2%eth1"), ID: 5},
		}
		var ds []datagram
		var all []fragRef
		for i, k := range keys {
			d := makeDatagram(t, rng, k, 5000+i*8, 1280)
			ds = append(ds, d)
			for _, p := range d.frags {
				all = append(all, fragRef{i, p})
			}
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		completed := 0
		for _, f := range all {
			got, done, err := r.Process(ds[f.d].key, f.p)
			if err != nil {
				t.Fatalf("key %v: %v", ds[f.d].key, err)
			}
			if done {
				checkDone(t, ds[f.d], got)
				completed++
			}
		}
		if completed != len(keys) {
			t.Fatalf("%d of %d datagrams completed", completed, len(keys))
		}
	})
}

// TestMaxFragments checks the per-datagram fragment bound.
func TestMaxFragments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{MaxFragments: 4})
		defer r.Close()
		for i := range 4 {
			mustQueue(t, r, key4(1), Packet{Offset: i * 16, More: true, Data: make([]byte, 8)})
		}
		if _, _, err := r.Process(key4(1), Packet{Offset: 128, Data: make([]byte, 8)}); !errors.Is(err, ErrTooManyFragments) {
			t.Fatalf("fifth fragment: %v, want ErrTooManyFragments", err)
		}
	})
}

// TestHeadroom checks Datagram.Buf carries the configured headroom.
func TestHeadroom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{Headroom: 34})
		defer r.Close()
		mustQueue(t, r, key4(1), Packet{Offset: 8, Data: []byte("world")})
		got, done, err := r.Process(key4(1), Packet{Offset: 0, More: true, Data: []byte("hello, w")})
		if err != nil || !done || string(got.Data) != "hello, wworld" || len(got.Buf) != 34+13 || &got.Buf[34] != &got.Data[0] {
			t.Fatalf("got %q (buf %d), done %v, %v", got.Data, len(got.Buf), done, err)
		}
	})
}

// TestClose checks Close drops everything and stops the timer.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		r := New(Config{Timeout: time.Second, OnTimeout: func(Expired) { calls++ }})
		mustQueue(t, r, key4(1), Packet{Offset: 0, More: true, Data: make([]byte, 8)})
		r.Close()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if calls != 0 || r.Pending() != 0 || r.MemoryUsed() != 0 {
			t.Fatalf("after Close: %d calls, %d pending, %d bytes", calls, r.Pending(), r.MemoryUsed())
		}
		if _, _, err := r.Process(key4(1), Packet{Offset: 8, Data: make([]byte, 8)}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Process after Close: %v", err)
		}
	})
}

// TestConcurrent runs many goroutines against one Reassembler (for -race),
// with shared keys, timeouts and memory pressure.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		expiries := 0
		r := New(Config{Timeout: 50 * time.Millisecond, MemoryLimit: 256 << 10, OnTimeout: func(Expired) {
			mu.Lock()
			expiries++
			mu.Unlock()
		}})
		defer r.Close()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 99))
				for i := range 40 {
					k := key4(uint32(g<<8 | i)) // reusing an ID while a lost datagram is pending would mix them, as in IP
					d := makeDatagram(t, rng, k, 1+rng.IntN(30000), 1500)
					frags := d.frags
					rng.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
					if rng.IntN(4) == 0 {
						frags = frags[1:] // lose one: it will time out
					}
					for _, p := range frags {
						got, done, err := r.Process(k, p)
						if done && !bytes.Equal(got.Data, d.data) {
							t.Errorf("goroutine %d: corrupted datagram", g)
						}
						_ = err // evictions and leftovers of lost datagrams are expected
					}
					if m := r.MemoryUsed(); m > 256<<10 {
						t.Errorf("memory %d over the limit", m)
					}
					_ = r.Stats()
					time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if r.Pending() != 0 || r.MemoryUsed() != 0 {
			t.Fatalf("after all timeouts: %d pending, %d bytes", r.Pending(), r.MemoryUsed())
		}
		st := r.Stats()
		if st.ReasmOKs == 0 || st.ReasmTimeout == 0 {
			t.Fatalf("stats %+v: want completions and timeouts", st)
		}
	})
}

// BenchmarkReassemble64K reassembles a 65000-byte datagram from fragments
// for a 1500-byte MTU, in order and in reverse.
func BenchmarkReassemble64K(b *testing.B) {
	for _, order := range []string{"in-order", "reverse"} {
		b.Run(order, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			d := makeDatagram(b, rng, key4(1), 65000, 1500)
			frags := d.frags
			if order == "reverse" {
				frags = make([]Packet, len(d.frags))
				for i, p := range d.frags {
					frags[len(frags)-1-i] = p
				}
			}
			r := New(Config{})
			defer r.Close()
			b.SetBytes(int64(len(d.data)))
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range frags {
					if _, _, err := r.Process(d.key, p); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
