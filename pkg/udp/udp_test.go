package udp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/internal/stacktest"
	"github.com/stackbox/stackbox/pkg/ports"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestEcho: a datagram each way over IPv4 and IPv6; counters, netstat
// info and the readiness a datagram brings.
func TestEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		for _, tc := range []struct {
			fam    int
			aA, bA netip.Addr
			port   uint16
		}{{syscall.AF_INET, addrA4, addrB4, 7}, {syscall.AF_INET6, addrA6, addrB6, 8}} {
			// Distinct ports: 0.0.0.0:7 and a dual-stack [::]:7 conflict,
			// as on Linux.
			srv := b.bound(t, tc.fam, ap(netip.Addr{}, tc.port))
			cli := a.open(t, tc.fam)
			if srv.Readiness(waiter.EventIn|waiter.EventOut) != waiter.EventOut {
				t.Fatalf("idle readiness %v", srv.Readiness(waiter.EventAll))
			}
			send(t, cli, ap(tc.bA, tc.port), "ping")
			got, res := recv(t, srv)
			if got != "ping" || res.From.Addr() != tc.aA || res.From.Port() != cli.LocalAddr().Port() {
				t.Fatalf("server got %q from %v (client %v)", got, res.From, cli.LocalAddr())
			}
			send(t, srv, res.From, "pong")
			if got, res := recv(t, cli); got != "pong" || res.From != ap(tc.bA, tc.port) {
				t.Fatalf("client got %q from %v", got, res.From)
			}
		}
		st := b.udp.Stats()
		if st.InDatagrams.Load() != 1 || st.OutDatagrams.Load() != 1 || st.V6.InDatagrams.Load() != 1 || st.V6.OutDatagrams.Load() != 1 {
			t.Errorf("b counters v4 in %d out %d, v6 in %d out %d", st.InDatagrams.Load(), st.OutDatagrams.Load(),
				st.V6.InDatagrams.Load(), st.V6.OutDatagrams.Load())
		}
		infos := b.udp.Endpoints()
		var protos []string
		for _, in := range infos {
			protos = append(protos, in.Proto+" "+in.Local.String())
		}
		if len(infos) != 2 || !strings.Contains(strings.Join(protos, ","), "udp 0.0.0.0:7") || !strings.Contains(strings.Join(protos, ","), "udp6 [::]:8") {
			t.Errorf("netstat: %v", protos)
		}
	})
}

// TestDemuxPriority: the exact 4-tuple beats the bound address, which
// beats the wildcard (RFC 1122 §4.1.3.4 leaves it to the host; Linux's
// order).
func TestDemuxPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := stacktest.NewNetwork(t, 3)
		a := newHost(t, nw, "10.0.0.1/24")
		b := newHost(t, nw, "10.0.0.2/24", "10.0.0.3/24")
		ra := [2]int{syscall.SO_REUSEADDR, 1}
		wild := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 7000), ra)
		spec := b.bound(t, syscall.AF_INET, ap(addrB4, 7000), ra)
		conn := b.bound(t, syscall.AF_INET, ap(addrB4, 7000), ra)
		if err := conn.Connect(ap(addrA4, 5555)); err != nil {
			t.Fatal(err)
		}
		from5555 := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 5555))
		from5556 := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 5556))
		send(t, from5555, ap(addrB4, 7000), "to-connected")
		send(t, from5556, ap(addrB4, 7000), "to-bound")
		send(t, from5556, ap(netip.MustParseAddr("10.0.0.3"), 7000), "to-wildcard")
		synctest.Wait()
		if got, _ := recv(t, conn); got != "to-connected" {
			t.Errorf("connected got %q", got)
		}
		if got, _ := recv(t, spec); got != "to-bound" {
			t.Errorf("bound got %q", got)
		}
		if got, _ := recv(t, wild); got != "to-wildcard" {
			t.Errorf("wildcard got %q", got)
		}
		for _, ep := range []transport.Endpoint{conn, spec, wild} {
			none(t, ep, "after one each")
		}
		// The connected socket filters: from another port it gets nothing
		// even when it is the only socket of its address.
		spec.Close()
		send(t, from5556, ap(addrB4, 7000), "not-for-connected")
		synctest.Wait()
		none(t, conn, "connected socket, other peer")
		if got, _ := recv(t, wild); got != "not-for-connected" {
			t.Errorf("wildcard got %q", got)
		}
		if in := conn.Info(); in.State != "ESTABLISHED" || in.Remote != ap(addrA4, 5555) || in.Local != ap(addrB4, 7000) {
			t.Errorf("connected info %+v", in)
		}
	})
}

// TestReuseAddr: without SO_REUSEADDR a second bind is EADDRINUSE; with
// it on both, both bind, unicast goes to the newest and broadcast to
// both.
func TestReuseAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		first := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6000))
		other := b.open(t, syscall.AF_INET)
		if err := other.Bind(ap(netip.Addr{}, 6000)); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("second bind: %v, want EADDRINUSE", err)
		}
		if err := other.Bind(ap(addrB4, 6000)); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("specific under wildcard: %v, want EADDRINUSE", err)
		}
		first.Close()
		ra := [2]int{syscall.SO_REUSEADDR, 1}
		s1 := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6001), ra)
		s2 := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6001), ra)
		cli := a.open(t, syscall.AF_INET)
		setOpt(t, cli, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		send(t, cli, ap(addrB4, 6001), "unicast")
		send(t, cli, ap(netip.MustParseAddr("10.0.0.255"), 6001), "bcast")
		synctest.Wait()
		// The broadcast may overtake the unicast (which waits for ARP).
		g1, _ := recv(t, s2)
		g2, _ := recv(t, s2)
		if g1+","+g2 != "unicast,bcast" && g1+","+g2 != "bcast,unicast" {
			t.Fatalf("newest got %q and %q", g1, g2)
		}
		if got, _ := recv(t, s1); got != "bcast" {
			t.Fatalf("older got %q", got)
		}
		none(t, s1, "older after broadcast")
	})
}

