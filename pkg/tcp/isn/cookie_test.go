package isn

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

const clientISN = seqnum.Value(0xfffffff0) // near the wrap, on purpose

var (
	local6  = netip.MustParseAddrPort("[2001:db8::1]:443")
	remote6 = netip.MustParseAddrPort("[2001:db8::7]:50000")
)

func TestCookieRoundTrip(t *testing.T) {
	c := NewCookies(7)
	for _, tc := range []struct {
		l, r     netip.AddrPort
		mss      int
		idx, got int
	}{
		{local, remote, 1460, 3, 1460},
		{local, remote, 1500, 3, 1460},
		{local, remote, 1459, 2, 1440},
		{local, remote, 1300, 1, 1300},
		{local, remote, 1000, 0, 536},
		{local, remote, 536, 0, 536},
		{local, remote, 100, 0, 536}, // below the table: its smallest, as Linux
		{local6, remote6, 1440, 2, 1440},
		{local6, remote6, 1460, 2, 1440},
		{local6, remote6, 9000, 3, 8940},
		{local6, remote6, 1220, 0, 1220},
	} {
		cookie, idx := c.Make(tc.l, tc.r, clientISN, tc.mss, t0)
		if idx != tc.idx {
			t.Errorf("%v mss %d: index %d, want %d", tc.l, tc.mss, idx, tc.idx)
		}
		mss, ok := c.Check(tc.l, tc.r, clientISN, cookie+1, t0)
		if !ok || mss != tc.got || MSSTable(tc.l.Addr())[idx] != mss {
			t.Errorf("%v mss %d: Check = %d, %v; want %d", tc.l, tc.mss, mss, ok, tc.got)
		}
	}
}

func TestCookieAge(t *testing.T) {
	c := NewCookies(7)
	start := time.Unix(64*1_000_000, 0) // the first second of a counter tick
	cookie, _ := c.Make(local, remote, clientISN, 1460, start)
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{
		{0, true},
		{63 * time.Second, true},  // same tick
		{64 * time.Second, true},  // one tick old
		{127 * time.Second, true}, // still one tick
		{128 * time.Second, false},
		{time.Hour, false},
		{-64 * time.Second, false}, // from the future: the 8-bit difference wraps to 255
	} {
		if _, ok := c.Check(local, remote, clientISN, cookie+1, start.Add(tc.after)); ok != tc.ok {
			t.Errorf("after %v: ok %v, want %v", tc.after, ok, tc.ok)
		}
	}
}

func TestCookieForged(t *testing.T) {
	c := NewCookies(7)
	cookie, _ := c.Make(local, remote, clientISN, 1460, t0)
	// Every single-bit change fails, the low bits (the MSS index) too.
	for bit := range 32 {
		if _, ok := c.Check(local, remote, clientISN, (cookie^1<<bit)+1, t0); ok {
			t.Errorf("cookie with bit %d flipped accepted", bit)
		}
	}
	// The ACK must acknowledge cookie+1, not the cookie.
	if _, ok := c.Check(local, remote, clientISN, cookie, t0); ok {
		t.Error("ack = cookie accepted")
	}
	// Guessing: none of 100000 random cookies passes (each would with
	// probability about 2^-21 for two valid ticks and four indexes).
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		if _, ok := c.Check(local, remote, clientISN, seqnum.Value(r.Uint32()), t0); ok {
			t.Fatal("a random cookie was accepted")
		}
	}
	// Another secret does not accept it.
	if _, ok := NewCookies(8).Check(local, remote, clientISN, cookie+1, t0); ok {
		t.Error("cookie accepted under another key")
	}
}

func TestCookieOtherTuple(t *testing.T) {
	c := NewCookies(7)
	cookie, _ := c.Make(local, remote, clientISN, 1460, t0)
	for _, tu := range [][2]netip.AddrPort{
		{local, netip.MustParseAddrPort("198.51.100.7:40001")},
		{local, netip.MustParseAddrPort("198.51.100.8:40000")},
		{netip.MustParseAddrPort("192.0.2.1:81"), remote},
		{netip.MustParseAddrPort("192.0.2.9:80"), remote},
		{remote, local},
	} {
		if _, ok := c.Check(tu[0], tu[1], clientISN, cookie+1, t0); ok {
			t.Errorf("cookie for %v→%v accepted for %v→%v", remote, local, tu[1], tu[0])
		}
	}
	if _, ok := c.Check(local, remote, clientISN+1, cookie+1, t0); ok {
		t.Error("cookie accepted with another client ISN")
	}
}

func TestTSOptions(t *testing.T) {
	for _, tc := range []struct {
		wscale, want int
		sack, ecn    bool
	}{
		{-1, -1, false, false},
		{0, 0, true, false},
		{7, 7, true, true},
		{14, 14, false, true},
		{15, 14, true, true}, // above 14 is 14 (RFC 7323 §2.3)
	} {
		for _, tsval := range []uint32{0x12345678, 0x12345640, 0x1234567f, 5, 0} {
			ts := EncodeTSOptions(tsval, tc.wscale, tc.sack, tc.ecn)
			if int32(ts-tsval) > 0 || tsval-ts >= 64 {
				t.Errorf("TSval %#x encoded as %#x: must be at most 63 earlier, never later", tsval, ts)
			}
			ws, sack, ecn, ok := DecodeTSOptions(ts)
			if !ok || ws != tc.want || sack != tc.sack || ecn != tc.ecn {
				t.Errorf("Encode(%#x, %d, %v, %v) = %#x decodes to %d, %v, %v, %v",
					tsval, tc.wscale, tc.sack, tc.ecn, ts, ws, sack, ecn, ok)
			}
		}
	}
	// Linux's layout: wscale in bits 0-3 (0xf none), SACK bit 4, ECN bit 5.
	if got := EncodeTSOptions(0x1000, 3, true, false); got != 0x1000-64+0x13 {
		t.Errorf("Encode(0x1000, 3, SACK) = %#x", got)
	}
	if got := EncodeTSOptions(0x10ff, -1, false, true); got != 0x10ef {
		t.Errorf("Encode(0x10ff, none, ECN) = %#x", got)
	}
	// Options of all zeros on a TSval below 64 would be 0: it goes back a
	// period instead.
	if got := EncodeTSOptions(5, 0, false, false); got != 0xffffffc0 {
		t.Errorf("Encode(5, 0) = %#x, want 0xffffffc0", got)
	}
	if _, _, _, ok := DecodeTSOptions(0); ok {
		t.Error("a zero TSecr decoded")
	}
}
