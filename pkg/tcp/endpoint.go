package tcp

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/ports"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/tcp/cc"
	"github.com/stackbox/stackbox/pkg/tcp/ranges"
	"github.com/stackbox/stackbox/pkg/tcp/rtt"
	"github.com/stackbox/stackbox/pkg/tcp/sack"
	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// State is a connection state (RFC 9293 §3.3.2), numbered as Linux's
// TCP_ESTABLISHED… (what TCP_INFO's tcpi_state reports).
type State uint8

const (
	StateEstablished State = 1 + iota
	StateSynSent
	StateSynRcvd
	StateFinWait1
	StateFinWait2
	StateTimeWait
	StateClosed
	StateCloseWait
	StateLastAck
	StateListen
	StateClosing
)

var stateNames = [...]string{
	StateEstablished: "ESTABLISHED", StateSynSent: "SYN_SENT", StateSynRcvd: "SYN_RECV",
	StateFinWait1: "FIN_WAIT1", StateFinWait2: "FIN_WAIT2", StateTimeWait: "TIME_WAIT",
	StateClosed: "CLOSE", StateCloseWait: "CLOSE_WAIT", StateLastAck: "LAST_ACK",
	StateListen: "LISTEN", StateClosing: "CLOSING",
}

// String is the state as netstat prints it.
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// synchronized reports the states after the handshake (RFC 9293 §3.5).
func (s State) synchronized() bool {
	switch s {
	case StateEstablished, StateFinWait1, StateFinWait2, StateCloseWait, StateClosing, StateLastAck, StateTimeWait:
		return true
	}
	return false
}

// Linux's keep-alive defaults (tcp_keepalive_time, _intvl, _probes).
const (
	DefaultKeepIdle  = 7200 * time.Second
	DefaultKeepIntvl = 75 * time.Second
	DefaultKeepCnt   = 9
	delAckTimeout    = 40 * time.Millisecond // TCP_DELACK_MIN
	maxSynQueue      = 1024                  // per-listener SYN_RECV children (tcp_max_syn_backlog)
)

// outPkt is a segment built under the endpoint's lock, written after it.
type outPkt struct {
	r   stack.Route
	pkt *stack.Packet
	wo  stack.WriteOptions
}

