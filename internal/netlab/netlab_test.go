//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestCleanupRemovesEverything builds a lab with a tap, a veth pair and a
// background process in a subtest, then checks that all of it is gone once
// the subtest has ended.
func TestCleanupRemovesEverything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	var (
		ns, tapDev, vethHost string
		pid                  int
	)
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		ns = l.Namespace()
		if !strings.HasPrefix(ns, "sbx-") || !strings.Contains(ns, "-"+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("namespace name %q lacks the sbx- prefix and PID", ns)
		}
		if !exists("/var/run/netns/" + ns) {
			t.Fatalf("namespace %s not created", ns)
		}
		tp := l.AddTAP(t, TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.9.1/24")}})
		tapDev = tp.Dev
		v := l.AddVeth(t, VethConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.8.1/24")}})
		vethHost = v.Host
		p := l.Start(t, "sleep", "60")
		pid = p.PID()

		// The devices are where they should be: tap kernel side and veth
		// peer in the lab, veth host end here.
		out := string(l.MustIP(t, "-br", "addr", "show"))
		for _, want := range []string{tp.Dev, "10.77.9.1/24", v.Peer, "10.77.8.1/24"} {
			if !strings.Contains(out, want) {
				t.Errorf("lab namespace lacks %s:\n%s", want, out)
			}
		}
		if exists("/sys/class/net/"+tp.Dev) || !exists("/sys/class/net/"+v.Host) {
			t.Errorf("host namespace: tap %s present=%v (want false), veth %s present=%v (want true)",
				tp.Dev, exists("/sys/class/net/"+tp.Dev), v.Host, exists("/sys/class/net/"+v.Host))
		}
		if tp.MAC.IsZero() || tp.MAC == tp.Endpoint.MAC() || v.PeerMAC.IsZero() {
			t.Errorf("MACs: tap kernel %v, ours %v, veth peer %v", tp.MAC, tp.Endpoint.MAC(), v.PeerMAC)
		}
	})
	if ns == "" {
		t.Fatal("subtest did not get far enough")
	}
	if exists("/var/run/netns/" + ns) {
		t.Errorf("namespace %s still exists after the test", ns)
	}
	if tapDev != "" && exists("/sys/class/net/"+tapDev) {
		t.Errorf("tap %s still exists", tapDev)
	}
	if vethHost != "" && exists("/sys/class/net/"+vethHost) {
		t.Errorf("veth %s still exists", vethHost)
	}
	if pid != 0 {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("background process %d still exists (kill 0: %v)", pid, err)
		}
	}
}

