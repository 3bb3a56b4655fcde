package ifconfig

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// shared is a host Main cannot close: the tests run Main many times on
// one stack, and t.Cleanup closes it.
type shared struct{ host.Host }

func (shared) Close() error { return nil }

// lab is one in-process stack (lo + eth0 on an emulated network) that
// every run of a test goes to.
type lab struct {
	t    *testing.T
	h    host.Host
	link string // the --link value the last run got
}

func newLab(t *testing.T) *lab {
	t.Helper()
	h, err := stackhost.Start("emu:" + strings.ReplaceAll(t.Name(), "/", "_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &lab{t: t, h: h}
}

func (l *lab) open(_ context.Context, link string, _ func(string) string) (host.Host, error) {
	l.link = link
	return shared{l.h}, nil
}

// run runs ifconfig with args and returns stdout, stderr and the status.
func run(t *testing.T, open host.Opener, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Applet(open).Main(context.Background(), env, append([]string{"ifconfig"}, args...))
	return out.String(), errb.String(), code
}

// ok runs ifconfig and fails the test unless it succeeds silently on stderr.
func (l *lab) ok(args ...string) string {
	l.t.Helper()
	out, errs, code := run(l.t, l.open, args...)
	if code != 0 || errs != "" {
		l.t.Fatalf("ifconfig %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs ifconfig and checks its stderr and status exactly.
func (l *lab) fails(wantErr string, wantCode int, args ...string) string {
	l.t.Helper()
	out, errs, code := run(l.t, l.open, args...)
	if errs != wantErr || code != wantCode {
		l.t.Errorf("ifconfig %s: exit %d, stderr %q; want exit %d, stderr %q",
			strings.Join(args, " "), code, errs, wantCode, wantErr)
	}
	return out
}

func header(block string) string { return strings.SplitN(block, "\n", 2)[0] }

func TestSetAddressNetmask(t *testing.T) {
	l := newLab(t)
	if out := l.ok("eth0", "192.168.1.100", "netmask", "255.255.255.0"); out != "" {
		t.Errorf("setting printed %q", out)
	}
	out := l.ok("eth0")
	if !strings.Contains(out, "\n        inet 192.168.1.100  netmask 255.255.255.0  broadcast 192.168.1.255\n") {
		t.Errorf("ifconfig eth0:\n%s", out)
	}
	if !strings.HasPrefix(out, "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n") {
		t.Errorf("header: %q", header(out))
	}
	// A new address replaces the old one (one IPv4 address per label).
	l.ok("eth0", "192.168.2.1", "netmask", "255.255.255.0", "broadcast", "192.168.2.127")
	out = l.ok("eth0")
	if !strings.Contains(out, "inet 192.168.2.1  netmask 255.255.255.0  broadcast 192.168.2.127\n") || strings.Contains(out, "192.168.1.100") {
		t.Errorf("after readdressing:\n%s", out)
	}
	// netmask alone moves a computed broadcast with it, keeps a set one.
	l.ok("eth0", "netmask", "255.255.0.0")
	if out := l.ok("eth0"); !strings.Contains(out, "inet 192.168.2.1  netmask 255.255.0.0  broadcast 192.168.2.127\n") {
		t.Errorf("after netmask with a set broadcast:\n%s", out)
	}
	l.ok("eth0", "192.168.9.9")
	l.ok("eth0", "netmask", "255.255.255.0")
	if out := l.ok("eth0"); !strings.Contains(out, "inet 192.168.9.9  netmask 255.255.255.0  broadcast 192.168.9.255\n") {
		t.Errorf("after netmask with a computed broadcast:\n%s", out)
	}
}

// Without a netmask the classful one is used, and ADDR/LEN sets the
// mask; the broadcast follows the mask in both.
func TestClassfulAndCIDR(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "10.200.7.1")
	if out := l.ok("eth0"); !strings.Contains(out, "inet 10.200.7.1  netmask 255.0.0.0  broadcast 10.255.255.255\n") {
		t.Errorf("classful:\n%s", out)
	}
	l.ok("eth0", "10.200.7.1/25")
	if out := l.ok("eth0"); !strings.Contains(out, "inet 10.200.7.1  netmask 255.255.255.128  broadcast 10.200.7.127\n") {
		t.Errorf("CIDR:\n%s", out)
	}
	l.ok("eth0", "172.16.5.4", "mtu", "1400")
	if out := l.ok("eth0"); !strings.Contains(out, "inet 172.16.5.4  netmask 255.255.0.0  broadcast 172.16.255.255\n") ||
		!strings.Contains(header(out), "mtu 1400") {
		t.Errorf("class B with mtu:\n%s", out)
	}
	// 0.0.0.0 removes the IPv4 address.
	l.ok("eth0", "0.0.0.0")
	if out := l.ok("eth0"); strings.Contains(out, "inet ") {
		t.Errorf("after 0.0.0.0:\n%s", out)
	}
}

func TestUpDown(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "down")
	out := l.ok("eth0")
	if h := header(out); h != "eth0: flags=4098<BROADCAST,MULTICAST>  mtu 1500" {
		t.Errorf("down: %q", h)
	}
	if list := l.ok(); strings.Contains(list, "eth0") || !strings.Contains(list, "lo: ") {
		t.Errorf("ifconfig lists a down interface:\n%s", list)
	}
	if list := l.ok("-a"); !strings.HasPrefix(list, "eth0: flags=4098") {
		t.Errorf("ifconfig -a leaves out a down interface:\n%s", list)
	}
	l.ok("eth0", "up")
	if h := header(l.ok("eth0")); !strings.HasPrefix(h, "eth0: flags=4163<UP,") {
		t.Errorf("up: %q", h)
	}
	// Setting an address brings the interface up, as net-tools does.
	l.ok("eth0", "down")
	l.ok("eth0", "10.1.1.1", "netmask", "255.255.255.0")
	if h := header(l.ok("eth0")); !strings.HasPrefix(h, "eth0: flags=4163<UP,") {
		t.Errorf("after an address: %q", h)
	}
}

func TestMTU(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "mtu", "1400")
	if h := header(l.ok("eth0")); !strings.HasSuffix(h, "  mtu 1400") {
		t.Errorf("mtu: %q", h)
	}
	l.fails("SIOCSIFMTU: Invalid argument\n", 1, "eth0", "mtu", "-5")
	l.fails("SIOCSIFMTU: Invalid argument\n", 1, "eth0", "mtu", "100000")
}

func TestHWEther(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "hw", "ether", "02:00:00:00:00:EE")
	if out := l.ok("eth0"); !strings.Contains(out, "\n        ether 02:00:00:00:00:ee  txqueuelen 1000  (Ethernet)\n") {
		t.Errorf("hw ether:\n%s", out)
	}
	l.fails("02:00:zz:00:00:01: invalid ether address.\n", 1, "eth0", "hw", "ether", "02:00:zz:00:00:01")
	l.fails("SIOCSIFHWADDR: Operation not supported (hardware type ax25 on this stack)\n", 1,
		"eth0", "hw", "ax25", "AB1CDE")
	// An unknown hardware type is a usage error (net-tools E_OPTERR).
	_, errs, code := run(t, l.open, "eth0", "hw", "bogus", "1")
	if code != exitOptErr || !strings.HasPrefix(errs, "Usage:\n") {
		t.Errorf("hw bogus: exit %d, stderr %q", code, errs)
	}
}

func TestPromisc(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "promisc")
	if h := header(l.ok("eth0")); h != "eth0: flags=4419<UP,BROADCAST,RUNNING,PROMISC,MULTICAST>  mtu 1500" {
		t.Errorf("promisc: %q", h)
	}
	if out := l.ok("-s"); !strings.Contains(out, " BMPRU\n") {
		t.Errorf("ifconfig -s:\n%s", out)
	}
	l.ok("eth0", "-promisc")
	if h := header(l.ok("eth0")); h != "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500" {
		t.Errorf("-promisc: %q", h)
	}
}

