package nc

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/services"
)

// Command-line and name errors: netcat's one-line messages (usage where
// netcat prints it) and status 1, before any connection.
func TestErrors(t *testing.T) {
	a, _ := pair(t, 80)
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"-v", "nosuch.lab", "80"}, `nc: getaddrinfo for host "nosuch.lab" port 80: Name or service not known` + "\n"},
		{[]string{"-v", "10.80.0.2", "nosuchport"}, "nc: port number invalid: nosuchport\n"},
		{[]string{"-z", "10.80.0.2", "70000"}, "nc: port number too large: 70000\n"},
		{[]string{"-z", "10.80.0.2", "0"}, "nc: port number too small: 0\n"},
		{[]string{"-z", "10.80.0.2", "1-2-3"}, "nc: port number invalid: 2-3\n"},
		{[]string{"-z", "10.80.0.2", "a-3"}, "nc: port number invalid: a-3\n"},
		{[]string{"-l"}, "nc: missing port number\n"},
		{[]string{"10.80.0.2"}, "nc: missing port number\n"},
		{[]string{"-k", "10.80.0.2", "5"}, "nc: must use -l with -k\n"},
		{[]string{"-zl", "5"}, "nc: cannot use -z and -l\n"},
		{[]string{"-w", "abc", "10.80.0.2", "5"}, "nc: timeout invalid: abc\n"},
		{[]string{"-q", "abc", "10.80.0.2", "5"}, "nc: quit timer invalid: abc\n"},
		{[]string{"-4", "::1", "5"}, `nc: getaddrinfo for host "::1" port 5: Address family for hostname not supported` + "\n"},
		{[]string{"-6", "10.80.0.2", "5"}, `nc: getaddrinfo for host "10.80.0.2" port 5: Address family for hostname not supported` + "\n"},
		{[]string{"-64", "::1", "5"}, `nc: getaddrinfo for host "::1" port 5: Address family for hostname not supported` + "\n"},
		{[]string{"-4", "-w", "1", "-6", "10.80.0.2", "5"}, `nc: getaddrinfo for host "10.80.0.2" port 5: Address family for hostname not supported` + "\n"},
		{[]string{"-s", "1.2.3.400", "10.80.0.2", "5"}, "nc: getaddrinfo: Name or service not known\n"},
		{[]string{"-p", "abc", "10.80.0.2", "5"}, "nc: getaddrinfo: Servname not supported for ai_socktype\n"},
		{[]string{"-x", "proxy", "10.80.0.2", "5"}, "nc: option -x is not supported by this nc\n"},
		{[]string{}, usageText},
		{[]string{"-l", "-p", "5", "6"}, usageText},
		{[]string{"-Y", "10.80.0.2", "5"}, "nc: invalid option -- 'Y'\n" + usageText},
		{[]string{"-vY", "10.80.0.2", "5"}, "nc: invalid option -- 'Y'\n" + usageText},
	} {
		r := runNC(t, a, "", c.args...)
		if r.status != 1 || r.err != c.err || r.out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", c.args, r.status, r.out, r.err, c.err)
		}
	}
	// Options after the operands, as glibc's getopt permutes them.
	if r := runNC(t, a, "", "10.80.0.2", "5", "-w"); r.status != 1 || r.err != "nc: option requires an argument -- 'w'\n"+usageText {
		t.Errorf("trailing -w: %+v", r)
	}
	if r := runNC(t, a, "", "10.80.0.2", "81", "-v", "-w", "2"); r.status != 1 || r.err != "nc: connect to 10.80.0.2 port 81 (tcp) failed: Connection refused\n" {
		t.Errorf("trailing -v -w 2: %+v", r)
	}
	r := runNC(t, a, "", "-h")
	if r.status != 0 || !strings.HasPrefix(r.err, "OpenBSD netcat (Debian patchlevel 1.219-1)\n"+usageText) || !strings.Contains(r.err, "-N\t\tShutdown") {
		t.Errorf("-h: %+v", r)
	}
}

