package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// IGMP, the IPv4 multicast group membership protocol: version 2 (RFC 2236,
// with version 1 messages from RFC 1112) and version 3 (RFC 3376). IGMP
// travels with TTL 1 and a Router Alert option; that is the IP layer's
// business, not this file's.

// IGMP message types.
const (
	IGMPMembershipQuery uint8 = 0x11 // all versions; the length tells them apart
	IGMPv1Report        uint8 = 0x12
	IGMPv2Report        uint8 = 0x16
	IGMPLeaveGroup      uint8 = 0x17 // version 2
	IGMPv3Report        uint8 = 0x22
)

// IGMPv3 group record types (RFC 3376 §4.2.12).
const (
	IGMPv3ModeIsInclude   uint8 = 1
	IGMPv3ModeIsExclude   uint8 = 2
	IGMPv3ChangeToInclude uint8 = 3
	IGMPv3ChangeToExclude uint8 = 4
	IGMPv3AllowNewSources uint8 = 5
	IGMPv3BlockOldSources uint8 = 6
	igmpv3RecordHeaderLen       = 8
	igmpv3QueryHeaderLen        = 12
	igmpv3ReportHeaderLen       = 8
	igmpv3MaxAuxWords           = 255
)

// IGMPLen is the length of every message but the version 3 ones.
const IGMPLen = 8

// IGMP is a validated view of an IGMP message, made by ParseIGMP. It spans
// the whole IP payload, which the checksum covers.
type IGMP []byte

// ParseIGMP validates an IGMP message. Queries of 8 bytes are version 1 or
// 2, of 12 bytes or more version 3 (their source list must fit); 9 to 11
// bytes give ErrMalformed (RFC 3376 §7.1). A version 3 report's group
// records must each fit, sources and auxiliary data included. Types other
// than query, report and leave give ErrUnsupported.
func ParseIGMP(b []byte) (IGMP, error) {
	if len(b) < IGMPLen {
		return nil, truncated("igmp", "header", IGMPLen, len(b))
	}
	switch b[0] {
	case IGMPMembershipQuery:
		if len(b) == IGMPLen {
			break
		}
		if len(b) < igmpv3QueryHeaderLen {
			return nil, newError(ErrMalformed, "igmp", "length",
				"a %d-byte query is neither version 2 (8 bytes) nor version 3 (12 or more)", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[10:]))
		if need := igmpv3QueryHeaderLen + 4*n; need > len(b) {
			return nil, newError(ErrTruncated, "igmp", "number of sources",
				"%d sources need %d bytes, message has %d", n, need, len(b))
		}
	case IGMPv1Report, IGMPv2Report, IGMPLeaveGroup:
	case IGMPv3Report:
		n := int(binary.BigEndian.Uint16(b[6:]))
		off := igmpv3ReportHeaderLen
		for i := range n {
			if off+igmpv3RecordHeaderLen > len(b) {
				return nil, newError(ErrTruncated, "igmp", "number of group records",
					"record %d of %d starts at byte %d of a %d-byte message", i+1, n, off, len(b))
			}
			l := igmpv3RecordLen(b[off:])
			if off+l > len(b) {
				return nil, newError(ErrTruncated, "igmp", "group record",
					"record %d needs %d bytes at byte %d of a %d-byte message", i+1, l, off, len(b))
			}
			off += l
		}
	default:
		return nil, newError(ErrUnsupported, "igmp", "type", "%#02x", b[0])
	}
	return IGMP(b), nil
}

// igmpv3RecordLen is the length a group record header claims.
func igmpv3RecordLen(r []byte) int {
	return igmpv3RecordHeaderLen + 4*int(binary.BigEndian.Uint16(r[2:])) + 4*int(r[1])
}

// Type returns the message type.
func (m IGMP) Type() uint8 { return m[0] }

// Version returns the protocol version of the message: 1, 2 or 3 for a
// query (RFC 3376 §7.1: 8 bytes with a zero max response code is version
// 1), 1 or 2 for reports and leave by type, 3 for a version 3 report.
func (m IGMP) Version() int {
	switch m[0] {
	case IGMPMembershipQuery:
		if len(m) >= igmpv3QueryHeaderLen {
			return 3
		}
		if m[1] == 0 {
			return 1
		}
		return 2
	case IGMPv1Report:
		return 1
	case IGMPv3Report:
		return 3
	}
	return 2
}

// MaxRespCode returns the raw max response code (byte 1).
func (m IGMP) MaxRespCode() uint8 { return m[1] }

// MaxRespTime returns the maximum response time of a query: the code in
// tenths of a second for version 2, decoded as RFC 3376 §4.1.1 floating
// point for version 3, and 10 s for a version 1 query (RFC 2236 §4).
func (m IGMP) MaxRespTime() time.Duration {
	switch m.Version() {
	case 1:
		return 10 * time.Second
	case 3:
		return time.Duration(igmpv3DecodeCode(m[1])) * time.Second / 10
	}
	return time.Duration(m[1]) * time.Second / 10
}

