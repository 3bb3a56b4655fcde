//go:build linux

package tcp

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// TCP against the Linux kernel: the kernel sits in the lab namespace on
// the far side of a TAP at 10.81.0.1/24 and fd81::1/64, our stack at
// 10.81.0.2 and fd81::2. The kernel's sockets are Go net sockets opened
// inside the namespace (netlab.Lab.Do). No traffic leaves the namespace.

var (
	kern4 = netip.MustParseAddr("10.81.0.1")
	kern6 = netip.MustParseAddr("fd81::1")
	us4   = netip.MustParseAddr("10.81.0.2")
	us6   = netip.MustParseAddr("fd81::2")
)

type tcpLab struct {
	l   *netlab.Lab
	s   *stack.Stack
	tcp *Protocol
}

func newTCPLab(t *testing.T) *tcpLab {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.PrefixFrom(kern4, 24)}})
	l.MustIP(t, "-6", "addr", "add", "fd81::1/64", "dev", tp.Dev, "nodad")
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.81.0.2/24", "fd81::2/64"} {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &tcpLab{l: l, s: s, tcp: New(s)}
}

func (k *tcpLab) open(t *testing.T, family int) *endpoint {
	t.Helper()
	ep, err := k.tcp.NewEndpoint(family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep.(*endpoint)
}

// kernelListen opens a kernel listener in the namespace.
func (k *tcpLab) kernelListen(t *testing.T, network string, at netip.AddrPort) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	if err := k.l.Do(func() error {
		var err error
		ln, err = net.ListenTCP(network, net.TCPAddrFromAddrPort(at))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// kernelDial connects a kernel socket from the namespace.
func (k *tcpLab) kernelDial(t *testing.T, network string, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c *net.TCPConn
	if err := k.l.Do(func() error {
		var err error
		c, err = net.DialTCP(network, nil, net.TCPAddrFromAddrPort(to))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ss returns the kernel's `ss -tni` line about the connection to peer.
func (k *tcpLab) ss(t *testing.T, peer netip.AddrPort) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := k.l.Run(ctx, "ss", "-tni", "dst", peer.String())
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 3 {
		t.Fatalf("ss: no connection to %v:\n%s", peer, out)
	}
	return strings.Join(lines[1:], " ")
}

type family struct {
	name     string
	fam      int
	network  string
	kern, us netip.Addr
	mss      string
}

var families = []family{
	{"v4", syscall.AF_INET, "tcp4", kern4, us4, "mss:1448"},
	{"v6", syscall.AF_INET6, "tcp6", kern6, us6, "mss:1428"},
}

const interopSize = 64 << 20

// streamKernel sends n pseudo-random bytes on c and hashes what c
// receives until EOF, both at once.
func streamKernel(c *net.TCPConn, n int, seed uint64) (sent, got [32]byte, gotN int64, err error) {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	errc := make(chan error, 1)
	data := randomBytes(seed, 1<<20)
	go func() {
		h := sha256.New()
		for left := n; left > 0; left -= len(data) {
			chunk := data[:min(len(data), left)]
			h.Write(chunk)
			if _, err := c.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
		copy(sent[:], h.Sum(nil))
		errc <- c.CloseWrite()
	}()
	h := sha256.New()
	gotN, err = io.Copy(h, c)
	copy(got[:], h.Sum(nil))
	if werr := <-errc; err == nil {
		err = werr
	}
	return sent, got, gotN, err
}

// streamUs is streamKernel on our endpoint.
func streamUs(e *endpoint, n int, seed uint64) (sent, got [32]byte, gotN int64, err error) {
	errc := make(chan error, 1)
	data := randomBytes(seed, 1<<20)
	go func() {
		h := sha256.New()
		for left := n; left > 0; left -= len(data) {
			chunk := data[:min(len(data), left)]
			h.Write(chunk)
			if err := writeAll(e, chunk, 60*time.Second); err != nil {
				errc <- err
				return
			}
		}
		copy(sent[:], h.Sum(nil))
		errc <- e.Shutdown(syscall.SHUT_WR)
	}()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, rerr := e.Read([][]byte{buf}, transport.ReadOptions{})
		if rerr == nil {
			if res.N == 0 {
				break
			}
			h.Write(buf[:res.N])
			gotN += int64(res.N)
			continue
		}
		if !errors.Is(rerr, syscall.EAGAIN) {
			err = rerr
			break
		}
		if !wait(e, waiter.EventIn, time.Until(deadline)) {
			err = errors.New("read timed out")
			break
		}
	}
	copy(got[:], h.Sum(nil))
	if werr := <-errc; err == nil {
		err = werr
	}
	return sent, got, gotN, err
}

// checkOptions asserts what the kernel negotiated with us: from `ss -tni`
// the MSS (the path's less the timestamp option) and the window scales
// (ours is 7, as Linux's: it covers the 6 MiB auto-tuning may grow the
// receive buffer to, tcp_rmem[2]); SACK and timestamps
// from the kernel socket's TCP_INFO, since this iproute2 (6.1) prints
// neither "ts" nor "sack" even between two kernel sockets.
func checkOptions(t *testing.T, line string, kc *net.TCPConn, f family) {
	t.Helper()
	for _, want := range []string{f.mss, "wscale:7,"} {
		if !strings.Contains(" "+line+" ", want) {
			t.Errorf("ss line lacks %q: %s", want, line)
		}
	}
	rc, err := kc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	if want := uint8(TCPIOptTimestamps | TCPIOptSACK | TCPIOptWscale); info.Options&want != want {
		t.Errorf("kernel tcpi_options %#x, want timestamps, SACK and window scaling (%#x)", info.Options, want)
	}
}

// TestKernelTransfer: 64 MiB each way at once with the kernel, our
// client to its server and its client to our server, over IPv4 and IPv6
// alternately, with SHA-256 compared; the options the kernel agreed to
// are read back with ss.
func TestKernelTransfer(t *testing.T) {
	k := newTCPLab(t)
	t.Run("us-to-kernel", func(t *testing.T) {
		f := families[0]
		ln := k.kernelListen(t, f.network, netip.AddrPortFrom(f.kern, 5001))
		type res struct {
			sent, got [32]byte
			n         int64
			err       error
		}
		kr := make(chan res, 1)
		c := k.open(t, f.fam)
		mustConnect(t, c, netip.AddrPortFrom(f.kern, 5001))
		kc, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		checkOptions(t, k.ss(t, c.LocalAddr()), kc, f)
		go func() {
			s, g, n, err := streamKernel(kc, interopSize, 2)
			kr <- res{s, g, n, err}
		}()
		start := time.Now()
		sent, got, n, err := streamUs(c, interopSize, 1)
		if err != nil {
			t.Fatalf("our side: %v after %d bytes", err, n)
		}
		r := <-kr
		if r.err != nil {
			t.Fatalf("kernel side: %v after %d bytes", r.err, r.n)
		}
		t.Logf("64 MiB each way in %v", time.Since(start))
		if n != interopSize || r.n != interopSize || got != r.sent || r.got != sent {
			t.Fatalf("we got %d bytes, kernel %d; hashes match: down %v up %v", n, r.n, got == r.sent, r.got == sent)
		}
	})
	t.Run("kernel-to-us", func(t *testing.T) {
		f := families[1]
		l := k.open(t, f.fam)
		if err := l.Bind(netip.AddrPortFrom(netip.Addr{}, 5002)); err != nil {
			t.Fatal(err)
		}
		if err := l.Listen(8); err != nil {
			t.Fatal(err)
		}
		kc := k.kernelDial(t, f.network, netip.AddrPortFrom(f.us, 5002))
		s := accept(t, l, 5*time.Second)
		checkOptions(t, k.ss(t, netip.AddrPortFrom(f.us, 5002)), kc, f)
		type res struct {
			sent, got [32]byte
			n         int64
			err       error
		}
		kr := make(chan res, 1)
		go func() {
			sn, g, n, err := streamKernel(kc, interopSize, 4)
			kr <- res{sn, g, n, err}
		}()
		start := time.Now()
		sent, got, n, err := streamUs(s, interopSize, 3)
		if err != nil {
			t.Fatalf("our side: %v after %d bytes", err, n)
		}
		r := <-kr
		if r.err != nil {
			t.Fatalf("kernel side: %v after %d bytes", r.err, r.n)
		}
		t.Logf("64 MiB each way in %v", time.Since(start))
		if n != interopSize || r.n != interopSize || got != r.sent || r.got != sent {
			t.Fatalf("we got %d bytes, kernel %d; hashes match: down %v up %v", n, r.n, got == r.sent, r.got == sent)
		}
	})
}

// TestKernelHalfCloseAndReset: half-close in both directions, and a
// reset from either side surfacing as ECONNRESET.
func TestKernelHalfCloseAndReset(t *testing.T) {
	k := newTCPLab(t)
	ln := k.kernelListen(t, "tcp4", netip.AddrPortFrom(kern4, 5003))
	accepted := make(chan *net.TCPConn, 4)
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	kconn := func(t *testing.T) *net.TCPConn {
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("kernel accepted nothing")
			return nil
		}
	}
	t.Run("we-half-close", func(t *testing.T) {
		c := k.open(t, syscall.AF_INET)
		mustConnect(t, c, netip.AddrPortFrom(kern4, 5003))
		kc := kconn(t)
		writeAll(c, []byte("request"), time.Second)
		c.Shutdown(syscall.SHUT_WR)
		req, err := io.ReadAll(kc)
		if err != nil || string(req) != "request" {
			t.Fatalf("kernel read %q, %v", req, err)
		}
		kc.Write([]byte("response"))
		kc.Close()
		got, err := readAll(c, 5*time.Second)
		if err != nil || string(got) != "response" {
			t.Fatalf("we read %q, %v", got, err)
		}
	})
	t.Run("kernel-half-closes", func(t *testing.T) {
		c := k.open(t, syscall.AF_INET)
		mustConnect(t, c, netip.AddrPortFrom(kern4, 5003))
		kc := kconn(t)
		kc.Write([]byte("hello"))
		kc.CloseWrite()
		got, err := readAll(c, 5*time.Second)
		if err != nil || string(got) != "hello" {
			t.Fatalf("we read %q, %v", got, err)
		}
		writeAll(c, []byte("still here"), time.Second)
		c.Close()
		b, err := io.ReadAll(kc)
		if err != nil || string(b) != "still here" {
			t.Fatalf("kernel read %q, %v", b, err)
		}
	})
	t.Run("kernel-resets", func(t *testing.T) {
		c := k.open(t, syscall.AF_INET)
		mustConnect(t, c, netip.AddrPortFrom(kern4, 5003))
		kc := kconn(t)
		kc.SetLinger(0)
		kc.Close()
		if !wait(c, waiter.EventErr, 5*time.Second) {
			t.Fatal("no reset")
		}
		if _, err := c.Read([][]byte{make([]byte, 8)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v, want ECONNRESET", err)
		}
	})
	t.Run("we-reset", func(t *testing.T) {
		c := k.open(t, syscall.AF_INET)
		mustConnect(t, c, netip.AddrPortFrom(kern4, 5003))
		kc := kconn(t)
		c.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_LINGER, syscall.Linger{Onoff: 1})
		c.Close()
		_, err := kc.Read(make([]byte, 8))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("kernel read: %v, want ECONNRESET", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		c := k.open(t, syscall.AF_INET6)
		if err := connect(t, c, netip.AddrPortFrom(kern6, 5999), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect: %v, want ECONNREFUSED", err)
		}
	})
}
