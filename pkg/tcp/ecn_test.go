package tcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/tcp/cc"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// ECN tests (RFC 3168 §6.1; ecn.go): negotiation for each pair of
// Protocol.ECN settings, which segments are ECT, the receiver's ECE until
// CWR, the sender's reduction without retransmission, and transfers with
// CE marks from the emulated link (emu.Impairments.CE).

// ecnSeg is a TCP segment on a host's link with its IP header's ECN field.
type ecnSeg struct {
	segRecord
	out bool  // sent by the host (else received)
	ecn uint8 // IP ECN field as it crossed the host's link
}

// ecnRec wraps a host's link: it logs the TCP segments the host sends
// and receives, in one list, with their ECN field, and may mark chosen
// sent segments CE (as a router on the path would).
type ecnRec struct {
	link.Endpoint
	mu   sync.Mutex
	log  []ecnSeg
	mark func(segRecord) bool
}

// frameIP returns the IP header of an untagged Ethernet frame.
func frameIP(f []byte) []byte {
	if len(f) < wire.EthernetHeaderLen+40 {
		return nil
	}
	return f[wire.EthernetHeaderLen:]
}

func ipECN(ip []byte) uint8 {
	if ip[0]>>4 == 4 {
		return ip[1] & 3
	}
	return (ip[1] >> 4) & 3
}

func setCE(ip []byte) {
	if ip[0]>>4 == 4 {
		old := binary.BigEndian.Uint16(ip[0:2])
		ip[1] |= 3
		sum := binary.BigEndian.Uint16(ip[10:12])
		binary.BigEndian.PutUint16(ip[10:12], wire.ChecksumUpdate(sum, old, binary.BigEndian.Uint16(ip[0:2])))
		return
	}
	ip[1] |= 3 << 4
}

func (r *ecnRec) record(f []byte, out bool) (segRecord, bool) {
	s, ok := parseFrame(f)
	if !ok {
		return s, false
	}
	s.at = time.Now()
	ip := frameIP(f)
	if out && r.mark != nil && r.mark(s) {
		setCE(ip)
	}
	r.log = append(r.log, ecnSeg{segRecord: s, out: out, ecn: ipECN(ip)})
	return s, true
}

func (r *ecnRec) Attach(d link.Dispatcher) {
	if d == nil {
		r.Endpoint.Attach(nil)
		return
	}
	r.Endpoint.Attach(link.DispatcherFunc(func(f []byte) {
		r.mu.Lock()
		r.record(f, false)
		r.mu.Unlock()
		d.DeliverFrame(f)
	}))
}

func (r *ecnRec) WritePackets(frames [][]byte) (int, error) {
	r.mu.Lock()
	for _, f := range frames {
		r.record(f, true)
	}
	r.mu.Unlock()
	return r.Endpoint.WritePackets(frames)
}

func (r *ecnRec) setMark(f func(segRecord) bool) {
	r.mu.Lock()
	r.mark = f
	r.mu.Unlock()
}

func (r *ecnRec) segs() []ecnSeg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ecnSeg(nil), r.log...)
}

// newECNHost is newHost with an ecnRec on its link.
func newECNHost(t testing.TB, nw *emu.Network, cfg emu.PortConfig, addrs ...string) (*host, *ecnRec) {
	t.Helper()
	var rec *ecnRec
	h := newHostVia(t, nw, cfg, func(p *emu.Port) link.Endpoint { rec = &ecnRec{Endpoint: p}; return rec }, addrs...)
	return h, rec
}

// ecnPair is two recorded hosts with the ECN settings given and the
// impairments on each one's outgoing direction.
func ecnPair(t testing.TB, seed uint64, clientECN, serverECN int, ca, sa emu.Impairments) (a, b *host, ra, rb *ecnRec) {
	t.Helper()
	nw := newNet(t, seed)
	a, ra = newECNHost(t, nw, emu.PortConfig{Out: ca}, "10.0.0.1/24", "2001:db8::1/64")
	b, rb = newECNHost(t, nw, emu.PortConfig{Out: sa}, "10.0.0.2/24", "2001:db8::2/64")
	a.tcp.ECN, b.tcp.ECN = clientECN, serverECN
	return a, b, ra, rb
}

