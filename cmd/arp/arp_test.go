package arp

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

func nb(addr, mac, state string) host.Neighbor {
	return host.Neighbor{Addr: netip.MustParseAddr(addr), MAC: mac, Dev: "vethA", State: state, Permanent: state == "PERMANENT"}
}

// capture is the cache of the compat capture, in /proc/net/arp order.
func capture() []host.Neighbor {
	return []host.Neighbor{
		nb("10.200.0.98", "", "INCOMPLETE"),
		nb("10.200.0.99", "", "FAILED"),
		nb("10.200.0.2", "02:00:00:00:00:0b", "REACHABLE"),
	}
}

func withStatic() []host.Neighbor {
	c := capture()
	return []host.Neighbor{c[0], c[1],
		nb("10.200.0.51", "02:00:00:00:00:51", "STALE"),
		nb("10.200.0.50", "02:00:00:00:00:50", "PERMANENT"),
		c[2],
		{Addr: netip.MustParseAddr("fe80::1"), MAC: "02:00:00:00:00:01", Dev: "vethA", State: "REACHABLE"}, // not ARP
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	golden(t, "n.txt", Format(capture(), Filter{}, false, false))
	golden(t, "an.txt", Format(capture(), Filter{}, true, false))
	golden(t, "temp_n.txt", Format(withStatic(), Filter{}, false, false))
	golden(t, "temp_an.txt", Format(withStatic(), Filter{}, true, false))
	golden(t, "v_n.txt", Format(withStatic(), Filter{}, false, true))
	golden(t, "host_n.txt", Format(withStatic(), Filter{Addr: netip.MustParseAddr("10.200.0.50")}, false, false))
	golden(t, "nomatch_i.txt", Format(capture(), Filter{Dev: "nosuch0"}, false, false))
	golden(t, "noentry.txt", Format(capture(), Filter{Addr: netip.MustParseAddr("10.200.0.77")}, false, false))
	s := capture()
	s = append(s[:2], s[2], nb("10.200.0.50", "02:00:00:00:00:50", "PERMANENT"))
	s[2], s[3] = s[3], s[2]
	golden(t, "s_n.txt", Format(s, Filter{}, false, false))
	pub := append(capture(), host.Neighbor{Addr: netip.MustParseAddr("10.200.0.52"), Dev: "vethA", State: "PERMANENT", Permanent: true, Proxy: true})
	golden(t, "pub_n.txt", Format(pub, Filter{}, false, false))
	if got := Format(nil, Filter{}, false, false); got != "" {
		t.Errorf("empty cache: %q", got)
	}
}

type fakeHost struct {
	host.Host
	ns []host.Neighbor
}

func (f *fakeHost) Neighbors(context.Context) ([]host.Neighbor, error) { return f.ns, nil }
func (f *fakeHost) Close() error                                       { return nil }

func runOpen(t *testing.T, open host.Opener, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Applet(open).Main(context.Background(), env, append([]string{"arp"}, args...))
	return out.String(), errb.String(), code
}

func opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return h, nil }
}

func TestMainFlags(t *testing.T) {
	open := opener(&fakeHost{ns: withStatic()})
	cases := []struct {
		args []string
		file string
	}{
		{[]string{"-n"}, "temp_n.txt"},
		{[]string{"-an"}, "temp_an.txt"},
		{[]string{"-a", "-n"}, "temp_an.txt"},
		{[]string{"-v", "-n"}, "v_n.txt"},
		{[]string{"-vn"}, "v_n.txt"},
		{[]string{"-n", "10.200.0.50"}, "host_n.txt"},
		{[]string{"-i", "vethA", "-e"}, "temp_n.txt"},
	}
	for _, c := range cases {
		out, errs, code := runOpen(t, open, c.args...)
		want, _ := os.ReadFile(filepath.Join("testdata", c.file))
		if code != 0 || errs != "" || out != string(want) {
			t.Errorf("arp %v: %d %q %q", c.args, code, out, errs)
		}
	}
	out, _, code := runOpen(t, opener(&fakeHost{ns: capture()}), "-i", "nosuch0", "-n")
	if code != 0 || out != "arp: in 3 entries no match found.\n" {
		t.Errorf("arp -i nosuch0: %d %q", code, out)
	}
	out, _, code = runOpen(t, open, "-an", "10.200.0.77")
	if code != 0 || out != "arp: in 5 entries no match found.\n" {
		t.Errorf("arp -an 10.200.0.77: %d %q", code, out)
	}
	out, _, code = runOpen(t, open, "-n", "10.200.0.77")
	if code != 0 || out != "10.200.0.77 (10.200.0.77) -- no entry\n" {
		t.Errorf("arp -n 10.200.0.77: %d %q", code, out)
	}
	out, errs, code := runOpen(t, open, "-nZ")
	if code != 3 || out != "" || !strings.HasPrefix(errs, "arp: invalid option -- 'Z'\nUsage:") {
		t.Errorf("arp -nZ: %d %q %q", code, out, errs)
	}
	_, errs, code = runOpen(t, open, "-n", "-i")
	if code != 3 || !strings.HasPrefix(errs, "arp: option requires an argument -- 'i'\nUsage:") {
		t.Errorf("arp -n -i: %d %q", code, errs)
	}
	out, _, code = runOpen(t, open, "--help")
	if code != 0 || !strings.HasPrefix(out, "Usage:\n  arp") {
		t.Errorf("arp --help: %d %q", code, out)
	}
	_, errs, code = runOpen(t, open, "-s", "10.200.0.5")
	if code != 3 || !strings.HasPrefix(errs, "Usage:") {
		t.Errorf("arp -s without MAC: %d %q", code, errs)
	}
}

