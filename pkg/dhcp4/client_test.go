package dhcp4

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/internal/dhcptest"
	"github.com/stackbox/stackbox/pkg/host"
)

func hasAddr(t *testing.T, h host.Host, p netip.Prefix) bool {
	t.Helper()
	it, err := h.Interface(context.Background(), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range it.Addrs {
		if a.Prefix == p {
			return true
		}
	}
	return false
}

func defaultRoute(t *testing.T, h host.Host) netip.Addr {
	t.Helper()
	rs, err := h.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Dst.Bits() == 0 && r.Dst.Addr().Is4() {
			return r.Gateway
		}
	}
	return netip.Addr{}
}

// TestDORA: DISCOVER, OFFER, REQUEST, ACK; the lease is applied (address
// with the mask's prefix and broadcast, default route, MTU) and written.
func TestDORA(t *testing.T) {
	ch, srv := lab(t, "")
	ev := &events{}
	file := filepath.Join(t.TempDir(), "lease.json")
	c := newClient(t, ch, file, ev)
	l, err := c.Obtain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := netip.PrefixFrom(firstIP, 24)
	if l.Address != want || l.Server != serverIP || l.Duration.D() != time.Hour || l.T1.D() != 30*time.Minute || l.T2.D() != 3150*time.Second {
		t.Errorf("lease %+v", l)
	}
	if !hasAddr(t, ch, want) {
		t.Errorf("%v not on eth0", want)
	}
	it, _ := ch.Interface(context.Background(), "eth0")
	if it.MTU != 1400 {
		t.Errorf("MTU %d, want 1400", it.MTU)
	}
	for _, a := range it.Addrs {
		if a.Prefix == want && a.Broadcast != netip.MustParseAddr("10.70.0.255") {
			t.Errorf("broadcast %v", a.Broadcast)
		}
	}
	if gw := defaultRoute(t, ch); gw != serverIP {
		t.Errorf("default route via %v", gw)
	}
	if l.DNS[0] != netip.MustParseAddr("10.70.0.53") || l.Domain != "lab" {
		t.Errorf("dns %v domain %q", l.DNS, l.Domain)
	}
	got := srv.Seen()
	if len(got) != 2 || got[0].T != dhcpv4.MessageTypeDiscover || got[1].T != dhcpv4.MessageTypeRequest {
		t.Fatalf("server saw %v", got)
	}
	if got[0].From != netip.MustParseAddrPort("0.0.0.0:68") || !got[0].Bcast || !got[0].M.IsBroadcast() {
		t.Errorf("discover from %v, broadcast flag %v", got[0].From, got[0].M.IsBroadcast())
	}
	if got[1].Req != firstIP || !got[1].SrvID {
		t.Errorf("select request: option 50 %v, server id %v", got[1].Req, got[1].SrvID)
	}
	fl, err := ReadLease(file)
	if err != nil || fl.Address != want || fl.Server != serverIP {
		t.Errorf("lease file %+v, %v", fl, err)
	}
	if ev.String() != "[bound 10.70.0.100/24]" {
		t.Errorf("events %v", ev)
	}
}

