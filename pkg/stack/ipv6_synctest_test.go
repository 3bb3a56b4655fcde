package stack

import (
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
		st := &b.s.stats.IP6
		if st.ReasmTimeout.Load() != 1 {
			t.Errorf("Ip6ReasmTimeout = %d, want 1 (only datagrams with a first fragment report)", st.ReasmTimeout.Load())
		}
	})
}
