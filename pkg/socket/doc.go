// Package socket is the POSIX-style socket layer over transport endpoints:
// socket(2) through the transport.Registry, a table of small integer
// descriptors, the blocking and timeout semantics of Linux calls on top of
// endpoints that never block, sockaddr and cmsg encoding, poll(2) and an
// epoll(7) instance. Package gonet adapts sockets to Go's net interfaces.
//
// What it owns: the descriptor table; per socket the O_NONBLOCK flag,
// SO_RCVTIMEO / SO_SNDTIMEO, the read and write deadlines used by the Go
// adapters, and the options that describe the socket itself (SO_TYPE,
// SO_DOMAIN, SO_PROTOCOL, SO_ACCEPTCONN). Everything else is the
// endpoint's: the layer passes it through.
//
// Blocking never costs a goroutine: a blocked call registers a
// waiter.NewChannelEntry on the endpoint's queue, retries the
// non-blocking operation and selects on that channel, the timeout, the
// deadline and the socket's close channel. Epoll keeps a ready list that
// the waiter callbacks (which run on the packet path) append to, so Wait
// looks only at sockets that had an event, never at every watched one.
//
// Lock order (a lock may be taken while holding those to its left, never
// the other way round):
//
//	Epoll.mu → Socket.epMu → endpoint locks → waiter.Queue.mu → Epoll.readyMu
//
// Epoll.mu is held by Ctl, Wait (around the endpoints' Readiness calls)
// and Close; Socket.Close takes the socket out of its epoll sets one at a
// time, after reading the set under Socket.epMu and letting go of it.
// Epoll.readyMu is a leaf: the waiter callbacks take it under the queue's
// lock on the packet path, and nothing is called while it is held.
// Layer.mu (the descriptor table) and deadline.mu are leaves taken alone.
// No lock of this package is held while a call blocks.
package socket

import "github.com/stackbox/stackbox/pkg/deadline"

// ErrDeadlineExceeded is what a call returns when the read or write
// deadline (SetReadDeadline, SetWriteDeadline) passes: os's, so
// errors.Is(err, os.ErrDeadlineExceeded) holds and it is a net.Error
// whose Timeout is true.
var ErrDeadlineExceeded = deadline.ErrExceeded
