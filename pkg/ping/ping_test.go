package ping

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

const wait = 5 * time.Second

// echo builds an echo request as a program writes it to a ping socket:
// any identifier (the socket replaces it), no checksum.
func echo(v6 bool, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = wire.ICMPv4Echo
	if v6 {
		b[0] = wire.ICMPv6EchoRequest
	}
	binary.BigEndian.PutUint16(b[4:], 0x4242)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	return b
}

func family(v6 bool) int {
	if v6 {
		return syscall.AF_INET6
	}
	return syscall.AF_INET
}

func newPing(t testing.TB, p *Protocol, v6 bool) transport.Endpoint {
	t.Helper()
	ep, err := p.NewEndpoint(family(v6))
	stacktest.NoErr(t, err)
	t.Cleanup(func() { ep.Close() })
	return ep
}

// checkReply reads an echo reply and checks it answers seq with data for
// the socket's identifier, from from.
func checkReply(t *testing.T, ep transport.Endpoint, v6 bool, from netip.Addr, seq uint16, data []byte) {
	t.Helper()
	b, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, wait)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	typ := wire.ICMPv4EchoReply
	if v6 {
		typ = wire.ICMPv6EchoReply
	}
	id := ep.LocalAddr().Port()
	if len(b) != 8+len(data) || b[0] != typ || b[1] != 0 ||
		binary.BigEndian.Uint16(b[4:]) != id || binary.BigEndian.Uint16(b[6:]) != seq || !bytes.Equal(b[8:], data) {
		t.Fatalf("reply %x, want type %d id %#x seq %d data %x", b, typ, id, seq, data)
	}
	if !v6 && !wire.ICMPv4(b).ChecksumValid() {
		t.Errorf("reply checksum bad")
	}
	if res.From != netip.AddrPortFrom(from, 0) {
		t.Errorf("From %v, want %v:0 (Linux reports port 0)", res.From, from)
	}
}

