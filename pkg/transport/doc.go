// Package transport is what every transport endpoint (UDP, raw IP, ping,
// and TCP) has in common, and the contract between the endpoints and the
// layers above them: the POSIX-style socket layer (pkg/socket) and the Go
// adapters (pkg/socket/gonet).
//
//   - Endpoint: the non-blocking interface each protocol implements. An
//     operation that cannot complete now returns syscall.EAGAIN (or
//     EINPROGRESS for a connect in progress, EALREADY while it is); the
//     socket layer blocks by waiting on the endpoint's waiter.Queue.
//     Endpoints may also implement Available() int for FIONREAD.
//   - Options: the socket options common to all endpoints (SOL_SOCKET and
//     most of IPPROTO_IP / IPPROTO_IPV6), parsed and stored in one place.
//   - DatagramQueue: the bounded receive queue of datagram endpoints, which
//     drops and counts when SO_RCVBUF is exhausted.
//   - Registry: which constructor serves socket(family, type, protocol).
//   - Memberships: a socket's multicast groups over the NICs' shared joins.
//   - DatagramEndpoint: the plumbing UDP, raw and ping endpoints embed —
//     the waiter queue, receive and error queues, the pending SO_ERROR,
//     the shutdown and closed flags, Readiness and the datagram read —
//     and EndpointSet, a protocol's open endpoints for netstat.
//   - IPAddrs: the addressing raw and ping sockets share (one family, a
//     local address and a peer, no ports of their own), with the
//     destination and source choice of a send; ConnectRoute, their
//     connect's route check.
//   - StackInterfaces: a stack's NICs by name and index, for Options and
//     for the socket layer's zone ↔ scope id mapping.
//
// Locking: an endpoint's own lock comes first, then the stack's locks
// (route and interface lookups), then the leaves — each DatagramQueue's
// lock and each EndpointSet's — under which nothing else is taken. A
// DatagramEndpoint and an IPAddrs have no lock of their own: the
// endpoint that embeds them guards them with its lock, and the methods
// named …Locked are called with that lock held (Memberships likewise
// rely on their holder's lock). Nothing in this package takes an
// endpoint's lock. waiter.Queue.Notify is never called with an
// endpoint's lock held: a waiter's callback may call straight back into
// the endpoint.
//
// Errors are syscall.Errno values (possibly wrapped), with Linux's
// meaning, so callers can test them with errors.Is.
//
// Addresses are netip.AddrPort. An AF_INET6 endpoint speaks IPv4-mapped
// addresses (::ffff:a.b.c.d) for IPv4 peers, as a dual-stack socket does;
// an IPv6 zone names the interface (the sockaddr's scope id).
package transport
