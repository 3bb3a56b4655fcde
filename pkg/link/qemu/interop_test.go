package qemu

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// guestMAC is the MAC given to the QEMU guest NIC.
var guestMAC = wire.MAC{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// bootQEMU starts a diskless guest that network-boots (iPXE in the e1000's
// option ROM), so its NIC broadcasts DHCP DISCOVERs on the given netdev.
// It skips the test when QEMU is not installed.
func bootQEMU(t *testing.T, netdev string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a QEMU guest")
	}
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86 ipxe-qemu)")
	}
	cmd := exec.Command(bin, "-nodefaults", "-display", "none", "-serial", "null",
		"-monitor", "none", "-m", "64", "-accel", "tcg",
		"-netdev", netdev, "-device", "e1000,netdev=n0,mac="+guestMAC.String(), "-boot", "n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("qemu stderr: %s", stderr.String())
		}
	})
}

// waitGuestFrame waits for a broadcast IPv4 frame from the guest (its DHCP
// DISCOVER): proof that the framing matches QEMU's.
func waitGuestFrame(t *testing.T, e *Endpoint) {
	t.Helper()
	got := make(chan []byte, 64)
	e.Attach(link.DispatcherFunc(func(f []byte) {
		select {
		case got <- f:
		default:
		}
	}))
	deadline := time.After(90 * time.Second)
	for {
		select {
		case f := <-got:
			if bytes.Equal(f[0:6], wire.BroadcastMAC[:]) && bytes.Equal(f[6:12], guestMAC[:]) && f[12] == 0x08 && f[13] == 0x00 {
				return
			}
		case <-deadline:
			t.Fatalf("no frame from the guest; stats %+v", e.Stats())
		}
	}
}

func TestInteropQEMUStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qemu.sock")
	e, err := ListenStream("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	bootQEMU(t, "stream,id=n0,server=off,addr.type=unix,addr.path="+sock)
	waitGuestFrame(t, e)
}

func TestInteropQEMUDgram(t *testing.T) {
	ours, theirs := freeUDPPort(t), freeUDPPort(t)
	e, err := DialUDP(ours, theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	oh, op := splitHostPort(t, ours)
	th, tp := splitHostPort(t, theirs)
	bootQEMU(t, fmt.Sprintf("dgram,id=n0,local.type=inet,local.host=%s,local.port=%s,remote.type=inet,remote.host=%s,remote.port=%s", th, tp, oh, op))
	waitGuestFrame(t, e)
}

func TestInteropQEMUStreamServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qemu.sock")
	bootQEMU(t, "stream,id=n0,server=on,addr.type=unix,addr.path="+sock)
	var e *Endpoint
	for deadline := time.Now().Add(30 * time.Second); e == nil; {
		var err error
		if e, err = DialStream("unix", sock); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("QEMU's stream server never accepted: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer e.Close()
	waitGuestFrame(t, e)
}
