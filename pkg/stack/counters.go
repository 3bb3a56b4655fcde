package stack

import (
	"fmt"
	"reflect"
	"sync/atomic"
)

// IPStats are the IPv4 counters of /proc/net/snmp's "Ip:" line, named and
// ordered as Linux prints them (RFC 4293 ipSystemStatsTable). Forwarding
// and DefaultTTL are settings and are filled in by Snapshot.
type IPStats struct {
	InReceives, InHdrErrors, InAddrErrors, ForwDatagrams, InUnknownProtos,
	InDiscards, InDelivers, OutRequests, OutDiscards, OutNoRoutes,
	ReasmTimeout, ReasmReqds, ReasmOKs, ReasmFails,
	FragOKs, FragFails, FragCreates, OutTransmits atomic.Uint64
}

// ICMPStats are the "Icmp:" counters of /proc/net/snmp (RFC 2011).
type ICMPStats struct {
	InMsgs, InErrors, InCsumErrors,
	InDestUnreachs, InTimeExcds, InParmProbs, InSrcQuenchs, InRedirects,
	InEchos, InEchoReps, InTimestamps, InTimestampReps, InAddrMasks, InAddrMaskReps,
	OutMsgs, OutErrors, OutRateLimitGlobal, OutRateLimitHost,
	OutDestUnreachs, OutTimeExcds, OutParmProbs, OutSrcQuenchs, OutRedirects,
	OutEchos, OutEchoReps, OutTimestamps, OutTimestampReps, OutAddrMasks, OutAddrMaskReps atomic.Uint64
}

// IP6Stats are the "Ip6…" counters of /proc/net/snmp6.
type IP6Stats struct {
	InReceives, InHdrErrors, InTooBigErrors, InNoRoutes, InAddrErrors,
	InUnknownProtos, InTruncatedPkts, InDiscards, InDelivers,
	OutForwDatagrams, OutRequests, OutDiscards, OutNoRoutes,
	ReasmTimeout, ReasmReqds, ReasmOKs, ReasmFails, FragOKs, FragFails, FragCreates,
	InMcastPkts, OutMcastPkts, InOctets, OutOctets, InMcastOctets, OutMcastOctets,
	InBcastOctets, OutBcastOctets, OutTransmits atomic.Uint64
}

// ICMP6Stats are the "Icmp6…" counters of /proc/net/snmp6.
type ICMP6Stats struct {
	InMsgs, InErrors, OutMsgs, OutErrors, InCsumErrors, OutRateLimitHost,
	InDestUnreachs, InPktTooBigs, InTimeExcds, InParmProblems, InEchos, InEchoReplies,
	InGroupMembQueries, InGroupMembResponses, InGroupMembReductions,
	InRouterSolicits, InRouterAdvertisements, InNeighborSolicits, InNeighborAdvertisements,
	InRedirects, InMLDv2Reports,
	OutDestUnreachs, OutPktTooBigs, OutTimeExcds, OutParmProblems, OutEchos, OutEchoReplies,
	OutGroupMembQueries, OutGroupMembResponses, OutGroupMembReductions,
	OutRouterSolicits, OutRouterAdvertisements, OutNeighborSolicits, OutNeighborAdvertisements,
	OutRedirects, OutMLDv2Reports atomic.Uint64
}

// MsgStats count ICMP messages by type ("IcmpMsg:" in /proc/net/snmp,
// "Icmp6InType…" in /proc/net/snmp6).
type MsgStats struct {
	In, Out [256]atomic.Uint64
}

// Stats are the stack's per-protocol counters. Every field is updated
// atomically; read them through Snapshot or with Load.
type Stats struct {
	IP       IPStats
	ICMP     ICMPStats
	ICMPMsg  MsgStats
	IP6      IP6Stats
	ICMP6    ICMP6Stats
	ICMP6Msg MsgStats
}

// Counter is one named counter of a snapshot.
type Counter struct {
	Name  string
	Value uint64
}

