package wget

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// options are one run's command line.
type options struct {
	output      string // -O; "-" is stdout; "" names files from the URL
	logFile     string // -o (or -a with appendLog)
	appendLog   bool
	quiet       bool
	verbose     bool // false with -nv
	server      bool // -S
	spider      bool
	cont        bool // -c
	noClobber   bool // -nc
	tries       int  // 0: infinite
	waitRetry   time.Duration
	dnsTimeout  time.Duration // 0: none
	connTimeout time.Duration
	readTimeout time.Duration
	headers     [][2]string
	userAgent   string
	user, pass  string
	prefix      string // -P
	maxRedirect int
	compression string // none, gzip, auto
	caFile      string
	noCheck     bool
	postData    *string
	connRefused bool // --retry-connrefused
	noCookies   bool
	loadCookies string
	saveCookies string
	keepSession bool
	help        bool
	version     bool
	link        string
	urls        []string
}

// optSpec is one option as wget's getopt_long knows it: its long name,
// its short letter (0: none) and whether it takes an argument.
type optSpec struct {
	long  string
	short byte
	arg   bool
	set   func(o *options, val string) error
}

// usageErr is a command-line error: its message, then the usage lines
// and exit status 2 (wget's PARSE error) unless noUsage.
type usageErr struct {
	msg     string
	noUsage bool
	status  int
}

func (e *usageErr) Error() string { return e.msg }

func valueErr(format string, a ...any) *usageErr {
	return &usageErr{msg: fmt.Sprintf(format, a...), noUsage: true, status: 2}
}

// quoteC is how wget quotes a value in its messages under the C locale;
// the run re-quotes under UTF-8 (see logger.q).
func quoteC(s string) string { return "'" + s + "'" }

// number is cmd_number: a non-negative decimal.
func number(name, val string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(val))
	if err != nil || n < 0 {
		return 0, valueErr("wget: --%s: Invalid number %s.", name, quoteC(val))
	}
	return n, nil
}

// numberInf is cmd_number_inf: a number, or "inf" for 0 (no limit).
func numberInf(name, val string) (int, error) {
	if strings.EqualFold(val, "inf") {
		return 0, nil
	}
	return number(name, val)
}

// period is cmd_time: seconds with an optional fraction and a unit
// suffix (s, m, h, d, w).
func period(name, val string) (time.Duration, error) {
	s := strings.TrimSpace(val)
	mult := 1.0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 's', 'S':
			s = s[:n-1]
		case 'm', 'M':
			s, mult = s[:n-1], 60
		case 'h', 'H':
			s, mult = s[:n-1], 3600
		case 'd', 'D':
			s, mult = s[:n-1], 86400
		case 'w', 'W':
			s, mult = s[:n-1], 7*86400
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > 1e9 {
		return 0, valueErr("wget: --%s: Invalid time period %s", name, quoteC(val))
	}
	return time.Duration(f * mult * float64(time.Second)), nil
}

func flag(dst func(o *options) *bool, v bool) func(*options, string) error {
	return func(o *options, _ string) error { *dst(o) = v; return nil }
}

func str(dst func(o *options) *string) func(*options, string) error {
	return func(o *options, v string) error { *dst(o) = v; return nil }
}

func timeout(name string, dsts ...func(o *options) *time.Duration) func(*options, string) error {
	return func(o *options, v string) error {
		d, err := period(name, v)
		if err != nil {
			return err
		}
		for _, dst := range dsts {
			*dst(o) = d
		}
		return nil
	}
}

