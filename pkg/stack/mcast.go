package stack

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The host side of a group membership protocol on one NIC, shared by IGMP
// (igmp.go) and MLD (mld.go): both have a current version that reports
// with state records (IGMPv3, MLDv2) and older versions that report one
// group per message (IGMPv1/v2, MLDv1), the same timers and the same
// compatibility rules. The protocol supplies the messages (mcastProto).
//
// Locking: mcastHost.mu is a leaf lock. Nothing is sent and no NIC method
// is called while it is held: the decisions are made under the lock, the
// messages are built and written after it is released.

// Defaults of RFC 3376 §8 and RFC 3810 §9, which Linux also uses.
const (
	mcastRobustness    = 2
	mcastQueryInterval = 125 * time.Second
	// Unsolicited Report Interval: 1 s for IGMPv3/MLDv2 (RFC 3376 §8.11,
	// RFC 3810 §9.11; Linux igmpv3_unsolicited_report_interval), 10 s for
	// IGMPv1/v2 and MLDv1 (RFC 2236 §8.10, RFC 2710 §7.10).
	mcastUnsolicitedNew = time.Second
	mcastUnsolicitedOld = 10 * time.Second
)

// Record types common to IGMPv3 (RFC 3376 §4.2.12) and MLDv2 (RFC 3810
// §5.2.12): the numbers are the same.
const (
	recModeIsInclude   uint8 = 1
	recModeIsExclude   uint8 = 2
	recChangeToInclude uint8 = 3
	recChangeToExclude uint8 = 4
)

// mcastProto sends one protocol's messages. Versions are the protocol's
// own numbers (IGMP 1–3, MLD 1–2).
type mcastProto interface {
	// newest is the version the host speaks when no older querier is present.
	newest() int
	// reportable says whether membership of g is ever reported.
	reportable(g netip.Addr) bool
	// sendRecords sends the records in as many newest-version reports
	// as the link needs.
	sendRecords(n *NIC, recs []mcastRecord)
	// sendReport sends an older-version report for g.
	sendReport(n *NIC, g netip.Addr, version int)
	// sendLeave sends an older-version leave (done) for g, if the version has one.
	sendLeave(n *NIC, g netip.Addr, version int)
}

// mcastRecord is a group record of an IGMPv3 or MLDv2 report.
type mcastRecord struct {
	typ     uint8
	group   netip.Addr
	sources []netip.Addr
}

// groupRecords returns a source-less record of type typ for each group.
func groupRecords(groups []netip.Addr, typ uint8) []mcastRecord {
	out := make([]mcastRecord, len(groups))
	for i, g := range groups {
		out[i] = mcastRecord{typ: typ, group: g}
	}
	return out
}

