//go:build linux

package afpacket_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link/afpacket"
)

var (
	kernelAddr = netip.MustParsePrefix("10.77.1.1/24")
	ourAddr    = netip.MustParseAddr("10.77.1.2")
)

// wait bounds each exchange with the kernel.
const wait = 5 * time.Second

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*5 + 1)
	}
	return b
}

// openOnVeth makes a veth pair with the kernel end addressed inside the lab
// and opens an afpacket endpoint on the host end.
func openOnVeth(t *testing.T, mtu int) (*netlab.Lab, *netlab.Veth, *afpacket.Endpoint) {
	t.Helper()
	l := netlab.New(t)
	v := l.AddVeth(t, netlab.VethConfig{Addrs: []netip.Prefix{kernelAddr}, MTU: mtu})
	ep, err := afpacket.Open(afpacket.Config{Interface: v.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ep.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l, v, ep
}

// TestKernelARPAndEcho: our stack, a separate host on the veth wire with
// its own MAC, gets the kernel's ARP reply (RFC 826) naming the veth peer's
// MAC, and its echo reply (RFC 792) with our ident, seq and data; the
// kernel's neighbour table learns our MAC, not the host veth end's.
func TestKernelARPAndEcho(t *testing.T) {
	l, v, ep := openOnVeth(t, 0)
	h := netlab.NewHost(t, ep, ourAddr)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	arp, eth, err := h.Resolve(ctx, kernelAddr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if arp.SenderMAC() != v.PeerMAC || eth.Src() != v.PeerMAC {
		t.Errorf("ARP reply sender MAC %v (Ethernet source %v), want the veth peer's %v", arp.SenderMAC(), eth.Src(), v.PeerMAC)
	}
	if arp.TargetIP() != ourAddr || arp.TargetMAC() != h.MAC || eth.Dst() != h.MAC {
		t.Errorf("ARP reply to %v at %v (Ethernet %v), want %v at %v", arp.TargetIP(), arp.TargetMAC(), eth.Dst(), ourAddr, h.MAC)
	}

	data := payload(100)
	ip, icmp, err := h.Ping(ctx, arp.SenderMAC(), kernelAddr.Addr(), 0xa1f, 3, data)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Dst() != ourAddr || !ip.ChecksumValid() || !icmp.ChecksumValid() || icmp.Code() != 0 {
		t.Errorf("echo reply to %v, IPv4 checksum ok %v, ICMP checksum ok %v, code %d",
			ip.Dst(), ip.ChecksumValid(), icmp.ChecksumValid(), icmp.Code())
	}

	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := l.WaitNeighbor(ctx, v.Peer, ourAddr, func(n netlab.Neighbor) bool { return n.MAC == h.MAC }); err != nil {
		t.Errorf("kernel did not learn our MAC %v: %v", h.MAC, err)
	}
	if st := ep.Stats(); st.RxFrames < 2 || st.TxFrames < 2 || st.RxErrors != 0 || st.TxErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestKernelPingsUs: the kernel's ping(8) resolves our address with ARP,
// which we answer, and gets our echo replies.
func TestKernelPingsUs(t *testing.T) {
	l, _, ep := openOnVeth(t, 0)
	h := netlab.NewHost(t, ep, ourAddr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := l.Run(ctx, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", ourAddr.String())
	if err != nil {
		t.Fatalf("kernel ping of %v failed: %v\n%s", ourAddr, err, out)
	}
	if !strings.Contains(string(out), "2 received") {
		t.Errorf("ping output:\n%s", out)
	}
	if h.ARPAnswered() == 0 || h.EchoAnswered() < 2 {
		t.Errorf("answered %d ARP requests, %d echo requests", h.ARPAnswered(), h.EchoAnswered())
	}
}

// TestJumboEcho: the MTU comes from the interface (9000 here) and an
// 8000-byte echo crosses unfragmented both ways.
func TestJumboEcho(t *testing.T) {
	l, _, ep := openOnVeth(t, 9000)
	if ep.MTU() != 9000 {
		t.Fatalf("MTU %d, want the interface's 9000", ep.MTU())
	}
	h := netlab.NewHost(t, ep, ourAddr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	arp, _, err := h.Resolve(ctx, kernelAddr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ip, _, err := h.Ping(ctx, arp.SenderMAC(), kernelAddr.Addr(), 0x4321, 9, payload(8000))
	if err != nil {
		t.Fatal(err)
	}
	if ip.TotalLen() != 8028 || ip.IsFragment() {
		t.Errorf("reply total length %d, fragment %v; want 8028 unfragmented", ip.TotalLen(), ip.IsFragment())
	}
	out, err := l.Run(ctx, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "8000", ourAddr.String())
	if err != nil || !strings.Contains(string(out), "8008 bytes from") {
		t.Errorf("kernel jumbo ping: %v\n%s", err, out)
	}
}

// TestDetachedFramesCounted: with no dispatcher attached, frames from the
// wire are dropped and counted, and delivery resumes after Attach.
func TestDetachedFramesCounted(t *testing.T) {
	l, _, ep := openOnVeth(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go l.Run(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ourAddr.String())
	for ep.Stats().RxDropped == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no frame counted as dropped while detached: %+v", ep.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if st := ep.Stats(); st.RxFrames != 0 {
		t.Errorf("frames counted as received with no dispatcher: %+v", st)
	}
	h := netlab.NewHost(t, ep, ourAddr)
	if _, _, err := h.Resolve(ctx, kernelAddr.Addr()); err != nil {
		t.Fatal(err)
	}
}
