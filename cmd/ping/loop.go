package ping

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// event is what the reader goroutine read: a datagram (an echo reply) or
// an entry of the error queue.
type event struct {
	data, oob []byte
	from      netip.AddrPort
	at        time.Time
	errQueue  bool
}

// pinger is one run of iputils' main_loop; its fields belong to the loop
// goroutine except conn, events and done, which the reader shares.
type pinger struct {
	ctx    context.Context
	conn   host.PacketConn
	env    *applet.Env
	o      *options
	t      target
	now    func() time.Time
	events chan event
	done   chan struct{} // closed when the loop ends; the reader stops
	wg     sync.WaitGroup

	fromText, devText string // the header's "from SRC DEV"

	st       stats
	interval int // ms; 0: flood
	timing   bool
	exiting  bool

	start, curTime time.Time
	tokens         int64
	oomCount       int
	acked          uint16
	rcvd           [maxDupCheck / 8]byte

	alarm     <-chan time.Time // the -w deadline or the final wait
	exitTimer *time.Timer
	waitSet   bool
}

func (p *pinger) close() {
	p.conn.Close()
}

// The received-sequence bitmap (iputils rcvd_tbl).
func (p *pinger) rcvdTest(seq uint16) bool { return p.rcvd[seq/8]&(1<<(seq%8)) != 0 }
func (p *pinger) rcvdSet(seq uint16)       { p.rcvd[seq/8] |= 1 << (seq % 8) }
func (p *pinger) rcvdClear(seq uint16)     { p.rcvd[seq/8] &^= 1 << (seq % 8) }

// inFlight is the number of requests not yet answered (iputils
// in_flight: by the highest acknowledged sequence while it is in range).
func (p *pinger) inFlight() int64 {
	diff := uint16(p.st.transmitted) - p.acked
	if diff <= 0x7fff {
		return int64(diff)
	}
	return p.st.transmitted - p.st.received - p.st.errors
}

// acknowledge records seq as answered (a reply or an error) and the
// deepest pipe seen.
func (p *pinger) acknowledge(seq uint16) {
	diff := uint16(p.st.transmitted) - seq
	if diff <= 0x7fff {
		if int(diff)+1 > p.st.pipesize {
			p.st.pipesize = int(diff) + 1
		}
		if int16(seq-p.acked) > 0 || uint16(p.st.transmitted)-p.acked > 0x7fff {
			p.acked = seq
		}
	}
}

func (p *pinger) advanceTransmitted() {
	p.st.transmitted++
	if uint16(p.st.transmitted)-p.acked > 0x7fff {
		p.acked = uint16(p.st.transmitted) + 1
	}
}

// stamp is -D's "[sec.usec] " prefix.
func (p *pinger) stamp() string {
	if !p.o.timestamps {
		return ""
	}
	us := p.now().UnixMicro()
	return fmt.Sprintf("[%d.%06d] ", us/1e6, us%1e6)
}

func schint(ms int) int { return max(ms, minInterval) }

// loop runs main_loop and finish and returns the exit status.
func (p *pinger) loop(ctx context.Context) int {
	p.ctx = ctx
	p.interval = p.o.interval
	if p.o.flood && !p.o.optInterval {
		p.interval = 0
	}
	p.timing = p.o.datalen >= timevalLen
	p.st.tmin = 1<<63 - 1
	p.st.timing, p.st.interval, p.st.flood = p.timing, p.interval, p.o.flood

	p.wg.Add(1)
	go p.reader()
	defer func() {
		close(p.done)
		p.conn.Close()
		p.wg.Wait()
		if p.exitTimer != nil {
			p.exitTimer.Stop()
		}
	}()
	p.start = p.now()
	if p.o.deadline > 0 {
		p.setAlarm(time.Duration(p.o.deadline) * time.Second)
	}
	count := p.o.count
	for {
		if p.exiting {
			break
		}
		if count > 0 && p.st.received+p.st.errors >= count {
			break
		}
		if p.o.deadline > 0 && p.st.errors > 0 {
			break
		}
		var next int
		for {
			next = p.ping()
			if count > 0 && p.st.transmitted >= count && p.o.deadline == 0 {
				next = p.scheduleExit(next)
			}
			if next > 0 {
				break
			}
		}
		p.wait(ctx, time.Duration(next)*time.Millisecond)
	}
	return p.finish()
}

func (p *pinger) setAlarm(d time.Duration) {
	if p.exitTimer != nil {
		p.exitTimer.Stop()
	}
	p.exitTimer = time.NewTimer(d)
	p.alarm = p.exitTimer.C
}

// scheduleExit arms the final wait once the count is sent: twice the
// largest round trip (at least one interval) when replies came, else
// the -W linger time (iputils __schedule_exit).
func (p *pinger) scheduleExit(next int) int {
	if p.waitSet {
		return next
	}
	p.waitSet = true
	var waitUS int64
	if p.st.received > 0 {
		waitUS = max(2*p.st.tmax, 1000*int64(p.interval))
	} else {
		waitUS = int64(p.o.linger) * 1000
	}
	if next < 0 || int64(next) < waitUS/1000 {
		next = int(waitUS / 1000)
	}
	p.setAlarm(time.Duration(waitUS) * time.Microsecond)
	return next
}

