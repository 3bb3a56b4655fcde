package wire

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// Neighbor Discovery for IPv6 (RFC 4861): router and neighbour
// solicitations and advertisements, redirects, and their options, with the
// DNS options of RFC 8106. The messages are ICMPv6 messages: ParseICMPv6
// validates them, the typed views below read them, and the builders write
// whole messages (ICMPv6 header included) for SetICMPv6Checksum to finish.
// The hop-limit-255 check of RFC 4861 §6.1 needs the IPv6 header and is the
// stack's.

// Fixed sizes of the NDP messages, ICMPv6 header included.
const (
	ndpRSLen       = 8
	ndpRALen       = 16
	ndpNSLen       = 24
	ndpNALen       = 24
	ndpRedirectLen = 40
)

// NDP option types.
const (
	NDPOptSourceLinkAddr   uint8 = 1  // RFC 4861 §4.6.1
	NDPOptTargetLinkAddr   uint8 = 2  // RFC 4861 §4.6.1
	NDPOptPrefixInfo       uint8 = 3  // RFC 4861 §4.6.2
	NDPOptRedirectedHeader uint8 = 4  // RFC 4861 §4.6.3
	NDPOptMTU              uint8 = 5  // RFC 4861 §4.6.4
	NDPOptRDNSS            uint8 = 25 // RFC 8106 §5.1
	NDPOptDNSSL            uint8 = 31 // RFC 8106 §5.2
)

const (
	ndpOptLinkAddrLen   = 8 // for Ethernet (RFC 2464 §6)
	ndpOptPrefixInfoLen = 32
	ndpOptMTULen        = 8
	ndpOptRDNSSMinLen   = 24
	ndpOptDNSSLMinLen   = 16
	ndpOptRedirHdrLen   = 8 // before the quoted packet
)

// ndpCheck validates an NDP message: code 0 and the fixed length (RFC 4861
// §6.1.1, §6.1.2, §7.1.1, §7.1.2, §8.1), and every option length.
func ndpCheck(m ICMPv6) error {
	t := m.Type()
	fixed := ndpRSLen
	switch t {
	case ICMPv6RouterAdvert:
		fixed = ndpRALen
	case ICMPv6NeighborSolicit:
		fixed = ndpNSLen
	case ICMPv6NeighborAdvert:
		fixed = ndpNALen
	case ICMPv6Redirect:
		fixed = ndpRedirectLen
	}
	if len(m) < fixed {
		return truncated("icmpv6", icmpv6TypeName(t), fixed, len(m))
	}
	if m.Code() != 0 {
		return newError(ErrMalformed, "icmpv6", "code", "%d in a %s, want 0", m.Code(), icmpv6TypeName(t))
	}
	it := NewNDPOptionIter(m[fixed:])
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	return it.Err()
}

// NDPOptionIter walks NDP options without allocating. Each option's length
// is checked before it is yielded; a zero length is an error, on which the
// whole message must be discarded (RFC 4861 §4.6). Unknown options are
// yielded too: receivers ignore them (§4.6).
type NDPOptionIter struct {
	b   []byte
	off int
	err error
}

// NewNDPOptionIter iterates over the options in b.
func NewNDPOptionIter(b []byte) NDPOptionIter { return NDPOptionIter{b: b} }

// Next returns the next option, or false at the end or on an error.
func (it *NDPOptionIter) Next() (NDPOption, bool) {
	if it.err != nil || it.off >= len(it.b) {
		return NDPOption{}, false
	}
	rest := it.b[it.off:]
	if len(rest) < 2 {
		it.err = newError(ErrTruncated, "ndp", "option length",
			"option at offset %d has %d byte, needs 2", it.off, len(rest))
		return NDPOption{}, false
	}
	n := int(rest[1]) * 8
	if n == 0 {
		it.err = newError(ErrMalformed, "ndp", "option length", "0 for option type %d at offset %d", rest[0], it.off)
		return NDPOption{}, false
	}
	if n > len(rest) {
		it.err = newError(ErrTruncated, "ndp", "option length",
			"%d-byte option type %d at offset %d exceeds the %d bytes left", n, rest[0], it.off, len(rest))
		return NDPOption{}, false
	}
	it.off += n
	return NDPOption{Type: rest[0], Raw: rest[:n:n]}, true
}

