package stack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Membership reports as they leave the stack: a wirePort on the same
// emulated switch (which floods multicast) sees every frame.

type mcastSeen struct {
	at       time.Time
	ethDst   wire.MAC
	src, dst netip.Addr
	ttl      uint8
	ra       bool   // Router Alert present (IPv4 option or IPv6 hop-by-hop)
	igmp     []byte // IGMP message, or
	mld      []byte // MLD message (ICMPv6 types 130–132, 143)
}

// takeMembership returns the IGMP and MLD messages recorded so far and
// forgets every recorded frame.
func (l *frameLog) takeMembership() []mcastSeen {
	var out []mcastSeen
	for _, f := range l.take(nil) {
		if s, ok := parseMembership(f.eth); ok {
			s.at = f.at
			out = append(out, s)
		}
	}
	return out
}

// parseMembership decodes an IGMP message (in an IPv4 packet with a valid
// header checksum) or an MLD message (valid ICMPv6 checksum) from a frame.
func parseMembership(e wire.Ethernet) (mcastSeen, bool) {
	s := mcastSeen{ethDst: e.Dst()}
	switch e.EtherType() {
	case wire.EtherTypeIPv4:
		h, err := wire.ParseIPv4(e.Payload())
		if err != nil || h.Protocol() != wire.IPProtoIGMP || !h.ChecksumValid() {
			return s, false
		}
		it := h.OptionIter()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if o.Type() == wire.IPv4OptRouterAlert && o.RouterAlertValue() == 0 {
				s.ra = true
			}
		}
		s.src, s.dst, s.ttl, s.igmp = h.Src(), h.Dst(), h.TTL(), h.Payload()
	case wire.EtherTypeIPv6:
		h, err := wire.ParseIPv6(e.Payload())
		if err != nil {
			return s, false
		}
		it := h.ExtHeaders()
		for x, ok := it.Next(); ok; x, ok = it.Next() {
			if x.Type != wire.IPProtoHopByHop {
				continue
			}
			if o, err := wire.ParseIPv6Options(x.Raw); err == nil {
				v, ok := o.RouterAlert()
				s.ra = ok && v == wire.IPv6RouterAlertMLD
			}
		}
		proto, off := it.Upper()
		if it.Err() != nil || proto != wire.IPProtoICMPv6 {
			return s, false
		}
		m, err := wire.ParseICMPv6(h.Payload()[off:])
		if err != nil || !m.ChecksumValid(h.Src(), h.Dst()) {
			return s, false
		}
		switch m.Type() {
		case wire.ICMPv6MLDQuery, wire.ICMPv6MLDReport, wire.ICMPv6MLDDone, wire.ICMPv6MLDv2Report:
		default:
			return s, false
		}
		s.src, s.dst, s.ttl, s.mld = h.Src(), h.Dst(), h.HopLimit(), m
	default:
		return s, false
	}
	return s, true
}

// mldRecords returns the (type, group) records of an MLDv2 report.
func mldRecords(t testing.TB, msg []byte) []mldRec {
	t.Helper()
	m, _ := wire.ParseICMPv6(msg)
	r, ok := m.MLDv2Report()
	if !ok {
		t.Fatalf("not an MLDv2 report: %x", msg)
	}
	var out []mldRec
	it := r.Records()
	for rec, ok := it.Next(); ok; rec, ok = it.Next() {
		if rec.NumSources() != 0 {
			t.Errorf("record with %d sources", rec.NumSources())
		}
		out = append(out, mldRec{rec.Type(), rec.MulticastAddr()})
	}
	return out
}

type mldRec struct {
	typ uint8
	g   netip.Addr
}

// igmpRecords returns the (type, group) records of an IGMPv3 report.
func igmpRecords(t testing.TB, msg []byte) []mldRec {
	t.Helper()
	m, err := wire.ParseIGMP(msg)
	if err != nil || m.Type() != wire.IGMPv3Report || !m.ChecksumValid() {
		t.Fatalf("not a valid IGMPv3 report: %x (%v)", msg, err)
	}
	var out []mldRec
	it := m.GroupRecords()
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		if r.NumSources() != 0 {
			t.Errorf("record with %d sources", r.NumSources())
		}
		out = append(out, mldRec{r.RecordType(), r.Group()})
	}
	return out
}

