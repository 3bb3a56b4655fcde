package nslookup

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/dnstest"
)

const header = "Server:\t\t10.200.0.2\nAddress:\t10.200.0.2#53\n\n"

// TestRecordTypes asks for each record type with -type= (and its
// aliases) and checks nslookup's lines for it.
func TestRecordTypes(t *testing.T) {
	l := dnstest.Start(t)
	nonAuth := "Non-authoritative answer:\n"
	authFrom := "\nAuthoritative answers can be found from:\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-type=A", "web.lab"}, nonAuth + "Name:\tweb.lab\nAddress: 10.200.0.2\n"},
		{[]string{"-q=aaaa", "web.lab"}, nonAuth + "Name:\tweb.lab\nAddress: fd00:200::2\n"},
		{[]string{"-querytype=CNAME", "www.lab"}, nonAuth + "www.lab\tcanonical name = web.lab.\n" + authFrom},
		{[]string{"-ty=NS", "lab"}, "lab\tnameserver = ns.lab.\n"},
		{[]string{"-query=MX", "lab"}, nonAuth + "lab\tmail exchanger = 10 mail.lab.\n" + authFrom},
		{[]string{"-type=PTR", "99.0.200.10.in-addr.arpa"}, "99.0.200.10.in-addr.arpa\tname = printer.lab.\n"},
		{[]string{"-type=SRV", "_http._tcp.lab"}, nonAuth + "_http._tcp.lab\tservice = 0 5 80 web.lab.\n" + authFrom},
		{[]string{"-type=TXT", "info"}, nonAuth + "info.lab\ttext = \"hello from dnsmasq\" \"second string\"\n" + authFrom},
		{[]string{"-type=SOA", "lab"}, "lab\n\torigin = ns.lab\n\tmail addr = hostmaster.lab\n\tserial = 2024010102\n\trefresh = 1200\n\tretry = 180\n\texpire = 1209600\n\tminimum = 600\n"},
		{[]string{"-type=ANY", "web.lab"}, nonAuth + "Name:\tweb.lab\nAddress: 10.200.0.2\nName:\tweb.lab\nAddress: fd00:200::2\n" + authFrom},
		{[]string{"-type=AAAA", "lab"}, nonAuth + "*** Can't find lab: No answer\n"},
		{[]string{"hostc"}, nonAuth + "Name:\thostc.lab\nAddress: fd00:201::2\n"},
	} {
		r := runNslookup(t, l, c.args...)
		want := header + c.want + "\n"
		if r.status != 0 || r.out != want || r.err != "" {
			t.Errorf("nslookup %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, want)
		}
	}
}

// TestCNAMEChain: both links of a chain print, once, and the AAAA query
// asks the chain's end.
func TestCNAMEChain(t *testing.T) {
	l := dnstest.Start(t)
	r := runNslookup(t, l, "chain.lab")
	want := header + "Non-authoritative answer:\nchain.lab\tcanonical name = www.lab.\nwww.lab\tcanonical name = web.lab.\n" +
		"Name:\tweb.lab\nAddress: 10.200.0.2\nName:\tweb.lab\nAddress: fd00:200::2\n\n"
	if r.status != 0 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
}

