package stack

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/stack/route"
	"github.com/stackbox/stackbox/pkg/wire"
)

// NDP tests drive handleNDP directly with messages built here and watch
// what the stack sends from a wirePort on the same emulated switch.

// seenNDP is one NDP message seen on the wire.
type seenNDP struct {
	ethDst, ethSrc wire.MAC
	src, dst       netip.Addr
	hopLimit       uint8
	msg            wire.ICMPv6
	csumOK         bool
	at             time.Time
}

// parseNDP decodes an NDP message (ICMPv6 types 133–137 right after the
// IPv6 header) from a recorded frame.
func parseNDP(f wireFrame) (seenNDP, bool) {
	if f.eth.EtherType() != wire.EtherTypeIPv6 {
		return seenNDP{}, false
	}
	ip, err := wire.ParseIPv6(f.eth.Payload())
	if err != nil || ip.NextHeader() != wire.IPProtoICMPv6 {
		return seenNDP{}, false
	}
	m, err := wire.ParseICMPv6(ip.Payload())
	if err != nil || m.Type() < wire.ICMPv6RouterSolicit || m.Type() > wire.ICMPv6Redirect {
		return seenNDP{}, false
	}
	return seenNDP{
		ethDst: f.eth.Dst(), ethSrc: f.eth.Src(), src: ip.Src(), dst: ip.Dst(), hopLimit: ip.HopLimit(),
		msg: m, csumOK: m.ChecksumValid(ip.Src(), ip.Dst()), at: f.at,
	}, true
}

// takeNDP returns and forgets the NDP messages of type typ recorded so
// far; other frames stay.
func (l *frameLog) takeNDP(typ uint8) []seenNDP {
	var out []seenNDP
	for _, f := range l.take(func(f wireFrame) bool {
		m, ok := parseNDP(f)
		return ok && m.msg.Type() == typ
	}) {
		m, _ := parseNDP(f)
		out = append(out, m)
	}
	return out
}

// ndpPI is the PacketInfo of an NDP message received on n.
func ndpPI(n *NIC, src, dst string) *PacketInfo {
	return &PacketInfo{NIC: n, Src: mustAddr(src), Dst: mustAddr(dst), Proto: wire.IPProtoICMPv6, TTL: 255}
}

type encoder interface {
	Len() int
	Encode([]byte)
}

func buildNDP(f encoder) []byte {
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

var (
	peerMAC   = wire.MAC{0x02, 0, 0, 0, 0xbb, 0x01}
	routerMAC = wire.MAC{0x02, 0, 0, 0, 0xcc, 0x01}
)

// newNDPHost is a host with DAD and autoconfiguration on, plus a wirePort.
func newNDPHost(t *testing.T, opts Options, addrs ...string) (*testHost, *wirePort) {
	t.Helper()
	nw := newTestNet(t, 1)
	sn := newWirePort(t, nw)
	opts.Seed = 7
	h := newTestHostNIC(t, nw, opts, NICOptions{}, emu.PortConfig{MAC: wire.MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}}, addrs...)
	return h, sn
}

func addrState(t *testing.T, n *NIC, a string) AddressState {
	t.Helper()
	st, ok := n.addressState(mustAddr(a))
	if !ok {
		t.Fatalf("%s has no address %s; has %v", n.Name(), a, n.Addresses())
	}
	return st
}

func findRoute(s *Stack, dst string, proto route.Protocol) (route.Route, bool) {
	p := netip.MustParsePrefix(dst)
	for _, r := range s.Routes().Routes() {
		if r.Dst == p && r.Protocol == proto {
			return r, true
		}
	}
	return route.Route{}, false
}

func TestLinkLocalEUI64(t *testing.T) {
	for _, c := range []struct{ mac, want string }{
		{"52:54:00:12:34:56", "fe80::5054:ff:fe12:3456"},
		{"00:00:00:00:00:01", "fe80::200:ff:fe00:1"},
		{"02:00:5e:10:00:00", "fe80::5eff:fe10:0"}, // locally administered: U/L bit cleared
		{"ff:ff:ff:ff:ff:ff", "fe80::fdff:ffff:feff:ffff"},
	} {
		hw, _ := parseMAC(c.mac)
		if got := LinkLocalAddress(hw); got != mustAddr(c.want) {
			t.Errorf("LinkLocalAddress(%s) = %v, want %s", c.mac, got, c.want)
		}
	}
}