// TestPingEcho: a ping socket pings another stack (through a router) and
// its own loopback, both families; the reply is the ICMP message with the
// socket's identifier, and the TTL control message comes when asked.
func TestPingEcho(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	for _, tc := range []struct {
		name string
		dst  netip.Addr
	}{
		{"v4-remote", addrB4}, {"v6-remote", addrB6},
		{"v4-loopback", netip.MustParseAddr("127.0.0.1")}, {"v6-loopback", netip.IPv6Loopback()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v6 := tc.dst.Is6()
			ep := newPing(t, p, v6)
			lvl, opt := syscall.IPPROTO_IP, syscall.IP_RECVTTL
			if v6 {
				lvl, opt = syscall.IPPROTO_IPV6, syscall.IPV6_RECVHOPLIMIT
			}
			stacktest.NoErr(t, ep.SetSockOpt(lvl, opt, 1))
			data := []byte("stackbox ping payload")
			for seq := uint16(1); seq <= 3; seq++ {
				n, err := ep.Write([][]byte{echo(v6, seq, data)}, transport.WriteOptions{To: netip.AddrPortFrom(tc.dst, 0)})
				if err != nil || n != 8+len(data) {
					t.Fatalf("write: %d, %v", n, err)
				}
				checkReply(t, ep, v6, tc.dst, seq, data)
			}
			if ep.LocalAddr().Port() == 0 {
				t.Errorf("no identifier after send (autobind)")
			}
		})
	}
	// The TTL of a reply from B crossed one router.
	ep := newPing(t, p, false)
	stacktest.NoErr(t, ep.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVTTL, 1))
	_, err := ep.Write([][]byte{echo(false, 9, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	_, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, wait)
	stacktest.NoErr(t, err)
	if !res.Control.HasTTL || res.Control.TTL != 63 {
		t.Errorf("control %+v, want TTL 63", res.Control)
	}
}

// TestPingIdentifiers: two sockets that write the same identifier each
// send their own, and each gets only its replies; an explicit identifier
// is used as given and cannot be bound twice.
func TestPingIdentifiers(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	for _, v6 := range []bool{false, true} {
		dst := addrB4
		if v6 {
			dst = addrB6
		}
		e1, e2 := newPing(t, p, v6), newPing(t, p, v6)
		to := transport.WriteOptions{To: netip.AddrPortFrom(dst, 0)}
		_, err := e1.Write([][]byte{echo(v6, 1, []byte("one"))}, to)
		stacktest.NoErr(t, err)
		_, err = e2.Write([][]byte{echo(v6, 2, []byte("two"))}, to)
		stacktest.NoErr(t, err)
		if e1.LocalAddr().Port() == e2.LocalAddr().Port() {
			t.Fatalf("both sockets have identifier %d", e1.LocalAddr().Port())
		}
		checkReply(t, e1, v6, dst, 1, []byte("one"))
		checkReply(t, e2, v6, dst, 2, []byte("two"))
		stacktest.NoRead(t, e1, transport.ReadOptions{}, 50*time.Millisecond)
		stacktest.NoRead(t, e2, transport.ReadOptions{}, 0)

		anyAddr := netip.IPv4Unspecified()
		if v6 {
			anyAddr = netip.IPv6Unspecified()
		}
		e3 := newPing(t, p, v6)
		stacktest.NoErr(t, e3.Bind(netip.AddrPortFrom(anyAddr, 0xbeef)))
		e4 := newPing(t, p, v6)
		if err := e4.Bind(netip.AddrPortFrom(anyAddr, 0xbeef)); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second bind of the identifier: %v, want EADDRINUSE", err)
		}
		if err := e3.Bind(netip.AddrPortFrom(anyAddr, 1)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("rebind: %v, want EINVAL", err)
		}
		_, err = e3.Write([][]byte{echo(v6, 7, nil)}, to)
		stacktest.NoErr(t, err)
		checkReply(t, e3, v6, dst, 7, nil)
		if e3.LocalAddr().Port() != 0xbeef {
			t.Errorf("identifier %#x, want 0xbeef", e3.LocalAddr().Port())
		}
		stacktest.NoErr(t, e3.Close())
	}
	// A bound address is an address of ours, and replies are matched to it.
	e := newPing(t, p, false)
	if err := e.Bind(netip.AddrPortFrom(netip.MustParseAddr("10.99.0.1"), 0)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("bind to a foreign address: %v", err)
	}
	stacktest.NoErr(t, e.Bind(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)))
	_, err := e.Write([][]byte{echo(false, 3, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)})
	stacktest.NoErr(t, err)
	checkReply(t, e, false, netip.MustParseAddr("127.0.0.1"), 3, nil)
	if infos := p.Endpoints(); len(infos) == 0 || infos[0].Proto[:4] != "icmp" {
		t.Errorf("Endpoints %+v", infos)
	}
}

// TestPingWriteErrors: only echo requests with code 0 and a whole header
// may be written (EINVAL otherwise, ping_common_sendmsg); no destination
// is EDESTADDRREQ; a broadcast needs SO_BROADCAST (EACCES).
func TestPingWriteErrors(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	for _, v6 := range []bool{false, true} {
		ep := newPing(t, p, v6)
		dst := addrB4
		if v6 {
			dst = addrB6
		}
		to := transport.WriteOptions{To: netip.AddrPortFrom(dst, 0)}
		reply := echo(v6, 1, nil)
		reply[0] = wire.ICMPv4EchoReply
		if v6 {
			reply[0] = wire.ICMPv6EchoReply
		}
		code := echo(v6, 1, nil)
		code[1] = 1
		for name, msg := range map[string][]byte{
			"reply": reply, "code 1": code, "short": echo(v6, 1, nil)[:7], "other family": echo(!v6, 1, nil),
		} {
			if _, err := ep.Write([][]byte{msg}, to); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("v6=%v %s: %v, want EINVAL", v6, name, err)
			}
		}
		if _, err := ep.Write([][]byte{echo(v6, 1, nil)}, transport.WriteOptions{}); !errors.Is(err, syscall.EDESTADDRREQ) {
			t.Errorf("no destination: %v", err)
		}
		// Gathered writes are one message.
		m := echo(v6, 5, []byte("abcdef"))
		_, err := ep.Write([][]byte{m[:3], m[3:10], m[10:]}, to)
		stacktest.NoErr(t, err)
		checkReply(t, ep, v6, dst, 5, []byte("abcdef"))
	}
	ep := newPing(t, p, false)
	bcast := transport.WriteOptions{To: netip.AddrPortFrom(netip.MustParseAddr("10.81.1.255"), 0)}
	if _, err := ep.Write([][]byte{echo(false, 1, nil)}, bcast); !errors.Is(err, syscall.EACCES) {
		t.Errorf("broadcast without SO_BROADCAST: %v", err)
	}
	stacktest.NoErr(t, ep.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1))
	_, err := ep.Write([][]byte{echo(false, 1, nil)}, bcast)
	stacktest.NoErr(t, err)
	v4 := newPing(t, p, false)
	if _, err := v4.Write([][]byte{echo(false, 1, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(addrB6, 0)}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv6 destination on an IPv4 socket: %v", err)
	}
}

