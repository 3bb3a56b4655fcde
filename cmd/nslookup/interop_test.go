//go:build linux

package nslookup

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
// over a TAP device, and runs bind's nslookup (bind9-dnsutils) in the
// namespace with the same resolv.conf and arguments: the output lines
// and exit statuses must be the same. Without bind's nslookup only our
// answers are checked.
func TestInteropDnsmasq(t *testing.T) {
	d := dnstest.StartDnsmasq(t)
	var runIn func(stdin string, args ...string) (string, int)
	run := func(args ...string) (string, int) { return runIn("", args...) }
	runIn = func(stdin string, args ...string) (string, int) {
		var out bytes.Buffer
		env := &applet.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out, Getenv: d.Getenv}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st := Applet(d.Opener()).Main(ctx, env, append([]string{"nslookup"}, args...))
		return out.String(), st
	}
	want := "Server:\t\t10.201.0.1\nAddress:\t10.201.0.1#53\n\nNon-authoritative answer:\nName:\tweb.lab\nAddress: 10.201.0.5\n\n"
	if out, st := run("-type=A", "web"); st != 0 || out != want {
		t.Fatalf("nslookup -type=A web: status %d\n%s", st, out)
	}
	cases := [][]string{
		{"web.lab"}, {"www.lab"}, {"chain.lab"}, {"lab"}, {"web"},
		{"-query=mx", "lab"}, {"-type=NS", "lab"}, {"-type=SOA", "lab"}, {"-type=TXT", "info.lab"},
		{"-type=SRV", "_http._tcp.lab"}, {"-type=AAAA", "web.lab"}, {"-type=CNAME", "www.lab"},
		{"-type=MX", "web.lab"}, {"-type=PTR", "99.0.201.10.in-addr.arpa"}, {"-type=ANY", "lab"},
		{"10.201.0.5"}, {"fd00:201::5"}, {"10.201.0.99"}, {"10.201.0.77"}, {"-type=mx", "10.201.0.5"},
		{"nosuch.lab"}, {"nosuch"}, {"example.com"},
		{"-debug", "web.lab"}, {"-debug", "nosuch"}, {"-debug", "-type=SOA", "lab"},
		{"web.lab", "10.201.0.1"}, {"web.lab", "ns.lab"}, {"web.lab", "nosuchserver.lab"},
		{"-vc", "www.lab"}, {"-norecurse", "-debug", "web.lab"}, {"-domain=lab", "web"}, {"-nosearch", "web"},
		{"-port=5353", "-retry=2", "web.lab", "10.201.0.1"}, {"web.lab", "-timeout=2"},
		{"-port=x", "-timeout=x", "-retry=x", "-ndots=x", "-type=A", "web.lab", "10.201.0.1"},
		{"-port=99999", "-ndots=-1", "-timeout=99999999999", "-type=A", "web.lab"}, {"-retry=0", "-timeout=0", "-type=A", "web"},
		{"-bogus", "web.lab"}, {"-type=BOGUS", "web.lab"}, {"-ndots=2", "nosuch.lab"},
	}
	if _, _, ok := d.RunReal(t, "nslookup", "-version"); !ok {
		t.Skip("bind's nslookup not installed (scripts/test-deps.sh installs bind9-dnsutils); only our answers were checked")
	}
	for _, args := range cases {
		want, wst, _ := d.RunReal(t, "nslookup", args...)
		got, gst := run(args...)
		if gst != wst {
			t.Errorf("nslookup %s: exit %d, bind's %d", strings.Join(args, " "), gst, wst)
		}
		if diff := dnstest.Compare(strings.Split(strings.TrimSuffix(want, "\n"), "\n"), got); diff != "" {
			t.Errorf("nslookup %s: %s\nours:\n%s\nbind's:\n%s", strings.Join(args, " "), diff, got, want)
		}
	}
	// Interactive sessions: commands on stdin.
	for _, in := range []string{
		"web.lab\nset type=mx\nlab\nserver 10.201.0.1\nnosuch.lab\nwww.lab 10.201.0.1\nset bogus\nls lab\nhelp\nexit\nweb.lab\n",
		"set all\nset vc\nset debug\nset port=53\nset timeout=3\nset ndots=2\nset all\nset nodebug\nset type=SOA\nlab\n",
		"set domain=lab\nset q=TXT\ninfo\nset nosearch\ninfo\n10.201.0.5\n",
		"server nosuchserver.lab\nweb.lab\n",
	} {
		want, wst, _ := d.RunRealInput(t, in, "nslookup")
		if !strings.Contains(want, "server") {
			t.Fatalf("bind's nslookup <<%q printed no server line:\n%s", in, want)
		}
		got, gst := runIn(in)
		if gst != wst {
			t.Errorf("nslookup <<%q: exit %d, bind's %d", in, gst, wst)
		}
		if diff := dnstest.Compare(strings.Split(strings.TrimSuffix(want, "\n"), "\n"), got); diff != "" {
			t.Errorf("nslookup <<%q: %s\nours:\n%s\nbind's:\n%s", in, diff, got, want)
		}
	}
}
