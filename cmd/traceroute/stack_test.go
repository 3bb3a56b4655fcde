package traceroute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// chain is the emulated path A — R1 — R2 — B, each link its own switch:
//
//	A  10.71.1.2 fd71:1::2
//	R1 10.71.1.1 fd71:1::1 | 10.71.2.1 fd71:2::1
//	R2 10.71.2.2 fd71:2::2 | 10.71.3.1 fd71:3::1
//	B  10.71.3.2 fd71:3::2
//
// A and B route everything to their router; R1 sends 10.71.0.0/16
// (fd71::/16) beyond its links to R2 and has a prohibit route for
// 10.71.7.0/24; R2 routes back to R1, has a blackhole route for
// 10.71.8.0/24 (fd71:8::/64), an unreachable one for 10.71.9.0/24
// (fd71:9::/64) and no route for the rest (10.71.5.1: net unreachable).
// No stack rate-limits its ICMP errors (traceroute provokes many).
type chain struct {
	A, R1, R2, B *stackhost.Host
}

func newChain(t *testing.T) *chain {
	t.Helper()
	mk := func(fwd bool) *stack.Stack {
		return stacktest.NewStack(t, stack.Options{IPv4Forwarding: fwd, IPv6Forwarding: fwd, ICMPRateLimit: -1})
	}
	a, r1, r2, b := mk(false), mk(true), mk(true), mk(false)
	n1, n2, n3 := stacktest.NewNetwork(t, 1), stacktest.NewNetwork(t, 2), stacktest.NewNetwork(t, 3)
	stacktest.AddNIC(t, a, n1.NewPort(emu.PortConfig{}), "10.71.1.2/24", "fd71:1::2/64")
	stacktest.AddNIC(t, r1, n1.NewPort(emu.PortConfig{}), "10.71.1.1/24", "fd71:1::1/64")
	stacktest.AddNIC(t, r1, n2.NewPort(emu.PortConfig{}), "10.71.2.1/24", "fd71:2::1/64")
	stacktest.AddNIC(t, r2, n2.NewPort(emu.PortConfig{}), "10.71.2.2/24", "fd71:2::2/64")
	stacktest.AddNIC(t, r2, n3.NewPort(emu.PortConfig{}), "10.71.3.1/24", "fd71:3::1/64")
	stacktest.AddNIC(t, b, n3.NewPort(emu.PortConfig{}), "10.71.3.2/24", "fd71:3::2/64")
	add := func(s *stack.Stack, dst, gw string, typ route.Type) {
		t.Helper()
		r := route.Route{Dst: netip.MustParsePrefix(dst), Type: typ}
		if gw != "" {
			r.Gateway = netip.MustParseAddr(gw)
		}
		if err := s.Routes().Add(r); err != nil {
			t.Fatalf("route %s via %s: %v", dst, gw, err)
		}
	}
	add(a, "0.0.0.0/0", "10.71.1.1", route.TypeUnicast)
	add(a, "::/0", "fd71:1::1", route.TypeUnicast)
	add(b, "0.0.0.0/0", "10.71.3.1", route.TypeUnicast)
	add(b, "::/0", "fd71:3::1", route.TypeUnicast)
	add(r1, "10.71.0.0/16", "10.71.2.2", route.TypeUnicast)
	add(r1, "fd71::/16", "fd71:2::2", route.TypeUnicast)
	add(r1, "10.71.7.0/24", "", route.TypeProhibit)
	add(r2, "10.71.1.0/24", "10.71.2.1", route.TypeUnicast)
	add(r2, "fd71:1::/64", "fd71:2::1", route.TypeUnicast)
	add(r2, "10.71.8.0/24", "", route.TypeBlackhole)
	add(r2, "fd71:8::/64", "", route.TypeBlackhole)
	add(r2, "10.71.9.0/24", "", route.TypeUnreachable)
	add(r2, "fd71:9::/64", "", route.TypeUnreachable)
	h := func(s *stack.Stack) *stackhost.Host { return stackhost.New(socket.NewInet(s)) }
	c := &chain{A: h(a), R1: h(r1), R2: h(r2), B: h(b)}
	// Resolve the neighbours along the path with one probe at a time:
	// a burst of 16 probes into an unresolved neighbour overflows its
	// queue of pending packets (as on Linux), which the tests are not
	// about.
	for _, dst := range []string{"10.71.3.2", "fd71:3::2"} {
		r := runTrace(t, opener(c.A), Config{}, "traceroute", "-n", "-q", "1", "-N", "1", "-w", "3", dst)
		if r.status != 0 || !strings.Contains(r.out, " 3  "+dst+"  ") {
			t.Fatalf("warming up the path to %s: exit %d\n%s%s", dst, r.status, r.out, r.err)
		}
	}
	return c
}

func opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return h, nil }
}

type result struct {
	status   int
	out, err string
	took     time.Duration
}

func runTrace(t *testing.T, open host.Opener, cfg Config, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	st := New(open, cfg).Main(ctx, env, args)
	return result{status: st, out: out.String(), err: errb.String(), took: time.Since(start)}
}

// rtt stands for a round trip in expected output.
var rtt = regexp.MustCompile(`\d+\.\d{3} ms`)

// norm replaces the round trips by "T ms".
func norm(s string) string { return rtt.ReplaceAllString(s, "T ms") }

func expect(t *testing.T, what string, r result, status int, want string) {
	t.Helper()
	if r.status != status || norm(r.out) != want || r.err != "" {
		t.Errorf("%s: exit %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", what, r.status, status, r.out, want, r.err)
	}
}

// The default UDP method, ICMP echo and TCP SYN across two routers: one
// line per hop with the address that sent time exceeded, and the
// destination's port unreachable, echo reply or RST ends the trace at
// hop 3; in IPv6 too.
func TestMultiHop(t *testing.T) {
	c := newChain(t)
	open := opener(c.A)
	want4 := "traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, %d byte packets\n" +
		" 1  10.71.1.1  T ms  T ms  T ms\n" +
		" 2  10.71.2.2  T ms  T ms  T ms\n" +
		" 3  10.71.3.2  T ms  T ms  T ms\n"
	want6 := "traceroute to fd71:3::2 (fd71:3::2), 30 hops max, %d byte packets\n" +
		" 1  fd71:1::1  T ms  T ms  T ms\n" +
		" 2  fd71:2::2  T ms  T ms  T ms\n" +
		" 3  fd71:3::2  T ms  T ms  T ms\n"
	for _, tc := range []struct {
		args []string
		want string
		size int
	}{
		{[]string{"traceroute", "-w", "3", "-n", "10.71.3.2"}, want4, 60},
		{[]string{"traceroute", "-w", "3", "-n", "-I", "10.71.3.2"}, want4, 60},
		{[]string{"traceroute", "-w", "3", "-n", "-T", "10.71.3.2"}, want4, 60},
		{[]string{"traceroute", "-w", "3", "-n", "-U", "-p", "7777", "10.71.3.2"}, want4, 60},
		{[]string{"traceroute", "-w", "3", "-n", "10.71.3.2", "1200"}, want4, 1200},
		{[]string{"traceroute6", "-w", "3", "-n", "fd71:3::2"}, want6, 80},
		{[]string{"traceroute", "-w", "3", "-n", "-I", "fd71:3::2"}, want6, 80},
		{[]string{"traceroute", "-w", "3", "-6", "-n", "-T", "fd71:3::2"}, want6, 80},
	} {
		r := runTrace(t, open, Config{}, tc.args...)
		expect(t, strings.Join(tc.args, " "), r, 0, fmt.Sprintf(tc.want, tc.size))
	}
}

// lastLines returns the last n lines of out.
func lastLines(out string, n int) string {
	l := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(l) < n {
		return out
	}
	return strings.Join(l[len(l)-n:], "\n") + "\n"
}

