package transport

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

type fakeIfs map[string]int

func (f fakeIfs) IndexByName(n string) (int, bool) { i, ok := f[n]; return i, ok }
func (f fakeIfs) HasIndex(i int) bool {
	for _, v := range f {
		if v == i {
			return true
		}
	}
	return false
}

func TestOptionsDefaultsAsLinux(t *testing.T) {
	o := NewOptions(nil)
	for _, c := range []struct {
		level, name int
		want        any
	}{
		{syscall.SOL_SOCKET, syscall.SO_RCVBUF, 212992},
		{syscall.SOL_SOCKET, syscall.SO_SNDBUF, 212992},
		{syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0},
		{syscall.SOL_SOCKET, syscall.SO_BROADCAST, 0},
		{syscall.IPPROTO_IP, syscall.IP_TTL, 64},
		{syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 1},
		{syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1},
		{syscall.IPPROTO_IP, IP_MULTICAST_ALL, 1},
		{syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, 64},
		{syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, 1},
		{syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0},
		{syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_WANT},
	} {
		got, err := o.Get(c.level, c.name)
		if err != nil || got != c.want {
			t.Errorf("Get(%d, %d) = %v, %v; want %v", c.level, c.name, got, err, c.want)
		}
	}
}

func TestOptionsBuffersDoubleAndClamp(t *testing.T) {
	o := NewOptions(nil)
	for _, c := range []struct{ set, want int }{
		{4096, 8192},
		{1, MinRcvBuf},
		{1 << 30, 2 * MaxRcvBuf},
	} {
		if err := o.Set(syscall.SOL_SOCKET, syscall.SO_RCVBUF, c.set); err != nil {
			t.Fatal(err)
		}
		if got, _ := o.Get(syscall.SOL_SOCKET, syscall.SO_RCVBUF); got != c.want {
			t.Errorf("SO_RCVBUF %d reads back %v, want %d", c.set, got, c.want)
		}
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_SNDBUF, []byte{0, 0x10, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if o.SndBuf != 8192 {
		t.Errorf("raw 4-byte SO_SNDBUF 4096 → %d, want 8192", o.SndBuf)
	}
}

func TestOptionsValuesAndErrors(t *testing.T) {
	o := NewOptions(fakeIfs{"eth0": 2})
	if err := o.Set(syscall.IPPROTO_IP, syscall.IP_TTL, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IP_TTL 0: %v, want EINVAL", err)
	}
	if err := o.Set(syscall.IPPROTO_IP, syscall.IP_TTL, 256); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IP_TTL 256: %v, want EINVAL", err)
	}
	if err := o.Set(syscall.IPPROTO_IP, syscall.IP_TTL, 7); err != nil || o.HopLimit(netip.MustParseAddr("10.0.0.1")) != 7 {
		t.Errorf("IP_TTL 7: %v, hop limit %d", err, o.HopLimit(netip.MustParseAddr("10.0.0.1")))
	}
	if got := o.HopLimit(netip.MustParseAddr("224.1.2.3")); got != 1 {
		t.Errorf("multicast hop limit %d, want IP_MULTICAST_TTL's 1", got)
	}
	if err := o.Set(syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, 9); err != nil || o.HopLimit(netip.MustParseAddr("2001:db8::1")) != 9 {
		t.Errorf("IPV6_UNICAST_HOPS 9: %v", err)
	}
	if got := o.HopLimit(netip.MustParseAddr("::ffff:10.0.0.1")); got != 7 {
		t.Errorf("v4-mapped destination uses IP_TTL: %d", got)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "eth0"); err != nil || o.BoundDevice != 2 {
		t.Errorf("SO_BINDTODEVICE eth0: %v, index %d", err, o.BoundDevice)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, []byte("nope\x00")); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("SO_BINDTODEVICE nope: %v, want ENODEV", err)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ""); err != nil || o.BoundDevice != 0 {
		t.Errorf("SO_BINDTODEVICE \"\" unbinds: %v %d", err, o.BoundDevice)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, syscall.Timeval{Sec: 1, Usec: 500000}); err != nil || o.RcvTimeo != 1500*time.Millisecond {
		t.Errorf("SO_RCVTIMEO timeval: %v %v", err, o.RcvTimeo)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, syscall.Timeval{Usec: 2000000}); !errors.Is(err, syscall.EDOM) {
		t.Errorf("SO_SNDTIMEO bad timeval: %v, want EDOM", err)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1, Linger: 5}); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Get(syscall.SOL_SOCKET, syscall.SO_LINGER); got != (syscall.Linger{Onoff: 1, Linger: 5}) {
		t.Errorf("SO_LINGER reads back %v", got)
	}
	if err := o.Set(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, "yes"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("string for an int option: %v, want EINVAL", err)
	}
	if err := o.Set(syscall.SOL_SOCKET, 9999, 1); !errors.Is(err, syscall.ENOPROTOOPT) {
		t.Errorf("unknown option: %v, want ENOPROTOOPT", err)
	}
	if _, err := o.Get(99, 1); !errors.Is(err, syscall.ENOPROTOOPT) {
		t.Errorf("unknown level: %v, want ENOPROTOOPT", err)
	}
	if err := o.Set(syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, netip.MustParseAddr("2001:db8::1")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IPv6 address for IP_MULTICAST_IF: %v, want EINVAL", err)
	}
	if err := o.Set(syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO); err != nil || !o.DontFragment() {
		t.Errorf("IP_PMTUDISC_DO: %v, DontFragment %v", err, o.DontFragment())
	}
	if err := o.Set(syscall.SOL_SOCKET, SO_REUSEPORT, true); err != nil || !o.ReusePort {
		t.Errorf("SO_REUSEPORT true: %v", err)
	}
}

func TestIntValue(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
		ok   bool
	}{
		{3, 3, true}, {true, 1, true}, {false, 0, true}, {uint8(200), 200, true},
		{[]byte{1}, 1, true}, {[]byte{0xff, 0xff, 0xff, 0xff}, -1, true},
		{[]byte{1, 2, 3}, 0, false}, {nil, 0, false}, {1.5, 0, false},
	} {
		got, err := IntValue(c.v)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("IntValue(%#v) = %d, %v", c.v, got, err)
		}
	}
}