// endpoint is one TCP socket: a connection, a listener, or a socket not
// yet either. Addresses are unmapped inside and presented in the socket's
// family at the API.
type endpoint struct {
	p      *Protocol
	family int
	uid    uint32
	priv   bool
	q      waiter.Queue
	device atomic.Int64 // SO_BINDTODEVICE, read by lookups

	mu         sync.Mutex
	opts       transport.Options
	state      State
	appClosed  bool // Close was called: the endpoint is an orphan
	connected  bool // reached ESTABLISHED once
	done       bool // a connection or an attempt ended (Linux tcp_done: both directions shut)
	local      netip.AddrPort
	remote     netip.AddrPort
	res        *ports.Reservation
	hashed     bool // in Protocol.conns
	userBound  bool // Bind named the port
	route      stack.Route
	routeGen   uint64
	routeValid bool

	// Listener. listenAddr and listenV6Only are fixed while listed (the
	// packet path reads them under Protocol.mu).
	listenAddr   netip.Addr
	listenV6Only bool
	backlog      int
	synQ         int
	acceptQ      []*endpoint
	parent       *endpoint   // the listener, while a child is not yet accepted
	acceptFull   atomic.Bool // len(acceptQ) > backlog, read by children without the listener's lock

	soErr   syscall.Errno
	softErr syscall.Errno // an ICMP error reported if the connection times out
	shutRD  bool
	shutWR  bool

	// Send sequence (RFC 9293 §3.3.1). snd holds the bytes from SND.UNA
	// on (after the SYN): unacknowledged, then unsent.
	iss, sndUna, sndNxt, sndMax seqnum.Value
	sndSml                      seqnum.Value // end of the last segment sent shorter than the MSS (Nagle, Minshall)
	sndWnd, maxSndWnd           int
	sndWl1, sndWl2              seqnum.Value
	snd                         ring
	finQueued                   bool // a FIN follows the data in snd
	finAcked                    bool
	sndShift, rcvShift          uint8
	wsOK, sackOK, tsOK          bool
	peerMSS                     int
	mss                         int // payload bytes per segment we send
	pmtu                        int // path MTU learnt from ICMP (0: the route's)
	tsOffset, tsRecent          uint32
	lastAckSent                 seqnum.Value
	ecnHigh                     seqnum.Value // SND.MAX at the last ECN reduction (ecn.go)
	rtt                         *rtt.Estimator
	rttTiming                   bool
	rttSeq                      seqnum.Value
	rttStart                    time.Time
	retries                     int // consecutive timeouts
	totalRetrans                int
	dupAcks                     int
	ltAcks                      int // duplicate ACKs that allow limited transmit (RFC 3042), at most 2
	ltSent                      int // bytes limited transmit sent beyond cwnd (not FlightSize at the loss)
	inRecovery                  bool
	inLoss                      bool  // SACK loss recovery after an RTO, until SND.UNA reaches recover
	rtoKind                     uint8 // what rtoT is: kindRTO, kindPTO or kindReo (RACK-TLP)
	ecn                         ecnState
	recover                     seqnum.Value
	cc                          cc.Algorithm
	prr                         cc.PRR
	prrBudget                   int
	sb                          sack.Scoreboard // what the peer SACKed (RFC 6675)
	highRxt                     seqnum.Value
	lastSend                    time.Time
	lastEmit                    time.Time // the clock of the latest segment built (see emitAtLocked)
	lastOOWAck                  time.Time // the last rate-limited ACK
	nodelay, cork               bool
	userMSS                     int
	keepIdle, keepIntvl         time.Duration
	keepCnt, kaProbes           int
	zwProbes                    int // zero-window probes without an ACK since
	lastRecv                    time.Time
	bytesAcked, bytesReceived   uint64

	// TCP_USER_TIMEOUT (0: off), and since when the retransmissions or
	// zero-window probes it limits have gone unanswered.
	userTimeout time.Duration
	stuckSince  time.Time
	ccName      string // TCP_CONGESTION set on the socket ("": Protocol.Congestion)

	// Receive sequence. rcv holds unread in-order bytes (rcv.n), then
	// out-of-order bytes at their offset from RCV.NXT, listed in ooo.
	irs, rcvNxt, rcvAdv seqnum.Value
	rcv                 ring
	ooo                 ranges.Set
	finRcvd             bool // the peer's FIN is consumed: reads end at EOF
	oooFin              bool // a FIN arrived beyond a hole
	oooFinSeq           seqnum.Value
	delackSegs          int
	rcvMSS              int // largest segment seen, at most rcvMSSCap
	rcvMSSCap           int // our advertised MSS, set with the first data

	rtoT, delackT, kaT, twT timer
	// warm is what only a connection that moves data needs (allocated
	// with its rings, freed with them after ringIdle): kept out of the
	// endpoint so an idle one stays in its allocation size class.
	warm *warmState

	outq     []outPkt
	flushing bool
	pending  waiter.EventMask
	after    []func() // work for after the unlock (locking the listener)
}

func (p *Protocol) newEndpoint(family int, cred transport.Cred) (*endpoint, error) {
	if family != syscall.AF_INET && family != syscall.AF_INET6 {
		return nil, fmt.Errorf("tcp: family %d: %w", family, syscall.EAFNOSUPPORT)
	}
	e := &endpoint{p: p, family: family, uid: cred.UID, priv: cred.Privileged, state: StateClosed,
		opts: transport.NewOptions(transport.StackInterfaces(p.s))}
	e.initConn()
	p.track(e)
	return e, nil
}

// initConn sets the per-connection defaults.
func (e *endpoint) initConn() {
	e.keepIdle, e.keepIntvl, e.keepCnt = DefaultKeepIdle, DefaultKeepIntvl, DefaultKeepCnt
	e.rtt = rtt.New()
}

func (e *endpoint) v6() bool { return e.family == syscall.AF_INET6 }

func (e *endpoint) boundDevice() int { return int(e.device.Load()) }

func (e *endpoint) present(a netip.Addr) netip.Addr {
	if e.v6() && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

func (e *endpoint) presentAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(e.present(ap.Addr()), ap.Port())
}

