package stack

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Messages Linux sent (the captures of pkg/wire's tests, IP payload only):
// this stack's builders must produce the same bytes.
const (
	linuxIGMPv3Join  = "2200e8f90000000104000000ef010203" // TO_EX {} for 239.1.2.3
	linuxIGMPv3Leave = "2200e9f90000000103000000ef010203" // TO_IN {} for 239.1.2.3
	linuxIGMPv2Join  = "1600f5f4ef040506"                 // v2 report for 239.4.5.6
	linuxIGMPv2Leave = "1700f4f4ef040506"                 // leave for 239.4.5.6
	// MLDv2 report from :: with TO_EX {} for five groups (link-up, before DAD).
	linuxMLDv2Report = "8f0063ac0000000504000000ff0200000000000000000001ff00000004000000ff02" +
		"00000000000000000001ff00000b04000000ff02000000000000000000000000006a04000000ff050000000000000000" +
		"00000000000204000000ff020000000000000000000000000002"
	// MLDv1 report for ff05::1:3 from fe80::ff:fe00:a.
	linuxMLDv1Report = "8300810e00000000ff050000000000000000000000010003"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestIGMPMessagesMatchLinux(t *testing.T) {
	g := addrs("239.1.2.3")
	for _, tt := range []struct {
		name string
		got  []byte
		want string
	}{
		{"v3 join", igmpv3Reports(groupRecords(g, recChangeToExclude), 1476)[0], linuxIGMPv3Join},
		{"v3 leave", igmpv3Reports(groupRecords(g, recChangeToInclude), 1476)[0], linuxIGMPv3Leave},
		{"v2 report", igmpMessage(wire.IGMPv2Report, mustAddr("239.4.5.6")), linuxIGMPv2Join},
		{"v2 leave", igmpMessage(wire.IGMPLeaveGroup, mustAddr("239.4.5.6")), linuxIGMPv2Leave},
	} {
		if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s: got %x, Linux sends %x", tt.name, tt.got, want)
		}
	}
}

func TestMLDMessagesMatchLinux(t *testing.T) {
	groups := addrs("ff02::1:ff00:0", "ff02::1:ff00:b", "ff02::6a", "ff05::2", "ff02::2")
	got := mldv2Reports(groupRecords(groups, recChangeToExclude), netip.IPv6Unspecified(), 1452)
	if len(got) != 1 || !bytes.Equal(got[0], unhex(t, linuxMLDv2Report)) {
		t.Errorf("MLDv2 report %x, Linux sends %s", got, linuxMLDv2Report)
	}
	g := mustAddr("ff05::1:3")
	if got := mldv1Message(wire.ICMPv6MLDReport, g, mustAddr("fe80::ff:fe00:a"), g); !bytes.Equal(got, unhex(t, linuxMLDv1Report)) {
		t.Errorf("MLDv1 report %x, Linux sends %s", got, linuxMLDv1Report)
	}
	done := mldv1Message(wire.ICMPv6MLDDone, g, mustAddr("fe80::1"), allRouters6)
	m, err := wire.ParseICMPv6(done)
	if err != nil || m.Type() != wire.ICMPv6MLDDone || !m.ChecksumValid(mustAddr("fe80::1"), allRouters6) {
		t.Fatalf("done %x: %v", done, err)
	}
	if v, _ := m.MLD(); v.MulticastAddr() != g {
		t.Errorf("done names %v", v.MulticastAddr())
	}
}

// Reports that do not fit the link are split, every group once, in order.
func TestMcastReportsSplitToMTU(t *testing.T) {
	var groups []netip.Addr
	var groups6 []netip.Addr
	for i := range 200 {
		groups = append(groups, netip.AddrFrom4([4]byte{239, 1, byte(i >> 8), byte(i)}))
		groups6 = append(groups6, netip.AddrFrom16([16]byte{0xff, 0x05, 14: byte(i >> 8), 15: byte(i)}))
	}
	var got []netip.Addr
	msgs := igmpv3Reports(groupRecords(groups, recModeIsExclude), 1500-igmpIPHeaderLen)
	var sizes []int
	for _, b := range msgs {
		m, err := wire.ParseIGMP(b)
		if err != nil || !m.ChecksumValid() || len(b) > 1500-igmpIPHeaderLen {
			t.Fatalf("report of %d bytes: %v valid %v", len(b), err, err == nil && m.ChecksumValid())
		}
		sizes = append(sizes, m.NumGroupRecords())
		it := m.GroupRecords()
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			if r.RecordType() != wire.IGMPv3ModeIsExclude || r.NumSources() != 0 {
				t.Fatalf("record type %d sources %d", r.RecordType(), r.NumSources())
			}
			got = append(got, r.Group())
		}
	}
	// 1476 bytes: an 8-byte header and 183 records of 8.
	if len(sizes) != 2 || sizes[0] != 183 || sizes[1] != 17 || !equalAddrs(got, groups) {
		t.Errorf("IGMPv3: %d reports of %v records", len(sizes), sizes)
	}

	got, sizes = nil, nil
	src := mustAddr("fe80::1")
	for _, b := range mldv2Reports(groupRecords(groups6, recModeIsExclude), src, 1500-mldIPHeaderLen) {
		m, err := wire.ParseICMPv6(b)
		if err != nil || !m.ChecksumValid(src, mldv2Routers) || len(b) > 1500-mldIPHeaderLen {
			t.Fatalf("report of %d bytes: %v", len(b), err)
		}
		r, _ := m.MLDv2Report()
		sizes = append(sizes, r.NumRecords())
		it := r.Records()
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			if rec.Type() != wire.MLDv2ModeIsExclude || rec.NumSources() != 0 {
				t.Fatalf("record type %d", rec.Type())
			}
			got = append(got, rec.MulticastAddr())
		}
	}
	// 1452 bytes: an 8-byte header and 72 records of 20.
	if len(sizes) != 3 || sizes[0] != 72 || sizes[1] != 72 || sizes[2] != 56 || !equalAddrs(got, groups6) {
		t.Errorf("MLDv2: %d reports of %v records", len(sizes), sizes)
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMcastReportable(t *testing.T) {
	for _, tt := range []struct {
		g    string
		want bool
	}{
		{"224.0.0.1", false}, // all-systems
		{"224.0.0.2", true},
		{"224.0.0.251", true},
		{"239.1.2.3", true},
		{"ff02::1", false},       // all-nodes
		{"ff01::2", false},       // interface-local
		{"ff00::1234", false},    // reserved scope 0
		{"ff02::2", true},        // all-routers (a forwarding host reports it)
		{"ff02::1:ff00:1", true}, // solicited-node: Linux reports it
		{"ff05::1:3", true},
		{"ff0e::101", true},
	} {
		g := mustAddr(tt.g)
		var got bool
		if g.Is4() {
			got = igmpProto{}.reportable(g)
		} else {
			got = mldProto{}.reportable(g)
		}
		if got != tt.want {
			t.Errorf("reportable(%v) = %v, want %v", g, got, tt.want)
		}
	}
}

// Query builders for the tests.

func igmpv3Query(group string, maxRespCode, qrv, qqic uint8) []byte {
	f := wire.IGMPv3QueryFields{MaxRespCode: maxRespCode, QRV: qrv, QQIC: qqic}
	if group != "" {
		f.Group = mustAddr(group)
	}
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

func igmpv2Query(group string, maxRespCode uint8) []byte {
	f := wire.IGMPFields{Type: wire.IGMPMembershipQuery, MaxRespCode: maxRespCode}
	if group != "" {
		f.Group = mustAddr(group)
	}
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

var querier4 = mustAddr("10.0.0.254")

func (h *testHost) igmpIn(dst string, msg []byte) {
	h.s.handleIGMP(&PacketInfo{NIC: h.nic, Src: querier4, Dst: mustAddr(dst), Proto: wire.IPProtoIGMP, TTL: 1}, msg)
}

// within reports whether at lies in (from, from+d].
func within(at, from time.Time, d time.Duration) bool {
	return !at.IsZero() && !at.Before(from) && !at.After(from.Add(d))
}

func TestIGMPJoinAndLeaveRetransmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 1), Options{}, "10.0.0.1/24")
		g := mustAddr("239.1.2.3")
		start := time.Now()
		if err := h.nic.JoinGroup(g); err != nil {
			t.Fatal(err)
		}
		p := h.nic.igmpPending()
		// RFC 3376 §5.1: sent now, then Robustness − 1 = 1 more time
		// within the 1 s Unsolicited Report Interval.
		if p.Mode != 3 || p.Left[g] != 1 || !within(p.Change[g], start, time.Second) {
			t.Fatalf("after join: %+v", p)
		}
		if _, ok := p.Change[allNodes4]; ok {
			t.Error("224.0.0.1 is reported")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if p := h.nic.igmpPending(); len(p.Change) != 0 {
			t.Fatalf("retransmissions left after 1 s: %+v", p)
		}
		// A second join of the same group is only a reference.
		h.nic.JoinGroup(g)
		if p := h.nic.igmpPending(); len(p.Change) != 0 {
			t.Fatal("second join reported again")
		}
		h.nic.LeaveGroup(g)
		if p := h.nic.igmpPending(); len(p.Change) != 0 {
			t.Fatal("leave of one of two references reported")
		}
		now := time.Now()
		h.nic.LeaveGroup(g)
		p = h.nic.igmpPending()
		if p.Left[g] != 1 || !within(p.Change[g], now, time.Second) {
			t.Fatalf("after leave: %+v", p)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if _, ok := h.nic.igmp.h.groups[g]; ok || len(h.nic.igmpPending().Change) != 0 {
			t.Fatal("left group still has state")
		}
	})
}

