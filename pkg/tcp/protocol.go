package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/ports"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/tcp/isn"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Stats are the Linux "Tcp:" counters of /proc/net/snmp, for both IP
// versions together as Linux keeps them.
type Stats struct {
	ActiveOpens  atomic.Uint64 // SYN_SENT entered from CLOSED (connect)
	PassiveOpens atomic.Uint64 // SYN_RECV entered from LISTEN
	AttemptFails atomic.Uint64 // SYN_SENT/SYN_RECV to CLOSED, or SYN_RECV back to LISTEN
	EstabResets  atomic.Uint64 // ESTABLISHED/CLOSE_WAIT to CLOSED by a reset
	CurrEstab    atomic.Int64  // connections in ESTABLISHED or CLOSE_WAIT now
	InSegs       atomic.Uint64
	OutSegs      atomic.Uint64 // excluding retransmissions, as Linux
	RetransSegs  atomic.Uint64
	InErrs       atomic.Uint64 // bad header or checksum
	OutRsts      atomic.Uint64
	InCsumErrors atomic.Uint64
	// TimeWaitOverflow counts connections that skipped TIME_WAIT because
	// MaxTimeWait were in it (Linux TcpExt TCPTimeWaitOverflow).
	TimeWaitOverflow atomic.Uint64
	// ECNReductions counts congestion windows reduced for an ACK with
	// ECE (RFC 3168 §6.1.2; no Linux counter matches).
	ECNReductions atomic.Uint64

	// Memory accounting (Protocol.MemLimit; Linux TcpExt counters).
	// MemoryPressures counts entries into memory pressure
	// (TCPMemoryPressures); RcvQDrop in-order data dropped because the
	// receive buffer could not get memory (TCPRcvQDrop); OFODrop
	// out-of-order data dropped for the same reason (TCPOFODrop);
	// PruneCalled the times a connection was asked to give receive memory
	// back (PruneCalled), and OfoPruned those that dropped out-of-order
	// data for it (OfoPruned).
	MemoryPressures, RcvQDrop, OFODrop, PruneCalled, OfoPruned atomic.Uint64
}

// Defaults of the Protocol's tunables (Linux's).
const (
	DefaultTimeWait   = 60 * time.Second // TCP_TIMEWAIT_LEN: 2·MSL
	DefaultSynRetries = 6                // net.ipv4.tcp_syn_retries
	DefaultSynAckRetr = 5                // net.ipv4.tcp_synack_retries
	DefaultRetries2   = 15               // net.ipv4.tcp_retries2
	DefaultFinTimeout = 60 * time.Second // net.ipv4.tcp_fin_timeout (orphaned FIN_WAIT_2)
	SoMaxConn         = 4096             // net.core.somaxconn
	DefaultMaxTW      = 262144           // net.ipv4.tcp_max_tw_buckets
)

// Protocol is TCP on one stack.
type Protocol struct {
	s       *stack.Stack
	ports   *ports.Manager
	stats   Stats
	isnGen  *isn.Generator
	tsGen   *isn.Generator
	cookies *isn.Cookies

	// Tunables; set them before use.
	TimeWait   time.Duration // how long TIME_WAIT lasts (2·MSL)
	SynRetries int           // SYN retransmissions before ETIMEDOUT
	SynAckRetr int           // SYN-ACK retransmissions before a SYN_RECV child is dropped
	Retries2   int           // data retransmissions before ETIMEDOUT
	FinTimeout time.Duration // an orphaned FIN_WAIT_2's lifetime
	// The RFC 7323 and RFC 2018 options are offered and accepted unless
	// turned off (net.ipv4.tcp_sack, tcp_timestamps, tcp_window_scaling).
	DisableSACK, DisableTimestamps, DisableWindowScaling bool
	// DisableSynCookies drops SYNs when a listener's SYN queue is full
	// instead of answering with a SYN cookie (net.ipv4.tcp_syncookies).
	DisableSynCookies bool
	// ECN is net.ipv4.tcp_ecn (RFC 3168; ecn.go): ECNOff, ECNOn (ask on
	// outgoing connections and accept on incoming ones) or ECNAccept
	// (accept only; the default, as Linux).
	ECN int
	// MaxTimeWait caps the connections in TIME_WAIT; past it a closing
	// connection goes straight to CLOSED (net.ipv4.tcp_max_tw_buckets;
	// Linux logs "TCP: time wait bucket table overflow").
	MaxTimeWait int
	// Congestion is the congestion control of new connections, one of
	// cc.Available (net.ipv4.tcp_congestion_control).
	Congestion string
	// MemLimit caps the bytes all connections' send and receive buffers
	// hold together (net.ipv4.tcp_mem[2], in bytes; 0: DefaultMemLimit).
	// Past it a buffer does not grow beyond its guaranteed minimum: new
	// out-of-order data is dropped and the ring pruned of it first, then
	// in-order data that needs memory (the peer retransmits; the window
	// we offer shrinks to the memory held), and writes wait for their own
	// ACKs to make room. MemPressure (tcp_mem[1]; 0: 3/4 of MemLimit) is
	// where memory pressure starts, until the total falls below 3/4 of it
	// (tcp_mem[0]): then auto-tuning grows no buffer and rings that empty
	// are freed at once instead of after a second idle. See mem.go.
	MemLimit, MemPressure int64

	timeWaits   atomic.Int64 // connections in TIME_WAIT now
	mem         atomic.Int64 // bytes charged by all rings (mem.go)
	memPressure atomic.Bool

	mu        sync.RWMutex
	conns     map[fourTuple]*endpoint
	listeners map[uint16][]*endpoint

	epsMu sync.Mutex
	eps   map[*endpoint]struct{}
}

