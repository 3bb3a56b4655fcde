package stack

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// AddressState is where an address is in its life (RFC 4862 §2 for IPv6;
// IPv4 addresses are Preferred at once, conflict detection being passive,
// as in Linux).
type AddressState uint8

const (
	// Preferred: usable for any traffic.
	Preferred AddressState = iota
	// Tentative: duplicate address detection runs; the address receives
	// only NDP for itself and is never a source (RFC 4862 §5.4).
	Tentative
	// Deprecated: the preferred lifetime ran out; existing traffic may use
	// it, new connections should not pick it as a source (§5.5.4).
	Deprecated
	// Duplicate: DAD found another node with the address; it is unusable
	// (Linux "dadfailed").
	Duplicate
)

func (s AddressState) String() string {
	switch s {
	case Preferred:
		return "preferred"
	case Tentative:
		return "tentative"
	case Deprecated:
		return "deprecated"
	case Duplicate:
		return "dadfailed"
	}
	return "unknown"
}

// usable reports whether an address in this state may receive traffic and
// be used as a source.
func (s AddressState) usable() bool { return s == Preferred || s == Deprecated }

// AddressOrigin says who configured an address (Linux "proto").
type AddressOrigin uint8

const (
	OriginManual    AddressOrigin = iota // configured by the administrator
	OriginLinkLocal                      // the IPv6 link-local address (RFC 4862 §5.3)
	OriginSLAAC                          // from a router advertisement prefix (RFC 4862 §5.5.3)
	OriginDHCP                           // from a DHCP lease
)

func (o AddressOrigin) String() string {
	return [...]string{"manual", "link", "autoconf", "dhcp"}[min(int(o), 3)]
}

// Address is one address on a NIC.
type Address struct {
	// Prefix is the address with its prefix length (10.0.0.2/24).
	Prefix netip.Prefix
	// Broadcast is the IPv4 broadcast address; AddAddress fills it in for
	// prefixes shorter than /31 when it is left zero.
	Broadcast netip.Addr
	State     AddressState
	Origin    AddressOrigin
	// ValidUntil and PreferredUntil end the address's valid and preferred
	// lifetimes (zero: forever). The stack removes an address when its
	// valid lifetime ends and deprecates it when its preferred one does.
	ValidUntil, PreferredUntil time.Time
	// NoDAD skips duplicate address detection for this address.
	NoDAD bool
	// NoPrefixRoute adds no connected route (Linux noprefixroute).
	NoPrefixRoute bool
}

type address struct {
	Address
	timer *time.Timer // lifetime timer (deprecate or remove)
}

func (n *NIC) snapshotAddrsLocked() []Address {
	out := make([]Address, len(n.addrs))
	for i, a := range n.addrs {
		out[i] = a.Address
	}
	return out
}

// Addresses returns the NIC's addresses, IPv4 first, each family in the
// order they were added.
func (n *NIC) Addresses() []Address {
	n.mu.RLock()
	out := n.snapshotAddrsLocked()
	n.mu.RUnlock()
	slices.SortStableFunc(out, func(a, b Address) int {
		if a.Prefix.Addr().Is4() == b.Prefix.Addr().Is4() {
			return 0
		}
		if a.Prefix.Addr().Is4() {
			return -1
		}
		return 1
	})
	return out
}

// hasAddress reports whether a is one of this NIC's addresses in any
// state (the neighbour caches' IsLocal).
func (n *NIC) hasAddress(a netip.Addr) bool {
	_, ok := n.addressState(a)
	return ok
}

// addressState returns the state of address a on this NIC.
func (n *NIC) addressState(a netip.Addr) (AddressState, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, x := range n.addrs {
		if x.Prefix.Addr() == a {
			return x.State, true
		}
	}
	return 0, false
}

// findAddressLocked returns the entry for a.
func (n *NIC) findAddressLocked(a netip.Addr) *address {
	for _, x := range n.addrs {
		if x.Prefix.Addr() == a {
			return x
		}
	}
	return nil
}