// TestReusePort: a SO_REUSEPORT group spreads flows by hash (each flow
// sticks to one socket), and only sockets of one owner may join.
func TestReusePort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		rp := [2]int{transport.SO_REUSEPORT, 1}
		var group []transport.Endpoint
		for range 4 {
			group = append(group, b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6100), rp))
		}
		// Another user may not join the group (Linux: same effective UID).
		var reg transport.Registry
		b.udp.Register(&reg)
		stranger, err := reg.New(transport.NewRequest{Family: syscall.AF_INET, Type: syscall.SOCK_DGRAM, Cred: transport.Cred{UID: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		setOpt(t, stranger, syscall.SOL_SOCKET, transport.SO_REUSEPORT, 1)
		if err := stranger.Bind(ap(netip.Addr{}, 6100)); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("other uid: %v, want EADDRINUSE", err)
		}
		warm := a.open(t, syscall.AF_INET)
		send(t, warm, ap(addrB4, 9), "resolve ARP first") // a resolving entry holds few packets
		synctest.Wait()
		const flows = 40
		var clients []transport.Endpoint
		for i := range flows {
			c := a.open(t, syscall.AF_INET)
			clients = append(clients, c)
			send(t, c, ap(addrB4, 6100), fmt.Sprint(i))
			send(t, c, ap(addrB4, 6100), fmt.Sprint(i))
		}
		synctest.Wait()
		owner := map[string]int{}
		used := 0
		total := 0
		for gi, ep := range group {
			n := 0
			for ep.Readiness(waiter.EventIn) != 0 {
				got, _ := recv(t, ep)
				if o, ok := owner[got]; ok && o != gi {
					t.Fatalf("flow %s reached sockets %d and %d", got, o, gi)
				}
				owner[got] = gi
				n++
			}
			total += n
			if n > 0 {
				used++
			}
		}
		if total != 2*flows || len(owner) != flows {
			t.Fatalf("got %d datagrams of %d flows, want %d of %d", total, len(owner), 2*flows, flows)
		}
		if used < 3 {
			t.Fatalf("%d flows used only %d of 4 sockets", flows, used)
		}
	})
}

// TestEphemeralPorts: binding port 0, the first send and the first
// connect take a port in Linux's ephemeral range; disconnecting gives an
// implicitly chosen port back.
func TestEphemeralPorts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		srv := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 9))
		inRange := func(p uint16) bool { return p >= ports.DefaultFirst && p <= ports.DefaultLast }
		e1 := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 0))
		if !inRange(e1.LocalAddr().Port()) {
			t.Fatalf("bind 0 gave %v", e1.LocalAddr())
		}
		e2 := a.open(t, syscall.AF_INET)
		if e2.LocalAddr() != ap(netip.IPv4Unspecified(), 0) {
			t.Fatalf("unbound LocalAddr %v", e2.LocalAddr())
		}
		send(t, e2, ap(addrB4, 9), "x")
		if p := e2.LocalAddr().Port(); !inRange(p) || p == e1.LocalAddr().Port() {
			t.Fatalf("autobind on send gave %v", e2.LocalAddr())
		}
		if _, res := recv(t, srv); res.From.Port() != e2.LocalAddr().Port() {
			t.Fatalf("datagram from %v, socket %v", res.From, e2.LocalAddr())
		}
		e3 := a.open(t, syscall.AF_INET6)
		if err := e3.Connect(ap(netip.MustParseAddr("::ffff:10.0.0.2"), 9)); err != nil {
			t.Fatal(err)
		}
		la := e3.LocalAddr()
		if !inRange(la.Port()) || la.Addr() != netip.MustParseAddr("::ffff:10.0.0.1") {
			t.Fatalf("connect gave local %v", la)
		}
		if !a.udp.Ports().InUse(la.Port()) {
			t.Fatal("connected port not reserved")
		}
		if err := e3.Connect(netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		if a.udp.Ports().InUse(la.Port()) || e3.LocalAddr().Port() != 0 {
			t.Fatalf("after AF_UNSPEC: in use %v, local %v", a.udp.Ports().InUse(la.Port()), e3.LocalAddr())
		}
		if _, err := e3.RemoteAddr(); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("RemoteAddr after dissolve: %v", err)
		}
		// A port bound by number stays across connect and disconnect,
		// and so does the address (the local address connect chose goes);
		// a port bound as 0 is not locked (Linux SOCK_BINDPORT_LOCK) and
		// goes like an implicit one.
		e4 := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 4321))
		if err := e4.Connect(ap(addrB4, 9)); err != nil {
			t.Fatal(err)
		}
		if e4.LocalAddr() != ap(addrA4, 4321) {
			t.Fatalf("connected local %v", e4.LocalAddr())
		}
		e4.Connect(netip.AddrPort{})
		if e4.LocalAddr() != ap(netip.IPv4Unspecified(), 4321) {
			t.Fatalf("explicit port after dissolve: %v", e4.LocalAddr())
		}
		p1 := e1.LocalAddr().Port()
		e1.Connect(ap(addrB4, 9))
		e1.Connect(netip.AddrPort{})
		if e1.LocalAddr().Port() != 0 || a.udp.Ports().InUse(p1) {
			t.Fatalf("port from bind(0) after dissolve: %v", e1.LocalAddr())
		}
		// Exhaustion: EADDRNOTAVAIL.
		if err := a.udp.Ports().SetRange(50000, 50001); err != nil {
			t.Fatal(err)
		}
		a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 0))
		a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 0))
		if err := a.open(t, syscall.AF_INET).Bind(ap(netip.Addr{}, 0)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("exhausted range: %v", err)
		}
		if _, err := a.open(t, syscall.AF_INET).Write([][]byte{[]byte("x")}, transport.WriteOptions{To: ap(addrB4, 9)}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("autobind with exhausted range: %v", err)
		}
	})
}

