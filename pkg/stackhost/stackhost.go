// Package stackhost implements host.Host over an in-process stack: what
// netd serves to its clients and what an applet runs on standalone with
// --link SPEC (DESIGN.md, Process model).
//
// It owns the mapping from the stack's types to the control API's and the
// IPv4 address labels of alias interfaces (eth0:1), which the stack does
// not keep. Lock order: Host.mu (the labels) is taken before any stack
// lock and only for label bookkeeping; it is never held across a call
// that can block on the link.
package stackhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/link/linkspec"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/udp"
	"github.com/stackbox/stackbox/pkg/wire"
)

// txQueueLen is what Linux gives Ethernet and loopback devices
// (DEFAULT_TX_QUEUE_LEN); ifconfig prints it.
const txQueueLen = 1000

// Host is a host.Host over one stack.
type Host struct {
	in    *socket.Inet
	owned bool // Close closes the stack

	mu     sync.Mutex
	labels map[netip.Addr]string // IPv4 address → alias label ("eth0:1")
	// owners are who opened the sockets made through Net (netstat -p);
	// ownersSwept is the table's size after the last sweep of closed ones.
	owners      map[*socket.Socket]host.Cred
	ownersSwept int
}

var _ host.Host = (*Host)(nil)

// New returns a Host over an existing stack and its socket layer. Close
// leaves the stack running.
func New(in *socket.Inet) *Host {
	return &Host{in: in, labels: make(map[netip.Addr]string)}
}

// Start makes a stack with one NIC per link spec (eth0, eth1, … in
// order), brings each up and returns the Host that owns it: Close
// closes the stack and its links.
func Start(specs ...string) (*Host, error) {
	s := stack.New(stack.Options{})
	for i, spec := range specs {
		ep, err := linkspec.Open(spec)
		if err != nil {
			s.Close()
			return nil, err
		}
		n, err := s.AddNIC(ep, stack.NICOptions{Name: fmt.Sprintf("eth%d", i)})
		if err != nil {
			ep.Close()
			s.Close()
			return nil, fmt.Errorf("link %s: %w", spec, err)
		}
		n.SetUp(true)
	}
	h := New(socket.NewInet(s))
	h.owned = true
	return h, nil
}

// Inet returns the socket layer of the stack.
func (h *Host) Inet() *socket.Inet { return h.in }

// Stack returns the stack.
func (h *Host) Stack() *stack.Stack { return h.in.Stack }

// Close closes the stack if Start made it.
func (h *Host) Close() error {
	if h.owned {
		return h.in.Stack.Close()
	}
	return nil
}

// fail turns a stack error into a host.Error that keeps its errno.
func fail(err error) error {
	if err == nil {
		return nil
	}
	var he *host.Error
	if errors.As(err, &he) {
		return err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EIO
	}
	return &host.Error{Errno: errno, Msg: strings.TrimPrefix(err.Error(), "stack: ")}
}

func noDevice(name string) error {
	return host.Errorf(syscall.ENODEV, "%s: no such device", name)
}

// nic resolves an interface name; an alias (eth0:1) resolves to its parent.
func (h *Host) nic(name string) (*stack.NIC, string, error) {
	base, label := name, ""
	if b, _, ok := strings.Cut(name, ":"); ok {
		base, label = b, name
	}
	n, ok := h.in.Stack.NICByName(base)
	if !ok {
		return nil, "", noDevice(name)
	}
	return n, label, nil
}

func convFlags(f stack.Flags) uint32 {
	var out uint32
	for _, m := range []struct {
		s stack.Flags
		h uint32
	}{
		{stack.FlagUp, host.FlagUp}, {stack.FlagBroadcast, host.FlagBroadcast},
		{stack.FlagLoopback, host.FlagLoopback}, {stack.FlagRunning, host.FlagRunning},
		{stack.FlagPromisc, host.FlagPromisc}, {stack.FlagAllMulti, host.FlagAllMulti},
		{stack.FlagMulticast, host.FlagMulticast},
	} {
		if f&m.s != 0 {
			out |= m.h
		}
	}
	return out
}

func scope(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "host"
	case a.IsLinkLocalUnicast():
		return "link"
	}
	return "global"
}

