package route

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// captured are the routes of the compat capture (route -n), as a host
// would report them.
func captured() []host.Route {
	return []host.Route{
		{Dst: netip.MustParsePrefix("10.200.0.0/24"), Dev: "vethA", Flags: host.RouteUp, Protocol: "kernel"},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.200.0.2"), Dev: "vethA"},
	}
}

func captured6() []host.Route {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	return []host.Route{
		{Dst: p("fd00:200::/64"), Dev: "vethA", Metric: 256},
		{Dst: p("fe80::/64"), Dev: "vethA", Metric: 256},
		{Dst: p("::/0"), Gateway: a("fd00:200::2"), Dev: "vethA", Metric: 1024},
		{Dst: p("::1/128"), Dev: "lo", Type: "local"},
		{Dst: p("fd00:200::1/128"), Dev: "vethA", Type: "local"},
		{Dst: p("fe80::ff:fe00:a/128"), Dev: "vethA", Type: "local"},
		{Dst: p("ff00::/8"), Dev: "vethA", Metric: 256},
		{Dst: p("::/0"), Dev: "lo", Metric: -1, Type: "unreachable"},
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

func TestGoldenIPv4(t *testing.T) {
	golden(t, "n.txt", FormatIPv4(captured(), true, 0))
	golden(t, "plain.txt", FormatIPv4(captured(), false, 0))
	golden(t, "e.txt", FormatIPv4(captured(), false, 1))
	golden(t, "ee_n.txt", FormatIPv4(captured(), true, 2))

	p, a := netip.MustParsePrefix, netip.MustParseAddr
	gw := a("10.200.0.2")
	many := append(captured(),
		host.Route{Dst: p("10.200.54.0/24"), Gateway: gw, Dev: "vethA", Metric: 5},
		host.Route{Dst: p("10.200.53.0/24"), Type: "unreachable"},
		host.Route{Dst: p("10.200.52.5/32"), Gateway: gw, Dev: "vethA"},
		host.Route{Dst: p("10.200.51.0/24"), Gateway: gw, Dev: "vethA"},
		host.Route{Dst: p("10.200.50.0/24"), Dev: "vethA"},
		host.Route{Dst: p("fd00::/64"), Dev: "vethA"}, // not in the IPv4 table
	)
	golden(t, "many_n.txt", FormatIPv4(many, true, 0))
}

func TestGoldenIPv6(t *testing.T) {
	rs := append(captured(), captured6()...)
	golden(t, "inet6_n.txt", FormatIPv6(rs, true))
	golden(t, "inet6.txt", FormatIPv6(rs, false))
}

// fakeHost serves fixed routes and records changes.
type fakeHost struct {
	host.Host
	routes []host.Route
	added  []host.Route
	err    error
}

func (f *fakeHost) Routes(context.Context) ([]host.Route, error) { return f.routes, nil }
func (f *fakeHost) AddRoute(_ context.Context, r host.Route) error {
	f.added = append(f.added, r)
	return f.err
}
func (f *fakeHost) Close() error { return nil }

func runWith(t *testing.T, h host.Host, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	open := func(context.Context, string, func(string) string) (host.Host, error) { return h, nil }
	return runOpen(t, open, args...)
}

func runOpen(t *testing.T, open host.Opener, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Applet(open).Main(context.Background(), env, append([]string{"route"}, args...))
	return out.String(), errb.String(), code
}

func TestMainListFlags(t *testing.T) {
	f := &fakeHost{routes: append(captured(), captured6()...)}
	out, _, code := runWith(t, f, "-n")
	want, _ := os.ReadFile("testdata/n.txt")
	if code != 0 || out != string(want) {
		t.Errorf("route -n: %d %q", code, out)
	}
	want, _ = os.ReadFile("testdata/inet6_n.txt")
	for _, args := range [][]string{{"-6n"}, {"-n", "-A", "inet6"}} {
		out, _, code = runWith(t, f, args...)
		if code != 0 || out != string(want) {
			t.Errorf("route %v: %d %q", args, code, out)
		}
	}
	want, _ = os.ReadFile("testdata/ee_n.txt")
	out, _, _ = runWith(t, f, "-ee", "-n")
	if out != string(want) {
		t.Errorf("route -ee -n: %q", out)
	}
}

func TestMainBadOption(t *testing.T) {
	f := &fakeHost{}
	out, errs, code := runWith(t, f, "-nZ")
	if code != 0 || out != "" || !strings.HasPrefix(errs, "route: invalid option -- 'Z'\nUsage: route") {
		t.Errorf("route -nZ: %d %q %q", code, out, errs)
	}
	_, errs, code = runWith(t, f, "-A")
	if code != 0 || !strings.HasPrefix(errs, "route: option requires an argument -- 'A'\nUsage: route") {
		t.Errorf("route -A: %d %q", code, errs)
	}
	_, errs, code = runWith(t, f, "--frob")
	if code != 0 || !strings.HasPrefix(errs, "route: unrecognized option '--frob'\n") {
		t.Errorf("route --frob: %d %q", code, errs)
	}
	_, errs, code = runWith(t, f, "frobnicate")
	if code != 3 || !strings.HasPrefix(errs, "Usage: route") {
		t.Errorf("route frobnicate: %d %q", code, errs)
	}
	out, _, code = runWith(t, f, "--help")
	if code != 0 || !strings.HasPrefix(out, "Usage: route") {
		t.Errorf("route --help: %d %q", code, out)
	}
}

func TestOpenFailure(t *testing.T) {
	open := func(context.Context, string, func(string) string) (host.Host, error) {
		return nil, errors.New("no netd running")
	}
	out, errs, code := runOpen(t, open, "-n")
	if code != 1 || out != "" || errs != "route: no netd running\n" {
		t.Errorf("open failure: %d %q %q", code, out, errs)
	}
}

func TestParseRoute(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	ok := []struct {
		words string
		inet6 bool
		want  host.Route
	}{
		{"default gw 10.0.0.1", false, host.Route{Dst: p("0.0.0.0/0"), Gateway: a("10.0.0.1")}},
		{"-net 10.9.0.0 netmask 255.255.0.0 dev eth0", false, host.Route{Dst: p("10.9.0.0/16"), Dev: "eth0"}},
		{"-net 10.9.0.0/16 gw 10.0.0.1 metric 5 eth0", false, host.Route{Dst: p("10.9.0.0/16"), Gateway: a("10.0.0.1"), Metric: 5, Dev: "eth0"}},
		{"-host 10.9.0.5 gateway 10.0.0.1", false, host.Route{Dst: p("10.9.0.5/32"), Gateway: a("10.0.0.1")}},
		{"10.9.0.5 device eth0", false, host.Route{Dst: p("10.9.0.5/32"), Dev: "eth0"}},
		{"-net 10.9.0.0/24 reject", false, host.Route{Dst: p("10.9.0.0/24"), Type: "unreachable"}},
		{"-net 10.9.0.0 dev eth0", false, host.Route{Dst: p("10.9.0.0/16"), Dev: "eth0"}},
		{"fd00:250::/64 gw fd00:200::2", true, host.Route{Dst: p("fd00:250::/64"), Gateway: a("fd00:200::2"), Metric: 1}},
		{"default dev eth0", true, host.Route{Dst: p("::/0"), Dev: "eth0", Metric: 1}},
	}
	for _, c := range ok {
		got, err := parseRoute(strings.Fields(c.words), c.inet6)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.words, got, err, c.want)
		}
	}
	bad := []struct{ words, msg string }{
		{"-net 10.200.55.1 netmask 255.255.255.0 dev eth0", "route: netmask doesn't match route address"},
		{"10.200.55.0/24 gw 10.200.0.2", "route: netmask 000000ff doesn't make sense with host route"},
		{"-net 10.0.0.0 netmask 255.0.255.0", "route: bogus netmask 255.0.255.0"},
		{"-net 10.0.0.0 netmask 255.0.0.0 foo bar", ""},
		{"-net 10.200.55.0/24 gw nosuch.lab", "nosuch.lab: Unknown host"},
	}
	for _, c := range bad {
		_, err := parseRoute(strings.Fields(c.words), false)
		if err == nil || err.Error() != c.msg {
			t.Errorf("%q: error %v, want %q", c.words, err, c.msg)
		}
	}
}

