//go:build linux

package tcp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

// The kernel side of the benchmarks: kernel↔kernel between two
// namespaces over a veth pair (client 10.83.0.11, server 10.83.0.12), and
// our stack against the kernel over a TAP (kernel 10.83.0.1 in the lab
// namespace, our stack 10.83.0.2). Everything is made by netlab and
// removed at b's cleanup.

func init() {
	kernelEnv = vethEnv
	kernelIdleMemory = vethIdleMemory
}

var vethCounter atomic.Uint64

// kernelUnavailable says why the kernel cannot be measured here, or "".
func kernelUnavailable() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces and a veth pair); not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
			if _, err := os.Stat(p); err == nil {
				return ""
			}
		}
		return "iproute2 `ip` not found"
	}
	return ""
}

// vethLab is two namespaces joined by a veth pair.
type vethLab struct {
	cl, sv *netlab.Lab
}

const (
	vethClient = "10.83.0.11"
	vethServer = "10.83.0.12"
)

func newVethLab(b *testing.B) (*vethLab, string) {
	b.Helper()
	if why := kernelUnavailable(); why != "" {
		return nil, why
	}
	v := &vethLab{cl: netlab.New(b), sv: netlab.New(b)}
	n := vethCounter.Add(1)
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	a := fmt.Sprintf("sbk%s-%sa", pid, strconv.FormatUint(n, 36))
	p := fmt.Sprintf("sbk%s-%sb", pid, strconv.FormatUint(n, 36))
	v.cl.MustIP(b, "link", "add", "dev", a, "type", "veth", "peer", "name", p, "netns", v.sv.Namespace())
	b.Cleanup(func() {
		// Deleting the namespaces would take the pair with them; delete it
		// by name first all the same.
		ctx, cancel := context.WithTimeout(context.Background(), netlab.CommandTimeout)
		defer cancel()
		v.cl.IP(ctx, "link", "delete", "dev", a)
	})
	v.cl.MustIP(b, "addr", "add", vethClient+"/24", "dev", a)
	v.sv.MustIP(b, "addr", "add", vethServer+"/24", "dev", p)
	v.cl.MustIP(b, "link", "set", "dev", a, "up")
	v.sv.MustIP(b, "link", "set", "dev", p, "up")
	return v, ""
}

// kernelListen listens on addr inside l's namespace.
func kernelListen(b *testing.B, l *netlab.Lab, addr string) net.Listener {
	b.Helper()
	var ln net.Listener
	if err := l.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// nsDialer connects kernel sockets from a namespace without running the
// caller there. A socket belongs to the namespace it was created in, so
// a goroutine locked to a thread inside the namespace (netlab.Lab.Do)
// creates them, a few ahead of need; connecting and all I/O happen on
// the caller's goroutine, like any Go net conn. (Running the client's
// loop inside Do instead costs a wake-up of the locked thread at every
// blocking read, which cut the kernel's round-trip rate to a third, and
// a Do per connect costs a new thread per connection.)
type nsDialer struct {
	to   unix.SockaddrInet4
	fds  chan int
	stop chan struct{}
	err  error // why fds was closed
}

func newNSDialer(b *testing.B, l *netlab.Lab, to netip.AddrPort) *nsDialer {
	b.Helper()
	d := &nsDialer{to: unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()},
		fds: make(chan int, 16), stop: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := l.Do(func() error {
			for {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				select {
				case d.fds <- fd:
				case <-d.stop:
					unix.Close(fd)
					return nil
				}
			}
		})
		d.err = fmt.Errorf("socket in %s: %v", l.Namespace(), err)
		close(d.fds)
	}()
	b.Cleanup(func() {
		close(d.stop)
		<-done
		for fd := range d.fds {
			unix.Close(fd)
		}
	})
	return d
}

