// Package wget is GNU Wget (1.21.3 as Debian 12 ships it, built with
// GnuTLS; ../shared/compat/wget.md) over a host.Host, invoked as wget or
// fetch: HTTP and HTTPS downloads through net/http's Transport dialling
// the host's sockets, with wget's log lines, its non-terminal "dot"
// progress display, its file naming and its exit statuses.
//
// What it owns: the command line (options.go, getopt_long's messages),
// a run's retrieval loop — tries, redirects, authentication, -c, file
// naming (fetch.go) — the dialler and TLS verification with wget's
// messages (dial.go) and the progress display (progress.go). Names are
// resolved by a pluggable Resolver; without one only IP literals work.
// Locks: run.mu (the log and the response capture of -S) is a leaf; the
// Transport's goroutines print through it while the run's goroutine waits
// in RoundTrip.
package wget

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// Version is the wget we match.
const Version = "1.21.3"

// Resolver is getaddrinfo for wget: the addresses of name in the order
// to try them. Errors print as getaddrinfo's ("Name or service not
// known"), so a resolver returns those texts. h is the host wget runs on,
// getenv the applet's environment.
type Resolver func(ctx context.Context, h host.Host, getenv func(string) string, name string) ([]netip.Addr, error)

// Config holds what the embedding program may plug in; the zero value is
// wget with IP literals only and the real clock.
type Config struct {
	Resolve Resolver         // nil: a name is "Name or service not known"
	Now     func() time.Time // nil: time.Now
}

// Applet returns wget (and fetch) on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &applet.Applet{
		Name:    "wget",
		Aliases: []string{"fetch"},
		Summary: "download files over HTTP and HTTPS (GNU Wget)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return main(ctx, open, cfg, env, args)
		},
	}
}

const usageLines = "Usage: wget [OPTION]... [URL]...\n\nTry `wget --help' for more options.\n"

const helpText = `GNU Wget ` + Version + `, a non-interactive network retriever.
Usage: wget [OPTION]... [URL]...

Startup:
  -V,  --version                   display the version of Wget and exit
  -h,  --help                      print this help
       --link=SPEC                 run on a private stack over link SPEC

Logging and input file:
  -o,  --output-file=FILE          log messages to FILE
  -a,  --append-output=FILE        append messages to FILE
  -q,  --quiet                     quiet (no output)
  -v,  --verbose                   be verbose (this is the default)
  -nv, --no-verbose                turn off verboseness, without being quiet

Download:
  -t,  --tries=NUMBER              set number of retries to NUMBER (0 unlimits)
       --retry-connrefused         retry even if connection is refused
  -O,  --output-document=FILE      write documents to FILE
  -nc, --no-clobber                skip downloads that would download to
                                     existing files
  -c,  --continue                  resume getting a partially-downloaded file
  -S,  --server-response           print server response
       --spider                    don't download anything
  -T,  --timeout=SECONDS           set all timeout values to SECONDS
       --dns-timeout=SECS          set the DNS lookup timeout to SECS
       --connect-timeout=SECS      set the connect timeout to SECS
       --read-timeout=SECS         set the read timeout to SECS
       --waitretry=SECONDS         wait 1..SECONDS between retries of a retrieval
       --user=USER                 set both ftp and http user to USER
       --password=PASS             set both ftp and http password to PASS

Directories:
  -P,  --directory-prefix=PREFIX   save files to PREFIX/..

HTTP options:
       --http-user=USER            set http user to USER
       --http-password=PASS        set http password to PASS
       --header=STRING             insert STRING among the headers
       --compression=TYPE          choose compression, one of auto, gzip and none. (default: none)
       --max-redirect              maximum redirections allowed per page
  -U,  --user-agent=AGENT          identify as AGENT instead of Wget/VERSION
       --no-cookies                don't use cookies
       --load-cookies=FILE         load cookies from FILE before session
       --save-cookies=FILE         save cookies to FILE after session
       --keep-session-cookies      load and save session (non-permanent) cookies
       --post-data=STRING          use the POST method; send STRING as the data

HTTPS (SSL/TLS) options:
       --no-check-certificate      don't validate the server's certificate
       --ca-certificate=FILE       file with the bundle of CAs
`

// Log levels of wget's log.c.
const (
	logVerbose    = iota // the default chatter; off with -nv and -q
	logNonVerbose        // -nv's summary lines only
	logNotQuiet          // errors; off with -q only
)

// run is one invocation: its options, its log and the host it runs on.
type run struct {
	cfg Config
	env *applet.Env
	o   *options
	h   host.Host

	mu      sync.Mutex
	log     io.Writer
	utf8    bool
	capture []byte // the bytes read since the request went out (-S)
	capOn   bool
	dns     map[string][]netip.Addr // wget's host cache
	roots   *x509.CertPool          // --ca-certificate's; nil: the system's

	tr           *http.Transport
	jar          *cookiejar.Jar
	basic        map[string]bool        // host:port that asked for Basic auth
	out          *os.File               // -O FILE
	cookies      map[string]savedCookie // for --save-cookies
	cookieOrder  []string
	caTried      bool
	printedFirst bool // the first URL's "--" line is out (before the CA load)
}

// logf prints to the log at level.
func (r *run) logf(level int, format string, a ...any) {
	if !r.shows(level) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.log, format, a...)
}

func (r *run) shows(level int) bool {
	switch {
	case r.o.quiet:
		return false
	case level == logVerbose:
		return r.o.verbose
	case level == logNonVerbose:
		return !r.o.verbose
	}
	return true
}

// q quotes as wget's quote(): ‘…’ in a UTF-8 locale, '…' otherwise.
func (r *run) q(s string) string {
	if r.utf8 {
		return "‘" + s + "’"
	}
	return "'" + s + "'"
}

// utf8Locale is whether the environment's LC_ALL, LC_CTYPE or LANG (the
// first set) names a UTF-8 locale.
func utf8Locale(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
}

func (r *run) stamp() string { return r.cfg.Now().Format("2006-01-02 15:04:05") }

func main(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	o, err := parse(args[1:])
	if err != nil {
		ue := err.(*usageErr)
		fmt.Fprintln(env.Stderr, ue.msg)
		if !ue.noUsage {
			fmt.Fprint(env.Stderr, usageLines)
		}
		return ue.status
	}
	if o.help {
		fmt.Fprint(env.Stdout, helpText)
		return 0
	}
	if o.version {
		fmt.Fprintf(env.Stdout, "GNU Wget %s built on linux-gnu (stackbox).\n", Version)
		return 0
	}
	if len(o.urls) == 0 {
		fmt.Fprint(env.Stderr, "wget: missing URL\n"+usageLines)
		return 1
	}
	r := &run{cfg: cfg, env: env, o: o, log: env.Stderr, utf8: utf8Locale(env.Getenv)}
	if o.logFile != "" {
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if o.appendLog {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(o.logFile, flags, 0o666)
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s: %s\n", o.logFile, strerror(err))
			return 1
		}
		defer f.Close()
		r.log = f
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "wget: %v\n", err)
		return 1
	}
	defer h.Close()
	r.h = h
	return r.main(ctx)
}
