// Package sniffer wraps any link endpoint and appends every frame it
// writes and every frame it receives to a pcap capture, then passes the
// frame on unchanged, like tcpdump on a Linux interface. It owns no frames:
// a received frame is captured before it is handed to the dispatcher, and a
// written frame is captured before the inner endpoint sends it (Linux too
// captures outgoing frames before the driver, in dev_queue_xmit_nit), so a
// frame the inner endpoint then fails to send still appears.
//
// Capture errors (a full disk) never stop traffic: they are counted and the
// first one is kept for CaptureErr.
package sniffer

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/pcap"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Endpoint is a capturing wrapper. It implements link.Endpoint and
// link.Counter (forwarding to the inner endpoint's counters, if any).
type Endpoint struct {
	inner  link.Endpoint
	w      *pcap.Writer
	closer io.Closer // the capture file, when NewFile opened it

	errs     atomic.Uint64
	errMu    sync.Mutex
	firstErr error

	closeOnce sync.Once
	closeErr  error
}

// New wraps inner, capturing to w. The caller keeps ownership of w's
// underlying writer.
func New(inner link.Endpoint, w *pcap.Writer) *Endpoint {
	return &Endpoint{inner: inner, w: w}
}

// NewFile wraps inner, capturing to a new pcap file at path (truncated if
// it exists), which Close closes. If it fails, inner stays open and the
// caller's to close.
func NewFile(inner link.Endpoint, path string) (*Endpoint, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("sniffer: %w", err)
	}
	w, err := pcap.NewWriter(f, 0)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sniffer: %s: %w", path, err)
	}
	e := New(inner, w)
	e.closer = f
	return e, nil
}

func (e *Endpoint) capture(frame []byte) {
	if err := e.w.WriteFrame(time.Now(), frame); err != nil {
		e.errs.Add(1)
		e.errMu.Lock()
		if e.firstErr == nil {
			e.firstErr = err
		}
		e.errMu.Unlock()
	}
}

// CaptureErrors counts frames that could not be written to the capture.
func (e *Endpoint) CaptureErrors() uint64 { return e.errs.Load() }

// Inner returns the wrapped endpoint.
func (e *Endpoint) Inner() link.Endpoint { return e.inner }

// Name returns the inner endpoint's name.
func (e *Endpoint) Name() string { return e.inner.Name() }

// MTU returns the inner endpoint's MTU.
func (e *Endpoint) MTU() int { return e.inner.MTU() }

// MAC returns the inner endpoint's MAC.
func (e *Endpoint) MAC() wire.MAC { return e.inner.MAC() }

// Capabilities returns the inner endpoint's capabilities.
func (e *Endpoint) Capabilities() link.Capabilities { return e.inner.Capabilities() }

// Stats returns the inner endpoint's counters, or zeros if it keeps none.
func (e *Endpoint) Stats() link.StatsSnapshot {
	if c, ok := e.inner.(link.Counter); ok {
		return c.Stats()
	}
	return link.StatsSnapshot{}
}

// Attach attaches d behind a capturing dispatcher; Attach(nil) detaches,
// so the inner endpoint counts the drops as before.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.inner.Attach(nil)
		return
	}
	e.inner.Attach(link.DispatcherFunc(func(frame []byte) {
		e.capture(frame)
		d.DeliverFrame(frame)
	}))
}

// WritePackets captures the frames the inner endpoint will accept (whole
// frames within its MTU) and writes them.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	mtu := e.inner.MTU()
	ok := len(frames)
	for i, f := range frames {
		if len(f) < 14 || !link.FrameFits(f, mtu) {
			ok = i
			break
		}
	}
	for _, f := range frames[:ok] {
		e.capture(f)
	}
	n, err := e.inner.WritePackets(frames[:ok])
	if err == nil && ok < len(frames) {
		if len(frames[ok]) < 14 {
			return n, link.ErrFrameShort
		}
		return n, link.ErrFrameTooBig
	}
	return n, err
}

// Close closes the inner endpoint and, for NewFile, the capture file.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closeErr = e.inner.Close()
		if e.closer != nil {
			if err := e.closer.Close(); err != nil && e.closeErr == nil {
				e.closeErr = fmt.Errorf("sniffer: closing capture: %w", err)
			}
		}
	})
	return e.closeErr
}

// CaptureErr returns the first capture error, or nil.
func (e *Endpoint) CaptureErr() error {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.firstErr
}
