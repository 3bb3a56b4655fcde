package tcp

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Tests for behaviours a review found untested: per-transition states,
// RST outside ESTABLISHED, the immediate ACK for out-of-order data,
// Karn's rule, TCP_INFO's RTT and retransmission fields, silly window
// avoidance and TCP_CORK.

// recBoth is two hosts with a recorder on each link, with the
// impairments on each port's outgoing direction.
func recBoth(t *testing.T, im emu.Impairments) (nw *emu.Network, a *host, arec *recorder, b *host, brec *recorder) {
	t.Helper()
	nw = newNet(t, 7)
	cfg := emu.PortConfig{Out: im}
	a, arec = newRecHost(t, nw, cfg, "10.0.0.1/24")
	b, brec = newRecHost(t, nw, cfg, "10.0.0.2/24")
	return nw, a, arec, b, brec
}

// stateOf finds the connection local → remote among a host's endpoints
// and returns its state ("" if there is none).
func stateOf(h *host, local, remote netip.AddrPort) string {
	for _, in := range h.tcp.Endpoints() {
		if in.Local == local && in.Remote == remote {
			return in.State
		}
	}
	return ""
}

// pureAcks counts the bare ACKs from src acknowledging ack.
func pureAcks(segs []segRecord, src netip.AddrPort, ack uint32) int {
	n := 0
	for _, sg := range segs {
		if sg.src == src && sg.flags == wire.TCPFlagACK && sg.n == 0 && sg.ack == ack {
			n++
		}
	}
	return n
}

// lastFrom is the latest segment rec's host received from src.
func lastFrom(rec *recorder, src netip.AddrPort) segRecord {
	var last segRecord
	for _, sg := range rec.received() {
		if sg.src == src {
			last = sg
		}
	}
	return last
}

func issOf(e *endpoint) uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return uint32(e.iss)
}

func remoteOf(e *endpoint) netip.AddrPort {
	r, _ := e.RemoteAddr()
	return r
}

func soError(t *testing.T, e *endpoint) syscall.Errno {
	t.Helper()
	v, err := e.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err != nil {
		t.Fatal(err)
	}
	return syscall.Errno(v.(int))
}

// TestStateSynRecv: a listener answers a SYN with a SYN-ACK and the
// child sits in SYN_RECV, not acceptable, until the handshake's final
// ACK moves it to ESTABLISHED (RFC 9293 §3.10.7.2, §3.10.7.4). The
// client's first ACK is lost, so the child stays in SYN_RECV until its
// SYN-ACK retransmission draws another ACK.
func TestStateSynRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, arec, b, brec := recBoth(t, emu.Impairments{})
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		arec.setDrop(func(r segRecord) bool { return r.flags == wire.TCPFlagACK && r.n == 0 })
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		synctest.Wait()
		server, client := ap(addrB4, 80), c.LocalAddr()
		synAcks := func() int {
			n := 0
			for _, sg := range brec.sent() {
				if sg.flags == wire.TCPFlagSYN|wire.TCPFlagACK && sg.dst == client && sg.ack == issOf(c)+1 {
					n++
				}
			}
			return n
		}
		if n := synAcks(); n != 1 {
			t.Fatalf("%d SYN-ACKs for the SYN, want 1", n)
		}
		if st := stateOf(b, server, client); st != "SYN_RECV" {
			t.Fatalf("child in %q, want SYN_RECV", st)
		}
		if _, _, err := l.Accept(); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("accept of a SYN_RECV child: %v, want EAGAIN", err)
		}
		arec.setDrop(nil)
		time.Sleep(500 * time.Millisecond)
		if st := stateOf(b, server, client); st != "SYN_RECV" {
			t.Fatalf("child in %q before the SYN-ACK retransmission", st)
		}
		time.Sleep(600 * time.Millisecond) // the SYN-ACK goes again at 1 s
		synctest.Wait()
		if n := synAcks(); n != 2 {
			t.Fatalf("%d SYN-ACKs, want 2", n)
		}
		if st := stateOf(b, server, client); st != "ESTABLISHED" {
			t.Fatalf("after the final ACK the child is in %q, want ESTABLISHED", st)
		}
		s := accept(t, l, time.Millisecond)
		if st := s.Info().State; st != "ESTABLISHED" {
			t.Fatalf("accepted %s", st)
		}
		writeAll(c, []byte("x"), time.Second)
		if got, err := readN(s, 1, time.Second); err != nil || string(got) != "x" {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}

