package telnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/applettest"
	"github.com/stackbox/stackbox/pkg/host"
)

// The shared applet-test scaffolding (internal/applettest).
var (
	opener = applettest.Opener
	pair   = applettest.Pair
)

type syncBuf = applettest.SyncBuf

type result struct {
	out, err string
	status   int
}

// proc is a telnet running in the background.
type proc struct {
	out, err syncBuf
	status   int
	done     chan struct{}
	cancel   context.CancelFunc
}

// start runs telnet on h in the background (cancelled after 30 s at
// the latest); env holds its environment variables.
func start(t *testing.T, h host.Host, cfg Config, stdin io.Reader, env map[string]string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p := &proc{done: make(chan struct{}), cancel: cancel}
	e := &applet.Env{Stdin: stdin, Stdout: &p.out, Stderr: &p.err, Getenv: func(k string) string { return env[k] }}
	go func() {
		defer close(p.done)
		p.status = New(opener(h), cfg).Main(ctx, e, append([]string{"telnet"}, args...))
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// wait waits for p to exit by itself, failing the test after d.
func (p *proc) wait(t *testing.T, d time.Duration, what string) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cancel()
		<-p.done
		t.Fatalf("%s: still running after %v; stdout %q stderr %q", what, d, p.out.String(), p.err.String())
	}
	return result{p.out.String(), p.err.String(), p.status}
}

// waitOutput waits (at most 10 s) until p's stdout contains s.
func waitOutput(t *testing.T, p *proc, s, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("%s: exited before %q; stdout %q stderr %q", what, s, p.out.String(), p.err.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not seen in 10 s; stdout %q stderr %q", what, s, p.out.String(), p.err.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runTelnet runs telnet to completion (at most 20 s) with stdin.
func runTelnet(t *testing.T, h host.Host, stdin string, args ...string) result {
	t.Helper()
	return start(t, h, Config{}, strings.NewReader(stdin), nil, args...).wait(t, 20*time.Second, strings.Join(args, " "))
}

// serve accepts one connection on h's port and runs fn on it; the
// returned channel has fn's error.
func serve(t *testing.T, h host.Host, addr string, fn func(c net.Conn) error) <-chan error {
	t.Helper()
	ln, err := h.Listen(context.Background(), "tcp4", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	res := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			res <- err
			return
		}
		defer c.Close()
		res <- fn(c)
	}()
	return res
}

// expect reads exactly len(want) bytes (within 5 s) and compares them.
func expect(c net.Conn, what string, want []byte) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil {
		return fmt.Errorf("%s: read %v after %q: %v", what, want, got[:n], err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: client sent %v, want %v", what, got, want)
	}
	return nil
}

// quiet checks that the client sends nothing for d.
func quiet(c net.Conn, what string, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if n > 0 {
		return fmt.Errorf("%s: client sent %v", what, b[:n])
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return fmt.Errorf("%s: read: %v", what, err)
	}
	return nil
}

func waitErr(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: server still running after 20 s", what)
	}
}

func banner(addr, name string) string {
	return fmt.Sprintf("Trying %s...\nConnected to %s.\nEscape character is '^]'.\n", addr, name)
}

