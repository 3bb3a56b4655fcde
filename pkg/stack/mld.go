package stack

import (
	"net/netip"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// MLD, host side (RFC 2710 MLDv1, RFC 3810 MLDv2). The host speaks MLDv2,
// as Linux does by default, until it hears an MLDv1 querier; the timers
// and compatibility rules are the shared ones of mcast.go.

// mldv2Routers is where MLDv2 reports go (RFC 3810 §5.2.14).
var mldv2Routers = netip.MustParseAddr("ff02::16")

// mldIPHeaderLen is the IPv6 header of an MLD message: 40 bytes and an
// 8-byte Hop-by-Hop header holding the Router Alert (RFC 3810 §5).
const mldIPHeaderLen = wire.IPv6HeaderLen + 8

// mldState is the MLD host state of a NIC.
type mldState struct{ h mcastHost }

type mldProto struct{}

func (mldProto) newest() int { return 2 }

// reportable: not all-nodes, and nothing of a scope below link-local
// (interface-local ff01::/16, reserved ff00::/16) (RFC 3810 §6, RFC 2710
// §5; Linux's MAF_NOREPORT). Solicited-node groups are reported.
func (mldProto) reportable(g netip.Addr) bool {
	if !g.Is6() || !g.IsMulticast() || g.Is4In6() || g == allNodes6 {
		return false
	}
	return g.As16()[1]&0x0f >= 2
}

func (mldProto) sendRecords(n *NIC, recs []mcastRecord) {
	src := n.mldSource()
	for _, msg := range mldv2Reports(recs, src, n.MTU()-mldIPHeaderLen) {
		n.sendMLD(src, mldv2Routers, msg)
	}
}

func (mldProto) sendReport(n *NIC, g netip.Addr, version int) {
	src := n.mldSource()
	// MLDv1 reports go to the group itself (RFC 2710 §3).
	n.sendMLD(src, g, mldv1Message(wire.ICMPv6MLDReport, g, src, g))
}

func (mldProto) sendLeave(n *NIC, g netip.Addr, version int) {
	src := n.mldSource()
	// Done goes to all-routers (RFC 2710 §3).
	n.sendMLD(src, allRouters6, mldv1Message(wire.ICMPv6MLDDone, g, src, allRouters6))
}

// mldv1Message builds an MLDv1 report or done for g, checksummed for the
// pseudo-header of src and dst.
func mldv1Message(typ uint8, g, src, dst netip.Addr) []byte {
	f := wire.MLDv1Fields{Type: typ, MulticastAddr: g}
	b := make([]byte, f.Len())
	f.Encode(b)
	wire.SetICMPv6Checksum(b, src, dst)
	return b
}

// mldv2Reports builds MLDv2 reports from src of at most maxLen bytes
// holding the records (RFC 3810 §5.2), each checksummed for src and
// ff02::16.
func mldv2Reports(recs []mcastRecord, src netip.Addr, maxLen int) [][]byte {
	var out [][]byte
	for _, batch := range packRecords(recs, maxLen, 8, 20, 16) {
		f := wire.MLDv2ReportFields{Records: make([]wire.MLDv2RecordFields, len(batch))}
		for i, r := range batch {
			f.Records[i] = wire.MLDv2RecordFields{Type: r.typ, MulticastAddr: r.group, Sources: r.sources}
		}
		b := make([]byte, f.Len())
		f.Encode(b)
		wire.SetICMPv6Checksum(b, src, mldv2Routers)
		out = append(out, b)
	}
	return out
}

// mldSource is the source of MLD messages: a link-local address of the
// NIC that is not tentative, else :: (RFC 3810 §5.2.13; Linux does the
// same).
func (n *NIC) mldSource() netip.Addr {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, a := range n.addrs {
		if ad := a.Prefix.Addr(); ad.Is6() && ad.IsLinkLocalUnicast() && a.State.usable() {
			return ad
		}
	}
	return netip.IPv6Unspecified()
}

// sendMLD sends an MLD message with hop limit 1 and a Router Alert (RFC
// 2710 §3, RFC 3810 §5). The IPv6 layer counts it (Icmp6OutMLDv2Reports,
// Icmp6OutGroupMembResponses, …) as it counts every ICMPv6 message.
func (n *NIC) sendMLD(src, dst netip.Addr, msg []byte) {
	r := &Route{NIC: n, Src: src, Dst: dst, NextHop: dst, MTU: n.MTU(), Kind: RouteMulticast}
	_ = n.s.writeIPv6(r, NewPacketFrom(msg), WriteOptions{
		Proto: wire.IPProtoICMPv6, TTL: 1, RouterAlert6: true,
	})
}

func (n *NIC) mldJoined(g netip.Addr) { n.mld.h.joined(n, mldProto{}, g) }
func (n *NIC) mldLeft(g netip.Addr)   { n.mld.h.left(n, mldProto{}, g) }
func (n *NIC) closeMLD()              { n.mld.h.close() }

// mldPending returns what the NIC's MLD host will send and when.
func (n *NIC) mldPending() mcastPending { return n.mld.h.pending(n, mldProto{}) }

// handleMLD processes a received MLD message (query 130, report 131,
// done 132, MLDv2 report 143); msg is the whole ICMPv6 message, checksum
// verified by the caller.
func (s *Stack) handleMLD(pi *PacketInfo, msg []byte) {
	n := pi.NIC
	if n == nil || n.loopback {
		return
	}
	m, err := wire.ParseICMPv6(msg)
	if err != nil {
		return
	}
	switch m.Type() {
	case wire.ICMPv6MLDQuery:
		// RFC 3810 §5.1.14 and §6.2: a query must come from a
		// link-local address, with hop limit 1 and a Router Alert;
		// otherwise it is dropped. (Linux checks only the source.)
		if !pi.Src.IsLinkLocalUnicast() || pi.TTL != 1 || !hasRouterAlert6(pi.Network) {
			return
		}
		var (
			version = 1
			g       netip.Addr
			srcs    []netip.Addr
			maxResp time.Duration
			qrv     int
			qi      time.Duration
		)
		if q, ok := m.MLDv2Query(); ok {
			version, g = 2, q.MulticastAddr()
			maxResp = time.Duration(q.MaxResponseDelay()) * time.Millisecond
			qrv, qi = int(q.QRV()), time.Duration(q.QueryInterval())*time.Second
			for i := range q.NumSources() {
				srcs = append(srcs, q.Source(i))
			}
		} else if q, ok := m.MLD(); ok {
			g = q.MulticastAddr()
			maxResp = time.Duration(q.MaxResponseDelay()) * time.Millisecond
		} else {
			return
		}
		general := g.IsUnspecified()
		if !general && !g.IsMulticast() {
			return
		}
		n.mld.h.query(n, mldProto{}, version, g, srcs, maxResp, qrv, qi,
			n.mld.h.joinedFor(n, mldProto{}, g, general))
	case wire.ICMPv6MLDReport:
		if s.IsLocal(pi.Src) {
			return // our own report, looped back
		}
		if q, ok := m.MLD(); ok {
			n.mld.h.heardReport(n, mldProto{}, q.MulticastAddr())
		}
	}
	// Done and MLDv2 reports are for routers.
}

// hasRouterAlert6 reports whether the IPv6 header and extension headers
// in network carry a Hop-by-Hop Router Alert option.
func hasRouterAlert6(network []byte) bool {
	if len(network) < wire.IPv6HeaderLen || network[6] != wire.IPProtoHopByHop {
		return false
	}
	it := wire.NewIPv6ExtIter(wire.IPProtoHopByHop, network[wire.IPv6HeaderLen:])
	h, ok := it.Next()
	if !ok || h.Type != wire.IPProtoHopByHop {
		return false
	}
	o, err := wire.ParseIPv6Options(h.Raw)
	if err != nil {
		return false
	}
	_, ok = o.RouterAlert()
	return ok
}
