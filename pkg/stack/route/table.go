package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Table is a routing table for IPv4 and IPv6. The zero Table is empty and
// ready to use, as is the one New returns.
type Table struct {
	gen  atomic.Uint64 // bumped on every change; read without the lock
	once sync.Once     // makes the zero Table usable

	mu       sync.RWMutex
	v4, v6   *index
	seq      uint64                   // last insertion number handed out
	expiring map[*entry]struct{}      // entries with an Expires time
	addrs    map[connKey][]netip.Addr // interface addresses per (NIC, prefix), oldest first
}

// connKey names one connected route: a masked prefix on an interface.
type connKey struct {
	nic int
	p   netip.Prefix
}

// New returns an empty table.
func New() *Table { return new(Table) }

func (t *Table) init() {
	t.v4 = newIndex(32)
	t.v6 = newIndex(128)
	t.expiring = make(map[*entry]struct{})
	t.addrs = make(map[connKey][]netip.Addr)
}

func (t *Table) lock() {
	t.once.Do(t.init)
	t.mu.Lock()
}

func (t *Table) rlock() {
	t.once.Do(t.init)
	t.mu.RLock()
}

// Generation returns a number that changes whenever the table does. See
// the package documentation for how to revalidate a cached lookup with it.
func (t *Table) Generation() uint64 { return t.gen.Load() }

func (t *Table) indexFor(a netip.Addr) *index {
	if a.Is4() {
		return t.v4
	}
	return t.v6
}

// Error is the error the table's methods return. It unwraps to its Errno,
// so callers test errors.Is(err, syscall.EEXIST) and the like.
type Error struct {
	Op    string // "add", "replace", "del", "addr"
	Msg   string // what was wrong, naming the route or address
	Errno syscall.Errno
}

func (e *Error) Error() string {
	return "route " + e.Op + ": " + e.Msg + ": " + e.Errno.Error()
}

// Unwrap returns the Errno.
func (e *Error) Unwrap() error { return e.Errno }

func errorf(op string, errno syscall.Errno, format string, args ...any) error {
	return &Error{Op: op, Msg: fmt.Sprintf(format, args...), Errno: errno}
}

// metricIPv6Default is the metric Linux gives IPv6 routes added with
// metric 0 (IP6_RT_PRIO_USER).
const metricIPv6Default = 1024

// Metrics Linux gives connected routes (fib_add_ifaddr, addrconf_prefix_route).
const (
	metricConnected4 = 0
	metricConnected6 = 256
)

