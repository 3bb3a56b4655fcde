package transport

import (
	"net/netip"
	"sync"
	"syscall"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/waiter"
)

// DatagramEndpoint is the plumbing the datagram endpoints (UDP, raw IP,
// ping) share, embedded in each: the waiter queue, the receive queue, the
// error queue (IP_RECVERR), the pending error (SO_ERROR), the shutdown
// flags and the closed flag, with Linux's datagram-socket rules for them
// (datagram_poll, __skb_try_recv_datagram, sock_dequeue_err_skb,
// inet_shutdown). What a protocol decides — which packets and ICMP
// errors are its, what it queues, when a send fails — stays in its
// package.
//
// SoErr, ShutRd, ShutWr and Closed are guarded by the embedding
// endpoint's lock; the methods named …Locked are called with that lock
// held. The queues have their own leaf locks, so they may be used with or
// without it. NotifyShutdown and Release notify waiters and are called
// with no lock held.
type DatagramEndpoint struct {
	Q    waiter.Queue
	Rcv  DatagramQueue
	ErrQ DatagramQueue

	SoErr  syscall.Errno // the pending error (SO_ERROR); 0: none
	ShutRd bool          // SHUT_RD: reads return 0 bytes once the queue is empty
	ShutWr bool          // SHUT_WR: sends fail with EPIPE
	Closed bool
}

// Queue implements Endpoint.Queue.
func (d *DatagramEndpoint) Queue() *waiter.Queue { return &d.Q }

// Available is FIONREAD for a datagram socket: the next datagram's
// length (0 when none is queued).
func (d *DatagramEndpoint) Available() int {
	n, _ := d.Rcv.NextLen()
	return n
}

// ReadinessLocked is Endpoint.Readiness as Linux's datagram_poll
// computes it: readable with a datagram queued or after SHUT_RD (a read
// returns 0 then), hung up with both directions shut, writable while
// open, EventErr while an error is pending (SO_ERROR or the error queue).
func (d *DatagramEndpoint) ReadinessLocked(mask waiter.EventMask) waiter.EventMask {
	var r waiter.EventMask
	if d.Rcv.Len() > 0 {
		r |= waiter.EventIn | waiter.EventRdNorm
	}
	if d.SoErr != 0 || d.ErrQ.Len() > 0 {
		r |= waiter.EventErr
	}
	if d.ShutRd {
		r |= waiter.EventRdHUp | waiter.EventIn | waiter.EventRdNorm
	}
	if d.ShutRd && d.ShutWr {
		r |= waiter.EventHUp
	}
	if !d.Closed {
		r |= waiter.EventOut | waiter.EventWrNorm
	}
	return r & waiter.Normalize(mask)
}

// TakeErrorLocked returns the pending error and clears it: SO_ERROR, and
// a read or a send reports it once (sock_error).
func (d *DatagramEndpoint) TakeErrorLocked() syscall.Errno {
	err := d.SoErr
	d.SoErr = 0
	return err
}

// ReadLocked is the common part of a datagram endpoint's Read, after the
// protocol's own checks: EBADF once closed; with o.ErrQueue one queued
// error (ReadErrQueueLocked); else the pending error first, returned
// once (__skb_try_recv_datagram reports it before any data); else the
// oldest datagram into the buffers, EAGAIN when none is queued and a
// 0-byte read after SHUT_RD. ok reports that a datagram was read from
// the receive queue (not the error queue, not the 0-byte read).
func (d *DatagramEndpoint) ReadLocked(dst [][]byte, o ReadOptions) (r ReadResult, ok bool, err error) {
	if d.Closed {
		return ReadResult{}, false, syscall.EBADF
	}
	if o.ErrQueue {
		r, err := d.ReadErrQueueLocked(dst, o)
		return r, false, err
	}
	if err := d.TakeErrorLocked(); err != 0 {
		return ReadResult{}, false, err
	}
	dg, ok := d.Rcv.Pop(o.Peek)
	if !ok {
		if d.ShutRd {
			return ReadResult{}, false, nil
		}
		return ReadResult{}, false, syscall.EAGAIN
	}
	return dg.ReadInto(dst, o), true, nil
}

// ReadErrQueueLocked reads one queued error (MSG_ERRQUEUE, never
// blocking; EAGAIN when none is queued). As Linux's
// sock_dequeue_err_skb, SO_ERROR then becomes the next queued error's
// errno, or 0 when none is left.
func (d *DatagramEndpoint) ReadErrQueueLocked(dst [][]byte, o ReadOptions) (ReadResult, error) {
	dg, ok := d.ErrQ.Pop(o.Peek)
	if !ok {
		return ReadResult{}, syscall.EAGAIN
	}
	if !o.Peek {
		d.SoErr = 0
		if next, ok := d.ErrQ.Pop(true); ok && next.Control.Err != nil {
			d.SoErr = syscall.Errno(next.Control.Err.Errno)
		}
	}
	return dg.ReadInto(dst, o), nil
}

// SendCheckLocked is what a datagram send checks first: EBADF once
// closed, EPIPE after SHUT_WR.
func (d *DatagramEndpoint) SendCheckLocked() error {
	if d.Closed {
		return syscall.EBADF
	}
	if d.ShutWr {
		return syscall.EPIPE
	}
	return nil
}

