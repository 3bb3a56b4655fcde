package tcp

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestConnectRefused: a SYN to a port without a listener is answered
// with <RST,ACK> (RFC 9293 §3.10.7.1) and connect fails with
// ECONNREFUSED.
func TestConnectRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c := a.open(t, syscall.AF_INET)
		err := connect(t, c, ap(addrB4, 9999), time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect: %v, want ECONNREFUSED", err)
		}
		var rst *segRecord
		for _, s := range rec.received() {
			if s.flags&wire.TCPFlagRST != 0 {
				rst = &s
			}
		}
		if rst == nil || rst.flags != wire.TCPFlagRST|wire.TCPFlagACK || rst.seq != 0 {
			t.Fatalf("reset %+v, want <SEQ=0><RST,ACK>", rst)
		}
		if n := a.tcp.Stats().AttemptFails.Load(); n != 1 {
			t.Errorf("AttemptFails %d", n)
		}
		if n := b.tcp.Stats().OutRsts.Load(); n != 1 {
			t.Errorf("peer OutRsts %d", n)
		}
		if st := c.Info().State; st != "CLOSE" {
			t.Errorf("state %s", st)
		}
		// A second connect on the failed socket reports nothing new.
		if _, err := c.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); err == nil {
			t.Error("read on a refused socket succeeded")
		}
	})
}

// TestSynRetriesTimeout: with every answer lost, the SYN goes out
// 1 + tcp_syn_retries (6) times with a doubling RTO from 1 s, and connect
// fails with ETIMEDOUT after 127 s.
func TestSynRetriesTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		brec.setDrop(func(segRecord) bool { return true }) // the server's answers are lost
		c := a.open(t, syscall.AF_INET)
		start := time.Now()
		err := connect(t, c, ap(addrB4, 80), 200*time.Second)
		took := time.Since(start)
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("connect: %v, want ETIMEDOUT", err)
		}
		if took < 127*time.Second || took > 128*time.Second {
			t.Errorf("gave up after %v, want 127 s", took)
		}
		syns := 0
		for _, s := range rec.sent() {
			if s.flags&wire.TCPFlagSYN != 0 {
				syns++
			}
		}
		if syns != 7 {
			t.Errorf("%d SYNs sent, want 7", syns)
		}
	})
}

// TestResetOnCloseWithUnreadData: closing with unread data aborts with a
// RST (RFC 9293 §3.10.4, Linux tcp_close); the peer's read fails with
// ECONNRESET and its write with EPIPE afterwards.
func TestResetOnCloseWithUnreadData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		c, s := connPair(t, a, b, false)
		if err := writeAll(c, []byte("unread"), time.Second); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		s.Close()
		if !wait(c, waiter.EventErr, time.Second) {
			t.Fatal("no error on the client")
		}
		if _, err := c.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v, want ECONNRESET", err)
		}
		if res, err := c.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); err != nil || res.N != 0 {
			t.Fatalf("second read: %d, %v, want EOF", res.N, err)
		}
		if _, err := c.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write: %v, want EPIPE", err)
		}
		if n := a.tcp.Stats().EstabResets.Load(); n != 1 {
			t.Errorf("EstabResets %d", n)
		}
		if n := a.tcp.Stats().CurrEstab.Load(); n != 0 {
			t.Errorf("CurrEstab %d", n)
		}
	})
}

// TestLingerZeroAborts: SO_LINGER on with a zero timeout makes Close send
// a RST instead of a FIN.
func TestLingerZeroAborts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		if err := c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if !wait(s, waiter.EventErr, time.Second) {
			t.Fatal("no reset at the server")
		}
		if _, err := s.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v, want ECONNRESET", err)
		}
		for _, sg := range rec.sent() {
			if sg.flags&wire.TCPFlagFIN != 0 {
				t.Fatal("a FIN was sent")
			}
		}
		if len(a.tcp.Endpoints()) != 0 {
			t.Errorf("endpoints left: %v", a.tcp.Endpoints())
		}
	})
}