var specs = []optSpec{
	{"output-document", 'O', true, str(func(o *options) *string { return &o.output })},
	{"output-file", 'o', true, func(o *options, v string) error { o.logFile, o.appendLog = v, false; return nil }},
	{"append-output", 'a', true, func(o *options, v string) error { o.logFile, o.appendLog = v, true; return nil }},
	{"quiet", 'q', false, flag(func(o *options) *bool { return &o.quiet }, true)},
	{"verbose", 'v', false, flag(func(o *options) *bool { return &o.verbose }, true)},
	{"no-verbose", 0, false, flag(func(o *options) *bool { return &o.verbose }, false)},
	{"server-response", 'S', false, flag(func(o *options) *bool { return &o.server }, true)},
	{"spider", 0, false, flag(func(o *options) *bool { return &o.spider }, true)},
	{"continue", 'c', false, flag(func(o *options) *bool { return &o.cont }, true)},
	{"no-clobber", 0, false, flag(func(o *options) *bool { return &o.noClobber }, true)},
	{"tries", 't', true, func(o *options, v string) (err error) { o.tries, err = numberInf("tries", v); return }},
	{"waitretry", 0, true, timeout("waitretry", func(o *options) *time.Duration { return &o.waitRetry })},
	{"timeout", 'T', true, timeout("timeout",
		func(o *options) *time.Duration { return &o.dnsTimeout },
		func(o *options) *time.Duration { return &o.connTimeout },
		func(o *options) *time.Duration { return &o.readTimeout })},
	{"dns-timeout", 0, true, timeout("dns-timeout", func(o *options) *time.Duration { return &o.dnsTimeout })},
	{"connect-timeout", 0, true, timeout("connect-timeout", func(o *options) *time.Duration { return &o.connTimeout })},
	{"read-timeout", 0, true, timeout("read-timeout", func(o *options) *time.Duration { return &o.readTimeout })},
	{"header", 0, true, func(o *options, v string) error {
		if v == "" { // --header= clears the list, as in wget
			o.headers = nil
			return nil
		}
		name, value, ok := strings.Cut(v, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return valueErr("wget: --header: Invalid header %s.", quoteC(v))
		}
		o.headers = append(o.headers, [2]string{name, strings.TrimSpace(value)})
		return nil
	}},
	{"user-agent", 'U', true, str(func(o *options) *string { return &o.userAgent })},
	{"user", 0, true, str(func(o *options) *string { return &o.user })},
	{"password", 0, true, str(func(o *options) *string { return &o.pass })},
	{"http-user", 0, true, str(func(o *options) *string { return &o.user })},
	{"http-password", 0, true, str(func(o *options) *string { return &o.pass })},
	{"directory-prefix", 'P', true, str(func(o *options) *string { return &o.prefix })},
	{"max-redirect", 0, true, func(o *options, v string) (err error) { o.maxRedirect, err = number("max-redirect", v); return }},
	{"compression", 0, true, func(o *options, v string) error {
		switch v {
		case "auto", "gzip", "none":
			o.compression = v
			return nil
		}
		return valueErr("wget: --compression: Invalid value %s.", quoteC(v))
	}},
	{"ca-certificate", 0, true, str(func(o *options) *string { return &o.caFile })},
	{"check-certificate", 0, false, flag(func(o *options) *bool { return &o.noCheck }, false)},
	{"no-check-certificate", 0, false, flag(func(o *options) *bool { return &o.noCheck }, true)},
	{"post-data", 0, true, func(o *options, v string) error { o.postData = &v; return nil }},
	{"retry-connrefused", 0, false, flag(func(o *options) *bool { return &o.connRefused }, true)},
	{"no-cookies", 0, false, flag(func(o *options) *bool { return &o.noCookies }, true)},
	{"load-cookies", 0, true, str(func(o *options) *string { return &o.loadCookies })},
	{"save-cookies", 0, true, str(func(o *options) *string { return &o.saveCookies })},
	{"keep-session-cookies", 0, false, flag(func(o *options) *bool { return &o.keepSession }, true)},
	{"help", 'h', false, flag(func(o *options) *bool { return &o.help }, true)},
	{"version", 'V', false, flag(func(o *options) *bool { return &o.version }, true)},
	{"link", 0, true, str(func(o *options) *string { return &o.link })},
}

// The -n cluster: wget's -nv, -nc (its getopt gives -n an argument).
var nOptions = map[byte]string{'v': "no-verbose", 'c': "no-clobber"}

func lookupLong(name string) (*optSpec, error) {
	var matches []*optSpec
	for i := range specs {
		s := &specs[i]
		if s.long == name {
			return s, nil
		}
		if strings.HasPrefix(s.long, name) {
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 0:
		return nil, &usageErr{msg: fmt.Sprintf("wget: unrecognized option '--%s'", name), status: 2}
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = "'--" + m.long + "'"
	}
	sort.Strings(names)
	return nil, &usageErr{msg: fmt.Sprintf("wget: option '--%s' is ambiguous; possibilities: %s", name, strings.Join(names, " ")), status: 2}
}

func lookupShort(c byte) *optSpec {
	for i := range specs {
		if specs[i].short == c {
			return &specs[i]
		}
	}
	return nil
}

// parse is wget's getopt_long loop: options and URLs in any order (GNU
// permutation), "--" ends the options, long names may be abbreviated to
// a unique prefix, short options cluster (-qO-).
func parse(args []string) (*options, error) {
	o := &options{verbose: true, tries: 20, waitRetry: 10 * time.Second, maxRedirect: 20,
		compression: "none", readTimeout: 900 * time.Second}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.urls = append(o.urls, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, err := lookupLong(name)
			if err != nil {
				return nil, err
			}
			if s.arg && !hasVal {
				if i+1 >= len(args) {
					return nil, &usageErr{msg: fmt.Sprintf("wget: option '--%s' requires an argument", s.long), status: 2}
				}
				i++
				val = args[i]
			} else if !s.arg && hasVal {
				return nil, &usageErr{msg: fmt.Sprintf("wget: option '--%s' doesn't allow an argument", s.long), status: 2}
			}
			if err := s.set(o, val); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				if c == 'n' {
					rest := a[j+1:]
					if rest == "" {
						if i+1 >= len(args) {
							return nil, &usageErr{msg: "wget: option requires an argument -- 'n'", status: 2}
						}
						i++
						rest = args[i]
					}
					for k := 0; k < len(rest); k++ {
						long, ok := nOptions[rest[k]]
						if !ok {
							return nil, valueErr("wget: -n%s: Invalid option", rest)
						}
						s, _ := lookupLong(long)
						s.set(o, "")
					}
					break
				}
				s := lookupShort(c)
				if s == nil {
					return nil, &usageErr{msg: fmt.Sprintf("wget: invalid option -- '%c'", c), status: 2}
				}
				if !s.arg {
					s.set(o, "")
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, &usageErr{msg: fmt.Sprintf("wget: option requires an argument -- '%c'", c), status: 2}
					}
					i++
					val = args[i]
				}
				if err := s.set(o, val); err != nil {
					return nil, err
				}
				break
			}
		default:
			o.urls = append(o.urls, a)
		}
	}
	return o, nil
}
