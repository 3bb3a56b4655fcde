package simnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/dhcp4"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// client joins the network as netd does, with its static configuration.
func client(t *testing.T) *stackhost.Host {
	t.Helper()
	n, err := Start(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c, err := stackhost.Start(n.LAN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.AddAddress(ctx, "eth0", ClientAddr, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRoute(ctx, host.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: Gateway}); err != nil {
		t.Fatal(err)
	}
	return c
}

// The gateway's DNS answers the sim. zone (CNAMEs followed, reverse
// names, NXDOMAIN) and refuses the rest; www.sim serves HTTP three
// routers away.
func TestDNSAndHTTP(t *testing.T) {
	c := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := resolver.DefaultConfig()
	cfg.Servers = []netip.AddrPort{netip.AddrPortFrom(Nameserver, 53)}
	cfg.Search = []string{Domain}
	r := resolver.New(c, cfg)
	addrs, err := r.LookupNetip(ctx, "web")
	if err != nil || len(addrs) != 1 || addrs[0] != WWW {
		t.Fatalf("web (search sim): %v, %v", addrs, err)
	}
	if cname, err := r.LookupCNAME(ctx, "web.sim"); err != nil || cname != "www.sim." {
		t.Errorf("CNAME of web.sim: %q, %v", cname, err)
	}
	if names, err := r.LookupAddr(ctx, "10.64.1.2"); err != nil || len(names) != 1 || names[0] != "r1.sim." {
		t.Errorf("PTR of 10.64.1.2: %v, %v", names, err)
	}
	if mx, err := r.LookupMX(ctx, "sim"); err != nil || len(mx) != 1 || mx[0].Host != "mail.sim." {
		t.Errorf("MX of sim: %v, %v", mx, err)
	}
	if _, err := r.LookupNetip(ctx, "nosuch.sim"); !errors.Is(err, resolver.ErrNXDomain) {
		t.Errorf("nosuch.sim: %v, want NXDOMAIN", err)
	}
	if _, err := r.Query(ctx, "example.com.", 1); err == nil || resolver.Rcode(err) != 5 {
		t.Errorf("example.com: %v (rcode %d), want REFUSED", err, resolver.Rcode(err))
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.Dial(ctx, network, strings.Replace(addr, "www.sim", WWW.String(), 1), nil)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://www.sim/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "It works") {
		t.Errorf("GET /: %d %q", resp.StatusCode, body)
	}
	// Echo over TCP.
	ec, err := c.Dial(ctx, "tcp", WWW.String()+":7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ec.Write([]byte("echo me"))
	b := make([]byte, 7)
	ec.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(ec, b); err != nil || string(b) != "echo me" {
		t.Errorf("echo: %q, %v", b, err)
	}
}

// Three routers: a ping of www.sim comes back with TTL 61, and UDP probes
// with TTL 1, 2, 3 are answered by time exceeded from the gateway, r1
// and r2 (what traceroute prints), TTL 4 by the server's port
// unreachable.
func TestHops(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	pc, err := c.ListenPacket(ctx, "ping4", "", &host.SocketOptions{Options: []host.SockOpt{{Level: syscall.IPPROTO_IP, Name: syscall.IP_RECVTTL, Value: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	pc.SendMsg([]byte{8, 0, 0, 0, 0, 0, 0, 1}, nil, netip.AddrPortFrom(WWW, 0))
	b, oob := make([]byte, 64), make([]byte, 64)
	if _, oobn, _, from, err := pc.RecvMsg(b, oob, 0); err != nil || from.Addr() != WWW || oobn < 20 || oob[16] != 61 {
		t.Fatalf("echo reply from %v, cmsg %x, %v; want TTL 61", from, oob[:oobn], err)
	}
	u, err := c.ListenPacket(ctx, "udp4", ":0", &host.SocketOptions{Options: []host.SockOpt{{Level: syscall.IPPROTO_IP, Name: syscall.IP_RECVERR, Value: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetReadDeadline(time.Now().Add(10 * time.Second))
	for ttl, want := range map[int]string{1: "192.168.64.1", 2: "10.64.1.2", 3: "10.64.2.2", 4: WWW.String()} {
		u.SetSockOptInt(syscall.IPPROTO_IP, syscall.IP_TTL, ttl)
		if _, err := u.SendMsg([]byte("probe"), nil, netip.AddrPortFrom(WWW, 33434)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := u.RecvMsg(b, nil, 0); err == nil {
			t.Fatalf("ttl %d: a reply, not an ICMP error", ttl)
		}
		_, oobn, _, _, err := u.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
		if err != nil || oobn < 16+16+16 {
			t.Fatalf("ttl %d: error queue: %d bytes, %v", ttl, oobn, err)
		}
		// sock_extended_err (16 bytes) after the cmsg header, then the
		// offender's sockaddr_in.
		offender := netip.AddrFrom4([4]byte(oob[16+16+4 : 16+16+8]))
		if offender.String() != want {
			t.Errorf("ttl %d: ICMP error from %v, want %s", ttl, offender, want)
		}
	}
}

// The gateway's DHCP server leases the LAN to our dhcp4 client: address
// with the prefix, route, nameserver and domain; a second client gets
// another address; the same client keeps its address; after a RELEASE
// the address can go to someone else.
func TestDHCP(t *testing.T) {
	n, err := Start(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease := func(h *stackhost.Host) (*dhcp4.Client, *dhcp4.Lease) {
		t.Helper()
		c, err := dhcp4.New(ctx, dhcp4.Config{Host: h, Interface: "eth0", Wait: func(int) time.Duration { return time.Second }})
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.Obtain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c, l
	}
	var hs []*stackhost.Host
	for range 2 {
		h, err := stackhost.Start(n.LAN)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hs = append(hs, h)
	}
	c1, l1 := lease(hs[0])
	defer c1.Close()
	if l1.Address != netip.MustParsePrefix("192.168.64.100/24") || len(l1.Routers) != 1 || l1.Routers[0] != Gateway ||
		len(l1.DNS) != 1 || l1.DNS[0] != Nameserver || l1.Domain != Domain || l1.Duration.D() != LeaseTime {
		t.Errorf("lease %+v", l1)
	}
	c2, l2 := lease(hs[1])
	if l2.Address.Addr() != netip.MustParseAddr("192.168.64.101") {
		t.Errorf("second client got %v", l2.Address)
	}
	// The lease works: the first client reaches www.sim through the route.
	pc, err := hs[0].ListenPacket(ctx, "ping4", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	pc.SendMsg([]byte{8, 0, 0, 0, 0, 0, 0, 1}, nil, netip.AddrPortFrom(WWW, 0))
	if _, _, _, from, err := pc.RecvMsg(make([]byte, 64), nil, 0); err != nil || from.Addr() != WWW {
		t.Errorf("ping www.sim on the leased address: %v, %v", from, err)
	}
	if err := c2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	// The RELEASE is a datagram: wait (bounded) until the server had it.
	for deadline := time.Now().Add(5 * time.Second); n.dhcp.leased(l2.Address.Addr()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never saw the RELEASE")
		}
	}
	h3, err := stackhost.Start(n.LAN)
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	c3, l3 := lease(h3)
	defer c3.Close()
	if l3.Address.Addr() != netip.MustParseAddr("192.168.64.101") {
		t.Errorf("after the release a new client got %v, want the freed .101", l3.Address)
	}
}
