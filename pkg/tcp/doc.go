// Package tcp is the Transmission Control Protocol (RFC 9293) on a
// stack.Stack: the transport handler the stack hands TCP segments and
// ICMP errors to, the demultiplexing of segments to connections and
// listeners, and the endpoints (transport.Endpoint) with their state
// machine, buffers and timers.
//
// It owns: the connection table (exact 4-tuple by hash, then listeners by
// bound address, then by wildcard), port reservations and ephemeral ports
// through pkg/ports (a connect checks its 4-tuple for uniqueness), resets
// for segments that reach no socket (RFC 9293 §3.10.7.1), checksums, the
// eleven states of RFC 9293 §3.3.2 with the RFC 5961 defences (challenge
// ACKs for in-window RSTs and SYNs, ACK acceptability), TIME_WAIT (a
// new SYN reopens the 4-tuple when RFC 6191 allows, at most MaxTimeWait
// connections in it), listen backlogs
// (a SYN queue and an accept queue, SYN cookies from pkg/tcp/isn when the
// SYN queue is full), the send buffer that is also the
// retransmission queue, the receive buffer that holds out-of-order data at
// its offset (holes tracked by pkg/tcp/ranges, SACK blocks reported from
// it), both sized by auto-tuning unless SO_SNDBUF or SO_RCVBUF is set
// (twice the congestion window, Linux tcp_sndbuf_expand; twice what the
// application reads per round trip, tcp_rcv_space_adjust) and holding
// their memory while the connection is busy, giving it back after a
// second idle; the memory of all connections together is accounted and
// capped (Protocol.MemLimit and MemPressure, Linux's tcp_mem; mem.go):
// under pressure auto-tuning grows nothing and emptied buffers go back
// at once, at the limit a buffer keeps only its guaranteed minimum
// (tcp_rmem[0]): out-of-order data goes first (tcp_prune_ofo_queue,
// the pruned ranges unSACKed), then in-order data that needs memory is
// dropped, the window offers only the memory held and writes wait; window scaling and timestamps (RFC 7323), SACK-permitted
// negotiation and SACK blocks (RFC 2018), silly window avoidance, delayed
// ACKs, Nagle, retransmission (RFC 6298 through pkg/tcp/rtt), limited
// transmit (RFC 3042: a new segment on each of the first two duplicate
// ACKs, within cwnd + 2·SMSS, before any recovery), fast
// retransmit with SACK-based recovery when SACK was negotiated (RFC 6675
// through pkg/tcp/sack's scoreboard, losses found by RACK's transmit
// times, RFC 8985 §6, in place of the DupThresh rule, with the Tail Loss
// Probe of §7 at the tail; rack.go) and NewReno otherwise (RFC 5681,
// RFC 6582), both paced by PRR (RFC 6937); after a retransmission
// timeout a SACK connection keeps its scoreboard and resends only the
// unSACKed data, from the loss window in slow start (RFC 6675 §5.1, as
// Linux tcp_enter_loss), one without SACK goes back to SND.UNA; all
// under pkg/tcp/cc's congestion control (Protocol.Congestion, CUBIC by
// default, or TCP_CONGESTION's choice), Explicit Congestion Notification
// (RFC 3168 §6.1, negotiated as Protocol.ECN says, Linux's tcp_ecn: ECT(0)
// on new data, ECE echoed until CWR, one window reduction per window of
// data; ecn.go), zero-window probes, keep-alive, the
// user timeout (RFC 5482 TCP_USER_TIMEOUT), and the
// Linux "Tcp:" counters of /proc/net/snmp with the TcpExt ones of
// /proc/net/netstat that apply (Stats).
//
// Lock order: endpoint.mu → Protocol.mu (the tables) → the ports
// manager's lock and the stack's locks (route lookups). A listener's mu
// comes before its children's: a child that becomes established takes
// its own mu, releases it, then takes the listener's to join the accept
// queue, never the other way round while holding both. Protocol.epsMu
// (every endpoint, for netstat) is a leaf. The memory total is an
// atomic counter, charged under the endpoint's mu when its rings grow. waiter.Queue.Notify is
// called with no lock held, and so is stack.WritePacket: segments built
// under endpoint.mu are queued on the endpoint and written by whichever
// goroutine holds the endpoint's "flushing" role, so segments leave in
// the order they were built and a segment looped back to this endpoint
// finds its lock free. The packet path takes an endpoint's mu only for
// the bounded work of one segment; the application holds it only to copy
// between its buffers and the endpoint's (at most SO_SNDBUF/SO_RCVBUF).
//
// Timers are time.AfterFunc timers (so testing/synctest drives them in
// fake time); their callbacks take the endpoint's mu like the packet path.
package tcp
