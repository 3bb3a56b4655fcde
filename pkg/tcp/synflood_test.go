package tcp

import (
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestSynFlood: 20,000 SYNs a second for a second of fake time, each from
// its own spoofed source (198.18.0.0/15, routed to a gateway that drops
// the SYN-ACKs), while real clients connect every 50 ms. Every real
// client gets in within 100 ms (one round trip: through the SYN queue or
// a cookie) and carries data; the server's state stays bounded by the
// SYN queue (tcp_max_syn_backlog for the backlog) and its heap by a few
// MiB, and once the SYN-ACK retries run out the half-open connections are
// all gone.
func TestSynFlood(t *testing.T) {
	const (
		perMS   = 20
		floodMS = 1000
		backlog = 128
	)
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 9)
		cfg := emu.PortConfig{Out: emu.Impairments{Delay: 500 * time.Microsecond}}
		a := newHost(t, nw, cfg, "10.0.0.1/24")
		b := newHost(t, nw, cfg, "10.0.0.2/24")
		// The gateway only answers ARP: no TCP, no forwarding.
		gw := stack.New(stack.Options{})
		t.Cleanup(func() { gw.Close() })
		gn, err := gw.AddNIC(nw.NewPort(emu.PortConfig{}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := gn.AddAddress(stack.Address{Prefix: netip.MustParsePrefix("10.0.0.254/24")}); err != nil {
			t.Fatal(err)
		}
		gn.SetUp(true)
		if err := b.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.254")}); err != nil {
			t.Fatal(err)
		}
		in := newInjector(t, nw)
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), backlog)

		heap := func() uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		conns := func() int {
			b.tcp.mu.RLock()
			defer b.tcp.mu.RUnlock()
			return len(b.tcp.conns)
		}

		// The flood, in 1 ms bursts.
		floodDone := make(chan struct{})
		go func() {
			defer close(floodDone)
			opts := wire.TCPOptions{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 7, SACKPermitted: true}
			for ms := range floodMS {
				for i := range perMS {
					n := ms*perMS + i
					src := netip.AddrFrom4([4]byte{198, 18 + byte(n>>16&1), byte(n >> 8), byte(n)})
					in.send(t, b.port.MAC(), ap(src, uint16(1024+n%60000)), ap(addrB4, 80),
						wire.TCPFields{Seq: uint32(n) * 7919, Flags: wire.TCPFlagSYN, Window: 65535, Options: opts}, nil)
				}
				time.Sleep(time.Millisecond)
			}
		}()

		var maxConns, maxSynQ int
		for i := range floodMS / 50 {
			time.Sleep(50 * time.Millisecond)
			c := a.open(t, syscall.AF_INET)
			start := time.Now()
			if err := connect(t, c, ap(addrB4, 80), 100*time.Millisecond); err != nil {
				t.Fatalf("client %d at %v into the flood: %v", i, time.Since(start), err)
			}
			s := accept(t, l, 100*time.Millisecond)
			msg := []byte{byte(i), 'o', 'k'}
			if err := writeAll(c, msg, time.Second); err != nil {
				t.Fatal(err)
			}
			if got, err := readN(s, len(msg), time.Second); err != nil || string(got) != string(msg) {
				t.Fatalf("client %d: server read %q, %v", i, got, err)
			}
			c.Close()
			s.Close()
			l.mu.Lock()
			maxSynQ = max(maxSynQ, l.synQ)
			l.mu.Unlock()
			maxConns = max(maxConns, conns())
		}
		<-floodDone
		synctest.Wait()
		grown := int64(heap()) - int64(before)
		if n := b.tcp.Stats().InSegs.Load(); n < perMS*floodMS {
			t.Fatalf("server took in %d segments, fewer than the %d SYNs", n, perMS*floodMS)
		}
		l.mu.Lock()
		maxSynQ = max(maxSynQ, l.synQ)
		l.mu.Unlock()
		maxConns = max(maxConns, conns())
		// Half-open children plus the real clients' connections (closing
		// or in TIME_WAIT, at most one per 50 ms).
		if maxSynQ > backlog || maxConns > backlog+floodMS/50+1 {
			t.Errorf("SYN queue peaked at %d, connection table at %d; backlog %d", maxSynQ, maxConns, backlog)
		}
		if grown > 8<<20 {
			t.Errorf("heap grew %d KiB during a flood of %d SYNs", grown>>10, perMS*floodMS)
		}
		// SYN-ACK retries (1+2+4+8+16+32 s) end every half-open child.
		time.Sleep(70 * time.Second)
		synctest.Wait()
		l.mu.Lock()
		n := l.synQ
		l.mu.Unlock()
		if n != 0 || conns() != 0 {
			t.Errorf("after the retries: SYN queue %d, %d connections", n, conns())
		}
		t.Logf("%d SYNs: SYN queue peak %d, connection table peak %d, heap %+d KiB", perMS*floodMS, maxSynQ, maxConns, grown>>10)
	})
}