// interfaces lists n and, after it, one Interface per alias label on it.
func (h *Host) interfaces(n *stack.NIC) []host.Interface {
	it := host.Interface{
		Index: n.Index(), Name: n.Name(), Flags: convFlags(n.Flags()), MTU: n.MTU(),
		TxQueueLen: txQueueLen,
	}
	if !n.IsLoopback() {
		it.MAC = n.MAC().String()
	}
	st := n.Stats().Snapshot()
	it.Stats = host.Stats{
		RxPackets: st.RxPackets, RxBytes: st.RxBytes, RxErrors: st.RxErrors, RxDropped: st.RxDropped,
		RxMulticast: st.RxMulticast, TxPackets: st.TxPackets, TxBytes: st.TxBytes,
		TxErrors: st.TxErrors, TxDropped: st.TxDropped,
	}
	h.mu.Lock()
	aliases := map[string]*host.Interface{}
	var order []string
	for _, a := range n.Addresses() {
		ha := host.Addr{Prefix: a.Prefix, Broadcast: a.Broadcast, Scope: scope(a.Prefix.Addr())}
		if a.Prefix.Addr().Is6() {
			ha.State = a.State.String()
		}
		if l := h.labels[a.Prefix.Addr()]; l != "" {
			ha.Label = l
			al := aliases[l]
			if al == nil {
				al = &host.Interface{Index: it.Index, Name: l, Flags: it.Flags, MTU: it.MTU, MAC: it.MAC, TxQueueLen: it.TxQueueLen}
				aliases[l] = al
				order = append(order, l)
			}
			al.Addrs = append(al.Addrs, ha)
		}
		it.Addrs = append(it.Addrs, ha)
	}
	h.mu.Unlock()
	out := []host.Interface{it}
	slices.Sort(order)
	for _, l := range order {
		out = append(out, *aliases[l])
	}
	return out
}

// Interfaces lists every interface, lo first, aliases after their parent.
// A parent's Addrs include its aliases' addresses, with Label set.
func (h *Host) Interfaces(ctx context.Context) ([]host.Interface, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []host.Interface
	for _, n := range h.in.Stack.NICs() {
		out = append(out, h.interfaces(n)...)
	}
	return out, nil
}

// Interface returns one interface or alias by name.
func (h *Host) Interface(ctx context.Context, name string) (host.Interface, error) {
	if err := ctx.Err(); err != nil {
		return host.Interface{}, err
	}
	n, _, err := h.nic(name)
	if err != nil {
		return host.Interface{}, err
	}
	for _, it := range h.interfaces(n) {
		if it.Name == name {
			return it, nil
		}
	}
	return host.Interface{}, noDevice(name)
}

// AddAddress adds p to dev; for an alias name the address gets its label.
func (h *Host) AddAddress(ctx context.Context, dev string, p netip.Prefix, broadcast netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, label, err := h.nic(dev)
	if err != nil {
		return err
	}
	if !p.IsValid() {
		return host.Errorf(syscall.EINVAL, "%s: invalid address", dev)
	}
	if label != "" && !p.Addr().Is4() {
		return host.Errorf(syscall.EINVAL, "%s: alias interfaces carry IPv4 addresses only", dev)
	}
	for _, a := range n.Addresses() {
		if a.Prefix.Addr() == p.Addr() {
			return host.Errorf(syscall.EEXIST, "%s: address %v exists", dev, p.Addr())
		}
	}
	if err := n.AddAddress(stack.Address{Prefix: p, Broadcast: broadcast}); err != nil {
		return fail(err)
	}
	if label != "" {
		h.mu.Lock()
		h.labels[p.Addr()] = label
		h.mu.Unlock()
	}
	return nil
}

// DelAddress removes a from dev (for an alias: only its labelled address).
func (h *Host) DelAddress(ctx context.Context, dev string, a netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, label, err := h.nic(dev)
	if err != nil {
		return err
	}
	h.mu.Lock()
	got := h.labels[a]
	h.mu.Unlock()
	if label != "" && got != label {
		return host.Errorf(syscall.EADDRNOTAVAIL, "%s has no address %v", dev, a)
	}
	if err := n.RemoveAddress(a); err != nil {
		return fail(err)
	}
	h.mu.Lock()
	delete(h.labels, a)
	h.mu.Unlock()
	return nil
}

