//go:build linux

package tcp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link"
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
	dev string // the TAP's kernel side, in the namespace
	tap *netlab.TAP
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
	return &tcpLab{l: l, dev: tp.Dev, tap: tp, s: s, tcp: New(s)}
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

// ss returns the kernel's `ss -tni` line about its socket kc: the one
// from kc's local address to its peer (several connections may share the
// peer's port or ours).
func (k *tcpLab) ss(t *testing.T, kc *net.TCPConn) string {
	t.Helper()
	src := kc.LocalAddr().(*net.TCPAddr).AddrPort()
	dst := kc.RemoteAddr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := k.l.Run(ctx, "ss", "-tni", "src", src.String(), "dst", dst.String())
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("ss: want one connection %v -> %v, got:\n%s", src, dst, out)
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

// defaultInteropBytes is what each bulk connection moves each way unless
// STACKBOX_TCP_INTEROP_BYTES says otherwise: small enough for the -race
// run of the whole suite. `make test` runs TestKernelBulk* a second time
// without -race and with 1 GiB.
const defaultInteropBytes = 64 << 20

// interopBytes reads STACKBOX_TCP_INTEROP_BYTES: a byte count, with an
// optional KiB, MiB or GiB suffix ("1GiB", "1073741824").
func interopBytes(t *testing.T) int {
	t.Helper()
	s := strings.TrimSpace(os.Getenv("STACKBOX_TCP_INTEROP_BYTES"))
	if s == "" {
		return defaultInteropBytes
	}
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > (64<<30)/mult {
		t.Fatalf("STACKBOX_TCP_INTEROP_BYTES=%q: want a positive byte count, optionally with KiB, MiB or GiB", os.Getenv("STACKBOX_TCP_INTEROP_BYTES"))
	}
	return n * mult
}

func sizeString(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// mbps is a rate in MB/s (10^6 bytes a second, as iperf prints).
func mbps(n int64, d time.Duration) float64 {
	return float64(n) / d.Seconds() / 1e6
}

// bulkIdle is how long a bulk transfer may go without progress on either
// side before it fails: a stall fails the test, it does not hang it.
const bulkIdle = 30 * time.Second

// bulkEnd is when every bulk transfer must be over: shortly before the
// test binary's own -timeout, so that the failure names the connection
// and the byte counts instead of being a panic.
func bulkEnd(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-15 * time.Second)
	}
	return time.Now().Add(30 * time.Minute)
}

// nextDeadline is the deadline for the next step of a transfer.
func nextDeadline(end time.Time) time.Time {
	if d := time.Now().Add(bulkIdle); d.Before(end) {
		return d
	}
	return end
}

// half is one side's view of a bulk transfer: the hash of what it sent,
// and what it received until EOF and how long that took.
type half struct {
	sent, got [32]byte
	n         int64         // bytes received
	took      time.Duration // from the start to the EOF of what it received
	err       error
}

// idleConn re-arms a kernel socket's deadline before each read and write.
type idleConn struct {
	c   *net.TCPConn
	end time.Time
}

func (i idleConn) Read(p []byte) (int, error) {
	i.c.SetDeadline(nextDeadline(i.end))
	return i.c.Read(p)
}

func (i idleConn) Write(p []byte) (int, error) {
	i.c.SetDeadline(nextDeadline(i.end))
	return i.c.Write(p)
}

// streamKernel sends n pseudo-random bytes on c and hashes what c
// receives until EOF, both at once.
func streamKernel(c *net.TCPConn, n int, seed uint64, start, end time.Time) (r half) {
	ic := idleConn{c, end}
	errc := make(chan error, 1)
	data := randomBytes(seed, 1<<20)
	go func() {
		h := sha256.New()
		for left := n; left > 0; left -= len(data) {
			chunk := data[:min(len(data), left)]
			h.Write(chunk)
			if _, err := ic.Write(chunk); err != nil {
				errc <- fmt.Errorf("kernel write with %d of %d bytes left: %w", left, n, err)
				return
			}
		}
		copy(r.sent[:], h.Sum(nil))
		errc <- c.CloseWrite()
	}()
	h := sha256.New()
	var err error
	r.n, err = io.CopyBuffer(h, ic, make([]byte, 256<<10))
	r.took = time.Since(start)
	copy(r.got[:], h.Sum(nil))
	if err != nil {
		r.err = fmt.Errorf("kernel read after %d bytes: %w", r.n, err)
	}
	if werr := <-errc; r.err == nil {
		r.err = werr
	}
	return r
}

