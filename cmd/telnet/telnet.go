// Package telnet is the telnet client applet over a host.Host, matching
// Debian 12's telnet (inetutils 2.4, from BSD telnet; see
// ../shared/compat/telnet.md): "Trying ADDR..." for each address of the
// host in turn, "Connected to HOST.", the escape character and its
// command prompt, "Connection closed by foreign host." and the
// client's exit statuses.
//
// What it owns: the command line (args.go), connecting, the session's
// copy loops and the escape-character command mode (this file), and
// the TELNET protocol engine (proto.go: RFC 854's NVT, RFC 1143's
// option negotiation, ECHO, SUPPRESS-GO-AHEAD, BINARY, TERMINAL-TYPE,
// NAWS and NEW-ENVIRON's USER). As in BSD telnet, the client opens
// negotiation itself only on the telnet port chosen by default (or a
// port written "-PORT"); on a port given explicitly it sends nothing
// until the user types, and answers only what the server starts, so a
// port check against HTTP or SMTP sees raw TCP. The details not in the
// capture were measured against inetutils telnet 2.4: EOF on stdin
// closes at once with "Connection closed by foreign host.", "close"
// with a host on the command line exits, the escape prompt echoes its
// line, TERM goes in capitals (UNKNOWN unset), and NAWS without a known
// size sends none.
//
// Locks: session.mu (the engine), session.wmu (writes to the
// connection) and session.omu (writes to stdout) are leaves, never held
// together.
package telnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/services"
)

// Resolver is getaddrinfo for telnet: the addresses of name in the
// order to try them; its error texts are getaddrinfo's ("Name or
// service not known"). h is the host telnet runs on, getenv its
// environment.
type Resolver func(ctx context.Context, h host.Host, getenv func(string) string, name string) ([]netip.Addr, error)

// Config holds what the embedding program plugs in. The zero value is a
// telnet that takes IP literals only and a window of $COLUMNS x $LINES
// (no size without them, as without a terminal).
type Config struct {
	Resolve Resolver
	// WindowSize is the terminal's size for NAWS; ok false when unknown.
	WindowSize func() (cols, rows int, ok bool)
}

// Applet returns telnet on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	return &applet.Applet{
		Name:    "telnet",
		Summary: "TELNET protocol client (inetutils telnet)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

// Exit statuses.
const (
	exitOK          = 0
	exitFail        = 1
	exitUsage       = 64  // argp's EX_USAGE
	exitInterrupted = 130 // a shell's 128+SIGINT
)

// telnet is one run.
type telnet struct {
	ctx  context.Context
	open host.Opener
	cfg  Config
	env  *applet.Env
	o    *options
	h    host.Host // opened on the first connection
	kbd  *keyboard
	omu  sync.Mutex
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	o, err := parse(args)
	if err == errTooMany {
		fmt.Fprintf(env.Stderr, "telnet: %v\n", err)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "telnet: %v\nTry 'telnet --help' or 'telnet --usage' for more information.\n", err)
		return exitUsage
	}
	if o.help {
		fmt.Fprint(env.Stdout, helpText)
		return exitOK
	}
	if o.usage {
		fmt.Fprint(env.Stdout, usageText)
		return exitOK
	}
	if o.escapeSet {
		// inetutils announces -e's character as it parses it.
		fmt.Fprintf(env.Stdout, "Telnet escape character is '%s'.\n", control(o.escape))
	}
	t := &telnet{ctx: ctx, open: open, cfg: cfg, env: env, o: o, kbd: &keyboard{r: env.Stdin}}
	defer func() {
		if t.h != nil {
			t.h.Close()
		}
	}()
	if len(o.args) > 0 {
		port := ""
		if len(o.args) == 2 {
			port = o.args[1]
		}
		status, more := t.connect(o.args[0], port)
		if !more {
			return status
		}
	}
	return t.toplevel()
}

// print writes to stdout (the connection's reader writes there too).
func (t *telnet) print(s string) {
	t.omu.Lock()
	defer t.omu.Unlock()
	io.WriteString(t.env.Stdout, s)
}

func (t *telnet) printf(format string, a ...any) { t.print(fmt.Sprintf(format, a...)) }