// TestBroadcast: sending to a broadcast address needs SO_BROADCAST
// (EACCES otherwise, as Linux); with it the datagram reaches the peer's
// wildcard socket and is looped back to our own.
func TestBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		ra := [2]int{syscall.SO_REUSEADDR, 1}
		peer := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6200), ra)
		specific := b.bound(t, syscall.AF_INET, ap(addrB4, 6200), ra)
		self := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6200))
		cli := a.open(t, syscall.AF_INET)
		for _, dst := range []string{"255.255.255.255", "10.0.0.255"} {
			to := ap(netip.MustParseAddr(dst), 6200)
			if _, err := cli.Write([][]byte{[]byte("x")}, transport.WriteOptions{To: to}); !errors.Is(err, syscall.EACCES) {
				t.Fatalf("to %s without SO_BROADCAST: %v, want EACCES", dst, err)
			}
			if err := cli.Connect(to); !errors.Is(err, syscall.EACCES) {
				t.Fatalf("connect %s without SO_BROADCAST: %v, want EACCES", dst, err)
			}
		}
		setOpt(t, cli, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		for _, dst := range []string{"255.255.255.255", "10.0.0.255"} {
			send(t, cli, ap(netip.MustParseAddr(dst), 6200), "hello "+dst)
			synctest.Wait()
			if got, res := recv(t, peer); got != "hello "+dst || res.From.Addr() != addrA4 {
				t.Fatalf("peer got %q from %v", got, res.From)
			}
			if got, _ := recv(t, self); got != "hello "+dst {
				t.Fatalf("looped copy: %q", got)
			}
		}
		synctest.Wait()
		none(t, specific, "socket bound to a unicast address")
	})
}

// TestMulticastJoinLeave: IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP join the
// NIC to the group (an IGMP / MLD report on the wire) and datagrams to it
// arrive; dropping leaves (a leave / done) and they stop.
func TestMulticastJoinLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := stacktest.NewNetwork(t, 11)
		a := newHost(t, nw, "10.0.0.1/24", "2001:db8::1/64")
		b := newHost(t, nw, "10.0.0.2/24", "2001:db8::2/64")
		sn := newSniffer(t, nw)
		for _, tc := range []struct {
			fam         int
			level, j, l int
			group       netip.Addr
			reports     func() ([]netip.Addr, []netip.Addr)
		}{
			{syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, syscall.IP_DROP_MEMBERSHIP, netip.MustParseAddr("239.1.2.3"), sn.igmp},
			{syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, syscall.IPV6_LEAVE_GROUP, netip.MustParseAddr("ff15::1234"), sn.mld},
		} {
			rx := b.bound(t, tc.fam, ap(netip.Addr{}, 6300))
			m := transport.Membership{Group: tc.group, IfIndex: b.nic.Index()}
			setOpt(t, rx, tc.level, tc.j, m)
			if err := rx.SetSockOpt(tc.level, tc.j, m); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("joining twice: %v", err)
			}
			time.Sleep(5 * time.Second) // past the unsolicited report delay
			synctest.Wait()
			if joins, _ := tc.reports(); !contains(joins, tc.group) {
				t.Fatalf("no report for %v on the wire (saw %v)", tc.group, joins)
			}
			tx := a.open(t, tc.fam)
			setOpt(t, tx, tc.level, map[int]int{syscall.IPPROTO_IP: syscall.IP_MULTICAST_IF, syscall.IPPROTO_IPV6: syscall.IPV6_MULTICAST_IF}[tc.level],
				map[int]any{syscall.IPPROTO_IP: addrA4, syscall.IPPROTO_IPV6: a.nic.Index()}[tc.level])
			send(t, tx, ap(tc.group, 6300), "group")
			synctest.Wait()
			if got, res := recv(t, rx); got != "group" || res.From.Port() != tx.LocalAddr().Port() {
				t.Fatalf("member got %q from %v", got, res.From)
			}
			setOpt(t, rx, tc.level, tc.l, m)
			if err := rx.SetSockOpt(tc.level, tc.l, m); !errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Fatalf("leaving twice: %v", err)
			}
			time.Sleep(5 * time.Second)
			synctest.Wait()
			if _, leaves := tc.reports(); !contains(leaves, tc.group) {
				t.Fatalf("no leave for %v on the wire", tc.group)
			}
			if b.nic.InGroup(tc.group) {
				t.Fatal("NIC still in the group")
			}
			send(t, tx, ap(tc.group, 6300), "after leave")
			synctest.Wait()
			none(t, rx, "after leaving")
			rx.Close() // the next family's wildcard would conflict
		}
	})
}

// TestMulticastAll: with IP_MULTICAST_ALL on (Linux's default) a wildcard
// socket of the port receives every group its NIC joined, whoever joined
// it; with it off only the groups the socket joined itself.
func TestMulticastAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		g := netip.MustParseAddr("239.9.9.9")
		ra := [2]int{syscall.SO_REUSEADDR, 1}
		member := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6400), ra)
		setOpt(t, member, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, transport.Membership{Group: g, IfAddr: addrB4})
		bystander := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6400), ra)
		onGroup := b.bound(t, syscall.AF_INET, ap(g, 6400), ra) // bound to the group address
		tx := a.open(t, syscall.AF_INET)
		send(t, tx, ap(g, 6400), "one")
		synctest.Wait()
		for i, ep := range []transport.Endpoint{member, bystander, onGroup} {
			if got, _ := recv(t, ep); got != "one" {
				t.Fatalf("socket %d got %q", i, got)
			}
		}
		setOpt(t, bystander, syscall.IPPROTO_IP, transport.IP_MULTICAST_ALL, 0)
		send(t, tx, ap(g, 6400), "two")
		synctest.Wait()
		if got, _ := recv(t, member); got != "two" {
			t.Fatalf("member got %q", got)
		}
		none(t, bystander, "IP_MULTICAST_ALL off, not a member")
		// No socket on a port: counted as ignored, no ICMP.
		before := b.udp.Stats().IgnoredMulti.Load()
		send(t, tx, ap(g, 6401), "nobody")
		synctest.Wait()
		if b.udp.Stats().IgnoredMulti.Load() != before+1 || b.s.Stats().ICMP.OutDestUnreachs.Load() != 0 {
			t.Fatalf("IgnoredMulti %d (was %d), unreachables sent %d", b.udp.Stats().IgnoredMulti.Load(), before,
				b.s.Stats().ICMP.OutDestUnreachs.Load())
		}
	})
}

