package stack

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack/neighbor"
	"github.com/stackbox/stackbox/pkg/wire"
)

// sniffedARP is one captured ARP packet with its Ethernet addresses.
type sniffedARP struct {
	at             time.Time
	ethSrc, ethDst wire.MAC
	wire.ARP
}

// arps returns the ARP packets recorded.
func (l *frameLog) arps() []sniffedARP {
	var out []sniffedARP
	for _, c := range l.all() {
		if c.eth.EtherType() != wire.EtherTypeARP {
			continue
		}
		a, err := wire.ParseARP(c.eth.Payload())
		if err != nil {
			continue
		}
		out = append(out, sniffedARP{at: c.at, ethSrc: c.eth.Src(), ethDst: c.eth.Dst(), ARP: a})
	}
	return out
}

// announcements returns the recorded RFC 5227 announcements of addr.
func (l *frameLog) announcements(addr netip.Addr) []sniffedARP {
	var out []sniffedARP
	for _, a := range l.arps() {
		if a.Op() == wire.ARPRequest && a.SenderIP() == addr && a.TargetIP() == addr {
			out = append(out, a)
		}
	}
	return out
}

// arpFrame builds an Ethernet frame carrying an ARP packet.
func arpFrame(op uint16, ethSrc, ethDst, sha wire.MAC, sip netip.Addr, tha wire.MAC, tip netip.Addr) []byte {
	e := wire.EthernetFields{Dst: ethDst, Src: ethSrc, EtherType: wire.EtherTypeARP}
	a := wire.ARPFields{Op: op, SenderMAC: sha, SenderIP: sip, TargetMAC: tha, TargetIP: tip}
	b := make([]byte, e.Len()+a.Len())
	e.Encode(b)
	a.Encode(b[e.Len():])
	return b
}

// ipv4Packet builds an IPv4 packet (UDP protocol number, zero payload)
// from src to dst for resolution to queue.
func arpIPv4Packet(src, dst netip.Addr, payload int) *Packet {
	f := wire.IPv4Fields{TTL: 64, Protocol: 17, Src: src, Dst: dst, PayloadLen: payload}
	p := NewPacket(f.Len() + payload)
	f.Encode(p.Bytes())
	for i := range p.Bytes()[f.Len():] {
		p.Bytes()[f.Len()+i] = byte(i)
	}
	return p
}

func lookupARP(t testing.TB, n *NIC, a netip.Addr) (neighbor.Entry, bool) {
	t.Helper()
	return n.ARP().Lookup(a)
}

// TestARPResolveBetweenStacks: A resolves B (RFC 826): A's entry becomes
// REACHABLE with B's MAC, B learns A from the request (STALE, Linux
// neigh_event_ns), and the packet that waited goes out to B's MAC.
func TestARPResolveBetweenStacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 1)
		a := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		b := newTestHost(t, nw, Options{}, "10.0.0.2/24")
		synctest.Wait()
		bRx := b.nic.Stats().RxPackets.Load()

		pkt := arpIPv4Packet(mustAddr("10.0.0.1"), mustAddr("10.0.0.2"), 100)
		if _, ok := a.nic.ARP().Resolve(mustAddr("10.0.0.2"), pkt); ok {
			t.Fatal("resolved without asking")
		}
		synctest.Wait()
		e, ok := lookupARP(t, a.nic, mustAddr("10.0.0.2"))
		if !ok || e.State != neighbor.Reachable || e.MAC != b.nic.MAC() {
			t.Fatalf("A's entry for B: %+v %v, want REACHABLE %v", e, ok, b.nic.MAC())
		}
		e, ok = lookupARP(t, b.nic, mustAddr("10.0.0.1"))
		// STALE from the request (RFC 826 merge), or DELAY once B's IPv4
		// layer has answered the queued packet through the entry.
		if !ok || (e.State != neighbor.Stale && e.State != neighbor.Delay) || e.MAC != a.nic.MAC() {
			t.Fatalf("B's entry for A: %+v %v, want STALE or DELAY %v", e, ok, a.nic.MAC())
		}
		// B got the request and the queued IPv4 frame.
		if d := b.nic.Stats().RxPackets.Load() - bRx; d != 2 {
			t.Errorf("B received %d frames, want 2 (request, queued packet)", d)
		}
		st := a.nic.ARPStats()
		if st.OutRequests < 1 || st.InReplies != 1 {
			t.Errorf("A's ARP stats %+v", st)
		}
		if st := b.nic.ARPStats(); st.OutReplies != 1 || st.InRequests < 1 {
			t.Errorf("B's ARP stats %+v", st)
		}
		// Now the fast path answers at once.
		if mac, ok := a.nic.ARP().Resolve(mustAddr("10.0.0.2"), arpIPv4Packet(mustAddr("10.0.0.1"), mustAddr("10.0.0.2"), 1)); !ok || mac != b.nic.MAC() {
			t.Errorf("second Resolve: %v %v", mac, ok)
		}
	})
}

