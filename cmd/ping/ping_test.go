package ping

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/host"
)

// Bad options and values get iputils' messages and exit statuses: 1
// for a missing destination and bad numbers (error(1, …) and
// strtol_or_err), 2 for the rest, with the usage after getopt's
// complaints.
func TestBadArguments(t *testing.T) {
	a, _ := pair(t, 90, "")
	usage := usageText
	for _, c := range []struct {
		args   []string
		status int
		stderr string
		stdout string
	}{
		{[]string{}, 1, "ping: usage error: Destination address required\n", ""},
		{[]string{"-c", "3"}, 1, "ping: usage error: Destination address required\n", ""},
		{[]string{"-c", "abc", "10.90.0.2"}, 1, "ping: invalid argument: 'abc'\n", ""},
		{[]string{"-c", "0", "10.90.0.2"}, 1, "ping: invalid argument: '0': out of range: 1 <= value <= 9223372036854775807\n", ""},
		{[]string{"-s", "-1", "10.90.0.2"}, 1, "ping: invalid argument: '-1': out of range: 0 <= value <= 2147483647\n", ""},
		{[]string{"-w", "1.5", "10.90.0.2"}, 1, "ping: invalid argument: '1.5'\n", ""},
		{[]string{"-c", "99999999999999999999", "10.90.0.2"}, 1, "ping: invalid argument: '99999999999999999999': Numerical result out of range\n", ""},
		{[]string{"-Z", "10.90.0.2"}, 2, "ping: invalid option -- 'Z'\n" + usage, ""},
		{[]string{"-qZ", "10.90.0.2"}, 2, "ping: invalid option -- 'Z'\n" + usage, ""},
		{[]string{"10.90.0.2", "-c"}, 2, "ping: option requires an argument -- 'c'\n" + usage, ""},
		{[]string{"--frob", "10.90.0.2"}, 2, "ping: invalid option -- '-'\n" + usage, ""},
		{[]string{"-i", "", "10.90.0.2"}, 2, "ping: bad timing interval: \n", ""},
		{[]string{"-i", "1e10", "10.90.0.2"}, 2, "ping: bad timing interval: 1e10\n", ""},
		{[]string{"-W", "-1", "10.90.0.2"}, 2, "ping: bad linger time: -1\n", ""},
		{[]string{"-M", "foo", "10.90.0.2"}, 2, "ping: invalid -M argument: foo\n", ""},
		{[]string{"-4", "-6", "10.90.0.2"}, 2, "ping: only one -4 or -6 option may be specified\n", ""},
		{[]string{"-R", "10.90.0.2"}, 2, "ping: option -R is not supported by this ping\n", ""},
		{[]string{"-h"}, 2, usage, ""},
		{[]string{"-V"}, 0, "", "ping from iputils 20221126\n"},
		{[]string{"nosuch.lab"}, 2, "ping: nosuch.lab: Name or service not known\n", ""},
		{[]string{"-4", "::1"}, 2, "ping: ::1: Address family for hostname not supported\n", ""},
		{[]string{"10.90.0.2", "10.90.0.3"}, 2, "ping: source routing (more than one destination) is not supported by this ping\n", ""},
	} {
		r := runPing(t, opener(a), Config{}, append([]string{"ping"}, c.args...)...)
		if r.status != c.status || r.err != c.stderr || r.out != c.stdout {
			t.Errorf("ping %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, r.status, r.out, r.err, c.status, c.stdout, c.stderr)
		}
	}
}

// GNU getopt permutes: options after the destination, attached values
// and "--" work as with iputils.
func TestOptionPlacement(t *testing.T) {
	a, _ := pair(t, 91, "")
	for _, args := range [][]string{
		{"ping", "10.91.0.2", "-c", "1"},
		{"ping", "-qc1", "-i0.01", "10.91.0.2"},
		{"ping", "-c1", "--", "10.91.0.2"},
		{"ping", "--link", "ignored-by-the-test-opener", "-c1", "10.91.0.2"},
	} {
		r := runPing(t, opener(a), Config{}, args...)
		if r.status != 0 || !strings.Contains(r.out, "1 packets transmitted, 1 received, 0% packet loss") {
			t.Errorf("%v: exit %d:\n%s%s", args, r.status, r.out, r.err)
		}
	}
}

// A number with trailing garbage is warned about and its prefix used,
// as iputils 20221126's ping_strtod does.
func TestGarbageNumber(t *testing.T) {
	a, _ := pair(t, 93, "")
	r := runPing(t, opener(a), Config{}, "ping", "-c", "2", "-i", "0.01x", "-W", "2s", "10.93.0.2")
	want := "ping: option argument contains garbage: x\nping: this will become fatal error in the future\n" +
		"ping: option argument contains garbage: s\nping: this will become fatal error in the future\n"
	if r.status != 0 || r.err != want || !strings.Contains(r.out, "2 packets transmitted, 2 received") {
		t.Errorf("exit %d %q\n%s", r.status, r.err, r.out)
	}
}

// A plugged-in resolver's canonical name heads the output and the
// summary; its error text follows the name.
func TestResolverHook(t *testing.T) {
	a, _ := pair(t, 92, "")
	cfg := Config{Resolve: func(_ context.Context, _ host.Host, _ func(string) string, name string, family int) (netip.Addr, string, error) {
		if name != "b.lab" {
			return netip.Addr{}, "", errString("Temporary failure in name resolution")
		}
		return netip.MustParseAddr("10.92.0.2"), "b.lab", nil
	}}
	r := runPing(t, opener(a), cfg, "ping", "-c", "1", "b.lab")
	if r.status != 0 || !strings.HasPrefix(r.out, "PING b.lab (10.92.0.2) 56(84) bytes of data.\n") || !strings.Contains(r.out, "\n--- b.lab ping statistics ---\n") {
		t.Errorf("exit %d:\n%s%s", r.status, r.out, r.err)
	}
	r = runPing(t, opener(a), cfg, "ping", "-c", "1", "example.com")
	if r.status != 2 || r.err != "ping: example.com: Temporary failure in name resolution\n" {
		t.Errorf("exit %d %q", r.status, r.err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// A failing open is one line and exit 2.
func TestOpenFailure(t *testing.T) {
	open := func(context.Context, string, func(string) string) (host.Host, error) {
		return nil, errString("no netd at /run/stackbox/netd.sock (start one with: stackbox netd --link SPEC)")
	}
	r := runPing(t, open, Config{}, "ping", "-c", "1", "10.0.0.1")
	if r.status != 2 || r.out != "" || r.err != "ping: no netd at /run/stackbox/netd.sock (start one with: stackbox netd --link SPEC)\n" {
		t.Errorf("exit %d %q %q", r.status, r.out, r.err)
	}
}

// cmsg builds one Linux control message.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	binary.NativeEndian.PutUint64(b, uint64(syscall.CmsgLen(len(data))))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}

// parseControl reads IP_TTL and IP_RECVERR (with the offender) and
// their IPv6 counterparts.
func TestParseControl(t *testing.T) {
	ttl := make([]byte, 4)
	binary.NativeEndian.PutUint32(ttl, 63)
	ee := make([]byte, 16+16)
	binary.NativeEndian.PutUint32(ee, uint32(syscall.EHOSTUNREACH))
	ee[4], ee[5], ee[6] = originICMP, 3, 1
	binary.NativeEndian.PutUint16(ee[16:], syscall.AF_INET)
	copy(ee[20:24], []byte{10, 0, 0, 1})
	c := parseControl(append(cmsg(syscall.SOL_IP, syscall.IP_TTL, ttl), cmsg(syscall.SOL_IP, syscall.IP_RECVERR, ee)...))
	if c.ttl != 63 || c.err == nil || c.err.errno != syscall.EHOSTUNREACH || c.err.typ != 3 || c.err.code != 1 ||
		c.err.offender != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("IPv4: %+v %+v", c, c.err)
	}
	ee6 := make([]byte, 16+28)
	ee6[4], ee6[5] = originICMP6, 3
	binary.NativeEndian.PutUint16(ee6[16:], syscall.AF_INET6)
	a := netip.MustParseAddr("fd00::2").As16()
	copy(ee6[24:40], a[:])
	c = parseControl(append(cmsg(syscall.SOL_IPV6, syscall.IPV6_HOPLIMIT, ttl), cmsg(syscall.SOL_IPV6, syscall.IPV6_RECVERR, ee6)...))
	if c.ttl != 63 || c.err == nil || c.err.origin != originICMP6 || c.err.offender != netip.MustParseAddr("fd00::2") {
		t.Errorf("IPv6: %+v %+v", c, c.err)
	}
	if c := parseControl(nil); c.ttl != -1 || c.err != nil {
		t.Errorf("empty: %+v", c)
	}
}

func FuzzParseControl(f *testing.F) {
	ttl := make([]byte, 4)
	f.Add(cmsg(syscall.SOL_IP, syscall.IP_TTL, ttl))
	f.Add(cmsg(syscall.SOL_IP, syscall.IP_RECVERR, make([]byte, 32)))
	f.Add(cmsg(syscall.SOL_IPV6, syscall.IPV6_RECVERR, make([]byte, 17)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := parseControl(b)
		if c.ttl < -1 {
			t.Fatalf("ttl %d", c.ttl)
		}
	})
}

// Whatever the arguments, parse returns options or a one-line message
// (values it quotes aside)
// (or none, for -h and -V), never panics.
func FuzzParseArgs(f *testing.F) {
	f.Add("-c\x003\x0010.0.0.1")
	f.Add("-qc1\x00-i0.01\x00-s\x00x")
	f.Add("--link\x00emu:x\x00-W")
	f.Add("-M\x00do\x00-t\x00300\x00::1")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parse("ping", strings.Split(s, "\x00"), io.Discard)
		if err != nil {
			// One line, unless a value echoed back brought its own newlines.
			if strings.Count(err.msg, "\n") > strings.Count(s, "\n") {
				t.Fatalf("multi-line message %q", err.msg)
			}
			return
		}
		if o.linger < 0 || o.datalen < 0 || o.ttl < 0 || o.ttl > 255 || o.count < 0 {
			t.Fatalf("bad options %+v", o)
		}
	})
}