// streamUs is streamKernel on our endpoint.
func streamUs(e *endpoint, n int, seed uint64, start, end time.Time) (r half) {
	errc := make(chan error, 1)
	data := randomBytes(seed, 1<<20)
	go func() {
		h := sha256.New()
		for left := n; left > 0; left -= len(data) {
			chunk := data[:min(len(data), left)]
			h.Write(chunk)
			if err := writeAll(e, chunk, time.Until(nextDeadline(end))); err != nil {
				errc <- fmt.Errorf("our write with %d of %d bytes left: %w", left, n, err)
				return
			}
		}
		copy(r.sent[:], h.Sum(nil))
		errc <- e.Shutdown(syscall.SHUT_WR)
	}()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	deadline := nextDeadline(end)
	for {
		res, err := e.Read([][]byte{buf}, transport.ReadOptions{})
		if err == nil {
			if res.N == 0 {
				break
			}
			h.Write(buf[:res.N])
			r.n += int64(res.N)
			deadline = nextDeadline(end)
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			r.err = fmt.Errorf("our read after %d bytes: %w", r.n, err)
			break
		}
		if !wait(e, waiter.EventIn, time.Until(deadline)) {
			r.err = fmt.Errorf("our read: no progress for %v (or past the test's end) after %d bytes", bulkIdle, r.n)
			break
		}
	}
	r.took = time.Since(start)
	copy(r.got[:], h.Sum(nil))
	if werr := <-errc; r.err == nil {
		r.err = werr
	}
	return r
}

// tapDrops is how many frames the kernel dropped on its way into the TAP
// (the tx side of the kernel's end: its queue to our reader was full).
func (k *tcpLab) tapDrops(t *testing.T) uint64 {
	t.Helper()
	out := k.l.MustIP(t, "-s", "-j", "link", "show", "dev", k.dev)
	var links []struct {
		Stats64 struct {
			TX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s -j link show %s: %q (%v)", k.dev, out, err)
	}
	return links[0].Stats64.TX.Dropped
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
	info := kernelTCPInfo(t, kc)
	if want := uint8(TCPIOptTimestamps | TCPIOptSACK | TCPIOptWscale); info.Options&want != want {
		t.Errorf("kernel tcpi_options %#x, want timestamps, SACK and window scaling (%#x)", info.Options, want)
	}
}

// kernelTCPInfo is the kernel socket's TCP_INFO.
func kernelTCPInfo(t *testing.T, kc *net.TCPConn) *unix.TCPInfo {
	t.Helper()
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
	return info
}

// bulkConn is one established connection between our stack and the
// kernel, either side having connected.
type bulkConn struct {
	name string
	f    family
	us   *endpoint
	kc   *net.TCPConn
}

// dialKernel connects our endpoint to a kernel listener on port and
// returns the connection.
func (k *tcpLab) dialKernel(t *testing.T, f family, port uint16) bulkConn {
	t.Helper()
	ln := k.kernelListen(t, f.network, netip.AddrPortFrom(f.kern, port))
	c := k.open(t, f.fam)
	mustConnect(t, c, netip.AddrPortFrom(f.kern, port))
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	kc, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("kernel accept: %v", err)
	}
	t.Cleanup(func() { kc.Close() })
	ln.Close()
	return bulkConn{fmt.Sprintf("us->kernel %s :%d", f.name, port), f, c, kc}
}

