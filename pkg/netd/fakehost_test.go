package netd

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/stackbox/stackbox/pkg/host"
)

// memHost is an in-memory host.Host: it stores what it is given and
// answers with Linux's errnos, a test double for the transport.
type memHost struct {
	host.Net // the data tests serve a stackhost instead
	mu       sync.Mutex
	ifs      []host.Interface
	routes   []host.Route
	neigh    []host.Neighbor
	sockets  []host.Socket
	counters []host.CounterSection
	// block, when set, is waited on by Interfaces (graceful shutdown test).
	block chan struct{}
	// entered is closed when Interfaces starts waiting on block.
	entered chan struct{}
}

func newMemHost() *memHost {
	return &memHost{
		ifs: []host.Interface{
			{Index: 1, Name: "lo", Flags: host.FlagUp | host.FlagLoopback | host.FlagRunning, MTU: 65536,
				Addrs: []host.Addr{{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Scope: "host"},
					{Prefix: netip.MustParsePrefix("::1/128"), Scope: "host", State: "preferred"}}},
			{Index: 2, Name: "eth0", Flags: host.FlagUp | host.FlagBroadcast | host.FlagMulticast | host.FlagRunning, MTU: 1500,
				MAC: "02:00:00:00:00:01", TxQueueLen: 1000,
				Addrs: []host.Addr{{Prefix: netip.MustParsePrefix("10.0.0.2/24"), Broadcast: netip.MustParseAddr("10.0.0.255"), Scope: "global"}},
				Stats: host.Stats{RxPackets: 10, RxBytes: 1000, TxPackets: 7, TxBytes: 700}},
		},
		routes: []host.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0", Flags: host.RouteUp | host.RouteGateway, Protocol: "static", Use: 3},
			{Dst: netip.MustParsePrefix("10.0.0.0/24"), Dev: "eth0", Flags: host.RouteUp, Protocol: "kernel"},
		},
		neigh: []host.Neighbor{
			{Addr: netip.MustParseAddr("10.0.0.1"), MAC: "02:00:00:00:00:fe", Dev: "eth0", State: "REACHABLE"},
		},
		sockets: []host.Socket{
			{Proto: "tcp", Local: netip.MustParseAddrPort("0.0.0.0:22"), State: "LISTEN", UID: 0, PID: 1, Program: "sshd", Inode: 42},
			{Proto: "udp6", Local: netip.MustParseAddrPort("[::]:53"), RecvQ: 5},
			{Proto: "tcp", Local: netip.MustParseAddrPort("10.0.0.2:40000"), Remote: netip.MustParseAddrPort("10.0.0.1:80"),
				State: "ESTABLISHED", SendQ: 9, UID: 1000, PID: 77, Program: "nc"},
		},
		counters: []host.CounterSection{
			{Name: "Ip", Counters: []host.Counter{{Name: "InReceives", Value: 100}, {Name: "Forwarding", Value: 2}}},
			{Name: "Tcp", Counters: []host.Counter{{Name: "ActiveOpens", Value: 4}}},
		},
	}
}

// snapshot is the whole state as JSON, to check that nothing changed.
func (h *memHost) snapshot() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := json.Marshal([]any{h.ifs, h.routes, h.neigh, h.sockets, h.counters})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func enodev(dev string) error {
	return host.Errorf(syscall.ENODEV, "%s: No such device", dev)
}

// find returns the interface dev (an alias "eth0:1" finds eth0).
func (h *memHost) find(dev string) (*host.Interface, string, error) {
	base, label, _ := strings.Cut(dev, ":")
	for i := range h.ifs {
		if h.ifs[i].Name == base {
			if label != "" {
				label = dev
			}
			return &h.ifs[i], label, nil
		}
	}
	return nil, "", enodev(dev)
}

