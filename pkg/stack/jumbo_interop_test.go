//go:build linux

package stack

import (
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link/tap"
)

// TestJumboInterop: on a 9000-byte-MTU link the kernel's largest
// unfragmented echo (8972 bytes of ICMP data for IPv4, 8952 for IPv6) is
// answered whole: our replies are not fragmented and nothing needed
// reassembly.
func TestJumboInterop(t *testing.T) {
	lab := netlab.New(t)
	s, n, tp := newLabStack(t, lab, Options{}, tap.Config{MTU: 9000},
		[]string{"10.62.0.2/24", "fd00:62::2/64"}, []string{"10.62.0.1/24", "fd00:62::1/64"})
	if n.MTU() != 9000 {
		t.Fatalf("our NIC MTU %d, want 9000 (the TAP's)", n.MTU())
	}
	// The kernel side takes the MTU tap.Open set; make sure.
	if out := string(lab.MustIP(t, "link", "show", "dev", tp.Dev)); !strings.Contains(out, "mtu 9000") {
		lab.MustIP(t, "link", "set", "dev", tp.Dev, "mtu", "9000")
	}
	for _, tc := range []struct {
		dst, size string
		v6        bool
	}{
		{"10.62.0.1", "8972", false},
		{"fd00:62::1", "8952", true},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			args := []string{"-M", "do", "-s", tc.size, "-c", "2", "-i", "0.2", "-W", "2", tc.dst}
			if tc.v6 {
				args = append([]string{"-6"}, args...)
			}
			out, err := ixLabRun(lab, "ping", args...)
			if err != nil {
				t.Fatalf("kernel ping %v: %v\n%s", args, err, out)
			}
			if !strings.Contains(out, tc.size+" bytes") && !strings.Contains(out, "bytes from") {
				t.Errorf("ping output has no replies:\n%s", out)
			}
		})
	}
	st := s.Stats()
	if v := st.IP.FragCreates.Load() + st.IP6.FragCreates.Load(); v != 0 {
		t.Errorf("FragCreates %d, want 0: jumbo replies were fragmented", v)
	}
	if v := st.IP.ReasmReqds.Load() + st.IP6.ReasmReqds.Load(); v != 0 {
		t.Errorf("ReasmReqds %d, want 0: the kernel's jumbo requests arrived fragmented", v)
	}
	if v := st.ICMP.OutEchoReps.Load(); v < 2 {
		t.Errorf("Icmp OutEchoReps %d, want ≥ 2", v)
	}
	if v := st.ICMP6.OutEchoReplies.Load(); v < 2 {
		t.Errorf("Icmp6 OutEchoReplies %d, want ≥ 2", v)
	}
}