func parseMAC(s string) (wire.MAC, bool) {
	var m wire.MAC
	var j int
	for i := 0; i < len(s) && j < 6; i += 3 {
		var v byte
		for _, c := range s[i : i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		m[j] = v
		j++
	}
	return m, j == 6
}

// TestDADSuccess: a new NIC forms its EUI-64 link-local address, probes it
// and a manual address with one NS each from :: to the solicited-node
// group, and both become preferred after RetransTimer; then the host
// solicits routers three times, four seconds apart.
func TestDADSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sn := newNDPHost(t, Options{}, "2001:db8::1/64")
		n := h.nic
		ll := "fe80::5054:ff:fe12:3456"
		if st := addrState(t, n, ll); st != Tentative {
			t.Fatalf("link-local state %v at start, want tentative", st)
		}
		if st := addrState(t, n, "2001:db8::1"); st != Tentative {
			t.Fatalf("2001:db8::1 state %v at start, want tentative", st)
		}
		if s := n.s.IsLocal(mustAddr("2001:db8::1")); s {
			t.Error("tentative address counts as local")
		}
		// Step through DAD: each address stays tentative until RetransTimer
		// (1 s) after its probe, which comes within the random delay (< 1 s).
		var ns []seenNDP
		probed := map[netip.Addr]time.Time{}
		for range 25 {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			for _, m := range sn.takeNDP(wire.ICMPv6NeighborSolicit) {
				ns = append(ns, m)
				v, _ := m.msg.NeighborSolicit()
				probed[v.Target()] = m.at
			}
			for _, a := range []netip.Addr{mustAddr(ll), mustAddr("2001:db8::1")} {
				st := addrState(t, n, a.String())
				at, ok := probed[a]
				want := Tentative
				if ok && time.Since(at) >= time.Second {
					want = Preferred
				}
				if st != want {
					t.Fatalf("%v: %v %v after its probe (probed %v): state %v, want %v", a, time.Since(at), ok, at, st, want)
				}
			}
		}
		for _, m := range ns {
			v, _ := m.msg.NeighborSolicit()
			it := v.Options()
			if _, ok := it.Next(); ok {
				t.Errorf("DAD NS for %v carries options", v.Target())
			}
			if !m.src.IsUnspecified() || m.dst != wire.IPv6SolicitedNode(v.Target()) ||
				m.ethDst != wire.IPv6MulticastMAC(m.dst) || m.hopLimit != 255 || !m.csumOK {
				t.Errorf("DAD NS %v -> %v (eth %v) hop %d csum %v", m.src, m.dst, m.ethDst, m.hopLimit, m.csumOK)
			}
		}
		if len(ns) != 2 || len(probed) != 2 {
			t.Fatalf("DAD sent %d NS for %v, want one each for %s and 2001:db8::1", len(ns), probed, ll)
		}
		// Router solicitation: at once after DAD, then every 4 s, 3 in all.
		time.Sleep(20 * time.Second)
		synctest.Wait()
		rs := sn.takeNDP(wire.ICMPv6RouterSolicit)
		if len(rs) != 3 {
			t.Fatalf("sent %d RS, want 3", len(rs))
		}
		for _, m := range rs {
			v, _ := m.msg.RouterSolicit()
			mac, has, ok := ndpLinkAddr(v.Options(), wire.NDPOptSourceLinkAddr)
			if m.src != mustAddr(ll) || m.dst != allRouters6 || !ok || !has || mac != n.MAC() || m.hopLimit != 255 || !m.csumOK {
				t.Errorf("RS %v -> %v SLLAO %v/%v hop %d", m.src, m.dst, mac, has, m.hopLimit)
			}
		}
	})
}

// TestDADFailure: an NS from :: for a tentative address (another node's
// DAD) or an NA for it makes the address duplicate, without a connected
// route; a unicast-sourced NS does not. A duplicate link-local address
// stops autoconfiguration and router solicitation.
func TestDADFailure(t *testing.T) {
	for _, c := range []struct {
		name   string
		msg    func(target netip.Addr) ([]byte, *PacketInfo)
		failed bool
	}{
		{"NS from ::", func(a netip.Addr) ([]byte, *PacketInfo) {
			return buildNDP(&wire.NDPNeighborSolicitFields{Target: a}),
				&PacketInfo{Src: netip.IPv6Unspecified(), Dst: wire.IPv6SolicitedNode(a), TTL: 255}
		}, true},
		{"NA to all nodes", func(a netip.Addr) ([]byte, *PacketInfo) {
			return buildNDP(&wire.NDPNeighborAdvertFields{Target: a, Override: true, TargetLinkAddr: peerMAC}),
				&PacketInfo{Src: mustAddr("fe80::bb"), Dst: allNodes6, TTL: 255}
		}, true},
		{"NS from unicast", func(a netip.Addr) ([]byte, *PacketInfo) {
			return buildNDP(&wire.NDPNeighborSolicitFields{Target: a, SourceLinkAddr: peerMAC}),
				&PacketInfo{Src: mustAddr("fe80::bb"), Dst: wire.IPv6SolicitedNode(a), TTL: 255}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, sn := newNDPHost(t, Options{}, "2001:db8::1/64")
				n := h.nic
				ll := LinkLocalAddress(n.MAC())
				for _, a := range []netip.Addr{mustAddr("2001:db8::1"), ll} {
					msg, pi := c.msg(a)
					pi.NIC = n
					n.s.handleNDP(pi, msg)
				}
				want := Tentative
				if c.failed {
					want = Duplicate
				}
				for _, a := range []netip.Addr{mustAddr("2001:db8::1"), ll} {
					if st := addrState(t, n, a.String()); st != want {
						t.Errorf("%v: state %v, want %v", a, st, want)
					}
				}
				_, hasRoute := findRoute(n.s, "2001:db8::/64", route.ProtoKernel)
				if hasRoute == c.failed {
					t.Errorf("connected route present = %v with the address %v", hasRoute, want)
				}
				time.Sleep(30 * time.Second)
				synctest.Wait()
				rs := sn.takeNDP(wire.ICMPv6RouterSolicit)
				if c.failed {
					if len(rs) != 0 {
						t.Errorf("sent %d RS with a duplicate link-local address", len(rs))
					}
					for _, a := range []netip.Addr{mustAddr("2001:db8::1"), ll} {
						if st := addrState(t, n, a.String()); st != Duplicate {
							t.Errorf("%v: state %v after the DAD timer, want it to stay duplicate", a, st)
						}
					}
					// No SLAAC once the link-local identifier collided.
					ra := buildNDP(&wire.NDPRouterAdvertFields{RouterLifetime: 1800, Prefixes: []wire.NDPPrefixFields{{
						Prefix: netip.MustParsePrefix("2001:db8:5::/64"), OnLink: true, Autonomous: true,
						ValidLifetime: 3600, PreferredLifetime: 1800}}})
					n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), ra)
					if _, ok := n.addressState(slaacAddr(mustAddr("2001:db8:5::"), n.MAC())); ok {
						t.Error("SLAAC address formed after link-local DAD failure")
					}
				} else if len(rs) != 3 {
					t.Errorf("sent %d RS, want 3", len(rs))
				}
			})
		})
	}
}