// Err returns the error that stopped the walk, or nil.
func (it *NDPOptionIter) Err() error { return it.err }

// NDPOption is one option: its type and its whole bytes, type and length
// included. The typed accessors return false for another type or for a
// length the option's definition does not allow; such an option is then
// ignored, as Linux does.
type NDPOption struct {
	Type uint8
	Raw  []byte
}

// LinkAddr returns the address of a Source or Target Link-Layer Address
// option for Ethernet (RFC 4861 §4.6.1, RFC 2464 §6).
func (o NDPOption) LinkAddr() (MAC, bool) {
	if (o.Type != NDPOptSourceLinkAddr && o.Type != NDPOptTargetLinkAddr) || len(o.Raw) != ndpOptLinkAddrLen {
		return MAC{}, false
	}
	return MAC(o.Raw[2:8]), true
}

// PrefixInfo returns a Prefix Information option.
func (o NDPOption) PrefixInfo() (NDPPrefixInfo, bool) {
	if o.Type != NDPOptPrefixInfo || len(o.Raw) != ndpOptPrefixInfoLen {
		return nil, false
	}
	return NDPPrefixInfo(o.Raw), true
}

// MTU returns the value of an MTU option (RFC 4861 §4.6.4).
func (o NDPOption) MTU() (uint32, bool) {
	if o.Type != NDPOptMTU || len(o.Raw) != ndpOptMTULen {
		return 0, false
	}
	return binary.BigEndian.Uint32(o.Raw[4:]), true
}

// RedirectedHeader returns the packet quoted by a Redirected Header option
// (RFC 4861 §4.6.3), padding included.
func (o NDPOption) RedirectedHeader() ([]byte, bool) {
	if o.Type != NDPOptRedirectedHeader || len(o.Raw) < ndpOptRedirHdrLen {
		return nil, false
	}
	return o.Raw[ndpOptRedirHdrLen:], true
}

// RDNSS returns a Recursive DNS Server option (RFC 8106 §5.1), whose
// length must be 3 + 2n units.
func (o NDPOption) RDNSS() (NDPRDNSS, bool) {
	if o.Type != NDPOptRDNSS || len(o.Raw) < ndpOptRDNSSMinLen || (len(o.Raw)-8)%16 != 0 {
		return nil, false
	}
	return NDPRDNSS(o.Raw), true
}

// DNSSL returns a DNS Search List option (RFC 8106 §5.2).
func (o NDPOption) DNSSL() (NDPDNSSL, bool) {
	if o.Type != NDPOptDNSSL || len(o.Raw) < ndpOptDNSSLMinLen {
		return nil, false
	}
	return NDPDNSSL(o.Raw), true
}

// NDPPrefixInfo is a Prefix Information option (RFC 4861 §4.6.2).
type NDPPrefixInfo []byte

// PrefixLen returns the prefix length field (may exceed 128 in a bad packet).
func (p NDPPrefixInfo) PrefixLen() uint8 { return p[2] }

// OnLink reports the L flag: the prefix is on-link.
func (p NDPPrefixInfo) OnLink() bool { return p[3]&0x80 != 0 }

// Autonomous reports the A flag: the prefix may be used for SLAAC (RFC 4862).
func (p NDPPrefixInfo) Autonomous() bool { return p[3]&0x40 != 0 }

// ValidLifetime returns the valid lifetime in seconds; 0xffffffff is infinity.
func (p NDPPrefixInfo) ValidLifetime() uint32 { return binary.BigEndian.Uint32(p[4:]) }

// PreferredLifetime returns the preferred lifetime in seconds; 0xffffffff is infinity.
func (p NDPPrefixInfo) PreferredLifetime() uint32 { return binary.BigEndian.Uint32(p[8:]) }