// TestReverse: an IPv6 literal becomes its ip6.arpa name; the header is
// left out of a plain reverse lookup but printed when a type was given;
// an unknown address is refused (exit 1).
func TestReverse(t *testing.T) {
	l := dnstest.Start(t)
	rev6 := "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.d.f.ip6.arpa"
	for _, c := range []struct {
		args   []string
		want   string
		status int
	}{
		{[]string{"fd00:200::2"}, rev6 + "\tname = web.lab.\n\n", 0},
		{[]string{"-type=MX", "10.200.0.2"}, header + "2.0.200.10.in-addr.arpa\tname = web.lab.\n\n", 0},
		{[]string{"10.200.0.3"}, "** server can't find 3.0.200.10.in-addr.arpa: REFUSED\n\n", 1},
	} {
		r := runNslookup(t, l, c.args...)
		if r.status != c.status || r.out != c.want {
			t.Errorf("nslookup %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, c.want)
		}
	}
}

// TestErrors: SERVFAIL, NXDOMAIN after the search list, and a REFUSED
// AAAA after a good A: each "** server can't find" and exit 1.
func TestErrors(t *testing.T) {
	l := dnstest.Start(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"broken.lab"}, header + "** server can't find broken.lab: SERVFAIL\n\n"},
		{[]string{"-type=TXT", "nosuch.lab"}, header + "** server can't find nosuch.lab: NXDOMAIN\n\n"},
		{[]string{"wild.test"}, header + "Name:\twild.test\nAddress: 10.200.0.77\n** server can't find wild.test: REFUSED\n\n"},
	} {
		r := runNslookup(t, l, c.args...)
		if r.status != 1 || r.out != c.want {
			t.Errorf("nslookup %s: status %d\n%s%s\nwant:\n%s", strings.Join(c.args, " "), r.status, r.out, r.err, c.want)
		}
	}
}

