package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// quoted returns the UDP header (and data) an ICMP error quotes.
func quoted(sport, dport uint16, data string) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], data)
	return b
}

// TestICMPErrorConversion: ICMP errors become the errno Linux's
// icmp_err_convert / icmpv6_err_convert give; hard errors reach a
// connected socket without IP_RECVERR, soft ones only the error queue;
// fragmentation needed is ignored under IP_PMTUDISC_DONT; the error queue
// carries the MTU; an error for nobody's 4-tuple is dropped.
func TestICMPErrorConversion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		peer4, peer6 := ap(addrB4, 5000), ap(addrB6, 5000)
		router4 := netip.MustParseAddr("10.0.0.254")
		for _, tc := range []struct {
			name      string
			v6        bool
			typ, code uint8
			recverr   bool
			pmtuDont  bool
			want      syscall.Errno // 0: nothing reported
			mtu       int
		}{
			{"net unreachable is soft", false, wire.ICMPv4DestUnreachable, 0, false, false, 0, 0},
			{"net unreachable, recverr", false, wire.ICMPv4DestUnreachable, 0, true, false, syscall.ENETUNREACH, 0},
			{"host unreachable is soft", false, wire.ICMPv4DestUnreachable, 1, false, false, 0, 0},
			{"host unreachable, recverr", false, wire.ICMPv4DestUnreachable, 1, true, false, syscall.EHOSTUNREACH, 0},
			{"proto unreachable", false, wire.ICMPv4DestUnreachable, 2, false, false, syscall.ENOPROTOOPT, 0},
			{"port unreachable", false, wire.ICMPv4DestUnreachable, 3, false, false, syscall.ECONNREFUSED, 0},
			{"frag needed", false, wire.ICMPv4DestUnreachable, 4, true, false, syscall.EMSGSIZE, 1400},
			{"frag needed, DONT", false, wire.ICMPv4DestUnreachable, 4, true, true, 0, 1400},
			{"host prohibited", false, wire.ICMPv4DestUnreachable, 13, false, false, syscall.EHOSTUNREACH, 0},
			{"TOS net unreachable is soft", false, wire.ICMPv4DestUnreachable, 11, false, false, 0, 0},
			{"TOS net unreachable, recverr", false, wire.ICMPv4DestUnreachable, 11, true, false, syscall.ENETUNREACH, 0},
			{"time exceeded is soft", false, wire.ICMPv4TimeExceeded, 0, false, false, 0, 0},
			{"time exceeded, recverr", false, wire.ICMPv4TimeExceeded, 0, true, false, syscall.EHOSTUNREACH, 0},
			{"parameter problem", false, wire.ICMPv4ParamProblem, 0, false, false, syscall.EPROTO, 0},
			{"v6 no route is soft", true, wire.ICMPv6DstUnreachable, 0, false, false, 0, 0},
			{"v6 no route, recverr", true, wire.ICMPv6DstUnreachable, 0, true, false, syscall.ENETUNREACH, 0},
			{"v6 admin prohibited", true, wire.ICMPv6DstUnreachable, 1, false, false, syscall.EACCES, 0},
			{"v6 address unreachable is soft", true, wire.ICMPv6DstUnreachable, 3, false, false, 0, 0},
			{"v6 address unreachable, recverr", true, wire.ICMPv6DstUnreachable, 3, true, false, syscall.EHOSTUNREACH, 0},
			{"source quench ignored", false, wire.ICMPv4SourceQuench, 0, true, false, 0, 0},
			{"v6 port unreachable", true, wire.ICMPv6DstUnreachable, 4, false, false, syscall.ECONNREFUSED, 0},
			{"v6 packet too big", true, wire.ICMPv6PacketTooBig, 0, true, false, syscall.EMSGSIZE, 1280},
			{"v6 time exceeded, recverr", true, wire.ICMPv6TimeExceeded, 0, true, false, syscall.EHOSTUNREACH, 0},
			{"v6 parameter problem", true, wire.ICMPv6ParamProblem, 1, false, false, syscall.EPROTO, 0},
		} {
			fam, peer, src, from := syscall.AF_INET, peer4, addrA4, router4
			level, recverr := syscall.IPPROTO_IP, syscall.IP_RECVERR
			if tc.v6 {
				fam, peer, src, from = syscall.AF_INET6, peer6, addrA6, netip.MustParseAddr("2001:db8::fe")
				level, recverr = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR
			}
			ep := a.open(t, fam)
			if tc.recverr {
				setOpt(t, ep, level, recverr, 1)
			}
			if tc.pmtuDont {
				setOpt(t, ep, level, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DONT)
			}
			if err := ep.Connect(peer); err != nil {
				t.Fatal(err)
			}
			lport := ep.LocalAddr().Port()
			a.udp.HandleError(&stack.ICMPError{NIC: a.nic, From: from, Type: tc.typ, Code: tc.code, MTU: tc.mtu,
				Src: src, Dst: peer.Addr(), Proto: wire.IPProtoUDP, Payload: quoted(lport, peer.Port(), "data")})
			v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR)
			if syscall.Errno(v.(int)) != tc.want {
				t.Errorf("%s: SO_ERROR %v, want %v", tc.name, syscall.Errno(v.(int)), tc.want)
			}
			res, err := ep.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{ErrQueue: true})
			switch {
			case tc.recverr && tc.want != 0:
				if err != nil || res.Control.Err == nil || syscall.Errno(res.Control.Err.Errno) != tc.want ||
					res.Control.Err.Info != uint32(tc.mtu) || res.From != ep.(*endpoint).presentAP(peer) {
					t.Errorf("%s: error queue %+v %v", tc.name, res, err)
				}
			default:
				if !errors.Is(err, syscall.EAGAIN) {
					t.Errorf("%s: error queue read %v, want EAGAIN", tc.name, err)
				}
			}
			ep.Close()
		}
		// A parameter problem's pointer is the error's ee_info, as
		// __udp4_lib_err / ip_icmp_error report it.
		ep := a.open(t, syscall.AF_INET)
		setOpt(t, ep, syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
		if err := ep.Connect(peer4); err != nil {
			t.Fatal(err)
		}
		a.udp.HandleError(&stack.ICMPError{NIC: a.nic, From: router4, Type: wire.ICMPv4ParamProblem, Pointer: 9,
			Src: addrA4, Dst: addrB4, Proto: wire.IPProtoUDP, Payload: quoted(ep.LocalAddr().Port(), peer4.Port(), "")})
		res, err := ep.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{ErrQueue: true})
		if err != nil || res.Control.Err == nil || res.Control.Err.Info != 9 || res.Control.Err.Offender != router4 {
			t.Errorf("parameter problem on the error queue: %+v %v, want ee_info 9 from %v", res.Control.Err, err, router4)
		}
		ep.Close()
		// Nobody's 4-tuple: nothing happens (and nothing panics).
		a.udp.HandleError(&stack.ICMPError{NIC: a.nic, From: router4, Type: 3, Code: 3, Src: addrA4, Dst: addrB4,
			Proto: wire.IPProtoUDP, Payload: quoted(1, 2, "")})
		a.udp.HandleError(&stack.ICMPError{NIC: a.nic, From: router4, Type: 3, Code: 3, Src: addrA4, Dst: addrB4,
			Proto: wire.IPProtoUDP, Payload: []byte{1, 2}})
	})
}

