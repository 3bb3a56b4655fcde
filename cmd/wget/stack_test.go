package wget

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/applettest"
	"github.com/stackbox/stackbox/pkg/host"
)

// The shared applet-test scaffolding (internal/applettest).
var (
	opener = applettest.Opener
	pair   = applettest.Pair
)

type syncBuf = applettest.SyncBuf

// serve runs handler on h's addr (an http.Server on our stack's
// listener) until the test ends.
func serve(t *testing.T, h host.Host, addr string, handler http.Handler) *http.Server {
	t.Helper()
	l, err := h.Listen(context.Background(), "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv
}

type result struct {
	out, err string
	status   int
}

// runWget runs wget on h (C locale, the given resolver), failing the
// test if it has not exited in 30 s.
func runWith(t *testing.T, h host.Host, cfg Config, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuf
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- New(opener(h), cfg).Main(ctx, env, append([]string{"wget"}, args...)) }()
	select {
	case s := <-done:
		return result{out.String(), errb.String(), s}
	case <-time.After(40 * time.Second):
		t.Fatalf("wget %q still running after 40 s; stderr %q", args, errb.String())
	}
	return result{}
}

func runWget(t *testing.T, h host.Host, args ...string) result {
	t.Helper()
	return runWith(t, h, Config{}, args...)
}