// ICMP unreachables end the trace at the hop that sent them, each probe
// annotated: !H for R2's unreachable route, !N where R2 has no route, !X
// for R1's prohibit route, with every method.
func TestUnreachable(t *testing.T) {
	c := newChain(t)
	open := opener(c.A)
	for _, tc := range []struct {
		args []string
		last string
	}{
		{[]string{"-q", "2", "10.71.9.1"}, "  10.71.2.2  T ms !H  T ms !H\n"},
		{[]string{"-I", "-q", "2", "10.71.9.1"}, "  10.71.2.2  T ms !H  T ms !H\n"},
		{[]string{"-T", "-q", "2", "10.71.9.1"}, "  10.71.2.2  T ms !H  T ms !H\n"},
		{[]string{"10.71.5.1"}, "  10.71.2.2  T ms !N  T ms !N  T ms !N\n"},
		{[]string{"10.71.7.1"}, "  10.71.1.1  T ms !X  T ms !X  T ms !X\n"},
		{[]string{"-q", "1", "fd71:9::1"}, "  fd71:2::2  T ms !N\n"},
	} {
		args := append([]string{"traceroute", "-n", "-w", "2", "-m", "5"}, tc.args...)
		r := runTrace(t, open, Config{}, args...)
		out := norm(r.out)
		// Our IPv4 forwarding checks the TTL before the route (Linux
		// the other way round), so the router may first show up as a
		// plain hop: the trace is checked from its last line.
		last := lastLines(out, 1)
		if r.status != 0 || r.err != "" || len(last) < 2 || last[2:] != tc.last || !regexp.MustCompile(`^ [123]  `).MatchString(last) {
			t.Errorf("%v: exit %d, last line %q, want …%q\n%s%s", args, r.status, last, tc.last, r.out, r.err)
		}
	}
}

// A router that drops silently: hops past R2's blackhole are "*", one a
// line with -q 1, each after the -w wait, up to -m.
func TestSilentHops(t *testing.T) {
	c := newChain(t)
	r := runTrace(t, opener(c.A), Config{}, "traceroute", "-n", "-q", "1", "-w", "0.2", "-m", "4", "10.71.8.1")
	if r.status != 0 || r.err != "" || !strings.HasPrefix(norm(r.out), "traceroute to 10.71.8.1 (10.71.8.1), 4 hops max, 60 byte packets\n 1  10.71.1.1  T ms\n") ||
		!strings.HasSuffix(r.out, " 3  *\n 4  *\n") {
		t.Errorf("exit %d:\n%s%s", r.status, r.out, r.err)
	}
	if r.took < 200*time.Millisecond || r.took > 5*time.Second {
		t.Errorf("took %v for two silent probes of 0.2 s", r.took)
	}
	// Three probes a hop: "* * *".
	r = runTrace(t, opener(c.A), Config{}, "traceroute", "-n", "-w", "0.2", "-m", "3", "10.71.8.1")
	if r.status != 0 || !strings.HasSuffix(r.out, " 3  * * *\n") {
		t.Errorf("-q 3: exit %d:\n%s%s", r.status, r.out, r.err)
	}
}

