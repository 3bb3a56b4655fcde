package fragment

import (
	"errors"
	"fmt"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Piece is one fragment of an outbound payload: Len bytes of the
// fragmentable part starting at Offset (a multiple of 8), and whether more
// fragments follow (the MF / M flag).
type Piece struct {
	Offset int
	Len    int
	More   bool
}

// Errors from Plan and CopiedOptions.
var (
	// ErrMTUTooSmall: the MTU leaves less than 8 bytes of data per fragment
	// after the headers (RFC 791 §3.2: a fragment carries at least 8).
	ErrMTUTooSmall = errors.New("fragment: MTU too small for the headers and 8 bytes of data")
	// ErrPayloadTooLong: a fragment offset would not fit the 13-bit field.
	ErrPayloadTooLong = errors.New("fragment: payload too long to fragment")
	// ErrBadOptions: the IPv4 options are malformed.
	ErrBadOptions = errors.New("fragment: malformed IPv4 options")
)

// Plan splits payloadLen bytes of fragmentable data into fragments that fit
// a link MTU, appending the pieces to dst (pass a reused slice to avoid
// allocating). It touches no data: the stack copies or references
// payload[Offset:Offset+Len] behind each fragment's headers.
//
// firstHeaderLen and headerLen are the bytes before the data in the first
// and in every other fragment. IPv4: the IP header with all options, and
// with only the copied options (CopiedOptions). IPv6: both are the fixed
// header plus the unfragmentable part plus the 8-byte Fragment header (RFC
// 8200 §4.5). Every fragment but the last carries a multiple of 8 bytes, as
// the offset field counts 8-byte units (RFC 791 §3.1, RFC 8200 §4.5).
//
// Whether to fragment at all, and Don't Fragment, are the caller's
// decision: a payload that fits the first fragment gives a single piece with
// More clear.
func Plan(dst []Piece, payloadLen, mtu, firstHeaderLen, headerLen int) ([]Piece, error) {
	if payloadLen < 0 || firstHeaderLen < 0 || headerLen < 0 {
		return dst, ErrMalformed
	}
	if payloadLen <= mtu-firstHeaderLen {
		return append(dst, Piece{Offset: 0, Len: payloadLen}), nil
	}
	first := (mtu - firstHeaderLen) &^ 7
	rest := (mtu - headerLen) &^ 7
	if first < 8 || rest < 8 {
		return dst, ErrMTUTooSmall
	}
	// The last fragment starts at the last multiple of rest after first.
	if lastOff := first + (payloadLen-first-1)/rest*rest; lastOff > maxOffset {
		return dst, ErrPayloadTooLong
	}
	off, n := 0, first
	for off < payloadLen {
		n = min(n, payloadLen-off)
		dst = append(dst, Piece{Offset: off, Len: n, More: off+n < payloadLen})
		off += n
		n = rest
	}
	return dst, nil
}

// CopiedOptions appends to dst the IPv4 options from opts that are copied
// into every fragment (the copied flag, the top bit of the type octet, RFC
// 791 §3.1), padded with End of Option List octets to a multiple of 4 so the
// header length stays in 32-bit words. Options not copied, No Operation
// padding and everything after End of Option List are left out; a fragment
// other than the first carries only these (RFC 791 §3.2, "copy the
// internet header options that are to be copied"). opts is the option
// area of a header, as wire.IPv4 gives it.
func CopiedOptions(dst, opts []byte) ([]byte, error) {
	start := len(dst)
	it := wire.NewIPv4OptionIter(opts) // skips NOPs, stops at End of Option List
	for {
		o, ok := it.Next()
		if !ok {
			break
		}
		if o.Copied() {
			dst = append(dst, o...)
		}
	}
	if err := it.Err(); err != nil {
		return dst[:start], fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst, nil
}