func (e *endpoint) wildcard() netip.Addr {
	if e.v6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// userAddr checks an address given to Bind or Connect against the family
// and returns it unmapped with the zone's interface index.
func (e *endpoint) userAddr(a netip.Addr) (netip.Addr, int, error) {
	if !a.IsValid() {
		return e.wildcard(), 0, nil
	}
	zone := 0
	if z := a.Zone(); z != "" {
		n, ok := e.p.s.NICByName(z)
		if !ok {
			return netip.Addr{}, 0, fmt.Errorf("tcp: zone %q: %w", z, syscall.ENODEV)
		}
		zone = n.Index()
		a = a.WithZone("")
	}
	if !e.v6() && a.Is6() && !a.Is4In6() {
		return netip.Addr{}, 0, fmt.Errorf("tcp: %v on an AF_INET socket: %w", a, syscall.EAFNOSUPPORT)
	}
	if e.v6() && a.Is4In6() && e.opts.V6Only {
		return netip.Addr{}, 0, fmt.Errorf("tcp: IPv4-mapped %v on an IPV6_V6ONLY socket: %w", a, syscall.EINVAL)
	}
	return a.Unmap(), zone, nil
}

// unlock releases e.mu after writing the segments queued under it (unless
// another goroutine is already writing them) and then announces the
// readiness changes recorded in e.pending, to e and to the endpoints in
// e.wake.
func (e *endpoint) unlock() {
	for !e.flushing && len(e.outq) > 0 {
		// The flusher owns q until it relocks; segments built meanwhile
		// go to the other slice, so a busy connection alternates between
		// two instead of growing a new one per flush.
		q := e.outq
		e.outq = nil
		if e.warm != nil {
			e.outq, e.warm.outSpare = e.warm.outSpare, nil
		}
		e.flushing = true
		var b *stack.TxBatch
		if e.warm != nil && len(q) > 1 {
			// The flusher alone uses it, even if e.warm goes meanwhile.
			b = &e.warm.tx
		}
		e.mu.Unlock()
		for i := range q {
			q[i].wo.Batch = b
			e.p.s.WritePacket(&q[i].r, q[i].pkt, q[i].wo)
		}
		if b != nil {
			b.Flush()
		}
		e.mu.Lock()
		e.flushing = false
		if e.warm != nil {
			clear(q) // the packets are the stack's now
			e.warm.outSpare = q[:0]
		}
	}
	ev, after := e.pending, e.after
	e.pending, e.after = 0, nil
	e.mu.Unlock()
	if ev != 0 {
		e.q.Notify(ev)
	}
	for _, f := range after {
		f()
	}
}

// Queue implements transport.Endpoint.
func (e *endpoint) Queue() *waiter.Queue { return &e.q }

// Readiness implements transport.Endpoint, as Linux's tcp_poll.
func (e *endpoint) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	if e.state == StateListen {
		if len(e.acceptQ) > 0 {
			r |= waiter.EventIn | waiter.EventRdNorm
		}
		return r & waiter.Normalize(mask)
	}
	if e.state == StateClosed || (e.shutRD && e.shutWR) || (e.finRcvd && e.shutWR) {
		r |= waiter.EventHUp
	}
	if e.finRcvd || e.shutRD || e.done {
		r |= waiter.EventIn | waiter.EventRdNorm | waiter.EventRdHUp
	}
	if e.state != StateSynSent && e.state != StateSynRcvd {
		if e.rcv.n > 0 {
			r |= waiter.EventIn | waiter.EventRdNorm
		}
		// Linux tcp_poll: writable when the sending side is shut (a
		// connection that ended, a refused connect: EPOLLOUT with
		// EPOLLERR|EPOLLHUP) and, with room, a fresh socket too.
		if e.shutWR || e.state == StateClosed || (e.state.synchronized() && writable(e.sndSpaceLocked(), e.snd.n)) {
			r |= waiter.EventOut | waiter.EventWrNorm
		}
	}
	if e.soErr != 0 {
		r |= waiter.EventErr
	}
	return r & waiter.Normalize(mask)
}

func (e *endpoint) sndFreeLocked() int { return e.opts.SndBuf - e.snd.n }

// writable is Linux's sk_stream_is_writeable: free space of at least
// half what is queued.
func writable(space, queued int) bool { return space > 0 && space >= queued/2 }

