package netd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"

	"github.com/stackbox/stackbox/pkg/host"
)

// APIVersion is the protocol version /v1/version reports.
const APIVersion = 1

// maxBody bounds a request body; the largest real one is a Route.
const maxBody = 1 << 20

// Version is the answer of GET /v1/version, which the client uses to check
// that the socket is served by netd.
type Version struct {
	Name    string `json:"name"` // "stackbox netd"
	API     int    `json:"api"`  // APIVersion
	PID     int    `json:"pid"`  // the daemon's process id
	Version string `json:"version,omitempty"`
	// ResolvConf is the resolv.conf netd owns, which the tools' resolver
	// reads.
	ResolvConf string `json:"resolv_conf,omitempty"`
}

const serverName = "stackbox netd"

// AddressRequest is the body of POST /v1/interfaces/{name}/addresses.
type AddressRequest struct {
	Prefix    netip.Prefix `json:"prefix"`
	Broadcast netip.Addr   `json:"broadcast,omitzero"`
}

// InterfacePatch is the body of PATCH /v1/interfaces/{name}: the fields
// present are changed, in the order MTU, MAC, Promisc, Up.
type InterfacePatch struct {
	Up      *bool   `json:"up,omitempty"`
	MTU     *int    `json:"mtu,omitempty"`
	MAC     *string `json:"mac,omitempty"`
	Promisc *bool   `json:"promisc,omitempty"`
}

func einval(format string, args ...any) error {
	return host.Errorf(syscall.EINVAL, "netd: "+format, args...)
}

// decodeStrict decodes exactly one JSON value from body into v: unknown
// fields and trailing data are errors (EINVAL).
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return einval("empty request body")
		}
		return einval("bad request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return einval("bad request body: data after the JSON value")
	}
	return nil
}

func decodeAddress(body []byte) (AddressRequest, error) {
	var r AddressRequest
	if err := decodeStrict(body, &r); err != nil {
		return r, err
	}
	if !r.Prefix.IsValid() {
		return r, einval("address request needs a prefix (\"10.0.0.1/24\")")
	}
	if r.Broadcast.IsValid() && !(r.Prefix.Addr().Is4() && r.Broadcast.Is4()) {
		return r, einval("broadcast %v: only for an IPv4 address", r.Broadcast)
	}
	return r, nil
}

func decodePatch(body []byte) (InterfacePatch, error) {
	var p InterfacePatch
	if err := decodeStrict(body, &p); err != nil {
		return p, err
	}
	if p.Up == nil && p.MTU == nil && p.MAC == nil && p.Promisc == nil {
		return p, einval("interface patch changes nothing (fields: up, mtu, mac, promisc)")
	}
	return p, nil
}

// decodeRoute reads the Route of POST /v1/routes and DELETE /v1/routes:
// the body, or for a DELETE without a body, the query parameters dst,
// gateway, dev and metric.
func decodeRoute(body []byte, q url.Values) (host.Route, error) {
	var r host.Route
	if len(bytes.TrimSpace(body)) == 0 && q != nil {
		return routeFromQuery(q)
	}
	if err := decodeStrict(body, &r); err != nil {
		return r, err
	}
	if !r.Dst.IsValid() {
		return r, einval("route needs a destination (\"dst\": \"10.0.0.0/8\" or \"0.0.0.0/0\")")
	}
	if r.Metric < 0 {
		return r, einval("route metric %d: want a number >= 0", r.Metric)
	}
	return r, nil
}

func routeFromQuery(q url.Values) (host.Route, error) {
	var r host.Route
	for k := range q {
		switch k {
		case "dst", "gateway", "dev", "metric":
		default:
			return r, einval("unknown route parameter %q (dst, gateway, dev, metric)", k)
		}
	}
	dst, err := netip.ParsePrefix(q.Get("dst"))
	if err != nil {
		return r, einval("route dst %q: want a prefix such as 10.0.0.0/8", q.Get("dst"))
	}
	r.Dst = dst
	if g := q.Get("gateway"); g != "" {
		if r.Gateway, err = netip.ParseAddr(g); err != nil {
			return r, einval("route gateway %q: want an address", g)
		}
	}
	r.Dev = q.Get("dev")
	if m := q.Get("metric"); m != "" {
		if r.Metric, err = strconv.Atoi(m); err != nil || r.Metric < 0 {
			return r, einval("route metric %q: want a number >= 0", m)
		}
	}
	return r, nil
}

// routeQuery is the inverse of routeFromQuery, for tests and scripts.
func routeQuery(r host.Route) url.Values {
	q := url.Values{"dst": {r.Dst.String()}}
	if r.Gateway.IsValid() {
		q.Set("gateway", r.Gateway.String())
	}
	if r.Dev != "" {
		q.Set("dev", r.Dev)
	}
	if r.Metric != 0 {
		q.Set("metric", strconv.Itoa(r.Metric))
	}
	return q
}

func decodeNeighbor(body []byte) (host.Neighbor, error) {
	var n host.Neighbor
	if err := decodeStrict(body, &n); err != nil {
		return n, err
	}
	if !n.Addr.IsValid() {
		return n, einval("neighbor needs an address (\"addr\")")
	}
	return n, nil
}

func parseAddrParam(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, einval("%q is not an IP address", s)
	}
	return a, nil
}

// asHostError turns any error a host returns into the *host.Error that goes
// on the wire: an errno found in its chain is kept, context errors become
// ECANCELED/ETIMEDOUT, and anything else EIO.
func asHostError(err error) *host.Error {
	var he *host.Error
	if errors.As(err, &he) && he.Errno != 0 {
		return he
	}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno != 0:
	case errors.Is(err, context.Canceled):
		errno = syscall.ECANCELED
	case errors.Is(err, context.DeadlineExceeded):
		errno = syscall.ETIMEDOUT
	default:
		errno = syscall.EIO
	}
	return &host.Error{Errno: errno, Msg: err.Error()}
}

// StatusOf is the HTTP status an errno answers with.
func StatusOf(errno syscall.Errno) int {
	switch errno {
	case syscall.EINVAL:
		return http.StatusBadRequest
	case syscall.EPERM, syscall.EACCES:
		return http.StatusForbidden
	case syscall.ENODEV, syscall.ESRCH, syscall.ENXIO, syscall.ENOENT, syscall.EADDRNOTAVAIL:
		return http.StatusNotFound
	case syscall.EEXIST:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// errnoOfStatus guesses an errno for an error answer without a usable body
// (a proxy, a truncated answer).
func errnoOfStatus(status int) syscall.Errno {
	switch status {
	case http.StatusBadRequest:
		return syscall.EINVAL
	case http.StatusForbidden:
		return syscall.EPERM
	case http.StatusNotFound:
		return syscall.ENOENT
	case http.StatusConflict:
		return syscall.EEXIST
	case http.StatusMethodNotAllowed:
		return syscall.EOPNOTSUPP
	}
	return syscall.EIO
}