// exchange sends up from c to s and down from s to c, both at once, and
// checks them byte for byte.
func exchange(t *testing.T, c, s *endpoint, up, down []byte) {
	t.Helper()
	errc := make(chan error, 2)
	send := func(ep *endpoint, data []byte) {
		err := writeAll(ep, data, 10*time.Minute)
		ep.Shutdown(syscall.SHUT_WR)
		errc <- err
	}
	go send(c, up)
	go send(s, down)
	gotDown := make(chan []byte, 1)
	go func() {
		d, err := readAll(c, 10*time.Minute)
		if err != nil {
			t.Errorf("client read: %v\n%s", err, dump(c))
		}
		gotDown <- d
	}()
	gotUp, err := readAll(s, 10*time.Minute)
	if err != nil {
		t.Fatalf("server read: %v\n%s", err, dump(s))
	}
	d := <-gotDown
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(d, down) {
		t.Fatalf("upstream %d of %d bytes, downstream %d of %d: data differs", len(gotUp), len(up), len(d), len(down))
	}
}

// TestECNNegotiation: every pair of settings (0 off, 1 request and
// accept, 2 accept only), IPv4 and IPv6. ECN is on exactly when the
// client asks (1) and the server accepts (1 or 2). The client's SYN has
// ECE|CWR when it asks; the SYN-ACK has ECE and not CWR when ECN is
// agreed and no ECE otherwise (RFC 3168 §6.1.1); TCP_INFO reports
// TCPI_OPT_ECN (and ECN_SEEN after data) at both ends. Data segments are
// ECT(0) on an ECN connection, everything else — SYNs, pure ACKs, the
// FINs — Not-ECT (§6.1.4), and the ECN bits of IP_TOS never reach the
// wire.
func TestECNNegotiation(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for cl := ECNOff; cl <= ECNAccept; cl++ {
			for sv := ECNOff; sv <= ECNAccept; sv++ {
				t.Run(fmt.Sprintf("v6=%v/client%d/server%d", v6, cl, sv), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						testECNNegotiation(t, v6, cl, sv)
					})
				})
			}
		}
	}
}

func testECNNegotiation(t *testing.T, v6 bool, cl, sv int) {
	a, b, ra, _ := ecnPair(t, 1, cl, sv, emu.Impairments{Delay: time.Millisecond}, emu.Impairments{Delay: time.Millisecond})
	want := cl == ECNOn && sv != ECNOff
	fam, dst, level, opt := syscall.AF_INET, addrB4, syscall.IPPROTO_IP, syscall.IP_TOS
	if v6 {
		fam, dst, level, opt = syscall.AF_INET6, addrB6, syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS
	}
	l := b.listen(t, fam, ap(netip.Addr{}, 80), 16)
	c := a.open(t, fam)
	// ECT(1) asked for by the application: TCP's ECN field is its own.
	if err := c.SetSockOpt(level, opt, 0xb9); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, c, ap(dst, 80))
	s := accept(t, l, 10*time.Second)
	exchange(t, c, s, randomBytes(1, 50_000), randomBytes(2, 30_000))
	for _, ep := range []*endpoint{c, s} {
		in := tcpInfoOf(t, ep)
		if got := in.Options&TCPIOptECN != 0; got != want {
			t.Errorf("tcpi_options %#x: ECN %v, want %v", in.Options, got, want)
		}
		if got := in.Options&TCPIOptECNSeen != 0; got != want {
			t.Errorf("tcpi_options %#x: ECN_SEEN %v, want %v", in.Options, got, want)
		}
	}
	var syn, synAck, data, acks int
	for _, r := range ra.segs() {
		ece, cwr := r.flags&wire.TCPFlagECE != 0, r.flags&wire.TCPFlagCWR != 0
		switch {
		case r.flags&wire.TCPFlagSYN != 0 && r.out:
			syn++
			if ece != (cl == ECNOn) || cwr != (cl == ECNOn) {
				t.Errorf("SYN flags %v, client setting %d", r.flags, cl)
			}
		case r.flags&wire.TCPFlagSYN != 0:
			synAck++
			if ece != want || cwr {
				t.Errorf("SYN-ACK flags %v, want ECE %v and no CWR", r.flags, want)
			}
		case ece || cwr:
			t.Errorf("%v segment with flags %v and no CE on the path", map[bool]string{true: "sent", false: "received"}[r.out], r.flags)
		}
		wantECN := uint8(wire.ECNNotECT)
		if r.n > 0 && want {
			wantECN = wire.ECNECT0
			data++
		} else if r.n == 0 && r.flags&wire.TCPFlagSYN == 0 {
			acks++
		}
		if r.ecn != wantECN {
			t.Errorf("%v segment (%d bytes, flags %v) has ECN %d, want %d", map[bool]string{true: "sent", false: "received"}[r.out], r.n, r.flags, r.ecn, wantECN)
		}
	}
	if syn != 1 || synAck != 1 || (want && data < 50) || acks == 0 {
		t.Errorf("%d SYNs, %d SYN-ACKs, %d ECT data segments, %d pure ACKs", syn, synAck, data, acks)
	}
}

