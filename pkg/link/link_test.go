package link

import (
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

func TestFrameFits(t *testing.T) {
	plain := make([]byte, 14+1500)
	plain[12], plain[13] = 0x08, 0x00
	if !FrameFits(plain, 1500) || FrameFits(plain, 1499) {
		t.Fatal("untagged frame: wrong fit")
	}
	tagged := make([]byte, 18+1500)
	tagged[12], tagged[13] = 0x81, 0x00
	tagged[16], tagged[17] = 0x08, 0x00
	if !FrameFits(tagged, 1500) || FrameFits(tagged, 1499) {
		t.Fatal("802.1Q frame: tag not allowed for")
	}
	if !FrameFits([]byte{1, 2}, 1500) {
		t.Fatal("a runt fits any MTU (it is rejected elsewhere)")
	}
}

func TestDispatcherSlot(t *testing.T) {
	var s DispatcherSlot
	if s.Deliver([]byte{1}) {
		t.Fatal("delivered with no dispatcher")
	}
	var got []byte
	s.Store(DispatcherFunc(func(f []byte) { got = f }))
	if !s.Deliver([]byte{7}) || len(got) != 1 || got[0] != 7 {
		t.Fatal("frame not delivered")
	}
	s.Store(nil)
	if s.Deliver([]byte{1}) {
		t.Fatal("delivered after detach")
	}
}

func TestRandomMAC(t *testing.T) {
	a, err := RandomMAC()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomMAC()
	if a.IsMulticast() || a[0]&0x02 == 0 {
		t.Fatalf("%v is not a locally administered unicast address", a)
	}
	if a == b {
		t.Fatalf("two random MACs are equal: %v", a)
	}
}

func TestBase(t *testing.T) {
	var b Base
	b.Init("test:x", 100, wire.MAC{2, 0, 0, 0, 0, 1}, CapLoopback)
	if b.Name() != "test:x" || b.MTU() != 100 || b.MAC() != (wire.MAC{2, 0, 0, 0, 0, 1}) || b.Capabilities() != CapLoopback {
		t.Fatal("identity not kept")
	}
	if err := b.CheckWrite(make([]byte, 13)); err != ErrFrameShort {
		t.Fatalf("runt: %v", err)
	}
	if err := b.CheckWrite(make([]byte, 14+101)); err != ErrFrameTooBig {
		t.Fatalf("oversized: %v", err)
	}
	if err := b.CheckWrite(make([]byte, 14+100)); err != nil {
		t.Fatalf("full-size frame: %v", err)
	}
	b.CountSent(114)
	if b.Deliver(make([]byte, 60)) {
		t.Fatal("delivered with no dispatcher")
	}
	var got int
	b.Attach(DispatcherFunc(func(f []byte) { got += len(f) }))
	if !b.Deliver(make([]byte, 60)) || got != 60 {
		t.Fatal("frame not delivered")
	}
	if b.Deliver(make([]byte, 10)) || b.Deliver(make([]byte, 14+101)) {
		t.Fatal("runt or oversized frame delivered")
	}
	want := StatsSnapshot{TxFrames: 1, TxBytes: 114, TxDropped: 2, RxFrames: 1, RxBytes: 60, RxDropped: 1, RxErrors: 2}
	if s := b.Stats(); s != want {
		t.Fatalf("counters %+v, want %+v", s, want)
	}
}
