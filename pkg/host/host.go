// Package host defines the control API the configuration applets (ifconfig,
// route, arp, netstat) program against: plain, JSON-serialisable types and the Host
// interface, whose data side (Net) the everyday tools use. It has two
// implementations: pkg/stackhost over an in-process stack (standalone
// mode, and what netd serves) and the netd client (daemon mode), so applets
// never import stack internals (DESIGN.md, Layout).
//
// Errors returned by a Host wrap syscall.Errno where Linux has one (ENODEV
// for an unknown interface, EEXIST, ESRCH for a missing route, EINVAL,
// EPERM), so applets can print Linux-like messages. The package holds no
// locks of its own.
package host

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
)

// Interface flags mirror Linux IFF_* bits (include/uapi/linux/if.h) so
// tools can print them as net-tools does.
const (
	FlagUp        uint32 = 0x1
	FlagBroadcast uint32 = 0x2
	FlagLoopback  uint32 = 0x8
	FlagRunning   uint32 = 0x40
	FlagPromisc   uint32 = 0x100
	FlagAllMulti  uint32 = 0x200
	FlagMulticast uint32 = 0x1000
)

// Addr is one address assigned to an interface.
type Addr struct {
	Prefix    netip.Prefix `json:"prefix"`
	Broadcast netip.Addr   `json:"broadcast,omitzero"` // IPv4 only
	Scope     string       `json:"scope,omitempty"`    // "host", "link", "global"
	// Label names an IPv4 alias interface (eth0:1), as Linux address
	// labels do; empty for the interface's own addresses. AddAddress with
	// dev "eth0:1" sets it; Interfaces lists the alias as its own
	// Interface carrying its labelled address.
	Label string `json:"label,omitempty"`
	// State is the address state for IPv6: "tentative", "preferred",
	// "deprecated"; empty for IPv4.
	State string `json:"state,omitempty"`
}

// Stats are an interface's counters, named as in /proc/net/dev.
type Stats struct {
	RxPackets   uint64 `json:"rx_packets"`
	RxBytes     uint64 `json:"rx_bytes"`
	RxErrors    uint64 `json:"rx_errors"`
	RxDropped   uint64 `json:"rx_dropped"`
	RxMulticast uint64 `json:"rx_multicast"`
	TxPackets   uint64 `json:"tx_packets"`
	TxBytes     uint64 `json:"tx_bytes"`
	TxErrors    uint64 `json:"tx_errors"`
	TxDropped   uint64 `json:"tx_dropped"`
}

// Interface describes one network interface.
type Interface struct {
	Index      int    `json:"index"`
	Name       string `json:"name"`
	Flags      uint32 `json:"flags"` // Flag* bits
	MTU        int    `json:"mtu"`
	MAC        string `json:"mac,omitempty"`
	Addrs      []Addr `json:"addrs,omitempty"`
	Stats      Stats  `json:"stats"`
	TxQueueLen int    `json:"txqueuelen,omitempty"`
}

// Route flags, as in net-tools' route(8) Flags column, in the order
// net-tools prints their letters (RouteFlagString).
const (
	RouteUp        uint32 = 1 << iota // U: usable
	RouteGateway                      // G: via a gateway
	RouteHost                         // H: a single host (/32, /128)
	RouteReinstate                    // R: reinstated after a dynamic route timed out
	RouteDynamic                      // D: installed by a redirect
	RouteModified                     // M: modified by a redirect
	RouteAddrconf                     // A: installed by IPv6 autoconfiguration
	RouteReject                       // !: reject route
)

// RouteFlagString returns the Flags column net-tools prints: "UG", "UH",
// "!", "UGDM".
func RouteFlagString(f uint32) string {
	var b []byte
	for i, c := range "UGHRDMA!" {
		if f&(1<<i) != 0 {
			b = append(b, byte(c))
		}
	}
	return string(b)
}

// Route is one routing table entry. In AddRoute and DelRoute, Flags,
// Use and Protocol are ignored; a zero Dev lets the host find the
// interface from the gateway. DelRoute removes the route matching Dst and,
// where they are set, Gateway, Dev and Metric.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Dev     string       `json:"dev,omitempty"`
	Metric  int          `json:"metric"`
	Flags   uint32       `json:"flags"` // Route* bits
	// Type is "unicast" (the zero value means unicast) or a reject type:
	// "unreachable", "prohibit", "blackhole" (route add … reject).
	Type string `json:"type,omitempty"`
	// Protocol says who installed it: "kernel", "boot", "static", "ra",
	// "dhcp", "redirect" (as ip route's proto).
	Protocol string `json:"protocol,omitempty"`
	// Use counts the lookups that returned this route (net-tools "Use").
	Use uint64 `json:"use"`
}