// Bind implements transport.Endpoint (Linux inet_bind).
func (e *endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.unlock()
	if e.appClosed {
		return syscall.EBADF
	}
	if e.local.IsValid() || e.state != StateClosed {
		return fmt.Errorf("tcp: already bound: %w", syscall.EINVAL)
	}
	a, zone, err := e.userAddr(addr.Addr())
	if err != nil {
		return err
	}
	if a.IsMulticast() || (a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fmt.Errorf("tcp: bind %v: %w", a, syscall.EADDRNOTAVAIL)
	}
	if a.Is6() && a.IsLinkLocalUnicast() && zone == 0 && e.boundDevice() == 0 {
		return fmt.Errorf("tcp: link-local %v needs a scope: %w", a, syscall.EINVAL)
	}
	if !a.IsUnspecified() && !e.p.s.IsLocal(a) {
		return fmt.Errorf("tcp: bind %v: %w", a, syscall.EADDRNOTAVAIL)
	}
	if p := addr.Port(); p != 0 && p < PrivilegedPorts && !e.priv {
		return fmt.Errorf("tcp: port %d: %w", p, syscall.EACCES)
	}
	if zone != 0 {
		e.opts.BoundDevice = zone
		e.device.Store(int64(zone))
	}
	r, err := e.p.ports.Reserve(e.bindingLocked(a, addr.Port()), netip.AddrPort{})
	if err != nil {
		return err
	}
	e.res = r
	e.local = netip.AddrPortFrom(a, r.Port())
	e.userBound = true
	return nil
}

func (e *endpoint) bindingLocked(a netip.Addr, port uint16) ports.Binding {
	return ports.Binding{Addr: a, Port: port, V6Only: e.v6() && e.opts.V6Only, Device: e.boundDevice(),
		ReuseAddr: e.opts.ReuseAddr, ReusePort: e.opts.ReusePort, UID: e.uid}
}

// Connect implements transport.Endpoint: it sends a SYN and returns
// EINPROGRESS; the handshake completes with EventOut, or fails with
// SO_ERROR set (ECONNREFUSED, ETIMEDOUT, an ICMP error).
func (e *endpoint) Connect(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.unlock()
	if e.appClosed {
		return syscall.EBADF
	}
	switch e.state {
	case StateSynSent, StateSynRcvd:
		return syscall.EALREADY
	case StateListen:
		return syscall.EINVAL
	case StateClosed:
		if e.connected {
			if e.soErr != 0 {
				err := e.soErr
				e.soErr = 0
				return err
			}
			return syscall.EISCONN // Linux: a socket that was connected stays so for connect
		}
	default:
		return syscall.EISCONN
	}
	if !addr.Addr().IsValid() {
		return syscall.EAFNOSUPPORT
	}
	dst, zone, err := e.userAddr(addr.Addr())
	if err != nil {
		if e.v6() && addr.Addr().Is4In6() && e.opts.V6Only {
			return syscall.ENETUNREACH
		}
		return err
	}
	if addr.Port() == 0 {
		return syscall.ECONNREFUSED
	}
	if dst.IsUnspecified() {
		if dst.Is4() {
			dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			dst = netip.IPv6Loopback()
		}
	}
	if dst.IsMulticast() || (dst.Is4() && dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return syscall.ENETUNREACH
	}
	if e.local.IsValid() && !e.local.Addr().IsUnspecified() && e.local.Addr().Is4() != dst.Is4() {
		return syscall.EAFNOSUPPORT
	}
	nic := zone
	if nic == 0 {
		nic = e.boundDevice()
	}
	src := netip.Addr{}
	if e.local.IsValid() && !e.local.Addr().IsUnspecified() {
		src = e.local.Addr()
	}
	r, err := e.p.s.FindRoute(nic, src, dst)
	if err != nil {
		return err
	}
	if r.Kind == stack.RouteBroadcast || r.Kind == stack.RouteMulticast {
		return syscall.ENETUNREACH
	}
	remote := netip.AddrPortFrom(dst, addr.Port())
	if err := e.hashConnectLocked(r.Src, remote); err != nil {
		return err
	}
	// A socket whose earlier connect failed starts afresh.
	e.rtt, e.retries, e.soErr, e.softErr, e.pmtu = rtt.New(), 0, 0, 0, 0
	e.ecn = 0
	if e.p.ECN == ECNOn {
		e.ecn = ecnRequested
	}
	e.finRcvd, e.shutRD, e.shutWR, e.done = false, false, false, false
	e.route, e.routeGen, e.routeValid = r, e.p.s.RouteGeneration(), true
	now := time.Now()
	e.iss = e.p.isn(e.local, e.remote, now)
	e.sndUna, e.sndNxt, e.sndMax, e.sndSml = e.iss, e.iss, e.iss, e.iss
	e.tsOffset = e.p.tsOffset(e.local, e.remote, now)
	e.rcvShift = rcvShiftFor(e.rcvBufLimit())
	if e.p.DisableWindowScaling {
		e.rcvShift = 0
	}
	e.setState(StateSynSent)
	e.p.stats.ActiveOpens.Add(1)
	e.sendSynLocked(false)
	e.armRTOLocked()
	return syscall.EINPROGRESS
}

