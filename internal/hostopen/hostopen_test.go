package hostopen

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
