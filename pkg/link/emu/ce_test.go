package emu

import (
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/stackbox/stackbox/pkg/wire"
)

// ipFrame builds an Ethernet frame A→B carrying an IPv4 or IPv6 packet
// whose ECN field is ecn, with a valid IPv4 header checksum.
func ipFrame(dst, src wire.MAC, v6 bool, ecn uint8) []byte {
	payload := make([]byte, 32)
	var ip []byte
	et := wire.EtherTypeIPv4
	if v6 {
		et = wire.EtherTypeIPv6
		f := wire.IPv6Fields{TrafficClass: 0xb8 | ecn, NextHeader: 17, HopLimit: 64,
			Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("fe80::2"), PayloadLen: len(payload)}
		ip = make([]byte, 40+len(payload))
		f.Encode(ip)
	} else {
		f := wire.IPv4Fields{TOS: 0xb8 | ecn, TTL: 64, Protocol: 17,
			Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), PayloadLen: len(payload)}
		ip = make([]byte, 20+len(payload))
		f.Encode(ip)
	}
	ef := wire.EthernetFields{Dst: dst, Src: src, EtherType: et}
	fr := make([]byte, ef.Len()+len(ip))
	ef.Encode(fr)
	copy(fr[ef.Len():], ip)
	return fr
}

func frameECN(t *testing.T, fr []byte) uint8 {
	t.Helper()
	eth, err := wire.ParseEthernet(fr)
	if err != nil {
		t.Fatal(err)
	}
	if eth.EtherType() == wire.EtherTypeIPv6 {
		h, err := wire.ParseIPv6(eth.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if h.TrafficClass()>>2 != 0xb8>>2 {
			t.Fatalf("DSCP changed: traffic class %#x", h.TrafficClass())
		}
		return h.ECN()
	}
	h, err := wire.ParseIPv4(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if !h.ChecksumValid() {
		t.Fatalf("IPv4 header checksum wrong after marking")
	}
	if h.TOS()>>2 != 0xb8>>2 {
		t.Fatalf("DSCP changed: TOS %#x", h.TOS())
	}
	return h.ECN()
}

// TestCEMarking: with CE = 1 every ECT(0) and ECT(1) packet, IPv4 and
// IPv6, arrives marked CE (the IPv4 checksum still valid); Not-ECT and
// non-IP frames pass untouched.
func TestCEMarking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, cb := pair(11, Impairments{CE: 1})
		defer a.Close()
		defer b.Close()
		type tc struct {
			v6       bool
			ecn, out uint8
		}
		cases := []tc{{false, 0, 0}, {false, 1, 3}, {false, 2, 3}, {false, 3, 3},
			{true, 0, 0}, {true, 1, 3}, {true, 2, 3}, {true, 3, 3}}
		for _, c := range cases {
			write(t, a, ipFrame(b.MAC(), a.MAC(), c.v6, c.ecn))
		}
		other := frameTo(b.MAC(), a.MAC(), 7, 64)
		write(t, a, other)
		synctest.Wait()
		got := cb.arrivals()
		if len(got) != len(cases)+1 {
			t.Fatalf("%d frames", len(got))
		}
		for i, c := range cases {
			if e := frameECN(t, got[i].frame); e != c.out {
				t.Errorf("v6=%v ECN %d arrived as %d, want %d", c.v6, c.ecn, e, c.out)
			}
		}
		if string(got[len(cases)].frame) != string(other) {
			t.Errorf("a non-IP frame was changed")
		}
		if n := a.ImpairStats(Out).CEMarked; n != 4 {
			t.Errorf("CEMarked = %d, want 4 (the ECT packets)", n)
		}
	})
}

// TestCERate: CE = 0.3 marks about 30 % of ECT packets, and the same seed
// marks the same packets.
func TestCERate(t *testing.T) {
	run := func() []bool {
		var marks []bool
		synctest.Test(t, func(t *testing.T) {
			a, b, cb := pair(12, Impairments{CE: 0.3})
			defer a.Close()
			defer b.Close()
			for range 20 {
				var batch [][]byte
				for range 100 {
					batch = append(batch, ipFrame(b.MAC(), a.MAC(), false, 2))
				}
				write(t, a, batch...)
				synctest.Wait()
			}
			for _, x := range cb.arrivals() {
				marks = append(marks, frameECN(t, x.frame) == 3)
			}
		})
		return marks
	}
	m1, m2 := run(), run()
	n := 0
	for i, m := range m1 {
		if m {
			n++
		}
		if m != m2[i] {
			t.Fatalf("frame %d marked differently with the same seed", i)
		}
	}
	// Binomial(2000, 0.3): mean 600, sd 20.5.
	if len(m1) != 2000 || n < 500 || n > 700 {
		t.Fatalf("%d of %d marked at p=0.3", n, len(m1))
	}
}

// TestCEValidate: CE is a probability like the others: Validate rejects
// it outside [0,1] and NewPort clamps it.
func TestCEValidate(t *testing.T) {
	for _, ce := range []float64{-0.1, 1.5} {
		if (Impairments{CE: ce}).Validate() == nil {
			t.Errorf("CE %v validated", ce)
		}
	}
	if err := (Impairments{CE: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
	if got := (Impairments{CE: 7}).sanitized().CE; got != 1 {
		t.Errorf("CE 7 clamped to %v", got)
	}
}
