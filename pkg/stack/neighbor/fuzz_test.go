package neighbor

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// sizedLedger is a ledger whose packets have a size (id mod 300).
type sizedLedger struct{ *ledger }

func (sizedLedger) PacketSize(id int) int { return id % 300 }

var (
	fuzzLocal = netip.MustParseAddr("10.9.9.9")
	fuzzAddrs = []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4"),
		netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6"),
		netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.8"),
		netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::1"),
		fuzzLocal, netip.MustParseAddr("224.0.0.1"), netip.IPv4Unspecified(), {},
	}
	fuzzMACs = []wire.MAC{
		{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3},
		{}, wire.BroadcastMAC, {0x33, 0x33, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 4}, {2, 0, 0, 0, 0, 5},
	}
	fuzzSleeps = []time.Duration{
		0, 1, 100 * time.Millisecond, 999 * time.Millisecond, time.Second,
		5 * time.Second, 31 * time.Second, 5 * time.Minute,
	}
)

// FuzzOps drives a cache with a random sequence of operations decoded from
// the input, checking its invariants after each one and, at the end, that
// every packet handed to Resolve was accounted for exactly once.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 7, 0, 3})
	f.Add([]byte{2, 1, 0, 0, 0, 0, 0, 0, 2, 1, 1, 0, 1, 0, 7, 0, 5, 7, 0, 6, 1, 1, 1})
	f.Add([]byte{7, 3, 1, 255, 0, 1, 0, 0, 2, 0, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 4, 8, 0, 0, 9, 0, 7, 0, 7, 6, 0})
	f.Add([]byte{1, 0, 2, 0, 0, 2, 0, 0, 7, 0, 5, 7, 0, 4, 1, 2, 33, 7, 0, 6, 3, 2, 0, 5, 2, 0, 6, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 || len(data) > 3000 {
			return
		}
		synctest.Test(t, func(t *testing.T) { runOps(t, data) })
	})
}

func runOps(t *testing.T, data []byte) {
	cfg := Config{
		MaxEntries: 1 + int(data[0]%8),
		QueueLen:   1 + int(data[1]%4),
		LockTime:   time.Duration(data[2]%3) * 500 * time.Millisecond,
		Seed:       uint64(data[3]) + 1,
		IsLocal:    func(a netip.Addr) bool { return a == fuzzLocal },
	}
	l := &ledger{seen: map[int]string{}}
	var h Handler[int] = l
	if data[2]&0x80 != 0 {
		cfg.QueueBytes = 400
		h = sizedLedger{l}
	}
	c := New(cfg, h)
	data = data[4:]
	sent := 0
	for len(data) >= 3 {
		op, a, b := data[0], data[1], data[2]
		data = data[3:]
		addr := fuzzAddrs[a%uint8(len(fuzzAddrs))]
		mac := fuzzMACs[b%uint8(len(fuzzMACs))]
		switch op % 10 {
		case 0:
			id := sent
			sent++
			got, ok := c.Resolve(addr, id)
			if ok {
				if got.IsZero() {
					t.Fatalf("Resolve(%v) returned a zero address", addr)
				}
				l.note(id, "fast")
			}
		case 1:
			c.HandleAdvertisement(addr, mac, AdvFlags(b>>3))
		case 2:
			c.Learn(addr, mac, LearnFlags(b>>3))
		case 3:
			c.ConfirmReachable(addr)
		case 4:
			c.AddStatic(addr, mac)
		case 5:
			c.Delete(addr)
		case 6:
			if b&1 == 0 {
				c.Flush()
			}
		case 7:
			sleep(fuzzSleeps[b%uint8(len(fuzzSleeps))])
		case 8:
			if b&1 == 0 {
				c.SetRetransTime(time.Duration(b) * 10 * time.Millisecond)
			} else {
				c.SetBaseReachableTime(time.Duration(b) * 100 * time.Millisecond)
			}
		case 9:
			for _, e := range c.Entries() {
				if !e.State.Valid() || e.State.HasAddr() == e.MAC.IsZero() {
					t.Fatalf("bad snapshot %+v", e)
				}
			}
			c.Lookup(addr)
			c.Stats()
		}
		checkInvariants(t, c)
	}
	sleep(time.Minute)
	checkInvariants(t, c)
	c.Close()
	st := c.Stats()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dup != "" {
		t.Fatal(l.dup)
	}
	if got := uint64(len(l.seen)) + st.UnresolvedDiscards; got != uint64(sent) {
		t.Fatalf("%d packets accounted for (%d delivered, %d dropped), %d sent",
			got, len(l.seen), st.UnresolvedDiscards, sent)
	}
}