// TestRFC5961: an in-window RST that is not exact, and a SYN on an
// established connection, each get a challenge ACK and leave the
// connection up; a burst of them gets one per 500 ms; the exact RST
// resets it.
func TestRFC5961(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		local, remote := c.LocalAddr(), ap(addrB4, 80)
		_, rcvNxt, wnd := snapshot(c)
		acks := func() int {
			n := 0
			for _, sg := range rec.sent() {
				if sg.flags == wire.TCPFlagACK && sg.n == 0 && sg.ack == rcvNxt {
					n++
				}
			}
			return n
		}
		before := acks()
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt + uint32(wnd/2), Flags: wire.TCPFlagRST}, nil)
		synctest.Wait()
		if acks() != before+1 {
			t.Fatalf("in-window RST: %d challenge ACKs, want 1", acks()-before)
		}
		if st := c.Info().State; st != "ESTABLISHED" {
			t.Fatalf("after an inexact RST: %s", st)
		}
		// A second challenge within Linux's 500 ms (tcp_invalid_ratelimit)
		// would be suppressed.
		time.Sleep(time.Second)
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt + 100, Flags: wire.TCPFlagSYN}, nil)
		synctest.Wait()
		if acks() != before+2 {
			t.Fatalf("SYN: %d challenge ACKs in all, want 2", acks()-before)
		}
		if st := c.Info().State; st != "ESTABLISHED" {
			t.Fatalf("after a SYN: %s", st)
		}
		for range 5 {
			in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt + 100, Flags: wire.TCPFlagSYN}, nil)
		}
		synctest.Wait()
		if acks() != before+2 {
			t.Fatalf("a burst of SYNs right after a challenge: %d more challenge ACKs, want 0", acks()-before-2)
		}
		// Out-of-window RST: ignored silently (an ACK answers only a
		// non-RST unacceptable segment).
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt - 10000, Flags: wire.TCPFlagRST}, nil)
		synctest.Wait()
		if acks() != before+2 || c.Info().State != "ESTABLISHED" {
			t.Fatalf("out-of-window RST changed something")
		}
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt, Flags: wire.TCPFlagRST}, nil)
		synctest.Wait()
		if _, err := c.Read([][]byte{make([]byte, 1)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the exact RST, read: %v", err)
		}
		_ = s
	})
}

// TestHalfClose: after the client's SHUT_WR the server reads EOF but can
// still send, and the client reads it all (RFC 9293 §3.6).
func TestHalfClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		c, s := connPair(t, a, b, true)
		if err := c.Shutdown(syscall.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(s, time.Second); err != nil || len(got) != 0 {
			t.Fatalf("server: %q, %v", got, err)
		}
		if st := s.Info().State; st != "CLOSE_WAIT" {
			t.Errorf("server in %s", st)
		}
		if _, err := c.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("write after SHUT_WR: %v, want EPIPE", err)
		}
		data := randomBytes(9, 300<<10)
		go func() {
			writeAll(s, data, time.Minute)
			s.Close()
		}()
		got, err := readAll(c, time.Minute)
		if err != nil || string(got) != string(data) {
			t.Fatalf("client read %d bytes, %v", len(got), err)
		}
		synctest.Wait()
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Errorf("client in %s", st)
		}
	})
}

// TestTimeWaitExpiry: TIME_WAIT lasts Protocol.TimeWait (60 s by default)
// and the endpoint then leaves the table; a FIN retransmitted in
// TIME_WAIT is acknowledged.
func TestTimeWaitExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		c, s := connPair(t, a, b, false)
		c.Close()
		readAll(s, time.Second)
		s.Close()
		synctest.Wait()
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Fatalf("client in %s", st)
		}
		if n := len(a.tcp.Endpoints()); n != 1 {
			t.Fatalf("%d endpoints listed, want the TIME_WAIT one", n)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if n := len(a.tcp.Endpoints()); n != 1 {
			t.Fatalf("after 59 s: %d endpoints", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := len(a.tcp.Endpoints()); n != 0 {
			t.Fatalf("after 61 s: %v", a.tcp.Endpoints())
		}
		// Configurable.
		a.tcp.TimeWait = 5 * time.Second
		c2, s2 := connPair(t, a, b, true)
		c2.Close()
		readAll(s2, time.Second)
		s2.Close()
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if n := len(a.tcp.Endpoints()); n != 0 {
			t.Fatalf("TimeWait 5 s: %v after 6 s", a.tcp.Endpoints())
		}
	})
}

