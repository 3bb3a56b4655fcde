package wget

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stackbox/stackbox/pkg/netd"
)

// wget through netd as an unprivileged user: the same download over the
// daemon's client (host.Net on its socket) as over a private stack.
func TestThroughNetd(t *testing.T) {
	a, b := pair(t, 39)
	serve(t, b, "10.39.0.2:80", handlers())
	sock := filepath.Join(t.TempDir(), "netd.sock")
	l, err := netd.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	user := func(net.Conn) (netd.Cred, error) {
		return netd.Cred{UID: 1000, GID: 1000, PID: int32(os.Getpid())}, nil
	}
	srv := netd.NewServer(a, netd.ServerOptions{PeerCred: user})
	go srv.Serve(l)
	defer srv.Close()
	c, err := netd.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	out := filepath.Join(t.TempDir(), "big")
	r := runWget(t, c, "-nv", "-O", out, "http://10.39.0.2/big200k.txt")
	got, _ := os.ReadFile(out)
	if r.status != 0 || string(got) != bigBody() {
		t.Errorf("through netd: exit %d, %d bytes, %q", r.status, len(got), r.err)
	}
	if r := runWget(t, c, "http://10.39.0.2:81/"); r.status != 4 {
		t.Errorf("refused through netd: %+v", r)
	}
}
