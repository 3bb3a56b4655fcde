package tcp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

func dataSegs(l []segRecord) []segRecord {
	var out []segRecord
	for _, s := range l {
		if s.n > 0 {
			out = append(out, s)
		}
	}
	return out
}

// TestDelayedAck: a lone segment is acknowledged after 40 ms; the second
// of two full segments at once (RFC 5681 §4.2, RFC 1122 §4.2.3.2).
func TestDelayedAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		// A first exchange opens the window fully (the SYN's window is
		// unscaled), so the window update does not stand in for the ACK.
		writeAll(c, []byte("x"), time.Second)
		readN(s, 1, time.Second)
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		writeAll(c, []byte("x"), time.Second)
		readN(s, 1, time.Second)
		time.Sleep(100 * time.Millisecond)
		var ackAt time.Time
		for _, sg := range rec.received() {
			if !sg.at.Before(start) && sg.flags&wire.TCPFlagACK != 0 && sg.ack == uint32(c.sndMax) && ackAt.IsZero() {
				ackAt = sg.at
			}
		}
		if d := ackAt.Sub(start); d < 40*time.Millisecond || d > 45*time.Millisecond {
			t.Fatalf("lone segment acknowledged after %v, want 40 ms", d)
		}
		start = time.Now()
		writeAll(c, make([]byte, 2*c.mss), time.Second)
		readN(s, 2*c.mss, time.Second)
		synctest.Wait()
		for _, sg := range rec.received() {
			if sg.at.Before(start) || sg.flags&wire.TCPFlagACK == 0 {
				continue
			}
			if sg.at.Sub(start) > time.Millisecond {
				t.Fatalf("two full segments acknowledged after %v, want at once", sg.at.Sub(start))
			}
			break
		}
	})
}

// TestNagle: small writes while data is unacknowledged wait and go out
// together (RFC 1122 §4.2.3.4); with TCP_NODELAY each goes at once.
func TestNagle(t *testing.T) {
	for _, nodelay := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			nw := newNet(t, 7)
			a, rec := newRecHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.1/24")
			b := newHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.2/24")
			c, s := connPair(t, a, b, false)
			if nodelay {
				c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			}
			for range 5 {
				writeAll(c, []byte("ab"), time.Second)
			}
			synctest.Wait()
			n := len(dataSegs(rec.sent()))
			if got, err := readN(s, 10, time.Second); err != nil || string(got) != "ababababab" {
				t.Fatalf("read %q %v", got, err)
			}
			if nodelay && n != 5 {
				t.Errorf("TCP_NODELAY: %d segments in flight, want 5", n)
			}
			if !nodelay && n != 1 {
				t.Errorf("Nagle: %d segments before the first ACK, want 1", n)
			}
			time.Sleep(100 * time.Millisecond)
			if !nodelay && len(dataSegs(rec.sent())) != 2 {
				t.Errorf("Nagle: %d segments in all, want 2 (the rest coalesced)", len(dataSegs(rec.sent())))
			}
		})
	}
}

// TestNagleMinshall: Nagle holds a short segment only while an earlier
// short one is unacknowledged (Minshall's variant, as Linux's
// tcp_nagle_check): the tail of a write of MSS+10 bytes leaves with the
// full segment, not after its ACK; a short write after it then waits for
// the tail's ACK.
func TestNagleMinshall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}, "10.0.0.2/24")
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		start := len(dataSegs(rec.sent()))
		writeAll(c, make([]byte, c.mss+10), time.Second)
		synctest.Wait()
		if segs := dataSegs(rec.sent())[start:]; len(segs) != 2 || segs[0].n != c.mss || segs[1].n != 10 {
			t.Fatalf("a write of MSS+10: %d segments before any ACK, want the full one and the tail", len(segs))
		}
		writeAll(c, []byte("xy"), time.Second)
		synctest.Wait()
		if segs := dataSegs(rec.sent())[start:]; len(segs) != 2 {
			t.Fatalf("a short write with the short tail in flight went at once (%d segments)", len(segs))
		}
		if got, err := readN(s, c.mss+12, time.Second); err != nil || len(got) != c.mss+12 {
			t.Fatalf("read %d: %v", len(got), err)
		}
		time.Sleep(100 * time.Millisecond)
		if segs := dataSegs(rec.sent())[start:]; len(segs) != 3 || segs[2].n != 2 {
			t.Fatalf("%d segments in all, want 3 (the short write after the tail's ACK)", len(segs))
		}
	})
}

