package host

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/dnstest"
)

// TestRecordTypes asks the lab server for each record type with -t and
// checks host's line for it, and that an empty type of an existing name
// is "has no … record" with status 0.
func TestRecordTypes(t *testing.T) {
	l := dnstest.Start(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "A", "web.lab"}, "web.lab has address 10.200.0.2\n"},
		{[]string{"-t", "aaaa", "web.lab"}, "web.lab has IPv6 address fd00:200::2\n"},
		{[]string{"-t", "CNAME", "www.lab"}, "www.lab is an alias for web.lab.\n"},
		{[]string{"-t", "NS", "lab"}, "lab name server ns.lab.\n"},
		{[]string{"-tMX", "lab."}, "lab mail is handled by 10 mail.lab.\n"},
		{[]string{"-t", "PTR", "99.0.200.10.in-addr.arpa"}, "99.0.200.10.in-addr.arpa domain name pointer printer.lab.\n"},
		{[]string{"-t", "SRV", "_http._tcp.lab"}, "_http._tcp.lab has SRV record 0 5 80 web.lab.\n"},
		{[]string{"-t", "TXT", "info.lab"}, "info.lab descriptive text \"hello from dnsmasq\" \"second string\"\n"},
		{[]string{"-t", "SOA", "lab"}, "lab has SOA record ns.lab. hostmaster.lab. 2024010102 1200 180 1209600 600\n"},
		{[]string{"-t", "ANY", "web.lab"}, "web.lab has address 10.200.0.2\nweb.lab has IPv6 address fd00:200::2\n"},
		{[]string{"-t", "TYPE16", "info.lab"}, "info.lab descriptive text \"hello from dnsmasq\" \"second string\"\n"},
		{[]string{"-t", "AAAA", "lab"}, "lab has no AAAA record\n"},
		{[]string{"-t", "AAAA", "hostc"}, "hostc.lab has IPv6 address fd00:201::2\n"},
	} {
		r := runHost(t, l, c.args...)
		if r.status != 0 || r.out != c.want || r.err != "" {
			t.Errorf("host %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, c.want)
		}
	}
}

// TestCNAMEChain: every link of a two-CNAME chain prints as an alias,
// and the AAAA and MX lookups go to the chain's end, which has no MX.
func TestCNAMEChain(t *testing.T) {
	l := dnstest.Start(t)
	r := runHost(t, l, "chain.lab")
	want := "chain.lab is an alias for www.lab.\nwww.lab is an alias for web.lab.\n" +
		"web.lab has address 10.200.0.2\nweb.lab has IPv6 address fd00:200::2\n"
	if r.status != 0 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
}

