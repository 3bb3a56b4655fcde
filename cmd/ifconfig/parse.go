package ifconfig

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/pkg/host"
)

// The set-up grammar of net-tools ifconfig: `IF [AF] WORD...`, each word
// (with its arguments) one operation, run in order as net-tools runs one
// ioctl per keyword. Parse turns the words into ops; apply.go runs them
// against a host.Host.

type opKind int

const (
	opFlags       opKind = iota // set and clear IFF_* bits (set_flag/clr_flag)
	opAddr                      // ADDR: SIOCSIFADDR
	opNetmask                   // netmask M (or the /LEN of ADDR/LEN): SIOCSIFNETMASK
	opBroadcast                 // broadcast B: SIOCSIFBRDADDR
	opMTU                       // mtu N: SIOCSIFMTU
	opHW                        // hw ether MAC: SIOCSIFHWADDR
	opAdd6                      // add ADDR6[/LEN]
	opDel6                      // del ADDR6[/LEN]
	opAdd4                      // add ADDR4: a new alias IF:N
	opDel4                      // del ADDR4: remove the alias holding it
	opUnsupported               // a keyword net-tools knows and the host cannot do
	opMessage                   // a parse error net-tools reports and goes on after
	opExit                      // a parse error net-tools exits on
)

// op is one operation on the interface dev.
type op struct {
	kind opKind
	// word is the keyword or argument the op came from, for messages.
	word string
	// flags: bits to set and clear.
	set, clear uint32
	// addr: the address of opAddr, opNetmask (the mask), opBroadcast,
	// opAdd4 and opDel4.
	addr netip.Addr
	// prefix: the address of opAdd6 and opDel6.
	prefix netip.Prefix
	// n: the MTU.
	n int
	// mac: the hardware address of opHW.
	mac string
	// msg: the stderr text of opMessage, opUnsupported and opExit.
	msg string
	// code: the exit status of opExit.
	code int
	// usage: opExit prints the usage text to stderr after msg.
	usage bool
}

// Exit statuses of net-tools (lib/net-support.h) that ifconfig uses.
const (
	exitOptErr = 3 // E_OPTERR: a keyword without its argument
)

// hwTypes are the hardware types net-tools knows for `hw TYPE ADDR`; only
// ether can be set on this stack.
var hwTypes = map[string]bool{
	"loop": true, "slip": true, "cslip": true, "slip6": true, "cslip6": true,
	"adaptive": true, "ash": true, "ether": true, "ax25": true, "netrom": true,
	"rose": true, "tunnel": true, "ppp": true, "hdlc": true, "lapb": true,
	"arcnet": true, "dlci": true, "frad": true, "sit": true, "fddi": true,
	"hippi": true, "irda": true, "ec": true, "x25": true, "eui64": true,
	"infiniband": true,
}

// flagWords are the keywords that set or clear IFF_* bits. The host can
// change UP and PROMISC; the others are still ops, since asking for the
// current value is nothing to do, and apply reports only a real change.
var flagWords = map[string]struct{ set, clear uint32 }{
	"up":            {host.FlagUp | host.FlagRunning, 0},
	"down":          {0, host.FlagUp},
	"promisc":       {host.FlagPromisc, 0},
	"-promisc":      {0, host.FlagPromisc},
	"arp":           {0, iffNoARP},
	"-arp":          {iffNoARP, 0},
	"trailers":      {0, iffNoTrailers},
	"-trailers":     {iffNoTrailers, 0},
	"multicast":     {host.FlagMulticast, 0},
	"-multicast":    {0, host.FlagMulticast},
	"allmulti":      {host.FlagAllMulti, 0},
	"-allmulti":     {0, host.FlagAllMulti},
	"dynamic":       {iffDynamic, 0},
	"-dynamic":      {0, iffDynamic},
	"-broadcast":    {0, host.FlagBroadcast},
	"-pointopoint":  {0, iffPointToPoint},
	"-pointtopoint": {0, iffPointToPoint},
}