// packRecords splits records into reports of at most maxLen bytes, given
// the report header, record header and address lengths: records go whole
// into a report while they fit, and a record whose sources alone do not
// fit is split into records of the same type with parts of the source list
// (RFC 3376 §4.2.16, RFC 3810 §5.2.15).
func packRecords(recs []mcastRecord, maxLen, hdrLen, recLen, addrLen int) [][]mcastRecord {
	room := max(maxLen-hdrLen, recLen+addrLen)
	maxSrc := (room - recLen) / addrLen
	var out [][]mcastRecord
	var cur []mcastRecord
	used := 0
	add := func(r mcastRecord) {
		l := recLen + addrLen*len(r.sources)
		if used+l > room && len(cur) > 0 {
			out = append(out, cur)
			cur, used = nil, 0
		}
		cur = append(cur, r)
		used += l
	}
	for _, r := range recs {
		if len(r.sources) <= maxSrc {
			add(r)
			continue
		}
		for src := r.sources; len(src) > 0; {
			k := min(maxSrc, len(src))
			add(mcastRecord{typ: r.typ, group: r.group, sources: src[:k]})
			src = src[k:]
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// mcastMaxQuerySources bounds the sources recorded from
// group-and-source-specific queries for one group; beyond it the answer is
// about the whole group, which includes them.
const mcastMaxQuerySources = 1024

// mcastTimer is a timer whose firing is ignored once it has been stopped
// or re-armed: each arming gets a fresh sequence number, checked under
// mcastHost.mu when it fires.
type mcastTimer struct {
	t   *time.Timer
	at  time.Time
	seq uint64
}

func (mt *mcastTimer) pending() bool { return mt.t != nil }

func (mt *mcastTimer) stop() {
	if mt.t != nil {
		mt.t.Stop()
		mt.t = nil
	}
	mt.at = time.Time{}
}

// fired reports whether a firing with sequence number seq is current, and
// marks the timer idle if so.
func (mt *mcastTimer) fired(seq uint64) bool {
	if mt.t == nil || mt.seq != seq {
		return false
	}
	mt.t, mt.at = nil, time.Time{}
	return true
}

// mcastGroup is the per-group state.
type mcastGroup struct {
	resp mcastTimer // response to a query about this group
	// srcs are the sources queried by the group-and-source-specific
	// queries the pending response answers; nil: the whole group.
	srcs   []netip.Addr
	change mcastTimer // next retransmission of the unsolicited report
	left   int        // retransmissions still to send
	rec    uint8      // recChangeToExclude after a join, recChangeToInclude after a leave
	// leaving: the group was left; the entry lives on only for the
	// retransmissions of the leave.
	leaving bool
	// reporter: we sent the last report for the group, so an older
	// version leave is ours to send (RFC 2236 §3, RFC 2710 §4).
	reporter bool
}

// mcastHost is the host side of IGMP or MLD on one NIC. Its zero value is
// ready: lockInit completes it on first use.
type mcastHost struct {
	mu         sync.Mutex
	n          *NIC
	p          mcastProto
	closed     bool
	seq        uint64
	robustness int
	qi         time.Duration // query interval, learned from queries
	// older[v] is when the Older Version Querier Present timer of
	// version v runs out (RFC 3376 §7.2.1, RFC 3810 §8.2.1).
	older   [3]time.Time
	general mcastTimer // response to a general query (newest version)
	groups  map[netip.Addr]*mcastGroup
}

func (h *mcastHost) lockInit(n *NIC, p mcastProto) {
	h.mu.Lock()
	if h.n == nil {
		h.n, h.p = n, p
		h.robustness, h.qi = mcastRobustness, mcastQueryInterval
		h.groups = make(map[netip.Addr]*mcastGroup)
	}
}

// modeLocked is the host compatibility mode: the oldest version whose
// querier was heard recently, else the newest (RFC 3376 §7.2.1, RFC 3810
// §8.2.1). The older-querier timers are deadlines, read lazily.
func (h *mcastHost) modeLocked(now time.Time) int {
	for v := 1; v < h.p.newest() && v < len(h.older); v++ {
		if now.Before(h.older[v]) {
			return v
		}
	}
	return h.p.newest()
}

func (h *mcastHost) armLocked(mt *mcastTimer, d time.Duration, fire func(seq uint64)) {
	mt.stop()
	h.seq++
	seq := h.seq
	mt.seq, mt.at = seq, time.Now().Add(d)
	mt.t = time.AfterFunc(d, func() { fire(seq) })
}

func (h *mcastHost) groupLocked(g netip.Addr) *mcastGroup {
	gs := h.groups[g]
	if gs == nil {
		gs = &mcastGroup{}
		h.groups[g] = gs
	}
	return gs
}

// unsolicited is the Unsolicited Report Interval of a version.
func (h *mcastHost) unsolicited(version int) time.Duration {
	if version == h.p.newest() {
		return mcastUnsolicitedNew
	}
	return mcastUnsolicitedOld
}

// armChangeLocked schedules the next retransmission of g's unsolicited
// report at a random time within the Unsolicited Report Interval (RFC 3376
// §5.1, RFC 3810 §6.1, RFC 2236 §3, RFC 2710 §4).
func (h *mcastHost) armChangeLocked(g netip.Addr, gs *mcastGroup, version int) {
	d := h.n.s.randDuration(h.unsolicited(version))
	h.armLocked(&gs.change, d, func(seq uint64) { h.changeFired(g, seq) })
}

// sendChange sends the unsolicited report of a join or leave of g in the
// given version.
func (h *mcastHost) sendChange(g netip.Addr, version int, rec uint8) {
	if !h.n.IsUp() {
		return
	}
	switch {
	case version == h.p.newest():
		h.p.sendRecords(h.n, groupRecords([]netip.Addr{g}, rec))
	case rec == recChangeToExclude:
		h.p.sendReport(h.n, g, version)
	default:
		h.p.sendLeave(h.n, g, version)
	}
}

// lockChange starts a change of our membership of g, the part joined and
// left share. Unless g is never reported (p.reportable) or h is closed —
// then ok is false and nothing is held — it returns with h.mu held, g's
// state (created if need be) with its pending query response cancelled,
// and the compatibility mode to report in.
func (h *mcastHost) lockChange(n *NIC, p mcastProto, g netip.Addr) (gs *mcastGroup, ver int, ok bool) {
	if !p.reportable(g) {
		return nil, 0, false
	}
	h.lockInit(n, p)
	if h.closed {
		h.mu.Unlock()
		return nil, 0, false
	}
	gs = h.groupLocked(g)
	gs.resp.stop()
	return gs, h.modeLocked(time.Now()), true
}

// joined reports the first join of g: a State-Change Report with
// CHANGE_TO_EXCLUDE {} in the newest version (RFC 3376 §5.1, RFC 3810
// §6.1), a report of the group in an older one (RFC 2236 §3, RFC 2710 §4),
// sent now and Robustness Variable − 1 more times.
func (h *mcastHost) joined(n *NIC, p mcastProto, g netip.Addr) {
	gs, ver, ok := h.lockChange(n, p, g)
	if !ok {
		return
	}
	gs.leaving, gs.reporter, gs.rec = false, true, recChangeToExclude
	gs.left = h.robustness - 1
	if gs.left > 0 {
		h.armChangeLocked(g, gs, ver)
	} else {
		gs.change.stop()
	}
	h.mu.Unlock()
	h.sendChange(g, ver, recChangeToExclude)
}

// left reports the last leave of g: CHANGE_TO_INCLUDE {} with
// retransmissions in the newest version, a single leave (done) in an older
// one, only if we were the last to report (RFC 2236 §3, RFC 2710 §4).
func (h *mcastHost) left(n *NIC, p mcastProto, g netip.Addr) {
	gs, ver, ok := h.lockChange(n, p, g)
	if !ok {
		return
	}
	gs.change.stop()
	if ver != p.newest() {
		reporter := gs.reporter
		delete(h.groups, g)
		h.mu.Unlock()
		if reporter {
			h.sendChange(g, ver, recChangeToInclude)
		}
		return
	}
	gs.leaving, gs.rec = true, recChangeToInclude
	gs.left = h.robustness - 1
	if gs.left > 0 {
		h.armChangeLocked(g, gs, ver)
	} else {
		delete(h.groups, g)
	}
	h.mu.Unlock()
	h.sendChange(g, ver, recChangeToInclude)
}

func (h *mcastHost) changeFired(g netip.Addr, seq uint64) {
	h.mu.Lock()
	gs := h.groups[g]
	if h.closed || gs == nil || !gs.change.fired(seq) || gs.left <= 0 {
		h.mu.Unlock()
		return
	}
	ver := h.modeLocked(time.Now())
	gs.left--
	rec := gs.rec
	if gs.left > 0 {
		h.armChangeLocked(g, gs, ver)
	} else if gs.leaving {
		delete(h.groups, g)
	}
	if rec == recChangeToExclude {
		gs.reporter = true
	}
	h.mu.Unlock()
	h.sendChange(g, ver, rec)
}

// query handles a query of the given version, about group g (the zero
// Addr or the unspecified address for a general query) and, for a
// group-and-source-specific query, sources. qrv and qi are the querier's
// robustness variable and query interval, 0 if the query does not carry
// them; joined lists the reportable groups the NIC is in (read by the
// caller, outside the lock).
func (h *mcastHost) query(n *NIC, p mcastProto, version int, g netip.Addr, sources []netip.Addr, maxResp time.Duration, qrv int, qi time.Duration, joined []netip.Addr) {
	h.lockInit(n, p)
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	now := time.Now()
	before := h.modeLocked(now)
	if version < p.newest() {
		// Older Version Querier Present Timeout: Robustness Variable ×
		// Query Interval + Query Response Interval (RFC 3376 §8.12, RFC
		// 3810 §9.12), from the values learned so far, as Linux computes it.
		h.older[version] = now.Add(time.Duration(h.robustness)*h.qi + maxResp)
	} else {
		// Hosts adopt the querier's QRV and QQI (RFC 3376 §4.1.6–4.1.7,
		// RFC 3810 §5.1.8–5.1.9); 0 means "not set".
		if qrv > 0 {
			h.robustness = qrv
		}
		if qi > 0 {
			h.qi = qi
		}
	}
	ver := h.modeLocked(now)
	if ver != before {
		// A change of compatibility mode cancels every pending response
		// and retransmission (RFC 3376 §7.2.1, RFC 3810 §8.2.1).
		h.cancelAllLocked()
	}
	general := !g.IsValid() || g.IsUnspecified()
	d := n.s.randDuration(maxResp)
	at := now.Add(d)
	if ver == p.newest() {
		// RFC 3376 §5.2, RFC 3810 §6.2: a pending general response due
		// no later makes any new response redundant; a general query
		// otherwise (re)arms the interface timer; a group-specific one
		// arms the group's timer, keeping the earlier of the two times.
		if h.general.pending() && !h.general.at.After(at) {
			return
		}
		if general {
			h.armLocked(&h.general, d, h.generalFired)
			return
		}
		if !containsAddr(joined, g) {
			return
		}
		gs := h.groupLocked(g)
		switch {
		case !gs.resp.pending():
			// Rule 3: the sources of a group-and-source query are kept
			// for the answer.
			gs.srcs = slices.Clone(sources)
		case len(sources) == 0 || len(gs.srcs) == 0:
			// Rule 4: a group query, or a pending answer about the whole
			// group already: the answer is about the whole group.
			gs.srcs = nil
		default:
			// Rule 5: the source lists merge.
			for _, a := range sources {
				if !slices.Contains(gs.srcs, a) {
					gs.srcs = append(gs.srcs, a)
				}
			}
		}
		if len(gs.srcs) > mcastMaxQuerySources {
			gs.srcs = nil
		}
		if !gs.resp.pending() || gs.resp.at.After(at) {
			h.armLocked(&gs.resp, d, func(seq uint64) { h.respFired(g, seq) })
		}
		return
	}
	// Older versions: a timer per group, reset only if the new delay is
	// shorter than what is left (RFC 2236 §3, RFC 2710 §4).
	for i, jg := range joined {
		if !general && jg != g {
			continue
		}
		if general && i > 0 {
			d = n.s.randDuration(maxResp) // each group its own random delay
		}
		gs := h.groupLocked(jg)
		gs.srcs = nil
		if !gs.resp.pending() || gs.resp.at.After(now.Add(d)) {
			h.armLocked(&gs.resp, d, func(seq uint64) { h.respFired(jg, seq) })
		}
	}
}

func (h *mcastHost) cancelAllLocked() {
	h.general.stop()
	for g, gs := range h.groups {
		gs.resp.stop()
		gs.srcs = nil
		gs.change.stop()
		gs.left = 0
		if gs.leaving {
			delete(h.groups, g)
		}
	}
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// generalFired answers a general query with one Current-State Report
// listing every group as MODE_IS_EXCLUDE {} (RFC 3376 §5.2, RFC 3810 §6.2).
func (h *mcastHost) generalFired(seq uint64) {
	h.mu.Lock()
	if h.closed || !h.general.fired(seq) {
		h.mu.Unlock()
		return
	}
	ver := h.modeLocked(time.Now())
	h.mu.Unlock()
	if ver != h.p.newest() || !h.n.IsUp() {
		return
	}
	groups := reportableGroups(h.n, h.p)
	if len(groups) > 0 {
		h.p.sendRecords(h.n, groupRecords(groups, recModeIsExclude))
	}
}

// respFired answers a query about one group.
func (h *mcastHost) respFired(g netip.Addr, seq uint64) {
	h.mu.Lock()
	gs := h.groups[g]
	if h.closed || gs == nil || !gs.resp.fired(seq) {
		h.mu.Unlock()
		return
	}
	ver := h.modeLocked(time.Now())
	gs.reporter = true
	srcs := gs.srcs
	gs.srcs = nil
	h.mu.Unlock()
	if !h.n.IsUp() || !h.n.InGroup(g) {
		return
	}
	if ver == h.p.newest() {
		// Our state for every group is EXCLUDE {}: the answer to a
		// group-and-source query for sources B is IS_IN(B − {}), to a
		// group query IS_EX {} (RFC 3376 §5.2, RFC 3810 §6.3).
		rec := mcastRecord{typ: recModeIsExclude, group: g}
		if len(srcs) > 0 {
			rec = mcastRecord{typ: recModeIsInclude, group: g, sources: srcs}
		}
		h.p.sendRecords(h.n, []mcastRecord{rec})
	} else {
		h.p.sendReport(h.n, g, ver)
	}
}

// heardReport handles another host's older-version report of g: in an
// older compatibility mode it suppresses our pending report, and we are
// no longer the last reporter (RFC 2236 §3, RFC 2710 §4). Newest-version
// hosts do not suppress (RFC 3376 §7.2.1, RFC 3810 §8.2.1).
func (h *mcastHost) heardReport(n *NIC, p mcastProto, g netip.Addr) {
	h.lockInit(n, p)
	defer h.mu.Unlock()
	if h.closed || h.modeLocked(time.Now()) == p.newest() {
		return
	}
	if gs := h.groups[g]; gs != nil && !gs.leaving {
		gs.resp.stop()
		gs.change.stop()
		gs.left = 0
		gs.reporter = false
	}
}

// reportableGroups returns the NIC's groups that the protocol reports.
func reportableGroups(n *NIC, p mcastProto) []netip.Addr {
	all := n.Groups()
	out := all[:0]
	for _, g := range all {
		if p.reportable(g) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare) // stable reports, easier to read
	return out
}

// joinedFor returns the groups a query is about that the NIC has joined
// and reports: all of them for a general query, else g if joined.
func (h *mcastHost) joinedFor(n *NIC, p mcastProto, g netip.Addr, general bool) []netip.Addr {
	if general {
		return reportableGroups(n, p)
	}
	if p.reportable(g) && n.InGroup(g) {
		return []netip.Addr{g}
	}
	return nil
}

func (h *mcastHost) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.groups != nil {
		h.cancelAllLocked()
		clear(h.groups)
	}
}

// mcastPending is a snapshot of what a mcastHost will send and when.
type mcastPending struct {
	Mode       int
	Robustness int
	General    time.Time                // zero if no general response is pending
	Resp       map[netip.Addr]time.Time // pending query responses per group
	Change     map[netip.Addr]time.Time // pending retransmissions per group
	Left       map[netip.Addr]int       // retransmissions still to send
}

func (h *mcastHost) pending(n *NIC, p mcastProto) mcastPending {
	h.lockInit(n, p)
	defer h.mu.Unlock()
	ps := mcastPending{
		Mode: h.modeLocked(time.Now()), Robustness: h.robustness, General: h.general.at,
		Resp: map[netip.Addr]time.Time{}, Change: map[netip.Addr]time.Time{}, Left: map[netip.Addr]int{},
	}
	for g, gs := range h.groups {
		if gs.resp.pending() {
			ps.Resp[g] = gs.resp.at
		}
		if gs.change.pending() {
			ps.Change[g] = gs.change.at
			ps.Left[g] = gs.left
		}
	}
	return ps
}
