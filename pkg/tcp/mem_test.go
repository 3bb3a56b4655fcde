package tcp

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// memAudit checks that the Protocol's total is what its endpoints' rings
// hold: a ring freed without its charge given back, or an endpoint that
// left the list still holding memory, shows as a difference.
func memAudit(t *testing.T, name string, p *Protocol) int64 {
	t.Helper()
	p.epsMu.Lock()
	list := make([]*endpoint, 0, len(p.eps))
	for e := range p.eps {
		list = append(list, e)
	}
	p.epsMu.Unlock()
	var sum int64
	for _, e := range list {
		e.mu.Lock()
		sum += int64(e.memHeldLocked())
		e.mu.Unlock()
	}
	if got := p.MemAllocated(); got != sum {
		t.Errorf("%s: %d bytes charged, the endpoints' rings hold %d", name, got, sum)
	}
	return sum
}

// memSampler records the largest total of each Protocol every
// millisecond of fake time until stop is called.
func memSampler(ps ...*Protocol) (peak []int64, stop func()) {
	peak = make([]int64, len(ps))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for i, p := range ps {
				peak[i] = max(peak[i], p.MemAllocated())
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return peak, func() { close(done); wg.Wait() }
}

// TestMemLimitManyConnections: fifty connections transfer at once over a
// lossy, reordering path with MemLimit far below what their buffers
// would take. Every transfer arrives intact, the total never passes the
// limit by more than the guaranteed per-ring minimum (Linux
// __sk_mem_raise_allocated lets a socket below tcp_rmem[0]/tcp_wmem[0]
// through), memory pressure was entered and memory refused, and once
// everything is closed the charge is back to 0.
func TestMemLimitManyConnections(t *testing.T) {
	const (
		conns = 50
		size  = 192 << 10
		limit = 1 << 20
	)
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 23, emu.Impairments{Loss: 0.01, Reorder: 0.03, Delay: 2 * time.Millisecond,
			Jitter: time.Millisecond, Rate: 200e6, Limit: 4000})
		// The receivers' host has the small limit and slow readers, so
		// their buffers fill and data is refused; the senders' limit
		// bounds their send buffers.
		a.tcp.MemLimit, b.tcp.MemLimit = 2*limit, limit
		a.tcp.TimeWait, b.tcp.TimeWait = time.Second, time.Second
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 90), conns)
		clients := make([]*endpoint, conns)
		servers := make([]*endpoint, conns)
		for i := range clients {
			clients[i] = a.open(t, syscall.AF_INET)
			mustConnect(t, clients[i], ap(addrB4, 90))
			servers[i] = accept(t, l, 10*time.Second)
		}
		peak, stop := memSampler(a.tcp, b.tcp)
		var wg sync.WaitGroup
		errs := make(chan error, 2*conns)
		for i := range clients {
			data := randomBytes(uint64(100+i), size)
			wg.Add(2)
			go func() {
				defer wg.Done()
				if err := writeAll(clients[i], data, 5*time.Minute); err != nil {
					errs <- fmt.Errorf("conn %d: %v", i, err)
				}
				clients[i].Shutdown(syscall.SHUT_WR)
			}()
			go func() {
				defer wg.Done()
				got, err := slowReadAll(servers[i], 5*time.Minute)
				if err != nil {
					errs <- fmt.Errorf("conn %d: %v", i, err)
				} else if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("conn %d: received %d bytes, not the %d sent", i, len(got), size)
				}
			}()
		}
		wg.Wait()
		stop()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		slack := int64(2 * conns * memMinRing)
		for i, p := range []*Protocol{a.tcp, b.tcp} {
			st := p.Stats()
			t.Logf("host %d: peak %d bytes (limit %d), pressures %d, rcvq drops %d, ofo drops %d, prunes %d",
				i, peak[i], p.MemLimit, st.MemoryPressures.Load(), st.RcvQDrop.Load(), st.OFODrop.Load(), st.PruneCalled.Load())
			lim := int64(p.MemLimit)
			if peak[i] > lim+slack {
				t.Errorf("host %d: %d bytes charged, limit %d (+%d guaranteed minimums)", i, peak[i], lim, slack)
			}
			if peak[i] < lim/2 || st.MemoryPressures.Load() == 0 {
				t.Errorf("host %d: peak %d, %d pressures: the limit was never approached", i, peak[i], st.MemoryPressures.Load())
			}
			memAudit(t, fmt.Sprint("host ", i), p)
		}
		for i := range clients {
			servers[i].Close()
			clients[i].Close()
		}
		time.Sleep(5 * time.Second) // TIME_WAIT, FIN retransmissions
		synctest.Wait()
		for i, p := range []*Protocol{a.tcp, b.tcp} {
			if got := memAudit(t, fmt.Sprint("host ", i), p); got != 0 {
				t.Errorf("host %d: %d bytes still charged after every connection closed", i, got)
			}
			if p.UnderMemoryPressure() {
				t.Errorf("host %d: still under memory pressure with nothing allocated", i)
			}
		}
	})
}

