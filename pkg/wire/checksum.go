package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
// complement sum of the data taken as big-endian 16-bit words. Functions here
// return the sum (not complemented) so partial sums can be combined; the value
// stored in a header is ^sum, and a received header verifies when the sum
// over it, stored checksum included, is 0xffff.

// Checksum adds the bytes of b to the partial sum initial and returns the
// folded 16-bit one's complement sum. An odd final byte is padded with zero
// on the right (RFC 1071 §4.1). To checksum data in pieces, every piece but
// the last must have even length.
func Checksum(b []byte, initial uint16) uint16 {
	// One's complement addition is associative and commutative, so 64-bit
	// words can be added with end-around carry and folded at the end
	// (RFC 1071 §2 (B)), eight bytes per add instead of two.
	acc := uint64(initial)
	var c uint64
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), 0)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[32:40]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[40:48]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[48:56]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[56:64]), c)
		acc, c = bits.Add64(acc, 0, c)
		acc += c
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		acc += c // acc wrapped to < 2^64-1, so adding the carry cannot overflow
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		acc += c
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		acc += c
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, 0)
		acc += c
	}
	return fold64(acc)
}

// fold64 reduces a 64-bit one's complement sum to 16 bits.
func fold64(acc uint64) uint16 {
	s := (acc >> 32) + (acc & 0xffffffff) // ≤ 2^33
	s = (s >> 16) + (s & 0xffff)          // ≤ 2^17 + 2^16
	s = (s >> 16) + (s & 0xffff)          // ≤ 2^16 + 1
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// ChecksumCombine adds two partial sums in one's complement arithmetic.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the partial sum of the pseudo-header that
// TCP, UDP and ICMPv6 checksums cover: for IPv4 (RFC 793 §3.1, RFC 768)
// source, destination, zero, protocol and the 16-bit transport length; for
// IPv6 (RFC 8200 §8.1) source, destination, the 32-bit upper-layer length
// and the next header value. src and dst must be of one family.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint16 {
	var acc uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = uint32(binary.BigEndian.Uint16(s[0:])) + uint32(binary.BigEndian.Uint16(s[2:])) +
			uint32(binary.BigEndian.Uint16(d[0:])) + uint32(binary.BigEndian.Uint16(d[2:]))
	} else {
		s, d := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			acc += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
		}
	}
	acc += uint32(proto) + length>>16 + length&0xffff
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// ChecksumUpdate returns the new value of a stored (complemented) checksum
// field hc after a 16-bit word of the covered data changes from old to new,
// by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never turns a
// valid checksum into 0x0000 where 0xffff is meant.
func ChecksumUpdate(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return ^uint16(s)
}

// ChecksumUpdateBytes is ChecksumUpdate for a changed run of bytes, such as
// an address rewritten by NAT. old and new must have the same even length
// and start at an even offset of the covered data.
func ChecksumUpdateBytes(hc uint16, old, new []byte) uint16 {
	for i := 0; i+1 < len(old) && i+1 < len(new); i += 2 {
		hc = ChecksumUpdate(hc, binary.BigEndian.Uint16(old[i:]), binary.BigEndian.Uint16(new[i:]))
	}
	return hc
}
