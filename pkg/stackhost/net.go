package stackhost

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/transport"
)

// selfCred is this process as a socket owner: a private stack's sockets
// belong to the applet that runs it.
func selfCred() host.Cred {
	uid := uint32(os.Geteuid())
	return host.Cred{UID: uid, GID: uint32(os.Getegid()), Privileged: uid == 0, PID: os.Getpid(), Program: filepath.Base(os.Args[0])}
}

// dialer is a gonet.Dialer on the stack that opens sockets for o.Cred and
// applies o's device and options before a socket is bound, and records
// each socket's owner for Sockets.
func (h *Host) dialer(o *host.SocketOptions) (*gonet.Dialer, host.Cred) {
	if o == nil {
		o = &host.SocketOptions{}
	}
	cred := selfCred()
	if o.Cred != nil {
		cred = *o.Cred
	}
	d := &gonet.Dialer{
		Layer: h.in.Layer,
		Cred:  transport.Cred{UID: cred.UID, GID: cred.GID, Privileged: cred.Privileged},
	}
	d.Control = func(s *socket.Socket) error {
		h.own(s, cred)
		if o.Device != "" {
			if err := s.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, o.Device); err != nil {
				return err
			}
		}
		for _, so := range o.Options {
			if err := s.SetSockOptInt(so.Level, so.Name, so.Value); err != nil {
				return err
			}
		}
		return nil
	}
	return d, cred
}

// own records cred as the owner of s, and forgets closed sockets once
// the table has doubled since the last sweep, so it stays bounded by the
// open sockets.
func (h *Host) own(s *socket.Socket, cred host.Cred) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owners == nil {
		h.owners = make(map[*socket.Socket]host.Cred)
	}
	h.owners[s] = cred
	if len(h.owners) > 2*h.ownersSwept {
		h.sweepLocked()
	}
}

func (h *Host) sweepLocked() {
	for s := range h.owners {
		if s.Closed() {
			delete(h.owners, s)
		}
	}
	h.ownersSwept = max(len(h.owners), 16)
}

// ownerKey identifies an endpoint as netstat lists it.
type ownerKey struct {
	proto         string
	local, remote netip.AddrPort
}

// ownersByEndpoint maps the open sockets with a known owner to it.
func (h *Host) ownersByEndpoint() map[ownerKey]host.Cred {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked()
	m := make(map[ownerKey]host.Cred, len(h.owners))
	for s, c := range h.owners {
		i := s.Info()
		m[ownerKey{i.Proto, i.Local, i.Remote}] = c
	}
	return m
}

func localAddr(network string, ap netip.AddrPort) net.Addr {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return net.TCPAddrFromAddrPort(ap)
	case "udp", "udp4", "udp6":
		return net.UDPAddrFromAddrPort(ap)
	}
	return &net.IPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone()}
}

// Dial implements host.Net.
func (h *Host) Dial(ctx context.Context, network, address string, o *host.SocketOptions) (net.Conn, error) {
	d, _ := h.dialer(o)
	if o != nil && o.Local.IsValid() {
		d.LocalAddr = localAddr(network, o.Local)
	}
	return d.DialContext(ctx, network, address)
}

// Listen implements host.Net. Accepted connections belong to the
// listener's owner.
func (h *Host) Listen(ctx context.Context, network, address string, o *host.SocketOptions) (net.Listener, error) {
	d, cred := h.dialer(o)
	l, err := d.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: l.(*gonet.Listener), h: h, cred: cred}, nil
}

// ListenPacket implements host.Net.
func (h *Host) ListenPacket(ctx context.Context, network, address string, o *host.SocketOptions) (host.PacketConn, error) {
	d, _ := h.dialer(o)
	c, err := d.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return c.(*gonet.PacketConn), nil
}

type listener struct {
	*gonet.Listener
	h    *Host
	cred host.Cred
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.h.own(c.(*gonet.Conn).Socket(), l.cred)
	}
	return c, err
}

var _ host.PacketConn = (*gonet.PacketConn)(nil)