// TestStateFinWait2LastAck walks both closes transition by transition
// over a 10 ms link (RFC 9293 §3.6, §3.10.7.4): the active closer goes
// FIN_WAIT1 → FIN_WAIT2 when its FIN is acknowledged and FIN_WAIT2 →
// TIME_WAIT on the peer's FIN; the passive closer CLOSE_WAIT → LAST_ACK
// when it closes and LAST_ACK → CLOSED when its FIN is acknowledged.
func TestStateFinWait2LastAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pairWith(t, 7, emu.Impairments{Delay: 10 * time.Millisecond})
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		check := func(when, wantC, wantS string) {
			t.Helper()
			if gc, gs := c.Info().State, s.Info().State; gc != wantC || gs != wantS {
				t.Fatalf("%s: client %s, server %s; want %s, %s", when, gc, gs, wantC, wantS)
			}
		}
		if err := c.Shutdown(syscall.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		check("FIN sent", "FIN_WAIT1", "ESTABLISHED")
		time.Sleep(15 * time.Millisecond)
		check("FIN arrived", "FIN_WAIT1", "CLOSE_WAIT")
		time.Sleep(10 * time.Millisecond)
		check("FIN acknowledged", "FIN_WAIT2", "CLOSE_WAIT")
		// FIN_WAIT2 after a half close waits for the peer indefinitely
		// (tcp_fin_timeout is for orphans).
		time.Sleep(2 * time.Minute)
		check("two minutes on", "FIN_WAIT2", "CLOSE_WAIT")
		if got, err := readAll(s, time.Second); err != nil || len(got) != 0 {
			t.Fatalf("server read %q, %v", got, err)
		}
		writeAll(s, []byte("bye"), time.Second)
		s.Close()
		check("server closed", "FIN_WAIT2", "LAST_ACK")
		// After two idle minutes the neighbour entries may need resolving
		// again: wait for the FIN to arrive rather than assume 10 ms.
		for i := 0; c.Info().State == "FIN_WAIT2" && i < 1000; i++ {
			time.Sleep(time.Millisecond)
		}
		check("server's FIN arrived", "TIME_WAIT", "LAST_ACK")
		time.Sleep(15 * time.Millisecond)
		check("server's FIN acknowledged", "TIME_WAIT", "CLOSE")
		if got, err := readAll(c, time.Second); err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v", got, err)
		}
		if n := len(b.tcp.Endpoints()); n != 1 { // the listener
			t.Errorf("server host lists %d endpoints, want the listener only: %v", n, b.tcp.Endpoints())
		}
	})
}

// TestStateFinWait1ToTimeWait: a FIN that also acknowledges ours takes
// FIN_WAIT1 straight to TIME_WAIT (RFC 9293 §3.10.7.4, the FIN bit in
// FIN-WAIT-1: "If our FIN has been ACKed ... enter TIME-WAIT"), and an
// ACK of that FIN answers it at once.
func TestStateFinWait1ToTimeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The delay keeps the real peer's answer to that ACK (a challenge
		// ACK: it never sent the FIN we injected) out of the count.
		nw, a, arec, b, _ := recBoth(t, emu.Impairments{Delay: 10 * time.Millisecond})
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		writeAll(s, []byte("hi"), time.Second)
		if got, err := readN(c, 2, time.Second); err != nil || string(got) != "hi" {
			t.Fatalf("read %q, %v", got, err)
		}
		synctest.Wait()
		last := lastFrom(arec, remoteOf(c))                // for its timestamp and window
		arec.setDrop(func(segRecord) bool { return true }) // the peer never hears of our FIN
		if err := c.Shutdown(syscall.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		arec.setDrop(nil)
		if st := c.Info().State; st != "FIN_WAIT1" {
			t.Fatalf("after shutdown: %s", st)
		}
		sndMax, rcvNxt, _ := snapshot(c)
		sent := len(arec.sent())
		in.send(t, a.port.MAC(), remoteOf(c), c.LocalAddr(), wire.TCPFields{Seq: rcvNxt, Ack: sndMax, Window: last.wnd,
			Flags:   wire.TCPFlagFIN | wire.TCPFlagACK,
			Options: wire.TCPOptions{HasTimestamps: true, TSVal: last.opts.TSVal, TSEcr: last.opts.TSEcr}}, nil)
		synctest.Wait()
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Fatalf("after FIN+ACK: %s, want TIME_WAIT", st)
		}
		if n := pureAcks(arec.sent()[sent:], c.LocalAddr(), rcvNxt+1); n != 1 {
			t.Fatalf("%d ACKs of the FIN, want 1", n)
		}
		if got, err := readAll(c, time.Second); err != nil || len(got) != 0 {
			t.Fatalf("read after the FIN: %q, %v, want EOF", got, err)
		}
	})
}