// TestMulticastLoop: a member on the sending host gets its own group's
// datagrams back (IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP on by default),
// and not once the sender turns it off.
func TestMulticastLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		for _, tc := range []struct {
			fam, level, join, loop int
			g                      netip.Addr
		}{
			{syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, syscall.IP_MULTICAST_LOOP, netip.MustParseAddr("239.5.5.5")},
			{syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, syscall.IPV6_MULTICAST_LOOP, netip.MustParseAddr("ff15::5")},
		} {
			rx := a.bound(t, tc.fam, ap(netip.Addr{}, 6500))
			setOpt(t, rx, tc.level, tc.join, transport.Membership{Group: tc.g, IfIndex: a.nic.Index()})
			tx := a.open(t, tc.fam)
			send(t, tx, ap(tc.g, 6500), "looped")
			got, res := recv(t, rx)
			if got != "looped" || res.From.Port() != tx.LocalAddr().Port() {
				t.Fatalf("looped %q from %v", got, res.From)
			}
			setOpt(t, tx, tc.level, tc.loop, 0)
			send(t, tx, ap(tc.g, 6500), "not looped")
			synctest.Wait()
			none(t, rx, "IP_MULTICAST_LOOP off")
			rx.Close()
		}
	})
}

// TestChecksums: a bad checksum is dropped and counted (InCsumErrors,
// InErrors, no port unreachable); a zero checksum is "none" over IPv4 and
// delivered, and over IPv6 it is dropped and counted (RFC 8200 §8.1).
func TestChecksums(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, b := pair(t)
		rx4 := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6600))
		rx6 := b.bound(t, syscall.AF_INET6, ap(netip.IPv6Unspecified(), 6601), [2]int{})
		mac := b.nic.MAC()
		peerMAC := [6]byte{2, 0, 0, 0, 0, 9}
		from4, from6 := ap(netip.MustParseAddr("10.0.0.9"), 4000), ap(netip.MustParseAddr("2001:db8::9"), 4000)
		deliver := func(f []byte) { b.nic.DeliverFrame(f); synctest.Wait() }
		st := b.udp.Stats()

		deliver(udpFrame(mac, peerMAC, from4, ap(addrB4, 6600), []byte("bad"), "bad"))
		none(t, rx4, "bad IPv4 checksum")
		deliver(udpFrame(mac, peerMAC, from4, ap(addrB4, 6699), []byte("bad, closed port"), "bad"))
		if st.InCsumErrors.Load() != 2 || st.InErrors.Load() != 2 || st.NoPorts.Load() != 0 {
			t.Fatalf("v4 csum errors %d in errors %d noports %d", st.InCsumErrors.Load(), st.InErrors.Load(), st.NoPorts.Load())
		}
		deliver(udpFrame(mac, peerMAC, from4, ap(addrB4, 6600), []byte("no checksum"), "zero"))
		if got, _ := recv(t, rx4); got != "no checksum" {
			t.Fatalf("zero v4 checksum: %q", got)
		}
		deliver(udpFrame(mac, peerMAC, from4, ap(addrB4, 6600), []byte("good"), "good"))
		if got, _ := recv(t, rx4); got != "good" {
			t.Fatalf("good v4: %q", got)
		}

		deliver(udpFrame(mac, peerMAC, from6, ap(addrB6, 6601), []byte("zero6"), "zero"))
		none(t, rx6, "zero IPv6 checksum")
		deliver(udpFrame(mac, peerMAC, from6, ap(addrB6, 6601), []byte("bad6"), "bad"))
		none(t, rx6, "bad IPv6 checksum")
		if st.V6.InCsumErrors.Load() != 2 || st.V6.InErrors.Load() != 2 {
			t.Fatalf("v6 csum errors %d in errors %d", st.V6.InCsumErrors.Load(), st.V6.InErrors.Load())
		}
		deliver(udpFrame(mac, peerMAC, from6, ap(addrB6, 6601), []byte("good6"), "good"))
		if got, _ := recv(t, rx6); got != "good6" {
			t.Fatalf("good v6: %q", got)
		}
		// A length field beyond the datagram is a header error.
		f := udpFrame(mac, peerMAC, from4, ap(addrB4, 6600), []byte("short"), "zero")
		f[14+20+4], f[14+20+5] = 0x01, 0x00
		deliver(f)
		none(t, rx4, "bad length")
		if st.InErrors.Load() != 3 {
			t.Fatalf("InErrors %d after a bad length", st.InErrors.Load())
		}
	})
}

// TestChecksumOnSend: what we send always carries a valid checksum (over
// IPv6 a zero one would be dropped), and a datagram whose checksum
// computes to 0 goes as 0xffff (RFC 768).
func TestChecksumOnSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := stacktest.NewNetwork(t, 5)
		a := newHost(t, nw, "10.0.0.1/24", "2001:db8::1/64")
		newHost(t, nw, "10.0.0.2/24", "2001:db8::2/64")
		sn := newSniffer(t, nw)
		tx := a.bound(t, syscall.AF_INET6, ap(netip.IPv6Unspecified(), 1000))
		setOpt(t, tx, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		// A payload that makes the sum come out as 0xffff, so the
		// complemented checksum is 0: the word that completes the sum.
		probe := []byte{0, 0}
		f := wire.UDPFields{SrcPort: 1000, DstPort: 2000, PayloadLen: 2}
		hdr := make([]byte, 10)
		f.Encode(hdr)
		bcast := netip.MustParseAddr("10.0.0.255")
		s0 := wire.Checksum(hdr, wire.PseudoHeaderChecksum(wire.IPProtoUDP, addrA4, bcast, 10))
		w := ^s0
		probe[0], probe[1] = byte(w>>8), byte(w)
		if _, err := tx.Write([][]byte{probe}, transport.WriteOptions{To: ap(netip.MustParseAddr("::ffff:10.0.0.255"), 2000)}); err != nil {
			t.Fatal(err)
		}
		send(t, tx, ap(netip.MustParseAddr("ff02::1"), 2000), "y")
		synctest.Wait()
		var sums []uint16
		for _, v6 := range []bool{false, true} {
			for _, eth := range sn.ipPackets(v6) {
				var src, dst netip.Addr
				var payload []byte
				if v6 {
					ip, err := wire.ParseIPv6(eth.Payload())
					if err != nil || ip.NextHeader() != wire.IPProtoUDP {
						continue
					}
					src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
				} else {
					ip, err := wire.ParseIPv4(eth.Payload())
					if err != nil || ip.Protocol() != wire.IPProtoUDP {
						continue
					}
					src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
				}
				u, err := wire.ParseUDP(payload)
				if err != nil || !u.HasChecksum() || !u.ChecksumValid(src, dst) {
					t.Fatalf("datagram to %v: checksum %#04x invalid", dst, u.Checksum())
				}
				sums = append(sums, u.Checksum())
			}
		}
		if len(sums) != 2 || sums[0] != 0xffff {
			t.Fatalf("checksums %#04x, want 2 with the IPv4 one 0xffff", sums)
		}
	})
}