const (
	stampRE = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`
	rateRE  = `[0-9.]+ [KMG]?B/s`
	dotRate = ` *[0-9.]+[ KMG]`
)

// match fails the test unless s matches the regular expression made of
// lines (each a full line; %STAMP% and %RATE% stand for a timestamp and
// a transfer rate).
func match(t *testing.T, what, s string, lines ...string) {
	t.Helper()
	re := strings.Join(lines, "\n")
	re = strings.ReplaceAll(re, "%STAMP%", stampRE)
	re = strings.ReplaceAll(re, "%RATE%", rateRE)
	re = strings.ReplaceAll(re, "%DOTRATE%", dotRate)
	if !regexp.MustCompile(`^` + re + `$`).MatchString(s) {
		t.Errorf("%s: output\n%s\ndoes not match\n%s", what, s, re)
	}
}

func q(s string) string { return regexp.QuoteMeta(s) }

// handlers is the test site.
func handlers() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "hello from b\n")
	})
	mux.HandleFunc("/big200k.txt", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "big200k.txt", time.Unix(0, 0), strings.NewReader(bigBody()))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "abc")
		w.(http.Flusher).Flush()
		io.WriteString(w, "def\n")
	})
	mux.HandleFunc("/gz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			z := gzip.NewWriter(w)
			io.WriteString(z, strings.Repeat("gzip data\n", 100))
			z.Close()
			return
		}
		io.WriteString(w, "identity\n")
	})
	mux.HandleFunc("/dir", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dir/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/dir/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "in dir\n") })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome alice\n")
	})
	mux.HandleFunc("/setcookie", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "42", Path: "/"})
		http.Redirect(w, r, "/needcookie", http.StatusFound)
	})
	mux.HandleFunc("/needcookie", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil || c.Value != "42" {
			http.Error(w, "no cookie", http.StatusForbidden)
			return
		}
		io.WriteString(w, "cookie ok\n")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "UA=%s X=%s Range=%q\n", r.UserAgent(), r.Header.Get("X-Test"), r.Header.Get("Range"))
	})
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s\n", r.Method, r.Header.Get("Content-Type"), b)
	})
	mux.HandleFunc("/post303", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/post", http.StatusSeeOther)
	})
	mux.HandleFunc("/post307", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/post", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/", http.NotFound)
	return mux
}

func bigBody() string {
	var b strings.Builder
	for i := 0; b.Len() < 200000; i++ {
		fmt.Fprintf(&b, "line %07d\n", i)
	}
	return b.String()[:200000]
}

// The captured runs of compat/wget.md, on an emulated network: a 200 with
// its Length and dot progress, the second download numbered .1, -q -O -,
// -O - with the log on stderr, -nv, a 200 KB file's four dot rows.
func TestDownload(t *testing.T) {
	a, b := pair(t, 31)
	serve(t, b, "10.31.0.2:80", handlers())
	dir := t.TempDir()

	r := runWget(t, a, "-P", dir, "http://10.31.0.2/")
	if r.status != 0 || r.out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.status, r.out, r.err)
	}
	file := filepath.Join(dir, "index.html")
	match(t, "first download", r.err,
		`--%STAMP%--  http://10\.31\.0\.2/`,
		`Connecting to 10\.31\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 13 \[text/html\]`,
		`Saving to: '`+q(file)+`'`,
		``,
		`     0K {55}100%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - '`+q(file)+`' saved \[13/13\]`,
		``, ``)
	if got, _ := os.ReadFile(file); string(got) != "hello from b\n" {
		t.Errorf("index.html holds %q", got)
	}
	r = runWget(t, a, "-P", dir, "http://10.31.0.2/")
	if r.status != 0 || !strings.Contains(r.err, "Saving to: '"+file+".1'\n") {
		t.Errorf("second download: exit %d, stderr %q", r.status, r.err)
	}
	if got, _ := os.ReadFile(file + ".1"); string(got) != "hello from b\n" {
		t.Errorf("index.html.1 holds %q", got)
	}

	if r := runWget(t, a, "-q", "-O", "-", "http://10.31.0.2/"); r.status != 0 || r.out != "hello from b\n" || r.err != "" {
		t.Errorf("-q -O -: %+v", r)
	}
	r = runWget(t, a, "-O", "-", "http://10.31.0.2/")
	if r.out != "hello from b\n" || r.status != 0 {
		t.Errorf("-O -: %+v", r)
	}
	match(t, "-O -", r.err,
		`--%STAMP%--  http://10\.31\.0\.2/`,
		`Connecting to 10\.31\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 13 \[text/html\]`,
		`Saving to: 'STDOUT'`,
		``,
		`     0K {55}100%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - written to stdout \[13/13\]`,
		``, ``)

	r = runWget(t, a, "-nv", "-P", dir, "http://10.31.0.2/big200k.txt")
	big := filepath.Join(dir, "big200k.txt")
	match(t, "-nv", r.err, `%STAMP% URL:http://10\.31\.0\.2/big200k\.txt \[200000/200000\] -> "`+q(big)+`" \[1\]`, ``)
	if got, _ := os.ReadFile(big); string(got) != bigBody() {
		t.Errorf("big200k.txt: %d bytes, not the body", len(got))
	}
	r = runWget(t, a, "-O", filepath.Join(dir, "b2"), "http://10.31.0.2/big200k.txt")
	match(t, "200 KB", r.err,
		`--%STAMP%--  http://10\.31\.0\.2/big200k\.txt`,
		`Connecting to 10\.31\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 200000 \(195K\) \[text/plain\]`,
		`Saving to: '`+q(filepath.Join(dir, "b2"))+`'`,
		``,
		`     0K \.{10} \.{10} \.{10} \.{10} \.{10} 25%%DOTRATE% \d+[smhd]`,
		`    50K \.{10} \.{10} \.{10} \.{10} \.{10} 51%%DOTRATE% \d+[smhd]`,
		`   100K \.{10} \.{10} \.{10} \.{10} \.{10} 76%%DOTRATE% \d+[smhd]`,
		`   150K \.{10} \.{10} \.{10} \.{10} \.{5}     100%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - '`+q(filepath.Join(dir, "b2"))+`' saved \[200000/200000\]`,
		``, ``)
}