// slowReadAll is readAll by an application that reads 16 KiB a
// millisecond.
func slowReadAll(ep transport.Endpoint, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	deadline := time.Now().Add(d)
	for {
		b, err := readN(ep, 16<<10, time.Until(deadline))
		out.Write(b)
		if err != nil {
			if len(b) < 16<<10 && err.Error() == fmt.Sprintf("EOF after %d of %d bytes", len(b), 16<<10) {
				return out.Bytes(), nil
			}
			return out.Bytes(), err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMemPressure: while connections whose applications do not read hold
// the memory (past MemPressure, near MemLimit), a new connection still
// connects and moves its data, intact, in what is left; and
// auto-tuning grows neither of its buffers (Linux
// tcp_should_expand_sndbuf and tcp_grow_window under
// tcp_under_memory_pressure) although the path would have it grow them.
func TestMemPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 29, emu.Impairments{Delay: 10 * time.Millisecond, Rate: 100e6, Limit: 10000})
		for _, h := range []*host{a, b} {
			h.tcp.MemLimit, h.tcp.MemPressure = 600<<10, 128<<10
		}
		// Two hogs: the client writes until its buffer is full, the server
		// never reads.
		for i := 0; i < 2; i++ {
			c, _ := connPair(t, a, b, false)
			go writeAll(c, randomBytes(uint64(i), 2<<20), time.Hour)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for i, p := range []*Protocol{a.tcp, b.tcp} {
			t.Logf("host %d: %d bytes held by the hogs", i, p.MemAllocated())
			if !p.UnderMemoryPressure() {
				t.Fatalf("host %d: %d bytes allocated, not under memory pressure", i, p.MemAllocated())
			}
		}
		c, s := connPair(t, a, b, false)
		data := randomBytes(77, 2<<20)
		werr := make(chan error, 1)
		go func() {
			err := writeAll(c, data, 10*time.Minute)
			c.Shutdown(syscall.SHUT_WR)
			werr <- err
		}()
		got, err := readAll(s, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("received %d bytes, not what was sent", len(got))
		}
		// Under pressure an emptied ring goes back at once, not after
		// ringIdle (no fake time has passed since the last read).
		s.mu.Lock()
		kept := len(s.rcv.b)
		s.mu.Unlock()
		if kept != 0 {
			t.Errorf("the reader's emptied ring kept %d bytes under memory pressure", kept)
		}
		if rb := sockBuf(t, s, syscall.SO_RCVBUF); rb != transport.DefaultRcvBuf {
			t.Errorf("SO_RCVBUF auto-tuned to %d under memory pressure", rb)
		}
		if sb := sockBuf(t, c, syscall.SO_SNDBUF); sb != transport.DefaultSndBuf {
			t.Errorf("SO_SNDBUF auto-tuned to %d under memory pressure", sb)
		}
		for i, p := range []*Protocol{a.tcp, b.tcp} {
			if got := p.MemAllocated(); got > 600<<10+4*memMinRing {
				t.Errorf("host %d: %d bytes allocated, limit %d", i, got, 600<<10)
			}
			memAudit(t, fmt.Sprint("host ", i), p)
		}
	})
}

