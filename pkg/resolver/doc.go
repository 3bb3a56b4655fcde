// Package resolver owns name resolution for every stackbox tool: a stub
// resolver in the manner of glibc's res_* functions (and SerenityOS's
// LookupServer), sending its queries through a host.Net so it works the
// same on netd and on a private stack. DNS messages are
// github.com/miekg/dns's.
//
// What it owns:
//   - configuration: resolv.conf(5) (ParseResolvConf, LoadResolvConf) and
//     hosts(5) files (ParseHosts, LoadHosts);
//   - the transport (exchange.go): UDP with a fresh socket, random source
//     port and random ID per query (RFC 5452 §9), answers accepted only
//     when ID and question match, TCP when the answer is truncated
//     (RFC 1035 §4.2.1, RFC 7766 §5), nameserver failover with glibc's
//     attempts × servers schedule and rotate;
//   - the search list and ndots as glibc's res_search applies them;
//   - the lookups (LookupHost, LookupIP, LookupNetip, LookupCNAME,
//     LookupMX, LookupNS, LookupTXT, LookupSRV, LookupSOA, LookupAddr) and
//     the raw Query/Exchange that nslookup, host and dig print;
//   - Cache: answers kept for their TTL and negative answers for the SOA
//     minimum (RFC 2308 §5), bounded and safe for concurrent use, so the
//     daemon can share one;
//   - recursive mode (recursive.go): iterative resolution from the root
//     hints following referrals with glue, bounded in depth and queries.
//
// Errors are *net.DNSError, with IsNotFound set for NXDOMAIN and no data,
// IsTimeout for timeouts, and UnwrapErr one of ErrNXDomain, ErrNoData,
// ErrServFail, ErrRefused, ErrTimeout, so errors.Is tells them apart and
// tools can print bind's messages and exit statuses.
//
// Lock order: Cache.mu is a leaf; the Resolver itself holds no lock while
// it sends (its rotate counter is atomic).
package resolver