// wait blocks until an event, the next send time, the alarm or ctx,
// then handles what has arrived.
func (p *pinger) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-p.events:
		p.handle(ev)
	case <-t.C:
		return
	case <-p.alarm:
		p.exiting = true
		return
	case <-ctx.Done():
		p.exiting = true
		return
	}
	for range cap(p.events) {
		select {
		case ev := <-p.events:
			p.handle(ev)
		default:
			return
		}
	}
}

// ping is iputils' pinger(): send the next request if the token count
// allows, and return the milliseconds until the next one is due.
func (p *pinger) ping() int {
	// A negative -i never waits between sends (as iputils), so the
	// interrupt and the alarm are looked at here too.
	select {
	case <-p.ctx.Done():
		p.exiting = true
	case <-p.alarm:
		p.exiting = true
	default:
	}
	if p.exiting || (p.o.count > 0 && p.st.transmitted >= p.o.count && p.o.deadline == 0) {
		return 1000
	}
	now := p.now()
	iv := int64(p.interval)
	if p.curTime.IsZero() {
		p.curTime = now
		p.tokens = 0 // interval × (preload − 1), preload 1
	} else {
		ntokens := now.Sub(p.curTime).Milliseconds()
		if iv == 0 && ntokens < minInterval && p.inFlight() >= 1 {
			// Unlimited flood: without replies, 100 per second.
			return int(minInterval - ntokens)
		}
		ntokens = min(ntokens+p.tokens, iv)
		if ntokens < iv {
			return int(iv - ntokens)
		}
		p.curTime = now
		p.tokens = ntokens - iv
	}
	if p.o.outstanding && p.st.transmitted > 0 && !p.rcvdTest(uint16(p.st.transmitted)) {
		fmt.Fprintf(p.env.Stdout, "%sno answer yet for icmp_seq=%d\n", p.stamp(), p.st.transmitted%maxDupCheck)
	}
	// Errors already queued are read first, as iputils' poll loop would
	// have, so their errno is not taken by this send.
	p.drainErrors()
	seq := uint16(p.st.transmitted + 1)
	p.rcvdClear(seq)
	_, err := p.conn.SendMsg(echo(p.t.v6, seq, p.o.datalen, p.timing, p.now()), nil, netip.AddrPortFrom(p.t.addr, 0))
	if err == nil {
		p.oomCount = 0
		p.advanceTransmitted()
		if !p.o.quiet && p.o.flood {
			io.WriteString(p.env.Stdout, ".")
		}
		return int(iv - p.tokens)
	}
	var errno syscall.Errno
	errors.As(err, &errno)
	queued := 0
	switch errno {
	case syscall.ENOBUFS, syscall.ENOMEM:
		// Device queue overflow: slow down, then give up as a hard error.
		p.tokens = 0
		nores := min(schint(p.interval/2), 500)
		p.oomCount++
		if p.oomCount*nores < p.o.linger {
			return nores
		}
	case syscall.EAGAIN:
		p.tokens += iv
		return minInterval
	default:
		queued = p.drainErrors()
	}
	// A hard local error: the request counts as sent.
	p.advanceTransmitted()
	if queued >= 0 && !p.o.quiet {
		if p.o.flood {
			io.WriteString(p.env.Stdout, "E")
		} else {
			fmt.Fprintf(p.env.Stderr, "ping: sendmsg: %s\n", strerror(err))
		}
	}
	p.tokens = 0
	return schint(p.interval)
}

// drainErrors reads the error queue until it is empty (MSG_ERRQUEUE
// never blocks) and reports each entry; it returns the number of ICMP
// errors, or minus the number of local errors when there were only those.
func (p *pinger) drainErrors() int {
	icmp, local := 0, 0
	for range 256 {
		ev, ok := p.readErrQueue()
		if !ok {
			break
		}
		if p.handleError(ev) {
			icmp++
		} else {
			local++
		}
	}
	if icmp > 0 {
		return icmp
	}
	return -local
}

func (p *pinger) readErrQueue() (event, bool) {
	b := make([]byte, 576)
	oob := make([]byte, 512)
	n, oobn, _, from, err := p.conn.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
	if err != nil {
		return event{}, false
	}
	return event{data: b[:n], oob: oob[:oobn], from: from, at: p.now(), errQueue: true}, true
}