// hashConnectLocked gives a connecting socket its local address and port
// and enters it in the connection table under a 4-tuple no other
// connection has (Linux __inet_hash_connect). An unbound socket gets an
// ephemeral port by RFC 6056 among those whose 4-tuple is free.
func (e *endpoint) hashConnectLocked(src netip.Addr, remote netip.AddrPort) error {
	p := e.p
	if e.local.IsValid() {
		local := netip.AddrPortFrom(src, e.local.Port())
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, busy := p.conns[fourTuple{local, remote}]; busy {
			return fmt.Errorf("tcp: %v to %v is in use: %w", local, remote, syscall.EADDRNOTAVAIL)
		}
		e.local, e.remote = local, remote
		p.conns[fourTuple{local, remote}] = e
		e.hashed = true
		return nil
	}
	// An ephemeral port is shared by the connections that chose it (each
	// has its own 4-tuple) but by no bind without SO_REUSEADDR.
	b := e.bindingLocked(src, 0)
	b.ReuseAddr = true
	var res *ports.Reservation
	_, err := p.ports.PickEphemeral(src, remote, func(port uint16) bool {
		p.mu.RLock()
		_, busy := p.conns[fourTuple{netip.AddrPortFrom(src, port), remote}]
		p.mu.RUnlock()
		if busy {
			return false
		}
		b.Port = port
		r, err := p.ports.Reserve(b, netip.AddrPort{})
		if err != nil {
			return false
		}
		p.mu.Lock()
		if _, busy := p.conns[fourTuple{netip.AddrPortFrom(src, port), remote}]; busy {
			p.mu.Unlock()
			r.Release()
			return false
		}
		e.local, e.remote = netip.AddrPortFrom(src, port), remote
		p.conns[fourTuple{e.local, remote}] = e
		e.hashed = true
		p.mu.Unlock()
		res = r
		return true
	})
	if err != nil {
		return err
	}
	e.res = res
	return nil
}

// unhashLocked takes a connection out of the table.
func (e *endpoint) unhashLocked() {
	if !e.hashed {
		return
	}
	e.p.mu.Lock()
	if e.p.conns[fourTuple{e.local, e.remote}] == e {
		delete(e.p.conns, fourTuple{e.local, e.remote})
	}
	e.p.mu.Unlock()
	e.hashed = false
}

// Listen implements transport.Endpoint: an unbound socket is first bound
// to the wildcard and an ephemeral port (Linux inet_autobind). The
// backlog bounds the accept queue (0 allows one, as Linux), at most
// SoMaxConn.
func (e *endpoint) Listen(backlog int) error {
	e.mu.Lock()
	defer e.unlock()
	if e.appClosed {
		return syscall.EBADF
	}
	backlog = min(max(backlog, 0), SoMaxConn)
	if e.state == StateListen {
		e.backlog = backlog
		e.acceptFull.Store(len(e.acceptQ) > e.backlog)
		return nil
	}
	if e.state != StateClosed || e.connected {
		return syscall.EINVAL
	}
	if !e.local.IsValid() {
		r, err := e.p.ports.Reserve(e.bindingLocked(e.wildcard(), 0), netip.AddrPort{})
		if err != nil {
			return err
		}
		e.res = r
		e.local = netip.AddrPortFrom(e.wildcard(), r.Port())
	}
	// Linux refuses a second listener on a port unless both use
	// SO_REUSEPORT (inet_csk_get_port's fastreuse checks for listeners).
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	for _, l := range e.p.listeners[e.local.Port()] {
		b1 := ports.Binding{Addr: l.listenAddr, V6Only: l.listenV6Only, Device: l.boundDevice()}
		b2 := ports.Binding{Addr: e.local.Addr(), V6Only: e.v6() && e.opts.V6Only, Device: e.boundDevice()}
		if ports.Overlap(b1, b2) && !(e.opts.ReusePort && l.opts.ReusePort && l.uid == e.uid) {
			return fmt.Errorf("tcp: port %d has a listener: %w", e.local.Port(), syscall.EADDRINUSE)
		}
	}
	e.listenAddr = e.local.Addr()
	e.listenV6Only = e.v6() && e.opts.V6Only
	e.backlog = backlog
	e.rcvShift = rcvShiftFor(e.rcvBufLimit())
	e.setState(StateListen)
	e.p.listeners[e.local.Port()] = append(e.p.listeners[e.local.Port()], e)
	return nil
}

