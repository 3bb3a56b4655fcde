package wget

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exit statuses of GNU wget (wget(1), EXIT STATUS).
const (
	exitOK      = 0
	exitGeneric = 1
	exitParse   = 2
	exitIO      = 3
	exitNetwork = 4
	exitSSL     = 5
	exitAuth    = 6
	exitProto   = 7
	exitServer  = 8
	exitSignal  = 130 // the shell's status for a run ended by SIGINT
)

// main retrieves each URL in turn; the lowest non-zero status wins, as in
// wget (a 404 then a refused connection exits 4).
func (r *run) main(ctx context.Context) int {
	r.dns = make(map[string][]netip.Addr)
	r.basic = make(map[string]bool)
	if !r.o.noCookies {
		r.jar, _ = cookiejar.New(nil)
		if r.o.loadCookies != "" {
			r.loadCookies()
		}
	}
	r.tr = &http.Transport{
		DialContext:         r.dial,
		DialTLSContext:      r.dialTLS,
		DisableCompression:  true, // wget asks for gzip only with --compression
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     60 * time.Second,
	}
	defer r.tr.CloseIdleConnections()
	if r.o.spider {
		r.logf(logVerbose, "Spider mode enabled. Check if remote file exists.\n")
	}
	if r.o.output != "" && r.o.output != "-" && !r.o.spider {
		// -O FILE is opened before anything is fetched, so it is created
		// (or truncated) even when every URL fails, as in wget.
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if r.o.cont {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(r.o.output, flags, 0o666)
		if err != nil {
			r.logf(logNotQuiet, "%s: %s\n", r.o.output, strerror(err))
			return exitIO
		}
		defer f.Close()
		r.out = f
	}
	status := exitOK
	for _, raw := range r.o.urls {
		s := r.retrieve(ctx, raw)
		if s != exitOK && (status == exitOK || s < status) {
			status = s
		}
		if ctx.Err() != nil {
			return exitSignal
		}
	}
	if r.jar != nil && r.o.saveCookies != "" {
		if s := r.saveCookies(); s != exitOK && (status == exitOK || s < status) {
			status = s
		}
	}
	return status
}

// parseURL is wget's url_parse with its messages: a missing scheme is
// http, and only http and https are spoken.
func parseURL(raw string) (*url.URL, string) {
	s := raw
	if i := strings.Index(s, "://"); i < 0 || strings.ContainsAny(s[:i], "/?#") {
		s = "http://" + s
	}
	scheme := strings.ToLower(s[:strings.Index(s, "://")])
	if scheme != "http" && scheme != "https" {
		return nil, "Unsupported scheme " + scheme
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(err.Error(), "port") {
			return nil, "Bad port number"
		}
		return nil, "Invalid URL"
	}
	if u.Hostname() == "" {
		return nil, "Invalid host name"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, "Bad port number"
		}
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, ""
}

// shown is a URL as wget logs it: the password hidden.
func shown(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "*password*")
		}
	}
	s := c.String()
	return strings.Replace(s, "%2Apassword%2A", "*password*", 1)
}

