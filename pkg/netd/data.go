package netd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// upgradeProto is the Upgrade token of a data socket's stream.
const upgradeProto = "stackbox-socket"

// socketHeader is the 101 answer's header that describes the new socket.
const socketHeader = "Stackbox-Socket"

// SocketRequest is the body of POST /v1/sockets.
type SocketRequest struct {
	// Op is "dial", "listen", "listen_packet" or "accept".
	Op       string              `json:"op"`
	Network  string              `json:"network,omitempty"`
	Address  string              `json:"address,omitempty"`
	Options  *host.SocketOptions `json:"options,omitempty"`
	Listener uint64              `json:"listener,omitempty"` // accept: the listener's id
}

// SocketInfo is the Stackbox-Socket header of the 101 answer.
type SocketInfo struct {
	ID     uint64         `json:"id"`
	Kind   string         `json:"kind"` // "stream", "packet", "listener"
	Local  netip.AddrPort `json:"local,omitzero"`
	Remote netip.AddrPort `json:"remote,omitzero"`
}

// dataSock is one data socket the server holds for a client.
type dataSock struct {
	id     uint64
	uid    uint32
	closer io.Closer // the host's conn, packet conn or listener
	// Listeners only: accepted hands connections to accept requests;
	// dead is closed when the accept loop has ended.
	// done is closed when the client's stream for it ends.
	accepted chan net.Conn
	dead     chan struct{}
	done     chan struct{}
}

// dataState is the server's table of data sockets.
type dataState struct {
	mu      sync.Mutex
	socks   map[uint64]*dataSock
	nextID  uint64
	closing bool
}

func (d *dataState) add(ds *dataSock) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	if d.socks == nil {
		d.socks = make(map[uint64]*dataSock)
	}
	d.nextID++
	ds.id = d.nextID
	d.socks[ds.id] = ds
	return true
}

func (d *dataState) remove(ds *dataSock) {
	d.mu.Lock()
	delete(d.socks, ds.id)
	d.mu.Unlock()
}

func (d *dataState) get(id uint64) *dataSock {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.socks[id]
}

// closeAll closes every data socket (TCP connections end with a FIN) and
// refuses new ones.
func (d *dataState) closeAll() {
	d.mu.Lock()
	d.closing = true
	socks := make([]*dataSock, 0, len(d.socks))
	for _, ds := range d.socks {
		socks = append(socks, ds)
	}
	d.mu.Unlock()
	for _, ds := range socks {
		ds.closer.Close()
	}
}

// socketCred is the identity the host opens a client's sockets for.
func (s *Server) socketCred(r *http.Request) (host.Cred, error) {
	cr, ok := r.Context().Value(credKey{}).(credResult)
	if !ok || cr.err != nil {
		return host.Cred{}, host.Errorf(syscall.EPERM, "netd: peer credentials unknown: Operation not permitted")
	}
	c := cr.cred
	return host.Cred{
		UID: c.UID, GID: c.GID,
		Privileged: s.mayConfigure(r) == nil,
		PID:        int(c.PID),
		Program:    programOf(int(c.PID)),
	}, nil
}

