package neighbor

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// event is one handler call, stamped with fake time since the test began.
type event struct {
	kind   string // "solicit", "resolved", "unreachable"
	at     time.Duration
	target netip.Addr
	mac    wire.MAC // unicastTo for solicit, the address for resolved
	pkts   []int
	prompt int // solicit: the prompting packet, -1 if none
}

// recorder is a Handler[int] that records every call.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ev    []event
	// hook, if set, runs inside every handler call (to prove the cache's
	// lock is not held).
	hook func()
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) add(e event) {
	e.at = time.Since(r.start)
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
	if r.hook != nil {
		r.hook()
	}
}

func (r *recorder) SendSolicit(target netip.Addr, to wire.MAC, prompt int, has bool) {
	if !has {
		prompt = -1
	}
	r.add(event{kind: "solicit", target: target, mac: to, prompt: prompt})
}

func (r *recorder) Resolved(target netip.Addr, mac wire.MAC, p []int) {
	r.add(event{kind: "resolved", target: target, mac: mac, pkts: p})
}

func (r *recorder) Unreachable(target netip.Addr, p []int) {
	r.add(event{kind: "unreachable", target: target, pkts: p})
}

func (r *recorder) events() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ev)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.ev = nil
	r.mu.Unlock()
}

// sizedRecorder adds PacketSize: a packet's size is its value.
type sizedRecorder struct{ *recorder }

func (sizedRecorder) PacketSize(p int) int { return p }

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	macA  = wire.MAC{0x02, 0, 0, 0, 0, 0xa}
	macB  = wire.MAC{0x02, 0, 0, 0, 0, 0xb}
)

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// sleep advances fake time by d and lets every timer due by then run.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func mustState[P any](t *testing.T, c *Cache[P], a netip.Addr, want State) Entry {
	t.Helper()
	e, ok := c.Lookup(a)
	if !ok {
		t.Fatalf("%v: no entry, want %v", a, want)
	}
	if e.State != want {
		t.Fatalf("%v: state %v, want %v", a, e.State, want)
	}
	checkInvariants(t, c)
	return e
}

// checkInvariants verifies the cache's internal consistency.
func checkInvariants[P any](t testing.TB, c *Cache[P]) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.table) > c.cfg.MaxEntries {
		t.Fatalf("table has %d entries, bound %d", len(c.table), c.cfg.MaxEntries)
	}
	inLists := 0
	for i := range c.lists {
		var prev *entry[P]
		for e := c.lists[i].head; e != nil; e = e.next {
			if e.prev != prev || e.class != i || c.table[e.addr] != e {
				t.Fatalf("list %d corrupt at %v", i, e.addr)
			}
			prev = e
			inLists++
		}
		if c.lists[i].tail != prev {
			t.Fatalf("list %d tail wrong", i)
		}
	}
	nonPerm := 0
	for a, e := range c.table {
		if a != e.addr || e.removed {
			t.Fatalf("%v: bad table slot", a)
		}
		if !e.state.Valid() {
			t.Fatalf("%v: invalid state %d", a, e.state)
		}
		if e.class != classOf(e.state) {
			t.Fatalf("%v: class %d for %v", a, e.class, e.state)
		}
		if e.state != Permanent {
			nonPerm++
		}
		if len(e.queue) > 0 && e.state != Incomplete {
			t.Fatalf("%v: %d queued in %v", a, len(e.queue), e.state)
		}
		if len(e.queue) > c.cfg.QueueLen {
			t.Fatalf("%v: queue %d over %d", a, len(e.queue), c.cfg.QueueLen)
		}
		if e.state.HasAddr() == e.mac.IsZero() {
			t.Fatalf("%v: state %v with mac %v", a, e.state, e.mac)
		}
		timed := e.state == Incomplete || e.state == Reachable || e.state == Delay || e.state == Probe
		if timed == e.deadline.IsZero() {
			t.Fatalf("%v: state %v with deadline %v", a, e.state, e.deadline)
		}
	}
	if inLists != nonPerm {
		t.Fatalf("%d entries in lists, %d non-permanent", inLists, nonPerm)
	}
}

func TestResolveSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, r)
		defer c.Close()
		for i := 1; i <= 3; i++ {
			if _, ok := c.Resolve(addrA, i); ok {
				t.Fatal("resolved with an empty cache")
			}
		}
		e := mustState(t, c, addrA, Incomplete)
		if e.Queued != 3 || e.Probes != 1 {
			t.Fatalf("queued %d probes %d, want 3 1", e.Queued, e.Probes)
		}
		sleep(sec(0.5))
		if _, err := c.HandleAdvertisement(addrA, macA, Solicited|Override); err != nil {
			t.Fatal(err)
		}
		want := []event{
			{kind: "solicit", at: 0, target: addrA, prompt: 1},
			{kind: "resolved", at: sec(0.5), target: addrA, mac: macA, pkts: []int{1, 2, 3}},
		}
		if got := r.events(); !eventsEqual(got, want) {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		mustState(t, c, addrA, Reachable)
		if mac, ok := c.Resolve(addrA, 4); !ok || mac != macA {
			t.Fatalf("Resolve = %v %v, want %v true", mac, ok, macA)
		}
		st := c.Stats()
		if st.Lookups != 4 || st.Hits != 1 || st.SolicitsSent != 1 || st.Allocs != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func eventsEqual(a, b []event) bool {
	return slices.EqualFunc(a, b, func(x, y event) bool {
		return x.kind == y.kind && x.at == y.at && x.target == y.target && x.mac == y.mac &&
			slices.Equal(x.pkts, y.pkts) && (x.kind != "solicit" || x.prompt == y.prompt)
	})
}

func TestResolveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{RetransTime: sec(1), MaxMulticastSolicit: 3}, r)
		defer c.Close()
		c.Resolve(addrA, 1)
		sleep(sec(1.5))
		c.Resolve(addrA, 2)
		sleep(sec(1.5) - 1)
		mustState(t, c, addrA, Incomplete)
		sleep(1)
		mustState(t, c, addrA, Failed)
		want := []event{
			{kind: "solicit", at: 0, target: addrA, prompt: 1},
			{kind: "solicit", at: sec(1), target: addrA, prompt: 1},
			{kind: "solicit", at: sec(2), target: addrA, prompt: 2},
			{kind: "unreachable", at: sec(3), target: addrA, pkts: []int{1, 2}},
		}
		if got := r.events(); !eventsEqual(got, want) {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		if st := c.Stats(); st.ResFailed != 1 || st.SolicitsSent != 3 {
			t.Fatalf("stats %+v", st)
		}
		// A new packet to a FAILED neighbour starts over (Linux).
		r.reset()
		c.Resolve(addrA, 3)
		e := mustState(t, c, addrA, Incomplete)
		if e.Queued != 1 || len(r.events()) != 1 || r.events()[0].kind != "solicit" {
			t.Fatalf("restart: %+v, events %v", e, r.events())
		}
	})
}

func TestQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{QueueLen: 3}, r)
		defer c.Close()
		for i := 1; i <= 5; i++ {
			c.Resolve(addrA, i)
		}
		if st := c.Stats(); st.UnresolvedDiscards != 2 {
			t.Fatalf("discards %d, want 2", st.UnresolvedDiscards)
		}
		c.HandleAdvertisement(addrA, macA, Solicited)
		ev := r.events()
		if got := ev[len(ev)-1]; got.kind != "resolved" || !slices.Equal(got.pkts, []int{3, 4, 5}) {
			t.Fatalf("released %v, want oldest dropped: [3 4 5]", got)
		}
	})
}

func TestQueueBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{QueueLen: 10, QueueBytes: 100}, sizedRecorder{r})
		defer c.Close()
		for _, p := range []int{40, 41, 42} { // 123 bytes: 40 goes
			c.Resolve(addrA, p)
		}
		c.Resolve(addrB, 60)
		c.Resolve(addrB, 150) // larger than the bound alone: kept, 60 goes
		if st := c.Stats(); st.UnresolvedDiscards != 2 {
			t.Fatalf("discards %d, want 2", st.UnresolvedDiscards)
		}
		c.HandleAdvertisement(addrA, macA, Solicited)
		c.HandleAdvertisement(addrB, macB, Solicited)
		ev := r.events()
		if !slices.Equal(ev[2].pkts, []int{41, 42}) || !slices.Equal(ev[3].pkts, []int{150}) {
			t.Fatalf("released %v and %v", ev[2].pkts, ev[3].pkts)
		}
	})
}

func TestReachableToStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{Seed: 7}, r)
		defer c.Close()
		rt := c.ReachableTime()
		if rt < sec(15) || rt >= sec(45) {
			t.Fatalf("ReachableTime %v outside [15s, 45s)", rt)
		}
		c.Resolve(addrA, 1)
		c.HandleAdvertisement(addrA, macA, Solicited|Override)
		sleep(rt - 1)
		mustState(t, c, addrA, Reachable)
		sleep(1)
		mustState(t, c, addrA, Stale)
		// STALE still answers (RFC 4861 §7.3.3) and moves to DELAY.
		if mac, ok := c.Resolve(addrA, 2); !ok || mac != macA {
			t.Fatal("STALE entry did not answer")
		}
		mustState(t, c, addrA, Delay)
	})
}

