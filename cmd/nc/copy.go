package nc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

const bufSize = 64 << 10

// copy is netcat's readwrite: stdin to the connection and the connection
// to stdout until the session is over. OpenBSD's rules:
//   - EOF on stdin half-closes the connection only with -N;
//   - with -q S the session ends S seconds after EOF on stdin;
//   - once stdin is gone (EOF or -d), -w S ends it after S idle seconds;
//   - the session ends when both stdin and the network side have ended,
//     or when a write to the network fails.
//
// ready, when not nil, holds stdin back until it is closed (a UDP
// listener knows its peer only after the first datagram).
func (n *nc) copy(ctx context.Context, c io.ReadWriter, ready <-chan struct{}) {
	netDone := make(chan struct{})
	inDone := make(chan error, 1)
	activity := make(chan struct{}, 1)
	udp := n.proto == "udp"
	go func() {
		defer close(netDone)
		buf := make([]byte, bufSize)
		for refused := 0; ; {
			k, err := c.Read(buf)
			if k > 0 {
				if _, werr := n.env.Stdout.Write(buf[:k]); werr != nil {
					return
				}
				select {
				case activity <- struct{}{}:
				default:
				}
			}
			if err != nil {
				// A UDP peer's port unreachable comes back as the errno
				// of a read; netcat keeps reading past it. Each one
				// answers a datagram we sent, and a bound keeps a
				// misbehaving peer from spinning us.
				if udp && errors.Is(err, syscall.ECONNREFUSED) && refused < 1000 {
					refused++
					continue
				}
				return
			}
		}
	}()
	go func() {
		if n.o.noStdin {
			inDone <- nil
			return
		}
		if ready != nil {
			select {
			case <-ready:
			case <-ctx.Done():
				return
			case <-netDone:
				return
			}
		}
		buf := make([]byte, bufSize)
		for {
			k, err := n.env.Stdin.Read(buf)
			if k > 0 {
				if _, werr := c.Write(buf[:k]); werr != nil {
					inDone <- werr
					return
				}
			}
			if err != nil {
				if n.o.shutdown {
					if cw, ok := c.(interface{ CloseWrite() error }); ok {
						cw.CloseWrite()
					}
				}
				inDone <- nil
				return
			}
		}
	}()

	var quit, idle <-chan time.Time
	var idleTimer *time.Timer
	stdinGone, netGone := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-netDone:
			netDone = nil
			netGone = true
			if stdinGone {
				return
			}
		case err := <-inDone:
			if err != nil {
				return
			}
			stdinGone = true
			if netGone {
				return
			}
			if n.o.quit >= 0 {
				if n.o.quit == 0 {
					return
				}
				quit = time.After(n.o.quit)
			}
			if n.o.wait > 0 {
				idleTimer = time.NewTimer(n.o.wait)
				defer idleTimer.Stop()
				idle = idleTimer.C
			}
		case <-activity:
			if idleTimer != nil {
				idleTimer.Reset(n.o.wait)
			}
		case <-quit:
			return
		case <-idle:
			return
		}
	}
}

// udpPeer is a UDP listener's socket as netcat uses it after connecting
// it to its first sender: reads from anyone else are dropped (a
// connected socket's filter) unless -k, where replies go to whoever sent
// last.
type udpPeer struct {
	pc       host.PacketConn
	keep     bool
	first    chan struct{} // closed once the peer is known
	announce func(netip.AddrPort)

	mu   sync.Mutex
	peer netip.AddrPort
}

func (u *udpPeer) Read(b []byte) (int, error) {
	for {
		k, from, err := u.pc.ReadFrom(b)
		if err != nil {
			return 0, err
		}
		ap := addrPort(from)
		u.mu.Lock()
		switch {
		case !u.peer.IsValid():
			u.peer = ap
			u.mu.Unlock()
			u.announce(ap)
			close(u.first)
			return k, nil
		case u.keep:
			u.peer = ap
		case ap != u.peer:
			u.mu.Unlock()
			continue
		}
		u.mu.Unlock()
		return k, nil
	}
}

func (u *udpPeer) Write(b []byte) (int, error) {
	u.mu.Lock()
	p := u.peer
	u.mu.Unlock()
	return u.pc.WriteTo(b, net.UDPAddrFromAddrPort(p))
}