// TestNeighborSolicitAnswered: an NS for our address gets a solicited NA
// from the target to the solicitor's link-layer address, with our TLLAO,
// and creates a STALE entry; a DAD probe for our preferred address gets an
// unsolicited NA to all nodes; a router sets R.
func TestNeighborSolicitAnswered(t *testing.T) {
	for _, fwd := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			nw := newTestNet(t, 1)
			sn := newWirePort(t, nw)
			h := newTestHost(t, nw, Options{IPv6Forwarding: fwd}, "2001:db8::1/64")
			n := h.nic
			peer := sn.mac
			ns := buildNDP(&wire.NDPNeighborSolicitFields{Target: mustAddr("2001:db8::1"), SourceLinkAddr: peer})
			n.s.handleNDP(ndpPI(n, "2001:db8::2", "ff02::1:ff00:1"), ns)
			synctest.Wait()
			na := sn.takeNDP(wire.ICMPv6NeighborAdvert)
			if len(na) != 1 {
				t.Fatalf("forwarding=%v: %d NA, want 1", fwd, len(na))
			}
			v, _ := na[0].msg.NeighborAdvert()
			tll, has, _ := ndpLinkAddr(v.Options(), wire.NDPOptTargetLinkAddr)
			if na[0].src != mustAddr("2001:db8::1") || na[0].dst != mustAddr("2001:db8::2") || na[0].ethDst != peer ||
				!v.Solicited() || !v.Override() || v.Router() != fwd || v.Target() != mustAddr("2001:db8::1") ||
				!has || tll != n.MAC() || na[0].hopLimit != 255 || !na[0].csumOK {
				t.Errorf("forwarding=%v: NA %v -> %v eth %v S=%v O=%v R=%v target %v TLLAO %v/%v hop %d csum %v",
					fwd, na[0].src, na[0].dst, na[0].ethDst, v.Solicited(), v.Override(), v.Router(), v.Target(), tll, has, na[0].hopLimit, na[0].csumOK)
			}
			e, ok := n.NDP().Lookup(mustAddr("2001:db8::2"))
			if !ok || e.MAC != peer || e.State != neighbor.Stale {
				t.Errorf("neighbour entry %+v, %v; want STALE at %v", e, ok, peer)
			}
			// Another node's DAD for our address: we defend it.
			dad := buildNDP(&wire.NDPNeighborSolicitFields{Target: mustAddr("2001:db8::1")})
			n.s.handleNDP(ndpPI(n, "::", "ff02::1:ff00:1"), dad)
			synctest.Wait()
			na = sn.takeNDP(wire.ICMPv6NeighborAdvert)
			if len(na) != 1 {
				t.Fatalf("%d NA to a DAD probe, want 1", len(na))
			}
			v, _ = na[0].msg.NeighborAdvert()
			if na[0].dst != allNodes6 || v.Solicited() || !v.Override() {
				t.Errorf("defending NA to %v S=%v O=%v, want ff02::1 S=0 O=1", na[0].dst, v.Solicited(), v.Override())
			}
			if st := addrState(t, n, "2001:db8::1"); st != Preferred {
				t.Errorf("our address went %v after defending it", st)
			}
			// Not our address: no answer.
			n.s.handleNDP(ndpPI(n, "2001:db8::2", "ff02::1:ff00:9"),
				buildNDP(&wire.NDPNeighborSolicitFields{Target: mustAddr("2001:db8::9"), SourceLinkAddr: peer}))
			synctest.Wait()
			if na := sn.takeNDP(wire.ICMPv6NeighborAdvert); len(na) != 0 {
				t.Errorf("answered an NS for someone else's address")
			}
		})
	}
}

// TestNeighborSolicitSource: resolution NS go from the prompting packet's
// source if it is ours, else the NIC's best address, with an SLLAO; probes
// go unicast; with no usable address nothing is sent (RFC 4861 §7.2.2).
func TestNeighborSolicitSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "2001:db8::1/64", "2001:db8:1::1/64")
		n := h.nic
		target := mustAddr("2001:db8:1::9")

		n.sendNeighborSolicit(target, wire.MAC{}, nil, false)
		prompt := NewPacket(40)
		(&wire.IPv6Fields{Src: mustAddr("2001:db8::1"), Dst: target, NextHeader: 59}).Encode(prompt.Bytes())
		n.sendNeighborSolicit(target, wire.MAC{}, prompt, true)
		n.sendNeighborSolicit(target, peerMAC, nil, false)
		synctest.Wait()
		ns := sn.takeNDP(wire.ICMPv6NeighborSolicit)
		if len(ns) != 3 { // the switch floods the probe to the unknown peerMAC
			t.Fatalf("%d NS seen, want 3", len(ns))
		}
		want := []struct {
			src, dst string
			eth      wire.MAC
		}{
			{"2001:db8:1::1", "ff02::1:ff00:9", wire.IPv6MulticastMAC(mustAddr("ff02::1:ff00:9"))},
			{"2001:db8::1", "ff02::1:ff00:9", wire.IPv6MulticastMAC(mustAddr("ff02::1:ff00:9"))},
			{"2001:db8:1::1", "2001:db8:1::9", peerMAC},
		}
		for i, m := range ns {
			v, _ := m.msg.NeighborSolicit()
			mac, has, _ := ndpLinkAddr(v.Options(), wire.NDPOptSourceLinkAddr)
			if m.src != mustAddr(want[i].src) || m.dst != mustAddr(want[i].dst) || m.ethDst != want[i].eth ||
				v.Target() != target || !has || mac != n.MAC() || !m.csumOK {
				t.Errorf("NS %d: %v -> %v eth %v target %v SLLAO %v/%v, want %s -> %s eth %v",
					i, m.src, m.dst, m.ethDst, v.Target(), mac, has, want[i].src, want[i].dst, want[i].eth)
			}
		}

		// Without a usable address, no solicitation.
		h2 := newTestHostNIC(t, nw, Options{}, NICOptions{NoAutoconf: true}, emu.PortConfig{})
		h2.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::7/64")}) // tentative
		h2.nic.sendNeighborSolicit(target, wire.MAC{}, nil, false)
		synctest.Wait()
		for _, m := range sn.takeNDP(wire.ICMPv6NeighborSolicit) {
			if !m.src.IsUnspecified() { // its own DAD probe may show up
				t.Errorf("NS from %v sent with only a tentative address", m.src)
			}
		}
	})
}

