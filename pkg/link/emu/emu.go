// Package emu is an emulated Ethernet: an in-memory network of ports joined
// by a learning switch, each port a link.Endpoint with netem-like
// impairments (loss, duplication, corruption, delay and jitter, reordering,
// a rate limit with a bounded queue). It needs no kernel device, and all
// its timing goes through the time package, so whole networks of stacks run
// under testing/synctest in fake time.
//
// A frame written to a port is copied, impaired by the port's Out
// impairments, switched, impaired by each receiving port's In impairments,
// and queued for that port's delivery goroutine, which hands frames to the
// dispatcher one at a time in order of arrival.
//
// The switch learns the source MAC of every frame per port, forwards known
// unicast to that one port (dropping it if that is the port it came from),
// and floods broadcast, multicast and unknown unicast to every other port,
// as an IEEE 802.1D bridge does; entries not refreshed for the ageing time
// (default 300 s, Linux's bridge default) are forgotten.
//
// Under testing/synctest, all ports of one network must be created in the
// same bubble (their queues and timers belong to it).
//
// Determinism: each port draws from two PCG streams (Out and In) derived
// from the network seed and the port index, so a given seed, configuration
// and order of frames gives the same drops, copies and delays every run.
//
// Locks: a Port's mu is held shared for the whole of its WritePackets (so
// Close waits for writers) and exclusively by Close. Network.mu and each
// shaper's mu are leaves: never held together, never held while a frame is
// passed on to the next stage, and no lock at all is held while a frame is
// handed to a dispatcher.
package emu

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Defaults.
const (
	DefaultMTU      = 1500
	DefaultQueueLen = 1000
	DefaultAgeing   = 300 * time.Second
	// MaxMTU bounds PortConfig.MTU: a frame must fit an IPv4 total length.
	MaxMTU = 65535
)

// Network is one broadcast domain: a learning switch and its ports.
type Network struct {
	name string
	seed uint64

	mu     sync.Mutex
	ports  map[*Port]struct{}
	fdb    map[wire.MAC]fdbEntry
	ageing time.Duration
	next   uint64 // index of the next port
}

type fdbEntry struct {
	port *Port
	seen time.Time
}

// NewNetwork makes an empty network whose ports' random streams derive
// from seed.
func NewNetwork(seed uint64) *Network {
	return newNetwork("", seed)
}

func newNetwork(name string, seed uint64) *Network {
	return &Network{
		name:   name,
		seed:   seed,
		ports:  make(map[*Port]struct{}),
		fdb:    make(map[wire.MAC]fdbEntry),
		ageing: DefaultAgeing,
	}
}

// Seed returns the network's seed.
func (n *Network) Seed() uint64 { return n.seed }

// SetAgeing sets how long the switch remembers a MAC not seen since; zero
// or less means forever.
func (n *Network) SetAgeing(d time.Duration) {
	n.mu.Lock()
	n.ageing = d
	n.mu.Unlock()
}

// Close closes every port of the network.
func (n *Network) Close() error {
	n.mu.Lock()
	ports := make([]*Port, 0, len(n.ports))
	for p := range n.ports {
		ports = append(ports, p)
	}
	n.mu.Unlock()
	for _, p := range ports {
		p.Close()
	}
	return nil
}

// Direction selects which way impairments apply.
type Direction int

const (
	// Out impairs frames the port's owner writes, before the switch.
	Out Direction = iota
	// In impairs frames the switch delivers to the port.
	In
)

// PortConfig configures a port; zero fields take the defaults.
type PortConfig struct {
	// MAC is the port's address; zero derives one from the network seed and
	// port index (unicast, locally administered).
	MAC wire.MAC
	// MTU is the largest payload; frames written that do not fit are
	// dropped, counted and refused with link.ErrFrameTooBig, and frames
	// switched to a port they do not fit are dropped as RxErrors.
	MTU int
	// Out and In are the impairments of each direction.
	Out, In Impairments
	// QueueLen bounds the frames waiting for the delivery goroutine; more
	// are dropped as RxDropped.
	QueueLen int
}