func TestReachableTimeRandomised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := sec(30)
		seen := map[time.Duration]bool{}
		for seed := uint64(1); seed <= 50; seed++ {
			c := New[int](Config{Seed: seed, BaseReachableTime: base}, newRecorder())
			rt := c.ReachableTime()
			if rt < base/2 || rt >= base*3/2 {
				t.Fatalf("seed %d: %v outside [0.5, 1.5) × %v", seed, rt, base)
			}
			seen[rt] = true
			c.Close()
		}
		if len(seen) < 40 {
			t.Fatalf("only %d distinct ReachableTimes in 50 seeds", len(seen))
		}
		// Redrawn every ReachableRecompute, and at once when the base changes.
		c := New[int](Config{Seed: 3, GCInterval: sec(10), ReachableRecompute: sec(20)}, newRecorder())
		defer c.Close()
		first := c.ReachableTime()
		sleep(sec(20))
		if c.ReachableTime() == first {
			t.Fatal("ReachableTime not redrawn after ReachableRecompute")
		}
		c.SetBaseReachableTime(sec(2))
		if rt := c.ReachableTime(); rt < sec(1) || rt >= sec(3) {
			t.Fatalf("after SetBaseReachableTime(2s): %v", rt)
		}
	})
}

// stale makes a STALE entry for a at mac via Learn.
func makeStale(t *testing.T, c *Cache[int], a netip.Addr, mac wire.MAC) {
	t.Helper()
	if err := c.Learn(a, mac, Create); err != nil {
		t.Fatal(err)
	}
	mustState(t, c, a, Stale)
}

func TestNUDProbeToReachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, r)
		defer c.Close()
		makeStale(t, c, addrA, macA)
		c.Resolve(addrA, 1)
		sleep(sec(5) - 1)
		mustState(t, c, addrA, Delay)
		sleep(1)
		mustState(t, c, addrA, Probe)
		sleep(sec(1.5))
		if e := mustState(t, c, addrA, Probe); e.Probes != 2 {
			t.Fatalf("probes %d, want 2", e.Probes)
		}
		c.HandleAdvertisement(addrA, macA, Solicited) // O clear, same address
		mustState(t, c, addrA, Reachable)
		want := []event{
			{kind: "solicit", at: sec(5), target: addrA, mac: macA, prompt: -1},
			{kind: "solicit", at: sec(6), target: addrA, mac: macA, prompt: -1},
		}
		if got := r.events(); !eventsEqual(got, want) {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
	})
}

func TestNUDProbeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{MaxUnicastSolicit: 3}, r)
		defer c.Close()
		makeStale(t, c, addrA, macA)
		c.Resolve(addrA, 1)
		sleep(sec(8) - 1)
		mustState(t, c, addrA, Probe)
		sleep(1)
		mustState(t, c, addrA, Failed)
		want := []event{
			{kind: "solicit", at: sec(5), target: addrA, mac: macA, prompt: -1},
			{kind: "solicit", at: sec(6), target: addrA, mac: macA, prompt: -1},
			{kind: "solicit", at: sec(7), target: addrA, mac: macA, prompt: -1},
			{kind: "unreachable", at: sec(8), target: addrA},
		}
		if got := r.events(); !eventsEqual(got, want) {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		if st := c.Stats(); st.ProbesSent != 3 || st.ResFailed != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestConfirmReachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{Seed: 11}, r)
		defer c.Close()
		rt := c.ReachableTime()
		c.Resolve(addrA, 1)
		c.HandleAdvertisement(addrA, macA, Solicited|Override)
		sleep(rt / 2)
		if !c.ConfirmReachable(addrA) {
			t.Fatal("ConfirmReachable = false")
		}
		// The confirmation restarts the reachable time.
		sleep(rt - 1)
		mustState(t, c, addrA, Reachable)
		sleep(1)
		mustState(t, c, addrA, Stale)
		// DELAY + confirmation: REACHABLE, no probe sent.
		c.Resolve(addrA, 2)
		sleep(sec(2))
		c.ConfirmReachable(addrA)
		sleep(sec(10))
		mustState(t, c, addrA, Reachable)
		if st := c.Stats(); st.ProbesSent != 0 {
			t.Fatalf("probes sent: %d", st.ProbesSent)
		}
		// Nothing to confirm for missing or address-less entries.
		c.Resolve(addrB, 3)
		if c.ConfirmReachable(addrB) || c.ConfirmReachable(netip.MustParseAddr("192.0.2.99")) {
			t.Fatal("confirmed an entry without an address")
		}
	})
}

