package ping

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

func opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return noClose{h}, nil }
}

// pair starts two stacks on one emulated network: a is 10.<n>.0.1 and
// fd<n>::1, b is .2 and ::2; bopts are link options for b's port
// (",delay=20ms", ",dup=1": impairments of what b sends).
func pair(t *testing.T, n int, bopts string) (a, b *stackhost.Host) {
	t.Helper()
	spec := fmt.Sprintf("emu:ping-%s-%d", t.Name(), n)
	ctx := context.Background()
	for i, h := range []**stackhost.Host{&a, &b} {
		s := spec
		if i == 1 {
			s += bopts
		} else if _, seed, ok := strings.Cut(bopts, ",seed="); ok {
			s += ",seed=" + seed // the network's seed is set by its first port
		}
		var err error
		*h, err = stackhost.Start(s)
		if err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		for _, p := range []string{fmt.Sprintf("10.%d.0.%d/24", n, i+1), fmt.Sprintf("fd%02x::%d/64", n, i+1)} {
			if err := hh.AddAddress(ctx, "eth0", netip.MustParsePrefix(p), netip.Addr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a, b
}

// waitDAD waits (up to 10 s) until h's IPv6 addresses on eth0 are no
// longer tentative: before that the connect probe finds no source, as
// on Linux.
func waitDAD(t *testing.T, hs ...*stackhost.Host) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range hs {
		for {
			it, err := h.Interface(context.Background(), "eth0")
			if err != nil {
				t.Fatal(err)
			}
			tentative := false
			for _, a := range it.Addrs {
				tentative = tentative || a.State == "tentative"
			}
			if !tentative {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("eth0 addresses still tentative: %+v", it.Addrs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

type result struct {
	out, err string
	status   int
}

// runPing runs the applet in-process; ctx bounds it (cancel is Ctrl-C).
func runCtx(ctx context.Context, t *testing.T, open host.Opener, cfg Config, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	st := New(open, cfg).Main(ctx, env, args)
	return result{out.String(), errb.String(), st}
}

// runPing runs ping and fails the test if it is still running after 30 s.
func runPing(t *testing.T, open host.Opener, cfg Config, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := runCtx(ctx, t, open, cfg, args...)
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after 30 s", args)
	}
	return r
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func mustMatch(t *testing.T, what, s, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(s) {
		t.Errorf("%s: %q does not match %s", what, s, pattern)
	}
}

// Replies across the emulated link: one line per request with seq,
// ttl and time, the summary with 0% loss, exit 0, every line in a form
// iputils printed.
func TestReplies(t *testing.T) {
	a, _ := pair(t, 71, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "3", "-i", "0.01", "10.71.0.2")
	if r.status != 0 || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.status, r.err)
	}
	l := lines(r.out)
	if len(l) != 8 {
		t.Fatalf("%d lines:\n%s", len(l), r.out)
	}
	if l[0] != "PING 10.71.0.2 (10.71.0.2) 56(84) bytes of data." {
		t.Errorf("header %q", l[0])
	}
	for i := 1; i <= 3; i++ {
		mustMatch(t, "reply", l[i], fmt.Sprintf(`^64 bytes from 10\.71\.0\.2: icmp_seq=%d ttl=64 time=\d+\.\d{2,3} ms$`, i))
	}
	if l[4] != "" || l[5] != "--- 10.71.0.2 ping statistics ---" {
		t.Errorf("summary head %q %q", l[4], l[5])
	}
	mustMatch(t, "stats", l[6], `^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$`)
	mustMatch(t, "rtt", l[7], `^rtt min/avg/max/mdev = \d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3} ms$`)
	checkShapes(t, r.out)
}

// ping6 is ping -6: the IPv6 header form, the hop limit as ttl=.
func TestPing6(t *testing.T) {
	a, b := pair(t, 72, "")
	waitDAD(t, a, b)
	r := runPing(t, opener(a), Config{}, "ping6", "-c", "2", "-i", "0.01", "fd48::2")
	if r.status != 0 {
		t.Fatalf("exit %d: %s%s", r.status, r.out, r.err)
	}
	l := lines(r.out)
	if l[0] != "PING fd48::2(fd48::2) 56 data bytes" {
		t.Errorf("header %q", l[0])
	}
	mustMatch(t, "reply", l[1], `^64 bytes from fd48::2: icmp_seq=1 ttl=64 time=`)
	mustMatch(t, "stats", l[5], `^2 packets transmitted, 2 received, 0% packet loss`)
	checkShapes(t, r.out)
	// No neighbour answers: NDP's address unreachable (RFC 4861 §7.2.2)
	// from the error queue.
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "fd48::99")
	want := "PING fd48::99(fd48::99) 56 data bytes\nFrom fd48::1 icmp_seq=1 Destination unreachable: Address unreachable\n\n"
	if r.status != 1 || !strings.HasPrefix(r.out, want) {
		t.Errorf("fd48::99: exit %d:\n%s%s", r.status, r.out, r.err)
	}
	// ping6 with an IPv4 literal is getaddrinfo's family error.
	r = runPing(t, opener(a), Config{}, "ping6", "-c", "1", "10.72.0.2")
	if r.status != 2 || r.err != "ping: 10.72.0.2: Address family for hostname not supported\n" || r.out != "" {
		t.Errorf("ping6 10.72.0.2: exit %d, %q %q", r.status, r.out, r.err)
	}
}

// -q prints the header and the summary only.
func TestQuiet(t *testing.T) {
	a, _ := pair(t, 73, "")
	r := runPing(t, opener(a), Config{}, "ping", "-q", "-c", "3", "-i", "0.01", "10.73.0.2")
	l := lines(r.out)
	if r.status != 0 || len(l) != 5 || l[1] != "" || !strings.HasPrefix(l[3], "3 packets transmitted, 3 received, 0% packet loss") || !strings.HasPrefix(l[4], "rtt ") {
		t.Fatalf("exit %d:\n%s", r.status, r.out)
	}
	checkShapes(t, r.out)
}

// -s sets the data size: the header's N(N+28), the reply's N+8 bytes,
// and with under 16 bytes no time= and an empty line for rtt.
func TestSize(t *testing.T) {
	a, _ := pair(t, 74, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-i", "0.01", "-s", "1000", "10.74.0.2")
	l := lines(r.out)
	if r.status != 0 || l[0] != "PING 10.74.0.2 (10.74.0.2) 1000(1028) bytes of data." {
		t.Fatalf("exit %d:\n%s", r.status, r.out)
	}
	mustMatch(t, "reply", l[1], `^1008 bytes from 10\.74\.0\.2: icmp_seq=1 ttl=64 time=`)
	r = runPing(t, opener(a), Config{}, "ping", "-c2", "-i0.01", "-s0", "10.74.0.2")
	want := "PING 10.74.0.2 (10.74.0.2) 0(28) bytes of data.\n" +
		"8 bytes from 10.74.0.2: icmp_seq=1 ttl=64\n" +
		"8 bytes from 10.74.0.2: icmp_seq=2 ttl=64\n\n" +
		"--- 10.74.0.2 ping statistics ---\n"
	if r.status != 0 || !strings.HasPrefix(r.out, want) || !strings.HasSuffix(r.out, "ms\n\n") {
		t.Errorf("-s 0: exit %d:\n%s", r.status, r.out)
	}
	checkShapes(t, r.out)
	// iputils 20221126 has no size check of its own: the socket refuses
	// a datagram over 64 KiB and the request counts as sent.
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "-W", "0.1", "-s", "70000", "10.74.0.2")
	if r.status != 1 || r.err != "ping: sendmsg: Message too long\n" || !strings.Contains(r.out, "\n1 packets transmitted, 0 received, 100% packet loss") {
		t.Errorf("-s 70000: exit %d %q\n%s", r.status, r.err, r.out)
	}
}

// -t sets the requests' TTL: a raw socket on the peer sees it.
func TestTTL(t *testing.T) {
	a, b := pair(t, 75, "")
	ctx := context.Background()
	raw, err := b.ListenPacket(ctx, "ip4:icmp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	r := runPing(t, opener(a), Config{}, "ping", "-c", "1", "-t", "7", "10.75.0.2")
	if r.status != 0 {
		t.Fatalf("exit %d: %s%s", r.status, r.out, r.err)
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for {
		n, _, err := raw.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no echo request seen: %v", err)
		}
		if n > 20 && buf[20] == echoRequest4 {
			if buf[8] != 7 {
				t.Errorf("echo request TTL %d, want 7", buf[8])
			}
			break
		}
	}
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "-t", "300", "10.75.0.2")
	if r.status != 1 || r.err != "ping: invalid argument: '300': out of range: 0 <= value <= 255\n" {
		t.Errorf("-t 300: exit %d %q", r.status, r.err)
	}
}

// An address on the link that never answers ARP: the stack's host
// unreachable errors come back through the error queue as From lines,
// counted as errors, exit 1 (ARP gives up after about 3 s, as Linux).
func TestHostUnreachable(t *testing.T) {
	a, _ := pair(t, 76, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-i", "0.2", "10.76.0.99")
	want := "PING 10.76.0.99 (10.76.0.99) 56(84) bytes of data.\n" +
		"From 10.76.0.1 icmp_seq=1 Destination Host Unreachable\n" +
		"From 10.76.0.1 icmp_seq=2 Destination Host Unreachable\n\n" +
		"--- 10.76.0.99 ping statistics ---\n"
	if r.status != 1 || r.err != "" || !strings.HasPrefix(r.out, want) {
		t.Fatalf("exit %d, stderr %q:\n%s", r.status, r.err, r.out)
	}
	l := lines(r.out)
	mustMatch(t, "stats", l[5], `^2 packets transmitted, 0 received, \+2 errors, 100% packet loss, time \d+ms$`)
	if l[6] != "pipe 2" {
		t.Errorf("pipe line %q", l[6])
	}
	checkShapes(t, r.out)
}

// No route, or a broadcast address: the connect probe fails before the
// header, exit 2.
func TestNetworkUnreachable(t *testing.T) {
	a, _ := pair(t, 77, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "1", "192.0.2.1")
	if r.status != 2 || r.out != "" || r.err != "ping: connect: Network is unreachable\n" {
		t.Errorf("exit %d, %q %q", r.status, r.out, r.err)
	}
	// The subnet's broadcast address: the probe's connect gets EACCES.
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "10.77.0.255")
	if r.status != 2 || r.out != "" || r.err != "ping: Do you want to ping broadcast? Then -b. If not, check your local firewall rules\n" {
		t.Errorf("broadcast: exit %d, %q %q", r.status, r.out, r.err)
	}
}

// A peer whose replies are lost (a static ARP entry to a MAC nobody
// has): -c waits -W after the last request, then 100% loss and exit 1;
// -w alone stops at the deadline.
func TestSilentLossAndDeadline(t *testing.T) {
	a, _ := pair(t, 78, "")
	ctx := context.Background()
	if err := a.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("10.78.0.50"), MAC: "02:00:00:00:00:99", Dev: "eth0", Permanent: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runPing(t, opener(a), Config{}, "ping", "-c", "3", "-i", "0.05", "-W", "0.3", "10.78.0.50")
	took := time.Since(start)
	want := "PING 10.78.0.50 (10.78.0.50) 56(84) bytes of data.\n\n--- 10.78.0.50 ping statistics ---\n"
	if r.status != 1 || !strings.HasPrefix(r.out, want) || !strings.HasSuffix(r.out, "ms\n\n") {
		t.Fatalf("exit %d:\n%s%s", r.status, r.out, r.err)
	}
	mustMatch(t, "stats", lines(r.out)[3], `^3 packets transmitted, 0 received, 100% packet loss, time \d+ms$`)
	if took < 400*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v, want 2 intervals + the 0.3 s linger", took)
	}
	checkShapes(t, r.out)

	start = time.Now()
	r = runPing(t, opener(a), Config{}, "ping", "-w", "1", "-i", "0.2", "10.78.0.50")
	took = time.Since(start)
	if r.status != 1 || took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("-w 1: exit %d after %v:\n%s", r.status, took, r.out)
	}
	mustMatch(t, "-w stats", lines(r.out)[3], `^[4-6] packets transmitted, 0 received, 100% packet loss`)
}

// -w with -c: the count met before the deadline is exit 0; the
// deadline with the count not met is exit 1 (half of b's replies lost).
func TestDeadlineWithCount(t *testing.T) {
	a, _ := pair(t, 79, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-w", "5", "-i", "0.01", "10.79.0.2")
	if r.status != 0 {
		t.Errorf("count met: exit %d:\n%s", r.status, r.out)
	}
	a2, _ := pair(t, 80, ",loss=0.5,seed=3")
	r = runPing(t, opener(a2), Config{}, "ping", "-c", "1000", "-w", "1", "-i", "0.02", "-q", "10.80.0.2")
	l := lines(r.out)
	if r.status != 1 || len(l) < 4 {
		t.Fatalf("deadline: exit %d:\n%s", r.status, r.out)
	}
	mustMatch(t, "loss", l[3], `^\d+ packets transmitted, \d+ received, \d+(\.\d+)?% packet loss, time \d+ms$`)
	if strings.Contains(l[3], " 0% packet loss") || strings.Contains(l[3], " 100% packet loss") {
		t.Errorf("loss=0.5 gave %q", l[3])
	}
	checkShapes(t, r.out)
}

// Every reply duplicated on the wire: (DUP!) lines and "+N duplicates".
func TestDuplicates(t *testing.T) {
	a, _ := pair(t, 81, ",dup=1")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-i", "0.2", "10.81.0.2")
	if r.status != 0 {
		t.Fatalf("exit %d:\n%s%s", r.status, r.out, r.err)
	}
	if n := strings.Count(r.out, " (DUP!)\n"); n < 1 {
		t.Errorf("no (DUP!) line:\n%s", r.out)
	}
	mustMatch(t, "stats", r.out, `\n2 packets transmitted, 2 received, \+\d+ duplicates, 0% packet loss, time \d+ms\n`)
	checkShapes(t, r.out)
}

// The time= precision follows the round trip: b's replies delayed 20 ms
// give one decimal.
func TestDelayPrecision(t *testing.T) {
	a, _ := pair(t, 82, ",delay=20ms")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-i", "0.05", "10.82.0.2")
	if r.status != 0 {
		t.Fatalf("exit %d:\n%s", r.status, r.out)
	}
	mustMatch(t, "reply", lines(r.out)[1], `^64 bytes from 10\.82\.0\.2: icmp_seq=1 ttl=64 time=[2-9]\d\.\d ms$`)
}

// Ctrl-C (ctx ending) without -c prints the summary; exit 0 after
// replies, 1 without any.
func TestInterrupt(t *testing.T) {
	a, _ := pair(t, 83, "")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := runCtx(ctx, t, opener(a), Config{}, "ping", "-i", "0.05", "10.83.0.2")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("ran %v after the interrupt", took)
	}
	if r.status != 0 || !strings.Contains(r.out, "\n--- 10.83.0.2 ping statistics ---\n") || !strings.Contains(r.out, "\nrtt min/avg/max/mdev = ") {
		t.Errorf("exit %d:\n%s", r.status, r.out)
	}
	checkShapes(t, r.out)
	// Interrupted with no reply at all: exit 1.
	if err := a.AddNeighbor(context.Background(), host.Neighbor{Addr: netip.MustParseAddr("10.83.0.50"), MAC: "02:00:00:00:00:99", Dev: "eth0", Permanent: true}); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	r = runCtx(ctx2, t, opener(a), Config{}, "ping", "-i", "0.05", "10.83.0.50")
	if r.status != 1 || !strings.Contains(r.out, " 0 received, 100% packet loss, time ") {
		t.Errorf("no replies: exit %d:\n%s", r.status, r.out)
	}
}

// -I names the source: an interface ("from SRC DEV: ") or an address
// ("from SRC : "); an unknown interface fails as SO_BINDTODEVICE does.
func TestSourceFlag(t *testing.T) {
	a, _ := pair(t, 84, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "1", "-I", "eth0", "10.84.0.2")
	if r.status != 0 || lines(r.out)[0] != "PING 10.84.0.2 (10.84.0.2) from 10.84.0.1 eth0: 56(84) bytes of data." {
		t.Errorf("-I eth0: exit %d:\n%s%s", r.status, r.out, r.err)
	}
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "-I", "10.84.0.1", "10.84.0.2")
	if r.status != 0 || lines(r.out)[0] != "PING 10.84.0.2 (10.84.0.2) from 10.84.0.1 : 56(84) bytes of data." {
		t.Errorf("-I 10.84.0.1: exit %d:\n%s%s", r.status, r.out, r.err)
	}
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "-I", "eth9", "10.84.0.2")
	if r.status != 2 || r.out != "" || r.err != "ping: SO_BINDTODEVICE eth9: No such device\n" {
		t.Errorf("-I eth9: exit %d %q %q", r.status, r.out, r.err)
	}
	r = runPing(t, opener(a), Config{}, "ping", "-c", "1", "-I", "10.84.0.77", "10.84.0.2")
	if r.status != 2 || r.err != "ping: bind: Cannot assign requested address\n" {
		t.Errorf("-I 10.84.0.77: exit %d %q", r.status, r.err)
	}
}