// SetUp sets or clears IFF_UP. Taking an alias down removes its addresses,
// as Linux does for a labelled address (ifconfig eth0:1 down).
func (h *Host) SetUp(ctx context.Context, dev string, up bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, label, err := h.nic(dev)
	if err != nil {
		return err
	}
	if label == "" {
		n.SetUp(up)
		return nil
	}
	if up {
		return nil
	}
	h.mu.Lock()
	var addrs []netip.Addr
	for a, l := range h.labels {
		if l == label {
			addrs = append(addrs, a)
		}
	}
	h.mu.Unlock()
	for _, a := range addrs {
		if err := h.DelAddress(ctx, dev, a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return err
		}
	}
	return nil
}

// SetMTU sets the interface MTU (EINVAL outside what the link allows).
func (h *Host) SetMTU(ctx context.Context, dev string, mtu int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, _, err := h.nic(dev)
	if err != nil {
		return err
	}
	return fail(n.SetMTU(mtu))
}

// SetMAC sets the station address.
func (h *Host) SetMAC(ctx context.Context, dev string, mac string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, _, err := h.nic(dev)
	if err != nil {
		return err
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return host.Errorf(syscall.EINVAL, "%s: invalid hardware address %q", dev, mac)
	}
	return fail(n.SetMAC(wire.MAC(hw)))
}

// SetPromisc sets or clears IFF_PROMISC.
func (h *Host) SetPromisc(ctx context.Context, dev string, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, _, err := h.nic(dev)
	if err != nil {
		return err
	}
	n.SetPromiscuous(on)
	return nil
}

var typeNames = map[route.Type]string{
	route.TypeUnreachable: "unreachable", route.TypeProhibit: "prohibit", route.TypeBlackhole: "blackhole",
}

func (h *Host) nicName(index int) string {
	if n, ok := h.in.Stack.NIC(index); ok {
		return n.Name()
	}
	return ""
}

// Routes lists the main table: connected routes and those added by tools.
func (h *Host) Routes(ctx context.Context) ([]host.Route, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []host.Route
	for _, r := range h.in.Stack.Routes().Routes() {
		// Linux keeps lo's 127.0.0.0/8 in the local table, which route
		// and netstat -r do not print; ours is in the one table.
		if n, ok := h.in.Stack.NIC(r.NIC); ok && n.IsLoopback() && r.Dst.Addr().Is4() && r.Protocol == route.ProtoKernel {
			continue
		}
		out = append(out, host.Route{
			Dst: r.Dst, Gateway: r.Gateway, Dev: h.nicName(r.NIC), Metric: int(r.Metric),
			// host.Route* bits are in the same order as route.Flags (UGHRDMA!).
			Flags: uint32(r.DisplayFlags()), Type: typeNames[r.Type], Protocol: r.Protocol.String(), Use: r.Use,
		})
	}
	return out, nil
}

func (h *Host) toRoute(r host.Route) (route.Route, error) {
	out := route.Route{Dst: r.Dst.Masked(), Gateway: r.Gateway, Metric: uint32(max(r.Metric, 0))}
	if !r.Dst.IsValid() {
		return out, host.Errorf(syscall.EINVAL, "route: invalid destination")
	}
	if r.Dst != r.Dst.Masked() {
		return out, host.Errorf(syscall.EINVAL, "route %v: destination has host bits set", r.Dst)
	}
	if r.Dev != "" {
		n, _, err := h.nic(r.Dev)
		if err != nil {
			return out, err
		}
		out.NIC = n.Index()
	}
	switch r.Type {
	case "", "unicast":
	case "unreachable":
		out.Type = route.TypeUnreachable
	case "prohibit":
		out.Type = route.TypeProhibit
	case "blackhole":
		out.Type = route.TypeBlackhole
	default:
		return out, host.Errorf(syscall.EINVAL, "route: unknown type %q", r.Type)
	}
	return out, nil
}

// AddRoute adds a route; without Dev the gateway's on-link route picks the
// interface (ENETUNREACH when none covers it, as Linux).
func (h *Host) AddRoute(ctx context.Context, r host.Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sr, err := h.toRoute(r)
	if err != nil {
		return err
	}
	if sr.Type == route.TypeUnspec && sr.NIC == 0 && !sr.Gateway.IsValid() {
		return host.Errorf(syscall.ENODEV, "route %v: no gateway and no device", r.Dst)
	}
	return fail(h.in.Stack.Routes().Add(sr))
}

