//go:build linux

package afpacket_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/afpacket"
	"github.com/stackbox/stackbox/pkg/wire"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  afpacket.Config
		want string
	}{
		{"no interface", afpacket.Config{}, "no interface"},
		{"missing interface", afpacket.Config{Interface: "sbx-nonexist"}, "no such network interface"},
		{"loopback", afpacket.Config{Interface: "lo"}, "not an Ethernet interface"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep, err := afpacket.Open(tc.cfg)
			if err == nil {
				ep.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func readers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "afpacket.(*Endpoint).readLoop")
}

func waitReaders(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for readers() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := readers(); n != want {
		t.Fatalf("%d afpacket reader goroutines, want %d", n, want)
	}
}

// TestLifecycle: the MTU comes from the interface, a multicast MAC is
// refused, Close is prompt and stops the reader, and writes after Close
// fail with ErrClosed.
func TestLifecycle(t *testing.T) {
	l := netlab.New(t)
	v := l.AddVeth(t, netlab.VethConfig{MTU: 9000})
	if _, err := afpacket.Open(afpacket.Config{Interface: v.Host, MAC: wire.BroadcastMAC}); err == nil || !strings.Contains(err.Error(), "group address") {
		t.Errorf("Open with broadcast MAC: %v", err)
	}
	base := readers()
	ep, err := afpacket.Open(afpacket.Config{Interface: v.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if ep.MTU() != 9000 || ep.Name() != "afpacket:"+v.Host || ep.Interface() != v.Host || ep.Capabilities() != 0 {
		t.Errorf("MTU %d Name %q Interface %q caps %v", ep.MTU(), ep.Name(), ep.Interface(), ep.Capabilities())
	}
	if m := ep.MAC(); m[0]&0x03 != 0x02 {
		t.Errorf("MAC %v is not locally administered unicast", m)
	}
	waitReaders(t, base+1)
	start := time.Now()
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	waitReaders(t, base)
	if err := ep.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n, err := ep.WritePackets([][]byte{make([]byte, 60)}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WritePackets after Close = %d, %v", n, err)
	}
}

// TestReceivesPeerNotOutgoing: frames the kernel peer sends arrive; frames
// transmitted on our interface do not, whether ours (the kernel never loops
// a packet socket's writes back to it) or another sender's on this host
// (PACKET_OUTGOING, here a second endpoint on the same interface);
// oversized and runt frames are refused.
func TestReceivesPeerNotOutgoing(t *testing.T) {
	l := netlab.New(t)
	v := l.AddVeth(t, netlab.VethConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.6.1/24")}})
	ep, err := afpacket.Open(afpacket.Config{Interface: v.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	frames := make(chan []byte, 256)
	ep.Attach(link.DispatcherFunc(func(f []byte) {
		select {
		case frames <- f:
		default:
		}
	}))

	// Our writes: broadcast frames of the IEEE local experimental
	// EtherType, which the peer kernel ignores.
	own := make([]byte, 60)
	copy(own, wire.BroadcastMAC[:])
	src := ep.MAC()
	copy(own[6:], src[:])
	own[12], own[13] = 0x88, 0xb5
	batch := [][]byte{own, own, own}
	if n, err := ep.WritePackets(batch); n != 3 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	other, err := afpacket.Open(afpacket.Config{Interface: v.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherMAC := other.MAC()
	fromOther := append([]byte(nil), own...)
	copy(fromOther[6:], otherMAC[:])
	if n, err := other.WritePackets([][]byte{fromOther, fromOther}); n != 2 || err != nil {
		t.Fatalf("second endpoint: WritePackets = %d, %v", n, err)
	}
	// The peer kernel's: ARP requests for a neighbour it does not know.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go l.Run(ctx, "ping", "-c", "1", "-W", "1", "10.77.6.2")
	timeout := time.After(5 * time.Second)
	for gotPeer := false; !gotPeer; {
		select {
		case f := <-frames:
			if s := wire.MAC(f[6:12]); s == src || s == otherMAC {
				t.Fatalf("received a frame transmitted on our interface: % x", f)
			}
			gotPeer = wire.MAC(f[6:12]) == v.PeerMAC && f[12] == 0x08 && f[13] == 0x06
		case <-timeout:
			t.Fatalf("no ARP request from the peer %v within 5 s; stats %+v", v.PeerMAC, ep.Stats())
		}
	}
	st := ep.Stats()
	if st.TxFrames != 3 || st.TxBytes != 180 || st.RxFrames == 0 {
		t.Errorf("stats %+v", st)
	}

	big := make([]byte, 14+ep.MTU()+1)
	copy(big, own[:14])
	if n, err := ep.WritePackets([][]byte{own, big}); n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("WritePackets(ok, too big) = %d, %v", n, err)
	}
	if n, err := ep.WritePackets([][]byte{own[:10]}); n != 0 || !errors.Is(err, link.ErrFrameShort) {
		t.Errorf("WritePackets(runt) = %d, %v", n, err)
	}
}

// TestCloseDuringWrites: Close while several goroutines write makes every
// writer stop with ErrClosed (or finish), never panic or hang.
func TestCloseDuringWrites(t *testing.T) {
	l := netlab.New(t)
	v := l.AddVeth(t, netlab.VethConfig{})
	ep, err := afpacket.Open(afpacket.Config{Interface: v.Host})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	for i := range 6 {
		frame[i] = 0x02
	}
	frame[12], frame[13] = 0x88, 0xb5
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 100000 {
				if _, err := ep.WritePackets([][]byte{frame, frame}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, link.ErrClosed) {
				t.Errorf("writer stopped with %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a writer did not return within 10 s of Close")
		}
	}
}