// TestECNEchoUntilCWR marks one data segment CE on its way to the
// receiver (RFC 3168 §6.1.3): the receiver ACKs it at once with ECE and
// sets ECE on every segment it sends until the CWR arrives, and on none
// after; the sender reduces its window once (ssthresh from the flight,
// cwnd = ssthresh; §6.1.2) and does not grow it within the reduced
// window, sets CWR on exactly one segment, the first new data it sends
// after the ECE, and retransmits nothing.
func TestECNEchoUntilCWR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		im := emu.Impairments{Delay: 5 * time.Millisecond}
		a, b, ra, rb := ecnPair(t, 2, ECNOn, ECNAccept, im, im)
		c, s := connPair(t, a, b, false)
		mss := int(tcpInfoOf(t, c).SndMSS)
		c.mu.Lock()
		iss := c.iss
		c.mu.Unlock()
		markOff := uint32(40 * mss)
		var marked segRecord
		// The sender's window as each segment leaves (the hook runs after
		// the endpoint let its lock go), while in the reduction's window.
		var cwrCwnds []int
		ra.setMark(func(r segRecord) bool {
			c.mu.Lock()
			if c.ecn.has(ecnCWR) && !c.ecnHigh.LessThan(c.sndUna) {
				cwrCwnds = append(cwrCwnds, c.cc.Cwnd())
			}
			c.mu.Unlock()
			if r.n > 0 && r.seq-uint32(iss)-1 == markOff && marked.n == 0 {
				marked = r
				return true
			}
			return false
		})
		before := tcpInfoOf(t, c)
		exchange(t, c, s, randomBytes(3, 400*mss), nil)
		after := tcpInfoOf(t, c)
		if marked.n == 0 {
			t.Fatal("no segment was marked")
		}
		if before.SndSsthresh != uint32(cc.InfiniteSsthresh/mss) || after.SndSsthresh >= before.SndSsthresh {
			t.Errorf("ssthresh %d segments before, %d after: no reduction", before.SndSsthresh, after.SndSsthresh)
		}
		if n := a.tcp.Stats().ECNReductions.Load(); n != 1 {
			t.Errorf("%d ECN reductions, want 1", n)
		}
		if after.TotalRetrans != 0 || a.tcp.Stats().RetransSegs.Load() != 0 {
			t.Errorf("%d retransmissions", after.TotalRetrans)
		}
		// The sender: one CWR, on the first new data after the first ECE.
		var cwrSeq uint32
		cwrs, sawECE := 0, false
		for _, r := range ra.segs() {
			switch {
			case !r.out && r.flags&wire.TCPFlagECE != 0:
				sawECE = true
			case r.out && r.flags&wire.TCPFlagCWR != 0 && r.flags&wire.TCPFlagSYN == 0:
				cwrs++
				cwrSeq = r.seq
				if !sawECE || r.n == 0 {
					t.Errorf("CWR on a %d-byte segment, ECE seen %v", r.n, sawECE)
				}
			}
		}
		if cwrs != 1 {
			t.Fatalf("%d segments with CWR, want 1", cwrs)
		}
		// §6.1.2: no growth on the ECE ACKs nor in the reduced window.
		for _, w := range cwrCwnds {
			if w != cwrCwnds[0] {
				t.Errorf("cwnd changed within the reduction's window: %v", cwrCwnds)
				break
			}
		}
		if len(cwrCwnds) < 2 {
			t.Errorf("%d segments sent in the reduction's window", len(cwrCwnds))
		}
		// The receiver: ECE on exactly the ACKs from the marked segment
		// up to the CWR segment, the first of them at the instant the
		// marked segment arrived.
		var ceAt time.Time
		eces := 0
		for _, r := range rb.segs() {
			if !r.out {
				if r.seq == marked.seq && r.ecn == wire.ECNCE && ceAt.IsZero() {
					ceAt = r.at
				}
				continue
			}
			if r.flags&wire.TCPFlagSYN != 0 {
				continue
			}
			ece := r.flags&wire.TCPFlagECE != 0
			wantECE := !seqBefore(r.ack, marked.seq+uint32(marked.n)) && !seqBefore(cwrSeq, r.ack)
			if ece != wantECE {
				t.Errorf("receiver's ACK %d (marked segment ends at %d, CWR at %d): ECE %v, want %v",
					r.ack-uint32(iss), marked.seq+uint32(marked.n)-uint32(iss), cwrSeq-uint32(iss), ece, wantECE)
			}
			if ece {
				if eces == 0 && !r.at.Equal(ceAt) {
					t.Errorf("first ECE at %v, %v after the CE arrived: not ACKed at once", r.at, r.at.Sub(ceAt))
				}
				eces++
			}
		}
		if eces == 0 {
			t.Error("the receiver sent no ECE")
		}
		t.Logf("cwnd %d→%d, ssthresh %d segments, %d ACKs with ECE", before.SndCwnd, after.SndCwnd, after.SndSsthresh, eces)
	})
}