// TestRFC5961AckCheck: a segment whose ACK is for data never sent, or
// older than any window the peer could have seen, gets a challenge ACK
// and is dropped, data and all (RFC 5961 §5.2; RFC 9293 §3.10.7.4); the
// same data with an acceptable ACK is taken.
func TestRFC5961AckCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, a, arec, b, _ := recBoth(t, emu.Impairments{Delay: 10 * time.Millisecond})
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		writeAll(s, []byte("hi"), time.Second)
		readN(c, 2, time.Second)
		time.Sleep(time.Second)
		last := lastFrom(arec, remoteOf(c))
		sndMax, rcvNxt, _ := snapshot(c)
		inject := func(ack uint32) {
			in.send(t, a.port.MAC(), remoteOf(c), c.LocalAddr(), wire.TCPFields{Seq: rcvNxt, Ack: ack, Window: last.wnd,
				Flags:   wire.TCPFlagACK | wire.TCPFlagPSH,
				Options: wire.TCPOptions{HasTimestamps: true, TSVal: last.opts.TSVal, TSEcr: last.opts.TSEcr}}, []byte("evil"))
			synctest.Wait()
		}
		for i, ack := range []uint32{sndMax + 1000, sndMax - 1<<20} {
			sent := len(arec.sent())
			inject(ack)
			if n := pureAcks(arec.sent()[sent:], c.LocalAddr(), rcvNxt); n != 1 {
				t.Fatalf("ACK %d: %d challenge ACKs, want 1", i, n)
			}
			if _, nxt, _ := snapshot(c); nxt != rcvNxt {
				t.Fatalf("ACK %d: the data was taken (RCV.NXT moved %d)", i, nxt-rcvNxt)
			}
			time.Sleep(time.Second) // past the challenge ACK rate limit
		}
		inject(sndMax)
		if got, err := readN(c, 4, time.Second); err != nil || string(got) != "evil" {
			t.Fatalf("with an acceptable ACK: read %q, %v", got, err)
		}
	})
}

// TestRSTSynSent: in SYN_SENT a RST counts only with an acceptable ACK
// (RFC 9293 §3.10.7.3): a RST whose ACK is unacceptable, or with no ACK,
// is dropped without an answer; one acknowledging our SYN refuses the
// connection (ECONNREFUSED).
func TestRSTSynSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, a, arec, b, brec := recBoth(t, emu.Impairments{})
		in := newInjector(t, nw)
		b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		brec.setDrop(func(segRecord) bool { return true }) // the SYN-ACKs are lost
		c := a.open(t, syscall.AF_INET)
		if err := c.Connect(ap(addrB4, 80)); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatal(err)
		}
		synctest.Wait()
		iss, local, remote := issOf(c), c.LocalAddr(), ap(addrB4, 80)
		sent := len(arec.sent())
		for _, f := range []wire.TCPFields{
			{Seq: 1, Ack: iss + 1000, Flags: wire.TCPFlagRST | wire.TCPFlagACK}, // ACK beyond SND.NXT
			{Seq: 1, Ack: iss, Flags: wire.TCPFlagRST | wire.TCPFlagACK},        // ACK =< ISS
			{Seq: 1, Flags: wire.TCPFlagRST},                                    // no ACK
		} {
			in.send(t, a.port.MAC(), remote, local, f, nil)
			synctest.Wait()
			if st := c.Info().State; st != "SYN_SENT" {
				t.Fatalf("after RST %+v: %s, want SYN_SENT", f, st)
			}
		}
		if n := len(arec.sent()) - sent; n != 0 {
			t.Fatalf("%d segments answered the unacceptable RSTs: %+v", n, arec.sent()[sent:])
		}
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: 1, Ack: iss + 1, Flags: wire.TCPFlagRST | wire.TCPFlagACK}, nil)
		synctest.Wait()
		if st := c.Info().State; st != "CLOSE" {
			t.Fatalf("after an acceptable RST: %s", st)
		}
		if err := soError(t, c); err != syscall.ECONNREFUSED {
			t.Fatalf("SO_ERROR %v, want ECONNREFUSED", err)
		}
	})
}

// TestRSTSynRecv: a child in SYN_RECV (the client's final ACK lost)
// answers an in-window RST that is not exact with a challenge ACK
// (RFC 5961 §3.2), ignores one out of the window, and is dropped by the
// exact one (RFC 9293 §3.10.7.4: a passive open returns to LISTEN): it
// is gone, never accepted, and the listener goes on accepting.
func TestRSTSynRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, a, arec, b, brec := recBoth(t, emu.Impairments{})
		in := newInjector(t, nw)
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		arec.setDrop(func(r segRecord) bool { return r.flags == wire.TCPFlagACK && r.n == 0 })
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		synctest.Wait()
		server, client := ap(addrB4, 80), c.LocalAddr()
		if st := stateOf(b, server, client); st != "SYN_RECV" {
			t.Fatalf("child in %q, want SYN_RECV", st)
		}
		rcvNxt := issOf(c) + 1 // the child's RCV.NXT
		fails := b.tcp.Stats().AttemptFails.Load()
		rst := func(seq uint32) {
			in.send(t, b.port.MAC(), client, server, wire.TCPFields{Seq: seq, Flags: wire.TCPFlagRST}, nil)
			synctest.Wait()
		}
		rst(rcvNxt + 100)
		if n := pureAcks(brec.sent(), server, rcvNxt); n != 1 {
			t.Fatalf("in-window inexact RST: %d challenge ACKs, want 1", n)
		}
		if st := stateOf(b, server, client); st != "SYN_RECV" {
			t.Fatalf("after an inexact RST the child is in %q", st)
		}
		time.Sleep(600 * time.Millisecond) // past the challenge ACK rate limit, before the SYN-ACK goes again
		rst(rcvNxt - 70000)
		if n := pureAcks(brec.sent(), server, rcvNxt); n != 1 {
			t.Fatalf("out-of-window RST answered (%d ACKs in all)", n)
		}
		if st := stateOf(b, server, client); st != "SYN_RECV" {
			t.Fatalf("after an out-of-window RST the child is in %q", st)
		}
		rst(rcvNxt)
		if st := stateOf(b, server, client); st != "" {
			t.Fatalf("after the exact RST the child is still listed, in %s", st)
		}
		if n := b.tcp.Stats().AttemptFails.Load() - fails; n != 1 {
			t.Errorf("AttemptFails +%d, want 1", n)
		}
		if st := l.Info().State; st != "LISTEN" {
			t.Fatalf("listener in %s", st)
		}
		if _, _, err := l.Accept(); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("accept after the reset: %v, want EAGAIN", err)
		}
		arec.setDrop(nil)
		c2 := a.open(t, syscall.AF_INET)
		mustConnect(t, c2, ap(addrB4, 80))
		s2 := accept(t, l, time.Second)
		if remoteOf(s2) != c2.LocalAddr() {
			t.Fatalf("accepted %v, want the new client %v", remoteOf(s2), c2.LocalAddr())
		}
	})
}

