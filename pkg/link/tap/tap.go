//go:build linux

// Package tap owns the Linux TAP link endpoint: a kernel tap device whose
// file descriptor carries whole Ethernet frames between our stack and the
// kernel. Our stack is a host on the link the tap creates; the kernel side
// of the tap is another host on it (it has its own interface and MAC), so
// the MAC the stack uses (Endpoint.MAC) differs from the tap interface's.
//
// The device is opened through github.com/songgao/water, which sets
// IFF_TAP|IFF_NO_PI, so each read and write is exactly one Ethernet frame.
// Three defects of water's Linux open are worked around here: it opens
// /dev/net/tun without O_CLOEXEC (every child process would inherit the fd
// and keep a device we close alive), so close-on-exec is set straight after
// the open — a fork racing with that instant can still inherit the fd; it
// clears IFF_PERSIST on the device it attaches to, so a device that exists
// before the open is handed to water as persistent (see openTAP); and it leaks the fd when setup
// fails, which costs one fd per failed Open.
//
// By default the device is opened with IFF_VNET_HDR instead, which water
// cannot set, so that path opens /dev/net/tun itself (openVnet): every
// frame then carries a virtio-net header (vnet.go), and TUNSETOFFLOAD
// lets the kernel hand us TCP aggregates of up to 64 KiB with a partial
// checksum instead of one MTU-sized frame per read — GRO done by the
// kernel's GSO, as for a virtio NIC. The reader completes the checksum,
// so the stack sees an ordinary, valid TCP segment longer than the MTU
// (link.CapRXCoalesce). Frames we write carry an empty header. A kernel
// that refuses the header gets the plain path (Config.NoOffload forces it).
//
// Either fd is nonblocking inside an *os.File, so it is registered with
// Go's poller: a Read blocked in the reader goroutine returns as soon as
// the file is closed, and Close stops the reader promptly. The device is
// configured (MTU, IFF_UP) with SIOCSIFMTU and SIOCGIFFLAGS/SIOCSIFFLAGS on
// an AF_INET datagram socket; nothing shells out.
//
// Locks: none are held across calls. The reader goroutine loads the
// dispatcher from a link.DispatcherSlot; Close and WritePackets coordinate
// through an atomic closed flag and the file's own locking.
package tap

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Config describes the tap device to create or attach to.
type Config struct {
	// Name of the tap device. Empty lets the kernel pick one (tap0, tap1,
	// …); Endpoint.Device reports the real name. An existing tap device of
	// that name is attached to (it must not be open elsewhere).
	Name string
	// MTU to set on the device, 68..65535. Zero keeps the device's MTU:
	// 1500 for a device created now.
	MTU int
	// MAC the stack uses as a host on the link. Zero picks a random locally
	// administered unicast address (02:…).
	MAC wire.MAC
	// NoOffload opens the plain device (IFF_TAP|IFF_NO_PI, through water):
	// one MTU-sized frame per read and write, no virtio-net header.
	NoOffload bool
}

// Endpoint is an open tap device. It implements link.Endpoint and
// link.Counter.
type Endpoint struct {
	link.Base // name "tap:DEV", MTU, MAC, CapRXCoalesce with offloads, counters

	file        *os.File
	raw         syscall.RawConn // file's, for writev and the offload ioctls
	dev         string
	persistent  bool          // attached to an existing IFF_PERSIST device, which outlives Close
	vnet        bool          // frames carry a virtio-net header both ways
	coalesced   atomic.Uint64 // aggregates received
	coalescedTx atomic.Uint64 // aggregates written

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the reader goroutine has returned
	readErr   atomic.Pointer[error]
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Counter  = (*Endpoint)(nil)
)

