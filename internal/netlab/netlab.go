//go:build linux

// Package netlab is the kernel test lab: it gives a test its own network
// namespace, with the Linux kernel as the peer host on a TAP device or a
// veth pair, and removes everything it made when the test ends.
//
//	lab := netlab.New(t)                      // namespace sbx-<pid>-<n>
//	tp := lab.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{p}})
//	tp.Endpoint                               // our side, a *tap.Endpoint
//	lab.MustRun(t, "ping", "-c1", "10.77.0.2") // a command inside the namespace
//
// Everything a lab creates is registered with t.Cleanup (of the testing.TB
// the method is given), which runs also when the test fails or panics:
// background processes are killed by process group, endpoints closed,
// devices deleted by exact name, the namespace deleted. Names carry the
// test binary's PID and a counter, so parallel tests and parallel test
// binaries do not collide. A test that is not root, or has no iproute2
// `ip`, is skipped with a message saying so.
//
// The lab runs iproute2 for configuration (it is test code, and the kernel
// tools are the oracle), and Do runs Go code on a thread inside the
// namespace for what needs no tool (sysctls, sockets).
package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/pkg/link/tap"
	"github.com/stackbox/stackbox/pkg/wire"
)

// CommandTimeout bounds each configuration command the lab runs itself and
// each MustRun/MustIP.
const CommandTimeout = 10 * time.Second

// Lab is one network namespace and the devices and processes in it.
type Lab struct {
	ns    string // namespace name, e.g. sbx-1234-1
	ipBin string // path of iproute2's ip
}

var counter atomic.Uint64

// New creates a namespace named sbx-<pid>-<n> with its loopback up, and
// registers its removal with t.Cleanup. It skips the test when not root or
// when `ip` is missing.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: kernel interop test needs root (network namespaces, tap devices); skipping")
	}
	ipBin := findIP()
	if ipBin == "" {
		t.Skip("netlab: iproute2 `ip` not found in PATH, /usr/sbin or /sbin; skipping kernel interop test")
	}
	l := &Lab{ns: fmt.Sprintf("sbx-%d-%d", os.Getpid(), counter.Add(1)), ipBin: ipBin}
	if out, err := l.command(context.Background(), ipBin, "netns", "add", l.ns); err != nil {
		t.Fatalf("netlab: create namespace %s: %v", l.ns, errOut(err, out))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
		defer cancel()
		if out, err := l.command(ctx, ipBin, "netns", "delete", l.ns); err != nil {
			t.Errorf("netlab: delete namespace %s: %v", l.ns, errOut(err, out))
		}
	})
	l.MustIP(t, "link", "set", "lo", "up")
	return l
}

func findIP() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Namespace is the name of the lab's network namespace (for `ip -n`).
func (l *Lab) Namespace() string { return l.ns }

// command runs one program, bounded by ctx and CommandTimeout, and returns
// its combined output.
func (l *Lab) command(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

func errOut(err error, out []byte) error {
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("%w: %s", err, s)
	}
	return err
}

// Run runs a command inside the namespace (`ip netns exec`) and returns
// its combined output; a non-zero exit is an *exec.ExitError. The command
// is killed when ctx ends or after CommandTimeout.
func (l *Lab) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return l.command(ctx, l.ipBin, append([]string{"netns", "exec", l.ns, name}, args...)...)
}

// MustRun is Run that fails the test (with the output) on error.
func (l *Lab) MustRun(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := l.Run(context.Background(), name, args...)
	if err != nil {
		t.Fatalf("netlab: %s %s in %s: %v", name, strings.Join(args, " "), l.ns, errOut(err, out))
	}
	return out
}

// IP runs `ip -n NS args…`: iproute2 acting inside the namespace.
func (l *Lab) IP(ctx context.Context, args ...string) ([]byte, error) {
	return l.command(ctx, l.ipBin, append([]string{"-n", l.ns}, args...)...)
}

// MustIP is IP that fails the test on error.
func (l *Lab) MustIP(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := l.IP(context.Background(), args...)
	if err != nil {
		t.Fatalf("netlab: ip -n %s %s: %v", l.ns, strings.Join(args, " "), errOut(err, out))
	}
	return out
}

