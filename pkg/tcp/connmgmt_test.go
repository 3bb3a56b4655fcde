package tcp

import (
	"errors"
	"fmt"
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

// TestTimeWaitReuse: the server closes first and keeps the TIME_WAIT; a
// new connect from the same client port (SO_REUSEADDR) is taken by the
// listener at once (RFC 6191, Linux TCP_TW_SYN), with timestamps (a newer
// TSval) and without (a sequence number beyond the old RCV.NXT), and the
// new ISN lies beyond the old SND.NXT. Before, the SYN got a bare ACK,
// the client reset it and connected only with the SYN retransmitted 1 s
// later. A SYN that is not acceptable still gets just an ACK.
func TestTimeWaitReuse(t *testing.T) {
	for _, ts := range []bool{true, false} {
		t.Run(fmt.Sprintf("timestamps=%v", ts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := newNet(t, 7)
				a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
				b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
				for _, h := range []*host{a, b} {
					h.tcp.DisableTimestamps = !ts
				}
				l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 16)
				clientAddr := ap(addrA4, 40000)
				dial := func() *endpoint {
					c := a.open(t, syscall.AF_INET)
					if err := c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
						t.Fatal(err)
					}
					if err := c.Bind(clientAddr); err != nil {
						t.Fatal(err)
					}
					return c
				}
				c := dial()
				mustConnect(t, c, ap(addrB4, 80))
				s := accept(t, l, time.Second)
				if err := writeAll(c, []byte("hello"), time.Second); err != nil {
					t.Fatal(err)
				}
				if _, err := readN(s, 5, time.Second); err != nil {
					t.Fatal(err)
				}
				s.Close() // the server closes first
				if _, err := readAll(c, time.Second); err != nil {
					t.Fatal(err)
				}
				c.Close()
				synctest.Wait()
				if st := s.Info().State; st != "TIME_WAIT" {
					t.Fatalf("server in %s, want TIME_WAIT", st)
				}
				oldSndNxt, oldRcvNxt, _ := snapshot(s)

				// Not acceptable: an old sequence number (and, with
				// timestamps, an old TSval) gets an ACK, TIME_WAIT stays.
				var answers []segRecord
				brec.setDrop(func(r segRecord) bool {
					if r.dst == clientAddr {
						answers = append(answers, r)
						return true
					}
					return false
				})
				in := newInjector(t, nw)
				f := wire.TCPFields{Seq: oldRcvNxt - 1000, Flags: wire.TCPFlagSYN, Window: 65535}
				if ts {
					f.Seq = oldRcvNxt + 1000
					f.Options.HasTimestamps, f.Options.TSVal = true, s.tsRecent-1
				}
				in.send(t, b.port.MAC(), clientAddr, ap(addrB4, 80), f, nil)
				synctest.Wait()
				brec.setDrop(nil)
				if len(answers) != 1 || answers[0].flags != wire.TCPFlagACK {
					t.Fatalf("old SYN answered with %+v, want one ACK", answers)
				}
				if st := s.Info().State; st != "TIME_WAIT" {
					t.Fatalf("after an old SYN the server is in %s", st)
				}

				time.Sleep(time.Second) // the ISN and timestamp clocks move on
				retrans := a.tcp.Stats().RetransSegs.Load()
				c2 := dial()
				start := time.Now()
				if err := connect(t, c2, ap(addrB4, 80), 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Errorf("connect took %v", d)
				}
				if n := a.tcp.Stats().RetransSegs.Load() - retrans; n != 0 {
					t.Errorf("%d retransmissions (the SYN)", n)
				}
				s2 := accept(t, l, time.Second)
				if want := oldSndNxt + 65535 + 2; uint32(s2.iss) != want {
					t.Errorf("new ISN %d, want old SND.NXT %d + 65537", uint32(s2.iss), oldSndNxt)
				}
				if err := writeAll(s2, []byte("again"), time.Second); err != nil {
					t.Fatal(err)
				}
				if got, err := readN(c2, 5, time.Second); err != nil || string(got) != "again" {
					t.Fatalf("read %q, %v", got, err)
				}
			})
		})
	}
}