// TestARPQueuedPacketSent: the packet waiting for resolution reaches the
// neighbour unchanged, after our request and its reply, in one frame to
// the neighbour's MAC.
func TestARPQueuedPacketSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 2)
		peer := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		synctest.Wait()
		peer.reset()
		peerIP := mustAddr("10.0.0.7")
		pkt := arpIPv4Packet(mustAddr("10.0.0.1"), peerIP, 64)
		want := append([]byte(nil), pkt.Bytes()...)
		h.nic.ARP().Resolve(peerIP, pkt)
		synctest.Wait()
		reqs := peer.arps()
		if len(reqs) != 1 {
			t.Fatalf("%d ARP packets, want 1 request", len(reqs))
		}
		r := reqs[0]
		if r.Op() != wire.ARPRequest || r.ethDst != wire.BroadcastMAC || r.TargetIP() != peerIP ||
			!r.TargetMAC().IsZero() || r.SenderIP() != mustAddr("10.0.0.1") || r.SenderMAC() != h.nic.MAC() {
			t.Fatalf("request %v→%v op %d sender %v/%v target %v/%v", r.ethSrc, r.ethDst, r.Op(), r.SenderIP(), r.SenderMAC(), r.TargetIP(), r.TargetMAC())
		}
		if got := peer.frames(wire.EtherTypeIPv4); len(got) != 0 {
			t.Fatal("IPv4 sent before resolution")
		}
		peer.send(t, arpFrame(wire.ARPReply, peer.mac, h.nic.MAC(), peer.mac, peerIP, h.nic.MAC(), mustAddr("10.0.0.1")))
		synctest.Wait()
		got := peer.frames(wire.EtherTypeIPv4)
		if len(got) != 1 {
			t.Fatalf("%d IPv4 frames, want 1", len(got))
		}
		if got[0].Dst() != peer.mac || got[0].Src() != h.nic.MAC() || string(got[0].Payload()) != string(want) {
			t.Errorf("queued packet arrived %v→%v, payload equal %v", got[0].Src(), got[0].Dst(), string(got[0].Payload()) == string(want))
		}
		if e, _ := lookupARP(t, h.nic, peerIP); e.State != neighbor.Reachable || e.MAC != peer.mac {
			t.Errorf("entry %+v", e)
		}
	})
}

// TestARPRequestSource: the request's sender address is the waiting
// packet's source when local (Linux arp_announce=0), else the NIC's
// address on the target's subnet; a host with no IPv4 address asks with
// sender 0.0.0.0; a unicast probe goes to the cached MAC.
func TestARPRequestSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 3)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "192.168.5.1/24", "10.0.0.1/24", "10.0.0.5/24")
		synctest.Wait()
		cases := []struct {
			name         string
			prompt       *Packet
			has          bool
			target, want string
		}{
			{"prompt source local", arpIPv4Packet(mustAddr("10.0.0.5"), mustAddr("10.0.0.9"), 0), true, "10.0.0.9", "10.0.0.5"},
			{"prompt source on other subnet still local", arpIPv4Packet(mustAddr("192.168.5.1"), mustAddr("10.0.0.9"), 0), true, "10.0.0.9", "192.168.5.1"},
			{"forwarded packet", arpIPv4Packet(mustAddr("172.16.0.1"), mustAddr("10.0.0.9"), 0), true, "10.0.0.9", "10.0.0.1"},
			{"no prompt", nil, false, "10.0.0.9", "10.0.0.1"},
			{"no prompt, off-subnet target", nil, false, "172.20.0.1", "192.168.5.1"},
		}
		for _, c := range cases {
			sn.reset()
			h.nic.sendARPRequest(mustAddr(c.target), wire.MAC{}, c.prompt, c.has)
			synctest.Wait()
			a := sn.arps()
			if len(a) != 1 || a[0].SenderIP() != mustAddr(c.want) || a[0].TargetIP() != mustAddr(c.target) {
				t.Errorf("%s: got %d requests %v", c.name, len(a), a)
			}
		}

		sn.reset()
		probeTo := wire.MAC{2, 0, 0, 0, 0, 0x42}
		h.nic.sendARPRequest(mustAddr("10.0.0.9"), probeTo, nil, false)
		h.nic.sendARPRequest(mustAddr("10.0.0.9"), sn.mac, nil, false)
		synctest.Wait()
		// The first probe goes to an unknown MAC, which the switch floods.
		a := sn.arps()
		if len(a) != 2 || a[0].ethDst != probeTo || a[0].TargetMAC() != probeTo || a[1].ethDst != sn.mac {
			t.Errorf("unicast probes: %v", a)
		}

		bare := newTestHost(t, nw, Options{})
		synctest.Wait()
		sn.reset()
		bare.nic.sendARPRequest(mustAddr("10.0.0.9"), wire.MAC{}, nil, false)
		synctest.Wait()
		if a := sn.arps(); len(a) != 1 || !a[0].SenderIP().IsUnspecified() || a[0].SenderMAC() != bare.nic.MAC() {
			t.Errorf("request from an address-less host: %v", a)
		}
	})
}

