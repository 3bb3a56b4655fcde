package socket

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

func TestToAddrPort(t *testing.T) {
	ifs := fakeIfs{"eth0": 2}
	v4 := &syscall.SockaddrInet4{Port: 53, Addr: [4]byte{10, 0, 0, 1}}
	v6 := &syscall.SockaddrInet6{Port: 53, Addr: netip.MustParseAddr("2001:db8::1").As16()}
	ll := &syscall.SockaddrInet6{Port: 53, Addr: netip.MustParseAddr("fe80::1").As16(), ZoneId: 2}
	unknownZone := &syscall.SockaddrInet6{Port: 53, Addr: netip.MustParseAddr("fe80::1").As16(), ZoneId: 7}
	for _, c := range []struct {
		name   string
		family int
		typ    int
		op     Op
		sa     syscall.Sockaddr
		want   string
		err    error
	}{
		{"v4 on AF_INET", syscall.AF_INET, syscall.SOCK_DGRAM, OpBind, v4, "10.0.0.1:53", nil},
		{"v6 on AF_INET6", syscall.AF_INET6, syscall.SOCK_DGRAM, OpSend, v6, "[2001:db8::1]:53", nil},
		{"zone by name", syscall.AF_INET6, syscall.SOCK_DGRAM, OpConnect, ll, "[fe80::1%eth0]:53", nil},
		{"unknown zone as number", syscall.AF_INET6, syscall.SOCK_DGRAM, OpConnect, unknownZone, "[fe80::1%7]:53", nil},
		{"v6 on AF_INET", syscall.AF_INET, syscall.SOCK_DGRAM, OpConnect, v6, "", syscall.EAFNOSUPPORT},
		{"v6 bind on AF_INET", syscall.AF_INET, syscall.SOCK_DGRAM, OpBind, v6, "", syscall.EAFNOSUPPORT},
		{"v4 bind on AF_INET6", syscall.AF_INET6, syscall.SOCK_DGRAM, OpBind, v4, "", syscall.EINVAL},
		{"v4 stream connect on AF_INET6", syscall.AF_INET6, syscall.SOCK_STREAM, OpConnect, v4, "", syscall.EAFNOSUPPORT},
		{"v4 datagram connect on AF_INET6 maps", syscall.AF_INET6, syscall.SOCK_DGRAM, OpConnect, v4, "[::ffff:10.0.0.1]:53", nil},
		{"v4 sendto on AF_INET6 maps", syscall.AF_INET6, syscall.SOCK_DGRAM, OpSend, v4, "[::ffff:10.0.0.1]:53", nil},
		{"unix", syscall.AF_INET, syscall.SOCK_DGRAM, OpBind, &syscall.SockaddrUnix{Name: "/x"}, "", syscall.EAFNOSUPPORT},
		{"nil", syscall.AF_INET, syscall.SOCK_DGRAM, OpBind, nil, "", syscall.EINVAL},
		{"bad port", syscall.AF_INET, syscall.SOCK_DGRAM, OpBind, &syscall.SockaddrInet4{Port: 70000}, "", syscall.EINVAL},
	} {
		got, err := ToAddrPort(c.family, c.typ, c.op, c.sa, ifs)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("%s: %v, %v; want %s", c.name, got, err, c.want)
		}
	}
}

func TestToSockaddr(t *testing.T) {
	ifs := fakeIfs{"eth0": 2}
	sa := ToSockaddr(syscall.AF_INET6, netip.MustParseAddrPort("127.0.0.1:80"), ifs).(*syscall.SockaddrInet6)
	if netip.AddrFrom16(sa.Addr).String() != "::ffff:127.0.0.1" || sa.Port != 80 {
		t.Errorf("AF_INET6 of an IPv4 address: %+v, want v4-mapped", sa)
	}
	sa = ToSockaddr(syscall.AF_INET6, netip.MustParseAddrPort("[fe80::1%eth0]:80"), ifs).(*syscall.SockaddrInet6)
	if sa.ZoneId != 2 {
		t.Errorf("zone eth0 gave scope id %d, want 2", sa.ZoneId)
	}
	sa = ToSockaddr(syscall.AF_INET6, netip.MustParseAddrPort("[fe80::1%5]:80"), nil).(*syscall.SockaddrInet6)
	if sa.ZoneId != 5 {
		t.Errorf("numeric zone gave scope id %d, want 5", sa.ZoneId)
	}
	s4 := ToSockaddr(syscall.AF_INET, netip.MustParseAddrPort("[::ffff:10.1.2.3]:7"), nil).(*syscall.SockaddrInet4)
	if s4.Addr != [4]byte{10, 1, 2, 3} || s4.Port != 7 {
		t.Errorf("AF_INET of a mapped address: %+v", s4)
	}
	if s4 := ToSockaddr(syscall.AF_INET, netip.AddrPort{}, nil).(*syscall.SockaddrInet4); s4.Addr != [4]byte{} || s4.Port != 0 {
		t.Errorf("unbound AF_INET = %+v, want 0.0.0.0:0", s4)
	}
	// Round trips.
	for _, s := range []string{"10.0.0.1:1", "[2001:db8::5]:65535", "[fe80::9%eth0]:22"} {
		ap := netip.MustParseAddrPort(s)
		fam := syscall.AF_INET
		if ap.Addr().Is6() {
			fam = syscall.AF_INET6
		}
		back, err := ToAddrPort(fam, syscall.SOCK_DGRAM, OpSend, ToSockaddr(fam, ap, ifs), ifs)
		if err != nil || back != ap {
			t.Errorf("round trip of %s: %v, %v", s, back, err)
		}
		if got, ok := AddrPortOf(ToSockaddr(fam, ap, ifs), ifs); !ok || got != ap {
			t.Errorf("AddrPortOf(%s) = %v", s, got)
		}
	}
}

// An AF_INET6 socket reports its IPv4 peers v4-mapped, as Linux.
func TestMappedPeers(t *testing.T) {
	l, _ := newTestLayer(t)
	s6 := mustSocket(t, l, syscall.AF_INET6, syscall.SOCK_DGRAM)
	if err := s6.Bind(&syscall.SockaddrInet6{Port: 7000, Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}); err != nil {
		t.Fatal(err)
	}
	s4 := mustSocket(t, l, syscall.AF_INET, syscall.SOCK_DGRAM)
	if _, err := s4.SendTo([]byte("hi"), 0, lo4(7000)); err != nil {
		t.Fatal(err)
	}
	_, from, err := s6.RecvFrom(make([]byte, 10), 0)
	if err != nil {
		t.Fatal(err)
	}
	f6, ok := from.(*syscall.SockaddrInet6)
	if !ok || !netip.AddrFrom16(f6.Addr).Is4In6() {
		t.Fatalf("from = %#v, want a v4-mapped sockaddr_in6", from)
	}
	// Replying with that sockaddr, or with a sockaddr_in, both work.
	if _, err := s6.SendTo([]byte("a"), 0, from); err != nil {
		t.Fatal(err)
	}
	if _, err := s6.SendTo([]byte("b"), 0, lo4(int(s4.Endpoint().LocalAddr().Port()))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b"} {
		buf := make([]byte, 10)
		n, from4, err := s4.RecvFrom(buf, 0)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("reply = %q, %v", buf[:n], err)
		}
		if _, ok := from4.(*syscall.SockaddrInet4); !ok {
			t.Errorf("AF_INET socket got %T", from4)
		}
	}
	if err := s4.Connect(&syscall.SockaddrInet6{Port: 1}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("connect AF_INET to sockaddr_in6: %v, want EAFNOSUPPORT", err)
	}
}
