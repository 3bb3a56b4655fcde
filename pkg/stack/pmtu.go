package stack

import (
	"net/netip"
	"sync"
	"time"
)

// Path MTU discovery state (RFC 1191 for IPv4, RFC 8201 for IPv6): the
// MTU learned from ICMP fragmentation-needed and packet-too-big messages,
// per destination, expiring after pmtuExpires as Linux's mtu_expires.
const (
	pmtuExpires    = 10 * time.Minute
	pmtuMaxEntries = 4096
	minPMTU4       = 552  // Linux net.ipv4.route.min_pmtu
	minMTU6        = 1280 // RFC 8200 §5
)

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

type pmtuCache struct {
	mu sync.Mutex
	m  map[netip.Addr]pmtuEntry
}

func (c *pmtuCache) init() { c.m = make(map[netip.Addr]pmtuEntry) }

// get returns the path MTU learned for dst, if any and unexpired.
func (c *pmtuCache) get(dst netip.Addr) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[dst]
	if !ok {
		return 0, false
	}
	if time.Now().After(e.expires) {
		delete(c.m, dst)
		return 0, false
	}
	return e.mtu, true
}

// update lowers the path MTU of dst to mtu (never raises it: RFC 1191
// §6.3, RFC 8201 §4 — increases come only from expiry). It returns the
// MTU now in force.
func (c *pmtuCache) update(dst netip.Addr, mtu int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if e, ok := c.m[dst]; ok && now.Before(e.expires) && e.mtu <= mtu {
		return e.mtu
	}
	if len(c.m) >= pmtuMaxEntries {
		// Drop the expired ones, or if none, the entry closest to expiry.
		var victim netip.Addr
		var soonest time.Time
		for a, e := range c.m {
			if now.After(e.expires) {
				delete(c.m, a)
				continue
			}
			if soonest.IsZero() || e.expires.Before(soonest) {
				victim, soonest = a, e.expires
			}
		}
		if len(c.m) >= pmtuMaxEntries {
			delete(c.m, victim)
		}
	}
	c.m[dst] = pmtuEntry{mtu: mtu, expires: now.Add(pmtuExpires)}
	return mtu
}

// PathMTU returns the path MTU the stack has learned for dst, if any.
func (s *Stack) PathMTU(dst netip.Addr) (int, bool) { return s.pmtu.get(dst) }