// TestRSTSynchronizedStates: RFC 5961 §3.2's checks in the states other
// than ESTABLISHED (TestRFC5961): an in-window RST that is not exact
// draws a challenge ACK and changes nothing; one outside the window is
// dropped silently; the exact one resets the connection (RFC 9293
// §3.10.7.4) with Linux's tcp_reset errors: ECONNRESET in FIN_WAIT1,
// FIN_WAIT2 and LAST_ACK, EPIPE in CLOSE_WAIT; a reader that had the
// FIN sees EOF first.
func TestRSTSynchronizedStates(t *testing.T) {
	type setup struct {
		name  string
		state string
		// prepare drives the pair into the state and returns the end
		// under test, its host and that host's recorder.
		prepare func(t *testing.T, a, b *host, arec, brec *recorder, c, s *endpoint) (*endpoint, *host, *recorder)
		check   func(t *testing.T, e *endpoint)
	}
	readErr := func(want syscall.Errno) func(t *testing.T, e *endpoint) {
		return func(t *testing.T, e *endpoint) {
			if _, err := e.Read([][]byte{make([]byte, 8)}, transport.ReadOptions{}); !errors.Is(err, want) {
				t.Fatalf("read: %v, want %v", err, want)
			}
		}
	}
	cases := []setup{
		{"FinWait1", "FIN_WAIT1", func(t *testing.T, a, b *host, arec, brec *recorder, c, s *endpoint) (*endpoint, *host, *recorder) {
			brec.setDrop(func(segRecord) bool { return true }) // the FIN is never acknowledged
			c.Shutdown(syscall.SHUT_WR)
			return c, a, arec
		}, readErr(syscall.ECONNRESET)},
		{"FinWait2", "FIN_WAIT2", func(t *testing.T, a, b *host, arec, brec *recorder, c, s *endpoint) (*endpoint, *host, *recorder) {
			c.Shutdown(syscall.SHUT_WR)
			return c, a, arec
		}, readErr(syscall.ECONNRESET)},
		{"CloseWait", "CLOSE_WAIT", func(t *testing.T, a, b *host, arec, brec *recorder, c, s *endpoint) (*endpoint, *host, *recorder) {
			c.Shutdown(syscall.SHUT_WR)
			return s, b, brec
		}, func(t *testing.T, e *endpoint) {
			// The FIN came first: the reader sees EOF and SO_ERROR
			// keeps EPIPE (Linux tcp_recvmsg, SOCK_DONE before sk_err).
			if res, err := e.Read([][]byte{make([]byte, 8)}, transport.ReadOptions{}); err != nil || res.N != 0 {
				t.Fatalf("read: %d, %v, want EOF", res.N, err)
			}
			if err := soError(t, e); err != syscall.EPIPE {
				t.Fatalf("SO_ERROR %v, want EPIPE", err)
			}
			if _, err := e.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("write: %v, want EPIPE", err)
			}
		}},
		{"LastAck", "LAST_ACK", func(t *testing.T, a, b *host, arec, brec *recorder, c, s *endpoint) (*endpoint, *host, *recorder) {
			c.Shutdown(syscall.SHUT_WR)
			synctest.Wait()
			arec.setDrop(func(segRecord) bool { return true }) // the server's FIN is never acknowledged
			s.Shutdown(syscall.SHUT_WR)                        // not Close: the endpoint stays observable
			return s, b, brec
		}, func(t *testing.T, e *endpoint) {
			// Both directions were finished: the reader still sees its
			// EOF, SO_ERROR has ECONNRESET (Linux tcp_reset), the
			// writer EPIPE.
			if res, err := e.Read([][]byte{make([]byte, 8)}, transport.ReadOptions{}); err != nil || res.N != 0 {
				t.Fatalf("read: %d, %v, want EOF", res.N, err)
			}
			if err := soError(t, e); err != syscall.ECONNRESET {
				t.Fatalf("SO_ERROR %v, want ECONNRESET", err)
			}
			if _, err := e.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("write: %v, want EPIPE", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, a, arec, b, brec := recBoth(t, emu.Impairments{})
				in := newInjector(t, nw)
				c, s := connPair(t, a, b, false)
				synctest.Wait()
				e, h, rec := tc.prepare(t, a, b, arec, brec, c, s)
				synctest.Wait()
				if st := e.Info().State; st != tc.state {
					t.Fatalf("in %s, want %s", st, tc.state)
				}
				local, remote := e.LocalAddr(), remoteOf(e)
				_, rcvNxt, wnd := snapshot(e)
				if wnd < 1000 {
					t.Fatalf("receive window %d", wnd)
				}
				rst := func(seq uint32) {
					in.send(t, h.port.MAC(), remote, local, wire.TCPFields{Seq: seq, Flags: wire.TCPFlagRST}, nil)
					synctest.Wait()
				}
				before := pureAcks(rec.sent(), local, rcvNxt)
				rst(rcvNxt + uint32(wnd/2))
				if n := pureAcks(rec.sent(), local, rcvNxt) - before; n != 1 {
					t.Fatalf("in-window inexact RST: %d challenge ACKs, want 1", n)
				}
				if st := e.Info().State; st != tc.state {
					t.Fatalf("after an inexact RST: %s", st)
				}
				time.Sleep(time.Second) // past the challenge ACK rate limit
				for _, seq := range []uint32{rcvNxt - 10000, rcvNxt + uint32(wnd) + 10} {
					rst(seq)
				}
				if n := pureAcks(rec.sent(), local, rcvNxt) - before; n != 1 {
					t.Fatalf("out-of-window RSTs answered: %d ACKs in all", n)
				}
				if st := e.Info().State; st != tc.state {
					t.Fatalf("after out-of-window RSTs: %s", st)
				}
				rst(rcvNxt)
				if st := e.Info().State; st != "CLOSE" {
					t.Fatalf("after the exact RST: %s", st)
				}
				tc.check(t, e)
			})
		})
	}
}