// TestARPAnswers: requests for our address get a unicast reply with the
// NIC's MAC and create a STALE entry for the requester; requests for any
// local address of the host are answered too (arp_ignore=0); requests for
// others are not answered and create nothing; an RFC 5227 probe is
// answered (target IP 0.0.0.0) without touching the cache; reflected
// packets carrying our own MAC are ignored.
func TestARPAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 4)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		other := newTestNet(t, 5)
		eth1, err := h.s.AddNIC(other.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := eth1.AddAddress(Address{Prefix: netip.MustParsePrefix("172.16.1.1/24")}); err != nil {
			t.Fatal(err)
		}
		eth1.SetUp(true)
		synctest.Wait()
		us := h.nic.MAC()
		snIP := mustAddr("10.0.0.50")

		for _, tip := range []string{"10.0.0.1", "172.16.1.1"} {
			sn.reset()
			sn.send(t, arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, snIP, wire.MAC{}, mustAddr(tip)))
			synctest.Wait()
			a := sn.arps()
			if len(a) != 1 {
				t.Fatalf("request for %s: %d answers", tip, len(a))
			}
			r := a[0]
			if r.Op() != wire.ARPReply || r.ethDst != sn.mac || r.ethSrc != us || r.SenderMAC() != us ||
				r.SenderIP() != mustAddr(tip) || r.TargetMAC() != sn.mac || r.TargetIP() != snIP {
				t.Errorf("reply for %s: %v→%v op %d %v/%v → %v/%v", tip, r.ethSrc, r.ethDst, r.Op(), r.SenderIP(), r.SenderMAC(), r.TargetIP(), r.TargetMAC())
			}
		}
		if e, ok := lookupARP(t, h.nic, snIP); !ok || e.State != neighbor.Stale || e.MAC != sn.mac {
			t.Errorf("requester's entry %+v %v", e, ok)
		}

		// Not ours: no answer, nothing learnt.
		sn.reset()
		stranger := mustAddr("10.0.0.60")
		sn.send(t, arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, stranger, wire.MAC{}, mustAddr("10.0.0.99")))
		synctest.Wait()
		if a := sn.arps(); len(a) != 0 {
			t.Errorf("answered a request for someone else: %v", a)
		}
		if _, ok := lookupARP(t, h.nic, stranger); ok {
			t.Error("learnt from a request not for us (arp_accept=0)")
		}

		// Probe.
		sn.reset()
		sn.send(t, arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, netip.IPv4Unspecified(), wire.MAC{}, mustAddr("10.0.0.1")))
		synctest.Wait()
		a := sn.arps()
		if len(a) != 1 || a[0].Op() != wire.ARPReply || !a[0].TargetIP().IsUnspecified() || a[0].ethDst != sn.mac || a[0].SenderIP() != mustAddr("10.0.0.1") {
			t.Errorf("probe answer %v", a)
		}
		if n := len(h.nic.ARP().Entries()); n != 1 {
			t.Errorf("%d entries after the probe, want 1 (probes are not learnt)", n)
		}
		if st := h.nic.ARPStats(); st.Conflicts != 0 {
			t.Errorf("a probe for an address in use counted as a conflict: %+v", st)
		}

		// Reflected: sender MAC is ours.
		sn.reset()
		before := h.nic.ARPStats()
		h.nic.DeliverFrame(arpFrame(wire.ARPRequest, us, wire.BroadcastMAC, us, mustAddr("10.0.0.77"), wire.MAC{}, mustAddr("10.0.0.1")))
		synctest.Wait()
		if a := sn.arps(); len(a) != 0 || h.nic.ARPStats().OutReplies != before.OutReplies {
			t.Errorf("answered our own reflected request: %v", a)
		}
		if _, ok := lookupARP(t, h.nic, mustAddr("10.0.0.77")); ok {
			t.Error("learnt from our own reflected request")
		}
	})
}

