// Package link defines the link endpoint: a network card as the stack sees
// it. An endpoint moves whole Ethernet frames (destination MAC first, no
// preamble or FCS) between the stack and something outside it: a TAP
// device, an AF_PACKET socket, a QEMU socket, an in-memory emulated
// network, or itself (loopback). Implementations live in the subpackages;
// linkspec turns a user's spec string ("tap:sbx0", "emu:lab", …) into one.
//
// Ownership: a frame handed to Dispatcher.DeliverFrame belongs to the
// receiver from then on; the endpoint reads the next frame into a new
// buffer. A frame passed to WritePackets still belongs to the caller, and
// the endpoint keeps no reference to it after WritePackets returns (an
// endpoint that sends later copies it). No reference counts either way.
//
// Concurrency: WritePackets may be called from many goroutines at once.
// DeliverFrame is called from one goroutine per endpoint at a time (the
// endpoint's reader), so a dispatcher sees one endpoint's frames in order.
// An endpoint holds none of its own locks while it calls DeliverFrame, and
// Close waits for the reader, so Close must not be called from inside
// DeliverFrame.
package link

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Capabilities are what an endpoint does beyond moving frames.
type Capabilities uint32

const (
	// CapLoopback: frames written come back as received frames.
	CapLoopback Capabilities = 1 << iota
	// CapRXChecksumOffload: transport checksums of delivered frames were verified.
	CapRXChecksumOffload
	// CapTXChecksumOffload: the endpoint fills in transport checksums on write.
	CapTXChecksumOffload
	// CapRXCoalesce: a delivered frame may be several TCP segments of one
	// flow coalesced into one (GRO; a TAP whose kernel side does GSO), up
	// to a 64 KiB IP packet, longer than the MTU, with valid checksums. A
	// stack that forwards it must split it (Linux skb_gso_segment).
	CapRXCoalesce
)

// Dispatcher receives the frames an endpoint reads: the stack's NIC.
type Dispatcher interface {
	// DeliverFrame hands over one whole Ethernet frame, which the receiver
	// owns from then on. It runs on the endpoint's reader goroutine and
	// should return quickly: the endpoint reads nothing while it runs.
	DeliverFrame(frame []byte)
}

// DispatcherFunc adapts a function to Dispatcher.
type DispatcherFunc func(frame []byte)

// DeliverFrame calls f(frame).
func (f DispatcherFunc) DeliverFrame(frame []byte) { f(frame) }

// Endpoint is one link: a NIC.
type Endpoint interface {
	// Name describes the endpoint for messages, e.g. "tap:sbx0".
	Name() string
	// MTU is the largest Ethernet payload (the IP packet) the link carries.
	MTU() int
	// MAC is the hardware address the stack should use on this link.
	MAC() wire.MAC
	// Capabilities reports offloads and loopback behaviour.
	Capabilities() Capabilities
	// Attach starts delivering received frames to d; Attach(nil) stops
	// delivery, and frames that arrive with no dispatcher are dropped and
	// counted. Calling Attach again replaces the dispatcher.
	Attach(d Dispatcher)
	// WritePackets sends whole Ethernet frames in order and returns how
	// many were sent; on error, frames from that index on were not sent.
	// A frame longer than MTU plus its Ethernet header gives ErrFrameTooBig.
	WritePackets(frames [][]byte) (int, error)
	// Close releases the endpoint and stops its reader; it is idempotent.
	// After Close, WritePackets returns ErrClosed.
	Close() error
}

// Errors shared by all endpoints.
var (
	ErrClosed      = errors.New("link: endpoint closed")
	ErrFrameTooBig = errors.New("link: frame larger than the link MTU")
	ErrFrameShort  = errors.New("link: frame shorter than an Ethernet header")
)

// MaxFrameHeader is the most header room a frame's payload may need in front
// of it on an Ethernet link: 14 bytes plus two 802.1Q tags (QinQ).
const MaxFrameHeader = 14 + 2*4

// FrameFits reports whether an Ethernet frame's payload fits an MTU. The
// header length allowed for is that of the frame's own tags (up to two).
func FrameFits(frame []byte, mtu int) bool {
	hdr := 14
	for i := 0; i < 2 && len(frame) >= hdr && isVLANTPID(frame[hdr-2], frame[hdr-1]); i++ {
		hdr += 4
	}
	return len(frame) <= hdr+mtu
}

func isVLANTPID(hi, lo byte) bool {
	t := uint16(hi)<<8 | uint16(lo)
	return t == 0x8100 || t == 0x88a8 || t == 0x9100
}

// Stats are an endpoint's frame counters. Endpoints embed it and update it
// atomically; Snapshot reads a consistent-enough copy for display.
type Stats struct {
	RxFrames, RxBytes, RxDropped, RxErrors atomic.Uint64
	TxFrames, TxBytes, TxDropped, TxErrors atomic.Uint64
}