func TestOpenFailure(t *testing.T) {
	open := func(context.Context, string, func(string) string) (host.Host, error) {
		return nil, errors.New("no netd running")
	}
	out, errs, code := runOpen(t, open, "-n")
	if code != 1 || out != "" || errs != "arp: no netd running\n" {
		t.Errorf("open failure: %d %q %q", code, out, errs)
	}
}

type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

func startHost(t *testing.T) host.Opener {
	t.Helper()
	h, err := stackhost.Start("emu:arp-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.AddAddress(context.Background(), "eth0", netip.MustParsePrefix("192.168.1.100/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	return opener(noClose{h})
}

func TestStackSetDelete(t *testing.T) {
	open := startHost(t)
	out, errs, code := runOpen(t, open, "-s", "192.168.1.7", "02:00:00:00:00:07")
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("arp -s: %d %q %q", code, out, errs)
	}
	out, _, _ = runOpen(t, open, "-n")
	row := "192.168.1.7              ether   02:00:00:00:00:07   CM                    eth0\n"
	if !strings.HasPrefix(out, "Address                  HWtype  HWaddress           Flags Mask            Iface\n") || !strings.Contains(out, row) {
		t.Fatalf("arp -n after -s:\n%s", out)
	}
	out, _, _ = runOpen(t, open, "-an")
	if !strings.Contains(out, "? (192.168.1.7) at 02:00:00:00:00:07 [ether] PERM on eth0\n") {
		t.Errorf("arp -an after -s:\n%s", out)
	}
	out, errs, code = runOpen(t, open, "-d", "192.168.1.7")
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("arp -d: %d %q %q", code, out, errs)
	}
	if out, _, _ = runOpen(t, open, "-n"); strings.Contains(out, "192.168.1.7 ") {
		t.Errorf("entry still listed after -d:\n%s", out)
	}
	out, errs, code = runOpen(t, open, "-d", "192.168.1.7")
	if code != 255 || out != "No ARP entry for 192.168.1.7\n" || errs != "" {
		t.Errorf("second arp -d: %d %q %q", code, out, errs)
	}
}

func TestStackErrors(t *testing.T) {
	open := startHost(t)
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-s", "192.168.1.8", "zz:00:00:00:00:08"}, "arp: invalid hardware address\n"},
		{[]string{"-s", "10.200.9.53", "02:00:00:00:00:53"}, "SIOCSARP: Network is unreachable\n"},
		{[]string{"-s", "nosuch.lab", "02:00:00:00:00:53"}, "nosuch.lab: Unknown host\n"},
		{[]string{"-i", "eth0", "-s", "192.168.1.9", "02:00:00:00:00:09", "pub"}, "SIOCSARP: Operation not supported\n"},
		{[]string{"-i", "nosuch0", "-s", "192.168.1.9", "02:00:00:00:00:09"}, "SIOCSARP: No such device\n"},
	}
	for _, c := range cases {
		out, errs, code := runOpen(t, open, c.args...)
		if code != 255 || out != "" || errs != c.stderr {
			t.Errorf("arp %v: %d %q %q, want stderr %q", c.args, code, out, errs, c.stderr)
		}
	}
	if out, _, _ := runOpen(t, open, "-n"); out != "" {
		t.Errorf("failed -s left entries:\n%s", out)
	}
}