// argWords are keywords that take one argument and that the host cannot
// do, with the ioctl net-tools would issue.
var argWords = map[string]string{
	"txqueuelen": "SIOCSIFTXQLEN",
	"name":       "SIOCSIFNAME",
	"mem_start":  "SIOCSIFMAP",
	"io_addr":    "SIOCSIFMAP",
	"irq":        "SIOCSIFMAP",
	"media":      "SIOCSIFMAP",
	"port":       "SIOCSIFMAP",
	"dstaddr":    "SIOCSIFDSTADDR",
	"tunnel":     "SIOCSIFDSTADDR",
	"keepalive":  "SIOCSKEEPALIVE",
	"outfill":    "SIOCSOUTFILL",
}

// unknownHost is the resolver error net-tools prints for an address it
// cannot parse (herror): this stack does no name lookups here.
func unknownHost(word string) string { return word + ": Unknown host\n" }

// parseV4 reads an IPv4 address as net-tools' inet input does for the
// numeric forms (dotted quad).
func parseV4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// parseV6Prefix reads ADDR6[/LEN] as ifconfig's add/del do: LEN defaults
// to 128, and one outside 0..128 is a usage error (ok false, usage true).
func parseV6Prefix(s string) (p netip.Prefix, ok, usage bool) {
	addr, bits := s, 128
	if i := strings.IndexByte(s, '/'); i >= 0 {
		addr = s[:i]
		bits = atoi(s[i+1:])
		if bits < 0 || bits > 128 {
			return netip.Prefix{}, false, true
		}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Prefix{}, false, false
	}
	return netip.PrefixFrom(a, bits), true, false
}

// atoi is C's atoi: optional blanks and sign, then the leading digits.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && isDigit(s[i]); i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<31 {
			n = 1 << 31
		}
	}
	if neg {
		n = -n
	}
	return n
}

// parseMAC reads an Ethernet address as net-tools' ether input does: six
// colon-separated groups of one or two hex digits.
func parseMAC(s string) (string, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return "", false
	}
	var b strings.Builder
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return "", false
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return "", false
		}
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.FormatUint(v>>4, 16))
		b.WriteString(strconv.FormatUint(v&15, 16))
	}
	return b.String(), true
}