// igmpv3DecodeCode decodes the RFC 3376 §4.1.1/§4.1.7 8-bit code: below
// 128 the value itself, else mantissa|0x10 shifted by exponent+3.
func igmpv3DecodeCode(c uint8) int {
	if c < 128 {
		return int(c)
	}
	return int(c&0x0f|0x10) << ((c>>4)&7 + 3)
}

// Checksum returns the checksum field.
func (m IGMP) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// ChecksumValid reports whether the checksum over the whole message verifies.
func (m IGMP) ChecksumValid() bool { return Checksum(m, 0) == 0xffff }

// Group returns the group address of a query (0.0.0.0 for a general
// query), a version 1 or 2 report, or a leave; the zero Addr for a
// version 3 report, which names groups in its records.
func (m IGMP) Group() netip.Addr {
	if m[0] == IGMPv3Report {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(m[4:8]))
}

func (m IGMP) isV3Query() bool {
	return m[0] == IGMPMembershipQuery && len(m) >= igmpv3QueryHeaderLen
}

// SuppressRouterProcessing returns the S flag of a version 3 query.
func (m IGMP) SuppressRouterProcessing() bool { return m.isV3Query() && m[8]&0x08 != 0 }

// QRV returns the querier's robustness variable of a version 3 query.
func (m IGMP) QRV() uint8 {
	if !m.isV3Query() {
		return 0
	}
	return m[8] & 0x07
}

// QQIC returns the raw querier's query interval code of a version 3 query.
func (m IGMP) QQIC() uint8 {
	if !m.isV3Query() {
		return 0
	}
	return m[9]
}

// QueryInterval returns the decoded QQIC of a version 3 query (RFC 3376 §4.1.7).
func (m IGMP) QueryInterval() time.Duration {
	return time.Duration(igmpv3DecodeCode(m.QQIC())) * time.Second
}

// NumSources returns the number of source addresses of a version 3 query.
func (m IGMP) NumSources() int {
	if !m.isV3Query() {
		return 0
	}
	return int(binary.BigEndian.Uint16(m[10:]))
}

// Source returns source address i of a version 3 query, or the zero Addr.
func (m IGMP) Source(i int) netip.Addr {
	if i < 0 || i >= m.NumSources() {
		return netip.Addr{}
	}
	off := igmpv3QueryHeaderLen + 4*i
	return netip.AddrFrom4([4]byte(m[off : off+4]))
}

// NumGroupRecords returns the number of group records of a version 3 report.
func (m IGMP) NumGroupRecords() int {
	if m[0] != IGMPv3Report {
		return 0
	}
	return int(binary.BigEndian.Uint16(m[6:]))
}

// GroupRecords returns an iterator over the group records of a version 3
// report; it yields nothing for other messages.
func (m IGMP) GroupRecords() IGMPv3RecordIter {
	if m[0] != IGMPv3Report {
		return IGMPv3RecordIter{}
	}
	return IGMPv3RecordIter{b: m[igmpv3ReportHeaderLen:], n: m.NumGroupRecords()}
}

// IGMPv3RecordIter walks the group records of a version 3 report without
// allocating. ParseIGMP validated every record, so it never fails; it also
// stops at the end of the message for safety.
type IGMPv3RecordIter struct {
	b []byte
	n int
}

// Next returns the next record, or false when there are no more.
func (it *IGMPv3RecordIter) Next() (IGMPv3GroupRecord, bool) {
	if it.n <= 0 || len(it.b) < igmpv3RecordHeaderLen {
		return nil, false
	}
	l := igmpv3RecordLen(it.b)
	if l > len(it.b) {
		it.n, it.b = 0, nil
		return nil, false
	}
	r := IGMPv3GroupRecord(it.b[:l])
	it.b, it.n = it.b[l:], it.n-1
	return r, true
}

// IGMPv3GroupRecord is one group record of a version 3 report, whose
// claimed lengths fit (IGMPv3RecordIter only yields such records).
type IGMPv3GroupRecord []byte

// RecordType returns the record type (IGMPv3ModeIsInclude, …).
func (r IGMPv3GroupRecord) RecordType() uint8 { return r[0] }

// AuxDataLen returns the length of the auxiliary data in bytes (the field
// counts 32-bit words).
func (r IGMPv3GroupRecord) AuxDataLen() int { return 4 * int(r[1]) }

// NumSources returns the number of source addresses.
func (r IGMPv3GroupRecord) NumSources() int { return int(binary.BigEndian.Uint16(r[2:])) }

// Group returns the multicast address the record is about.
func (r IGMPv3GroupRecord) Group() netip.Addr { return netip.AddrFrom4([4]byte(r[4:8])) }

// Source returns source address i, or the zero Addr if there is none.
func (r IGMPv3GroupRecord) Source(i int) netip.Addr {
	if i < 0 || i >= r.NumSources() {
		return netip.Addr{}
	}
	off := igmpv3RecordHeaderLen + 4*i
	return netip.AddrFrom4([4]byte(r[off : off+4]))
}

