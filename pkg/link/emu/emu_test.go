package emu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

var _ link.Endpoint = (*Port)(nil)
var _ link.Counter = (*Port)(nil)

// frameTo builds an Ethernet frame of size bytes carrying seq.
func frameTo(dst, src wire.MAC, seq uint32, size int) []byte {
	f := make([]byte, size)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x88, 0xb5 // IEEE local experimental EtherType
	binary.BigEndian.PutUint32(f[14:], seq)
	return f
}

type arrival struct {
	at    time.Duration // since the collector's start
	frame []byte
}

// collector records what a port delivers and when.
type collector struct {
	start time.Time
	mu    sync.Mutex
	got   []arrival
}

func collect(p *Port) *collector {
	c := &collector{start: time.Now()}
	p.Attach(link.DispatcherFunc(func(f []byte) {
		c.mu.Lock()
		c.got = append(c.got, arrival{time.Since(c.start), f})
		c.mu.Unlock()
	}))
	return c
}

func (c *collector) arrivals() []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func (c *collector) seqs() []uint32 {
	var s []uint32
	for _, a := range c.arrivals() {
		s = append(s, binary.BigEndian.Uint32(a.frame[14:]))
	}
	return s
}

func write(t *testing.T, p *Port, frames ...[]byte) {
	t.Helper()
	if n, err := p.WritePackets(frames); n != len(frames) || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
}

// pair makes two ports A→B with the given Out impairments on A.
func pair(seed uint64, out Impairments) (a, b *Port, cb *collector) {
	n := NewNetwork(seed)
	a = n.NewPort(PortConfig{Out: out})
	b = n.NewPort(PortConfig{})
	return a, b, collect(b)
}

// sendMany writes count frames A→B in batches, letting the bubble settle
// between batches so the receive queue never overflows.
func sendMany(t *testing.T, a, b *Port, count int) {
	t.Helper()
	for i := 0; i < count; {
		batch := make([][]byte, 0, 100)
		for ; i < count && len(batch) < 100; i++ {
			batch = append(batch, frameTo(b.MAC(), a.MAC(), uint32(i), 64))
		}
		write(t, a, batch...)
		synctest.Wait()
	}
}

func TestDelayExactInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(1, Impairments{Delay: 10 * time.Millisecond})
		defer a.Close()
		defer b.Close()
		write(t, a, frameTo(b.MAC(), a.MAC(), 0, 64))
		time.Sleep(3 * time.Millisecond)
		write(t, a, frameTo(b.MAC(), a.MAC(), 1, 64))
		time.Sleep(time.Second)
		got := cb.arrivals()
		if len(got) != 2 || got[0].at != 10*time.Millisecond || got[1].at != 13*time.Millisecond {
			t.Fatalf("arrivals %v, want at 10ms and 13ms", got)
		}
	})
}

func TestInDirectionDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		a := n.NewPort(PortConfig{Out: Impairments{Delay: 2 * time.Millisecond}})
		b := n.NewPort(PortConfig{In: Impairments{Delay: 7 * time.Millisecond}})
		defer n.Close()
		cb := collect(b)
		write(t, a, frameTo(b.MAC(), a.MAC(), 0, 64))
		time.Sleep(time.Second)
		if got := cb.arrivals(); len(got) != 1 || got[0].at != 9*time.Millisecond {
			t.Fatalf("arrivals %v, want one at 2ms out + 7ms in", got)
		}
	})
}

func TestJitterBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(3, Impairments{Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond})
		defer a.Close()
		defer b.Close()
		for i := range 200 {
			write(t, a, frameTo(b.MAC(), a.MAC(), uint32(i), 64))
		}
		time.Sleep(time.Second)
		got := cb.arrivals()
		if len(got) != 200 {
			t.Fatalf("%d arrivals", len(got))
		}
		distinct := map[time.Duration]bool{}
		for _, a := range got {
			if a.at < 8*time.Millisecond || a.at > 12*time.Millisecond {
				t.Fatalf("arrival at %v outside 10ms±2ms", a.at)
			}
			distinct[a.at] = true
		}
		if len(distinct) < 50 {
			t.Fatalf("only %d distinct delays: jitter not applied", len(distinct))
		}
	})
}

