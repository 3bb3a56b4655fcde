package traceroute

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// probe is one probe of traceroute 2.1 (its struct probe): sent at sent
// (zero: not yet), answered by res at recv, with the annotation of an
// ICMP unreachable; final when the trace ends at its hop.
type probe struct {
	sent, recv time.Time
	done       bool
	final      bool
	res        netip.Addr
	errStr     string
}

// reply is what a reader goroutine read about probe idx: an ICMP error
// (ee) from its error queue, or, with ee nil, the destination's own
// answer.
type reply struct {
	idx  int
	from netip.Addr
	at   time.Time
	ee   *extErr
}

// sysError is a failing system call: traceroute's error(), which prints
// "\nWHAT: strerror" to stderr and exits 1.
type sysError struct {
	what   string
	err    error
	noPriv bool // a raw socket refused for want of privilege
}

func (e *sysError) Error() string { return e.what + ": " + strerror(e.err) }

// method sends probes and feeds replies to the loop.
type method interface {
	// send sends probe idx with ttl. A zero time with a nil error is a
	// transient failure (ENOBUFS, EAGAIN): the loop tries again later.
	send(idx, ttl int) (time.Time, error)
	// finished tells that probe idx needs nothing more read.
	finished(idx int)
	close()
}

// tracer is one run.
type tracer struct {
	ctx   context.Context
	h     host.Host
	cfg   Config
	env   *applet.Env
	o     *options
	dst   netip.Addr
	names map[netip.Addr]string // reverse lookups done

	probes []probe
	events chan reply
	done   chan struct{} // closed when the run ends: readers stop
}

func (t *tracer) v6() bool { return t.dst.Is6() }

// sizes returns the IP header length, the method's header length and
// the data length the packet length asks for (traceroute 2.1: a length
// below the headers is raised to them; TCP probes have a fixed size).
func (t *tracer) sizes() (ipHdr, hdr, data int) {
	ipHdr = 20
	if t.v6() {
		ipHdr = 40
	}
	hdr = 8
	if t.o.method == methodTCP {
		return ipHdr, tcpHdrLen, 0
	}
	plen := t.o.packetLen
	if plen < 0 {
		plen = ipHdr + 40
	}
	return ipHdr, hdr, max(plen-ipHdr-hdr, 0)
}

func (t *tracer) run(dstName string) int {
	ipHdr, hdr, data := t.sizes()
	header := func() {
		fmt.Fprintf(t.env.Stdout, "traceroute to %s (%s), %d hops max, %d byte packets", dstName, t.dst, t.o.max, ipHdr+hdr+data)
	}
	t.events = make(chan reply, 64)
	t.done = make(chan struct{})
	defer close(t.done)
	// The ICMP and TCP methods open their socket before the header (the
	// module's init); the UDP ones a socket per probe, after it.
	shared := t.o.method == methodICMP || t.o.method == methodTCP
	if !shared {
		header()
	}
	m, err := t.open(data)
	if err != nil {
		return t.fatal(err)
	}
	defer m.close()
	if shared {
		header()
	}
	status := t.loop(m)
	if status == exitOK {
		io.WriteString(t.env.Stdout, "\n")
	}
	return status
}

// fatal reports a failing call as traceroute's error() does: after an
// empty line (ending the header's line when there is one), but for the
// privilege complaint, which comes alone.
func (t *tracer) fatal(err error) int {
	if se, ok := err.(*sysError); ok && se.noPriv {
		fmt.Fprintf(t.env.Stderr, "You do not have enough privileges to use this traceroute method.\n%s\n", se.Error())
		return exitFail
	}
	fmt.Fprintf(t.env.Stderr, "\n%s\n", err.Error())
	return exitFail
}

// open makes the method's sockets, with traceroute's errors.
func (t *tracer) open(data int) (method, error) {
	var src netip.Addr
	if t.o.src != "" {
		a, err := netip.ParseAddr(t.o.src)
		if err != nil || a.Is4() != t.dst.Is4() {
			return nil, &sysError{what: "bind", err: syscall.EADDRNOTAVAIL}
		}
		src = a
	}
	if t.o.iface != "" {
		if _, err := t.h.Interface(t.ctx, t.o.iface); err != nil {
			return nil, &sysError{what: "setsockopt SO_BINDTODEVICE", err: syscall.ENODEV}
		}
	}
	c := common{t: t, src: src, data: make([]byte, data)}
	switch t.o.method {
	case methodICMP:
		return newICMP(c)
	case methodTCP:
		return newTCP(c)
	}
	port := t.o.port
	if port < 0 {
		port = 33434
		if t.o.method == methodUDP {
			port = 53
		}
	}
	// The data is what traceroute 2.1 sends: 0x40, 0x41, … .
	for i := range c.data {
		c.data[i] = byte(0x40 + i&0x3f)
	}
	return &udpMethod{common: c, port: port, fixed: t.o.method == methodUDP}, nil
}

