package netd

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/applettest"
	api "github.com/stackbox/stackbox/pkg/netd"
)

// syncBuf is a bytes.Buffer safe for the daemon's goroutine and the test.
type syncBuf = applettest.SyncBuf

func testEnv(stderr *syncBuf, vars map[string]string) *applet.Env {
	return &applet.Env{Stdin: strings.NewReader(""), Stdout: stderr, Stderr: stderr,
		Getenv: func(k string) string { return vars[k] }}
}

// waitSocket dials the control socket until netd answers (bounded).
func waitSocket(t *testing.T, path string) *api.Client {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := api.Dial(context.Background(), path)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("netd never answered on %s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// netd starts on a link with static configuration from flags and a config
// file, serves it on the socket STACKBOX_SOCKET names, writes its
// resolv.conf, refuses a second start on the same socket, and exits 0 on
// cancellation, removing the socket.
func TestDaemonStaticConfig(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "netd.sock")
	conf := filepath.Join(dir, "netd.conf")
	os.WriteFile(conf, []byte("# test\nroute 10.70.0.0/16 gw 192.168.1.254\nsearch lab\n"), 0o644)
	var logs syncBuf
	env := testEnv(&logs, map[string]string{"STACKBOX_SOCKET": sock})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, env, []string{"netd", "--link", "emu:netd-static,seed=3", "--config", conf,
			"--addr", "eth0=192.168.1.100/24", "--route", "default gw 192.168.1.1", "--nameserver", "192.168.1.1"})
	}()
	c := waitSocket(t, sock)
	defer c.Close()
	it, err := c.Interface(ctx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var got netip.Prefix
	for _, a := range it.Addrs {
		if a.Prefix.Addr().Is4() {
			got = a.Prefix
		}
	}
	if got != netip.MustParsePrefix("192.168.1.100/24") {
		t.Errorf("eth0 address %v (%+v)", got, it.Addrs)
	}
	rs, err := c.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"0.0.0.0/0": "192.168.1.1", "10.70.0.0/16": "192.168.1.254"}
	for _, r := range rs {
		if gw, ok := want[r.Dst.String()]; ok && r.Gateway.String() == gw && r.Dev == "eth0" {
			delete(want, r.Dst.String())
		}
	}
	if len(want) != 0 {
		t.Errorf("routes missing %v in %+v", want, rs)
	}
	rc, err := os.ReadFile(filepath.Join(dir, "run", "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rc), "\nsearch lab\nnameserver 127.0.0.1\n") {
		t.Errorf("resolv.conf:\n%s", rc)
	}
	// A second netd on the same socket refuses with one clear line.
	var second syncBuf
	if code := Main(ctx, testEnv(&second, map[string]string{"STACKBOX_SOCKET": sock}), []string{"netd", "--link", "emu:netd-static2"}); code != 1 {
		t.Errorf("second netd exit %d, want 1", code)
	}
	if msg := second.String(); !strings.HasPrefix(msg, "netd: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, sock) {
		t.Errorf("second netd said %q", msg)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, logs:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("netd did not stop on cancellation")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// Bad configuration fails before serving, with the reason on one line.
func TestDaemonBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--addr", "eth0"},
		{"--route", "default gw nowhere"},
		{"--nameserver", "dns.example"},
		{"--link", "bogus:x"},
		{"--link", "emu:netd-bad", "--addr", "eth3=10.0.0.1/24"},
		{"--link", "emu:netd-bad2", "--route", "default gw 10.9.9.9"},
	} {
		var out syncBuf
		env := testEnv(&out, map[string]string{"STACKBOX_SOCKET": filepath.Join(dir, "s.sock")})
		code := Main(context.Background(), env, append([]string{"netd"}, args...))
		if code != 1 || !strings.HasPrefix(out.String(), "netd: ") || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, output %q", args, code, out.String())
		}
	}
}