// Chunked and gzip bodies, redirects with keep-alive, the redirect
// limit, cookies across a redirect, -S, headers and POST.
func TestProtocol(t *testing.T) {
	a, b := pair(t, 32)
	serve(t, b, "10.32.0.2:80", handlers())
	dir := t.TempDir()
	out := filepath.Join(dir, "out")

	r := runWget(t, a, "-O", out, "http://10.32.0.2/chunked")
	match(t, "chunked", r.err,
		`--%STAMP%--  http://10\.32\.0\.2/chunked`,
		`Connecting to 10\.32\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: unspecified \[text/plain\]`,
		`Saving to: '`+q(out)+`'`,
		``,
		`     0K {55}  %DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - '`+q(out)+`' saved \[7\]`,
		``, ``)
	if got, _ := os.ReadFile(out); r.status != 0 || string(got) != "abcdef\n" {
		t.Errorf("chunked: exit %d, file %q", r.status, got)
	}

	// gzip is asked for and decoded only with --compression.
	if r := runWget(t, a, "-q", "-O", "-", "http://10.32.0.2/gz"); r.out != "identity\n" {
		t.Errorf("default compression none: %+v", r)
	}
	r = runWget(t, a, "--compression=gzip", "-O", "-", "http://10.32.0.2/gz")
	if r.status != 0 || r.out != strings.Repeat("gzip data\n", 100) {
		t.Errorf("--compression=gzip: exit %d, %d bytes %q", r.status, len(r.out), r.err)
	}
	if !regexp.MustCompile(`written to stdout \[1000\]\n\n$`).MatchString(r.err) {
		t.Errorf("--compression=gzip: the size is not the decoded one without a total: %q", r.err)
	}

	// A redirect, followed on the same connection.
	r = runWget(t, a, "-O", out, "http://10.32.0.2/dir")
	match(t, "redirect", r.err,
		`--%STAMP%--  http://10\.32\.0\.2/dir`,
		`Connecting to 10\.32\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 301 Moved Permanently`,
		`Location: /dir/ \[following\]`,
		`--%STAMP%--  http://10\.32\.0\.2/dir/`,
		`Reusing existing connection to 10\.32\.0\.2:80\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 7 \[text/plain\]`,
		`Saving to: '`+q(out)+`'`,
		``,
		`     0K {55}100%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - '`+q(out)+`' saved \[7/7\]`,
		``, ``)
	// Without -O the name is the first URL's, as wget does not trust
	// the redirect's.
	r = runWget(t, a, "-nv", "-P", dir, "http://10.32.0.2/dir")
	if got, _ := os.ReadFile(filepath.Join(dir, "dir")); r.status != 0 || string(got) != "in dir\n" {
		t.Errorf("redirect's file: exit %d, %q, %q", r.status, got, r.err)
	}

	// The loop hits --max-redirect: exit 8 after max+1 responses.
	r = runWget(t, a, "--max-redirect=3", "-O", out, "http://10.32.0.2/loop")
	if r.status != 8 || strings.Count(r.err, "302 Found\nLocation: /loop [following]\n") != 4 ||
		!strings.HasSuffix(r.err, "[following]\n3 redirections exceeded.\n") || strings.Count(r.err, "Connecting to") != 1 {
		t.Errorf("redirect loop: exit %d, stderr %q", r.status, r.err)
	}
	if r := runWget(t, a, "-nv", "-O", out, "http://10.32.0.2/loop"); r.status != 8 || r.err != "20 redirections exceeded.\n" {
		t.Errorf("redirect loop -nv: %+v", r)
	}

	// A cookie set with a redirect is sent to its target.
	if r := runWget(t, a, "-q", "-O", "-", "http://10.32.0.2/setcookie"); r.status != 0 || r.out != "cookie ok\n" {
		t.Errorf("cookies: %+v", r)
	}
	if r := runWget(t, a, "-q", "--no-cookies", "-O", "-", "http://10.32.0.2/setcookie"); r.status != 8 {
		t.Errorf("--no-cookies: %+v", r)
	}

	// -S prints the response as sent.
	r = runWget(t, a, "-S", "-O", out, "http://10.32.0.2/")
	match(t, "-S", r.err,
		`--%STAMP%--  http://10\.32\.0\.2/`,
		`Connecting to 10\.32\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. `,
		`  HTTP/1\.1 200 OK`,
		`  Content-Type: text/html`,
		`  Date: .* GMT`,
		`  Content-Length: 13`,
		`Length: 13 \[text/html\]`,
		`(?s).*`)

	// -U, --header, and the Range -c sends (none for a missing file).
	r = runWget(t, a, "-q", "-O", "-", "-U", "agent/1", "--header", "X-Test: yes", "http://10.32.0.2/headers")
	if r.out != "UA=agent/1 X=yes Range=\"\"\n" {
		t.Errorf("-U --header: %+v", r)
	}
	if r := runWget(t, a, "-q", "-O", "-", "http://10.32.0.2/headers"); r.out != "UA=Wget/1.21.3 X= Range=\"\"\n" {
		t.Errorf("default User-Agent: %+v", r)
	}
	if r := runWget(t, a, "-q", "-O", "-", "--post-data=a=1&b=2", "http://10.32.0.2/post"); r.out != "POST application/x-www-form-urlencoded a=1&b=2\n" {
		t.Errorf("--post-data: %+v", r)
	}
	if r := runWget(t, a, "-q", "-O", "-", "--post-data=a=1", "http://10.32.0.2/post303"); r.out != "GET  \n" {
		t.Errorf("--post-data redirected by 303: %+v", r)
	}
	if r := runWget(t, a, "-q", "-O", "-", "--post-data=a=1", "http://10.32.0.2/post307"); r.out != "POST application/x-www-form-urlencoded a=1\n" {
		t.Errorf("--post-data redirected by 307: %+v", r)
	}
}