// fileName is the local name for u: its last path segment decoded, the
// query kept, index.html for a directory (url_file_name).
func fileName(u *url.URL) string {
	p := u.Path
	name := p[strings.LastIndex(p, "/")+1:]
	if name == "" {
		name = "index.html"
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	if name == "." || name == ".." {
		name = "index.html"
	}
	return name
}

// uniqueName is wget's unique_name: name, or name.1, name.2, … the first
// that does not exist.
func uniqueName(name string) string {
	if _, err := os.Lstat(name); err != nil {
		return name
	}
	for i := 1; i < 1<<20; i++ {
		n := name + "." + strconv.Itoa(i)
		if _, err := os.Lstat(n); err != nil {
			return n
		}
	}
	return name
}

// download is one URL's state across its tries and redirects: where it
// goes and how much is already there.
type download struct {
	orig  *url.URL // names the file: wget does not trust redirects' names
	local string   // the chosen file name, once chosen
	have  int64    // bytes written by an earlier try of this run
	cont  bool     // resume from have (an earlier try got part of it)
	get   bool     // a 301, 302 or 303 turned --post-data's POST into GET
}

func (r *run) retrieve(ctx context.Context, raw string) int {
	u, msg := parseURL(raw)
	if msg != "" {
		if strings.HasPrefix(msg, "Unsupported scheme ") {
			msg = "Unsupported scheme " + r.q(strings.TrimPrefix(msg, "Unsupported scheme "))
		}
		r.logf(logNotQuiet, "%s: %s.\n", raw, msg)
		return exitGeneric
	}
	if u.Scheme == "https" && r.o.caFile != "" && !r.caTried {
		r.caTried = true
		r.logf(logVerbose, "--%s--  %s\n", r.stamp(), shown(u))
		r.printedFirst = true
		r.loadCA()
	}
	d := &download{orig: u}
	if r.toFile() {
		name := filepath.Join(r.o.prefix, fileName(u))
		if r.o.noClobber {
			if _, err := os.Lstat(name); err == nil {
				r.logf(logVerbose, "File %s already there; not retrieving.\n\n", r.q(name))
				return exitOK
			}
		}
	}
	for redirects := 0; ; {
		next, status := r.hop(ctx, d, u)
		if next == nil {
			return status
		}
		redirects++
		if redirects > r.o.maxRedirect {
			r.logf(logNotQuiet, "%d redirections exceeded.\n", r.o.maxRedirect)
			return exitServer
		}
		u = next
	}
}

// toFile is whether bodies go to files named from their URLs.
func (r *run) toFile() bool { return r.o.output == "" && !r.o.spider }

// outcome is what one try got to.
type outcome struct {
	status int
	retry  bool     // the try failed in a way wget tries again
	next   *url.URL // a redirect to follow
}

// hop is http_loop: the tries of one URL. It returns the redirect target
// or the final status.
func (r *run) hop(ctx context.Context, d *download, u *url.URL) (*url.URL, int) {
	for try := 1; ; try++ {
		if try > 1 {
			// sleep_between_retrievals: 1 s, 2 s, … up to --waitretry.
			wait := min(time.Duration(try-1)*time.Second, r.o.waitRetry)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, exitSignal
			case <-t.C:
			}
			r.logf(logVerbose, "--%s--  (try:%2d)  %s\n", r.stamp(), try, shown(u))
		} else if r.printedFirst {
			r.printedFirst = false
		} else {
			r.logf(logVerbose, "--%s--  %s\n", r.stamp(), shown(u))
		}
		out := r.attempt(ctx, d, u)
		if ctx.Err() != nil {
			return nil, exitSignal
		}
		if out.next != nil {
			return out.next, 0
		}
		if !out.retry {
			return nil, out.status
		}
		if r.o.tries != 0 && try >= r.o.tries {
			r.logf(logVerbose, "Giving up.\n\n")
			return nil, out.status
		}
		r.logf(logVerbose, "Retrying.\n\n")
	}
}

// hostPort is the URL's host and port as wget prints them.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// attempt is gethttp: one request (two with an authentication challenge)
// and the body's download.
func (r *run) attempt(ctx context.Context, d *download, u *url.URL) outcome {
	user, pass := r.o.user, r.o.pass
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	restval := int64(0)
	if d.cont {
		restval = d.have
	} else if r.o.cont {
		switch {
		case r.out != nil:
			if fi, err := r.out.Stat(); err == nil {
				restval = fi.Size()
			}
		case r.toFile():
			if fi, err := os.Stat(filepath.Join(r.o.prefix, fileName(d.orig))); err == nil && fi.Mode().IsRegular() {
				restval = fi.Size()
			}
		}
	}
	authTried := false
	for {
		resp, wrote, err := r.send(ctx, u, user, pass, restval, r.o.postData != nil && !d.get)
		if err != nil {
			return r.requestFailed(ctx, err, wrote)
		}
		if r.o.server {
			r.printResponse(resp)
		} else {
			r.logf(logVerbose, "%s\n", resp.Status)
		}
		if r.jar != nil {
			r.jar.SetCookies(u, resp.Cookies())
			r.received(u, resp.Cookies())
		}
		if resp.StatusCode == http.StatusUnauthorized {
			drain(resp)
			chal := resp.Header.Get("WWW-Authenticate")
			if user != "" && !authTried && strings.HasPrefix(strings.ToLower(chal), "basic") {
				authTried = true
				r.basic[hostPort(u)] = true
				r.logf(logNotQuiet, "Authentication selected: %s\n", chal)
				continue
			}
			r.logf(logVerbose, "\n")
			r.logf(logNotQuiet, "Username/Password Authentication Failed.\n")
			return outcome{status: exitAuth}
		}
		return r.response(ctx, d, u, resp, restval)
	}
}