// unlistenLocked stops listening: the socket leaves the table and every
// child not yet accepted is reset (Linux inet_csk_listen_stop).
func (e *endpoint) unlistenLocked() []*endpoint {
	e.p.mu.Lock()
	l := e.p.listeners[e.local.Port()]
	for i, x := range l {
		if x == e {
			nl := append(append([]*endpoint(nil), l[:i]...), l[i+1:]...)
			if len(nl) == 0 {
				delete(e.p.listeners, e.local.Port())
			} else {
				e.p.listeners[e.local.Port()] = nl
			}
			break
		}
	}
	var children []*endpoint
	for _, c := range e.p.conns {
		if c.parent == e {
			children = append(children, c)
		}
	}
	e.p.mu.Unlock()
	children = append(children, e.acceptQ...)
	e.acceptQ = nil
	e.setState(StateClosed)
	return children
}

// Accept implements transport.Endpoint.
func (e *endpoint) Accept() (transport.Endpoint, netip.AddrPort, error) {
	e.mu.Lock()
	defer e.unlock()
	if e.state != StateListen {
		return nil, netip.AddrPort{}, syscall.EINVAL
	}
	if len(e.acceptQ) == 0 {
		return nil, netip.AddrPort{}, syscall.EAGAIN
	}
	c := e.acceptQ[0]
	e.acceptQ[0] = nil
	e.acceptQ = e.acceptQ[1:]
	e.acceptFull.Store(len(e.acceptQ) > e.backlog)
	c.mu.Lock()
	c.parent = nil
	remote := c.presentAP(c.remote)
	c.mu.Unlock()
	return c, remote, nil
}

// Read implements transport.Endpoint: in-order bytes; 0 bytes and no
// error at end of stream (the peer's FIN, SHUT_RD, or after a reset was
// reported).
func (e *endpoint) Read(dst [][]byte, o transport.ReadOptions) (transport.ReadResult, error) {
	if o.OOB {
		return transport.ReadResult{}, syscall.EINVAL // no urgent data is kept (SO_OOBINLINE semantics absent)
	}
	if o.ErrQueue {
		return transport.ReadResult{}, syscall.EAGAIN
	}
	e.mu.Lock()
	defer e.unlock()
	if e.state == StateListen {
		return transport.ReadResult{}, syscall.ENOTCONN
	}
	if e.rcv.n == 0 {
		// The peer's FIN comes before a pending error, as Linux's
		// tcp_recvmsg checks SOCK_DONE before sk_err: after a RST in
		// CLOSE_WAIT the reader sees its EOF and SO_ERROR keeps EPIPE.
		if e.finRcvd {
			return transport.ReadResult{}, nil
		}
		if err := e.soErr; err != 0 {
			e.soErr = 0
			return transport.ReadResult{}, err
		}
		switch {
		case e.shutRD:
			return transport.ReadResult{}, nil
		case e.state == StateSynSent || e.state == StateSynRcvd:
			return transport.ReadResult{}, syscall.EAGAIN
		case e.state == StateClosed:
			if e.connected {
				return transport.ReadResult{}, nil
			}
			return transport.ReadResult{}, syscall.ENOTCONN
		}
		return transport.ReadResult{}, syscall.EAGAIN
	}
	n := 0
	for _, b := range dst {
		if n == e.rcv.n {
			break
		}
		k := min(len(b), e.rcv.n-n)
		e.rcv.get(n, b[:k])
		n += k
	}
	res := transport.ReadResult{N: n, From: e.presentAP(e.remote)}
	if o.Peek {
		return res, nil
	}
	e.rcv.consume(n)
	now := time.Now()
	if e.rcv.n == 0 {
		e.ringsEmptiedLocked(now)
	}
	e.rcvSpaceAdjustLocked(now)
	e.maybeWindowUpdateLocked()
	return res, nil
}

