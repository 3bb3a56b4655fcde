package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/loopback"
	"github.com/stackbox/stackbox/pkg/stack/fragment"
	"github.com/stackbox/stackbox/pkg/stack/route"
)

// Options configure a Stack. The zero value is a host: no forwarding, no
// source routing, Linux's defaults everywhere else.
type Options struct {
	// IPv4Forwarding and IPv6Forwarding route packets between NICs
	// (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding). A forwarding
	// IPv6 stack is a router: it ignores router advertisements for its own
	// configuration and answers NS with the R flag.
	IPv4Forwarding, IPv6Forwarding bool
	// AcceptSourceRoute honours IPv4 loose and strict source route options
	// (net.ipv4.conf.all.accept_source_route, off by default: such packets
	// are dropped).
	AcceptSourceRoute bool
	// DefaultTTL for IPv4 and the default hop limit for IPv6. Default 64.
	DefaultTTL uint8
	// SendRedirects: a forwarding stack sends ICMP redirects when a packet
	// leaves by the NIC it came in on (net.ipv4.conf.all.send_redirects,
	// on by default in Linux). Set NoRedirects to turn them off.
	NoRedirects bool
	// ICMP error rate limits, as Linux's icmp_ratelimit (the per-destination
	// token interval, default 1 s with a burst of 6),
	// icmp_msgs_per_sec (default 1000) and icmp_msgs_burst (default 50).
	// A negative ICMPRateLimit disables the per-destination limit.
	ICMPRateLimit  time.Duration
	ICMPMsgsPerSec int
	ICMPMsgsBurst  int
	// IPv4Reassembly and IPv6Reassembly configure reassembly; zero values
	// take fragment.IPv4Config() and fragment.IPv6Config().
	IPv4Reassembly, IPv6Reassembly fragment.Config
	// NoLoopback: do not create "lo" (tests that want a bare stack).
	NoLoopback bool
	// Seed seeds the stack's randomness (IP IDs, neighbour timers, SLAAC
	// delays); 0 picks a random seed.
	Seed uint64
}

func (o Options) withDefaults() Options {
	if o.DefaultTTL == 0 {
		o.DefaultTTL = 64
	}
	if o.ICMPRateLimit == 0 {
		o.ICMPRateLimit = time.Second
	}
	if o.ICMPMsgsPerSec <= 0 {
		o.ICMPMsgsPerSec = 1000
	}
	if o.ICMPMsgsBurst <= 0 {
		o.ICMPMsgsBurst = 50
	}
	if o.IPv4Reassembly.Timeout == 0 {
		o.IPv4Reassembly = fragment.IPv4Config()
	}
	if o.IPv6Reassembly.Timeout == 0 {
		o.IPv6Reassembly = fragment.IPv6Config()
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	return o
}

// Errors. Those that a socket would see wrap a syscall.Errno.
var (
	ErrNoSuchNIC    = fmt.Errorf("stack: no such device: %w", syscall.ENODEV)
	ErrNICExists    = fmt.Errorf("stack: device exists: %w", syscall.EEXIST)
	ErrNetUnreach   = fmt.Errorf("stack: network is unreachable: %w", syscall.ENETUNREACH)
	ErrHostUnreach  = fmt.Errorf("stack: no route to host: %w", syscall.EHOSTUNREACH)
	ErrAddrNotAvail = fmt.Errorf("stack: cannot assign requested address: %w", syscall.EADDRNOTAVAIL)
	ErrMsgSize      = fmt.Errorf("stack: message too long: %w", syscall.EMSGSIZE)
	ErrNICDown      = fmt.Errorf("stack: network is down: %w", syscall.ENETDOWN)
	ErrInvalid      = fmt.Errorf("stack: invalid argument: %w", syscall.EINVAL)
	ErrClosed       = errors.New("stack: closed")
)

// Stack is one host's (or router's) network layer.
type Stack struct {
	opts Options

	mu        sync.RWMutex
	closed    bool
	nics      map[int]*NIC
	byName    map[string]*NIC
	nextIndex int
	nextEth   int
	local     map[netip.Addr]*NIC // our unicast addresses
	lo        *NIC
	rngMu     sync.Mutex
	rng       *rand.Rand

	policy     *route.Policy
	routes     *route.Table // the policy's main table
	routeTimer *time.Timer  // fires at routes.NextExpiry

	reasm4, reasm6 *fragment.Reassembler
	pmtu           pmtuCache
	icmpLimit      rateLimiter
	loop           loopQueue // multicast/broadcast loopback (loop.go)

	transports [256]atomic.Pointer[transportSlot]
	rawMu      sync.RWMutex
	raw        []*rawEntry

	ipID atomic.Uint32

	stats Stats
}

// New returns a stack with only the loopback interface "lo" (127.0.0.1/8,
// ::1/128), unless opts.NoLoopback.
func New(opts Options) *Stack {
	opts = opts.withDefaults()
	s := &Stack{
		opts:   opts,
		nics:   make(map[int]*NIC),
		byName: make(map[string]*NIC),
		local:  make(map[netip.Addr]*NIC),
		policy: route.NewPolicy(),
		rng:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
	s.routes = s.policy.Main()
	s.ipID.Store(uint32(s.rng.Uint64()))
	s.icmpLimit.init(opts)
	s.pmtu.init()
	c4 := opts.IPv4Reassembly
	c4.OnTimeout = s.reassemblyTimeout4
	c4.OnFail = func(_ fragment.Key, timedOut bool) { s.reassemblyFailed(false, timedOut) }
	s.reasm4 = fragment.New(c4)
	c6 := opts.IPv6Reassembly
	c6.OnTimeout = s.reassemblyTimeout6
	c6.OnFail = func(_ fragment.Key, timedOut bool) { s.reassemblyFailed(true, timedOut) }
	s.reasm6 = fragment.New(c6)
	if !opts.NoLoopback {
		ep := loopback.New(loopback.Config{})
		n, err := s.addNIC(ep, NICOptions{Name: "lo", Loopback: true})
		if err == nil {
			s.lo = n
			n.SetUp(true)
			n.AddAddress(Address{Prefix: netip.MustParsePrefix("127.0.0.1/8")})
			n.AddAddress(Address{Prefix: netip.MustParsePrefix("::1/128")})
		}
	}
	return s
}

// Options returns the stack's options (after defaults).
func (s *Stack) Options() Options { return s.opts }

// SetForwarding turns IPv4 or IPv6 forwarding on or off at run time.
func (s *Stack) SetForwarding(ipv6, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ipv6 {
		s.opts.IPv6Forwarding = on
	} else {
		s.opts.IPv4Forwarding = on
	}
}

func (s *Stack) forwarding(ipv6 bool) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ipv6 {
		return s.opts.IPv6Forwarding
	}
	return s.opts.IPv4Forwarding
}

// Routes returns the main routing table. Connected routes follow the
// addresses; others are the caller's to add.
func (s *Stack) Routes() *route.Table { return s.routes }

// Policy returns the policy routing rules and tables (`ip rule`, `ip route
// … table N`). Every lookup of the stack goes through it; with the
// default rules only the main table (Routes) is consulted. Connected,
// router-advertised and redirect routes live in the main table, and
// route expiry runs on the main table only.
func (s *Stack) Policy() *route.Policy { return s.policy }

// lookupRoute routes a flow through the policy rules.
func (s *Stack) lookupRoute(f route.Flow) (route.Route, bool) {
	r, _, ok := s.policy.Lookup(f)
	return r, ok
}

// randUint64 returns a random number from the stack's seeded source.
func (s *Stack) randUint64() uint64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Uint64()
}