// Prefix returns the prefix with its length; it is not valid (IsValid
// false) if the length exceeds 128.
func (p NDPPrefixInfo) Prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(p[16:32])), int(p[2]))
}

// NDPRDNSS is a Recursive DNS Server option (RFC 8106 §5.1).
type NDPRDNSS []byte

// Lifetime returns the lifetime in seconds; 0xffffffff is infinity.
func (r NDPRDNSS) Lifetime() uint32 { return binary.BigEndian.Uint32(r[4:]) }

// NumAddrs returns the number of server addresses.
func (r NDPRDNSS) NumAddrs() int { return (len(r) - 8) / 16 }

// Addr returns server address i, 0 ≤ i < NumAddrs.
func (r NDPRDNSS) Addr(i int) netip.Addr {
	off := 8 + 16*i
	return netip.AddrFrom16([16]byte(r[off : off+16]))
}

// NDPDNSSL is a DNS Search List option (RFC 8106 §5.2).
type NDPDNSSL []byte

// Lifetime returns the lifetime in seconds; 0xffffffff is infinity.
func (d NDPDNSSL) Lifetime() uint32 { return binary.BigEndian.Uint32(d[4:]) }

// ndpMaxDomainLen is the longest domain name in presentation form
// without the final dot (RFC 1035 §2.3.4: 255 octets on the wire).
const ndpMaxDomainLen = 253

// AppendDomains appends the domain names of the list to dst, in dotted
// form without the final dot. The names are in DNS wire form without
// compression (RFC 8106 §5.2); zero bytes after the last name are padding.
func (d NDPDNSSL) AppendDomains(dst []string) ([]string, error) {
	b := d[8:]
	var name strings.Builder
	for i := 0; i < len(b); {
		if b[i] == 0 { // padding (or an empty name, which is not allowed)
			i++
			continue
		}
		name.Reset()
		for {
			if i >= len(b) {
				return dst, newError(ErrTruncated, "ndp", "dnssl", "domain name runs past the option")
			}
			l := int(b[i])
			i++
			if l == 0 {
				break
			}
			if l > 63 {
				return dst, newError(ErrMalformed, "ndp", "dnssl", "label length %d exceeds 63", l)
			}
			if i+l > len(b) {
				return dst, newError(ErrTruncated, "ndp", "dnssl", "label runs past the option")
			}
			if name.Len() > 0 {
				name.WriteByte('.')
			}
			name.Write(b[i : i+l])
			i += l
			if name.Len() > ndpMaxDomainLen {
				return dst, newError(ErrMalformed, "ndp", "dnssl", "domain name longer than %d bytes", ndpMaxDomainLen)
			}
		}
		dst = append(dst, name.String())
	}
	return dst, nil
}

// NDPRouterSolicit is a Router Solicitation (RFC 4861 §4.1).
type NDPRouterSolicit []byte

// RouterSolicit returns the message as a Router Solicitation.
func (m ICMPv6) RouterSolicit() (NDPRouterSolicit, bool) {
	if m.Type() != ICMPv6RouterSolicit || len(m) < ndpRSLen {
		return nil, false
	}
	return NDPRouterSolicit(m), true
}

// Options returns an iterator over the options.
func (r NDPRouterSolicit) Options() NDPOptionIter { return NewNDPOptionIter(r[ndpRSLen:]) }

// NDPRouterAdvert is a Router Advertisement (RFC 4861 §4.2).
type NDPRouterAdvert []byte

// RouterAdvert returns the message as a Router Advertisement.
func (m ICMPv6) RouterAdvert() (NDPRouterAdvert, bool) {
	if m.Type() != ICMPv6RouterAdvert || len(m) < ndpRALen {
		return nil, false
	}
	return NDPRouterAdvert(m), true
}

// CurHopLimit returns the hop limit hosts should use; 0 means unspecified.
func (r NDPRouterAdvert) CurHopLimit() uint8 { return r[4] }