// A plugged-in resolver is asked for names (and -n keeps it from being
// asked); its error prints as getaddrinfo's; a name prints with its
// address in the -v lines, and every address is tried in order.
func TestResolver(t *testing.T) {
	a, b := pair(t, 81)
	ln, err := b.Listen(context.Background(), "tcp4", "10.81.0.2:8080", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := 0
	cfg := Config{Resolve: func(_ context.Context, _ host.Host, _ func(string) string, name string) ([]netip.Addr, error) {
		asked++
		if name != "web.lab" {
			return nil, errors.New("Name or service not known")
		}
		return []netip.Addr{netip.MustParseAddr("10.81.0.3"), netip.MustParseAddr("10.81.0.2")}, nil
	}}
	run := func(args ...string) result {
		var out, errb syncBuf
		env := envFor(&out, &errb)
		st := New(opener(a), cfg).Main(context.Background(), env, append([]string{"nc"}, args...))
		return result{out.String(), errb.String(), st}
	}
	r := run("-zv", "-w", "1", "web.lab", "8080")
	want := "nc: connect to web.lab (10.81.0.3) port 8080 (tcp) timed out: Operation now in progress\n" +
		"Connection to web.lab (10.81.0.2) 8080 port [tcp/http-alt] succeeded!\n"
	if r.status != 0 || r.err != want {
		t.Errorf("name: %+v, want %q", r, want)
	}
	if r := run("-zv", "other.lab", "8080"); r.status != 1 || r.err != `nc: getaddrinfo for host "other.lab" port 8080: Name or service not known`+"\n" {
		t.Errorf("unknown name: %+v", r)
	}
	before := asked
	if r := run("-zvn", "web.lab", "8080"); r.status != 1 || asked != before {
		t.Errorf("-n asked the resolver: %+v", r)
	}
}

func envFor(out, errb *syncBuf) *applet.Env {
	return &applet.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
}

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		args  []string
		proto string
		want  []uint16
		err   string
	}{
		{[]string{"80"}, "tcp", []uint16{80}, ""},
		{[]string{"79-81"}, "tcp", []uint16{79, 80, 81}, ""},
		{[]string{"81-79"}, "tcp", []uint16{79, 80, 81}, ""},
		{[]string{"53", "http", "https"}, "tcp", []uint16{53, 80, 443}, ""},
		{[]string{"www"}, "tcp", []uint16{80}, ""},
		{[]string{"domain"}, "udp", []uint16{53}, ""},
		{[]string{"tftp"}, "tcp", nil, "port number invalid: tftp"},
		{[]string{"65536"}, "tcp", nil, "port number too large: 65536"},
		{[]string{"99999999999999999999"}, "tcp", nil, "port number too large: 99999999999999999999"},
		{[]string{"-5"}, "tcp", nil, "port number too small: -5"},
		{[]string{"5-"}, "tcp", nil, "port number invalid: "},
	} {
		got, err := parsePorts(c.args, c.proto)
		es := ""
		if err != nil {
			es = err.Error()
		}
		if es != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q/%s: %v, %q; want %v, %q", c.args, c.proto, got, es, c.want, c.err)
		}
	}
	if services.Name(80, "tcp") != "http" || services.Name(53, "udp") != "domain" || services.Name(5004, "tcp") != "" {
		t.Error("serviceName")
	}
}

// The port grammar never panics, and what it accepts is in range and
// bounded in count.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"80", "1-65535", "http", "5-3", "1-2-3", "-", "0", "a-b"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, udp bool) {
		proto := "tcp"
		if udp {
			proto = "udp"
		}
		ports, err := parsePorts(strings.Fields(s), proto)
		if err != nil {
			return
		}
		if len(ports) > maxPorts {
			t.Fatalf("%q: %d ports", s, len(ports))
		}
		for _, p := range ports {
			if p == 0 {
				t.Fatalf("%q: port 0 accepted", s)
			}
		}
	})
}

// permute never panics, never invents words (beyond one "--"), and keeps
// the operands' order.
func FuzzPermute(f *testing.F) {
	for _, s := range []string{"10.0.0.1 80 -v", "-w 1 h p", "-lvp 5 -k", "h -- -v", "-w", "--link emu:x h p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"nc"}, strings.Fields(s)...)
		out := permute(args)
		if len(out) > len(args)+1 || out[0] != "nc" {
			t.Fatalf("%q → %q", args, out)
		}
		count := map[string]int{}
		for _, w := range args[1:] {
			count[w]++
		}
		for _, w := range out[1:] {
			if count[w]--; count[w] < 0 && w != "--" {
				t.Fatalf("%q → %q: %q invented", args, out, w)
			}
		}
	})
}