// -f skips the first hops, -m stops short of the destination (exit 0
// all the same), -q sets the probes a line, the packet length operand
// the header's size.
func TestHopLimits(t *testing.T) {
	c := newChain(t)
	open := opener(c.A)
	expect(t, "-f 2", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-f", "2", "10.71.3.2"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 60 byte packets\n 2  10.71.2.2  T ms  T ms  T ms\n 3  10.71.3.2  T ms  T ms  T ms\n")
	expect(t, "-m 2", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-m", "2", "10.71.3.2"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 2 hops max, 60 byte packets\n 1  10.71.1.1  T ms  T ms  T ms\n 2  10.71.2.2  T ms  T ms  T ms\n")
	expect(t, "-q 1 -N 1 -z 0.01", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-q", "1", "-N", "1", "-z", "0.01", "10.71.3.2"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 60 byte packets\n 1  10.71.1.1  T ms\n 2  10.71.2.2  T ms\n 3  10.71.3.2  T ms\n")
	expect(t, "-q 5 -f 3", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-q", "5", "-f", "3", "10.71.3.2", "10"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 28 byte packets\n 3  10.71.3.2  T ms  T ms  T ms  T ms  T ms\n")
	expect(t, "-I -f 3", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-I", "-f", "3", "fd71:3::2", "10"), 0,
		"traceroute to fd71:3::2 (fd71:3::2), 30 hops max, 48 byte packets\n 3  fd71:3::2  T ms  T ms  T ms\n")
	// From the other end, the way back.
	expect(t, "from B", runTrace(t, opener(c.B), Config{}, "traceroute", "-w", "3", "-n", "-q", "1", "10.71.1.2"), 0,
		"traceroute to 10.71.1.2 (10.71.1.2), 30 hops max, 60 byte packets\n 1  10.71.3.1  T ms\n 2  10.71.2.1  T ms\n 3  10.71.1.2  T ms\n")
}

// Names: the Resolve hook turns the operand into the address (the
// header keeps the name as given); the Reverse hook names hops without
// -n, the address standing in where it has no name, and is asked once
// per address and never with -n.
func TestNames(t *testing.T) {
	c := newChain(t)
	asked := map[netip.Addr]int{}
	cfg := Config{
		Resolve: func(_ context.Context, h host.Host, _ func(string) string, name string, family int) (netip.Addr, string, error) {
			if name == "b.lab" && family != 10 {
				return netip.MustParseAddr("10.71.3.2"), "b.lab.", nil
			}
			return netip.Addr{}, "", errors.New("Name or service not known")
		},
		Reverse: func(_ context.Context, _ host.Host, _ func(string) string, a netip.Addr) (string, error) {
			asked[a]++
			switch a.String() {
			case "10.71.1.1":
				return "r1.lab.", nil
			case "10.71.3.2":
				return "b.lab.", nil
			}
			return "", errors.New("no name")
		},
	}
	open := opener(c.A)
	expect(t, "names", runTrace(t, open, cfg, "traceroute", "-w", "3", "b.lab"), 0,
		"traceroute to b.lab (10.71.3.2), 30 hops max, 60 byte packets\n"+
			" 1  r1.lab (10.71.1.1)  T ms  T ms  T ms\n"+
			" 2  10.71.2.2 (10.71.2.2)  T ms  T ms  T ms\n"+
			" 3  b.lab (10.71.3.2)  T ms  T ms  T ms\n")
	for a, n := range asked {
		if n != 1 {
			t.Errorf("%v looked up %d times", a, n)
		}
	}
	clear(asked)
	expect(t, "-n", runTrace(t, open, cfg, "traceroute", "-w", "3", "-n", "-q", "1", "b.lab"), 0,
		"traceroute to b.lab (10.71.3.2), 30 hops max, 60 byte packets\n 1  10.71.1.1  T ms\n 2  10.71.2.2  T ms\n 3  10.71.3.2  T ms\n")
	if len(asked) != 0 {
		t.Errorf("-n looked up %v", asked)
	}
	// No Reverse hook: the address is the name.
	expect(t, "no hook", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-q", "1", "-m", "1", "10.71.3.2"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 1 hops max, 60 byte packets\n 1  10.71.1.1 (10.71.1.1)  T ms\n")
	r := runTrace(t, open, cfg, "traceroute", "nosuch.lab")
	if r.status != 2 || r.out != "" || r.err != "nosuch.lab: Name or service not known\nCannot handle \"host\" cmdline arg `nosuch.lab' on position 1 (argc 1)\n" {
		t.Errorf("unknown host: exit %d, %q, %q", r.status, r.out, r.err)
	}
}