// TestPingGroupRange: the registry serves ping sockets to callers whose
// group is in the range (EACCES otherwise) and to privileged ones.
func TestPingGroupRange(t *testing.T) {
	s := stacktest.NewStack(t, stack.Options{})
	p := New(s)
	var r transport.Registry
	p.Register(&r)
	req := func(fam, proto int, c transport.Cred) error {
		ep, err := r.New(transport.NewRequest{Family: fam, Type: syscall.SOCK_DGRAM, Protocol: proto, Cred: c})
		if err == nil {
			ep.Close()
		}
		return err
	}
	if err := req(syscall.AF_INET, syscall.IPPROTO_ICMP, transport.Cred{UID: 1000, GID: 1000}); err != nil {
		t.Errorf("default range refuses GID 1000: %v", err)
	}
	p.SetGroupRange(100, 200)
	for _, c := range []struct {
		cred transport.Cred
		ok   bool
	}{
		{transport.Cred{UID: 1000, GID: 50}, false},
		{transport.Cred{UID: 1000, GID: 201}, false},
		{transport.Cred{UID: 1000, GID: 100}, true},
		{transport.Cred{UID: 1000, GID: 200}, true},
		{transport.Cred{GID: 50, Privileged: true}, true},
	} {
		for _, f := range []struct{ fam, proto int }{{syscall.AF_INET, syscall.IPPROTO_ICMP}, {syscall.AF_INET6, syscall.IPPROTO_ICMPV6}} {
			err := req(f.fam, f.proto, c.cred)
			if c.ok && err != nil || !c.ok && !errors.Is(err, syscall.EACCES) {
				t.Errorf("%+v family %d: %v", c.cred, f.fam, err)
			}
		}
	}
	p.SetGroupRange(1, 0) // Linux's own default: nobody
	if err := req(syscall.AF_INET, syscall.IPPROTO_ICMP, transport.Cred{}); !errors.Is(err, syscall.EACCES) {
		t.Errorf("range 1 0 lets GID 0 in: %v", err)
	}
	if err := req(syscall.AF_INET6, syscall.IPPROTO_ICMP, transport.Cred{Privileged: true}); !errors.Is(err, syscall.EPROTONOSUPPORT) {
		t.Errorf("AF_INET6 with IPPROTO_ICMP: %v", err)
	}
}

// readError reads one error queue entry and checks it.
func readError(t *testing.T, ep transport.Endpoint, typ, code uint8, errno syscall.Errno, offender, dst netip.Addr, seq uint16) {
	t.Helper()
	b, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{ErrQueue: true}, wait)
	if err != nil {
		t.Fatalf("error queue: %v", err)
	}
	ee := res.Control.Err
	if ee == nil {
		t.Fatalf("no extended error: %+v", res)
	}
	origin := uint8(transport.OriginICMP)
	if dst.Is6() {
		origin = transport.OriginICMP6
	}
	if ee.Type != typ || ee.Code != code || ee.Errno != int(errno) || ee.Offender != offender || ee.Origin != origin {
		t.Errorf("extended error %+v, want type %d code %d errno %v offender %v origin %d", ee, typ, code, errno, offender, origin)
	}
	if res.From != netip.AddrPortFrom(dst, 0) {
		t.Errorf("From %v, want %v:0", res.From, dst)
	}
	// The payload is our echo request as sent: identifier and sequence.
	if len(b) < 8 || binary.BigEndian.Uint16(b[4:]) != ep.LocalAddr().Port() || binary.BigEndian.Uint16(b[6:]) != seq {
		t.Errorf("quoted request %x, want id %#x seq %d", b, ep.LocalAddr().Port(), seq)
	}
}