// On an explicit port the client opens nothing and answers the
// server's negotiation with exactly RFC 1091's, RFC 1073's, RFC 857's
// and RFC 1572's bytes; the server's data after it reaches stdout.
func TestAnswersServerNegotiation(t *testing.T) {
	a, b := pair(t, 1)
	srv := serve(t, b, "10.1.0.2:2323", func(c net.Conn) error {
		if err := quiet(c, "before the server speaks", 300*time.Millisecond); err != nil {
			return err
		}
		steps := []struct {
			what       string
			send, want []byte
		}{
			{"DO TTYPE", iac(255, 253, 24), iac(255, 251, 24)},
			{"SB TTYPE SEND", iac(255, 250, 24, 1, 255, 240), iac(255, 250, 24, 0, "VT220", 255, 240)},
			{"DO NAWS", iac(255, 253, 31), iac(255, 251, 31, 255, 250, 31, 0, 132, 0, 43, 255, 240)},
			{"WILL ECHO", iac(255, 251, 1), iac(255, 253, 1)},
			{"WILL SGA", iac(255, 251, 3), iac(255, 253, 3)},
			{"DO NEW-ENVIRON", iac(255, 253, 39), iac(255, 251, 39)},
			{"SB NEW-ENVIRON SEND VAR USER", iac(255, 250, 39, 1, 0, "USER", 255, 240), iac(255, 250, 39, 0, 0, "USER", 1, "joe", 255, 240)},
			{"DO LINEMODE", iac(255, 253, 34), iac(255, 252, 34)},
			{"WILL STATUS", iac(255, 251, 5), iac(255, 254, 5)},
		}
		for _, s := range steps {
			if _, err := c.Write(s.send); err != nil {
				return err
			}
			if err := expect(c, s.what, s.want); err != nil {
				return err
			}
		}
		// Repeating a settled request is not answered (RFC 1143).
		if _, err := c.Write(iac(255, 251, 1, 255, 253, 24, "ready\r\n")); err != nil {
			return err
		}
		return quiet(c, "after repeated WILL ECHO / DO TTYPE", 300*time.Millisecond)
	})
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, a, Config{}, stdin, map[string]string{"TERM": "vt220", "COLUMNS": "132", "LINES": "43"}, "-l", "joe", "10.1.0.2", "2323")
	waitErr(t, srv, "negotiation")
	r := p.wait(t, 10*time.Second, "telnet")
	if r.status != 0 || r.out != banner("10.1.0.2", "10.1.0.2")+"ready\r\n" || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("telnet: %+v", r)
	}
}

// On the default port (23) the client opens with BSD telnet's offers
// (DO SGA, WILL TTYPE, WILL NAWS, WILL NEW-ENVIRON; with -8 BINARY both
// ways); the server's agreement settles them without more answers,
// NAWS's size following its DO. Typed lines go in character mode once
// SGA is on.
func TestOpensNegotiationOnTelnetPort(t *testing.T) {
	a, b := pair(t, 2)
	srv := serve(t, b, "10.2.0.2:23", func(c net.Conn) error {
		if err := expect(c, "opening", iac(255, 253, 3, 255, 251, 24, 255, 251, 31, 255, 251, 39, 255, 253, 0, 255, 251, 0)); err != nil {
			return err
		}
		if _, err := c.Write(iac(255, 251, 3, 255, 253, 24, 255, 254, 39, 255, 251, 0, 255, 253, 0, 255, 253, 31)); err != nil {
			return err
		}
		// Only NAWS's size answers ($COLUMNS x $LINES).
		if err := expect(c, "NAWS", iac(255, 250, 31, 0, 80, 0, 24, 255, 240)); err != nil {
			return err
		}
		if _, err := c.Write(iac(255, 250, 24, 1, 255, 240)); err != nil {
			return err
		}
		if err := expect(c, "TTYPE IS", iac(255, 250, 24, 0, "UNKNOWN", 255, 240)); err != nil {
			return err
		}
		if _, err := c.Write([]byte("go\n")); err != nil {
			return err
		}
		// Binary both ways: CR, LF and NUL pass as they are, IAC doubled.
		return expect(c, "typed", []byte("ls\r\n\xff\xff\x00"))
	})
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, a, Config{}, stdin, map[string]string{"COLUMNS": "80", "LINES": "24"}, "-8", "10.2.0.2")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.out.String(), "go\n") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.Write([]byte("ls\r\n\xff\x00"))
	waitErr(t, srv, "telnet port")
	r := p.wait(t, 10*time.Second, "telnet")
	if r.status != 0 || r.out != banner("10.2.0.2", "10.2.0.2")+"go\n" {
		t.Errorf("telnet: %+v", r)
	}
}