// TestNeighborAdvertUpdatesCache: a solicited NA completes resolution; an
// NA that clears the router flag removes the default route through it.
func TestNeighborAdvertUpdatesCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		h := newTestHost(t, nw, Options{}, "2001:db8::1/64")
		n := h.nic
		gw := mustAddr("fe80::1")
		n.NDP().Resolve(gw, NewPacket(40))
		n.s.handleNDP(ndpPI(n, "fe80::1", "2001:db8::1"), buildNDP(&wire.NDPNeighborAdvertFields{
			Router: true, Solicited: true, Override: true, Target: gw, TargetLinkAddr: routerMAC}))
		e, ok := n.NDP().Lookup(gw)
		if !ok || e.State != neighbor.Reachable || e.MAC != routerMAC || !e.Router {
			t.Fatalf("entry %+v after solicited NA; want REACHABLE router at %v", e, routerMAC)
		}
		if err := n.s.Routes().Add(route.Route{Dst: defaultRoute6, Gateway: gw, NIC: n.Index(), Protocol: route.ProtoRA}); err != nil {
			t.Fatal(err)
		}
		n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), buildNDP(&wire.NDPNeighborAdvertFields{
			Override: true, Target: gw, TargetLinkAddr: routerMAC}))
		if _, ok := findRoute(n.s, "::/0", route.ProtoRA); ok {
			t.Error("default route through a former router remains")
		}
		// S=1 to a multicast destination is invalid (§7.1.2).
		before := n.s.stats.ICMP6.InErrors.Load()
		n.s.handleNDP(ndpPI(n, "fe80::2", "ff02::1"), buildNDP(&wire.NDPNeighborAdvertFields{
			Solicited: true, Target: mustAddr("fe80::2"), TargetLinkAddr: peerMAC}))
		if _, ok := n.NDP().Lookup(mustAddr("fe80::2")); ok || n.s.stats.ICMP6.InErrors.Load() != before+1 {
			t.Error("solicited NA to a multicast address was accepted")
		}
	})
}

func raMsg(f wire.NDPRouterAdvertFields) []byte { return buildNDP(&f) }