func TestRateSerialisation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 Mbit/s: a 1250-byte frame takes exactly 10 ms to serialise.
		a, b, cb := pair(1, Impairments{Rate: 1_000_000, Delay: 5 * time.Millisecond, Limit: 3})
		defer a.Close()
		defer b.Close()
		for i := range 4 {
			write(t, a, frameTo(b.MAC(), a.MAC(), uint32(i), 1250))
		}
		time.Sleep(15 * time.Millisecond) // frame 0 has left the queue
		write(t, a, frameTo(b.MAC(), a.MAC(), 4, 1250))
		time.Sleep(time.Second)
		got := cb.arrivals()
		want := []time.Duration{15, 25, 35, 45}
		if len(got) != len(want) {
			t.Fatalf("%d arrivals, want %d", len(got), len(want))
		}
		for i, w := range want {
			if got[i].at != w*time.Millisecond {
				t.Fatalf("frame %d at %v, want %v", i, got[i].at, w*time.Millisecond)
			}
		}
		if s := cb.seqs(); !slices.Equal(s, []uint32{0, 1, 2, 4}) {
			t.Fatalf("sequence %v: the 4th frame should be tail-dropped", s)
		}
		if c := a.ImpairStats(Out); c.QueueDropped != 1 {
			t.Fatalf("queue drops %d, want 1", c.QueueDropped)
		}
		if s := a.Stats(); s.TxDropped != 1 || s.TxFrames != 5 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func lossPattern(t *testing.T, seed uint64) []uint32 {
	var seqs []uint32
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(seed, Impairments{Loss: 0.3})
		defer a.Close()
		defer b.Close()
		sendMany(t, a, b, 300)
		seqs = cb.seqs()
	})
	return seqs
}

func TestSeedReproducible(t *testing.T) {
	p1, p2, p3 := lossPattern(t, 42), lossPattern(t, 42), lossPattern(t, 43)
	if !slices.Equal(p1, p2) {
		t.Fatal("the same seed gave different loss patterns")
	}
	if slices.Equal(p1, p3) {
		t.Fatal("different seeds gave the same loss pattern")
	}
}

func TestDerivedMACs(t *testing.T) {
	n1, n2 := NewNetwork(7), NewNetwork(7)
	defer n1.Close()
	defer n2.Close()
	seen := map[wire.MAC]bool{}
	for range 20 {
		m1, m2 := n1.NewPort(PortConfig{}).MAC(), n2.NewPort(PortConfig{}).MAC()
		if m1 != m2 {
			t.Fatalf("same seed, different MACs %v %v", m1, m2)
		}
		if m1.IsMulticast() || m1[0]&2 == 0 || seen[m1] {
			t.Fatalf("MAC %v: want unique, unicast, locally administered", m1)
		}
		seen[m1] = true
	}
	given := wire.MAC{0x02, 0, 0, 0, 0, 9}
	if m := n1.NewPort(PortConfig{MAC: given}).MAC(); m != given {
		t.Fatalf("configured MAC ignored: %v", m)
	}
}

func TestLossRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(5, Impairments{Loss: 0.1})
		defer a.Close()
		defer b.Close()
		const n = 10000
		sendMany(t, a, b, n)
		lost := n - len(cb.arrivals())
		// Binomial(10000, 0.1): mean 1000, sd 30; ±5 sd cannot fail by chance.
		if lost < 850 || lost > 1150 {
			t.Fatalf("lost %d of %d at p=0.1", lost, n)
		}
		if c := a.ImpairStats(Out); c.Lost != uint64(lost) || a.Stats().TxDropped != uint64(lost) {
			t.Fatalf("counted %d lost, %d tx dropped; saw %d", c.Lost, a.Stats().TxDropped, lost)
		}
	})
}

func TestDuplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(6, Impairments{Duplicate: 1})
		defer a.Close()
		defer b.Close()
		sendMany(t, a, b, 50)
		s := cb.seqs()
		if len(s) != 100 {
			t.Fatalf("%d frames, want every one of 50 twice", len(s))
		}
		for i := range 50 {
			if s[2*i] != uint32(i) || s[2*i+1] != uint32(i) {
				t.Fatalf("sequence %v", s)
			}
		}
		a.SetImpairments(Out, Impairments{Duplicate: 0.5})
		cb.mu.Lock()
		cb.got = nil
		cb.mu.Unlock()
		sendMany(t, a, b, 2000)
		// 2000 + Binomial(2000, 0.5): mean 3000, sd 22.
		if n := len(cb.arrivals()); n < 2900 || n > 3100 {
			t.Fatalf("%d frames at p=0.5, want about 3000", n)
		}
	})
}

