package netd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/stackbox/stackbox/pkg/dhcp4"
)

// leaseWait bounds how long Start waits for each interface's first lease.
var leaseWait = 30 * time.Second

// dhcpRun is the DHCP client of one interface, run by the daemon.
type dhcpRun struct {
	c      *dhcp4.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// startDHCP obtains a lease on each of cfg.DHCP's interfaces (applied to
// the stack by the client) and keeps it renewed in the background; the
// servers and domain it brings join resolv.conf.
func (d *Daemon) startDHCP(ctx context.Context) error {
	for _, dev := range d.cfg.DHCP {
		c, err := dhcp4.New(ctx, dhcp4.Config{
			Host:      d.Host,
			Interface: dev,
			LeaseFile: filepath.Join(filepath.Dir(d.cfg.Socket), "dhcp-"+dev+".lease"),
			Log:       func(format string, args ...any) { d.log.Printf("dhcp %s: "+format, append([]any{dev}, args...)...) },
			Event:     func(ev string, l *dhcp4.Lease) { d.leaseEvent(dev, ev, l) },
		})
		if err != nil {
			return fmt.Errorf("dhcp on %s: %w", dev, err)
		}
		octx, cancel := context.WithTimeout(ctx, leaseWait)
		_, err = c.Obtain(octx)
		cancel()
		if err != nil {
			c.Close()
			return fmt.Errorf("dhcp on %s: no lease: %w", dev, err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		r := &dhcpRun{c: c, cancel: rcancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			if err := c.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Printf("dhcp %s: %v", dev, err)
			}
		}()
		d.dhcp = append(d.dhcp, r)
	}
	return nil
}

// leaseEvent makes a bound or renewed lease's nameservers upstream
// servers of the DNS stub (after those configured) and its domain part of
// resolv.conf's search list, and takes them out when the lease goes.
func (d *Daemon) leaseEvent(dev, ev string, l *dhcp4.Lease) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leaseDNS == nil {
		d.leaseDNS = map[string]*dhcp4.Lease{}
	}
	switch ev {
	case dhcp4.EventBound, dhcp4.EventRenew:
		d.leaseDNS[dev] = l
	case dhcp4.EventDeconfig, dhcp4.EventLeasefail, dhcp4.EventNak:
		delete(d.leaseDNS, dev)
	default:
		return
	}
	if err := d.writeResolvConfLocked(); err != nil {
		d.log.Printf("resolv.conf: %v", err)
	}
}

// stopDHCP stops the renewals and releases the leases (RFC 2131 §4.4.6).
func (d *Daemon) stopDHCP() {
	var wg sync.WaitGroup
	for _, r := range d.dhcp {
		r.cancel()
		<-r.done
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r.c.Release(ctx)
			r.c.Close()
		}()
	}
	wg.Wait()
}