// TestMaxSeg: TCP_MAXSEG before connect lowers the MSS we announce, and
// the peer's segments respect it (less the timestamp option).
func TestMaxSeg(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 4)
		c := a.open(t, syscall.AF_INET)
		if err := c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 500); err != nil {
			t.Fatal(err)
		}
		if err := c.SetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 50); err == nil {
			t.Error("TCP_MAXSEG 50 accepted")
		}
		mustConnect(t, c, ap(addrB4, 80))
		s := accept(t, l, time.Second)
		if syn := rec.sent()[0]; !syn.opts.HasMSS || syn.opts.MSS != 500 {
			t.Fatalf("SYN MSS option %+v", syn.opts)
		}
		writeAll(s, make([]byte, 10000), time.Second)
		readN(c, 10000, time.Second)
		for _, sg := range dataSegs(rec.received()) {
			if sg.n > 488 {
				t.Fatalf("peer sent %d bytes, more than 500 less 12 of timestamps", sg.n)
			}
		}
		if v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_MAXSEG); v != 488 {
			t.Errorf("TCP_MAXSEG reads %v, want 488", v)
		}
	})
}

// TestSACKBlocks: a lost segment leaves a hole; the receiver's ACKs carry
// a SACK block for the data above it (RFC 2018 §4), and the stream is
// whole after the retransmission.
func TestSACKBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		dropped := false
		var lost uint32
		rec.setDrop(func(sg segRecord) bool {
			if sg.n > 0 && !dropped {
				dropped, lost = true, sg.seq
				return true
			}
			return false
		})
		data := randomBytes(5, 20*c.mss)
		writeAll(c, data, time.Second)
		got, err := readN(s, len(data), 5*time.Second)
		if err != nil || string(got) != string(data) {
			t.Fatalf("read %d: %v", len(got), err)
		}
		found := false
		for _, sg := range rec.received() {
			if sg.opts.NumSACKBlocks > 0 && sg.ack == lost && sg.opts.SACKBlocks[0].Left == lost+uint32(c.mss) {
				found = true
			}
		}
		if !found {
			t.Fatal("no ACK at the hole with a SACK block for the data above it")
		}
		time.Sleep(100 * time.Millisecond) // the last (delayed) ACK
		v, _ := c.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
		if in := v.(TCPInfo); in.TotalRetrans == 0 || in.BytesAcked != uint64(len(data)) {
			t.Errorf("sender tcp_info %+v", in)
		}
		v, _ = s.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
		if in := v.(TCPInfo); in.BytesReceived != uint64(len(data)) {
			t.Errorf("receiver tcp_info %+v", in)
		}
	})
}

// TestDSACKOnTheWire: a segment that arrives again, all below RCV.NXT,
// is acknowledged at once with a D-SACK block for it as the first SACK
// block (RFC 2883 §4.1), reported once only: the ACKs for new data
// after it carry no block.
func TestDSACKOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 9)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		data := randomBytes(9, 3*c.mss)
		writeAll(s, data, time.Second)
		if got, err := readN(c, len(data), time.Second); err != nil || string(got) != string(data) {
			t.Fatalf("read %d: %v", len(got), err)
		}
		time.Sleep(time.Second) // past any delayed ACK
		var last segRecord
		for _, sg := range rec.received() {
			if sg.n > 0 {
				last = sg
			}
		}
		if last.n == 0 || !last.opts.HasTimestamps {
			t.Fatalf("last data segment %+v, want one with data and timestamps", last)
		}
		_, rcvNxt, _ := snapshot(c)
		before := len(rec.sent())
		at := time.Now()
		// The copy carries the original's timestamp, so PAWS lets it in.
		in.send(t, a.port.MAC(), last.src, last.dst, wire.TCPFields{Seq: last.seq, Ack: last.ack, Window: last.wnd,
			Flags: wire.TCPFlagACK, Options: wire.TCPOptions{HasTimestamps: true, TSVal: last.opts.TSVal, TSEcr: last.opts.TSEcr}},
			make([]byte, last.n))
		synctest.Wait()
		sent := rec.sent()[before:]
		if len(sent) != 1 {
			t.Fatalf("%d segments answer the duplicate, want one ACK", len(sent))
		}
		ack := sent[0]
		if ack.ack != rcvNxt || ack.n != 0 || !ack.at.Equal(at) {
			t.Fatalf("answer %+v at +%v, want an immediate ACK of %d", ack, ack.at.Sub(at), rcvNxt)
		}
		if ack.opts.NumSACKBlocks != 1 || ack.opts.SACKBlocks[0].Left != last.seq || ack.opts.SACKBlocks[0].Right != last.seq+uint32(last.n) {
			t.Fatalf("SACK blocks %v, want the D-SACK block [%d, %d)", ack.opts.SACKBlocks[:ack.opts.NumSACKBlocks], last.seq, last.seq+uint32(last.n))
		}
		// New data: its ACKs report nothing.
		writeAll(s, data, time.Second)
		readN(c, len(data), time.Second)
		time.Sleep(time.Second)
		for _, sg := range rec.sent()[before+1:] {
			if sg.opts.NumSACKBlocks != 0 {
				t.Fatalf("ACK %+v after the D-SACK still has blocks", sg)
			}
		}
	})
}

