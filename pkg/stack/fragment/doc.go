// Package fragment owns IP fragmentation and reassembly for both IPv4 and
// IPv6: the Reassembler that turns fragments back into datagrams, and Plan,
// which splits an outbound payload into fragment-sized pieces for an MTU.
//
// The package does not parse packets. The stack parses the IPv4 header or
// the IPv6 Fragment header (pkg/wire) and passes what reassembly needs: a
// Key naming the datagram, the fragment offset in bytes, the more-fragments
// flag, the bytes of the fragment's data, and the header bytes that precede
// it. The one rule that differs between the families, how the length limit
// counts headers, is chosen by Key.Family.
//
// # Reassembly
//
// Each pending datagram keeps one buffer; a fragment's data is copied into
// it at its offset, so the data is copied once (plus amortised buffer
// growth while the datagram's length is still unknown), and the completed
// datagram is that buffer, handed to the caller. The fragments received are
// kept as a sorted list of non-overlapping intervals (the holes are the gaps
// between them, in the spirit of RFC 815), bounded by Config.MaxFragments.
//
// Overlap: any fragment that overlaps data already received discards the
// whole datagram, for both families. IPv6 requires it (RFC 5722 §4, RFC 8200
// §4.5); Linux does the same for IPv4 since 2018 after CVE-2018-5391
// ("FragmentSmack"; Linux 4.19, "ip: discard IPv4 datagrams with
// overlapping segments"). A fragment identical to one already received
// (same offset, length and bytes) is an exact duplicate, which networks
// produce, and is ignored rather than treated as overlap (RFC 8200 §4.5).
// After a datagram is discarded its key is remembered until the datagram's
// timeout would have run out, so stragglers are dropped too (RFC 5722 §4:
// "the entire datagram (and any constituent fragments, including those not
// yet received) MUST be silently discarded").
//
// IPv6 atomic fragments (offset 0, M flag clear) are complete datagrams;
// they are returned at once and never mixed with pending fragments that
// share their identification (RFC 6946 §4).
//
// Timeouts: a datagram not completed within Config.Timeout of its first
// fragment is dropped; if its offset-zero fragment had arrived,
// Config.OnTimeout receives that fragment so the stack can send ICMP Time
// Exceeded code 1 (RFC 792, RFC 1122 §3.3.2; RFC 8200 §4.5 for IPv6, where
// it is sent only if the first fragment arrived, and the same rule is
// applied to IPv4 because the ICMP message quotes that fragment).
//
// Memory: every pending datagram is charged for its buffer, its saved
// header, its interval list and a fixed overhead; the total never exceeds
// Config.MemoryLimit. The buffer reaches from offset zero to the furthest
// byte received, so a lone fragment far into a datagram costs as much as
// the data before it; that is the price of copying each byte once. A
// fragment that needs more memory evicts the oldest datagrams first
// (counted as ReasmFails and Evictions). Linux instead refuses new
// fragments above ipfrag_high_thresh; evicting the oldest keeps new
// datagrams flowing when stale ones fill the memory.
//
// # Concurrency
//
// A Reassembler has one mutex, taken by Process, Stats, Close and the expiry
// timer; nothing else is locked while it is held. OnTimeout is always called
// after the mutex is released (from the timer's goroutine or from the
// Process call that noticed the expiry), so it may call back into the
// Reassembler or send packets. Timers use the time package only, so
// testing/synctest runs them in fake time.
//
// # Fragmentation
//
// Plan computes the offsets and lengths of the fragments of a payload for
// a link MTU without touching the data; the stack writes each fragment's
// headers into headroom in front of the piece it copies or references.
// CopiedOptions filters IPv4 options down to those whose copied flag says
// they belong in every fragment (RFC 791 §3.1, §3.2).
package fragment