// timeout is get_timeout: the wait for probe idx is HERE times the
// round trip of an answered probe of the same hop, else NEAR times that
// of a later probe already answered, at most MAX.
func (t *tracer) timeout(idx int) time.Duration {
	const prec = 0.001 // DEF_WAIT_PREC
	limit := func(v float64) time.Duration {
		return time.Duration(math.Round(min(v, t.o.wait)*1e6)) * time.Microsecond
	}
	nq := t.o.nprobes
	if t.o.here > 0 {
		first := idx - idx%nq
		for i := first; i < first+nq; i++ {
			p := &t.probes[i]
			if p.done && !p.recv.IsZero() && p.recv.After(p.sent) {
				return limit(t.o.here * (p.recv.Sub(p.sent).Seconds() + prec))
			}
		}
	}
	if t.o.near > 0 {
		for i := idx + 1; i < len(t.probes) && !t.probes[i].sent.IsZero(); i++ {
			p := &t.probes[i]
			if p.done && !p.recv.IsZero() && p.recv.After(p.sent) {
				return limit(t.o.near * (p.recv.Sub(p.sent).Seconds() + prec))
			}
		}
	}
	return limit(t.o.wait)
}

// loop is do_it: keep up to -N probes in flight from the first probe not
// yet printed, print probes in order as each is done (answered or timed
// out), and stop after the hop whose probe was final. Each pass either
// sends, handles a reply or expires the first pending probe, and every
// wait is bounded by a probe's timeout or the -z pause.
func (t *tracer) loop(m method) int {
	nq := t.o.nprobes
	t.probes = make([]probe, t.o.max*nq)
	start, end := (t.o.first-1)*nq, len(t.probes)
	var lastSend time.Time
	sendwait := time.Duration(t.o.sendwait * float64(time.Second))
	for start < end {
		now := time.Now()
		var wake time.Time // when to look again without a reply
		num := 0
		for n := start; n < end; n++ {
			pb := &t.probes[n]
			if n == start && !pb.done && !pb.sent.IsZero() {
				if exp := pb.sent.Add(t.timeout(n)); exp.After(now) {
					wake = exp
				} else {
					pb.done = true
					m.finished(n)
				}
			}
			if pb.done {
				if n == start {
					t.print(n)
					start++
				}
				if pb.final {
					end = (n/nq + 1) * nq
				}
				continue
			}
			if pb.sent.IsZero() {
				if sendwait > 0 && !lastSend.IsZero() && now.Sub(lastSend) < sendwait {
					wake = earlier(wake, lastSend.Add(sendwait))
					break
				}
				sent, err := m.send(n, n/nq+1)
				if tb, ok := err.(*tooBig); ok {
					pb.sent, pb.recv, lastSend = sent, time.Now(), sent
					pb.errStr, pb.final, pb.done = fmt.Sprintf("!F-%d", tb.mtu), true, true
					if n == start {
						t.print(n)
						start++
					}
					end = (n/nq + 1) * nq
					continue
				}
				if err != nil {
					return t.fatal(err)
				}
				if sent.IsZero() {
					// A transient failure: retry once something is in flight.
					if !wake.IsZero() || num > 0 {
						break
					}
					return t.fatal(&sysError{what: "send probe", err: syscall.ENOBUFS})
				}
				pb.sent, lastSend = sent, sent
				now = time.Now()
			}
			num++
			if num >= t.o.sim {
				break
			}
		}
		if start >= end {
			break
		}
		if first := &t.probes[start]; !first.done && !first.sent.IsZero() {
			wake = earlier(wake, first.sent.Add(t.timeout(start)))
		}
		if wake.IsZero() {
			wake = time.Now().Add(10 * time.Millisecond) // a retry after a transient failure
		}
		if !t.wait(m, time.Until(wake)) {
			io.WriteString(t.env.Stdout, "\n")
			return 130 // interrupted, as a shell reports SIGINT
		}
	}
	return exitOK
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// wait handles the replies that come within d (at least the first); it
// reports false when ctx ended.
func (t *tracer) wait(m method, d time.Duration) bool {
	timer := time.NewTimer(max(d, 0))
	defer timer.Stop()
	select {
	case ev := <-t.events:
		t.handle(m, ev)
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
	for range cap(t.events) {
		select {
		case ev := <-t.events:
			t.handle(m, ev)
		default:
			return true
		}
	}
	return true
}

// handle is recv_reply's bookkeeping for one reply.
func (t *tracer) handle(m method, ev reply) {
	if ev.idx < 0 || ev.idx >= len(t.probes) {
		return
	}
	pb := &t.probes[ev.idx]
	if pb.done || pb.sent.IsZero() {
		return
	}
	switch {
	case ev.ee != nil && ev.ee.origin == originLocal:
		// No hop answered: the probe is printed as "*" with the MTU
		// and ends the trace, as traceroute 2.1 prints it.
		pb.errStr, pb.final = fmt.Sprintf("!F-%d", ev.ee.info), true
	case ev.ee != nil:
		if !ev.ee.offender.IsValid() {
			return
		}
		pb.res = ev.ee.offender
		pb.errStr, pb.final = icmpResult(t.v6(), ev.ee.typ, ev.ee.code, ev.ee.info)
	default:
		pb.res = ev.from
		pb.final = true
	}
	pb.recv = ev.at
	if !pb.recv.After(pb.sent) {
		pb.recv = pb.sent.Add(time.Microsecond)
	}
	pb.done = true
	m.finished(ev.idx)
}

// ICMP types and codes (RFC 792, RFC 1812 §5.2.7.1, RFC 4443 §3).
const (
	icmp4Unreach, icmp4TimeExceeded, icmp4SourceQuench, icmp4Redirect = 3, 11, 4, 5
	icmp6Unreach, icmp6TooBig, icmp6TimeExceeded                      = 1, 2, 3
)

// icmpResult is parse_icmp_res: the annotation an ICMP error gives a
// probe and whether the trace ends at its hop (everything but time
// exceeded in transit does; port unreachable is the destination itself,
// with no annotation).
func icmpResult(v6 bool, typ, code uint8, info uint32) (string, bool) {
	if !v6 {
		switch typ {
		case icmp4TimeExceeded:
			if code == 0 {
				return "", false
			}
		case icmp4Unreach:
			switch code {
			case 0, 6, 8, 11: // net, net unknown, source isolated, TOS net
				return "!N", true
			case 1, 7, 12: // host, host unknown, TOS host
				return "!H", true
			case 9, 10, 13: // net, host, communication prohibited
				return "!X", true
			case 3:
				return "", true
			case 2:
				return "!P", true
			case 4:
				return fmt.Sprintf("!F-%d", info), true
			case 5:
				return "!S", true
			case 14:
				return "!V", true
			case 15:
				return "!C", true
			}
			return fmt.Sprintf("!<%d>", code), true
		}
		return fmt.Sprintf("!<%d-%d>", typ, code), true
	}
	switch typ {
	case icmp6TimeExceeded:
		if code == 0 {
			return "", false
		}
	case icmp6Unreach:
		switch code {
		case 0:
			return "!N", true
		case 2, 3: // beyond scope, address unreachable
			return "!H", true
		case 1:
			return "!X", true
		case 4:
			return "", true
		}
		return fmt.Sprintf("!<%d>", code), true
	case icmp6TooBig:
		return fmt.Sprintf("!F-%d", info), true
	}
	return fmt.Sprintf("!<%d-%d>", typ, code), true
}

// print is print_probe: the hop number before a hop's first probe, "*"
// for silence, the responder's address when it differs from the last
// one that answered at this hop, the round trip and the annotation.
func (t *tracer) print(idx int) {
	nq := t.o.nprobes
	pb := &t.probes[idx]
	np := idx % nq
	var b strings.Builder
	if np == 0 {
		fmt.Fprintf(&b, "\n%2d ", idx/nq+1)
	}
	if !pb.res.IsValid() {
		b.WriteString(" *")
	} else {
		prn := np == 0
		if !prn {
			k := idx - 1
			for ; k >= idx-np && !t.probes[k].res.IsValid(); k-- {
			}
			prn = k < idx-np || t.probes[k].res != pb.res
		}
		if prn {
			b.WriteString(t.addrText(pb.res))
		}
	}
	if !pb.recv.IsZero() {
		fmt.Fprintf(&b, "  %.3f ms", float64(pb.recv.Sub(pb.sent).Microseconds())/1000)
	}
	if pb.errStr != "" {
		b.WriteString(" " + pb.errStr)
	}
	io.WriteString(t.env.Stdout, b.String())
}

// addrText is print_addr: " ADDR" with -n, else " NAME (ADDR)", the
// address standing in for a name it has none.
func (t *tracer) addrText(a netip.Addr) string {
	if t.o.numeric {
		return " " + a.String()
	}
	name, ok := t.names[a]
	if !ok {
		if t.cfg.Reverse != nil {
			if n, err := t.cfg.Reverse(t.ctx, t.h, t.env.Getenv, a); err == nil {
				name = strings.TrimSuffix(n, ".")
			}
		}
		if name == "" {
			name = a.String()
		}
		t.names[a] = name
	}
	return fmt.Sprintf(" %s (%s)", name, a)
}
