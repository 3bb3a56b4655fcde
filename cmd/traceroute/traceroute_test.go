package traceroute

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// noHost is an Opener for runs that must fail before any socket: it
// hands out a host whose every method panics (the embedded nil
// interface), so a test notices if one is used.
func noHost() host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) {
		return closeOnly{}, nil
	}
}

type closeOnly struct{ host.Host }

func (closeOnly) Close() error { return nil }

// The command-line complaints of traceroute 2.1.2, as /usr/bin/traceroute
// prints them (captured on Debian 12; TestArgsAsRealTraceroute compares
// with the installed binary where there is one): the text on stderr,
// nothing on stdout, exit 2; usage and --help exit 0.
var argCases = []struct {
	args   []string
	status int
	err    string
}{
	{[]string{"-Z", "127.0.0.1"}, 2, "Bad option `-Z' (argc 1)\n"},
	{[]string{"--foo", "127.0.0.1"}, 2, "Bad option `--foo' (argc 1)\n"},
	{[]string{"-n127.0.0.1"}, 2, "Bad option `-1' (argc 1)\n"},
	{[]string{"-m", "0", "127.0.0.1"}, 2, "first hop out of range\n"},
	{[]string{"-f", "0", "127.0.0.1"}, 2, "first hop out of range\n"},
	{[]string{"-f", "5", "-m", "3", "127.0.0.1"}, 2, "first hop out of range\n"},
	{[]string{"--first=0", "127.0.0.1"}, 2, "first hop out of range\n"},
	{[]string{"-m", "256", "127.0.0.1"}, 2, "max hops cannot be more than 255\n"},
	{[]string{"-n", "-q", "11", "127.0.0.1"}, 2, "no more than 10 probes per hop\n"},
	{[]string{"-q", "0", "127.0.0.1"}, 2, "no more than 10 probes per hop\n"},
	{[]string{"-w", "abc", "127.0.0.1"}, 2, "Cannot handle `-w' option with arg `abc' (argc 2)\n"},
	{[]string{"-w", "1,2,3,4", "127.0.0.1"}, 2, "Cannot handle `-w' option with arg `1,2,3,4' (argc 2)\n"},
	{[]string{"-w", "1,", "127.0.0.1"}, 2, "Cannot handle `-w' option with arg `1,' (argc 2)\n"},
	{[]string{"-w", "1.5x", "127.0.0.1"}, 2, "Cannot handle `-w' option with arg `1.5x' (argc 2)\n"},
	{[]string{"-w", "-1", "127.0.0.1"}, 2, "bad wait specifications `-1,0,0' used\n"},
	{[]string{"-w", "-1,2", "127.0.0.1"}, 2, "bad wait specifications `-1,2,0' used\n"},
	{[]string{"-w", "1,-2,3", "127.0.0.1"}, 2, "bad wait specifications `1,-2,3' used\n"},
	{[]string{"-p", "x", "127.0.0.1"}, 2, "Cannot handle `-p' option with arg `x' (argc 2)\n"},
	{[]string{"-qn", "1", "127.0.0.1"}, 2, "Cannot handle `-q' option with arg `n' (argc 1)\n"},
	{[]string{"-q"}, 2, "Option `-q' (argc 1) requires an argument: `-q nqueries'\n"},
	{[]string{"--first"}, 2, "Option `--first' (argc 1) requires an argument: `--first=first_ttl'\n"},
	{[]string{"--queries", "2", "127.0.0.1"}, 2, "Option `--queries' (argc 1) requires an argument: `--queries=nqueries'\n"},
	{[]string{"127.0.0.1", "70000"}, 2, "too big packetlen 70000 specified\n"},
	{[]string{"127.0.0.1", "abc"}, 2, "Cannot handle \"packetlen\" cmdline arg `abc' on position 2 (argc 2)\n"},
	{[]string{"127.0.0.1", "60", "7"}, 2, "Extra arg `7' (position 3, argc 3)\n"},
	{[]string{"-6", "127.0.0.1"}, 2, "127.0.0.1: Address family for hostname not supported\nCannot handle \"host\" cmdline arg `127.0.0.1' on position 1 (argc 2)\n"},
	{[]string{"-4", "::1"}, 2, "::1: Address family for hostname not supported\nCannot handle \"host\" cmdline arg `::1' on position 1 (argc 2)\n"},
	{[]string{"-V"}, 0, versionText},
	{nil, 0, usageText},
	{[]string{"--help"}, 0, usageText},
}