// TestMaxTimeWait: with MaxTimeWait connections in TIME_WAIT, the next
// one to close goes straight to CLOSED and is counted (Linux
// tcp_max_tw_buckets, TCPTimeWaitOverflow); the peer still gets its ACK.
func TestMaxTimeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		a.tcp.MaxTimeWait = 1
		var cs, ss []*endpoint
		for range 3 {
			c, s := connPair(t, a, b, false)
			cs, ss = append(cs, c), append(ss, s)
		}
		for i := range cs {
			cs[i].Close()
			readAll(ss[i], time.Second)
			ss[i].Close()
			synctest.Wait()
		}
		want := []string{"TIME_WAIT", "CLOSE", "CLOSE"}
		for i, c := range cs {
			if st := c.Info().State; st != want[i] {
				t.Errorf("client %d in %s, want %s", i, st, want[i])
			}
			if st := ss[i].Info().State; st != "CLOSE" {
				t.Errorf("server %d in %s (its FIN not acknowledged?)", i, st)
			}
		}
		if n := a.tcp.Stats().TimeWaitOverflow.Load(); n != 2 {
			t.Errorf("TimeWaitOverflow %d, want 2", n)
		}
		// The count follows TIME_WAIT's end: room again.
		time.Sleep(DefaultTimeWait + time.Second)
		c, s := connPair(t, a, b, false)
		c.Close()
		readAll(s, time.Second)
		s.Close()
		synctest.Wait()
		if st := c.Info().State; st != "TIME_WAIT" {
			t.Errorf("after the first TIME_WAIT ended: %s", st)
		}
	})
}

// TestUserTimeout: TCP_USER_TIMEOUT (RFC 5482, Linux semantics, ms) ends
// a connection with ETIMEDOUT once data has gone unacknowledged, or
// zero-window probes or keep-alive probes unanswered, for that long,
// instead of after tcp_retries2 (about 15 min) or TCP_KEEPCNT probes.
func TestUserTimeout(t *testing.T) {
	const ut = 5000 // ms
	setUT := func(t *testing.T, e *endpoint, ms int) {
		t.Helper()
		if err := e.SetSockOpt(syscall.IPPROTO_TCP, TCP_USER_TIMEOUT, ms); err != nil {
			t.Fatal(err)
		}
		if v, err := e.GetSockOpt(syscall.IPPROTO_TCP, TCP_USER_TIMEOUT); err != nil || v.(int) != ms {
			t.Fatalf("getsockopt: %v, %v", v, err)
		}
	}
	timedOut := func(t *testing.T, c *endpoint, from time.Time, lo, hi time.Duration) {
		t.Helper()
		if !wait(c, waiter.EventErr, time.Hour) {
			t.Fatalf("still up after an hour: %s", dump(c))
		}
		if d := time.Since(from); d < lo || d > hi {
			t.Errorf("timed out after %v, want %v…%v", d, lo, hi)
		}
		if _, err := c.Read([][]byte{make([]byte, 1)}, transport.ReadOptions{}); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("read: %v, want ETIMEDOUT", err)
		}
	}
	t.Run("sockopt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, _ := pair(t)
			c := a.open(t, syscall.AF_INET)
			if v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, TCP_USER_TIMEOUT); v.(int) != 0 {
				t.Errorf("default %v", v)
			}
			if err := c.SetSockOpt(syscall.IPPROTO_TCP, TCP_USER_TIMEOUT, -1); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("-1: %v, want EINVAL", err)
			}
			setUT(t, c, 1234)
		})
	})
	t.Run("retransmission", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := newNet(t, 7)
			a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
			b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
			c, _ := connPair(t, a, b, false)
			setUT(t, c, ut)
			brec.setDrop(func(segRecord) bool { return true }) // the peer vanishes
			start := time.Now()
			if err := writeAll(c, []byte("unanswered"), time.Second); err != nil {
				t.Fatal(err)
			}
			timedOut(t, c, start, ut*time.Millisecond, ut*time.Millisecond+50*time.Millisecond)
		})
	})
	t.Run("zerowindow", func(t *testing.T) {
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
			setUT(t, c, ut)
			go writeAll(c, randomBytes(3, 100<<10), time.Hour)
			time.Sleep(5 * time.Second) // answered probes: no timeout
			synctest.Wait()
			c.mu.Lock()
			w, st := c.sndWnd, c.state
			c.mu.Unlock()
			if w != 0 || st != StateEstablished {
				t.Fatalf("window not closed or connection gone: %s", dump(c))
			}
			brec.setDrop(func(segRecord) bool { return true })
			start := time.Now()
			// The next probe starts the count; it comes within the
			// backed-off persist interval.
			timedOut(t, c, start, ut*time.Millisecond, ut*time.Millisecond+5*time.Second)
		})
	})
	t.Run("keepalive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nw := newNet(t, 7)
			a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
			b, brec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
			c, _ := connPair(t, a, b, false)
			for _, o := range [][3]int{{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 10},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 2}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 100}} {
				if err := c.SetSockOpt(o[0], o[1], o[2]); err != nil {
					t.Fatal(err)
				}
			}
			setUT(t, c, 15000)
			brec.setDrop(func(segRecord) bool { return true })
			// Probes at 10, 12, 14 and 16 s of silence: the one due at
			// 16 s finds 15 s passed and gives up (with TCP_KEEPCNT alone
			// it would be 210 s).
			timedOut(t, c, time.Now(), 15*time.Second, 17*time.Second)
		})
	})
}

