package netd

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/pkg/link/linkspec"
	"github.com/stackbox/stackbox/pkg/simnet"
)

// Config is netd's static configuration, from flags and a config file.
type Config struct {
	Links      []string // link specs; the Nth becomes ethN
	Addrs      []AddrConfig
	Routes     []RouteConfig
	DNS        []netip.Addr
	Search     []string
	Forwarding bool
	Socket     string // control socket path
	ResolvConf string // the resolv.conf netd owns
	// Sim joins the built-in simulated network (package simnet) as the
	// last link, configured by DHCP from its gateway unless the settings
	// give it an address.
	Sim bool
	// DHCP are the interfaces configured by DHCP.
	DHCP []string
}

// simDefaults adds the simulated network's LAN as the next link, to be
// configured by DHCP unless the configuration gives it an address.
func (c *Config) simDefaults(n *simnet.Network) {
	dev := fmt.Sprintf("eth%d", len(c.Links))
	c.Links = append(c.Links, n.LAN)
	for _, a := range c.Addrs {
		if a.Dev == dev {
			return
		}
	}
	if !slices.Contains(c.DHCP, dev) {
		c.DHCP = append(c.DHCP, dev)
	}
}

// AddrConfig is an address to put on an interface.
type AddrConfig struct {
	Dev    string
	Prefix netip.Prefix
}

// RouteConfig is a static route. An invalid Gateway is an on-link route.
type RouteConfig struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Dev     string
	Metric  int
}

// parseAddr reads "DEV=ADDR/LEN" (the --addr flag) or, from the config
// file, the fields "DEV ADDR/LEN".
func parseAddr(s string) (AddrConfig, error) {
	dev, pfx, ok := strings.Cut(s, "=")
	if !ok {
		return AddrConfig{}, fmt.Errorf("address %q: want IFACE=ADDRESS/PREFIXLEN (eth0=192.168.1.100/24)", s)
	}
	return addrFields(dev, pfx)
}

func addrFields(dev, pfx string) (AddrConfig, error) {
	if dev == "" {
		return AddrConfig{}, fmt.Errorf("address %q: no interface", pfx)
	}
	p, err := netip.ParsePrefix(pfx)
	if err != nil {
		return AddrConfig{}, fmt.Errorf("address %q on %s: want ADDRESS/PREFIXLEN (192.168.1.100/24)", pfx, dev)
	}
	return AddrConfig{Dev: dev, Prefix: p}, nil
}

// parseRoute reads a route as route(8) words: "default gw 10.0.0.1",
// "10.1.0.0/16 gw 10.0.0.254 dev eth0 metric 5", "10.2.0.0/16 dev eth1".
// The --route flag takes the same words separated by spaces or commas.
func parseRoute(s string) (RouteConfig, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(f) == 0 {
		return RouteConfig{}, fmt.Errorf("route %q: empty", s)
	}
	var r RouteConfig
	switch f[0] {
	case "default", "default4":
		r.Dst = netip.MustParsePrefix("0.0.0.0/0")
	case "default6":
		r.Dst = netip.MustParsePrefix("::/0")
	default:
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			a, aerr := netip.ParseAddr(f[0])
			if aerr != nil {
				return RouteConfig{}, fmt.Errorf("route %q: destination %q: want default, PREFIX/LEN or a host address", s, f[0])
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.Dst = p.Masked()
	}
	for i := 1; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return RouteConfig{}, fmt.Errorf("route %q: %q needs a value", s, f[i])
		}
		v := f[i+1]
		switch f[i] {
		case "gw", "via":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return RouteConfig{}, fmt.Errorf("route %q: gateway %q is not an address", s, v)
			}
			r.Gateway = a
		case "dev":
			r.Dev = v
		case "metric":
			m, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return RouteConfig{}, fmt.Errorf("route %q: metric %q is not a number", s, v)
			}
			r.Metric = int(m)
		default:
			return RouteConfig{}, fmt.Errorf("route %q: unknown word %q (want gw, dev or metric)", s, f[i])
		}
	}
	if r.Dst.Addr().Is4() && r.Dst.Bits() == 0 && r.Gateway.Is6() {
		r.Dst = netip.MustParsePrefix("::/0") // "default gw fe80::1"
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return RouteConfig{}, fmt.Errorf("route %q: gateway and destination are of different families", s)
	}
	if !r.Gateway.IsValid() && r.Dev == "" {
		return RouteConfig{}, fmt.Errorf("route %q: needs gw ADDRESS or dev IFACE", s)
	}
	return r, nil
}

// ParseConfigFile reads netd's config file: one setting per line, the
// flag's name and its value, '#' starting a comment:
//
//	link tap:sbx0
//	addr eth0 192.168.1.100/24
//	route default gw 192.168.1.1
//	nameserver 192.168.1.1
//	search lab
//	forwarding on
//	socket /run/stackbox/netd.sock
//	resolv-conf /run/stackbox/resolv.conf
//
// Settings add to c (lists append, the others replace).
func ParseConfigFile(r io.Reader, name string, c *Config) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := c.setting(f[0], f[1:]); err != nil {
			return fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func (c *Config) setting(key string, v []string) error {
	one := func() (string, error) {
		if len(v) != 1 {
			return "", fmt.Errorf("%s takes one value, not %d", key, len(v))
		}
		return v[0], nil
	}
	switch key {
	case "link":
		s, err := one()
		if err != nil {
			return err
		}
		if _, err := linkspec.Parse(s); err != nil {
			return err
		}
		c.Links = append(c.Links, s)
	case "addr", "address":
		if len(v) != 2 {
			return fmt.Errorf("%s wants IFACE ADDRESS/PREFIXLEN", key)
		}
		a, err := addrFields(v[0], v[1])
		if err != nil {
			return err
		}
		c.Addrs = append(c.Addrs, a)
	case "route":
		r, err := parseRoute(strings.Join(v, " "))
		if err != nil {
			return err
		}
		c.Routes = append(c.Routes, r)
	case "nameserver", "dns":
		s, err := one()
		if err != nil {
			return err
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("nameserver %q is not an address", s)
		}
		c.DNS = append(c.DNS, a)
	case "search":
		if len(v) == 0 {
			return fmt.Errorf("search wants one or more domains")
		}
		c.Search = append(c.Search, v...)
	case "forwarding":
		s, err := one()
		if err != nil {
			return err
		}
		switch s {
		case "on", "yes", "1", "true":
			c.Forwarding = true
		case "off", "no", "0", "false":
			c.Forwarding = false
		default:
			return fmt.Errorf("forwarding %q: want on or off", s)
		}
	case "socket":
		s, err := one()
		if err != nil {
			return err
		}
		c.Socket = s
	case "resolv-conf":
		s, err := one()
		if err != nil {
			return err
		}
		c.ResolvConf = s
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return nil
}

// resolvConf is the text of the resolv.conf netd writes (resolv.conf(5)).
func resolvConf(c *Config) string {
	var b strings.Builder
	b.WriteString("# written by stackbox netd; changes are lost when it restarts\n")
	if len(c.Search) > 0 {
		b.WriteString("search " + strings.Join(c.Search, " ") + "\n")
	}
	for _, a := range c.DNS {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	return b.String()
}