// TestARPGratuitousUpdatesEntry: an announcement (RFC 5227 §3) or an
// unsolicited reply changes an existing entry to the new MAC (RFC 826
// merge) once the 1 s lock time has passed, but creates none.
func TestARPGratuitousUpdatesEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 6)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		synctest.Wait()
		ip := mustAddr("10.0.0.20")
		old := wire.MAC{2, 0, 0, 0, 0, 0x20}
		sn.send(t, arpFrame(wire.ARPRequest, old, wire.BroadcastMAC, old, ip, wire.MAC{}, mustAddr("10.0.0.1")))
		synctest.Wait()
		if e, ok := lookupARP(t, h.nic, ip); !ok || e.MAC != old {
			t.Fatalf("entry %+v %v", e, ok)
		}
		time.Sleep(2 * time.Second) // past the lock time
		newMAC := wire.MAC{2, 0, 0, 0, 0, 0x21}
		sn.send(t, arpFrame(wire.ARPRequest, newMAC, wire.BroadcastMAC, newMAC, ip, wire.MAC{}, ip))
		synctest.Wait()
		if e, _ := lookupARP(t, h.nic, ip); e.MAC != newMAC || e.State != neighbor.Stale {
			t.Errorf("after announcement: %+v, want STALE %v", e, newMAC)
		}
		time.Sleep(2 * time.Second)
		third := wire.MAC{2, 0, 0, 0, 0, 0x22}
		sn.send(t, arpFrame(wire.ARPReply, third, wire.BroadcastMAC, third, ip, wire.BroadcastMAC, ip))
		synctest.Wait()
		if e, _ := lookupARP(t, h.nic, ip); e.MAC != third {
			t.Errorf("after gratuitous reply: %+v, want %v", e, third)
		}
		unknown := mustAddr("10.0.0.21")
		sn.send(t, arpFrame(wire.ARPRequest, old, wire.BroadcastMAC, old, unknown, wire.MAC{}, unknown))
		synctest.Wait()
		if _, ok := lookupARP(t, h.nic, unknown); ok {
			t.Error("an announcement created an entry (arp_accept=0)")
		}
	})
}

// TestARPAnnouncementUpdatesPeer: a stack whose MAC changed announces its
// address when the NIC comes up, and the peer's entry follows.
func TestARPAnnouncementUpdatesPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 7)
		a := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		b := newTestHost(t, nw, Options{}, "10.0.0.2/24")
		synctest.Wait()
		b.nic.ARP().Resolve(mustAddr("10.0.0.1"), arpIPv4Packet(mustAddr("10.0.0.2"), mustAddr("10.0.0.1"), 0))
		synctest.Wait()
		if e, _ := lookupARP(t, b.nic, mustAddr("10.0.0.1")); e.MAC != a.nic.MAC() || e.State != neighbor.Reachable {
			t.Fatalf("B's entry %+v", e)
		}
		time.Sleep(5 * time.Second)
		a.nic.SetUp(false)
		newMAC := wire.MAC{2, 0xaa, 0, 0, 0, 1}
		if err := a.nic.SetMAC(newMAC); err != nil {
			t.Fatal(err)
		}
		a.nic.SetUp(true)
		synctest.Wait()
		if e, _ := lookupARP(t, b.nic, mustAddr("10.0.0.1")); e.MAC != newMAC || e.State != neighbor.Stale {
			t.Errorf("B's entry after A's announcement %+v, want STALE %v", e, newMAC)
		}
	})
}

// TestARPAnnounceTiming: RFC 5227 §2.3: ANNOUNCE_NUM (2) announcements
// ANNOUNCE_INTERVAL (2 s) apart when an address is added to an up NIC and
// when a NIC with addresses comes up; removing the address or taking the
// NIC down stops the series; the loopback never announces.
func TestARPAnnounceTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 8)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		start := time.Now()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		check := func(what string, addr netip.Addr, t0 time.Time, n int) {
			t.Helper()
			an := sn.announcements(addr)
			if len(an) != n {
				t.Fatalf("%s: %d announcements, want %d", what, len(an), n)
			}
			for i, a := range an {
				if want := t0.Add(time.Duration(i) * ARPAnnounceInterval); !a.at.Equal(want) {
					t.Errorf("%s: announcement %d at %v, want %v", what, i, a.at.Sub(start), want.Sub(start))
				}
				if a.ethDst != wire.BroadcastMAC || a.SenderMAC() != h.nic.MAC() || !a.TargetMAC().IsZero() {
					t.Errorf("%s: announcement %v→%v sha %v tha %v", what, a.ethSrc, a.ethDst, a.SenderMAC(), a.TargetMAC())
				}
			}
		}
		check("link up", mustAddr("10.0.0.1"), start, ARPAnnounceNum)

		t1 := time.Now()
		h.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.2/24")})
		time.Sleep(30 * time.Second)
		check("address added", mustAddr("10.0.0.2"), t1, ARPAnnounceNum)

		t2 := time.Now()
		h.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.3/24")})
		time.Sleep(time.Second)
		h.nic.RemoveAddress(mustAddr("10.0.0.3"))
		time.Sleep(30 * time.Second)
		check("removed after 1 s", mustAddr("10.0.0.3"), t2, 1)

		t3 := time.Now()
		h.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.4/24")})
		time.Sleep(time.Second)
		h.nic.SetUp(false)
		time.Sleep(30 * time.Second)
		check("down after 1 s", mustAddr("10.0.0.4"), t3, 1)

		// Added while down: nothing until up, then the full series.
		h.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.5/24")})
		time.Sleep(5 * time.Second)
		check("added while down", mustAddr("10.0.0.5"), time.Time{}, 0)
		t4 := time.Now()
		h.nic.SetUp(true)
		time.Sleep(30 * time.Second)
		check("up again", mustAddr("10.0.0.5"), t4, ARPAnnounceNum)

		// Closing the stack stops a running series without a panic.
		h.nic.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.6/24")})
		h.s.Close()
		time.Sleep(30 * time.Second)
		if n := len(sn.announcements(mustAddr("10.0.0.6"))); n != 1 {
			t.Errorf("%d announcements after close, want 1", n)
		}
		if st := h.s.Loopback().ARPStats(); st.Announcements != 0 || st.OutRequests != 0 {
			t.Errorf("loopback ARP stats %+v", st)
		}
	})
}