// TestPingErrors: ICMP errors about our echo requests from the router:
// Time Exceeded for a TTL of 1, Destination Unreachable for an unrouted
// and a prohibited destination; on the error queue with IP_RECVERR, with
// Linux's errno, the router as offender and the quoted request.
func TestPingErrors(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	for _, tc := range []struct {
		name       string
		dst        string
		ttl        uint8
		typ, code  uint8
		errno      syscall.Errno
		offender   netip.Addr
		hardErrors bool
	}{
		{"v4-ttl", "10.81.2.2", 1, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, syscall.EHOSTUNREACH, addrR4, false},
		{"v4-noroute", "10.99.1.1", 0, wire.ICMPv4DestUnreachable, wire.ICMPv4NetUnreachable, syscall.ENETUNREACH, addrR4, false},
		{"v4-prohibit", "10.81.9.9", 0, wire.ICMPv4DestUnreachable, wire.ICMPv4CommProhibited, syscall.EHOSTUNREACH, addrR4, true},
		{"v6-hoplimit", "fd81:2::2", 1, wire.ICMPv6TimeExceeded, wire.ICMPv6CodeHopLimitExceeded, syscall.EHOSTUNREACH, addrR6, false},
		{"v6-noroute", "fd99::1", 0, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, syscall.ENETUNREACH, addrR6, false},
		{"v6-prohibit", "fd81:9::9", 0, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeAdminProhibited, syscall.EACCES, addrR6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.MustParseAddr(tc.dst)
			v6 := dst.Is6()
			lvl, opt := syscall.IPPROTO_IP, syscall.IP_RECVERR
			if v6 {
				lvl, opt = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR
			}
			wo := transport.WriteOptions{To: netip.AddrPortFrom(dst, 0), HasTTL: tc.ttl != 0, TTL: tc.ttl}

			// IP_RECVERR: the error queue, and SO_ERROR until it is read.
			ep := newPing(t, p, v6)
			stacktest.NoErr(t, ep.SetSockOpt(lvl, opt, 1))
			_, err := ep.Write([][]byte{echo(v6, 17, []byte("quoted"))}, wo)
			stacktest.NoErr(t, err)
			readError(t, ep, tc.typ, tc.code, tc.errno, tc.offender, dst, 17)
			if v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != syscall.Errno(0) {
				t.Errorf("SO_ERROR after reading the queue: %v", v)
			}

			// Without it an unconnected socket hears nothing.
			quiet := newPing(t, p, v6)
			_, err = quiet.Write([][]byte{echo(v6, 18, nil)}, wo)
			stacktest.NoErr(t, err)

			// A connected socket without it sees hard errors only, as
			// SO_ERROR and from the next read.
			conn := newPing(t, p, v6)
			stacktest.NoErr(t, conn.Connect(netip.AddrPortFrom(dst, 0)))
			_, err = conn.Write([][]byte{echo(v6, 19, nil)}, transport.WriteOptions{HasTTL: tc.ttl != 0, TTL: tc.ttl})
			stacktest.NoErr(t, err)
			if tc.hardErrors {
				_, _, err := stacktest.ReadWithin(conn, transport.ReadOptions{}, wait)
				if !errors.Is(err, tc.errno) {
					t.Errorf("connected read: %v, want %v", err, tc.errno)
				}
				if conn.Readiness(waiter.EventIn)&waiter.EventErr != 0 {
					t.Errorf("error still pending after the read reported it")
				}
			} else {
				stacktest.NoRead(t, conn, transport.ReadOptions{}, 100*time.Millisecond)
			}
			stacktest.NoRead(t, quiet, transport.ReadOptions{}, 0)
			stacktest.NoRead(t, quiet, transport.ReadOptions{ErrQueue: true}, 0)
			if v, _ := quiet.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != syscall.Errno(0) {
				t.Errorf("unconnected socket without IP_RECVERR: SO_ERROR %v", v)
			}
		})
	}
}

