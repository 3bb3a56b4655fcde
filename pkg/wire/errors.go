package wire

import (
	"errors"
	"fmt"
)

// Kinds of parse failure; a *Error wraps exactly one of them.
var (
	// ErrTruncated: the buffer is shorter than a length the packet needs or claims.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed: a field holds a value the format does not allow.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported: well formed, but a variant this package does not decode.
	ErrUnsupported = errors.New("unsupported")
)

// Error reports why a packet failed validation, naming the protocol and the
// field at fault, e.g. "ipv4: total length: 1600 exceeds the 1500-byte buffer".
type Error struct {
	Proto string // "ipv4", "tcp", "icmpv6", …
	Field string // the header field or option at fault
	Kind  error  // ErrTruncated, ErrMalformed or ErrUnsupported
	Msg   string // what is wrong with it
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Proto + ": " + e.Msg
	}
	return e.Proto + ": " + e.Field + ": " + e.Msg
}

// Unwrap returns the kind, so errors.Is(err, ErrTruncated) works.
func (e *Error) Unwrap() error { return e.Kind }

// newError builds a *Error; formatting happens only on the error path.
func newError(kind error, proto, field, format string, args ...any) *Error {
	return &Error{Proto: proto, Field: field, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// truncated is the common "need N bytes, have M" error.
func truncated(proto, field string, need, have int) *Error {
	return newError(ErrTruncated, proto, field, "needs %d bytes, buffer has %d", need, have)
}
