package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

var _ link.Endpoint = (*Endpoint)(nil)
var _ link.Counter = (*Endpoint)(nil)

const wait = 5 * time.Second

func frame(tag byte, n int) []byte {
	f := bytes.Repeat([]byte{tag}, n)
	f[0] = 0x02
	return f
}

// inbox collects delivered frames on a channel.
func inbox(e *Endpoint) chan []byte {
	ch := make(chan []byte, 100)
	e.Attach(link.DispatcherFunc(func(f []byte) { ch <- f }))
	return ch
}

func expect(t *testing.T, ch chan []byte, want []byte) {
	t.Helper()
	select {
	case got := <-ch:
		if !bytes.Equal(got, want) {
			t.Fatalf("got a %d-byte frame, want %d bytes %x…", len(got), len(want), want[:4])
		}
	case <-time.After(wait):
		t.Fatal("no frame delivered")
	}
}

func send(t *testing.T, e *Endpoint, frames ...[]byte) {
	t.Helper()
	if n, err := e.WritePackets(frames); n != len(frames) || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func exchange(t *testing.T, a, b *Endpoint) {
	t.Helper()
	ia, ib := inbox(a), inbox(b)
	f1, f2, big := frame(1, 60), frame(2, 1514), frame(3, 1000)
	send(t, a, f1, f2)
	expect(t, ib, f1)
	expect(t, ib, f2)
	send(t, b, big)
	expect(t, ia, big)
	// Counters move just after DeliverFrame returns.
	waitFor(t, "a's counters", func() bool {
		s := a.Stats()
		return s.TxFrames == 2 && s.RxFrames == 1 && s.TxBytes == 60+1514 && s.RxBytes == 1000
	})
	waitFor(t, "b's counters", func() bool {
		s := b.Stats()
		return s.TxFrames == 1 && s.RxFrames == 2 && s.RxBytes == 60+1514
	})
}

func TestUDPPair(t *testing.T) {
	pa, pb := freeUDPPort(t), freeUDPPort(t)
	a, err := DialUDP(pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := DialUDP(pb, pa, WithMAC(wire.MAC{2, 0, 0, 0, 0, 2}), WithMTU(9000))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.MAC().IsMulticast() || a.MAC()[0]&2 == 0 || b.MAC() != (wire.MAC{2, 0, 0, 0, 0, 2}) || b.MTU() != 9000 {
		t.Fatalf("MACs %v %v, MTU %d", a.MAC(), b.MAC(), b.MTU())
	}
	exchange(t, a, b)

	// A datagram from a stranger is not a frame of this link.
	ia := inbox(a)
	stranger, err := net.Dial("udp", pa)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Write(frame(9, 60))
	waitFor(t, "stranger counted", func() bool { return a.Stats().RxErrors == 1 })
	// A jumbo frame over a's 1500 MTU is refused on receive.
	send(t, b, frame(4, 14+1501))
	waitFor(t, "oversized frame counted", func() bool { return a.Stats().RxErrors == 2 })
	select {
	case <-ia:
		t.Fatal("a stray or oversized datagram was delivered")
	default:
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.WritePackets([][]byte{frame(1, 60)}); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

func streamPair(t *testing.T, network, addr string) (srv, cli *Endpoint) {
	t.Helper()
	srv, err := ListenStream(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err = DialStream(network, srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	waitFor(t, "server connected", srv.Connected)
	return srv, cli
}

func TestStreamPairUnix(t *testing.T) {
	srv, cli := streamPair(t, "unix", filepath.Join(t.TempDir(), "q.sock"))
	exchange(t, cli, srv)
}

func TestStreamPairTCP(t *testing.T) {
	srv, cli := streamPair(t, "tcp", "127.0.0.1:0")
	exchange(t, srv, cli)
}

// rawClient connects a plain socket to a listening endpoint.
func rawClient(t *testing.T, srv *Endpoint) net.Conn {
	t.Helper()
	c, err := net.Dial(srv.LocalAddr().Network(), srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, "server connected", srv.Connected)
	return c
}

func prefixed(f []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(f)))
}

func TestStreamWireFormat(t *testing.T) {
	srv, err := ListenStream("unix", filepath.Join(t.TempDir(), "q.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in := inbox(srv)
	raw := rawClient(t, srv)

	// Our writes: 4-byte big-endian length, then the frame.
	f := frame(5, 100)
	send(t, srv, f)
	raw.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, 104)
	if _, err := io.ReadFull(raw, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:4], []byte{0, 0, 0, 100}) || !bytes.Equal(got[4:], f) {
		t.Fatalf("on the wire: % x", got[:8])
	}

	// Their writes, split at every byte boundary, and a runt in between.
	g := frame(6, 70)
	stream := append(append(prefixed(g), g...), 0, 0, 0, 5, 1, 2, 3, 4, 5)
	stream = append(append(stream, prefixed(g)...), g...)
	for _, b := range stream {
		raw.Write([]byte{b})
	}
	expect(t, in, g)
	expect(t, in, g)
	waitFor(t, "the runt counted as an error", func() bool {
		s := srv.Stats()
		return s.RxFrames == 2 && s.RxErrors == 1
	})
}

func TestStreamOversizedPrefix(t *testing.T) {
	srv, err := ListenStream("unix", filepath.Join(t.TempDir(), "q.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in := inbox(srv)
	for _, n := range []uint32{0xffffffff, MaxStreamFrame + 1} {
		raw := rawClient(t, srv)
		raw.Write(binary.BigEndian.AppendUint32(nil, n))
		raw.SetReadDeadline(time.Now().Add(wait))
		if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("length %d: the endpoint did not drop the connection (%v)", n, err)
		}
		waitFor(t, "disconnect noticed", func() bool { return !srv.Connected() })
		if err := srv.Err(); !errors.Is(err, ErrOversized) || !strings.Contains(err.Error(), "frame") {
			t.Fatalf("Err() = %v", err)
		}
	}
	// The server takes the next client, and a frame of exactly the limit
	// is allowed through the framing (then refused for the MTU).
	raw := rawClient(t, srv)
	raw.Write(prefixed(make([]byte, MaxStreamFrame)))
	raw.Write(make([]byte, MaxStreamFrame))
	g := frame(7, 60)
	raw.Write(append(prefixed(g), g...))
	expect(t, in, g)
	if s := srv.Stats(); s.RxErrors != 3 {
		t.Fatalf("stats %+v", s)
	}
	// With no client, writes are dropped and counted, not failed.
	raw.Close()
	waitFor(t, "disconnect noticed", func() bool { return !srv.Connected() })
	send(t, srv, frame(1, 60))
	if s := srv.Stats(); s.TxDropped != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func rawServer(t *testing.T) (net.Listener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, path
}

func TestDialPeerDisconnect(t *testing.T) {
	ln, path := rawServer(t)
	cli, err := DialStream("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	in := inbox(cli)
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	g := frame(8, 60)
	// A whole frame, then half of the next, then the peer goes.
	peer.Write(append(append(prefixed(g), g...), 0, 0))
	expect(t, in, g)
	peer.Close()
	select {
	case <-cli.Done():
	case <-time.After(wait):
		t.Fatal("delivery did not end when the peer left")
	}
	if err := cli.Err(); err == nil || !strings.Contains(err.Error(), "length prefix") {
		t.Fatalf("Err() = %v", err)
	}
	if _, err := cli.WritePackets([][]byte{g}); err == nil || errors.Is(err, link.ErrClosed) {
		t.Fatalf("write to a departed peer: %v", err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.WritePackets([][]byte{g}); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestCloseUnblocksReader(t *testing.T) {
	ln, path := rawServer(t)
	cli, err := DialStream("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.Write([]byte{0, 0}) // the reader now waits inside a prefix
	closed := make(chan error)
	go func() { closed <- cli.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Close did not return")
	}
	if cli.Err() != nil {
		t.Fatalf("Err after Close = %v, want nil", cli.Err())
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := DialUDP("127.0.0.1:0", "127.0.0.1:1", WithMTU(0)); err == nil {
		t.Fatal("MTU 0 accepted")
	}
	if _, err := DialUDP("127.0.0.1:0", "127.0.0.1:1", WithMAC(wire.BroadcastMAC)); err == nil {
		t.Fatal("broadcast MAC accepted")
	}
	if _, err := DialUDP("nonsense", "127.0.0.1:1"); err == nil {
		t.Fatal("bad local address accepted")
	}
	if _, err := ListenStream("udp", "127.0.0.1:0"); err == nil {
		t.Fatal("udp stream accepted")
	}
	if _, err := DialStream("unix", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("dialled a missing socket")
	}
	pa, pb := freeUDPPort(t), freeUDPPort(t)
	e, err := DialUDP(pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if n, err := e.WritePackets([][]byte{frame(1, 60), frame(1, 14+1501)}); n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
		t.Fatalf("oversized: %d, %v", n, err)
	}
	if n, err := e.WritePackets([][]byte{frame(1, 10)}); n != 0 || !errors.Is(err, link.ErrFrameShort) {
		t.Fatalf("runt: %d, %v", n, err)
	}
}

// FuzzStreamFraming feeds arbitrary bytes to the stream reader: it must
// never panic, must end when the input does, and must deliver exactly the
// frames a straightforward decoding of the input finds.
func FuzzStreamFraming(f *testing.F) {
	g := frame(1, 60)
	f.Add(append(prefixed(g), g...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0})
	f.Add(append(append(prefixed(g), g...), append(prefixed(g), g[:10]...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &Endpoint{}
		e.Init("fuzz", 1500, wire.MAC{}, 0)
		var got [][]byte
		e.Attach(link.DispatcherFunc(func(f []byte) { got = append(got, f) }))
		if err := e.streamLoop(bytes.NewReader(data)); err == nil {
			t.Fatal("the reader ended without an error")
		}
		var want [][]byte
		for rest := data; len(rest) >= 4; {
			n := binary.BigEndian.Uint32(rest)
			if n > MaxStreamFrame || uint64(len(rest)-4) < uint64(n) {
				break
			}
			fr := rest[4 : 4+n]
			if len(fr) >= 14 && link.FrameFits(fr, 1500) {
				want = append(want, fr)
			}
			rest = rest[4+n:]
		}
		if len(got) != len(want) {
			t.Fatalf("delivered %d frames, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

func splitHostPort(t *testing.T, a string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}
