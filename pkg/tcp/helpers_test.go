package tcp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Test fixtures: stacks with TCP on an emulated network, endpoints driven
// through their non-blocking calls and their waiter queues (in a
// testing/synctest bubble, so timers run in fake time).

type host struct {
	nextPort uint16
	s        *stack.Stack
	nic      *stack.NIC
	tcp      *Protocol
	port     *emu.Port
}

func newNet(t testing.TB, seed uint64) *emu.Network {
	t.Helper()
	nw := emu.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	return nw
}

func newHost(t testing.TB, nw *emu.Network, cfg emu.PortConfig, addrs ...string) *host {
	t.Helper()
	return newHostVia(t, nw, cfg, func(p *emu.Port) link.Endpoint { return p }, addrs...)
}

// newHostVia is newHost whose NIC is on wrap(port): a recorder, say.
func newHostVia(t testing.TB, nw *emu.Network, cfg emu.PortConfig, wrap func(*emu.Port) link.Endpoint, addrs ...string) *host {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	port := nw.NewPort(cfg)
	n, err := s.AddNIC(wrap(port), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &host{s: s, nic: n, tcp: New(s), port: port}
}

var (
	addrA4 = netip.MustParseAddr("10.0.0.1")
	addrB4 = netip.MustParseAddr("10.0.0.2")
	addrA6 = netip.MustParseAddr("2001:db8::1")
	addrB6 = netip.MustParseAddr("2001:db8::2")
)

// pair returns two hosts on one network with the impairments on each
// port's outgoing direction.
func pairWith(t testing.TB, seed uint64, im emu.Impairments) (a, b *host) {
	t.Helper()
	nw := newNet(t, seed)
	cfg := emu.PortConfig{Out: im}
	return newHost(t, nw, cfg, "10.0.0.1/24", "2001:db8::1/64"), newHost(t, nw, cfg, "10.0.0.2/24", "2001:db8::2/64")
}

func pair(t testing.TB) (a, b *host) { return pairWith(t, 7, emu.Impairments{}) }

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func (h *host) open(t testing.TB, family int) *endpoint {
	t.Helper()
	ep, err := h.tcp.NewEndpoint(family)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep.(*endpoint)
}

func (h *host) listen(t testing.TB, family int, addr netip.AddrPort, backlog int) *endpoint {
	t.Helper()
	ep := h.open(t, family)
	if err := ep.Bind(addr); err != nil {
		t.Fatalf("bind %v: %v", addr, err)
	}
	if err := ep.Listen(backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ep
}

// wait blocks until ep reports one of mask or d passes.
func wait(ep transport.Endpoint, mask waiter.EventMask, d time.Duration) bool {
	e, ch := waiter.NewChannelEntry(mask)
	ep.Queue().Register(e)
	defer ep.Queue().Unregister(e)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if ep.Readiness(mask)&waiter.Normalize(mask) != 0 {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return ep.Readiness(mask)&waiter.Normalize(mask) != 0
		}
	}
}

// connect starts a connect and waits for it to finish; it returns
// SO_ERROR (nil when established).
func connect(t testing.TB, ep transport.Endpoint, to netip.AddrPort, d time.Duration) error {
	t.Helper()
	err := ep.Connect(to)
	if !errors.Is(err, syscall.EINPROGRESS) {
		return err
	}
	if !wait(ep, waiter.EventOut, d) {
		return fmt.Errorf("connect to %v: no result within %v", to, d)
	}
	v, _ := ep.GetSockOpt(syscall.SOL_SOCKET, syscall.SO_ERROR)
	if n := v.(int); n != 0 {
		return syscall.Errno(n)
	}
	return nil
}

func mustConnect(t testing.TB, ep transport.Endpoint, to netip.AddrPort) {
	t.Helper()
	if err := connect(t, ep, to, 10*time.Second); err != nil {
		t.Fatalf("connect %v: %v", to, err)
	}
}

// accept waits up to d for a connection.
func accept(t testing.TB, l transport.Endpoint, d time.Duration) *endpoint {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, _, err := l.Accept()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c.(*endpoint)
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("accept: %v", err)
		}
		if !wait(l, waiter.EventIn, time.Until(deadline)) {
			t.Fatalf("accept: nothing within %v", d)
		}
	}
}