// TestTransportOptions: -retry= is the number of tries and -timeout= the
// wait for each (measured against a server that never answers), -port=
// another port is refused on each try, -vc asks over TCP, and a dead
// first server in resolv.conf fails over to the second.
func TestTransportOptions(t *testing.T) {
	l := dnstest.Start(t)
	start := time.Now()
	r := runNslookup(t, l, "-timeout=1", "-retry=2", "web.lab", "10.200.8.1")
	el := time.Since(start)
	want := strings.Repeat(";; communications error to 10.200.8.1#53: timed out\n", 2) + ";; no servers could be reached\n\n"
	if r.status != 1 || r.out != want {
		t.Errorf("dead server: status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	if el < 1900*time.Millisecond || el > 5*time.Second || l.DeadQueries() != 2 {
		t.Errorf("two 1 s tries took %v, %d queries", el, l.DeadQueries())
	}
	r = runNslookup(t, l, "-port=5353", "web.lab", "10.200.0.2")
	want = strings.Repeat(";; communications error to 10.200.0.2#5353: connection refused\n", 3) + ";; no servers could be reached\n\n"
	if r.status != 1 || r.out != want {
		t.Errorf("-port=5353: status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	r = runNslookup(t, l, "-vc", "-type=A", "web.lab", "10.200.8.1")
	if r.status != 1 || strings.Count(r.out, "10.200.8.1#53: connection refused") != 3 {
		t.Errorf("-vc to a server with no TCP listener: status %d\n%s", r.status, r.out)
	}
	if err := os.WriteFile(l.ResolvConf, []byte("search lab\nnameserver 10.200.8.1\nnameserver 10.200.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runNslookup(t, l, "-timeout=1", "-retry=1", "-type=A", "web")
	want = ";; communications error to 10.200.8.1#53: timed out\n" + header + "Non-authoritative answer:\nName:\tweb.lab\nAddress: 10.200.0.2\n\n"
	if r.status != 0 || r.out != want {
		t.Errorf("failover: status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
}

// TestOptions: an unknown option and an unknown type are reported on
// stdout and the lookup still runs (exit 0); zone transfers are refused
// (exit 1); -debug dumps each message's sections.
func TestOptions(t *testing.T) {
	l := dnstest.Start(t)
	r := runNslookup(t, l, "-bogus", "-type=BOGUS", "-type=A", "web.lab")
	want := "*** Invalid option: bogus\nunknown query type: BOGUS\n" + header + "Non-authoritative answer:\nName:\tweb.lab\nAddress: 10.200.0.2\n\n"
	if r.status != 0 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	r = runNslookup(t, l, "-type=AXFR", "lab")
	if r.status != 1 || r.out != "*** zone transfers (type=AXFR, type=IXFR) are not supported by this nslookup\n\n" {
		t.Errorf("-type=AXFR: status %d, %q", r.status, r.out)
	}
	r = runNslookup(t, l, "-debug", "-type=A", "web.lab")
	want = header + "------------\n    QUESTIONS:\n\tweb.lab, type = A, class = IN\n    ANSWERS:\n    ->  web.lab\n\tinternet address = 10.200.0.2\n\tttl = 600\n" +
		"    AUTHORITY RECORDS:\n    ADDITIONAL RECORDS:\n------------\nNon-authoritative answer:\nName:\tweb.lab\nAddress: 10.200.0.2\n\n"
	if r.status != 0 || r.out != want {
		t.Errorf("-debug: status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
}

// TestInteractive: with no name nslookup reads commands from stdin: names
// (with a server for one lookup), set, server with its "Default server"
// lines, the commands bind does not implement, and exit, after which
// nothing more is read; an NXDOMAIN makes the status 1. A server that
// cannot be found ends the session (bind's fatal error).
func TestInteractive(t *testing.T) {
	l := dnstest.Start(t)
	in := "web.lab\n\nset type=mx\n  lab  \nserver 10.200.0.2\nnosuch.lab\nhostc 10.200.0.2\nset bogus\nls lab\nhelp\nexit\nnever.lab\n"
	r := runNslookupInput(t, l, in)
	want := header + "Non-authoritative answer:\nName:\tweb.lab\nAddress: 10.200.0.2\nName:\tweb.lab\nAddress: fd00:200::2\n" +
		header + "Non-authoritative answer:\nlab\tmail exchanger = 10 mail.lab.\n\nAuthoritative answers can be found from:\n" +
		"Default server: 10.200.0.2\nAddress: 10.200.0.2#53\n" +
		header + "** server can't find nosuch.lab: NXDOMAIN\n" +
		header + "Non-authoritative answer:\n*** Can't find hostc: No answer\n\nAuthoritative answers can be found from:\n" +
		"*** Invalid option: bogus\nThe 'ls' command is not implemented.\nThe 'help' command is not yet implemented.\n\n"
	if r.status != 1 || r.out != want {
		t.Errorf("status %d\n%s%s\nwant:\n%s", r.status, r.out, r.err, want)
	}
	r = runNslookupInput(t, l, "server nosuchserver.lab\nweb.lab\n", "-")
	if r.status != 1 || r.out != "" || r.err != "nslookup: couldn't get address for 'nosuchserver.lab': not found\n" {
		t.Errorf("unknown server: status %d, stdout %q, stderr %q", r.status, r.out, r.err)
	}
	r = runNslookupInput(t, l, "set all\n", "-", "-port=5353", "10.200.0.2")
	want = "Default server: 10.200.0.2\nAddress: 10.200.0.2#5353\n\nSet options:\n  novc\t\t\tnodebug\t\tnod2\n  search\t\trecurse\n" +
		"  timeout = 0\t\tretry = 3\tport = 5353\tndots = 1\n  querytype = A       \tclass = IN\n  srchlist = lab\n\n"
	if r.status != 0 || r.out != want {
		t.Errorf("set all: status %d\n%q\nwant:\n%q", r.status, r.out, want)
	}
}

// FuzzOptions: no option word makes setOption panic or leave settings
// out of range.
func FuzzOptions(f *testing.F) {
	for _, s := range []string{"type=MX", "q=", "timeout=99999999999", "retry=0", "port=70000", "po=53", "domain=", "ndots=-1", "d", "sea", "novc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o := &options{timeout: defaultTimeout, tries: defaultTries, ndots: -1, port: 53}
		o.setOption(io.Discard, s)
		if o.tries < 1 || o.timeout < time.Second || o.timeout > maxTimeout {
			t.Errorf("%q: tries %d, timeout %v", s, o.tries, o.timeout)
		}
	})
}