func prefixBroadcast(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// AddAddress configures an address. IPv6 addresses start Tentative and run
// duplicate address detection (RFC 4862 §5.4) unless DAD is off for the
// NIC or the address; IPv4 addresses are announced with gratuitous ARP
// (RFC 5227 §2.3) when the NIC is up. The connected route follows.
func (n *NIC) AddAddress(a Address) error {
	p := a.Prefix
	ad := p.Addr()
	if !p.IsValid() || ad.Zone() != "" || ad.Is4In6() || ad.IsUnspecified() || ad.IsMulticast() ||
		(ad.Is4() && ad == broadcast4) {
		return fmt.Errorf("stack: %s: %v is not a unicast interface address: %w", n.name, p, ErrInvalid)
	}
	if ad.Is4() && a.Broadcast == (netip.Addr{}) {
		a.Broadcast = prefixBroadcast(p)
	}
	n.s.mu.Lock()
	// A link-local address is unique per link only (RFC 4291 §2.5.6): a
	// VLAN and its parent share a MAC, hence an EUI-64 link-local address.
	other, taken := n.s.local[ad]
	if taken && (other == n || !ad.IsLinkLocalUnicast()) {
		n.s.mu.Unlock()
		return fmt.Errorf("stack: %v is already on %s: %w", ad, other.name, ErrNICExists)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.s.mu.Unlock()
		return ErrNoSuchNIC
	}
	dad := ad.Is6() && !n.noDAD && !a.NoDAD && !n.loopback && a.State != Duplicate
	if dad {
		a.State = Tentative
	} else if a.State == Tentative {
		a.State = Preferred
	}
	e := &address{Address: a}
	n.addrs = append(n.addrs, e)
	if !taken {
		n.s.local[ad] = n
	}
	up := n.up
	n.armLifetimeLocked(e)
	n.mu.Unlock()
	n.s.mu.Unlock()

	if ad.Is6() && !n.loopback {
		n.JoinGroup(wire.IPv6SolicitedNode(ad))
	}
	if up {
		n.addConnectedRoute(a)
	}
	if ad.Is4() {
		n.addressAdded4(a, up)
	} else {
		n.addressAdded6(a, up)
	}
	return nil
}

func (n *NIC) addConnectedRoute(a Address) {
	if a.NoPrefixRoute || a.State == Duplicate {
		return
	}
	if a.Prefix.Addr().Is6() && a.Prefix.Bits() == 128 {
		return
	}
	n.s.routes.AddressAdded(n.index, a.Prefix)
}

// RemoveAddress removes address a and its connected route.
func (n *NIC) RemoveAddress(a netip.Addr) error {
	n.s.mu.Lock()
	n.mu.Lock()
	i := slices.IndexFunc(n.addrs, func(x *address) bool { return x.Prefix.Addr() == a })
	if i < 0 {
		n.mu.Unlock()
		n.s.mu.Unlock()
		return fmt.Errorf("stack: %s has no address %v: %w", n.name, a, ErrAddrNotAvail)
	}
	e := n.addrs[i]
	n.addrs = slices.Delete(n.addrs, i, i+1)
	if e.timer != nil {
		e.timer.Stop()
	}
	n.mu.Unlock()
	if n.s.local[a] == n {
		delete(n.s.local, a)
		// Another link may hold the same link-local address.
		for _, o := range n.s.nics {
			if o != n && o.hasAddress(a) {
				n.s.local[a] = o
				break
			}
		}
	}
	n.s.mu.Unlock()
	n.s.routes.AddressRemoved(n.index, e.Prefix)
	if a.Is6() && !n.loopback {
		n.LeaveGroup(wire.IPv6SolicitedNode(a))
	}
	if a.Is4() {
		n.addressRemoved4(e.Address)
	} else {
		n.addressRemoved6(e.Address)
	}
	return nil
}

// setAddressState changes the state of address a (DAD results,
// deprecation) and fixes the connected route: a Duplicate address has
// none.
func (n *NIC) setAddressState(a netip.Addr, st AddressState) (Address, bool) {
	n.mu.Lock()
	e := n.findAddressLocked(a)
	if e == nil {
		n.mu.Unlock()
		return Address{}, false
	}
	old := e.State
	e.State = st
	out := e.Address
	up := n.up
	n.mu.Unlock()
	if up && old != st {
		if st == Duplicate {
			n.s.routes.AddressRemoved(n.index, out.Prefix)
		} else if old == Duplicate {
			n.addConnectedRoute(out)
		}
	}
	return out, true
}

// SetAddressLifetimes changes the lifetimes of address a (zero: forever),
// as a router advertisement refreshing a SLAAC prefix does.
func (n *NIC) SetAddressLifetimes(a netip.Addr, validUntil, preferredUntil time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.findAddressLocked(a)
	if e == nil {
		return fmt.Errorf("stack: %s has no address %v: %w", n.name, a, ErrAddrNotAvail)
	}
	e.ValidUntil, e.PreferredUntil = validUntil, preferredUntil
	if e.State == Deprecated && (preferredUntil.IsZero() || preferredUntil.After(time.Now())) {
		e.State = Preferred
	}
	n.armLifetimeLocked(e)
	return nil
}

// armLifetimeLocked sets e's timer to its next lifetime event.
func (n *NIC) armLifetimeLocked(e *address) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	var at time.Time
	switch {
	case !e.PreferredUntil.IsZero() && e.State != Deprecated && (e.ValidUntil.IsZero() || e.PreferredUntil.Before(e.ValidUntil)):
		at = e.PreferredUntil
	case !e.ValidUntil.IsZero():
		at = e.ValidUntil
	default:
		return
	}
	addr := e.Prefix.Addr()
	e.timer = time.AfterFunc(max(time.Until(at), 0), func() { n.lifetimeEvent(addr) })
}

