package dighost

import (
	"context"
	"net"
	"strings"

	"github.com/stackbox/stackbox/pkg/host"
)

// sizeNet is a host.Net that notes how many bytes the last answer took on
// the wire, which host -v prints ("Received 41 bytes"): a parsed message
// cannot tell, since servers compress names as they choose. It is used
// by one Send at a time.
type sizeNet struct {
	host.Net
	last int
}

func (s *sizeNet) Dial(ctx context.Context, network, address string, o *host.SocketOptions) (net.Conn, error) {
	c, err := s.Net.Dial(ctx, network, address, o)
	if err != nil {
		return nil, err
	}
	return &sizeConn{Conn: c, n: s, stream: strings.HasPrefix(network, "tcp")}, nil
}

// sizeConn notes the size of each datagram read, or for a stream the
// bytes read after the 2-byte length (RFC 1035 §4.2.2).
type sizeConn struct {
	net.Conn
	n      *sizeNet
	stream bool
	total  int
}

func (c *sizeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.stream {
		c.total += n
		c.n.last = max(c.total-2, 0)
	} else if n > 0 {
		c.n.last = n
	}
	return n, err
}

// CloseWrite keeps the stream's half-close reachable through the wrapper.
func (c *sizeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