// randDuration returns a random duration in [0, d).
func (s *Stack) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(s.randUint64() % uint64(d))
}

// NICOptions configure AddNIC.
type NICOptions struct {
	// Name defaults to the next free "ethN".
	Name string
	// MTU defaults to the endpoint's MTU; it may not exceed it.
	MTU int
	// Loopback marks a loopback interface (no ARP/NDP, no link header
	// addresses).
	Loopback bool
	// NoAutoconf disables the IPv6 link-local address and SLAAC
	// (net.ipv6.conf.IFACE.autoconf and addr_gen_mode none).
	NoAutoconf bool
	// NoDAD disables duplicate address detection (accept_dad=0).
	NoDAD bool
}

// AddNIC makes an interface of ep, attaches to it and returns it, down.
// Bring it up with SetUp(true).
func (s *Stack) AddNIC(ep link.Endpoint, o NICOptions) (*NIC, error) {
	return s.addNIC(ep, o)
}

func (s *Stack) addNIC(ep link.Endpoint, o NICOptions) (*NIC, error) {
	if o.MTU == 0 {
		o.MTU = ep.MTU()
	}
	if o.MTU < 68 || o.MTU > ep.MTU() {
		return nil, fmt.Errorf("stack: MTU %d outside 68..%d: %w", o.MTU, ep.MTU(), ErrInvalid)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if o.Name == "" {
		for {
			o.Name = fmt.Sprintf("eth%d", s.nextEth)
			s.nextEth++
			if s.byName[o.Name] == nil {
				break
			}
		}
	}
	if s.byName[o.Name] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("stack: %s: %w", o.Name, ErrNICExists)
	}
	s.nextIndex++
	n := newNIC(s, s.nextIndex, o, ep, nil, 0)
	s.nics[n.index] = n
	s.byName[n.name] = n
	s.mu.Unlock()
	ep.Attach(n)
	return n, nil
}