func (n *NIC) lifetimeEvent(a netip.Addr) {
	now := time.Now()
	n.mu.Lock()
	e := n.findAddressLocked(a)
	if e == nil {
		n.mu.Unlock()
		return
	}
	if !e.ValidUntil.IsZero() && !now.Before(e.ValidUntil) {
		n.mu.Unlock()
		n.RemoveAddress(a) // RFC 4862 §5.5.4: invalid addresses go
		return
	}
	if !e.PreferredUntil.IsZero() && !now.Before(e.PreferredUntil) && e.State == Preferred {
		e.State = Deprecated
	}
	n.armLifetimeLocked(e)
	n.mu.Unlock()
}

// primaryAddress returns the source address this NIC offers for dst: for
// IPv4 the first address whose subnet holds dst, else the first address;
// for IPv6 the RFC 6724 §5 choice among usable addresses (same scope,
// not deprecated, longest matching prefix).
func (n *NIC) primaryAddress(dst netip.Addr) (netip.Addr, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if dst.Is4() {
		var first netip.Addr
		for _, a := range n.addrs {
			ad := a.Prefix.Addr()
			if !ad.Is4() || !a.State.usable() {
				continue
			}
			if a.Prefix.Contains(dst) {
				return ad, true
			}
			if !first.IsValid() {
				first = ad
			}
		}
		return first, first.IsValid()
	}
	var best *address
	for _, a := range n.addrs {
		if !a.Prefix.Addr().Is6() || !a.State.usable() {
			continue
		}
		if best == nil || betterSource6(a, best, dst) {
			best = a
		}
	}
	if best == nil {
		return netip.Addr{}, false
	}
	return best.Prefix.Addr(), true
}

func scope6(a netip.Addr) int {
	switch {
	case a.IsLoopback() || a.IsInterfaceLocalMulticast():
		return 1
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return 2
	case a.IsMulticast():
		return int(a.As16()[1] & 0x0f)
	}
	return 14
}

func commonPrefixLen(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range 16 {
		if d := x[i] ^ y[i]; d != 0 {
			n := i * 8
			for d&0x80 == 0 {
				d <<= 1
				n++
			}
			return n
		}
	}
	return 128
}

// betterSource6 applies RFC 6724 §5 rules 1, 2, 3 and 8 (the ones that
// need no policy table) to pick between candidates a and b for dst.
func betterSource6(a, b *address, dst netip.Addr) bool {
	aa, ba := a.Prefix.Addr(), b.Prefix.Addr()
	if aa == dst || ba == dst { // rule 1
		return aa == dst
	}
	sa, sb, sd := scope6(aa), scope6(ba), scope6(dst)
	if sa != sb { // rule 2
		if sa < sb {
			return sa >= sd
		}
		return sb < sd
	}
	if (a.State == Deprecated) != (b.State == Deprecated) { // rule 3
		return b.State == Deprecated
	}
	return commonPrefixLen(aa, dst) > commonPrefixLen(ba, dst) // rule 8
}

// directedBroadcast reports whether a is the broadcast address of one of
// this NIC's IPv4 subnets.
func (n *NIC) directedBroadcast(a netip.Addr) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, x := range n.addrs {
		if x.Broadcast.IsValid() && x.Broadcast == a {
			return true
		}
	}
	return false
}

// onLink reports whether dst is inside one of this NIC's prefixes (for
// sends bound to the NIC, SO_BINDTODEVICE style, that find no route).
func (n *NIC) onLink(dst netip.Addr) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, a := range n.addrs {
		if a.Prefix.Contains(dst) {
			return true
		}
	}
	return false
}