// StatsSnapshot is a plain copy of Stats.
type StatsSnapshot struct {
	RxFrames, RxBytes, RxDropped, RxErrors uint64
	TxFrames, TxBytes, TxDropped, TxErrors uint64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		RxFrames: s.RxFrames.Load(), RxBytes: s.RxBytes.Load(),
		RxDropped: s.RxDropped.Load(), RxErrors: s.RxErrors.Load(),
		TxFrames: s.TxFrames.Load(), TxBytes: s.TxBytes.Load(),
		TxDropped: s.TxDropped.Load(), TxErrors: s.TxErrors.Load(),
	}
}

// Counter is implemented by endpoints that keep Stats.
type Counter interface {
	Stats() StatsSnapshot
}

// DispatcherSlot holds an endpoint's current dispatcher so the reader can
// load it without a lock while Attach swaps it.
type DispatcherSlot struct {
	p atomic.Pointer[Dispatcher]
}

// Store sets the dispatcher (nil detaches).
func (s *DispatcherSlot) Store(d Dispatcher) {
	if d == nil {
		s.p.Store(nil)
		return
	}
	s.p.Store(&d)
}

// Deliver hands frame to the current dispatcher and reports whether there
// was one; with none, the caller counts the frame as dropped.
func (s *DispatcherSlot) Deliver(frame []byte) bool {
	d := s.p.Load()
	if d == nil {
		return false
	}
	(*d).DeliverFrame(frame)
	return true
}

// RandomMAC returns a random locally administered unicast address
// (IEEE 802-2014 §8.2.2: U/L bit set, I/G bit clear): the default MAC of an
// endpoint whose stack is a host of its own on a link shared with the kernel.
func RandomMAC() (wire.MAC, error) {
	var m wire.MAC
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("link: random MAC: %w", err)
	}
	m[0] = m[0]&^0x01 | 0x02
	return m, nil
}

// Base is what every endpoint has in common: its identity, its dispatcher
// slot and its counters, with the Endpoint accessors, Stats, and the frame
// checks all links make. Endpoints embed it and call Init once before use.
// A frame the link refuses to send (ErrFrameShort, ErrFrameTooBig) counts
// as TxDropped; the endpoint counts its own device errors in Counters.
type Base struct {
	name string
	mtu  int
	mac  wire.MAC
	caps Capabilities
	slot DispatcherSlot

	// Counters are the frame counters; Base updates them in CheckWrite,
	// CountSent and Deliver, the endpoint for whatever else it sees.
	Counters Stats
}

// Init sets the endpoint's identity.
func (b *Base) Init(name string, mtu int, mac wire.MAC, caps Capabilities) {
	b.name, b.mtu, b.mac, b.caps = name, mtu, mac, caps
}

// Name describes the endpoint for messages.
func (b *Base) Name() string { return b.name }

// MTU is the largest Ethernet payload the link carries.
func (b *Base) MTU() int { return b.mtu }

// MAC is the address the stack uses on the link.
func (b *Base) MAC() wire.MAC { return b.mac }

// Capabilities reports offloads and loopback behaviour.
func (b *Base) Capabilities() Capabilities { return b.caps }

// Attach sets the dispatcher that receives frames (nil detaches).
func (b *Base) Attach(d Dispatcher) { b.slot.Store(d) }

// Stats returns a snapshot of the counters.
func (b *Base) Stats() StatsSnapshot { return b.Counters.Snapshot() }

// CheckWrite returns ErrFrameShort or ErrFrameTooBig, counted as TxDropped,
// for a frame the link cannot carry, and nil for one it can.
func (b *Base) CheckWrite(frame []byte) error {
	switch {
	case len(frame) < 14:
		b.Counters.TxDropped.Add(1)
		return ErrFrameShort
	case !FrameFits(frame, b.mtu):
		b.Counters.TxDropped.Add(1)
		return ErrFrameTooBig
	}
	return nil
}

// CountSent counts one frame of n bytes as sent.
func (b *Base) CountSent(n int) {
	b.Counters.TxFrames.Add(1)
	b.Counters.TxBytes.Add(uint64(n))
}

// Deliver hands a received frame, which the caller gives up, to the
// dispatcher and counts it. A runt or a frame over the MTU counts as
// RxErrors and is dropped; with no dispatcher attached it counts as
// RxDropped. It reports whether the frame was delivered.
func (b *Base) Deliver(frame []byte) bool {
	if len(frame) < 14 || !FrameFits(frame, b.mtu) {
		b.Counters.RxErrors.Add(1)
		return false
	}
	n := len(frame)
	if !b.slot.Deliver(frame) {
		b.Counters.RxDropped.Add(1)
		return false
	}
	b.Counters.RxFrames.Add(1)
	b.Counters.RxBytes.Add(uint64(n))
	return true
}

// DeliverCoalesced is Deliver for a frame of coalesced TCP segments
// (CapRXCoalesce), which may be longer than the MTU.
func (b *Base) DeliverCoalesced(frame []byte) bool {
	if len(frame) < 14 {
		b.Counters.RxErrors.Add(1)
		return false
	}
	n := len(frame)
	if !b.slot.Deliver(frame) {
		b.Counters.RxDropped.Add(1)
		return false
	}
	b.Counters.RxFrames.Add(1)
	b.Counters.RxBytes.Add(uint64(n))
	return true
}
