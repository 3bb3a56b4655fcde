package dhcp4

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/dhcptest"
	"github.com/stackbox/stackbox/pkg/host"
)

var (
	serverIP = dhcptest.ServerIP
	firstIP  = dhcptest.FirstIP
)

func lab(t *testing.T, spec string) (host.Host, *dhcptest.Server) { return dhcptest.Lab(t, spec) }

// events records a client's events.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(ev string, l *Lease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ev
	if l != nil && l.Address.IsValid() {
		s += " " + l.Address.String()
	}
	e.got = append(e.got, s)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.got)
}

func fast(n int) time.Duration { return 500 * time.Millisecond }

func newClient(t *testing.T, h host.Host, leaseFile string, ev *events) *Client {
	t.Helper()
	c, err := New(context.Background(), Config{Host: h, Interface: "eth0", LeaseFile: leaseFile, Wait: fast, Event: ev.add,
		Log: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
