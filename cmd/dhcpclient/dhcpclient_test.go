package dhcpclient

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/applettest"
	"github.com/stackbox/stackbox/internal/dhcptest"
	"github.com/stackbox/stackbox/pkg/host"
)

// The shared applet-test scaffolding (internal/applettest).
var opener = applettest.Opener

type syncBuf = applettest.SyncBuf

func runApplet(ctx context.Context, t *testing.T, h host.Host, cfg Config, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuf
	env := &applet.Env{Stdout: &out, Stderr: &errb, Getenv: os.Getenv}
	code := New(opener(h), cfg).Main(ctx, env, append([]string{"udhcpc"}, args...))
	return code, out.String(), errb.String()
}

// dumpScript writes a script like the capture's: each call appends its
// event and the lower-case environment, sorted, to the returned file.
func dumpScript(t *testing.T) (script, out string) {
	dir := t.TempDir()
	script, out = filepath.Join(dir, "dump.sh"), filepath.Join(dir, "calls")
	body := fmt.Sprintf("#!/bin/sh\n{ echo \"== $1\"; env | grep -E '^[a-z][a-z0-9_]*=' | sort; } >> %s\nexit 3\n", out)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, out
}

func calls(t *testing.T, out string) string {
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLeaseQuit: -n -q gets a lease, prints udhcpc's lines, calls the
// script with deconfig then bound and udhcpc's variables, applies the
// lease, and exits 0; Config.Resolv gets the DNS servers and domain.
func TestLeaseQuit(t *testing.T) {
	ch, _ := dhcptest.Lab(t, "")
	script, out := dumpScript(t)
	var dns []netip.Addr
	var domain string
	cfg := Config{Resolv: func(d []netip.Addr, dom string) error { dns, domain = d, dom; return nil }}
	code, _, stderr := runApplet(context.Background(), t, ch, cfg, "-i", "eth0", "-nq", "-T1", "-s", script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "udhcpc: started, v1.35.0\nudhcpc: broadcasting discover\nudhcpc: broadcasting select for 10.70.0.100, server 10.70.0.1\nudhcpc: lease of 10.70.0.100 obtained from 10.70.0.1, lease time 3600\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	wantCalls := `== deconfig
interface=eth0
== bound
broadcast=10.70.0.255
dns=10.70.0.53
domain=lab
interface=eth0
ip=10.70.0.100
lease=3600
mask=24
mtu=1400
opt53=05
router=10.70.0.1
serverid=10.70.0.1
subnet=255.255.255.0
`
	if got := calls(t, out); got != wantCalls {
		t.Errorf("script calls:\n%s\nwant:\n%s", got, wantCalls)
	}
	if len(dns) != 1 || dns[0] != netip.MustParseAddr("10.70.0.53") || domain != "lab" {
		t.Errorf("resolv hook got %v %q", dns, domain)
	}
	it, _ := ch.Interface(context.Background(), "eth0")
	if len(it.Addrs) == 0 || it.Addrs[0].Prefix != netip.MustParsePrefix("10.70.0.100/24") || it.MTU != 1400 {
		t.Errorf("eth0 %+v", it)
	}
}

// TestNoLease: -n with no answer: leasefail, "no lease, failing", exit 1,
// after -t discovers -T apart.
func TestNoLease(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	srv.Set(func(s *dhcptest.Server) { s.Silent = true })
	script, out := dumpScript(t)
	start := time.Now()
	code, _, stderr := runApplet(context.Background(), t, ch, Config{}, "-n", "-q", "-t", "2", "-T", "1", "-s", script)
	if code != 1 || !strings.HasSuffix(stderr, "udhcpc: broadcasting discover\nudhcpc: broadcasting discover\nudhcpc: no lease, failing\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if d := time.Since(start); d < 2*time.Second || d > 4*time.Second {
		t.Errorf("took %v, want about 2 s", d)
	}
	if got := calls(t, out); got != "== deconfig\ninterface=eth0\n== leasefail\ninterface=eth0\n" {
		t.Errorf("script calls:\n%s", got)
	}
	if n := srv.Count(dhcpv4.MessageTypeDiscover); n != 2 {
		t.Errorf("%d discovers", n)
	}
}

// TestRelease: -R releases on exit (unicast RELEASE, "entering released
// state", deconfig) and sends -x hostname:, -x 0x3d:, -V, -F and -r in
// the DISCOVER.
func TestRelease(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	script, out := dumpScript(t)
	code, _, stderr := runApplet(context.Background(), t, ch, Config{}, "-n", "-q", "-R", "-T", "1", "-s", script,
		"-x", "hostname:clientd", "-V", "myvendor", "-r", "10.70.0.100", "-x", "0x3d:0100beef", "-F", "c.lab")
	if code != 0 || !strings.HasSuffix(stderr, "udhcpc: unicasting a release of 10.70.0.100 to 10.70.0.1\nudhcpc: entering released state\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if got := calls(t, out); !strings.HasSuffix(got, "== deconfig\ninterface=eth0\n") || strings.Count(got, "== deconfig") != 2 {
		t.Errorf("script calls:\n%s", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.Count(dhcpv4.MessageTypeRelease) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.Count(dhcpv4.MessageTypeRelease) != 1 {
		t.Errorf("server saw no release")
	}
	d := srv.Seen()[0].M
	if d.HostName() != "clientd" || d.ClassIdentifier() != "myvendor" || d.RequestedIPAddress().String() != "10.70.0.100" ||
		!bytes.Equal(d.Options.Get(dhcpv4.OptionClientIdentifier), []byte{1, 0, 0xbe, 0xef}) ||
		string(d.Options.Get(dhcpv4.OptionFQDN)) != "\x01\x00\x00c.lab" {
		t.Errorf("discover options %v", d.Options)
	}
	it, _ := ch.Interface(context.Background(), "eth0")
	for _, a := range it.Addrs {
		if a.Prefix.Addr().Is4() {
			t.Errorf("address left after release: %v", a.Prefix)
		}
	}
}

// TestNak: a NAK is reported to the script with the server's message.
func TestNak(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	srv.Set(func(s *dhcptest.Server) { s.NakNext = 1 })
	script, out := dumpScript(t)
	code, _, stderr := runApplet(context.Background(), t, ch, Config{}, "-n", "-q", "-T", "1", "-s", script)
	if code != 0 || !strings.Contains(stderr, "udhcpc: received DHCP NAK\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if got := calls(t, out); !strings.Contains(got, "== nak\ninterface=eth0\nmessage=wrong network\n== bound\n") {
		t.Errorf("script calls:\n%s", got)
	}
}

// TestForegroundTerm: without -q the applet stays bound, with its -p
// pidfile; when its context ends (SIGTERM) it releases (-R), says so and
// removes the pidfile.
func TestForegroundTerm(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	pidfile := filepath.Join(t.TempDir(), "udhcpc.pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, _, stderr = runApplet(ctx, t, ch, Config{}, "-f", "-R", "-T", "1", "-p", pidfile)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Count(dhcpv4.MessageTypeRequest) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("pidfile %q, %v", b, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("applet did not exit")
	}
	if code != 0 || !strings.HasSuffix(stderr, "udhcpc: entering released state\nudhcpc: received SIGTERM\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for srv.Count(dhcpv4.MessageTypeRelease) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.Count(dhcpv4.MessageTypeRelease) != 1 {
		t.Errorf("no release")
	}
}

// TestErrors: bad options and an unknown interface, with udhcpc's words
// and exit status 1.
func TestErrors(t *testing.T) {
	ch, _ := dhcptest.Lab(t, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-Z"}, "udhcpc: invalid option -- 'Z'\nUsage: udhcpc"},
		{[]string{"-t"}, "udhcpc: option requires an argument -- 't'\n"},
		{[]string{"-b"}, "udhcpc: option -b is not supported\n"},
		{[]string{"-t", "x"}, "udhcpc: invalid number 'x'\n"},
		{[]string{"-r", "banana"}, "udhcpc: bad IP address 'banana'\n"},
		{[]string{"-x", "nonsense:1"}, "udhcpc: unknown option 'nonsense'\n"},
		{[]string{"-i", "eth9", "-n", "-q"}, "udhcpc: SIOCGIFINDEX: No such device\n"},
	} {
		code, _, stderr := runApplet(context.Background(), t, ch, Config{}, c.args...)
		if code != 1 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr:\n%s", c.args, code, stderr)
		}
	}
}

// TestLeaseFile: --leasefile keeps the lease; the next run asks for the
// same address with an INIT-REBOOT REQUEST and no DISCOVER.
func TestLeaseFile(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	file := filepath.Join(t.TempDir(), "eth0.lease")
	if code, _, stderr := runApplet(context.Background(), t, ch, Config{}, "-n", "-q", "-T", "1", "--leasefile", file); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	srv.Set(func(s *dhcptest.Server) { s.Got = nil })
	code, _, stderr := runApplet(context.Background(), t, ch, Config{}, "-n", "-q", "-T", "1", "--leasefile="+file)
	if code != 0 || !strings.Contains(stderr, "udhcpc: broadcasting request for 10.70.0.100 (init-reboot)\n") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if srv.Count(dhcpv4.MessageTypeDiscover) != 0 || srv.Count(dhcpv4.MessageTypeRequest) != 1 {
		t.Errorf("server saw %+v", srv.Seen())
	}
}

// TestScriptTimeout: a script that hangs is killed after
// Config.ScriptTimeout, and the client goes on.
func TestScriptTimeout(t *testing.T) {
	ch, _ := dhcptest.Lab(t, "")
	script := filepath.Join(t.TempDir(), "hang.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, stderr := runApplet(context.Background(), t, ch, Config{ScriptTimeout: 200 * time.Millisecond}, "-n", "-q", "-T", "1", "-s", script)
	if code != 0 || !strings.Contains(stderr, "udhcpc: lease of 10.70.0.100") || !strings.Contains(stderr, "hang.sh: signal: killed") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestRetryRounds: without -n a failed round waits -A seconds and starts
// again until the applet is told to stop (exit 0).
func TestRetryRounds(t *testing.T) {
	ch, srv := dhcptest.Lab(t, "")
	srv.Set(func(s *dhcptest.Server) { s.Silent = true })
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	code, _, stderr := runApplet(ctx, t, ch, Config{}, "-t", "1", "-T", "1", "-A", "1")
	// Rounds start at 0, 2 and 3 s (1 s of discover, 1 s of -A).
	if code != 0 || strings.Count(stderr, "broadcasting discover") != 2 || !strings.HasSuffix(stderr, "udhcpc: received SIGTERM\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if n := srv.Count(dhcpv4.MessageTypeDiscover); n != 2 {
		t.Errorf("%d discovers", n)
	}
}