// TestRouterAdvert: a router advertisement installs a default route with
// an expiry, the on-link prefix route, a SLAAC address with lifetimes,
// the link parameters and DNS options; the route expires, the address is
// deprecated and then removed as the lifetimes run out.
func TestRouterAdvert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sn := newNDPHost(t, Options{})
		n := h.nic
		time.Sleep(3 * time.Second) // link-local DAD done, first RS out
		synctest.Wait()
		if rs := sn.takeNDP(wire.ICMPv6RouterSolicit); len(rs) != 1 {
			t.Fatalf("%d RS before the RA, want 1", len(rs))
		}
		start := time.Now()
		ra := raMsg(wire.NDPRouterAdvertFields{
			CurHopLimit: 32, RouterLifetime: 600, Other: true, ReachableTime: 10000, RetransTimer: 2000,
			SourceLinkAddr: routerMAC, MTU: 1400,
			Prefixes: []wire.NDPPrefixFields{
				{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800},
				{Prefix: netip.MustParsePrefix("2001:db8:2::/64"), OnLink: true, ValidLifetime: infiniteLifetime, PreferredLifetime: infiniteLifetime},
				{Prefix: netip.MustParsePrefix("2001:db8:3::/48"), Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800},
				{Prefix: netip.MustParsePrefix("fe80::/64"), OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800},
			},
			RDNSS: []netip.Addr{mustAddr("2001:db8::53")}, RDNSSLifetime: 1200,
			DNSSL: []string{"example.org"}, DNSSLLifetime: 1200,
		})
		n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), ra)

		def, ok := findRoute(n.s, "::/0", route.ProtoRA)
		if !ok || def.Gateway != mustAddr("fe80::1") || def.NIC != n.Index() || def.Metric != 1024 ||
			!def.Expires.Equal(start.Add(600*time.Second)) {
			t.Errorf("default route %v (expires %v), ok %v; want via fe80::1 metric 1024 expiring in 600 s", def, def.Expires, ok)
		}
		if r, ok := findRoute(n.s, "2001:db8:1::/64", route.ProtoRA); !ok || r.Gateway.IsValid() || !r.Expires.Equal(start.Add(time.Hour)) {
			t.Errorf("on-link route %v, %v; want one expiring in 1 h", r, ok)
		}
		if r, ok := findRoute(n.s, "2001:db8:2::/64", route.ProtoRA); !ok || !r.Expires.IsZero() {
			t.Errorf("infinite on-link route %v, %v; want one without expiry", r, ok)
		}
		if _, ok := findRoute(n.s, "2001:db8:3::/48", route.ProtoRA); ok {
			t.Error("prefix without the L flag became on-link")
		}
		e, ok := n.NDP().Lookup(mustAddr("fe80::1"))
		if !ok || e.MAC != routerMAC || !e.Router {
			t.Errorf("router neighbour entry %+v, %v", e, ok)
		}
		slaac := slaacAddr(mustAddr("2001:db8:1::"), n.MAC())
		if slaac != mustAddr("2001:db8:1:0:5054:ff:fe12:3456") {
			t.Fatalf("SLAAC address %v", slaac)
		}
		a, ok := n.address6(slaac)
		if !ok || a.Origin != OriginSLAAC || a.State != Tentative || a.Prefix.Bits() != 64 ||
			!a.ValidUntil.Equal(start.Add(time.Hour)) || !a.PreferredUntil.Equal(start.Add(30*time.Minute)) {
			t.Fatalf("SLAAC address %+v, %v", a, ok)
		}
		if _, ok := n.addressState(slaacAddr(mustAddr("2001:db8:3::"), n.MAC())); ok {
			t.Error("address formed from a /48")
		}
		if got := len(n.Addresses()); got != 2 {
			t.Errorf("%d addresses (%v), want the link-local and one SLAAC address", got, n.Addresses())
		}
		if got := n.IPv6MTU(); got != 1400 {
			t.Errorf("IPv6MTU %d, want 1400", got)
		}
		if m, o := n.RAFlags(); m || !o {
			t.Errorf("RAFlags M=%v O=%v, want M=0 O=1", m, o)
		}
		if got := n.CurHopLimit(); got != 32 {
			t.Errorf("CurHopLimit %d, want 32", got)
		}
		if got := n.NDP().ReachableTime(); got < 5*time.Second || got > 15*time.Second {
			t.Errorf("ReachableTime %v, want 0.5..1.5 × 10 s", got)
		}
		if got := n.DNSServers(); !slices.Equal(got, []netip.Addr{mustAddr("2001:db8::53")}) {
			t.Errorf("DNSServers %v", got)
		}
		if got := n.SearchDomains(); !slices.Equal(got, []string{"example.org"}) {
			t.Errorf("SearchDomains %v", got)
		}

		// RS stop after an RA.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if rs := sn.takeNDP(wire.ICMPv6RouterSolicit); len(rs) != 0 {
			t.Errorf("%d RS after the RA", len(rs))
		}
		if st := addrState(t, n, slaac.String()); st != Preferred {
			t.Errorf("SLAAC address %v after DAD (RetransTimer 2 s)", st)
		}
		if _, err := n.s.FindRoute(0, netip.Addr{}, mustAddr("2001:db8:99::1")); err != nil {
			t.Errorf("no route off-link through the default router: %v", err)
		}

		time.Sleep(start.Add(601 * time.Second).Sub(time.Now()))
		synctest.Wait()
		if _, ok := findRoute(n.s, "::/0", route.ProtoRA); ok {
			t.Error("default route outlived its lifetime")
		}
		if got := n.DNSServers(); len(got) != 1 {
			t.Errorf("DNSServers %v before their lifetime ran out", got)
		}
		time.Sleep(start.Add(1801 * time.Second).Sub(time.Now()))
		synctest.Wait()
		if got, got2 := n.DNSServers(), n.SearchDomains(); len(got) != 0 || len(got2) != 0 {
			t.Errorf("DNSServers %v, SearchDomains %v after their lifetime", got, got2)
		}
		if st := addrState(t, n, slaac.String()); st != Deprecated {
			t.Errorf("SLAAC address %v after its preferred lifetime, want deprecated", st)
		}
		time.Sleep(start.Add(3601 * time.Second).Sub(time.Now()))
		synctest.Wait()
		if _, ok := n.addressState(slaac); ok {
			t.Error("SLAAC address outlived its valid lifetime")
		}
		if _, ok := findRoute(n.s, "2001:db8:1::/64", route.ProtoRA); ok {
			t.Error("on-link route outlived its valid lifetime")
		}
		if _, ok := findRoute(n.s, "2001:db8:2::/64", route.ProtoRA); !ok {
			t.Error("infinite on-link route went")
		}
		// Router lifetime 0 removes a default route at once.
		n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), raMsg(wire.NDPRouterAdvertFields{RouterLifetime: 600}))
		if _, ok := findRoute(n.s, "::/0", route.ProtoRA); !ok {
			t.Fatal("no default route")
		}
		n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), raMsg(wire.NDPRouterAdvertFields{}))
		if _, ok := findRoute(n.s, "::/0", route.ProtoRA); ok {
			t.Error("router lifetime 0 left the default route")
		}
	})
}

// TestRATwoHourRule: RFC 4862 §5.5.3 (e) — an advertisement may not cut a
// SLAAC address's valid lifetime below two hours.
func TestRATwoHourRule(t *testing.T) {
	const hour = 3600
	for _, c := range []struct {
		name                string
		first, second       uint32 // valid lifetimes, seconds
		wantRemaining       time.Duration
		secondPref, wantPfd uint32
	}{
		{"longer is taken", 3 * hour, 5 * hour, 5 * time.Hour, 0, 0},
		{"over two hours is taken", 10 * hour, 3 * hour, 3 * time.Hour, 0, 0},
		{"short cut to two hours", 10 * hour, 60, 2 * time.Hour, 0, 0},
		{"remaining under two hours kept", hour, 60, time.Hour, 0, 0},
		{"greater than remaining taken", hour, 90 * 60, 90 * time.Minute, 0, 0},
		{"infinite taken", hour, infiniteLifetime, 0, 0, 0},
		{"zero cut to two hours", 10 * hour, 0, 2 * time.Hour, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := newTestNet(t, 1)
				h := newTestHostNIC(t, nw, Options{}, NICOptions{NoDAD: true}, emu.PortConfig{})
				n := h.nic
				pfx := netip.MustParsePrefix("2001:db8:7::/64")
				send := func(valid uint32) {
					n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), raMsg(wire.NDPRouterAdvertFields{Prefixes: []wire.NDPPrefixFields{
						{Prefix: pfx, Autonomous: true, ValidLifetime: valid, PreferredLifetime: 0}}}))
				}
				send(c.first)
				addr := slaacAddr(pfx.Addr(), n.MAC())
				if _, ok := n.address6(addr); !ok {
					t.Fatal("no SLAAC address")
				}
				time.Sleep(time.Second)
				send(c.second)
				a, ok := n.address6(addr)
				if !ok {
					t.Fatal("SLAAC address gone")
				}
				var got time.Duration
				if !a.ValidUntil.IsZero() {
					got = a.ValidUntil.Sub(time.Now())
				}
				want := c.wantRemaining
				if c.name == "remaining under two hours kept" {
					want -= time.Second
				}
				if got != want {
					t.Errorf("remaining valid lifetime %v, want %v", got, want)
				}
				if a.State != Deprecated {
					t.Errorf("state %v with preferred lifetime 0, want deprecated", a.State)
				}
			})
		})
	}
}

