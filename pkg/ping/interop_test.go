//go:build linux

package ping

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/raw"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Ping and raw sockets against the Linux kernel: the kernel is at
// 10.80.0.1 / fd80::1 on the far side of a TAP in the lab namespace, our
// stack at 10.80.0.2 / fd80::2. For the error tests the kernel routes: a
// dummy device holds 10.80.1.0/24 and fd80:1::/64, and 10.80.2.0/24 and
// fd80:2::/64 are unreachable routes.

var (
	kernel4, our4 = netip.MustParseAddr("10.80.0.1"), netip.MustParseAddr("10.80.0.2")
	kernel6, our6 = netip.MustParseAddr("fd80::1"), netip.MustParseAddr("fd80::2")
)

type kernelLab struct {
	l *netlab.Lab
	s *stack.Stack
}

func newKernelLab(t *testing.T) *kernelLab {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.PrefixFrom(kernel4, 24)}})
	l.MustIP(t, "-6", "addr", "add", netip.PrefixFrom(kernel6, 64).String(), "dev", tp.Dev, "nodad")
	s := stacktest.NewStack(t, stack.Options{})
	n := stacktest.AddNIC(t, s, tp.Endpoint, netip.PrefixFrom(our4, 24).String(), netip.PrefixFrom(our6, 64).String())
	// IPv6 neighbours are static both ways, as the stack's own IPv6 labs
	// do: NDP is not what these tests are about. ARP resolves.
	stacktest.NoErr(t, n.NDP().AddStatic(kernel6, tp.MAC))
	l.MustIP(t, "-6", "neigh", "replace", our6.String(), "lladdr", n.MAC().String(), "dev", tp.Dev, "nud", "permanent")
	for _, r := range []struct{ dst, gw string }{
		{"10.80.1.0/24", "10.80.0.1"}, {"10.80.2.0/24", "10.80.0.1"},
		{"fd80:1::/64", "fd80::1"}, {"fd80:2::/64", "fd80::1"},
	} {
		stacktest.NoErr(t, s.Routes().Add(route.Route{Dst: netip.MustParsePrefix(r.dst), Gateway: netip.MustParseAddr(r.gw)}))
	}
	return &kernelLab{l: l, s: s}
}

// TestInteropWePingKernel: our ping sockets and our raw sockets exchange
// echoes with the kernel, both families.
func TestInteropWePingKernel(t *testing.T) {
	k := newKernelLab(t)
	p := New(k.s)
	rp := raw.New(k.s)
	for _, dst := range []netip.Addr{kernel4, kernel6} {
		v6 := dst.Is6()
		ep := newPing(t, p, v6)
		data := []byte("stackbox → linux")
		for seq := uint16(1); seq <= 3; seq++ {
			_, err := ep.Write([][]byte{echo(v6, seq, data)}, transport.WriteOptions{To: netip.AddrPortFrom(dst, 0)})
			stacktest.NoErr(t, err)
			checkReply(t, ep, v6, dst, seq, data)
		}

		fam, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
		if v6 {
			fam, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
		}
		r, err := rp.NewEndpoint(fam, proto)
		stacktest.NoErr(t, err)
		defer r.Close()
		req := echo(v6, 9, data)
		req[4], req[5] = 0x12, 0x34
		if !v6 {
			f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 0x1234, Seq: 9, PayloadLen: len(data)}
			f.Encode(req)
		}
		_, err = r.Write([][]byte{req}, transport.WriteOptions{To: netip.AddrPortFrom(dst, 0)})
		stacktest.NoErr(t, err)
		deadline := time.Now().Add(wait)
		for {
			b, res, err := stacktest.ReadWithin(r, transport.ReadOptions{}, time.Until(deadline))
			if err != nil {
				t.Fatalf("raw socket, no echo reply from the kernel: %v", err)
			}
			if !v6 {
				b = b[len(b)-len(req):] // the IP header first
			}
			if res.From.Addr() == dst && len(b) == len(req) && (b[0] == wire.ICMPv4EchoReply || b[0] == wire.ICMPv6EchoReply) &&
				b[4] == 0x12 && b[5] == 0x34 && bytes.Equal(b[8:], data) {
				break
			}
		}
	}
}