// -s and -i bind the probes (the trace works); an address we do not
// have is bind's error, an unknown device SO_BINDTODEVICE's, and a host
// with no route is connect's, each after the header, exit 1.
func TestSourceAndErrors(t *testing.T) {
	c := newChain(t)
	open := opener(c.A)
	for _, m := range []string{"", "-I", "-T"} {
		args := []string{"traceroute", "-w", "3", "-n", "-q", "1", "-s", "10.71.1.2", "-i", "eth0", "10.71.3.2"}
		if m != "" {
			args = append(args, m)
		}
		expect(t, strings.Join(args, " "), runTrace(t, open, Config{}, args...), 0,
			"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 60 byte packets\n 1  10.71.1.1  T ms\n 2  10.71.2.2  T ms\n 3  10.71.3.2  T ms\n")
	}
	header := "traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 60 byte packets"
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-s", "10.71.1.9"}, "bind: Cannot assign requested address"},
		{[]string{"-I", "-s", "10.71.1.9"}, "bind: Cannot assign requested address"},
		{[]string{"-i", "eth7"}, "setsockopt SO_BINDTODEVICE: No such device"},
	} {
		r := runTrace(t, open, Config{}, append(append([]string{"traceroute"}, tc.args...), "10.71.3.2")...)
		want := header
		if tc.args[0] == "-I" {
			want = "" // the ICMP socket is bound before the header
		}
		if r.status != 1 || r.out != want || r.err != "\n"+tc.err+"\n" {
			t.Errorf("%v: exit %d, %q, %q", tc.args, r.status, r.out, r.err)
		}
	}
	// A host with an address and no route beyond its link.
	s := stacktest.NewStack(t, stack.Options{})
	stacktest.AddNIC(t, s, stacktest.NewNetwork(t, 9).NewPort(emu.PortConfig{}), "10.72.0.1/24")
	lone := stackhost.New(socket.NewInet(s))
	// UDP probes fail at the first probe's connect, after the header;
	// the ICMP and TCP methods connect before it (traceroute 2.1).
	for _, m := range []string{"-U", "-I", "-T"} {
		r := runTrace(t, opener(lone), Config{}, "traceroute", "-w", "3", "-n", m, "10.200.0.2")
		header := "traceroute to 10.200.0.2 (10.200.0.2), 30 hops max, 60 byte packets"
		if m != "-U" {
			header = ""
		}
		if r.status != 1 || r.out != header || r.err != "\nconnect: Network is unreachable\n" {
			t.Errorf("%s no route: exit %d, %q, %q", m, r.status, r.out, r.err)
		}
	}
}

