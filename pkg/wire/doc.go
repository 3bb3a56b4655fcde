// Package wire owns the packet formats of stackbox: validating, zero-copy
// views over received bytes, builders that encode headers into
// caller-supplied buffers, and the Internet checksum.
//
// Conventions every format in this package follows:
//
//   - A view is a named []byte type (Ethernet, IPv4, TCP, …) made only by its
//     Parse function (ParseIPv4 and so on). Parse checks every length the
//     header claims against the buffer once, so the view's accessors never
//     read out of range and never panic. Parse does not verify checksums:
//     the stack decides that (a NIC may have verified them already), through
//     the view's ChecksumValid method.
//   - A malformed packet gives a *Error naming the protocol, the field at
//     fault and what is wrong with it; errors.Is tells the kind apart
//     (ErrTruncated, ErrMalformed, ErrUnsupported).
//   - A builder is a small value struct (IPv4Fields, TCPFields, …) with Len,
//     the bytes it needs, and Encode, which writes exactly that many bytes
//     at the front of the buffer it is given. Outbound packets are built
//     back to front into one buffer with headroom, so no layer copies
//     another's bytes.
//   - Addresses are netip.Addr and MAC: value types that do not allocate.
//
// The package is pure: no I/O, no goroutines, no clocks, and it imports
// nothing else of stackbox.
package wire