func TestArgs(t *testing.T) {
	for _, c := range argCases {
		r := runTrace(t, noHost(), Config{}, append([]string{"traceroute"}, c.args...)...)
		if r.status != c.status || r.out != "" || r.err != c.err {
			t.Errorf("%q: exit %d (want %d), stdout %q, stderr %q, want %q", c.args, r.status, c.status, r.out, r.err, c.err)
		}
	}
	// traceroute6 is traceroute -6; our unimplemented options say so.
	r := runTrace(t, noHost(), Config{}, "traceroute6", "127.0.0.1")
	if r.status != 2 || !strings.HasPrefix(r.err, "127.0.0.1: Address family for hostname not supported\n") {
		t.Errorf("traceroute6 127.0.0.1: exit %d, %q", r.status, r.err)
	}
	r = runTrace(t, noHost(), Config{}, "traceroute", "-g", "10.0.0.1", "127.0.0.1")
	if r.status != 2 || r.err != "Option `-g' is not supported by this traceroute (argc 1)\n" {
		t.Errorf("-g: exit %d, %q", r.status, r.err)
	}
}

// The same command lines given to the installed traceroute 2.1 (none of
// them sends a packet: each fails before, or prints usage) give the same
// stderr and exit status. Skips when /usr/bin/traceroute is not 2.1.
func TestArgsAsRealTraceroute(t *testing.T) {
	bin := "/usr/bin/traceroute"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no /usr/bin/traceroute")
	}
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	if !strings.Contains(string(out), "Modern traceroute for Linux, version 2.1") {
		t.Skipf("%s is not traceroute 2.1: %q", bin, out)
	}
	for _, c := range argCases {
		if len(c.args) == 0 || c.args[0] == "--help" {
			continue // our usage lists the options we have
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, bin, c.args...)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		cancel()
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if status != c.status || se.String() != c.err || so.Len() != 0 {
			t.Errorf("%q: the real traceroute exits %d with %q (stdout %q); we expect %d, %q", c.args, status, se.String(), so.String(), c.status, c.err)
		}
	}
}

// print_probe's line: the address once per hop unless the responder
// changes (a "*" between does not count as a change), times with three
// decimals, annotations after the time, and a local !F with no address.
func TestPrint(t *testing.T) {
	var out bytes.Buffer
	tr := &tracer{o: &options{nprobes: 4, numeric: true}}
	a, b := mustAddr("10.0.0.1"), mustAddr("10.0.0.2")
	t0 := time.Unix(1000, 0)
	p := func(res string, us int, errStr string) probe {
		pb := probe{sent: t0, done: true, errStr: errStr}
		if res != "" {
			pb.res = mustAddr(res)
		}
		if us >= 0 {
			pb.recv = t0.Add(time.Duration(us) * time.Microsecond)
		}
		return pb
	}
	tr.probes = []probe{
		p("10.0.0.1", 123, ""), p("10.0.0.1", 1500, ""), p("", -1, ""), p("10.0.0.1", 99, ""),
		p("10.0.0.1", 10, ""), p("", -1, ""), p("10.0.0.2", 20, "!H"), p("10.0.0.1", 30, "!H"),
		p("", -1, ""), p("", -1, ""), p("", -1, ""), p("", -1, ""),
		p("", 56, "!F-1500"), p("", 46, "!F-1500"), p(b.String(), 1, ""), p(a.String(), 2000123, "!<5>"),
	}
	tr.env = envFor(&out)
	for i := range tr.probes {
		tr.print(i)
	}
	want := "\n 1  10.0.0.1  0.123 ms  1.500 ms *  0.099 ms" +
		"\n 2  10.0.0.1  0.010 ms * 10.0.0.2  0.020 ms !H 10.0.0.1  0.030 ms !H" +
		"\n 3  * * * *" +
		"\n 4  *  0.056 ms !F-1500 *  0.046 ms !F-1500 10.0.0.2  0.001 ms 10.0.0.1  2000.123 ms !<5>"
	if out.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", out.String(), want)
	}
}

