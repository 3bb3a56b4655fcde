//go:build linux

package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Neighbor is one entry of the kernel's neighbour table (ARP or NDP cache)
// as `ip neigh` shows it.
type Neighbor struct {
	Addr  netip.Addr
	Dev   string
	MAC   wire.MAC // zero when the entry has no link-layer address (INCOMPLETE, FAILED)
	State []string // e.g. ["REACHABLE"], ["STALE"], ["PERMANENT"]
}

// HasState reports whether the entry is in the named NUD state.
func (n Neighbor) HasState(s string) bool {
	for _, st := range n.State {
		if strings.EqualFold(st, s) {
			return true
		}
	}
	return false
}

// Neighbors lists the namespace's neighbour table, for one device when dev
// is not empty.
func (l *Lab) Neighbors(ctx context.Context, dev string) ([]Neighbor, error) {
	args := []string{"-j", "neigh", "show"}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	out, err := l.IP(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("netlab: ip -n %s neigh: %w", l.ns, errOut(err, out))
	}
	return parseNeighbors(out, dev)
}

// WaitNeighbor polls the neighbour table (every 50 ms) until an entry for
// addr on dev satisfies ok (nil: any entry with a MAC), or ctx ends; then
// it returns the last entry seen and an error saying what was missing.
func (l *Lab) WaitNeighbor(ctx context.Context, dev string, addr netip.Addr, ok func(Neighbor) bool) (Neighbor, error) {
	if ok == nil {
		ok = func(n Neighbor) bool { return !n.MAC.IsZero() }
	}
	var last Neighbor
	found := false
	for {
		ns, err := l.Neighbors(ctx, dev)
		if err != nil && ctx.Err() == nil {
			return last, err
		}
		for _, n := range ns {
			if n.Addr == addr {
				last, found = n, true
				if ok(n) {
					return n, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if found {
				return last, fmt.Errorf("netlab: neighbour %v on %s is %v %v, not as expected: %w", addr, dev, last.MAC, last.State, ctx.Err())
			}
			return last, fmt.Errorf("netlab: no neighbour entry for %v on %s: %w", addr, dev, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parseNeighbors decodes `ip -j neigh show` output; dev fills in the device
// when the command was filtered by it (ip then omits it).
func parseNeighbors(out []byte, dev string) ([]Neighbor, error) {
	var raw []struct {
		Dst    string   `json:"dst"`
		Dev    string   `json:"dev"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("netlab: ip neigh output: %w", err)
	}
	ns := make([]Neighbor, 0, len(raw))
	for _, r := range raw {
		addr, err := netip.ParseAddr(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("netlab: ip neigh: destination %q: %w", r.Dst, err)
		}
		n := Neighbor{Addr: addr, Dev: r.Dev, State: r.State}
		if n.Dev == "" {
			n.Dev = dev
		}
		if r.LLAddr != "" {
			if n.MAC, err = wire.ParseMAC(r.LLAddr); err != nil {
				return nil, fmt.Errorf("netlab: ip neigh %v: lladdr %q: %w", addr, r.LLAddr, err)
			}
		}
		ns = append(ns, n)
	}
	return ns, nil
}