// -D prefixes replies with [sec.usec]; -O reports a request not yet
// answered when the next is sent.
func TestTimestampsAndOutstanding(t *testing.T) {
	a, _ := pair(t, 85, "")
	r := runPing(t, opener(a), Config{}, "ping", "-D", "-c", "2", "-i", "0.01", "10.85.0.2")
	mustMatch(t, "-D", lines(r.out)[1], `^\[\d{10}\.\d{6}\] 64 bytes from 10\.85\.0\.2: icmp_seq=1 ttl=64 time=`)
	ctx := context.Background()
	if err := a.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("10.85.0.50"), MAC: "02:00:00:00:00:99", Dev: "eth0", Permanent: true}); err != nil {
		t.Fatal(err)
	}
	r = runPing(t, opener(a), Config{}, "ping", "-O", "-c", "2", "-i", "0.05", "-W", "0.1", "10.85.0.50")
	if !strings.Contains(r.out, "\nno answer yet for icmp_seq=1\n") {
		t.Errorf("-O:\n%s", r.out)
	}
}

// Flood (root): a dot per request, a backspace per reply, and the
// ipg/ewma figures in the summary.
func TestFlood(t *testing.T) {
	a, _ := pair(t, 86, "")
	r := runPing(t, opener(a), Config{UID: func() int { return 0 }}, "ping", "-f", "-c", "20", "10.86.0.2")
	if r.status != 0 {
		t.Fatalf("exit %d:\n%q", r.status, r.out)
	}
	_, marks, _ := strings.Cut(r.out, " bytes of data.\n")
	marks, _, _ = strings.Cut(marks, "\n--- ")
	if strings.Count(marks, ".") != 20 || strings.Count(marks, "\b \b") != 20 || len(marks) != 20*4 {
		t.Errorf("flood marks %q", marks)
	}
	mustMatch(t, "summary", r.out, `\nrtt min/avg/max/mdev = [0-9./]+ ms(, pipe \d+)?, ipg/ewma \d+\.\d{3}/\d+\.\d{3} ms\n$`)
}

// A user may not flood nor go under 2 ms: the message comes after the
// header, exit 2.
func TestUserInterval(t *testing.T) {
	a, _ := pair(t, 87, "")
	user := Config{UID: func() int { return 1000 }}
	for _, args := range [][]string{{"-i", "0.001"}, {"-f"}} {
		r := runPing(t, opener(a), user, append(append([]string{"ping", "-c", "1"}, args...), "10.87.0.2")...)
		if r.status != 2 || r.out != "PING 10.87.0.2 (10.87.0.2) 56(84) bytes of data.\n" ||
			r.err != "ping: cannot flood; minimal interval allowed for user is 2ms\n" {
			t.Errorf("%v: exit %d %q %q", args, r.status, r.out, r.err)
		}
	}
	r := runPing(t, opener(a), user, "ping", "-c", "1", "-i", "0.002", "10.87.0.2")
	if r.status != 0 {
		t.Errorf("-i 0.002 as a user: exit %d %q", r.status, r.err)
	}
}