// Managed reports the M flag: addresses are available by DHCPv6.
func (r NDPRouterAdvert) Managed() bool { return r[5]&0x80 != 0 }

// Other reports the O flag: other configuration is available by DHCPv6.
func (r NDPRouterAdvert) Other() bool { return r[5]&0x40 != 0 }

// RouterPreference returns the default router preference (RFC 4191 §2.2):
// 1 high, 0 medium, 3 low, 2 reserved (to be treated as medium).
func (r NDPRouterAdvert) RouterPreference() uint8 { return r[5] >> 3 & 3 }

// RouterLifetime returns the default router lifetime in seconds; 0 means
// not a default router.
func (r NDPRouterAdvert) RouterLifetime() uint16 { return binary.BigEndian.Uint16(r[6:]) }

// ReachableTime returns the reachable time in milliseconds; 0 means unspecified.
func (r NDPRouterAdvert) ReachableTime() uint32 { return binary.BigEndian.Uint32(r[8:]) }

// RetransTimer returns the retransmission timer in milliseconds; 0 means unspecified.
func (r NDPRouterAdvert) RetransTimer() uint32 { return binary.BigEndian.Uint32(r[12:]) }

// Options returns an iterator over the options.
func (r NDPRouterAdvert) Options() NDPOptionIter { return NewNDPOptionIter(r[ndpRALen:]) }

// NDPNeighborSolicit is a Neighbor Solicitation (RFC 4861 §4.3).
type NDPNeighborSolicit []byte

// NeighborSolicit returns the message as a Neighbor Solicitation.
func (m ICMPv6) NeighborSolicit() (NDPNeighborSolicit, bool) {
	if m.Type() != ICMPv6NeighborSolicit || len(m) < ndpNSLen {
		return nil, false
	}
	return NDPNeighborSolicit(m), true
}

// Target returns the address being solicited.
func (n NDPNeighborSolicit) Target() netip.Addr { return netip.AddrFrom16([16]byte(n[8:24])) }

// Options returns an iterator over the options.
func (n NDPNeighborSolicit) Options() NDPOptionIter { return NewNDPOptionIter(n[ndpNSLen:]) }

// NDPNeighborAdvert is a Neighbor Advertisement (RFC 4861 §4.4).
type NDPNeighborAdvert []byte

// NeighborAdvert returns the message as a Neighbor Advertisement.
func (m ICMPv6) NeighborAdvert() (NDPNeighborAdvert, bool) {
	if m.Type() != ICMPv6NeighborAdvert || len(m) < ndpNALen {
		return nil, false
	}
	return NDPNeighborAdvert(m), true
}

// Router reports the R flag: the sender is a router.
func (n NDPNeighborAdvert) Router() bool { return n[4]&0x80 != 0 }

// Solicited reports the S flag: the advertisement answers a solicitation.
func (n NDPNeighborAdvert) Solicited() bool { return n[4]&0x40 != 0 }

// Override reports the O flag: the advertisement should override a cached address.
func (n NDPNeighborAdvert) Override() bool { return n[4]&0x20 != 0 }

// Target returns the address being advertised.
func (n NDPNeighborAdvert) Target() netip.Addr { return netip.AddrFrom16([16]byte(n[8:24])) }

// Options returns an iterator over the options.
func (n NDPNeighborAdvert) Options() NDPOptionIter { return NewNDPOptionIter(n[ndpNALen:]) }

// NDPRedirect is a Redirect (RFC 4861 §4.5).
type NDPRedirect []byte

// Redirect returns the message as a Redirect.
func (m ICMPv6) Redirect() (NDPRedirect, bool) {
	if m.Type() != ICMPv6Redirect || len(m) < ndpRedirectLen {
		return nil, false
	}
	return NDPRedirect(m), true
}

// Target returns the better first hop (or the destination itself, if on-link).
func (r NDPRedirect) Target() netip.Addr { return netip.AddrFrom16([16]byte(r[8:24])) }

