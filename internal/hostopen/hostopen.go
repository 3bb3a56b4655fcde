// Package hostopen finds the host an applet runs on (DESIGN.md, Process
// model): with a link spec (--link SPEC, else STACKBOX_LINK) a private
// in-process stack that lives as long as the returned Host; otherwise the
// netd daemon through its control socket (STACKBOX_SOCKET, default
// /run/stackbox/netd.sock). It is the host.Opener cmd/stackbox gives every
// applet.
package hostopen

import (
	"context"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/netd"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

var _ host.Opener = Open

// Open returns the applet's Host: a private stack on link (or
// STACKBOX_LINK) when one is given, else a client of the running netd.
func Open(ctx context.Context, link string, getenv func(string) string) (host.Host, error) {
	if link == "" {
		link = getenv("STACKBOX_LINK")
	}
	if link != "" {
		h, err := stackhost.Start(link)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	c, err := netd.Dial(ctx, netd.SocketPath(getenv))
	if err != nil {
		return nil, err
	}
	return c, nil
}
