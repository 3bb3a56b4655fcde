package stack

import (
	"net/netip"

	"github.com/stackbox/stackbox/pkg/wire"
)

// IGMP, host side (RFC 2236 version 2, RFC 3376 version 3, with version 1
// compatibility). The host speaks IGMPv3, as Linux does by default, until
// it hears an older querier; the timers and compatibility rules are the
// shared ones of mcast.go.

var (
	allRouters4   = netip.AddrFrom4([4]byte{224, 0, 0, 2})  // IGMPv2 leave (RFC 2236 §3)
	igmpv3Routers = netip.AddrFrom4([4]byte{224, 0, 0, 22}) // IGMPv3 reports (RFC 3376 §4.2.14)
)

// igmpIPHeaderLen is the IPv4 header of an IGMP message: 20 bytes and the
// 4-byte Router Alert option (RFC 3376 §4).
const igmpIPHeaderLen = wire.IPv4MinHeaderLen + 4

// igmpState is the IGMP host state of a NIC.
type igmpState struct{ h mcastHost }

type igmpProto struct{}

func (igmpProto) newest() int { return 3 }

// reportable: every IPv4 group but all-systems, which is never reported
// (RFC 2236 §6).
func (igmpProto) reportable(g netip.Addr) bool { return g.Is4() && g.IsMulticast() && g != allNodes4 }

func (igmpProto) sendRecords(n *NIC, recs []mcastRecord) {
	for _, msg := range igmpv3Reports(recs, n.MTU()-igmpIPHeaderLen) {
		n.sendIGMP(igmpv3Routers, msg)
	}
}

func (igmpProto) sendReport(n *NIC, g netip.Addr, version int) {
	t := wire.IGMPv2Report
	if version == 1 {
		t = wire.IGMPv1Report
	}
	// Older-version reports go to the group itself (RFC 2236 §3).
	n.sendIGMP(g, igmpMessage(t, g))
}

func (igmpProto) sendLeave(n *NIC, g netip.Addr, version int) {
	if version == 2 { // IGMPv1 has no leave (RFC 2236 §4)
		n.sendIGMP(allRouters4, igmpMessage(wire.IGMPLeaveGroup, g))
	}
}

// igmpMessage builds an 8-byte IGMPv1/v2 report or leave for g.
func igmpMessage(typ uint8, g netip.Addr) []byte {
	f := wire.IGMPFields{Type: typ, Group: g}
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

// igmpv3Reports builds IGMPv3 reports of at most maxLen bytes holding the
// records (RFC 3376 §4.2).
func igmpv3Reports(recs []mcastRecord, maxLen int) [][]byte {
	var out [][]byte
	for _, batch := range packRecords(recs, maxLen, 8, 8, 4) {
		f := wire.IGMPv3ReportFields{Records: make([]wire.IGMPv3RecordFields, len(batch))}
		for i, r := range batch {
			f.Records[i] = wire.IGMPv3RecordFields{Type: r.typ, Group: r.group, Sources: r.sources}
		}
		b := make([]byte, f.Len())
		f.Encode(b)
		out = append(out, b)
	}
	return out
}

// sendIGMP sends msg to dst with TTL 1 and a Router Alert (RFC 2236 §2,
// RFC 3376 §4), from the NIC's address, or 0.0.0.0 if it has none yet
// (RFC 3376 §4.2.13).
func (n *NIC) sendIGMP(dst netip.Addr, msg []byte) {
	src, ok := n.primaryAddress(dst)
	if !ok {
		src = netip.IPv4Unspecified()
	}
	r := &Route{NIC: n, Src: src, Dst: dst, NextHop: dst, MTU: n.MTU(), Kind: RouteMulticast}
	_ = n.s.writeIPv4(r, NewPacketFrom(msg), WriteOptions{
		Proto: wire.IPProtoIGMP, TTL: 1, IPv4Options: wire.AppendIPv4RouterAlert(nil),
	})
}

func (n *NIC) igmpJoined(g netip.Addr) { n.igmp.h.joined(n, igmpProto{}, g) }
func (n *NIC) igmpLeft(g netip.Addr)   { n.igmp.h.left(n, igmpProto{}, g) }
func (n *NIC) closeIGMP()              { n.igmp.h.close() }

// igmpPending returns what the NIC's IGMP host will send and when.
func (n *NIC) igmpPending() mcastPending { return n.igmp.h.pending(n, igmpProto{}) }

// handleIGMP processes a received IGMP message (msg starts at the IGMP
// header; pi describes the IPv4 packet, whose checksum was verified).
// Invalid messages are dropped: a host answers no IGMP message with an
// error.
func (s *Stack) handleIGMP(pi *PacketInfo, msg []byte) {
	n := pi.NIC
	if n == nil || n.loopback {
		return
	}
	m, err := wire.ParseIGMP(msg)
	if err != nil || !m.ChecksumValid() {
		return
	}
	switch m.Type() {
	case wire.IGMPMembershipQuery:
		v := m.Version()
		g := m.Group()
		if v == 1 {
			g = netip.Addr{} // version 1 queries are all general (RFC 1112)
		}
		general := !g.IsValid() || g.IsUnspecified()
		if !general && !g.IsMulticast() {
			return
		}
		// RFC 3376 §9.1: ignore general queries sent to a multicast
		// address other than all-systems.
		if general && pi.Dst.IsMulticast() && pi.Dst != allNodes4 {
			return
		}
		var srcs []netip.Addr
		for i := range m.NumSources() {
			srcs = append(srcs, m.Source(i))
		}
		n.igmp.h.query(n, igmpProto{}, v, g, srcs, m.MaxRespTime(), int(m.QRV()), m.QueryInterval(),
			n.igmp.h.joinedFor(n, igmpProto{}, g, general))
	case wire.IGMPv1Report, wire.IGMPv2Report:
		if s.IsLocal(pi.Src) {
			return // our own report, looped back
		}
		n.igmp.h.heardReport(n, igmpProto{}, m.Group())
	}
	// Leaves and IGMPv3 reports are for routers.
}
