// Package dhcp4 is a DHCPv4 client engine (RFC 2131) over host.Host: it
// obtains, applies, renews, rebinds and releases a lease for one
// interface. Messages are built and parsed by insomniacslk/dhcp's dhcpv4
// package; the socket is ours (a host.Net UDP socket on 0.0.0.0:68 bound
// to the interface with SO_BROADCAST, so the DISCOVER leaves from 0.0.0.0
// before the interface has an address).
//
// A Client is used by one goroutine at a time and holds no locks. Time is
// the time package's, so tests drive T1, T2 and expiry with testing/synctest.
//
// Address conflict detection (RFC 2131 §2.2, RFC 5227) is best effort:
// host.Host offers no ARP probe, so before binding the client looks in the
// host's neighbour table for another hardware address holding the offered
// address, and DECLINEs it if there is one.
package dhcp4

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/pkg/host"
)

// Ports (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// Errors Obtain and Run return.
var (
	ErrNoLease = errors.New("dhcp4: no lease")
	ErrExpired = errors.New("dhcp4: lease expired")
)

// Event names, as udhcpc passes them to its script.
const (
	EventDeconfig  = "deconfig"
	EventBound     = "bound"
	EventRenew     = "renew"
	EventNak       = "nak"
	EventLeasefail = "leasefail"
)

// Config says how a Client behaves. Zero values take the defaults shown.
type Config struct {
	Host      host.Host
	Interface string
	// LeaseFile, if set, keeps the bound lease (JSON) for INIT-REBOOT.
	LeaseFile string
	// RequestedIP is asked for in the DISCOVER (option 50).
	RequestedIP netip.Addr
	// Hostname (option 12), Vendor (option 60). ClientID (option 61)
	// defaults to 01 and the MAC, as udhcpc; NoClientID sends none.
	Hostname   string
	Vendor     string
	ClientID   []byte
	NoClientID bool
	// Options are extra options sent in DISCOVER and REQUEST (-x).
	Options []dhcpv4.Option
	// Request are option codes asked for besides the defaults (-O).
	Request []uint8
	// Discovers is how many DISCOVERs (and REQUEST retransmissions) one
	// Obtain round sends (default 3).
	Discovers int
	// Wait is how long to wait for the answer to the nth transmission
	// (from 0); default Backoff.
	Wait func(n int) time.Duration
	// Event is told what happened (Event* names) with the lease concerned
	// (nil for deconfig and leasefail; for nak the NAK's message text in
	// Msg of a Lease with no address).
	Event func(ev string, l *Lease)
	// Log gets udhcpc's progress messages ("broadcasting discover").
	Log func(format string, args ...any)
	// NoApply leaves the Host unconfigured (the event hook does it).
	NoApply bool
}

// Backoff is RFC 2131 §4.1's retransmission delay: 4 s doubling to at most
// 64 s, randomised by ±1 s.
func Backoff(n int) time.Duration {
	d := 4 * time.Second << min(n, 4)
	return d - time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))
}

// Client runs the DHCP state machine for one interface.
type Client struct {
	cfg   Config
	mac   net.HardwareAddr
	conn  host.PacketConn
	lease *Lease // the bound lease; nil when unbound
	buf   []byte
}

// New opens the client's socket on cfg.Interface.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Discovers <= 0 {
		cfg.Discovers = 3
	}
	if cfg.Wait == nil {
		cfg.Wait = Backoff
	}
	it, err := cfg.Host.Interface(ctx, cfg.Interface)
	if err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(it.MAC)
	if err != nil || len(mac) != 6 {
		return nil, host.Errorf(syscall.EINVAL, "%s: no Ethernet address", cfg.Interface)
	}
	if it.Flags&host.FlagUp == 0 {
		if err := cfg.Host.SetUp(ctx, cfg.Interface, true); err != nil {
			return nil, err
		}
	}
	conn, err := cfg.Host.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", ClientPort), &host.SocketOptions{
		Device:  cfg.Interface,
		Options: []host.SockOpt{{Level: syscall.SOL_SOCKET, Name: syscall.SO_BROADCAST, Value: 1}},
	})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, mac: mac, conn: conn, buf: make([]byte, 1500)}, nil
}

// Close closes the socket (it does not release the lease).
func (c *Client) Close() error { return c.conn.Close() }

// Lease returns the bound lease, or nil.
func (c *Client) Lease() *Lease { return c.lease }

func (c *Client) logf(format string, args ...any) {
	if c.cfg.Log != nil {
		c.cfg.Log(format, args...)
	}
}

func (c *Client) event(ev string, l *Lease) {
	if c.cfg.Event != nil {
		c.cfg.Event(ev, l)
	}
}

func xid() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	crand.Read(x[:])
	return x
}

var broadcast = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), ServerPort)