func inet6Lines(block string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(block, "\n") {
		if strings.Contains(l, "inet6 fd00") {
			b.WriteString(l)
		}
	}
	return b.String()
}

func TestIPv6AddDel(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "add", "fd00:207::1/64")
	l.ok("eth0", "inet6", "add", "fd00:207::5/64")
	got := inet6Lines(l.ok("eth0"))
	for _, want := range []string{
		"        inet6 fd00:207::1  prefixlen 64  scopeid 0x0<global>\n",
		"        inet6 fd00:207::5  prefixlen 64  scopeid 0x0<global>\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if out := l.ok("eth0"); !strings.Contains(out, "  scopeid 0x20<link>\n") {
		t.Errorf("no link-local address:\n%s", out)
	}
	l.ok("eth0", "del", "fd00:207::1/64")
	if got := inet6Lines(l.ok("eth0")); strings.Contains(got, "fd00:207::1 ") || !strings.Contains(got, "fd00:207::5 ") {
		t.Errorf("after del:\n%s", got)
	}
	// Linux matches the prefix length too: 128 when none is given.
	l.fails("SIOCDIFADDR: Cannot assign requested address\n", 1, "eth0", "del", "fd00:207::5")
	l.fails("SIOCDIFADDR: Cannot assign requested address\n", 1, "eth0", "del", "fd00:207::9/64")
	l.fails("fd00::zz: Unknown host\n", 1, "eth0", "add", "fd00::zz/64")
	_, errs, code := run(t, l.open, "eth0", "add", "fd00::1/129")
	if code != exitOptErr || !strings.HasPrefix(errs, "Usage:\n") {
		t.Errorf("prefix 129: exit %d, stderr %q", code, errs)
	}
	l.fails("SIOCSIFADDR: File exists\n", 1, "eth0", "add", "fd00:207::5/64")
}