// setupState brings addrA to state s with macA (Incomplete: no address).
func setupState(t *testing.T, c *Cache[int], s State, router bool) {
	t.Helper()
	var rf AdvFlags
	if router {
		rf = Router
	}
	switch s {
	case Incomplete:
		c.Resolve(addrA, 1)
	case Reachable:
		c.Resolve(addrA, 1)
		c.HandleAdvertisement(addrA, macA, Solicited|Override|rf)
	case Stale:
		lf := Create
		if router {
			lf |= IsRouter
		}
		c.Learn(addrA, macA, lf)
	case Delay:
		setupState(t, c, Stale, router)
		c.Resolve(addrA, 2)
	case Probe:
		setupState(t, c, Delay, router)
		sleep(sec(5))
	case Failed:
		c.Resolve(addrA, 1)
		sleep(sec(3))
	case Permanent:
		c.AddStatic(addrA, macA)
	}
	mustState(t, c, addrA, s)
}

// TestAdvertisementRules walks RFC 4861 §7.2.5 (and Appendix C's NA rows)
// row by row.
func TestAdvertisementRules(t *testing.T) {
	const (
		same = iota
		diff
		none
	)
	tests := []struct {
		name       string
		from       State
		router     bool
		tlla       int
		flags      AdvFlags
		want       State
		wantMAC    wire.MAC // zero: none
		wantRouter bool
		cleared    bool
		resolved   bool
	}{
		// INCOMPLETE: no TLLA: discard; else record, S → REACHABLE, !S → STALE.
		{name: "incomplete no tlla", from: Incomplete, tlla: none, flags: Solicited, want: Incomplete},
		{name: "incomplete solicited", from: Incomplete, tlla: same, flags: Solicited, want: Reachable, wantMAC: macA, resolved: true},
		// Unsolicited: STALE, then DELAY as the queued packet goes out.
		{name: "incomplete unsolicited", from: Incomplete, tlla: same, flags: Override, want: Delay, wantMAC: macA, resolved: true},
		{name: "failed unsolicited", from: Failed, tlla: same, flags: Override, want: Stale, wantMAC: macA, resolved: true},
		{name: "incomplete router", from: Incomplete, tlla: same, flags: Solicited | Router, want: Reachable, wantMAC: macA, wantRouter: true, resolved: true},
		{name: "failed solicited", from: Failed, tlla: same, flags: Solicited, want: Reachable, wantMAC: macA, resolved: true},
		// I: O clear, different address: REACHABLE → STALE, address kept; others unchanged.
		{name: "reachable !O diff", from: Reachable, tlla: diff, flags: Solicited, want: Stale, wantMAC: macA},
		{name: "reachable !O diff keeps router", from: Reachable, router: true, tlla: diff, flags: Solicited, want: Stale, wantMAC: macA, wantRouter: true},
		{name: "stale !O diff", from: Stale, tlla: diff, flags: Solicited, want: Stale, wantMAC: macA},
		{name: "delay !O diff", from: Delay, tlla: diff, flags: Solicited, want: Delay, wantMAC: macA},
		{name: "probe !O diff", from: Probe, tlla: diff, flags: 0, want: Probe, wantMAC: macA},
		// II: O set, or same address, or no TLLA.
		{name: "stale O diff S", from: Stale, tlla: diff, flags: Override | Solicited, want: Reachable, wantMAC: macB},
		{name: "reachable O diff !S", from: Reachable, tlla: diff, flags: Override, want: Stale, wantMAC: macB},
		{name: "probe O diff !S", from: Probe, tlla: diff, flags: Override, want: Stale, wantMAC: macB},
		{name: "delay same S", from: Delay, tlla: same, flags: Solicited, want: Reachable, wantMAC: macA},
		{name: "probe same S", from: Probe, tlla: same, flags: Solicited, want: Reachable, wantMAC: macA},
		{name: "stale same !S", from: Stale, tlla: same, flags: 0, want: Stale, wantMAC: macA},
		{name: "reachable same !S", from: Reachable, tlla: same, flags: Override, want: Reachable, wantMAC: macA},
		{name: "probe O same !S", from: Probe, tlla: same, flags: Override, want: Probe, wantMAC: macA},
		{name: "stale no tlla S", from: Stale, tlla: none, flags: Solicited, want: Reachable, wantMAC: macA},
		{name: "delay no tlla !S", from: Delay, tlla: none, flags: 0, want: Delay, wantMAC: macA},
		// IsRouter update; TRUE → FALSE is reported.
		{name: "router cleared", from: Reachable, router: true, tlla: same, flags: Solicited, want: Reachable, wantMAC: macA, cleared: true},
		{name: "router set", from: Stale, tlla: same, flags: Router, want: Stale, wantMAC: macA, wantRouter: true},
		{name: "router kept", from: Stale, router: true, tlla: none, flags: Router | Solicited, want: Reachable, wantMAC: macA, wantRouter: true},
		// PERMANENT never changes.
		{name: "permanent", from: Permanent, tlla: diff, flags: Solicited | Override, want: Permanent, wantMAC: macA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRecorder()
				c := New[int](Config{}, r)
				defer c.Close()
				setupState(t, c, tt.from, tt.router)
				r.reset()
				mac, flags := macA, tt.flags
				switch tt.tlla {
				case diff:
					mac = macB
				case none:
					mac, flags = wire.MAC{}, flags|NoLinkAddr
				}
				cleared, err := c.HandleAdvertisement(addrA, mac, flags)
				if err != nil {
					t.Fatal(err)
				}
				e := mustState(t, c, addrA, tt.want)
				if e.MAC != tt.wantMAC || e.Router != tt.wantRouter || cleared != tt.cleared {
					t.Fatalf("mac %v router %v cleared %v; want %v %v %v",
						e.MAC, e.Router, cleared, tt.wantMAC, tt.wantRouter, tt.cleared)
				}
				ev := r.events()
				if got := len(ev) == 1 && ev[0].kind == "resolved"; got != tt.resolved {
					t.Fatalf("events %v, want resolved=%v", ev, tt.resolved)
				}
			})
		})
	}
}

func TestAdvertisementNoEntryIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[int](Config{}, newRecorder())
		defer c.Close()
		if _, err := c.HandleAdvertisement(addrA, macA, Solicited|Override); err != nil {
			t.Fatal(err)
		}
		if c.Len() != 0 {
			t.Fatal("an advertisement created an entry")
		}
	})
}

func TestLearn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, r)
		defer c.Close()
		// Without Create (RFC 826 merge, not for us): nothing is made.
		c.Learn(addrA, macA, 0)
		if c.Len() != 0 {
			t.Fatal("merge created an entry")
		}
		// ...but an existing entry is updated, releasing its queue.
		c.Resolve(addrA, 1)
		c.Learn(addrA, macA, 0)
		e := mustState(t, c, addrA, Delay) // STALE, and the queued packet was sent
		if e.MAC != macA || e.Router {
			t.Fatalf("entry %+v", e)
		}
		if ev := r.events(); ev[len(ev)-1].kind != "resolved" || !slices.Equal(ev[len(ev)-1].pkts, []int{1}) {
			t.Fatalf("events %v", ev)
		}
		// Same address on a REACHABLE entry: state unchanged (§7.2.3).
		c.HandleAdvertisement(addrA, macA, Solicited)
		c.Learn(addrA, macA, Create)
		mustState(t, c, addrA, Reachable)
		// Different address: replaced, STALE.
		c.Learn(addrA, macB, Create|IsRouter)
		if e := mustState(t, c, addrA, Stale); e.MAC != macB || !e.Router {
			t.Fatalf("entry %+v", e)
		}
		// Create makes a STALE entry, router flag false unless IsRouter.
		c.Learn(addrB, macB, Create)
		if e := mustState(t, c, addrB, Stale); e.Router {
			t.Fatal("router flag set")
		}
	})
}

func TestLockTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[int](Config{LockTime: sec(1)}, newRecorder())
		defer c.Close()
		c.Resolve(addrA, 1)
		c.HandleAdvertisement(addrA, macA, Solicited|Override)
		sleep(sec(0.5))
		c.HandleAdvertisement(addrA, macB, Solicited|Override) // a second proxy: too late
		c.Learn(addrA, macB, Create)
		if e, _ := c.Lookup(addrA); e.MAC != macA {
			t.Fatalf("address replaced within LockTime: %v", e.MAC)
		}
		sleep(sec(1))
		c.HandleAdvertisement(addrA, macB, Solicited|Override)
		if e, _ := c.Lookup(addrA); e.MAC != macB {
			t.Fatalf("address not replaced after LockTime: %v", e.MAC)
		}
	})
}