func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// TestECNTransferCE: 2 MiB each way with the emulated link marking ECT
// packets CE at several rates in one direction (or both), no loss
// configured. Both streams arrive byte for byte, nothing is
// retransmitted, the marked direction's sender reduced its window (an
// ssthresh is set, in TCP_INFO) at most once per round trip, sent CWR
// once per reduction, and the receiver echoed ECE.
func TestECNTransferCE(t *testing.T) {
	size := 2 << 20
	if testing.Short() {
		size = 256 << 10
	}
	for _, rate := range []float64{0.005, 0.02, 0.1} {
		for _, both := range []bool{false, true} {
			for _, algo := range []string{cc.NameCubic, cc.NameReno} {
				t.Run(fmt.Sprintf("ce%v/both=%v/%s", rate, both, algo), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						ca := emu.Impairments{Delay: 2 * time.Millisecond, CE: rate}
						sa := emu.Impairments{Delay: 2 * time.Millisecond}
						if both {
							sa.CE = rate
						}
						a, b, ra, rb := ecnPair(t, uint64(rate*1000), ECNOn, ECNAccept, ca, sa)
						a.tcp.Congestion, b.tcp.Congestion = algo, algo
						c, s := connPair(t, a, b, false)
						start := time.Now()
						exchange(t, c, s, randomBytes(4, size), randomBytes(5, size))
						took := time.Since(start)
						ci, si := tcpInfoOf(t, c), tcpInfoOf(t, s)
						for _, h := range []*host{a, b} {
							if n := h.tcp.Stats().RetransSegs.Load(); n != 0 {
								t.Errorf("%d retransmitted segments with no loss", n)
							}
						}
						if ci.TotalRetrans != 0 || si.TotalRetrans != 0 {
							t.Errorf("tcpi_total_retrans %d, %d", ci.TotalRetrans, si.TotalRetrans)
						}
						marked := a.port.ImpairStats(emu.Out).CEMarked
						red := a.tcp.Stats().ECNReductions.Load()
						if marked == 0 || red == 0 || ci.SndSsthresh >= uint32(cc.InfiniteSsthresh/int(ci.SndMSS)) {
							t.Errorf("%d CE marks, %d reductions, ssthresh %d", marked, red, ci.SndSsthresh)
						}
						// Once per window: never more reductions than round
						// trips (4 ms each) or marks.
						if rtts := uint64(took / (4 * time.Millisecond)); red > rtts || red > marked {
							t.Errorf("%d reductions in %v (%d round trips) for %d marks", red, took, rtts, marked)
						}
						if !both && (b.tcp.Stats().ECNReductions.Load() != 0 || si.SndSsthresh != uint32(cc.InfiniteSsthresh/int(si.SndMSS))) {
							t.Errorf("the unmarked direction reduced: ssthresh %d", si.SndSsthresh)
						}
						cwrs, eces := 0, 0
						for _, r := range ra.segs() {
							if r.out && r.flags&wire.TCPFlagCWR != 0 && r.flags&wire.TCPFlagSYN == 0 {
								cwrs++
							}
						}
						for _, r := range rb.segs() {
							if r.out && r.flags&wire.TCPFlagECE != 0 && r.flags&wire.TCPFlagSYN == 0 {
								eces++
							}
						}
						// The last reduction's CWR may find no new data left to ride on.
						if uint64(cwrs) != red && uint64(cwrs)+1 != red {
							t.Errorf("%d CWRs for %d reductions", cwrs, red)
						}
						if eces == 0 {
							t.Error("no ECE from the receiver")
						}
						t.Logf("%v: %d marks, %d reductions, %d CWRs, %d ECE segments, cwnd %d ssthresh %d",
							took, marked, red, cwrs, eces, ci.SndCwnd, ci.SndSsthresh)
					})
				})
			}
		}
	}
}