// reader reads replies and passes them to the loop. A read that fails
// with an errno means an error is pending: its details are in the error
// queue, which it reads too. It stops when the loop ends.
func (p *pinger) reader() {
	defer p.wg.Done()
	size := p.o.datalen + 8 + 512
	send := func(ev event) bool {
		select {
		case p.events <- ev:
			return true
		case <-p.done:
			return false
		}
	}
	for {
		b := make([]byte, size)
		oob := make([]byte, 512)
		n, oobn, _, from, err := p.conn.RecvMsg(b, oob, 0)
		at := p.now()
		select {
		case <-p.done:
			return
		default:
		}
		if err == nil {
			if !send(event{data: b[:n], oob: oob[:oobn], from: from, at: at}) {
				return
			}
			continue
		}
		var errno syscall.Errno
		if errors.Is(err, net.ErrClosed) || !errors.As(err, &errno) || errno == syscall.EBADF {
			return
		}
		for range 256 {
			ev, ok := p.readErrQueue()
			if !ok || !send(ev) {
				break
			}
		}
	}
}

// handle processes one thing the reader read.
func (p *pinger) handle(ev event) {
	if ev.errQueue {
		p.handleError(ev)
		return
	}
	p.handleReply(ev)
}

// handleReply is parse_reply and gather_statistics for an echo reply.
func (p *pinger) handleReply(ev event) {
	b := ev.data
	cc := len(b)
	if cc < 8 {
		return
	}
	want := byte(echoReply4)
	if p.t.v6 {
		want = echoReply6
	}
	if b[0] != want || !containsPattern(b[8:], p.o.datalen) {
		return // not our echo
	}
	seq := binary.BigEndian.Uint16(b[6:])
	c := parseControl(ev.oob)
	hops := c.ttl
	if hops < 0 && !p.t.v6 {
		hops = 0 // iputils' IPv4 default when no IP_TTL came
	}
	csfailed := !p.t.v6 && checksum(b) != 0

	p.st.received++
	if !csfailed {
		p.acknowledge(seq)
	}
	var triptime int64
	if p.timing && cc >= 8+timevalLen {
		triptime = ev.at.UnixMicro() - timevalMicros(b[8:])
		if triptime < 0 {
			fmt.Fprintf(p.env.Stderr, "ping: Warning: time of day goes back (%dus), taking countermeasures\n", triptime)
			triptime = 0
		}
		if !csfailed {
			p.st.add(triptime)
		}
	}
	dup := false
	switch {
	case csfailed:
		p.st.checksum++
		p.st.received--
	case p.rcvdTest(seq):
		p.st.repeats++
		p.st.received--
		dup = true
	default:
		p.rcvdSet(seq)
	}
	if p.o.quiet {
		return
	}
	if p.o.flood {
		if csfailed {
			io.WriteString(p.env.Stdout, "\bC")
		} else {
			io.WriteString(p.env.Stdout, "\b \b")
		}
		return
	}
	r := reply{bytes: cc, from: ev.from.Addr().String(), seq: int(seq), ttl: hops,
		timing: p.timing, rtt: triptime, trunc: cc < p.o.datalen+8, dup: dup, badCsum: csfailed}
	io.WriteString(p.env.Stdout, p.stamp()+r.String())
}

// handleError is receive_error_msg for one error-queue entry; it
// reports whether it was an ICMP error about one of our requests.
func (p *pinger) handleError(ev event) bool {
	c := parseControl(ev.oob)
	e := c.err
	if e == nil {
		return false
	}
	if e.origin == originLocal {
		if !p.o.quiet {
			if p.o.flood {
				io.WriteString(p.env.Stdout, "E")
			} else if e.errno != syscall.EMSGSIZE {
				fmt.Fprintf(p.env.Stderr, "ping: local error: %s\n", strerror(e.errno))
			} else {
				fmt.Fprintf(p.env.Stderr, "ping: local error: message too long, mtu=%d\n", e.info)
			}
		}
		p.st.errors++
		return false
	}
	if e.origin != originICMP && e.origin != originICMP6 {
		return false
	}
	want := byte(echoRequest4)
	if p.t.v6 {
		want = echoRequest6
	}
	if len(ev.data) < 8 || ev.from.Addr().WithZone("") != p.t.addr.WithZone("") || ev.data[0] != want {
		return false // not our error
	}
	seq := binary.BigEndian.Uint16(ev.data[6:])
	p.acknowledge(seq)
	p.st.errors++
	if p.o.quiet {
		return true
	}
	if p.o.flood {
		io.WriteString(p.env.Stdout, "\bE")
		return true
	}
	fmt.Fprintf(p.env.Stdout, "%sFrom %s icmp_seq=%d %s\n", p.stamp(), e.offender, seq, icmpText(p.t.v6, e.typ, e.code, e.info))
	return true
}

// finish prints the summary and returns iputils' exit status: 1 when
// nothing came back, or when -w was given with a count not met.
func (p *pinger) finish() int {
	if !p.curTime.IsZero() {
		p.st.elapsedUS = p.curTime.Sub(p.start).Microseconds()
	}
	if p.st.received == 0 {
		p.st.tmin = 0
	}
	io.WriteString(p.env.Stdout, summary(p.t.hostname, p.st))
	if p.st.received == 0 || (p.o.deadline > 0 && p.st.received < p.o.count) {
		return exitNoReply
	}
	return exitOK
}