// message builds a client message of type t with the options every
// message of ours carries.
func (c *Client) message(t dhcpv4.MessageType, x dhcpv4.TransactionID, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	m := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t), dhcpv4.WithHwAddr(c.mac), dhcpv4.WithTransactionID(x),
	}
	if !c.cfg.NoClientID {
		id := c.cfg.ClientID
		if id == nil {
			id = append([]byte{1}, c.mac...)
		}
		m = append(m, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(id)))
	}
	if t == dhcpv4.MessageTypeDiscover || t == dhcpv4.MessageTypeRequest {
		codes := []dhcpv4.OptionCode{dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionHostName, dhcpv4.OptionDomainName, dhcpv4.OptionBroadcastAddress, dhcpv4.OptionInterfaceMTU}
		for _, o := range c.cfg.Request {
			codes = append(codes, dhcpv4.GenericOptionCode(o))
		}
		m = append(m, dhcpv4.WithRequestedOptions(codes...), dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(576)))
		if c.cfg.Hostname != "" {
			m = append(m, dhcpv4.WithOption(dhcpv4.OptHostName(c.cfg.Hostname)))
		}
		if c.cfg.Vendor != "" {
			m = append(m, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(c.cfg.Vendor)))
		}
		for _, o := range c.cfg.Options {
			m = append(m, dhcpv4.WithOption(o))
		}
	}
	return dhcpv4.New(append(m, mods...)...)
}

func (c *Client) send(d *dhcpv4.DHCPv4, to netip.AddrPort) error {
	_, err := c.conn.WriteTo(d.ToBytes(), net.UDPAddrFromAddrPort(to))
	return err
}

// recv waits until deadline for a reply to x of one of the types.
func (c *Client) recv(ctx context.Context, x dhcpv4.TransactionID, deadline time.Time, types ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for range 1000 { // a bound on stray packets per wait
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.conn.SetReadDeadline(deadline)
		if err := ctx.Err(); err != nil { // cancelled before our deadline replaced the AfterFunc's
			return nil, err
		}
		n, _, err := c.conn.ReadFrom(c.buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil
			}
			return nil, err
		}
		d, err := dhcpv4.FromBytes(c.buf[:n])
		if err != nil || d.OpCode != dhcpv4.OpcodeBootReply || d.TransactionID != x ||
			!strings.EqualFold(d.ClientHWAddr.String(), c.mac.String()) {
			continue
		}
		for _, t := range types {
			if d.MessageType() == t {
				return d, nil
			}
		}
	}
	return nil, nil
}

// exchange sends d to to up to tries times, waiting wait(n) after the nth,
// or until deadline, for an answer of the types.
func (c *Client) exchange(ctx context.Context, d *dhcpv4.DHCPv4, to netip.AddrPort, tries int, wait func(int) time.Duration, deadline time.Time, before func(), types ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	for n := range tries {
		if before != nil {
			before()
		}
		if err := c.send(d, to); err != nil {
			return nil, err
		}
		until := time.Now().Add(wait(n))
		if !deadline.IsZero() && until.After(deadline) {
			until = deadline
		}
		r, err := c.recv(ctx, d.TransactionID, until, types...)
		if r != nil || err != nil {
			return r, err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
	}
	return nil, nil
}

// Obtain gets a lease and applies it: INIT-REBOOT from the lease file if
// it holds an unexpired lease for this interface (§3.2), else
// DISCOVER/OFFER/REQUEST/ACK (§3.1). A NAK or a declined address starts
// again, within the round's bound; ErrNoLease after Discovers
// unanswered DISCOVERs.
func (c *Client) Obtain(ctx context.Context) (*Lease, error) {
	if c.cfg.LeaseFile != "" {
		if old, err := ReadLease(c.cfg.LeaseFile); err == nil && old.Interface == c.cfg.Interface && time.Now().Before(old.Expiry()) {
			l, err := c.initReboot(ctx, old)
			if l != nil || err != nil {
				return l, err
			}
		}
	}
	for range 2 * c.cfg.Discovers { // NAKs and DECLINEs restart, boundedly
		offer, err := c.discover(ctx)
		if err != nil {
			return nil, err
		}
		if offer == nil {
			c.event(EventLeasefail, nil)
			return nil, ErrNoLease
		}
		l, err := c.request(ctx, offer)
		if l != nil || err != nil {
			return l, err
		}
	}
	c.event(EventLeasefail, nil)
	return nil, ErrNoLease
}

func (c *Client) discover(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	var mods []dhcpv4.Modifier
	mods = append(mods, dhcpv4.WithBroadcast(true)) // §4.1: we cannot take unicast before configuration
	if c.cfg.RequestedIP.Is4() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(c.cfg.RequestedIP.AsSlice())))
	}
	d, err := c.message(dhcpv4.MessageTypeDiscover, xid(), mods...)
	if err != nil {
		return nil, err
	}
	return c.exchange(ctx, d, broadcast, c.cfg.Discovers, c.cfg.Wait, time.Time{},
		func() { c.logf("broadcasting discover") }, dhcpv4.MessageTypeOffer)
}