// programOf is the command name of pid, as netstat -p prints it.
func programOf(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// openSocket serves POST /v1/sockets: it opens the socket the request
// asks for, switches the connection to the socket's stream and serves it
// until either side closes.
func (s *Server) openSocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), upgradeProto) {
		answerError(w, einval("POST /v1/sockets needs the headers Connection: Upgrade and Upgrade: %s", upgradeProto))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		answerError(w, einval("reading request body: %v", err))
		return
	}
	var req SocketRequest
	if err := decodeStrict(body, &req); err != nil {
		answerError(w, err)
		return
	}
	cred, err := s.socketCred(r)
	if err != nil {
		answerError(w, err)
		return
	}
	var opts host.SocketOptions
	if req.Options != nil {
		opts = *req.Options
	}
	opts.Cred = &cred
	ctx := r.Context()
	ds := &dataSock{uid: cred.UID}
	var info SocketInfo
	var serve func(uc net.Conn, br *bufio.Reader)
	var uc net.Conn           // hijacked early by accept
	var brw *bufio.ReadWriter // its buffers
	var requeue func()        // accept: give the connection back
	switch req.Op {
	case "dial":
		c, err := s.h.Dial(ctx, req.Network, req.Address, &opts)
		if err != nil {
			answerError(w, err)
			return
		}
		ds.closer = c
		info = connInfo(c)
		if pc, ok := c.(host.PacketConn); ok {
			serve = func(uc net.Conn, br *bufio.Reader) { servePacket(uc, br, pc) }
		} else {
			serve = func(uc net.Conn, br *bufio.Reader) { serveStream(uc, br, c) }
		}
	case "listen_packet":
		pc, err := s.h.ListenPacket(ctx, req.Network, req.Address, &opts)
		if err != nil {
			answerError(w, err)
			return
		}
		ds.closer = pc
		info = connInfo(pc)
		serve = func(uc net.Conn, br *bufio.Reader) { servePacket(uc, br, pc) }
	case "listen":
		ln, err := s.h.Listen(ctx, req.Network, req.Address, &opts)
		if err != nil {
			answerError(w, err)
			return
		}
		ds.closer = ln
		ds.accepted, ds.dead, ds.done = make(chan net.Conn), make(chan struct{}), make(chan struct{})
		info = SocketInfo{Kind: "listener", Local: addrPortOf(ln.Addr())}
		go acceptLoop(ln, ds)
		serve = func(uc net.Conn, br *bufio.Reader) {
			// The stream only holds the listener open: anything read
			// (or EOF) ends it.
			br.ReadByte()
			ln.Close()
			close(ds.done)
		}
	case "accept":
		lds, err := s.listener(cred, req.Listener)
		if err != nil {
			answerError(w, err)
			return
		}
		// Take the connection over first: a client that gives up
		// waiting closes it, and only a read notices that.
		if uc, brw, err = http.NewResponseController(w).Hijack(); err != nil {
			answerError(w, host.Errorf(syscall.EIO, "netd: cannot switch to the socket stream: %v", err))
			return
		}
		defer uc.Close()
		c, err := waitAccept(lds, uc, brw.Reader)
		if err != nil {
			writeRawError(brw, err)
			return
		}
		ds.closer = c
		requeue = func() { lds.handBack(c) }
		info = connInfo(c)
		serve = func(uc net.Conn, br *bufio.Reader) { serveStream(uc, br, c) }
	default:
		answerError(w, einval("unknown socket op %q (dial, listen, listen_packet, accept)", req.Op))
		return
	}
	if !s.data.add(ds) {
		ds.closer.Close()
		answerError(w, host.Errorf(syscall.ESHUTDOWN, "netd is shutting down"))
		return
	}
	defer s.data.remove(ds)
	info.ID = ds.id
	if uc == nil {
		if uc, brw, err = http.NewResponseController(w).Hijack(); err != nil {
			ds.closer.Close()
			answerError(w, host.Errorf(syscall.EIO, "netd: cannot switch to the socket stream: %v", err))
			return
		}
		defer uc.Close()
	}
	uc.SetDeadline(time.Time{})
	hdr, _ := json.Marshal(info)
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %s\r\n\r\n", upgradeProto, socketHeader, hdr)
	if err := brw.Flush(); err != nil {
		if requeue != nil {
			requeue() // the client left: the connection waits for the next accept
			return
		}
		ds.closer.Close()
		return
	}
	serve(uc, brw.Reader)
	ds.closer.Close()
}

// listener returns the client's listener id, which cred may accept on.
func (s *Server) listener(cred host.Cred, id uint64) (*dataSock, error) {
	ds := s.data.get(id)
	if ds == nil || ds.accepted == nil {
		return nil, host.Errorf(syscall.EBADF, "netd: no listener %d", id)
	}
	if ds.uid != cred.UID && cred.UID != 0 {
		return nil, host.Errorf(syscall.EPERM, "netd: listener %d belongs to uid %d: Operation not permitted", id, ds.uid)
	}
	return ds, nil
}