// Write implements transport.Endpoint: it queues what fits in the send
// buffer (EAGAIN when none does) and sends what the windows allow.
func (e *endpoint) Write(src [][]byte, o transport.WriteOptions) (int, error) {
	if o.OOB {
		return 0, syscall.EOPNOTSUPP
	}
	e.mu.Lock()
	defer e.unlock()
	if err := e.soErr; err != 0 {
		e.soErr = 0
		return 0, err
	}
	if e.shutWR || e.appClosed {
		return 0, syscall.EPIPE
	}
	switch e.state {
	case StateSynSent, StateSynRcvd:
		return 0, syscall.EAGAIN
	case StateEstablished, StateCloseWait:
	default:
		return 0, syscall.EPIPE
	}
	free := e.sndSpaceLocked() // SO_SNDBUF's room, or less at the memory limit
	total := transport.TotalLen(src)
	if total == 0 {
		return 0, nil
	}
	if free <= 0 {
		return 0, syscall.EAGAIN
	}
	if !e.ringGrowLocked(&e.snd, e.snd.n+min(total, free)) {
		// Another connection took the memory meanwhile: what the ring
		// holds is all there is.
		if free = min(free, len(e.snd.b)-e.snd.n); free <= 0 {
			return 0, syscall.EAGAIN
		}
	}
	n := 0
	for _, b := range src {
		k := min(len(b), free-n)
		e.snd.put(e.snd.n, b[:k])
		e.snd.n += k
		n += k
		if n == free {
			break
		}
	}
	e.outputLocked(o.More)
	return n, nil
}

// Shutdown implements transport.Endpoint. SHUT_WR sends a FIN after the
// queued data; reads go on. SHUT_RD on a listener stops it, which is how
// a blocked accept is woken (Linux inet_shutdown).
func (e *endpoint) Shutdown(how int) error {
	if how != syscall.SHUT_RD && how != syscall.SHUT_WR && how != syscall.SHUT_RDWR {
		return syscall.EINVAL
	}
	e.mu.Lock()
	defer e.unlock()
	switch e.state {
	case StateListen:
		if how == syscall.SHUT_WR {
			return nil
		}
		children := e.unlistenLocked()
		e.pending |= waiter.EventIn | waiter.EventHUp
		e.mu.Unlock()
		for _, c := range children {
			c.abort(true)
		}
		e.mu.Lock()
		return nil
	case StateSynSent:
		e.closeLocked()
		e.pending |= waiter.EventAll
		return nil
	case StateClosed, StateSynRcvd:
		return syscall.ENOTCONN
	}
	if how != syscall.SHUT_WR {
		e.shutRD = true
	}
	if how != syscall.SHUT_RD {
		e.shutdownWriteLocked()
	}
	e.pending |= waiter.EventIn | waiter.EventOut | waiter.EventRdHUp | waiter.EventHUp
	return nil
}

// shutdownWriteLocked queues our FIN (RFC 9293 §3.10.4).
func (e *endpoint) shutdownWriteLocked() {
	if e.shutWR {
		return
	}
	e.shutWR = true
	switch e.state {
	case StateEstablished:
		e.setState(StateFinWait1)
	case StateCloseWait:
		e.setState(StateLastAck)
	default:
		return
	}
	e.finQueued = true
	e.outputLocked(false)
}

// Close implements transport.Endpoint. Unread data, or SO_LINGER with a
// zero timeout, aborts the connection with a RST (RFC 9293 §3.10.4,
// Linux tcp_close); otherwise the FIN goes out after the queued data and
// the connection finishes in the background. SO_LINGER with a timeout
// does not make Close wait: the socket layer waits, through Lingering.
func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.appClosed {
		e.mu.Unlock()
		return nil
	}
	e.appClosed = true
	e.pending |= waiter.EventAll
	var children []*endpoint
	switch e.state {
	case StateListen:
		children = e.unlistenLocked()
		e.closeLocked()
	case StateClosed, StateSynSent:
		e.closeLocked()
	case StateSynRcvd, StateEstablished, StateCloseWait, StateFinWait1, StateFinWait2, StateClosing, StateLastAck:
		unread := e.rcv.n > 0 || e.ooo.Len() > 0
		if unread || (e.opts.Linger.Onoff != 0 && e.opts.Linger.Linger == 0) {
			e.sendResetLocked()
			e.closeLocked()
			break
		}
		e.shutdownWriteLocked()
		if e.state == StateFinWait2 {
			e.twT.set(e.p.FinTimeout, e.onTimeWait)
		}
	case StateTimeWait:
		// The connection lingers out its 2·MSL.
	}
	e.unlock()
	for _, c := range children {
		c.abort(true)
	}
	return nil
}

// Lingering reports whether sent data or the FIN still await their ACK
// (Linux sk_stream_closing), for SO_LINGER's wait in pkg/socket; leaving
// those states notifies EventOut or EventHUp.
func (e *endpoint) Lingering() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case StateFinWait1, StateClosing, StateLastAck:
		return true
	}
	return false
}