// TestARPConflictDefence: RFC 5227 §2.4: an ARP packet from another MAC
// claiming our address is a conflict; we record it, keep no cache entry
// for our own address, and defend with one announcement, at most once per
// DEFEND_INTERVAL (10 s).
func TestARPConflictDefence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 9)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		time.Sleep(10 * time.Second) // the link-up announcements are over
		ours := mustAddr("10.0.0.1")
		claim := func(op uint16) {
			sn.send(t, arpFrame(op, sn.mac, wire.BroadcastMAC, sn.mac, ours, wire.MAC{}, ours))
			synctest.Wait()
		}
		sn.reset()
		t0 := time.Now()
		claim(wire.ARPRequest)
		an := sn.announcements(ours)
		if len(an) != 1 || an[0].SenderMAC() != h.nic.MAC() || an[0].ethDst != wire.BroadcastMAC {
			t.Fatalf("defence: %v", an)
		}
		c := h.nic.AddressConflicts()
		if len(c) != 1 || c[0].Addr != ours || c[0].MAC != sn.mac || !c[0].Time.Equal(t0) || !c[0].Defended {
			t.Fatalf("conflicts %+v", c)
		}
		if _, ok := lookupARP(t, h.nic, ours); ok {
			t.Error("our own address entered the cache")
		}

		time.Sleep(3 * time.Second)
		claim(wire.ARPReply) // within DEFEND_INTERVAL: recorded, not defended
		if n := len(sn.announcements(ours)); n != 1 {
			t.Errorf("%d announcements after a second conflict 3 s later, want 1", n)
		}
		time.Sleep(7 * time.Second) // 10 s after the defence
		claim(wire.ARPRequest)
		if n := len(sn.announcements(ours)); n != 2 {
			t.Errorf("%d announcements after a conflict 10 s later, want 2", n)
		}
		// A request from the claimant for another host also carries the
		// conflicting binding.
		time.Sleep(time.Second)
		sn.send(t, arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, ours, wire.MAC{}, mustAddr("10.0.0.9")))
		synctest.Wait()

		c = h.nic.AddressConflicts()
		st := h.nic.ARPStats()
		if len(c) != 4 || st.Conflicts != 4 || st.Defences != 2 {
			t.Fatalf("conflicts %+v stats %+v", c, st)
		}
		if c[1].Defended || !c[2].Defended || c[3].Defended {
			t.Errorf("defended flags %v %v %v %v", c[0].Defended, c[1].Defended, c[2].Defended, c[3].Defended)
		}
		if n := len(sn.arps()) - len(sn.announcements(ours)); n != 0 {
			t.Errorf("%d other ARP packets sent (no replies to a claimant)", n)
		}
		// The address stays configured (we do not give it up).
		if !h.s.IsLocal(ours) {
			t.Error("address dropped")
		}
	})
}

