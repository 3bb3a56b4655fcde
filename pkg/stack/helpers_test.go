package stack

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Shared test helpers: stacks on an emulated network.

// newTestNet returns an emulated network closed at the end of the test.
func newTestNet(t testing.TB, seed uint64) *emu.Network {
	t.Helper()
	nw := emu.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	return nw
}

// testHost is a stack with one NIC (eth0) on an emulated network.
type testHost struct {
	s    *Stack
	nic  *NIC
	port *emu.Port
}

// newTestHost makes a stack with one up NIC on nw carrying addrs
// ("10.0.0.1/24", "2001:db8::1/64"). IPv6 DAD is off unless opts ask for
// it through NICOptions (use newTestHostNIC).
func newTestHost(t testing.TB, nw *emu.Network, opts Options, addrs ...string) *testHost {
	t.Helper()
	return newTestHostNIC(t, nw, opts, NICOptions{NoDAD: true, NoAutoconf: true}, emu.PortConfig{}, addrs...)
}

func newTestHostNIC(t testing.TB, nw *emu.Network, opts Options, no NICOptions, pc emu.PortConfig, addrs ...string) *testHost {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	port := nw.NewPort(pc)
	n, err := s.AddNIC(port, no)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := n.AddAddress(Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &testHost{s: s, nic: n, port: port}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Frames on the wire. A frameLog records Ethernet frames; a wirePort is a
// raw port on an emulated switch that records what the switch delivers to
// it and sends hand-built frames (a sniffer and a fake host in one); a
// tapEndpoint records what one NIC receives. Protocol views of a log (ARP
// packets, IGMP/MLD reports, NDP messages) sit beside the tests that use
// them.

// wireFrame is one recorded frame and when it arrived (fake time inside
// a synctest bubble).
type wireFrame struct {
	at  time.Time
	eth wire.Ethernet
}

// frameLog records every well-formed Ethernet frame shown to it.
type frameLog struct {
	mu  sync.Mutex
	got []wireFrame
}

// record keeps f, which it owns from then on (link.Dispatcher contract).
func (l *frameLog) record(f []byte) {
	eth, err := wire.ParseEthernet(f)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.got = append(l.got, wireFrame{at: time.Now(), eth: eth})
	l.mu.Unlock()
}

// reset forgets what was recorded.
func (l *frameLog) reset() {
	l.mu.Lock()
	l.got = nil
	l.mu.Unlock()
}

// all returns what was recorded, in arrival order.
func (l *frameLog) all() []wireFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wireFrame(nil), l.got...)
}

// frames returns the recorded frames of an EtherType.
func (l *frameLog) frames(etherType uint16) []wire.Ethernet {
	var out []wire.Ethernet
	for _, f := range l.all() {
		if f.eth.EtherType() == etherType {
			out = append(out, f.eth)
		}
	}
	return out
}

// take returns and forgets the recorded frames that match (every frame
// when match is nil); the others stay.
func (l *frameLog) take(match func(wireFrame) bool) []wireFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out, rest []wireFrame
	for _, f := range l.got {
		if match == nil || match(f) {
			out = append(out, f)
		} else {
			rest = append(rest, f)
		}
	}
	l.got = rest
	return out
}

// wirePort is a raw port on an emulated network: it records every frame
// the switch delivers to it (broadcasts, floods — all multicast among
// them — and unicast to its MAC) and sends hand-built frames.
type wirePort struct {
	frameLog
	port *emu.Port
	mac  wire.MAC
}

func newWirePort(t testing.TB, nw *emu.Network) *wirePort {
	t.Helper()
	p := &wirePort{port: nw.NewPort(emu.PortConfig{})}
	p.mac = p.port.MAC()
	p.port.Attach(link.DispatcherFunc(p.record))
	t.Cleanup(func() { p.port.Close() })
	return p
}

// send writes frame onto the network from the port.
func (p *wirePort) send(t testing.TB, frame []byte) {
	t.Helper()
	if _, err := p.port.WritePackets([][]byte{frame}); err != nil {
		t.Fatal(err)
	}
}

// tapEndpoint wraps an endpoint and records in log every frame it delivers
// to the stack before the stack sees it: a tap at the NIC, which sees the
// unicast to it that a wirePort on the same switch does not.
type tapEndpoint struct {
	link.Endpoint
	log *frameLog
}

func (e *tapEndpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.Endpoint.Attach(nil)
		return
	}
	e.Endpoint.Attach(link.DispatcherFunc(func(f []byte) {
		// The stack owns f next and only reads it; the log keeps a copy
		// all the same.
		e.log.record(append([]byte(nil), f...))
		d.DeliverFrame(f)
	}))
}
