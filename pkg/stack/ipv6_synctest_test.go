package stack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestIPv6ErrorRateLimit: ICMPv6 errors to one host are limited by
// Linux's per-host bucket (burst 6, one per second); Packet Too Big is
// exempt (icmpv6_ratemask).
func TestIPv6ErrorRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair6(t, 90, emu.PortConfig{}, emu.PortConfig{})
		errs := icmp6Catcher(t, a.s, wire.ICMPv6ParamProblem)
		bad := pkt6(mustAddr("2001:db8::2"), 254, testData)
		for range 20 {
			b.s.handleIPv6(b.nic, bad, PacketHost)
		}
		synctest.Wait()
		st := &b.s.stats.ICMP6
		if st.OutParmProblems.Load() != 6 || st.OutRateLimitHost.Load() != 14 {
			t.Fatalf("sent %d, limited %d; want 6 and 14", st.OutParmProblems.Load(), st.OutRateLimitHost.Load())
		}
		if len(errs) != 6 {
			t.Errorf("a received %d errors, want 6", len(errs))
		}
		time.Sleep(time.Second) // one token back
		b.s.handleIPv6(b.nic, bad, PacketHost)
		b.s.handleIPv6(b.nic, bad, PacketHost)
		synctest.Wait()
		if st.OutParmProblems.Load() != 7 || st.OutRateLimitHost.Load() != 15 {
			t.Errorf("after 1s: sent %d, limited %d; want 7 and 15", st.OutParmProblems.Load(), st.OutRateLimitHost.Load())
		}
		for range 10 {
			b.s.icmpv6Error(b.nic, bad, PacketHost, wire.ICMPv6PacketTooBig, 0, 1280)
		}
		if got := st.OutPktTooBigs.Load(); got != 10 {
			t.Errorf("Packet Too Big sent %d of 10", got)
		}
	})
}

// TestIPv6ReassemblyTimeout: a datagram whose first fragment arrived but
// that never completes is answered with Time Exceeded code 1 after 60 s
// (RFC 8200 §4.5); one without its first fragment is dropped silently.
func TestIPv6ReassemblyTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair6(t, 91, emu.PortConfig{}, emu.PortConfig{})
		errs := icmp6Catcher(t, a.s, wire.ICMPv6TimeExceeded)
		first := pkt6(mustAddr("2001:db8::2"), 44, frag6(protoTest, 0, true, 1, testData))
		b.s.handleIPv6(b.nic, first, PacketHost)
		b.s.handleIPv6(b.nic, pkt6(mustAddr("2001:db8::2"), 44, frag6(protoTest, 8, true, 2, testData)), PacketHost)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if len(errs) != 0 {
			t.Fatal("time exceeded before 60 s")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(errs) != 1 {
			t.Fatalf("%d time exceeded messages, want 1", len(errs))
		}
		m := <-errs
		im := wire.ICMPv6(m.msg)
		if im.Code() != wire.ICMPv6CodeReassemblyTimeout || string(im.Original()) != string(first) {
			t.Errorf("code %d, quote %x", im.Code(), im.Original())
		}
		// Both datagrams timed out, and the stack counts both as Linux
		// does (the one without a first fragment through OnFail).
		if rs := b.s.reasm6.Stats(); rs.ReasmTimeout != 2 || b.s.reasm6.Pending() != 0 {
			t.Errorf("reassembler timeouts %d, pending %d; want 2, 0", rs.ReasmTimeout, b.s.reasm6.Pending())
		}
		if got := b.s.stats.IP6.ReasmTimeout.Load(); got != 2 {
			t.Errorf("Ip6ReasmTimeout = %d, want 2", got)
		}
	})
}

// TestIPv6ImpairedFragmentedEcho: 4000-byte echoes, fragmented both ways,
// over links that delay, reorder, duplicate and lose frames. Every reply
// that arrives is intact; with loss only some do, and reassembly state of
// the lost ones times out.
func TestIPv6ImpairedFragmentedEcho(t *testing.T) {
	for _, c := range []struct {
		name string
		im   emu.Impairments
	}{
		{"reorder-duplicate", emu.Impairments{Delay: 5 * time.Millisecond, Jitter: 4 * time.Millisecond, Reorder: 0.3, Duplicate: 0.2}},
		{"loss-corrupt", emu.Impairments{Delay: 2 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.1, Corrupt: 0.05}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pc := emu.PortConfig{Out: c.im}
				a, b := pair6Opts(t, 92, Options{Seed: 92, ICMPRateLimit: -1}, pc, pc)
				replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
				const n = 30
				for seq := range uint16(n) {
					if err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::2"), 42, seq, 4000, WriteOptions{}); err != nil {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(time.Second)
				synctest.Wait()
				seen := map[uint16]bool{}
				for len(replies) > 0 {
					m := <-replies
					r := wire.ICMPv6(m.msg)
					checkEchoReply(t, m, 42, r.Seq(), 4000)
					seen[r.Seq()] = true
				}
				t.Logf("%d of %d echoes answered; b ReasmOKs %d ReasmFails %d; a ReasmOKs %d",
					len(seen), n, b.s.stats.IP6.ReasmOKs.Load(), b.s.stats.IP6.ReasmFails.Load(), a.s.stats.IP6.ReasmOKs.Load())
				if c.im.Loss == 0 && len(seen) != n {
					t.Errorf("only %d of %d answered without loss", len(seen), n)
				}
				if c.im.Loss > 0 && (len(seen) == 0 || len(seen) == n) {
					t.Errorf("%d of %d answered with 10%% loss per frame", len(seen), n)
				}
				time.Sleep(61 * time.Second) // leftovers time out
				synctest.Wait()
				if p := b.s.reasm6.Pending(); p != 0 {
					t.Errorf("%d datagrams still pending after the timeout", p)
				}
			})
		})
	}
}

// TestIPv6AddressUnreachable: a packet waiting for a neighbour that never
// answers is returned to its sender as address unreachable (RFC 4861
// §7.2.2, ICMPv6 1/3), which reaches the sending transport.
func TestIPv6AddressUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair6(t, 93, emu.PortConfig{}, emu.PortConfig{})
		got := make(errCatcher, 4)
		a.s.RegisterTransport(wire.IPProtoUDP, got)
		dst := mustAddr("2001:db8::5")
		r, err := a.s.FindRoute(0, netip.Addr{}, dst)
		if err != nil {
			t.Fatal(err)
		}
		udp := []byte{0x30, 0x39, 0x9c, 0x41, 0, 8, 0, 0}
		if err := a.s.WritePacket(&r, NewPacketFrom(udp), WriteOptions{Proto: wire.IPProtoUDP}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // RFC 4861: 3 solicitations, 1 s apart
		synctest.Wait()
		select {
		case e := <-got:
			if e.Type != wire.ICMPv6DstUnreachable || e.Code != wire.ICMPv6CodeAddrUnreachable || e.Dst != dst {
				t.Errorf("error %+v", e)
			}
		default:
			t.Fatal("no address unreachable")
		}
		if a.s.stats.IP6.OutDiscards.Load() != 1 {
			t.Errorf("Ip6OutDiscards = %d", a.s.stats.IP6.OutDiscards.Load())
		}
	})
}