// toplevel is the "telnet> " prompt outside a connection: open, status,
// quit; EOF on stdin quits (exit 0).
func (t *telnet) toplevel() int {
	for {
		t.print("telnet> ")
		line, ok, interrupted := t.readLine()
		if interrupted {
			return exitInterrupted
		}
		if !ok {
			return exitOK
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name, err := lookupCommand(f[0])
		if err != "" {
			t.print(err)
			continue
		}
		switch name {
		case "quit":
			return exitOK
		case "close":
			// Not connected: nothing to close.
		case "status":
			t.printf("No connection.\nEscape character is '%s'.\n", control(t.o.escape))
		case "help", "?":
			t.print(helpCommands)
		case "send":
			t.print("?Need to be connected first.\n")
		case "open":
			if len(f) < 2 || len(f) > 3 {
				t.print("usage: open host-name [port]\n")
				continue
			}
			port := ""
			if len(f) == 3 {
				port = f[2]
			}
			status, more := t.connect(f[1], port)
			if !more {
				return status
			}
		}
	}
}

// readLine reads a prompt's line; a signal (ctx) ends the wait, the read
// being left to the exiting process.
func (t *telnet) readLine() (line string, ok, interrupted bool) {
	type res struct {
		line string
		ok   bool
	}
	ch := make(chan res, 1)
	go func() {
		l, ok := t.kbd.line()
		ch <- res{l, ok}
	}()
	select {
	case r := <-ch:
		return r.line, r.ok, false
	case <-t.ctx.Done():
		return "", false, true
	}
}

const helpCommands = `Commands may be abbreviated.  Commands are:

close		close current connection
open		connect to a site
quit		exit telnet
send		transmit special characters ('send ?' for more)
status		print status information
?		print help information
`

var commandNames = []string{"close", "open", "quit", "send", "status", "help", "?"}

// lookupCommand finds a command by name or unique prefix; err is the
// line BSD telnet prints for an unknown or ambiguous one.
func lookupCommand(s string) (name, err string) {
	var hits []string
	for _, c := range commandNames {
		if c == s {
			return c, ""
		}
		if strings.HasPrefix(c, s) {
			hits = append(hits, c)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], ""
	case 0:
		return "", "?Invalid command\n"
	}
	return "", "?Ambiguous command\n"
}

// sendNames are the "send" arguments: the TELNET commands of RFC 854.
var sendNames = map[string]byte{
	"ao": cmdAO, "ayt": cmdAYT, "brk": cmdBRK, "ec": cmdEC, "el": cmdEL,
	"ga": cmdGA, "ip": cmdIP, "nop": cmdNOP,
}

// parsePort is getaddrinfo's service: a number below 65536 or a name.
func parsePort(s string) (uint16, bool) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), true
	}
	return services.Port(s, "tcp")
}

// lookupError is getaddrinfo failing: "Server lookup failure:  H:P, MSG".
type lookupError struct{ msg string }

func (e *lookupError) Error() string { return e.msg }

func (t *telnet) familyOK(a netip.Addr) bool {
	switch {
	case t.o.ipv4:
		return a.Is4()
	case t.o.ipv6:
		return a.Is6()
	}
	return true
}

// resolve is getaddrinfo(name): a literal, else the resolver.
func (t *telnet) resolve(name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil && a.Zone() == "" {
		a = a.Unmap()
		if !t.familyOK(a) {
			return nil, &lookupError{"Address family for hostname not supported"}
		}
		return []netip.Addr{a}, nil
	}
	if t.cfg.Resolve == nil {
		return nil, &lookupError{"Name or service not known"}
	}
	addrs, err := t.cfg.Resolve(t.ctx, t.h, t.env.Getenv, name)
	if err != nil {
		return nil, &lookupError{err.Error()}
	}
	var out []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); t.familyOK(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &lookupError{"Address family for hostname not supported"}
	}
	return out, nil
}

// strerror is the C library's text for an errno.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if s := errno.Error(); s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Connection timed out"
	}
	return err.Error()
}