// connPair connects a client on a to a listener on b and returns both
// ends.
func connPair(t testing.TB, a, b *host, v6 bool) (client, server *endpoint) {
	t.Helper()
	fam, dst := syscall.AF_INET, addrB4
	if v6 {
		fam, dst = syscall.AF_INET6, addrB6
	}
	port := 80 + b.nextPort
	b.nextPort++
	l := b.listen(t, fam, ap(netip.Addr{}, port), 16)
	client = a.open(t, fam)
	mustConnect(t, client, ap(dst, port))
	server = accept(t, l, 10*time.Second)
	return client, server
}

// writeAll writes data, waiting for room, and returns the first error.
func writeAll(ep transport.Endpoint, data []byte, d time.Duration) error {
	deadline := time.Now().Add(d)
	for len(data) > 0 {
		n, err := ep.Write([][]byte{data}, transport.WriteOptions{})
		data = data[n:]
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return err
		}
		if !wait(ep, waiter.EventOut, time.Until(deadline)) {
			return fmt.Errorf("write: stuck with %d bytes left", len(data))
		}
	}
	return nil
}

// readAll reads until EOF or an error; it returns what it read.
func readAll(ep transport.Endpoint, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for {
		res, err := ep.Read([][]byte{buf}, transport.ReadOptions{})
		if err == nil {
			if res.N == 0 {
				return out.Bytes(), nil
			}
			out.Write(buf[:res.N])
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return out.Bytes(), err
		}
		if !wait(ep, waiter.EventIn, time.Until(deadline)) {
			return out.Bytes(), fmt.Errorf("read: no EOF within %v (%d bytes)", d, out.Len())
		}
	}
}

// readN reads exactly n bytes.
func readN(ep transport.Endpoint, n int, d time.Duration) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for len(out) < n {
		res, err := ep.Read([][]byte{buf[:min(len(buf), n-len(out))]}, transport.ReadOptions{})
		if err == nil {
			if res.N == 0 {
				return out, fmt.Errorf("EOF after %d of %d bytes", len(out), n)
			}
			out = append(out, buf[:res.N]...)
			continue
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return out, err
		}
		if !wait(ep, waiter.EventIn, time.Until(deadline)) {
			return out, fmt.Errorf("read: %d of %d bytes within %v", len(out), n, d)
		}
	}
	return out, nil
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0xabcdef))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// segRecord is a TCP segment seen on a host's link.
type segRecord struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    wire.TCPFlags
	wnd      uint16
	opts     wire.TCPOptions
	n        int
	at       time.Time
}

func parseFrame(f []byte) (segRecord, bool) {
	eth, err := wire.ParseEthernet(f)
	if err != nil {
		return segRecord{}, false
	}
	var src, dst netip.Addr
	var payload []byte
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload())
		if err != nil || ip.Protocol() != wire.IPProtoTCP {
			return segRecord{}, false
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	case wire.EtherTypeIPv6:
		ip, err := wire.ParseIPv6(eth.Payload())
		if err != nil || ip.NextHeader() != wire.IPProtoTCP {
			return segRecord{}, false
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	default:
		return segRecord{}, false
	}
	t, err := wire.ParseTCP(payload)
	if err != nil {
		return segRecord{}, false
	}
	o, _ := t.Options()
	return segRecord{src: ap(src, t.SrcPort()), dst: ap(dst, t.DstPort()), seq: t.Seq(), ack: t.Ack(),
		flags: t.Flags(), wnd: t.Window(), opts: o, n: len(t.Payload())}, true
}

// recorder wraps a host's link: it records the TCP segments the host
// sends and receives, and may drop sent frames (drop returns true).
type recorder struct {
	link.Endpoint
	mu   sync.Mutex
	out  []segRecord
	in   []segRecord
	drop func(segRecord) bool
}

func (r *recorder) Attach(d link.Dispatcher) {
	if d == nil {
		r.Endpoint.Attach(nil)
		return
	}
	r.Endpoint.Attach(link.DispatcherFunc(func(f []byte) {
		if s, ok := parseFrame(f); ok {
			s.at = time.Now()
			r.mu.Lock()
			r.in = append(r.in, s)
			r.mu.Unlock()
		}
		d.DeliverFrame(f)
	}))
}

func (r *recorder) WritePackets(frames [][]byte) (int, error) {
	keep := frames[:0:0]
	r.mu.Lock()
	for _, f := range frames {
		s, ok := parseFrame(f)
		s.at = time.Now()
		if ok && r.drop != nil && r.drop(s) {
			continue
		}
		if ok {
			r.out = append(r.out, s)
		}
		keep = append(keep, f)
	}
	r.mu.Unlock()
	if len(keep) == 0 {
		return len(frames), nil
	}
	if _, err := r.Endpoint.WritePackets(keep); err != nil {
		return 0, err
	}
	return len(frames), nil
}

