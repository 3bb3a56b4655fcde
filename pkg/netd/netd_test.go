package netd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

var rootCred = func(net.Conn) (Cred, error) { return Cred{UID: 0, GID: 0, PID: 1}, nil }

func userCred(uid, gid uint32, groups ...uint32) func(net.Conn) (Cred, error) {
	return func(net.Conn) (Cred, error) { return Cred{UID: uid, GID: gid, Groups: groups, PID: 4321}, nil }
}

// serve starts a Server for h on a socket in a temporary directory and
// returns the socket's path; the server is shut down at the end of the test.
func serve(t *testing.T, h host.Host, opts ServerOptions) (string, *Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netd.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return path, s
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// raw sends one HTTP request on the socket the way curl does and returns
// the status and the body.
func raw(t *testing.T, path, method, target, body string) (int, string, http.Header) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := method + " " + target + " HTTP/1.1\r\nHost: netd\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n"
	if body != "" {
		req += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	}
	req += "\r\n" + body
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("%s over the socket:\n got %s\nwant %s", what, gb, wb)
	}
}

// TestRoundTrip calls every host.Host method through the socket and checks
// that the answers equal the host's own and the changes reach the host.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	path, _ := serve(t, h, ServerOptions{PeerCred: rootCred})
	c := dial(t, path)

	check := func(what string, got any, gotErr error, want any, wantErr error) {
		t.Helper()
		if gotErr != nil || wantErr != nil {
			t.Fatalf("%s: client error %v, host error %v", what, gotErr, wantErr)
		}
		same(t, what, got, want)
	}
	ifs, err := c.Interfaces(ctx)
	hifs, herr := h.Interfaces(ctx)
	check("Interfaces", ifs, err, hifs, herr)
	if len(ifs) != 2 {
		t.Fatalf("Interfaces: %d, want 2", len(ifs))
	}
	ifc, err := c.Interface(ctx, "eth0")
	hifc, herr := h.Interface(ctx, "eth0")
	check("Interface eth0", ifc, err, hifc, herr)
	rts, err := c.Routes(ctx)
	hrts, herr := h.Routes(ctx)
	check("Routes", rts, err, hrts, herr)
	ns, err := c.Neighbors(ctx)
	hns, herr := h.Neighbors(ctx)
	check("Neighbors", ns, err, hns, herr)
	ss, err := c.Sockets(ctx)
	hss, herr := h.Sockets(ctx)
	check("Sockets", ss, err, hss, herr)
	cs, err := c.Counters(ctx)
	hcs, herr := h.Counters(ctx)
	check("Counters", cs, err, hcs, herr)

	// Mutations, then the host's state.
	p := netip.MustParsePrefix("192.168.7.1/24")
	bc := netip.MustParseAddr("192.168.7.255")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("AddAddress", c.AddAddress(ctx, "eth0", p, bc))
	must("AddAddress v6", c.AddAddress(ctx, "eth0", netip.MustParsePrefix("fd00::2/64"), netip.Addr{}))
	must("AddAddress alias", c.AddAddress(ctx, "eth0:1", netip.MustParsePrefix("10.0.0.9/24"), netip.MustParseAddr("10.0.0.255")))
	must("SetMTU", c.SetMTU(ctx, "eth0", 1400))
	must("SetMAC", c.SetMAC(ctx, "eth0", "02:00:00:00:00:99"))
	must("SetPromisc", c.SetPromisc(ctx, "eth0", true))
	must("SetUp false", c.SetUp(ctx, "eth0", false))
	rt := host.Route{Dst: netip.MustParsePrefix("172.16.0.0/12"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0", Metric: 5}
	must("AddRoute", c.AddRoute(ctx, rt))
	nb := host.Neighbor{Addr: netip.MustParseAddr("fe80::1%eth0"), MAC: "02:00:00:00:00:aa", Dev: "eth0", Proxy: true}
	must("AddNeighbor", c.AddNeighbor(ctx, nb))

	hifc, _ = h.Interface(ctx, "eth0")
	if hifc.MTU != 1400 || hifc.MAC != "02:00:00:00:00:99" || hifc.Flags&host.FlagPromisc == 0 || hifc.Flags&host.FlagUp != 0 {
		t.Errorf("eth0 after PATCHes: mtu %d mac %s flags %#x", hifc.MTU, hifc.MAC, hifc.Flags)
	}
	want := []host.Addr{
		{Prefix: netip.MustParsePrefix("10.0.0.2/24"), Broadcast: netip.MustParseAddr("10.0.0.255"), Scope: "global"},
		{Prefix: p, Broadcast: bc, Scope: "global"},
		{Prefix: netip.MustParsePrefix("fd00::2/64"), Scope: "global"},
	}
	same(t, "eth0 addresses", hifc.Addrs, want)
	// The alias name survived the URL path: the host labelled the address.
	alias, err := c.Interface(ctx, "eth0:1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "eth0:1 addresses", alias.Addrs, []host.Addr{{Prefix: netip.MustParsePrefix("10.0.0.9/24"), Broadcast: netip.MustParseAddr("10.0.0.255"), Scope: "global", Label: "eth0:1"}})
	ifs, _ = c.Interfaces(ctx)
	hifs, _ = h.Interfaces(ctx)
	same(t, "Interfaces with an alias", ifs, hifs)

	hrts, _ = h.Routes(ctx)
	if got := hrts[len(hrts)-1]; got.Dst != rt.Dst || got.Gateway != rt.Gateway || got.Dev != rt.Dev || got.Metric != rt.Metric {
		t.Errorf("route added as %+v, want %+v", got, rt)
	}
	hns, _ = h.Neighbors(ctx)
	if got := hns[len(hns)-1]; got.Addr != nb.Addr || got.MAC != nb.MAC || got.Dev != nb.Dev || !got.Proxy {
		t.Errorf("neighbor added as %+v, want %+v", got, nb)
	}

	must("DelAddress", c.DelAddress(ctx, "eth0", p.Addr()))
	must("DelAddress v6", c.DelAddress(ctx, "eth0", netip.MustParseAddr("fd00::2")))
	must("DelAddress alias", c.DelAddress(ctx, "eth0:1", netip.MustParseAddr("10.0.0.9")))
	must("DelRoute", c.DelRoute(ctx, host.Route{Dst: rt.Dst, Metric: 5}))
	must("DelNeighbor", c.DelNeighbor(ctx, "eth0", nb.Addr))
	must("SetUp true", c.SetUp(ctx, "eth0", true))
	hifc, _ = h.Interface(ctx, "eth0")
	same(t, "eth0 addresses after deletes", hifc.Addrs, want[:1])
	if hifc.Flags&host.FlagUp == 0 {
		t.Error("eth0 still down after SetUp true")
	}
	hrts, _ = h.Routes(ctx)
	same(t, "routes after DelRoute", hrts, newMemHost().routes)
	hns, _ = h.Neighbors(ctx)
	same(t, "neighbors after DelNeighbor", hns, newMemHost().neigh)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Interfaces(ctx); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Interfaces after Close: %v, want EBADF", err)
	}
}

// TestErrnoAcrossSocket checks that a host's errors arrive as the same
// *host.Error, with the HTTP status of their errno.
func TestErrnoAcrossSocket(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	path, _ := serve(t, h, ServerOptions{PeerCred: rootCred})
	c := dial(t, path)
	cases := []struct {
		name   string
		errno  syscall.Errno
		status int
		call   func(host.Host) error
		rawReq [3]string // method, target, body: the same call as curl sends it
	}{
		{"unknown interface", syscall.ENODEV, 404, func(h host.Host) error { _, err := h.Interface(ctx, "eth9"); return err },
			[3]string{"GET", "/v1/interfaces/eth9", ""}},
		{"slash in a name", syscall.ENODEV, 404, func(h host.Host) error { _, err := h.Interface(ctx, "a/b"); return err },
			[3]string{"GET", "/v1/interfaces/a%2Fb", ""}},
		{"duplicate address", syscall.EEXIST, 409, func(h host.Host) error {
			return h.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
		}, [3]string{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.2/24"}`}},
		{"missing route", syscall.ESRCH, 404, func(h host.Host) error {
			return h.DelRoute(ctx, host.Route{Dst: netip.MustParsePrefix("192.168.0.0/16")})
		}, [3]string{"DELETE", "/v1/routes?dst=192.168.0.0/16", ""}},
		{"host refuses", syscall.EPERM, 403, func(h host.Host) error { return h.SetMAC(ctx, "lo", "02:00:00:00:00:01") },
			[3]string{"PATCH", "/v1/interfaces/lo", `{"mac":"02:00:00:00:00:01"}`}},
		{"missing neighbor", syscall.ENXIO, 404, func(h host.Host) error { return h.DelNeighbor(ctx, "eth0", netip.MustParseAddr("10.9.9.9")) },
			[3]string{"DELETE", "/v1/neighbors/eth0/10.9.9.9", ""}},
		{"bad mtu", syscall.EINVAL, 400, func(h host.Host) error { return h.SetMTU(ctx, "eth0", 10) },
			[3]string{"PATCH", "/v1/interfaces/eth0", `{"mtu":10}`}},
		{"missing address", syscall.EADDRNOTAVAIL, 404, func(h host.Host) error { return h.DelAddress(ctx, "eth0", netip.MustParseAddr("10.1.1.1")) },
			[3]string{"DELETE", "/v1/interfaces/eth0/addresses/10.1.1.1", ""}},
		{"route on unknown dev", syscall.ENODEV, 404, func(h host.Host) error {
			return h.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.5.0.0/16"), Dev: "eth7"})
		}, [3]string{"POST", "/v1/routes", `{"dst":"10.5.0.0/16","dev":"eth7","metric":0}`}},
	}
	before := h.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.call(h)
			got := tc.call(c)
			if !errors.Is(got, tc.errno) {
				t.Fatalf("client error %v (%T), want errno %v", got, got, tc.errno)
			}
			same(t, "error", got, want)
			var he *host.Error
			if !errors.As(got, &he) {
				t.Fatalf("client error %T is not a *host.Error", got)
			}
			status, body, hdr := raw(t, path, tc.rawReq[0], tc.rawReq[1], tc.rawReq[2])
			if status != tc.status {
				t.Errorf("status %d, want %d (body %s)", status, tc.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var wire host.Error
			if err := json.Unmarshal([]byte(body), &wire); err != nil || wire.Errno != tc.errno || wire.Msg != want.Error() {
				t.Errorf("body %s (%v), want errno %d and message %q", body, err, tc.errno, want.Error())
			}
		})
	}
	if after := h.snapshot(); after != before {
		t.Errorf("failed calls changed the host:\n%s\n%s", before, after)
	}
}

// mutations are one successful call of every mutating method.
var mutations = []struct {
	name string
	call func(context.Context, host.Host) error
}{
	{"AddAddress", func(ctx context.Context, h host.Host) error {
		return h.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.0.0.77/24"), netip.Addr{})
	}},
	{"DelAddress", func(ctx context.Context, h host.Host) error {
		return h.DelAddress(ctx, "eth0", netip.MustParseAddr("10.0.0.2"))
	}},
	{"SetUp", func(ctx context.Context, h host.Host) error { return h.SetUp(ctx, "eth0", false) }},
	{"SetMTU", func(ctx context.Context, h host.Host) error { return h.SetMTU(ctx, "eth0", 1280) }},
	{"SetMAC", func(ctx context.Context, h host.Host) error { return h.SetMAC(ctx, "eth0", "02:00:00:00:00:42") }},
	{"SetPromisc", func(ctx context.Context, h host.Host) error { return h.SetPromisc(ctx, "eth0", true) }},
	{"AddRoute", func(ctx context.Context, h host.Host) error {
		return h.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("10.8.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.1")})
	}},
	{"DelRoute", func(ctx context.Context, h host.Host) error {
		return h.DelRoute(ctx, host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0")})
	}},
	{"AddNeighbor", func(ctx context.Context, h host.Host) error {
		return h.AddNeighbor(ctx, host.Neighbor{Addr: netip.MustParseAddr("10.0.0.50"), MAC: "02:00:00:00:00:50", Dev: "eth0"})
	}},
	{"DelNeighbor", func(ctx context.Context, h host.Host) error {
		return h.DelNeighbor(ctx, "eth0", netip.MustParseAddr("10.0.0.1"))
	}},
}

func readAll(t *testing.T, c host.Host) {
	t.Helper()
	ctx := context.Background()
	if ifs, err := c.Interfaces(ctx); err != nil || len(ifs) == 0 {
		t.Errorf("Interfaces: %v, %v", ifs, err)
	}
	if _, err := c.Interface(ctx, "eth0"); err != nil {
		t.Errorf("Interface: %v", err)
	}
	if rs, err := c.Routes(ctx); err != nil || len(rs) == 0 {
		t.Errorf("Routes: %v, %v", rs, err)
	}
	if ns, err := c.Neighbors(ctx); err != nil || len(ns) == 0 {
		t.Errorf("Neighbors: %v, %v", ns, err)
	}
	if ss, err := c.Sockets(ctx); err != nil || len(ss) == 0 {
		t.Errorf("Sockets: %v, %v", ss, err)
	}
	if cs, err := c.Counters(ctx); err != nil || len(cs) == 0 {
		t.Errorf("Counters: %v, %v", cs, err)
	}
}

// TestNonRootPeer: an ordinary user may read everything and change
// nothing; each refusal is EPERM with a clear message, and the host is
// unchanged.
func TestNonRootPeer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       ServerOptions
		msg        string
		ownSockets bool // the peer is uid 1000, which owns a socket
	}{
		{"root only", ServerOptions{PeerCred: userCred(1000, 1000)}, "configuration needs root; you are uid 1000", true},
		{"not in the admin group", ServerOptions{AdminGID: 4242, PeerCred: userCred(1000, 1000, 5, 27)}, "configuration needs root or group 4242", true},
		{"credentials unreadable", ServerOptions{PeerCred: func(net.Conn) (Cred, error) { return Cred{}, errors.New("no SO_PEERCRED") }},
			"cannot read peer credentials: no SO_PEERCRED", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newMemHost()
			path, _ := serve(t, h, tc.opts)
			c := dial(t, path)
			before := h.snapshot()
			readAll(t, c)
			for _, m := range mutations {
				err := m.call(ctx, c)
				if !errors.Is(err, syscall.EPERM) {
					t.Errorf("%s: %v, want EPERM", m.name, err)
					continue
				}
				if !strings.Contains(err.Error(), "Operation not permitted") || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("%s: message %q, want Operation not permitted and %q", m.name, err, tc.msg)
				}
			}
			if after := h.snapshot(); after != before {
				t.Errorf("refused mutations changed the host:\n%s\n%s", before, after)
			}
			// Other users' processes stay unnamed, as netstat -p shows them.
			socks, err := c.Sockets(ctx)
			if err != nil || len(socks) != 3 || socks[0].PID != 0 || socks[0].Program != "" || socks[0].Inode != 42 {
				t.Errorf("Sockets as a user: %+v, %v; want root's sshd without pid and program", socks, err)
			} else if own := socks[2].PID == 77 && socks[2].Program == "nc"; own != tc.ownSockets {
				t.Errorf("Sockets as a user: own socket %+v, want its process named: %v", socks[2], tc.ownSockets)
			}
			status, body, _ := raw(t, path, "PATCH", "/v1/interfaces/eth0", `{"up":false}`)
			if status != http.StatusForbidden || !strings.Contains(body, `"errno":1,`) {
				t.Errorf("raw PATCH as a user: %d %s, want 403 errno 1", status, body)
			}
		})
	}
}