// TestRAIgnored: invalid advertisements (RFC 4861 §6.1.2) and any
// advertisement on a router change nothing.
func TestRAIgnored(t *testing.T) {
	good := raMsg(wire.NDPRouterAdvertFields{RouterLifetime: 1800, Prefixes: []wire.NDPPrefixFields{
		{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800}}})
	badCode := slices.Clone(good)
	badCode[1] = 1
	zeroOpt := append(slices.Clone(good), 1, 0, 0, 0, 0, 0, 0, 0)
	for _, c := range []struct {
		name  string
		msg   []byte
		src   string
		hop   uint8
		fwd   bool
		count bool
	}{
		{"hop limit 254", good, "fe80::1", 254, false, true},
		{"global source", good, "2001:db8::1", 255, false, true},
		{"code 1", badCode, "fe80::1", 255, false, true},
		{"zero-length option", zeroOpt, "fe80::1", 255, false, true},
		{"truncated", good[:12], "fe80::1", 255, false, true},
		{"router", good, "fe80::1", 255, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			nw := newTestNet(t, 1)
			h := newTestHost(t, nw, Options{IPv6Forwarding: c.fwd})
			n := h.nic
			pi := ndpPI(n, c.src, "ff02::1")
			pi.TTL = c.hop
			before := n.s.stats.ICMP6.InErrors.Load()
			n.s.handleNDP(pi, c.msg)
			if _, ok := findRoute(n.s, "::/0", route.ProtoRA); ok {
				t.Error("default route installed")
			}
			if _, ok := findRoute(n.s, "2001:db8:1::/64", route.ProtoRA); ok {
				t.Error("prefix route installed")
			}
			if got := n.s.stats.ICMP6.InErrors.Load() - before; (got == 1) != c.count {
				t.Errorf("InErrors went up by %d", got)
			}
		})
	}
}

// TestRedirect: only the current first hop for a destination may redirect
// it (RFC 4861 §8.1); the redirect installs a host route via the target,
// or on-link when the target is the destination (§8.3).
func TestRedirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		h := newTestHost(t, nw, Options{}, "2001:db8::1/64")
		n := h.nic
		if err := n.s.Routes().Add(route.Route{Dst: defaultRoute6, Gateway: mustAddr("fe80::1"), NIC: n.Index()}); err != nil {
			t.Fatal(err)
		}
		dst := mustAddr("2001:db8:9::5")
		redirect := func(from string, target netip.Addr) {
			n.s.handleNDP(ndpPI(n, from, "2001:db8::1"), buildNDP(&wire.NDPRedirectFields{
				Target: target, Destination: dst, TargetLinkAddr: peerMAC}))
		}
		redirect("fe80::3", mustAddr("fe80::2")) // not the first hop
		if r, _ := n.s.Routes().Lookup(dst); r.Gateway != mustAddr("fe80::1") {
			t.Fatalf("redirect from a non-gateway accepted: %v", r)
		}
		redirect("fe80::1", mustAddr("2001:db8:9::6")) // target neither link-local nor the destination
		if r, _ := n.s.Routes().Lookup(dst); r.Gateway != mustAddr("fe80::1") {
			t.Fatalf("redirect to a global target accepted: %v", r)
		}
		redirect("fe80::1", mustAddr("fe80::2"))
		r, _ := n.s.Routes().Lookup(dst)
		if r.Dst != netip.PrefixFrom(dst, 128) || r.Gateway != mustAddr("fe80::2") || r.Protocol != route.ProtoRedirect || r.Expires.IsZero() {
			t.Fatalf("after redirect: %v", r)
		}
		e, ok := n.NDP().Lookup(mustAddr("fe80::2"))
		if !ok || e.MAC != peerMAC || !e.Router {
			t.Errorf("redirect target entry %+v, %v", e, ok)
		}
		// Now fe80::2 is the first hop; fe80::1 may no longer redirect.
		redirect("fe80::1", dst)
		if r, _ := n.s.Routes().Lookup(dst); r.Gateway != mustAddr("fe80::2") {
			t.Errorf("old gateway redirected: %v", r)
		}
		redirect("fe80::2", dst) // the destination is on-link
		r, _ = n.s.Routes().Lookup(dst)
		if r.Gateway.IsValid() || r.Protocol != route.ProtoRedirect || r.NIC != n.Index() {
			t.Errorf("on-link redirect: %v", r)
		}
		time.Sleep(redirectLifetime + time.Second)
		synctest.Wait()
		if r, _ := n.s.Routes().Lookup(dst); r.Protocol == route.ProtoRedirect {
			t.Errorf("redirect route did not expire: %v", r)
		}
	})
}