// dial connects one socket: a non-blocking connect, then Go's poller
// waits for it to finish, as net.Dial does.
func (d *nsDialer) dial() (net.Conn, error) {
	fd, ok := <-d.fds
	if !ok {
		return nil, d.err
	}
	if err := unix.Connect(fd, &d.to); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tcp")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
		case v != 0:
			cerr = unix.Errno(v)
		default:
			if _, err := unix.Getpeername(int(fd)); err == unix.ENOTCONN {
				return false // still connecting: wait until writable
			}
		}
		return true
	})
	c.SetDeadline(time.Time{})
	if err == nil {
		err = cerr
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func vethEnv(b *testing.B) (*benchEnv, string) {
	b.Helper()
	v, why := newVethLab(b)
	if v == nil {
		return nil, why
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr(vethServer), benchPort)
	return &benchEnv{ln: kernelListen(b, v.sv, addr.String()), dial: newNSDialer(b, v.cl, addr).dial}, ""
}

// tapLab is our stack on a TAP whose kernel side is in a namespace.
type tapLab struct {
	l *netlab.Lab
	d *gonet.Dialer
}

const (
	tapKernel = "10.83.0.1"
	tapUs     = "10.83.0.2"
)

func newTAPLab(b *testing.B) *tapLab {
	b.Helper()
	l := netlab.New(b) // skips without root
	tp := l.AddTAP(b, netlab.TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(tapKernel + "/24")}})
	s := stack.New(stack.Options{})
	b.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(tapUs + "/24")}); err != nil {
		b.Fatal(err)
	}
	n.SetUp(true)
	in := socket.NewInet(s)
	return &tapLab{l: l, d: &gonet.Dialer{Layer: in.Layer, Cred: transport.Cred{Privileged: true}, Timeout: 10 * time.Second}}
}

// oursToKernel: our stack is the client, the kernel the server.
func (t *tapLab) oursToKernel(b *testing.B) *benchEnv {
	addr := net.JoinHostPort(tapKernel, strconv.Itoa(benchPort))
	ln := kernelListen(b, t.l, addr)
	return &benchEnv{ln: ln, dial: func() (net.Conn, error) { return t.d.Dial("tcp4", addr) }}
}

// kernelToOurs: the kernel is the client, our stack the server.
func (t *tapLab) kernelToOurs(b *testing.B) *benchEnv {
	addr := net.JoinHostPort(tapUs, strconv.Itoa(benchPort))
	ln, err := t.d.Listen(b.Context(), "tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return &benchEnv{ln: ln, dial: newNSDialer(b, t.l, netip.MustParseAddrPort(addr)).dial}
}

// BenchmarkBulkTAP: bulk throughput between our stack and the kernel over
// a TAP, each direction (the client sends), b.N × 64 MiB on one
// connection, beside kernel↔kernel over veth.
func BenchmarkBulkTAP(b *testing.B) {
	b.Run("ours-to-kernel", func(b *testing.B) { benchBulk(b, newTAPLab(b).oursToKernel(b)) })
	b.Run("kernel-to-ours", func(b *testing.B) { benchBulk(b, newTAPLab(b).kernelToOurs(b)) })
}

// BenchmarkRoundTripTAP: 1-byte round trips between our stack and the
// kernel over a TAP (ours the client, then the kernel), beside
// kernel↔kernel over veth.
func BenchmarkRoundTripTAP(b *testing.B) {
	b.Run("ours-client", func(b *testing.B) { benchRR(b, newTAPLab(b).oursToKernel(b)) })
	b.Run("kernel-client", func(b *testing.B) { benchRR(b, newTAPLab(b).kernelToOurs(b)) })
}

// BenchmarkConnRateTAP: connections opened, used for a 1-byte exchange
// and closed per second between our stack and the kernel over a TAP
// (ours the client, then the kernel), beside kernel↔kernel over veth.
func BenchmarkConnRateTAP(b *testing.B) {
	b.Run("ours-client", func(b *testing.B) { benchConnRate(b, newTAPLab(b).oursToKernel(b)) })
	b.Run("kernel-client", func(b *testing.B) { benchConnRate(b, newTAPLab(b).kernelToOurs(b)) })
}

// slabBytes reads /proc/slabinfo: bytes in active objects per cache.
func slabBytes() (map[string]int64, error) {
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[0] == "slabinfo" || fs[0] == "#" {
			continue
		}
		active, err1 := strconv.ParseInt(fs[1], 10, 64)
		size, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		m[fs[0]] += active * size
	}
	return m, sc.Err()
}