// get_timeout: MAX alone; HERE times an answered probe of the same hop
// (plus 1 ms); else NEAR times a later answered probe; never over MAX.
func TestTimeout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	answered := func(rtt time.Duration) probe { return probe{sent: t0, recv: t0.Add(rtt), done: true} }
	sent := probe{sent: t0}
	tr := &tracer{o: &options{nprobes: 3, wait: 5, here: 3, near: 10}}
	tr.probes = []probe{sent, sent, sent, sent, answered(4 * time.Millisecond), sent}
	near := 10 * (4 + 1) * time.Millisecond
	if d := tr.timeout(0); d != near {
		t.Errorf("near: %v, want %v", d, near)
	}
	tr.probes[1] = answered(9 * time.Millisecond)
	if d := tr.timeout(0); d != 30*time.Millisecond {
		t.Errorf("here: %v, want 30ms", d)
	}
	tr.probes[1] = answered(3 * time.Second)
	if d := tr.timeout(0); d != 5*time.Second {
		t.Errorf("capped: %v, want 5s", d)
	}
	tr.o.here, tr.o.near = 0, 0
	tr.probes[1] = answered(time.Millisecond)
	if d := tr.timeout(0); d != 5*time.Second {
		t.Errorf("-w 5 alone: %v, want 5s", d)
	}
	// An unsent probe ends the look forward.
	tr.o.near = 10
	tr.probes = []probe{sent, {}, answered(time.Millisecond)}
	tr.o.nprobes = 1
	if d := tr.timeout(0); d != 5*time.Second {
		t.Errorf("past an unsent probe: %v, want 5s", d)
	}
}

// parse_icmp_res's annotations and which errors end the trace.
func TestICMPResult(t *testing.T) {
	for _, c := range []struct {
		v6        bool
		typ, code uint8
		want      string
		final     bool
	}{
		{false, 11, 0, "", false}, {false, 11, 1, "!<11-1>", true},
		{false, 3, 3, "", true}, {false, 3, 0, "!N", true}, {false, 3, 1, "!H", true},
		{false, 3, 2, "!P", true}, {false, 3, 4, "!F-1400", true}, {false, 3, 5, "!S", true},
		{false, 3, 9, "!X", true}, {false, 3, 10, "!X", true}, {false, 3, 13, "!X", true},
		{false, 3, 6, "!N", true}, {false, 3, 7, "!H", true}, {false, 3, 14, "!V", true},
		{false, 3, 15, "!C", true}, {false, 3, 16, "!<16>", true}, {false, 12, 0, "!<12-0>", true},
		{true, 3, 0, "", false}, {true, 1, 4, "", true}, {true, 1, 0, "!N", true},
		{true, 1, 3, "!H", true}, {true, 1, 2, "!H", true}, {true, 1, 1, "!X", true},
		{true, 1, 5, "!<5>", true}, {true, 2, 0, "!F-1280", true}, {true, 4, 0, "!<4-0>", true},
	} {
		info := uint32(0)
		if c.want == "!F-1400" {
			info = 1400
		} else if c.want == "!F-1280" {
			info = 1280
		}
		s, final := icmpResult(c.v6, c.typ, c.code, info)
		if s != c.want || final != c.final {
			t.Errorf("v6=%v type %d code %d: %q %v, want %q %v", c.v6, c.typ, c.code, s, final, c.want, c.final)
		}
	}
}

// The IP_RECVERR cmsg as Linux lays it out: the offender's address for
// both families, nil for other messages and garbage.
func TestParseErr(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		oob := errCmsg(v6, originICMP, 11, 0, "10.9.8.7")
		if v6 {
			oob = errCmsg(v6, originICMP6, 3, 0, "fd00::7")
		}
		e := parseErr(oob)
		if e == nil || (v6 && e.offender.String() != "fd00::7") || (!v6 && e.offender.String() != "10.9.8.7") || e.errno != syscall.EHOSTUNREACH {
			t.Errorf("v6=%v: %+v", v6, e)
		}
	}
	if e := parseErr([]byte{1, 2, 3}); e != nil {
		t.Errorf("garbage: %+v", e)
	}
}