// TestNDPMalformed: each malformed message is dropped and counted, and
// changes no state.
func TestNDPMalformed(t *testing.T) {
	target := mustAddr("2001:db8::1")
	ns := buildNDP(&wire.NDPNeighborSolicitFields{Target: target, SourceLinkAddr: peerMAC})
	na := buildNDP(&wire.NDPNeighborAdvertFields{Target: mustAddr("2001:db8::2"), Override: true, TargetLinkAddr: peerMAC})
	mcastNA := buildNDP(&wire.NDPNeighborAdvertFields{Target: mustAddr("ff02::1"), TargetLinkAddr: peerMAC})
	rs := buildNDP(&wire.NDPRouterSolicitFields{SourceLinkAddr: peerMAC})
	zeroLen := slices.Clone(ns)
	zeroLen[25] = 0
	longOpt := slices.Clone(ns)
	longOpt[25] = 2
	for _, c := range []struct {
		name     string
		msg      []byte
		src, dst string
		hop      uint8
	}{
		{"NS hop 64", ns, "2001:db8::2", "ff02::1:ff00:1", 64},
		{"NS short", ns[:20], "2001:db8::2", "ff02::1:ff00:1", 255},
		{"NS zero-length option", zeroLen, "2001:db8::2", "ff02::1:ff00:1", 255},
		{"NS option past the end", longOpt, "2001:db8::2", "ff02::1:ff00:1", 255},
		{"NS from :: with SLLAO", ns, "::", "ff02::1:ff00:1", 255},
		{"NS from :: to unicast", buildNDP(&wire.NDPNeighborSolicitFields{Target: target}), "::", "2001:db8::1", 255},
		{"NS multicast target", buildNDP(&wire.NDPNeighborSolicitFields{Target: mustAddr("ff02::1")}), "2001:db8::2", "ff02::1", 255},
		{"NA multicast target", mcastNA, "2001:db8::2", "2001:db8::1", 255},
		{"NA hop 1", na, "2001:db8::2", "2001:db8::1", 1},
		{"RS from :: with SLLAO", rs, "::", "ff02::2", 255},
		{"redirect short", buildNDP(&wire.NDPRedirectFields{Target: mustAddr("fe80::2"), Destination: target})[:39], "fe80::1", "2001:db8::1", 255},
		{"empty", nil, "2001:db8::2", "2001:db8::1", 255},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := newTestNet(t, 1)
				sn := newWirePort(t, nw)
				h := newTestHost(t, nw, Options{}, "2001:db8::1/64")
				n := h.nic
				pi := ndpPI(n, c.src, c.dst)
				pi.TTL = c.hop
				before := n.s.stats.ICMP6.InErrors.Load()
				n.s.handleNDP(pi, c.msg)
				synctest.Wait()
				if got := n.s.stats.ICMP6.InErrors.Load() - before; got != 1 {
					t.Errorf("InErrors +%d, want +1", got)
				}
				if n.NDP().Len() != 0 {
					t.Errorf("neighbour entries %v", n.NDP().Entries())
				}
				if len(sn.takeNDP(wire.ICMPv6NeighborAdvert)) != 0 {
					t.Error("answered")
				}
				if st := addrState(t, n, "2001:db8::1"); st != Preferred {
					t.Errorf("address went %v", st)
				}
			})
		})
	}
}

// FuzzNDPInput feeds arbitrary NDP messages to a host with DAD running;
// nothing may panic.
func FuzzNDPInput(f *testing.F) {
	f.Add(buildNDP(&wire.NDPNeighborSolicitFields{Target: mustAddr("2001:db8::1"), SourceLinkAddr: peerMAC}), []byte{0xfe, 0x80, 15: 1}, uint8(255))
	f.Add(buildNDP(&wire.NDPNeighborAdvertFields{Target: mustAddr("2001:db8::1"), TargetLinkAddr: peerMAC}), []byte{0xfe, 0x80, 15: 1}, uint8(255))
	f.Add(raMsg(wire.NDPRouterAdvertFields{RouterLifetime: 1, SourceLinkAddr: routerMAC, MTU: 1280,
		Prefixes:      []wire.NDPPrefixFields{{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true, ValidLifetime: 9, PreferredLifetime: 3}},
		RDNSS:         []netip.Addr{mustAddr("2001:db8::53")},
		RDNSSLifetime: 9, DNSSL: []string{"a.b"}, DNSSLLifetime: 9}), []byte{0xfe, 0x80, 15: 1}, uint8(255))
	f.Add(buildNDP(&wire.NDPRedirectFields{Target: mustAddr("fe80::2"), Destination: mustAddr("2001:db8:9::1"), TargetLinkAddr: peerMAC, Redirected: make([]byte, 48)}), []byte{0xfe, 0x80, 15: 1}, uint8(255))
	f.Add(buildNDP(&wire.NDPRouterSolicitFields{}), make([]byte, 16), uint8(255))
	nw := newTestNet(f, 1)
	h := newTestHostNIC(f, nw, Options{}, NICOptions{}, emu.PortConfig{}, "2001:db8::1/64")
	n := h.nic
	n.s.Routes().Add(route.Route{Dst: defaultRoute6, Gateway: mustAddr("fe80::1"), NIC: n.Index(), OnLink: true})
	f.Fuzz(func(t *testing.T, msg []byte, src []byte, hop uint8) {
		if len(src) < 16 {
			return
		}
		pi := &PacketInfo{NIC: n, Src: netip.AddrFrom16([16]byte(src[:16])), Dst: allNodes6, TTL: hop}
		n.s.handleNDP(pi, msg)
		n.DNSServers()
		n.SearchDomains()
	})
}

// TestDADOnLinkUp: bringing the link down and up again runs DAD anew for
// every address (RFC 4862 §5.4) and router solicitation after it; an
// address added with NoDAD stays preferred.
func TestDADOnLinkUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sn := newNDPHost(t, Options{}, "2001:db8::1/64")
		n := h.nic
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::9/64"), NoDAD: true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		sn.takeNDP(wire.ICMPv6NeighborSolicit)
		sn.takeNDP(wire.ICMPv6RouterSolicit)
		n.SetUp(false)
		n.SetUp(true)
		for _, a := range []string{"2001:db8::1", LinkLocalAddress(n.MAC()).String()} {
			if st := addrState(t, n, a); st != Tentative {
				t.Errorf("%s is %v right after link up, want tentative", a, st)
			}
		}
		if st := addrState(t, n, "2001:db8::9"); st != Preferred {
			t.Errorf("NoDAD address is %v after link up", st)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if ns := sn.takeNDP(wire.ICMPv6NeighborSolicit); len(ns) != 2 {
			t.Errorf("%d DAD probes after link up, want 2", len(ns))
		}
		for _, a := range []string{"2001:db8::1", LinkLocalAddress(n.MAC()).String()} {
			if st := addrState(t, n, a); st != Preferred {
				t.Errorf("%s is %v after DAD, want preferred", a, st)
			}
		}
		if rs := sn.takeNDP(wire.ICMPv6RouterSolicit); len(rs) != 1 {
			t.Errorf("%d RS after the new DAD, want 1 so far", len(rs))
		}
	})
}