// vethIdleMemory opens n idle kernel↔kernel connections over veth and
// returns the growth of the kernel's slab caches (bytes in active objects,
// /proc/slabinfo) per connection. The slab caches are machine-wide, so
// whatever else runs meanwhile is counted too; the detail names the
// caches that grew most.
func vethIdleMemory(b *testing.B, n int) kernelMemory {
	b.Helper()
	var note string
	if _, err := os.Stat("/proc/slabinfo"); err != nil {
		return kernelMemory{why: fmt.Sprintf("/proc/slabinfo unreadable (%v)", err)}
	}
	v, why := newVethLab(b)
	if v == nil {
		return kernelMemory{why: why}
	}
	// Both ends are in this process: 2n descriptors and some. Without
	// enough (RLIMIT_NOFILE's hard limit binds root too without
	// CAP_SYS_RESOURCE), measure fewer connections and say so.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return kernelMemory{why: fmt.Sprintf("getrlimit: %v", err)}
	}
	if need := uint64(2*n + 1000); lim.Cur < need {
		nl := unix.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &nl); err == nil {
			old := lim
			b.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
		} else if fit := (int(lim.Cur) - 1000) / 2; fit >= 1000 {
			note = fmt.Sprintf("from %d connections, not %d: RLIMIT_NOFILE %d cannot be raised (%v); ", fit, n, lim.Cur, err)
			n = fit
		} else {
			return kernelMemory{why: fmt.Sprintf("%d descriptors needed, RLIMIT_NOFILE is %d and cannot be raised: %v", need, lim.Cur, err)}
		}
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr(vethServer), benchPort)
	ln := kernelListen(b, v.sv, addr.String())
	dial := newNSDialer(b, v.cl, addr).dial
	var clients []net.Conn
	accepted := acceptN(ln, n+1)
	defer func() {
		ln.Close()
		r := <-accepted
		closeAll(clients)
		closeAll(r.conns)
	}()
	var before map[string]int64
	err := func() error {
		// A first connection so that one-off allocations are not counted.
		c, err := dial()
		if err != nil {
			return err
		}
		clients = append(clients, c)
		time.Sleep(100 * time.Millisecond)
		if before, err = slabBytes(); err != nil {
			return err
		}
		for i := range n {
			c, err := dial()
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			clients = append(clients, c)
		}
		return nil
	}()
	if err != nil {
		return kernelMemory{why: fmt.Sprintf("kernel connections: %v", err)}
	}
	r := <-accepted
	accepted <- r // for the deferred close
	if r.err != nil {
		return kernelMemory{why: fmt.Sprintf("kernel accept: %v", r.err)}
	}
	time.Sleep(300 * time.Millisecond)
	after, err := slabBytes()
	if err != nil {
		return kernelMemory{why: fmt.Sprintf("/proc/slabinfo: %v", err)}
	}
	type grow struct {
		name string
		d    int64
	}
	var total int64
	var gs []grow
	for name, a := range after {
		d := a - before[name]
		total += d
		if d > 0 {
			gs = append(gs, grow{name, d})
		}
	}
	for name, bb := range before {
		if _, ok := after[name]; !ok {
			total -= bb
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].d > gs[j].d })
	var parts []string
	for _, g := range gs[:min(len(gs), 8)] {
		parts = append(parts, fmt.Sprintf("%s %.0f B/conn", g.name, float64(g.d)/float64(n)))
	}
	return kernelMemory{
		perConn: float64(total) / float64(n),
		tcpSock: float64(after["TCP"]-before["TCP"]) / float64(n),
		detail: fmt.Sprintf("kernel %sslab growth %d B, most in %s (machine-wide caches: other activity counts too)",
			note, total, strings.Join(parts, ", ")),
	}
}