// TestMemHardLimit: with no memory left beyond the guaranteed minimum,
// data the peer sends into the window offered earlier is dropped,
// in-order (TCPRcvQDrop) and out-of-order (TCPOFODrop) alike; the
// window's right edge, never moved back, advances only as far as the
// memory held allows (to a zero window when it is full); and the
// transfer still completes intact in the minimum buffer.
func TestMemHardLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		b.tcp.MemLimit = 1 // nothing past the minimum for the receiver
		s.mu.Lock()
		edge0, shift := s.rcvAdv, s.rcvShift
		s.mu.Unlock()
		data := randomBytes(41, 256<<10)
		werr := make(chan error, 1)
		go func() {
			err := writeAll(c, data, 10*time.Minute)
			c.Shutdown(syscall.SHUT_WR)
			werr <- err
		}()
		peak, stop := memSampler(b.tcp)
		time.Sleep(time.Second) // the application is late: the ring fills
		got, err := slowReadAll(s, 10*time.Minute)
		stop()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("received %d bytes, not what was sent", len(got))
		}
		st := b.tcp.Stats()
		t.Logf("peaks %v, rcvq drops %d, ofo drops %d", peak, st.RcvQDrop.Load(), st.OFODrop.Load())
		if st.RcvQDrop.Load() == 0 {
			t.Errorf("no in-order data dropped although the window offered outgrew the memory")
		}
		// The right edge offered before the limit is kept (RFC 9293
		// §3.8.6: no shrinking), but it moves no further than the memory
		// held allows.
		for _, r := range rec.received() {
			if r.flags&wire.TCPFlagSYN != 0 || r.flags&wire.TCPFlagACK == 0 {
				continue
			}
			edge := seqnum.Value(r.ack).Add(seqnum.Size(int(r.wnd) << shift))
			// (1<<shift: the scaled field rounds the edge kept up, as
			// Linux's ALIGN(cur_win, 1 << rcv_wscale).)
			if held := seqnum.Value(r.ack).Add(memMinRing); edge0.Add(1<<shift).LessThan(edge) && held.LessThan(edge) {
				t.Fatalf("window edge %d offered: past both the edge before (%d) and what one ring holds (%d)", edge, edge0, held)
			}
			edge0 = seqnum.Max(edge0, edge)
		}
		if peak[0] > memMinRing {
			t.Errorf("%d bytes charged, more than one ring's minimum", peak[0])
		}
	})
}