// TestInteropKernelPingsUs: the kernel's ping gets our replies and our raw
// sockets see its requests.
func TestInteropKernelPingsUs(t *testing.T) {
	k := newKernelLab(t)
	rp := raw.New(k.s)
	for _, dst := range []netip.Addr{our4, our6} {
		v6 := dst.Is6()
		fam, proto, typ := syscall.AF_INET, syscall.IPPROTO_ICMP, wire.ICMPv4Echo
		args := []string{"-n", "-c", "2", "-i", "0.2", "-W", "2", "-p", "5ac4"}
		if v6 {
			fam, proto, typ = syscall.AF_INET6, syscall.IPPROTO_ICMPV6, wire.ICMPv6EchoRequest
			args = append([]string{"-6"}, args...)
		}
		r, err := rp.NewEndpoint(fam, proto)
		stacktest.NoErr(t, err)
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := k.l.Run(ctx, "ping", append(args, dst.String())...)
		cancel()
		if err != nil || !strings.Contains(string(out), "2 received") {
			t.Fatalf("kernel ping %v: %v\n%s", dst, err, out)
		}
		seen := 0
		for seen < 2 {
			b, res, err := stacktest.ReadWithin(r, transport.ReadOptions{}, wait)
			if err != nil {
				t.Fatalf("raw socket saw %d of the kernel's requests: %v", seen, err)
			}
			if !v6 {
				h, err := wire.ParseIPv4(b)
				if err != nil || h.Src() != kernel4 {
					continue
				}
				b = h.Payload()
			}
			if len(b) > 16 && b[0] == typ && res.From.Addr().WithZone("") != dst && bytes.Contains(b[8:], []byte{0x5a, 0xc4, 0x5a, 0xc4}) {
				seen++
			}
		}
	}
}

// TestInteropKernelRouterErrors: the kernel as a router answers a TTL of
// 1 with Time Exceeded and an unreachable route with Destination
// Unreachable; our ping sockets find them on the error queue with the
// kernel as offender and the quoted request, and raw sockets too.
func TestInteropKernelRouterErrors(t *testing.T) {
	k := newKernelLab(t)
	k.l.Sysctl(t, "net.ipv4.ip_forward", "1")
	k.l.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	// The kernel's default ICMP rate limits stay: a burst of six covers
	// the four errors per family, and net.ipv4.icmp_ratelimit=0 would
	// empty the per-peer tokens ip_error shares with it, silencing the
	// unreachable route.
	// A veth pair inside the namespace stands for the far network (the
	// dummy driver may be missing); it goes with the namespace.
	k.l.MustIP(t, "link", "add", "sbxfar0", "type", "veth", "peer", "name", "sbxfar1")
	k.l.MustIP(t, "addr", "add", "10.80.1.1/24", "dev", "sbxfar0")
	k.l.MustIP(t, "-6", "addr", "add", "fd80:1::1/64", "dev", "sbxfar0", "nodad")
	k.l.MustIP(t, "link", "set", "sbxfar0", "up")
	k.l.MustIP(t, "link", "set", "sbxfar1", "up")
	k.l.MustIP(t, "route", "add", "unreachable", "10.80.2.0/24")
	k.l.MustIP(t, "-6", "route", "add", "unreachable", "fd80:2::/64")
	p := New(k.s)
	rp := raw.New(k.s)
	for _, c := range []struct {
		dst       string
		ttl       uint8
		typ, code uint8
		errno     syscall.Errno
		offender  netip.Addr
	}{
		{"10.80.1.5", 1, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, syscall.EHOSTUNREACH, kernel4},
		{"10.80.2.5", 0, wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, syscall.EHOSTUNREACH, kernel4},
		{"fd80:1::5", 1, wire.ICMPv6TimeExceeded, wire.ICMPv6CodeHopLimitExceeded, syscall.EHOSTUNREACH, kernel6},
		{"fd80:2::5", 0, wire.ICMPv6DstUnreachable, wire.ICMPv6CodeNoRoute, syscall.ENETUNREACH, kernel6},
	} {
		t.Run(c.dst, func(t *testing.T) {
			dst := netip.MustParseAddr(c.dst)
			v6 := dst.Is6()
			lvl, opt, fam, proto := syscall.IPPROTO_IP, syscall.IP_RECVERR, syscall.AF_INET, syscall.IPPROTO_ICMP
			if v6 {
				lvl, opt, fam, proto = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, syscall.AF_INET6, syscall.IPPROTO_ICMPV6
			}
			wo := transport.WriteOptions{To: netip.AddrPortFrom(dst, 0), HasTTL: c.ttl != 0, TTL: c.ttl}
			ep := newPing(t, p, v6)
			stacktest.NoErr(t, ep.SetSockOpt(lvl, opt, 1))
			_, err := ep.Write([][]byte{echo(v6, 33, []byte("traceroute me"))}, wo)
			stacktest.NoErr(t, err)
			readError(t, ep, c.typ, c.code, c.errno, c.offender, dst, 33)

			r, err := rp.NewEndpoint(fam, proto)
			stacktest.NoErr(t, err)
			defer r.Close()
			stacktest.NoErr(t, r.SetSockOpt(lvl, opt, 1))
			req := echo(v6, 34, nil)
			if !v6 {
				f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Ident: 0x4242, Seq: 34}
				f.Encode(req)
			}
			_, err = r.Write([][]byte{req}, wo)
			stacktest.NoErr(t, err)
			b, res, err := stacktest.ReadWithin(r, transport.ReadOptions{ErrQueue: true}, wait)
			if err != nil || res.Control.Err == nil || res.Control.Err.Type != c.typ || res.Control.Err.Offender != c.offender ||
				len(b) < 8 || b[7] != 34 {
				t.Errorf("raw socket error queue: %x %+v, %v", b, res.Control.Err, err)
			}
		})
	}
}

