package stack

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Helpers shared by the cross-cutting network-layer tests (forwarding,
// jumbo frames, VLANs, fragment simulations, the NIC fuzzer): ICMP echo
// through the public API, an echo collector on a raw handler, hand-built
// frames, and a link endpoint that swallows what the stack sends.

// ixEchoMsg builds an ICMP (v4) or ICMPv6 echo request or reply carrying data.
// ICMPv6's checksum covers the pseudo-header, hence src and dst.
func ixEchoMsg(v6, reply bool, src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	if !v6 {
		typ := wire.ICMPv4Echo
		if reply {
			typ = wire.ICMPv4EchoReply
		}
		f := wire.ICMPv4Fields{Type: typ, Ident: id, Seq: seq, PayloadLen: len(data)}
		b := make([]byte, f.Len()+len(data))
		copy(b[f.Len():], data)
		f.Encode(b)
		return b
	}
	typ := wire.ICMPv6EchoRequest
	if reply {
		typ = wire.ICMPv6EchoReply
	}
	f := wire.ICMPv6Fields{Type: typ, Rest: wire.ICMPv6EchoRest(id, seq), PayloadLen: len(data)}
	b := make([]byte, f.Len()+len(data))
	f.Encode(b)
	copy(b[f.Len():], data)
	f.SetChecksum(b, src, dst)
	return b
}

// ixSendEcho sends an echo request from s to dst through FindRoute and
// WritePacket, as a ping socket would.
func ixSendEcho(s *Stack, dst netip.Addr, id, seq uint16, data []byte, o WriteOptions) error {
	r, err := s.FindRoute(0, netip.Addr{}, dst)
	if err != nil {
		return err
	}
	v6 := dst.Is6()
	o.Proto = wire.IPProtoICMP
	if v6 {
		o.Proto = wire.IPProtoICMPv6
	}
	return s.WritePacket(&r, NewPacketFrom(ixEchoMsg(v6, false, r.Src, r.Dst, id, seq, data)), o)
}

// ixEchoKey identifies one echo message.
type ixEchoKey struct {
	id, seq uint16
}

// ixEchoSeen is one echo message a stack received.
type ixEchoSeen struct {
	data  []byte // a copy
	nic   *NIC
	count int // how many times it arrived
}

// ixEchoLog collects the echo messages of one type a stack receives, from a
// raw handler (which sees reassembled datagrams).
type ixEchoLog struct {
	mu  sync.Mutex
	got map[ixEchoKey]*ixEchoSeen
	bad []string // messages the handler could not parse
}

// ixCollectEchoes starts collecting echo requests (reply false) or replies
// of one family on s until the test ends.
func ixCollectEchoes(t testing.TB, s *Stack, v6, reply bool) *ixEchoLog {
	l := &ixEchoLog{got: make(map[ixEchoKey]*ixEchoSeen)}
	proto := wire.IPProtoICMP
	if v6 {
		proto = wire.IPProtoICMPv6
	}
	remove := s.AddRawHandler(v6, proto, func(pi *PacketInfo, pkt []byte) {
		var (
			typ     uint8
			id, seq uint16
			data    []byte
		)
		if !v6 {
			// IPv4 raw handlers get the IP header too.
			ip, err := wire.ParseIPv4(pkt)
			if err != nil {
				l.fail("ipv4: %v", err)
				return
			}
			m, err := wire.ParseICMPv4(ip.Payload())
			if err != nil {
				l.fail("icmp: %v", err)
				return
			}
			if !m.ChecksumValid() {
				l.fail("icmp checksum bad (len %d)", len(m))
				return
			}
			typ, id, seq, data = m.Type(), m.Ident(), m.Seq(), m.Data()
		} else {
			m, err := wire.ParseICMPv6(pkt)
			if err != nil {
				l.fail("icmpv6: %v", err)
				return
			}
			if !m.ChecksumValid(pi.Src, pi.Dst) {
				l.fail("icmpv6 checksum bad (len %d)", len(m))
				return
			}
			typ = m.Type()
			if typ == wire.ICMPv6EchoRequest || typ == wire.ICMPv6EchoReply {
				id, seq, data = m.Ident(), m.Seq(), m.EchoData()
			}
		}
		want := map[[2]bool]uint8{
			{false, false}: wire.ICMPv4Echo, {false, true}: wire.ICMPv4EchoReply,
			{true, false}: wire.ICMPv6EchoRequest, {true, true}: wire.ICMPv6EchoReply,
		}[[2]bool{v6, reply}]
		if typ != want {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		k := ixEchoKey{id, seq}
		if e := l.got[k]; e != nil {
			e.count++
			return
		}
		l.got[k] = &ixEchoSeen{data: append([]byte(nil), data...), nic: pi.NIC, count: 1}
	})
	t.Cleanup(remove)
	return l
}

func (l *ixEchoLog) fail(format string, args ...any) {
	l.mu.Lock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// get returns the message with id and seq, if it arrived.
func (l *ixEchoLog) get(id, seq uint16) (ixEchoSeen, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.got[ixEchoKey{id, seq}]
	if !ok {
		return ixEchoSeen{}, false
	}
	return *e, true
}

// len returns how many distinct messages arrived.
func (l *ixEchoLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got)
}

// errors returns the parse failures seen.
func (l *ixEchoLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.bad...)
}

// ixWaitFor polls cond every few milliseconds until it holds or d passes
// (in fake time inside a synctest bubble), and reports whether it held.
func ixWaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ixPing sends one echo request from s to dst with data and waits up to
// d for the matching reply in replies; it fails the test unless the reply
// carries data byte for byte.
func ixPing(t testing.TB, s *Stack, replies *ixEchoLog, dst netip.Addr, id, seq uint16, data []byte, d time.Duration) {
	t.Helper()
	if err := ixSendEcho(s, dst, id, seq, data, WriteOptions{}); err != nil {
		t.Fatalf("echo to %v: %v", dst, err)
	}
	var got ixEchoSeen
	if !ixWaitFor(d, func() bool {
		var ok bool
		got, ok = replies.get(id, seq)
		return ok
	}) {
		t.Fatalf("no echo reply from %v (id %d seq %d, %d bytes) within %v; parse errors %v",
			dst, id, seq, len(data), d, replies.errors())
	}
	if string(got.data) != string(data) {
		t.Fatalf("echo reply from %v: %d bytes differ from the %d sent", dst, len(got.data), len(data))
	}
}

// pattern returns n bytes that differ per datagram (seed) and per offset,
// so a misplaced fragment shows.
func ixPattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// ixEthFrame builds an Ethernet frame (802.1Q-tagged when vid is not 0).
func ixEthFrame(dst, src wire.MAC, vid uint16, etherType uint16, payload []byte) []byte {
	f := wire.EthernetFields{Dst: dst, Src: src, EtherType: etherType}
	if vid != 0 {
		f.Tags[0] = wire.VLANTag{VID: vid}
		f.NumTags = 1
	}
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	return b
}

// ixIPv4 builds an IPv4 packet: header f (PayloadLen set here) and
// payload.
func ixIPv4(f wire.IPv4Fields, payload []byte) []byte {
	if f.TTL == 0 {
		f.TTL = 64
	}
	f.PayloadLen = len(payload)
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	return b
}

// ixIPv6 builds an IPv6 packet: the fixed header f (PayloadLen set
// here) followed by payload, extension headers included.
func ixIPv6(f wire.IPv6Fields, payload []byte) []byte {
	if f.HopLimit == 0 {
		f.HopLimit = 64
	}
	f.PayloadLen = len(payload)
	b := make([]byte, f.Len()+len(payload))
	f.Encode(b)
	copy(b[f.Len():], payload)
	return b
}

// ipv6Fragment builds the payload of an IPv6 fragment packet: a Fragment
// header and data.
func ixIPv6Frag(next uint8, off int, more bool, id uint32, data []byte) []byte {
	f := wire.IPv6FragmentFields{NextHeader: next, Offset: off, More: more, ID: id}
	b := make([]byte, f.Len()+len(data))
	f.Encode(b)
	copy(b[f.Len():], data)
	return b
}

// ixSinkEndpoint is a link endpoint that counts and discards what the stack
// writes; frames are delivered by calling the NIC's DeliverFrame directly.
type ixSinkEndpoint struct {
	link.Base
	mu     sync.Mutex
	frames int
}

func newIxSinkEndpoint(name string, mtu int, mac wire.MAC) *ixSinkEndpoint {
	e := &ixSinkEndpoint{}
	e.Init(name, mtu, mac, 0)
	return e
}

func (e *ixSinkEndpoint) WritePackets(frames [][]byte) (int, error) {
	for i, f := range frames {
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
		e.CountSent(len(f))
	}
	e.mu.Lock()
	e.frames += len(frames)
	e.mu.Unlock()
	return len(frames), nil
}

func (e *ixSinkEndpoint) Close() error { return nil }
