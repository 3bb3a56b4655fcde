package telnet

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// options is a parsed command line.
type options struct {
	ipv4, ipv6, binary bool
	escape             int  // the escape byte; -1: none (-E)
	escapeSet          bool // -e given
	user, bind, link   string
	help, usage        bool
	args               []string // host [port]
}

// usageError is an argp error: the message, then the "Try" line, exit 64.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

var errTooMany = errors.New("too many arguments")

// longOpt is one of the GNU long options (inetutils' argp names).
type longOpt struct {
	name  string
	short byte // the short letter it is (0: long only)
	arg   bool // takes an argument
}

var longOpts = []longOpt{
	{"ipv4", '4', false},
	{"ipv6", '6', false},
	{"binary", '8', false},
	{"no-escape", 'E', false},
	{"escape", 'e', true},
	{"user", 'l', true},
	{"bind", 'b', true},
	{"link", 0, true},
	{"help", '?', false},
	{"usage", 0, false},
}

// shortArg tells the short options that take an argument.
var shortArg = map[byte]bool{'4': false, '6': false, '8': false, 'E': false, 'e': true, 'l': true, 'b': true, '?': false}

// parse reads telnet's options as argp does: options and operands in
// any order, "--" ending the options, unique prefixes of long options.
func parse(args []string) (*options, error) {
	o := &options{escape: 0x1d} // ^]
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			lo, err := findLong(name, a)
			if err != nil {
				return nil, err
			}
			if hasVal && !lo.arg {
				return nil, &usageError{fmt.Sprintf("option '--%s' doesn't allow an argument", lo.name)}
			}
			if lo.arg && !hasVal {
				if i+1 == len(args) {
					return nil, &usageError{fmt.Sprintf("option '--%s' requires an argument", lo.name)}
				}
				i++
				val = args[i]
			}
			o.set(lo.short, lo.name, val)
		case strings.HasPrefix(a, "-") && a != "-":
			for j := 1; j < len(a); j++ {
				c := a[j]
				takes, ok := shortArg[c]
				if !ok {
					return nil, &usageError{fmt.Sprintf("invalid option -- '%c'", c)}
				}
				val := ""
				if takes {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						val = args[i]
					} else {
						return nil, &usageError{fmt.Sprintf("option requires an argument -- '%c'", c)}
					}
					j = len(a)
				}
				o.set(c, "", val)
			}
		default:
			o.args = append(o.args, a)
		}
	}
	if o.ipv4 && o.ipv6 {
		return nil, &usageError{"-4 and -6 are mutually exclusive"}
	}
	if len(o.args) > 2 && !o.help && !o.usage {
		// inetutils' error(1, …) after parsing: no "Try" line, exit 1.
		return nil, errTooMany
	}
	return o, nil
}

// findLong is argp's long option lookup: an exact name or a unique
// prefix.
func findLong(name, arg string) (longOpt, error) {
	var hits []longOpt
	for _, lo := range longOpts {
		if lo.name == name {
			return lo, nil
		}
		if name != "" && strings.HasPrefix(lo.name, name) {
			hits = append(hits, lo)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return longOpt{}, &usageError{fmt.Sprintf("unrecognized option '%s'", arg)}
	}
	names := make([]string, len(hits))
	for i, h := range hits {
		names[i] = "'--" + h.name + "'"
	}
	sort.Strings(names)
	return longOpt{}, &usageError{fmt.Sprintf("option '%s' is ambiguous; possibilities: %s", arg, strings.Join(names, " "))}
}

func (o *options) set(short byte, long, val string) {
	switch short {
	case '4':
		o.ipv4 = true
	case '6':
		o.ipv6 = true
	case '8':
		o.binary = true
	case 'E':
		o.escape, o.escapeSet = -1, false
	case 'e':
		o.escape, o.escapeSet = escapeChar(val), true
	case 'l':
		o.user = val
	case 'b':
		o.bind = val
	case '?':
		o.help = true
	default:
		switch long {
		case "link":
			o.link = val
		case "usage":
			o.usage = true
		}
	}
}

// escapeChar reads -e's argument as BSD telnet's special(): "^X" is the
// control character, "^?" DEL, else the first byte; an empty argument
// turns the escape character off.
func escapeChar(s string) int {
	switch {
	case s == "":
		return -1
	case s[0] == '^' && len(s) > 1:
		if s[1] == '?' {
			return 0x7f
		}
		return int(s[1] & 0x1f)
	}
	return int(s[0])
}

// control prints a character as BSD telnet's control() does: ^X for
// control characters, ^? for DEL, \ooo above 127, "off" for none.
func control(c int) string {
	switch {
	case c < 0:
		return "off"
	case c == 0x7f:
		return "^?"
	case c >= 0x80:
		return fmt.Sprintf("\\%03o", c)
	case c < 0x20:
		return "^" + string(rune('@'+c))
	}
	return string(rune(c))
}

const usageText = `Usage: telnet [-468E?] [-b ADDRESS] [-e CHAR] [-l USER] [--binary]
            [--bind=ADDRESS] [--escape=CHAR] [--no-escape] [--user=USER]
            [--ipv4] [--ipv6] [--link=SPEC] [--help] [--usage] [HOST [PORT]]
`

const helpText = `Usage: telnet [OPTION...] [HOST [PORT]]
Login to remote system HOST (optionally, on service port PORT)

  -4, --ipv4                 use only IPv4
  -6, --ipv6                 use only IPv6
  -8, --binary               use an 8-bit data path
  -b, --bind=ADDRESS         bind to specific local ADDRESS
  -e, --escape=CHAR          use CHAR as an escape character
  -E, --no-escape            use no escape character
  -l, --user=USER            attempt automatic login as USER
      --link=SPEC            run on a private stack over link SPEC
  -?, --help                 give this help list
      --usage                give a short usage message

Mandatory or optional arguments to long options are also mandatory or optional
for any corresponding short options.
`
