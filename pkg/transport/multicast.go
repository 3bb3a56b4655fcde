package transport

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
)

// Membership is one multicast group a socket joined (IP_ADD_MEMBERSHIP,
// IPV6_JOIN_GROUP) on one interface.
type Membership struct {
	Group netip.Addr
	// IfIndex names the interface; 0 lets the stack choose (the route
	// to the group, or the interface of IfAddr).
	IfIndex int
	// IfAddr is ip_mreq's imr_interface: an address of the interface.
	IfAddr netip.Addr
}

// Memberships are a socket's multicast groups; the NICs' joins are
// reference counted, so each socket joins and leaves its own share. The
// endpoint serialises calls under its lock.
type Memberships struct {
	s    *stack.Stack
	list []joined
}

type joined struct {
	group netip.Addr
	nic   int
}

// NewMemberships returns an empty set for sockets on s.
func NewMemberships(s *stack.Stack) Memberships { return Memberships{s: s} }

// resolve picks the NIC a membership applies to (Linux ip_mc_find_dev:
// the interface index, else the interface holding the address, else the
// route to the group).
func (m *Memberships) resolve(ms Membership) (*stack.NIC, error) {
	if ms.IfIndex != 0 {
		n, ok := m.s.NIC(ms.IfIndex)
		if !ok {
			return nil, syscall.ENODEV
		}
		return n, nil
	}
	if a := ms.IfAddr.Unmap(); a.IsValid() && !a.IsUnspecified() {
		for _, n := range m.s.NICs() {
			for _, ad := range n.Addresses() {
				if ad.Prefix.Addr() == a {
					return n, nil
				}
			}
		}
		return nil, syscall.ENODEV
	}
	r, err := m.s.FindRoute(0, netip.Addr{}, ms.Group)
	if err != nil || r.NIC == nil {
		return nil, syscall.ENODEV
	}
	return r.NIC, nil
}

// Join joins the group: EINVAL if it is not multicast, EADDRINUSE if
// this socket already has it on that interface, ENOBUFS past Linux's
// limit of 20 groups a socket (igmp_max_memberships).
func (m *Memberships) Join(ms Membership) error {
	g := ms.Group.Unmap().WithZone("")
	if !g.IsMulticast() {
		return fmt.Errorf("transport: %v is not a multicast group: %w", ms.Group, syscall.EINVAL)
	}
	n, err := m.resolve(ms)
	if err != nil {
		return err
	}
	j := joined{g, n.Index()}
	if slices.Contains(m.list, j) {
		return syscall.EADDRINUSE
	}
	if len(m.list) >= 20 {
		return syscall.ENOBUFS
	}
	if err := n.JoinGroup(g); err != nil {
		return err
	}
	m.list = append(m.list, j)
	return nil
}

// Leave leaves the group (EADDRNOTAVAIL if this socket had not joined it).
func (m *Memberships) Leave(ms Membership) error {
	g := ms.Group.Unmap().WithZone("")
	n, err := m.resolve(ms)
	if err != nil {
		return syscall.EADDRNOTAVAIL
	}
	i := slices.Index(m.list, joined{g, n.Index()})
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	m.list = slices.Delete(m.list, i, i+1)
	return n.LeaveGroup(g)
}

// Has reports whether the socket joined g on the NIC with index nic (any
// NIC when nic is 0).
func (m *Memberships) Has(g netip.Addr, nic int) bool {
	for _, j := range m.list {
		if j.group == g && (nic == 0 || j.nic == nic) {
			return true
		}
	}
	return false
}

// Len is the number of groups joined.
func (m *Memberships) Len() int { return len(m.list) }

// LeaveAll leaves every group (on close).
func (m *Memberships) LeaveAll() {
	for _, j := range m.list {
		if n, ok := m.s.NIC(j.nic); ok {
			n.LeaveGroup(j.group)
		}
	}
	m.list = nil
}