func TestAlias(t *testing.T) {
	l := newLab(t)
	l.ok("eth0", "10.200.7.1", "netmask", "255.255.255.0")
	l.ok("eth0:1", "10.200.7.2", "netmask", "255.255.255.0", "up")
	out := l.ok("eth0:1")
	mac := ""
	if ife, err := l.h.Interface(context.Background(), "eth0"); err == nil {
		mac = ife.MAC
	}
	want := "eth0:1: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n" +
		"        inet 10.200.7.2  netmask 255.255.255.0  broadcast 10.200.7.255\n" +
		"        ether " + mac + "  txqueuelen 1000  (Ethernet)\n\n"
	diff(t, "ifconfig eth0:1", out, want)
	// The device keeps its own address; the list shows the alias after it.
	if dev := l.ok("eth0"); !strings.Contains(dev, "inet 10.200.7.1  netmask") {
		t.Errorf("eth0 after the alias:\n%s", dev)
	}
	list := l.ok()
	if i, j := strings.Index(list, "eth0: "), strings.Index(list, "\neth0:1: "); i < 0 || j < i {
		t.Errorf("alias not after its device:\n%s", list)
	}
	if short := l.ok("-s"); !strings.Contains(short, "eth0:1           1500      - no statistics available -") {
		t.Errorf("ifconfig -s:\n%s", short)
	}
	// IF:N down removes the alias; its device stays up with its address.
	l.ok("eth0:1", "down")
	if list := l.ok(); strings.Contains(list, "eth0:1") || strings.Contains(list, "10.200.7.2 ") {
		t.Errorf("alias still listed after down:\n%s", list)
	}
	if dev := l.ok("eth0"); !strings.Contains(dev, "inet 10.200.7.1 ") || !strings.Contains(header(dev), "<UP,") {
		t.Errorf("eth0 after alias down:\n%s", dev)
	}
	// A name with a colon and no address shows as Linux does: the
	// device's flags and link, no address.
	if out := l.ok("eth0:1"); strings.Contains(out, "inet") || !strings.HasPrefix(out, "eth0:1: flags=4163") {
		t.Errorf("removed alias:\n%s", out)
	}
	l.fails("SIOCSIFFLAGS: Cannot assign requested address\n", 255, "eth0:1", "down")
	// IF:N 0.0.0.0 removes an alias too, and does not bring anything up.
	l.ok("eth0:2", "10.200.7.3")
	if out := l.ok("eth0:2"); !strings.Contains(out, "inet 10.200.7.3  netmask 255.0.0.0  broadcast 10.255.255.255\n") {
		t.Errorf("classful alias:\n%s", out)
	}
	l.ok("eth0:2", "0.0.0.0")
	if list := l.ok(); strings.Contains(list, "eth0:2") {
		t.Errorf("alias still listed after 0.0.0.0:\n%s", list)
	}
	// add ADDR4 makes the next free alias with the device's mask.
	l.ok("eth0", "add", "10.200.7.9")
	if out := l.ok("eth0:0"); !strings.Contains(out, "inet 10.200.7.9  netmask 255.255.255.0  broadcast 10.200.7.255\n") {
		t.Errorf("add ADDR4:\n%s", out)
	}
	l.ok("eth0", "del", "10.200.7.9")
	if list := l.ok(); strings.Contains(list, "10.200.7.9 ") {
		t.Errorf("del ADDR4 left the alias:\n%s", list)
	}
}