// Neighbor is one ARP (IPv4) or NDP (IPv6) cache entry.
type Neighbor struct {
	Addr      netip.Addr `json:"addr"`
	MAC       string     `json:"mac,omitempty"`
	Dev       string     `json:"dev"`
	State     string     `json:"state"` // as Linux: REACHABLE, STALE, DELAY, PROBE, PERMANENT, INCOMPLETE, FAILED
	Permanent bool       `json:"permanent"`
	// Proxy marks a published (proxy ARP) entry: arp -s … pub.
	Proxy bool `json:"proxy,omitempty"`
}

// Socket is one open socket of the host, as netstat lists it.
type Socket struct {
	// Proto is "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "icmp",
	// "icmp6" (ping sockets).
	Proto  string         `json:"proto"`
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote,omitzero"` // zero: not connected
	// State is the TCP state ("LISTEN", "ESTABLISHED", "TIME_WAIT", …);
	// for UDP "ESTABLISHED" when connected and "" otherwise; for raw
	// sockets the numeric state netstat -w prints ("7").
	State string `json:"state,omitempty"`
	RecvQ int    `json:"recv_q"`
	SendQ int    `json:"send_q"`
	// UID, PID and Program name the process that owns the socket when the
	// host knows it (netd: the client that opened it); PID 0 means
	// unknown, and netstat -p prints "-".
	UID     uint32 `json:"uid"`
	PID     int    `json:"pid,omitempty"`
	Program string `json:"program,omitempty"`
	Inode   uint64 `json:"inode,omitempty"`
}

// Counter is one named protocol counter.
type Counter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// CounterSection is one group of counters named as in /proc/net/snmp,
// /proc/net/snmp6 and /proc/net/netstat: "Ip", "Icmp", "IcmpMsg", "Tcp",
// "Udp", "Ip6", "Icmp6", "Udp6", "TcpExt".
type CounterSection struct {
	Name     string    `json:"name"`
	Counters []Counter `json:"counters"`
}

// Get returns the value of the counter named name.
func (s CounterSection) Get(name string) (uint64, bool) {
	for _, c := range s.Counters {
		if c.Name == name {
			return c.Value, true
		}
	}
	return 0, false
}

// Host is the machine an applet configures and sends through.
type Host interface {
	Net
	Interfaces(ctx context.Context) ([]Interface, error)
	Interface(ctx context.Context, name string) (Interface, error)
	AddAddress(ctx context.Context, dev string, p netip.Prefix, broadcast netip.Addr) error
	DelAddress(ctx context.Context, dev string, a netip.Addr) error
	SetUp(ctx context.Context, dev string, up bool) error
	SetMTU(ctx context.Context, dev string, mtu int) error
	SetMAC(ctx context.Context, dev string, mac string) error
	SetPromisc(ctx context.Context, dev string, on bool) error
	Routes(ctx context.Context) ([]Route, error)
	AddRoute(ctx context.Context, r Route) error
	DelRoute(ctx context.Context, r Route) error
	Neighbors(ctx context.Context) ([]Neighbor, error)
	AddNeighbor(ctx context.Context, n Neighbor) error
	DelNeighbor(ctx context.Context, dev string, a netip.Addr) error
	Sockets(ctx context.Context) ([]Socket, error)
	Counters(ctx context.Context) ([]CounterSection, error)
	// Close releases what the Host holds: the client's connections, or
	// the private stack of a standalone applet.
	Close() error
}

// Error is a failed Host operation: Errno is the Linux errno the kernel
// would return (ENODEV, EEXIST, ESRCH, EINVAL, EPERM, …) and Msg says what
// failed in words a tool can print. Both implementations return it, so a
// tool's messages do not depend on where the stack runs.
type Error struct {
	Errno syscall.Errno `json:"errno"`
	Msg   string        `json:"error"`
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is(err, syscall.ENODEV) work.
func (e *Error) Unwrap() error { return e.Errno }

// Errorf returns an *Error with the message formatted from format and args.
func Errorf(errno syscall.Errno, format string, args ...any) error {
	return &Error{Errno: errno, Msg: fmt.Sprintf(format, args...)}
}

// Opener returns the Host an applet runs on. link is the applet's --link
// value ("" when not given); getenv reads STACKBOX_LINK (a link spec for a
// private in-process stack when link is empty) and STACKBOX_SOCKET (netd's
// control socket). Without a link the Host is the netd client, and a
// missing daemon is an error that says how to start one.
type Opener func(ctx context.Context, link string, getenv func(string) string) (Host, error)
