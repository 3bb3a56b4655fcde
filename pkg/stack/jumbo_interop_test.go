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

// TestFragInterop: the kernel's fragmented 20000-byte echo requests
// reassemble here, and our fragmented replies reassemble in the kernel
// (ping checks the data), both families: two independent implementations
// of RFC 791 §3.2 / RFC 8200 §4.5 agree.
func TestFragInterop(t *testing.T) {
	lab := netlab.New(t)
	s, _, _ := newLabStack(t, lab, Options{}, tap.Config{},
		[]string{"10.65.0.2/24", "fd00:65::2/64"}, []string{"10.65.0.1/24", "fd00:65::1/64"})
	for _, dst := range []string{"10.65.0.1", "fd00:65::1"} {
		t.Run(dst, func(t *testing.T) {
			st := s.Stats()
			v6 := mustAddr(dst).Is6()
			reasm, frag := st.IP.ReasmOKs.Load(), st.IP.FragCreates.Load()
			if v6 {
				reasm, frag = st.IP6.ReasmOKs.Load(), st.IP6.FragCreates.Load()
			}
			out, err := ixLabRun(lab, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "20000", "-p", "a55a0ff0", dst)
			if err != nil || !strings.Contains(out, "20008 bytes from") {
				t.Fatalf("kernel ping -s 20000 %s: %v\n%s", dst, err, out)
			}
			if strings.Contains(out, "wrong data") || strings.Contains(out, "DUP!") {
				t.Errorf("kernel saw corrupt or duplicate replies:\n%s", out)
			}
			r2, f2 := st.IP.ReasmOKs.Load(), st.IP.FragCreates.Load()
			if v6 {
				r2, f2 = st.IP6.ReasmOKs.Load(), st.IP6.FragCreates.Load()
			}
			if r2-reasm < 2 || f2-frag < 2*14 {
				t.Errorf("ReasmOKs +%d (want ≥ 2), FragCreates +%d (want ≥ 28)", r2-reasm, f2-frag)
			}
		})
	}
}