// dialUs connects a kernel socket to our listener on port and returns the
// connection.
func (k *tcpLab) dialUs(t *testing.T, f family, port uint16) bulkConn {
	t.Helper()
	l := k.open(t, f.fam)
	if err := l.Bind(netip.AddrPortFrom(f.us, port)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(8); err != nil {
		t.Fatal(err)
	}
	kc := k.kernelDial(t, f.network, netip.AddrPortFrom(f.us, port))
	s := accept(t, l, 5*time.Second)
	l.Close()
	return bulkConn{fmt.Sprintf("kernel->us %s :%d", f.name, port), f, s, kc}
}

// bulk checks each connection's options from the kernel side, then moves
// n bytes each way on every connection at once, compares the SHA-256 of
// everything sent with what arrived, and logs the throughput of each
// direction of each connection and the total.
func (k *tcpLab) bulk(t *testing.T, n int, conns []bulkConn) {
	t.Helper()
	for _, c := range conns {
		checkOptions(t, k.ss(t, c.kc), c.kc, c.f)
	}
	if t.Failed() {
		t.FailNow()
	}
	type result struct{ us, kern half }
	results := make([]result, len(conns))
	end := bulkEnd(t)
	drops := k.tapDrops(t)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(2)
		go func() {
			defer wg.Done()
			results[i].us = streamUs(c.us, n, uint64(2*i+1), start, end)
		}()
		go func() {
			defer wg.Done()
			results[i].kern = streamKernel(c.kc, n, uint64(2*i+2), start, end)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	drops = k.tapDrops(t) - drops
	for i, c := range conns {
		r := results[i]
		if r.us.err != nil || r.kern.err != nil {
			t.Errorf("%s: our side: %v (received %d of %d bytes); kernel side: %v (received %d of %d bytes)",
				c.name, r.us.err, r.us.n, n, r.kern.err, r.kern.n, n)
			continue
		}
		if r.us.n != int64(n) || r.kern.n != int64(n) || r.us.got != r.kern.sent || r.kern.got != r.us.sent {
			t.Errorf("%s: we received %d bytes, the kernel %d, of %d each; SHA-256 matches: kernel->us %v, us->kernel %v",
				c.name, r.us.n, r.kern.n, n, r.us.got == r.kern.sent, r.kern.got == r.us.sent)
			continue
		}
		var ours TCPInfo
		if v, err := c.us.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO); err == nil {
			ours, _ = v.(TCPInfo)
		}
		var kretrans uint32
		if rc, err := c.kc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
					kretrans = info.Total_retrans
				}
			})
		}
		t.Logf("%s: %s each way, SHA-256 matched: us->kernel %.1f MB/s (%v), kernel->us %.1f MB/s (%v); retransmitted segments: ours %d, kernel's %d",
			c.name, sizeString(n), mbps(int64(n), r.kern.took), r.kern.took.Round(time.Millisecond),
			mbps(int64(n), r.us.took), r.us.took.Round(time.Millisecond), ours.TotalRetrans, kretrans)
	}
	total := int64(2 * n * len(conns))
	t.Logf("%d connection(s), %s each way each, at once: %v, %.1f MB/s in all (both directions summed); frames the kernel dropped at the TAP's queue: %d",
		len(conns), sizeString(n), wall.Round(time.Millisecond), mbps(total, wall), drops)
}

// TestKernelBulk: interopBytes each way at once on one connection with
// the kernel, our client to its server over IPv4 and its client to our
// server over IPv6, with SHA-256 compared and the options the kernel
// agreed to read back from its side. 64 MiB in the -race run, 1 GiB in
// make test's second, non-race run.
func TestKernelBulk(t *testing.T) {
	n := interopBytes(t)
	k := newTCPLab(t)
	t.Run("us-to-kernel", func(t *testing.T) {
		before := k.tap.Endpoint.CoalescedSent()
		k.bulk(t, n, []bulkConn{k.dialKernel(t, families[0], 5001)})
		// Each flush of the sender's queue is one TxBatch: its runs of
		// segments go to the kernel as GSO frames (tap coalesce).
		got := k.tap.Endpoint.CoalescedSent() - before
		t.Logf("GSO frames written to the kernel: %d", got)
		if k.tap.Endpoint.Capabilities()&link.CapRXCoalesce != 0 && got == 0 {
			t.Errorf("no GSO frames written over a TAP with offloads")
		}
	})
	t.Run("kernel-to-us", func(t *testing.T) {
		before := k.tap.Endpoint.Coalesced()
		k.bulk(t, n, []bulkConn{k.dialUs(t, families[1], 5002)})
		// The TAP has offloads on: the kernel's GSO hands us its
		// segments coalesced (link.CapRXCoalesce), and TCP takes them.
		got := k.tap.Endpoint.Coalesced() - before
		t.Logf("TCP aggregates received from the kernel: %d", got)
		if k.tap.Endpoint.Capabilities()&link.CapRXCoalesce != 0 && got == 0 {
			t.Errorf("no TCP aggregates from the kernel over a TAP with offloads")
		}
	})
}

// TestKernelBulkParallel: four connections with the kernel at once, each
// moving interopBytes/4 each way: our client to the kernel's server and
// the kernel's client to ours, each over IPv4 and IPv6, each with its own
// SHA-256 check and its options read back from the kernel's side.
func TestKernelBulkParallel(t *testing.T) {
	n := interopBytes(t) / 4
	k := newTCPLab(t)
	k.bulk(t, n, []bulkConn{
		k.dialKernel(t, families[0], 5011),
		k.dialKernel(t, families[1], 5012),
		k.dialUs(t, families[0], 5013),
		k.dialUs(t, families[1], 5014),
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
