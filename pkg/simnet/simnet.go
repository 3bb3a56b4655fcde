// Package simnet is the built-in simulated network that netd joins when
// it has no real link (DESIGN.md, Process model: "Embedded default"): a
// handful of hosts running our own stack, joined by emulated Ethernet
// networks inside the process, so every tool has something to talk to
// on a fresh machine without root.
//
//	netd eth0 192.168.64.100 ─ LAN 192.168.64.0/24 ─ gateway .1 (DHCP, DNS for "sim.")
//	gateway 10.64.1.1 ─ 10.64.1.0/30 ─ r1 10.64.1.2
//	r1 10.64.2.1      ─ 10.64.2.0/30 ─ r2 10.64.2.2
//	r2 198.51.100.1   ─ 198.51.100.0/24 ─ www 198.51.100.10 (HTTP :80, echo :7 TCP and UDP)
//
// The gateway, r1 and r2 forward IPv4, so traceroute www.sim shows three
// hops before the server. The gateway's DNS server is authoritative for
// sim. and the reverse zones of these addresses and refuses other names
// (it does not recurse). Its DHCP server leases 192.168.64.100-199 with
// the route, nameserver and domain; ClientAddr and the rest below are
// what a static client uses instead.
//
// A Network owns its hosts and their links; it holds no locks of its own
// (each stack and server has its own).
package simnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// What a client of the LAN uses.
var (
	ClientAddr = netip.MustParsePrefix("192.168.64.100/24")
	Gateway    = netip.MustParseAddr("192.168.64.1")
	Nameserver = Gateway
	Domain     = "sim"
	// WWW is the web server at the far end.
	WWW = netip.MustParseAddr("198.51.100.10")
)

// Network is a running simulated network.
type Network struct {
	// LAN is the link spec a client attaches to ("emu:NAME").
	LAN   string
	hosts []*stackhost.Host
	stops []func()
	dhcp  *dhcpServer
}

// The names (and reverse pointers) the gateway's DNS server knows.
var records = []string{
	"sim. 3600 IN SOA gateway.sim. hostmaster.sim. 1 3600 600 86400 60",
	"sim. 3600 IN NS gateway.sim.",
	"sim. 3600 IN MX 10 mail.sim.",
	"sim. 3600 IN TXT \"stackbox simulated network\"",
	"gateway.sim. 3600 IN A 192.168.64.1",
	"r1.sim. 3600 IN A 10.64.1.2",
	"r2.sim. 3600 IN A 10.64.2.2",
	"www.sim. 3600 IN A 198.51.100.10",
	"mail.sim. 3600 IN CNAME www.sim.",
	"web.sim. 3600 IN CNAME www.sim.",
	"_http._tcp.sim. 3600 IN SRV 0 0 80 www.sim.",
	"1.64.168.192.in-addr.arpa. 3600 IN PTR gateway.sim.",
	"1.1.64.10.in-addr.arpa. 3600 IN PTR gateway.sim.",
	"2.1.64.10.in-addr.arpa. 3600 IN PTR r1.sim.",
	"1.2.64.10.in-addr.arpa. 3600 IN PTR r1.sim.",
	"2.2.64.10.in-addr.arpa. 3600 IN PTR r2.sim.",
	"1.100.51.198.in-addr.arpa. 3600 IN PTR r2.sim.",
	"10.100.51.198.in-addr.arpa. 3600 IN PTR www.sim.",
	"100.64.168.192.in-addr.arpa. 3600 IN PTR client.sim.",
	"client.sim. 3600 IN A 192.168.64.100",
}

// zones are the names the server is authoritative for.
var zones = []string{"sim.", "64.168.192.in-addr.arpa.", "64.10.in-addr.arpa.", "100.51.198.in-addr.arpa."}

// Start builds the network; name keeps two networks in one process apart.
func Start(name string) (*Network, error) {
	n := &Network{LAN: "emu:simnet-" + name + "-lan"}
	link := func(seg string) string { return "emu:simnet-" + name + "-" + seg }
	ctx := context.Background()
	type hostSpec struct {
		links  []string
		addrs  []string
		routes []host.Route
	}
	route := func(dst, gw string) host.Route {
		return host.Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr(gw)}
	}
	specs := []hostSpec{
		{[]string{n.LAN, link("wan1")}, []string{"eth0=192.168.64.1/24", "eth1=10.64.1.1/30"},
			[]host.Route{route("0.0.0.0/0", "10.64.1.2")}},
		{[]string{link("wan1"), link("wan2")}, []string{"eth0=10.64.1.2/30", "eth1=10.64.2.1/30"},
			[]host.Route{route("192.168.64.0/24", "10.64.1.1"), route("0.0.0.0/0", "10.64.2.2")}},
		{[]string{link("wan2"), link("dmz")}, []string{"eth0=10.64.2.2/30", "eth1=198.51.100.1/24"},
			[]host.Route{route("0.0.0.0/0", "10.64.2.1")}},
		{[]string{link("dmz")}, []string{"eth0=198.51.100.10/24"},
			[]host.Route{route("0.0.0.0/0", "198.51.100.1")}},
	}
	for i, sp := range specs {
		h, err := stackhost.Start(sp.links...)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.hosts = append(n.hosts, h)
		for _, a := range sp.addrs {
			dev, p, _ := strings.Cut(a, "=")
			if err := h.AddAddress(ctx, dev, netip.MustParsePrefix(p), netip.Addr{}); err != nil {
				n.Close()
				return nil, fmt.Errorf("simnet: host %d: %w", i, err)
			}
		}
		for _, r := range sp.routes {
			if err := h.AddRoute(ctx, r); err != nil {
				n.Close()
				return nil, fmt.Errorf("simnet: host %d: %w", i, err)
			}
		}
		if len(sp.links) > 1 {
			h.Stack().SetForwarding(false, true)
		}
	}
	if err := n.serveDHCP(n.hosts[0], "eth0"); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.serveDNS(n.hosts[0], Gateway); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.serveWWW(n.hosts[3], WWW); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// The network's own services bind low ports whoever runs netd.