// hostIP runs `ip args…` in the test's own (host) namespace.
func (l *Lab) hostIP(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := l.command(context.Background(), l.ipBin, args...)
	if err != nil {
		t.Fatalf("netlab: ip %s: %v", strings.Join(args, " "), errOut(err, out))
	}
	return out
}

// Do runs fn on an OS thread that has joined the namespace and returns its
// error. Only fn's own goroutine is inside: goroutines it starts are not.
// Sockets opened in fn stay in the namespace after fn returns, and so do
// files under /proc/sys/net opened in fn.
func (l *Lab) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when this goroutine returns, the
		// runtime ends the thread rather than reuse one in the wrong
		// namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/var/run/netns", l.ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace %s: %w", l.ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("netlab: join namespace %s: %w", l.ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Sysctl sets a sysctl inside the namespace, e.g.
// Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1").
func (l *Lab) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := l.Do(func() error { return os.WriteFile(path, []byte(value), 0) }); err != nil {
		t.Fatalf("netlab: sysctl %s=%s in %s: %v", key, value, l.ns, err)
	}
}

// devName makes a unique interface name: "sb", a kind letter, the PID and a
// counter in base 36, within the kernel's 15-byte limit.
func devName(kind byte) string {
	return fmt.Sprintf("sb%c%s-%s", kind, strconv.FormatInt(int64(os.Getpid()), 36),
		strconv.FormatUint(counter.Add(1), 36))
}

// linkMAC reads an interface's MAC with `ip -j link show`; ipArgs select
// the namespace (empty for the host's).
func (l *Lab) linkMAC(t testing.TB, dev string, inLab bool) wire.MAC {
	t.Helper()
	args := []string{"-j", "link", "show", "dev", dev}
	var out []byte
	if inLab {
		out = l.MustIP(t, args...)
	} else {
		out = l.hostIP(t, args...)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("netlab: ip -j link show %s: unexpected output %q (%v)", dev, out, err)
	}
	mac, err := wire.ParseMAC(links[0].Address)
	if err != nil {
		t.Fatalf("netlab: %s: MAC %q: %v", dev, links[0].Address, err)
	}
	return mac
}

// TAPConfig configures AddTAP.
type TAPConfig struct {
	// Config is passed to tap.Open; an empty Name gets a unique one.
	tap.Config
	// Addrs are assigned to the kernel side inside the namespace.
	Addrs []netip.Prefix
}

// TAP is a tap device whose kernel side lives in the lab namespace.
type TAP struct {
	Endpoint *tap.Endpoint // our side: the stack's link
	Dev      string        // kernel side's interface name (inside the namespace)
	MAC      wire.MAC      // kernel side's MAC (not Endpoint.MAC())
}

// AddTAP opens a tap.Endpoint in the host namespace, moves the kernel side
// of the device into the lab namespace (the open file keeps working: it is
// bound to the device, not to a namespace), assigns cfg.Addrs to it and
// brings it up. The endpoint is closed, removing the device, at t's
// cleanup.
func (l *Lab) AddTAP(t testing.TB, cfg TAPConfig) *TAP {
	t.Helper()
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("netlab: no /dev/net/tun (%v); skipping tap test", err)
	}
	if cfg.Name == "" {
		cfg.Name = devName('t')
	}
	ep, err := tap.Open(cfg.Config)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		if err := ep.Close(); err != nil {
			t.Errorf("netlab: close %s: %v", ep.Name(), err)
		}
	})
	dev := ep.Device()
	l.hostIP(t, "link", "set", "dev", dev, "netns", l.ns)
	for _, p := range cfg.Addrs {
		l.MustIP(t, "addr", "add", p.String(), "dev", dev)
	}
	// Moving a device between namespaces takes it down; bring it up again.
	l.MustIP(t, "link", "set", "dev", dev, "up")
	return &TAP{Endpoint: ep, Dev: dev, MAC: l.linkMAC(t, dev, true)}
}

// VethConfig configures AddVeth.
type VethConfig struct {
	// Addrs are assigned to the namespace end.
	Addrs []netip.Prefix
	// MTU of both ends; zero keeps the kernel default (1500).
	MTU int
}