// fourTuple keys the connection table; addresses are unmapped.
type fourTuple struct {
	local, remote netip.AddrPort
}

// New creates TCP on s and registers it as s's handler for protocol 6.
func New(s *stack.Stack) *Protocol {
	p := &Protocol{
		s: s, ports: ports.NewManager(),
		TimeWait: DefaultTimeWait, SynRetries: DefaultSynRetries, SynAckRetr: DefaultSynAckRetr,
		Retries2: DefaultRetries2, FinTimeout: DefaultFinTimeout,
		MaxTimeWait: DefaultMaxTW,
		ECN:         DefaultECN,
		Congestion:  DefaultCongestion,
		conns:       make(map[fourTuple]*endpoint),
		listeners:   make(map[uint16][]*endpoint),
		eps:         make(map[*endpoint]struct{}),
	}
	var seed [16]byte
	rand.Read(seed[:])
	p.isnGen = isn.NewGenerator(binary.LittleEndian.Uint64(seed[:8]))
	p.tsGen = isn.NewGenerator(binary.LittleEndian.Uint64(seed[8:]))
	p.cookies = isn.NewCookies(0)
	s.RegisterTransport(wire.IPProtoTCP, p)
	return p
}

// Stats returns the live counters.
func (p *Protocol) Stats() *Stats { return &p.stats }

// Ports is the port manager (its range is net.ipv4.ip_local_port_range).
func (p *Protocol) Ports() *ports.Manager { return p.ports }

// PrivilegedPorts is Linux's net.ipv4.ip_unprivileged_port_start.
const PrivilegedPorts = 1024

// NewEndpoint opens a socket of the family for the stack's own process
// (privileged). Clients' sockets go through Register's constructor.
func (p *Protocol) NewEndpoint(family int) (transport.Endpoint, error) {
	return p.newEndpoint(family, transport.Cred{Privileged: true})
}

// Register makes p serve socket(AF_INET or AF_INET6, SOCK_STREAM, 0 or
// IPPROTO_TCP).
func (p *Protocol) Register(r *transport.Registry) {
	c := func(req transport.NewRequest) (transport.Endpoint, error) {
		return p.newEndpoint(req.Family, req.Cred)
	}
	for _, f := range []int{syscall.AF_INET, syscall.AF_INET6} {
		r.Register(f, syscall.SOCK_STREAM, 0, c)
		r.Register(f, syscall.SOCK_STREAM, syscall.IPPROTO_TCP, c)
	}
}

// Endpoints describes every endpoint with a port, including connections
// the application has closed that still linger (FIN_WAIT, TIME_WAIT), as
// /proc/net/tcp lists them.
func (p *Protocol) Endpoints() []transport.Info {
	p.epsMu.Lock()
	list := make([]*endpoint, 0, len(p.eps))
	for e := range p.eps {
		list = append(list, e)
	}
	p.epsMu.Unlock()
	out := make([]transport.Info, 0, len(list))
	for _, e := range list {
		if in := e.Info(); in.Local.Port() != 0 {
			out = append(out, in)
		}
	}
	return out
}

func (p *Protocol) track(e *endpoint) {
	p.epsMu.Lock()
	p.eps[e] = struct{}{}
	p.epsMu.Unlock()
}

func (p *Protocol) untrack(e *endpoint) {
	p.epsMu.Lock()
	delete(p.eps, e)
	p.epsMu.Unlock()
}

// isn is the initial sequence number of a connection (RFC 6528).
func (p *Protocol) isn(local, remote netip.AddrPort, now time.Time) seqnum.Value {
	return p.isnGen.ISN(local, remote, now)
}

// tsOffset is a connection's timestamp offset (RFC 7323 §5.4), from a
// generator keyed apart from the ISNs'.
func (p *Protocol) tsOffset(local, remote netip.AddrPort, now time.Time) uint32 {
	return uint32(p.tsGen.ISN(local, remote, now))
}