// TestProxyARP: with proxy ARP on and forwarding on, a router answers for
// a target it routes through another NIC, with the MAC of the NIC the
// request came in on; not for targets routed back out of that NIC, not
// with proxy ARP off, and not with forwarding off (Linux arp_fwd_proxy).
func TestProxyARP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 10)
		sn := newWirePort(t, nw)
		r := newTestHost(t, nw, Options{IPv4Forwarding: true}, "10.0.0.1/24")
		far := newTestNet(t, 11)
		eth1, _ := r.s.AddNIC(far.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
		eth1.AddAddress(Address{Prefix: netip.MustParsePrefix("10.1.0.1/24")})
		eth1.SetUp(true)
		synctest.Wait()
		snIP := mustAddr("10.0.0.50")
		ask := func(tip string) []sniffedARP {
			sn.reset()
			sn.send(t, arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, snIP, wire.MAC{}, mustAddr(tip)))
			synctest.Wait()
			return sn.arps()
		}
		if r.nic.ProxyARP() {
			t.Fatal("proxy ARP on by default")
		}
		if a := ask("10.1.0.7"); len(a) != 0 {
			t.Fatalf("answered with proxy ARP off: %v", a)
		}
		r.nic.SetProxyARP(true)
		if !r.nic.ProxyARP() {
			t.Fatal("SetProxyARP(true) did not stick")
		}
		a := ask("10.1.0.7")
		if len(a) != 1 || a[0].Op() != wire.ARPReply || a[0].SenderIP() != mustAddr("10.1.0.7") ||
			a[0].SenderMAC() != r.nic.MAC() || a[0].TargetIP() != snIP || a[0].ethDst != sn.mac {
			t.Fatalf("proxy reply %v", a)
		}
		if st := r.nic.ARPStats(); st.ProxyReplies != 1 {
			t.Errorf("stats %+v", st)
		}
		if a := ask("10.0.0.99"); len(a) != 0 {
			t.Errorf("proxied a target on the requester's own link: %v", a)
		}
		if a := ask("192.0.2.1"); len(a) != 0 {
			t.Errorf("proxied a target with no route: %v", a)
		}
		r.s.SetForwarding(false, false)
		if a := ask("10.1.0.7"); len(a) != 0 {
			t.Errorf("proxied without forwarding: %v", a)
		}
		r.s.SetForwarding(false, true)
		r.nic.SetProxyARP(false)
		if a := ask("10.1.0.7"); len(a) != 0 {
			t.Errorf("proxied after SetProxyARP(false): %v", a)
		}
	})
}

// TestARPStaticEntry: an `arp -s` entry is used at once by output and
// survives ARP packets claiming another MAC for its address.
func TestARPStaticEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 12)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		synctest.Wait()
		ip, static := mustAddr("10.0.0.30"), wire.MAC{2, 0, 0, 0, 0, 0x30}
		if err := h.nic.ARP().AddStatic(ip, static); err != nil {
			t.Fatal(err)
		}
		sn.reset()
		if mac, ok := h.nic.ARP().Resolve(ip, arpIPv4Packet(mustAddr("10.0.0.1"), ip, 0)); !ok || mac != static {
			t.Errorf("Resolve %v %v", mac, ok)
		}
		if err := h.nic.sendIPv4(ip, arpIPv4Packet(mustAddr("10.0.0.1"), ip, 8)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if f := sn.frames(wire.EtherTypeIPv4); len(f) != 1 || f[0].Dst() != static {
			t.Errorf("IPv4 frames %v (flooded to the unknown static MAC)", f)
		}
		if a := sn.arps(); len(a) != 0 {
			t.Errorf("ARP sent for a static entry: %v", a)
		}
		time.Sleep(5 * time.Second)
		for _, op := range []uint16{wire.ARPRequest, wire.ARPReply} {
			sn.send(t, arpFrame(op, sn.mac, wire.BroadcastMAC, sn.mac, ip, wire.MAC{}, ip))
			sn.send(t, arpFrame(op, sn.mac, h.nic.MAC(), sn.mac, ip, h.nic.MAC(), mustAddr("10.0.0.1")))
		}
		synctest.Wait()
		if e, _ := lookupARP(t, h.nic, ip); e.State != neighbor.Permanent || e.MAC != static {
			t.Errorf("static entry became %+v", e)
		}
	})
}

// TestARPResolutionFails: nobody answers: three broadcast requests one
// second apart, then the entry is FAILED and the queued packet is handed
// to Unreachable (counted as an IP OutDiscard).
func TestARPResolutionFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 13)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		synctest.Wait()
		sn.reset()
		ip := mustAddr("10.0.0.99")
		start := time.Now()
		h.nic.ARP().Resolve(ip, arpIPv4Packet(mustAddr("10.0.0.1"), ip, 0))
		time.Sleep(10 * time.Second)
		var a []sniffedARP
		for _, r := range sn.arps() {
			if r.TargetIP() == ip { // not the link-up announcement at 2 s
				a = append(a, r)
			}
		}
		if len(a) != 3 {
			for _, r := range a {
				t.Logf("%v %v→%v %v", r.at.Sub(start), r.SenderIP(), r.TargetIP(), r.ethDst)
			}
			t.Fatalf("%d requests, want 3", len(a))
		}
		for i, r := range a {
			if r.TargetIP() != ip || r.ethDst != wire.BroadcastMAC || r.at.Sub(start) != time.Duration(i)*time.Second {
				t.Errorf("request %d: target %v to %v at %v", i, r.TargetIP(), r.ethDst, r.at.Sub(start))
			}
		}
		if e, ok := lookupARP(t, h.nic, ip); !ok || e.State != neighbor.Failed {
			t.Errorf("entry %+v %v, want FAILED", e, ok)
		}
		if d := h.s.stats.IP.OutDiscards.Load(); d != 1 {
			t.Errorf("OutDiscards %d, want 1", d)
		}
	})
}