// checkMLDFrame checks what every MLD message needs (RFC 3810 §5, RFC
// 2710 §3): hop limit 1, a Router Alert, a link-local or unspecified
// source, and the Ethernet group address of the destination.
func checkMLDFrame(t testing.TB, s mcastSeen) {
	t.Helper()
	if s.ttl != 1 || !s.ra || !(s.src.IsLinkLocalUnicast() || s.src.IsUnspecified()) || s.ethDst != wire.IPv6MulticastMAC(s.dst) {
		t.Errorf("MLD frame from %v to %v (%v) hop limit %d, router alert %v", s.src, s.dst, s.ethDst, s.ttl, s.ra)
	}
}

func checkIGMPFrame(t testing.TB, s mcastSeen, src netip.Addr) {
	t.Helper()
	if s.ttl != 1 || !s.ra || s.src != src || s.ethDst != wire.IPv4MulticastMAC(s.dst) {
		t.Errorf("IGMP frame from %v to %v (%v) TTL %d, router alert %v", s.src, s.dst, s.ethDst, s.ttl, s.ra)
	}
}

func TestMLDv2JoinLeaveOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 11)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "fe80::1/64", "2001:db8::1/64")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		// At link-up: TO_EX for the solicited-node group of each address
		// (both are ff02::1:ff00:1), twice.
		sol := wire.IPv6SolicitedNode(mustAddr("2001:db8::1"))
		got := sn.takeMembership()
		if len(got) != 2 {
			t.Fatalf("%d MLD messages at link-up, want 2", len(got))
		}
		for _, s := range got {
			checkMLDFrame(t, s)
			if r := mldRecords(t, s.mld); s.dst != mldv2Routers || len(r) != 1 || r[0] != (mldRec{recChangeToExclude, sol}) {
				t.Errorf("link-up report to %v: %v", s.dst, r)
			}
		}

		g := mustAddr("ff05::1:3")
		start := time.Now()
		h.nic.JoinGroup(g)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 2 || !got[0].at.Equal(start) || !within(got[1].at, start, time.Second) {
			t.Fatalf("join: %d reports, want one at once and one within 1 s", len(got))
		}
		for _, s := range got {
			checkMLDFrame(t, s)
			if s.src != mustAddr("fe80::1") {
				t.Errorf("source %v, want the link-local fe80::1", s.src)
			}
			if r := mldRecords(t, s.mld); len(r) != 1 || r[0] != (mldRec{recChangeToExclude, g}) {
				t.Errorf("join records %v", r)
			}
		}
		h.nic.JoinGroup(mustAddr("ff02::1"))
		h.nic.JoinGroup(mustAddr("ff01::1:2"))
		h.nic.LeaveGroup(g)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 2 {
			t.Fatalf("leave: %d reports, want 2 (nothing for ff02::1 or ff01::1:2)", len(got))
		}
		for _, s := range got {
			if r := mldRecords(t, s.mld); len(r) != 1 || r[0] != (mldRec{recChangeToInclude, g}) {
				t.Errorf("leave records %v", r)
			}
		}
	})
}

// mldQueryFrame is an MLD query as a router sends it: from a link-local
// address to ff02::1, hop limit 1, with a Router Alert.
func mldQueryFrame(src netip.Addr, msg []byte) []byte {
	hbh := wire.IPv6OptionsFields{NextHeader: wire.IPProtoICMPv6, RouterAlert: true}
	eth := wire.EthernetFields{Dst: wire.IPv6MulticastMAC(allNodes6), Src: wire.MAC{2, 0, 0, 0, 0, 0x99}, EtherType: wire.EtherTypeIPv6}
	ip := wire.IPv6Fields{NextHeader: wire.IPProtoHopByHop, HopLimit: 1, Src: src, Dst: allNodes6, PayloadLen: hbh.Len() + len(msg)}
	b := make([]byte, eth.Len()+ip.Len()+hbh.Len()+len(msg))
	eth.Encode(b)
	ip.Encode(b[eth.Len():])
	hbh.Encode(b[eth.Len()+ip.Len():])
	copy(b[eth.Len()+ip.Len()+hbh.Len():], msg)
	return b
}

func TestMLDQueriesOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 12)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "fe80::1/64")
		g1, g2 := mustAddr("ff05::1:3"), mustAddr("ff0e::101")
		h.nic.JoinGroup(g1)
		h.nic.JoinGroup(g2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		sn.takeMembership()

		// MLDv2 general query, 5 s: one Current-State Report listing
		// every reported group as MODE_IS_EXCLUDE {} (RFC 3810 §6.2).
		ll := mustAddr("fe80::99")
		start := time.Now()
		sn.send(t, mldQueryFrame(ll, mldv2Query("", 5000, 2, 125, ll)))
		time.Sleep(6 * time.Second)
		synctest.Wait()
		got := sn.takeMembership()
		if len(got) != 1 || !within(got[0].at, start, 5*time.Second) {
			t.Fatalf("%d answers to a general query, want 1 within 5 s", len(got))
		}
		checkMLDFrame(t, got[0])
		want := []mldRec{
			{recModeIsExclude, wire.IPv6SolicitedNode(mustAddr("fe80::1"))},
			{recModeIsExclude, g1},
			{recModeIsExclude, g2},
		}
		if r := mldRecords(t, got[0].mld); len(r) != len(want) || r[0] != want[0] || r[1] != want[1] || r[2] != want[2] {
			t.Errorf("current-state records %v, want %v", r, want)
		}

		// Group-specific query for g2: a report of g2 only.
		sn.send(t, mldQueryFrame(ll, mldv2Query("ff0e::101", 1000, 2, 125, ll)))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 1 {
			t.Fatalf("%d answers to a group query", len(got))
		}
		if r := mldRecords(t, got[0].mld); len(r) != 1 || r[0] != (mldRec{recModeIsExclude, g2}) {
			t.Errorf("group query answer %v", r)
		}

		// An MLDv1 querier: MLDv1 reports, one per group, to the group.
		sn.send(t, mldQueryFrame(ll, mldv1Query("", 3000, ll)))
		time.Sleep(4 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		seen := map[netip.Addr]bool{}
		for _, s := range got {
			checkMLDFrame(t, s)
			m, _ := wire.ParseICMPv6(s.mld)
			v, ok := m.MLD()
			if m.Type() != wire.ICMPv6MLDReport || !ok || v.MulticastAddr() != s.dst {
				t.Errorf("MLDv1 mode sent type %d to %v", m.Type(), s.dst)
				continue
			}
			seen[s.dst] = true
		}
		if len(got) != 3 || !seen[g1] || !seen[g2] {
			t.Errorf("MLDv1 answers %v", seen)
		}
		if c := h.s.stats.ICMP6.OutGroupMembResponses.Load(); c != 3 {
			t.Errorf("Icmp6OutGroupMembResponses %d, want 3", c)
		}
		// Leaving in MLDv1 mode: one Done to all-routers.
		h.nic.LeaveGroup(g1)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 1 || got[0].dst != allRouters6 {
			t.Fatalf("MLDv1 leave: %d messages", len(got))
		}
		if m, _ := wire.ParseICMPv6(got[0].mld); m.Type() != wire.ICMPv6MLDDone {
			t.Errorf("leave sent type %d", m.Type())
		}
	})
}

// igmpQueryFrame is an IGMP query from querier4 to dst with TTL 1 and a
// Router Alert, as a querier sends it.
func igmpQueryFrame(dst netip.Addr, msg []byte) []byte {
	eth := wire.EthernetFields{Dst: wire.IPv4MulticastMAC(dst), Src: wire.MAC{2, 0, 0, 0, 0, 0x98}, EtherType: wire.EtherTypeIPv4}
	ip := wire.IPv4Fields{TTL: 1, Protocol: wire.IPProtoIGMP, Src: querier4, Dst: dst,
		Options: wire.AppendIPv4RouterAlert(nil), PayloadLen: len(msg)}
	b := make([]byte, eth.Len()+ip.Len()+len(msg))
	eth.Encode(b)
	ip.Encode(b[eth.Len():])
	copy(b[eth.Len()+ip.Len():], msg)
	return b
}

