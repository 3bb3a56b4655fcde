// Package ports owns the local port numbers of one transport protocol
// (UDP now, TCP later): which sockets hold which port on which address,
// the bind conflict rules, and the choice of ephemeral ports.
//
// Conflicts follow Linux (inet_bind_conflict, udp_lib_lport_inuse): two
// bindings of a port conflict when their addresses overlap and neither
// sharing option lets them share. Addresses overlap when they are equal,
// or one is the wildcard of the other's family, or one is a dual-stack
// IPv6 wildcard (:: without IPV6_V6ONLY), which also covers every IPv4
// address. Bindings to different devices (SO_BINDTODEVICE) never overlap.
// Sharing is allowed when both set SO_REUSEADDR (the datagram meaning:
// both may bind), or both set SO_REUSEPORT and belong to the same user
// (Linux's guard against port hijacking across users).
//
// Ephemeral ports are chosen by RFC 6056 §3.3.4 (Algorithm 4, "Double-Hash
// Port Selection"): a keyed hash of the 3-tuple (local address, remote
// address and port) gives an offset into the range, and a second keyed
// hash picks one of a table of counters that advances the search, so
// successive connections to one peer get different ports and nobody can
// predict another peer's ports. The keys are random per Manager. The range
// is Linux's net.ipv4.ip_local_port_range default, 32768–60999.
//
// Lock order: Manager.mu is a leaf. Reserve and Release take it; the
// check a PickEphemeral caller passes runs without it, so a protocol may
// consult its own tables (under its own locks) from there.
package ports

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"syscall"
)

// The default ephemeral range (Linux ip_local_port_range).
const (
	DefaultFirst = 32768
	DefaultLast  = 60999
)

// tableLen is the number of counters of Algorithm 4 (RFC 6056 suggests a
// table of "a few" entries; Linux uses 65536 for TCP, 256 is plenty here).
const tableLen = 256

// Binding is what a socket asks to hold: an address and a port plus the
// options that decide whether it may share them.
type Binding struct {
	// Addr is the local address; the unspecified address (or the zero
	// Addr, which means 0.0.0.0) is the wildcard of its family.
	// IPv4-mapped addresses are IPv4.
	Addr netip.Addr
	// Port is the port; 0 asks Reserve for an ephemeral one.
	Port uint16
	// V6Only: an IPv6 wildcard that does not cover IPv4 (IPV6_V6ONLY).
	V6Only bool
	// Device is the SO_BINDTODEVICE interface index (0: any).
	Device int
	// ReuseAddr and ReusePort are SO_REUSEADDR and SO_REUSEPORT.
	ReuseAddr, ReusePort bool
	// UID owns the socket (SO_REUSEPORT groups need one owner).
	UID uint32
}

func (b Binding) norm() Binding {
	if !b.Addr.IsValid() {
		b.Addr = netip.IPv4Unspecified()
	}
	b.Addr = b.Addr.Unmap().WithZone("")
	return b
}

// dual reports whether b is a dual-stack IPv6 wildcard.
func (b Binding) dual() bool { return b.Addr.Is6() && b.Addr.IsUnspecified() && !b.V6Only }

// Overlap reports whether two bindings of one port would receive for a
// common address (the port itself is not compared).
func Overlap(a, b Binding) bool {
	a, b = a.norm(), b.norm()
	if a.Device != 0 && b.Device != 0 && a.Device != b.Device {
		return false
	}
	if a.Addr.Is4() == b.Addr.Is4() {
		return a.Addr.IsUnspecified() || b.Addr.IsUnspecified() || a.Addr == b.Addr
	}
	// Different families: only a dual-stack wildcard reaches across.
	return a.dual() || b.dual()
}

// Conflict reports whether b may not be bound to a port a already holds.
func Conflict(a, b Binding) bool {
	if !Overlap(a, b) {
		return false
	}
	if a.ReuseAddr && b.ReuseAddr {
		return false
	}
	if a.ReusePort && b.ReusePort && a.UID == b.UID {
		return false
	}
	return true
}

// Manager holds the port reservations of one protocol.
type Manager struct {
	seed1, seed2 maphash.Seed // F and G of RFC 6056 Algorithm 4

	mu          sync.Mutex
	first, last uint16
	table       [tableLen]uint32
	ports       map[uint16][]*Reservation
}

// NewManager returns an empty manager with the default range and fresh
// random keys.
func NewManager() *Manager {
	return &Manager{
		seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(),
		first: DefaultFirst, last: DefaultLast,
		ports: make(map[uint16][]*Reservation),
	}
}

// SetRange sets the ephemeral range (inclusive); EINVAL unless 1 ≤ first ≤
// last.
func (m *Manager) SetRange(first, last uint16) error {
	if first == 0 || first > last {
		return fmt.Errorf("ports: range %d-%d: %w", first, last, syscall.EINVAL)
	}
	m.mu.Lock()
	m.first, m.last = first, last
	m.mu.Unlock()
	return nil
}