// Server errors exit 8 with wget's ERROR line, --spider checks without
// saving, -O FILE is created even when the URL fails, several URLs exit
// with the lowest error.
func TestErrors(t *testing.T) {
	a, b := pair(t, 33)
	serve(t, b, "10.33.0.2:80", handlers())
	dir := t.TempDir()

	r := runWget(t, a, "-P", dir, "http://10.33.0.2/nosuch")
	match(t, "404", r.err,
		`--%STAMP%--  http://10\.33\.0\.2/nosuch`,
		`Connecting to 10\.33\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 404 Not Found`,
		`%STAMP% ERROR 404: Not Found\.`,
		``, ``)
	if r.status != 8 {
		t.Errorf("404: exit %d", r.status)
	}
	if _, err := os.Stat(filepath.Join(dir, "nosuch")); err == nil {
		t.Errorf("404 left a file")
	}
	r = runWget(t, a, "-nv", "http://10.33.0.2/500")
	match(t, "500 -nv", r.err, `http://10\.33\.0\.2/500:`, `%STAMP% ERROR 500: Internal Server Error\.`, ``)
	x404 := filepath.Join(dir, "x404")
	os.WriteFile(x404, []byte("old"), 0o644)
	if r := runWget(t, a, "-q", "-O", x404, "http://10.33.0.2/nosuch"); r.status != 8 || r.err != "" {
		t.Errorf("-q -O 404: %+v", r)
	}
	if fi, err := os.Stat(x404); err != nil || fi.Size() != 0 {
		t.Errorf("-O FILE of a 404 is not an empty file: %v %v", fi, err)
	}

	r = runWget(t, a, "--spider", "http://10.33.0.2/nosuch")
	match(t, "spider 404", r.err,
		`Spider mode enabled\. Check if remote file exists\.`,
		`--%STAMP%--  http://10\.33\.0\.2/nosuch`,
		`Connecting to 10\.33\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 404 Not Found`,
		`Remote file does not exist -- broken link!!!`,
		``, ``)
	if r.status != 8 {
		t.Errorf("spider 404: exit %d", r.status)
	}
	r = runWget(t, a, "--spider", "http://10.33.0.2/")
	match(t, "spider html", r.err,
		`Spider mode enabled\. Check if remote file exists\.`,
		`--%STAMP%--  http://10\.33\.0\.2/`,
		`Connecting to 10\.33\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 13 \[text/html\]`,
		`Remote file exists and could contain further links,`,
		`but recursion is disabled -- not retrieving\.`,
		``, ``)
	r = runWget(t, a, "--spider", "http://10.33.0.2/big200k.txt")
	if r.status != 0 || !strings.HasSuffix(r.err, "Length: 200000 (195K) [text/plain]\nRemote file exists.\n\n") {
		t.Errorf("spider file: %+v", r)
	}
	if r := runWget(t, a, "-nv", "--spider", "http://10.33.0.2/big200k.txt"); !regexp.MustCompile(`^` + stampRE + ` URL: http://10\.33\.0\.2/big200k\.txt 200 OK\n$`).MatchString(r.err) {
		t.Errorf("spider -nv: %+v", r)
	}

	// Refused, then a 404, then OK: the lowest error status wins.
	r = runWget(t, a, "-nv", "-O", filepath.Join(dir, "multi"), "http://10.33.0.2/nosuch", "http://10.33.0.2:81/", "http://10.33.0.2/")
	if r.status != 4 {
		t.Errorf("404 + refused + ok: exit %d, %q", r.status, r.err)
	}
	r = runWget(t, a, "-nv", "-O", filepath.Join(dir, "multi"), "http://10.33.0.2/", "http://10.33.0.2/nosuch")
	if r.status != 8 {
		t.Errorf("ok + 404: exit %d, %q", r.status, r.err)
	}
}