// -F with a probe bigger than the link's MTU: nobody answers, each probe
// is "*" with the MTU, and the trace ends there.
func TestDontFragment(t *testing.T) {
	c := newChain(t)
	expect(t, "-F", runTrace(t, opener(c.A), Config{}, "traceroute", "-w", "3", "-n", "-F", "10.71.3.2", "2000"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 2000 byte packets\n 1  *  T ms !F-1500 *  T ms !F-1500 *  T ms !F-1500\n")
	// Without -F the probes are fragmented and get through.
	expect(t, "no -F", runTrace(t, opener(c.A), Config{}, "traceroute", "-w", "3", "-n", "-q", "1", "10.71.3.2", "2000"), 0,
		"traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 2000 byte packets\n 1  10.71.1.1  T ms\n 2  10.71.2.2  T ms\n 3  10.71.3.2  T ms\n")
}

// Ctrl-C (ctx ending) stops a trace waiting on silent hops at once.
func TestInterrupt(t *testing.T) {
	c := newChain(t)
	var out, errb bytes.Buffer
	env := &applet.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	st := New(opener(c.A), Config{}).Main(ctx, env, []string{"traceroute", "-w", "3", "-n", "10.71.8.1"})
	if st != 130 || time.Since(start) > 3*time.Second || !strings.HasPrefix(norm(out.String()), "traceroute to 10.71.8.1 (10.71.8.1), 30 hops max, 60 byte packets\n 1  10.71.1.1  T ms  T ms  T ms\n") {
		t.Errorf("exit %d after %v:\n%s%s", st, time.Since(start), out.String(), errb.String())
	}
}

// asUser is a host whose sockets are opened for an unprivileged user,
// as netd opens them for a client that is not root.
type asUser struct{ *stackhost.Host }

func userOpts(o *host.SocketOptions) *host.SocketOptions {
	var c host.SocketOptions
	if o != nil {
		c = *o
	}
	c.Cred = &host.Cred{UID: 1000, GID: 1000}
	return &c
}

func (u asUser) Dial(ctx context.Context, network, address string, o *host.SocketOptions) (net.Conn, error) {
	return u.Host.Dial(ctx, network, address, userOpts(o))
}

func (u asUser) ListenPacket(ctx context.Context, network, address string, o *host.SocketOptions) (host.PacketConn, error) {
	return u.Host.ListenPacket(ctx, network, address, userOpts(o))
}

// Without privilege the default UDP probes and -I (ping sockets) trace
// as usual; -T needs a raw socket and says so, with traceroute's texts,
// before any header, exit 1.
func TestUnprivileged(t *testing.T) {
	c := newChain(t)
	open := opener(asUser{c.A})
	want := "traceroute to 10.71.3.2 (10.71.3.2), 30 hops max, 60 byte packets\n 1  10.71.1.1  T ms\n 2  10.71.2.2  T ms\n 3  10.71.3.2  T ms\n"
	expect(t, "udp", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-q", "1", "10.71.3.2"), 0, want)
	expect(t, "-I", runTrace(t, open, Config{}, "traceroute", "-w", "3", "-n", "-q", "1", "-I", "10.71.3.2"), 0, want)
	r := runTrace(t, open, Config{}, "traceroute", "-n", "-T", "10.71.3.2")
	if r.status != 1 || r.out != "" || r.err != "You do not have enough privileges to use this traceroute method.\nsocket: Operation not permitted\n" {
		t.Errorf("-T: exit %d, %q, %q", r.status, r.out, r.err)
	}
}

// -t sets the probes' TOS, -p the first port (one more each probe) and
// -U one fixed port: what B receives, seen by a raw UDP socket there
// (-N 2: only the two probes of hop 3 go out).
func TestProbeFields(t *testing.T) {
	c := newChain(t)
	raw, err := c.B.ListenPacket(context.Background(), "ip4:udp", "", nil)
	if err != nil {
		t.Skipf("raw socket on B: %v", err)
	}
	defer raw.Close()
	for _, tc := range []struct {
		args  []string
		tos   byte
		ports []uint16
	}{
		{[]string{"-t", "16", "-p", "40000", "-q", "2", "-f", "3"}, 16, []uint16{40000, 40001}},
		{[]string{"-U", "-q", "2", "-f", "3"}, 0, []uint16{53, 53}},
		{[]string{"-U", "-p", "7", "-q", "2", "-f", "3"}, 0, []uint16{7, 7}},
	} {
		args := append(append([]string{"traceroute", "-n", "-w", "3", "-N", "2"}, tc.args...), "10.71.3.2")
		if r := runTrace(t, opener(c.A), Config{}, args...); r.status != 0 || !strings.Contains(r.out, " 3  10.71.3.2") {
			t.Fatalf("%v: exit %d\n%s%s", args, r.status, r.out, r.err)
		}
		b := make([]byte, 2048)
		var got []uint16
		for range tc.ports {
			raw.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := raw.ReadFrom(b)
			if err != nil || n < 28 {
				t.Fatalf("%v: read %d: %v", args, n, err)
			}
			if b[1] != tc.tos {
				t.Errorf("%v: TOS %#x, want %#x", args, b[1], tc.tos)
			}
			hl := int(b[0]&0xf) * 4
			got = append(got, uint16(b[hl+2])<<8|uint16(b[hl+3]))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.ports) {
			t.Errorf("%v: ports %v, want %v", args, got, tc.ports)
		}
	}
}
