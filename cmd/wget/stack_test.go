package wget

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

func opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return noClose{h}, nil }
}

// pair starts two stacks on one emulated network: a is 10.<n>.0.1, b
// is 10.<n>.0.2.
func pair(t *testing.T, n int) (a, b *stackhost.Host) {
	t.Helper()
	spec := fmt.Sprintf("emu:wget-%s-%d", t.Name(), n)
	for i, h := range []**stackhost.Host{&a, &b} {
		var err error
		*h, err = stackhost.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		if err := hh.AddAddress(context.Background(), "eth0", netip.MustParsePrefix(fmt.Sprintf("10.%d.0.%d/24", n, i+1)), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

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

// syncBuf is a bytes.Buffer safe to read while wget writes it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	mux.HandleFunc("/dir", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/dir/", http.StatusMovedPermanently) })
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