// TestAdminGroup: members of AdminGID, by primary or supplementary group,
// may configure.
func TestAdminGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		cred func(net.Conn) (Cred, error)
	}{
		{"supplementary", userCred(1000, 1000, 27, 4242)},
		{"primary", userCred(1000, 4242)},
		{"root", rootCred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newMemHost()
			path, _ := serve(t, h, ServerOptions{AdminGID: 4242, PeerCred: tc.cred})
			c := dial(t, path)
			for _, m := range mutations {
				if err := m.call(ctx, c); err != nil {
					t.Errorf("%s: %v", m.name, err)
				}
			}
			ifc, _ := h.Interface(ctx, "eth0")
			if ifc.MTU != 1280 {
				t.Errorf("eth0 MTU %d after SetMTU 1280", ifc.MTU)
			}
		})
	}
}

// TestPeerCred reads the real SO_PEERCRED: our own uid, gid and pid, and
// the default server lets root configure and refuses others.
func TestPeerCred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("unix", path)
		if err == nil {
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cred, err := PeerCredOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	if cred.UID != uint32(os.Getuid()) || cred.GID != uint32(os.Getgid()) || cred.PID != int32(os.Getpid()) {
		t.Errorf("PeerCredOf: %+v, want uid %d gid %d pid %d", cred, os.Getuid(), os.Getgid(), os.Getpid())
	}
	if groups, err := os.Getgroups(); err == nil && cred.Groups != nil {
		var want []uint32
		for _, g := range groups {
			want = append(want, uint32(g))
		}
		got := slices.Clone(cred.Groups)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("SO_PEERGROUPS %v, want %v", got, want)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := PeerCredOf(a); err == nil {
		t.Error("PeerCredOf(net.Pipe) has credentials")
	}

	// The default credential source, end to end.
	h := newMemHost()
	spath, _ := serve(t, h, ServerOptions{})
	c := dial(t, spath)
	err = c.SetMTU(context.Background(), "eth0", 1400)
	if os.Getuid() == 0 {
		if err != nil {
			t.Errorf("SetMTU as root: %v", err)
		}
	} else if !errors.Is(err, syscall.EPERM) {
		t.Errorf("SetMTU as uid %d: %v, want EPERM", os.Getuid(), err)
	}
}

func TestListen(t *testing.T) {
	t.Run("creates directory and socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "run", "stackbox", "netd.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Dir(path))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("directory: %v %v", fi.Mode(), err)
		}
		fi, err = os.Stat(path)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
			t.Errorf("socket: %v %v, want a 0666 socket", fi.Mode(), err)
		}
		l.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after Close: %v", err)
		}
	})
	t.Run("refuses a live netd", func(t *testing.T) {
		h := newMemHost()
		path, _ := serve(t, h, ServerOptions{PeerCred: rootCred})
		l, err := Listen(path)
		if err == nil {
			l.Close()
			t.Fatal("second Listen on a live socket succeeded")
		}
		want := "netd already running on " + path + " (pid " + strconv.Itoa(os.Getpid()) + ")"
		if !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("error %q, want %q and EADDRINUSE", err, want)
		}
		dial(t, path) // the first server still answers
	})
	t.Run("refuses another server", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.sock")
		other, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		go func() {
			for {
				c, err := other.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		_, err = Listen(path)
		if err == nil || !strings.Contains(err.Error(), "another netd is serving "+path) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("Listen over a live non-netd socket: %v", err)
		}
	})
	t.Run("replaces a stale socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "netd.sock")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close()
		if _, err := net.Dial("unix", path); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("stale socket: dial %v, want ECONNREFUSED", err)
		}
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		s := NewServer(newMemHost(), ServerOptions{})
		go s.Serve(l)
		defer s.Close()
		dial(t, path)
	})
	t.Run("keeps a file that is not a socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "netd.sock")
		if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path); !errors.Is(err, syscall.EEXIST) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen over a regular file: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "precious" {
			t.Error("Listen clobbered a regular file")
		}
	})
}

