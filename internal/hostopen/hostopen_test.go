package hostopen

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/netd"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// A link spec (flag or STACKBOX_LINK) gives a private stack on it; with
// neither, Open is a netd client, and a missing daemon is an error that
// names the socket and keeps the errno.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, link := range []string{"emu:hostopen-flag", ""} {
		if link == "" {
			env["STACKBOX_LINK"] = "emu:hostopen-env"
		}
		h, err := Open(ctx, link, getenv)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := h.(*stackhost.Host); !ok {
			t.Fatalf("link %q: got %T, want a private stack", link, h)
		}
		if _, err := h.Interface(ctx, "eth0"); err != nil {
			t.Errorf("link %q: %v", link, err)
		}
		h.Close()
	}
	delete(env, "STACKBOX_LINK")
	env["STACKBOX_SOCKET"] = filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(ctx, "", getenv)
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), env["STACKBOX_SOCKET"]) {
		t.Fatalf("missing daemon: %v", err)
	}
	// With a daemon serving, Open is its client.
	h, _ := stackhost.Start("emu:hostopen-daemon")
	defer h.Close()
	ln, err := netd.Listen(env["STACKBOX_SOCKET"])
	if err != nil {
		t.Fatal(err)
	}
	srv := netd.NewServer(h, netd.ServerOptions{})
	go srv.Serve(ln)
	defer srv.Close()
	c, err := Open(ctx, "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*netd.Client); !ok {
		t.Fatalf("got %T, want the netd client", c)
	}
}

// Resolver errors read as getaddrinfo's: a name that does not exist, and
// a lookup no server answered (here nothing listens on the stack's
// 127.0.0.1:53, glibc's default server).
func TestResolveErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := stackhost.Start("emu:hostopen-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(conf, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644)
	os.WriteFile(hosts, []byte("10.1.2.3 known.lab known\n"), 0o644)
	env := map[string]string{"STACKBOX_RESOLV_CONF": conf, "STACKBOX_HOSTS": hosts}
	getenv := func(k string) string { return env[k] }
	a, canon, err := Resolve(ctx, h, getenv, "known", 0)
	if err != nil || a != netip.MustParseAddr("10.1.2.3") || canon != "known" {
		t.Errorf("hosts file: %v %q %v", a, canon, err)
	}
	if _, _, err := Resolve(ctx, h, getenv, "nosuch.lab", 0); err == nil || err.Error() != "Temporary failure in name resolution" {
		t.Errorf("no server answers: %v", err)
	}
	if _, _, err := Resolve(ctx, h, getenv, "known", syscall.AF_INET6); err == nil || err.Error() != "Address family for hostname not supported" {
		t.Errorf("IPv4-only name asked for IPv6: %v", err)
	}
	if n, err := ReverseName(ctx, h, getenv, netip.MustParseAddr("10.1.2.3")); err != nil || n != "known.lab" {
		t.Errorf("reverse from the hosts file: %q, %v", n, err)
	}
}
