//go:build linux

package nc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// kernelLab puts our stack (10.96.0.2) on a TAP whose other side is the
// kernel (10.96.0.1) in a namespace of the test's own. It skips without
// root.
func kernelLab(t *testing.T) (*netlab.Lab, *stackhost.Host) {
	t.Helper()
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.96.0.1/24")}})
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, stack.NICOptions{Name: "eth0", NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix("10.96.0.2/24")}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	return lab, stackhost.New(socket.NewInet(s))
}

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (Debian %s; scripts/test-deps.sh installs it): skipping", tool, pkg)
	}
}

// kernelListening waits (at most 5 s) until the namespace has a socket
// listening on port (ss -l; proto "t" or "u").
func kernelListening(t *testing.T, lab *netlab.Lab, proto string, port int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out, err := lab.Run(ctx, "ss", "-Hln"+proto, fmt.Sprintf("sport = :%d", port))
		cancel()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kernel: nothing listening on %s port %d after 5 s", proto, port)
}

// waitProc waits (at most 10 s) for a kernel-side process to exit.
func waitProc(t *testing.T, p *netlab.Proc, what string) string {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running after 10 s; output %q", what, p.Output())
	}
	return p.Output()
}

// Our nc and the kernel's netcat-openbsd, both directions, TCP and UDP:
// what one side sends the other prints, -N's half-close ends the
// kernel's nc as it ends ours.
func TestKernelNetcat(t *testing.T) {
	need(t, "nc.openbsd", "netcat-openbsd")
	lab, h := kernelLab(t)

	// Ours to the kernel's listener.
	kl := lab.Start(t, "nc.openbsd", "-l", "10.96.0.1", "5001")
	kernelListening(t, lab, "t", 5001)
	if r := runNC(t, h, "hello-kernel\n", "-vn", "-N", "10.96.0.1", "5001"); r.status != 0 || r.err != "Connection to 10.96.0.1 5001 port [tcp/*] succeeded!\n" {
		t.Errorf("our client: %+v", r)
	}
	if out := waitProc(t, kl, "kernel nc -l"); out != "hello-kernel\n" {
		t.Errorf("kernel listener printed %q", out)
	}

	// The kernel's client to our listener, data both ways.
	ol := start(t, h, strings.NewReader("hello-stackbox\n"), "-N", "-lvn", "5002")
	waitListen(t, h, "tcp", 5002)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	out, err := lab.Run(ctx, "sh", "-c", "echo from-kernel | nc.openbsd -N 10.96.0.2 5002")
	cancel()
	if err != nil || string(out) != "hello-stackbox\n" {
		t.Errorf("kernel client: %v, printed %q", err, out)
	}
	r := ol.wait(t, 10*time.Second, "our listener")
	if r.status != 0 || r.out != "from-kernel\n" || !strings.Contains(r.err, "Connection received on 10.96.0.1 ") {
		t.Errorf("our listener: %+v", r)
	}

	// UDP, ours to the kernel's listener.
	ku := lab.Start(t, "nc.openbsd", "-u", "-l", "10.96.0.1", "5003")
	kernelListening(t, lab, "u", 5003)
	if r := runNC(t, h, "udp-to-kernel\n", "-u", "-w", "1", "10.96.0.1", "5003"); r.status != 0 {
		t.Errorf("our UDP client: %+v", r)
	}
	if out := ku.Output(); out != "udp-to-kernel\n" {
		t.Errorf("kernel UDP listener printed %q", out)
	}

	// UDP, the kernel's client to our listener.
	ou := start(t, h, strings.NewReader(""), "-u", "-l", "5004")
	waitListen(t, h, "udp", 5004)
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	out, err = lab.Run(ctx, "sh", "-c", "echo udp-to-us | nc.openbsd -u -w 1 10.96.0.2 5004")
	cancel()
	if err != nil {
		t.Errorf("kernel UDP client: %v %q", err, out)
	}
	if r := ou.stop(); r.out != "udp-to-us\n" {
		t.Errorf("our UDP listener printed %q", r.out)
	}
}

// 8 MiB each way between our nc and socat on the kernel, checked by
// SHA-256 (sha256sum on the kernel side).
func TestKernelSocatLarge(t *testing.T) {
	need(t, "socat", "socat")
	need(t, "sha256sum", "coreutils")
	lab, h := kernelLab(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	// Ours to socat.
	kp := lab.Start(t, "sh", "-c", "socat -u TCP4-LISTEN:5005,bind=10.96.0.1 STDOUT | sha256sum")
	kernelListening(t, lab, "t", 5005)
	if r := runNC(t, h, string(data), "-N", "10.96.0.1", "5005"); r.status != 0 {
		t.Errorf("our client: %+v", r)
	}
	if out := waitProc(t, kp, "socat | sha256sum"); !strings.HasPrefix(out, want+" ") {
		t.Errorf("socat received data with SHA-256 %q, want %s", out, want)
	}

	// socat to our listener: 8 MiB of zeros from the kernel.
	hsum := sha256.New()
	var count countWriter
	ol := startWith(t, h, strings.NewReader(""), multi(hsum, &count), "-l", "5006")
	waitListen(t, h, "tcp", 5006)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := lab.Run(ctx, "sh", "-c", "head -c 8388608 /dev/zero | socat -u STDIN TCP4:10.96.0.2:5006")
	cancel()
	if err != nil {
		t.Fatalf("socat: %v %q", err, out)
	}
	r := ol.wait(t, 20*time.Second, "our listener")
	zeros := sha256.Sum256(make([]byte, 8<<20))
	if r.status != 0 || !bytes.Equal(hsum.Sum(nil), zeros[:]) {
		t.Errorf("our listener: exit %d, %d bytes, SHA-256 %x, want %x", r.status, count.n, hsum.Sum(nil), zeros)
	}
}