// send writes the request and reads the response headers, printing the
// connection and "HTTP request sent" lines as they happen.
func (r *run) send(ctx context.Context, u *url.URL, user, pass string, restval int64, post bool) (*http.Response, bool, error) {
	method := http.MethodGet
	var body io.Reader
	switch {
	case post:
		method = http.MethodPost
		body = strings.NewReader(*r.o.postData)
	case r.o.spider:
		method = http.MethodHead
	}
	target := *u
	target.User = nil
	req, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, false, err
	}
	ua := "Wget/" + Version
	if r.o.userAgent != "" {
		ua = r.o.userAgent
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "*/*")
	if r.o.compression == "none" {
		req.Header.Set("Accept-Encoding", "identity")
	} else {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("Connection", "Keep-Alive")
	if restval > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(restval, 10)+"-")
	}
	if user != "" && r.basic[hostPort(u)] {
		req.SetBasicAuth(user, pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.jar != nil {
		for _, c := range r.jar.Cookies(u) {
			req.AddCookie(c)
		}
	}
	for _, h := range r.o.headers {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		req.Header.Set(h[0], h[1])
	}
	wrote := false
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				r.logf(logVerbose, "Reusing existing connection to %s.\n", hostPort(u))
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote = true
				r.logf(logVerbose, "HTTP request sent, awaiting response... ")
			}
		},
	}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	r.mu.Lock()
	r.capture, r.capOn = r.capture[:0], true
	r.mu.Unlock()
	resp, err := r.tr.RoundTrip(req)
	r.mu.Lock()
	r.capOn = false
	r.mu.Unlock()
	return resp, wrote, err
}

// requestFailed maps a failed request to wget's message and status.
func (r *run) requestFailed(ctx context.Context, err error, wrote bool) outcome {
	var he *hostErr
	var ce *connErr
	var se *sslErr
	var ve verifyErr
	switch {
	case ctx.Err() != nil:
		return outcome{status: exitSignal}
	case errors.As(err, &he):
		return outcome{status: exitNetwork}
	case errors.As(err, &ve):
		return outcome{status: exitSSL}
	case errors.As(err, &se):
		return outcome{status: exitNetwork}
	case errors.As(err, &ce):
		if errors.Is(err, syscall.ECONNREFUSED) && !r.o.connRefused {
			return outcome{status: exitNetwork}
		}
		return outcome{status: exitNetwork, retry: true}
	case !wrote:
		r.logf(logNotQuiet, "Failed writing HTTP request: %s.\n", strerror(err))
		return outcome{status: exitNetwork, retry: true}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "server closed"):
		r.logf(logNotQuiet, "No data received.\n")
		return outcome{status: exitNetwork, retry: true}
	case strings.Contains(err.Error(), "malformed HTTP"):
		r.logf(logNotQuiet, "Malformed status line\n")
		return outcome{status: exitProto, retry: true}
	}
	r.logf(logNotQuiet, "Read error (%s) in headers.\n", strerror(err))
	return outcome{status: exitNetwork, retry: true}
}

// printResponse is -S: the response header block as the server sent it,
// each line indented two spaces.
func (r *run) printResponse(resp *http.Response) {
	r.mu.Lock()
	raw := append([]byte(nil), r.capture...)
	r.mu.Unlock()
	var lines []string
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		lines = strings.Split(string(raw[:i]), "\r\n")
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		lines = strings.Split(string(raw[:i]), "\n")
	} else { // not captured (too long): the parsed form, sorted
		lines = []string{resp.Proto + " " + resp.Status}
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range resp.Header[k] {
				lines = append(lines, k+": "+v)
			}
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	r.logf(logVerbose, "\n")
	r.logf(logNotQuiet, "%s", b.String())
}

// drain reads what is left of a body we do not keep (bounded), so the
// connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// reason is the status line's text after the code.
func reason(resp *http.Response) string {
	return strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
}

