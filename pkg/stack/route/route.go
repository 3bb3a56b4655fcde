// Package route is the stack's routing table: host, network and default
// routes for IPv4 and IPv6 with metrics, per-route preferred source address
// and MTU, reject routes, expiring routes (router advertisements,
// redirects), and the connected routes that follow the addresses configured
// on the interfaces.
//
// The semantics follow Linux, because the tools built on it (route,
// netstat -r, ip route) print and edit it like the kernel's:
//
//   - One Table holds both families; IPv4 and IPv6 routes live in separate
//     indexes and never match each other's destinations. An IPv4-mapped IPv6
//     address (::ffff:a.b.c.d) is an IPv6 address here and only matches IPv6
//     routes (such as ::/0); a caller that wants IPv4 routing for it (a dual
//     stack socket) unmaps it first, as Linux does in the socket layer.
//   - Lookup picks the longest matching prefix, then the lowest metric, then
//     the route added first (Linux keeps routes of equal metric in the order
//     they were added and uses the first).
//   - Add refuses a route identical to an existing one (same destination,
//     metric, type, gateway and interface) with EEXIST; Delete removes the
//     first route matching a Match and returns ESRCH when none does
//     ("SIOCADDRT: File exists", "SIOCDELRT: No such process").
//   - A gateway must be reachable through an on-link route (a connected
//     route, or any route without a gateway), or Add fails with ENETUNREACH
//     for IPv4 and EHOSTUNREACH for IPv6, as fib_check_nh and
//     ip6_validate_gw do; Route.OnLink skips the check like "onlink".
//   - Connected routes (Protocol Kernel) are created and removed by
//     AddressAdded and AddressRemoved: the IPv4 network route with metric 0
//     and the address as preferred source; the IPv6 prefix route with metric
//     256 and no source. IPv4 /32 addresses get no route (fib_add_ifaddr).
//
// The table knows interfaces only by index (NIC); names and link state
// belong to the caller. It holds no timers either: expired routes are
// skipped by Lookup at once and removed by Expire, which the stack calls at
// NextExpiry (a computable deadline, so testing/synctest drives it).
//
// Caching: Generation changes on every modification. A cached Lookup result
// stays valid while Generation is unchanged and the cached route has not
// expired (Route.Expired): expiry can only remove candidates, so only the
// expiry of the chosen route itself can change the answer.
//
// Policy routing: a Policy holds several Tables and the priority-ordered
// rules (`ip rule`) that pick one by source, destination, mark or
// interface.
//
// Concurrency: Table and Policy are safe for concurrent use. One RWMutex
// guards each Table; Lookup takes its read lock and does not allocate. A
// Table calls nothing outside itself while holding its lock. Lock order:
// Policy.mu before Table.mu (Policy.Lookup looks up a table while holding
// its read lock); a Table never calls its Policy.
package route

import (
	"net/netip"
	"strconv"
	"time"
)

// Type is what a route does with the packets it matches (Linux RTN_*).
type Type uint8

const (
	// TypeUnspec is the zero Type. In a Route it means TypeUnicast; in a
	// Match it matches every type.
	TypeUnspec Type = iota
	// TypeUnicast forwards to the gateway, or on-link without one.
	TypeUnicast
	// TypeBlackhole drops the packet silently.
	TypeBlackhole
	// TypeUnreachable drops it with ICMP host unreachable; a local sender
	// gets EHOSTUNREACH. `route add … reject` makes one (flag !).
	TypeUnreachable
	// TypeProhibit drops it with ICMP administratively prohibited; a
	// local sender gets EACCES.
	TypeProhibit
)

var typeNames = [...]string{"unspec", "unicast", "blackhole", "unreachable", "prohibit"}

// String returns the name ip-route uses for the type.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Reject reports whether the type drops packets instead of forwarding.
func (t Type) Reject() bool {
	return t == TypeBlackhole || t == TypeUnreachable || t == TypeProhibit
}

// Protocol records who installed a route (Linux RTPROT_*, "proto" in ip
// route).
type Protocol uint8

const (
	// ProtoUnspec is the zero Protocol. In a Route passed to Add it becomes
	// ProtoBoot, the kernel's default for routes added by tools; in a Match
	// it matches every protocol.
	ProtoUnspec Protocol = iota
	// ProtoKernel: a connected route made from an interface address.
	ProtoKernel
	// ProtoBoot: added by a tool (route add, ip route add).
	ProtoBoot
	// ProtoStatic: added by an administrator as permanent configuration.
	ProtoStatic
	// ProtoRA: learned from an IPv6 router advertisement (RFC 4861 §6.3.4,
	// RFC 4191 route information).
	ProtoRA
	// ProtoDHCP: learned from DHCP (router option, RFC 2132 §3.5; classless
	// static routes, RFC 3442).
	ProtoDHCP
	// ProtoRedirect: learned from an ICMP redirect (RFC 792, RFC 4861 §8).
	ProtoRedirect
)

var protoNames = [...]string{"unspec", "kernel", "boot", "static", "ra", "dhcp", "redirect"}

// String returns the name ip-route uses for the protocol.
func (p Protocol) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// Flags are the route flags net-tools prints (RTF_* in Linux).
type Flags uint16

const (
	FlagUp        Flags = 1 << iota // U: route is usable
	FlagGateway                     // G: via a gateway
	FlagHost                        // H: destination is a single host (/32, /128)
	FlagReinstate                   // R: reinstated after a dynamic route timed out
	FlagDynamic                     // D: installed dynamically (redirect)
	FlagModified                    // M: modified dynamically (redirect)
	FlagAddrconf                    // A: installed by address autoconfiguration (RA)
	FlagReject                      // !: reject route
)

