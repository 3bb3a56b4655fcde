package stack

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// callEndpoint records each WritePackets call's frames.
type callEndpoint struct {
	link.Base
	mu    sync.Mutex
	calls [][][]byte
}

func (e *callEndpoint) WritePackets(frames [][]byte) (int, error) {
	var c [][]byte
	for i, f := range frames {
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
		c = append(c, bytes.Clone(f))
		e.CountSent(len(f))
	}
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
	return len(frames), nil
}

func (e *callEndpoint) Close() error { return nil }

// takeCalls returns the WritePackets calls so far and forgets them.
func (e *callEndpoint) takeCalls() [][][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.calls
	e.calls = nil
	return c
}

// batchHost is a stack on a callEndpoint with 10.0.0.1/24 and a static
// ARP entry for 10.0.0.2.
func batchHost(t *testing.T) (*Stack, *NIC, *callEndpoint) {
	t.Helper()
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	ep := &callEndpoint{}
	ep.Init("rec", 1500, wire.MAC{2, 0, 0, 0, 0, 1}, 0)
	n, err := s.AddNIC(ep, NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix("10.0.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	n.SetUp(true)
	if err := n.ARP().AddStatic(mustAddr("10.0.0.2"), wire.MAC{2, 0, 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	ep.takeCalls()
	return s, n, ep
}

// udpTo writes a UDP-numbered packet of size bytes with first byte tag to
// dst through b, with DF as given.
func udpTo(t *testing.T, s *Stack, dst string, size int, tag byte, df bool, b *TxBatch) {
	t.Helper()
	r, err := s.FindRoute(0, netip.Addr{}, mustAddr(dst))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPacket(size)
	p.Bytes()[0] = tag
	if err := s.WritePacket(&r, p, WriteOptions{Proto: wire.IPProtoUDP, DontFragment: df, Batch: b}); err != nil {
		t.Fatal(err)
	}
}

// tagOf is the first payload byte of an untagged IPv4 frame.
func tagOf(f []byte) byte { return wire.IPv4(f[14:]).Payload()[0] }

// TestTxBatchOneWrite: packets written through a batch reach the endpoint
// in one WritePackets call, in order, on Flush and not before; the NIC
// counts them then.
func TestTxBatchOneWrite(t *testing.T) {
	s, n, ep := batchHost(t)
	var b TxBatch
	for i := range 5 {
		udpTo(t, s, "10.0.0.2", 100, byte(i), true, &b)
	}
	if c := ep.takeCalls(); len(c) != 0 {
		t.Fatalf("%d writes before Flush", len(c))
	}
	before := n.Stats().TxPackets.Load()
	b.Flush()
	c := ep.takeCalls()
	if len(c) != 1 || len(c[0]) != 5 {
		t.Fatalf("writes %d (first of %d frames), want one of 5", len(c), len(c[0]))
	}
	for i, f := range c[0] {
		if tagOf(f) != byte(i) {
			t.Fatalf("frame %d carries packet %d", i, tagOf(f))
		}
	}
	if got := n.Stats().TxPackets.Load() - before; got != 5 {
		t.Errorf("TxPackets +%d, want +5", got)
	}
	b.Flush()
	if c := ep.takeCalls(); len(c) != 0 {
		t.Errorf("a second Flush wrote %d times", len(c))
	}
}

// TestTxBatchBypass: a packet that waits for ARP leaves without the batch
// (the rest still go together); a datagram that must be fragmented
// flushes what is held first, so the order written is kept; a full batch
// writes itself.
func TestTxBatchBypass(t *testing.T) {
	t.Run("unresolved", func(t *testing.T) {
		s, _, ep := batchHost(t)
		var b TxBatch
		udpTo(t, s, "10.0.0.2", 100, 1, true, &b)
		udpTo(t, s, "10.0.0.9", 100, 2, true, &b) // no entry: ARP request, queued
		udpTo(t, s, "10.0.0.2", 100, 3, true, &b)
		b.Flush()
		var ipFrames [][]byte
		for _, c := range ep.takeCalls() {
			for _, f := range c {
				if wire.Ethernet(f).EtherType() == wire.EtherTypeIPv4 {
					ipFrames = append(ipFrames, f)
					if len(c) != 2 {
						t.Errorf("an IPv4 frame in a write of %d, want the batch of 2", len(c))
					}
				}
			}
		}
		if len(ipFrames) != 2 || tagOf(ipFrames[0]) != 1 || tagOf(ipFrames[1]) != 3 {
			t.Fatalf("%d IPv4 frames written, want packets 1 and 3", len(ipFrames))
		}
	})
	t.Run("fragmented", func(t *testing.T) {
		s, _, ep := batchHost(t)
		var b TxBatch
		udpTo(t, s, "10.0.0.2", 100, 1, true, &b)
		udpTo(t, s, "10.0.0.2", 3000, 2, false, &b) // three fragments
		udpTo(t, s, "10.0.0.2", 100, 3, true, &b)
		b.Flush()
		var order []int
		for _, c := range ep.takeCalls() {
			for _, f := range c {
				h := wire.IPv4(f[14:])
				switch {
				case h.FragmentOffset() > 0:
					order = append(order, -1) // a later fragment
				default:
					order = append(order, int(tagOf(f)))
				}
			}
		}
		if want := []int{1, 2, -1, -1, 3}; !slices.Equal(order, want) {
			t.Fatalf("frames in order %v, want %v", order, want)
		}
	})
	t.Run("full", func(t *testing.T) {
		s, _, ep := batchHost(t)
		var b TxBatch
		for i := range maxBatch + 1 {
			udpTo(t, s, "10.0.0.2", 10, byte(i), true, &b)
		}
		c := ep.takeCalls()
		if len(c) != 1 || len(c[0]) != maxBatch {
			t.Fatalf("%d writes before Flush, want one of %d frames", len(c), maxBatch)
		}
		b.Flush()
		if c := ep.takeCalls(); len(c) != 1 || len(c[0]) != 1 || tagOf(c[0][0]) != maxBatch {
			t.Fatalf("Flush wrote %v, want the last packet alone", len(c))
		}
	})
}
