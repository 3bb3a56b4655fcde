//go:build linux

// Package afpacket owns the AF_PACKET link endpoint: our stack joins an
// existing Ethernet interface (a NIC, or one end of a veth pair) as a
// separate host on that wire, with its own MAC, through a raw packet socket
// (packet(7)) bound to the interface.
//
// The socket is SOCK_RAW, so frames carry their Ethernet header. It joins
// the interface in promiscuous mode (PACKET_MR_PROMISC), since frames for
// our MAC are not the interface's own. The kernel never loops a packet
// socket's own writes back to it; the socket also skips every other frame
// transmitted out of the interface (by the host's stack or another packet
// socket), with PACKET_IGNORE_OUTGOING where the kernel has it and a check
// of sockaddr_ll's packet type in any case: our stack sees what arrives
// from the wire, as a separate host on it would.
//
// The socket is nonblocking and wrapped in an *os.File, which registers it
// with Go's poller: the reader goroutine blocks in the poller, and closing
// the file wakes it, so Close is prompt and leaves no goroutine.
//
// Limits: frames longer than MTU plus link.MaxFrameHeader are dropped and
// counted as RxErrors. On a veth whose peer offloads segmentation (TSO/GSO
// on by default) the kernel hands packet sockets unsegmented super-frames;
// turn those offloads off on the peer, or wait for PACKET_VNET_HDR support.
// VLAN tags the driver strips into metadata are not reinserted.
//
// Locks: none are held across calls; see package link for the rules.
package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Config describes the interface to join.
type Config struct {
	// Interface is the name of an existing Ethernet interface, e.g. "eth1"
	// or one end of a veth pair. It should be up; Open does not change it.
	Interface string
	// MAC our stack uses as a host on that wire. Zero picks a random
	// locally administered unicast address (02:…).
	MAC wire.MAC
}

// Endpoint is a packet socket bound to one interface. It implements
// link.Endpoint and link.Counter.
type Endpoint struct {
	link.Base // name "afpacket:IFACE", the interface's MTU, our MAC, counters

	iface string
	index int

	file *os.File
	raw  syscall.RawConn

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	readErr   atomic.Pointer[error]
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Counter  = (*Endpoint)(nil)
)

// Open binds a packet socket to cfg.Interface and starts the reader. The
// MTU is the interface's at the time of Open. Frames that arrive before
// Attach are dropped and counted.
func Open(cfg Config) (*Endpoint, error) {
	if cfg.Interface == "" {
		return nil, errors.New("afpacket: no interface given")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("afpacket: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("afpacket: %s is not an Ethernet interface", cfg.Interface)
	}
	if ifi.MTU < 68 {
		return nil, fmt.Errorf("afpacket: %s: MTU %d below the IPv4 minimum 68", cfg.Interface, ifi.MTU)
	}
	mac := cfg.MAC
	if mac.IsZero() {
		if mac, err = link.RandomMAC(); err != nil {
			return nil, err
		}
	} else if mac.IsMulticast() {
		return nil, fmt.Errorf("afpacket: MAC %v is a group address, not a host's", mac)
	}

	// Protocol 0 receives nothing until bind, so no frame from another
	// interface slips in between socket and bind.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket: %w", err)
	}
	if err := setup(fd, ifi.Index); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interface, err)
	}
	file := os.NewFile(uintptr(fd), "afpacket:"+cfg.Interface)
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("afpacket: %w", err)
	}
	e := &Endpoint{iface: cfg.Interface, index: ifi.Index, file: file, raw: raw, done: make(chan struct{})}
	e.Init("afpacket:"+cfg.Interface, ifi.MTU, mac, 0)
	go e.readLoop()
	return e, nil
}

func setup(fd, index int) error {
	// Linux ≥ 4.20; older kernels fall back to the pkttype check alone.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil &&
		!errors.Is(err, unix.ENOPROTOOPT) {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	// Membership is dropped by the kernel when the socket closes.
	mreq := unix.PacketMreq{Ifindex: int32(index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fmt.Errorf("promiscuous membership: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Interface is the name of the interface the socket is bound to.
func (e *Endpoint) Interface() string { return e.iface }

// ReadErr reports why the reader stopped on its own (the interface went
// away), or nil while it runs or after a normal Close.
func (e *Endpoint) ReadErr() error {
	if p := e.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// WritePackets sends each frame on the interface with one write(2) on the
// bound socket.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	for i, f := range frames {
		if e.closed.Load() {
			return i, link.ErrClosed
		}
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
		var werr error
		err := e.raw.Write(func(fd uintptr) bool {
			_, werr = unix.Write(int(fd), f)
			return werr != unix.EAGAIN // socket buffer full: wait in the poller
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			if e.closed.Load() {
				return i, link.ErrClosed
			}
			e.Counters.TxErrors.Add(1)
			return i, fmt.Errorf("afpacket: %s: write: %w", e.iface, err)
		}
		e.CountSent(len(f))
	}
	return len(frames), nil
}

// Close closes the socket, which wakes the reader, and waits for the reader
// to return. Close must not be called from inside DeliverFrame.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.closeErr = e.file.Close()
		<-e.done
	})
	return e.closeErr
}

func (e *Endpoint) readLoop() {
	defer close(e.done)
	size := e.MTU() + link.MaxFrameHeader
	for {
		buf := make([]byte, size)
		var (
			n       int
			pkttype uint8
			rerr    error
		)
		err := e.raw.Read(func(fd uintptr) bool {
			n, pkttype, rerr = recvFrame(fd, buf)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if e.closed.Load() {
				return
			}
			if errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.EINTR) {
				// ENETDOWN: the interface went down; the socket stays
				// bound and works again once it is up.
				e.Counters.RxErrors.Add(1)
				time.Sleep(time.Millisecond)
				continue
			}
			err = fmt.Errorf("afpacket: %s: read: %w", e.iface, err)
			e.readErr.Store(&err)
			return
		}
		if pkttype == unix.PACKET_OUTGOING {
			continue // the kernel's own transmission (ours included)
		}
		if n > len(buf) {
			e.Counters.RxErrors.Add(1) // truncated: MSG_TRUNC gave the real length
			continue
		}
		e.Deliver(buf[:n]) // counts runts as errors
	}
}

// recvFrame is recvfrom(2) with MSG_TRUNC, so a frame longer than buf
// reports its real length, and a sockaddr_ll on the stack rather than the
// Sockaddr unix.Recvfrom allocates per call.
func recvFrame(fd uintptr, buf []byte) (n int, pkttype uint8, err error) {
	var sa unix.RawSockaddrLinklayer
	salen := uint32(unsafe.Sizeof(sa))
	r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_TRUNC,
		uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
	if errno != 0 {
		return 0, 0, errno
	}
	return int(r), sa.Pkttype, nil
}