// TestECNRetransmittedSYN: the first, ECN-setup, SYN is lost; the
// retransmission goes without ECE and CWR (RFC 3168 §6.1.1.1's fallback,
// as Linux), so the connection is not ECN-capable.
func TestECNRetransmittedSYN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNet(t, 3)
		a, rec := newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24")
		b := newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24")
		a.tcp.ECN = ECNOn
		syns := 0
		rec.setDrop(func(r segRecord) bool {
			if r.flags&wire.TCPFlagSYN != 0 {
				syns++
				return syns == 1
			}
			return false
		})
		c, s := connPair(t, a, b, false)
		var flags []wire.TCPFlags
		for _, r := range rec.sent() {
			if r.flags&wire.TCPFlagSYN != 0 {
				flags = append(flags, r.flags&(wire.TCPFlagECE|wire.TCPFlagCWR))
			}
		}
		// The recorder keeps only what it let through: the retransmission.
		if syns != 2 || len(flags) != 1 || flags[0] != 0 {
			t.Errorf("%d SYNs, the delivered one's ECN flags %v", syns, flags)
		}
		for _, ep := range []*endpoint{c, s} {
			if tcpInfoOf(t, ep).Options&TCPIOptECN != 0 {
				t.Error("ECN negotiated by a SYN without ECE and CWR")
			}
		}
	})
}

// TestECNSynCookie: a listener whose SYN queue is full answers an
// ECN-setup SYN with a cookie SYN-ACK that has ECE when timestamps can
// carry the agreement (the ECN bit of pkg/tcp/isn's timestamp encoding,
// as Linux's cookie_ecn_ok), and the connection the cookie ACK makes is
// ECN-capable; without timestamps the SYN-ACK has no ECE and ECN is off.
func TestECNSynCookie(t *testing.T) {
	for _, ts := range []bool{true, false} {
		t.Run(fmt.Sprintf("timestamps=%v", ts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b, ra, _ := ecnPair(t, 4, ECNOn, ECNAccept, emu.Impairments{}, emu.Impairments{})
				a.tcp.DisableTimestamps = !ts
				l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 80), 16)
				l.mu.Lock()
				l.synQ = maxSynQueue // as if a flood filled it: every SYN gets a cookie
				l.mu.Unlock()
				c := a.open(t, syscall.AF_INET)
				mustConnect(t, c, ap(addrB4, 80))
				s := accept(t, l, 10*time.Second)
				if n := b.tcp.Stats().PassiveOpens.Load(); n != 1 {
					t.Fatalf("%d passive opens", n)
				}
				exchange(t, c, s, randomBytes(6, 20_000), randomBytes(7, 20_000))
				var synAckECE, synAckCWR bool
				for _, r := range ra.segs() {
					if !r.out && r.flags&wire.TCPFlagSYN != 0 {
						synAckECE = r.flags&wire.TCPFlagECE != 0
						synAckCWR = r.flags&wire.TCPFlagCWR != 0
					}
				}
				if synAckECE != ts || synAckCWR {
					t.Errorf("SYN-ACK ECE %v CWR %v, want ECE %v and no CWR", synAckECE, synAckCWR, ts)
				}
				l.mu.Lock()
				if l.synQ != maxSynQueue {
					t.Errorf("SYN queue %d: the SYN did not get a cookie", l.synQ)
				}
				l.mu.Unlock()
				for _, ep := range []*endpoint{c, s} {
					if got := tcpInfoOf(t, ep).Options&TCPIOptECN != 0; got != ts {
						t.Errorf("ECN %v, want %v", got, ts)
					}
				}
				s.mu.Lock()
				child := s.parent == nil && s.ecn.has(ecnOK) == ts
				s.mu.Unlock()
				if !child {
					t.Error("the cookie child's ECN state is wrong")
				}
			})
		})
	}
}

