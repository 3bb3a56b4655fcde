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
//
// Errors are syscall.Errno values (possibly wrapped), with Linux's
// meaning, so callers can test them with errors.Is.
//
// Addresses are netip.AddrPort. An AF_INET6 endpoint speaks IPv4-mapped
// addresses (::ffff:a.b.c.d) for IPv4 peers, as a dual-stack socket does;
// an IPv6 zone names the interface (the sockaddr's scope id).
package transport