// The NAWS size comes from the Config hook when it knows one.
func TestWindowSizeHook(t *testing.T) {
	a, b := pair(t, 3)
	srv := serve(t, b, "10.3.0.2:2323", func(c net.Conn) error {
		c.Write(iac(255, 253, 31))
		return expect(c, "NAWS", iac(255, 251, 31, 255, 250, 31, 1, 0, 0, 255, 255, 255, 240))
	})
	cfg := Config{WindowSize: func() (int, int, bool) { return 256, 255, true }}
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, a, cfg, stdin, map[string]string{"COLUMNS": "10", "LINES": "10"}, "10.3.0.2", "2323")
	waitErr(t, srv, "naws")
	if r := p.wait(t, 10*time.Second, "telnet"); r.status != 0 {
		t.Errorf("telnet: %+v", r)
	}
}

// A port that speaks no TELNET (an echo server): nothing is sent until
// the user types, what is typed goes as the NVT's CR NUL and CR LF (the
// capture's Python saw version '\x00'), and the echo comes back decoded.
// EOF on stdin then closes the connection at once and reports the
// foreign host's close, as inetutils telnet does.
func TestRawTCP(t *testing.T) {
	a, b := pair(t, 4)
	got := make(chan []byte, 1)
	srv := serve(t, b, "10.4.0.2:7", func(c net.Conn) error {
		if err := quiet(c, "before stdin", 300*time.Millisecond); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var all []byte
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			all = append(all, buf[:n]...)
			c.Write(buf[:n])
			if err == io.EOF {
				got <- all
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	stdin, w := io.Pipe()
	p := start(t, a, Config{}, stdin, nil, "10.4.0.2", "echo")
	time.Sleep(400 * time.Millisecond)
	w.Write([]byte("GET / HTTP/1.0\r\n\r\n\xff"))
	waitOutput(t, p, "\r\n\r\n\xff", "echo")
	w.Close()
	waitErr(t, srv, "echo")
	if g := <-got; !bytes.Equal(g, []byte("GET / HTTP/1.0\r\x00\r\n\r\x00\r\n\xff\xff")) {
		t.Errorf("server got %q", g)
	}
	r := p.wait(t, 10*time.Second, "telnet")
	if r.status != 0 || r.out != banner("10.4.0.2", "10.4.0.2")+"GET / HTTP/1.0\r\n\r\n\xff" || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("telnet: %+v", r)
	}
}

// IAC IAC from the server is one 255 on stdout; a NUL after CR goes.
func TestIACData(t *testing.T) {
	a, b := pair(t, 5)
	serve(t, b, "10.5.0.2:2323", func(c net.Conn) error {
		_, err := c.Write(iac("a", 255, 255, "b", 13, 0, "c", 255, 241, "d"))
		return err
	})
	stdin, w := io.Pipe()
	defer w.Close()
	r := start(t, a, Config{}, stdin, nil, "10.5.0.2", "2323").wait(t, 10*time.Second, "telnet")
	if r.status != 0 || r.out != banner("10.5.0.2", "10.5.0.2")+"a\xffb\rcd" || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("telnet: %+v", r)
	}
}

// The escape character: "status" reports and returns to the session, an
// empty line returns, "close" closes ("Connection closed.", exit 0: with
// a host on the command line inetutils telnet does not stay at the
// prompt). The command lines are echoed after the prompt, as readline
// does when stdin is not a terminal. The server sees the data typed
// before the escape and then its connection end.
func TestEscapeClose(t *testing.T) {
	a, b := pair(t, 6)
	got := make(chan []byte, 1)
	serve(t, b, "10.6.0.2:2323", func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		all, err := io.ReadAll(c)
		got <- all
		return err
	})
	r := runTelnet(t, a, "one\n\x1dstatus\ntwo\n\x1d\nthree\x1dclose\n", "10.6.0.2", "2323")
	want := banner("10.6.0.2", "10.6.0.2") +
		"\ntelnet> status\nConnected to 10.6.0.2.\nOperating in obsolete linemode\nLocal character echo\nEscape character is '^]'.\n" +
		"\ntelnet> \n" +
		"\ntelnet> close\nConnection closed.\n"
	if r.status != 0 || r.out != want || r.err != "" {
		t.Errorf("telnet: status %d\nstdout %q\nwant   %q\nstderr %q", r.status, r.out, want, r.err)
	}
	select {
	case g := <-got:
		if string(g) != "one\r\ntwo\r\nthree" {
			t.Errorf("server got %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server never saw the connection end")
	}
}

// "quit" at the escape prompt, EOF at it, -e to choose the character and
// -E to have none (the ^] is then data).
func TestEscapeVariants(t *testing.T) {
	a, b := pair(t, 7)
	cases := []struct {
		args       []string
		stdin      string
		wantOut    string
		wantServer string
	}{
		{[]string{"10.7.0.2", "2323"}, "x\x1dqu\n", banner("10.7.0.2", "10.7.0.2") + "\ntelnet> qu\nConnection closed.\n", "x"},
		{[]string{"10.7.0.2", "2323"}, "y\x1d", banner("10.7.0.2", "10.7.0.2") + "\ntelnet> Connection closed.\n", "y"},
		{[]string{"-e", "^X", "10.7.0.2", "2323"}, "\x1d\x18bogus\n\x18quit\n",
			"Telnet escape character is '^X'.\n" + strings.Replace(banner("10.7.0.2", "10.7.0.2"), "^]", "^X", 1) +
				"\ntelnet> bogus\n?Invalid command\n\ntelnet> quit\nConnection closed.\n", "\x1d"},
	}
	for i, c := range cases {
		got := make(chan []byte, 1)
		serve(t, b, "10.7.0.2:2323", func(conn net.Conn) error {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			all, err := io.ReadAll(conn)
			got <- all
			return err
		})
		r := runTelnet(t, a, c.stdin, c.args...)
		if r.status != 0 || r.out != c.wantOut || r.err != "" {
			t.Errorf("case %d: %+v, want stdout %q", i, r, c.wantOut)
		}
		if g := <-got; string(g) != c.wantServer {
			t.Errorf("case %d: server got %q, want %q", i, g, c.wantServer)
		}
	}

	// -E: no escape; stdin's EOF closes.
	got := make(chan []byte, 1)
	serve(t, b, "10.7.0.2:2323", func(conn net.Conn) error {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		all, err := io.ReadAll(conn)
		got <- all
		return err
	})
	r := runTelnet(t, a, "\x1dclose\n", "-E", "10.7.0.2", "2323")
	if r.status != 0 || r.out != strings.Replace(banner("10.7.0.2", "10.7.0.2"), "'^]'", "'off'", 1) || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("-E: %+v", r)
	}
	if g := <-got; string(g) != "\x1dclose\r\n" {
		t.Errorf("-E: server got %q", g)
	}
}