// Range returns the ephemeral range.
func (m *Manager) Range() (first, last uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.first, m.last
}

// Reservation is one binding a socket holds until Release.
type Reservation struct {
	m        *Manager
	b        Binding
	released bool
}

// Binding returns what is held (with the port chosen).
func (r *Reservation) Binding() Binding { return r.b }

// Port returns the port held.
func (r *Reservation) Port() uint16 { return r.b.Port }

// Release gives the port back; releasing twice does nothing.
func (r *Reservation) Release() {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.released {
		return
	}
	r.released = true
	list := m.ports[r.b.Port]
	for i, x := range list {
		if x == r {
			// A fresh slice: nobody ranges over these without the lock,
			// but keep removal obviously safe.
			nl := make([]*Reservation, 0, len(list)-1)
			nl = append(append(nl, list[:i]...), list[i+1:]...)
			if len(nl) == 0 {
				delete(m.ports, r.b.Port)
			} else {
				m.ports[r.b.Port] = nl
			}
			return
		}
	}
}

// Reserve takes b.Port on b.Addr, or with port 0 an ephemeral port chosen
// for the peer remote (which may be the zero AddrPort). It fails with
// EADDRINUSE when the port is held in conflict, EADDRNOTAVAIL when no
// ephemeral port is free.
func (m *Manager) Reserve(b Binding, remote netip.AddrPort) (*Reservation, error) {
	b = b.norm()
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Port != 0 {
		for _, x := range m.ports[b.Port] {
			if Conflict(x.b, b) {
				return nil, fmt.Errorf("ports: %v port %d: %w", b.Addr, b.Port, syscall.EADDRINUSE)
			}
		}
		return m.addLocked(b), nil
	}
	// An ephemeral port is one nobody overlapping holds at all: sharing
	// options are for ports a program names, not for ports we hand out.
	port, ok := m.pickLocked(b.Addr, remote, func(p uint16) bool {
		for _, x := range m.ports[p] {
			if Overlap(x.b, b) {
				return false
			}
		}
		return true
	})
	if !ok {
		return nil, fmt.Errorf("ports: no free ephemeral port: %w", syscall.EADDRNOTAVAIL)
	}
	b.Port = port
	return m.addLocked(b), nil
}

func (m *Manager) addLocked(b Binding) *Reservation {
	r := &Reservation{m: m, b: b}
	m.ports[b.Port] = append(m.ports[b.Port], r)
	return r
}

// PickEphemeral runs RFC 6056 Algorithm 4 for the 3-tuple (local, remote)
// and returns the first port of the range that ok accepts, without
// reserving it (TCP's connect checks 4-tuples itself). ok runs without
// the manager's lock. EADDRNOTAVAIL when ok accepts none.
func (m *Manager) PickEphemeral(local netip.Addr, remote netip.AddrPort, ok func(port uint16) bool) (uint16, error) {
	m.mu.Lock()
	first, last := m.first, m.last
	off, idx := m.hashes(local, remote)
	m.mu.Unlock()
	n := uint32(last) - uint32(first) + 1
	for range n {
		m.mu.Lock()
		c := m.table[idx]
		m.table[idx]++
		m.mu.Unlock()
		p := uint16(uint32(first) + (off+c)%n)
		if ok(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("ports: no free ephemeral port: %w", syscall.EADDRNOTAVAIL)
}

// pickLocked is PickEphemeral under the lock, for Reserve.
func (m *Manager) pickLocked(local netip.Addr, remote netip.AddrPort, ok func(uint16) bool) (uint16, bool) {
	off, idx := m.hashes(local, remote)
	n := uint32(m.last) - uint32(m.first) + 1
	for range n {
		c := m.table[idx]
		m.table[idx]++
		p := uint16(uint32(m.first) + (off+c)%n)
		if ok(p) {
			return p, true
		}
	}
	return 0, false
}

// hashes returns F(3-tuple, key1) and G(3-tuple, key2) % tableLen.
func (m *Manager) hashes(local netip.Addr, remote netip.AddrPort) (off uint32, idx int) {
	var buf [16 + 16 + 2]byte
	l, r := local.Unmap().As16(), remote.Addr().Unmap().As16()
	copy(buf[0:16], l[:])
	copy(buf[16:32], r[:])
	binary.BigEndian.PutUint16(buf[32:], remote.Port())
	off = uint32(maphash.Bytes(m.seed1, buf[:]))
	idx = int(maphash.Bytes(m.seed2, buf[:]) % tableLen)
	return off, idx
}

// InUse reports whether anyone holds port.
func (m *Manager) InUse(port uint16) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ports[port]) > 0
}

// Len is the number of reservations held.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.ports {
		n += len(l)
	}
	return n
}