// parseSet turns the words after the interface name into ops, in order.
// A word net-tools exits on ends the list with an opExit; the ops before
// it still run, as net-tools has run their ioctls by then.
func parseSet(dev string, words []string) []op {
	var ops []op
	// An address family name may come first; inet is the default.
	af := "inet"
	if len(words) > 0 && (words[0] == "inet" || words[0] == "inet6") {
		af, words = words[0], words[1:]
	}
	usage := func(word string) []op {
		return append(ops, op{kind: opExit, word: word, code: exitOptErr, usage: true})
	}
	didNetmask := false
	var pendingMask *op
	for i := 0; i < len(words); i++ {
		w := words[i]
		// next returns the keyword's argument, or false at the end.
		next := func() (string, bool) {
			if i+1 >= len(words) {
				return "", false
			}
			i++
			return words[i], true
		}
		if f, ok := flagWords[w]; ok {
			ops = append(ops, op{kind: opFlags, word: w, set: f.set, clear: f.clear})
			continue
		}
		if ioctl, ok := argWords[w]; ok {
			arg, ok := next()
			if !ok {
				return usage(w)
			}
			ops = append(ops, op{kind: opUnsupported, word: w,
				msg: ioctl + ": Operation not supported (" + w + " " + arg + " cannot be set on this stack)\n"})
			continue
		}
		switch w {
		case "mtu":
			arg, ok := next()
			if !ok {
				return usage(w)
			}
			ops = append(ops, op{kind: opMTU, word: arg, n: atoi(arg)})
			continue
		case "broadcast":
			// broadcast [B]: set the address if one follows, then IFF_BROADCAST.
			if i+1 < len(words) {
				arg, _ := next()
				if a, ok := parseV4(arg); ok {
					ops = append(ops, op{kind: opBroadcast, word: arg, addr: a})
				} else {
					ops = append(ops, op{kind: opMessage, msg: unknownHost(arg)})
				}
			}
			ops = append(ops, op{kind: opFlags, word: w, set: host.FlagBroadcast})
			continue
		case "pointopoint", "pointtopoint":
			if i+1 < len(words) {
				arg, _ := next()
				if _, ok := parseV4(arg); !ok {
					ops = append(ops, op{kind: opMessage, msg: unknownHost(arg)})
				} else {
					ops = append(ops, op{kind: opUnsupported, word: w,
						msg: "SIOCSIFDSTADDR: Operation not supported (point-to-point links are not supported by this stack)\n"})
				}
			}
			ops = append(ops, op{kind: opFlags, word: w, set: iffPointToPoint})
			continue
		case "netmask":
			arg, ok := next()
			if !ok || didNetmask {
				return usage(w)
			}
			a, ok := parseV4(arg)
			if !ok {
				ops = append(ops, op{kind: opMessage, msg: unknownHost(arg)})
				continue
			}
			didNetmask = true
			ops = append(ops, op{kind: opNetmask, word: arg, addr: a})
			continue
		case "hw":
			typ, ok := next()
			if !ok || !hwTypes[typ] {
				return usage(w)
			}
			arg, ok := next()
			if !ok {
				return usage(w)
			}
			if typ != "ether" {
				ops = append(ops, op{kind: opUnsupported, word: typ,
					msg: "SIOCSIFHWADDR: Operation not supported (hardware type " + typ + " on this stack)\n"})
				continue
			}
			mac, ok := parseMAC(arg)
			if !ok {
				ops = append(ops, op{kind: opMessage, msg: arg + ": invalid ether address.\n"})
				continue
			}
			ops = append(ops, op{kind: opHW, word: arg, mac: mac})
			continue
		case "add", "del":
			arg, ok := next()
			if !ok {
				return usage(w)
			}
			if strings.Contains(arg, ":") {
				p, ok, bad := parseV6Prefix(arg)
				if bad {
					return usage(w)
				}
				if !ok {
					host := arg
					if j := strings.IndexByte(host, '/'); j >= 0 {
						host = host[:j]
					}
					ops = append(ops, op{kind: opMessage, msg: unknownHost(host)})
					continue
				}
				k := opAdd6
				if w == "del" {
					k = opDel6
				}
				ops = append(ops, op{kind: k, word: arg, prefix: p})
				continue
			}
			a, ok := parseV4(arg)
			if !ok {
				ops = append(ops, op{kind: opMessage, msg: unknownHost(arg)})
				continue
			}
			k := opAdd4
			if w == "del" {
				k = opDel4
			}
			ops = append(ops, op{kind: k, word: arg, addr: a})
			continue
		}
		// Anything else is the address to set.
		if af == "inet6" {
			ops = append(ops, op{kind: opExit, msg: "Don't know how to set addresses for family 10.\n", code: 1})
			return ops
		}
		addr := w
		if j := strings.IndexByte(w, '/'); j >= 0 {
			bits, err := strconv.Atoi(w[j+1:])
			if err != nil || bits < 0 || bits > 32 {
				return usage(w)
			}
			if didNetmask {
				return usage(w)
			}
			addr = w[:j]
			pendingMask = &op{kind: opNetmask, word: w, addr: Mask(bits)}
		}
		a, ok := parseV4(addr)
		if !ok {
			ops = append(ops, op{kind: opExit, msg: unknownHost(addr) + helpHint, code: 1})
			return ops
		}
		ops = append(ops, op{kind: opAddr, word: addr, addr: a})
		// Setting an address brings the interface up, except an alias
		// being removed (0.0.0.0, or a name ending in -).
		if !IsAlias(dev) || !(strings.HasSuffix(dev, "-") || a.IsUnspecified()) {
			ops = append(ops, op{kind: opFlags, word: "up", set: host.FlagUp | host.FlagRunning})
		}
	}
	// net-tools sets the mask of ADDR/LEN after all the other words.
	if pendingMask != nil {
		ops = append(ops, *pendingMask)
	}
	return ops
}

// helpHint is the line net-tools adds after an option or address error.
const helpHint = "ifconfig: `--help' gives usage information.\n"