func (r *recorder) setDrop(f func(segRecord) bool) {
	r.mu.Lock()
	r.drop = f
	r.mu.Unlock()
}

func (r *recorder) sent() []segRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]segRecord(nil), r.out...)
}

func (r *recorder) received() []segRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]segRecord(nil), r.in...)
}

// newRecHost is newHost with a recorder on its link.
func newRecHost(t testing.TB, nw *emu.Network, cfg emu.PortConfig, addrs ...string) (*host, *recorder) {
	t.Helper()
	var rec *recorder
	h := newHostVia(t, nw, cfg, func(p *emu.Port) link.Endpoint { rec = &recorder{Endpoint: p}; return rec }, addrs...)
	return h, rec
}

// recPair is pair with a recorder on a's link.
func recPair(t testing.TB) (a, b *host, rec *recorder) {
	t.Helper()
	nw := newNet(t, 7)
	a, rec = newRecHost(t, nw, emu.PortConfig{}, "10.0.0.1/24", "2001:db8::1/64")
	b = newHost(t, nw, emu.PortConfig{}, "10.0.0.2/24", "2001:db8::2/64")
	return a, b, rec
}

// dump describes an endpoint's sequence state for failure messages.
func dump(e *endpoint) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	cw := -1
	if e.cc != nil {
		cw = e.cc.Cwnd()
	}
	return fmt.Sprintf("%v una=%d nxt=%d max=%d snd.n=%d fin=%v/%v sndWnd=%d cwnd=%d rec=%v dup=%d rto=%v armed=%v retries=%d | rcvNxt=%d adv=%d rcv.n=%d ooo=%v finRcvd=%v mss=%d",
		e.state, e.sndUna-e.iss, e.sndNxt-e.iss, e.sndMax-e.iss, e.snd.n, e.finQueued, e.finAcked, e.sndWnd, cw, e.inRecovery, e.dupAcks,
		e.rtt.RTO(), e.rtoT.armed(), e.retries, e.rcvNxt-e.irs, e.rcvAdv-e.irs, e.rcv.n, e.ooo.Ranges(), e.finRcvd, e.mss)
}

// injector sends hand-built segments onto the network from a port of its
// own, as an off-path attacker or a confused peer would.
type injector struct {
	port *emu.Port
}

func newInjector(t testing.TB, nw *emu.Network) *injector {
	p := nw.NewPort(emu.PortConfig{})
	p.Attach(link.DispatcherFunc(func([]byte) {}))
	t.Cleanup(func() { p.Close() })
	return &injector{port: p}
}

// send delivers a TCP segment from src to dst, in a frame to dstMAC.
func (in *injector) send(t testing.TB, dstMAC wire.MAC, src, dst netip.AddrPort, f wire.TCPFields, payload []byte) {
	t.Helper()
	f.SrcPort, f.DstPort, f.PayloadLen = src.Port(), dst.Port(), len(payload)
	seg := make([]byte, f.Len()+len(payload))
	f.Encode(seg)
	copy(seg[f.Len():], payload)
	f.SetChecksum(seg, src.Addr(), dst.Addr())
	var ip []byte
	et := wire.EtherTypeIPv4
	if src.Addr().Is4() {
		h := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoTCP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: len(seg)}
		ip = make([]byte, h.Len()+len(seg))
		h.Encode(ip)
		copy(ip[h.Len():], seg)
	} else {
		et = wire.EtherTypeIPv6
		h := wire.IPv6Fields{HopLimit: 64, NextHeader: wire.IPProtoTCP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: len(seg)}
		ip = make([]byte, h.Len()+len(seg))
		h.Encode(ip)
		copy(ip[h.Len():], seg)
	}
	e := wire.EthernetFields{Dst: dstMAC, Src: in.port.MAC(), EtherType: et}
	b := make([]byte, e.Len()+len(ip))
	e.Encode(b)
	copy(b[e.Len():], ip)
	if _, err := in.port.WritePackets([][]byte{b}); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns an endpoint's send and receive sequence numbers.
func snapshot(e *endpoint) (sndNxt, rcvNxt uint32, rcvWnd int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return uint32(e.sndMax), uint32(e.rcvNxt), int(e.rcvNxt.Size(e.rcvAdv))
}