// DelRoute removes the route matching Dst and, where set, Gateway, Dev,
// Metric (non-zero, as Linux treats 0 as any) and Type.
func (h *Host) DelRoute(ctx context.Context, r host.Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sr, err := h.toRoute(r)
	if err != nil {
		return err
	}
	m := route.Match{Dst: sr.Dst, Gateway: sr.Gateway, NIC: sr.NIC, Metric: sr.Metric, MetricSet: sr.Metric != 0, Type: sr.Type}
	return fail(h.in.Stack.Routes().Delete(m))
}

func neighbors(n *stack.NIC, c *neighbor.Cache[*stack.Packet], out []host.Neighbor) []host.Neighbor {
	if c == nil {
		return out
	}
	for _, e := range c.Entries() {
		hn := host.Neighbor{Addr: e.Addr, Dev: n.Name(), State: e.State.String(), Permanent: e.State == neighbor.Permanent}
		if e.State.HasAddr() {
			hn.MAC = e.MAC.String()
		}
		out = append(out, hn)
	}
	return out
}

// Neighbors lists the ARP and NDP caches of every interface.
func (h *Host) Neighbors(ctx context.Context) ([]host.Neighbor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []host.Neighbor
	for _, n := range h.in.Stack.NICs() {
		if n.IsLoopback() {
			continue
		}
		out = neighbors(n, n.ARP(), out)
		out = neighbors(n, n.NDP(), out)
	}
	return out, nil
}

// cache finds dev's cache for a (ARP for IPv4, NDP for IPv6).
func (h *Host) cache(dev string, a netip.Addr) (*neighbor.Cache[*stack.Packet], error) {
	n, _, err := h.nic(dev)
	if err != nil {
		return nil, err
	}
	c := n.ARP()
	if a.Is6() {
		c = n.NDP()
	}
	if c == nil || n.IsLoopback() {
		return nil, host.Errorf(syscall.EINVAL, "%s has no neighbour table", dev)
	}
	return c, nil
}

// AddNeighbor adds a permanent entry (arp -s). Published (proxy) entries
// are not supported: the stack's proxy ARP is a per-interface switch that
// answers for every routed address, not a per-address table.
func (h *Host) AddNeighbor(ctx context.Context, nb host.Neighbor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if nb.Proxy {
		return host.Errorf(syscall.EOPNOTSUPP, "published (proxy) neighbour entries are not supported")
	}
	if !nb.Addr.IsValid() {
		return host.Errorf(syscall.EINVAL, "neighbour: invalid address")
	}
	hw, err := net.ParseMAC(nb.MAC)
	if err != nil || len(hw) != 6 {
		return host.Errorf(syscall.EINVAL, "invalid hardware address %q", nb.MAC)
	}
	dev := nb.Dev
	if dev == "" {
		dev, err = h.onLinkDev(nb.Addr)
		if err != nil {
			return err
		}
	}
	c, err := h.cache(dev, nb.Addr)
	if err != nil {
		return err
	}
	return fail(c.AddStatic(nb.Addr, wire.MAC(hw)))
}

// onLinkDev is the interface whose connected route covers a, as the
// kernel picks the device for arp -s without -i.
func (h *Host) onLinkDev(a netip.Addr) (string, error) {
	r, ok := h.in.Stack.Routes().Lookup(a)
	if !ok || r.Gateway.IsValid() || r.NIC == 0 {
		return "", host.Errorf(syscall.ENETUNREACH, "%v: network is unreachable", a)
	}
	return h.nicName(r.NIC), nil
}

// DelNeighbor removes an entry; without dev every interface is searched.
// A missing entry is ENXIO, as the kernel answers SIOCDARP.
func (h *Host) DelNeighbor(ctx context.Context, dev string, a netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var nics []*stack.NIC
	if dev != "" {
		n, _, err := h.nic(dev)
		if err != nil {
			return err
		}
		nics = []*stack.NIC{n}
	} else {
		nics = h.in.Stack.NICs()
	}
	for _, n := range nics {
		if n.IsLoopback() {
			continue
		}
		c := n.ARP()
		if a.Is6() {
			c = n.NDP()
		}
		if c != nil && c.Delete(a) {
			return nil
		}
	}
	return host.Errorf(syscall.ENXIO, "no neighbour entry for %v", a)
}

