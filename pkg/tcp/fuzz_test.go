package tcp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/wire"
)

// FuzzSegments feeds arbitrary segments to a listener and to an
// established connection on a real pair of stacks: nothing may panic,
// and what the endpoints hold stays within their bounds (receive and
// send buffers, out-of-order ranges, the SYN queue).
//
// The input is a list of segments, each a length byte, a target byte
// (bit 0: the connection or the listener) and a TCP header and payload.
// Sequence and acknowledgment numbers are taken as offsets from the
// connection's RCV.NXT and SND.UNA, so in-window segments are common.
func FuzzSegments(f *testing.F) {
	seed := func(flags wire.TCPFlags, seq, ack uint32, payload string, opts wire.TCPOptions) []byte {
		tf := wire.TCPFields{Seq: seq, Ack: ack, Flags: flags, Window: 1000, Options: opts}
		b := make([]byte, tf.Len()+len(payload))
		tf.Encode(b)
		copy(b[tf.Len():], payload)
		return append([]byte{byte(len(b)), 0}, b...)
	}
	ts := wire.TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 1}
	sack := wire.TCPOptions{NumSACKBlocks: 1, SACKBlocks: [4]wire.TCPSACKBlock{{Left: 10, Right: 20}}}
	f.Add(seed(wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0, "hello", wire.TCPOptions{}))
	f.Add(seed(wire.TCPFlagACK, 100, 0, "out of order", ts))
	f.Add(seed(wire.TCPFlagACK|wire.TCPFlagFIN, 0, 0, "bye", sack))
	f.Add(seed(wire.TCPFlagRST, 0, 0, "", wire.TCPOptions{}))
	f.Add(seed(wire.TCPFlagSYN, 5, 0, "", wire.TCPOptions{HasMSS: true, MSS: 1, HasWindowScale: true, WindowScale: 200}))
	f.Add(append(seed(wire.TCPFlagSYN, 5, 0, "", ts), 0xff, 1, 0, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			c, s := connPair(t, a, b, false)
			l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 8080), 4)
			feedSegments(b, c, s, in, false)
			time.Sleep(time.Second)
			synctest.Wait()
			for _, e := range []*endpoint{s, l} {
				e.mu.Lock()
				if e.rcv.n > e.opts.RcvBuf || len(e.rcv.b) > 2*e.opts.RcvBuf || e.snd.n > e.opts.SndBuf ||
					e.ooo.Len() > e.ooo.MaxRanges() || e.synQ > maxSynQueue || len(e.acceptQ) > e.backlog+1 {
					t.Errorf("bounds: %s", "exceeded")
				}
				e.mu.Unlock()
			}
			if n := len(b.tcp.Endpoints()); n > 3+8+5 {
				t.Errorf("%d endpoints after the input", n)
			}
		})
	})
}

// feedSegments hands b's TCP the segments in in (FuzzSegments' format)
// from c's address: to s, or with bit 0 of the target byte to the
// listener on 8080, from another peer port with bit 1. With tos, the
// target byte's upper six bits are the IP TOS byte's (its ECN field the
// lowest two of them).
func feedSegments(b *host, c, s *endpoint, in []byte, tos bool) {
	for len(in) >= 2 {
		n, target := int(in[0]), in[1]
		in = in[2:]
		n = min(n, len(in))
		seg := append([]byte(nil), in[:n]...)
		in = in[n:]
		if len(seg) < wire.TCPMinHeaderLen {
			continue
		}
		dstPort := uint16(80)
		if target&1 != 0 {
			dstPort = 8080
		}
		_, rcvNxt, _ := snapshot(s)
		s.mu.Lock()
		una := uint32(s.sndUna)
		s.mu.Unlock()
		binary.BigEndian.PutUint16(seg[0:2], c.LocalAddr().Port())
		binary.BigEndian.PutUint16(seg[2:4], dstPort)
		binary.BigEndian.PutUint32(seg[4:8], rcvNxt+binary.BigEndian.Uint32(seg[4:8])%(1<<20))
		binary.BigEndian.PutUint32(seg[8:12], una+binary.BigEndian.Uint32(seg[8:12])%(1<<20)-1<<19)
		if target&2 != 0 {
			binary.BigEndian.PutUint16(seg[0:2], uint16(target)<<8) // another peer port: the listener's SYN queue
		}
		seg[16], seg[17] = 0, 0
		sum := wire.Checksum(seg, wire.PseudoHeaderChecksum(wire.IPProtoTCP, addrA4, addrB4, uint32(len(seg))))
		binary.BigEndian.PutUint16(seg[16:18], ^sum)
		pi := &stack.PacketInfo{NIC: b.nic, Src: addrA4, Dst: addrB4, Proto: wire.IPProtoTCP, TTL: 64}
		if tos {
			pi.TOS = target >> 2
		}
		b.tcp.HandlePacket(pi, seg)
	}
}