// Destination returns the destination that is redirected.
func (r NDPRedirect) Destination() netip.Addr { return netip.AddrFrom16([16]byte(r[24:40])) }

// Options returns an iterator over the options.
func (r NDPRedirect) Options() NDPOptionIter { return NewNDPOptionIter(r[ndpRedirectLen:]) }

// ndpPutHeader writes the ICMPv6 header with a zero checksum and clears the
// rest of the fixed part.
func ndpPutHeader(b []byte, typ uint8, fixed int) {
	_ = b[fixed-1]
	b[0] = typ
	clear(b[1:fixed])
}

// ndpLinkAddrLen is the size of an optional link-layer address option.
func ndpLinkAddrLen(m MAC) int {
	if m.IsZero() {
		return 0
	}
	return ndpOptLinkAddrLen
}

// ndpPutLinkAddr writes a link-layer address option unless m is zero and
// returns its size.
func ndpPutLinkAddr(b []byte, typ uint8, m MAC) int {
	if m.IsZero() {
		return 0
	}
	_ = b[ndpOptLinkAddrLen-1]
	b[0], b[1] = typ, 1
	copy(b[2:8], m[:])
	return ndpOptLinkAddrLen
}

// NDPRouterSolicitFields builds a Router Solicitation.
type NDPRouterSolicitFields struct {
	// SourceLinkAddr, unless zero, is sent in a Source Link-Layer Address
	// option; it must be zero when the source is :: (RFC 4861 §4.1).
	SourceLinkAddr MAC
}

// Len returns the message length.
func (f *NDPRouterSolicitFields) Len() int { return ndpRSLen + ndpLinkAddrLen(f.SourceLinkAddr) }

// Encode writes the message to b[:f.Len()] with a zero checksum.
func (f *NDPRouterSolicitFields) Encode(b []byte) {
	_ = b[f.Len()-1]
	ndpPutHeader(b, ICMPv6RouterSolicit, ndpRSLen)
	ndpPutLinkAddr(b[ndpRSLen:], NDPOptSourceLinkAddr, f.SourceLinkAddr)
}

// NDPPrefixFields is one Prefix Information option of a Router Advertisement.
type NDPPrefixFields struct {
	Prefix                           netip.Prefix // IPv6; bits after the length are written as zero
	OnLink, Autonomous               bool
	ValidLifetime, PreferredLifetime uint32 // seconds; 0xffffffff is infinity
}

// NDPRouterAdvertFields builds a Router Advertisement with the options
// whose fields are set.
type NDPRouterAdvertFields struct {
	CurHopLimit    uint8
	Managed, Other bool
	RouterLifetime uint16 // seconds
	ReachableTime  uint32 // milliseconds
	RetransTimer   uint32 // milliseconds
	SourceLinkAddr MAC    // option omitted if zero
	MTU            uint32 // option omitted if zero
	Prefixes       []NDPPrefixFields
	RDNSS          []netip.Addr // option omitted if empty; at most 127
	RDNSSLifetime  uint32       // seconds
	// DNSSL domain names in dotted form (a final dot is allowed); the
	// option is omitted if empty.
	DNSSL         []string
	DNSSLLifetime uint32 // seconds
}

func (f *NDPRouterAdvertFields) dnsslLen() int {
	if len(f.DNSSL) == 0 {
		return 0
	}
	n := 8
	for _, d := range f.DNSSL {
		n += len(strings.TrimSuffix(d, ".")) + 2 // a length byte per label, the root label
	}
	return (n + 7) &^ 7
}

// Len returns the message length.
func (f *NDPRouterAdvertFields) Len() int {
	n := ndpRALen + ndpLinkAddrLen(f.SourceLinkAddr) + len(f.Prefixes)*ndpOptPrefixInfoLen
	if f.MTU != 0 {
		n += ndpOptMTULen
	}
	if len(f.RDNSS) > 0 {
		n += 8 + 16*len(f.RDNSS)
	}
	return n + f.dnsslLen()
}