func TestModifyErrors(t *testing.T) {
	f := &fakeHost{}
	_, errs, code := runWith(t, f, "add", "-net", "10.200.55.0/24", "gw", "nosuch.lab")
	if code != 6 || errs != "nosuch.lab: Unknown host\n" || len(f.added) != 0 {
		t.Errorf("unknown host: %d %q", code, errs)
	}
	_, errs, code = runWith(t, f, "add", "-net", "10.200.55.1", "netmask", "255.255.255.0", "dev", "vethA")
	if code != 3 || !strings.HasPrefix(errs, "route: netmask doesn't match route address\nUsage: inet_route") {
		t.Errorf("netmask mismatch: %d %q", code, errs)
	}
	f.err = &host.Error{Errno: 17, Msg: "exists"} // EEXIST
	_, errs, code = runWith(t, f, "add", "default", "gw", "10.200.0.2")
	if code != 7 || errs != "SIOCADDRT: File exists\n" {
		t.Errorf("EEXIST: %d %q", code, errs)
	}
}

// noClose lets one stack serve several runs of the applet, which closes
// the host it opens.
type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

func startHost(t *testing.T) (*stackhost.Host, host.Opener) {
	t.Helper()
	h, err := stackhost.Start("emu:route-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.AddAddress(context.Background(), "eth0", netip.MustParsePrefix("192.168.1.100/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	return h, func(context.Context, string, func(string) string) (host.Host, error) { return noClose{h}, nil }
}

func mustRun(t *testing.T, open host.Opener, args ...string) string {
	t.Helper()
	out, errs, code := runOpen(t, open, args...)
	if code != 0 || errs != "" {
		t.Fatalf("route %v: exit %d, stderr %q", args, code, errs)
	}
	return out
}

func TestStackAddDel(t *testing.T) {
	_, open := startHost(t)
	mustRun(t, open, "add", "default", "gw", "192.168.1.1")
	out := mustRun(t, open, "-n")
	if !strings.Contains(out, "\n0.0.0.0         192.168.1.1     0.0.0.0         UG    0      0        0 eth0\n") {
		t.Fatalf("default route not listed:\n%s", out)
	}
	if !strings.Contains(out, "\n192.168.1.0     0.0.0.0         255.255.255.0   U     0      0        0 eth0\n") {
		t.Errorf("connected route not listed:\n%s", out)
	}
	mustRun(t, open, "del", "default")
	if out := mustRun(t, open, "-n"); strings.Contains(out, "192.168.1.1 ") {
		t.Errorf("default route still listed after del:\n%s", out)
	}
	_, errs, code := runOpen(t, open, "del", "default")
	if code != 7 || errs != "SIOCDELRT: No such process\n" {
		t.Errorf("second del: %d %q", code, errs)
	}

	mustRun(t, open, "add", "-net", "10.9.0.0", "netmask", "255.255.0.0", "dev", "eth0")
	out = mustRun(t, open, "-n")
	if !strings.Contains(out, "\n10.9.0.0        0.0.0.0         255.255.0.0     U     0      0        0 eth0\n") {
		t.Errorf("net route not listed:\n%s", out)
	}
	mustRun(t, open, "add", "-host", "10.9.1.5", "gw", "192.168.1.1")
	out = mustRun(t, open, "-n")
	if !strings.Contains(out, "\n10.9.1.5        192.168.1.1     255.255.255.255 UGH   0      0        0 eth0\n") {
		t.Errorf("host route not listed:\n%s", out)
	}
	mustRun(t, open, "add", "-net", "10.8.0.0/24", "reject")
	out = mustRun(t, open, "-n")
	if !strings.Contains(out, "\n10.8.0.0        -               255.255.255.0   !     0      -        0 -\n") {
		t.Errorf("reject route not listed:\n%s", out)
	}
}

func TestStackErrors(t *testing.T) {
	_, open := startHost(t)
	_, errs, code := runOpen(t, open, "add", "-net", "10.7.0.0/24", "gw", "192.0.2.1")
	if code != 7 || errs != "SIOCADDRT: Network is unreachable\n" {
		t.Errorf("unreachable gateway: %d %q", code, errs)
	}
	_, errs, code = runOpen(t, open, "add", "-net", "10.7.0.0/24", "dev", "nosuch0")
	if code != 7 || errs != "SIOCADDRT: No such device\n" {
		t.Errorf("unknown device: %d %q", code, errs)
	}
	_, errs, code = runOpen(t, open, "del", "-net", "10.7.99.0/24")
	if code != 7 || errs != "SIOCDELRT: No such process\n" {
		t.Errorf("missing route: %d %q", code, errs)
	}
}

// TestPipeline runs the output through awk as scripts do to find the
// default gateway.
func TestPipeline(t *testing.T) {
	awk, err := exec.LookPath("awk")
	if err != nil {
		t.Skip("no awk")
	}
	_, open := startHost(t)
	mustRun(t, open, "add", "default", "gw", "192.168.1.1")
	out := mustRun(t, open, "-n")
	cmd := exec.Command(awk, `$1=="0.0.0.0"{print $2}`)
	cmd.Stdin = strings.NewReader(out)
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "192.168.1.1\n" {
		t.Errorf("awk gave %q", got)
	}
}

func TestStackIPv6(t *testing.T) {
	_, open := startHost(t)
	mustRun(t, open, "-A", "inet6", "add", "fd00:250::/64", "dev", "eth0")
	mustRun(t, open, "-6", "add", "fd00:251::/64", "gw", "fe80::1", "dev", "eth0")
	out := mustRun(t, open, "-6n")
	for _, row := range []string{
		"\nfd00:250::/64                  ::                         U    1   0      0 eth0\n",
		"\nfd00:251::/64                  fe80::1                    UG   1   0      0 eth0\n",
	} {
		if !strings.Contains(out, row) {
			t.Errorf("route -6n lacks %q:\n%s", row, out)
		}
	}
	if out := mustRun(t, open, "-n"); strings.Contains(out, "fd00") {
		t.Errorf("IPv6 routes in the IPv4 table:\n%s", out)
	}
	mustRun(t, open, "-6", "del", "fd00:250::/64")
	if out := mustRun(t, open, "-6n"); strings.Contains(out, "fd00:250::") {
		t.Errorf("route still listed after del:\n%s", out)
	}
	_, errs, code := runOpen(t, open, "-6", "del", "fd00:250::/64")
	if code != 7 || errs != "SIOCDELRT: No such process\n" {
		t.Errorf("second del: %d %q", code, errs)
	}
}