func TestIGMPv3OnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 13)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		us := mustAddr("10.0.0.1")
		g1, g2 := mustAddr("239.1.2.3"), mustAddr("224.0.0.251")
		start := time.Now()
		h.nic.JoinGroup(g1)
		h.nic.JoinGroup(allNodes4) // never reported
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := sn.takeMembership()
		if len(got) != 2 || !got[0].at.Equal(start) || !within(got[1].at, start, time.Second) {
			t.Fatalf("join: %d reports, want one at once and one within 1 s", len(got))
		}
		for _, s := range got {
			checkIGMPFrame(t, s, us)
			if r := igmpRecords(t, s.igmp); s.dst != igmpv3Routers || len(r) != 1 || r[0] != (mldRec{recChangeToExclude, g1}) {
				t.Errorf("join report to %v: %v", s.dst, r)
			}
		}
		h.nic.JoinGroup(g2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		sn.takeMembership()

		// General query (max 10 s, QRV 2, QQIC 125): one report of both
		// groups as MODE_IS_EXCLUDE {} (RFC 3376 §5.2).
		start = time.Now()
		sn.send(t, igmpQueryFrame(allNodes4, igmpv3Query("", 100, 2, 125)))
		time.Sleep(11 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 1 || !within(got[0].at, start, 10*time.Second) {
			t.Fatalf("%d answers to a general query, want 1 within 10 s", len(got))
		}
		checkIGMPFrame(t, got[0], us)
		want := []mldRec{{recModeIsExclude, g2}, {recModeIsExclude, g1}}
		if r := igmpRecords(t, got[0].igmp); len(r) != 2 || r[0] != want[0] || r[1] != want[1] {
			t.Errorf("current-state records %v, want %v", r, want)
		}

		// Leave: TO_IN {} twice.
		h.nic.LeaveGroup(g1)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 2 {
			t.Fatalf("leave: %d reports", len(got))
		}
		for _, s := range got {
			if r := igmpRecords(t, s.igmp); len(r) != 1 || r[0] != (mldRec{recChangeToInclude, g1}) {
				t.Errorf("leave records %v", r)
			}
		}
	})
}

func TestIGMPv2OnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 14)
		sn := newWirePort(t, nw)
		other := newTestHost(t, nw, Options{}, "10.0.0.2/24")
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		us := mustAddr("10.0.0.1")
		g1, g2 := mustAddr("239.1.1.1"), mustAddr("239.2.2.2")
		h.nic.JoinGroup(g1)
		h.nic.JoinGroup(g2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		sn.takeMembership()

		// An IGMPv2 general query (max 10 s): a v2 report per group, to
		// the group (RFC 2236 §3).
		sn.send(t, igmpQueryFrame(allNodes4, igmpv2Query("", 100)))
		time.Sleep(11 * time.Second)
		synctest.Wait()
		got := sn.takeMembership()
		seen := map[netip.Addr]bool{}
		for _, s := range got {
			checkIGMPFrame(t, s, us)
			m, err := wire.ParseIGMP(s.igmp)
			if err != nil || m.Type() != wire.IGMPv2Report || !m.ChecksumValid() || m.Group() != s.dst {
				t.Errorf("v2 mode sent %x to %v", s.igmp, s.dst)
				continue
			}
			seen[s.dst] = true
		}
		if len(got) != 2 || !seen[g1] || !seen[g2] {
			t.Fatalf("v2 answers %v", seen)
		}

		// Another member answers first: our report for g1 is suppressed.
		other.nic.JoinGroup(g1) // v3 report, which does not suppress
		time.Sleep(2 * time.Second)
		sn.send(t, igmpQueryFrame(g1, igmpv2Query("239.1.1.1", 100)))
		synctest.Wait()
		rep := wire.IGMPFields{Type: wire.IGMPv2Report, Group: g1}
		b := make([]byte, 8)
		rep.Encode(b)
		frame := igmpQueryFrame(g1, b)
		copy(frame[6:12], []byte{2, 0, 0, 0, 0, 0x97})
		sn.send(t, frame)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		for _, s := range sn.takeMembership() {
			if s.src == us {
				t.Errorf("sent %x after another member's report", s.igmp)
			}
		}
		// Leaving g1, whose last report was not ours: no leave; leaving
		// g2, ours: a Leave Group to 224.0.0.2.
		h.nic.LeaveGroup(g1)
		h.nic.LeaveGroup(g2)
		time.Sleep(time.Second)
		synctest.Wait()
		got = sn.takeMembership()
		if len(got) != 1 || got[0].dst != allRouters4 {
			t.Fatalf("leaves: %d messages", len(got))
		}
		if m, _ := wire.ParseIGMP(got[0].igmp); m.Type() != wire.IGMPLeaveGroup || m.Group() != g2 {
			t.Errorf("leave %x", got[0].igmp)
		}
	})
}