func TestIGMPv3QueryResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 2), Options{}, "10.0.0.1/24")
		g1, g2 := mustAddr("239.1.1.1"), mustAddr("239.2.2.2")
		h.nic.JoinGroup(g1)
		h.nic.JoinGroup(g2)
		time.Sleep(2 * time.Second)

		// A group-specific query for a group we are not in: nothing.
		h.igmpIn("239.3.3.3", igmpv3Query("239.3.3.3", 100, 2, 125))
		if p := h.nic.igmpPending(); !p.General.IsZero() || len(p.Resp) != 0 {
			t.Fatalf("answered a query for a foreign group: %+v", p)
		}
		// Group-specific: that group's timer, within 10 s.
		now := time.Now()
		h.igmpIn("239.1.1.1", igmpv3Query("239.1.1.1", 100, 2, 125))
		p := h.nic.igmpPending()
		if !within(p.Resp[g1], now, 10*time.Second) || len(p.Resp) != 1 || !p.General.IsZero() {
			t.Fatalf("group query: %+v", p)
		}
		// General: the interface timer, within 10 s.
		h.igmpIn("224.0.0.1", igmpv3Query("", 100, 2, 125))
		p = h.nic.igmpPending()
		if !within(p.General, now, 10*time.Second) {
			t.Fatalf("general query: %+v", p)
		}
		// A later general query with a 0.5 s maximum pulls it in, never
		// pushes it out (RFC 3376 §5.2 rules 1–2).
		h.igmpIn("224.0.0.1", igmpv3Query("", 5, 2, 125))
		p2 := h.nic.igmpPending()
		pulledIn := within(p2.General, now, 500*time.Millisecond)
		// A sooner random delay may replace a pending one already inside
		// 0.5 s; a later one never does.
		if !pulledIn || p2.General.After(p.General) {
			t.Fatalf("second general query: %v then %v", p.General, p2.General)
		}
		// A group query while a sooner general response is pending adds nothing.
		h.igmpIn("239.2.2.2", igmpv3Query("239.2.2.2", 200, 2, 125))
		if p := h.nic.igmpPending(); p.Resp[g2] != (time.Time{}) {
			t.Fatalf("group query under a pending general one: %+v", p)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if p := h.nic.igmpPending(); !p.General.IsZero() || len(p.Resp) != 0 {
			t.Fatalf("responses still pending: %+v", p)
		}
	})
}