// normalize checks r and brings it into its stored form: zones dropped,
// unspecified gateway and source made invalid, zero type and protocol
// replaced by their defaults, the IPv6 default metric applied, and a
// missing NIC taken from the on-link route to the gateway.
func (t *Table) normalize(op string, r *Route) error {
	if !r.Dst.IsValid() {
		return errorf(op, syscall.EINVAL, "invalid destination %v", r.Dst)
	}
	if r.Dst != r.Dst.Masked() {
		return errorf(op, syscall.EINVAL, "destination %v has host bits set", r.Dst)
	}
	v4 := r.Dst.Addr().Is4()
	r.Gateway = r.Gateway.WithZone("")
	if r.Gateway.IsUnspecified() {
		r.Gateway = netip.Addr{}
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != v4 {
		return errorf(op, syscall.EINVAL, "gateway %v does not match destination %v", r.Gateway, r.Dst)
	}
	r.Src = r.Src.WithZone("")
	if r.Src.IsUnspecified() {
		r.Src = netip.Addr{}
	}
	if r.Src.IsValid() && r.Src.Is4() != v4 {
		return errorf(op, syscall.EINVAL, "source %v does not match destination %v", r.Src, r.Dst)
	}
	if r.NIC < 0 {
		return errorf(op, syscall.EINVAL, "invalid interface index %d", r.NIC)
	}
	if r.MTU < 0 {
		return errorf(op, syscall.EINVAL, "invalid MTU %d", r.MTU)
	}
	switch {
	case r.Type == TypeUnspec:
		r.Type = TypeUnicast
	case r.Type > TypeProhibit:
		return errorf(op, syscall.EINVAL, "invalid type %v", r.Type)
	}
	switch {
	case r.Protocol == ProtoUnspec:
		r.Protocol = ProtoBoot
	case r.Protocol > ProtoRedirect:
		return errorf(op, syscall.EINVAL, "invalid protocol %v", r.Protocol)
	}
	if !v4 && r.Metric == 0 {
		r.Metric = metricIPv6Default
	}
	r.Use = 0
	if r.Type.Reject() {
		if r.Gateway.IsValid() {
			return errorf(op, syscall.EINVAL, "%v route with a gateway", r.Type)
		}
		return nil
	}
	if r.OnLink && r.NIC == 0 {
		return errorf(op, syscall.EINVAL, "onlink route without an interface")
	}
	if r.Gateway.IsValid() && !r.OnLink {
		if err := t.checkGateway(op, r); err != nil {
			return err
		}
	}
	if r.NIC == 0 {
		return errorf(op, syscall.ENODEV, "no interface")
	}
	return nil
}

// checkGateway requires r.Gateway to be on-link, as Linux does
// (fib_check_nh_v4_gw, ip6_validate_gw): covered by a unicast route without
// a gateway, through r.NIC if that is set, which also supplies a missing
// NIC. An IPv6 link-local gateway is on-link by definition (RFC 4291 §2.5.6)
// but only names a host together with an interface.
func (t *Table) checkGateway(op string, r *Route) error {
	gw := r.Gateway
	if gw.Is6() && gw.IsLinkLocalUnicast() {
		if r.NIC == 0 {
			return errorf(op, syscall.ENODEV, "link-local gateway %v without an interface", gw)
		}
		return nil
	}
	now := time.Now()
	var found *entry
	x := t.indexFor(gw)
	k := keyOf(gw)
	for n := x.width; n >= 0 && found == nil; n-- {
		for _, e := range x.byLen[n][k.mask(n, x.width)] {
			if e.r.Type == TypeUnicast && !e.r.Gateway.IsValid() &&
				(r.NIC == 0 || e.r.NIC == r.NIC) && !e.r.Expired(now) {
				found = e
				break
			}
		}
	}
	if found == nil {
		errno := syscall.ENETUNREACH
		if gw.Is6() {
			errno = syscall.EHOSTUNREACH
		}
		return errorf(op, errno, "gateway %v is not on-link", gw)
	}
	if r.NIC == 0 {
		r.NIC = found.r.NIC
	}
	return nil
}

// identical reports whether a and b are the same route for Add: Linux
// refuses a second route with the same destination, metric, type and next
// hop (fib_table_insert, fib6_add_rt2iter).
func identical(a, b *Route) bool {
	return a.Dst == b.Dst && a.Metric == b.Metric && a.Type == b.Type &&
		a.Gateway == b.Gateway && a.NIC == b.NIC
}

func (t *Table) insertLocked(r Route, seq uint64) *entry {
	if seq == 0 {
		t.seq++
		seq = t.seq
	}
	e := &entry{r: r, seq: seq}
	t.indexFor(r.Dst.Addr()).insert(e)
	if !r.Expires.IsZero() {
		t.expiring[e] = struct{}{}
	}
	return e
}

func (t *Table) removeLocked(e *entry) {
	t.indexFor(e.r.Dst.Addr()).remove(e)
	delete(t.expiring, e)
}

// expireLocked removes the routes expired at now and reports how many.
func (t *Table) expireLocked(now time.Time) int {
	n := 0
	for e := range t.expiring {
		if e.r.Expired(now) {
			t.removeLocked(e)
			n++
		}
	}
	if n > 0 {
		t.gen.Add(1)
	}
	return n
}

// Add inserts r. It fails with an error wrapping EEXIST if an identical
// route (destination, metric, type, gateway, interface) exists, EINVAL for
// a malformed route, ENODEV for a unicast route without an interface, and
// ENETUNREACH (IPv4) or EHOSTUNREACH (IPv6) for a gateway that is not
// on-link. Routes of equal destination and metric that differ in gateway or
// interface coexist; Lookup uses the one added first.
func (t *Table) Add(r Route) error {
	t.lock()
	defer t.mu.Unlock()
	t.expireLocked(time.Now())
	if err := t.normalize("add", &r); err != nil {
		return err
	}
	for _, e := range t.indexFor(r.Dst.Addr()).bucket(r.Dst) {
		if identical(&e.r, &r) {
			return errorf("add", syscall.EEXIST, "%v", &e.r)
		}
	}
	t.insertLocked(r, 0)
	t.gen.Add(1)
	return nil
}

// Replace inserts r in place of the first route with the same destination
// and metric (ip route replace, NLM_F_REPLACE), or adds it if there is
// none. Any other route identical to r goes too. Errors are Add's, except
// that an existing route is no error.
func (t *Table) Replace(r Route) error {
	t.lock()
	defer t.mu.Unlock()
	t.expireLocked(time.Now())
	if err := t.normalize("replace", &r); err != nil {
		return err
	}
	var seq uint64
	for _, e := range slices.Clone(t.indexFor(r.Dst.Addr()).bucket(r.Dst)) {
		if seq == 0 && e.r.Metric == r.Metric {
			seq = e.seq // the new route takes the old one's place
			t.removeLocked(e)
		} else if identical(&e.r, &r) {
			t.removeLocked(e)
		}
	}
	t.insertLocked(r, seq)
	t.gen.Add(1)
	return nil
}

// Delete removes the first route (lowest metric, then oldest) that m
// matches, like `route del`. It fails with an error wrapping ESRCH if none
// does, and EINVAL if m.Dst is invalid or has host bits set.
func (t *Table) Delete(m Match) error {
	if !m.Dst.IsValid() || m.Dst != m.Dst.Masked() {
		return errorf("del", syscall.EINVAL, "invalid destination %v", m.Dst)
	}
	t.lock()
	defer t.mu.Unlock()
	t.expireLocked(time.Now())
	for _, e := range t.indexFor(m.Dst.Addr()).bucket(m.Dst) {
		if m.matches(&e.r) {
			t.removeLocked(e)
			t.gen.Add(1)
			return nil
		}
	}
	return errorf("del", syscall.ESRCH, "no route %v", m.Dst)
}

// Lookup returns the route for dst: the longest prefix that contains dst,
// then the lowest metric, then the oldest route, ignoring expired routes.
// The route may be a reject route (Route.Type); turning it into
// EHOSTUNREACH, EACCES or a silent drop is the caller's job. dst's zone is
// ignored. Lookup does not allocate.
func (t *Table) Lookup(dst netip.Addr) (Route, bool) {
	return t.LookupNIC(dst, 0)
}

// LookupNIC is Lookup restricted to routes leaving through interface nic
// (SO_BINDTODEVICE, ping -I); nic 0 means any. Reject routes still apply,
// as in Linux. When it finds nothing, Linux treats the destination as
// on-link through nic (ip_route_output_key_hash_rcu); that choice is the
// caller's.
func (t *Table) LookupNIC(dst netip.Addr, nic int) (Route, bool) {
	if !dst.IsValid() {
		return Route{}, false
	}
	t.rlock()
	e := t.indexFor(dst).lookup(dst, nic)
	var r Route
	if e != nil {
		r = e.r
		r.Use = e.use.Add(1)
	}
	t.mu.RUnlock()
	return r, e != nil
}

// Routes returns the routes that have not expired, IPv4 first, in the order
// Linux lists them: IPv4 by destination address, longer prefixes of one
// address first (a walk of the fib trie, /proc/net/route); IPv6 with every
// prefix after the prefixes it contains (a post-order walk of the fib6
// tree, /proc/net/ipv6_route); routes to the same prefix by metric, then
// age.
func (t *Table) Routes() []Route {
	now := time.Now()
	t.rlock()
	es := make([]*entry, 0, t.v4.routes+t.v6.routes)
	collect := func(e *entry) {
		if !e.r.Expired(now) {
			es = append(es, e)
		}
	}
	t.v4.all(collect)
	n4 := len(es)
	t.v6.all(collect)
	rs := make([]Route, len(es))
	order := func(width int) func(a, b *entry) int {
		return func(a, b *entry) int {
			ka, kb := keyOf(a.r.Dst.Addr()), keyOf(b.r.Dst.Addr())
			if width == 128 {
				ka, kb = lastKey(ka, a.r.Dst.Bits()), lastKey(kb, b.r.Dst.Bits())
			}
			if c := cmp.Compare(ka.hi, kb.hi); c != 0 {
				return c
			}
			if c := cmp.Compare(ka.lo, kb.lo); c != 0 {
				return c
			}
			if c := cmp.Compare(b.r.Dst.Bits(), a.r.Dst.Bits()); c != 0 {
				return c
			}
			if c := cmp.Compare(a.r.Metric, b.r.Metric); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		}
	}
	slices.SortFunc(es[:n4], order(32))
	slices.SortFunc(es[n4:], order(128))
	for i, e := range es {
		rs[i] = e.r
		rs[i].Use = e.use.Load()
	}
	t.mu.RUnlock()
	return rs
}

// lastKey returns the last address of the IPv6 prefix k/bits.
func lastKey(k key, bits int) key {
	m := key{hi: ^uint64(0), lo: ^uint64(0)}.mask(bits, 128)
	return key{hi: k.hi | ^m.hi, lo: k.lo | ^m.lo}
}

// RemoveNIC removes every route through interface nic and forgets its
// addresses, for an interface that went away; routes elsewhere whose
// preferred source was one of those addresses go too, unless another
// interface has it (as AddressRemoved). It returns how many routes it
// removed.
func (t *Table) RemoveNIC(nic int) int {
	if nic <= 0 {
		return 0
	}
	t.lock()
	defer t.mu.Unlock()
	var lost []netip.Addr
	forgot := false
	for k, list := range t.addrs {
		if k.nic == nic {
			lost = append(lost, list...)
			delete(t.addrs, k)
			forgot = true
		}
	}
	lost = slices.DeleteFunc(lost, t.hasAddrLocked)
	var gone []*entry
	for _, x := range []*index{t.v4, t.v6} {
		x.all(func(e *entry) {
			if e.r.NIC == nic || (e.r.Src.IsValid() && slices.Contains(lost, e.r.Src)) {
				gone = append(gone, e)
			}
		})
	}
	for _, e := range gone {
		t.removeLocked(e)
	}
	if len(gone) > 0 || forgot {
		t.gen.Add(1)
	}
	return len(gone)
}

// NextExpiry returns the earliest expiry time among the routes, and false
// if no route expires. The stack arms a timer for it and calls Expire.
func (t *Table) NextExpiry() (time.Time, bool) {
	t.rlock()
	defer t.mu.RUnlock()
	var next time.Time
	for e := range t.expiring {
		if next.IsZero() || e.r.Expires.Before(next) {
			next = e.r.Expires
		}
	}
	return next, !next.IsZero()
}

// Expire removes the routes that have expired at now and returns how many.
// Lookup and Routes already ignore them; this frees them.
func (t *Table) Expire(now time.Time) int {
	t.lock()
	defer t.mu.Unlock()
	return t.expireLocked(now)
}