// TestRSTTimeWait: in TIME_WAIT only an exact RST counts, and it ends
// TIME_WAIT (Linux tcp_timewait_state_process with tcp_rfc1337 = 0, the
// default; RFC 1337 would ignore it); an inexact or out-of-window RST is
// dropped without an answer, as Linux does, and TIME_WAIT goes on.
func TestRSTTimeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, a, arec, b, _ := recBoth(t, emu.Impairments{})
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		c.Close()
		readAll(s, time.Second)
		s.Close()
		synctest.Wait()
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Fatalf("client in %s", st)
		}
		local, remote := c.LocalAddr(), remoteOf(c)
		_, rcvNxt, wnd := snapshot(c)
		sent := len(arec.sent())
		for _, seq := range []uint32{rcvNxt + uint32(wnd/2), rcvNxt + 1, rcvNxt - 1, rcvNxt - 10000} {
			in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: seq, Flags: wire.TCPFlagRST}, nil)
		}
		synctest.Wait()
		if n := len(arec.sent()) - sent; n != 0 {
			t.Fatalf("%d answers to inexact RSTs in TIME_WAIT", n)
		}
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Fatalf("after inexact RSTs: %s", st)
		}
		in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: rcvNxt, Flags: wire.TCPFlagRST}, nil)
		synctest.Wait()
		if n := len(a.tcp.Endpoints()); n != 0 {
			t.Fatalf("after the exact RST: %v, want TIME_WAIT ended", a.tcp.Endpoints())
		}
		if n := len(arec.sent()) - sent; n != 0 {
			t.Fatalf("%d answers to the RST", n)
		}
	})
}