// Encode writes the message to b[:f.Len()] with a zero checksum. More
// than 127 RDNSS addresses, a DNSSL over 2040 bytes, an empty or over-long
// label or a non-IPv6 prefix are programming errors and panic.
func (f *NDPRouterAdvertFields) Encode(b []byte) {
	_ = b[f.Len()-1]
	ndpPutHeader(b, ICMPv6RouterAdvert, ndpRALen)
	b[4] = f.CurHopLimit
	if f.Managed {
		b[5] |= 0x80
	}
	if f.Other {
		b[5] |= 0x40
	}
	binary.BigEndian.PutUint16(b[6:], f.RouterLifetime)
	binary.BigEndian.PutUint32(b[8:], f.ReachableTime)
	binary.BigEndian.PutUint32(b[12:], f.RetransTimer)
	off := ndpRALen
	off += ndpPutLinkAddr(b[off:], NDPOptSourceLinkAddr, f.SourceLinkAddr)
	if f.MTU != 0 {
		o := b[off : off+ndpOptMTULen]
		o[0], o[1], o[2], o[3] = NDPOptMTU, 1, 0, 0
		binary.BigEndian.PutUint32(o[4:], f.MTU)
		off += ndpOptMTULen
	}
	for i := range f.Prefixes {
		p := &f.Prefixes[i]
		if !p.Prefix.Addr().Is6() {
			panic("wire: NDPPrefixFields.Prefix is not an IPv6 prefix")
		}
		o := b[off : off+ndpOptPrefixInfoLen]
		o[0], o[1], o[2], o[3] = NDPOptPrefixInfo, 4, uint8(p.Prefix.Bits()), 0
		if p.OnLink {
			o[3] |= 0x80
		}
		if p.Autonomous {
			o[3] |= 0x40
		}
		binary.BigEndian.PutUint32(o[4:], p.ValidLifetime)
		binary.BigEndian.PutUint32(o[8:], p.PreferredLifetime)
		clear(o[12:16])
		a := p.Prefix.Masked().Addr().As16()
		copy(o[16:32], a[:])
		off += ndpOptPrefixInfoLen
	}
	if len(f.RDNSS) > 0 {
		n := 8 + 16*len(f.RDNSS)
		if n/8 > 255 {
			panic("wire: NDPRouterAdvertFields.RDNSS has more than 127 addresses")
		}
		o := b[off : off+n]
		o[0], o[1], o[2], o[3] = NDPOptRDNSS, uint8(n/8), 0, 0
		binary.BigEndian.PutUint32(o[4:], f.RDNSSLifetime)
		for i, a := range f.RDNSS {
			ipv6PutAddr(o[8+16*i:], a)
		}
		off += n
	}
	if n := f.dnsslLen(); n > 0 {
		if n/8 > 255 {
			panic("wire: NDPRouterAdvertFields.DNSSL longer than 2040 bytes")
		}
		o := b[off : off+n]
		o[0], o[1], o[2], o[3] = NDPOptDNSSL, uint8(n/8), 0, 0
		binary.BigEndian.PutUint32(o[4:], f.DNSSLLifetime)
		i := 8
		for _, d := range f.DNSSL {
			i += ndpPutDomain(o[i:], strings.TrimSuffix(d, "."))
		}
		clear(o[i:])
	}
}

// ndpPutDomain writes name (no final dot) in DNS wire form and returns its size.
func ndpPutDomain(b []byte, name string) int {
	i := 0
	for name != "" {
		label, rest, _ := strings.Cut(name, ".")
		if len(label) == 0 || len(label) > 63 {
			panic("wire: DNSSL domain name has an empty or over-long label")
		}
		b[i] = uint8(len(label))
		i += 1 + copy(b[i+1:], label)
		name = rest
	}
	b[i] = 0
	return i + 1
}

