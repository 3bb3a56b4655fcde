package route

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/stackbox/stackbox/pkg/host"
)

// The table formats of net-tools 2.10 route, as pure functions of
// host.Route values. There is no resolver in the stack yet, so the
// non-numeric form only spells 0.0.0.0 "default" (and :: "[::]" for
// IPv6); every other address is printed numerically.

const (
	ipv4Title    = "Kernel IP routing table\n"
	ipv4Header   = "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
	ipv4HeaderE  = "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface\n"
	ipv4HeaderEE = "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface    MSS   Window irtt\n"
	ipv6Title    = "Kernel IPv6 routing table\n"
	ipv6Header   = "Destination                    Next Hop                   Flag Met Ref  Use If\n"
)

func isReject(r host.Route) bool {
	return r.Flags&host.RouteReject != 0 || (r.Type != "" && r.Type != "unicast" && r.Type != "local")
}

// flags4 is the Flags column of an IPv4 row, computed from the route so
// it does not depend on which bits the host fills in.
func flags4(r host.Route) string {
	f := r.Flags & (host.RouteReinstate | host.RouteDynamic | host.RouteModified)
	if isReject(r) {
		f |= host.RouteReject
	} else {
		f |= host.RouteUp
		if r.Gateway.IsValid() && !r.Gateway.IsUnspecified() {
			f |= host.RouteGateway
		}
	}
	if r.Dst.Bits() == 32 {
		f |= host.RouteHost
	}
	return host.RouteFlagString(f)
}

func mask4(bits int) string {
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}

// sort4 orders IPv4 routes as /proc/net/route lists the main table in
// the captures: by destination address, the longer prefix first, then
// by metric.
func sort4(rs []host.Route) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c < 0
		}
		if a.Dst.Bits() != b.Dst.Bits() {
			return a.Dst.Bits() > b.Dst.Bits()
		}
		return a.Metric < b.Metric
	})
}

// FormatIPv4 renders `route [-n] [-e|-ee]`: the IPv4 routes of rs.
// extend is the number of -e options.
func FormatIPv4(rs []host.Route, numeric bool, extend int) string {
	var v4 []host.Route
	for _, r := range rs {
		if r.Dst.Addr().Is4() {
			v4 = append(v4, r)
		}
	}
	sort4(v4)
	var b strings.Builder
	b.WriteString(ipv4Title)
	switch {
	case extend >= 2:
		b.WriteString(ipv4HeaderEE)
	case extend == 1:
		b.WriteString(ipv4HeaderE)
	default:
		b.WriteString(ipv4Header)
	}
	for _, r := range v4 {
		dst := r.Dst.Addr().String()
		if !numeric && r.Dst.Addr().IsUnspecified() {
			dst = "default"
		}
		gw := "0.0.0.0"
		if r.Gateway.IsValid() {
			gw = r.Gateway.String()
		}
		mask := mask4(r.Dst.Bits())
		flags := flags4(r)
		reject := isReject(r)
		dev := r.Dev
		if reject {
			gw, dev = "-", "-"
		}
		switch {
		case extend == 1:
			fmt.Fprintf(&b, "%-15s %-15s %-15s %-5s %5d %-6d %5d %s\n", dst, gw, mask, flags, 0, 0, 0, dev)
		case reject:
			fmt.Fprintf(&b, "%-15s %-15s %-15s %-5s %-6d -  %7d -", dst, gw, mask, flags, r.Metric, r.Use)
			if extend >= 2 {
				fmt.Fprintf(&b, "        %-5d %-6d %d", 0, 0, 0)
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "%-15s %-15s %-15s %-5s %-6d %-2d %7d ", dst, gw, mask, flags, r.Metric, 0, r.Use)
			if extend >= 2 {
				fmt.Fprintf(&b, "%-8s %-5d %-6d %d\n", dev, 0, 0, 0)
			} else {
				b.WriteString(dev + "\n")
			}
		}
	}
	return b.String()
}

// flags6 is the Flag column of an IPv6 row in net-tools' order.
func flags6(r host.Route) string {
	var b strings.Builder
	reject := isReject(r)
	if !reject {
		b.WriteByte('U')
	} else {
		b.WriteByte('!')
	}
	if r.Gateway.IsValid() && !r.Gateway.IsUnspecified() {
		b.WriteByte('G')
	}
	if r.Dst.Bits() == 128 && r.Type != "local" {
		b.WriteByte('H')
	}
	if r.Flags&host.RouteDynamic != 0 {
		b.WriteByte('D')
	}
	if r.Flags&host.RouteAddrconf != 0 {
		b.WriteByte('A')
	}
	if reject || r.Type == "local" {
		b.WriteByte('n')
	}
	return b.String()
}

func name6(a netip.Addr, numeric bool) string {
	if !numeric && a.IsUnspecified() {
		return "[::]"
	}
	return a.String()
}

// FormatIPv6 renders `route -A inet6 [-n]`: the IPv6 routes of rs in the
// host's order. The host does not count references, so Ref is 0.
func FormatIPv6(rs []host.Route, numeric bool) string {
	var b strings.Builder
	b.WriteString(ipv6Title)
	b.WriteString(ipv6Header)
	for _, r := range rs {
		if !r.Dst.Addr().Is6() {
			continue
		}
		dst := fmt.Sprintf("%s/%d", name6(r.Dst.Addr(), numeric), r.Dst.Bits())
		gw := netip.IPv6Unspecified()
		if r.Gateway.IsValid() {
			gw = r.Gateway
		}
		dev := r.Dev
		if dev == "" {
			dev = "lo"
		}
		fmt.Fprintf(&b, "%-30s %-26s %-4s %-3d %-1d %6d %s\n", dst, name6(gw, numeric), flags6(r), r.Metric, 0, r.Use, dev)
	}
	return b.String()
}