// Port is one NIC on a Network. It implements link.Endpoint and
// link.Counter.
type Port struct {
	link.Base // "emu:NETWORK#INDEX", MTU, MAC, counters (Stats adds the impairments' drops)

	net   *Network
	index uint64

	out, in *shaper
	mtuDrop atomic.Uint64

	rxq  chan []byte
	done chan struct{}
	wg   sync.WaitGroup

	// mu guards closed: WritePackets holds it shared, Close exclusively.
	mu     sync.RWMutex
	closed bool
}

// splitmix64 spreads a counter into well-mixed bits (Steele, Lea and
// Flood's SplitMix64 finaliser).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// NewPort adds a port to the network and starts its delivery goroutine.
// Impairment values out of range are clamped (see Impairments.Validate).
func (n *Network) NewPort(cfg PortConfig) *Port {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	cfg.MTU = min(cfg.MTU, MaxMTU)
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	n.mu.Lock()
	idx := n.next
	n.next++
	mac := cfg.MAC
	for salt := uint64(0); mac.IsZero(); salt++ {
		v := splitmix64(n.seed ^ splitmix64(idx<<8|salt))
		for i := range mac {
			mac[i] = byte(v >> (8 * i))
		}
		mac[0] = mac[0]&^1 | 2 // unicast, locally administered
		if n.macInUse(mac) {
			mac = wire.MAC{}
		}
	}
	p := &Port{
		net:   n,
		index: idx,
		rxq:   make(chan []byte, cfg.QueueLen),
		done:  make(chan struct{}),
	}
	p.Init(fmt.Sprintf("emu:%s#%d", n.name, idx), cfg.MTU, mac, 0)
	p.out = newShaper(cfg.Out, rand.NewPCG(n.seed, splitmix64(idx<<1)), p.toSwitch)
	p.in = newShaper(cfg.In, rand.NewPCG(n.seed, splitmix64(idx<<1|1)), p.enqueue)
	n.ports[p] = struct{}{}
	n.mu.Unlock()
	p.wg.Add(1)
	go p.deliver()
	return p
}

// macInUse reports whether a port already has mac; n.mu is held.
func (n *Network) macInUse(mac wire.MAC) bool {
	for p := range n.ports {
		if p.MAC() == mac {
			return true
		}
	}
	return false
}

// forward switches frame (owned by the call) from port src.
func (n *Network) forward(src *Port, frame []byte) {
	if len(frame) < 14 {
		return
	}
	var dst, smac wire.MAC
	copy(dst[:], frame[0:6])
	copy(smac[:], frame[6:12])
	now := time.Now()

	n.mu.Lock()
	if _, ok := n.ports[src]; !ok {
		n.mu.Unlock()
		return // src closed while its frame was delayed
	}
	if !smac.IsMulticast() && !smac.IsZero() {
		n.fdb[smac] = fdbEntry{port: src, seen: now}
	}
	var one *Port
	if !dst.IsMulticast() {
		if e, ok := n.fdb[dst]; ok {
			if n.ageing > 0 && now.Sub(e.seen) > n.ageing {
				delete(n.fdb, dst)
			} else {
				one = e.port
			}
		}
	}
	var targets []*Port
	if one != nil {
		if one != src {
			targets = []*Port{one}
		}
	} else {
		targets = make([]*Port, 0, len(n.ports))
		for p := range n.ports {
			if p != src {
				targets = append(targets, p)
			}
		}
		// Map order is random; flood in port order so runs repeat.
		sortPorts(targets)
	}
	n.mu.Unlock()

	for i, p := range targets {
		f := frame
		if i < len(targets)-1 {
			f = append([]byte(nil), frame...)
		}
		p.in.send(f)
	}
}