// AuxData returns the auxiliary data (RFC 3376 §4.2.10: receivers ignore it).
func (r IGMPv3GroupRecord) AuxData() []byte {
	off := igmpv3RecordHeaderLen + 4*r.NumSources()
	return r[off : off+r.AuxDataLen()]
}

// IGMPFields builds an 8-byte message: a version 2 report, a leave, a
// version 1 report, or a version 1/2 query. Encode computes the checksum.
type IGMPFields struct {
	Type        uint8
	MaxRespCode uint8      // queries only, in tenths of a second; 0 otherwise
	Group       netip.Addr // IPv4; the zero Addr is 0.0.0.0 (general query)
}

// Len returns IGMPLen.
func (f *IGMPFields) Len() int { return IGMPLen }

// Encode writes the message to b[:8]; b must be at least that long.
func (f *IGMPFields) Encode(b []byte) {
	_ = b[IGMPLen-1]
	b[0], b[1], b[2], b[3] = f.Type, f.MaxRespCode, 0, 0
	ipv4PutAddr(b[4:8], f.Group)
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b[:IGMPLen], 0))
}

// IGMPv3QueryFields builds a version 3 membership query (RFC 3376 §4.1).
type IGMPv3QueryFields struct {
	MaxRespCode uint8      // encoded as RFC 3376 §4.1.1
	Group       netip.Addr // zero Addr: general query
	S           bool       // suppress router-side processing
	QRV         uint8      // 3 bits
	QQIC        uint8      // encoded as RFC 3376 §4.1.7
	Sources     []netip.Addr
}

// Len returns 12 bytes plus 4 per source.
func (f *IGMPv3QueryFields) Len() int { return igmpv3QueryHeaderLen + 4*len(f.Sources) }

// Encode writes the query to b[:f.Len()] and computes the checksum.
func (f *IGMPv3QueryFields) Encode(b []byte) {
	l := f.Len()
	if len(f.Sources) > 0xffff {
		panic("wire: IGMPv3QueryFields has more than 65535 sources")
	}
	_ = b[l-1]
	b[0], b[1], b[2], b[3] = IGMPMembershipQuery, f.MaxRespCode, 0, 0
	ipv4PutAddr(b[4:8], f.Group)
	b[8] = f.QRV & 7
	if f.S {
		b[8] |= 0x08
	}
	b[9] = f.QQIC
	binary.BigEndian.PutUint16(b[10:], uint16(len(f.Sources)))
	for i, s := range f.Sources {
		ipv4PutAddr(b[igmpv3QueryHeaderLen+4*i:], s)
	}
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b[:l], 0))
}

// IGMPv3RecordFields is one group record of a version 3 report.
type IGMPv3RecordFields struct {
	Type    uint8 // IGMPv3ModeIsInclude, …
	Group   netip.Addr
	Sources []netip.Addr
	// AuxData is copied as is; its length must be a multiple of 4 and at
	// most 1020 bytes. Hosts send none (RFC 3376 §4.2.6).
	AuxData []byte
}

// Len returns the record's length.
func (r *IGMPv3RecordFields) Len() int {
	return igmpv3RecordHeaderLen + 4*len(r.Sources) + len(r.AuxData)
}

// IGMPv3ReportFields builds a version 3 membership report (RFC 3376 §4.2).
// The records are caller-owned slices, so building does not allocate.
type IGMPv3ReportFields struct {
	Records []IGMPv3RecordFields
}

// Len returns 8 bytes plus the length of every record.
func (f *IGMPv3ReportFields) Len() int {
	n := igmpv3ReportHeaderLen
	for i := range f.Records {
		n += f.Records[i].Len()
	}
	return n
}

// Encode writes the report to b[:f.Len()] and computes the checksum. Counts
// that do not fit their fields and auxiliary data that is not whole words
// are programming errors and panic.
func (f *IGMPv3ReportFields) Encode(b []byte) {
	l := f.Len()
	if len(f.Records) > 0xffff {
		panic("wire: IGMPv3ReportFields has more than 65535 records")
	}
	_ = b[l-1]
	b[0], b[1], b[2], b[3], b[4], b[5] = IGMPv3Report, 0, 0, 0, 0, 0
	binary.BigEndian.PutUint16(b[6:], uint16(len(f.Records)))
	off := igmpv3ReportHeaderLen
	for i := range f.Records {
		r := &f.Records[i]
		if len(r.Sources) > 0xffff || len(r.AuxData)%4 != 0 || len(r.AuxData)/4 > igmpv3MaxAuxWords {
			panic("wire: IGMPv3RecordFields sources or aux data out of range")
		}
		b[off], b[off+1] = r.Type, uint8(len(r.AuxData)/4)
		binary.BigEndian.PutUint16(b[off+2:], uint16(len(r.Sources)))
		ipv4PutAddr(b[off+4:off+8], r.Group)
		off += igmpv3RecordHeaderLen
		for _, s := range r.Sources {
			ipv4PutAddr(b[off:off+4], s)
			off += 4
		}
		off += copy(b[off:], r.AuxData)
	}
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b[:l], 0))
}