// TestSimultaneousOpen: two sockets connecting to each other at once
// cross SYNs, go through SYN_RECV and both become established (RFC 9293
// §3.5 figure 8).
func TestSimultaneousOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 7, emu.Impairments{Delay: 10 * time.Millisecond})
		ca, cb := a.open(t, syscall.AF_INET), b.open(t, syscall.AF_INET)
		if err := ca.Bind(ap(addrA4, 5001)); err != nil {
			t.Fatal(err)
		}
		if err := cb.Bind(ap(addrB4, 5002)); err != nil {
			t.Fatal(err)
		}
		// Learn the neighbours first so both SYNs leave at once.
		a.s.FindRoute(0, netip.Addr{}, addrB4)
		if err := ca.Connect(ap(addrB4, 5002)); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatal(err)
		}
		if err := cb.Connect(ap(addrA4, 5001)); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatal(err)
		}
		for _, ep := range []*endpoint{ca, cb} {
			if !wait(ep, waiter.EventOut, 10*time.Second) {
				t.Fatalf("%s: not connected", dump(ep))
			}
			if st := ep.Info().State; st != "ESTABLISHED" {
				t.Fatalf("state %s", st)
			}
		}
		writeAll(ca, []byte("ping"), time.Second)
		if got, err := readN(cb, 4, time.Second); err != nil || string(got) != "ping" {
			t.Fatalf("read %q %v", got, err)
		}
	})
}

// TestSimultaneousClose: both ends send FIN at once, pass through CLOSING
// and both end in TIME_WAIT.
func TestSimultaneousClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 7, emu.Impairments{Delay: 10 * time.Millisecond})
		c, s := connPair(t, a, b, false)
		c.Shutdown(syscall.SHUT_WR)
		s.Shutdown(syscall.SHUT_WR)
		if c.Info().State != "FIN_WAIT1" || s.Info().State != "FIN_WAIT1" {
			t.Fatalf("states %s %s", c.Info().State, s.Info().State)
		}
		time.Sleep(15 * time.Millisecond) // the FINs have crossed
		if c.Info().State != "CLOSING" || s.Info().State != "CLOSING" {
			t.Fatalf("states %s %s, want CLOSING", c.Info().State, s.Info().State)
		}
		time.Sleep(20 * time.Millisecond)
		if c.Info().State != "TIME_WAIT" || s.Info().State != "TIME_WAIT" {
			t.Fatalf("states %s %s, want TIME_WAIT", c.Info().State, s.Info().State)
		}
	})
}

// TestListenBacklog: the accept queue holds backlog+1 connections (as
// Linux); further SYNs are dropped until accept makes room, and the
// client's retransmitted SYN then gets through.
func TestListenBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 1)
		var cs []*endpoint
		for i := range 3 {
			c := a.open(t, syscall.AF_INET)
			c.Connect(ap(addrB4, 80))
			cs = append(cs, c)
			if i < 2 {
				wait(c, waiter.EventOut, time.Second)
			}
			synctest.Wait()
		}
		time.Sleep(100 * time.Millisecond)
		if st := cs[2].Info().State; st != "SYN_SENT" {
			t.Fatalf("third client in %s, want SYN_SENT (SYN dropped)", st)
		}
		if in := l.Info(); in.RecvQ != 2 {
			t.Fatalf("accept queue %d, want 2", in.RecvQ)
		}
		accept(t, l, time.Second)
		if !wait(cs[2], waiter.EventOut, 5*time.Second) || cs[2].Info().State != "ESTABLISHED" {
			t.Fatalf("third client: %s", dump(cs[2]))
		}
		accept(t, l, time.Second)
		accept(t, l, time.Second)
		if n := b.tcp.Stats().PassiveOpens.Load(); n != 3 {
			t.Errorf("PassiveOpens %d", n)
		}
		// Closing the listener resets what is still queued.
		c4 := a.open(t, syscall.AF_INET)
		mustConnect(t, c4, ap(addrB4, 80))
		l.Close()
		if !wait(c4, waiter.EventErr, time.Second) {
			t.Fatal("queued connection not reset when the listener closed")
		}
	})
}