// TestOutOfOrderAckNow: a segment above a hole is acknowledged at once,
// not after the delayed-ACK timer (RFC 9293 §3.10.7.4, RFC 5681 §4.2:
// "an immediate duplicate ACK"), and the ACK carries a SACK block for
// it (RFC 2018 §4).
func TestOutOfOrderAckNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, arec, b, brec := recBoth(t, emu.Impairments{Delay: 5 * time.Millisecond})
		c, s := connPair(t, a, b, false)
		c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		sndNxt, _, _ := snapshot(c)
		mss := uint32(c.mss)
		arec.setDrop(func(r segRecord) bool { return r.n > 0 && r.seq == sndNxt }) // the first segment, every time
		writeAll(c, make([]byte, 2*mss), time.Second)
		time.Sleep(30 * time.Millisecond) // the second has arrived; RTO and TLP are later
		var ooo *segRecord
		for _, r := range brec.received() {
			if r.n > 0 && r.seq == sndNxt+mss {
				ooo = &r
				break
			}
		}
		if ooo == nil {
			t.Fatalf("the second segment did not arrive: %+v", brec.received())
		}
		var ack *segRecord
		for _, r := range brec.sent() {
			if !r.at.Before(ooo.at) && r.flags&wire.TCPFlagACK != 0 {
				ack = &r
				break
			}
		}
		if ack == nil {
			t.Fatal("the out-of-order segment was not acknowledged")
		}
		if d := ack.at.Sub(ooo.at); d != 0 {
			t.Errorf("acknowledged after %v, want at once", d)
		}
		if ack.ack != sndNxt {
			t.Errorf("ACK %d, want the hole at %d", ack.ack-issOf(c), sndNxt-issOf(c))
		}
		if ack.opts.NumSACKBlocks == 0 || ack.opts.SACKBlocks[0].Left != sndNxt+mss || ack.opts.SACKBlocks[0].Right != sndNxt+2*mss {
			t.Errorf("SACK blocks %+v, want [%d, %d)", ack.opts.SACKBlocks[:ack.opts.NumSACKBlocks], sndNxt+mss, sndNxt+2*mss)
		}
		arec.setDrop(nil)
		if _, err := readN(s, int(2*mss), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKarn: without timestamps only Karn's rule (RFC 6298 §3) keeps the
// ACK of a retransmitted segment from timing it: the ACK that follows a
// lost segment's retransmission (by the RTO without SACK, by the tail
// loss probe with it) leaves SRTT and RTTVAR as they were.
func TestKarn(t *testing.T) {
	for _, sack := range []bool{false, true} {
		name := "NewReno"
		if sack {
			name = "SACK"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, a, arec, b, _ := recBoth(t, emu.Impairments{Delay: 10 * time.Millisecond})
				for _, h := range []*host{a, b} {
					h.tcp.DisableTimestamps, h.tcp.DisableSACK = true, !sack
				}
				c, s := connPair(t, a, b, false)
				synctest.Wait()
				time.Sleep(100 * time.Millisecond)
				before := tcpInfoOf(t, c)
				if before.Options&TCPIOptTimestamps != 0 || before.RTT == 0 {
					t.Fatalf("tcp_info %+v", before)
				}
				sndNxt, _, _ := snapshot(c)
				var sends atomic.Int32 // the drop function runs on the stack's goroutines
				arec.setDrop(func(r segRecord) bool {
					return r.n > 0 && r.seq == sndNxt && sends.Add(1) == 1
				})
				writeAll(c, []byte("timed"), time.Second)
				if _, err := readN(s, 5, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond) // the (delayed) ACK is back
				synctest.Wait()
				c.mu.Lock()
				una, max := uint32(c.sndUna), uint32(c.sndMax)
				c.mu.Unlock()
				if una != max {
					t.Fatalf("not all acknowledged: %s", dump(c))
				}
				after := tcpInfoOf(t, c)
				if sends.Load() < 2 || after.TotalRetrans == before.TotalRetrans {
					t.Fatalf("%d transmissions, total_retrans %d → %d: no retransmission", sends.Load(), before.TotalRetrans, after.TotalRetrans)
				}
				if after.RTT != before.RTT || after.RTTVar != before.RTTVar {
					t.Errorf("the ACK of a retransmission was timed: rtt %d→%d µs, rttvar %d→%d µs", before.RTT, after.RTT, before.RTTVar, after.RTTVar)
				}
				// The next segment, sent once, is timed again.
				writeAll(c, []byte("again"), time.Second)
				readN(s, 5, time.Second)
				time.Sleep(200 * time.Millisecond)
				if again := tcpInfoOf(t, c); again.RTT == after.RTT {
					t.Errorf("a segment sent once gave no sample (rtt %d µs)", again.RTT)
				}
			})
		})
	}
}

