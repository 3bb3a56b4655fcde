//go:build linux

package stack

import (
	"context"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
)

// The Linux kernel as the multicast router: the kernel side of our tap is
// a port of a bridge with IGMP/MLD snooping and the querier on. The bridge
// queries us, parses our answers into its multicast database (`bridge
// mdb`), and on our leave runs its last-member queries and drops the
// entries; tshark decodes every message we send.

// mcastCapture starts tshark on dev for IGMP and MLD, printing one line
// per message, and waits until it captures ("Capturing on" comes before
// dumpcap has opened the device; "Capture started" after).
func mcastCapture(t *testing.T, l *netlab.Lab, dev string, secs int) *netlab.Proc {
	t.Helper()
	p := l.Start(t, "tshark", "-l", "-n", "-i", dev, "-a", "duration:"+strconv.Itoa(secs),
		"-f", "igmp or ip6", "-Y", "igmp or icmpv6.type in {130, 131, 132, 143}",
		"-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "ip.src", "-e", "ip.ttl", "-e", "ip.opt.ra", "-e", "igmp.type", "-e", "igmp.checksum.status",
		"-e", "igmp.record_type", "-e", "igmp.maddr",
		"-e", "ipv6.src", "-e", "ipv6.hlim", "-e", "ipv6.opt.router_alert", "-e", "icmpv6.type",
		"-e", "icmpv6.checksum.status", "-e", "icmpv6.mldr.mar.record_type", "-e", "icmpv6.mldr.mar.multicast_address",
		"-e", "icmpv6.mld.multicast_address")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "Capture started") {
		if time.Now().After(deadline) {
			t.Fatalf("tshark did not start:\n%s", p.Output())
		}
		select {
		case <-p.Done():
			t.Fatalf("tshark exited:\n%s", p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

// waitMDB polls `bridge mdb show` until has(output) holds, for at most 8 s.
func waitMDB(t *testing.T, l *netlab.Lab, what string, has func(string) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var out []byte
	for {
		var err error
		out, err = l.Run(ctx, "bridge", "mdb", "show")
		if err == nil && has(string(out)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kernel bridge: %s: timed out; mdb:\n%s", what, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestMcastKernelBridgeInterop(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	if _, err := exec.LookPath("bridge"); err != nil {
		t.Skip("bridge (iproute2) not installed")
	}
	for _, tt := range []struct {
		name     string
		igmp     string // the bridge querier's versions
		mld      string
		answer4  string // IGMP message (type/record type) we answer its queries with
		answer6  string // MLD message (type/record type)
		leave4   string
		leave6   string
		v3Report bool
	}{
		// RFC 3376 / RFC 3810 queriers: Current-State MODE_IS_EXCLUDE
		// records, CHANGE_TO_INCLUDE on leave.
		{name: "IGMPv3 and MLDv2 querier", igmp: "3", mld: "2", answer4: "0x22/2", answer6: "143/2", leave4: "0x22/3", leave6: "143/3"},
		// The bridge's defaults: we fall back to IGMPv2 reports and
		// leaves (RFC 3376 §7.2.1) and MLDv1 reports and dones (RFC 3810 §8.2.1).
		{name: "IGMPv2 and MLDv1 querier", igmp: "2", mld: "1", answer4: "0x16/", answer6: "131/", leave4: "0x17/", leave6: "132/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := netlab.New(t)
			tp := l.AddTAP(t, netlab.TAPConfig{})
			// Startup queries at 0, 1 and 2 s with a 1 s maximum response
			// time; two last-member queries 0.5 s apart on a leave.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if out, err := l.IP(ctx, "link", "add", "br0", "type", "bridge", "mcast_snooping", "1", "mcast_querier", "1",
				"mcast_igmp_version", tt.igmp, "mcast_mld_version", tt.mld,
				"mcast_startup_query_count", "3", "mcast_startup_query_interval", "100",
				"mcast_query_response_interval", "100",
				"mcast_last_member_count", "2", "mcast_last_member_interval", "50"); err != nil {
				t.Skipf("no kernel bridge with multicast snooping here: %v\n%s", err, out)
			}
			l.Sysctl(t, "net.ipv6.conf.br0.accept_dad", "0") // MLD queries need its link-local address at once
			l.MustIP(t, "link", "set", "dev", tp.Dev, "master", "br0")
			l.MustIP(t, "addr", "add", "10.78.0.1/24", "dev", "br0")

			capture := mcastCapture(t, l, tp.Dev, 10)

			s := New(Options{})
			t.Cleanup(func() { s.Close() })
			n, err := s.AddNIC(tp.Endpoint, NICOptions{NoDAD: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"10.78.0.2/24", "fe80::78:2/64"} {
				if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
					t.Fatal(err)
				}
			}
			n.SetUp(true)
			g4, g6 := mustAddr("239.7.7.7"), mustAddr("ff05::7")
			// Joined while the bridge is down, which drops our unsolicited
			// reports: it learns the groups from our answers to its queries.
			n.JoinGroup(g4)
			n.JoinGroup(g6)
			time.Sleep(1500 * time.Millisecond) // past the last retransmission
			l.MustIP(t, "link", "set", "dev", "br0", "up")
			waitMDB(t, l, "learn 239.7.7.7 and ff05::7", func(out string) bool {
				return strings.Contains(out, "port "+tp.Dev+" grp 239.7.7.7") && strings.Contains(out, "port "+tp.Dev+" grp ff05::7")
			})
			// Our leave: the bridge sends its last-member queries, nobody
			// else answers, and the entries go.
			n.LeaveGroup(g4)
			n.LeaveGroup(g6)
			waitMDB(t, l, "forget 239.7.7.7 and ff05::7", func(out string) bool {
				return !strings.Contains(out, "grp 239.7.7.7") && !strings.Contains(out, "grp ff05::7")
			})

			select {
			case <-capture.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("tshark did not stop")
			}
			// What we sent about our groups: "type/record type" → count.
			sent4, sent6 := map[string]int{}, map[string]int{}
			var queries4, queries6 int
			for _, line := range strings.Split(capture.Output(), "\n") {
				f := strings.Split(line, "|")
				if len(f) != 15 {
					continue
				}
				switch {
				case f[3] == "0x11":
					queries4++
				case f[10] == "130":
					queries6++
				case f[0] == "10.78.0.2": // ours, IGMP
					// TTL 1, Router Alert, checksum good.
					if f[1] != "1" || f[2] == "" || f[4] != "1" {
						t.Errorf("IGMP from us: %q", line)
					}
					if f[6] == "239.7.7.7" {
						sent4[f[3]+"/"+f[5]]++
					}
				case f[7] == "fe80::78:2": // ours, MLD
					// Hop limit 1, Router Alert, checksum good.
					if f[8] != "1" || f[9] == "" || f[11] != "1" {
						t.Errorf("MLD from us: %q", line)
					}
					if f[14] == "ff05::7" {
						sent6[f[10]+"/"]++
					}
					recs := strings.Split(f[12], ",")
					for i, g := range strings.Split(f[13], ",") {
						if g == "ff05::7" && i < len(recs) {
							sent6[f[10]+"/"+recs[i]]++
						}
					}
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("tshark:\n%s", capture.Output())
			}
			if queries4 == 0 || queries6 == 0 {
				t.Fatalf("the kernel sent %d IGMP and %d MLD queries", queries4, queries6)
			}
			t.Logf("sent IGMP %v, MLD %v", sent4, sent6)
			// Joins: two CHANGE_TO_EXCLUDE each (RFC 3376 §5.1, RFC 3810 §6.1).
			if sent4["0x22/4"] != 2 || sent6["143/4"] != 2 {
				t.Errorf("join reports: IGMP %v, MLD %v; want two TO_EX (record type 4) each", sent4, sent6)
			}
			if sent4[tt.answer4] == 0 || sent6[tt.answer6] == 0 {
				t.Errorf("no answer %s / %s to the kernel's queries: IGMP %v, MLD %v", tt.answer4, tt.answer6, sent4, sent6)
			}
			if sent4[tt.leave4] == 0 || sent6[tt.leave6] == 0 {
				t.Errorf("no leave %s / %s: IGMP %v, MLD %v", tt.leave4, tt.leave6, sent4, sent6)
			}
		})
	}
}
