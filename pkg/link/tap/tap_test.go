//go:build linux

package tap_test

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/tap"
	"github.com/stackbox/stackbox/pkg/wire"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  tap.Config
		want string
	}{
		{"name too long", tap.Config{Name: "abcdefghijklmnop"}, "longer than 15"},
		{"slash in name", tap.Config{Name: "a/b"}, "invalid device name"},
		{"space in name", tap.Config{Name: "a b"}, "invalid device name"},
		{"dot", tap.Config{Name: "."}, "invalid device name"},
		{"MTU too small", tap.Config{MTU: 67}, "MTU 67"},
		{"MTU too large", tap.Config{MTU: 65536}, "MTU 65536"},
		{"negative MTU", tap.Config{MTU: -1}, "MTU -1"},
		{"multicast MAC", tap.Config{MAC: wire.MAC{0x01, 0, 0x5e, 0, 0, 1}}, "group address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep, err := tap.Open(tc.cfg)
			if err == nil {
				ep.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// readers counts live tap reader goroutines.
func readers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "tap.(*Endpoint).readLoop")
}

func waitReaders(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for readers() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := readers(); n != want {
		t.Fatalf("%d tap reader goroutines, want %d", n, want)
	}
}

// openInLab opens a tap endpoint inside the lab namespace, so nothing it
// does touches the host's.
func openInLab(t *testing.T, l *netlab.Lab, cfg tap.Config) *tap.Endpoint {
	t.Helper()
	var ep *tap.Endpoint
	if err := l.Do(func() (err error) { ep, err = tap.Open(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// TestLifecycle: a kernel-named device comes up with the default MTU, our
// MAC is random and locally administered, Close is prompt, stops the reader,
// removes the device even while a child process runs (the fd is
// close-on-exec), and later calls fail with ErrClosed.
func TestLifecycle(t *testing.T) {
	l := netlab.New(t)
	base := readers()
	ep := openInLab(t, l, tap.Config{})
	dev := ep.Device()
	if !strings.HasPrefix(dev, "tap") || ep.Name() != "tap:"+dev {
		t.Errorf("Device %q, Name %q: want a kernel-picked tapN", dev, ep.Name())
	}
	if ep.MTU() != 1500 || ep.Persistent() || ep.Capabilities() != link.CapRXCoalesce {
		t.Errorf("MTU %d persistent %v caps %v", ep.MTU(), ep.Persistent(), ep.Capabilities())
	}
	if m := ep.MAC(); m[0]&0x03 != 0x02 {
		t.Errorf("MAC %v is not locally administered unicast", m)
	}
	out := string(l.MustIP(t, "link", "show", "dev", dev))
	if !strings.Contains(out, "mtu 1500") || !strings.Contains(out, ",UP") {
		t.Errorf("device not up with MTU 1500:\n%s", out)
	}
	if strings.Contains(out, ep.MAC().String()) {
		t.Errorf("the tap interface uses our stack's MAC %v", ep.MAC())
	}
	waitReaders(t, base+1)

	child := exec.Command("sleep", "30")
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-child.Process.Pid, syscall.SIGKILL); child.Wait() }()

	start := time.Now()
	if err := ep.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	waitReaders(t, base)
	if _, err := l.IP(t.Context(), "link", "show", "dev", dev); err == nil {
		t.Errorf("device %s still exists after Close (fd inherited by a child?)", dev)
	}
	if err := ep.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n, err := ep.WritePackets([][]byte{make([]byte, 60)}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WritePackets after Close = %d, %v", n, err)
	}
}

// TestNamedDeviceMTU: a named device gets the requested MTU, and our MAC
// when given.
func TestNamedDeviceMTU(t *testing.T) {
	l := netlab.New(t)
	mac := wire.MAC{0x02, 0x55, 0, 0, 0, 9}
	ep := openInLab(t, l, tap.Config{Name: "sbtest0", MTU: 9000, MAC: mac})
	if ep.Device() != "sbtest0" || ep.MTU() != 9000 || ep.MAC() != mac {
		t.Errorf("Device %q MTU %d MAC %v", ep.Device(), ep.MTU(), ep.MAC())
	}
	if out := string(l.MustIP(t, "link", "show", "dev", "sbtest0")); !strings.Contains(out, "mtu 9000") {
		t.Errorf("kernel MTU not 9000:\n%s", out)
	}
	// A second open of the same (non-multiqueue) device is refused clearly.
	err := l.Do(func() error {
		ep2, err := tap.Open(tap.Config{Name: "sbtest0"})
		if err == nil {
			ep2.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open of a busy device: %v", err)
	}
	// A name taken by a device that is not a tap.
	err = l.Do(func() error {
		ep2, err := tap.Open(tap.Config{Name: "lo"})
		if err == nil {
			ep2.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "not a tap") {
		t.Errorf("open of lo: %v", err)
	}
}

// TestPersistentDeviceSurvives: attaching to a device made persistent by
// `ip tuntap add` keeps it (and its persistence) after Close.
func TestPersistentDeviceSurvives(t *testing.T) {
	l := netlab.New(t)
	l.MustIP(t, "tuntap", "add", "dev", "sbpers0", "mode", "tap")
	ep := openInLab(t, l, tap.Config{Name: "sbpers0"})
	if !ep.Persistent() {
		t.Error("Persistent() = false for an ip tuntap device")
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := l.IP(t.Context(), "-d", "link", "show", "dev", "sbpers0")
	if err != nil {
		t.Fatalf("persistent device gone after Close: %v %s", err, out)
	}
	if !strings.Contains(string(out), "persist") {
		t.Errorf("device lost its persist flag:\n%s", out)
	}
	// And it can be attached again.
	ep = openInLab(t, l, tap.Config{Name: "sbpers0"})
	if !ep.Persistent() {
		t.Error("reattach: Persistent() = false")
	}
}

// TestWriteChecks: frames that do not fit the MTU or lack an Ethernet
// header are refused before the kernel sees them, with the index of the
// first unsent frame.
func TestWriteChecks(t *testing.T) {
	l := netlab.New(t)
	ep := openInLab(t, l, tap.Config{MTU: 1280})
	ok := make([]byte, 14+1280)
	ok[12], ok[13] = 0x88, 0xb5 // IEEE local experimental EtherType
	src := ep.MAC()
	copy(ok[6:12], src[:])
	for i := range 6 {
		ok[i] = 0x02 // to a made-up unicast host: nobody answers
	}
	big := make([]byte, 14+1281)
	copy(big, ok[:14])
	if n, err := ep.WritePackets([][]byte{ok, big, ok}); n != 1 || !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("WritePackets(ok, too big, ok) = %d, %v", n, err)
	}
	if n, err := ep.WritePackets([][]byte{ok, ok[:13]}); n != 1 || !errors.Is(err, link.ErrFrameShort) {
		t.Errorf("WritePackets(ok, runt) = %d, %v", n, err)
	}
	st := ep.Stats()
	if st.TxFrames != 2 || st.TxBytes != 2*uint64(len(ok)) || st.TxDropped != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestCloseDuringWrites: Close while several goroutines write makes every
// writer stop with ErrClosed (or finish), never panic or hang.
func TestCloseDuringWrites(t *testing.T) {
	l := netlab.New(t)
	ep := openInLab(t, l, tap.Config{})
	frame := make([]byte, 60)
	for i := range 6 {
		frame[i] = 0x02
	}
	frame[12], frame[13] = 0x88, 0xb5
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 100000 {
				if _, err := ep.WritePackets([][]byte{frame, frame}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, link.ErrClosed) {
				t.Errorf("writer stopped with %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a writer did not return within 10 s of Close")
		}
	}
}