// abort resets a connection (a listener's child being discarded).
func (e *endpoint) abort(sendRST bool) {
	e.mu.Lock()
	if e.state != StateClosed {
		if sendRST && e.state != StateTimeWait {
			e.sendResetLocked()
		}
		e.closeLocked()
	}
	e.appClosed = true
	e.freeRingLocked(&e.rcv) // what a closed child kept for an accept that never comes
	e.pending |= waiter.EventAll
	e.unlock()
	e.p.untrack(e)
}

// closeLocked ends the connection: CLOSED, out of the tables, timers
// stopped, buffers freed, port released. An endpoint the application
// still holds stays readable for what it had received.
func (e *endpoint) closeLocked() {
	e.done = e.done || e.state != StateClosed
	e.setState(StateClosed)
	e.unhashLocked()
	e.rtoT.stop()
	e.delackT.stop()
	e.kaT.stop()
	e.twT.stop()
	if e.warm != nil {
		e.warm.idleT.stop()
		e.warm = nil
	}
	e.freeRingLocked(&e.snd)
	e.ooo.Clear()
	e.finQueued = false
	if e.appClosed {
		e.freeRingLocked(&e.rcv) // else kept for the application to read
	}
	switch {
	case e.appClosed || (!e.connected && !e.userBound):
		// A failed connect gives back the port it chose (the socket may
		// connect again, as on Linux); an explicit bind is kept.
		if e.res != nil {
			e.res.Release()
			e.res = nil
		}
		if !e.connected && !e.appClosed {
			e.local, e.remote = netip.AddrPort{}, netip.AddrPort{}
		}
	}
	if e.parent != nil {
		par := e.parent
		e.parent = nil
		if !e.connected {
			e.after = append(e.after, par.synDone) // not under e.mu (lock order)
		}
	}
	if e.appClosed {
		e.p.untrack(e)
	}
	e.pending |= waiter.EventAll
}

// synDone forgets a child that died in SYN_RECV. One that was
// established stays in the accept queue: as on Linux, accept returns it
// and its first read reports the reset.
func (l *endpoint) synDone() {
	l.mu.Lock()
	if l.synQ > 0 {
		l.synQ--
	}
	l.mu.Unlock()
}

// setState moves to s, keeping CurrEstab and the TIME_WAIT count.
func (e *endpoint) setState(s State) {
	est := func(x State) bool { return x == StateEstablished || x == StateCloseWait }
	if est(e.state) && !est(s) {
		e.p.stats.CurrEstab.Add(-1)
	} else if !est(e.state) && est(s) {
		e.p.stats.CurrEstab.Add(1)
	}
	if e.state == StateTimeWait && s != StateTimeWait {
		e.p.timeWaits.Add(-1)
	} else if e.state != StateTimeWait && s == StateTimeWait {
		e.p.timeWaits.Add(1)
	}
	e.state = s
}

// LocalAddr implements transport.Endpoint.
func (e *endpoint) LocalAddr() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.local.IsValid() {
		return netip.AddrPortFrom(e.wildcard(), 0)
	}
	return e.presentAP(e.local)
}

// RemoteAddr implements transport.Endpoint.
func (e *endpoint) RemoteAddr() (netip.AddrPort, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.remote.IsValid() || e.state == StateListen || (e.state == StateClosed && !e.connected) {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return e.presentAP(e.remote), nil
}

// Available is FIONREAD: the unread in-order bytes.
func (e *endpoint) Available() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rcv.n
}

// Info implements transport.Endpoint.
func (e *endpoint) Info() transport.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := transport.Info{Proto: "tcp", Protocol: syscall.IPPROTO_TCP, State: e.state.String()}
	if e.v6() {
		in.Proto = "tcp6"
	}
	in.Local = netip.AddrPortFrom(e.wildcard(), 0)
	if e.local.IsValid() {
		in.Local = e.presentAP(e.local)
	}
	if e.state == StateListen {
		in.Remote = netip.AddrPortFrom(e.wildcard(), 0)
		in.RecvQ, in.SendQ = len(e.acceptQ), e.backlog
		return in
	}
	if e.remote.IsValid() {
		in.Remote = e.presentAP(e.remote)
	}
	in.RecvQ, in.SendQ = e.rcv.n, e.snd.n
	return in
}
