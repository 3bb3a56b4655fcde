//go:build linux

package tap_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/tap"
)

var (
	kernelAddr = netip.MustParsePrefix("10.77.0.1/24")
	ourAddr    = netip.MustParseAddr("10.77.0.2")
)

// wait bounds each exchange with the kernel.
const wait = 5 * time.Second

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// TestKernelARPAndEcho: the kernel, on the far side of the tap inside the
// lab namespace, answers our ARP request (RFC 826) with its tap MAC and
// our echo request (RFC 792) with the same ident, seq and data, and its
// neighbour table has learnt our MAC.
func TestKernelARPAndEcho(t *testing.T) {
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{kernelAddr}})
	h := netlab.NewHost(t, tp.Endpoint, ourAddr)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	arp, eth, err := h.Resolve(ctx, kernelAddr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if arp.SenderMAC() != tp.MAC || eth.Src() != tp.MAC {
		t.Errorf("ARP reply sender MAC %v (Ethernet source %v), want the kernel side's %v", arp.SenderMAC(), eth.Src(), tp.MAC)
	}
	if arp.TargetIP() != ourAddr || arp.TargetMAC() != h.MAC || eth.Dst() != h.MAC {
		t.Errorf("ARP reply to %v at %v (Ethernet %v), want %v at %v", arp.TargetIP(), arp.TargetMAC(), eth.Dst(), ourAddr, h.MAC)
	}

	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	data := payload(56)
	ip, icmp, err := h.Ping(ctx, arp.SenderMAC(), kernelAddr.Addr(), 0x5b1d, 7, data)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Dst() != ourAddr || !ip.ChecksumValid() || !icmp.ChecksumValid() || icmp.Code() != 0 {
		t.Errorf("echo reply to %v, IPv4 checksum ok %v, ICMP checksum ok %v, code %d",
			ip.Dst(), ip.ChecksumValid(), icmp.ChecksumValid(), icmp.Code())
	}

	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := l.WaitNeighbor(ctx, tp.Dev, ourAddr, func(n netlab.Neighbor) bool { return n.MAC == h.MAC }); err != nil {
		t.Errorf("kernel did not learn our MAC %v: %v", h.MAC, err)
	}
	st := tp.Endpoint.Stats()
	if st.RxFrames < 2 || st.TxFrames < 2 || st.RxErrors != 0 || st.TxErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestKernelPingsUs: the kernel's own ping(8) reaches our address: it asks
// for our MAC with ARP, we answer, and it gets our echo replies; over the
// default device (virtio-net headers, offloads) and the plain one.
func TestKernelPingsUs(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "offload", true: "plain"}[plain], func(t *testing.T) { kernelPingsUs(t, plain) })
	}
}

func kernelPingsUs(t *testing.T, plain bool) {
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Config: tap.Config{NoOffload: plain}, Addrs: []netip.Prefix{kernelAddr}})
	if want := map[bool]link.Capabilities{false: link.CapRXCoalesce, true: 0}[plain]; tp.Endpoint.Capabilities() != want {
		t.Errorf("capabilities %v, want %v", tp.Endpoint.Capabilities(), want)
	}
	h := netlab.NewHost(t, tp.Endpoint, ourAddr)
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

// TestJumboEcho: with MTU 9000 on both sides, an 8000-byte echo goes both
// ways unfragmented.
func TestJumboEcho(t *testing.T) {
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Config: tap.Config{MTU: 9000}, Addrs: []netip.Prefix{kernelAddr}})
	if out := string(l.MustIP(t, "link", "show", "dev", tp.Dev)); !strings.Contains(out, "mtu 9000") {
		t.Fatalf("kernel side MTU not 9000:\n%s", out)
	}
	h := netlab.NewHost(t, tp.Endpoint, ourAddr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	arp, _, err := h.Resolve(ctx, kernelAddr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	data := payload(8000)
	ip, _, err := h.Ping(ctx, arp.SenderMAC(), kernelAddr.Addr(), 0x1234, 1, data)
	if err != nil {
		t.Fatal(err)
	}
	if ip.TotalLen() != 20+8+8000 || ip.IsFragment() {
		t.Errorf("reply total length %d, fragment %v; want 8028 unfragmented", ip.TotalLen(), ip.IsFragment())
	}
	// And the kernel's jumbo ping to us, with DF so it cannot fragment.
	out, err := l.Run(ctx, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "8000", ourAddr.String())
	if err != nil {
		t.Fatalf("kernel jumbo ping failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "8008 bytes from") {
		t.Errorf("ping output:\n%s", out)
	}
}

// TestOversizedFrameFromKernelDropped: if the kernel side's MTU is raised
// behind our back, frames longer than our buffer are counted as errors and
// dropped, never delivered truncated; normal frames still flow.
func TestOversizedFrameFromKernelDropped(t *testing.T) {
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{kernelAddr}})
	h := netlab.NewHost(t, tp.Endpoint, ourAddr)
	l.MustIP(t, "link", "set", "dev", tp.Dev, "mtu", "3000")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Resolve first so the kernel's echo request is not held for ARP.
	l.MustIP(t, "neigh", "replace", ourAddr.String(), "lladdr", h.MAC.String(), "dev", tp.Dev, "nud", "permanent")
	out, err := l.Run(ctx, "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "2500", ourAddr.String())
	if err == nil {
		t.Errorf("a 2528-byte packet crossed a 1500-byte link:\n%s", out)
	}
	if st := tp.Endpoint.Stats(); st.RxErrors == 0 {
		t.Errorf("no receive error counted for the oversized frame: %+v", st)
	}
	if h.EchoAnswered() != 0 {
		t.Errorf("answered %d echo requests from truncated frames", h.EchoAnswered())
	}
	out, err = l.Run(ctx, "ping", "-n", "-c", "1", "-W", "2", ourAddr.String())
	if err != nil {
		t.Errorf("normal ping after the oversized one failed: %v\n%s", err, out)
	}
}

// TestDetachedFramesCounted: with no dispatcher attached, frames from the
// kernel are dropped and counted, and delivery resumes after Attach.
func TestDetachedFramesCounted(t *testing.T) {
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{kernelAddr}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go l.Run(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ourAddr.String())
	for tp.Endpoint.Stats().RxDropped == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no frame counted as dropped while detached: %+v", tp.Endpoint.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if st := tp.Endpoint.Stats(); st.RxFrames != 0 {
		t.Errorf("frames counted as received with no dispatcher: %+v", st)
	}
	h := netlab.NewHost(t, tp.Endpoint, ourAddr)
	if _, _, err := h.Resolve(ctx, kernelAddr.Addr()); err != nil {
		t.Fatal(err)
	}
}
