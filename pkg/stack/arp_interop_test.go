//go:build linux

package stack

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Kernel interop for ARP: our stack on one side of a tap, the Linux
// kernel (default sysctls: arp_accept=0, arp_ignore=0) on the other, in a
// namespace of its own.

var (
	arpKernelPrefix = netip.MustParsePrefix("10.79.0.1/24")
	arpKernelIP     = arpKernelPrefix.Addr()
	arpOurPrefix    = netip.MustParsePrefix("10.79.0.2/24")
	arpOurIP        = arpOurPrefix.Addr()
)

const arpInteropWait = 5 * time.Second

// arpLab makes the lab and a tap; with up, our stack has arpOurPrefix on
// it and is up.
func arpLab(t *testing.T, up bool) (*netlab.Lab, *netlab.TAP, *Stack, *NIC) {
	t.Helper()
	lab := netlab.New(t)
	tp := lab.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{arpKernelPrefix}})
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(tp.Endpoint, NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if up {
		if err := n.AddAddress(Address{Prefix: arpOurPrefix}); err != nil {
			t.Fatal(err)
		}
		n.SetUp(true)
	}
	return lab, tp, s, n
}

func needArping(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("arping"); err != nil {
		t.Skip("arping not installed")
	}
}

// TestKernelResolvesUsARP: the kernel's ARP request (prompted by ping)
// gets our unicast reply, and its neighbour entry for us holds our MAC;
// arping(8) sees our reply too.
func TestKernelResolvesUsARP(t *testing.T) {
	lab, tp, _, n := arpLab(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), arpInteropWait)
	defer cancel()
	// The echo itself goes unanswered while IPv4 input is a stub in this
	// branch; only the ARP exchange matters here.
	lab.Run(ctx, "ping", "-c1", "-W1", arpOurIP.String())
	ne, err := lab.WaitNeighbor(ctx, tp.Dev, arpOurIP, func(x netlab.Neighbor) bool {
		return x.MAC == n.MAC() && (x.HasState("REACHABLE") || x.HasState("STALE") || x.HasState("DELAY"))
	})
	if err != nil {
		t.Fatalf("kernel neighbour entry: %v", err)
	}
	t.Logf("kernel: %v %v %v", ne.Addr, ne.MAC, ne.State)
	if st := n.ARPStats(); st.InRequests < 1 || st.OutReplies < 1 {
		t.Errorf("ARP stats %+v", st)
	}

	needArping(t)
	ctx, cancel = context.WithTimeout(context.Background(), arpInteropWait)
	defer cancel()
	out, err := lab.Run(ctx, "arping", "-r", "-c", "1", "-C", "1", "-w", "3", "-i", tp.Dev, arpOurIP.String())
	if err != nil {
		t.Fatalf("arping: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != n.MAC().String() {
		t.Errorf("arping saw %q, want our MAC %v", got, n.MAC())
	}
}

// TestKernelProbeAnsweredARP: an RFC 5227 probe (sender IP 0.0.0.0, arping
// -0) for our address gets an answer, so a host probing for it finds it
// taken; the probe teaches our cache nothing.
func TestKernelProbeAnsweredARP(t *testing.T) {
	needArping(t)
	lab, tp, _, n := arpLab(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), arpInteropWait)
	defer cancel()
	out, err := lab.Run(ctx, "arping", "-0", "-r", "-c", "1", "-C", "1", "-w", "3", "-i", tp.Dev, arpOurIP.String())
	if err != nil {
		t.Fatalf("arping -0: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != n.MAC().String() {
		t.Errorf("arping -0 saw %q, want our MAC %v", got, n.MAC())
	}
	if e := n.ARP().Entries(); len(e) != 0 {
		t.Errorf("a probe was learnt: %+v", e)
	}
}

// TestStackResolvesKernelARP: our request gets the kernel's reply; the
// entry is REACHABLE with the kernel side's MAC.
func TestStackResolvesKernelARP(t *testing.T) {
	_, tp, _, n := arpLab(t, true)
	n.ARP().Resolve(arpKernelIP, arpIPv4Packet(arpOurIP, arpKernelIP, 8))
	e := waitARPEntry(t, n, arpKernelIP, func(e neighbor.Entry) bool { return e.State == neighbor.Reachable })
	if e.MAC != tp.MAC {
		t.Errorf("kernel at %v, want %v", e.MAC, tp.MAC)
	}
}

