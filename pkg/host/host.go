// Package host defines the control API the configuration applets (ifconfig,
// route, arp) program against: plain, JSON-serialisable types and the Host
// interface. Two implementations are planned: an in-process one over
// pkg/stack (standalone mode) and a netd client (daemon mode), so applets
// never import stack internals (DESIGN.md, Layout).
//
// Errors returned by a Host wrap syscall.Errno where Linux has one (ENODEV
// for an unknown interface, EEXIST, ESRCH for a missing route, EINVAL,
// EPERM), so applets can print Linux-like messages. The package holds no
// locks of its own.
package host

import (
	"context"
	"net/netip"
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

// Route flags, as in net-tools' route(8) Flags column.
const (
	RouteUp      uint32 = 1 << iota // U
	RouteGateway                    // G
	RouteHost                       // H
	RouteReject                     // !
)

// Route is one routing table entry.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Dev     string       `json:"dev,omitempty"`
	Metric  int          `json:"metric"`
	Flags   uint32       `json:"flags"` // Route* bits
}

// Neighbor is one ARP (IPv4) or NDP (IPv6) cache entry.
type Neighbor struct {
	Addr      netip.Addr `json:"addr"`
	MAC       string     `json:"mac,omitempty"`
	Dev       string     `json:"dev"`
	State     string     `json:"state"` // as Linux: REACHABLE, STALE, PERMANENT, INCOMPLETE, FAILED
	Permanent bool       `json:"permanent"`
}

// Host is the machine an applet configures.
type Host interface {
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
}
