package hostopen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/netd"
	"github.com/stackbox/stackbox/pkg/resolver"
)

// Default files of the resolver on a private stack.
const (
	systemResolvConf = "/etc/resolv.conf"
	systemHosts      = "/etc/hosts"
)

// Resolver returns the resolver the tools share on h: netd's resolv.conf
// when h is netd's client (the one it owns and writes its DNS servers
// to), else /etc/resolv.conf; STACKBOX_RESOLV_CONF overrides either, and
// STACKBOX_HOSTS names the hosts file (default /etc/hosts). Missing files
// mean glibc's defaults and no hosts entries.
func Resolver(h host.Host, getenv func(string) string) *resolver.Resolver {
	path := getenv("STACKBOX_RESOLV_CONF")
	if path == "" {
		path = systemResolvConf
		if c, ok := h.(*netd.Client); ok && c.ResolvConf() != "" {
			path = c.ResolvConf()
		}
	}
	cfg, err := resolver.LoadResolvConf(path)
	if err != nil {
		cfg = resolver.DefaultConfig()
	}
	hostsPath := getenv("STACKBOX_HOSTS")
	if hostsPath == "" {
		hostsPath = systemHosts
	}
	r := resolver.New(h, cfg)
	if hosts, err := resolver.LoadHosts(hostsPath); err == nil {
		r.Hosts = hosts
	}
	r.Cache = resolver.NewCache(256, time.Now)
	return r
}

// GAIError is a failed name lookup in getaddrinfo(3)'s words
// (gai_strerror), which ping, nc and the other tools print.
type GAIError struct {
	Msg string
	Err error // the resolver's error
}

func (e *GAIError) Error() string { return e.Msg }
func (e *GAIError) Unwrap() error { return e.Err }

// The gai_strerror texts of glibc.
const (
	gaiNoName   = "Name or service not known"            // EAI_NONAME
	gaiAgain    = "Temporary failure in name resolution" // EAI_AGAIN
	gaiNoData   = "No address associated with hostname"  // EAI_NODATA
	gaiFail     = "Non-recoverable failure in name resolution"
	gaiNoFamily = "Address family for hostname not supported" // EAI_ADDRFAMILY
)

// gaiError maps a resolver error as glibc's getaddrinfo does.
func gaiError(err error) error {
	switch {
	case errors.Is(err, resolver.ErrNXDomain):
		return &GAIError{gaiNoName, err}
	case errors.Is(err, resolver.ErrNoData):
		return &GAIError{gaiNoData, err}
	case errors.Is(err, resolver.ErrServFail), errors.Is(err, resolver.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED):
		return &GAIError{gaiAgain, err}
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return &GAIError{gaiNoName, err}
		}
		// No server gave an answer (refused, unreachable, garbled):
		// glibc's res_search reports TRY_AGAIN, EAI_AGAIN.
		return &GAIError{gaiAgain, err}
	}
	return &GAIError{gaiFail, err}
}

// LookupHost resolves name to the addresses of family (0, AF_INET or
// AF_INET6) in the resolver's order and the canonical name (the end of
// its CNAME chain, or name), with getaddrinfo's error texts.
func LookupHost(ctx context.Context, r *resolver.Resolver, name string, family int) ([]netip.Addr, string, error) {
	addrs, err := r.LookupNetip(ctx, name)
	if err != nil {
		return nil, "", gaiError(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if family == syscall.AF_INET && !a.Is4() || family == syscall.AF_INET6 && a.Is4() {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, "", &GAIError{gaiNoFamily, nil}
	}
	canon := name
	if r.Hosts == nil || len(r.Hosts.Lookup(name)) == 0 {
		if c, err := r.LookupCNAME(ctx, name); err == nil && c != "" {
			canon = trimDot(c)
		}
	}
	return out, canon, nil
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// Resolve is LookupHost's first address with the resolver of h and
// getenv: the name lookup ping and traceroute plug in.
func Resolve(ctx context.Context, h host.Host, getenv func(string) string, name string, family int) (netip.Addr, string, error) {
	addrs, canon, err := LookupHost(ctx, Resolver(h, getenv), name, family)
	if err != nil {
		return netip.Addr{}, "", err
	}
	return addrs[0], canon, nil
}

// ResolveAll is LookupHost's addresses of either family, in the order to
// try them: the name lookup nc plugs in.
func ResolveAll(ctx context.Context, h host.Host, getenv func(string) string, name string) ([]netip.Addr, error) {
	addrs, _, err := LookupHost(ctx, Resolver(h, getenv), name, 0)
	return addrs, err
}

// ReverseName is getnameinfo(3) with NI_NAMEREQD: the host name of a
// from the hosts file or its PTR record, without the final dot.
func ReverseName(ctx context.Context, h host.Host, getenv func(string) string, a netip.Addr) (string, error) {
	names, err := Resolver(h, getenv).LookupAddr(ctx, a.String())
	if err != nil {
		return "", gaiError(err)
	}
	if len(names) == 0 {
		return "", &GAIError{gaiNoName, nil}
	}
	return trimDot(names[0]), nil
}
