// Package netd is the control protocol of the daemon `stackbox netd` and its
// client: a Server that serves a host.Host over HTTP+JSON on a Unix socket,
// and a Client (Dial) that is itself a host.Host, so an applet configures
// the daemon's stack with the same calls it uses on a private in-process
// stack (DESIGN.md, Process model). The package owns the wire format, the
// access rules and the socket's life (Listen, SocketPath); it owns no stack:
// the daemon passes in the host.Host to serve.
//
// # Wire format
//
// The API is public and scriptable:
//
//	curl --unix-socket /run/stackbox/netd.sock http://netd/v1/interfaces
//
// Bodies are JSON objects in the encoding of package host's types (addresses
// and prefixes as text: "10.0.0.1/24", "fe80::1"). Request bodies are decoded
// strictly: unknown fields, trailing data and bodies over 1 MiB are refused.
// Interface names are one path segment each, escaped as url.PathEscape does
// ("eth0:1" travels as is, a "/" as %2F).
//
//	GET    /v1/version                        {"name":"stackbox netd","api":1,"pid":N,"version":"…"}
//	GET    /v1/interfaces                     [Interface…] (aliases such as eth0:1 listed as their own)
//	GET    /v1/interfaces/{name}              Interface
//	PATCH  /v1/interfaces/{name}              {"mtu":N,"mac":"…","promisc":B,"up":B}, each optional;
//	                                          applied in that order, the first failure stops
//	                                          (as ifconfig's successive ioctls do)
//	POST   /v1/interfaces/{name}/addresses    {"prefix":"10.0.0.1/24","broadcast":"10.0.0.255"}
//	DELETE /v1/interfaces/{name}/addresses/{addr}
//	GET    /v1/routes                         [Route…]
//	POST   /v1/routes                         Route
//	DELETE /v1/routes                         Route as the body, or, with no body, the query
//	                                          ?dst=P&gateway=A&dev=D&metric=N (dst required)
//	GET    /v1/neighbors                      [Neighbor…]
//	POST   /v1/neighbors                      Neighbor
//	DELETE /v1/neighbors/{dev}/{addr}         (/v1/neighbors/{addr}: on any interface)
//	GET    /v1/sockets                        [Socket…]
//	GET    /v1/counters                       [CounterSection…]
//
// A mutation that succeeds answers 204 No Content. A failure answers the
// host.Error as JSON, {"errno":N,"error":"message"}, with the status derived
// from the errno: 400 EINVAL (also for a malformed body or path value), 403
// EPERM/EACCES, 404 ENODEV/ESRCH/ENXIO/ENOENT/EADDRNOTAVAIL, 409 EEXIST, 500
// anything else. An error the host returns without an errno travels as EIO.
// An unknown method or path answers 404 with EOPNOTSUPP. The client rebuilds
// the same *host.Error, so errors.Is(err, syscall.ENODEV) holds on both
// sides of the socket.
//
// # Data sockets
//
// The client is also a host.Net: each socket it opens is a connection of
// its own to netd, upgraded from one request:
//
//	POST /v1/sockets   Connection: Upgrade, Upgrade: stackbox-socket
//	                   {"op":"dial"|"listen"|"listen_packet"|"accept","network":"tcp",
//	                    "address":"10.0.0.2:80","options":{…},"listener":ID}
//
// netd opens the socket on its stack for the peer's credentials and
// answers 101 Switching Protocols with a Stackbox-Socket header,
// {"id":N,"kind":"stream"|"packet"|"listener","local":…,"remote":…}, or an
// error answer as above (ECONNREFUSED, EPERM, EACCES, …). The connection
// then carries the socket's traffic in frames: a kind byte, a 4-byte
// big-endian length, the payload (frame.go lists the kinds). A stream
// socket's bytes travel in data frames, read straight into the caller's
// buffer and written with the header in one writev, so socket data is
// copied no more than a kernel socket's; a half-close is a frame, and the
// end of the peer's data an EOF or an error frame (errno). A datagram
// socket's sends and option calls are answered in order; what it
// receives comes as message frames (flags, sender, Linux cmsgs, data),
// error-queue messages and pending errors as their own frames. Closing
// the connection closes the socket. An accept is its own request naming
// the listener, whose connection only holds the listener open. Sockets
// belong to the peer (netstat -p shows its PID and command); Shutdown
// closes them all, TCP connections with a FIN.
//
// # Access rules
//
// As on Linux, reading the configuration (every GET) is open to every local
// user; every mutation needs uid 0, the uid the daemon runs as (a netd
// started without root is its user's), or membership (primary or
// supplementary group) of ServerOptions.AdminGID, when it is set. The server learns the
// peer from SO_PEERCRED and SO_PEERGROUPS on the accepted connection, so the
// check does not depend on who can open the socket file; Listen therefore
// makes the socket 0666. A refused mutation answers 403 with EPERM.
// GET /v1/sockets lists every socket to everyone but names the owning
// process (PID, Program) only to root and to the socket's owner, as
// netstat -p shows "-" for other users' sockets on Linux. Data sockets
// are opened with the peer's uid; raw sockets and ports below 1024 need
// the same privilege as configuration (the stack answers EPERM and
// EACCES otherwise, as Linux does without CAP_NET_RAW and
// CAP_NET_BIND_SERVICE), and only the owner (or root) may accept on a
// listener.
//
// # Locks
//
// Server's one lock guards its table of data sockets, held only to add,
// find or remove one; net/http's server owns the listeners and the
// shutdown state, and concurrent requests call the host concurrently, so
// the host's own locks serialise them. A datagram socket's stream has a
// write lock on each side (answers and messages interleave) and the
// client one call lock. Client holds one mutex, for its
// closed flag only, never across a request. Neither calls back into its
// caller.
package netd
