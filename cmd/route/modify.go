package route

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// usageError is a bad argument combination: net-tools prints the message,
// then the address family's usage, and exits E_USAGE.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// lookupError is a name that does not parse as an address: net-tools
// prints `NAME: Unknown host` and exits E_LOOKUP. There is no resolver.
type lookupError struct{ name string }

func (e *lookupError) Error() string { return e.name + ": Unknown host" }

// parseRoute turns the words after add/del into a host.Route, as
// net-tools' inet_setroute and inet6_setroute read them.
func parseRoute(words []string, inet6 bool) (host.Route, error) {
	var r host.Route
	if inet6 {
		r.Metric = 1
	}
	isNet, isHost := false, false
	if len(words) > 0 && (words[0] == "-net" || words[0] == "-host") {
		isNet, isHost = words[0] == "-net", words[0] == "-host"
		words = words[1:]
	}
	if len(words) == 0 {
		return r, &usageError{}
	}
	target := words[0]
	words = words[1:]

	var addr netip.Addr
	plen := -1
	if target == "default" {
		if inet6 {
			addr = netip.IPv6Unspecified()
		} else {
			addr = netip.IPv4Unspecified()
		}
		plen = 0
		if !isHost {
			isNet = true
		}
	} else {
		a, l, hasLen := strings.Cut(target, "/")
		var err error
		addr, err = netip.ParseAddr(a)
		if err != nil || addr.Is6() != inet6 || addr.Zone() != "" {
			return r, &lookupError{a}
		}
		if hasLen {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 || n > addr.BitLen() {
				return r, &usageError{"route: bogus netmask " + l}
			}
			plen = n
		}
	}

	netmask := ""
	for len(words) > 0 {
		w := words[0]
		arg := func() (string, error) {
			if len(words) < 2 {
				return "", &usageError{}
			}
			v := words[1]
			words = words[2:]
			return v, nil
		}
		switch w {
		case "metric":
			v, err := arg()
			if err != nil {
				return r, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return r, &usageError{}
			}
			r.Metric = n
		case "netmask":
			if inet6 {
				return r, &usageError{}
			}
			v, err := arg()
			if err != nil {
				return r, err
			}
			netmask = v
		case "gw", "gateway":
			v, err := arg()
			if err != nil {
				return r, err
			}
			g, perr := netip.ParseAddr(v)
			if perr != nil || g.Is6() != inet6 || (g.Is6() && g.Zone() != "") {
				return r, &lookupError{v}
			}
			r.Gateway = g
		case "dev", "device":
			v, err := arg()
			if err != nil {
				return r, err
			}
			r.Dev = v
		case "mss", "window", "irtt":
			// Accepted and ignored: the stack keeps no per-route TCP metrics.
			if _, err := arg(); err != nil {
				return r, err
			}
		case "reject":
			r.Type = "unreachable"
			words = words[1:]
		case "mod", "dyn", "reinstate":
			words = words[1:]
		default:
			if len(words) != 1 {
				return r, &usageError{}
			}
			r.Dev = w
			words = nil
		}
	}

	if inet6 {
		if plen < 0 {
			plen = 128
		}
		p := netip.PrefixFrom(addr, plen)
		if p.Masked() != p {
			return r, &usageError{"route: netmask doesn't match route address"}
		}
		r.Dst = p
		return r, nil
	}

	// IPv4: a dotted quad is a host unless -net says otherwise.
	if !isNet && !isHost {
		isHost = true
	}
	if isHost {
		if netmask != "" {
			return r, &usageError{"route: netmask doesn't make sense with host route"}
		}
		if plen >= 0 && plen != 32 {
			m := ^(^uint32(0) << (32 - plen))
			if plen == 0 {
				m = ^uint32(0)
			}
			return r, &usageError{fmt.Sprintf("route: netmask %08x doesn't make sense with host route", m)}
		}
		r.Dst = netip.PrefixFrom(addr, 32)
		return r, nil
	}
	if netmask != "" {
		m, err := netip.ParseAddr(netmask)
		if err != nil || !m.Is4() {
			return r, &usageError{"route: bogus netmask " + netmask}
		}
		b := m.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := bits.LeadingZeros32(^v)
		if ones < 32 && v<<ones != 0 {
			return r, &usageError{"route: bogus netmask " + netmask}
		}
		plen = ones
	}
	if plen < 0 {
		// -net without a mask: the smallest whole-octet prefix that
		// covers the address's non-zero octets.
		b := addr.As4()
		plen = 0
		for i := range 4 {
			if b[i] != 0 {
				plen = 8 * (i + 1)
			}
		}
	}
	p := netip.PrefixFrom(addr, plen)
	if p.Masked() != p {
		return r, &usageError{"route: netmask doesn't match route address"}
	}
	r.Dst = p
	return r, nil
}

func modify(ctx context.Context, env *applet.Env, h host.Host, o options) int {
	add := o.args[0] == "add"
	r, err := parseRoute(o.args[1:], o.inet6)
	if err != nil {
		switch e := err.(type) {
		case *lookupError:
			fmt.Fprintln(env.Stderr, e.Error())
			return exitLookup
		case *usageError:
			if e.msg != "" {
				fmt.Fprintln(env.Stderr, e.msg)
			}
			if o.inet6 {
				io.WriteString(env.Stderr, inet6Usage)
			} else {
				io.WriteString(env.Stderr, inetUsage)
			}
			return exitUsage
		}
	}
	ioctl := "SIOCADDRT"
	if add {
		err = h.AddRoute(ctx, r)
	} else {
		ioctl = "SIOCDELRT"
		if o.inet6 {
			// Deleting matches any metric unless one was given.
			if !hasWord(o.args, "metric") {
				r.Metric = 0
			}
		}
		err = h.DelRoute(ctx, r)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %s\n", ioctl, strerror(err))
		return exitSocket
	}
	return exitOK
}

func hasWord(ws []string, w string) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}