// Connection refused exits 4 at once (no retries); a peer that does not
// answer times out after -T and is tried -t times; a name without a
// resolver does not resolve; bad URLs and bad options.
func TestNetworkFailures(t *testing.T) {
	a, _ := pair(t, 34)
	r := runWget(t, a, "http://10.34.0.2:81/")
	match(t, "refused", r.err,
		`--%STAMP%--  http://10\.34\.0\.2:81/`,
		`Connecting to 10\.34\.0\.2:81\.\.\. failed: Connection refused\.`, ``)
	if r.status != 4 {
		t.Errorf("refused: exit %d", r.status)
	}
	if r := runWget(t, a, "-nv", "http://10.34.0.2:81/"); r.status != 4 || r.err != "failed: Connection refused.\n" {
		t.Errorf("refused -nv: %+v", r)
	}
	start := time.Now()
	r = runWget(t, a, "-T", "1", "-t", "2", "--waitretry=0", "http://10.34.0.9/")
	match(t, "timeout", r.err,
		`--%STAMP%--  http://10\.34\.0\.9/`,
		`Connecting to 10\.34\.0\.9:80\.\.\. failed: Connection timed out\.`,
		`Retrying\.`,
		``,
		`--%STAMP%--  \(try: 2\)  http://10\.34\.0\.9/`,
		`Connecting to 10\.34\.0\.9:80\.\.\. failed: Connection timed out\.`,
		`Giving up\.`, ``, ``)
	if d := time.Since(start); r.status != 4 || d < 2*time.Second || d > 10*time.Second {
		t.Errorf("timeout: exit %d after %v", r.status, d)
	}
	r = runWget(t, a, "http://nosuch.lab/")
	match(t, "no resolver", r.err,
		`--%STAMP%--  http://nosuch\.lab/`,
		`Resolving nosuch\.lab \(nosuch\.lab\)\.\.\. failed: Name or service not known\.`,
		`wget: unable to resolve host address 'nosuch\.lab'`, ``)
	if r.status != 4 {
		t.Errorf("unresolvable: exit %d", r.status)
	}
	for _, c := range []struct {
		args   []string
		err    string
		status int
	}{
		{nil, "wget: missing URL\n" + usageLines, 1},
		{[]string{"--bogus", "http://x/"}, "wget: unrecognized option '--bogus'\n" + usageLines, 2},
		{[]string{"-Z"}, "wget: invalid option -- 'Z'\n" + usageLines, 2},
		{[]string{"-O"}, "wget: option requires an argument -- 'O'\n" + usageLines, 2},
		{[]string{"--output-document"}, "wget: option '--output-document' requires an argument\n" + usageLines, 2},
		{[]string{"--ou", "x"}, "wget: option '--ou' is ambiguous; possibilities: '--output-document' '--output-file'\n" + usageLines, 2},
		{[]string{"-T", "abc", "http://x/"}, "wget: --timeout: Invalid time period 'abc'\n", 2},
		{[]string{"--compression=bad", "http://x/"}, "wget: --compression: Invalid value 'bad'.\n", 2},
		{[]string{"--header=bad", "http://x/"}, "wget: --header: Invalid header 'bad'.\n", 2},
		{[]string{"ftp2://10.34.0.2/"}, "ftp2://10.34.0.2/: Unsupported scheme 'ftp2'.\n", 1},
		{[]string{"http://x:abc/"}, "http://x:abc/: Bad port number.\n", 1},
		{[]string{"http:///"}, "http:///: Invalid host name.\n", 1},
	} {
		if r := runWget(t, a, c.args...); r.err != c.err || r.status != c.status {
			t.Errorf("wget %q: exit %d, stderr %q; want %d, %q", c.args, r.status, r.err, c.status, c.err)
		}
	}
}