// TestKeepalive: with SO_KEEPALIVE an idle connection is probed after
// TCP_KEEPIDLE; answered probes keep it up, and after TCP_KEEPCNT
// unanswered ones every TCP_KEEPINTVL it fails with ETIMEDOUT.
func TestKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		c, _ := connPair(t, a, b, false)
		for _, o := range [][3]int{{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 10},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 2}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 3}} {
			if err := c.SetSockOpt(o[0], o[1], o[2]); err != nil {
				t.Fatal(err)
			}
		}
		probes := func() int {
			n := 0
			for _, s := range rec.sent() {
				if s.flags == wire.TCPFlagACK && s.n == 0 && s.seq+1 == uint32(c.sndUna) {
					n++
				}
			}
			return n
		}
		time.Sleep(35 * time.Second)
		synctest.Wait()
		if n := probes(); n != 3 {
			t.Fatalf("%d probes in 35 s (answered), want 3", n)
		}
		if st := c.Info().State; st != "ESTABLISHED" {
			t.Fatalf("state %s", st)
		}
		brec.setDrop(func(segRecord) bool { return true })
		start := time.Now()
		if !wait(c, waiter.EventErr, time.Minute) {
			t.Fatal("no keep-alive timeout")
		}
		// The next probe comes within 10 s, then 3 unanswered at 2 s.
		if took := time.Since(start); took > 17*time.Second {
			t.Errorf("timed out after %v", took)
		}
		if _, err := c.Read([][]byte{make([]byte, 1)}, transport.ReadOptions{}); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("read: %v, want ETIMEDOUT", err)
		}
	})
}

// TestZeroWindow: a receiver that does not read closes its window; the
// sender probes (persist timer) instead of giving up, and the transfer
// completes when the reader drains the buffer (the window update).
func TestZeroWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		l := b.open(t, syscall.AF_INET)
		l.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192) // 16 KiB after Linux's doubling
		l.Bind(ap(netip.Addr{}, 80))
		l.Listen(4)
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		s := accept(t, l, time.Second)
		data := randomBytes(3, 200<<10)
		done := make(chan error, 1)
		go func() { done <- writeAll(c, data, 10*time.Minute) }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		zero := false
		for _, sg := range rec.received() {
			if sg.flags&wire.TCPFlagSYN == 0 && sg.wnd == 0 {
				zero = true
			}
		}
		if !zero {
			t.Fatal("the receiver never advertised a zero window")
		}
		probes := 0
		for _, sg := range rec.sent() {
			if sg.n == 0 && sg.flags == wire.TCPFlagACK && sg.seq+1 == uint32(c.sndUna) {
				probes++
			}
		}
		if probes < 3 {
			t.Fatalf("%d zero-window probes in 30 s", probes)
		}
		if st := c.Info().State; st != "ESTABLISHED" {
			t.Fatalf("sender in %s", st)
		}
		got, err := readN(s, len(data), time.Minute)
		if err != nil || string(got) != string(data) {
			t.Fatalf("read %d bytes: %v", len(got), err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestReconnectAfterFailure: a socket whose connect was refused may
// connect again (Linux allows it), with a fresh ephemeral port; an
// explicitly bound one keeps its port.
func TestReconnectAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		c := a.open(t, syscall.AF_INET)
		if err := connect(t, c, ap(addrB4, 80), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("first connect: %v", err)
		}
		if n := a.tcp.Ports().Len(); n != 0 {
			t.Fatalf("%d ports held after the refusal", n)
		}
		b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		mustConnect(t, c, ap(addrB4, 80))
		d := a.open(t, syscall.AF_INET)
		d.Bind(ap(addrA4, 6000))
		if err := connect(t, d, ap(addrB4, 81), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("bound connect: %v", err)
		}
		if got := d.LocalAddr(); got != ap(addrA4, 6000) {
			t.Fatalf("bound socket now at %v", got)
		}
		mustConnect(t, d, ap(addrB4, 80))
	})
}