// ShutdownLocked shuts the directions how names (syscall.SHUT_RD,
// SHUT_WR or SHUT_RDWR; EINVAL for anything else). The caller then
// releases its lock and calls NotifyShutdown; as inet_shutdown, an
// unconnected socket is shut all the same but answers ENOTCONN.
func (d *DatagramEndpoint) ShutdownLocked(how int) error {
	switch how {
	case syscall.SHUT_RD:
		d.ShutRd = true
	case syscall.SHUT_WR:
		d.ShutWr = true
	case syscall.SHUT_RDWR:
		d.ShutRd, d.ShutWr = true, true
	default:
		return syscall.EINVAL
	}
	return nil
}

// NotifyShutdown wakes the waiters after a shutdown (a blocked reader
// reads 0 bytes, a blocked writer sees EPIPE).
func (d *DatagramEndpoint) NotifyShutdown() {
	d.Q.Notify(waiter.EventIn | waiter.EventRdHUp | waiter.EventHUp | waiter.EventOut)
}

// CloseLocked marks the endpoint closed and reports whether it was open
// (a second Close does nothing). The caller undoes its own state, then
// releases its lock and calls Release.
func (d *DatagramEndpoint) CloseLocked() bool {
	if d.Closed {
		return false
	}
	d.Closed = true
	return true
}

// Release drops what is queued on both queues and wakes the waiters, at
// the end of Close.
func (d *DatagramEndpoint) Release() {
	d.Rcv.Clear()
	d.ErrQ.Clear()
	d.Q.Notify(waiter.EventHUp | waiter.EventIn | waiter.EventOut)
}

// ReadInto copies the datagram into the buffers in order (scatter) and
// describes it: N is the bytes copied, or with o.Trunc (MSG_TRUNC) the
// datagram's full length; Truncated when the buffers were shorter.
func (d Datagram) ReadInto(dst [][]byte, o ReadOptions) ReadResult {
	n := CopyOut(dst, d.Data)
	r := ReadResult{N: n, From: d.From, Control: d.Control}
	if n < len(d.Data) {
		r.Truncated = true
		if o.Trunc {
			r.N = len(d.Data)
		}
	}
	return r
}

// ControlFor is the ancillary data the options ask for about a received
// packet: its TTL or hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT), its TOS
// or traffic class (IP_RECVTOS / IPV6_RECVTCLASS), and its interface and
// destination (IP_PKTINFO / IPV6_RECVPKTINFO).
func ControlFor(o *Options, pi *stack.PacketInfo) ControlMessages {
	var c ControlMessages
	if o.RecvTTL {
		c.HasTTL, c.TTL = true, pi.TTL
	}
	if o.RecvTOS {
		c.HasTOS, c.TOS = true, pi.TOS
	}
	if o.PktInfo {
		c.HasPktInfo, c.Dst = true, pi.Dst
		if pi.NIC != nil {
			c.IfIndex = pi.NIC.Index()
		}
	}
	return c
}

// StackWriteOptions is what the options give a packet of IP protocol
// proto to dst (the TTL or hop limit, TOS or traffic class, DF and
// multicast loop), a sendmsg's IP_TTL / IP_TOS control messages (w)
// taking precedence.
func (o *Options) StackWriteOptions(proto uint8, dst netip.Addr, w WriteOptions) stack.WriteOptions {
	wo := stack.WriteOptions{Proto: proto, TTL: o.HopLimit(dst), TOS: o.TrafficClass(dst),
		DontFragment: o.DontFragment(), Loop: o.Loop(dst)}
	if w.HasTTL {
		wo.TTL = w.TTL
	}
	if w.HasTOS {
		wo.TOS = w.TOS
	}
	return wo
}

// ICMPErrorDatagram is the error-queue entry ip_icmp_error and
// ipv6_icmp_error make for an ICMP error: data (what the protocol shows
// of the quoted packet), from the quoted packet's destination with port
// 0, and the sock_extended_err with the ICMP type and code, the offender
// and ee_info (the MTU of fragmentation needed / packet too big, or a
// parameter problem's pointer).
func ICMPErrorDatagram(ie *stack.ICMPError, errno syscall.Errno, data []byte) Datagram {
	ee := &SockExtendedErr{Errno: int(errno), Origin: OriginICMP, Type: ie.Type, Code: ie.Code, Offender: ie.From}
	if ie.IsIPv6() {
		ee.Origin = OriginICMP6
	}
	switch {
	case ie.MTU != 0:
		ee.Info = uint32(ie.MTU)
	case ie.Pointer != 0:
		ee.Info = uint32(ie.Pointer)
	}
	return Datagram{Data: data, From: netip.AddrPortFrom(ie.Dst, 0), Control: ControlMessages{Err: ee}}
}

// EndpointSet is a protocol's open endpoints, for netstat. The zero value
// is empty and ready. Its lock is a leaf: Add and Remove may be called
// with an endpoint's lock held, and Infos calls each Info with the set's
// lock released.
type EndpointSet[E interface {
	comparable
	Info() Info
}] struct {
	mu sync.Mutex
	m  map[E]struct{}
}

// Add records an opened endpoint.
func (s *EndpointSet[E]) Add(e E) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[E]struct{})
	}
	s.m[e] = struct{}{}
}

// Remove forgets a closed endpoint.
func (s *EndpointSet[E]) Remove(e E) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, e)
}

// Infos describes the endpoints (in no particular order).
func (s *EndpointSet[E]) Infos() []Info {
	s.mu.Lock()
	list := make([]E, 0, len(s.m))
	for e := range s.m {
		list = append(list, e)
	}
	s.mu.Unlock()
	out := make([]Info, 0, len(list))
	for _, e := range list {
		out = append(out, e.Info())
	}
	return out
}