func TestIGMPOlderQuerierCompatibility(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 3), Options{}, "10.0.0.1/24")
		g1, g2 := mustAddr("239.1.1.1"), mustAddr("239.2.2.2")
		h.nic.JoinGroup(g1)
		if p := h.nic.igmpPending(); p.Left[g1] != 1 {
			t.Fatalf("join: %+v", p)
		}
		// An IGMPv2 general query (max 10 s): v2 mode, the pending v3
		// retransmission is cancelled (RFC 3376 §7.2.1) and g1 gets its
		// own response timer.
		start := time.Now()
		h.igmpIn("224.0.0.1", igmpv2Query("", 100))
		p := h.nic.igmpPending()
		if p.Mode != 2 || len(p.Change) != 0 || !within(p.Resp[g1], start, 10*time.Second) || !p.General.IsZero() {
			t.Fatalf("after v2 query: %+v", p)
		}
		// Joining in v2 mode repeats the report within 10 s (RFC 2236 §3).
		h.nic.JoinGroup(g2)
		p = h.nic.igmpPending()
		if p.Left[g2] != 1 || !within(p.Change[g2], start, 10*time.Second) {
			t.Fatalf("v2 join: %+v", p)
		}
		// Another host's report suppresses ours (RFC 2236 §3).
		other := wire.IGMPFields{Type: wire.IGMPv2Report, Group: g1}
		b := make([]byte, 8)
		other.Encode(b)
		h.s.handleIGMP(&PacketInfo{NIC: h.nic, Src: mustAddr("10.0.0.7"), Dst: g1, TTL: 1}, b)
		p = h.nic.igmpPending()
		if _, ok := p.Resp[g1]; ok {
			t.Fatalf("report from another host did not suppress ours: %+v", p)
		}
		if h.nic.igmp.h.groups[g1].reporter {
			t.Error("still the last reporter after another host's report")
		}
		// The mode lasts Robustness × Query Interval + Max Response Time
		// = 2 × 125 s + 10 s (RFC 3376 §8.12).
		time.Sleep(259 * time.Second)
		if p := h.nic.igmpPending(); p.Mode != 2 {
			t.Fatalf("mode %d before the timeout", p.Mode)
		}
		time.Sleep(2 * time.Second)
		if p := h.nic.igmpPending(); p.Mode != 3 {
			t.Fatalf("mode %d after the timeout", p.Mode)
		}
		// An IGMPv1 query (8 bytes, code 0): v1 mode.
		h.igmpIn("224.0.0.1", igmpv2Query("", 0))
		if p := h.nic.igmpPending(); p.Mode != 1 || !within(p.Resp[g2], time.Now(), 10*time.Second) {
			t.Fatalf("after v1 query: %+v", p)
		}
		synctest.Wait()
	})
}