// waitAccept waits for a connection on listener ds until the client
// closes uc (br is uc's reader; nothing is consumed from it).
func waitAccept(ds *dataSock, uc net.Conn, br *bufio.Reader) (net.Conn, error) {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		br.Peek(1) // returns at EOF, or when the deadline below stops it
	}()
	stop := func() {
		uc.SetReadDeadline(aLongTimeAgo)
		<-gone
		uc.SetReadDeadline(time.Time{})
	}
	select {
	case c := <-ds.accepted:
		stop()
		return c, nil
	case <-ds.dead:
	case <-ds.done:
	case <-gone:
		return nil, host.Errorf(syscall.ECANCELED, "netd: the client stopped waiting")
	}
	stop()
	return nil, host.Errorf(syscall.EBADF, "netd: listener %d is closed", ds.id)
}

// handBack returns a connection whose accept request went away, for the
// next one.
func (ds *dataSock) handBack(c net.Conn) {
	go func() {
		select {
		case ds.accepted <- c:
		case <-ds.dead:
			c.Close()
		case <-ds.done:
			c.Close()
		}
	}()
}

// writeRawError answers err on a taken-over connection, as answerError
// would have.
func writeRawError(brw *bufio.ReadWriter, err error) {
	he := asHostError(err)
	b, _ := json.Marshal(he)
	b = append(b, '\n')
	status := StatusOf(he.Errno)
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, http.StatusText(status), len(b))
	brw.Write(b)
	brw.Flush()
}

// acceptLoop accepts connections on ln and hands each to an accept
// request; it ends when ln is closed, closing a connection no request
// claimed.
func acceptLoop(ln net.Listener, ds *dataSock) {
	defer close(ds.dead)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		select {
		case ds.accepted <- c:
		case <-ds.done:
			c.Close()
			return
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.IPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		if a.Zone != "" {
			ip = ip.WithZone(a.Zone)
		}
		return netip.AddrPortFrom(ip.Unmap(), 0)
	}
	return netip.AddrPort{}
}

func connInfo(c net.Conn) SocketInfo {
	kind := "stream"
	if _, ok := c.(host.PacketConn); ok {
		kind = "packet"
	}
	info := SocketInfo{Kind: kind, Local: addrPortOf(c.LocalAddr())}
	if ra := c.RemoteAddr(); ra != nil {
		info.Remote = addrPortOf(ra)
	}
	return info
}

// errnoOf is the errno in err's chain, 0 when there is none.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	var he *host.Error
	if errors.As(err, &he) {
		return he.Errno
	}
	return 0
}

// serveStream relays a stream socket: frames from the client are
// written to c, and what c reads goes back as data frames, then an EOF
// or an error frame. The client closing its stream closes c.
func serveStream(uc net.Conn, br *bufio.Reader, c net.Conn) {
	down := make(chan struct{})
	go func() {
		defer close(down)
		buf := make([]byte, maxChunk)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if writeFrame(uc, frameData, buf[:n]) != nil {
					return
				}
			}
			if err == io.EOF {
				writeFrame(uc, frameEOF)
				return
			}
			if err != nil {
				errno := errnoOf(err)
				if errno == 0 {
					return // closed here
				}
				writeFrame(uc, frameError, answerPayload(errno, 0)[:4])
				return
			}
		}
	}()
	buf := make([]byte, maxChunk)
	broken := false // c refused a write: what follows is dropped
	var hdr [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break // the client closed the socket
		}
		kind, n, err := parseFrameHeader(hdr[:])
		if err != nil {
			break
		}
		switch kind {
		case frameData:
			for n > 0 {
				m := min(n, len(buf))
				if _, err := io.ReadFull(br, buf[:m]); err != nil {
					n = -1
					break
				}
				n -= m
				if !broken {
					if _, err := c.Write(buf[:m]); err != nil {
						// The error reaches the client through the
						// read side (an error frame); keep draining
						// so its writes do not block.
						broken = true
					}
				}
			}
			if n < 0 {
				goto done
			}
		case frameShutWr:
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				goto done
			}
		default:
			goto done // not a stream frame: the client is confused
		}
	}