// TestPathMTU: fragmentation needed quoting a segment in flight lowers
// the MSS (RFC 1191) and what follows fits the new MTU.
func TestPathMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		q := make([]byte, 8)
		binary.BigEndian.PutUint16(q[0:], c.LocalAddr().Port())
		binary.BigEndian.PutUint16(q[2:], 80)
		binary.BigEndian.PutUint32(q[4:], uint32(c.sndUna))
		a.tcp.HandleError(&stack.ICMPError{NIC: a.nic, From: netip.MustParseAddr("10.0.0.254"), Type: wire.ICMPv4DestUnreachable,
			Code: 4, MTU: 1000, Src: addrA4, Dst: addrB4, Proto: wire.IPProtoTCP, Payload: q})
		if c.mss != 1000-40-12 {
			t.Fatalf("mss %d after MTU 1000, want 948", c.mss)
		}
		writeAll(c, make([]byte, 20000), time.Second)
		readN(s, 20000, time.Second)
		for _, sg := range dataSegs(rec.sent()) {
			if sg.n > 948 {
				t.Fatalf("%d-byte segment after the MTU dropped to 1000", sg.n)
			}
		}
		// An error quoting a sequence number not in flight is ignored
		// (RFC 5927 §4.1). (Wait: the last ACKs may still be arriving.)
		synctest.Wait()
		binary.BigEndian.PutUint32(q[4:], uint32(c.sndUna)+1<<30)
		a.tcp.HandleError(&stack.ICMPError{NIC: a.nic, Type: wire.ICMPv4DestUnreachable, Code: 4, MTU: 600,
			Src: addrA4, Dst: addrB4, Proto: wire.IPProtoTCP, Payload: q})
		if c.mss != 948 {
			t.Fatalf("mss %d after an off-path error", c.mss)
		}
	})
}

// TestNoSocket: an ACK to a closed port is answered <SEQ=SEG.ACK><RST>;
// a RST is not answered; a bad checksum is counted and dropped.
func TestNoSocket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		in := newInjector(t, nw)
		from, to := ap(addrB4, 4000), ap(addrA4, 4001)
		in.send(t, a.port.MAC(), from, to, wire.TCPFields{Seq: 7, Ack: 12345, Flags: wire.TCPFlagACK}, []byte("data"))
		in.send(t, a.port.MAC(), from, to, wire.TCPFields{Seq: 7, Flags: wire.TCPFlagRST}, nil)
		synctest.Wait()
		out := rec.sent()
		if len(out) != 1 || out[0].flags != wire.TCPFlagRST || out[0].seq != 12345 {
			t.Fatalf("answers %+v, want one <SEQ=12345><RST>", out)
		}
		// Bad checksum.
		f := wire.TCPFields{SrcPort: 4000, DstPort: 4001, Flags: wire.TCPFlagSYN}
		seg := make([]byte, f.Len())
		f.Encode(seg)
		binary.BigEndian.PutUint16(seg[16:], 0x1234)
		a.tcp.HandlePacket(&stack.PacketInfo{NIC: a.nic, Src: addrB4, Dst: addrA4, Proto: wire.IPProtoTCP}, seg)
		st := a.tcp.Stats()
		if st.InCsumErrors.Load() != 1 || st.InErrs.Load() != 1 || st.InSegs.Load() != 2 || st.OutRsts.Load() != 1 {
			t.Errorf("counters: csum %d errs %d in %d rsts %d", st.InCsumErrors.Load(), st.InErrs.Load(), st.InSegs.Load(), st.OutRsts.Load())
		}
	})
}

