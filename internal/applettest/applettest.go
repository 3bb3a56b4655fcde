// Package applettest is what the applets' tests share: a Host opener
// for a stack the test owns, two stacks on one emulated network, and an
// output buffer safe to read while an applet writes it. It holds one
// mutex per SyncBuf.
package applettest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// noClose keeps an applet's Close from closing the test's stack.
type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

// Opener is an applet's host.Opener that always gives h, which the
// applet's Close leaves open.
func Opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return noClose{h}, nil }
}

// Pair starts two stacks on one emulated network named after the test
// and n: a is 10.<n>.0.1/24 on eth0, b is 10.<n>.0.2/24. Both are closed
// when the test ends.
func Pair(t *testing.T, n int) (a, b *stackhost.Host) {
	t.Helper()
	spec := fmt.Sprintf("emu:applettest-%s-%d", t.Name(), n)
	for i, h := range []**stackhost.Host{&a, &b} {
		var err error
		*h, err = stackhost.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		hh := *h
		t.Cleanup(func() { hh.Close() })
		if err := hh.AddAddress(context.Background(), "eth0", netip.MustParsePrefix(fmt.Sprintf("10.%d.0.%d/24", n, i+1)), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// SyncBuf is a bytes.Buffer safe to read while an applet writes it.
type SyncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