func TestStaticImmune(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{GCInterval: sec(1), GCStaleTime: sec(1)}, r)
		defer c.Close()
		c.Resolve(addrA, 1)
		c.Resolve(addrA, 2)
		if err := c.AddStatic(addrA, macA); err != nil {
			t.Fatal(err)
		}
		if ev := r.events(); ev[len(ev)-1].kind != "resolved" || !slices.Equal(ev[len(ev)-1].pkts, []int{1, 2}) {
			t.Fatalf("queue not released: %v", ev)
		}
		c.HandleAdvertisement(addrA, macB, Solicited|Override)
		c.Learn(addrA, macB, Create)
		c.ConfirmReachable(addrA)
		sleep(time.Hour)
		if mac, ok := c.Resolve(addrA, 3); !ok || mac != macA {
			t.Fatal("static entry changed")
		}
		if n := c.Flush(); n != 0 {
			t.Fatalf("Flush removed %d", n)
		}
		mustState(t, c, addrA, Permanent)
		if !c.Delete(addrA) || c.Len() != 0 {
			t.Fatal("Delete failed")
		}
		if err := c.AddStatic(addrA, wire.MAC{}); !errors.Is(err, ErrInvalidLinkAddress) {
			t.Fatalf("zero MAC: %v", err)
		}
	})
}

func TestInputValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local := netip.MustParseAddr("192.0.2.100")
		c := New[int](Config{IsLocal: func(a netip.Addr) bool { return a == local }}, newRecorder())
		defer c.Close()
		bad := []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("224.0.0.1"),
			netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("ff02::1")}
		for _, a := range bad {
			if _, ok := c.Resolve(a, 1); ok {
				t.Fatalf("Resolve(%v) ok", a)
			}
			if err := c.Learn(a, macA, Create); !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("Learn(%v): %v", a, err)
			}
			if _, err := c.HandleAdvertisement(a, macA, Solicited); !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("HandleAdvertisement(%v): %v", a, err)
			}
		}
		for _, m := range []wire.MAC{{}, wire.BroadcastMAC, {0x01, 0, 0x5e, 0, 0, 1}} {
			if err := c.Learn(addrA, m, Create); !errors.Is(err, ErrInvalidLinkAddress) {
				t.Fatalf("Learn mac %v: %v", m, err)
			}
		}
		if err := c.Learn(local, macA, Create); !errors.Is(err, ErrLocalAddress) {
			t.Fatalf("local: %v", err)
		}
		if _, err := c.HandleAdvertisement(local, macA, Override); !errors.Is(err, ErrLocalAddress) {
			t.Fatalf("local: %v", err)
		}
		if c.Len() != 0 {
			t.Fatalf("%d entries", c.Len())
		}
		// Zones and IPv4-mapped forms name the same entry.
		c.Learn(netip.MustParseAddr("fe80::1%eth0"), macA, Create)
		mustState(t, c, netip.MustParseAddr("fe80::1"), Stale)
		c.Learn(netip.MustParseAddr("::ffff:192.0.2.1"), macA, Create)
		mustState(t, c, addrA, Stale)
	})
}

func TestPeriodicGC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[int](Config{GCInterval: sec(10), GCStaleTime: sec(28)}, newRecorder())
		defer c.Close()
		c.Learn(addrA, macA, Create) // STALE at 0
		c.Resolve(addrB, 1)          // FAILED at 3
		sleep(sec(29))               // sweeps at 10, 20: neither 28 s old
		if c.Len() != 2 {
			t.Fatalf("%d entries at 29s", c.Len())
		}
		sleep(sec(1)) // sweep at 30: A (30 s) goes, B (27 s) stays
		if _, ok := c.Lookup(addrA); ok {
			t.Fatal("stale entry not collected")
		}
		mustState(t, c, addrB, Failed)
		sleep(sec(10))
		if c.Len() != 0 {
			t.Fatal("failed entry not collected")
		}
		if st := c.Stats(); st.PeriodicGCRuns != 4 || st.Destroys != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestEvictionOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[int](Config{MaxEntries: 5}, newRecorder())
		defer c.Close()
		ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
		c.AddStatic(ip(1), macA)
		c.Resolve(ip(2), 1)
		c.HandleAdvertisement(ip(2), macA, Solicited) // REACHABLE
		c.Learn(ip(3), macA, Create)                  // STALE
		c.Learn(ip(4), macA, Create)                  // STALE, newer
		c.Resolve(ip(5), 1)                           // FAILED after 3 s
		sleep(sec(3))
		c.Resolve(ip(3), 1) // ip(3) used: DELAY now, class valid
		c.Learn(ip(3), macB, 0)
		mustState(t, c, ip(3), Stale) // STALE again, most recently
		// Victims: FAILED 5, then STALE 4 (older than 3), then 3, then
		// REACHABLE 2, then the INCOMPLETE ones in order; never 1.
		wantGone := []int{5, 4, 3, 2, 6, 7}
		for i, g := range wantGone {
			c.Resolve(ip(6+i), 1)
			if _, ok := c.Lookup(ip(g)); ok {
				t.Fatalf("step %d: %v not evicted", i, ip(g))
			}
			checkInvariants(t, c)
		}
		mustState(t, c, ip(1), Permanent)
		if st := c.Stats(); st.ForcedGCRuns != 6 || st.UnresolvedDiscards != 2 {
			t.Fatalf("stats %+v", st)
		}
		// A table of permanent entries refuses new ones.
		c.Flush()
		for i := 20; i < 24; i++ {
			c.AddStatic(ip(i), macA)
		}
		if _, ok := c.Resolve(ip(30), 1); ok {
			t.Fatal("resolved")
		}
		if err := c.AddStatic(ip(31), macA); !errors.Is(err, ErrTableFull) {
			t.Fatalf("AddStatic on a full table: %v", err)
		}
		if st := c.Stats(); st.TableFulls != 2 {
			t.Fatalf("TableFulls %d", st.TableFulls)
		}
	})
}

func TestFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &countingHandler{}
		c := New[int](Config{}, r)
		defer c.Close()
		c.AddStatic(addrA, macA)
		c.Learn(addrB, macB, Create)
		c.Resolve(addrB, 0)
		c.ConfirmReachable(addrB)
		const n = 100_000
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			c.Resolve(a, i)
		}
		if c.Len() != 1024 {
			t.Fatalf("%d entries, want the bound 1024", c.Len())
		}
		checkInvariants(t, c)
		mustState(t, c, addrA, Permanent)
		st := c.Stats()
		// The REACHABLE entry goes before any with queued packets.
		if _, ok := c.Lookup(addrB); ok {
			t.Fatal("reachable entry outlived incomplete ones")
		}
		if st.ForcedGCRuns != n+2-1024 || st.Allocs != n+2 {
			t.Fatalf("stats %+v", st)
		}
		sleep(sec(3))
		if c.Len() != 1024 {
			t.Fatalf("%d entries after failures", c.Len())
		}
		if got := r.unreachable.Load(); got != 1023 {
			t.Fatalf("%d unreachable reports, want 1023", got)
		}
	})
}

func TestHandlerMayReenter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, r)
		defer c.Close()
		calls := 0
		r.hook = func() { // would deadlock if the cache's lock were held
			calls++
			c.Entries()
			c.Stats()
		}
		c.Resolve(addrA, 1)
		sleep(sec(1))
		c.HandleAdvertisement(addrA, macA, Solicited)
		c.Resolve(addrB, 1)
		sleep(sec(5))
		if calls != 7 { // A: 2 solicits, resolved; B: 3 solicits, unreachable
			t.Fatalf("%d handler calls", calls)
		}
	})
}

func TestCloseStopsTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, r)
		c.Resolve(addrA, 1)
		makeStale(t, c, addrB, macB)
		c.Resolve(addrB, 1) // DELAY
		c.mu.Lock()
		var entries []*entry[int]
		for _, e := range c.table {
			entries = append(entries, e)
		}
		c.mu.Unlock()
		c.Close()
		c.Close()
		for _, e := range entries {
			if e.timer.Stop() {
				t.Fatalf("%v: timer still running after Close", e.addr)
			}
		}
		if c.gcTimer.Stop() {
			t.Fatal("GC timer still running after Close")
		}
		r.reset()
		sleep(time.Hour)
		if _, ok := c.Resolve(addrA, 2); ok || len(r.events()) != 0 || c.Len() != 0 {
			t.Fatalf("activity after Close: %v", r.events())
		}
		if err := c.Learn(addrA, macA, Create); !errors.Is(err, ErrClosed) {
			t.Fatalf("Learn after Close: %v", err)
		}
	})
}

func TestEntriesSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[int](Config{}, newRecorder())
		defer c.Close()
		t0 := time.Now()
		c.Learn(addrB, macB, Create|IsRouter)
		c.Resolve(addrA, 1)
		sleep(sec(2))
		c.Resolve(addrB, 2)
		got := c.Entries()
		want := []Entry{
			{Addr: addrA, State: Incomplete, Queued: 1, Probes: 3, Updated: t0, Used: t0},
			{Addr: addrB, MAC: macB, State: Delay, Router: true, Updated: t0.Add(sec(2)), Used: t0.Add(sec(2))},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Entries\n got %+v\nwant %+v", got, want)
		}
		for s := State(0); s <= Permanent+1; s++ {
			if (s.String() == "NONE") == s.Valid() {
				t.Fatalf("State(%d).String() = %q", s, s.String())
			}
		}
	})
}