// TestInteropKernelPingSocket: the kernel's own ping socket is the oracle
// for what ours report: pinging our stack from the namespace, it reads the
// reply as the ICMP message with its identifier, from our address with
// port 0, as our socket does reading the kernel's replies.
func TestInteropKernelPingSocket(t *testing.T) {
	k := newKernelLab(t)
	k.l.Sysctl(t, "net.ipv4.ping_group_range", "0 2147483647")
	var fromPort, ident, seq int
	var from [4]byte
	var reply []byte
	err := k.l.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		tv := syscall.Timeval{Sec: 5}
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		if err := syscall.Sendto(fd, echo(false, 77, []byte("kernel oracle")), 0, &syscall.SockaddrInet4{Addr: our4.As4()}); err != nil {
			return err
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			return err
		}
		ident = sa.(*syscall.SockaddrInet4).Port
		buf := make([]byte, 1500)
		n, rsa, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		reply = buf[:n]
		fromPort, from = rsa.(*syscall.SockaddrInet4).Port, rsa.(*syscall.SockaddrInet4).Addr
		return nil
	})
	if err != nil {
		t.Fatalf("kernel ping socket: %v", err)
	}
	if len(reply) >= 8 {
		seq = int(reply[6])<<8 | int(reply[7])
	}
	if len(reply) != 8+len("kernel oracle") || reply[0] != wire.ICMPv4EchoReply || int(reply[4])<<8|int(reply[5]) != ident ||
		seq != 77 || netip.AddrFrom4(from) != our4 || fromPort != 0 {
		t.Errorf("kernel ping socket read %x from %v port %d (identifier %d)", reply, netip.AddrFrom4(from), fromPort, ident)
	}
	// Ours, reading the kernel's reply, reports the same shape.
	ep := newPing(t, New(k.s), false)
	_, err = ep.Write([][]byte{echo(false, 77, []byte("kernel oracle"))}, transport.WriteOptions{To: netip.AddrPortFrom(kernel4, 0)})
	stacktest.NoErr(t, err)
	checkReply(t, ep, false, kernel4, 77, []byte("kernel oracle"))
}
