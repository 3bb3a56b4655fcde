package transport

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/waiter"
)

func TestDatagramEndpointRead(t *testing.T) {
	var d DatagramEndpoint
	from := netip.MustParseAddrPort("10.0.0.1:7")
	buf := make([]byte, 4)
	if _, _, err := d.ReadLocked([][]byte{buf}, ReadOptions{}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("empty read: %v, want EAGAIN", err)
	}
	d.Rcv.Push(Datagram{Data: []byte("hello"), From: from}, 1<<20)
	d.SoErr = syscall.ECONNREFUSED
	if got := d.ReadinessLocked(waiter.EventIn); got != waiter.EventIn|waiter.EventErr {
		t.Errorf("readiness %v, want EventIn|EventErr", got)
	}
	if _, ok, err := d.ReadLocked([][]byte{buf}, ReadOptions{}); ok || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read with a pending error: %v, %v; want ECONNREFUSED once", ok, err)
	}
	r, ok, err := d.ReadLocked([][]byte{buf}, ReadOptions{Trunc: true})
	if !ok || err != nil || r.N != 5 || !r.Truncated || r.From != from || string(buf) != "hell" {
		t.Fatalf("read: %+v %v %v %q", r, ok, err, buf)
	}
	d.ShutdownLocked(syscall.SHUT_RD)
	if r, ok, err := d.ReadLocked([][]byte{buf}, ReadOptions{}); ok || err != nil || r.N != 0 {
		t.Fatalf("read after SHUT_RD: %+v %v %v, want 0 bytes", r, ok, err)
	}
	if err := d.ShutdownLocked(7); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("shutdown(7): %v, want EINVAL", err)
	}
	if !d.CloseLocked() || d.CloseLocked() {
		t.Error("CloseLocked: want true once, then false")
	}
	if _, _, err := d.ReadLocked([][]byte{buf}, ReadOptions{}); !errors.Is(err, syscall.EBADF) {
		t.Errorf("read after close: %v, want EBADF", err)
	}
	if err := d.SendCheckLocked(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("send after close: %v, want EBADF", err)
	}
}

func TestDatagramEndpointErrQueue(t *testing.T) {
	var d DatagramEndpoint
	for _, e := range []syscall.Errno{syscall.EHOSTUNREACH, syscall.EMSGSIZE} {
		d.ErrQ.Push(Datagram{Control: ControlMessages{Err: &SockExtendedErr{Errno: int(e)}}}, 1<<20)
		d.SoErr = e
	}
	o := ReadOptions{ErrQueue: true}
	if r, ok, err := d.ReadLocked(nil, o); ok || err != nil || r.Control.Err.Errno != int(syscall.EHOSTUNREACH) {
		t.Fatalf("first error: %+v %v %v", r, ok, err)
	}
	if d.SoErr != syscall.EMSGSIZE {
		t.Errorf("SO_ERROR %v after the first read, want the next queued EMSGSIZE", d.SoErr)
	}
	d.ReadErrQueueLocked(nil, o)
	if d.SoErr != 0 {
		t.Errorf("SO_ERROR %v with the queue empty, want 0", d.SoErr)
	}
	if _, err := d.ReadErrQueueLocked(nil, o); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("empty error queue: %v, want EAGAIN", err)
	}
}

type infoer int

func (i infoer) Info() Info { return Info{RecvQ: int(i)} }

func TestEndpointSet(t *testing.T) {
	var s EndpointSet[infoer]
	s.Add(1)
	s.Add(2)
	s.Remove(1)
	if in := s.Infos(); len(in) != 1 || in[0].RecvQ != 2 {
		t.Errorf("Infos %+v, want the one endpoint left", in)
	}
}