// TestMulticastTTL: multicast goes with TTL/hop limit 1 unless
// IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS say otherwise (RFC 1112 §6.1,
// RFC 3493 §5.2); unicast with IP_TTL's 64 default.
func TestMulticastTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := stacktest.NewNetwork(t, 13)
		a := newHost(t, nw, "10.0.0.1/24", "2001:db8::1/64")
		sn := newSniffer(t, nw)
		ttls := func(v6 bool) []uint8 {
			var out []uint8
			for _, eth := range sn.ipPackets(v6) {
				if v6 {
					if ip, err := wire.ParseIPv6(eth.Payload()); err == nil && ip.NextHeader() == wire.IPProtoUDP {
						out = append(out, ip.HopLimit())
					}
				} else if ip, err := wire.ParseIPv4(eth.Payload()); err == nil && ip.Protocol() == wire.IPProtoUDP {
					out = append(out, ip.TTL())
				}
			}
			return out
		}
		tx4 := a.open(t, syscall.AF_INET)
		tx6 := a.open(t, syscall.AF_INET6)
		send(t, tx4, ap(netip.MustParseAddr("239.1.1.1"), 1), "a")
		send(t, tx6, ap(netip.MustParseAddr("ff15::1"), 1), "a")
		setOpt(t, tx4, syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 7)
		setOpt(t, tx6, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, 9)
		send(t, tx4, ap(netip.MustParseAddr("239.1.1.1"), 1), "b")
		send(t, tx6, ap(netip.MustParseAddr("ff15::1"), 1), "b")
		synctest.Wait()
		if got := ttls(false); fmt.Sprint(got) != "[1 7]" {
			t.Errorf("IPv4 multicast TTLs %v, want [1 7]", got)
		}
		if got := ttls(true); fmt.Sprint(got) != "[1 9]" {
			t.Errorf("IPv6 multicast hop limits %v, want [1 9]", got)
		}
	})
}

// TestConcurrentUse: senders, a reader, option changes, joins and a close
// racing on one socket (run with -race): no deadlock, no race, and every
// datagram read is one that was sent.
func TestConcurrentUse(t *testing.T) {
	a, b := pair(t)
	rx := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 8100))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, _ := a.udp.NewEndpoint(syscall.AF_INET)
			defer tx.Close()
			msg := []byte(fmt.Sprintf("sender %d", i))
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx.Write([][]byte{msg}, transport.WriteOptions{To: ap(addrB4, 8100)})
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g := transport.Membership{Group: netip.MustParseAddr("239.8.8.8")}
		for {
			select {
			case <-stop:
				return
			default:
			}
			rx.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, g)
			rx.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
			rx.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192)
			rx.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_DROP_MEMBERSHIP, g)
			rx.Info()
			b.udp.Endpoints()
		}
	}()
	buf := make([]byte, 100)
	got := 0
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		res, err := rx.Read([][]byte{buf}, transport.ReadOptions{})
		if err != nil {
			stacktest.Wait(rx, waiter.EventIn, 10*time.Millisecond)
			continue
		}
		var n int
		if _, err := fmt.Sscanf(string(buf[:res.N]), "sender %d", &n); err != nil || n < 0 || n > 3 {
			t.Fatalf("read %q", buf[:res.N])
		}
		got++
	}
	rx.Close()
	close(stop)
	wg.Wait()
	if got == 0 {
		t.Fatal("nothing received")
	}
}
