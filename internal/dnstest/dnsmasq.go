//go:build linux

package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// Dnsmasq is a real nameserver for the interop tests: dnsmasq in a lab
// namespace at 10.201.0.1, authoritative for lab with the captures'
// records, reached by our stack at 10.201.0.2 over a TAP device, and the
// same namespace for running bind's own tools against it.
type Dnsmasq struct {
	Lab    *netlab.Lab
	Client *stackhost.Host
	// ResolvConf is "search lab" and the dnsmasq server: ours read it as
	// STACKBOX_RESOLV_CONF, bind's tools see it as /etc/resolv.conf.
	ResolvConf string
}

// DnsmasqServer is where dnsmasq listens.
var DnsmasqServer = netip.MustParseAddr("10.201.0.1")

// StartDnsmasq builds the lab for t, skipping when not root or dnsmasq
// is missing; everything is removed when t ends.
func StartDnsmasq(t *testing.T) *Dnsmasq {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (scripts/test-deps.sh installs dnsmasq-base); skipping the dnsmasq interop test")
	}
	lab := netlab.New(t)
	dev := fmt.Sprintf("sbxdq%d", os.Getpid()%100000)
	h, err := stackhost.Start("tap:" + dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	lab.Adopt(t, dev, netip.MustParsePrefix("10.201.0.1/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.201.0.2/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	proc := lab.Start(t, bin,
		"--keep-in-foreground", "--log-facility=-", "--pid-file=", "--user=root",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=10.201.0.1", "--port=53",
		"--local=/lab/",
		"--host-record=web.lab,10.201.0.5,fd00:201::5",
		"--host-record=ns.lab,10.201.0.1",
		"--cname=www.lab,web.lab", "--cname=chain.lab,www.lab",
		"--mx-host=lab,mail.lab,10",
		"--txt-record=info.lab,hello from dnsmasq,second string",
		"--srv-host=_http._tcp.lab,web.lab,80,0,5",
		"--ptr-record=99.0.201.10.in-addr.arpa,printer.lab",
		"--auth-zone=lab", "--auth-server=ns.lab",
		"--auth-soa=2024010102,hostmaster.lab,1200,180,1209600",
	)
	dir := t.TempDir()
	d := &Dnsmasq{Lab: lab, Client: h, ResolvConf: filepath.Join(dir, "resolv.conf")}
	if err := os.WriteFile(d.ResolvConf, []byte("search lab\nnameserver 10.201.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// dnsmasq is up when it answers (bounded).
	r := resolver.New(h, &resolver.Config{Servers: []netip.AddrPort{netip.AddrPortFrom(DnsmasqServer, 53)}, Timeout: time.Second, Attempts: 1})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := r.Query(ctx, "web.lab.", dns.TypeA); err == nil {
			break
		}
		select {
		case <-proc.Done():
			t.Fatalf("dnsmasq exited: %s", proc.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq does not answer: %s", proc.Output())
		}
	}
	return d
}

// Getenv is our tools' environment: the lab's resolv.conf, no hosts file.
func (d *Dnsmasq) Getenv(k string) string {
	switch k {
	case "STACKBOX_RESOLV_CONF":
		return d.ResolvConf
	case "STACKBOX_HOSTS":
		return filepath.Join(filepath.Dir(d.ResolvConf), "hosts")
	}
	return ""
}

// Opener gives the client stack to an applet (its Close leaves it up).
func (d *Dnsmasq) Opener() host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) {
		return noClose{d.Client}, nil
	}
}

// RunReal runs bind's tool (host, nslookup) in the namespace with the
// lab's resolv.conf mounted over /etc/resolv.conf (in a private mount
// namespace, so the system's is untouched) and returns its output
// (stdout and stderr) and exit status; ok is false when the tool is not
// installed.
func (d *Dnsmasq) RunReal(t *testing.T, tool string, args ...string) (out string, status int, ok bool) {
	t.Helper()
	return d.RunRealInput(t, "", tool, args...)
}

// RunRealInput is RunReal with stdin (interactive nslookup).
func (d *Dnsmasq) RunRealInput(t *testing.T, stdin, tool string, args ...string) (out string, status int, ok bool) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		return "", 0, false
	}
	script := `rc=$0 in=$1; shift; mount --bind "$rc" /etc/resolv.conf && printf %s "$in" | "$@"`
	b, err := d.Lab.Run(context.Background(), "unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, d.ResolvConf, stdin, tool}, args...)...)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v\n%s", tool, args, err, b)
	}
	return string(b), status, true
}
