package transport

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

func TestIPAddrsFamily(t *testing.T) {
	v4, v6 := IPAddrs{}, IPAddrs{V6: true}
	mapped := netip.MustParseAddr("::ffff:10.0.0.1")
	if a, err := v4.Family(mapped); err != nil || a != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("AF_INET, mapped: %v, %v; want it unmapped", a, err)
	}
	if _, err := v4.Family(netip.MustParseAddr("2001:db8::1")); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("AF_INET, IPv6: %v, want EAFNOSUPPORT", err)
	}
	for _, a := range []netip.Addr{mapped, netip.MustParseAddr("10.0.0.1")} {
		if _, err := v6.Family(a); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("AF_INET6, %v: %v, want EINVAL", a, err)
		}
	}
	if v4.LocalOrAnyLocked() != netip.IPv4Unspecified() || v6.LocalOrAnyLocked() != netip.IPv6Unspecified() {
		t.Error("LocalOrAnyLocked without a local address is not the unspecified address")
	}
	if _, err := v4.RemoteLocked(); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("RemoteLocked unconnected: %v, want ENOTCONN", err)
	}
}

func TestIPAddrsDestination(t *testing.T) {
	local, peer := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a := IPAddrs{Local: local}
	o := NewOptions(nil)
	o.BoundDevice, o.MulticastIf, o.MulticastAddr = 3, 4, netip.MustParseAddr("10.0.0.9")
	if _, _, _, err := a.DestinationLocked(&o, WriteOptions{}); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("no destination: %v, want EDESTADDRREQ", err)
	}
	a.Peer = peer
	if dst, nic, src, err := a.DestinationLocked(&o, WriteOptions{}); err != nil || dst != peer || nic != 3 || src != local {
		t.Errorf("to the peer: %v %d %v %v", dst, nic, src, err)
	}
	o.BoundDevice = 0
	g := netip.AddrPortFrom(netip.MustParseAddr("224.1.2.3"), 0)
	if dst, nic, src, err := a.DestinationLocked(&o, WriteOptions{To: g}); err != nil || dst != g.Addr() || nic != 4 || src != o.MulticastAddr {
		t.Errorf("multicast: %v %d %v %v; want IP_MULTICAST_IF's interface and address", dst, nic, src, err)
	}
	pkt := WriteOptions{To: g, IfIndex: 7, Src: peer}
	if _, nic, src, _ := a.DestinationLocked(&o, pkt); nic != 7 || src != peer {
		t.Errorf("IP_PKTINFO: %d %v, want it to win", nic, src)
	}
}