done:
	c.Close()
	uc.Close()
	<-down
}

// drainErrQueue sends every message of pc's error queue to the client.
func drainErrQueue(pc host.PacketConn, write func(kind byte, parts ...[]byte) error) error {
	buf := make([]byte, 1<<16)
	oob := make([]byte, 1<<10)
	for range 1024 { // the queue is bounded; so is this loop
		n, oobn, rflags, from, err := pc.RecvMsg(buf, oob, syscall.MSG_ERRQUEUE)
		if err != nil {
			return nil
		}
		if err := write(frameErrQ, msgHeader(rflags, from, oob[:oobn]), buf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// servePacket relays a datagram socket: sends and option calls from the
// client are answered in order, and what pc receives goes to the client
// as it arrives (an error first queues its error-queue message, then the
// errno, so a MSG_ERRQUEUE read right after the error finds it).
func servePacket(uc net.Conn, br *bufio.Reader, pc host.PacketConn) {
	var wmu sync.Mutex
	write := func(kind byte, parts ...[]byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(uc, kind, parts...)
	}
	down := make(chan struct{})
	go func() {
		defer close(down)
		buf := make([]byte, 1<<16)
		oob := make([]byte, 1<<10)
		for {
			n, oobn, rflags, from, err := pc.RecvMsg(buf, oob, 0)
			if err != nil {
				errno := errnoOf(err)
				if errno == 0 || errno == syscall.EBADF {
					return // closed
				}
				if n, oobn, rflags, from, err := pc.RecvMsg(buf, oob, syscall.MSG_ERRQUEUE); err == nil {
					if write(frameErrQ, msgHeader(rflags, from, oob[:oobn]), buf[:n]) != nil {
						return
					}
				}
				if write(frameError, answerPayload(errno, 0)[:4]) != nil {
					return
				}
				continue
			}
			if write(frameRecv, msgHeader(rflags, from, oob[:oobn]), buf[:min(n, len(buf))]) != nil {
				return
			}
		}
	}()
	var fbuf []byte
	for {
		kind, p, err := readFrame(br, fbuf)
		if err != nil {
			break
		}
		fbuf = p[:0]
		var errno syscall.Errno
		var v int
		switch kind {
		case frameSend:
			_, to, oob, data, perr := parseMsg(p)
			if perr != nil {
				errno = syscall.EINVAL
				break
			}
			v, err = pc.SendMsg(data, oob, to)
			errno = errnoOf(err)
			if err != nil && errno == 0 {
				errno = syscall.EIO
			}
			if errno != 0 {
				// A send that reports a pending ICMP error took it from
				// SO_ERROR, so the reader will not see it: its details
				// go to the client now, before the answer, for the
				// MSG_ERRQUEUE read that follows.
				if drainErrQueue(pc, write) != nil {
					goto done
				}
			}
		case frameSetOpt:
			a, perr := parseInt32s(p, 3)
			if perr != nil {
				errno = syscall.EINVAL
				break
			}
			errno = errnoOf(pc.SetSockOptInt(a[0], a[1], a[2]))
		case frameGetOpt:
			a, perr := parseInt32s(p, 2)
			if perr != nil {
				errno = syscall.EINVAL
				break
			}
			v, err = pc.GetSockOptInt(a[0], a[1])
			errno = errnoOf(err)
		default:
			goto done
		}
		if write(frameAnswer, answerPayload(errno, v)) != nil {
			break
		}
	}
done:
	pc.Close()
	uc.Close()
	<-down
}