func errCmsg(v6 bool, origin, typ, code uint8, offender string) []byte {
	level, typ2 := syscall.SOL_IP, syscall.IP_RECVERR
	if v6 {
		level, typ2 = syscall.SOL_IPV6, syscall.IPV6_RECVERR
	}
	d := make([]byte, 16+28)
	binary.NativeEndian.PutUint32(d, uint32(syscall.EHOSTUNREACH))
	d[4], d[5], d[6] = origin, typ, code
	a := mustAddr(offender)
	if v6 {
		binary.NativeEndian.PutUint16(d[16:], syscall.AF_INET6)
		copy(d[16+8:], a.AsSlice())
	} else {
		binary.NativeEndian.PutUint16(d[16:], syscall.AF_INET)
		copy(d[16+4:], a.AsSlice())
	}
	h := syscall.Cmsghdr{Level: int32(level), Type: int32(typ2)}
	h.SetLen(syscall.CmsgLen(len(d)))
	b := make([]byte, syscall.CmsgSpace(len(d)))
	binary.NativeEndian.PutUint64(b, h.Len)
	binary.NativeEndian.PutUint32(b[8:], uint32(h.Level))
	binary.NativeEndian.PutUint32(b[12:], uint32(h.Type))
	copy(b[syscall.CmsgLen(0):], d)
	return b
}

// The SYN's checksum verifies (the sum over pseudo header and segment
// is 0xffff) for both families.
func TestSYNChecksum(t *testing.T) {
	for _, pair := range [][2]string{{"10.0.0.1", "10.0.0.2"}, {"fd00::1", "fd00::2"}} {
		src, dst := mustAddr(pair[0]), mustAddr(pair[1])
		m := &tcpMethod{common: common{t: &tracer{dst: dst}}, src: src, sport: 40000, dport: 80, seqBase: 7}
		seg := m.syn(3)
		if len(seg) != tcpHdrLen || seg[13] != tcpSYN || binary.BigEndian.Uint32(seg[4:]) != 10 {
			t.Fatalf("%v: bad SYN % x", pair, seg)
		}
		if c := tcpChecksum(src, dst, seg); c != 0 {
			t.Errorf("%v: checksum does not verify (%#x)", pair, c)
		}
		// A SYN-ACK acknowledging it names probe 3.
		ack := make([]byte, 20)
		binary.BigEndian.PutUint16(ack[0:], 80)
		binary.BigEndian.PutUint16(ack[2:], 40000)
		binary.BigEndian.PutUint32(ack[8:], 11)
		ack[13] = tcpSYN | tcpACK
		m.t.o = &options{max: 30, nprobes: 3}
		if idx, ok := m.answer(ack); !ok || idx != 3 {
			t.Errorf("%v: answer %d %v", pair, idx, ok)
		}
	}
}

// Command lines never panic, and what parses passes or fails check
// without panicking either.
func FuzzParse(f *testing.F) {
	for _, c := range argCases {
		f.Add(strings.Join(c.args, "\x00"))
	}
	f.Add("-nI\x00-w\x005,3,10\x00-z\x0050\x00--link=emu:x\x00h\x0040")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parse("traceroute", strings.Split(s, "\x00"))
		if err == nil && o != nil {
			_ = o.check()
		} else if err == nil {
			t.Fatal("nil options without an error")
		}
	})
}

// The cmsg parser never panics on garbage.
func FuzzParseErr(f *testing.F) {
	f.Add(errCmsg(false, originICMP, 11, 0, "10.0.0.1"))
	f.Add(errCmsg(true, originICMP6, 1, 4, "fd00::1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseErr(b)
	})
}

func envFor(out *bytes.Buffer) *applet.Env { return &applet.Env{Stdout: out, Stderr: out} }

var mustAddr = netip.MustParseAddr
