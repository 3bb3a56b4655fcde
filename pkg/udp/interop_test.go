//go:build linux

package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// UDP against the Linux kernel: the kernel sits in the lab namespace on
// the far side of a TAP at 10.79.0.1/24 and fd79::1/64, our stack at
// 10.79.0.2 and fd79::2. The kernel-side peers are Go net sockets opened
// inside the namespace (netlab.Lab.Do). ARP and NDP run for real. No
// traffic leaves the namespace.

var (
	kern4 = netip.MustParseAddr("10.79.0.1")
	kern6 = netip.MustParseAddr("fd79::1")
	us4   = netip.MustParseAddr("10.79.0.2")
	us6   = netip.MustParseAddr("fd79::2")
)

// kernelFamilies are the lab's two sides in each IP version.
var kernelFamilies = []struct {
	network  string
	fam      int
	kern, us netip.Addr
}{{"udp4", syscall.AF_INET, kern4, us4}, {"udp6", syscall.AF_INET6, kern6, us6}}

type udpLab struct {
	l   *netlab.Lab
	tp  *netlab.TAP
	s   *stack.Stack
	n   *stack.NIC
	udp *Protocol
}

func newUDPLab(t *testing.T) *udpLab {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.PrefixFrom(kern4, 24)}})
	l.MustIP(t, "-6", "addr", "add", "fd79::1/64", "dev", tp.Dev, "nodad")
	// The kernel sends multicast out of the tap (its only link).
	l.MustIP(t, "route", "add", "224.0.0.0/4", "dev", tp.Dev)
	s := stacktest.NewStack(t, stack.Options{})
	n := stacktest.AddNIC(t, s, tp.Endpoint, "10.79.0.2/24", "fd79::2/64")
	return &udpLab{l: l, tp: tp, s: s, n: n, udp: New(s)}
}

// kernelConn opens a kernel UDP socket inside the namespace; it is closed
// at the end of the test.
func (k *udpLab) kernelConn(t *testing.T, open func() (*net.UDPConn, error)) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := k.l.Do(func() error {
		var err error
		c, err = open()
		return err
	}); err != nil {
		t.Fatalf("kernel socket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (k *udpLab) open(t *testing.T, family int) transport.Endpoint {
	t.Helper()
	ep, err := k.udp.NewEndpoint(family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// kernelRead reads one datagram within 5 s.
func kernelRead(t *testing.T, c *net.UDPConn) (string, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 70000)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("kernel read: %v", err)
	}
	return string(buf[:n]), from
}

// echoServer answers every datagram ep receives until the test ends.
func echoServer(t *testing.T, ep transport.Endpoint) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for {
			res, err := ep.Read([][]byte{buf}, transport.ReadOptions{})
			if err == nil {
				ep.Write([][]byte{buf[:res.N]}, transport.WriteOptions{To: res.From})
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
			stacktest.Wait(ep, waiter.EventIn, 100*time.Millisecond)
		}
	}()
}

// TestKernelEchoesUs and TestWeEchoKernel: a datagram each way and back,
// over IPv4 and IPv6, small and fragmented.
func TestKernelUDPEcho(t *testing.T) {
	k := newUDPLab(t)
	for _, tc := range kernelFamilies {
		t.Run(tc.network, func(t *testing.T) {
			// The kernel echoes; we send.
			kc := k.kernelConn(t, func() (*net.UDPConn, error) {
				return net.ListenUDP(tc.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.kern, 7007)))
			})
			go func() {
				buf := make([]byte, 70000)
				for {
					n, from, err := kc.ReadFromUDP(buf)
					if err != nil {
						return
					}
					kc.WriteToUDP(buf[:n], from)
				}
			}()
			cli := k.open(t, tc.fam)
			for _, size := range []int{5, 4000} {
				msg := string(make([]byte, size))
				send(t, cli, netip.AddrPortFrom(tc.kern, 7007), msg)
				got, res := stacktest.Recv(t, cli, 5*time.Second)
				if got != msg || res.From != netip.AddrPortFrom(tc.kern, 7007) {
					t.Fatalf("%d bytes: echo of %d bytes from %v", size, len(got), res.From)
				}
			}
			// We echo; the kernel sends.
			srv := k.open(t, tc.fam)
			if err := srv.Bind(netip.AddrPortFrom(tc.us, 7008)); err != nil {
				t.Fatal(err)
			}
			echoServer(t, srv)
			kcli := k.kernelConn(t, func() (*net.UDPConn, error) {
				return net.DialUDP(tc.network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.us, 7008)))
			})
			for _, size := range []int{5, 4000} {
				msg := string(make([]byte, size))
				if _, err := kcli.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				if got, from := kernelRead(t, kcli); got != msg || from.AddrPort() != netip.AddrPortFrom(tc.us, 7008) {
					t.Fatalf("kernel got %d bytes from %v", len(got), from)
				}
			}
		})
	}
}

// TestKernelUDPBroadcast: our broadcasts (the subnet's and the limited
// one) reach a kernel socket bound to the wildcard.
func TestKernelUDPBroadcast(t *testing.T) {
	k := newUDPLab(t)
	kc := k.kernelConn(t, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{Port: 7009})
	})
	ep := k.open(t, syscall.AF_INET)
	setOpt(t, ep, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	for _, dst := range []string{"10.79.0.255", "255.255.255.255"} {
		send(t, ep, netip.AddrPortFrom(netip.MustParseAddr(dst), 7009), "to "+dst)
		if got, from := kernelRead(t, kc); got != "to "+dst || from.AddrPort().Addr() != us4 {
			t.Fatalf("kernel got %q from %v", got, from)
		}
	}
}