// TestPortUnreachable: a datagram to a closed port of the peer brings
// ICMP port unreachable; the connected socket's next call returns
// ECONNREFUSED once, with EventErr meanwhile. Unconnected sockets hear of
// it only with IP_RECVERR, through the error queue.
func TestPortUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		for _, tc := range []struct {
			fam         int
			peer        netip.Addr
			level, opt  int
			origin, typ uint8
			code        uint8
		}{
			{syscall.AF_INET, addrB4, syscall.IPPROTO_IP, syscall.IP_RECVERR, transport.OriginICMP, 3, 3},
			{syscall.AF_INET6, addrB6, syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, transport.OriginICMP6, 1, 4},
		} {
			conn := a.open(t, tc.fam)
			if err := conn.Connect(ap(tc.peer, 9)); err != nil {
				t.Fatal(err)
			}
			send(t, conn, netip.AddrPort{}, "anyone?")
			if !stacktest.Wait(conn, waiter.EventErr, 2*time.Second) {
				t.Fatal("no EventErr")
			}
			if _, err := conn.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("read: %v, want ECONNREFUSED", err)
			}
			if _, err := conn.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("second read: %v, want EAGAIN (reported once)", err)
			}
			if conn.Readiness(waiter.EventErr) != 0 {
				t.Fatal("EventErr after the error was read")
			}
			send(t, conn, netip.AddrPort{}, "again")
			stacktest.Wait(conn, waiter.EventErr, 2*time.Second)
			if _, err := conn.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("write after error: %v, want ECONNREFUSED", err)
			}

			// Unconnected, without IP_RECVERR: nothing.
			plain := a.open(t, tc.fam)
			send(t, plain, ap(tc.peer, 9), "quiet")
			time.Sleep(time.Second)
			synctest.Wait()
			if plain.Readiness(waiter.EventErr) != 0 {
				t.Fatal("unconnected socket without IP_RECVERR got an error")
			}
			// Unconnected, with IP_RECVERR: an error-queue entry.
			re := a.open(t, tc.fam)
			setOpt(t, re, tc.level, tc.opt, 1)
			time.Sleep(time.Second) // ICMP rate limit
			send(t, re, ap(tc.peer, 9), "payload")
			if !stacktest.Wait(re, waiter.EventErr, 2*time.Second) {
				t.Fatal("no EventErr with IP_RECVERR")
			}
			buf := make([]byte, 100)
			res, err := re.Read([][]byte{buf}, transport.ReadOptions{ErrQueue: true})
			if err != nil {
				t.Fatal(err)
			}
			ee := res.Control.Err
			if ee == nil || ee.Errno != int(syscall.ECONNREFUSED) || ee.Origin != tc.origin || ee.Type != tc.typ || ee.Code != tc.code {
				t.Fatalf("extended error %+v", ee)
			}
			wantOff := tc.peer
			if tc.fam == syscall.AF_INET6 && wantOff.Is4() {
				wantOff = netip.AddrFrom16(wantOff.As16())
			}
			if ee.Offender != wantOff || res.From != ap(tc.peer, 9) || string(buf[:res.N]) != "payload" {
				t.Fatalf("offender %v from %v data %q", ee.Offender, res.From, buf[:res.N])
			}
			if re.Readiness(waiter.EventErr) != 0 {
				t.Fatal("EventErr after reading the error queue")
			}
			if _, err := re.Read([][]byte{buf}, transport.ReadOptions{ErrQueue: true}); !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("empty error queue: %v", err)
			}
			time.Sleep(time.Second)
		}
		if n := b.udp.Stats().NoPorts.Load() + b.udp.Stats().V6.NoPorts.Load(); n < 4 {
			t.Fatalf("peer NoPorts %d", n)
		}
	})
}

// TestReceiveQueueFull: SO_RCVBUF bounds the queue; what does not fit is
// dropped and counted (RcvbufErrors, InErrors, the socket's Drops).
func TestReceiveQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		rx := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6700))
		setOpt(t, rx, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) // the minimum: 2304 bytes
		if v, _ := rx.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF); v != transport.MinRcvBuf {
			t.Fatalf("SO_RCVBUF %v", v)
		}
		tx := a.open(t, syscall.AF_INET)
		send(t, tx, ap(addrB4, 9), "warm up") // resolve ARP; nothing reaches rx
		payload := strings.Repeat("z", 100)
		for range 10 {
			send(t, tx, ap(addrB4, 6700), payload)
		}
		synctest.Wait()
		queued := 0
		for rx.Readiness(waiter.EventIn) != 0 {
			if got, _ := recv(t, rx); got != payload {
				t.Fatal("payload changed")
			}
			queued++
		}
		// 2304 bytes hold six 100-byte datagrams with their overhead.
		want := transport.MinRcvBuf / (100 + transport.DatagramOverhead)
		st := b.udp.Stats()
		drops := rx.Info().Drops
		if queued != want || drops != uint64(10-want) || st.RcvbufErrors.Load() != drops || st.InErrors.Load() != drops {
			t.Fatalf("queued %d, drops %d, RcvbufErrors %d, InErrors %d", queued, drops, st.RcvbufErrors.Load(), st.InErrors.Load())
		}
	})
}

