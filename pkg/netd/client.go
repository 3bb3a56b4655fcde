package netd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// Client is a host.Host whose every call is a request to netd over its
// control socket.
type Client struct {
	path string
	tr   *http.Transport
	ver  Version // what netd said at Dial

	mu     sync.Mutex
	closed bool
}

var _ host.Host = (*Client)(nil)

// unixTransport is an HTTP transport whose every connection goes to the
// Unix socket at path, whatever the URL's host.
func unixTransport(path string) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // the host call may take its time; ctx bounds it
		DisableCompression:    true,
	}
}

// dialTimeout bounds Dial's check that netd answers when its context has
// no deadline.
var dialTimeout = 5 * time.Second

// Dial connects to netd's control socket at path and checks that netd
// answers there. When it cannot, the error is a *host.Error whose errno is
// the one the connection failed with (ENOENT: no socket; ECONNREFUSED: a
// stale socket; EACCES; ETIMEDOUT when nothing answers within ctx's
// deadline, or 5 s without one) and whose message is one line a tool can
// print:
//
//	cannot reach netd at /run/stackbox/netd.sock: no such file or directory (is `stackbox netd` running? or use --link SPEC)
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path, tr: unixTransport(path)}
	if _, ok := ctx.Deadline(); !ok {
		// A daemon that accepts but never answers must not hang a tool.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialTimeout)
		defer cancel()
	}
	var v Version
	err := c.roundTrip(ctx, "GET", "/v1/version", nil, &v)
	var te *transportErr
	switch {
	case errors.As(err, &te):
		err = te.he
	case err != nil:
		err = host.Errorf(syscall.EPROTO, "cannot reach netd at %s: the server there does not speak the netd protocol (GET /v1/version: %v)", path, err)
	case v.Name != serverName || v.API != APIVersion:
		err = host.Errorf(syscall.EPROTO, "cannot reach netd at %s: the server answers as %q API %d, not %q API %d", path, v.Name, v.API, serverName, APIVersion)
	}
	if err != nil {
		c.tr.CloseIdleConnections()
		return nil, err
	}
	c.ver = v
	return c, nil
}

// Path returns the socket path the client talks to.
func (c *Client) Path() string { return c.path }

// ResolvConf is the resolv.conf netd owns ("" when it did not say).
func (c *Client) ResolvConf() string { return c.ver.ResolvConf }

// Close releases the client's connections; later calls fail with EBADF.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.tr.CloseIdleConnections()
	return nil
}

// transportErr marks, inside the package, an error of the connection
// rather than an answer; callers outside see only its *host.Error.
type transportErr struct{ he *host.Error }

func (e *transportErr) Error() string { return e.he.Msg }

// do is roundTrip for a client that may have been closed.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return host.Errorf(syscall.EBADF, "netd client for %s is closed", c.path)
	}
	err := c.roundTrip(ctx, method, path, in, out)
	if te, ok := err.(*transportErr); ok {
		return te.he
	}
	return err
}

