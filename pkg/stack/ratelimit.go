package stack

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter limits ICMP error messages the way Linux does: a global
// token bucket (icmp_msgs_per_sec, icmp_msgs_burst; icmp_global_allow) and
// a bucket per destination host that earns one token per icmp_ratelimit
// and holds at most six (inet_peer_xrlim_allow, XRLIM_BURST_FACTOR).
// Errors to the loopback are never limited.
type rateLimiter struct {
	mu       sync.Mutex
	perSec   int
	burst    int
	interval time.Duration // per host; negative: no per-host limit
	credit   float64
	last     time.Time
	hosts    map[netip.Addr]*hostBucket
}

type hostBucket struct {
	tokens time.Duration
	last   time.Time
}

const (
	xrlimBurstFactor = 6
	maxRateHosts     = 4096
)

func (l *rateLimiter) init(o Options) {
	l.perSec, l.burst, l.interval = o.ICMPMsgsPerSec, o.ICMPMsgsBurst, o.ICMPRateLimit
	l.credit = float64(l.burst)
	l.hosts = make(map[netip.Addr]*hostBucket)
}

// limitResult says which limit, if any, refused a message.
type limitResult uint8

const (
	limitAllow limitResult = iota
	limitGlobal
	limitHost
)

// allow takes a token for an ICMP error to dst.
func (l *rateLimiter) allow(dst netip.Addr) limitResult {
	if dst.IsLoopback() {
		return limitAllow
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.credit += now.Sub(l.last).Seconds() * float64(l.perSec)
	}
	l.last = now
	l.credit = min(l.credit, float64(l.burst))
	if l.credit < 1 {
		return limitGlobal
	}
	if l.interval > 0 {
		b := l.hosts[dst]
		if b == nil {
			if len(l.hosts) >= maxRateHosts {
				for a, hb := range l.hosts {
					if now.Sub(hb.last) > xrlimBurstFactor*l.interval {
						delete(l.hosts, a)
					}
				}
				if len(l.hosts) >= maxRateHosts {
					clear(l.hosts)
				}
			}
			b = &hostBucket{tokens: xrlimBurstFactor * l.interval, last: now}
			l.hosts[dst] = b
		} else {
			b.tokens = min(b.tokens+now.Sub(b.last), xrlimBurstFactor*l.interval)
			b.last = now
		}
		if b.tokens < l.interval {
			return limitHost
		}
		b.tokens -= l.interval
	}
	l.credit--
	return limitAllow
}