func TestShortList(t *testing.T) {
	l := newLab(t)
	out := l.ok("-s")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0]+"\n" != ShortHeader ||
		!strings.HasPrefix(lines[1], "eth0             1500 ") || !strings.HasSuffix(lines[1], " BMRU") ||
		!strings.HasPrefix(lines[2], "lo              65536 ") || !strings.HasSuffix(lines[2], " LRU") {
		t.Errorf("ifconfig -s:\n%s", out)
	}
	if one := l.ok("-s", "lo"); !strings.HasPrefix(one, ShortHeader+"lo              65536 ") || strings.Count(one, "\n") != 2 {
		t.Errorf("ifconfig -s lo:\n%s", one)
	}
	// Real counters: lo's block has the fields scripts read.
	pipe(t, l.ok("lo"), "awk", []string{"/inet /{print $2, $4}"}, "127.0.0.1 255.0.0.0\n")
	pipe(t, l.ok("-a"), "grep", []string{"-c", "flags="}, "2\n")
}

func TestLinkFlag(t *testing.T) {
	l := newLab(t)
	l.ok("--link", "emu:x,loss=0.1", "-a")
	if l.link != "emu:x,loss=0.1" {
		t.Errorf("opener got link %q", l.link)
	}
}

// failing wraps a host so that address changes are refused with errno.
type failing struct {
	host.Host
	errno syscall.Errno
}

func (f failing) AddAddress(context.Context, string, netip.Prefix, netip.Addr) error {
	return &host.Error{Errno: f.errno, Msg: "refused"}
}

