package wget

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{15: "15", 1023: "1023", 1024: "1.0K", 10000: "9.8K", 70000: "68K",
		200000: "195K", 5 << 20: "5.0M", 200 << 20: "200M", 3 << 30: "3.0G"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDecimalsAndETA(t *testing.T) {
	for f, want := range map[float64]string{0: "0", 0.0004: "0", 0.0007: "0.001", 0.05: "0.05", 0.5: "0.5", 1.23: "1.2", 9.96: "10", 12.3: "12"} {
		if got := decimals(f); got != want {
			t.Errorf("decimals(%v) = %q, want %q", f, got, want)
		}
	}
	for s, want := range map[int]string{0: "0s", 99: "99s", 100: "1m40s", 7200: "2h0m", 3 * 86400: "3d0h", 200 * 86400: "200d"} {
		if got := etaShort(s); got != want {
			t.Errorf("etaShort(%d) = %q, want %q", s, got, want)
		}
	}
	if got := rateString(15, 0); got != "28.6 MB/s" {
		t.Errorf("rateString of 15 bytes in no time = %q", got)
	}
	if got := rateString(2<<20, time.Second); got != "2.00 MB/s" {
		t.Errorf("rateString 2 MiB/s = %q", got)
	}
}

// clock advances one second each time it is read.
func clock() func() time.Time {
	t := time.Unix(1000, 0)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// The dot display, against the shapes in compat/wget.md: a resumed
// download's commas, the rows' percentages, rates and ETAs, the padded
// last row, and the "skipping" line for more than a row already there.
func TestDots(t *testing.T) {
	var b bytes.Buffer
	d := newDots(&b, 30000, 70000, clock())
	for got := int64(0); got < 40000; got += 1000 {
		d.update(1000)
	}
	d.finish()
	// The first row got 21200 new bytes in 1 s, the last 18800 in 1 s.
	want := "\n     0K ,,,,,,,,,, ,,,,,,,,,, ,,,,,,,,,. .......... .......... 73% 20.7K 1s" +
		"\n    50K .......... ........                                   100% 18.4K=2.0s\n\n"
	if got := b.String(); got != want {
		t.Errorf("resumed dots:\n%q\nwant\n%q", got, want)
	}

	b.Reset()
	d = newDots(&b, 120000, 0, clock())
	d.update(2000)
	d.finish()
	want = "\n        [ skipping 100K ]\n   100K ,,,,,,,,,, ,,,,,,,.." + strings.Repeat(" ", 35) + "1.95K=1.0s\n\n"
	if got := b.String(); got != want {
		t.Errorf("skipping dots:\n%q\nwant\n%q", got, want)
	}

	b.Reset()
	d = newDots(&b, 0, 15, clock())
	d.update(15)
	d.finish()
	if got := b.String(); !regexp.MustCompile(`^\n     0K {55}100% +[0-9.]+[ KM]=1\.0s\n\n$`).MatchString(got) {
		t.Errorf("one small file: %q", got)
	}
}

func TestFileName(t *testing.T) {
	for raw, want := range map[string]string{"http://h/": "index.html", "http://h/a/b.txt": "b.txt",
		"http://h/a/?x=1": "index.html?x=1", "http://h/a%20b": "a b", "http://h/d/": "index.html"} {
		u, _ := url.Parse(raw)
		if got := fileName(u); got != want {
			t.Errorf("fileName(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	o, err := parse([]string{"http://a/", "-qO-", "-nv", "--tries", "inf", "-T5", "--head=X-A: 1", "--", "-b"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.quiet || o.output != "-" || o.verbose || o.tries != 0 || o.readTimeout != 5*time.Second ||
		o.connTimeout != 5*time.Second || len(o.headers) != 1 || o.headers[0] != [2]string{"X-A", "1"} ||
		strings.Join(o.urls, " ") != "http://a/ -b" {
		t.Errorf("parsed %+v", o)
	}
	if o, err := parse([]string{"-nc", "--max-redirect=0", "--timeout=1.5m"}); err != nil || !o.noClobber || o.maxRedirect != 0 || o.dnsTimeout != 90*time.Second {
		t.Errorf("-nc --max-redirect=0 --timeout=1.5m: %+v %v", o, err)
	}
	if _, err := parse([]string{"--quiet=yes"}); err == nil || err.Error() != "wget: option '--quiet' doesn't allow an argument" {
		t.Errorf("--quiet=yes: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]string{"10.0.0.1": "http://10.0.0.1/", "https://h:8443/x?y": "https://h:8443/x?y",
		"http://[fd00::1]:8080": "http://[fd00::1]:8080/", "HTTP://h/": "http://h/"} {
		u, msg := parseURL(raw)
		if msg != "" || u.String() != want {
			t.Errorf("parseURL(%q) = %v, %q; want %s", raw, u, msg, want)
		}
	}
	for raw, want := range map[string]string{"ftp://h/": "Unsupported scheme ftp", "http://h:0/": "Bad port number",
		"http://h:99999/": "Bad port number", "http://": "Invalid host name"} {
		if _, msg := parseURL(raw); msg != want {
			t.Errorf("parseURL(%q): %q, want %q", raw, msg, want)
		}
	}
}

func TestContentRange(t *testing.T) {
	if n, ok := contentRangeStart("bytes 30000-199999/200000"); !ok || n != 30000 {
		t.Errorf("got %d %v", n, ok)
	}
	for _, bad := range []string{"", "bytes */200", "items 1-2/3", "bytes -5-6/7"} {
		if _, ok := contentRangeStart(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The command line parser never panics, and what it accepts is sane.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-qO- http://a/", "--output-document=x -nv", "-t inf -T 1.5", "--ou x", "-n", "-nvc", "--header=A:b --", "-O"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parse(strings.Fields(s))
		if err != nil {
			if _, ok := err.(*usageErr); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		if o.tries < 0 || o.maxRedirect < 0 || o.readTimeout < 0 {
			t.Fatalf("negative limits: %+v", o)
		}
	})
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"http://a/", "https://[::1]:443/x", "a:b", "ftp://x", "http://u:p@h:1/?q#f", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, msg := parseURL(s)
		if msg != "" {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Path == "" {
			t.Fatalf("parseURL(%q) accepted %v", s, u)
		}
		_ = fileName(u)
		_ = shown(u)
	})
}

func FuzzContentRange(f *testing.F) {
	f.Add("bytes 0-1/2")
	f.Add("bytes */5")
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := contentRangeStart(s); ok && n < 0 {
			t.Fatalf("%q: negative start %d", s, n)
		}
	})
}

func FuzzCookieLine(f *testing.F) {
	f.Add("example.com\tFALSE\t/\tFALSE\t0\tname\tvalue")
	f.Add("#HttpOnly_.example.com\tTRUE\t/x\tTRUE\t1999999999\tn\tv")
	f.Add("# comment")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseCookieLine(s)
		if !ok {
			return
		}
		if c.name == "" || c.domain == "" || c.path == "" || c.path[0] != '/' || c.expires < 0 {
			t.Fatalf("%q accepted as %+v", s, c)
		}
		if again, ok := parseCookieLine(c.line()); !ok || again != c {
			t.Fatalf("%q: %+v does not round-trip (%+v)", s, c, again)
		}
	})
}