// lookup finds the connection of a segment, or else the listener for its
// destination: bound to the address first, then the wildcard (an IPv4
// segment reaches a dual-stack AF_INET6 wildcard unless IPV6_V6ONLY).
func (p *Protocol) lookup(local, remote netip.AddrPort, nic int) *endpoint {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e := p.conns[fourTuple{local, remote}]; e != nil {
		return e
	}
	var wild *endpoint
	v4 := local.Addr().Is4()
	for _, l := range p.listeners[local.Port()] {
		if d := l.boundDevice(); d != 0 && d != nic {
			continue
		}
		a := l.listenAddr
		switch {
		case a == local.Addr():
			return l
		case a.IsUnspecified():
			if a.Is4() != v4 && !(a.Is6() && v4 && !l.listenV6Only) {
				continue
			}
			// An AF_INET wildcard beats a dual-stack one for IPv4.
			if wild == nil || (a.Is4() && !wild.listenAddr.Is4()) {
				wild = l
			}
		}
	}
	return wild
}

// HandlePacket receives one TCP segment (stack.TransportHandler). It
// always returns true: TCP answers a segment for no socket with a reset,
// not with ICMP port unreachable.
func (p *Protocol) HandlePacket(pi *stack.PacketInfo, payload []byte) bool {
	t, err := wire.ParseTCP(payload)
	if err != nil {
		p.stats.InErrs.Add(1)
		return true
	}
	if !t.ChecksumValid(pi.Src, pi.Dst) {
		p.stats.InCsumErrors.Add(1)
		p.stats.InErrs.Add(1)
		return true
	}
	p.stats.InSegs.Add(1)
	if pi.Broadcast || pi.Dst.IsMulticast() {
		return true // RFC 1122 §4.2.3.10: TCP is unicast only
	}
	seg := parseSegment(t)
	seg.ecn = pi.TOS & wire.ECNMask
	local := netip.AddrPortFrom(pi.Dst.Unmap(), t.DstPort())
	remote := netip.AddrPortFrom(pi.Src.Unmap(), t.SrcPort())
	nic := 0
	if pi.NIC != nil {
		nic = pi.NIC.Index()
	}
	e := p.lookup(local, remote, nic)
	if e == nil {
		p.respondReset(&seg, local, remote, nic)
		return true
	}
	e.handleSegment(&seg, local, remote, nic)
	return true
}

// respondReset answers a segment that belongs to no connection (RFC 9293
// §3.10.7.1): a RST is never answered; an ACK gets <SEQ=SEG.ACK><RST>;
// anything else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>.
func (p *Protocol) respondReset(seg *segment, local, remote netip.AddrPort, nic int) {
	if seg.flags&wire.TCPFlagRST != 0 {
		return
	}
	f := wire.TCPFields{SrcPort: local.Port(), DstPort: remote.Port(), Flags: wire.TCPFlagRST}
	if seg.flags&wire.TCPFlagACK != 0 {
		f.Seq = uint32(seg.ack)
	} else {
		f.Ack = uint32(seg.seq.Add(seg.segLen()))
		f.Flags |= wire.TCPFlagACK
	}
	p.sendControl(nic, local, remote, &f)
}

// sendControl sends a segment that belongs to no endpoint's send
// sequence (resets for unknown connections, TIME_WAIT answers).
func (p *Protocol) sendControl(nic int, local, remote netip.AddrPort, f *wire.TCPFields) {
	r, err := p.s.FindRoute(nic, local.Addr(), remote.Addr())
	if err != nil {
		return
	}
	pkt := stack.NewPacket(f.Len())
	b := pkt.Bytes()
	f.Encode(b)
	f.SetChecksum(b, r.Src, r.Dst)
	if f.Flags&wire.TCPFlagRST != 0 {
		p.stats.OutRsts.Add(1)
	}
	p.stats.OutSegs.Add(1)
	p.s.WritePacket(&r, pkt, stack.WriteOptions{Proto: wire.IPProtoTCP})
}

// HandleError delivers an ICMP error quoting a segment we sent
// (stack.TransportHandler): path MTU updates, and hard errors that end a
// connection attempt (RFC 1122 §4.2.3.9, RFC 5927 checks on the quoted
// sequence number).
func (p *Protocol) HandleError(ie *stack.ICMPError) {
	if len(ie.Payload) < 8 {
		return
	}
	local := netip.AddrPortFrom(ie.Src.Unmap(), binary.BigEndian.Uint16(ie.Payload[0:2]))
	remote := netip.AddrPortFrom(ie.Dst.Unmap(), binary.BigEndian.Uint16(ie.Payload[2:4]))
	seq := seqnum.Value(binary.BigEndian.Uint32(ie.Payload[4:8]))
	p.mu.RLock()
	e := p.conns[fourTuple{local, remote}]
	p.mu.RUnlock()
	if e == nil {
		return
	}
	e.icmpError(ie, seq)
}
