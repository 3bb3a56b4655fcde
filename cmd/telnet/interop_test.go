//go:build linux

package telnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// kernelLab puts our stack (10.97.0.2) on a TAP whose other side is the
// kernel (10.97.0.1) in a namespace of the test's own. It skips without
// root.
func kernelLab(t *testing.T) (*netlab.Lab, *stackhost.Host) {
	t.Helper()
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.97.0.1/24")}})
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{Name: "eth0", NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix("10.97.0.2/24")}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	return lab, stackhost.New(socket.NewInet(s))
}

// busyboxTelnetd skips unless busybox has the telnetd applet (Debian's
// busybox-static has it, busybox does not).
func busyboxTelnetd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("busybox not installed (Debian busybox-static; scripts/test-deps.sh installs it): skipping")
	}
	out, _ := exec.Command("busybox", "--list").Output()
	if !bytes.Contains(out, []byte("telnetd\n")) {
		t.Skip("this busybox has no telnetd applet (Debian's busybox-static has): skipping")
	}
}

// kernelListening waits (at most 5 s) for a TCP listener on port in the
// namespace.
func kernelListening(t *testing.T, lab *netlab.Lab, port int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := lab.Run(ctx, "ss", "-Hlnt", fmt.Sprintf("sport = :%d", port))
		cancel()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kernel: nothing listening on TCP port %d after 5 s", port)
}

// Our telnet to busybox telnetd running a shell on a pty in the
// kernel's namespace: the server's negotiation (DO ECHO, DO NAWS, WILL
// ECHO, WILL SGA) is answered, a command typed runs and its output comes
// back, and the shell's exit is the foreign host's close (exit 0). Once
// on an explicit port (the client waits for the server) and once with
// "-- HOST -PORT" (the client opens negotiation itself, as on port 23).
func TestKernelBusyboxTelnetd(t *testing.T) {
	busyboxTelnetd(t)
	lab, h := kernelLab(t)
	lab.Start(t, "busybox", "telnetd", "-F", "-p", "2323", "-l", "/bin/sh")
	kernelListening(t, lab, 2323)
	for _, port := range []string{"2323", "-2323"} {
		stdin, w := io.Pipe()
		// "--": argp would take -2323 for options.
		p := start(t, h, Config{}, stdin, map[string]string{"TERM": "dumb"}, "--", "10.97.0.1", port)
		waitOutput(t, p, "Escape character is '^]'.\n", port)
		// The arithmetic makes the output differ from the echoed line.
		fmt.Fprintf(w, "echo hel''lo-$((6*7))\n")
		waitOutput(t, p, "hello-42", port)
		fmt.Fprintf(w, "exit\n")
		r := p.wait(t, 10*time.Second, "telnet "+port)
		w.Close()
		if r.status != 0 || !strings.HasPrefix(r.out, banner("10.97.0.1", "10.97.0.1")) || r.err != "Connection closed by foreign host.\n" {
			t.Errorf("port %s: %+v", port, r)
		}
	}
}

// A raw TCP check against a kernel port with no telnet behind it, and a
// closed kernel port: Linux's RST comes back as "Connection refused".
func TestKernelRawAndRefused(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat not installed (Debian socat; scripts/test-deps.sh installs it): skipping")
	}
	lab, h := kernelLab(t)
	lab.Start(t, "socat", "TCP-LISTEN:7007,reuseaddr", "EXEC:cat")
	kernelListening(t, lab, 7007)
	stdin, w := io.Pipe()
	p := start(t, h, Config{}, stdin, nil, "10.97.0.1", "7007")
	w.Write([]byte("ping\n"))
	waitOutput(t, p, "ping\n", "raw")
	w.Close()
	r := p.wait(t, 10*time.Second, "raw")
	// cat echoes the CR LF the client sent; the client gives it as LF.
	if r.status != 0 || r.out != banner("10.97.0.1", "10.97.0.1")+"ping\n" || r.err != "Connection closed by foreign host.\n" {
		t.Errorf("raw: %+v", r)
	}
	r = runTelnet(t, h, "", "10.97.0.1", "81")
	if r.status != 1 || r.out != "Trying 10.97.0.1...\n" || r.err != "telnet: Unable to connect to remote host: Connection refused\n" {
		t.Errorf("refused: %+v", r)
	}
}