func TestIGMPAdoptsQuerierRobustness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 4), Options{}, "10.0.0.1/24")
		h.igmpIn("224.0.0.1", igmpv3Query("", 10, 4, 60))
		g := mustAddr("239.9.9.9")
		h.nic.JoinGroup(g)
		if p := h.nic.igmpPending(); p.Robustness != 4 || p.Left[g] != 3 {
			t.Fatalf("QRV 4: %+v", p)
		}
		// QQIC 60 s: the older-querier timeout is now 4 × 60 s + 1 s.
		h.igmpIn("224.0.0.1", igmpv2Query("", 10))
		time.Sleep(240 * time.Second)
		if p := h.nic.igmpPending(); p.Mode != 2 {
			t.Fatalf("mode %d at 240 s", p.Mode)
		}
		time.Sleep(2 * time.Second)
		if p := h.nic.igmpPending(); p.Mode != 3 {
			t.Fatalf("mode %d at 242 s", p.Mode)
		}
		synctest.Wait()
	})
}

func TestIGMPIgnoresInvalidQueries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 5), Options{}, "10.0.0.1/24")
		h.nic.JoinGroup(mustAddr("239.1.1.1"))
		bad := igmpv2Query("", 100)
		bad[2] ^= 1 // checksum
		groupUnicast := igmpv2Query("10.1.2.3", 100)
		for _, tt := range []struct {
			name, dst string
			msg       []byte
		}{
			{"bad checksum", "224.0.0.1", bad},
			{"general query to another group", "239.1.1.1", igmpv2Query("", 100)},
			{"group not multicast", "224.0.0.1", groupUnicast},
			{"9-byte query", "224.0.0.1", append(igmpv2Query("", 100), 0)},
			{"truncated", "224.0.0.1", igmpv2Query("", 100)[:7]},
		} {
			h.igmpIn(tt.dst, tt.msg)
			if p := h.nic.igmpPending(); p.Mode != 3 || len(p.Resp) != 0 || !p.General.IsZero() {
				t.Errorf("%s: acted on it: %+v", tt.name, p)
			}
		}
		synctest.Wait()
	})
}