// Open creates the tap device cfg.Name (or attaches to an existing one),
// sets its MTU, brings the kernel side up and starts the reader. Frames
// that arrive before Attach are dropped and counted.
func Open(cfg Config) (*Endpoint, error) {
	if err := checkName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.MTU != 0 && (cfg.MTU < 68 || cfg.MTU > 65535) {
		return nil, fmt.Errorf("tap: MTU %d outside 68..65535", cfg.MTU)
	}
	mac := cfg.MAC
	if mac.IsZero() {
		var err error
		if mac, err = link.RandomMAC(); err != nil {
			return nil, err
		}
	} else if mac.IsMulticast() {
		return nil, fmt.Errorf("tap: MAC %v is a group address, not a host's", mac)
	}

	var (
		file       *os.File
		dev        string
		persistent bool
		vnet       bool
		err        error = errNoVnet
	)
	if !cfg.NoOffload {
		file, dev, persistent, err = openVnet(cfg.Name)
		vnet = err == nil
	}
	if errors.Is(err, errNoVnet) {
		file, dev, persistent, err = openTAP(cfg.Name)
	}
	if err != nil {
		return nil, err
	}
	mtu, err := configure(dev, cfg.MTU)
	if err != nil {
		file.Close()
		return nil, err
	}
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("tap: %s: %w", dev, err)
	}
	e := &Endpoint{file: file, raw: raw, dev: dev, persistent: persistent, vnet: vnet, done: make(chan struct{})}
	var caps link.Capabilities
	if vnet {
		caps |= link.CapRXCoalesce
	}
	e.Init("tap:"+dev, mtu, mac, caps)
	go e.readLoop()
	return e, nil
}

// errNoVnet: the kernel refused IFF_VNET_HDR or the offloads; the plain
// device is opened instead.
var errNoVnet = errors.New("tap: no virtio-net header offloads")

// openVnet is openTAP for the offload path: it opens /dev/net/tun itself
// with IFF_VNET_HDR, sets the header size (a persistent device keeps
// whatever size its last user set) and enables checksum and TCP
// segmentation offloads (TUNSETOFFLOAD: the kernel may then send us
// partial checksums and TCP aggregates). It returns an error wrapping
// errNoVnet when the kernel has no such support, so the caller falls
// back.
func openVnet(name string) (file *os.File, dev string, persistent bool, err error) {
	persistent = name != "" && deviceExists(name)
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", false, fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, "", false, fmt.Errorf("tap: %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, "", false, tunSetIffError(name, err)
	}
	dev = ifr.Name()
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return nil, "", false, fmt.Errorf("%w: %s: TUNSETVNETHDRSZ: %v", errNoVnet, dev, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		unix.Close(fd)
		return nil, "", false, fmt.Errorf("%w: %s: TUNSETOFFLOAD: %v", errNoVnet, dev, err)
	}
	// A nonblocking fd: os.NewFile puts it on the poller.
	return os.NewFile(uintptr(fd), "/dev/net/tun"), dev, persistent, nil
}

// tunSetIffError explains a failed attach in the user's terms.
func tunSetIffError(name string, err error) error {
	switch {
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("tap: %s is in use by another process: %w", name, err)
	case errors.Is(err, unix.EINVAL) && name != "":
		return fmt.Errorf("tap: %s exists and is not a tap device: %w", name, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("tap: creating %q needs CAP_NET_ADMIN: %w", name, err)
	}
	return fmt.Errorf("tap: open %q: %w", name, err)
}

// checkName rejects names the kernel would reject, with a clearer message.
func checkName(name string) error {
	if len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("tap: device name %q longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\x00") {
		return fmt.Errorf("tap: invalid device name %q", name)
	}
	return nil
}

// openTAP attaches to the tap device name through water (created if
// missing; "" lets the kernel pick tapN). persistent reports that the
// device existed with IFF_PERSIST and so outlives our file.
func openTAP(name string) (file *os.File, dev string, persistent bool, err error) {
	// A tap device that exists while nobody holds it open must be
	// persistent (the kernel removes a non-persistent one with its last fd),
	// and one that somebody holds fails TUNSETIFF with EBUSY; so "exists
	// now" is "persistent" for every device we can attach to.
	persistent = name != "" && deviceExists(name)
	ifce, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: name, Persist: persistent},
	})
	if err != nil {
		return nil, "", false, tunSetIffError(name, err)
	}
	file, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, "", false, fmt.Errorf("tap: water returned a %T, not an *os.File", ifce.ReadWriteCloser)
	}
	// Not file.Fd(): that would put the fd back into blocking mode and take
	// it off the poller, and Close could no longer wake the reader.
	rc, err := file.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { syscall.CloseOnExec(int(fd)) })
	}
	if err != nil {
		file.Close()
		return nil, "", false, fmt.Errorf("tap: %s: set close-on-exec: %w", ifce.Name(), err)
	}
	return file, ifce.Name(), persistent, nil
}