func TestDialUnreachable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.sock")
	start := time.Now()
	_, err := Dial(context.Background(), missing)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Dial to a missing socket took %v", el)
	}
	want := "cannot reach netd at " + missing + ": no such file or directory (is `stackbox netd` running? or use --link SPEC)"
	if err == nil || err.Error() != want || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Dial missing: %v\nwant %s (ENOENT)", err, want)
	}

	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	_, err = Dial(context.Background(), stale)
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "cannot reach netd at "+stale+": connection refused") {
		t.Errorf("Dial stale: %v, want ECONNREFUSED", err)
	}

	// A server that accepts and never answers.
	mute := filepath.Join(dir, "mute.sock")
	ml, err := net.Listen("unix", mute)
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	go func() {
		for {
			c, err := ml.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	defer func(d time.Duration) { dialTimeout = d }(dialTimeout)
	dialTimeout = 100 * time.Millisecond
	start = time.Now()
	_, err = Dial(context.Background(), mute)
	if err == nil || !errors.Is(err, syscall.ETIMEDOUT) || !strings.Contains(err.Error(), "cannot reach netd at "+mute+": timed out") {
		t.Errorf("Dial a mute server: %v, want ETIMEDOUT", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Dial a mute server took %v", el)
	}

	// An HTTP server that is not netd.
	other := filepath.Join(dir, "other.sock")
	l, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	go hs.Serve(l)
	defer hs.Close()
	_, err = Dial(context.Background(), other)
	if err == nil || !errors.Is(err, syscall.EPROTO) || !strings.Contains(err.Error(), "does not speak the netd protocol") {
		t.Errorf("Dial a non-netd server: %v, want EPROTO", err)
	}
}

// TestBadRequests: malformed bodies and path values answer 400 EINVAL (404
// EOPNOTSUPP for an unknown endpoint) as JSON, and change nothing.
func TestBadRequests(t *testing.T) {
	h := newMemHost()
	path, _ := serve(t, h, ServerOptions{PeerCred: rootCred})
	before := h.snapshot()
	for _, tc := range []struct{ method, target, body string }{
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":`},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.300/24"}`},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.5"}`},
		{"POST", "/v1/interfaces/eth0/addresses", `{}`},
		{"POST", "/v1/interfaces/eth0/addresses", ``},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.5/24","bogus":1}`},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.5/24"} {}`},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.5/24","broadcast":"fe80::1"}`},
		{"POST", "/v1/interfaces/eth0/addresses", `{"prefix":"10.0.0.5/24","pad":"` + strings.Repeat("x", maxBody) + `"}`},
		{"PATCH", "/v1/interfaces/eth0", `{}`},
		{"PATCH", "/v1/interfaces/eth0", `{"mtu":"big"}`},
		{"PATCH", "/v1/interfaces/eth0", `[1]`},
		{"POST", "/v1/routes", `{"dst":"nonsense"}`},
		{"POST", "/v1/routes", `{"gateway":"10.0.0.1"}`},
		{"DELETE", "/v1/routes", `{"dst":"10.0.0.0/33"}`},
		{"DELETE", "/v1/routes?dst=bad", ``},
		{"DELETE", "/v1/routes?dst=0.0.0.0/0&metric=-1", ``},
		{"DELETE", "/v1/routes?dst=0.0.0.0/0&via=x", ``},
		{"POST", "/v1/neighbors", `{"addr":"10.0.0.1.1","dev":"eth0"}`},
		{"POST", "/v1/neighbors", `{"dev":"eth0"}`},
		{"DELETE", "/v1/neighbors/eth0/notanip", ``},
		{"DELETE", "/v1/interfaces/eth0/addresses/10.0.0.2%2F24", ``},
	} {
		status, body, hdr := raw(t, path, tc.method, tc.target, tc.body)
		var e host.Error
		if status != http.StatusBadRequest || hdr.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &e) != nil || e.Errno != syscall.EINVAL || !strings.HasPrefix(e.Msg, "netd: ") {
			t.Errorf("%s %s %.60q: %d %s, want 400 with errno 22", tc.method, tc.target, tc.body, status, body)
		}
	}
	for _, tc := range []struct{ method, target string }{
		{"GET", "/v1/nothing"}, {"PUT", "/v1/routes"}, {"GET", "/"}, {"POST", "/v1/interfaces"},
	} {
		status, body, _ := raw(t, path, tc.method, tc.target, "")
		var e host.Error
		if status != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || e.Errno != syscall.EOPNOTSUPP {
			t.Errorf("%s %s: %d %s, want 404 EOPNOTSUPP", tc.method, tc.target, status, body)
		}
	}
	if after := h.snapshot(); after != before {
		t.Errorf("bad requests changed the host:\n%s\n%s", before, after)
	}
}