// connect is BSD telnet's tn(): resolve, try each address, run the
// session. more is true when the user closed the connection and the
// prompt goes on (a failed "open" at the prompt goes on as well).
func (t *telnet) connect(name, portArg string) (status int, more bool) {
	interactive := t.h != nil || len(t.o.args) == 0
	fail := func(status int) (int, bool) { return status, interactive }
	// BSD telnet negotiates first on the default port, and on a port
	// written with a leading '-'.
	telnetPort := portArg == ""
	portShown := portArg
	if portArg == "" {
		portArg, portShown = "telnet", "telnet"
	} else if p, ok := strings.CutPrefix(portArg, "-"); ok && p != "" {
		portArg, telnetPort = p, true
	}
	port, ok := parsePort(portArg)
	if !ok {
		fmt.Fprintf(t.env.Stderr, "Server lookup failure:  %s:%s, Servname not supported for ai_socktype\n", name, portShown)
		return fail(exitFail)
	}
	if t.h == nil {
		h, err := t.open(t.ctx, t.o.link, t.env.Getenv)
		if err != nil {
			fmt.Fprintf(t.env.Stderr, "telnet: %v\n", err)
			return exitFail, false
		}
		t.h = h
	}
	var src netip.Addr
	if t.o.bind != "" {
		a, err := t.resolve(t.o.bind)
		if err != nil {
			fmt.Fprintf(t.env.Stderr, "Could not resolve %s: %v\n", t.o.bind, err)
			return fail(exitFail)
		}
		src = a[0]
	}
	addrs, err := t.resolve(name)
	if err != nil {
		fmt.Fprintf(t.env.Stderr, "Server lookup failure:  %s:%s, %v\n", name, portShown, err)
		return fail(exitFail)
	}
	if src.IsValid() {
		// A socket bound to an address of one family connects only to
		// that family.
		var same []netip.Addr
		for _, a := range addrs {
			if a.Is4() == src.Is4() {
				same = append(same, a)
			}
		}
		if len(same) == 0 {
			fmt.Fprintf(t.env.Stderr, "telnet: bind: %s\n", strerror(syscall.EAFNOSUPPORT))
			return fail(exitFail)
		}
		addrs = same
	}
	for i, a := range addrs {
		t.printf("Trying %s...\n", a)
		var so *host.SocketOptions
		if src.IsValid() {
			so = &host.SocketOptions{Local: netip.AddrPortFrom(src, 0)}
		}
		network := "tcp4"
		if a.Is6() {
			network = "tcp6"
		}
		c, err := t.h.Dial(t.ctx, network, netip.AddrPortFrom(a, port).String(), so)
		if err != nil {
			if t.ctx.Err() != nil {
				return exitInterrupted, false
			}
			if src.IsValid() && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)) {
				fmt.Fprintf(t.env.Stderr, "telnet: bind: %s\n", strerror(err))
				return fail(exitFail)
			}
			if i+1 < len(addrs) {
				fmt.Fprintf(t.env.Stderr, "Connection failed: %s\n", strerror(err))
				continue
			}
			fmt.Fprintf(t.env.Stderr, "telnet: Unable to connect to remote host: %s\n", strerror(err))
			return fail(exitFail)
		}
		t.printf("Connected to %s.\n", name)
		t.printf("Escape character is '%s'.\n", control(t.o.escape))
		return t.session(c, name, telnetPort)
	}
	return fail(exitFail)
}

// windowSize is the NAWS size: the hook's, else $COLUMNS x $LINES, else
// none (0x0): inetutils telnet without a terminal agrees to NAWS and
// sends no size (measured).
func (t *telnet) windowSize() (int, int) {
	if t.cfg.WindowSize != nil {
		if c, r, ok := t.cfg.WindowSize(); ok {
			return c, r
		}
	}
	c, err1 := strconv.Atoi(t.env.Getenv("COLUMNS"))
	r, err2 := strconv.Atoi(t.env.Getenv("LINES"))
	if err1 == nil && err2 == nil && c > 0 && r > 0 {
		return c, r
	}
	return 0, 0
}

// session is one connection.
type session struct {
	t    *telnet
	c    net.Conn
	name string

	mu  sync.Mutex
	eng *Engine

	wmu sync.Mutex
}

// action is how the keyboard side ended a session.
type action int

const (
	actEOF      action = iota // stdin ended
	actClose                  // "close": back to the prompt
	actQuit                   // "quit" (or EOF at the escape prompt)
	actNetError               // a write to the connection failed
)