// TestTruncateAndPeek: MSG_PEEK leaves the datagram queued; a short buffer
// truncates (ReadResult.Truncated) and MSG_TRUNC reports the full length;
// scatter reads fill the buffers in order.
func TestTruncateAndPeek(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		rx := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6800))
		tx := a.open(t, syscall.AF_INET)
		send(t, tx, ap(addrB4, 6800), "0123456789abcdef")
		stacktest.Wait(rx, waiter.EventIn, 2*time.Second)
		small := make([]byte, 4)
		res, err := rx.Read([][]byte{small}, transport.ReadOptions{Peek: true})
		if err != nil || res.N != 4 || !res.Truncated || string(small) != "0123" {
			t.Fatalf("peek: %+v %v %q", res, err, small)
		}
		res, err = rx.Read([][]byte{small}, transport.ReadOptions{Peek: true, Trunc: true})
		if err != nil || res.N != 16 || !res.Truncated {
			t.Fatalf("peek+trunc: %+v %v", res, err)
		}
		if b.udp.Stats().InDatagrams.Load() != 0 {
			t.Fatal("a peek counted as read")
		}
		b1, b2 := make([]byte, 10), make([]byte, 10)
		res, err = rx.Read([][]byte{b1, b2}, transport.ReadOptions{})
		if err != nil || res.N != 16 || res.Truncated || string(b1)+string(b2[:6]) != "0123456789abcdef" {
			t.Fatalf("scatter: %+v %v", res, err)
		}
		if _, err := rx.Read([][]byte{b1}, transport.ReadOptions{}); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("after the read: %v", err)
		}
		// A truncating read consumes the datagram.
		send(t, tx, ap(addrB4, 6800), "long datagram")
		stacktest.Wait(rx, waiter.EventIn, 2*time.Second)
		if res, _ := rx.Read([][]byte{small}, transport.ReadOptions{}); !res.Truncated {
			t.Fatal("not truncated")
		}
		if rx.Readiness(waiter.EventIn) != 0 {
			t.Fatal("rest of a truncated datagram still queued")
		}
	})
}

// TestDualStack: an AF_INET6 wildcard socket takes IPv4 datagrams with
// IPv4-mapped addresses and answers through them; with IPV6_V6ONLY it
// does not, and an AF_INET socket may share its port.
func TestDualStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		dual := b.bound(t, syscall.AF_INET6, ap(netip.IPv6Unspecified(), 6900), [2]int{})
		tx := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 4444))
		send(t, tx, ap(addrB4, 6900), "v4 to dual")
		got, res := recv(t, dual)
		mapped := netip.MustParseAddr("::ffff:10.0.0.1")
		if got != "v4 to dual" || res.From != ap(mapped, 4444) {
			t.Fatalf("dual got %q from %v", got, res.From)
		}
		send(t, dual, res.From, "reply")
		if got, res := recv(t, tx); got != "reply" || res.From != ap(addrB4, 6900) {
			t.Fatalf("reply %q from %v", got, res.From)
		}
		if err := b.open(t, syscall.AF_INET).Bind(ap(netip.Addr{}, 6900)); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("AF_INET beside a dual-stack wildcard: %v", err)
		}

		only := b.open(t, syscall.AF_INET6)
		setOpt(t, only, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
		if err := only.Bind(ap(netip.IPv6Unspecified(), 6901)); err != nil {
			t.Fatal(err)
		}
		if err := only.SetSockOpt(syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("V6ONLY after bind: %v", err)
		}
		if _, err := only.Write([][]byte{[]byte("x")}, transport.WriteOptions{To: ap(mapped, 4444)}); !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("v6only to a mapped address: %v", err)
		}
		send(t, tx, ap(addrB4, 6901), "v4 to v6only")
		synctest.Wait()
		none(t, only, "v6only")
		if b.udp.Stats().NoPorts.Load() != 1 {
			t.Fatalf("NoPorts %d", b.udp.Stats().NoPorts.Load())
		}
		v4 := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 6901))
		send(t, tx, ap(addrB4, 6901), "v4 socket")
		if got, _ := recv(t, v4); got != "v4 socket" {
			t.Fatalf("AF_INET beside v6only: %q", got)
		}
		// AF_INET refuses IPv6 addresses.
		if err := b.open(t, syscall.AF_INET).Bind(ap(addrB6, 1)); !errors.Is(err, syscall.EAFNOSUPPORT) {
			t.Fatalf("AF_INET bind to IPv6: %v", err)
		}
		// Binding a mapped address receives IPv4 only.
		m := b.bound(t, syscall.AF_INET6, ap(netip.MustParseAddr("::ffff:10.0.0.2"), 6902), [2]int{})
		send(t, tx, ap(addrB4, 6902), "mapped bind")
		if got, res := recv(t, m); got != "mapped bind" || res.From != ap(mapped, 4444) {
			t.Fatalf("mapped bind: %q from %v", got, res.From)
		}
		if la := m.LocalAddr(); la != ap(netip.MustParseAddr("::ffff:10.0.0.2"), 6902) {
			t.Fatalf("LocalAddr %v", la)
		}
	})
}

// TestBindRules: a non-local address is EADDRNOTAVAIL, binding twice is
// EINVAL, a link-local address needs a scope.
func TestBindRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		if err := a.open(t, syscall.AF_INET).Bind(ap(netip.MustParseAddr("10.0.0.99"), 1)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("non-local: %v", err)
		}
		ep := a.bound(t, syscall.AF_INET, ap(addrA4, 0))
		if err := ep.Bind(ap(addrA4, 0)); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("second bind: %v", err)
		}
		if err := a.open(t, syscall.AF_INET6).Bind(ap(netip.MustParseAddr("fe80::1"), 1)); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("link-local without scope: %v", err)
		}
		a.bound(t, syscall.AF_INET, ap(netip.MustParseAddr("10.0.0.255"), 1)) // broadcast: allowed
		a.bound(t, syscall.AF_INET, ap(netip.MustParseAddr("239.1.1.1"), 1))  // multicast: allowed
		if _, err := ep.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EDESTADDRREQ) {
			t.Fatalf("unconnected write without a destination: %v", err)
		}
		if _, err := ep.Write([][]byte{[]byte("x")}, transport.WriteOptions{To: ap(addrB4, 0)}); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("port 0: %v", err)
		}
		if err := ep.Listen(1); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Fatalf("listen: %v", err)
		}
	})
}

// TestShutdown: SHUT_RD makes reads return 0 bytes (and readable), SHUT_WR
// makes writes EPIPE; on an unconnected socket shutdown says ENOTCONN but
// takes effect, as Linux's inet_shutdown.
func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		ep := a.bound(t, syscall.AF_INET, ap(netip.Addr{}, 7100))
		done := make(chan struct{})
		go func() { // a blocked reader is woken
			stacktest.Wait(ep, waiter.EventIn, time.Hour)
			close(done)
		}()
		synctest.Wait()
		if err := ep.Shutdown(syscall.SHUT_RD); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("unconnected shutdown: %v", err)
		}
		<-done
		res, err := ep.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{})
		if err != nil || res.N != 0 {
			t.Fatalf("read after SHUT_RD: %+v %v", res, err)
		}
		if ep.Readiness(waiter.EventIn|waiter.EventRdHUp) != waiter.EventIn|waiter.EventRdHUp {
			t.Fatalf("readiness %v", ep.Readiness(waiter.EventAll))
		}
		c := a.open(t, syscall.AF_INET)
		c.Connect(ap(addrB4, 9))
		if err := c.Shutdown(syscall.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([][]byte{[]byte("x")}, transport.WriteOptions{}); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write after SHUT_WR: %v", err)
		}
		c.Shutdown(syscall.SHUT_RD)
		if c.Readiness(waiter.EventIn)&waiter.EventHUp == 0 {
			t.Fatal("no EventHUp with both directions shut")
		}
	})
}