func TestErrors(t *testing.T) {
	l := newLab(t)
	l.fails("nosuch0: error fetching interface information: Device not found\n", 1, "nosuch0")
	l.fails("nosuch0:1: error fetching interface information: Device not found\n", 1, "nosuch0:1")
	l.fails("nosuch0: ERROR while getting interface flags: No such device\n", 255, "nosuch0", "up")
	l.fails("SIOCSIFADDR: No such device\nnosuch0: ERROR while getting interface flags: No such device\n", 255,
		"nosuch0", "10.0.0.1")
	l.fails("999.1.1.1: Unknown host\nifconfig: `--help' gives usage information.\n", 1, "eth0", "999.1.1.1")
	l.fails("ifconfig: option `-Z' not recognised.\nifconfig: `--help' gives usage information.\n", 1, "-Z")
	l.fails("ifconfig: option `--bogus' not recognised.\nifconfig: `--help' gives usage information.\n", 1, "--bogus", "eth0")
	l.fails("ifconfig: option `--link' requires an argument.\nifconfig: `--help' gives usage information.\n", 1, "--link")
	l.fails("foo: Unknown host\n", 1, "eth0", "netmask", "foo")
	l.ok("eth0", "10.9.9.9")
	l.fails("SIOCSIFNETMASK: Invalid argument\n", 1, "eth0", "netmask", "255.0.255.0")
	l.fails("SIOCSIFADDR: Invalid argument\n", 1, "eth0", "224.0.0.1")
	l.ok("eth0", "0.0.0.0")
	l.fails("SIOCSIFNETMASK: Cannot assign requested address\n", 1, "eth0", "netmask", "255.255.255.0")
	l.fails("SIOCSIFBRDADDR: Cannot assign requested address\n", 1, "eth0", "broadcast", "10.255.255.255")
	// A keyword without its argument, or netmask twice, is a usage error.
	for _, args := range [][]string{{"eth0", "mtu"}, {"eth0", "10.0.0.1", "netmask"},
		{"eth0", "netmask", "255.0.0.0", "netmask", "255.0.0.0"}, {"eth0", "10.0.0.1/33"}} {
		if _, errs, code := run(t, l.open, args...); code != exitOptErr || !strings.HasPrefix(errs, "Usage:\n  ifconfig") {
			t.Errorf("ifconfig %v: exit %d, stderr %q", args, code, errs)
		}
	}
	// What the stack cannot do is an error, never a silent success...
	l.fails("SIOCSIFTXQLEN: Operation not supported (txqueuelen 500 cannot be set on this stack)\n", 1,
		"eth0", "txqueuelen", "500")
	l.fails("SIOCSIFFLAGS: Operation not supported (ALLMULTI cannot be changed on this stack)\n", 255, "eth0", "allmulti")
	l.fails("SIOCSIFFLAGS: Operation not supported (NOARP cannot be changed on this stack)\n", 255, "eth0", "-arp")
	l.fails("SIOCSIFDSTADDR: Operation not supported (point-to-point links are not supported by this stack)\n", 1,
		"eth0", "pointopoint", "10.0.0.2")
	// ... but asking for what is already so is fine, as on Linux.
	l.ok("eth0", "arp", "-allmulti", "multicast", "trailers")
	// Later words still run after an error, as in net-tools.
	l.fails("SIOCSIFTXQLEN: Operation not supported (txqueuelen 5 cannot be set on this stack)\n", 1,
		"eth0", "txqueuelen", "5", "mtu", "1300")
	if h := header(l.ok("eth0")); !strings.HasSuffix(h, "mtu 1300") {
		t.Errorf("mtu after an error not set: %q", h)
	}
	// inet6 ADDR is not how net-tools sets IPv6 addresses.
	l.fails("Don't know how to set addresses for family 10.\n", 1, "eth0", "inet6", "fd00::1/64")
	// -v reports that something failed.
	l.fails("SIOCSIFMTU: Invalid argument\nWARNING: at least one error occured. (1)\n", 1, "-v", "eth0", "mtu", "-1")
}

// Host errors print as the C library's strerror of their errno.
func TestHostErrno(t *testing.T) {
	l := newLab(t)
	for errno, want := range map[syscall.Errno]string{
		syscall.EPERM:  "SIOCSIFADDR: Operation not permitted\n",
		syscall.EACCES: "SIOCSIFADDR: Permission denied\n",
	} {
		open := func(context.Context, string, func(string) string) (host.Host, error) {
			return failing{shared{l.h}, errno}, nil
		}
		_, errs, code := run(t, open, "eth0", "10.0.0.1")
		if errs != want || code != 1 {
			t.Errorf("errno %d: exit %d, stderr %q; want 1, %q", errno, code, errs, want)
		}
	}
}

// Without a host (no daemon, no --link) ifconfig says why in one line.
func TestOpenFailure(t *testing.T) {
	open := func(context.Context, string, func(string) string) (host.Host, error) {
		return nil, errors.New("no netd at /run/stackbox/netd.sock (start `stackbox netd` or use --link SPEC)")
	}
	out, errs, code := run(t, open)
	if out != "" || code != 1 || errs != "ifconfig: no netd at /run/stackbox/netd.sock (start `stackbox netd` or use --link SPEC)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Options are checked before the host is opened; help needs none.
	if _, errs, code := run(t, open, "-Z"); code != 1 || !strings.Contains(errs, "`-Z' not recognised") {
		t.Errorf("-Z: exit %d, stderr %q", code, errs)
	}
	for _, h := range []string{"-h", "--help", "-?"} {
		out, _, code := run(t, open, h)
		if code != 0 || !strings.HasPrefix(out, "Usage:\n  ifconfig [-a] [-v] [-s]") {
			t.Errorf("%s: exit %d, stdout %q", h, code, out)
		}
	}
	if out, _, code := run(t, open, "-V"); code != 0 || !strings.Contains(out, "net-tools 2.10") {
		t.Errorf("-V: exit %d, stdout %q", code, out)
	}
}