// TestTCPInfoRTTRetransmits: TCP_INFO's tcpi_rtt converges on the
// link's round trip (20 ms here) with a small tcpi_rttvar after a
// request/response exchange; under a blackout tcpi_retransmits counts
// the consecutive timeouts (one more per RTO) and tcpi_total_retrans
// every retransmitted segment, and once an ACK comes
// tcpi_retransmits is 0 again while the total stays.
func TestTCPInfoRTTRetransmits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, arec, b, _ := recBoth(t, emu.Impairments{Delay: 10 * time.Millisecond})
		c, s := connPair(t, a, b, false)
		for _, e := range []*endpoint{c, s} {
			e.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
		msg := make([]byte, 100)
		for range 20 {
			writeAll(c, msg, time.Second)
			readN(s, len(msg), time.Second)
			writeAll(s, msg, time.Second)
			readN(c, len(msg), time.Second)
		}
		in := tcpInfoOf(t, c)
		t.Logf("rtt %d µs, rttvar %d µs, rto %d µs", in.RTT, in.RTTVar, in.RTO)
		if in.RTT < 19000 || in.RTT > 22000 {
			t.Errorf("tcpi_rtt %d µs, want about 20 ms", in.RTT)
		}
		if in.RTTVar > 5000 {
			t.Errorf("tcpi_rttvar %d µs for a steady 20 ms path", in.RTTVar)
		}
		if in.Retransmits != 0 || in.TotalRetrans != 0 {
			t.Fatalf("retransmits %d, total %d before any loss", in.Retransmits, in.TotalRetrans)
		}

		// Blackout: every transmission of the next segment is lost.
		sndNxt, _, _ := snapshot(c)
		var sends atomic.Int32 // the drop function runs on the stack's goroutines
		var blackout atomic.Bool
		blackout.Store(true)
		arec.setDrop(func(r segRecord) bool {
			if r.n > 0 && r.seq == sndNxt {
				sends.Add(1)
			}
			return blackout.Load() && r.n > 0
		})
		writeAll(c, msg, time.Second)
		var seen []uint8 // tcpi_retransmits values in order
		var when []time.Duration
		start := time.Now()
		for range 200 { // 2 s
			time.Sleep(10 * time.Millisecond)
			synctest.Wait() // a timer due now has done its work
			in := tcpInfoOf(t, c)
			if len(seen) == 0 || seen[len(seen)-1] != in.Retransmits {
				seen, when = append(seen, in.Retransmits), append(when, time.Since(start))
			}
			if n := int(sends.Load()); int(in.TotalRetrans) != n-1 {
				t.Fatalf("tcpi_total_retrans %d after %d transmissions of one segment", in.TotalRetrans, n)
			}
		}
		t.Logf("tcpi_retransmits %v from %v; %d transmissions", seen, when, sends.Load())
		// The tail loss probe at 200 ms (the RTO caps the PTO) is no
		// timeout; the RTOs follow at 0.4, 0.8 and 1.6 s.
		if len(seen) != 4 || seen[0] != 0 || seen[1] != 1 || seen[2] != 2 || seen[3] != 3 {
			t.Errorf("tcpi_retransmits went %v, want [0 1 2 3]", seen)
		}
		blackout.Store(false)
		if _, err := readN(s, len(msg), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		after := tcpInfoOf(t, c)
		if after.Retransmits != 0 {
			t.Errorf("tcpi_retransmits %d after the ACK, want 0", after.Retransmits)
		}
		if n := int(sends.Load()); int(after.TotalRetrans) != n-1 || after.TotalRetrans < 3 {
			t.Errorf("tcpi_total_retrans %d, want %d", after.TotalRetrans, n-1)
		}
	})
}

// TestSWSReceiver: receiver-side silly window avoidance (RFC 9293
// §3.8.6.2.2, RFC 1122 §4.2.3.3): with a full small buffer that the
// application drains a byte at a time, the right edge of the window we
// offer never moves by less than min(buffer/2, MSS), whether in window
// updates or in the answers to zero-window probes.
func TestSWSReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, _, b, brec := recBoth(t, emu.Impairments{})
		l := b.open(t, syscall.AF_INET)
		l.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) // 4 KiB after the doubling
		l.Bind(ap(netip.Addr{}, 80))
		l.Listen(4)
		c := a.open(t, syscall.AF_INET)
		mustConnect(t, c, ap(addrB4, 80))
		s := accept(t, l, time.Second)
		data := randomBytes(11, 32<<10)
		done := make(chan error, 1)
		go func() { done <- writeAll(c, data, time.Hour) }()
		time.Sleep(time.Second)
		synctest.Wait()
		in := tcpInfoOf(t, s)
		s.mu.Lock()
		buf := s.opts.RcvBuf
		s.mu.Unlock()
		step := uint32(min(buf/2, int(in.SndMSS)))
		var got []byte
		one := make([]byte, 1)
		for range 3000 {
			res, err := s.Read([][]byte{one}, transport.ReadOptions{})
			if err == nil && res.N == 1 {
				got = append(got, one[0])
			}
			time.Sleep(5 * time.Millisecond)
		}
		rest, err := readN(s, len(data)-len(got), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, rest...); string(got) != string(data) {
			t.Fatal("data differs")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var edge uint32
		zero, moves := false, 0
		for _, sg := range brec.sent() {
			if sg.flags&wire.TCPFlagSYN != 0 {
				edge = sg.ack + uint32(sg.wnd)
				continue
			}
			if sg.wnd == 0 {
				zero = true
			}
			e := sg.ack + uint32(sg.wnd)<<in.RcvWscale
			if int32(e-edge) <= 0 {
				continue
			}
			if e-edge < step {
				t.Errorf("at %v the window's right edge moved by %d bytes (window %d), less than %d", sg.at, e-edge, sg.wnd, step)
			}
			edge = e
			moves++
		}
		t.Logf("buffer %d, step %d, %d window advances", buf, step, moves)
		if !zero || moves < 5 {
			t.Fatalf("zero window %v, %d advances: the case does not exercise the rule", zero, moves)
		}
	})
}

