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
// fails, which costs one fd per failed Open. The IFF_VNET_HDR offload path,
// which water cannot set up, will open /dev/net/tun itself (DESIGN.md).
// water's fd is nonblocking inside an *os.File, so it is registered with
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
}

// Endpoint is an open tap device. It implements link.Endpoint and
// link.Counter.
type Endpoint struct {
	link.Base // name "tap:DEV", MTU, MAC (a plain tap offers no offloads), counters

	file       *os.File
	dev        string
	persistent bool // attached to an existing IFF_PERSIST device, which outlives Close

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

	file, dev, persistent, err := openTAP(cfg.Name)
	if err != nil {
		return nil, err
	}
	mtu, err := configure(dev, cfg.MTU)
	if err != nil {
		file.Close()
		return nil, err
	}
	e := &Endpoint{file: file, dev: dev, persistent: persistent, done: make(chan struct{})}
	e.Init("tap:"+dev, mtu, mac, 0)
	go e.readLoop()
	return e, nil
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
		switch {
		case errors.Is(err, unix.EBUSY):
			return nil, "", false, fmt.Errorf("tap: %s is in use by another process: %w", name, err)
		case errors.Is(err, unix.EINVAL) && name != "":
			return nil, "", false, fmt.Errorf("tap: %s exists and is not a tap device: %w", name, err)
		case errors.Is(err, unix.EPERM):
			return nil, "", false, fmt.Errorf("tap: creating %q needs CAP_NET_ADMIN: %w", name, err)
		}
		return nil, "", false, fmt.Errorf("tap: open %q: %w", name, err)
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

// ReadErr reports why the reader stopped on its own (the device went
// away), or nil while it runs or after a normal Close.
func (e *Endpoint) ReadErr() error {
	if p := e.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// WritePackets writes each frame to the device with one write(2): the tap
// driver takes exactly one frame per write.
func (e *Endpoint) WritePackets(frames [][]byte) (int, error) {
	for i, f := range frames {
		if e.closed.Load() {
			return i, link.ErrClosed
		}
		if err := e.CheckWrite(f); err != nil {
			return i, err
		}
		if _, err := e.file.Write(f); err != nil {
			if e.closed.Load() {
				return i, link.ErrClosed
			}
			e.Counters.TxErrors.Add(1)
			return i, fmt.Errorf("tap: %s: write: %w", e.dev, err)
		}
		e.CountSent(len(f))
	}
	return len(frames), nil
}

// Close closes the device file, which wakes the reader, and waits for the
// reader to return. A device created by Open disappears with it; an
// existing persistent device stays. Close must not be called from inside
// DeliverFrame (it would wait for itself).
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.closeErr = e.file.Close()
		<-e.done
	})
	return e.closeErr
}

// readLoop reads one frame per read(2) into a fresh buffer and hands it to
// the dispatcher, until the file is closed or the device goes away.
func (e *Endpoint) readLoop() {
	defer close(e.done)
	// One byte more than the longest frame the MTU allows: the tun driver
	// truncates a longer frame to the buffer without saying so (the kernel
	// side's MTU was raised behind our back), so a read that fills the
	// buffer is how a truncated frame shows.
	size := e.MTU() + link.MaxFrameHeader + 1
	for {
		buf := make([]byte, size)
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
		e.Deliver(buf[:n])
	}
}

// fatalReadErr reports errors after which the fd will never deliver again:
// the file was closed, or the device was deleted under us (EBADFD).
func fatalReadErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EBADFD) ||
		errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENODEV)
}