// A closed port: the Trying line, telnet's message, exit 1.
func TestRefused(t *testing.T) {
	a, _ := pair(t, 8)
	r := runTelnet(t, a, "", "10.8.0.2", "81")
	if r.status != 1 || r.out != "Trying 10.8.0.2...\n" || r.err != "telnet: Unable to connect to remote host: Connection refused\n" {
		t.Errorf("telnet: %+v", r)
	}
}

// Names through the Resolve hook: each address tried in turn, a refused
// one noted as "Connection failed", the name in "Connected to"; a name
// the resolver does not know, or none at all, is a lookup failure.
func TestNames(t *testing.T) {
	a, b := pair(t, 9)
	serve(t, b, "10.9.0.2:80", func(c net.Conn) error { return nil })
	cfg := Config{Resolve: func(_ context.Context, _ host.Host, _ func(string) string, name string) ([]netip.Addr, error) {
		if name == "web.lab" {
			return []netip.Addr{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")}, nil
		}
		return nil, errors.New("Name or service not known")
	}}
	r := start(t, a, cfg, strings.NewReader(""), nil, "web.lab", "80").wait(t, 20*time.Second, "web.lab")
	if r.status != 0 || r.out != "Trying 10.9.0.1...\n"+banner("10.9.0.2", "web.lab") ||
		r.err != "Connection failed: Connection refused\nConnection closed by foreign host.\n" {
		t.Errorf("web.lab: %+v", r)
	}
	r = start(t, a, cfg, strings.NewReader(""), nil, "nosuch.lab", "80").wait(t, 20*time.Second, "nosuch.lab")
	if r.status != 1 || r.out != "" || r.err != "Server lookup failure:  nosuch.lab:80, Name or service not known\n" {
		t.Errorf("nosuch.lab: %+v", r)
	}
	r = runTelnet(t, a, "", "web.lab")
	if r.status != 1 || r.err != "Server lookup failure:  web.lab:telnet, Name or service not known\n" {
		t.Errorf("no resolver: %+v", r)
	}
	r = runTelnet(t, a, "", "-6", "10.9.0.2", "80")
	if r.status != 1 || r.err != "Server lookup failure:  10.9.0.2:80, Address family for hostname not supported\n" {
		t.Errorf("-6 with an IPv4 literal: %+v", r)
	}
	r = runTelnet(t, a, "", "10.9.0.2", "nosuchservice")
	if r.status != 1 || r.err != "Server lookup failure:  10.9.0.2:nosuchservice, Servname not supported for ai_socktype\n" {
		t.Errorf("bad service: %+v", r)
	}
}

// -b binds the source address; one that is not ours is a bind error.
func TestBind(t *testing.T) {
	a, b := pair(t, 10)
	peer := make(chan string, 1)
	serve(t, b, "10.10.0.2:2323", func(c net.Conn) error {
		peer <- c.RemoteAddr().String()
		return nil
	})
	r := runTelnet(t, a, "", "-b", "10.10.0.1", "10.10.0.2", "2323")
	if r.status != 0 {
		t.Errorf("-b 10.10.0.1: %+v", r)
	}
	if p := <-peer; !strings.HasPrefix(p, "10.10.0.1:") {
		t.Errorf("server saw %s", p)
	}
	r = runTelnet(t, a, "", "-b", "10.10.0.9", "10.10.0.2", "2323")
	if r.status != 1 || r.err != "telnet: bind: Cannot assign requested address\n" {
		t.Errorf("-b 10.10.0.9: %+v", r)
	}
}

// Without a host: the prompt; status, a refused open (back at the
// prompt), EOF exits 0.
func TestPrompt(t *testing.T) {
	a, _ := pair(t, 11)
	r := runTelnet(t, a, "status\n\nop 10.11.0.2 81\nfrob\n")
	// The top-level prompt does not echo its lines (measured).
	want := "telnet> No connection.\nEscape character is '^]'.\ntelnet> telnet> Trying 10.11.0.2...\ntelnet> ?Invalid command\ntelnet> "
	if r.status != 0 || r.out != want || r.err != "telnet: Unable to connect to remote host: Connection refused\n" {
		t.Errorf("prompt: %+v\nwant stdout %q", r, want)
	}
	if r := runTelnet(t, a, "quit\nstatus\n"); r.status != 0 || r.out != "telnet> " {
		t.Errorf("quit: %+v", r)
	}
}

// Command-line errors are argp's: the message, the "Try" line, exit 64.
func TestUsage(t *testing.T) {
	try := "Try 'telnet --help' or 'telnet --usage' for more information.\n"
	cases := []struct {
		args   []string
		status int
		err    string
	}{
		{[]string{"-Z"}, 64, "telnet: invalid option -- 'Z'\n" + try},
		{[]string{"-e"}, 64, "telnet: option requires an argument -- 'e'\n" + try},
		{[]string{"--frob"}, 64, "telnet: unrecognized option '--frob'\n" + try},
		{[]string{"--bi", "x"}, 64, "telnet: option '--bi' is ambiguous; possibilities: '--binary' '--bind'\n" + try},
		{[]string{"--binary=1"}, 64, "telnet: option '--binary' doesn't allow an argument\n" + try},
		{[]string{"a", "b", "c"}, 1, "telnet: too many arguments\n"},
		{[]string{"--help"}, 0, ""},
		{[]string{"--usage"}, 0, ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		opened := false
		open := func(context.Context, string, func(string) string) (host.Host, error) {
			opened = true
			return nil, errors.New("not opened")
		}
		status := Applet(open).Main(context.Background(), env, append([]string{"telnet"}, c.args...))
		if status != c.status || errb.String() != c.err || opened {
			t.Errorf("%v: exit %d stderr %q (host opened %v)", c.args, status, errb.String(), opened)
		}
		if c.status == 0 && c.err == "" && !strings.HasPrefix(out.String(), "Usage: telnet") {
			t.Errorf("%v: stdout %q", c.args, out.String())
		}
	}
	for _, c := range []struct {
		arg  string
		want int
	}{{"^]", 0x1d}, {"^?", 0x7f}, {"x", 'x'}, {"", -1}, {"^c", 3}} {
		if got := escapeChar(c.arg); got != c.want {
			t.Errorf("escapeChar(%q) = %d, want %d", c.arg, got, c.want)
		}
	}
	for _, c := range []struct {
		c    int
		want string
	}{{0x1d, "^]"}, {0x7f, "^?"}, {-1, "off"}, {'a', "a"}, {0xe9, "\\351"}} {
		if got := control(c.c); got != c.want {
			t.Errorf("control(%d) = %q, want %q", c.c, got, c.want)
		}
	}
}

// A signal (the context ending) ends telnet at the prompt with stdin
// still open, and in a session whose server says nothing: exit 130.
func TestInterrupt(t *testing.T) {
	a, b := pair(t, 12)
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, a, Config{}, stdin, nil)
	waitOutput(t, p, "telnet> ", "prompt")
	p.cancel()
	if r := p.wait(t, 5*time.Second, "prompt"); r.status != 130 {
		t.Errorf("prompt: %+v", r)
	}
	serve(t, b, "10.12.0.2:2323", func(c net.Conn) error {
		_, err := io.Copy(io.Discard, c)
		return err
	})
	stdin2, w2 := io.Pipe()
	defer w2.Close()
	p = start(t, a, Config{}, stdin2, nil, "10.12.0.2", "2323")
	waitOutput(t, p, "Escape character", "session")
	p.cancel()
	if r := p.wait(t, 5*time.Second, "session"); r.status != 130 || r.err != "" {
		t.Errorf("session: %+v", r)
	}
}

// EOF on stdin ends the session at once, the server silent and still
// open: inetutils telnet closes and prints the foreign host's message
// (measured against a server that kept its end open 3 s).
func TestStdinEOFCloses(t *testing.T) {
	a, b := pair(t, 13)
	got := make(chan []byte, 1)
	serve(t, b, "10.13.0.2:2323", func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		all, err := io.ReadAll(c)
		got <- all
		return err
	})
	start := time.Now()
	r := runTelnet(t, a, "x\n", "10.13.0.2", "2323")
	if r.status != 0 || r.out != banner("10.13.0.2", "10.13.0.2") || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("telnet: %+v", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to end after stdin's EOF", d)
	}
	if g := <-got; string(g) != "x\r\n" {
		t.Errorf("server got %q", g)
	}
}

// Without a size (no hook, no $COLUMNS/$LINES: no terminal) NAWS is
// agreed and no size sent, as inetutils telnet does; TERM goes in
// capitals.
func TestNoWindowSize(t *testing.T) {
	a, b := pair(t, 14)
	srv := serve(t, b, "10.14.0.2:2323", func(c net.Conn) error {
		c.Write(iac(255, 253, 31, 255, 253, 24, 255, 250, 24, 1, 255, 240))
		if err := expect(c, "answers", iac(255, 251, 31, 255, 251, 24, 255, 250, 24, 0, "XTERM", 255, 240)); err != nil {
			return err
		}
		return quiet(c, "after", 300*time.Millisecond)
	})
	stdin, w := io.Pipe()
	defer w.Close()
	p := start(t, a, Config{}, stdin, map[string]string{"TERM": "xterm"}, "10.14.0.2", "2323")
	waitErr(t, srv, "no size")
	if r := p.wait(t, 10*time.Second, "telnet"); r.status != 0 {
		t.Errorf("telnet: %+v", r)
	}
}