// deviceExists reports whether an interface of that name exists in the
// calling thread's network namespace (SIOCGIFINDEX; sysfs would show the
// namespace it was mounted in instead).
func deviceExists(name string) bool {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return false
	}
	return unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr) == nil
}

// configure sets the MTU (unless zero), brings the device up and returns
// the MTU now in force.
func configure(dev string, mtu int) (int, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("tap: control socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return 0, fmt.Errorf("tap: %s: %w", dev, err)
	}
	if mtu != 0 {
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
			return 0, fmt.Errorf("tap: %s: set MTU %d: %w", dev, mtu, err)
		}
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("tap: %s: get MTU: %w", dev, err)
	}
	got := int(ifr.Uint32())
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, fmt.Errorf("tap: %s: get flags: %w", dev, err)
	}
	if flags := ifr.Uint16(); flags&unix.IFF_UP == 0 {
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
			return 0, fmt.Errorf("tap: %s: bring up: %w", dev, err)
		}
	}
	return got, nil
}

// Device is the kernel's name for the tap interface.
func (e *Endpoint) Device() string { return e.dev }

// Persistent reports whether the device existed with IFF_PERSIST before
// Open, so that it stays after Close; a device Open created goes with it.
func (e *Endpoint) Persistent() bool { return e.persistent }

// Coalesced counts the TCP aggregates received (frames the kernel's GSO
// left whole; each is also in the frame counters).
func (e *Endpoint) Coalesced() uint64 { return e.coalesced.Load() }

// CoalescedSent counts the GSO aggregates written, each made of several
// frames handed to one WritePackets call.
func (e *Endpoint) CoalescedSent() uint64 { return e.coalescedTx.Load() }

// ReadErr reports why the reader stopped on its own (the device went
// away), or nil while it runs or after a normal Close.
func (e *Endpoint) ReadErr() error {
	if p := e.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// WritePackets writes each frame to the device with one write(2) (with
// the virtio-net header, writev(2)): the tap driver takes exactly one
// frame per write. With offloads, consecutive TCP segments of one flow
// among frames go as one GSO aggregate in one write (coalesce), which
// the kernel takes whole, as from a virtio NIC doing TSO; each still
// counts as a frame sent.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	for i := 0; i < len(frames); {
		if e.closed.Load() {
			return i, link.ErrClosed
		}
		if err := e.CheckWrite(frames[i]); err != nil {
			return i, err
		}
		var (
			r   tcpRun
			k   = 1
			err error
		)
		if e.vnet && len(frames)-i > 1 {
			r, k = coalesce(frames[i:])
			for j := 1; j < k; j++ {
				if !link.FrameFits(frames[i+j], e.MTU()) {
					k = j // CheckWrite refuses it on the next round
				}
			}
		}
		if k > 1 {
			err = e.writeAggregate(r, frames[i:i+k])
		} else {
			err = e.write(frames[i])
		}
		if err != nil {
			if e.closed.Load() {
				return i, link.ErrClosed
			}
			e.Counters.TxErrors.Add(1)
			return i, fmt.Errorf("tap: %s: write: %w", e.dev, err)
		}
		for _, f := range frames[i : i+k] {
			e.CountSent(len(f))
		}
		if k > 1 {
			e.coalescedTx.Add(1)
		}
		i += k
	}
	return len(frames), nil
}