func (h *memHost) Interfaces(ctx context.Context) ([]host.Interface, error) {
	if h.block != nil {
		close(h.entered)
		select {
		case <-h.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []host.Interface
	for _, ifc := range h.ifs {
		own := ifc
		own.Addrs = nil
		aliases := map[string][]host.Addr{}
		var labels []string
		for _, a := range ifc.Addrs {
			if a.Label == "" {
				own.Addrs = append(own.Addrs, a)
				continue
			}
			if _, ok := aliases[a.Label]; !ok {
				labels = append(labels, a.Label)
			}
			aliases[a.Label] = append(aliases[a.Label], a)
		}
		out = append(out, own)
		for _, l := range labels {
			al := own
			al.Name = l
			al.Addrs = aliases[l]
			out = append(out, al)
		}
	}
	return out, nil
}

func (h *memHost) Interface(ctx context.Context, name string) (host.Interface, error) {
	all, _ := h.Interfaces(ctx)
	for _, ifc := range all {
		if ifc.Name == name {
			return ifc, nil
		}
	}
	return host.Interface{}, enodev(name)
}

func (h *memHost) AddAddress(ctx context.Context, dev string, p netip.Prefix, bcast netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifc, label, err := h.find(dev)
	if err != nil {
		return err
	}
	for _, a := range ifc.Addrs {
		if a.Prefix.Addr() == p.Addr() {
			return host.Errorf(syscall.EEXIST, "SIOCSIFADDR: %v: File exists", p.Addr())
		}
	}
	ifc.Addrs = append(ifc.Addrs, host.Addr{Prefix: p, Broadcast: bcast, Scope: "global", Label: label})
	return nil
}

func (h *memHost) DelAddress(ctx context.Context, dev string, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifc, _, err := h.find(dev)
	if err != nil {
		return err
	}
	for i, x := range ifc.Addrs {
		if x.Prefix.Addr() == a {
			ifc.Addrs = slices.Delete(ifc.Addrs, i, i+1)
			return nil
		}
	}
	return host.Errorf(syscall.EADDRNOTAVAIL, "%v on %s: Cannot assign requested address", a, dev)
}

func (h *memHost) setFlag(dev string, f uint32, on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifc, _, err := h.find(dev)
	if err != nil {
		return err
	}
	if on {
		ifc.Flags |= f
	} else {
		ifc.Flags &^= f
	}
	return nil
}

func (h *memHost) SetUp(ctx context.Context, dev string, up bool) error {
	return h.setFlag(dev, host.FlagUp, up)
}

func (h *memHost) SetPromisc(ctx context.Context, dev string, on bool) error {
	return h.setFlag(dev, host.FlagPromisc, on)
}

func (h *memHost) SetMTU(ctx context.Context, dev string, mtu int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifc, _, err := h.find(dev)
	if err != nil {
		return err
	}
	if mtu < 68 || mtu > 65536 {
		return host.Errorf(syscall.EINVAL, "SIOCSIFMTU: Invalid argument")
	}
	ifc.MTU = mtu
	return nil
}

func (h *memHost) SetMAC(ctx context.Context, dev string, mac string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifc, _, err := h.find(dev)
	if err != nil {
		return err
	}
	if ifc.Flags&host.FlagLoopback != 0 {
		// Stand-in for a host refusing an operation with EPERM.
		return host.Errorf(syscall.EPERM, "SIOCSIFHWADDR: Operation not permitted")
	}
	ifc.MAC = mac
	return nil
}

func (h *memHost) Routes(ctx context.Context) ([]host.Route, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.routes), nil
}

func routeMatch(r, q host.Route) bool {
	return r.Dst == q.Dst && (!q.Gateway.IsValid() || r.Gateway == q.Gateway) &&
		(q.Dev == "" || r.Dev == q.Dev) && (q.Metric == 0 || r.Metric == q.Metric)
}

func (h *memHost) AddRoute(ctx context.Context, r host.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Dev != "" {
		if _, _, err := h.find(r.Dev); err != nil {
			return err
		}
	}
	for _, x := range h.routes {
		if x.Dst == r.Dst && x.Metric == r.Metric {
			return host.Errorf(syscall.EEXIST, "SIOCADDRT: File exists")
		}
	}
	r.Flags = host.RouteUp
	if r.Gateway.IsValid() {
		r.Flags |= host.RouteGateway
	}
	r.Protocol, r.Use = "boot", 0
	h.routes = append(h.routes, r)
	return nil
}

func (h *memHost) DelRoute(ctx context.Context, r host.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.routes {
		if routeMatch(x, r) {
			h.routes = slices.Delete(h.routes, i, i+1)
			return nil
		}
	}
	return host.Errorf(syscall.ESRCH, "SIOCDELRT: No such process")
}

func (h *memHost) Neighbors(ctx context.Context) ([]host.Neighbor, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.neigh), nil
}

func (h *memHost) AddNeighbor(ctx context.Context, n host.Neighbor) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, _, err := h.find(n.Dev); err != nil {
		return err
	}
	n.State, n.Permanent = "PERMANENT", true
	h.neigh = append(h.neigh, n)
	return nil
}

func (h *memHost) DelNeighbor(ctx context.Context, dev string, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, n := range h.neigh {
		if n.Dev == dev && n.Addr == a {
			h.neigh = slices.Delete(h.neigh, i, i+1)
			return nil
		}
	}
	return host.Errorf(syscall.ENXIO, "No ARP entry for %v", a)
}

func (h *memHost) Sockets(ctx context.Context) ([]host.Socket, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sockets), nil
}

func (h *memHost) Counters(ctx context.Context) ([]host.CounterSection, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.counters), nil
}

func (h *memHost) Close() error { return nil }