func sortPorts(ps []*Port) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].index < ps[j-1].index; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// detach removes p and its learned addresses from the switch.
func (n *Network) detach(p *Port) {
	n.mu.Lock()
	delete(n.ports, p)
	for mac, e := range n.fdb {
		if e.port == p {
			delete(n.fdb, mac)
		}
	}
	n.mu.Unlock()
}

func (p *Port) toSwitch(frame []byte) { p.net.forward(p, frame) }

// enqueue queues a frame that survived the In impairments for delivery.
func (p *Port) enqueue(frame []byte) {
	if !link.FrameFits(frame, p.MTU()) {
		p.Counters.RxErrors.Add(1)
		return
	}
	select {
	case <-p.done:
	case p.rxq <- frame:
	default:
		p.Counters.RxDropped.Add(1)
	}
}

func (p *Port) deliver() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case f := <-p.rxq:
			p.Deliver(f)
		}
	}
}

// Index is the port's number on its network, from 0 in creation order.
func (p *Port) Index() int { return int(p.index) }

// Stats returns the frame counters. Frames lost, tail-dropped or refused
// for size on the way out count as TxDropped; on the way in as RxDropped.
func (p *Port) Stats() link.StatsSnapshot {
	s := p.Counters.Snapshot() // refused writes are in TxDropped already
	o, i := p.out.counters(), p.in.counters()
	s.TxDropped += o.Lost + o.QueueDropped
	s.RxDropped += i.Lost + i.QueueDropped
	return s
}

// ImpairStats returns what each direction's impairments did.
func (p *Port) ImpairStats(d Direction) ImpairCounters {
	if d == In {
		return p.in.counters()
	}
	return p.out.counters()
}

// MTUDropped counts frames written that did not fit the MTU.
func (p *Port) MTUDropped() uint64 { return p.mtuDrop.Load() }

// SetImpairments changes one direction's impairments from now on; frames
// already delayed keep their instants. Out-of-range values are clamped.
func (p *Port) SetImpairments(d Direction, im Impairments) {
	if d == In {
		p.in.set(im)
	} else {
		p.out.set(im)
	}
}

// Impairments returns one direction's current impairments.
func (p *Port) Impairments(d Direction) Impairments {
	if d == In {
		return p.in.get()
	}
	return p.out.get()
}

// WritePackets copies each frame into the network.
func (p *Port) WritePackets(frames [][]byte) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, link.ErrClosed
	}
	for i, f := range frames {
		if err := p.CheckWrite(f); err != nil {
			if err == link.ErrFrameTooBig {
				p.mtuDrop.Add(1)
			}
			return i, err
		}
		p.CountSent(len(f))
		p.out.send(append([]byte(nil), f...))
	}
	return len(frames), nil
}

// Close detaches the port, discards frames it still holds and waits for
// its delivery goroutine to end. It must not be called from DeliverFrame.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.net.detach(p)
	p.out.close()
	p.in.close()
	close(p.done)
	p.wg.Wait()
	return nil
}

// The process-wide registry of named networks, for link specs such as
// "emu:lab": every spec naming the same network joins the same switch.
var registry = struct {
	sync.Mutex
	nets map[string]*Network
}{nets: make(map[string]*Network)}

// DefaultSeed is the seed of a named network created by Named.
const DefaultSeed = 1

// Named returns the network called name, creating it with DefaultSeed on
// first use.
func Named(name string) *Network {
	n, _ := named(name, DefaultSeed, false)
	return n
}

// NamedSeed returns the network called name, creating it with seed on first
// use; it fails if the network exists with another seed.
func NamedSeed(name string, seed uint64) (*Network, error) {
	return named(name, seed, true)
}

func named(name string, seed uint64, strict bool) (*Network, error) {
	registry.Lock()
	defer registry.Unlock()
	if n, ok := registry.nets[name]; ok {
		if strict && n.seed != seed {
			return nil, fmt.Errorf("emu: network %q already exists with seed %d, not %d", name, n.seed, seed)
		}
		return n, nil
	}
	n := newNetwork(name, seed)
	registry.nets[name] = n
	return n, nil
}
