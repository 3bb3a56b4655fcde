package netd

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/resolver"
)

// StubResolver is where netd's caching DNS stub listens on its stack's
// loopback (127.0.0.1:53, as a local dnsmasq): the resolv.conf netd owns
// names it, so every tool's lookups share one cache that honours TTLs.
var StubResolver = netip.MustParseAddr("127.0.0.1")

// stubQueryTimeout bounds one forwarded question.
const stubQueryTimeout = 10 * time.Second

// startStub serves DNS on StubResolver:53 (UDP and TCP), answering from
// the cache or from the upstream servers (the configured ones, then the
// DHCP leases'), caching what they say (resolver.Cache: TTLs, negative
// answers per RFC 2308).
func (d *Daemon) startStub(ctx context.Context) error {
	d.cache = resolver.NewCache(4096, time.Now)
	opts := &host.SocketOptions{Cred: &host.Cred{Privileged: true, Program: "netd"}}
	at := netip.AddrPortFrom(StubResolver, 53).String()
	pc, err := d.Host.ListenPacket(ctx, "udp4", at, opts)
	if err != nil {
		return fmt.Errorf("DNS stub on %s: %w", at, err)
	}
	ln, err := d.Host.Listen(ctx, "tcp4", at, opts)
	if err != nil {
		pc.Close()
		return fmt.Errorf("DNS stub on %s: %w", at, err)
	}
	h := dns.HandlerFunc(d.stubAnswer)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go s.ActivateAndServe()
		d.stubStops = append(d.stubStops, func() { s.Shutdown() })
	}
	return nil
}

// upstream is the resolver the stub forwards through.
func (d *Daemon) upstream() *resolver.Resolver {
	d.mu.Lock()
	servers := slices.Clone(d.cfg.DNS)
	for _, dev := range slices.Sorted(maps.Keys(d.leaseDNS)) {
		for _, a := range d.leaseDNS[dev].DNS {
			if !slices.Contains(servers, a) {
				servers = append(servers, a)
			}
		}
	}
	d.mu.Unlock()
	cfg := resolver.DefaultConfig()
	cfg.Servers = nil
	for _, a := range servers {
		cfg.Servers = append(cfg.Servers, netip.AddrPortFrom(a, 53))
	}
	return resolver.New(d.Host, cfg)
}

func (d *Daemon) stubAnswer(w dns.ResponseWriter, q *dns.Msg) {
	reply := func(m *dns.Msg) {
		// A forwarder's answers are not authoritative, and it recurses.
		m.Id, m.Authoritative, m.RecursionAvailable = q.Id, false, true
		if w.RemoteAddr().Network() == "udp" {
			size := dns.MinMsgSize
			if o := q.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	}
	fail := func(rcode int) {
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		m.RecursionAvailable = true
		reply(m)
	}
	if len(q.Question) != 1 || q.Opcode != dns.OpcodeQuery {
		fail(dns.RcodeFormatError)
		return
	}
	if m := d.cache.Get(q.Question[0]); m != nil {
		reply(m)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stubQueryTimeout)
	defer cancel()
	m, _, err := d.upstream().Exchange(ctx, q)
	if err != nil || m == nil {
		fail(dns.RcodeServerFailure)
		return
	}
	d.cache.Put(m)
	reply(m)
}

// writeResolvConf writes the resolv.conf netd owns: the stub as the one
// nameserver, and the search list of the configuration and the leases.
// Called with d.mu held.
func (d *Daemon) writeResolvConfLocked() error {
	cfg := d.cfg
	cfg.DNS = []netip.Addr{StubResolver}
	cfg.Search = slices.Clone(d.cfg.Search)
	for _, dev := range slices.Sorted(maps.Keys(d.leaseDNS)) {
		if dom := d.leaseDNS[dev].Domain; dom != "" && !slices.Contains(cfg.Search, dom) {
			cfg.Search = append(cfg.Search, dom)
		}
	}
	return writeFileAtomic(d.cfg.ResolvConf, []byte(resolvConf(&cfg)))
}

func (d *Daemon) stopStub() {
	for _, stop := range d.stubStops {
		stop()
	}
	d.stubStops = nil
}