// NDPNeighborSolicitFields builds a Neighbor Solicitation.
type NDPNeighborSolicitFields struct {
	Target netip.Addr
	// SourceLinkAddr, unless zero, is sent in a Source Link-Layer Address
	// option; it must be zero in duplicate address detection, whose source
	// is :: (RFC 4861 §4.3).
	SourceLinkAddr MAC
}

// Len returns the message length.
func (f *NDPNeighborSolicitFields) Len() int { return ndpNSLen + ndpLinkAddrLen(f.SourceLinkAddr) }

// Encode writes the message to b[:f.Len()] with a zero checksum.
func (f *NDPNeighborSolicitFields) Encode(b []byte) {
	_ = b[f.Len()-1]
	ndpPutHeader(b, ICMPv6NeighborSolicit, ndpNSLen)
	ipv6PutAddr(b[8:24], f.Target)
	ndpPutLinkAddr(b[ndpNSLen:], NDPOptSourceLinkAddr, f.SourceLinkAddr)
}

// NDPNeighborAdvertFields builds a Neighbor Advertisement.
type NDPNeighborAdvertFields struct {
	Router, Solicited, Override bool
	Target                      netip.Addr
	TargetLinkAddr              MAC // option omitted if zero
}

// Len returns the message length.
func (f *NDPNeighborAdvertFields) Len() int { return ndpNALen + ndpLinkAddrLen(f.TargetLinkAddr) }

// Encode writes the message to b[:f.Len()] with a zero checksum.
func (f *NDPNeighborAdvertFields) Encode(b []byte) {
	_ = b[f.Len()-1]
	ndpPutHeader(b, ICMPv6NeighborAdvert, ndpNALen)
	if f.Router {
		b[4] |= 0x80
	}
	if f.Solicited {
		b[4] |= 0x40
	}
	if f.Override {
		b[4] |= 0x20
	}
	ipv6PutAddr(b[8:24], f.Target)
	ndpPutLinkAddr(b[ndpNALen:], NDPOptTargetLinkAddr, f.TargetLinkAddr)
}

// NDPRedirectFields builds a Redirect.
type NDPRedirectFields struct {
	Target, Destination netip.Addr
	TargetLinkAddr      MAC // option omitted if zero
	// Redirected is the start of the packet that caused the redirect, for
	// the Redirected Header option. Encode keeps as much of it as lets the
	// whole IPv6 packet fit in the minimum MTU (RFC 4861 §4.6.3), cut to a
	// multiple of 8 bytes as Linux does rather than padded, since padding
	// would read as trailing garbage after the quoted packet. The option is
	// omitted if fewer than 8 bytes remain.
	Redirected []byte
}

func (f *NDPRedirectFields) redirLen() int {
	room := IPv6MinMTU - IPv6HeaderLen - ndpRedirectLen - ndpLinkAddrLen(f.TargetLinkAddr) - ndpOptRedirHdrLen
	return min(len(f.Redirected), room) &^ 7
}

// Len returns the message length.
func (f *NDPRedirectFields) Len() int {
	n := ndpRedirectLen + ndpLinkAddrLen(f.TargetLinkAddr)
	if r := f.redirLen(); r > 0 {
		n += ndpOptRedirHdrLen + r
	}
	return n
}

// Encode writes the message to b[:f.Len()] with a zero checksum.
func (f *NDPRedirectFields) Encode(b []byte) {
	n := f.Len()
	_ = b[n-1]
	ndpPutHeader(b, ICMPv6Redirect, ndpRedirectLen)
	ipv6PutAddr(b[8:24], f.Target)
	ipv6PutAddr(b[24:40], f.Destination)
	off := ndpRedirectLen
	off += ndpPutLinkAddr(b[off:], NDPOptTargetLinkAddr, f.TargetLinkAddr)
	if r := f.redirLen(); r > 0 {
		o := b[off:n]
		o[0], o[1] = NDPOptRedirectedHeader, uint8(len(o)/8)
		clear(o[2:ndpOptRedirHdrLen])
		copy(o[ndpOptRedirHdrLen:], f.Redirected[:r])
	}
}
