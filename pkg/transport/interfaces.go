package transport

import (
	"net/netip"
	"strconv"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
)

// StackInterfaces adapts a stack's NICs to Interfaces (SO_BINDTODEVICE,
// the multicast interface options) and to the socket layer's zone
// mapping (socket.Interfaces, which adds NameByIndex).
func StackInterfaces(s *stack.Stack) StackNICs { return StackNICs{s} }

// StackNICs looks a stack's interfaces up by name and by index.
type StackNICs struct{ s *stack.Stack }

// IndexByName returns the index of the NIC called name.
func (i StackNICs) IndexByName(name string) (int, bool) {
	n, ok := i.s.NICByName(name)
	if !ok {
		return 0, false
	}
	return n.Index(), true
}

// HasIndex reports whether a NIC has the index.
func (i StackNICs) HasIndex(index int) bool {
	_, ok := i.s.NIC(index)
	return ok
}

// NameByIndex returns the name of the NIC with the index.
func (i StackNICs) NameByIndex(index int) (string, bool) {
	n, ok := i.s.NIC(index)
	if !ok {
		return "", false
	}
	return n.Name(), true
}

// ZoneIndex resolves an IPv6 zone: an interface name, or an index in
// decimal that names an existing NIC.
func (i StackNICs) ZoneIndex(zone string) (int, bool) {
	if n, ok := i.IndexByName(zone); ok {
		return n, true
	}
	if n, err := strconv.Atoi(zone); err == nil && i.HasIndex(n) {
		return n, true
	}
	return 0, false
}

// SplitZone takes an IPv6 address's zone off as the interface it names
// (ZoneIndex): the address without the zone and the NIC index, 0 for
// none, or ENODEV for a zone that names no NIC.
func (i StackNICs) SplitZone(a netip.Addr) (netip.Addr, int, error) {
	z := a.Zone()
	if z == "" {
		return a, 0, nil
	}
	n, ok := i.ZoneIndex(z)
	if !ok {
		return a, 0, syscall.ENODEV
	}
	return a.WithZone(""), n, nil
}