// Section is one line pair of /proc/net/snmp (or one prefix of
// /proc/net/snmp6): a name such as "Ip" and its counters in Linux's order.
type Section struct {
	Name     string
	Counters []Counter
}

// Get returns the named counter's value and whether the section has it.
func (s Section) Get(name string) (uint64, bool) {
	for _, c := range s.Counters {
		if c.Name == name {
			return c.Value, true
		}
	}
	return 0, false
}

func snapshotStruct(v any) []Counter {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	out := make([]Counter, 0, rt.NumField())
	for i := range rt.NumField() {
		c := rv.Field(i).Addr().Interface().(*atomic.Uint64)
		out = append(out, Counter{rt.Field(i).Name, c.Load()})
	}
	return out
}

func snapshotMsgs(m *MsgStats, inFmt, outFmt string) []Counter {
	var out []Counter
	// Linux prints every In type, then every Out type, skipping zeros.
	for t := range m.In {
		if v := m.In[t].Load(); v != 0 {
			out = append(out, Counter{fmt.Sprintf(inFmt, t), v})
		}
	}
	for t := range m.Out {
		if v := m.Out[t].Load(); v != 0 {
			out = append(out, Counter{fmt.Sprintf(outFmt, t), v})
		}
	}
	return out
}

// Snapshot returns the counters as /proc/net/snmp ("Ip", "Icmp",
// "IcmpMsg") and /proc/net/snmp6 ("Ip6", "Icmp6", "Icmp6Msg": names
// without the prefix) present them, for netstat -s.
func (s *Stack) Snapshot() []Section {
	st := &s.stats
	forwarding := uint64(2) // RFC 2011: 1 forwarding, 2 not
	if s.opts.IPv4Forwarding {
		forwarding = 1
	}
	ip := append([]Counter{{"Forwarding", forwarding}, {"DefaultTTL", uint64(s.opts.DefaultTTL)}},
		snapshotStruct(&st.IP)...)
	return []Section{
		{"Ip", ip},
		{"Icmp", snapshotStruct(&st.ICMP)},
		{"IcmpMsg", snapshotMsgs(&st.ICMPMsg, "InType%d", "OutType%d")},
		{"Ip6", snapshotStruct(&st.IP6)},
		{"Icmp6", snapshotStruct(&st.ICMP6)},
		{"Icmp6Msg", snapshotMsgs(&st.ICMP6Msg, "InType%d", "OutType%d")},
	}
}

// Stats returns the live counters (for tests and the daemon's exporters).
func (s *Stack) Stats() *Stats { return &s.stats }

// NICStats are one interface's counters, as ifconfig and
// /proc/net/dev print them.
type NICStats struct {
	RxPackets, RxBytes, RxErrors, RxDropped, RxMulticast atomic.Uint64
	TxPackets, TxBytes, TxErrors, TxDropped              atomic.Uint64
	// RxUnknownProto counts frames of an EtherType no protocol handles
	// (Linux rx_nohandler).
	RxUnknownProto atomic.Uint64
}

// NICStatsSnapshot is a plain copy of NICStats.
type NICStatsSnapshot struct {
	RxPackets, RxBytes, RxErrors, RxDropped, RxMulticast uint64
	TxPackets, TxBytes, TxErrors, TxDropped              uint64
	RxUnknownProto                                       uint64
}

// Snapshot copies the counters.
func (s *NICStats) Snapshot() NICStatsSnapshot {
	return NICStatsSnapshot{
		RxPackets: s.RxPackets.Load(), RxBytes: s.RxBytes.Load(), RxErrors: s.RxErrors.Load(),
		RxDropped: s.RxDropped.Load(), RxMulticast: s.RxMulticast.Load(),
		TxPackets: s.TxPackets.Load(), TxBytes: s.TxBytes.Load(), TxErrors: s.TxErrors.Load(),
		TxDropped: s.TxDropped.Load(), RxUnknownProto: s.RxUnknownProto.Load(),
	}
}
