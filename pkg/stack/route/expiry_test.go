package route

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// A router advertisement's default route (RFC 4861 §6.3.4, router
// lifetime) and a redirect's host route expire: Lookup stops using them at
// once, Expire frees them, NextExpiry says when.
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := New()
		mustAddr(t, tb, 1, "fd00::1/64")
		mustAddr(t, tb, 1, "10.0.0.1/24")
		mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254"), Metric: 100})
		start := time.Now()
		mustAdd(t, tb, Route{Dst: pfx("::/0"), Gateway: ip("fe80::1"), NIC: 1, Protocol: ProtoRA,
			Expires: start.Add(30 * time.Minute)})
		mustAdd(t, tb, Route{Dst: pfx("8.8.8.8/32"), Gateway: ip("10.0.0.9"), Protocol: ProtoRedirect,
			Expires: start.Add(10 * time.Minute)})

		next, ok := tb.NextExpiry()
		if !ok || !next.Equal(start.Add(10*time.Minute)) {
			t.Fatalf("NextExpiry = %v, %v", next, ok)
		}
		r, ok := tb.Lookup(ip("8.8.8.8"))
		if !ok || r.Protocol != ProtoRedirect || r.Expired(time.Now()) {
			t.Fatalf("before expiry: %v", r)
		}
		gen := tb.Generation()

		time.Sleep(10*time.Minute - time.Nanosecond)
		if r, _ := tb.Lookup(ip("8.8.8.8")); r.Protocol != ProtoRedirect {
			t.Fatalf("a nanosecond before expiry: %v", r)
		}
		time.Sleep(time.Nanosecond)
		// Expired: Lookup falls back to the default route, Routes hides
		// it, the cached route says it expired, the generation has not
		// moved yet (the stack's cache checks Expired).
		if r, _ := tb.Lookup(ip("8.8.8.8")); r.Gateway != ip("10.0.0.254") {
			t.Fatalf("after expiry: %v", r)
		}
		if !r.Expired(time.Now()) {
			t.Error("Route.Expired false after expiry")
		}
		if n := len(tb.Routes()); n != 4 {
			t.Errorf("Routes has %d entries, want 4", n)
		}
		if tb.Generation() != gen {
			t.Error("generation moved without a change")
		}
		// An identical route may be added again once the old one expired.
		mustAdd(t, tb, Route{Dst: pfx("8.8.8.8/32"), Gateway: ip("10.0.0.9"), Protocol: ProtoRedirect,
			Expires: time.Now().Add(time.Minute)})
		if err := tb.Delete(Match{Dst: pfx("8.8.8.8/32")}); err != nil {
			t.Fatal(err)
		}
		next, _ = tb.NextExpiry()
		if !next.Equal(start.Add(30 * time.Minute)) {
			t.Errorf("NextExpiry = %v, want the RA route's", next)
		}

		time.Sleep(next.Sub(time.Now()))
		if _, ok := tb.Lookup(ip("2001:db8::1")); ok {
			t.Error("RA default route used after its lifetime")
		}
		gen = tb.Generation()
		if n := tb.Expire(time.Now()); n != 1 {
			t.Errorf("Expire removed %d, want 1", n)
		}
		if tb.Generation() == gen {
			t.Error("Expire did not change the generation")
		}
		if _, ok := tb.NextExpiry(); ok {
			t.Error("NextExpiry with no expiring routes")
		}
		if n := tb.Expire(time.Now()); n != 0 {
			t.Errorf("second Expire removed %d", n)
		}
		if err := tb.Delete(Match{Dst: pfx("::/0")}); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("deleting an expired route: %v", err)
		}
	})
}

// A stack drives expiry from a timer at NextExpiry; under synctest that
// runs in fake time.
func TestExpiryTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := New()
		mustAddr(t, tb, 1, "10.0.0.1/24")
		for i := range 5 {
			mustAdd(t, tb, Route{Dst: pfx("10.1.0.0/16"), Gateway: ip("10.0.0.9"), Metric: uint32(i),
				Expires: time.Now().Add(time.Duration(i+1) * time.Second)})
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 10 { // bounded: five routes expire, one per wakeup
				next, ok := tb.NextExpiry()
				if !ok {
					return
				}
				time.Sleep(time.Until(next))
				tb.Expire(time.Now())
			}
		})
		synctest.Wait()
		for i := range 5 {
			if r, _ := tb.Lookup(ip("10.1.0.1")); r.Metric != uint32(i) {
				t.Fatalf("second %d: %v", i, r)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if n := len(tb.Routes()); n != 5-i {
				t.Fatalf("second %d: %d routes left", i+1, n)
			}
		}
		wg.Wait()
		if _, ok := tb.Lookup(ip("10.1.0.1")); ok {
			t.Error("route after all expired")
		}
	})
}