func (s *session) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.c.Write(p)
	return err
}

func (t *telnet) session(c net.Conn, name string, telnetPort bool) (int, bool) {
	// BSD telnet's gettermname: $TERM in capitals, UNKNOWN without it
	// (measured: TERM=xterm is sent as XTERM).
	term := strings.ToUpper(t.env.Getenv("TERM"))
	if term == "" {
		term = "UNKNOWN"
	}
	cols, rows := t.windowSize()
	s := &session{t: t, c: c, name: name, eng: NewEngine(term, cols, rows, t.o.user)}
	defer c.Close()
	if telnetPort {
		// BSD telnet's opening offers (telnet.c, telnet()), less the
		// options this client does not implement.
		var b []byte
		b = append(b, s.eng.RequestHim(optSGA)...)
		b = append(b, s.eng.RequestUs(optTTYPE)...)
		b = append(b, s.eng.RequestUs(optNAWS)...)
		b = append(b, s.eng.RequestUs(optNewEnviron)...)
		if t.o.binary {
			b = append(b, s.eng.RequestHim(optBinary)...)
			b = append(b, s.eng.RequestUs(optBinary)...)
		}
		s.write(b)
	}

	netDone := make(chan struct{})
	go s.reader(netDone)
	kbd := make(chan action, 1)
	go func() { kbd <- s.keyboard() }()

	foreign := func() (int, bool) {
		fmt.Fprint(t.env.Stderr, "Connection closed by foreign host.\n")
		return exitOK, false
	}
	select {
	case <-t.ctx.Done():
		return exitInterrupted, false
	case <-netDone:
		return foreign()
	case act := <-kbd:
		switch act {
		case actEOF:
			// inetutils telnet closes at once when stdin ends and says
			// the foreign host closed (measured: the server saw EOF
			// with no wait for its answer, exit 0).
			c.Close()
			select {
			case <-netDone:
			case <-time.After(2 * time.Second):
			}
			return foreign()
		case actNetError:
			select {
			case <-netDone:
				return foreign()
			case <-t.ctx.Done():
				return exitInterrupted, false
			}
		case actClose, actQuit:
			c.Close()
			// The reader ends with the socket; wait so its last output
			// comes before ours.
			select {
			case <-netDone:
			case <-time.After(2 * time.Second):
			}
			t.print("Connection closed.\n")
			// With a host on the command line inetutils telnet exits
			// after "close" too; from the prompt it goes back to it.
			return exitOK, act == actClose && len(t.o.args) == 0
		}
	}
	return exitOK, false
}

// reader copies the server to stdout through the engine, answering
// negotiations.
func (s *session) reader(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 32<<10)
	for {
		n, err := s.c.Read(buf)
		if n > 0 {
			s.mu.Lock()
			data, reply := s.eng.Receive(buf[:n])
			data, reply = bytes.Clone(data), bytes.Clone(reply)
			s.mu.Unlock()
			if len(data) > 0 {
				s.t.omu.Lock()
				_, werr := s.t.env.Stdout.Write(data)
				s.t.omu.Unlock()
				if werr != nil {
					return
				}
			}
			s.write(reply)
		}
		if err != nil {
			s.mu.Lock()
			tail := s.eng.Flush()
			s.mu.Unlock()
			if len(tail) > 0 {
				s.t.omu.Lock()
				s.t.env.Stdout.Write(tail)
				s.t.omu.Unlock()
			}
			return
		}
	}
}

// keyboard copies stdin to the server until the escape character, whose
// command line (the rest of that stdin line) it then runs.
func (s *session) keyboard() action {
	k := s.t.kbd
	esc := s.t.o.escape
	for {
		if len(k.pend) == 0 && !k.fill() {
			return actEOF
		}
		p := k.pend
		i := -1
		if esc >= 0 {
			i = bytes.IndexByte(p, byte(esc))
		}
		chunk := p
		if i >= 0 {
			chunk, k.pend = p[:i], p[i+1:]
		} else {
			k.pend = nil
		}
		if len(chunk) > 0 {
			s.mu.Lock()
			out := s.eng.Encode(chunk)
			s.mu.Unlock()
			if err := s.write(out); err != nil {
				return actNetError
			}
		}
		if i < 0 {
			continue
		}
		s.t.print("\ntelnet> ")
		line, ok := k.line()
		if ok {
			// inetutils echoes the escape prompt's line when stdin is
			// not a terminal (not the top-level prompt's; both measured).
			s.t.print(line + "\n")
		}
		if !ok {
			// EOF at the prompt is "quit", as fgets failing in BSD
			// telnet's command().
			return actQuit
		}
		if act, done := s.command(line); done {
			return act
		}
	}
}

