package route

import (
	"net/netip"
	"slices"
	"syscall"
)

// AddressAdded records that interface nic got the address addr (with its
// prefix length, e.g. 10.200.0.1/24) and installs the connected route for
// its prefix if this is the first address in that prefix on nic:
//
//   - IPv4: the network route (10.200.0.0/24 dev nic proto kernel src
//     10.200.0.1, metric 0); none for a /32 address (Linux fib_add_ifaddr);
//   - IPv6: the prefix route (fd00::/64 dev nic proto kernel metric 256),
//     also for /128 (Linux addrconf_prefix_route).
//
// Further addresses in the same prefix (Linux "secondary" addresses) share
// the route. Adding an address nic already has is not an error. If a route
// identical to the connected one exists already (added by hand), it is
// left as it is.
func (t *Table) AddressAdded(nic int, addr netip.Prefix) error {
	k, a, err := connectedKey(nic, addr)
	if err != nil {
		return err
	}
	t.lock()
	defer t.mu.Unlock()
	list := t.addrs[k]
	if slices.Contains(list, a) {
		return nil
	}
	t.addrs[k] = append(list, a)
	defer t.gen.Add(1)
	if len(list) > 0 {
		return nil
	}
	r, ok := connectedRoute(k, a)
	if !ok {
		return nil
	}
	for _, e := range t.indexFor(a).bucket(r.Dst) {
		if identical(&e.r, &r) {
			return nil
		}
	}
	t.insertLocked(r, 0)
	return nil
}

// AddressRemoved records that nic lost addr. When it was the last address
// in its prefix on nic, the connected route goes; otherwise an IPv4
// connected route whose source was addr takes the next remaining address
// as its source (Linux with promote_secondaries, which most distributions
// enable; without it Linux deletes the secondaries too, and a stack that
// wants that calls AddressRemoved for each of them).
//
// Once no interface has addr any more, every route with addr as its
// preferred source is removed, as Linux fib_sync_down_addr does. It fails
// with EADDRNOTAVAIL if nic did not have addr.
func (t *Table) AddressRemoved(nic int, addr netip.Prefix) error {
	k, a, err := connectedKey(nic, addr)
	if err != nil {
		return err
	}
	t.lock()
	defer t.mu.Unlock()
	list := t.addrs[k]
	i := slices.Index(list, a)
	if i < 0 {
		return errorf("addr", syscall.EADDRNOTAVAIL, "interface #%d has no address %v", nic, addr)
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(t.addrs, k)
	} else {
		t.addrs[k] = list
	}
	t.gen.Add(1)

	var gone []*entry
	if conn, ok := connectedRoute(k, a); ok {
		for _, e := range t.indexFor(a).bucket(conn.Dst) {
			if e.r.Protocol != ProtoKernel || e.r.NIC != nic || e.r.Gateway.IsValid() || e.r.Type != TypeUnicast {
				continue
			}
			if len(list) == 0 {
				gone = append(gone, e)
			} else if e.r.Src == a {
				e.r.Src = list[0]
			}
		}
	}
	if !t.hasAddrLocked(a) {
		t.indexFor(a).all(func(e *entry) {
			if e.r.Src == a && !slices.Contains(gone, e) {
				gone = append(gone, e)
			}
		})
	}
	for _, e := range gone {
		t.removeLocked(e)
	}
	return nil
}

// hasAddrLocked reports whether any interface still has address a.
func (t *Table) hasAddrLocked(a netip.Addr) bool {
	for _, list := range t.addrs {
		if slices.Contains(list, a) {
			return true
		}
	}
	return false
}

func connectedKey(nic int, addr netip.Prefix) (connKey, netip.Addr, error) {
	if nic <= 0 {
		return connKey{}, netip.Addr{}, errorf("addr", syscall.EINVAL, "invalid interface index %d", nic)
	}
	a := addr.Addr().WithZone("")
	if !addr.IsValid() || a.IsUnspecified() {
		return connKey{}, netip.Addr{}, errorf("addr", syscall.EINVAL, "invalid address %v", addr)
	}
	return connKey{nic: nic, p: addr.Masked()}, a, nil
}

// connectedRoute returns the connected route for prefix k.p on k.nic with
// a as its first address, and false where Linux installs none.
func connectedRoute(k connKey, a netip.Addr) (Route, bool) {
	r := Route{Dst: k.p, NIC: k.nic, Type: TypeUnicast, Protocol: ProtoKernel}
	if a.Is4() {
		if k.p.Bits() == 32 {
			return Route{}, false
		}
		r.Src = a
		r.Metric = metricConnected4
	} else {
		r.Metric = metricConnected6
	}
	return r, true
}