// Veth is a veth pair between the host namespace and the lab namespace.
type Veth struct {
	Host    string   // host-namespace end: up, no addresses, ARP off (for afpacket)
	Peer    string   // lab-namespace end: addressed and up
	PeerMAC wire.MAC // the lab end's MAC: the kernel host our stack talks to
}

// AddVeth creates a veth pair with one end in the lab namespace (given
// cfg.Addrs, up) and the other in the host namespace, up but configured so
// the host kernel stays off the wire: ARP off and no IPv6 link-local
// address. The host end is what an afpacket endpoint binds to. The pair is
// deleted at t's cleanup.
func (l *Lab) AddVeth(t testing.TB, cfg VethConfig) *Veth {
	t.Helper()
	v := &Veth{Host: devName('h'), Peer: devName('p')}
	args := []string{"link", "add", "dev", v.Host}
	if cfg.MTU != 0 {
		args = append(args, "mtu", strconv.Itoa(cfg.MTU))
	}
	args = append(args, "type", "veth", "peer", "name", v.Peer, "netns", l.ns)
	if cfg.MTU != 0 {
		args = append(args, "mtu", strconv.Itoa(cfg.MTU))
	}
	l.hostIP(t, args...)
	t.Cleanup(func() {
		// Deleting one end deletes both; the pair may already be gone if the
		// namespace went first.
		out, err := l.command(context.Background(), l.ipBin, "link", "delete", "dev", v.Host)
		if err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			t.Errorf("netlab: delete veth %s: %v", v.Host, errOut(err, out))
		}
	})
	l.hostIP(t, "link", "set", "dev", v.Host, "arp", "off", "addrgenmode", "none", "up")
	for _, p := range cfg.Addrs {
		l.MustIP(t, "addr", "add", p.String(), "dev", v.Peer)
	}
	l.MustIP(t, "link", "set", "dev", v.Peer, "up")
	v.PeerMAC = l.linkMAC(t, v.Peer, true)
	return v
}

// Proc is a background process running inside the lab namespace.
type Proc struct {
	cmd  *exec.Cmd
	out  *capBuffer
	once sync.Once
	done chan struct{}
	err  error
}

// Start runs a command in the background inside the namespace, in its own
// process group. At t's cleanup (or Stop) the group is killed and the
// process reaped.
func (l *Lab) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(l.ipBin, append([]string{"netns", "exec", l.ns, name}, args...)...)
	out := &capBuffer{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("netlab: start %s in %s: %v", name, l.ns, err)
	}
	p := &Proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("netlab: %v", err)
		}
	})
	return p
}

// PID is the process ID (`ip netns exec` execs the command itself, so this
// is the command's PID and its process group).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output is what the process has written so far (stdout and stderr, at
// most 1 MiB).
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop kills the process group with SIGKILL and waits (at most 5 s) for
// the process to be reaped. It is idempotent.
func (p *Proc) Stop() error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		// The group ID is the PID we started (Setpgid): an exact target.
		if kerr := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
			err = fmt.Errorf("kill process group %d: %w", p.cmd.Process.Pid, kerr)
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("process %d not reaped 5 s after SIGKILL", p.cmd.Process.Pid)
		}
	})
	return err
}

// capBuffer is a goroutine-safe buffer that keeps the first max bytes.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Adopt moves dev, an interface that something else created in the host
// namespace (the tap of a netd the test started with --link tap:NAME),
// into the lab namespace, assigns addrs to it, brings it up and returns
// its MAC. Whoever created dev still removes it; if it is still in the
// namespace then, deleting the namespace destroys it.
func (l *Lab) Adopt(t testing.TB, dev string, addrs ...netip.Prefix) wire.MAC {
	t.Helper()
	l.hostIP(t, "link", "set", "dev", dev, "netns", l.ns)
	for _, p := range addrs {
		l.MustIP(t, "addr", "add", p.String(), "dev", dev)
	}
	l.MustIP(t, "link", "set", "dev", dev, "up")
	return l.linkMAC(t, dev, true)
}