var service = &host.SocketOptions{Cred: &host.Cred{Privileged: true, Program: "simnet"}}

func (n *Network) serveDNS(h *stackhost.Host, at netip.Addr) error {
	zone := make(map[string][]dns.RR)
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return fmt.Errorf("simnet: record %q: %w", s, err)
		}
		name := strings.ToLower(rr.Header().Name)
		zone[name] = append(zone[name], rr)
	}
	soa := zone["sim."][0]
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		w.WriteMsg(answer(zone, soa, q))
	})
	ctx := context.Background()
	pc, err := h.ListenPacket(ctx, "udp4", netip.AddrPortFrom(at, 53).String(), service)
	if err != nil {
		return fmt.Errorf("simnet: DNS: %w", err)
	}
	ln, err := h.Listen(ctx, "tcp4", netip.AddrPortFrom(at, 53).String(), service)
	if err != nil {
		pc.Close()
		return fmt.Errorf("simnet: DNS: %w", err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go s.ActivateAndServe()
		n.stops = append(n.stops, func() { s.Shutdown() })
	}
	return nil
}

// answer is an authoritative server's reply (RFC 1034 §4.3.2): the
// records of the name and type asked, following CNAMEs inside the zone;
// NXDOMAIN or no data with the SOA in the authority section; REFUSED
// outside its zones, as it does not recurse.
func answer(zone map[string][]dns.RR, soa dns.RR, q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	qt := q.Question[0].Qtype
	name := strings.ToLower(q.Question[0].Name)
	inZone := false
	for _, z := range zones {
		inZone = inZone || dns.IsSubDomain(z, name)
	}
	if !inZone {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	for hops := 0; hops < 8; hops++ {
		rrs, ok := zone[name]
		if !ok {
			if hops == 0 {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		var next string
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qt || qt == dns.TypeANY:
				m.Answer = append(m.Answer, rr)
			case rr.Header().Rrtype == dns.TypeCNAME:
				m.Answer = append(m.Answer, rr)
				next = strings.ToLower(rr.(*dns.CNAME).Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, soa)
	}
	return m
}

func (n *Network) serveWWW(h *stackhost.Host, at netip.Addr) error {
	ctx := context.Background()
	ln, err := h.Listen(ctx, "tcp4", netip.AddrPortFrom(at, 80).String(), service)
	if err != nil {
		return fmt.Errorf("simnet: HTTP: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>www.sim</title></head>\n<body><h1>It works</h1>\n<p>This page comes from www.sim, a host of stackbox's simulated network, three routers away.</p></body></html>\n")
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from www.sim to %s\n", r.RemoteAddr)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	n.stops = append(n.stops, func() { srv.Close() })

	// Echo (RFC 862) over TCP and UDP on port 7.
	eln, err := h.Listen(ctx, "tcp4", netip.AddrPortFrom(at, 7).String(), service)
	if err != nil {
		return fmt.Errorf("simnet: echo: %w", err)
	}
	n.stops = append(n.stops, func() { eln.Close() })
	go func() {
		for {
			c, err := eln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				io.Copy(c, c)
			}()
		}
	}()
	epc, err := h.ListenPacket(ctx, "udp4", netip.AddrPortFrom(at, 7).String(), service)
	if err != nil {
		return fmt.Errorf("simnet: echo: %w", err)
	}
	n.stops = append(n.stops, func() { epc.Close() })
	go func() {
		b := make([]byte, 1<<16)
		for {
			k, from, err := epc.ReadFrom(b)
			if err != nil {
				var en syscall.Errno
				if errors.As(err, &en) && en != syscall.EBADF {
					continue // an ICMP error for an earlier reply, reported once
				}
				return
			}
			epc.WriteTo(b[:k], from)
		}
	}()
	return nil
}

// Close stops the services and the hosts.
func (n *Network) Close() error {
	for _, stop := range n.stops {
		stop()
	}
	for _, h := range n.hosts {
		h.Close()
	}
	return nil
}
