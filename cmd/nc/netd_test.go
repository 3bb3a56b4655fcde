package nc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/netd"
)

// nc through netd as an unprivileged user: a client to a listener on the
// peer and a listener in netd's stack that the peer's nc connects to,
// with netstat's view naming the client process; port 80 is refused as
// on Linux without CAP_NET_BIND_SERVICE.
func TestThroughNetd(t *testing.T) {
	a, b := pair(t, 79)
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

	// Client through netd → listener on the peer.
	lp := start(t, b, strings.NewReader(""), "-lvn", "5001")
	waitListen(t, b, "tcp", 5001)
	r := runNC(t, c, "through netd\n", "-vn", "-N", "10.79.0.2", "5001")
	if r.status != 0 || r.err != "Connection to 10.79.0.2 5001 port [tcp/*] succeeded!\n" {
		t.Errorf("client via netd: exit %d, stderr %q", r.status, r.err)
	}
	if got := lp.wait(t, 10*time.Second, "peer listener"); got.out != "through netd\n" ||
		!regexp.MustCompile(`Connection received on 10\.79\.0\.1 \d+\n$`).MatchString(got.err) {
		t.Errorf("peer listener: %+v", got)
	}

	// Listener through netd ← the peer's client.
	ln := start(t, c, strings.NewReader(""), "-lvn", "5002")
	waitListen(t, a, "tcp", 5002)
	socks, err := c.Sockets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	owned := false
	for _, s := range socks {
		if s.Local.Port() == 5002 && s.State == "LISTEN" {
			owned = s.PID == os.Getpid() && s.UID == 1000
		}
	}
	if !owned {
		t.Errorf("netd's listener on 5002 is not owned by pid %d uid 1000: %+v", os.Getpid(), socks)
	}
	r = runNC(t, b, "to netd's stack\n", "-N", "10.79.0.1", "5002")
	if r.status != 0 {
		t.Errorf("peer client: %+v", r)
	}
	if got := ln.wait(t, 10*time.Second, "listener via netd"); got.status != 0 || got.out != "to netd's stack\n" {
		t.Errorf("listener via netd: %+v", got)
	}

	r = runNC(t, c, "", "-l", "80")
	if r.status != 1 || !strings.Contains(r.err, "Permission denied") {
		t.Errorf("nc -l 80 as uid 1000: %+v", r)
	}
}