// command runs one escape-mode command; done is true when it ends the
// session. An empty line goes back to the session.
func (s *session) command(line string) (action, bool) {
	t := s.t
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, false
	}
	name, err := lookupCommand(f[0])
	if err != "" {
		t.print(err)
		return 0, false
	}
	switch name {
	case "close":
		return actClose, true
	case "quit":
		return actQuit, true
	case "status":
		s.mu.Lock()
		sga, echo := s.eng.Him(optSGA), s.eng.Him(optEcho)
		s.mu.Unlock()
		mode := "Operating in obsolete linemode"
		if sga {
			mode = "Operating in single character mode"
		}
		where := "Local"
		if echo {
			where = "Remote"
		}
		t.printf("Connected to %s.\n%s\n%s character echo\nEscape character is '%s'.\n", s.name, mode, where, control(t.o.escape))
	case "help", "?":
		t.print(helpCommands)
	case "open":
		t.printf("?Already connected to %s\n", s.name)
	case "send":
		return s.send(f[1:])
	}
	return 0, false
}

// send is "send NAME...": TELNET commands, or "escape" for the escape
// character itself.
func (s *session) send(args []string) (action, bool) {
	t := s.t
	if len(args) == 0 {
		t.print("need at least one argument for 'send' command\n'send ?' for help\n")
		return 0, false
	}
	var out []byte
	for _, a := range args {
		switch {
		case a == "?" || a == "help":
			t.print("ao\tSend Telnet Abort output\nayt\tSend Telnet 'Are You There'\nbrk\tSend Telnet Break\n" +
				"ec\tSend Telnet Erase Character\nel\tSend Telnet Erase Line\nescape\tSend current escape character\n" +
				"ga\tSend Telnet 'Go Ahead' sequence\nip\tSend Telnet Interrupt Process\nnop\tSend Telnet 'No operation'\n")
			return 0, false
		case a == "escape" && t.o.escape >= 0:
			s.mu.Lock()
			out = append(out, s.eng.Encode([]byte{byte(t.o.escape)})...)
			s.mu.Unlock()
		default:
			c, ok := sendNames[a]
			if !ok {
				t.printf("Unknown send argument '%s'\n'send ?' for help.\n", a)
				return 0, false
			}
			out = append(out, cmdIAC, c)
		}
	}
	if err := s.write(out); err != nil {
		return actNetError, true
	}
	return 0, false
}

// keyboard is stdin with what has been read but not used yet.
type keyboard struct {
	r    io.Reader
	pend []byte
	eof  bool
	buf  [4096]byte
}

// fill reads more of stdin into pend; false at EOF (or an error).
func (k *keyboard) fill() bool {
	if k.eof {
		return false
	}
	for range 100 { // a reader returning (0, nil) forever is over
		n, err := k.r.Read(k.buf[:])
		k.pend = append(k.pend, k.buf[:n]...)
		if err != nil {
			k.eof = true
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	k.eof = true
	return false
}

// maxLine bounds a command line (BSD telnet's line buffer is 256).
const maxLine = 1024

// line reads one command line; ok is false at EOF with nothing read.
// A longer line is cut at maxLine.
func (k *keyboard) line() (string, bool) {
	var b []byte
	for {
		if i := bytes.IndexByte(k.pend, '\n'); i >= 0 {
			b = append(b, k.pend[:i]...)
			k.pend = k.pend[i+1:]
			break
		}
		b = append(b, k.pend...)
		k.pend = nil
		if len(b) > maxLine {
			b = b[:maxLine]
		}
		if !k.fill() {
			if len(b) == 0 {
				return "", false
			}
			break
		}
	}
	if len(b) > maxLine {
		b = b[:maxLine]
	}
	return strings.TrimRight(string(b), "\r"), true
}