// request sends the SELECTING REQUEST for offer (§4.3.2) and binds on ACK.
func (c *Client) request(ctx context.Context, offer *dhcpv4.DHCPv4) (*Lease, error) {
	srv := offer.ServerIdentifier()
	if srv == nil {
		return nil, nil
	}
	d, err := c.message(dhcpv4.MessageTypeRequest, offer.TransactionID, dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)))
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	r, err := c.exchange(ctx, d, broadcast, c.cfg.Discovers, c.cfg.Wait, time.Time{},
		func() { c.logf("broadcasting select for %v, server %v", offer.YourIPAddr, srv); sent = time.Now() },
		dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if r == nil || err != nil {
		return nil, err
	}
	return c.bind(ctx, r, sent, false)
}

// initReboot asks to keep old's address (§3.2, §4.3.2 INIT-REBOOT: no
// server identifier, ciaddr 0, option 50). No answer falls back to INIT.
func (c *Client) initReboot(ctx context.Context, old *Lease) (*Lease, error) {
	d, err := c.message(dhcpv4.MessageTypeRequest, xid(), dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(old.Address.Addr().AsSlice())))
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	r, err := c.exchange(ctx, d, broadcast, c.cfg.Discovers, c.cfg.Wait, old.Expiry(),
		func() { c.logf("broadcasting request for %v (init-reboot)", old.Address.Addr()); sent = time.Now() },
		dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if r == nil || err != nil {
		return nil, err
	}
	return c.bind(ctx, r, sent, false)
}

// bind takes an ACK (or NAK) and moves to BOUND, or back to INIT.
func (c *Client) bind(ctx context.Context, r *dhcpv4.DHCPv4, sent time.Time, renew bool) (*Lease, error) {
	if r.MessageType() == dhcpv4.MessageTypeNak {
		c.logf("received DHCP NAK")
		c.event(EventNak, &Lease{Interface: c.cfg.Interface, Msg: r})
		if c.lease != nil {
			c.deconfigure(ctx)
		}
		c.removeLeaseFile()
		return nil, nil
	}
	l, err := leaseFromACK(c.cfg.Interface, r, sent)
	if err != nil {
		c.logf("%v", err)
		return nil, nil
	}
	if c.lease == nil || c.lease.Address != l.Address {
		if c.inUse(ctx, l.Address.Addr()) {
			c.decline(r, l)
			// §3.1 step 5: wait at least ten seconds before restarting.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(10 * time.Second):
			}
			return nil, nil
		}
	}
	c.logf("lease of %v obtained from %v, lease time %d", l.Address.Addr(), l.Server, int64(l.Duration.D()/time.Second))
	if err := c.apply(ctx, l); err != nil {
		return nil, err
	}
	c.lease = l
	if c.cfg.LeaseFile != "" {
		if err := WriteLease(c.cfg.LeaseFile, l); err != nil {
			c.logf("lease file: %v", err)
		}
	}
	if renew {
		c.event(EventRenew, l)
	} else {
		c.event(EventBound, l)
	}
	return l, nil
}

// inUse is the best-effort conflict check: a neighbour entry for a with a
// hardware address other than ours.
func (c *Client) inUse(ctx context.Context, a netip.Addr) bool {
	ns, err := c.cfg.Host.Neighbors(ctx)
	if err != nil {
		return false
	}
	for _, n := range ns {
		if n.Addr == a && n.Dev == c.cfg.Interface && n.MAC != "" && !strings.EqualFold(n.MAC, c.mac.String()) &&
			n.State != "INCOMPLETE" && n.State != "FAILED" {
			return true
		}
	}
	return false
}

// decline tells the server the address is in use (§4.4.1 DHCPDECLINE:
// broadcast, option 50 and 54, ciaddr 0).
func (c *Client) decline(ack *dhcpv4.DHCPv4, l *Lease) {
	c.logf("%v is in use, sending decline", l.Address.Addr())
	d, err := c.message(dhcpv4.MessageTypeDecline, ack.TransactionID,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(l.Address.Addr().AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice())))
	if err == nil {
		c.send(d, broadcast)
	}
}