// TestCurl: the API answers plain HTTP/1.x JSON, as curl --unix-socket
// sees it, and a route can be deleted with a query.
func TestCurl(t *testing.T) {
	h := newMemHost()
	path, _ := serve(t, h, ServerOptions{PeerCred: rootCred})
	status, body, hdr := raw(t, path, "GET", "/v1/interfaces", "")
	var ifs []host.Interface
	if status != 200 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &ifs) != nil || len(ifs) != 2 || ifs[1].Name != "eth0" {
		t.Fatalf("GET /v1/interfaces: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	if !strings.Contains(body, `"prefix":"10.0.0.2/24"`) || !strings.Contains(body, `"broadcast":"10.0.0.255"`) {
		t.Errorf("addresses not in their text form: %s", body)
	}
	status, body, _ = raw(t, path, "GET", "/v1/version", "")
	var v Version
	if status != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Name != "stackbox netd" || v.API != 1 || v.PID != os.Getpid() {
		t.Errorf("GET /v1/version: %d %s", status, body)
	}
	q := routeQuery(host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0"})
	status, body, _ = raw(t, path, "DELETE", "/v1/routes?"+q.Encode(), "")
	if status != http.StatusNoContent || body != "" {
		t.Errorf("DELETE /v1/routes?%s: %d %s", q.Encode(), status, body)
	}
	if rs, _ := h.Routes(context.Background()); len(rs) != 1 {
		t.Errorf("routes after the DELETE: %+v", rs)
	}

	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("no curl in PATH; raw HTTP only")
		return
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--unix-socket", path}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("http://netd/v1/interfaces/eth0")
	var ifc host.Interface
	if json.Unmarshal([]byte(out), &ifc) != nil || ifc.Name != "eth0" {
		t.Errorf("curl GET eth0: %s", out)
	}
	run("-X", "POST", "-d", `{"prefix":"10.0.0.9/24","broadcast":"10.0.0.255"}`, "http://netd/v1/interfaces/eth0:1/addresses")
	out = run("http://netd/v1/interfaces/eth0:1")
	if json.Unmarshal([]byte(out), &ifc) != nil || ifc.Name != "eth0:1" || len(ifc.Addrs) != 1 || ifc.Addrs[0].Label != "eth0:1" {
		t.Errorf("curl GET eth0:1: %s", out)
	}
	run("-X", "PATCH", "-d", `{"mtu":1400,"up":false}`, "http://netd/v1/interfaces/eth0")
	if ifc, _ := h.Interface(context.Background(), "eth0"); ifc.MTU != 1400 || ifc.Flags&host.FlagUp != 0 {
		t.Errorf("after curl PATCH: mtu %d flags %#x", ifc.MTU, ifc.Flags)
	}
	out = run("-w", "%{http_code}", "http://netd/v1/interfaces/eth5")
	if !strings.HasSuffix(out, "404") || !strings.Contains(out, `"errno":19`) {
		t.Errorf("curl GET eth5: %s", out)
	}
}

// TestShutdownGraceful: Shutdown stops new connections at once and lets
// the request in flight finish.
func TestShutdownGraceful(t *testing.T) {
	h := newMemHost()
	h.block, h.entered = make(chan struct{}), make(chan struct{})
	path := filepath.Join(t.TempDir(), "netd.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, ServerOptions{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan error, 1)
	go func() {
		ifs, err := c.Interfaces(context.Background())
		if err == nil && len(ifs) != 2 {
			err = errors.New("wrong answer")
		}
		got <- err
	}()
	<-h.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The listener closes (and its file goes) before Shutdown waits.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket file still there after Shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := Dial(context.Background(), path); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Dial during Shutdown: %v, want ENOENT", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.block)
	if err := <-got; err != nil {
		t.Errorf("request in flight during Shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p := SocketPath(getenv); p != "/run/stackbox/netd.sock" {
		t.Errorf("default %q", p)
	}
	env["STACKBOX_SOCKET"] = "/tmp/x/netd.sock"
	if p := SocketPath(getenv); p != "/tmp/x/netd.sock" {
		t.Errorf("with STACKBOX_SOCKET: %q", p)
	}
	if p := SocketPath(nil); p != DefaultSocket {
		t.Errorf("nil getenv: %q", p)
	}
}

func TestStatusOf(t *testing.T) {
	for errno, status := range map[syscall.Errno]int{
		syscall.EINVAL: 400, syscall.EPERM: 403, syscall.EACCES: 403, syscall.ENODEV: 404, syscall.ESRCH: 404,
		syscall.ENXIO: 404, syscall.EEXIST: 409, syscall.EIO: 500, syscall.EBUSY: 500,
	} {
		if got := StatusOf(errno); got != status {
			t.Errorf("StatusOf(%v) = %d, want %d", errno, got, status)
		}
	}
	// Errors without an errno travel as EIO; context errors keep their meaning.
	for err, want := range map[error]syscall.Errno{
		errors.New("plain"):                    syscall.EIO,
		context.Canceled:                       syscall.ECANCELED,
		context.DeadlineExceeded:               syscall.ETIMEDOUT,
		&os.SyscallError{Err: syscall.ENOBUFS}: syscall.ENOBUFS,
	} {
		if he := asHostError(err); he.Errno != want || he.Msg != err.Error() {
			t.Errorf("asHostError(%v) = %+v, want errno %v", err, he, want)
		}
	}
}

// TestRealCredentials runs curl as other users (root can set a child's
// uid, gid and groups) against a server with the default credential
// source: SO_PEERCRED and SO_PEERGROUPS decide, and every user may read.
func TestRealCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run clients as other users")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl")
	}
	h := newMemHost()
	path, _ := serve(t, h, ServerOptions{AdminGID: 4242})
	// Let other users reach the socket through the temporary directories.
	for d := filepath.Dir(path); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	as := func(uid, gid uint32, groups []uint32, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(curl, append([]string{"-q", "-sS", "-w", " %{http_code}", "--unix-socket", path}, args...)...)
		cmd.Env = []string{"HOME=/", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl as %d:%d%v: %v\n%s", uid, gid, groups, err, out)
		}
		s := string(out)
		i := strings.LastIndex(s, " ")
		return s[i+1:], s[:max(i, 0)]
	}
	mtu := func() int { ifc, _ := h.Interface(context.Background(), "eth0"); return ifc.MTU }
	patch := func(n int) []string {
		return []string{"-X", "PATCH", "-d", `{"mtu":` + strconv.Itoa(n) + `}`, "http://netd/v1/interfaces/eth0"}
	}
	if code, body := as(1000, 1000, nil, "http://netd/v1/interfaces"); code != "200" || !strings.Contains(body, `"eth0"`) {
		t.Errorf("GET as uid 1000: %s %s", code, body)
	}
	if code, body := as(1000, 1000, []uint32{5}, patch(1300)...); code != "403" || !strings.Contains(body, `"errno":1,`) || mtu() != 1500 {
		t.Errorf("PATCH as uid 1000 outside group 4242: %s %s, mtu %d", code, body, mtu())
	}
	if code, body := as(1000, 1000, []uint32{5, 4242}, patch(1300)...); code != "204" || mtu() != 1300 {
		t.Errorf("PATCH as uid 1000 with supplementary group 4242: %s %s, mtu %d", code, body, mtu())
	}
	if code, body := as(1000, 4242, nil, patch(1280)...); code != "204" || mtu() != 1280 {
		t.Errorf("PATCH as uid 1000 with primary group 4242: %s %s, mtu %d", code, body, mtu())
	}
}