// While the link is down nothing is sent, pending answers included; when
// it comes back up every group is reported again (as Linux's ip_mc_up).
func TestMcastLinkDownAndUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 15)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24", "fe80::1/64")
		g4, g6 := mustAddr("239.1.2.3"), mustAddr("ff05::1:3")
		h.nic.JoinGroup(g4)
		h.nic.JoinGroup(g6)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		sn.takeMembership()

		// A general query, then the link goes down before the answer is due.
		sn.send(t, igmpQueryFrame(allNodes4, igmpv3Query("", 100, 2, 125)))
		synctest.Wait()
		if h.nic.igmpPending().General.IsZero() {
			t.Fatal("no answer scheduled")
		}
		h.nic.SetUp(false)
		h.nic.JoinGroup(mustAddr("239.4.4.4")) // joined while down: reported at link-up
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if got := sn.takeMembership(); len(got) != 0 {
			t.Fatalf("%d messages sent while down", len(got))
		}
		h.nic.SetUp(true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		to := map[netip.Addr]int{}
		for _, s := range sn.takeMembership() {
			var recs []mldRec
			if s.igmp != nil {
				recs = igmpRecords(t, s.igmp)
			} else {
				recs = mldRecords(t, s.mld)
			}
			for _, r := range recs {
				if r.typ == recChangeToExclude {
					to[r.g]++
				}
			}
		}
		for _, g := range []netip.Addr{g4, g6, mustAddr("239.4.4.4"), wire.IPv6SolicitedNode(mustAddr("fe80::1"))} {
			if to[g] != 2 {
				t.Errorf("%v reported %d times at link-up, want 2", g, to[g])
			}
		}
	})
}

// Without an IPv4 address, IGMP reports come from 0.0.0.0 (RFC 3376
// §4.2.13); without a link-local address, MLD reports from :: (RFC 3810
// §5.2.13).
func TestMcastReportsBeforeAddresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 16)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{})
		h.nic.JoinGroup(mustAddr("239.1.2.3"))
		h.nic.JoinGroup(mustAddr("ff05::1:3"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		var v4, v6 int
		for _, s := range sn.takeMembership() {
			if s.igmp != nil {
				checkIGMPFrame(t, s, netip.IPv4Unspecified())
				v4++
			} else {
				checkMLDFrame(t, s)
				if !s.src.IsUnspecified() {
					t.Errorf("MLD from %v, want ::", s.src)
				}
				v6++
			}
		}
		if v4 != 2 || v6 != 2 {
			t.Errorf("%d IGMP and %d MLD reports, want 2 each", v4, v6)
		}
	})
}

// Group-and-source-specific queries (RFC 3810 §6.2 rules 3–5, §6.3): the
// answer is IS_IN of the queried sources, merged over the queries it
// answers; a group-specific query makes it about the whole group.
func TestMLDv2SourceQueriesOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 17)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "fe80::1/64")
		g := mustAddr("ff05::1:3")
		h.nic.JoinGroup(g)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		sn.takeMembership()
		ll := mustAddr("fe80::99")
		query := func(srcs ...string) []byte {
			f := wire.MLDv2QueryFields{MaxRespCode: 10000, QRV: 2, QQIC: 125, MulticastAddr: g}
			for _, s := range srcs {
				f.Sources = append(f.Sources, mustAddr(s))
			}
			b := make([]byte, f.Len())
			f.Encode(b)
			wire.SetICMPv6Checksum(b, ll, allNodes6)
			return mldQueryFrame(ll, b)
		}
		answer := func() (uint8, []netip.Addr) {
			t.Helper()
			time.Sleep(11 * time.Second)
			synctest.Wait()
			got := sn.takeMembership()
			if len(got) != 1 {
				t.Fatalf("%d answers, want 1", len(got))
			}
			m, _ := wire.ParseICMPv6(got[0].mld)
			r, _ := m.MLDv2Report()
			it := r.Records()
			rec, ok := it.Next()
			if !ok || r.NumRecords() != 1 || rec.MulticastAddr() != g {
				t.Fatalf("answer %x", got[0].mld)
			}
			var srcs []netip.Addr
			for i := range rec.NumSources() {
				srcs = append(srcs, rec.Source(i))
			}
			return rec.Type(), srcs
		}
		sn.send(t, query("2001:db8::a", "2001:db8::b"))
		synctest.Wait()
		sn.send(t, query("2001:db8::b", "2001:db8::c"))
		typ, srcs := answer()
		if typ != wire.MLDv2ModeIsInclude || !equalAddrs(srcs, addrs("2001:db8::a", "2001:db8::b", "2001:db8::c")) {
			t.Errorf("answer to two source queries: type %d sources %v", typ, srcs)
		}
		sn.send(t, query("2001:db8::a"))
		synctest.Wait()
		sn.send(t, query())
		synctest.Wait()
		sn.send(t, query("2001:db8::d"))
		typ, srcs = answer()
		if typ != wire.MLDv2ModeIsExclude || len(srcs) != 0 {
			t.Errorf("answer after a group query: type %d sources %v", typ, srcs)
		}
	})
}