// TestPAWS: a segment with an older timestamp than TS.Recent is dropped
// even though its sequence number is acceptable (RFC 7323 §5).
func TestPAWS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		a := newHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		in := newInjector(t, nw)
		c, s := connPair(t, a, b, false)
		writeAll(c, []byte("first"), time.Second)
		readN(s, 5, time.Second)
		_, rcvNxt, _ := snapshot(s)
		s.mu.Lock()
		recent, una := s.tsRecent, uint32(s.sndUna)
		s.mu.Unlock()
		opts := wire.TCPOptions{HasTimestamps: true, TSVal: recent - 1000}
		in.send(t, b.port.MAC(), c.LocalAddr(), ap(addrB4, 80), wire.TCPFields{Seq: rcvNxt, Ack: una, Flags: wire.TCPFlagACK, Window: 1000, Options: opts}, []byte("old!"))
		synctest.Wait()
		if n := s.Available(); n != 0 {
			t.Fatalf("%d bytes of an old duplicate were accepted", n)
		}
		opts.TSVal = recent + 1
		in.send(t, b.port.MAC(), c.LocalAddr(), ap(addrB4, 80), wire.TCPFields{Seq: rcvNxt, Ack: una, Flags: wire.TCPFlagACK, Window: 1000, Options: opts}, []byte("new!"))
		synctest.Wait()
		if got, _ := s.Read([][]byte{make([]byte, 10)}, transport.ReadOptions{}); got.N != 4 {
			t.Fatalf("a fresh segment was not accepted: %d bytes", got.N)
		}
	})
}

// TestTimestampsMonotone: a segment built with a clock reading older than
// the previous segment's (the packet path reads the clock before it
// takes the endpoint's lock, the application may have sent meanwhile)
// still carries a TSval no older than the last one, so the peer's PAWS
// check does not drop it. Before the fix, a real-time 4 MiB transfer on an
// unimpaired link lost a few segments this way in most runs (the peer
// dropped them as old duplicates) and recovered them by retransmission.
func TestTimestampsMonotone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, rec := recPair(t)
		c, s := connPair(t, a, b, false)
		c.mu.Lock()
		now := time.Now()
		c.emitAtLocked(now.Add(50*time.Millisecond), c.sndNxt, wire.TCPFlagACK, 0, 0)
		c.emitAtLocked(now, c.sndNxt, wire.TCPFlagACK|wire.TCPFlagPSH, 0, 0)
		c.unlock()
		time.Sleep(100 * time.Millisecond)
		writeAll(c, []byte("after"), time.Second)
		if got, err := readN(s, 5, time.Second); err != nil || string(got) != "after" {
			t.Fatalf("read %q, %v", got, err)
		}
		var last uint32
		var seen int
		for _, r := range rec.sent() {
			if !r.opts.HasTimestamps || r.flags&wire.TCPFlagSYN != 0 {
				continue
			}
			if seen > 0 && int32(r.opts.TSVal-last) < 0 {
				t.Fatalf("TSval %d after %d", r.opts.TSVal, last)
			}
			last = r.opts.TSVal
			seen++
		}
		if seen < 3 {
			t.Fatalf("%d timestamped segments recorded", seen)
		}
	})
}

// TestSACKRecovery: three segments lost from one window are repaired by
// SACK-based recovery (RFC 6675) in one round trip of 20 ms — each
// retransmitted once, no timeout — where NewReno would take a round trip
// per hole.
func TestSACKRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 7)
		im := emu.PortConfig{Out: emu.Impairments{Delay: 10 * time.Millisecond}}
		a, rec := newRecHost(t, nw, im, "10.0.0.1/24")
		b := newHost(t, nw, im, "10.0.0.2/24")
		c, s := connPair(t, a, b, false)
		synctest.Wait()
		mss := uint32(c.mss)
		base := uint32(c.sndMax)
		lose := map[uint32]bool{base + 3*mss: true, base + 6*mss: true, base + 8*mss: true}
		rec.setDrop(func(sg segRecord) bool {
			if sg.n > 0 && lose[sg.seq] {
				delete(lose, sg.seq)
				return true
			}
			return false
		})
		data := randomBytes(6, 10*c.mss) // within the initial window
		start := time.Now()
		writeAll(c, data, time.Second)
		got, err := readN(s, len(data), 5*time.Second)
		if err != nil || string(got) != string(data) {
			t.Fatalf("read %d: %v", len(got), err)
		}
		// Sent at 0, dupacks back at 20 ms: the first two holes go at once,
		// the third (not yet "lost" by RFC 6675 §4 IsLost) after the partial
		// ACK at 40 ms. NewReno needs until 70 ms: a round trip per hole.
		if d := time.Since(start); d > 55*time.Millisecond {
			t.Errorf("repaired after %v, want 50 ms (SACK recovery)", d)
		}
		if n := c.totalRetrans; n != 3 {
			t.Errorf("%d retransmissions, want the 3 lost segments", n)
		}
	})
}
