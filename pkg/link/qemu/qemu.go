// Package qemu joins the stack to a QEMU guest's NIC through QEMU's socket
// network backends, so a VM and the stack share one Ethernet:
//
//   - "-netdev dgram" (DialUDP): each UDP datagram carries one raw Ethernet
//     frame, no header (QEMU net/dgram.c sends the frame as the datagram).
//   - "-netdev stream" and the older "-netdev socket,connect=/listen="
//     (DialStream, ListenStream): frames over a stream socket, each preceded
//     by its length as a 4-byte big-endian integer. QEMU writes
//     htonl(size) and then the frame (net/stream_data.c,
//     net_stream_data_receive; net/socket.c does the same), and reads the
//     length back with ntohl in net/net.c net_fill_rstate, ending the
//     connection when a frame would exceed NET_BUFSIZE (4096 + 65536)
//     bytes. We apply the same bound, MaxStreamFrame, before allocating.
//
// An endpoint has one reader goroutine. Close closes the socket, which
// unblocks both the reader and any writer, and waits for the reader.
//
// Locks: wmu serialises writes to a stream so frames never interleave;
// mu guards the current stream connection and the closed flag. Neither
// is held while a frame is delivered.
package qemu

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// MaxStreamFrame is the largest frame length a stream peer may announce:
// QEMU's own NET_BUFSIZE (include/net/net.h), room for a 64 KiB GSO frame
// and its headers. Larger announcements end the connection.
const MaxStreamFrame = 4096 + 65536

// DefaultMTU is the MTU of a QEMU guest NIC unless configured otherwise.
const DefaultMTU = 1500

// ErrOversized is wrapped by the error that ends a stream whose peer
// announced a frame longer than MaxStreamFrame.
var ErrOversized = errors.New("qemu: stream frame length over the limit")

// Option configures an endpoint.
type Option func(*options)

type options struct {
	mtu int
	mac wire.MAC
}

// WithMTU sets the endpoint's MTU (default 1500).
func WithMTU(mtu int) Option { return func(o *options) { o.mtu = mtu } }

// WithMAC sets the MAC the stack uses on the link (default: random,
// locally administered).
func WithMAC(mac wire.MAC) Option { return func(o *options) { o.mac = mac } }

func buildOptions(opts []Option) (options, error) {
	o := options{mtu: DefaultMTU}
	for _, f := range opts {
		f(&o)
	}
	if o.mtu <= 0 || o.mtu > MaxStreamFrame-link.MaxFrameHeader {
		return o, fmt.Errorf("qemu: MTU %d out of range 1..%d", o.mtu, MaxStreamFrame-link.MaxFrameHeader)
	}
	if o.mac.IsZero() {
		if _, err := rand.Read(o.mac[:]); err != nil {
			return o, fmt.Errorf("qemu: random MAC: %w", err)
		}
		o.mac[0] = o.mac[0]&^1 | 2 // unicast, locally administered
	}
	if o.mac.IsMulticast() {
		return o, fmt.Errorf("qemu: MAC %v is a multicast address", o.mac)
	}
	return o, nil
}

// Endpoint is a QEMU socket backend. It implements link.Endpoint and
// link.Counter.
type Endpoint struct {
	link.Base // name as the spec says it, MTU and MAC from the options, counters

	// dgram
	udp    *net.UDPConn
	remote netip.AddrPort

	// stream
	wmu      sync.Mutex
	ln       net.Listener // ListenStream only
	listener bool

	mu     sync.Mutex
	conn   net.Conn // current stream connection, nil while none
	closed bool
	err    error // why the last connection ended

	done chan struct{} // closed when delivery has ended for good
	wg   sync.WaitGroup
}

// DialUDP opens a "-netdev dgram" peer: it binds local and exchanges
// frames with remote (both "host:port"). Datagrams from any other source
// are dropped and counted as RxErrors. The matching QEMU options are
// -netdev dgram,id=n0,local.type=inet,local.host=H,local.port=REMOTEPORT,
// remote.type=inet,remote.host=H,remote.port=LOCALPORT.
func DialUDP(local, remote string, opts ...Option) (*Endpoint, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return nil, fmt.Errorf("qemu: local address %q: %w", local, err)
	}
	ra, err := net.ResolveUDPAddr("udp", remote)
	if err != nil {
		return nil, fmt.Errorf("qemu: remote address %q: %w", remote, err)
	}
	// Unconnected, so an ICMP port unreachable while QEMU is not yet up
	// does not turn into read errors.
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	e := &Endpoint{
		udp:    c,
		remote: unmap(ra.AddrPort()),
		done:   make(chan struct{}),
	}
	e.Init("udp:"+local+","+remote, o.mtu, o.mac, 0)
	e.wg.Add(1)
	go e.readDgram()
	return e, nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// DialStream connects to a QEMU "-netdev stream,server=on" (or
// "-netdev socket,listen=") on network "unix" or "tcp". When the peer
// disconnects, delivery ends (Done is closed) and writes fail.
func DialStream(network, address string, opts ...Option) (*Endpoint, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	e := &Endpoint{
		conn: c,
		done: make(chan struct{}),
	}
	e.Init(network+":"+address, o.mtu, o.mac, 0)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(e.done)
		e.readStream(c)
	}()
	return e, nil
}

