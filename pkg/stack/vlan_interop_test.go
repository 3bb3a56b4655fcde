//go:build linux

package stack

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link/tap"
)

// TestVLANInterop: the kernel's 802.1Q sub-interface (ip link … type vlan
// id 10) and ours exchange pings, both families, while the untagged link
// keeps working alongside.
func TestVLANInterop(t *testing.T) {
	lab := netlab.New(t)
	s, n, tp := newLabStack(t, lab, Options{}, tap.Config{},
		[]string{"10.63.0.2/24"}, []string{"10.63.0.1/24"})
	v, err := s.AddVLAN(n, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.63.10.1/24", "fd00:63:10::1/64"} {
		if err := v.AddAddress(Address{Prefix: netip.MustParsePrefix(a), NoDAD: true}); err != nil {
			t.Fatal(err)
		}
	}
	v.SetUp(true)
	// The namespace keeps names apart, so a short fixed name is safe.
	if out, err := lab.IP(context.Background(), "link", "add", "link", tp.Dev, "name", "vl10", "type", "vlan", "id", "10"); err != nil {
		if strings.Contains(string(out), "Unknown device type") {
			t.Skipf("the kernel has no 802.1Q support (8021q module): %s", strings.TrimSpace(string(out)))
		}
		t.Fatalf("ip link add … type vlan: %v: %s", err, out)
	}
	lab.MustIP(t, "addr", "add", "10.63.10.2/24", "dev", "vl10")
	lab.MustIP(t, "addr", "add", "fd00:63:10::2/64", "dev", "vl10", "nodad")
	lab.MustIP(t, "link", "set", "dev", "vl10", "up")

	for _, dst := range []string{"10.63.10.1", "fd00:63:10::1", "10.63.0.1"} {
		rx := v.Stats().RxPackets.Load()
		out, err := ixLabRun(lab, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst)
		if err != nil {
			t.Errorf("kernel ping %s: %v\n%s", dst, err, out)
			continue
		}
		// (Untagged pings are not checked the other way: the kernel's
		// own MLD reports on vl10 may move the counter at any time.)
		if tagged := dst != "10.63.0.1"; tagged && v.Stats().RxPackets.Load() == rx {
			t.Errorf("ping %s: eth0.10 RxPackets did not move", dst)
		}
	}
	// And from our side: our echo over the VLAN to the kernel.
	replies := ixCollectEchoes(t, s, false, true)
	ixPing(t, s, replies, mustAddr("10.63.10.2"), 0x63, 1, ixPattern(63, 200), ixLabWait)
	if e, _ := replies.get(0x63, 1); e.nic != v {
		t.Errorf("kernel's reply arrived on %s, want eth0.10", e.nic.Name())
	}
}
