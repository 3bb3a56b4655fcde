//go:build linux

package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// TestInteropDnsmasq resolves through dnsmasq, a real nameserver run by
// the kernel in a lab namespace, over a TAP device: our stack at
// 10.85.0.2, dnsmasq on 10.85.0.1:53 answering for lab.test from its
// command line. Every lookup kind, NXDOMAIN, and a TXT set too big for
// UDP that dnsmasq truncates (so the answer comes over TCP).
func TestInteropDnsmasq(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (scripts/test-deps.sh installs dnsmasq-base); skipping the dnsmasq interop test")
	}
	lab := netlab.New(t)
	dev := fmt.Sprintf("sbxrs%d", os.Getpid()%100000)
	h, err := stackhost.Start("tap:" + dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	lab.Adopt(t, dev, netip.MustParsePrefix("10.85.0.1/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.AddAddress(ctx, "eth0", netip.MustParsePrefix("10.85.0.2/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--keep-in-foreground", "--log-facility=-", "--pid-file=", "--user=root",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=10.85.0.1", "--port=53",
		"--local=/lab.test/",
		"--host-record=web.lab.test,10.85.9.1,fd85::9",
		"--cname=alias.lab.test,web.lab.test",
		"--mx-host=lab.test,mail.lab.test,10",
		"--txt-record=txt.lab.test,hello world",
		"--srv-host=_http._tcp.lab.test,web.lab.test,80,1,10",
	}
	for i := range 30 {
		args = append(args, fmt.Sprintf("--txt-record=big.lab.test,record %02d of a set that cannot fit in 512 bytes", i))
	}
	proc := lab.Start(t, bin, args...)
	r := New(h, &Config{
		Servers:  []netip.AddrPort{netip.MustParseAddrPort("10.85.0.1:53")},
		Search:   []string{"lab.test"},
		Ndots:    1,
		Timeout:  time.Second,
		Attempts: 1,
	})
	// dnsmasq is up when it answers (bounded). The probe is a question of
	// its own: a lookup racing dnsmasq's bind can see one family refused
	// (port unreachable) and the other answered, which is a correct
	// partial answer but not the one checked below.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err = r.LookupTXT(ctx, "txt.lab.test"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not answer within 10s: %v\ndnsmasq: %s", err, proc.Output())
		}
		select {
		case <-proc.Done():
			t.Fatalf("dnsmasq exited: %s", proc.Output())
		default:
		}
	}
	addrs, err := r.LookupNetip(ctx, "web")
	want := []netip.Addr{netip.MustParseAddr("10.85.9.1"), netip.MustParseAddr("fd85::9")}
	if err != nil || !reflect.DeepEqual(addrs, want) {
		t.Fatalf("web (search lab.test) = %v, %v; want %v\ndnsmasq: %s", addrs, err, want, proc.Output())
	}
	if c, err := r.LookupCNAME(ctx, "alias.lab.test"); err != nil || c != "web.lab.test." {
		t.Errorf("LookupCNAME = %q, %v", c, err)
	}
	if mx, err := r.LookupMX(ctx, "lab.test"); err != nil || len(mx) != 1 || mx[0].Host != "mail.lab.test." || mx[0].Pref != 10 {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	if txt, err := r.LookupTXT(ctx, "txt.lab.test"); err != nil || !reflect.DeepEqual(txt, []string{"hello world"}) {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
	if _, srv, err := r.LookupSRV(ctx, "http", "tcp", "lab.test"); err != nil || len(srv) != 1 || srv[0].Port != 80 || srv[0].Target != "web.lab.test." {
		t.Errorf("LookupSRV = %v, %v", srv, err)
	}
	if names, err := r.LookupAddr(ctx, "10.85.9.1"); err != nil || !reflect.DeepEqual(names, []string{"web.lab.test."}) {
		t.Errorf("LookupAddr v4 = %v, %v", names, err)
	}
	if names, err := r.LookupAddr(ctx, "fd85::9"); err != nil || !reflect.DeepEqual(names, []string{"web.lab.test."}) {
		t.Errorf("LookupAddr v6 = %v, %v", names, err)
	}
	if _, err := r.LookupHost(ctx, "missing.lab.test"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("missing.lab.test: %v, want NXDOMAIN", err)
	}
	txt, err := r.LookupTXT(ctx, "big.lab.test")
	if err != nil || len(txt) != 30 {
		t.Errorf("big.lab.test: %d records, %v; want 30 (over TCP)", len(txt), err)
	}
	// The same question over UDP alone is truncated: the TCP answer above
	// was needed.
	m, err := r.exchangeUDP(ctx, r.Config.Servers[0], r.newQuery("big.lab.test.", dns.TypeTXT, true))
	if err != nil || !m.Truncated {
		t.Errorf("big.lab.test over UDP: %v, %v; want TC set", m, err)
	}
	if out := proc.Output(); strings.Contains(out, "FAILED") {
		t.Errorf("dnsmasq: %s", out)
	}
}