// TestKernelLearnsAnnouncementARP: the kernel holds a STALE entry for our
// address with a wrong MAC; when we add the address on an up NIC, our
// RFC 5227 announcement (a gratuitous request) replaces it. The kernel
// takes gratuitous ARP for an existing entry with arp_accept=0 and
// regardless of its 1 s locktime (arp_process: is_garp forces override),
// so no sysctl is needed.
func TestKernelLearnsAnnouncementARP(t *testing.T) {
	lab, tp, _, n := arpLab(t, false)
	n.SetUp(true)
	wrong := wire.MAC{0x02, 0, 0, 0, 0, 0x99}
	lab.MustIP(t, "neigh", "replace", arpOurIP.String(), "lladdr", wrong.String(), "dev", tp.Dev, "nud", "stale")
	ctx, cancel := context.WithTimeout(context.Background(), arpInteropWait)
	defer cancel()
	if _, err := lab.WaitNeighbor(ctx, tp.Dev, arpOurIP, func(x netlab.Neighbor) bool { return x.MAC == wrong }); err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(Address{Prefix: arpOurPrefix}); err != nil {
		t.Fatal(err)
	}
	ne, err := lab.WaitNeighbor(ctx, tp.Dev, arpOurIP, func(x netlab.Neighbor) bool { return x.MAC == n.MAC() })
	if err != nil {
		t.Fatalf("kernel kept the old MAC: %v", err)
	}
	if !ne.HasState("STALE") {
		t.Errorf("kernel entry %v, want STALE (a request asserts no reachability)", ne.State)
	}
	if st := n.ARPStats(); st.Announcements < 1 || st.InRequests != 0 {
		t.Errorf("ARP stats %+v: the update must come from our announcement alone", st)
	}
}

// TestKernelConflictDefendedARP: the kernel side (arping -U) announces our
// address with its own MAC; we record the conflict with the kernel's MAC
// and defend with an announcement that puts our MAC back into the
// kernel's neighbour table.
func TestKernelConflictDefendedARP(t *testing.T) {
	needArping(t)
	lab, tp, _, n := arpLab(t, true)
	time.Sleep(ARPAnnounceInterval + 500*time.Millisecond) // link-up announcements done
	wrong := wire.MAC{0x02, 0, 0, 0, 0, 0x98}
	lab.MustIP(t, "neigh", "replace", arpOurIP.String(), "lladdr", wrong.String(), "dev", tp.Dev, "nud", "stale")
	before := n.ARPStats()
	ctx, cancel := context.WithTimeout(context.Background(), arpInteropWait)
	defer cancel()
	if out, err := lab.Run(ctx, "arping", "-U", "-S", arpOurIP.String(), "-c", "1", "-w", "1", "-i", tp.Dev, arpOurIP.String()); err != nil {
		// arping exits non-zero when nothing answers, which is expected.
		t.Logf("arping -U: %v: %s", err, out)
	}
	deadline := time.Now().Add(arpInteropWait)
	for len(n.AddressConflicts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c := n.AddressConflicts()
	if len(c) != 1 || c[0].Addr != arpOurIP || c[0].MAC != tp.MAC || !c[0].Defended {
		t.Fatalf("conflicts %+v, want one defended, from %v", c, tp.MAC)
	}
	if _, err := lab.WaitNeighbor(ctx, tp.Dev, arpOurIP, func(x netlab.Neighbor) bool { return x.MAC == n.MAC() }); err != nil {
		t.Errorf("defence did not reach the kernel: %v", err)
	}
	if st := n.ARPStats(); st.Defences != before.Defences+1 || st.Announcements != before.Announcements+1 {
		t.Errorf("stats before %+v after %+v", before, st)
	}
}

// waitARPEntry polls our cache for addr until ok or arpInteropWait.
func waitARPEntry(t *testing.T, n *NIC, addr netip.Addr, ok func(neighbor.Entry) bool) neighbor.Entry {
	t.Helper()
	deadline := time.Now().Add(arpInteropWait)
	for {
		e, found := n.ARP().Lookup(addr)
		if found && ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry for %v: %+v (found %v)", addr, e, found)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