// mldQueryPI is the PacketInfo of an MLD query from src with hop limit
// hops, with or without the Router Alert.
func mldQueryPI(n *NIC, src string, hops uint8, ra bool) *PacketInfo {
	nw := make([]byte, wire.IPv6HeaderLen+8)
	nw[0] = 0x60
	nw[7] = hops
	s, d := mustAddr(src).As16(), allNodes6.As16()
	copy(nw[8:], s[:])
	copy(nw[24:], d[:])
	if ra {
		nw[6] = wire.IPProtoHopByHop
		f := wire.IPv6OptionsFields{NextHeader: wire.IPProtoICMPv6, RouterAlert: true}
		f.Encode(nw[wire.IPv6HeaderLen:])
	} else {
		nw[6] = wire.IPProtoICMPv6
		nw = nw[:wire.IPv6HeaderLen]
	}
	return &PacketInfo{NIC: n, Src: mustAddr(src), Dst: allNodes6, Proto: wire.IPProtoICMPv6, TTL: hops, Network: nw}
}

func mldv1Query(group string, maxDelayMS uint16, src netip.Addr) []byte {
	f := wire.MLDv1Fields{Type: wire.ICMPv6MLDQuery, MaxResponseDelay: maxDelayMS, MulticastAddr: netip.IPv6Unspecified()}
	if group != "" {
		f.MulticastAddr = mustAddr(group)
	}
	b := make([]byte, f.Len())
	f.Encode(b)
	wire.SetICMPv6Checksum(b, src, allNodes6)
	return b
}

func mldv2Query(group string, maxRespCode uint16, qrv, qqic uint8, src netip.Addr) []byte {
	f := wire.MLDv2QueryFields{MaxRespCode: maxRespCode, QRV: qrv, QQIC: qqic, MulticastAddr: netip.IPv6Unspecified()}
	if group != "" {
		f.MulticastAddr = mustAddr(group)
	}
	b := make([]byte, f.Len())
	f.Encode(b)
	wire.SetICMPv6Checksum(b, src, allNodes6)
	return b
}

