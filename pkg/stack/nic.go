package stack

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Flags are an interface's flags as ifconfig prints them (the Linux
// IFF_* set that applies here).
type Flags uint16

// The flags, in ifconfig's order.
const (
	FlagUp Flags = 1 << iota
	FlagBroadcast
	FlagLoopback
	FlagRunning
	FlagNoARP
	FlagPromisc
	FlagAllMulti
	FlagMulticast
)

var flagNames = []string{"UP", "BROADCAST", "LOOPBACK", "RUNNING", "NOARP", "PROMISC", "ALLMULTI", "MULTICAST"}

// String renders the flags as ifconfig does: "UP,BROADCAST,RUNNING,MULTICAST".
func (f Flags) String() string {
	var parts []string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, ",")
}

// NIC is one interface of a Stack: a physical link endpoint, the
// loopback, or an 802.1Q sub-interface of another NIC.
type NIC struct {
	s        *Stack
	index    int
	name     string
	ep       link.Endpoint // a VLAN shares its parent's endpoint
	parent   *NIC          // non-nil for a VLAN sub-interface
	vlan     uint16
	loopback bool

	mu         sync.RWMutex
	closed     bool
	mac        wire.MAC
	mtu        int
	up         bool
	promisc    bool
	allmulti   bool
	noAutoconf bool
	noDAD      bool
	addrs      []*address
	groups     map[netip.Addr]int // joined multicast groups, reference counted
	groupMACs  map[wire.MAC]int   // their link-layer addresses
	vlans      map[uint16]*NIC

	arp *neighbor.Cache[*Packet]
	ndp *neighbor.Cache[*Packet]

	v4    arpState  // ARP: proxy, conflict detection (arp.go)
	v6    ndpState  // NDP, SLAAC, router list (ndp.go, slaac.go)
	igmp  igmpState // IGMP (igmp.go)
	mld   mldState  // MLD (mld.go)
	stats NICStats
}

func newNIC(s *Stack, index int, o NICOptions, ep link.Endpoint, parent *NIC, vid uint16) *NIC {
	n := &NIC{
		s: s, index: index, name: o.Name, ep: ep, parent: parent, vlan: vid,
		loopback: o.Loopback || ep.Capabilities()&link.CapLoopback != 0,
		mac:      ep.MAC(), mtu: o.MTU,
		noAutoconf: o.NoAutoconf, noDAD: o.NoDAD,
		groups:    make(map[netip.Addr]int),
		groupMACs: make(map[wire.MAC]int),
		vlans:     make(map[uint16]*NIC),
	}
	if n.loopback {
		n.noAutoconf, n.noDAD = true, true
	}
	seed := s.randUint64()
	n.arp = neighbor.New[*Packet](neighbor.Config{
		LockTime: time.Second, // Linux arp locktime: the first proxy reply wins
		Seed:     seed,
		IsLocal:  n.hasAddress,
	}, arpNeighbors{n})
	n.ndp = neighbor.New[*Packet](neighbor.Config{
		Seed:    seed ^ 1,
		IsLocal: n.hasAddress,
	}, ndpNeighbors{n})
	return n
}

// Index returns the interface index (1 is usually "lo").
func (n *NIC) Index() int { return n.index }

// Name returns the interface name.
func (n *NIC) Name() string { return n.name }

// Stack returns the stack the NIC belongs to.
func (n *NIC) Stack() *Stack { return n.s }

// Endpoint returns the link endpoint (a VLAN's is its parent's).
func (n *NIC) Endpoint() link.Endpoint { return n.ep }

// Parent returns the NIC a VLAN sub-interface rides on and its VLAN id,
// or nil and 0.
func (n *NIC) Parent() (*NIC, uint16) { return n.parent, n.vlan }

// IsLoopback reports whether this is a loopback interface.
func (n *NIC) IsLoopback() bool { return n.loopback }

// MAC returns the hardware address.
func (n *NIC) MAC() wire.MAC {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mac
}

// SetMAC changes the hardware address (ifconfig eth0 hw ether …).
func (n *NIC) SetMAC(m wire.MAC) error {
	if m.IsMulticast() || m.IsZero() {
		return fmt.Errorf("stack: %s: %v is not a station address: %w", n.name, m, ErrInvalid)
	}
	n.mu.Lock()
	n.mac = m
	n.mu.Unlock()
	return nil
}

// MTU returns the interface MTU: the largest IP packet it sends.
func (n *NIC) MTU() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mtu
}

// SetMTU changes the MTU, at least 68 (IPv4's minimum) and at most the
// link's (a VLAN's at most its parent's). IPv6 stops working below 1280,
// as in Linux.
func (n *NIC) SetMTU(mtu int) error {
	limit := n.ep.MTU()
	if n.parent != nil {
		limit = n.parent.MTU()
	}
	if mtu < 68 || mtu > limit {
		return fmt.Errorf("stack: %s: MTU %d outside 68..%d: %w", n.name, mtu, limit, ErrInvalid)
	}
	n.mu.Lock()
	n.mtu = mtu
	n.mu.Unlock()
	return nil
}

// Flags returns the interface flags.
func (n *NIC) Flags() Flags {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var f Flags
	if n.up {
		f |= FlagUp | FlagRunning
	}
	if n.loopback {
		f |= FlagLoopback
	} else {
		f |= FlagBroadcast | FlagMulticast
	}
	if n.promisc {
		f |= FlagPromisc
	}
	if n.allmulti {
		f |= FlagAllMulti
	}
	return f
}