func TestCorruptionFlipsOneBit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(8, Impairments{Corrupt: 1})
		defer a.Close()
		defer b.Close()
		sent := frameTo(b.MAC(), a.MAC(), 0, 200)
		for range 100 {
			write(t, a, sent)
		}
		synctest.Wait()
		got := cb.arrivals()
		if len(got) != 100 {
			t.Fatalf("%d frames", len(got))
		}
		positions := map[int]bool{}
		for _, a := range got {
			diff := 0
			for i := range sent {
				if d := bits.OnesCount8(sent[i] ^ a.frame[i]); d > 0 {
					diff += d
					positions[i] = true
				}
			}
			if diff != 1 {
				t.Fatalf("frame differs in %d bits, want 1", diff)
			}
		}
		if len(positions) < 20 {
			t.Fatalf("corruption hit only %d distinct bytes", len(positions))
		}
		if c := a.ImpairStats(Out); c.Corrupted != 100 {
			t.Fatalf("counted %d corrupted", c.Corrupted)
		}
	})
}

func TestReordering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(9, Impairments{Delay: 10 * time.Millisecond, Reorder: 0.25})
		defer a.Close()
		defer b.Close()
		for i := range 100 {
			write(t, a, frameTo(b.MAC(), a.MAC(), uint32(i), 64))
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		s := cb.seqs()
		if len(s) != 100 {
			t.Fatalf("%d frames", len(s))
		}
		inversions := 0
		for i := 1; i < len(s); i++ {
			if s[i] < s[i-1] {
				inversions++
			}
		}
		r := a.ImpairStats(Out).Reordered
		if inversions == 0 || r < 10 || r > 45 {
			t.Fatalf("%d inversions, %d frames skipped the delay (want about 25)", inversions, r)
		}
		// Without reordering, delayed frames keep their order.
		a.SetImpairments(Out, Impairments{Delay: 10 * time.Millisecond})
		if got := a.Impairments(Out); got.Reorder != 0 || got.Delay != 10*time.Millisecond {
			t.Fatalf("Impairments = %+v", got)
		}
		cb.mu.Lock()
		cb.got = nil
		cb.mu.Unlock()
		for i := range 50 {
			write(t, a, frameTo(b.MAC(), a.MAC(), uint32(i), 64))
		}
		time.Sleep(time.Second)
		if s := cb.seqs(); len(s) != 50 || !slices.IsSorted(s) {
			t.Fatalf("plain delay reordered: %v", s)
		}
	})
}

func TestMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		defer n.Close()
		a := n.NewPort(PortConfig{MTU: 9000})
		b := n.NewPort(PortConfig{MTU: 9000})
		c := n.NewPort(PortConfig{}) // 1500
		cb, cc := collect(b), collect(c)
		jumbo := frameTo(wire.BroadcastMAC, a.MAC(), 1, 14+9000)
		write(t, a, jumbo)
		synctest.Wait()
		if got := cb.arrivals(); len(got) != 1 || !bytes.Equal(got[0].frame, jumbo) {
			t.Fatal("jumbo frame not delivered intact")
		}
		if len(cc.arrivals()) != 0 || c.Stats().RxErrors != 1 {
			t.Fatalf("1500-MTU port: %d frames, stats %+v", len(cc.arrivals()), c.Stats())
		}
		n2, err := a.WritePackets([][]byte{frameTo(b.MAC(), a.MAC(), 2, 64), frameTo(b.MAC(), a.MAC(), 3, 14+9001)})
		if n2 != 1 || !errors.Is(err, link.ErrFrameTooBig) {
			t.Fatalf("oversized write: %d, %v", n2, err)
		}
		if a.MTUDropped() != 1 || a.Stats().TxDropped != 1 {
			t.Fatalf("MTU drops %d, stats %+v", a.MTUDropped(), a.Stats())
		}
		if _, err := a.WritePackets([][]byte{make([]byte, 10)}); !errors.Is(err, link.ErrFrameShort) {
			t.Fatalf("runt: %v", err)
		}
		if d := n.NewPort(PortConfig{}); d.MTU() != DefaultMTU {
			t.Fatalf("default MTU %d", d.MTU())
		}
	})
}