// TestClose: Close frees the port, leaves the groups and drops the queue.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		g := netip.MustParseAddr("239.7.7.7")
		ep := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 7200))
		setOpt(t, ep, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, transport.Membership{Group: g})
		send(t, a.open(t, syscall.AF_INET), ap(addrB4, 7200), "queued")
		stacktest.Wait(ep, waiter.EventIn, 2*time.Second)
		if !b.nic.InGroup(g) || len(b.udp.Endpoints()) != 1 {
			t.Fatal("setup")
		}
		ep.Close()
		if b.nic.InGroup(g) || b.udp.Ports().InUse(7200) || len(b.udp.Endpoints()) != 0 {
			t.Fatalf("after close: group %v port %v endpoints %d", b.nic.InGroup(g), b.udp.Ports().InUse(7200), len(b.udp.Endpoints()))
		}
		if _, err := ep.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); !errors.Is(err, syscall.EBADF) {
			t.Fatalf("read after close: %v", err)
		}
		b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 7200)) // the port is free again
	})
}

// TestMessageSize: datagrams over 65507 (IPv4) / 65527 (IPv6) bytes are
// EMSGSIZE, and with IP_PMTUDISC_DO those over the path MTU; without DO
// a large datagram is fragmented and arrives whole.
func TestMessageSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		rx := b.bound(t, syscall.AF_INET6, ap(netip.IPv6Unspecified(), 7300), [2]int{})
		tx4 := a.open(t, syscall.AF_INET)
		tx6 := a.open(t, syscall.AF_INET6)
		big := func(n int) [][]byte { return [][]byte{make([]byte, n)} }
		// Resolve the neighbours first: a resolving entry holds only a
		// few packets, and a big datagram is 45 fragments.
		send(t, tx4, ap(addrB4, 7300), "warm")
		send(t, tx6, ap(addrB6, 7300), "warm")
		recv(t, rx)
		recv(t, rx)
		if _, err := tx4.Write(big(65508), transport.WriteOptions{To: ap(addrB4, 7300)}); !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("65508 over IPv4: %v", err)
		}
		if _, err := tx6.Write(big(65528), transport.WriteOptions{To: ap(addrB6, 7300)}); !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("65528 over IPv6: %v", err)
		}
		if n, err := tx4.Write(big(65507), transport.WriteOptions{To: ap(addrB4, 7300)}); err != nil || n != 65507 {
			t.Fatalf("65507 over IPv4: %d %v", n, err)
		}
		if got, _ := recv(t, rx); len(got) != 65507 {
			t.Fatalf("reassembled %d bytes", len(got))
		}
		if n, err := tx6.Write(big(65527), transport.WriteOptions{To: ap(addrB6, 7300)}); err != nil || n != 65527 {
			t.Fatalf("65527 over IPv6: %d %v", n, err)
		}
		if got, _ := recv(t, rx); len(got) != 65527 {
			t.Fatalf("reassembled %d bytes", len(got))
		}
		setOpt(t, tx4, syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO)
		if _, err := tx4.Write(big(1473), transport.WriteOptions{To: ap(addrB4, 7300)}); !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("over the MTU with DO: %v", err)
		}
		if _, err := tx4.Write(big(1472), transport.WriteOptions{To: ap(addrB4, 7300)}); err != nil {
			t.Fatalf("at the MTU with DO: %v", err)
		}
	})
}

// TestOptionsOnTheWire: IP_TTL/IPV6_UNICAST_HOPS, IP_TOS/IPV6_TCLASS and
// their per-packet overrides reach the IP header; IP_RECVTTL,
// IP_RECVTOS and IP_PKTINFO (and the IPv6 ones) report them.
func TestOptionsOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		for _, tc := range []struct {
			fam                       int
			level, ttl, tos           int
			recvTTL, recvTOS, pktinfo int
			dst                       netip.Addr
		}{
			{syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_TTL, syscall.IP_TOS, syscall.IP_RECVTTL, syscall.IP_RECVTOS, syscall.IP_PKTINFO, addrB4},
			{syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, syscall.IPV6_TCLASS, syscall.IPV6_RECVHOPLIMIT, syscall.IPV6_RECVTCLASS, syscall.IPV6_RECVPKTINFO, addrB6},
		} {
			rx := b.bound(t, tc.fam, ap(netip.Addr{}, 7400))
			for _, o := range []int{tc.recvTTL, tc.recvTOS, tc.pktinfo} {
				setOpt(t, rx, tc.level, o, 1)
			}
			tx := a.open(t, tc.fam)
			setOpt(t, tx, tc.level, tc.ttl, 17)
			setOpt(t, tx, tc.level, tc.tos, 0x28)
			send(t, tx, ap(tc.dst, 7400), "opts")
			_, res := recv(t, rx)
			cm := res.Control
			if !cm.HasTTL || cm.TTL != 17 || !cm.HasTOS || cm.TOS != 0x28 || !cm.HasPktInfo || cm.IfIndex != b.nic.Index() || cm.Dst != tc.dst {
				t.Fatalf("control %+v", cm)
			}
			if _, err := tx.Write([][]byte{[]byte("per packet")}, transport.WriteOptions{To: ap(tc.dst, 7400),
				HasTTL: true, TTL: 3, HasTOS: true, TOS: 0x10, Src: map[bool]netip.Addr{false: addrA4, true: addrA6}[tc.dst.Is6()], IfIndex: a.nic.Index()}); err != nil {
				t.Fatal(err)
			}
			_, res = recv(t, rx)
			if res.Control.TTL != 3 || res.Control.TOS != 0x10 {
				t.Fatalf("per-packet control %+v", res.Control)
			}
			rx.Close()
		}
		// SO_BINDTODEVICE: a socket bound to another device hears nothing.
		rx := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 7401))
		setOpt(t, rx, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo")
		send(t, a.open(t, syscall.AF_INET), ap(addrB4, 7401), "wrong device")
		synctest.Wait()
		none(t, rx, "bound to lo")
		if b.udp.Stats().NoPorts.Load() != 1 {
			t.Fatalf("NoPorts %d", b.udp.Stats().NoPorts.Load())
		}
		setOpt(t, rx, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, b.nic.Name())
		send(t, a.open(t, syscall.AF_INET), ap(addrB4, 7401), "right device")
		if got, _ := recv(t, rx); got != "right device" {
			t.Fatalf("bound to %s: %q", b.nic.Name(), got)
		}
	})
}