// -c resumes with Range (206, appended, commas for the part there), and
// a complete file gets 416: nothing to do; Basic authentication after a
// challenge, and its failure exits 6.
func TestContinueAndAuth(t *testing.T) {
	a, b := pair(t, 35)
	serve(t, b, "10.35.0.2:80", handlers())
	dir := t.TempDir()
	part := filepath.Join(dir, "big200k.txt")
	os.WriteFile(part, []byte(bigBody()[:30000]), 0o644)

	r := runWget(t, a, "-c", "-P", dir, "http://10.35.0.2/big200k.txt")
	match(t, "-c", r.err,
		`--%STAMP%--  http://10\.35\.0\.2/big200k\.txt`,
		`Connecting to 10\.35\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 206 Partial Content`,
		`Length: 200000 \(195K\), 170000 \(166K\) remaining \[text/plain\]`,
		`Saving to: '`+q(part)+`'`,
		``,
		`     0K ,{10} ,{10} ,{9}\. \.{10} \.{10} 25%%DOTRATE% \d+s`,
		`(?s).*`,
		`%STAMP% \(%RATE%\) - '`+q(part)+`' saved \[200000/200000\]`,
		``, ``)
	if got, _ := os.ReadFile(part); r.status != 0 || string(got) != bigBody() {
		t.Errorf("-c: exit %d, file of %d bytes", r.status, len(got))
	}
	r = runWget(t, a, "-c", "-P", dir, "http://10.35.0.2/big200k.txt")
	match(t, "-c complete", r.err,
		`--%STAMP%--  http://10\.35\.0\.2/big200k\.txt`,
		`Connecting to 10\.35\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 416 Requested Range Not Satisfiable`,
		``,
		`    The file is already fully retrieved; nothing to do\.`,
		``, ``)
	if r.status != 0 {
		t.Errorf("416: exit %d", r.status)
	}

	r = runWget(t, a, "-O", "-", "--user=alice", "--password=s3cret", "http://10.35.0.2/auth")
	if r.status != 0 || r.out != "welcome alice\n" {
		t.Errorf("basic auth: %+v", r)
	}
	match(t, "basic auth", r.err,
		`--%STAMP%--  http://10\.35\.0\.2/auth`,
		`Connecting to 10\.35\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 401 Unauthorized`,
		`Authentication selected: Basic realm="test"`,
		`Reusing existing connection to 10\.35\.0\.2:80\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`(?s).*`)
	if r := runWget(t, a, "-q", "-O", "-", "http://alice:s3cret@10.35.0.2/auth"); r.out != "welcome alice\n" {
		t.Errorf("credentials in the URL: %+v", r)
	}
	r = runWget(t, a, "-O", "-", "--user=alice", "--password=wrong", "http://alice:wrong@10.35.0.2/auth")
	if r.status != 6 || !strings.HasSuffix(r.err, "401 Unauthorized\n\nUsername/Password Authentication Failed.\n") ||
		!strings.Contains(r.err, "http://alice:*password*@10.35.0.2/auth") || strings.Contains(r.err, "wrong") {
		t.Errorf("wrong password: %+v", r)
	}
	if r := runWget(t, a, "-nv", "-O", "-", "http://10.35.0.2/auth"); r.status != 6 || r.err != "Username/Password Authentication Failed.\n" {
		t.Errorf("no credentials: %+v", r)
	}
}

// rawServer answers each connection on h's addr with fn's bytes for the
// request it read (one request a connection), then closes.
func rawServer(t *testing.T, h host.Host, addr string, fn func(n int, req *http.Request) string) {
	t.Helper()
	l, err := h.Listen(context.Background(), "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				io.WriteString(c, fn(n, req))
			}
			c.Close()
		}
	}()
}

// A body cut short is tried again from where it stopped (Range, 206);
// an HTTP/1.0 body that ends with the connection is complete.
func TestRetryResume(t *testing.T) {
	a, b := pair(t, 37)
	body := strings.Repeat("0123456789", 500)
	rawServer(t, b, "10.37.0.2:80", func(n int, req *http.Request) string {
		if req.URL.Path == "/http10" {
			return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold-style body\n"
		}
		if rng := req.Header.Get("Range"); rng != "" {
			var start int
			fmt.Sscanf(rng, "bytes=%d-", &start)
			return fmt.Sprintf("HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\nContent-Range: bytes %d-4999/5000\r\n\r\n%s", 5000-start, start, body[start:])
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nContent-Type: text/plain\r\n\r\n" + body[:2000]
	})
	out := filepath.Join(t.TempDir(), "part")
	r := runWget(t, a, "--waitretry=0", "-O", out, "http://10.37.0.2/f")
	match(t, "resumed", r.err,
		`--%STAMP%--  http://10\.37\.0\.2/f`,
		`Connecting to 10\.37\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 5000 \(4\.9K\) \[text/plain\]`,
		`Saving to: '`+q(out)+`'`,
		``,
		`     0K \. {54}40%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - Connection closed at byte 2000\. Retrying\.`,
		``,
		`--%STAMP%--  \(try: 2\)  http://10\.37\.0\.2/f`,
		`Connecting to 10\.37\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 206 Partial Content`,
		`Length: 5000 \(4\.9K\), 3000 \(2\.9K\) remaining`,
		`Saving to: '`+q(out)+`'`,
		``,
		`     0K ,\.\.\. {50}100%%DOTRATE%=[0-9.]+s`,
		``,
		`%STAMP% \(%RATE%\) - '`+q(out)+`' saved \[5000/5000\]`,
		``, ``)
	if got, _ := os.ReadFile(out); r.status != 0 || string(got) != body {
		t.Errorf("resumed: exit %d, %d bytes", r.status, len(got))
	}
	r = runWget(t, a, "-t", "1", "-O", "-", "http://10.37.0.2/f")
	if r.status != 4 || !strings.HasSuffix(r.err, "Connection closed at byte 2000. Giving up.\n\n") {
		t.Errorf("-t 1: %+v", r)
	}
	r = runWget(t, a, "-O", "-", "http://10.37.0.2/http10")
	if r.status != 0 || r.out != "old-style body\n" || !strings.Contains(r.err, "Length: unspecified [text/plain]\n") ||
		!strings.Contains(r.err, "' saved [15]\n") && !strings.Contains(r.err, "written to stdout [15]\n") {
		t.Errorf("HTTP/1.0: %+v", r)
	}
}