// IsUp reports whether the interface is up.
func (n *NIC) IsUp() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.up
}

// SetPromiscuous sets the promiscuous flag: every frame on the link is
// accepted at the link layer (IP still drops what is not for this host).
func (n *NIC) SetPromiscuous(on bool) {
	n.mu.Lock()
	n.promisc = on
	n.mu.Unlock()
}

// SetAllMulticast sets the all-multicast flag: every multicast frame is
// accepted at the link layer.
func (n *NIC) SetAllMulticast(on bool) {
	n.mu.Lock()
	n.allmulti = on
	n.mu.Unlock()
}

// Stats returns the interface counters.
func (n *NIC) Stats() *NICStats { return &n.stats }

// ARP returns the IPv4 neighbour cache (for arp -a, arp -s, arp -d).
func (n *NIC) ARP() *neighbor.Cache[*Packet] { return n.arp }

// NDP returns the IPv6 neighbour cache (ip -6 neigh).
func (n *NIC) NDP() *neighbor.Cache[*Packet] { return n.ndp }

// SetUp brings the interface up or down. Up joins the all-nodes groups,
// installs the connected routes of its addresses, announces its IPv4
// addresses (gratuitous ARP) and starts IPv6 autoconfiguration. Down
// removes the connected routes, flushes the neighbour caches and stops
// autoconfiguration.
func (n *NIC) SetUp(up bool) {
	n.mu.Lock()
	if n.closed || n.up == up {
		n.mu.Unlock()
		return
	}
	n.up = up
	addrs := n.snapshotAddrsLocked()
	var joined []netip.Addr // groups joined while down: report them now
	if up {
		for g := range n.groups {
			joined = append(joined, g)
		}
	}
	n.mu.Unlock()
	if up {
		if !n.loopback {
			for _, g := range joined {
				if g.Is4() {
					n.igmpJoined(g)
				} else {
					n.mldJoined(g)
				}
			}
			n.JoinGroup(allNodes4)
			n.JoinGroup(allNodes6)
			if n.s.forwarding(true) {
				n.JoinGroup(allRouters6)
			}
		}
		for _, a := range addrs {
			n.addConnectedRoute(a)
		}
		n.linkUp4(addrs)
		n.linkUp6(addrs)
		return
	}
	for _, a := range addrs {
		n.s.routes.AddressRemoved(n.index, a.Prefix)
	}
	n.linkDown6()
	n.linkDown4()
	if !n.loopback {
		n.LeaveGroup(allNodes4)
		n.LeaveGroup(allNodes6)
		if n.s.forwarding(true) {
			n.LeaveGroup(allRouters6)
		}
	}
	n.arp.Flush()
	n.ndp.Flush()
}

var (
	allNodes4   = netip.AddrFrom4([4]byte{224, 0, 0, 1})
	allNodes6   = netip.MustParseAddr("ff02::1")
	allRouters6 = netip.MustParseAddr("ff02::2")
	broadcast4  = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// groupMAC returns the Ethernet group address of multicast group g.
func groupMAC(g netip.Addr) wire.MAC {
	if g.Is4() {
		return wire.IPv4MulticastMAC(g)
	}
	return wire.IPv6MulticastMAC(g)
}

// JoinGroup joins multicast group g (reference counted: every Join needs
// a Leave). The first join sends an IGMP or MLD report, except for the
// groups those protocols never report (224.0.0.1, ff02::1).
func (n *NIC) JoinGroup(g netip.Addr) error {
	g = g.Unmap()
	if !g.IsMulticast() {
		return fmt.Errorf("stack: %v is not a multicast address: %w", g, ErrInvalid)
	}
	n.mu.Lock()
	n.groups[g]++
	first := n.groups[g] == 1
	if first {
		n.groupMACs[groupMAC(g)]++
	}
	up := n.up
	n.mu.Unlock()
	if first && up && !n.loopback {
		if g.Is4() {
			n.igmpJoined(g)
		} else {
			n.mldJoined(g)
		}
	}
	return nil
}

// LeaveGroup drops one reference to group g; the last one leaves it
// (IGMP leave, MLD done).
func (n *NIC) LeaveGroup(g netip.Addr) error {
	g = g.Unmap()
	n.mu.Lock()
	c, ok := n.groups[g]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("stack: %s: not a member of %v: %w", n.name, g, ErrAddrNotAvail)
	}
	last := c == 1
	if last {
		delete(n.groups, g)
		m := groupMAC(g)
		if n.groupMACs[m]--; n.groupMACs[m] == 0 {
			delete(n.groupMACs, m)
		}
	} else {
		n.groups[g] = c - 1
	}
	up := n.up
	n.mu.Unlock()
	if last && up && !n.loopback {
		if g.Is4() {
			n.igmpLeft(g)
		} else {
			n.mldLeft(g)
		}
	}
	return nil
}

// Groups returns the joined multicast groups.
func (n *NIC) Groups() []netip.Addr {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]netip.Addr, 0, len(n.groups))
	for g := range n.groups {
		out = append(out, g)
	}
	return out
}

// InGroup reports whether the NIC has joined g.
func (n *NIC) InGroup(g netip.Addr) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.groups[g] > 0
}

// closeState stops the per-protocol timers of the NIC.
func (n *NIC) closeState() {
	n.closeARP()
	n.closeIGMP()
	n.closeNDP()
	n.closeMLD()
}

func (n *NIC) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.closeState()
	n.arp.Close()
	n.ndp.Close()
}
