package resolver

import (
	"errors"
	"net"

	"github.com/miekg/dns"
)

// The kinds of failure, as the UnwrapErr of the *net.DNSError a lookup
// returns: test them with errors.Is.
var (
	// ErrNXDomain: the name does not exist (RCODE 3, NXDOMAIN).
	ErrNXDomain = errors.New("NXDOMAIN")
	// ErrNoData: the name exists but has no record of the type asked
	// (NOERROR with an empty answer, RFC 2308 §2.2).
	ErrNoData = errors.New("no data")
	// ErrServFail: every server failed (RCODE 2, SERVFAIL).
	ErrServFail = errors.New("SERVFAIL")
	// ErrRefused: every server refused (RCODE 5, REFUSED).
	ErrRefused = errors.New("REFUSED")
	// ErrTimeout: no server answered in time.
	ErrTimeout = errors.New("timed out")
	// ErrBadResponse: an answer that cannot be used (another RCODE,
	// a malformed message, a CNAME loop).
	ErrBadResponse = errors.New("bad response")
)

// Go's net package wording, so messages read as Go programs' do.
const (
	msgNoSuchHost   = "no such host"
	msgMisbehaving  = "server misbehaving"
	msgTimeout      = "i/o timeout"
	msgNoData       = "no answer from DNS server"
	msgCNAMELoop    = "CNAME loop or chain too long"
	msgRefused      = "query refused"
	msgUnreachable  = "no reachable server"
	msgInvalidName  = "invalid domain name"
	msgNoServers    = "no nameservers configured"
	msgRecursionMax = "resolution exceeded its query budget"
)

// dnsError builds the error for name from server with kind as its
// UnwrapErr.
func dnsError(name, server, msg string, kind error) *net.DNSError {
	e := &net.DNSError{Err: msg, Name: name, Server: server, UnwrapErr: kind}
	switch kind {
	case ErrNXDomain, ErrNoData:
		e.IsNotFound = true
	case ErrTimeout:
		e.IsTimeout = true
		e.IsTemporary = true
	case ErrServFail:
		e.IsTemporary = true
	}
	return e
}

// rcodeError is the error for an answer's RCODE, nil for NOERROR.
func rcodeError(name, server string, rcode int) error {
	switch rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNameError:
		return dnsError(name, server, msgNoSuchHost, ErrNXDomain)
	case dns.RcodeServerFailure:
		return dnsError(name, server, msgMisbehaving, ErrServFail)
	case dns.RcodeRefused:
		return dnsError(name, server, msgRefused, ErrRefused)
	}
	return dnsError(name, server, msgMisbehaving+" ("+dns.RcodeToString[rcode]+")", ErrBadResponse)
}

// Rcode returns the RCODE err stands for (NXDOMAIN, SERVFAIL, REFUSED;
// NOERROR for no data), or -1 when err is no answer at all, so a tool
// can print bind's "status:" word.
func Rcode(err error) int {
	switch {
	case errors.Is(err, ErrNXDomain):
		return dns.RcodeNameError
	case errors.Is(err, ErrServFail):
		return dns.RcodeServerFailure
	case errors.Is(err, ErrRefused):
		return dns.RcodeRefused
	case errors.Is(err, ErrNoData):
		return dns.RcodeSuccess
	}
	return -1
}