// TestCleanupAfterFailure runs a lab test that fails (t.Fatal) and one
// that panics in a child test process, and checks that the namespace each
// created is gone once the child has exited.
func TestCleanupAfterFailure(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, mode := range []string{"fatal", "panic"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFailingLabHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "NETLAB_FAIL_MODE="+mode)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("helper test passed, want it to fail:\n%s", out)
			}
			m := regexp.MustCompile(`lab namespace (sbx-[0-9]+-[0-9]+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("helper did not report its namespace:\n%s", out)
			}
			if ns := string(m[1]); exists("/var/run/netns/" + ns) {
				t.Errorf("namespace %s survived a test that %s", ns, mode)
			}
			if mode == "panic" && !strings.Contains(string(out), "deliberate panic") {
				t.Errorf("helper output lacks the panic:\n%s", out)
			}
		})
	}
}

// TestFailingLabHelper is the child of TestCleanupAfterFailure; it does
// nothing unless that test sets NETLAB_FAIL_MODE.
func TestFailingLabHelper(t *testing.T) {
	mode := os.Getenv("NETLAB_FAIL_MODE")
	if mode == "" {
		t.Skip("helper for TestCleanupAfterFailure")
	}
	l := New(t)
	l.AddVeth(t, VethConfig{})
	fmt.Printf("lab namespace %s\n", l.Namespace())
	if mode == "panic" {
		panic("deliberate panic")
	}
	t.Fatal("deliberate failure")
}

func TestRunAndDoAreInsideTheNamespace(t *testing.T) {
	l := New(t)
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(string(l.MustRun(t, "readlink", "/proc/self/ns/net")))
	var inDo string
	if err := l.Do(func() error {
		var err error
		inDo, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if out == host || inDo == host || out != inDo {
		t.Errorf("namespaces: host %s, Run %s, Do %s", host, out, inDo)
	}
	// Only loopback, and it is up.
	links := string(l.MustIP(t, "-br", "link", "show"))
	if lines := strings.Split(strings.TrimSpace(links), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "lo ") || !strings.Contains(lines[0], "UP") {
		t.Errorf("fresh namespace links:\n%s", links)
	}

	l.Sysctl(t, "net.ipv4.ip_forward", "1")
	if got := strings.TrimSpace(string(l.MustRun(t, "cat", "/proc/sys/net/ipv4/ip_forward"))); got != "1" {
		t.Errorf("ip_forward inside after Sysctl = %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Run(ctx, "false"); err == nil {
		t.Error("Run of a failing command gave no error")
	}
	start := time.Now()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := l.Run(short, "sleep", "30"); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Run did not stop at the context deadline: %v after %v", err, time.Since(start))
	}
}

// TestStartAndStop: a background process runs inside the namespace and
// Stop kills and reaps it.
func TestStartAndStop(t *testing.T) {
	l := New(t)
	p := l.Start(t, "sh", "-c", "readlink /proc/self/ns/net; exec sleep 60")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Output(), "net:[") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	want := strings.TrimSpace(string(l.MustRun(t, "readlink", "/proc/self/ns/net")))
	if got := strings.TrimSpace(p.Output()); got != want {
		t.Errorf("background process namespace %q, lab %q", got, want)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was reaped")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestTAPAndNeighbors: the tap's fd works after its kernel side moved into
// the namespace (a frame the kernel sends there reaches our endpoint), and
// a neighbour entry added in the namespace reads back parsed.
func TestTAPAndNeighbors(t *testing.T) {
	l := New(t)
	tp := l.AddTAP(t, TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.7.1/24")}})
	got := make(chan []byte, 64)
	tp.Endpoint.Attach(linkFunc(func(f []byte) {
		select {
		case got <- f:
		default:
		}
	}))
	// Pinging an unknown neighbour makes the kernel broadcast ARP requests
	// on the tap. -W bounds ping; the reply never comes and need not.
	go l.Run(context.Background(), "ping", "-c", "1", "-W", "1", "10.77.7.2")
	timeout := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case f := <-got:
			seen = len(f) >= 14 && wire.MAC(f[6:12]) == tp.MAC && f[12] == 0x08 && f[13] == 0x06
		case <-timeout:
			t.Fatalf("no ARP frame from %s (%v) reached the endpoint in 5 s after moving it to %s", tp.Dev, tp.MAC, l.Namespace())
		}
	}

	mac := wire.MAC{0x02, 0, 0x5e, 1, 2, 3}
	l.MustIP(t, "neigh", "replace", "10.77.7.9", "lladdr", mac.String(), "dev", tp.Dev, "nud", "permanent")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := l.WaitNeighbor(ctx, tp.Dev, netip.MustParseAddr("10.77.7.9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.MAC != mac || n.Dev != tp.Dev || !n.HasState("PERMANENT") {
		t.Errorf("neighbour = %+v", n)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := l.WaitNeighbor(short, tp.Dev, netip.MustParseAddr("10.77.7.77"), nil); err == nil {
		t.Error("WaitNeighbor found an entry that does not exist")
	}
}

type linkFunc func([]byte)

func (f linkFunc) DeliverFrame(b []byte) { f(b) }

func TestParseNeighbors(t *testing.T) {
	tests := []struct {
		name, in, dev string
		want          []Neighbor
		err           bool
	}{
		{name: "empty", in: "[]", want: []Neighbor{}},
		{
			name: "reachable and failed",
			in:   `[{"dst":"10.77.0.2","dev":"sbt1","lladdr":"02:11:22:33:44:55","state":["REACHABLE"]},{"dst":"10.77.0.3","dev":"sbt1","state":["FAILED"]}]`,
			want: []Neighbor{
				{Addr: netip.MustParseAddr("10.77.0.2"), Dev: "sbt1", MAC: wire.MAC{2, 0x11, 0x22, 0x33, 0x44, 0x55}, State: []string{"REACHABLE"}},
				{Addr: netip.MustParseAddr("10.77.0.3"), Dev: "sbt1", State: []string{"FAILED"}},
			},
		},
		{
			name: "filtered by dev, IPv6, router flag",
			dev:  "sbt2",
			in:   `[{"dst":"fe80::1","lladdr":"02:00:00:00:00:01","router":null,"state":["STALE"]}]`,
			want: []Neighbor{{Addr: netip.MustParseAddr("fe80::1"), Dev: "sbt2", MAC: wire.MAC{2, 0, 0, 0, 0, 1}, State: []string{"STALE"}}},
		},
		{name: "not json", in: "10.77.0.2 dev x", err: true},
		{name: "bad address", in: `[{"dst":"10.77.0.300"}]`, err: true},
		{name: "bad lladdr", in: `[{"dst":"10.77.0.2","lladdr":"zz"}]`, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNeighbors([]byte(tc.in), tc.dev)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Addr != w.Addr || g.Dev != w.Dev || g.MAC != w.MAC || strings.Join(g.State, ",") != strings.Join(w.State, ",") {
					t.Errorf("[%d] = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func FuzzParseNeighbors(f *testing.F) {
	f.Add([]byte(`[{"dst":"10.77.0.2","dev":"x","lladdr":"02:11:22:33:44:55","state":["REACHABLE"]}]`))
	f.Add([]byte(`[{"dst":"fe80::1","state":["FAILED","NOARP"]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := parseNeighbors(b, "d")
		if err != nil {
			return
		}
		for _, n := range ns {
			if !n.Addr.IsValid() || n.Dev == "" {
				t.Fatalf("accepted entry without address or device: %+v", n)
			}
			_ = n.HasState("REACHABLE")
			_ = n.MAC.String()
		}
	})
}