func TestMLDReportsAndQueries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		h := newTestHost(t, newTestNet(t, 6), Options{}, "2001:db8::1/64")
		sn := wire.IPv6SolicitedNode(mustAddr("2001:db8::1"))
		// The solicited-node group, joined while the NIC was down, is
		// reported at link-up; all-nodes never is.
		p := h.nic.mldPending()
		if p.Mode != 2 || p.Left[sn] != 1 || !within(p.Change[sn], start, time.Second) {
			t.Fatalf("after link-up: %+v", p)
		}
		if _, ok := p.Change[allNodes6]; ok {
			t.Error("ff02::1 is reported")
		}
		h.nic.JoinGroup(mustAddr("ff01::5"))
		g := mustAddr("ff05::1:3")
		h.nic.JoinGroup(g)
		p = h.nic.mldPending()
		if _, ok := p.Change[mustAddr("ff01::5")]; ok || p.Left[g] != 1 {
			t.Fatalf("joins: %+v", p)
		}
		time.Sleep(time.Second)

		ll := mustAddr("fe80::99")
		q := mldv1Query("", 10000, ll)
		// RFC 3810 §5.1.14: a global source, hop limit 2 or no Router
		// Alert make a query invalid.
		for _, pi := range []*PacketInfo{
			mldQueryPI(h.nic, "2001:db8::99", 1, true),
			mldQueryPI(h.nic, "fe80::99", 2, true),
			mldQueryPI(h.nic, "fe80::99", 1, false),
		} {
			h.s.handleMLD(pi, q)
			if p := h.nic.mldPending(); p.Mode != 2 || len(p.Resp) != 0 {
				t.Fatalf("acted on invalid query from %v hops %d: %+v", pi.Src, pi.TTL, p)
			}
		}
		// A valid MLDv2 general query: one interface timer.
		now := time.Now()
		h.s.handleMLD(mldQueryPI(h.nic, "fe80::99", 1, true), mldv2Query("", 10000, 2, 125, ll))
		if p := h.nic.mldPending(); !within(p.General, now, 10*time.Second) || len(p.Resp) != 0 {
			t.Fatalf("MLDv2 general query: %+v", p)
		}
		// A valid MLDv1 query: MLDv1 mode, the pending MLDv2 response is
		// cancelled and each group gets its own timer (RFC 3810 §8.2.1).
		h.s.handleMLD(mldQueryPI(h.nic, "fe80::99", 1, true), q)
		p = h.nic.mldPending()
		if p.Mode != 1 || !p.General.IsZero() || !within(p.Resp[g], now, 10*time.Second) || !within(p.Resp[sn], now, 10*time.Second) {
			t.Fatalf("MLDv1 query: %+v", p)
		}
		if _, ok := p.Resp[allNodes6]; ok {
			t.Error("ff02::1 would be reported")
		}
		// Another node's MLDv1 report suppresses ours (RFC 2710 §4).
		rep := mldv1Message(wire.ICMPv6MLDReport, g, mustAddr("fe80::7"), g)
		h.s.handleMLD(&PacketInfo{NIC: h.nic, Src: mustAddr("fe80::7"), Dst: g, TTL: 1}, rep)
		if _, ok := h.nic.mldPending().Resp[g]; ok {
			t.Fatal("not suppressed")
		}
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if p := h.nic.mldPending(); len(p.Resp) != 0 {
			t.Fatalf("responses left: %+v", p)
		}
		// Leaving in MLDv1 mode: Done only if we were the last reporter;
		// the group state goes at once, no retransmission.
		h.nic.LeaveGroup(g)
		if _, ok := h.nic.mld.h.groups[g]; ok {
			t.Fatal("left group still has state in MLDv1 mode")
		}
		// 2 × 125 s + 10 s later, MLDv2 again.
		time.Sleep(250 * time.Second)
		if p := h.nic.mldPending(); p.Mode != 2 {
			t.Fatalf("mode %d after the older-querier timeout", p.Mode)
		}
	})
}

func TestMcastCloseStopsTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHost(t, newTestNet(t, 7), Options{}, "10.0.0.1/24", "2001:db8::1/64")
		h.nic.JoinGroup(mustAddr("239.1.1.1"))
		h.nic.JoinGroup(mustAddr("ff05::1"))
		h.igmpIn("224.0.0.1", igmpv3Query("", 100, 2, 125))
		if p := h.nic.igmpPending(); p.General.IsZero() || len(p.Change) == 0 {
			t.Fatalf("nothing pending: %+v", p)
		}
		h.s.Close()
		for _, p := range []mcastPending{h.nic.igmpPending(), h.nic.mldPending()} {
			if !p.General.IsZero() || len(p.Change) != 0 || len(p.Resp) != 0 {
				t.Fatalf("pending after close: %+v", p)
			}
		}
		h.nic.igmpJoined(mustAddr("239.5.5.5"))
		h.nic.mldJoined(mustAddr("ff05::5"))
		if len(h.nic.igmpPending().Change)+len(h.nic.mldPending().Change) != 0 {
			t.Fatal("joined after close")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
	})
}

