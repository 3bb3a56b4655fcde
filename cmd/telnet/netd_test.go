package telnet

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/netd"
)

// telnet through netd as an unprivileged user: negotiation answered and
// data both ways over a connection netd's stack holds for the client.
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

	done := serve(t, b, "10.79.0.2:2323", func(conn net.Conn) error {
		conn.Write(iac(255, 253, 24, 255, 250, 24, 1, 255, 240))
		if err := expect(conn, "TTYPE", iac(255, 251, 24, 255, 250, 24, 0, "XTERM", 255, 240)); err != nil {
			return err
		}
		conn.Write([]byte("welcome\r\n"))
		return expect(conn, "typed", []byte("hi\r\n"))
	})
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, c, Config{}, stdin, map[string]string{"TERM": "xterm"}, "10.79.0.2", "2323")
	waitOutput(t, p, "welcome\n", "via netd")
	w.Write([]byte("hi\n"))
	waitErr(t, done, "via netd")
	r := p.wait(t, 10*time.Second, "telnet via netd")
	if r.status != 0 || r.out != banner("10.79.0.2", "10.79.0.2")+"welcome\n" || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("via netd: %+v", r)
	}
}
