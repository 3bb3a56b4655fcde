package stack

import (
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Raw and ping socket support: header-included output, error handlers,
// and ICMP never answered with port unreachable.

// rawLog collects what a raw handler receives.
type rawLog struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (l *rawLog) handler(_ *PacketInfo, p []byte) {
	l.mu.Lock()
	l.pkts = append(l.pkts, append([]byte(nil), p...))
	l.mu.Unlock()
}

func (l *rawLog) wait(t *testing.T, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, p := range l.pkts {
			if match(p) {
				l.mu.Unlock()
				return p
			}
		}
		l.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no matching packet")
	return nil
}

// TestWriteHeaderIncluded: WriteOptions.HeaderIncluded sends the caller's
// IPv4 header with the total length, a zero ID, a zero source and the
// checksum filled in (Linux raw_send_hdrinc), never fragmented; a header
// that is cut short is EINVAL.
func TestWriteHeaderIncluded(t *testing.T) {
	nw := newTestNet(t, 91)
	a := newTestHost(t, nw, Options{}, "10.91.0.1/24")
	b := newTestHost(t, nw, Options{}, "10.91.0.2/24")
	var got rawLog
	defer b.s.AddRawHandler(false, 253, got.handler)()
	r, err := a.s.FindRoute(0, netip.Addr{}, mustAddr("10.91.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(n int) []byte {
		p := make([]byte, n)
		p[0], p[1], p[8], p[9] = 0x45, 0x10, 33, 253
		copy(p[16:], []byte{10, 91, 0, 2})
		copy(p[20:], "included")
		return p
	}
	before := a.s.Stats().IP.OutRequests.Load()
	if err := a.s.WritePacket(&r, NewPacketFrom(hdr(28)), WriteOptions{HeaderIncluded: true}); err != nil {
		t.Fatal(err)
	}
	p := wire.IPv4(got.wait(t, func([]byte) bool { return true }))
	if len(p) != 28 || p.TotalLen() != 28 || p.ID() == 0 || p.Src() != mustAddr("10.91.0.1") || !p.ChecksumValid() ||
		p.TOS() != 0x10 || p.TTL() != 33 || string(p[20:]) != "included" {
		t.Errorf("received %x", []byte(p))
	}
	if n := a.s.Stats().IP.OutRequests.Load() - before; n != 1 {
		t.Errorf("OutRequests +%d", n)
	}
	bad := hdr(28)
	bad[0] = 0x44
	long := hdr(28)
	long[0] = 0x48 // 32-byte header in 28 bytes
	for _, p := range [][]byte{bad, long, hdr(28)[:19]} {
		if err := a.s.WritePacket(&r, NewPacketFrom(p), WriteOptions{HeaderIncluded: true}); err == nil || !errorIs(err, syscall.EINVAL) {
			t.Errorf("header %x: %v, want EINVAL", p, err)
		}
	}
	if err := a.s.WritePacket(&r, NewPacketFrom(hdr(1501)), WriteOptions{HeaderIncluded: true}); !errorIs(err, syscall.EMSGSIZE) {
		t.Errorf("over the MTU: %v, want EMSGSIZE", err)
	}
	// ICMP written with its header is counted by type, as Linux does.
	echo := hdr(28)
	echo[9] = wire.IPProtoICMP
	f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 1, Seq: 1}
	f.Encode(echo[20:])
	outEchos := a.s.Stats().ICMP.OutEchos.Load()
	if err := a.s.WritePacket(&r, NewPacketFrom(echo), WriteOptions{HeaderIncluded: true}); err != nil {
		t.Fatal(err)
	}
	if a.s.Stats().ICMP.OutEchos.Load() != outEchos+1 {
		t.Errorf("OutEchos not counted")
	}
}

func errorIs(err error, e syscall.Errno) bool {
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			return x == e
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// icmpRejecter is a transport registered for ICMP that wants nothing.
type icmpRejecter struct{}

func (icmpRejecter) HandlePacket(*PacketInfo, []byte) bool { return false }
func (icmpRejecter) HandleError(*ICMPError)                {}

// TestErrorHandlers: AddErrorHandler hands over the ICMP errors quoting
// its protocol, with the quote and Linux's errno; a transport registered
// for ICMP never makes the stack answer ICMP with port unreachable.
func TestErrorHandlers(t *testing.T) {
	nw := newTestNet(t, 92)
	a := newTestHost(t, nw, Options{}, "10.92.0.1/24", "fd92::1/64")
	b := newTestHost(t, nw, Options{ICMPRateLimit: -1}, "10.92.0.2/24", "fd92::2/64")
	b.s.RegisterTransport(wire.IPProtoICMP, icmpRejecter{})
	defer b.s.RegisterTransport(wire.IPProtoICMP, nil)

	var mu sync.Mutex
	var errs []ICMPError
	collect := func(e *ICMPError) {
		mu.Lock()
		errs = append(errs, *e)
		mu.Unlock()
	}
	rm4 := a.s.AddErrorHandler(false, 253, collect)
	rm6 := a.s.AddErrorHandler(true, 253, collect)
	var icmp rawLog
	defer a.s.AddRawHandler(false, wire.IPProtoICMP, icmp.handler)()

	if err := ixSendEcho(a.s, mustAddr("10.92.0.2"), 7, 1, []byte("x"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	icmp.wait(t, func(p []byte) bool { return len(p) > 20 && p[20] == wire.ICMPv4EchoReply })
	for _, dst := range []string{"10.92.0.2", "fd92::2"} {
		r, err := a.s.FindRoute(0, netip.Addr{}, mustAddr(dst))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.s.WritePacket(&r, NewPacketFrom([]byte("unknown protocol")), WriteOptions{Proto: 253}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(errs)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	got := append([]ICMPError(nil), errs...)
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("errors %+v", got)
	}
	for _, e := range got {
		errno, fatal := e.Errno()
		want := syscall.ENOPROTOOPT // protocol unreachable
		if e.IsIPv6() {
			want = syscall.EPROTO // parameter problem, unrecognised next header
		}
		if e.Proto != 253 || string(e.Payload) != "unknown protocol" || len(e.Quoted) != len(e.Payload)+40 && len(e.Quoted) != len(e.Payload)+20 ||
			errno != want || !fatal || e.Dst != e.From {
			t.Errorf("error %+v: errno %v fatal %v", e, errno, fatal)
		}
	}
	icmp.mu.Lock()
	for _, p := range icmp.pkts {
		if len(p) > 28 && p[20] == wire.ICMPv4DestUnreachable && p[28+9] == wire.IPProtoICMP {
			t.Errorf("port unreachable for ICMP: %x", p)
		}
	}
	icmp.mu.Unlock()
	rm4()
	rm6()
	r, _ := a.s.FindRoute(0, netip.Addr{}, mustAddr("10.92.0.2"))
	a.s.WritePacket(&r, NewPacketFrom([]byte("again")), WriteOptions{Proto: 253})
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if len(errs) != 2 {
		t.Errorf("error handler called after removal")
	}
	mu.Unlock()
}

// TestICMPErrorErrno: the conversions of Linux's icmp_err_convert and
// icmpv6_err_convert.
func TestICMPErrorErrno(t *testing.T) {
	v4, v6 := mustAddr("10.0.0.1"), mustAddr("fd00::1")
	for _, c := range []struct {
		src       netip.Addr
		typ, code uint8
		errno     syscall.Errno
		fatal     bool
	}{
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4NetUnreachable, syscall.ENETUNREACH, false},
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, syscall.EHOSTUNREACH, false},
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, syscall.ECONNREFUSED, true},
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4FragmentationNeeded, syscall.EMSGSIZE, false},
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnknown, syscall.EHOSTDOWN, true},
		{v4, wire.ICMPv4DestUnreachable, wire.ICMPv4CommProhibited, syscall.EHOSTUNREACH, true},
		{v4, wire.ICMPv4DestUnreachable, 99, syscall.EHOSTUNREACH, false},
		{v4, wire.ICMPv4TimeExceeded, 0, syscall.EHOSTUNREACH, false},
		{v4, wire.ICMPv4ParamProblem, 0, syscall.EPROTO, true},
		{v6, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, syscall.ENETUNREACH, false},
		{v6, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeAdminProhibited, syscall.EACCES, true},
		{v6, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeAddrUnreachable, syscall.EHOSTUNREACH, false},
		{v6, wire.ICMPv6DstUnreachable, wire.ICMPv6CodePortUnreachable, syscall.ECONNREFUSED, true},
		{v6, wire.ICMPv6DstUnreachable, 9, syscall.EPROTO, true},
		{v6, wire.ICMPv6PacketTooBig, 0, syscall.EMSGSIZE, false},
		{v6, wire.ICMPv6TimeExceeded, 0, syscall.EHOSTUNREACH, false},
		{v6, wire.ICMPv6ParamProblem, 1, syscall.EPROTO, true},
	} {
		e := ICMPError{Src: c.src, Type: c.typ, Code: c.code}
		if errno, fatal := e.Errno(); errno != c.errno || fatal != c.fatal {
			t.Errorf("%v type %d code %d: %v %v, want %v %v", c.src, c.typ, c.code, errno, fatal, c.errno, c.fatal)
		}
	}
}