// TestDualStack: an AF_INET6 wildcard listener takes IPv4 connections
// and names their peers as IPv4-mapped addresses; with IPV6_V6ONLY it
// does not, and the SYN is answered with a reset.
func TestDualStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		l := b.listen(t, syscall.AF_INET6, ap(netip.Addr{}, 80), 4)
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		wait(l, waiter.EventIn, time.Second)
		s, peer, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := ap(netip.AddrFrom16(addrA4.As16()), c.LocalAddr().Port()); peer != want {
			t.Errorf("peer %v, want %v", peer, want)
		}
		if got := s.LocalAddr(); got != ap(netip.AddrFrom16(addrB4.As16()), 80) {
			t.Errorf("local %v", got)
		}
		l6 := b.open(t, syscall.AF_INET6)
		if err := l6.SetSockOpt(syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1); err != nil {
			t.Fatal(err)
		}
		l6.Bind(ap(netip.IPv6Unspecified(), 81))
		l6.Listen(4)
		c2 := a.open(t, syscall.AF_INET)
		if err := connect(t, c2, ap(addrB4, 81), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("IPv4 to a V6ONLY listener: %v", err)
		}
	})
}

// TestSynCookies: with the SYN queue full of half-open connections from
// a spoofed address, a real client still gets in through a SYN cookie
// (RFC 4987 §3.6) with its MSS, window scale, SACK and timestamps intact
// (carried in the cookie and the timestamp); with cookies off its SYN is
// dropped.
func TestSynCookies(t *testing.T) {
	for _, off := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			nw := newNet(t, 7)
			a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
			b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
			b.tcp.DisableSynCookies = off
			in := newInjector(t, nw)
			l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
			spoof := netip.MustParseAddr("10.0.0.99") // nobody answers ARP for it
			for i := range 20 {
				in.send(t, b.port.MAC(), ap(spoof, uint16(1000+i)), ap(addrB4, 80),
					wire.TCPFields{Seq: uint32(i) * 1000, Flags: wire.TCPFlagSYN, Window: 1000,
						Options: wire.TCPOptions{HasMSS: true, MSS: 1460}}, nil)
			}
			synctest.Wait()
			l.mu.Lock()
			n := l.synQ
			l.mu.Unlock()
			if n != 8 {
				t.Fatalf("SYN queue %d, want full at 8", n)
			}
			c := a.open(t, syscall.AF_INET)
			err := connect(t, c, ap(addrB4, 80), 500*time.Millisecond)
			if off {
				if err == nil {
					t.Fatal("connected with the SYN queue full and cookies off")
				}
				return
			}
			if err != nil {
				t.Fatalf("connect through a cookie: %v", err)
			}
			s := accept(t, l, time.Second)
			v, _ := s.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
			if info := v.(TCPInfo); info.Options != TCPIOptTimestamps|TCPIOptSACK|TCPIOptWscale || info.SndWscale != 7 || info.SndMSS != 1448 {
				t.Errorf("cookie connection: %+v", info)
			}
			data := randomBytes(2, 300<<10)
			go func() { writeAll(c, data, time.Minute); c.Shutdown(syscall.SHUT_WR) }()
			got, err := readAll(s, time.Minute)
			if err != nil || string(got) != string(data) {
				t.Fatalf("read %d bytes: %v", len(got), err)
			}
			writeAll(s, []byte("ok"), time.Second)
			if got, err := readN(c, 2, time.Second); err != nil || string(got) != "ok" {
				t.Fatalf("client read %q %v", got, err)
			}
		})
	}
}

// TestZeroWindowPeerGone: zero-window probes that bring back nothing end
// the connection with ETIMEDOUT after tcp_retries2 of them (Linux
// tcp_probe_timer), while answered ones (TestZeroWindow) never do.
func TestZeroWindowPeerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		l := b.open(t, syscall.AF_INET)
		l.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192)
		l.Bind(ap(netip.Addr{}, 80))
		l.Listen(4)
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		accept(t, l, time.Second)
		go writeAll(c, randomBytes(3, 100<<10), time.Hour)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		c.mu.Lock()
		w := c.sndWnd
		c.mu.Unlock()
		if w != 0 {
			t.Fatalf("window not closed: %s", dump(c))
		}
		brec.setDrop(func(segRecord) bool { return true }) // the receiver vanishes
		if !wait(c, waiter.EventErr, time.Hour) {
			t.Fatalf("still up after an hour of unanswered probes: %s", dump(c))
		}
		if _, err := c.Read([][]byte{make([]byte, 1)}, transport.ReadOptions{}); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("read: %v, want ETIMEDOUT", err)
		}
	})
}
