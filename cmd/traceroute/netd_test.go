package traceroute

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/netd"
)

// traceroute through netd as an unprivileged client, with names from
// the DNS server on B that netd's resolv.conf names: the operand's A
// record, PTR records for the hops that have one (the rest print as
// their address), the UDP and ICMP methods (the error queue crosses the
// daemon's socket API), and -T refused for want of privilege.
func TestThroughNetd(t *testing.T) {
	c := newChain(t)
	dir := t.TempDir()
	resolvConf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver 10.71.3.2\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pc, err := c.B.ListenPacket(context.Background(), "udp", "10.71.3.2:53", nil)
	if err != nil {
		t.Fatal(err)
	}
	zone := map[string]string{}
	for _, s := range []string{
		"b.test. 60 IN A 10.71.3.2",
		"2.3.71.10.in-addr.arpa. 60 IN PTR b.test.",
		"1.1.71.10.in-addr.arpa. 60 IN PTR r1.test.",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		zone[rr.Header().Name+dns.TypeToString[rr.Header().Rrtype]] = s
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		qq := q.Question[0]
		if s, ok := zone[qq.Name+dns.TypeToString[qq.Qtype]]; ok {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		} else if qq.Qtype != dns.TypeAAAA || qq.Name != "b.test." {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	sock := filepath.Join(dir, "netd.sock")
	l, err := netd.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	user := func(net.Conn) (netd.Cred, error) {
		return netd.Cred{UID: 1000, GID: 1000, PID: int32(os.Getpid())}, nil
	}
	s := netd.NewServer(c.A, netd.ServerOptions{PeerCred: user, ResolvConf: resolvConf})
	go s.Serve(l)
	defer s.Close()
	open := func(ctx context.Context, _ string, _ func(string) string) (host.Host, error) {
		return netd.Dial(ctx, sock)
	}
	cfg := Config{Resolve: hostopen.Resolve, Reverse: hostopen.ReverseName}
	want := "traceroute to b.test (10.71.3.2), 30 hops max, 60 byte packets\n" +
		" 1  r1.test (10.71.1.1)  T ms  T ms  T ms\n" +
		" 2  10.71.2.2 (10.71.2.2)  T ms  T ms  T ms\n" +
		" 3  b.test (10.71.3.2)  T ms  T ms  T ms\n"
	expect(t, "udp", runTrace(t, open, cfg, "traceroute", "-w", "3", "b.test"), 0, want)
	expect(t, "-I", runTrace(t, open, cfg, "traceroute", "-w", "3", "-I", "b.test"), 0, want)
	r := runTrace(t, open, cfg, "traceroute", "-T", "b.test")
	if r.status != 1 || r.err != "You do not have enough privileges to use this traceroute method.\nsocket: Operation not permitted\n" {
		t.Errorf("-T: exit %d, %q, %q", r.status, r.out, r.err)
	}
	r = runTrace(t, open, cfg, "traceroute", "nosuch.test")
	if r.status != 2 || r.err != "nosuch.test: Name or service not known\nCannot handle \"host\" cmdline arg `nosuch.test' on position 1 (argc 1)\n" {
		t.Errorf("nosuch.test: exit %d, %q", r.status, r.err)
	}
}