// ListenStream listens on network "unix" or "tcp" for QEMU
// "-netdev stream,server=off" (or "-netdev socket,connect=") and serves one
// client at a time: while none is connected, frames written are dropped
// and counted (the cable is unplugged), and when a client leaves the next
// one is accepted, as QEMU's own stream server does.
func ListenStream(network, address string, opts ...Option) (*Endpoint, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	e := &Endpoint{
		ln:       ln,
		listener: true,
		done:     make(chan struct{}),
	}
	e.Init(network+":"+address+",listen", o.mtu, o.mac, 0)
	e.wg.Add(1)
	go e.accept()
	return e, nil
}

func checkNetwork(network string) error {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("qemu: stream network %q not supported; want unix or tcp", network)
}

func (e *Endpoint) accept() {
	defer e.wg.Done()
	defer close(e.done)
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // closed (Close closes the listener)
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conn = c
		e.mu.Unlock()
		e.readStream(c)
	}
}

// readStream delivers frames from c until it fails, then forgets c.
func (e *Endpoint) readStream(c net.Conn) {
	err := e.streamLoop(c)
	c.Close()
	e.mu.Lock()
	if e.conn == c {
		e.conn = nil
	}
	if !e.closed {
		e.err = err
	}
	e.mu.Unlock()
}

// streamLoop reads length-prefixed frames from r until it fails.
func (e *Endpoint) streamLoop(r io.Reader) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("qemu: %s: peer closed inside a length prefix: %w", e.Name(), err)
			}
			return fmt.Errorf("qemu: %s: peer disconnected: %w", e.Name(), err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MaxStreamFrame {
			e.Counters.RxErrors.Add(1)
			return fmt.Errorf("qemu: %s: peer announced a %d-byte frame, more than %d: %w", e.Name(), n, MaxStreamFrame, ErrOversized)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return fmt.Errorf("qemu: %s: peer closed inside a %d-byte frame: %w", e.Name(), n, err)
		}
		e.Deliver(frame)
	}
}

func (e *Endpoint) readDgram() {
	defer e.wg.Done()
	defer close(e.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := e.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. ECONNREFUSED from an earlier send): count and
			// go on; the read blocks again, so this cannot spin.
			e.Counters.RxErrors.Add(1)
			continue
		}
		if unmap(from) != e.remote {
			e.Counters.RxErrors.Add(1)
			continue
		}
		e.Deliver(append([]byte(nil), buf[:n]...))
	}
}

// LocalAddr is the address of the socket (UDP), listener, or connection.
func (e *Endpoint) LocalAddr() net.Addr {
	switch {
	case e.udp != nil:
		return e.udp.LocalAddr()
	case e.ln != nil:
		return e.ln.Addr()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		return e.conn.LocalAddr()
	}
	return nil
}

// Done is closed when delivery has ended for good: after Close, or for
// DialStream when the peer disconnected or broke the framing.
func (e *Endpoint) Done() <-chan struct{} { return e.done }

// Err returns why the last stream connection ended (nil while it lasts
// and after Close).
func (e *Endpoint) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Connected reports whether a stream peer is connected (always true for
// an open UDP endpoint).
func (e *Endpoint) Connected() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed && (e.udp != nil || e.conn != nil)
}

func (e *Endpoint) check(frames [][]byte) (int, error) {
	for i, f := range frames {
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// WritePackets sends the frames. A stream write blocks while the peer does
// not read (back-pressure); Close unblocks it.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	ok, badErr := e.check(frames)
	frames = frames[:ok]
	e.mu.Lock()
	closed, conn, lastErr := e.closed, e.conn, e.err
	e.mu.Unlock()
	if closed {
		return 0, link.ErrClosed
	}
	if e.udp != nil {
		for i, f := range frames {
			if _, err := e.udp.WriteToUDPAddrPort(f, e.remote); err != nil {
				e.Counters.TxErrors.Add(1)
				return i, e.writeErr(err)
			}
			e.CountSent(len(f))
		}
		return ok, badErr
	}
	if conn == nil {
		if !e.listener {
			return 0, lastErr // the dialled peer has gone
		}
		e.Counters.TxDropped.Add(uint64(len(frames)))
		return ok, badErr
	}
	bufs := make(net.Buffers, 0, 2*len(frames))
	hdrs := make([]byte, 4*len(frames))
	for i, f := range frames {
		h := hdrs[4*i : 4*i+4]
		binary.BigEndian.PutUint32(h, uint32(len(f)))
		bufs = append(bufs, h, f)
	}
	e.wmu.Lock()
	_, err := bufs.WriteTo(conn) // writev; frames are whole or the stream is dead
	e.wmu.Unlock()
	if err != nil {
		e.Counters.TxErrors.Add(uint64(len(frames)))
		// A partial write desynchronises the framing: drop the connection.
		conn.Close()
		return 0, e.writeErr(err)
	}
	for _, f := range frames {
		e.CountSent(len(f))
	}
	return ok, badErr
}

func (e *Endpoint) writeErr(err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return link.ErrClosed
	}
	return fmt.Errorf("qemu: %s: %w", e.Name(), err)
}

// Close closes the socket(s), which ends the reader, and waits for it.
// It must not be called from DeliverFrame.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.err = nil
	conn := e.conn
	e.mu.Unlock()
	var err error
	if e.udp != nil {
		err = e.udp.Close()
	}
	if e.ln != nil {
		err = e.ln.Close()
	}
	if conn != nil {
		conn.Close()
	}
	e.wg.Wait()
	return err
}