func (r *run) response(ctx context.Context, d *download, u *url.URL, resp *http.Response, restval int64) outcome {
	code := resp.StatusCode
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			drain(resp)
			r.logf(logVerbose, "Location: %s [following]\n", loc)
			next, err := u.Parse(loc)
			if err != nil {
				r.logf(logNotQuiet, "%s: Invalid URL.\n", loc)
				return outcome{status: exitProto}
			}
			if next.Scheme != "http" && next.Scheme != "https" {
				r.logf(logNotQuiet, "%s: Unsupported scheme %s.\n", loc, r.q(next.Scheme))
				return outcome{status: exitGeneric}
			}
			if next.Path == "" {
				next.Path = "/"
			}
			// RFC 9110 §15.4: 303 is a GET; wget does the same for 301
			// and 302, as browsers do. 307 and 308 repeat the POST.
			if code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
				d.get = true
			}
			return outcome{next: next}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if restval > 0 {
			drain(resp)
			r.logf(logVerbose, "\n    The file is already fully retrieved; nothing to do.\n\n")
			return outcome{status: exitOK}
		}
	}
	if code < 200 || code > 299 {
		drain(resp)
		if r.o.spider {
			if !r.o.verbose {
				r.logf(logNonVerbose, "%s:\n", shown(u))
			}
			r.logf(logNotQuiet, "Remote file does not exist -- broken link!!!\n")
			r.logf(logVerbose, "\n")
			return outcome{status: exitServer}
		}
		r.logf(logNonVerbose, "%s:\n", shown(u))
		r.logf(logNotQuiet, "%s ERROR %d: %s.\n", r.stamp(), code, reason(resp))
		r.logf(logVerbose, "\n")
		return outcome{status: exitServer}
	}
	defer resp.Body.Close()
	contlen := resp.ContentLength
	contrange := int64(0)
	if code == http.StatusPartialContent {
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != restval {
			r.logf(logNotQuiet, "The server does not support continued downloads.\n")
			return outcome{status: exitProto}
		}
		contrange = start
	} else if restval > 0 {
		if contlen >= 0 && restval >= contlen {
			r.logf(logVerbose, "\n    The file is already fully retrieved; nothing to do.\n\n")
			return outcome{status: exitOK}
		}
		if !d.cont {
			r.logf(logNotQuiet, "\n    The server does not support continued downloads, which conflicts with %s.\n    Refusing to truncate existing file %s.\n\n",
				r.q("-c"), r.q(r.localName(d)))
			return outcome{status: exitGeneric}
		}
	}
	mediaType := ""
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mediaType, _, _ = strings.Cut(ct, ";")
		mediaType = strings.TrimSpace(mediaType)
	}
	r.logf(logVerbose, "%s", lengthLine(contlen, contrange, mediaType))
	if r.o.spider {
		if r.o.verbose {
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
				r.logf(logVerbose, "Remote file exists and could contain further links,\nbut recursion is disabled -- not retrieving.\n\n")
			} else {
				r.logf(logVerbose, "Remote file exists.\n\n")
			}
		}
		r.logf(logNonVerbose, "%s URL: %s %d %s\n", r.stamp(), shown(u), code, reason(resp))
		return outcome{status: exitOK}
	}
	return r.save(ctx, d, u, resp, contlen, contrange)
}

// lengthLine is the "Length:" line.
func lengthLine(contlen, contrange int64, mediaType string) string {
	var b strings.Builder
	b.WriteString("Length: ")
	if contlen >= 0 {
		b.WriteString(strconv.FormatInt(contlen+contrange, 10))
		if contlen+contrange >= 1024 {
			b.WriteString(" (" + humanSize(contlen+contrange) + ")")
		}
		if contrange > 0 {
			b.WriteString(", " + strconv.FormatInt(contlen, 10))
			if contlen >= 1024 {
				b.WriteString(" (" + humanSize(contlen) + ")")
			}
			b.WriteString(" remaining")
		}
	} else {
		b.WriteString("unspecified")
	}
	if mediaType != "" {
		b.WriteString(" [" + mediaType + "]")
	}
	b.WriteString("\n")
	return b.String()
}

