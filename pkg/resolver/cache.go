package resolver

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTL ceilings: a week for answers (BIND's max-cache-ttl), three hours
// for negative answers (RFC 2308 §5 suggests one to three).
const (
	maxPositiveTTL = 7 * 24 * time.Hour
	maxNegativeTTL = 3 * time.Hour
)

// Cache keeps answers for their TTL and negative answers (NXDOMAIN and
// no data) for the TTL RFC 2308 §5 gives them: the smaller of the SOA
// record's TTL and its MINIMUM field. It holds at most its size in
// entries, dropping the least recently used. Safe for concurrent use;
// one Cache can serve several Resolvers (the daemon's clients).
type Cache struct {
	now func() time.Time
	max int

	mu      sync.Mutex // leaf
	entries map[cacheKey]*list.Element
	lru     list.List // of *cacheEntry, most recent at the front
	hits    uint64
	misses  uint64
}

type cacheKey struct {
	name         string // lower case, fully qualified
	qtype, class uint16
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// NewCache returns a cache of at most size entries (at least 1) reading
// time from now (nil: time.Now), which tests replace.
func NewCache(size int, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{now: now, max: max(size, 1), entries: make(map[cacheKey]*list.Element)}
}

func keyOf(q dns.Question) cacheKey {
	return cacheKey{name: strings.ToLower(dns.Fqdn(q.Name)), qtype: q.Qtype, class: q.Qclass}
}

// Get returns a copy of the cached answer to q with its TTLs lowered by
// the time it has been cached, or nil.
func (c *Cache) Get(q dns.Question) *dns.Msg {
	if c == nil {
		return nil
	}
	k := keyOf(q)
	now := c.now()
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.misses++
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.misses++
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.hits++
	m, stored := e.msg, e.stored
	c.mu.Unlock()
	out := m.Copy()
	age := uint32(now.Sub(stored) / time.Second)
	for _, sec := range [][]dns.RR{out.Answer, out.Ns, out.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, age)
			}
		}
	}
	return out
}

// Put caches m, the answer to its question, for as long as it may be
// kept; answers that may not be (TTL 0, SERVFAIL, truncated, negative
// without an SOA) are ignored.
func (c *Cache) Put(m *dns.Msg) {
	if c == nil || m == nil || len(m.Question) != 1 || m.Truncated {
		return
	}
	ttl, ok := cacheTTL(m)
	if !ok || ttl <= 0 {
		return
	}
	now := c.now()
	e := &cacheEntry{key: keyOf(m.Question[0]), msg: m.Copy(), stored: now, expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
}

// cacheTTL is how long m may be cached.
func cacheTTL(m *dns.Msg) (time.Duration, bool) {
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return 0, false
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		ttl := ^uint32(0)
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return min(time.Duration(ttl)*time.Second, maxPositiveTTL), true
	}
	// RFC 2308 §5: a negative answer lives for the SOA's TTL or its
	// MINIMUM, whichever is less; without an SOA it is not cached.
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := min(soa.Hdr.Ttl, soa.Minttl)
			return min(time.Duration(ttl)*time.Second, maxNegativeTTL), true
		}
	}
	return 0, false
}

// Len is the number of entries, expired ones included until looked up.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Stats returns the hits and misses so far.
func (c *Cache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}