// apply configures the interface for l: its address and broadcast, the
// default route through the first router, and the MTU.
func (c *Client) apply(ctx context.Context, l *Lease) error {
	if c.cfg.NoApply {
		return nil
	}
	h, dev := c.cfg.Host, c.cfg.Interface
	if c.lease != nil && c.lease.Address != l.Address {
		h.DelAddress(ctx, dev, c.lease.Address.Addr())
	}
	if c.lease == nil || c.lease.Address != l.Address {
		if err := h.AddAddress(ctx, dev, l.Address, l.Broadcast); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%s: add %v: %w", dev, l.Address, err)
		}
	}
	if l.MTU > 0 {
		if err := h.SetMTU(ctx, dev, l.MTU); err != nil {
			c.logf("%s: mtu %d: %v", dev, l.MTU, err)
		}
	}
	if len(l.Routers) > 0 {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if c.lease != nil && len(c.lease.Routers) > 0 && c.lease.Routers[0] != l.Routers[0] {
			h.DelRoute(ctx, host.Route{Dst: def, Gateway: c.lease.Routers[0], Dev: dev})
		}
		err := h.AddRoute(ctx, host.Route{Dst: def, Gateway: l.Routers[0], Dev: dev, Protocol: "dhcp"})
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			c.logf("%s: default route via %v: %v", dev, l.Routers[0], err)
		}
	}
	return nil
}

// deconfigure removes the lease's address and route and reports deconfig.
func (c *Client) deconfigure(ctx context.Context) {
	if l := c.lease; l != nil && !c.cfg.NoApply {
		if len(l.Routers) > 0 {
			c.cfg.Host.DelRoute(ctx, host.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: l.Routers[0], Dev: c.cfg.Interface})
		}
		c.cfg.Host.DelAddress(ctx, c.cfg.Interface, l.Address.Addr())
	}
	c.lease = nil
	c.event(EventDeconfig, nil)
}

// Deconfig reports the deconfig event at start, as udhcpc does.
func (c *Client) Deconfig() { c.event(EventDeconfig, nil) }

func (c *Client) removeLeaseFile() {
	if c.cfg.LeaseFile != "" {
		os.Remove(c.cfg.LeaseFile)
	}
}

// Run keeps the bound lease (§4.4.5): RENEWING at T1 (REQUEST unicast to
// the server), REBINDING at T2 (broadcast), and at expiry the interface
// is deconfigured and Run returns ErrExpired. A NAK deconfigures and
// returns ErrNoLease. Run returns ctx's error when ctx is done.
func (c *Client) Run(ctx context.Context) error {
	for c.lease != nil {
		l := c.lease
		if err := sleepUntil(ctx, l.RenewAt()); err != nil {
			return err
		}
		ok, err := c.extend(ctx, l, false, l.RebindAt())
		if err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		if c.lease == nil {
			return ErrNoLease // NAK
		}
		ok, err = c.extend(ctx, l, true, l.Expiry())
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if c.lease == nil {
			return ErrNoLease
		}
		c.logf("lease lost, entering init state")
		c.deconfigure(ctx)
		c.removeLeaseFile()
		return ErrExpired
	}
	return ErrNoLease
}

// extend sends REQUESTs (ciaddr set, no server identifier or option 50,
// §4.3.2) until deadline, waiting half the remaining time but at least
// 60 s between them (§4.4.5). It reports whether an ACK extended the lease.
func (c *Client) extend(ctx context.Context, l *Lease, rebind bool, deadline time.Time) (bool, error) {
	to := netip.AddrPortFrom(l.Server, ServerPort)
	if rebind {
		to = broadcast
	}
	for range 64 { // ~log2 of the lease time in minutes, and more
		if !time.Now().Before(deadline) {
			return false, nil
		}
		d, err := c.message(dhcpv4.MessageTypeRequest, xid(), dhcpv4.WithClientIP(l.Address.Addr().AsSlice()))
		if err != nil {
			return false, err
		}
		if rebind {
			c.logf("broadcasting renew")
		} else {
			c.logf("sending renew to server %v", l.Server)
		}
		sent := time.Now()
		if err := c.send(d, to); err != nil {
			c.logf("%v", err)
		}
		wait := max(time.Until(deadline)/2, 60*time.Second)
		r, err := c.recv(ctx, d.TransactionID, minTime(sent.Add(wait), deadline), dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		if err != nil {
			return false, err
		}
		if r != nil {
			nl, err := c.bind(ctx, r, sent, true)
			return nl != nil, err
		}
	}
	return false, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Release gives the lease back (§4.4.6: DHCPRELEASE unicast to the
// server, ciaddr set) and deconfigures the interface.
func (c *Client) Release(ctx context.Context) error {
	l := c.lease
	if l == nil {
		return nil
	}
	c.logf("unicasting a release of %v to %v", l.Address.Addr(), l.Server)
	d, err := c.message(dhcpv4.MessageTypeRelease, xid(), dhcpv4.WithClientIP(l.Address.Addr().AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice())))
	if err == nil {
		err = c.send(d, netip.AddrPortFrom(l.Server, ServerPort))
	}
	c.logf("entering released state")
	c.deconfigure(ctx)
	c.removeLeaseFile()
	return err
}