// TestErrors: NXDOMAIN after the search list names the name as given;
// SERVFAIL and REFUSED name the question; all exit 1, and a reverse name
// nobody has is refused as dnsmasq refuses it.
func TestErrors(t *testing.T) {
	l := dnstest.Start(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		// nosuch.lab. is NXDOMAIN, so the search moves on to nosuch.,
		// which the server refuses: the final answer is printed.
		{[]string{"nosuch"}, "Host nosuch not found: 5(REFUSED)\n"},
		{[]string{"nosuch.lab"}, "Host nosuch.lab not found: 3(NXDOMAIN)\n"},
		{[]string{"-t", "MX", "nosuch.lab"}, "Host nosuch.lab not found: 3(NXDOMAIN)\n"},
		{[]string{"broken.lab"}, "Host broken.lab not found: 2(SERVFAIL)\n"},
		{[]string{"fd00:200::99"}, "Host 9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.d.f.ip6.arpa not found: 5(REFUSED)\n"},
		{[]string{"wild.test"}, "wild.test has address 10.200.0.77\nHost wild.test not found: 5(REFUSED)\nHost wild.test not found: 5(REFUSED)\n"},
	} {
		r := runHost(t, l, c.args...)
		if r.status != 1 || r.out != c.want {
			t.Errorf("host %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, c.want)
		}
	}
}

// TestDeadServer: a server that never answers gets host's two tries of
// -W seconds each (a line per try; -R 0 still tries twice, as bind's
// host does), then "no servers could be reached" and exit 1, and the
// server saw each query.
func TestDeadServer(t *testing.T) {
	l := dnstest.Start(t)
	start := time.Now()
	r := runHost(t, l, "-W", "1", "-R", "0", "web.lab", "10.200.8.1")
	el := time.Since(start)
	want := strings.Repeat(";; communications error to 10.200.8.1#53: timed out\n", 2) + ";; no servers could be reached\n"
	if r.status != 1 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	if el < 1900*time.Millisecond || el > 5*time.Second {
		t.Errorf("two 1 s tries took %v", el)
	}
	if n := l.DeadQueries(); n != 2 {
		t.Errorf("the dead server saw %d queries, want 2", n)
	}
	r = runHost(t, l, "-W", "1", "-R", "2", "web.lab", "10.200.8.1")
	if n := strings.Count(r.out, "timed out"); r.status != 1 || n != 3 {
		t.Errorf("-R 2: status %d, %d tries, want 3\n%s", r.status, n, r.out)
	}
}

// TestFailover: with a dead server first in resolv.conf, host reports its
// tries and gets the answer from the second.
func TestFailover(t *testing.T) {
	l := dnstest.Start(t)
	if err := os.WriteFile(l.ResolvConf, []byte("search lab\nnameserver 10.200.8.1\nnameserver 10.200.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runHost(t, l, "-W", "1", "-t", "A", "web")
	want := ";; communications error to 10.200.8.1#53: timed out\n;; communications error to 10.200.8.1#53: timed out\n" +
		"web.lab has address 10.200.0.2\n"
	if r.status != 0 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
}

// TestTransport: -T asks over TCP (the dead server has no TCP listener,
// so its port refuses), -p another port refuses over UDP, -6 reaches the
// server's IPv6 address, and -r clears RD (the flags line of -v).
func TestTransport(t *testing.T) {
	l := dnstest.Start(t)
	refused := ";; communications error to %s: connection refused\n"
	for _, c := range []struct {
		args   []string
		want   string
		status int
	}{
		{[]string{"-T", "-t", "A", "web.lab"}, "web.lab has address 10.200.0.2\n", 0},
		{[]string{"-T", "web.lab", "10.200.8.1"}, strings.Repeat(strings.Replace(refused, "%s", "10.200.8.1#53", 1), 2) + ";; no servers could be reached\n", 1},
		{[]string{"-p", "5353", "web.lab", "10.200.0.2"}, strings.Repeat(strings.Replace(refused, "%s", "10.200.0.2#5353", 1), 2) + ";; no servers could be reached\n", 1},
		{[]string{"-6", "-t", "AAAA", "web.lab", "fd00:200::2"}, "Using domain server:\nName: fd00:200::2\nAddress: fd00:200::2#53\nAliases: \n\nweb.lab has IPv6 address fd00:200::2\n", 0},
	} {
		r := runHost(t, l, c.args...)
		if r.status != c.status || r.out != c.want {
			t.Errorf("host %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, c.want)
		}
	}
	r := runHost(t, l, "-r", "-v", "-t", "A", "web.lab")
	if !strings.Contains(r.out, ";; flags: qr ra; QUERY: 1, ANSWER: 1,") {
		t.Errorf("-r -v:\n%s", r.out)
	}
}

// TestVerbose: -a is -v -t ANY: the header, question and answer sections
// in bind's columns and the Received line.
func TestVerbose(t *testing.T) {
	l := dnstest.Start(t)
	r := runHost(t, l, "-a", "info.lab")
	want := []string{
		`Trying "info.lab"`,
		";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1",
		";; flags: qr rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0",
		"",
		";; QUESTION SECTION:",
		";info.lab.\t\t\tIN\tANY",
		"",
		";; ANSWER SECTION:",
		"info.lab.\t\t600\tIN\tTXT\t\"hello from dnsmasq\" \"second string\"",
		"",
		"Received 71 bytes from 10.200.0.2#53 in 0 ms",
	}
	if d := dnstest.Compare(want, r.out); r.status != 0 || d != "" {
		t.Errorf("status %d: %s\n%s", r.status, d, r.out)
	}
}

// TestServerByName: a server operand that is a name is looked up with
// the system resolver; one that does not exist is bind's message.
func TestServerByName(t *testing.T) {
	l := dnstest.Start(t)
	r := runHost(t, l, "-t", "A", "web.lab", "ns.lab")
	want := "Using domain server:\nName: ns.lab\nAddress: 10.200.0.2#53\nAliases: \n\nweb.lab has address 10.200.0.2\n"
	if r.status != 0 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	r = runHost(t, l, "web.lab", "nosuchserver.lab")
	if r.status != 1 || r.err != "host: couldn't get address for 'nosuchserver.lab': not found\n" {
		t.Errorf("status %d, stderr %q", r.status, r.err)
	}
}

// TestUsage: no name, a missing option argument and an option we do not
// implement are usage errors (exit 1), a bad class is bind's fatal error
// (exit 2), and no query is sent for them.
func TestUsage(t *testing.T) {
	l := dnstest.Start(t)
	for _, c := range []struct {
		args  []string
		first string
	}{
		{nil, "Usage: host [-aCdilrTvVw] [-c class] [-N ndots] [-t type] [-W time]"},
		{[]string{"-t"}, "host: option requires an argument -- t"},
		{[]string{"-c", "XX", "web.lab"}, "host: invalid class: XX"},
		{[]string{"-l", "lab"}, "host: option -l is not supported by this host"},
		{[]string{"-t", "AXFR", "lab"}, "host: zone transfers (-t AXFR, -t IXFR, -l) are not supported by this host"},
	} {
		r := runHost(t, l, c.args...)
		status := 1
		if c.args != nil && c.args[0] == "-c" {
			status = 2
		}
		if r.status != status || r.out != "" || !strings.HasPrefix(r.err, c.first+"\n") {
			t.Errorf("host %q: status %d, stdout %q, stderr %q", c.args, r.status, r.out, r.err)
		}
	}
	if n := l.Queries(); n != 0 {
		t.Errorf("%d queries sent for bad command lines", n)
	}
}

// FuzzParse: no command line makes the parser panic or hang, and what
// it accepts has a name.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-t MX lab", "-a -W 1 web.lab 10.0.0.1", "-tANY -R3 x", "-t", "-Z x", "-- -x", "-vd4 a b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parse(append([]string{"host"}, strings.Fields(s)...))
		if err == nil && o.name == "" {
			t.Errorf("%q: accepted without a name", s)
		}
	})
}