func TestSwitchLearningAndFlooding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		defer n.Close()
		n.SetAgeing(10 * time.Second)
		a, b, c := n.NewPort(PortConfig{}), n.NewPort(PortConfig{}), n.NewPort(PortConfig{})
		ca, cb, cc := collect(a), collect(b), collect(c)
		counts := func() [3]int { return [3]int{len(ca.arrivals()), len(cb.arrivals()), len(cc.arrivals())} }
		step := func(p *Port, dst wire.MAC, want [3]int) {
			t.Helper()
			write(t, p, frameTo(dst, p.MAC(), 0, 64))
			synctest.Wait()
			if got := counts(); got != want {
				t.Fatalf("after %v→%v: counts %v, want %v", p.MAC(), dst, got, want)
			}
		}
		step(a, b.MAC(), [3]int{0, 1, 1})           // B unknown: flooded
		step(b, a.MAC(), [3]int{1, 1, 1})           // A learned: only A
		step(a, b.MAC(), [3]int{1, 2, 1})           // B learned: only B
		step(c, wire.BroadcastMAC, [3]int{2, 3, 1}) // broadcast: all others
		multicast := wire.MAC{0x01, 0x00, 0x5e, 0, 0, 1}
		step(c, multicast, [3]int{3, 4, 1})
		step(a, a.MAC(), [3]int{3, 4, 1}) // to its own port: filtered
		time.Sleep(11 * time.Second)      // B's entry ages out
		step(a, b.MAC(), [3]int{3, 5, 2})
		b.Close() // a closed port is forgotten: frames for it flood
		step(c, b.MAC(), [3]int{4, 5, 2})
	})
}

func TestSetImpairmentsAtRunTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(1, Impairments{})
		defer a.Close()
		defer b.Close()
		a.SetImpairments(Out, Impairments{Loss: 1})
		sendMany(t, a, b, 10)
		a.SetImpairments(Out, Impairments{Loss: 2, Delay: -time.Second}) // clamped to 1 and 0
		sendMany(t, a, b, 10)
		b.SetImpairments(In, Impairments{})
		a.SetImpairments(Out, Impairments{})
		sendMany(t, a, b, 10)
		if got := len(cb.arrivals()); got != 10 {
			t.Fatalf("%d frames arrived, want the last 10", got)
		}
	})
}

func TestValidate(t *testing.T) {
	bad := []Impairments{{Loss: -0.1}, {Duplicate: 1.5}, {Corrupt: 2}, {Delay: -1}, {Jitter: -1}, {Limit: -1}}
	for _, im := range bad {
		if im.Validate() == nil {
			t.Errorf("%+v validated", im)
		}
	}
	if err := (Impairments{Loss: 1, Delay: time.Second, Rate: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWrittenFramesAreCopied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(1, Impairments{Delay: time.Millisecond})
		defer a.Close()
		defer b.Close()
		f := frameTo(b.MAC(), a.MAC(), 7, 64)
		write(t, a, f)
		f[14] = 0xff
		time.Sleep(time.Second)
		if s := cb.seqs(); len(s) != 1 || s[0] != 7 {
			t.Fatalf("got %v: the caller's buffer was kept", s)
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		a := n.NewPort(PortConfig{Out: Impairments{Delay: time.Second}})
		b := n.NewPort(PortConfig{In: Impairments{Delay: time.Second}})
		cb := collect(b)
		write(t, a, frameTo(b.MAC(), a.MAC(), 0, 64)) // pending in a's Out
		time.Sleep(1500 * time.Millisecond)           // now pending in b's In
		write(t, a, frameTo(b.MAC(), a.MAC(), 1, 64))
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := b.WritePackets([][]byte{frameTo(a.MAC(), b.MAC(), 0, 64)}); !errors.Is(err, link.ErrClosed) {
			t.Fatalf("write after Close: %v", err)
		}
		time.Sleep(5 * time.Second) // a's pending frame reaches a switch without b
		a.Close()
		if len(cb.arrivals()) != 0 {
			t.Fatal("a closed port delivered")
		}
		// synctest.Test fails if a delivery goroutine or timer callback is left.
	})
}

func TestNoDispatcherCountsDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		defer n.Close()
		a, b := n.NewPort(PortConfig{}), n.NewPort(PortConfig{})
		write(t, a, frameTo(b.MAC(), a.MAC(), 0, 64))
		synctest.Wait()
		if s := b.Stats(); s.RxDropped != 1 || s.RxFrames != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestNamed(t *testing.T) {
	x := Named("emu-test-named")
	if Named("emu-test-named") != x || x.Seed() != DefaultSeed {
		t.Fatal("Named did not return the same network")
	}
	if _, err := NamedSeed("emu-test-named", 99); err == nil {
		t.Fatal("a seed mismatch was accepted")
	}
	y, err := NamedSeed("emu-test-seeded", 99)
	if err != nil || y.Seed() != 99 {
		t.Fatalf("NamedSeed: %v", err)
	}
	p := x.NewPort(PortConfig{})
	defer p.Close()
	if want := fmt.Sprintf("emu:emu-test-named#%d", p.Index()); p.Name() != want {
		t.Fatalf("name %q", p.Name())
	}
}