// roundTrip sends in (JSON, when not nil) and decodes a 2xx answer into
// out (when not nil); an error answer becomes the *host.Error it carries.
func (c *Client) roundTrip(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return host.Errorf(syscall.EINVAL, "netd: encoding the request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://netd"+path, body)
	if err != nil {
		return host.Errorf(syscall.EINVAL, "netd: %v", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return c.transportError(err)
	}
	if resp.StatusCode/100 != 2 {
		var he host.Error
		if json.Unmarshal(b, &he) != nil || he.Errno == 0 {
			return host.Errorf(errnoOfStatus(resp.StatusCode), "netd: %s %s: %s", method, path, resp.Status)
		}
		return &he
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return host.Errorf(syscall.EPROTO, "netd: %s %s: bad answer: %v", method, path, err)
	}
	return nil
}

// transportError describes a failure to talk to netd at all.
func (c *Client) transportError(err error) error {
	var errno syscall.Errno
	var reason string
	switch {
	case errors.As(err, &errno):
		reason = errno.Error()
	case errors.Is(err, context.Canceled):
		errno, reason = syscall.ECANCELED, "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		errno, reason = syscall.ETIMEDOUT, "timed out"
	default:
		errno, reason = syscall.EIO, err.Error()
	}
	return &transportErr{&host.Error{Errno: errno, Msg: fmt.Sprintf("cannot reach netd at %s: %s (is `stackbox netd` running? or use --link SPEC)", c.path, reason)}}
}

func seg(s string) string { return url.PathEscape(s) }

// needDev refuses an empty interface name before it turns into another
// path.
func needDev(dev string) error {
	if dev == "" {
		return host.Errorf(syscall.ENODEV, "netd: empty interface name: No such device")
	}
	return nil
}

// Interfaces implements host.Host.
func (c *Client) Interfaces(ctx context.Context) ([]host.Interface, error) {
	var v []host.Interface
	err := c.do(ctx, "GET", "/v1/interfaces", nil, &v)
	return v, err
}

// Interface implements host.Host.
func (c *Client) Interface(ctx context.Context, name string) (host.Interface, error) {
	var v host.Interface
	if err := needDev(name); err != nil {
		return v, err
	}
	err := c.do(ctx, "GET", "/v1/interfaces/"+seg(name), nil, &v)
	return v, err
}

// AddAddress implements host.Host.
func (c *Client) AddAddress(ctx context.Context, dev string, p netip.Prefix, broadcast netip.Addr) error {
	if err := needDev(dev); err != nil {
		return err
	}
	return c.do(ctx, "POST", "/v1/interfaces/"+seg(dev)+"/addresses", AddressRequest{Prefix: p, Broadcast: broadcast}, nil)
}

// DelAddress implements host.Host.
func (c *Client) DelAddress(ctx context.Context, dev string, a netip.Addr) error {
	if err := needDev(dev); err != nil {
		return err
	}
	if !a.IsValid() {
		return host.Errorf(syscall.EINVAL, "netd: no address to delete")
	}
	return c.do(ctx, "DELETE", "/v1/interfaces/"+seg(dev)+"/addresses/"+seg(a.String()), nil, nil)
}

func (c *Client) patch(ctx context.Context, dev string, p InterfacePatch) error {
	if err := needDev(dev); err != nil {
		return err
	}
	return c.do(ctx, "PATCH", "/v1/interfaces/"+seg(dev), p, nil)
}

// SetUp implements host.Host.
func (c *Client) SetUp(ctx context.Context, dev string, up bool) error {
	return c.patch(ctx, dev, InterfacePatch{Up: &up})
}

// SetMTU implements host.Host.
func (c *Client) SetMTU(ctx context.Context, dev string, mtu int) error {
	return c.patch(ctx, dev, InterfacePatch{MTU: &mtu})
}

// SetMAC implements host.Host.
func (c *Client) SetMAC(ctx context.Context, dev string, mac string) error {
	return c.patch(ctx, dev, InterfacePatch{MAC: &mac})
}

// SetPromisc implements host.Host.
func (c *Client) SetPromisc(ctx context.Context, dev string, on bool) error {
	return c.patch(ctx, dev, InterfacePatch{Promisc: &on})
}

// Routes implements host.Host.
func (c *Client) Routes(ctx context.Context) ([]host.Route, error) {
	var v []host.Route
	err := c.do(ctx, "GET", "/v1/routes", nil, &v)
	return v, err
}

// AddRoute implements host.Host.
func (c *Client) AddRoute(ctx context.Context, r host.Route) error {
	return c.do(ctx, "POST", "/v1/routes", r, nil)
}

// DelRoute implements host.Host.
func (c *Client) DelRoute(ctx context.Context, r host.Route) error {
	return c.do(ctx, "DELETE", "/v1/routes", r, nil)
}

// Neighbors implements host.Host.
func (c *Client) Neighbors(ctx context.Context) ([]host.Neighbor, error) {
	var v []host.Neighbor
	err := c.do(ctx, "GET", "/v1/neighbors", nil, &v)
	return v, err
}

// AddNeighbor implements host.Host.
func (c *Client) AddNeighbor(ctx context.Context, n host.Neighbor) error {
	return c.do(ctx, "POST", "/v1/neighbors", n, nil)
}

// DelNeighbor implements host.Host.
func (c *Client) DelNeighbor(ctx context.Context, dev string, a netip.Addr) error {
	if !a.IsValid() {
		return host.Errorf(syscall.EINVAL, "netd: no neighbor address to delete")
	}
	if dev == "" { // every interface, as arp -d without -i
		return c.do(ctx, "DELETE", "/v1/neighbors/"+seg(a.String()), nil, nil)
	}
	return c.do(ctx, "DELETE", "/v1/neighbors/"+seg(dev)+"/"+seg(a.String()), nil, nil)
}

// Sockets implements host.Host.
func (c *Client) Sockets(ctx context.Context) ([]host.Socket, error) {
	var v []host.Socket
	err := c.do(ctx, "GET", "/v1/sockets", nil, &v)
	return v, err
}

// Counters implements host.Host.
func (c *Client) Counters(ctx context.Context) ([]host.CounterSection, error) {
	var v []host.CounterSection
	err := c.do(ctx, "GET", "/v1/counters", nil, &v)
	return v, err
}