// TestCongestionSockopt: setsockopt(TCP_CONGESTION) takes the name as a
// string or as C's NUL-terminated bytes, refuses an unknown one with
// ENOENT, applies before connect, passes from a listener to its
// children, and switches a live connection keeping its windows;
// Protocol.Congestion is the default (tcp_congestion_control).
func TestCongestionSockopt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		name := func(e *endpoint) string {
			t.Helper()
			v, err := e.GetSockOpt(syscall.IPPROTO_TCP, TCP_CONGESTION)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := e.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
			if in.(TCPInfo).Congestion != v.(string) {
				t.Fatalf("TCP_INFO says %q, TCP_CONGESTION %q", in.(TCPInfo).Congestion, v)
			}
			return v.(string)
		}
		set := func(e *endpoint, v any) error { return e.SetSockOpt(syscall.IPPROTO_TCP, TCP_CONGESTION, v) }

		// Protocol default.
		b.tcp.Congestion = "reno"
		c, s := connPair(t, a, b, false)
		if name(c) != "cubic" || name(s) != "reno" {
			t.Fatalf("defaults: client %q (want cubic), server %q (want reno)", name(c), name(s))
		}
		b.tcp.Congestion = DefaultCongestion

		// Before connect, as bytes with a NUL; unknown names.
		c2 := a.open(t, syscall.AF_INET)
		if err := set(c2, []byte("reno\x00")); err != nil {
			t.Fatal(err)
		}
		if err := set(c2, "bbr"); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("bbr: %v, want ENOENT", err)
		}
		if err := set(c2, 1); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("an int: %v, want EINVAL", err)
		}
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 90), 4)
		if err := set(l, "reno"); err != nil {
			t.Fatal(err)
		}
		mustConnect(t, c2, ap(addrB4, 90))
		s2 := accept(t, l, time.Second)
		if name(c2) != "reno" || name(s2) != "reno" {
			t.Fatalf("client %q, accepted child %q, want reno", name(c2), name(s2))
		}

		// Mid-connection: cubic → reno with the same windows, and data
		// still flows.
		data := randomBytes(9, 512<<10)
		go writeAll(c, data, time.Minute)
		if _, err := readN(s, len(data), time.Minute); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
		before := v.(TCPInfo)
		if before.SndCwnd <= 10 {
			t.Fatalf("cwnd %d: still the initial window", before.SndCwnd)
		}
		if err := set(c, "reno"); err != nil {
			t.Fatal(err)
		}
		v, _ = c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
		after := v.(TCPInfo)
		if name(c) != "reno" || after.SndCwnd != before.SndCwnd || after.SndSsthresh != before.SndSsthresh {
			t.Fatalf("switched to %q: cwnd %d→%d ssthresh %d→%d", name(c), before.SndCwnd, after.SndCwnd, before.SndSsthresh, after.SndSsthresh)
		}
		go writeAll(c, data, time.Minute)
		if _, err := readN(s, len(data), time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}