// contentRangeStart is the first byte of "bytes START-END/TOTAL"
// (RFC 9110 §14.4).
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(strings.TrimSpace(rest), "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

// localName chooses the download's file, once: its name from the URL
// under -P, numbered if it exists unless resuming.
func (r *run) localName(d *download) string {
	if d.local == "" {
		name := filepath.Join(r.o.prefix, fileName(d.orig))
		if !r.o.cont {
			name = uniqueName(name)
		}
		d.local = name
	}
	return d.local
}

// counter counts the bytes read from the wire (before decoding).
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// logWriter writes progress to the log under the run's lock.
type logWriter struct{ r *run }

func (w logWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.log.Write(b)
}

func (r *run) save(ctx context.Context, d *download, u *url.URL, resp *http.Response, contlen, contrange int64) outcome {
	var w io.Writer
	var display, nvName string
	skip := int64(0) // bytes an earlier try already wrote where we cannot seek
	switch {
	case r.o.output == "-":
		w, display, nvName = r.env.Stdout, "STDOUT", "-"
		if contrange == 0 {
			skip = d.have
		}
	case r.out != nil:
		w, display, nvName = r.out, r.o.output, r.o.output
		if contrange == 0 {
			skip = d.have
		}
	default:
		name := r.localName(d)
		if r.o.prefix != "" {
			if err := os.MkdirAll(r.o.prefix, 0o777); err != nil {
				r.logf(logNotQuiet, "Cannot create directory %s: %s\n", r.q(r.o.prefix), strerror(err))
				return outcome{status: exitIO}
			}
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if contrange > 0 {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		} else {
			d.have = 0 // starting over
		}
		f, err := os.OpenFile(name, flags, 0o666)
		if err != nil {
			r.logf(logNotQuiet, "%s: %s\n", name, strerror(err))
			return outcome{status: exitIO}
		}
		defer f.Close()
		w, display, nvName = f, name, name
	}
	r.logf(logVerbose, "Saving to: %s\n", r.q(display))

	wire := &counter{r: resp.Body}
	var body io.Reader = wire
	decoded := false
	if r.o.compression != "none" {
		switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(wire)
			if err != nil {
				r.logf(logNotQuiet, "Read error (%s) in body.\n", err)
				return outcome{status: exitProto}
			}
			body, decoded = zr, true
		case "deflate": // RFC 9110 §8.4.1.2: the zlib format
			zr, err := zlib.NewReader(wire)
			if err != nil {
				r.logf(logNotQuiet, "Read error (%s) in body.\n", err)
				return outcome{status: exitProto}
			}
			body, decoded = zr, true
		}
	}
	total := int64(0)
	if contlen >= 0 {
		total = contlen + contrange
	}
	var dots *dots
	if r.o.verbose && !r.o.quiet {
		dots = newDots(logWriter{r}, contrange, total, r.cfg.Now)
	}
	start := r.cfg.Now()
	buf := make([]byte, 32<<10)
	written := int64(0) // decoded bytes written this try
	lastWire := int64(0)
	var readErr error
	for {
		n, err := body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if skip > 0 {
				k := min(skip, int64(n))
				chunk, skip = chunk[k:], skip-k
			}
			if _, werr := w.Write(chunk); werr != nil {
				if dots != nil {
					dots.finish()
				}
				r.logf(logNotQuiet, "Cannot write to %s (%s).\n", r.q(display), strerror(werr))
				return outcome{status: exitIO}
			}
			written += int64(len(chunk))
		}
		if dots != nil && wire.n > lastWire {
			dots.update(wire.n - lastWire)
		}
		lastWire = wire.n
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	elapsed := r.cfg.Now().Sub(start)
	if dots != nil {
		dots.finish()
	}
	got := contrange + written
	if contrange == 0 {
		got = d.have + written // d.have is 0 unless skipped
	}
	rate := rateString(wire.n, elapsed)
	if readErr != nil {
		if ctx.Err() != nil {
			return outcome{status: exitSignal}
		}
		switch {
		case errors.Is(readErr, io.ErrUnexpectedEOF):
			r.logf(logVerbose, "%s (%s) - Connection closed at byte %d. ", r.stamp(), rate, got)
		case total > 0:
			r.logf(logVerbose, "%s (%s) - Read error at byte %d/%d (%s). ", r.stamp(), rate, got, total, strerror(readErr))
		default:
			r.logf(logVerbose, "%s (%s) - Read error at byte %d (%s). ", r.stamp(), rate, got, strerror(readErr))
		}
		if !decoded {
			d.have, d.cont = max(d.have, got), true
		}
		return outcome{status: exitNetwork, retry: true}
	}
	size := strconv.FormatInt(got, 10)
	if !decoded && total > 0 {
		size += "/" + strconv.FormatInt(total, 10)
	}
	if r.o.output == "-" {
		r.logf(logVerbose, "%s (%s) - written to stdout [%s]\n\n", r.stamp(), rate, size)
	} else {
		r.logf(logVerbose, "%s (%s) - %s saved [%s]\n\n", r.stamp(), rate, r.q(display), size)
	}
	r.logf(logNonVerbose, "%s URL:%s [%s] -> \"%s\" [1]\n", r.stamp(), shown(u), size, nvName)
	return outcome{status: exitOK}
}
