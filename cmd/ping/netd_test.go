package ping

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/internal/hostopen"
	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/netd"
)

// ping through netd, as an unprivileged user, to a name netd's
// resolv.conf resolves: the DNS server runs on the peer stack, the name
// is a CNAME whose target the header shows, and an unknown name gets
// getaddrinfo's message.
func TestThroughNetdByName(t *testing.T) {
	a, b := pair(t, 71, "")
	dir := t.TempDir()
	resolvConf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver 10.71.0.2\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The DNS server on the peer.
	ctx := context.Background()
	pc, err := b.ListenPacket(ctx, "udp", "10.71.0.2:53", nil)
	if err != nil {
		t.Fatal(err)
	}
	zone := map[string]dns.RR{}
	for _, s := range []string{"alias.test. 60 IN CNAME peer.test.", "peer.test. 60 IN A 10.71.0.2"} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		zone[rr.Header().Name] = rr
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := q.Question[0].Name
		for rr, ok := zone[name]; ok; rr, ok = zone[name] {
			if q.Question[0].Qtype == dns.TypeAAAA && rr.Header().Rrtype == dns.TypeA {
				break
			}
			m.Answer = append(m.Answer, rr)
			cn, isCNAME := rr.(*dns.CNAME)
			if !isCNAME {
				break
			}
			name = cn.Target
		}
		if _, ok := zone[q.Question[0].Name]; !ok {
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
	s := netd.NewServer(a, netd.ServerOptions{PeerCred: user, ResolvConf: resolvConf})
	go s.Serve(l)
	defer s.Close()
	open := func(ctx context.Context, _ string, _ func(string) string) (host.Host, error) {
		return netd.Dial(ctx, sock)
	}
	cfg := Config{Resolve: hostopen.Resolve, UID: func() int { return 1000 }}

	r := runPing(t, open, cfg, "ping", "-c", "2", "-i", "0.2", "alias.test")
	if r.status != 0 {
		t.Fatalf("ping alias.test: status %d\n%s%s", r.status, r.out, r.err)
	}
	ls := lines(r.out)
	if ls[0] != "PING peer.test (10.71.0.2) 56(84) bytes of data." {
		t.Errorf("header %q", ls[0])
	}
	mustMatch(t, "reply", ls[1], `^64 bytes from 10\.71\.0\.2: icmp_seq=1 ttl=64 time=[0-9.]+ ms$`)
	if !strings.Contains(r.out, "--- peer.test ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss") {
		t.Errorf("summary:\n%s", r.out)
	}
	start := time.Now()
	r = runPing(t, open, cfg, "ping", "-c", "1", "nosuch.test")
	if r.status != 2 || r.err != "ping: nosuch.test: Name or service not known\n" {
		t.Errorf("unknown name: status %d, stderr %q", r.status, r.err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("NXDOMAIN took %v", time.Since(start))
	}
}