// TestSWSSender: sender-side silly window avoidance (RFC 9293
// §3.8.6.2.1, RFC 1122 §4.2.3.4): into a 100-byte window the last data
// (all of it fits) goes at once, but a segment that is neither full nor
// the end of the data, nor half the largest window seen, waits for the
// override timeout (the persist timer, one RTO) and only then goes.
func TestSWSSender(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, a, arec, b, brec := recBoth(t, emu.Impairments{})
		in := newInjector(t, nw)
		for _, h := range []*host{a, b} {
			h.tcp.DisableWindowScaling = true
		}
		c, s := connPair(t, a, b, false)
		c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		synctest.Wait()
		brec.setDrop(func(segRecord) bool { return true }) // the peer's view comes from the injector
		local, remote := c.LocalAddr(), remoteOf(c)
		peerSeq, _, _ := snapshot(s)
		ack := func(n uint32, wnd uint16) {
			in.send(t, a.port.MAC(), remote, local, wire.TCPFields{Seq: peerSeq, Ack: issOf(c) + 1 + n, Flags: wire.TCPFlagACK, Window: wnd}, nil)
			synctest.Wait()
		}
		ack(0, 100)
		if w := tcpInfoOf(t, c).SndWnd; w != 100 {
			t.Fatalf("send window %d, want 100", w)
		}
		data := func() []segRecord { return dataSegs(arec.sent()) }
		writeAll(c, make([]byte, 50), time.Second)
		synctest.Wait()
		if d := data(); len(d) != 1 || d[0].n != 50 {
			t.Fatalf("the last 50 bytes into a 100-byte window: %+v, want one segment at once", d)
		}
		ack(50, 100)
		rto := time.Duration(tcpInfoOf(t, c).RTO) * time.Microsecond
		start := time.Now()
		writeAll(c, make([]byte, 1000), time.Second)
		synctest.Wait()
		time.Sleep(rto - time.Millisecond)
		if d := data(); len(d) != 1 {
			t.Fatalf("a 100-byte segment of 1000 bytes went before the override timeout: %+v", d[1:])
		}
		time.Sleep(2 * time.Millisecond)
		d := data()
		if len(d) != 2 || d[1].n != 100 {
			t.Fatalf("after the override timeout: %+v, want one 100-byte segment", d[1:])
		}
		if at := d[1].at.Sub(start); at != rto {
			t.Errorf("sent after %v, want the RTO %v", at, rto)
		}
		ack(150, 65535)
		if d := data(); len(d) != 3 || d[2].n != 900 {
			t.Fatalf("after the window opened: %+v, want the other 900 bytes", d[2:])
		}
	})
}

// TestCork: with TCP_CORK small writes are held while no full segment
// is ready, even with TCP_NODELAY (cork wins, as on Linux); a full
// segment goes at once with the rest held; clearing TCP_CORK sends what
// is held at once. Held data with nothing in flight goes when the
// persist timer fires (an RTO, 200 ms here), the equivalent of Linux's
// 200 ms cork ceiling (its probe timer, tcp_check_probe_timer, sends
// corked data the same way).
func TestCork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		mss := c.mss
		for _, o := range []int{syscall.TCP_NODELAY, syscall.TCP_CORK} {
			if err := c.SetSockOpt(syscall.IPPROTO_TCP, o, 1); err != nil {
				t.Fatal(err)
			}
		}
		if v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_CORK); v != 1 {
			t.Fatalf("TCP_CORK reads %v", v)
		}
		data := randomBytes(13, 5*100+mss)
		for i := range 5 {
			writeAll(c, data[i*100:(i+1)*100], time.Second)
		}
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		if d := dataSegs(rec.sent()); len(d) != 0 {
			t.Fatalf("corked small writes sent: %+v", d)
		}
		writeAll(c, data[500:], time.Second)
		synctest.Wait()
		if d := dataSegs(rec.sent()); len(d) != 1 || d[0].n != mss {
			t.Fatalf("with a full segment ready: %+v, want one of %d bytes", d, mss)
		}
		time.Sleep(10 * time.Millisecond)
		if d := dataSegs(rec.sent()); len(d) != 1 {
			t.Fatalf("the rest went while corked: %+v", d[1:])
		}
		uncork := time.Now()
		c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_CORK, 0)
		synctest.Wait()
		d := dataSegs(rec.sent())
		if len(d) != 2 || d[1].n != 500 || d[1].at != uncork {
			t.Fatalf("after uncorking: %+v, want the 500 bytes at once", d[1:])
		}
		if got, err := readN(s, len(data), time.Second); err != nil || string(got) != string(data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}

		// The ceiling: corked data with nothing in flight goes after an RTO.
		time.Sleep(500 * time.Millisecond)
		c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_CORK, 1)
		rto := time.Duration(tcpInfoOf(t, c).RTO) * time.Microsecond
		if rto != 200*time.Millisecond {
			t.Fatalf("RTO %v, the test expects 200 ms", rto)
		}
		start := time.Now()
		writeAll(c, data[:100], time.Second)
		time.Sleep(rto - time.Millisecond)
		if d := dataSegs(rec.sent()); len(d) != 2 {
			t.Fatalf("corked data sent before %v: %+v", rto, d[2:])
		}
		time.Sleep(2 * time.Millisecond)
		d = dataSegs(rec.sent())
		if len(d) != 3 || d[2].n != 100 || d[2].at.Sub(start) != rto {
			t.Fatalf("corked data after the ceiling: %+v, want 100 bytes at %v", d[2:], rto)
		}
		if got, err := readN(s, 100, time.Second); err != nil || string(got) != string(data[:100]) {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}