// TestRAOptionEdges: an MTU outside 1280..link MTU is ignored; a prefix
// whose preferred lifetime exceeds its valid one is ignored (RFC 4862
// §5.5.3 (c)); valid lifetime 0 removes an on-link prefix; RDNSS lifetime
// 0 removes a server (RFC 8106 §5.1); a router (forwarding) never solicits.
func TestRAOptionEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		sn := newWirePort(t, nw)
		h := newTestHostNIC(t, nw, Options{}, NICOptions{NoDAD: true}, emu.PortConfig{})
		n := h.nic
		ra := func(f wire.NDPRouterAdvertFields) { n.s.handleNDP(ndpPI(n, "fe80::1", "ff02::1"), raMsg(f)) }
		link := n.MTU()
		for _, mtu := range []uint32{1000, uint32(link) + 1} {
			ra(wire.NDPRouterAdvertFields{MTU: mtu})
			if got := n.IPv6MTU(); got != link {
				t.Errorf("RA MTU %d: IPv6MTU %d, want the link's %d", mtu, got, link)
			}
		}
		ra(wire.NDPRouterAdvertFields{MTU: 1280})
		if got := n.IPv6MTU(); got != 1280 {
			t.Errorf("RA MTU 1280: IPv6MTU %d", got)
		}
		pfx := netip.MustParsePrefix("2001:db8:4::/64")
		ra(wire.NDPRouterAdvertFields{Prefixes: []wire.NDPPrefixFields{
			{Prefix: pfx, OnLink: true, Autonomous: true, ValidLifetime: 100, PreferredLifetime: 200}}})
		if _, ok := findRoute(n.s, pfx.String(), route.ProtoRA); ok {
			t.Error("prefix with preferred > valid made on-link")
		}
		if _, ok := n.addressState(slaacAddr(pfx.Addr(), n.MAC())); ok {
			t.Error("prefix with preferred > valid made an address")
		}
		ra(wire.NDPRouterAdvertFields{Prefixes: []wire.NDPPrefixFields{{Prefix: pfx, OnLink: true, ValidLifetime: 100, PreferredLifetime: 50}}})
		if _, ok := findRoute(n.s, pfx.String(), route.ProtoRA); !ok {
			t.Fatal("no on-link route")
		}
		ra(wire.NDPRouterAdvertFields{Prefixes: []wire.NDPPrefixFields{{Prefix: pfx, OnLink: true}}})
		if _, ok := findRoute(n.s, pfx.String(), route.ProtoRA); ok {
			t.Error("valid lifetime 0 left the on-link route")
		}
		dns1, dns2 := mustAddr("2001:db8::53"), mustAddr("2001:db8::54")
		ra(wire.NDPRouterAdvertFields{RDNSS: []netip.Addr{dns1, dns2}, RDNSSLifetime: 300})
		ra(wire.NDPRouterAdvertFields{RDNSS: []netip.Addr{dns1}, RDNSSLifetime: 0})
		if got := n.DNSServers(); !slices.Equal(got, []netip.Addr{dns2}) {
			t.Errorf("DNSServers %v after removing %v", got, dns1)
		}

		// A router does not solicit.
		r := newTestHostNIC(t, nw, Options{IPv6Forwarding: true}, NICOptions{}, emu.PortConfig{})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		for _, m := range sn.takeNDP(wire.ICMPv6RouterSolicit) {
			if m.ethSrc == r.nic.MAC() {
				t.Errorf("router sent an RS from %v", m.src)
			}
		}
		if st := addrState(t, r.nic, LinkLocalAddress(r.nic.MAC()).String()); st != Preferred {
			t.Errorf("router's link-local is %v", st)
		}
	})
}

// TestDADTransmits: SetDADTransmits(3) sends three probes RetransTimer
// apart before the address is preferred; 0 makes it preferred at once.
func TestDADTransmits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		sn := newWirePort(t, nw)
		h := newTestHostNIC(t, nw, Options{}, NICOptions{NoAutoconf: true}, emu.PortConfig{})
		n := h.nic
		n.SetDADTransmits(3)
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::1/64")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond) // delay < 1 s, then probes at +0, +1, +2 s
		synctest.Wait()
		ns := sn.takeNDP(wire.ICMPv6NeighborSolicit)
		if len(ns) != 3 {
			t.Fatalf("%d probes, want 3", len(ns))
		}
		for i := 1; i < len(ns); i++ {
			if d := ns[i].at.Sub(ns[i-1].at); d != time.Second {
				t.Errorf("probes %d and %d %v apart, want 1 s", i-1, i, d)
			}
		}
		st := addrState(t, n, "2001:db8::1")
		if done := time.Since(ns[2].at) >= time.Second; (st == Preferred) != done {
			t.Errorf("state %v %v after the last probe", st, time.Since(ns[2].at))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := addrState(t, n, "2001:db8::1"); st != Preferred {
			t.Errorf("state %v after three probes", st)
		}
		n.SetDADTransmits(0)
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::2/64")}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := addrState(t, n, "2001:db8::2"); st != Preferred {
			t.Errorf("state %v with DAD off", st)
		}
		if ns := sn.takeNDP(wire.ICMPv6NeighborSolicit); len(ns) != 0 {
			t.Errorf("%d probes with DAD off", len(ns))
		}
	})
}