// TestARPBadInput: malformed, truncated and foreign-hardware ARP is
// dropped and counted as an input error; well-formed ARP with bogus
// addresses or an unknown opcode is dropped and counted by ARP; none is
// answered or learnt.
func TestARPBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 14)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		synctest.Wait()
		sn.reset()
		us := mustAddr("10.0.0.1")
		good := func() []byte {
			return arpFrame(wire.ARPRequest, sn.mac, wire.BroadcastMAC, sn.mac, mustAddr("10.0.0.50"), wire.MAC{}, us)
		}
		mod := func(f func(b []byte) []byte) []byte { return f(good()) }
		const off = wire.EthernetHeaderLen
		parseErrs := map[string][]byte{
			"empty":          mod(func(b []byte) []byte { return b[:off] }),
			"short":          mod(func(b []byte) []byte { return b[:off+27] }),
			"token ring":     mod(func(b []byte) []byte { b[off+1] = 6; return b }),
			"IPv6 protocol":  mod(func(b []byte) []byte { b[off+2], b[off+3] = 0x86, 0xdd; return b }),
			"hlen 8":         mod(func(b []byte) []byte { b[off+4] = 8; return b }),
			"plen 16":        mod(func(b []byte) []byte { b[off+5] = 16; return b }),
			"header garbage": mod(func(b []byte) []byte { copy(b[off:], "\xff\xff\xff\xff\xff\xff\xff\xff"); return b }),
		}
		for name, f := range parseErrs {
			before := h.nic.Stats().RxErrors.Load()
			h.nic.DeliverFrame(f)
			if h.nic.Stats().RxErrors.Load() != before+1 {
				t.Errorf("%s: RxErrors not counted", name)
			}
		}
		bcast := wire.BroadcastMAC
		drops := map[string][]byte{
			"op 3":                       mod(func(b []byte) []byte { b[off+7] = 3; return b }),
			"multicast sender MAC":       arpFrame(wire.ARPRequest, sn.mac, bcast, wire.MAC{1, 0, 0x5e, 0, 0, 1}, mustAddr("10.0.0.50"), wire.MAC{}, us),
			"zero sender MAC":            arpFrame(wire.ARPRequest, sn.mac, bcast, wire.MAC{}, mustAddr("10.0.0.50"), wire.MAC{}, us),
			"broadcast sender IP":        arpFrame(wire.ARPRequest, sn.mac, bcast, sn.mac, broadcast4, wire.MAC{}, us),
			"multicast sender IP":        arpFrame(wire.ARPRequest, sn.mac, bcast, sn.mac, mustAddr("224.0.0.5"), wire.MAC{}, us),
			"loopback sender IP":         arpFrame(wire.ARPRequest, sn.mac, bcast, sn.mac, mustAddr("127.0.0.1"), wire.MAC{}, us),
			"loopback target":            arpFrame(wire.ARPRequest, sn.mac, bcast, sn.mac, mustAddr("10.0.0.50"), wire.MAC{}, mustAddr("127.0.0.1")),
			"multicast target":           arpFrame(wire.ARPRequest, sn.mac, bcast, sn.mac, mustAddr("10.0.0.50"), wire.MAC{}, mustAddr("224.0.0.1")),
			"for another host (promisc)": arpFrame(wire.ARPRequest, sn.mac, wire.MAC{2, 9, 9, 9, 9, 9}, sn.mac, mustAddr("10.0.0.50"), wire.MAC{}, us),
		}
		h.nic.SetPromiscuous(true)
		for name, f := range drops {
			before := h.nic.ARPStats().Dropped
			h.nic.DeliverFrame(f)
			if h.nic.ARPStats().Dropped != before+1 {
				t.Errorf("%s: not counted as an ARP drop", name)
			}
		}
		synctest.Wait()
		if a := sn.arps(); len(a) != 0 {
			t.Errorf("answered bad input: %v", a)
		}
		if e := h.nic.ARP().Entries(); len(e) != 0 {
			t.Errorf("learnt from bad input: %+v", e)
		}
		// The unmodified packet is answered, with Ethernet padding too.
		padded := append(good(), make([]byte, 18)...)
		h.nic.DeliverFrame(padded)
		synctest.Wait()
		if a := sn.arps(); len(a) != 1 {
			t.Errorf("valid padded request: %d answers", len(a))
		}
	})
}