// TestECNCEAckedAtOnce: a lone CE-marked segment, which would otherwise
// wait for the delayed-ACK timer, is acknowledged at once with ECE (RFC
// 3168 §6.1.3; Linux's quick ACK when the CE state changes), while an
// unmarked one is not.
func TestECNCEAckedAtOnce(t *testing.T) {
	for _, mark := range []bool{false, true} {
		t.Run(fmt.Sprintf("ce=%v", mark), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				im := emu.Impairments{Delay: time.Millisecond}
				a, b, ra, rb := ecnPair(t, 5, ECNOn, ECNAccept, im, im)
				c, s := connPair(t, a, b, false)
				// A first exchange, unmarked: what follows is a connection
				// in its steady state.
				if err := writeAll(c, []byte("hello"), time.Second); err != nil {
					t.Fatal(err)
				}
				if _, err := readN(s, 5, time.Second); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				ra.setMark(func(r segRecord) bool { return mark && r.n > 0 })
				if err := writeAll(c, []byte("ping"), time.Second); err != nil {
					t.Fatal(err)
				}
				if got, err := readN(s, 4, time.Second); err != nil || string(got) != "ping" {
					t.Fatalf("%q, %v", got, err)
				}
				time.Sleep(time.Second)
				var arrived, acked time.Time
				var ece bool
				for _, r := range rb.segs() {
					if !r.out && r.n == 4 {
						arrived = r.at
						if (r.ecn == wire.ECNCE) != mark {
							t.Fatalf("the data arrived with ECN %d", r.ecn)
						}
					} else if r.out && !arrived.IsZero() && acked.IsZero() {
						acked, ece = r.at, r.flags&wire.TCPFlagECE != 0
					}
				}
				delay := acked.Sub(arrived)
				if mark && (delay != 0 || !ece) {
					t.Errorf("CE segment ACKed after %v, ECE %v: want at once with ECE", delay, ece)
				}
				if !mark && (delay < delAckTimeout || ece) {
					t.Errorf("unmarked segment ACKed after %v, ECE %v: want the delayed ACK without ECE", delay, ece)
				}
			})
		})
	}
}