// TestLocalDelivery: datagrams to our own addresses go through lo.
func TestLocalDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := pair(t)
		rx := a.bound(t, syscall.AF_INET6, ap(netip.IPv6Unspecified(), 7500), [2]int{})
		tx := a.open(t, syscall.AF_INET)
		for _, dst := range []string{"127.0.0.1", "10.0.0.1"} {
			send(t, tx, ap(netip.MustParseAddr(dst), 7500), dst)
			if got, _ := recv(t, rx); got != dst {
				t.Fatalf("to %s: %q", dst, got)
			}
		}
		tx6 := a.open(t, syscall.AF_INET6)
		send(t, tx6, ap(netip.IPv6Loopback(), 7500), "::1")
		if got, res := recv(t, rx); got != "::1" || res.From.Addr() != netip.IPv6Loopback() {
			t.Fatalf("to ::1: %q from %v", got, res.From)
		}
	})
}

// TestManySockets: 10,000 sockets on distinct ports; delivery to one of
// them still works, and the table holds each once.
func TestManySockets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		var eps []transport.Endpoint
		for i := range 10000 {
			eps = append(eps, b.bound(t, syscall.AF_INET, ap(netip.Addr{}, uint16(10000+i))))
		}
		tx := a.open(t, syscall.AF_INET)
		send(t, tx, ap(addrB4, 17777), "needle")
		if got, _ := recv(t, eps[7777]); got != "needle" {
			t.Fatalf("got %q", got)
		}
		if n := len(b.udp.Endpoints()); n != 10000 {
			t.Fatalf("%d endpoints", n)
		}
		if n := len(b.udp.tab.wild); n != 10000 {
			t.Fatalf("wildcard table has %d ports", n)
		}
	})
}

// BenchmarkLookup10000: the demultiplexing cost with 10,000 sockets bound.
func BenchmarkLookup10000(b *testing.B) {
	_, h := pair(b)
	for i := range 10000 {
		ep, _ := h.udp.NewEndpoint(syscall.AF_INET)
		ep.Bind(ap(netip.Addr{}, uint16(10000+i)))
		defer ep.Close()
	}
	src, dst := ap(addrA4, 5000), ap(addrB4, 17777)
	for b.Loop() {
		if h.udp.lookup(src, dst, 2) == nil {
			b.Fatal("not found")
		}
	}
}

// TestRegistryAndSource: the registry serves SOCK_DGRAM with protocol 0
// and IPPROTO_UDP in both families (not SOCK_STREAM); netstat lists only
// sockets with a port; WriteOptions.Src picks one of our addresses for
// one datagram, and a foreign one is EADDRNOTAVAIL.
func TestRegistryAndSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := stacktest.NewNetwork(t, 17)
		a := newHost(t, nw, "10.0.0.1/24", "10.0.0.11/24")
		b := newHost(t, nw, "10.0.0.2/24")
		var reg transport.Registry
		a.udp.Register(&reg)
		for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
			for _, proto := range []int{0, syscall.IPPROTO_UDP} {
				ep, err := reg.New(transport.NewRequest{Family: fam, Type: syscall.SOCK_DGRAM, Protocol: proto})
				if err != nil {
					t.Fatalf("socket(%d, SOCK_DGRAM, %d): %v", fam, proto, err)
				}
				if v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_PROTOCOL); v != syscall.IPPROTO_UDP {
					t.Fatalf("SO_PROTOCOL %v", v)
				}
				ep.Close()
			}
		}
		if _, err := reg.New(transport.NewRequest{Family: syscall.AF_INET, Type: syscall.SOCK_STREAM}); err == nil {
			t.Fatal("SOCK_STREAM served by UDP")
		}
		// An unprivileged client may not bind below 1024 (EACCES, as Linux).
		user, err := reg.New(transport.NewRequest{Family: syscall.AF_INET, Type: syscall.SOCK_DGRAM, Cred: transport.Cred{UID: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		defer user.Close()
		if err := user.Bind(ap(netip.Addr{}, 53)); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("unprivileged bind to 53: %v", err)
		}
		if err := user.Bind(ap(netip.Addr{}, 1024)); err != nil {
			t.Fatalf("unprivileged bind to 1024: %v", err)
		}
		user.Close()
		unbound := a.open(t, syscall.AF_INET)
		if n := len(a.udp.Endpoints()); n != 0 {
			t.Fatalf("netstat lists %d sockets, none bound", n)
		}
		rx := b.bound(t, syscall.AF_INET, ap(netip.Addr{}, 8200))
		send(t, unbound, ap(addrB4, 8200), "default source")
		if _, res := recv(t, rx); res.From.Addr() != addrA4 {
			t.Fatalf("from %v", res.From)
		}
		if n := len(a.udp.Endpoints()); n != 1 {
			t.Fatalf("netstat lists %d sockets after a send", n)
		}
		alt := netip.MustParseAddr("10.0.0.11")
		if _, err := unbound.Write([][]byte{[]byte("alt")}, transport.WriteOptions{To: ap(addrB4, 8200), Src: alt}); err != nil {
			t.Fatal(err)
		}
		if got, res := recv(t, rx); got != "alt" || res.From.Addr() != alt {
			t.Fatalf("%q from %v", got, res.From)
		}
		if _, err := unbound.Write([][]byte{[]byte("x")}, transport.WriteOptions{To: ap(addrB4, 8200), Src: netip.MustParseAddr("10.0.0.99")}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatalf("foreign source: %v", err)
		}
	})
}