// TestMemAccountingReleased: every way a connection ends gives its
// charge back, and so does an idle one: an orderly close through
// TIME_WAIT, an abortive close with unread data (a reset both ways),
// orphans that time out after their stack closed, and a listener closed
// with children that were never accepted but had received data.
func TestMemAccountingReleased(t *testing.T) {
	data := randomBytes(3, 100<<10)
	settle := func(t *testing.T, a, b *host, what string) {
		t.Helper()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for i, p := range []*Protocol{a.tcp, b.tcp} {
			if got := memAudit(t, what, p); got != 0 {
				t.Errorf("%s: host %d still charged %d bytes", what, i, got)
			}
		}
	}
	held := func(t *testing.T, p *Protocol, what string) {
		t.Helper()
		if got := memAudit(t, what, p); got == 0 {
			t.Fatalf("%s: nothing charged while data is queued", what)
		}
	}
	t.Run("close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			a.tcp.TimeWait, b.tcp.TimeWait = time.Second, time.Second
			c, s := connPair(t, a, b, false)
			if err := writeAll(c, data, time.Minute); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			held(t, b.tcp, "close")
			if _, err := readN(s, len(data), time.Minute); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * ringIdle) // idle: the rings go back (onRingIdle)
			synctest.Wait()
			for i, p := range []*Protocol{a.tcp, b.tcp} {
				if got := memAudit(t, "idle", p); got != 0 {
					t.Errorf("idle: host %d still charged %d bytes", i, got)
				}
			}
			c.Close() // FIN_WAIT, then TIME_WAIT with the server's FIN
			if _, err := readAll(s, time.Minute); err != nil {
				t.Fatal(err)
			}
			s.Close()
			settle(t, a, b, "close")
		})
	})
	t.Run("reset", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			c, s := connPair(t, a, b, false)
			if err := writeAll(s, data, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := writeAll(c, data, time.Minute); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			held(t, b.tcp, "reset")
			held(t, a.tcp, "reset")
			s.Close() // unread data: a RST, and the client's unread data stays for it
			synctest.Wait()
			if got := b.tcp.MemAllocated(); got != 0 {
				t.Errorf("reset: the closing end still charged %d bytes", got)
			}
			c.Close()
			settle(t, a, b, "reset")
		})
	})
	t.Run("stack closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			c, s := connPair(t, a, b, false)
			a.s.Close() // the network goes; the connections remain
			b.s.Close()
			if _, err := c.Write([][]byte{data}, transport.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			held(t, a.tcp, "stack closed")
			c.Close() // orphans in FIN_WAIT1 whose data never goes
			s.Close()
			time.Sleep(2 * time.Hour) // tcp_retries2 timeouts
			synctest.Wait()
			for i, p := range []*Protocol{a.tcp, b.tcp} {
				if got := memAudit(t, "stack closed", p); got != 0 {
					t.Errorf("stack closed: host %d still charged %d bytes", i, got)
				}
			}
		})
	})
	t.Run("abort", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 99), 8)
			var cs []*endpoint
			for i := 0; i < 3; i++ {
				c := a.open(t, syscall.AF_INET)
				mustConnect(t, c, ap(addrB4, 99))
				if _, err := c.Write([][]byte{data}, transport.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			synctest.Wait()
			held(t, b.tcp, "abort") // children in the accept queue hold what they received
			l.Close()
			for _, c := range cs {
				c.Close()
			}
			settle(t, a, b, "abort")
		})
	})
}

// TestMemPruneOutOfOrder: at the hard limit the receive ring gives up its
// out-of-order data first (Linux tcp_prune_ofo_queue): the ring shrinks,
// the charge falls, the pruned ranges are in no later SACK block (RFC
// 2018 §8 reneging), and the transfer still completes intact (the sender
// resends what it had seen SACKed).
func TestMemPruneOutOfOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		c.mu.Lock()
		first := c.sndNxt
		c.mu.Unlock()
		var dropping atomic.Bool
		dropping.Store(true)
		rec.setDrop(func(r segRecord) bool { return dropping.Load() && r.n > 0 && r.seq == uint32(first) })
		data := randomBytes(9, 48<<10)
		if err := writeAll(c, data, time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		s.mu.Lock()
		before, ooo := len(s.rcv.b), s.ooo.Len()
		charged := b.tcp.MemAllocated()
		if ooo == 0 || s.rcv.n != 0 {
			s.mu.Unlock()
			t.Fatalf("no out-of-order data to prune: %d ranges, %d in order", ooo, s.rcv.n)
		}
		if !s.pruneRcvLocked() {
			t.Errorf("prune freed nothing from a %d-byte ring", before)
		}
		after := len(s.rcv.b)
		blocks := s.warmLocked(time.Now()).sackRep.AppendBlocks(nil, s.rcvNxt, 4, &s.ooo)
		for _, bl := range blocks {
			if bl.End.LessThanEq(s.rcvNxt) {
				continue // a D-SACK
			}
			if s.rcvNxt.Add(seqnum.Size(after)).LessThan(bl.End) {
				t.Errorf("SACK block %v reports data past the %d bytes kept", bl, after)
			}
		}
		s.mu.Unlock()
		if got := b.tcp.MemAllocated(); got != charged-int64(before-after) || after >= before {
			t.Errorf("ring %d → %d bytes, charge %d → %d", before, after, charged, got)
		}
		if b.tcp.Stats().OfoPruned.Load() == 0 {
			t.Errorf("OfoPruned not counted")
		}
		memAudit(t, "after prune", b.tcp)
		dropping.Store(false)
		c.Shutdown(syscall.SHUT_WR)
		got, err := readAll(s, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
		}
	})
}
