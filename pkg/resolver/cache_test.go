package resolver

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func answer(name string, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	rr, _ := dns.NewRR(fmt.Sprintf("%s %d IN A 192.0.2.1", name, ttl))
	m.Answer = []dns.RR{rr}
	return m
}

func negative(name string, rcode int, soa bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Rcode = rcode
	if soa {
		rr, _ := dns.NewRR("example. 30 IN SOA ns. host. 1 2 3 4 600")
		m.Ns = []dns.RR{rr}
	}
	return m
}

func TestCacheRules(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	c := NewCache(2, clock.Now)
	q := func(name string) dns.Question {
		return dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}
	}
	c.Put(answer("zero.example.", 0))
	c.Put(negative("nosoa.example.", dns.RcodeNameError, false))
	c.Put(negative("fail.example.", dns.RcodeServerFailure, true))
	tc := answer("tc.example.", 60)
	tc.Truncated = true
	c.Put(tc)
	if c.Len() != 0 {
		t.Errorf("%d entries; TTL 0, SOA-less negative, SERVFAIL and truncated answers must not be cached", c.Len())
	}
	// Negative TTL: min(SOA TTL 30, MINIMUM 600).
	c.Put(negative("nx.example.", dns.RcodeNameError, true))
	clock.Advance(29 * time.Second)
	if m := c.Get(q("NX.example")); m == nil || m.Rcode != dns.RcodeNameError || m.Ns[0].Header().Ttl != 1 {
		t.Errorf("NXDOMAIN at 29 s: %v", m)
	}
	clock.Advance(time.Second)
	if c.Get(q("nx.example.")) != nil {
		t.Error("NXDOMAIN still cached at 30 s")
	}
	// Bounded: the least recently used goes.
	c.Put(answer("a.example.", 60))
	c.Put(answer("b.example.", 60))
	c.Get(q("a.example."))
	c.Put(answer("c.example.", 60))
	if c.Len() != 2 || c.Get(q("b.example.")) != nil || c.Get(q("a.example.")) == nil || c.Get(q("c.example.")) == nil {
		t.Errorf("after a third entry in a cache of 2: len %d, want a and c kept", c.Len())
	}
	// A copy: changing what Get returned does not change the cache.
	c.Get(q("a.example.")).Answer[0].Header().Ttl = 9999
	if m := c.Get(q("a.example.")); m.Answer[0].Header().Ttl != 60 {
		t.Errorf("cache entry changed through a returned message: TTL %d", m.Answer[0].Header().Ttl)
	}
	if hits, misses := c.Stats(); hits == 0 || misses == 0 {
		t.Errorf("stats %d hits %d misses", hits, misses)
	}
	var nilCache *Cache
	nilCache.Put(answer("a.example.", 60))
	if nilCache.Get(q("a.example.")) != nil {
		t.Error("a nil cache answered")
	}
}

// Concurrent use (run with -race) keeps the bound.
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(50, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				name := fmt.Sprintf("n%d.example.", (g*7+i)%120)
				c.Put(answer(name, 60))
				c.Get(dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET})
			}
		}()
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Errorf("%d entries in a cache of 50", c.Len())
	}
}
