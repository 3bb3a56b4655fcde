package stack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/wire"
)

// vlanHost is a test host with an untagged eth0 and an 802.1Q
// sub-interface eth0.10 on the same link, on different subnets.
type vlanHost struct {
	*testHost
	vlan *NIC
}

func newVLANHost(t *testing.T, nw *emu.Network, i string) *vlanHost {
	t.Helper()
	h := newTestHost(t, nw, Options{}, "10.70.0."+i+"/24", "fd00:70::"+i+"/64")
	v, err := h.s.AddVLAN(h.nic, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.70.10." + i + "/24", "fd00:70:10::" + i + "/64"} {
		if err := v.AddAddress(Address{Prefix: netip.MustParsePrefix(a), NoDAD: true}); err != nil {
			t.Fatal(err)
		}
	}
	v.SetUp(true)
	return &vlanHost{h, v}
}

// TestVLANTraffic: traffic to the tagged subnet leaves tagged on eth0.10
// and arrives on the peer's eth0.10 (IEEE 802.1Q), untagged traffic on
// eth0, both families; each sub-interface's counters count its own frames.
func TestVLANTraffic(t *testing.T) {
	nw := newTestNet(t, 70)
	a, b := newVLANHost(t, nw, "1"), newVLANHost(t, nw, "2")
	for _, tc := range []struct {
		dst    string
		tagged bool
	}{
		{"10.70.10.2", true},
		{"fd00:70:10::2", true},
		{"10.70.0.2", false},
		{"fd00:70::2", false},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			dst := mustAddr(tc.dst)
			v6 := dst.Is6()
			requests := ixCollectEchoes(t, b.s, v6, false)
			replies := ixCollectEchoes(t, a.s, v6, true)
			aTx, bRx := a.vlan.Stats().TxPackets.Load(), b.vlan.Stats().RxPackets.Load()
			data := ixPattern(7, 100)
			ixPing(t, a.s, replies, dst, 0x70, 1, data, 5*time.Second)
			req, ok := requests.get(0x70, 1)
			if !ok {
				t.Fatal("reply without a request seen by the peer's raw handler")
			}
			want := b.nic
			if tc.tagged {
				want = b.vlan
			}
			if req.nic != want {
				t.Errorf("request arrived on %s, want %s", req.nic.Name(), want.Name())
			}
			rep, _ := replies.get(0x70, 1)
			if wantA := map[bool]*NIC{true: a.vlan, false: a.nic}[tc.tagged]; rep.nic != wantA {
				t.Errorf("reply arrived on %s, want %s", rep.nic.Name(), wantA.Name())
			}
			dTx, dRx := a.vlan.Stats().TxPackets.Load()-aTx, b.vlan.Stats().RxPackets.Load()-bRx
			if tc.tagged && (dTx == 0 || dRx == 0) {
				t.Errorf("eth0.10 counters: sender Tx +%d, receiver Rx +%d; want both to move", dTx, dRx)
			}
		})
	}
}

// TestVLANUnknownID: a frame tagged with a VLAN the host has no
// sub-interface for is dropped and counted on the parent (as Linux counts
// it in rx_dropped); the same packet tagged with the configured VLAN is
// delivered on the sub-interface.
func TestVLANUnknownID(t *testing.T) {
	nw := newTestNet(t, 71)
	b := newVLANHost(t, nw, "2")
	inj := newWirePort(t, nw)
	requests := ixCollectEchoes(t, b.s, false, false)
	send := func(vid uint16, dst string, seq uint16) {
		ip := ixIPv4(wire.IPv4Fields{Protocol: wire.IPProtoICMP,
			Src: mustAddr("10.70.10.9"), Dst: mustAddr(dst)},
			ixEchoMsg(false, false, netip.Addr{}, netip.Addr{}, 0x71, seq, ixPattern(int(seq), 32)))
		inj.send(t, ixEthFrame(b.nic.MAC(), inj.mac, vid, wire.EtherTypeIPv4, ip))
	}
	drops := b.nic.Stats().RxDropped.Load()
	send(20, "10.70.10.2", 1)
	if !ixWaitFor(5*time.Second, func() bool { return b.nic.Stats().RxDropped.Load() > drops }) {
		t.Fatal("frame for VLAN 20 not counted in eth0's RxDropped")
	}
	vrx := b.vlan.Stats().RxPackets.Load()
	send(10, "10.70.10.2", 2)
	if !ixWaitFor(5*time.Second, func() bool { _, ok := requests.get(0x71, 2); return ok }) {
		t.Fatalf("frame for VLAN 10 not delivered (parse errors %v)", requests.errors())
	}
	if _, ok := requests.get(0x71, 1); ok {
		t.Error("frame for VLAN 20 was delivered")
	}
	if e, _ := requests.get(0x71, 2); e.nic != b.vlan {
		t.Errorf("VLAN 10 frame delivered on %s", e.nic.Name())
	}
	if b.vlan.Stats().RxPackets.Load() == vrx {
		t.Error("eth0.10 RxPackets did not move")
	}
}