// --save-cookies (session cookies only with --keep-session-cookies) and
// --load-cookies across runs; -o LOGFILE, -a, -nc, -P making its
// directory, and the fetch alias.
func TestCookiesAndFiles(t *testing.T) {
	a, b := pair(t, 38)
	serve(t, b, "10.38.0.2:80", handlers())
	dir := t.TempDir()
	jar := filepath.Join(dir, "cookies.txt")

	if r := runWget(t, a, "-q", "-O", "/dev/null", "--save-cookies", jar, "http://10.38.0.2/setcookie"); r.status != 0 {
		t.Fatalf("--save-cookies: %+v", r)
	}
	got, _ := os.ReadFile(jar)
	match(t, "session cookie not kept", string(got),
		`# HTTP Cookie File`, `# Generated by Wget on %STAMP%\.`, `# Edit at your own risk\.`, ``, ``)
	runWget(t, a, "-q", "-O", "/dev/null", "--save-cookies", jar, "--keep-session-cookies", "http://10.38.0.2/setcookie")
	got, _ = os.ReadFile(jar)
	if !strings.HasSuffix(string(got), "\n\n10.38.0.2\tFALSE\t/\tFALSE\t0\tsession\t42\n") {
		t.Errorf("--keep-session-cookies saved %q", got)
	}
	if r := runWget(t, a, "-q", "-O", "-", "--load-cookies", jar, "http://10.38.0.2/needcookie"); r.status != 0 || r.out != "cookie ok\n" {
		t.Errorf("--load-cookies: %+v", r)
	}
	if r := runWget(t, a, "-q", "-O", "-", "http://10.38.0.2/needcookie"); r.status != 8 {
		t.Errorf("no cookies loaded: %+v", r)
	}
	r := runWget(t, a, "-O", "-", "--load-cookies", filepath.Join(dir, "none"), "http://10.38.0.2/")
	if r.status != 0 || !strings.HasPrefix(r.err, "Cannot open cookies file '"+filepath.Join(dir, "none")+"': No such file or directory\n") {
		t.Errorf("missing cookies file: %+v", r)
	}

	logf := filepath.Join(dir, "log")
	r = runWget(t, a, "-o", logf, "-O", "/dev/null", "http://10.38.0.2/")
	logged, _ := os.ReadFile(logf)
	if r.status != 0 || r.err != "" || !strings.Contains(string(logged), "HTTP request sent, awaiting response... 200 OK\n") {
		t.Errorf("-o: %+v, log %q", r, logged)
	}
	runWget(t, a, "-a", logf, "-O", "/dev/null", "http://10.38.0.2/nosuch")
	logged, _ = os.ReadFile(logf)
	if strings.Count(string(logged), "HTTP request sent") != 2 || !strings.Contains(string(logged), "ERROR 404: Not Found.") {
		t.Errorf("-a did not append: %q", logged)
	}

	sub := filepath.Join(dir, "new", "sub")
	if r := runWget(t, a, "-nv", "-P", sub, "http://10.38.0.2/"); r.status != 0 {
		t.Errorf("-P: %+v", r)
	}
	r = runWget(t, a, "-nc", "-P", sub, "http://10.38.0.2/")
	if r.status != 0 || r.err != "File '"+filepath.Join(sub, "index.html")+"' already there; not retrieving.\n\n" {
		t.Errorf("-nc: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(sub, "index.html.1")); err == nil {
		t.Errorf("-nc downloaded again")
	}

	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	app := Applet(opener(a))
	if app.Name != "wget" || len(app.Aliases) != 1 || app.Aliases[0] != "fetch" {
		t.Errorf("names %q %q", app.Name, app.Aliases)
	}
	var out bytes.Buffer
	env.Stdout = &out
	if s := app.Main(context.Background(), env, []string{"fetch", "-q", "-O", "-", "http://10.38.0.2/"}); s != 0 || out.String() != "hello from b\n" {
		t.Errorf("as fetch: exit %d, %q", s, out.String())
	}

	// A UTF-8 locale quotes with ‘…’.
	var errb bytes.Buffer
	env = &applet.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(k string) string {
		if k == "LANG" {
			return "C.UTF-8"
		}
		return ""
	}}
	app.Main(context.Background(), env, []string{"wget", "-O", "/dev/null", "http://10.38.0.2/"})
	if !strings.Contains(errb.String(), "Saving to: ‘/dev/null’\n") {
		t.Errorf("UTF-8 quotes: %q", errb.String())
	}
}

// A server that accepts and never answers: -T ends the wait for the
// headers with wget's read error, and an interrupted run exits at once
// with the shell's 130.
func TestSilentServer(t *testing.T) {
	a, b := pair(t, 40)
	l, err := b.Listen(context.Background(), "tcp", "10.40.0.2:80", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []io.Closer
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	start := time.Now()
	r := runWget(t, a, "-T", "1", "-t", "1", "http://10.40.0.2/")
	match(t, "read timeout", r.err,
		`--%STAMP%--  http://10\.40\.0\.2/`,
		`Connecting to 10\.40\.0\.2:80\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. Read error \(Connection timed out\) in headers\.`,
		`Giving up\.`, ``, ``)
	if d := time.Since(start); r.status != 4 || d < time.Second || d > 5*time.Second {
		t.Errorf("read timeout: exit %d after %v", r.status, d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- Applet(opener(a)).Main(ctx, env, []string{"wget", "-O", "/dev/null", "http://10.40.0.2/"})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case s := <-done:
		if s != 130 {
			t.Errorf("interrupted: exit %d", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after the interrupt")
	}
}