// TestInitReboot: a client started with a lease file asks for its address
// again (§3.2: REQUEST with option 50, no server identifier), no DISCOVER.
func TestInitReboot(t *testing.T) {
	ch, srv := lab(t, "")
	file := filepath.Join(t.TempDir(), "lease.json")
	c := newClient(t, ch, file, &events{})
	if _, err := c.Obtain(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	srv.Set(func(s *dhcptest.Server) { s.Got = nil; s.Next = 120 }) // a fresh DISCOVER would get .120
	c2 := newClient(t, ch, file, &events{})
	l, err := c2.Obtain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Seen()
	if len(got) != 1 || got[0].T != dhcpv4.MessageTypeRequest || got[0].SrvID || got[0].Req != firstIP || !got[0].Ciaddr.IsUnspecified() {
		t.Fatalf("server saw %+v", got)
	}
	if l.Address.Addr() != firstIP {
		t.Errorf("lease %v", l.Address)
	}
}

// TestNakRediscover: a NAK sends the client back to INIT (§3.1 step 4).
func TestNakRediscover(t *testing.T) {
	ch, srv := lab(t, "")
	srv.Set(func(s *dhcptest.Server) { s.NakNext = 1 })
	ev := &events{}
	c := newClient(t, ch, "", ev)
	l, err := c.Obtain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(dhcpv4.MessageTypeDiscover); n != 2 {
		t.Errorf("%d discovers, want 2", n)
	}
	if ev.String() != "[nak bound 10.70.0.100/24]" || l.Address.Addr() != firstIP {
		t.Errorf("events %v lease %v", ev, l.Address)
	}
}

// TestNoServer: with no server Obtain gives up after Discovers DISCOVERs
// and reports leasefail.
func TestNoServer(t *testing.T) {
	ch, srv := lab(t, "")
	srv.Set(func(s *dhcptest.Server) { s.Silent = true })
	ev := &events{}
	c := newClient(t, ch, "", ev)
	c.cfg.Discovers = 2
	start := time.Now()
	if _, err := c.Obtain(context.Background()); !errors.Is(err, ErrNoLease) {
		t.Fatalf("err %v", err)
	}
	if n := srv.Count(dhcpv4.MessageTypeDiscover); n != 2 || time.Since(start) > 3*time.Second {
		t.Errorf("%d discovers in %v", n, time.Since(start))
	}
	if ev.String() != "[leasefail]" {
		t.Errorf("events %v", ev)
	}
}

// TestLossy: on a link that loses 30% of what the client sends, the lease
// still comes within the retry bound.
func TestLossy(t *testing.T) {
	ch, _ := lab(t, ",loss=0.3,seed=3")
	c := newClient(t, ch, "", &events{})
	c.cfg.Discovers = 8
	if _, err := c.Obtain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRenewRebindExpire: at T1 the client renews by unicast to the server;
// when the server stops answering unicast it rebinds by broadcast at T2;
// when nobody answers the lease expires and the address is removed
// (§4.4.5). Fake time (synctest).
func TestRenewRebindExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch, srv := lab(t, "")
		srv.Set(func(s *dhcptest.Server) { s.Lease = 1000 * time.Second })
		ev := &events{}
		c := newClient(t, ch, "", ev)
		l, err := c.Obtain(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := l.Obtained
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()

		time.Sleep(499 * time.Second)
		synctest.Wait()
		if n := len(srv.Seen()); n != 2 {
			t.Fatalf("before T1 the server saw %d messages", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := srv.Seen()
		if len(got) != 3 {
			t.Fatalf("after T1 the server saw %d messages", len(got))
		}
		r := got[2]
		if r.T != dhcpv4.MessageTypeRequest || r.From != netip.AddrPortFrom(firstIP, 68) || r.Ciaddr != firstIP || r.SrvID || r.Req.IsValid() || r.Bcast {
			t.Errorf("renew %+v", r)
		}
		renewed := c.Lease().Obtained
		if renewed.Sub(start) < 500*time.Second {
			t.Errorf("renewed lease obtained at %v", renewed.Sub(start))
		}

		// Now unicast goes unanswered: renew retries, then rebinds at T2.
		srv.Set(func(s *dhcptest.Server) { s.NoUnicast = true; s.Got = nil })
		time.Sleep(873 * time.Second) // the renewed lease's T2 is 875 s after it
		synctest.Wait()
		for _, g := range srv.Seen() {
			if g.Bcast || g.From.Addr() != firstIP {
				t.Errorf("before T2: %+v", g)
			}
		}
		if len(srv.Seen()) < 2 {
			t.Errorf("renewing sent %d requests", len(srv.Seen()))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = srv.Seen()
		if c.Lease() == nil {
			t.Fatalf("no lease after T2; server saw %+v", got)
		}
		if r := got[len(got)-1]; !r.Bcast || r.Ciaddr != firstIP || r.SrvID || c.Lease().Obtained.Sub(renewed) < 875*time.Second {
			t.Errorf("rebind %+v, lease from %v", r, c.Lease().Obtained.Sub(renewed))
		}

		// Nobody answers: the lease runs out.
		srv.Set(func(s *dhcptest.Server) { s.Silent = true })
		time.Sleep(1001 * time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, ErrExpired) {
				t.Errorf("Run: %v", err)
			}
		default:
			t.Fatal("Run still running after expiry")
		}
		if hasAddr(t, ch, netip.PrefixFrom(firstIP, 24)) {
			t.Error("address still configured after expiry")
		}
		if ev.String() != "[bound 10.70.0.100/24 renew 10.70.0.100/24 renew 10.70.0.100/24 deconfig]" {
			t.Errorf("events %v", ev)
		}
	})
}

// TestDecline: an offered address another host is known to hold (the
// neighbour table) is declined; the client waits 10 s and takes the next.
func TestDecline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch, srv := lab(t, "")
		if err := ch.AddNeighbor(context.Background(), host.Neighbor{Addr: firstIP, MAC: "02:00:00:00:00:99", Dev: "eth0", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, ch, "", &events{})
		start := time.Now()
		l, err := c.Obtain(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l.Address.Addr() != netip.MustParseAddr("10.70.0.101") || time.Since(start) < 10*time.Second {
			t.Errorf("got %v after %v", l.Address, time.Since(start))
		}
		if srv.Count(dhcpv4.MessageTypeDecline) != 1 {
			t.Errorf("server saw %+v", srv.Seen())
		}
		if hasAddr(t, ch, netip.PrefixFrom(firstIP, 24)) {
			t.Error("declined address configured")
		}
	})
}

// TestRelease: RELEASE goes unicast to the server with ciaddr set
// (§4.4.6); the address and the lease file go.
func TestRelease(t *testing.T) {
	ch, srv := lab(t, "")
	file := filepath.Join(t.TempDir(), "lease.json")
	ev := &events{}
	c := newClient(t, ch, file, ev)
	if _, err := c.Obtain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.Count(dhcpv4.MessageTypeRelease) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := srv.Seen()
	if r := got[len(got)-1]; r.T != dhcpv4.MessageTypeRelease || r.Ciaddr != firstIP || r.From.Addr() != firstIP || r.Bcast || !r.SrvID {
		t.Errorf("release %+v", r)
	}
	if hasAddr(t, ch, netip.PrefixFrom(firstIP, 24)) {
		t.Error("address still configured")
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("lease file: %v", err)
	}
	if ev.String() != "[bound 10.70.0.100/24 deconfig]" {
		t.Errorf("events %v", ev)
	}
}

// TestUnknownInterface: New names the missing device with ENODEV.
func TestUnknownInterface(t *testing.T) {
	ch, _ := lab(t, "")
	_, err := New(context.Background(), Config{Host: ch, Interface: "eth9"})
	if err == nil {
		t.Fatal("no error")
	}
}