// TestConcurrent runs resolvers against advertisements, confirmations and
// timers, then checks that every packet was accounted for exactly once.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &ledger{seen: map[int]string{}}
		c := New[int](Config{MaxEntries: 48, QueueLen: 4}, h)
		// Resolvers use 56 addresses, more than the table holds; only the
		// first 32 ever answer, so the rest fail.
		addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}) }
		var wg sync.WaitGroup
		const resolvers, perResolver = 6, 2000
		for g := range resolvers {
			wg.Go(func() {
				for i := range perResolver {
					id := g*perResolver + i
					if _, ok := c.Resolve(addr((id*7+g)%56), id); ok {
						h.note(id, "fast")
					}
					if i%100 == 0 {
						time.Sleep(sec(0.3))
					}
				}
			})
		}
		for g := range 2 {
			wg.Go(func() {
				for i := range 3000 {
					a := addr((i*5 + g) % 32)
					mac := wire.MAC{2, 0, 0, 0, byte(g), byte(i % 3)}
					switch i % 4 {
					case 0:
						c.HandleAdvertisement(a, mac, Solicited|Override)
					case 1:
						c.Learn(a, mac, Create)
					case 2:
						c.ConfirmReachable(a)
					case 3:
						c.HandleAdvertisement(a, mac, Solicited)
					}
					if i%150 == 0 {
						time.Sleep(sec(0.7))
						c.Entries()
					}
				}
			})
		}
		wg.Wait()
		sleep(time.Minute)
		checkInvariants(t, c)
		c.Close()
		st := c.Stats()
		h.mu.Lock()
		defer h.mu.Unlock()
		if total := uint64(len(h.seen)) + st.UnresolvedDiscards; total != resolvers*perResolver {
			t.Fatalf("%d packets accounted for (%d seen + %d dropped), sent %d",
				total, len(h.seen), st.UnresolvedDiscards, resolvers*perResolver)
		}
		if h.dup != "" {
			t.Fatal(h.dup)
		}
		kinds := map[string]int{}
		for _, how := range h.seen {
			kinds[how]++
		}
		t.Logf("fast %d, resolved %d, unreachable %d, dropped %d; stats %+v",
			kinds["fast"], kinds["resolved"], kinds["unreachable"], st.UnresolvedDiscards, st)
		if kinds["fast"] == 0 || kinds["resolved"] == 0 || kinds["unreachable"] == 0 || st.ForcedGCRuns == 0 {
			t.Fatal("the workload did not exercise every path")
		}
	})
}

// ledger records where each packet went, and any packet seen twice.
type ledger struct {
	mu   sync.Mutex
	seen map[int]string
	dup  string
}

func (l *ledger) note(id int, how string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.seen[id]; ok && l.dup == "" {
		l.dup = fmt.Sprintf("packet %d delivered %s and %s", id, prev, how)
	}
	l.seen[id] = how
}

func (l *ledger) SendSolicit(netip.Addr, wire.MAC, int, bool) {}
func (l *ledger) Resolved(_ netip.Addr, _ wire.MAC, p []int) {
	for _, id := range p {
		l.note(id, "resolved")
	}
}
func (l *ledger) Unreachable(_ netip.Addr, p []int) {
	for _, id := range p {
		l.note(id, "unreachable")
	}
}

// countingHandler counts calls without keeping packets.
type countingHandler struct{ solicits, resolved, unreachable atomic.Int64 }

func (h *countingHandler) SendSolicit(netip.Addr, wire.MAC, int, bool) { h.solicits.Add(1) }
func (h *countingHandler) Resolved(netip.Addr, wire.MAC, []int)        { h.resolved.Add(1) }
func (h *countingHandler) Unreachable(netip.Addr, []int)               { h.unreachable.Add(1) }

func BenchmarkResolveHit(b *testing.B) {
	c := New[int](Config{}, &countingHandler{})
	defer c.Close()
	c.AddStatic(addrA, macA)
	c.Learn(addrB, macB, Create)
	c.Resolve(addrB, 0)
	c.ConfirmReachable(addrB)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Resolve(addrB, 1); !ok {
			b.Fatal("miss")
		}
	}
}