// String returns the letters in net-tools order: "UGH", "!", "UGDM".
func (f Flags) String() string {
	var b [8]byte
	n := 0
	for i, c := range "UGHRDMA!" {
		if f&(1<<i) != 0 {
			b[n] = byte(c)
			n++
		}
	}
	return string(b[:n])
}

// Route is one entry of the table. Routes are values: Routes and Lookup
// return copies.
type Route struct {
	// Dst is the destination prefix, masked (10.0.0.0/8, not 10.1.2.3/8).
	// 0.0.0.0/0 and ::/0 are default routes.
	Dst netip.Prefix
	// Gateway is the next hop; the invalid Addr (or the unspecified
	// address, which Add turns into it) means on-link. Its zone is dropped:
	// the interface is NIC.
	Gateway netip.Addr
	// NIC is the outgoing interface index (> 0). Add fills it in from the
	// on-link route to Gateway when it is 0 and Gateway is set. Reject
	// routes may have none.
	NIC int
	// Src is the preferred source address for locally originated packets;
	// invalid means the stack chooses.
	Src netip.Addr
	// Metric orders routes of equal prefix length: lower wins. For IPv6,
	// Add turns 0 into 1024 as Linux does (IP6_RT_PRIO_USER).
	Metric uint32
	// MTU is the path MTU for this route; 0 means the NIC's.
	MTU int
	// Type is unicast or one of the reject types.
	Type Type
	// Protocol records who installed the route.
	Protocol Protocol
	// Flags carries the flags that cannot be derived from the other fields
	// (FlagReinstate, FlagModified, FlagDynamic for a non-redirect route).
	// DisplayFlags adds the derived ones.
	Flags Flags
	// OnLink makes Add accept a Gateway that no on-link route covers (ip
	// route's "onlink"); NIC is then required.
	OnLink bool
	// Expires is when the route stops being used; zero means never.
	Expires time.Time
	// Use counts the lookups that returned this route (net-tools "Use").
	// It is filled in by Lookup and Routes and ignored by Add.
	Use uint64
}

// DisplayFlags returns the flags net-tools shows for r: U for usable
// routes, G with a gateway, H for /32 and /128, D for redirects, A for
// router-advertisement routes, ! for reject routes, plus r.Flags.
//
// Linux shows IPv4 unreachable and prohibit routes as "!" without U, and
// sets RTF_REJECT on every IPv6 reject route, blackhole included, while an
// IPv4 blackhole shows as an ordinary "U" route; this follows it.
func (r Route) DisplayFlags() Flags {
	f := r.Flags
	switch {
	case r.Type == TypeUnreachable || r.Type == TypeProhibit,
		r.Type == TypeBlackhole && r.Dst.Addr().Is6():
		f |= FlagReject
	default:
		f |= FlagUp
	}
	if r.Gateway.IsValid() {
		f |= FlagGateway
	}
	if r.Dst.IsValid() && r.Dst.IsSingleIP() {
		f |= FlagHost
	}
	switch r.Protocol {
	case ProtoRedirect:
		f |= FlagDynamic
	case ProtoRA:
		f |= FlagAddrconf
	}
	return f
}

// Expired reports whether r has an expiry time and now is not before it.
func (r Route) Expired(now time.Time) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires)
}

// String formats r like ip route: "10.0.0.0/8 via 10.1.0.1 dev #2 metric 5".
func (r Route) String() string {
	var b []byte
	if r.Type != TypeUnicast && r.Type != TypeUnspec {
		b = append(b, r.Type.String()...)
		b = append(b, ' ')
	}
	b = append(b, r.Dst.String()...)
	if r.Gateway.IsValid() {
		b = append(b, " via "...)
		b = append(b, r.Gateway.String()...)
	}
	if r.NIC != 0 {
		b = append(b, " dev #"...)
		b = strconv.AppendInt(b, int64(r.NIC), 10)
	}
	if r.Protocol != ProtoUnspec && r.Protocol != ProtoBoot {
		b = append(b, " proto "...)
		b = append(b, r.Protocol.String()...)
	}
	if r.Src.IsValid() {
		b = append(b, " src "...)
		b = append(b, r.Src.String()...)
	}
	if r.Metric != 0 {
		b = append(b, " metric "...)
		b = strconv.AppendUint(b, uint64(r.Metric), 10)
	}
	if r.MTU != 0 {
		b = append(b, " mtu "...)
		b = strconv.AppendInt(b, int64(r.MTU), 10)
	}
	return string(b)
}

// Match selects routes to delete, like the arguments of `route del`: Dst is
// required and matched exactly; every other field narrows the match only
// when set.
type Match struct {
	Dst      netip.Prefix
	Gateway  netip.Addr // invalid: any gateway (or none)
	NIC      int        // 0: any interface
	Metric   uint32     // compared only when MetricSet
	Type     Type       // TypeUnspec: any type
	Protocol Protocol   // ProtoUnspec: any protocol
	Src      netip.Addr // invalid: any source

	// MetricSet makes Metric part of the match. (Linux treats metric 0 as
	// "any"; a tool that wants that sets MetricSet only for metric != 0.)
	MetricSet bool
}

func (m *Match) matches(r *Route) bool {
	return r.Dst == m.Dst &&
		(!m.Gateway.IsValid() || r.Gateway == m.Gateway.WithZone("")) &&
		(m.NIC == 0 || r.NIC == m.NIC) &&
		(!m.MetricSet || r.Metric == m.Metric) &&
		(m.Type == TypeUnspec || r.Type == m.Type) &&
		(m.Protocol == ProtoUnspec || r.Protocol == m.Protocol) &&
		(!m.Src.IsValid() || r.Src == m.Src.WithZone(""))
}