// AddVLAN makes the 802.1Q sub-interface parent.VID (named "eth0.10" unless
// name is given) that sends and receives frames tagged with vid on
// parent's link. It starts down.
func (s *Stack) AddVLAN(parent *NIC, vid uint16, name string) (*NIC, error) {
	if vid == 0 || vid >= 4095 {
		return nil, fmt.Errorf("stack: VLAN id %d outside 1..4094: %w", vid, ErrInvalid)
	}
	if parent.loopback || parent.parent != nil {
		return nil, fmt.Errorf("stack: %s cannot carry VLANs: %w", parent.name, ErrInvalid)
	}
	if name == "" {
		name = fmt.Sprintf("%s.%d", parent.name, vid)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if s.byName[name] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("stack: %s: %w", name, ErrNICExists)
	}
	parent.mu.Lock()
	if parent.vlans[vid] != nil {
		parent.mu.Unlock()
		s.mu.Unlock()
		return nil, fmt.Errorf("stack: %s already has VLAN %d: %w", parent.name, vid, ErrNICExists)
	}
	s.nextIndex++
	n := newNIC(s, s.nextIndex, NICOptions{Name: name, MTU: parent.mtu}, parent.ep, parent, vid)
	parent.vlans[vid] = n
	parent.mu.Unlock()
	s.nics[n.index] = n
	s.byName[n.name] = n
	s.mu.Unlock()
	return n, nil
}

// RemoveNIC takes an interface away: its addresses, routes, neighbours
// and VLAN children go with it. The endpoint of a physical NIC is closed.
func (s *Stack) RemoveNIC(n *NIC) error {
	n.mu.RLock()
	children := make([]*NIC, 0, len(n.vlans))
	for _, c := range n.vlans {
		children = append(children, c)
	}
	n.mu.RUnlock()
	for _, c := range children {
		s.RemoveNIC(c)
	}
	n.SetUp(false)
	for _, a := range n.Addresses() {
		n.RemoveAddress(a.Prefix.Addr())
	}
	s.mu.Lock()
	if s.nics[n.index] != n {
		s.mu.Unlock()
		return ErrNoSuchNIC
	}
	delete(s.nics, n.index)
	delete(s.byName, n.name)
	s.mu.Unlock()
	if n.parent != nil {
		n.parent.mu.Lock()
		delete(n.parent.vlans, n.vlan)
		n.parent.mu.Unlock()
	}
	s.routes.RemoveNIC(n.index)
	n.close()
	if n.parent == nil {
		n.ep.Attach(nil)
		return n.ep.Close()
	}
	return nil
}

// NIC returns the interface with the given index.
func (s *Stack) NIC(index int) (*NIC, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.nics[index]
	return n, ok
}

// NICByName returns the interface with the given name.
func (s *Stack) NICByName(name string) (*NIC, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.byName[name]
	return n, ok
}

// Loopback returns "lo", or nil if the stack has none.
func (s *Stack) Loopback() *NIC { return s.lo }

// NICs returns the interfaces in index order.
func (s *Stack) NICs() []*NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*NIC, 0, len(s.nics))
	for i := 1; i <= s.nextIndex; i++ {
		if n, ok := s.nics[i]; ok {
			out = append(out, n)
		}
	}
	return out
}

// localNIC returns the NIC that holds unicast address a, if any.
func (s *Stack) localNIC(a netip.Addr) (*NIC, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.local[a]
	return n, ok
}

// IsLocal reports whether a is one of the stack's unicast addresses
// (tentative IPv6 addresses excluded).
func (s *Stack) IsLocal(a netip.Addr) bool {
	n, ok := s.localNIC(a)
	if !ok {
		return false
	}
	st, ok := n.addressState(a)
	return ok && st.usable()
}

// Close brings every interface down and closes their endpoints and the
// stack's timers.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	nics := make([]*NIC, 0, len(s.nics))
	for i := s.nextIndex; i >= 1; i-- {
		if n, ok := s.nics[i]; ok {
			nics = append(nics, n)
		}
	}
	if s.routeTimer != nil {
		s.routeTimer.Stop()
	}
	s.mu.Unlock()
	var first error
	for _, n := range nics {
		n.SetUp(false)
		n.close()
		if n.parent == nil {
			n.ep.Attach(nil)
			if err := n.ep.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	s.reasm4.Close()
	s.reasm6.Close()
	return first
}

// armRouteExpiry (re)arms the timer that removes expired routes (RA
// default routes and prefixes, redirects). Call after adding a route with
// Expires set.
func (s *Stack) armRouteExpiry() {
	at, ok := s.routes.NextExpiry()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !ok {
		return
	}
	d := max(time.Until(at), 0)
	if s.routeTimer == nil {
		s.routeTimer = time.AfterFunc(d, s.expireRoutes)
	} else {
		s.routeTimer.Reset(d)
	}
}

func (s *Stack) expireRoutes() {
	s.routes.Expire(time.Now())
	s.armRouteExpiry()
}

// reassemblyFailed counts a datagram that failed reassembly without
// reaching reassemblyTimeout4/6 (which count the others): one that timed
// out before its first fragment came, or one evicted under the memory
// limit. Linux counts both (ip_expire: ReasmFails and ReasmTimeout for
// every expired queue; ip_defrag: ReasmFails for a fragment it cannot
// queue).
func (s *Stack) reassemblyFailed(ipv6, timedOut bool) {
	if ipv6 {
		s.stats.IP6.ReasmFails.Add(1)
		if timedOut {
			s.stats.IP6.ReasmTimeout.Add(1)
		}
		return
	}
	s.stats.IP.ReasmFails.Add(1)
	if timedOut {
		s.stats.IP.ReasmTimeout.Add(1)
	}
}