// writeAggregate writes the run frames as one GSO frame: the header,
// the first frame's headers adjusted (aggregate), then every payload.
func (e *Endpoint) writeAggregate(r tcpRun, frames [][]byte) error {
	var vh [vnetHdrLen]byte
	var hbuf [14 + 40 + 60]byte
	hdr := aggregate(r, frames, &vh, hbuf[:0])
	iov := make([][]byte, 0, 2+len(frames))
	iov = append(iov, vh[:], hdr)
	for _, f := range frames {
		iov = append(iov, f[len(hdr):])
	}
	return e.writev(iov)
}

// noOffloadHdr is the header of a frame we write: no GSO, checksums as
// they are in the frame.
var noOffloadHdr [vnetHdrLen]byte

func (e *Endpoint) write(f []byte) error {
	if !e.vnet {
		_, err := e.file.Write(f)
		return err
	}
	return e.writev([][]byte{noOffloadHdr[:], f})
}

func (e *Endpoint) writev(iov [][]byte) error {
	var werr error
	err := e.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Writev(int(fd), iov)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// Close closes the device file, which wakes the reader, and waits for the
// reader to return. A device created by Open disappears with it; an
// existing persistent device stays. Close must not be called from inside
// DeliverFrame (it would wait for itself).
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		if e.vnet && e.persistent {
			// The device outlives us: leave it without offloads, which a
			// later user that reads plain frames could not take.
			e.raw.Control(func(fd uintptr) { unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, 0) })
		}
		e.closeErr = e.file.Close()
		<-e.done
	})
	return e.closeErr
}

// readLoop reads one frame per read(2) and hands it to the dispatcher,
// until the file is closed or the device goes away.
func (e *Endpoint) readLoop() {
	defer close(e.done)
	// One byte more than the longest frame the MTU allows: the tun driver
	// truncates a longer frame to the buffer without saying so (the kernel
	// side's MTU was raised behind our back), so a read that fills the
	// buffer is how a truncated frame shows. With offloads, room for the
	// header and a 64 KiB aggregate.
	size := e.MTU() + link.MaxFrameHeader + 1
	if e.vnet {
		size = vnetHdrLen + max(e.MTU(), wire.IPv4MaxTotalLen) + link.MaxFrameHeader + 1
	}
	var buf []byte
	for {
		if buf == nil {
			buf = make([]byte, size)
		}
		n, err := e.file.Read(buf)
		if err != nil {
			if e.closed.Load() {
				return
			}
			if fatalReadErr(err) {
				err = fmt.Errorf("tap: %s: read: %w", e.dev, err)
				e.readErr.Store(&err)
				return
			}
			// Transient (EINTR, ENOMEM, …): count and back off briefly so a
			// persistent error cannot spin a core.
			e.Counters.RxErrors.Add(1)
			time.Sleep(time.Millisecond)
			continue
		}
		if n >= len(buf) {
			e.Counters.RxErrors.Add(1)
			continue
		}
		if !e.vnet {
			e.Deliver(buf[:n])
			buf = nil
			continue
		}
		h, err := parseVnetHdr(buf[:n])
		if err == nil {
			err = finishRx(h, buf[vnetHdrLen:n])
		}
		if err != nil {
			e.Counters.RxErrors.Add(1)
			continue
		}
		// The frame leaves with its buffer; a small one is copied out so
		// the 64 KiB buffer is read into again.
		frame := buf[vnetHdrLen:n]
		if n < size/4 {
			frame = append([]byte(nil), frame...)
		} else {
			buf = nil
		}
		if h.gsoType != vnetGSONone {
			e.coalesced.Add(1)
			e.DeliverCoalesced(frame)
		} else {
			e.Deliver(frame)
		}
	}
}

// fatalReadErr reports errors after which the fd will never deliver again:
// the file was closed, or the device was deleted under us (EBADFD).
func fatalReadErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EBADFD) ||
		errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENODEV)
}