// TestPingErrorReadiness: a queued error makes the socket report
// EventErr and wakes a waiter; SO_ERROR holds the errno until read.
func TestPingErrorReadiness(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	ep := newPing(t, p, false)
	stacktest.NoErr(t, ep.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVERR, 1))
	entry, ch := waiter.NewChannelEntry(waiter.EventIn)
	ep.Queue().Register(entry)
	defer ep.Queue().Unregister(entry)
	_, err := ep.Write([][]byte{echo(false, 1, nil)}, transport.WriteOptions{To: netip.AddrPortFrom(netip.MustParseAddr("10.99.0.9"), 0)})
	stacktest.NoErr(t, err)
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatal("no wake-up for the error")
	}
	if ep.Readiness(waiter.EventIn)&waiter.EventErr == 0 {
		t.Errorf("readiness %v without EventErr", ep.Readiness(waiter.EventIn))
	}
	if v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR); v != syscall.ENETUNREACH {
		t.Errorf("SO_ERROR %v, want ENETUNREACH", v)
	}
	// The queued entry stays until read; reading clears EventErr.
	_, res, err := stacktest.ReadWithin(ep, transport.ReadOptions{ErrQueue: true}, wait)
	if err != nil || res.Control.Err == nil {
		t.Fatalf("error queue: %v %+v", err, res)
	}
	if ep.Readiness(waiter.EventIn)&waiter.EventErr != 0 {
		t.Errorf("EventErr after the queue was read")
	}
}

// TestPingConcurrent: sockets used from several goroutines at once
// (writers, readers, option changes, close) under the race detector; every
// socket gets replies to its own requests only.
func TestPingConcurrent(t *testing.T) {
	s := stacktest.NewStack(t, stack.Options{})
	p := New(s)
	lo := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	done := make(chan error, 8)
	for range 4 {
		ep := newPing(t, p, false)
		go func() {
			for seq := range uint16(50) {
				if _, err := ep.Write([][]byte{echo(false, seq, []byte("concurrent"))}, transport.WriteOptions{To: lo}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			id := uint16(0)
			for got := 0; got < 50; {
				b, _, err := stacktest.ReadWithin(ep, transport.ReadOptions{}, wait)
				if err != nil {
					done <- err
					return
				}
				if id == 0 {
					id = ep.LocalAddr().Port()
				}
				if binary.BigEndian.Uint16(b[4:]) != id {
					done <- errors.New("a reply for another socket")
					return
				}
				ep.SetSockOpt(syscall.IPPROTO_IP, syscall.IP_RECVTTL, got&1)
				ep.Readiness(waiter.EventIn)
				got++
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(p.Endpoints()) != 4 {
		t.Errorf("Endpoints %d", len(p.Endpoints()))
	}
}

// TestPingDemuxByAddress: two sockets share an identifier (both set
// SO_REUSEADDR) but are bound to different addresses; each reply goes to
// the socket bound to the address it was sent to.
func TestPingDemuxByAddress(t *testing.T) {
	l := newLab(t)
	p := New(l.A)
	lo := netip.MustParseAddr("127.0.0.1")
	e1, e2 := newPing(t, p, false), newPing(t, p, false)
	for _, e := range []transport.Endpoint{e1, e2} {
		stacktest.NoErr(t, e.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	}
	stacktest.NoErr(t, e1.Bind(netip.AddrPortFrom(lo, 0x0505)))
	stacktest.NoErr(t, e2.Bind(netip.AddrPortFrom(addrA4, 0x0505)))
	e3 := newPing(t, p, false)
	if err := e3.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0x0505)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("identifier shared without SO_REUSEADDR: %v", err)
	}
	_, err := e2.Write([][]byte{echo(false, 2, []byte("via A"))}, transport.WriteOptions{To: netip.AddrPortFrom(addrB4, 0)})
	stacktest.NoErr(t, err)
	checkReply(t, e2, false, addrB4, 2, []byte("via A"))
	_, err = e1.Write([][]byte{echo(false, 1, []byte("via lo"))}, transport.WriteOptions{To: netip.AddrPortFrom(lo, 0)})
	stacktest.NoErr(t, err)
	checkReply(t, e1, false, lo, 1, []byte("via lo"))
	stacktest.NoRead(t, e1, transport.ReadOptions{}, 50*time.Millisecond)
	stacktest.NoRead(t, e2, transport.ReadOptions{}, 0)
}