// FuzzECNSegments is FuzzSegments on an ECN connection (both ends
// ECNOn), with the IP TOS of each segment fuzzed too (the target byte's
// upper six bits, the lowest two of them the ECN field), and data in
// flight from the endpoint under test, so that ECE, CWR and CE
// in any combination reach the sender's reaction and the receiver's
// echo: nothing may panic, the bounds of FuzzSegments hold, and the
// congestion window never drops below one segment.
func FuzzECNSegments(f *testing.F) {
	seed := func(flags wire.TCPFlags, seq, ack uint32, payload string, target byte) []byte {
		tf := wire.TCPFields{Seq: seq, Ack: ack, Flags: flags, Window: 1000}
		b := make([]byte, tf.Len()+len(payload))
		tf.Encode(b)
		copy(b[tf.Len():], payload)
		return append([]byte{byte(len(b)), target}, b...)
	}
	ce, ect0 := byte(wire.ECNCE<<2), byte(wire.ECNECT0<<2)
	f.Add(seed(wire.TCPFlagACK|wire.TCPFlagPSH, 0, 1<<19+1, "hello", ce))
	f.Add(seed(wire.TCPFlagACK|wire.TCPFlagECE, 0, 1<<19+1000, "", 0))
	f.Add(append(seed(wire.TCPFlagACK|wire.TCPFlagECE, 0, 1<<19+1000, "", 0), seed(wire.TCPFlagACK|wire.TCPFlagCWR, 0, 1<<19+2000, "x", ce)...))
	f.Add(seed(wire.TCPFlagACK|wire.TCPFlagECE|wire.TCPFlagCWR, 0, 1<<19, "x", ect0))
	f.Add(seed(wire.TCPFlagSYN|wire.TCPFlagECE|wire.TCPFlagCWR, 5, 0, "", 1|ce))
	f.Add(seed(wire.TCPFlagSYN|wire.TCPFlagECE|wire.TCPFlagCWR, 5, 0, "", 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		synctest.Test(t, func(t *testing.T) {
			a, b := pair(t)
			a.tcp.ECN, b.tcp.ECN = ECNOn, ECNOn
			c, s := connPair(t, a, b, false)
			l := b.listen(t, syscall.AF_INET, ap(netip.Addr{}, 8080), 4)
			s.mu.Lock()
			ok := s.ecn.has(ecnOK)
			s.mu.Unlock()
			if !ok {
				t.Fatal("ECN not negotiated")
			}
			if _, err := s.Write([][]byte{make([]byte, 60000)}, transport.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			feedSegments(b, c, s, in, true)
			time.Sleep(time.Second)
			synctest.Wait()
			for _, e := range []*endpoint{s, l} {
				e.mu.Lock()
				if e.rcv.n > e.opts.RcvBuf || len(e.rcv.b) > 2*e.opts.RcvBuf || e.snd.n > e.opts.SndBuf ||
					e.ooo.Len() > e.ooo.MaxRanges() || e.synQ > maxSynQueue || len(e.acceptQ) > e.backlog+1 {
					t.Errorf("bounds: %s", "exceeded")
				}
				if e.cc != nil && e.cc.Cwnd() < e.mss {
					t.Errorf("cwnd %d below the MSS %d", e.cc.Cwnd(), e.mss)
				}
				e.mu.Unlock()
			}
		})
	})
}

// TestECNSimultaneousOpen: in a simultaneous open (RFC 9293 §3.5) ECN is
// agreed when both SYNs were ECN-setup SYNs (Linux tcp_ecn_rcv_syn), and
// then each SYN-ACK has ECE and not CWR; with one end not asking, neither
// SYN-ACK has ECE and ECN is off at both ends.
func TestECNSimultaneousOpen(t *testing.T) {
	for _, bECN := range []int{ECNOn, ECNAccept} {
		t.Run(fmt.Sprintf("b=%d", bECN), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				im := emu.Impairments{Delay: 10 * time.Millisecond}
				a, b, ra, _ := ecnPair(t, 6, ECNOn, bECN, im, im)
				want := bECN == ECNOn
				ca, cb := a.open(t, syscall.AF_INET), b.open(t, syscall.AF_INET)
				if err := ca.Bind(ap(addrA4, 5001)); err != nil {
					t.Fatal(err)
				}
				if err := cb.Bind(ap(addrB4, 5002)); err != nil {
					t.Fatal(err)
				}
				a.s.FindRoute(0, netip.Addr{}, addrB4) // both SYNs leave at once
				if err := ca.Connect(ap(addrB4, 5002)); err != syscall.EINPROGRESS {
					t.Fatal(err)
				}
				if err := cb.Connect(ap(addrA4, 5001)); err != syscall.EINPROGRESS {
					t.Fatal(err)
				}
				exchange(t, ca, cb, []byte("ping"), []byte("pong"))
				synAcks := 0
				for _, r := range ra.segs() {
					if r.flags&(wire.TCPFlagSYN|wire.TCPFlagACK) != wire.TCPFlagSYN|wire.TCPFlagACK {
						continue
					}
					synAcks++
					if ece, cwr := r.flags&wire.TCPFlagECE != 0, r.flags&wire.TCPFlagCWR != 0; ece != want || cwr {
						t.Errorf("SYN-ACK flags %v, want ECE %v and no CWR", r.flags, want)
					}
				}
				if synAcks < 2 {
					t.Fatalf("%d SYN-ACKs on a's link: not a simultaneous open", synAcks)
				}
				for _, ep := range []*endpoint{ca, cb} {
					if got := tcpInfoOf(t, ep).Options&TCPIOptECN != 0; got != want {
						t.Errorf("ECN %v, want %v", got, want)
					}
				}
			})
		})
	}
}