// Sockets lists every open endpoint of the stack, with the owner of those
// opened through Net (for netd: the client that asked for them).
func (h *Host) Sockets(ctx context.Context) ([]host.Socket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	owners := h.ownersByEndpoint()
	var out []host.Socket
	for _, e := range h.in.Endpoints() {
		so := host.Socket{Proto: e.Proto, Local: e.Local, Remote: e.Remote, State: e.State, RecvQ: e.RecvQ, SendQ: e.SendQ}
		if c, ok := owners[ownerKey{e.Proto, e.Local, e.Remote}]; ok {
			so.UID, so.PID, so.Program = c.UID, c.PID, c.Program
		}
		out = append(out, so)
	}
	// The protocols keep endpoints in hash maps; a stable order (by
	// protocol as listed, then addresses) keeps netstat -c from jumping.
	rank := map[string]int{}
	for _, so := range out {
		if _, ok := rank[so.Proto]; !ok {
			rank[so.Proto] = len(rank)
		}
	}
	slices.SortStableFunc(out, func(a, b host.Socket) int {
		if c := rank[a.Proto] - rank[b.Proto]; c != 0 {
			return c
		}
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
	return out, nil
}

// Counters returns the stack's /proc/net/snmp-style sections (Ip, Icmp,
// IcmpMsg, Ip6, Icmp6, …) and the Tcp and Udp sections of the transports.
func (h *Host) Counters(ctx context.Context) ([]host.CounterSection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []host.CounterSection
	for _, s := range h.in.Stack.Snapshot() {
		cs := host.CounterSection{Name: s.Name}
		for _, c := range s.Counters {
			cs.Counters = append(cs.Counters, host.Counter{Name: c.Name, Value: c.Value})
		}
		out = append(out, cs)
	}
	t := h.in.TCP.Stats()
	out = append(out, host.CounterSection{Name: "Tcp", Counters: []host.Counter{
		ctr("ActiveOpens", t.ActiveOpens.Load()), ctr("PassiveOpens", t.PassiveOpens.Load()),
		ctr("AttemptFails", t.AttemptFails.Load()), ctr("EstabResets", t.EstabResets.Load()),
		ctr("CurrEstab", uint64(max(t.CurrEstab.Load(), 0))), ctr("InSegs", t.InSegs.Load()),
		ctr("OutSegs", t.OutSegs.Load()), ctr("RetransSegs", t.RetransSegs.Load()),
		ctr("InErrs", t.InErrs.Load()), ctr("OutRsts", t.OutRsts.Load()), ctr("InCsumErrors", t.InCsumErrors.Load()),
	}})
	// The TcpExt counters of /proc/net/netstat that the stack keeps, by
	// Linux's names (netstat -s prints those that are not zero).
	out = append(out, host.CounterSection{Name: "TcpExt", Counters: []host.Counter{
		ctr("PruneCalled", t.PruneCalled.Load()), ctr("OfoPruned", t.OfoPruned.Load()),
		ctr("TCPTimeWaitOverflow", t.TimeWaitOverflow.Load()),
		ctr("TCPMemoryPressures", t.MemoryPressures.Load()),
		ctr("TCPOFODrop", t.OFODrop.Load()), ctr("TCPRcvQDrop", t.RcvQDrop.Load()),
	}})
	u := h.in.UDP.Stats()
	out = append(out, udpSection("Udp", &u.Counters), udpSection("Udp6", &u.V6))
	return out, nil
}

// udpSection names the UDP counters as /proc/net/snmp (and snmp6's Udp6).
func udpSection(name string, c *udp.Counters) host.CounterSection {
	return host.CounterSection{Name: name, Counters: []host.Counter{
		ctr("InDatagrams", c.InDatagrams.Load()), ctr("NoPorts", c.NoPorts.Load()),
		ctr("InErrors", c.InErrors.Load()), ctr("OutDatagrams", c.OutDatagrams.Load()),
		ctr("RcvbufErrors", c.RcvbufErrors.Load()), ctr("SndbufErrors", c.SndbufErrors.Load()),
		ctr("InCsumErrors", c.InCsumErrors.Load()),
	}}
}

func ctr(name string, v uint64) host.Counter { return host.Counter{Name: name, Value: v} }