func FuzzIGMPInput(f *testing.F) {
	f.Add(igmpv3Query("", 100, 2, 125), "224.0.0.1")
	f.Add(igmpv3Query("239.1.1.1", 255, 7, 255), "239.1.1.1")
	f.Add(igmpv2Query("", 0), "224.0.0.1")
	f.Add(igmpv2Query("239.1.1.1", 1), "239.1.1.1")
	f.Add(igmpMessage(wire.IGMPv2Report, mustAddr("239.1.1.1")), "239.1.1.1")
	f.Add(unhex(f, linuxIGMPv3Join), "224.0.0.22")
	nw := newTestNet(f, 1)
	h := newTestHost(f, nw, Options{}, "10.0.0.1/24")
	h.nic.JoinGroup(mustAddr("239.1.1.1"))
	f.Fuzz(func(t *testing.T, msg []byte, dst string) {
		d, err := netip.ParseAddr(dst)
		if err != nil {
			d = allNodes4
		}
		h.s.handleIGMP(&PacketInfo{NIC: h.nic, Src: querier4, Dst: d, TTL: 1}, msg)
		h.nic.igmpPending()
	})
}

func FuzzMLDInput(f *testing.F) {
	ll := mustAddr("fe80::99")
	f.Add(mldv1Query("", 1000, ll), true)
	f.Add(mldv1Query("ff05::1", 0, ll), true)
	f.Add(mldv2Query("", 0xffff, 7, 255, ll), true)
	f.Add(mldv2Query("ff05::1", 100, 0, 0, ll), false)
	f.Add(mldv1Message(wire.ICMPv6MLDReport, mustAddr("ff05::1"), ll, mustAddr("ff05::1")), true)
	f.Add(unhex(f, linuxMLDv2Report), true)
	nw := newTestNet(f, 1)
	h := newTestHost(f, nw, Options{}, "2001:db8::1/64")
	h.nic.JoinGroup(mustAddr("ff05::1"))
	f.Fuzz(func(t *testing.T, msg []byte, ra bool) {
		h.s.handleMLD(mldQueryPI(h.nic, "fe80::99", 1, ra), msg)
		h.nic.mldPending()
	})
}

// A record with more sources than fit is split over records of the same
// type in several reports (RFC 3376 §4.2.16, RFC 3810 §5.2.15).
func TestMcastRecordSourcesSplit(t *testing.T) {
	var srcs4, srcs6 []netip.Addr
	for i := range 500 {
		srcs4 = append(srcs4, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
		srcs6 = append(srcs6, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
	}
	g4, g6 := mustAddr("239.1.1.1"), mustAddr("ff05::1")
	recs := []mcastRecord{{typ: recModeIsInclude, group: g4, sources: srcs4}, {typ: recModeIsExclude, group: mustAddr("239.2.2.2")}}
	var got []netip.Addr
	var perReport []int
	for _, b := range igmpv3Reports(recs, 1476) {
		m, err := wire.ParseIGMP(b)
		if err != nil || !m.ChecksumValid() || len(b) > 1476 {
			t.Fatalf("%d-byte report: %v", len(b), err)
		}
		it := m.GroupRecords()
		n := 0
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			if r.Group() == g4 {
				if r.RecordType() != recModeIsInclude {
					t.Errorf("split record type %d", r.RecordType())
				}
				for i := range r.NumSources() {
					got = append(got, r.Source(i))
				}
			}
			n++
		}
		perReport = append(perReport, n)
	}
	// 1476 bytes hold a record of (1476 − 8 − 8) / 4 = 365 sources.
	if !equalAddrs(got, srcs4) || len(perReport) != 2 || perReport[0] != 1 || perReport[1] != 2 {
		t.Errorf("IGMPv3: %d sources back, records per report %v", len(got), perReport)
	}
	got = got[:0]
	src := mustAddr("fe80::1")
	msgs := mldv2Reports([]mcastRecord{{typ: recModeIsInclude, group: g6, sources: srcs6}}, src, 1452)
	for _, b := range msgs {
		m, err := wire.ParseICMPv6(b)
		if err != nil || !m.ChecksumValid(src, mldv2Routers) || len(b) > 1452 {
			t.Fatalf("%d-byte report: %v", len(b), err)
		}
		r, _ := m.MLDv2Report()
		it := r.Records()
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			for i := range rec.NumSources() {
				got = append(got, rec.Source(i))
			}
		}
	}
	// (1452 − 8 − 20) / 16 = 89 sources per record: 6 reports.
	if !equalAddrs(got, srcs6) || len(msgs) != 6 {
		t.Errorf("MLDv2: %d sources back in %d reports", len(got), len(msgs))
	}
}