// capture records the frames on the kernel side of the tap (an AF_PACKET
// socket in the namespace) until the test ends.
type capture struct {
	mu     sync.Mutex
	frames [][]byte
}

func (k *udpLab) capture(t *testing.T) *capture {
	t.Helper()
	c := &capture{}
	var fd int
	if err := k.l.Do(func() error {
		ifi, err := net.InterfaceByName(k.tp.Dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}); err != nil {
		t.Fatalf("capture: %v", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); <-done; unix.Close(fd) })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// reported reports whether a captured IGMP or MLD report from us names g.
func (c *capture) reported(g netip.Addr) bool {
	c.mu.Lock()
	frames := append([][]byte(nil), c.frames...)
	c.mu.Unlock()
	s := &sniffer{frames: frames}
	var joins []netip.Addr
	if g.Is4() {
		joins, _ = s.igmp()
	} else {
		joins, _ = s.mld()
	}
	return contains(joins, g)
}

// TestKernelUDPMulticast: the kernel joins a group and receives what we
// send to it; we join one (the kernel sees our IGMP/MLD report) and
// receive what the kernel sends to it. IPv4 and IPv6.
func TestKernelUDPMulticast(t *testing.T) {
	k := newUDPLab(t)
	cap := k.capture(t)
	for _, tc := range []struct {
		network           string
		fam, level, ifopt int
		ifval             any
		theirs, ours      netip.Addr
		join              int
	}{
		{"udp4", syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, us4,
			netip.MustParseAddr("239.79.0.1"), netip.MustParseAddr("239.79.0.2"), syscall.IP_ADD_MEMBERSHIP},
		{"udp6", syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, 0,
			netip.MustParseAddr("ff15::79:1"), netip.MustParseAddr("ff15::79:2"), syscall.IPV6_JOIN_GROUP},
	} {
		t.Run(tc.network, func(t *testing.T) {
			var kifi *net.Interface
			kc := k.kernelConn(t, func() (*net.UDPConn, error) {
				ifi, err := net.InterfaceByName(k.tp.Dev)
				if err != nil {
					return nil, err
				}
				kifi = ifi
				return net.ListenMulticastUDP(tc.network, ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.theirs, 7010)))
			})
			ifval := tc.ifval
			if tc.fam == syscall.AF_INET6 {
				ifval = k.n.Index()
			}
			tx := k.open(t, tc.fam)
			setOpt(t, tx, tc.level, tc.ifopt, ifval)
			send(t, tx, netip.AddrPortFrom(tc.theirs, 7010), "to the kernel's group")
			if got, from := kernelRead(t, kc); got != "to the kernel's group" || from.AddrPort().Port() != tx.LocalAddr().Port() {
				t.Fatalf("kernel got %q from %v", got, from)
			}

			rx := k.open(t, tc.fam)
			if err := rx.Bind(netip.AddrPortFrom(netip.Addr{}, 7011)); err != nil {
				t.Fatal(err)
			}
			setOpt(t, rx, tc.level, tc.join, transport.Membership{Group: tc.ours, IfIndex: k.n.Index()})
			deadline := time.Now().Add(5 * time.Second)
			for !cap.reported(tc.ours) {
				if time.Now().After(deadline) {
					t.Fatalf("the kernel's side saw no report for %v", tc.ours)
				}
				time.Sleep(50 * time.Millisecond)
			}
			dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.ours, 7011))
			if tc.fam == syscall.AF_INET6 {
				dst.Zone = kifi.Name
			}
			kt := k.kernelConn(t, func() (*net.UDPConn, error) { return net.DialUDP(tc.network, nil, dst) })
			if _, err := kt.Write([]byte("to our group")); err != nil {
				t.Fatal(err)
			}
			if got, res := stacktest.Recv(t, rx, 5*time.Second); got != "to our group" || !res.From.Addr().Unmap().IsValid() {
				t.Fatalf("we got %q from %v", got, res.From)
			}
		})
	}
}

// TestKernelUDPPortUnreachable: a datagram to a closed port of ours gets
// the kernel's connected socket ECONNREFUSED (our port unreachable), and
// one to a closed port of the kernel's gets ours ECONNREFUSED.
func TestKernelUDPPortUnreachable(t *testing.T) {
	k := newUDPLab(t)
	for _, tc := range kernelFamilies {
		t.Run(tc.network, func(t *testing.T) {
			kc := k.kernelConn(t, func() (*net.UDPConn, error) {
				return net.DialUDP(tc.network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.us, 9)))
			})
			if _, err := kc.Write([]byte("closed")); err != nil {
				t.Fatal(err)
			}
			kc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := kc.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("kernel read: %v, want ECONNREFUSED", err)
			}

			ep := k.open(t, tc.fam)
			if err := ep.Connect(netip.AddrPortFrom(tc.kern, 9)); err != nil {
				t.Fatal(err)
			}
			send(t, ep, netip.AddrPort{}, "closed")
			if !stacktest.Wait(ep, waiter.EventErr, 5*time.Second) {
				t.Fatal("no error from the kernel's port unreachable")
			}
			if _, err := ep.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("our read: %v, want ECONNREFUSED", err)
			}
		})
	}
	if k.udp.Stats().NoPorts.Load() != 1 || k.udp.Stats().V6.NoPorts.Load() != 1 {
		t.Errorf("NoPorts v4 %d v6 %d", k.udp.Stats().NoPorts.Load(), k.udp.Stats().V6.NoPorts.Load())
	}
}
