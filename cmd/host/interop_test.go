//go:build linux

package host

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/dnstest"
)

// TestInteropDnsmasq asks dnsmasq, run by the kernel in a lab namespace,
// over a TAP device, and runs bind's host (bind9-host) in the namespace
// with the same resolv.conf and arguments: the output lines (message IDs
// and times aside) and exit statuses must be the same. Without bind's
// host only our answers are checked.
func TestInteropDnsmasq(t *testing.T) {
	d := dnstest.StartDnsmasq(t)
	run := func(args ...string) (string, int) {
		var out bytes.Buffer
		env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: d.Getenv}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st := Applet(d.Opener()).Main(ctx, env, append([]string{"host"}, args...))
		return out.String(), st
	}
	if out, st := run("-t", "A", "web"); st != 0 || out != "web.lab has address 10.201.0.5\n" {
		t.Fatalf("host -t A web: status %d\n%s", st, out)
	}
	cases := [][]string{
		{"web.lab"}, {"www.lab"}, {"chain.lab"}, {"lab"}, {"web"},
		{"-t", "MX", "lab"}, {"-t", "NS", "lab"}, {"-t", "SOA", "lab"}, {"-t", "TXT", "info.lab"},
		{"-t", "SRV", "_http._tcp.lab"}, {"-t", "AAAA", "web.lab"}, {"-t", "CNAME", "www.lab"},
		{"-t", "MX", "web.lab"}, {"-t", "PTR", "99.0.201.10.in-addr.arpa"},
		{"10.201.0.5"}, {"fd00:201::5"}, {"10.201.0.99"}, {"10.201.0.77"},
		{"nosuch.lab"}, {"nosuch"}, {"example.com"},
		{"-v", "web.lab"}, {"-v", "nosuch.lab"}, {"-a", "info.lab"}, {"-v", "-t", "SOA", "lab"},
		{"web.lab", "10.201.0.1"}, {"-T", "www.lab"}, {"-r", "-v", "-t", "A", "web.lab"},
		{"-p", "5353", "web.lab", "10.201.0.1"}, {"-4", "web.lab", "fd00:201::1"},
		{"-t", "BOGUS", "web.lab"}, {"-Z", "web.lab"}, {},
		{"-c", "CH", "-t", "TXT", "version.bind", "10.201.0.1"}, {"-N", "3", "-v", "nosuch.lab"},
		{"-6", "-t", "A", "web.lab"}, {"-4", "-s", "-t", "A", "web"}, {"-d", "-t", "PTR", "10.201.0.99"},
		{"-t", "A", "-N", "x", "web"}, {"-t", "TYPE99", "web.lab"}, {"-W", "2", "-t", "TXT", "info"},
		{"-p", "70000", "-t", "A", "web.lab", "10.201.0.1"}, {"-W", "x", "-R", "x", "-t", "A", "web"}, {"-c", "XX", "lab"},
	}
	if _, _, ok := d.RunReal(t, "host", "-V"); !ok {
		t.Skip("bind's host not installed (scripts/test-deps.sh installs bind9-host); only our answers were checked")
	}
	for _, args := range cases {
		want, wst, _ := d.RunReal(t, "host", args...)
		got, gst := run(args...)
		if gst != wst {
			t.Errorf("host %s: exit %d, bind's %d", strings.Join(args, " "), gst, wst)
		}
		if diff := dnstest.Compare(strings.Split(strings.TrimSuffix(want, "\n"), "\n"), got); diff != "" {
			t.Errorf("host %s: %s\nours:\n%s\nbind's:\n%s", strings.Join(args, " "), diff, got, want)
		}
	}
}