// FuzzARPInput feeds arbitrary ARP payloads to a configured NIC with proxy
// ARP and forwarding on: no panic, and whatever it answers is a valid ARP
// packet from the NIC's MAC.
func FuzzARPInput(f *testing.F) {
	mk := func(op uint16, sip, tip string) []byte {
		a := wire.ARPFields{Op: op, SenderMAC: wire.MAC{2, 0, 0, 0, 0, 9}, SenderIP: mustAddr(sip), TargetIP: mustAddr(tip)}
		b := make([]byte, a.Len())
		a.Encode(b)
		return b
	}
	f.Add(mk(wire.ARPRequest, "10.0.0.9", "10.0.0.1"), uint8(0))
	f.Add(mk(wire.ARPReply, "10.0.0.9", "10.0.0.1"), uint8(0))
	f.Add(mk(wire.ARPRequest, "10.0.0.1", "10.0.0.1"), uint8(1))
	f.Add(mk(wire.ARPRequest, "0.0.0.0", "10.0.0.1"), uint8(1))
	f.Add(mk(wire.ARPRequest, "10.0.0.9", "10.1.0.5"), uint8(1))
	f.Add([]byte{0, 1, 8, 0, 6, 4}, uint8(2))
	f.Add([]byte{}, uint8(3))

	nw := emu.NewNetwork(1)
	defer nw.Close()
	s := New(Options{IPv4Forwarding: true})
	defer s.Close()
	n, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		f.Fatal(err)
	}
	n.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.1/24")})
	n.SetUp(true)
	n.SetProxyARP(true)
	far := emu.NewNetwork(2)
	defer far.Close()
	n2, _ := s.AddNIC(far.NewPort(emu.PortConfig{}), NICOptions{NoDAD: true, NoAutoconf: true})
	n2.AddAddress(Address{Prefix: netip.MustParsePrefix("10.1.0.1/24")})
	n2.SetUp(true)
	obs := newWirePort(f, nw)
	f.Fuzz(func(t *testing.T, payload []byte, pt uint8) {
		n.handleARP(payload, PacketType(pt%4))
		// What arrived so far (from this input or an earlier one), taken
		// so that the log stays small over a long fuzzing run.
		for _, fr := range obs.take(nil) {
			if fr.eth.EtherType() != wire.EtherTypeARP {
				continue
			}
			a, err := wire.ParseARP(fr.eth.Payload())
			if err != nil || a.SenderMAC() != n.MAC() || fr.eth.Src() != n.MAC() {
				t.Fatal("bad ARP sent")
			}
		}
	})
}

// TestARPOnVLAN: a VLAN sub-interface runs ARP of its own: it announces
// its address and answers a tagged request for it with a frame tagged with
// its VLAN id, learning the requester in its own cache, not the parent's.
func TestARPOnVLAN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newTestNet(t, 15)
		sn := newWirePort(t, nw)
		h := newTestHost(t, nw, Options{}, "10.0.0.1/24")
		v, err := h.s.AddVLAN(h.nic, 42, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.AddAddress(Address{Prefix: netip.MustParsePrefix("10.42.0.1/24")}); err != nil {
			t.Fatal(err)
		}
		v.SetUp(true)
		synctest.Wait()
		an := sn.announcements(mustAddr("10.42.0.1"))
		if len(an) != 1 {
			t.Fatalf("%d VLAN announcements so far, want 1", len(an))
		}
		sn.reset()
		e := wire.EthernetFields{Dst: wire.BroadcastMAC, Src: sn.mac, EtherType: wire.EtherTypeARP, NumTags: 1}
		e.Tags[0] = wire.VLANTag{VID: 42}
		a := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: sn.mac, SenderIP: mustAddr("10.42.0.9"), TargetIP: mustAddr("10.42.0.1")}
		f := make([]byte, e.Len()+a.Len())
		e.Encode(f)
		a.Encode(f[e.Len():])
		sn.send(t, f)
		synctest.Wait()
		got := sn.all()
		if len(got) != 1 || got[0].eth.TagCount() != 1 || got[0].eth.VLANID(0) != 42 || got[0].eth.EtherType() != wire.EtherTypeARP {
			t.Fatalf("answer frames %v", got)
		}
		r, _ := wire.ParseARP(got[0].eth.Payload())
		if r.Op() != wire.ARPReply || r.SenderIP() != mustAddr("10.42.0.1") || r.TargetIP() != mustAddr("10.42.0.9") {
			t.Errorf("reply %v", r)
		}
		if _, ok := lookupARP(t, v, mustAddr("10.42.0.9")); !ok {
			t.Error("VLAN cache did not learn the requester")
		}
		if _, ok := lookupARP(t, h.nic, mustAddr("10.42.0.9")); ok {
			t.Error("parent cache learnt a VLAN neighbour")
		}
	})
}
