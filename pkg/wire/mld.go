package wire

import (
	"encoding/binary"
	"net/netip"
)

// Multicast Listener Discovery: MLDv1 (RFC 2710) and MLDv2 (RFC 3810).
// The messages are ICMPv6 messages: ParseICMPv6 validates them, the views
// below read them, and the builders write whole messages (ICMPv6 header
// included) for SetICMPv6Checksum to finish. They are sent with hop limit 1
// and a Router Alert in a Hop-by-Hop header (RFC 2710 §3, RFC 3810 §5):
// see IPv6OptionsFields.

const (
	mldV1Len          = 24 // every MLDv1 message and the start of an MLDv2 query
	mldV2QueryMinLen  = 28
	mldV2ReportMinLen = 8
	mldV2RecordMinLen = 20
)

// MLDv2 multicast address record types (RFC 3810 §5.2.12).
const (
	MLDv2ModeIsInclude   uint8 = 1
	MLDv2ModeIsExclude   uint8 = 2
	MLDv2ChangeToInclude uint8 = 3
	MLDv2ChangeToExclude uint8 = 4
	MLDv2AllowNewSources uint8 = 5
	MLDv2BlockOldSources uint8 = 6
)

// mldCheck validates the length of an MLD message and, for MLDv2, every
// count in it.
func mldCheck(m ICMPv6) error {
	t := m.Type()
	switch t {
	case ICMPv6MLDReport, ICMPv6MLDDone:
		if len(m) < mldV1Len {
			return truncated("icmpv6", icmpv6TypeName(t), mldV1Len, len(m))
		}
	case ICMPv6MLDQuery:
		// RFC 3810 §8.1: 24 bytes is an MLDv1 query, 28 or more MLDv2;
		// any other length is not a valid query.
		switch {
		case len(m) < mldV1Len:
			return truncated("icmpv6", "mld query", mldV1Len, len(m))
		case len(m) == mldV1Len:
		case len(m) < mldV2QueryMinLen:
			return newError(ErrMalformed, "icmpv6", "mld query", "length %d is neither MLDv1 (24) nor MLDv2 (≥ 28)", len(m))
		default:
			n := int(binary.BigEndian.Uint16(m[26:]))
			if need := mldV2QueryMinLen + 16*n; need > len(m) {
				return newError(ErrTruncated, "icmpv6", "number of sources",
					"%d sources need %d bytes, message has %d", n, need, len(m))
			}
		}
	case ICMPv6MLDv2Report:
		if len(m) < mldV2ReportMinLen {
			return truncated("icmpv6", "mldv2 report", mldV2ReportMinLen, len(m))
		}
		it := MLDv2Report(m).Records()
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		return it.Err()
	}
	return nil
}

// MLD is an MLDv1 message (RFC 2710 §3): query, report or done. An MLDv2
// query starts with the same fields.
type MLD []byte

// MLD returns an MLD query, report or done message as an MLD view.
func (m ICMPv6) MLD() (MLD, bool) {
	switch m.Type() {
	case ICMPv6MLDQuery, ICMPv6MLDReport, ICMPv6MLDDone:
		if len(m) >= mldV1Len {
			return MLD(m), true
		}
	}
	return nil, false
}

// MaxResponseDelay returns the maximum response delay of a query in
// milliseconds (an MLDv2 query encodes it: see MLDv2Query.MaxResponseDelay).
func (m MLD) MaxResponseDelay() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// MulticastAddr returns the multicast address: the group reported or left,
// or the group queried (:: for a general query).
func (m MLD) MulticastAddr() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// MLDv2Query is an MLDv2 query (RFC 3810 §5.1).
type MLDv2Query []byte

// MLDv2Query returns the message as an MLDv2 query: a query of 28 bytes
// or more.
func (m ICMPv6) MLDv2Query() (MLDv2Query, bool) {
	if m.Type() != ICMPv6MLDQuery || len(m) < mldV2QueryMinLen {
		return nil, false
	}
	return MLDv2Query(m), true
}

// MaxRespCode returns the Maximum Response Code field as sent.
func (q MLDv2Query) MaxRespCode() uint16 { return binary.BigEndian.Uint16(q[4:]) }

// MaxResponseDelay returns the maximum response delay in milliseconds,
// decoded from the floating-point form of codes ≥ 32768 (RFC 3810 §5.1.3).
func (q MLDv2Query) MaxResponseDelay() uint32 {
	c := uint32(q.MaxRespCode())
	if c < 0x8000 {
		return c
	}
	return (c&0xfff | 0x1000) << ((c>>12)&7 + 3)
}

// MulticastAddr returns the group queried, :: for a general query.
func (q MLDv2Query) MulticastAddr() netip.Addr { return netip.AddrFrom16([16]byte(q[8:24])) }

// SuppressRouterProcessing reports the S flag (RFC 3810 §5.1.7).
func (q MLDv2Query) SuppressRouterProcessing() bool { return q[24]&0x08 != 0 }

// QRV returns the querier's robustness variable, 0 if above 7 (§5.1.8).
func (q MLDv2Query) QRV() uint8 { return q[24] & 7 }

// QQIC returns the Querier's Query Interval Code field as sent.
func (q MLDv2Query) QQIC() uint8 { return q[25] }

// QueryInterval returns the querier's query interval in seconds, decoded
// from the floating-point form of codes ≥ 128 (RFC 3810 §5.1.9).
func (q MLDv2Query) QueryInterval() uint32 {
	c := uint32(q[25])
	if c < 128 {
		return c
	}
	return (c&0xf | 0x10) << ((c>>4)&7 + 3)
}

// NumSources returns the number of source addresses.
func (q MLDv2Query) NumSources() int { return int(binary.BigEndian.Uint16(q[26:])) }

// Source returns source address i, 0 ≤ i < NumSources.
func (q MLDv2Query) Source(i int) netip.Addr {
	off := mldV2QueryMinLen + 16*i
	return netip.AddrFrom16([16]byte(q[off : off+16]))
}

// MLDv2Report is an MLDv2 report (RFC 3810 §5.2).
type MLDv2Report []byte

// MLDv2Report returns the message as an MLDv2 report.
func (m ICMPv6) MLDv2Report() (MLDv2Report, bool) {
	if m.Type() != ICMPv6MLDv2Report || len(m) < mldV2ReportMinLen {
		return nil, false
	}
	return MLDv2Report(m), true
}

// NumRecords returns the number of multicast address records.
func (r MLDv2Report) NumRecords() int { return int(binary.BigEndian.Uint16(r[6:])) }

// Records returns an iterator over the records.
func (r MLDv2Report) Records() MLDv2RecordIter {
	return MLDv2RecordIter{b: r[mldV2ReportMinLen:], left: r.NumRecords()}
}

// MLDv2RecordIter walks the records of an MLDv2 report without
// allocating, checking each record's source count and auxiliary data
// length against the message before yielding it. Bytes after the last
// record are ignored.
type MLDv2RecordIter struct {
	b    []byte
	off  int
	left int // records still to read
	err  error
}

// Next returns the next record, or false at the end or on an error.
func (it *MLDv2RecordIter) Next() (MLDv2Record, bool) {
	if it.err != nil || it.left == 0 {
		return nil, false
	}
	rest := it.b[it.off:]
	if len(rest) < mldV2RecordMinLen {
		it.err = newError(ErrTruncated, "icmpv6", "number of records",
			"record at offset %d needs %d bytes, %d left (%d records still to come)",
			mldV2ReportMinLen+it.off, mldV2RecordMinLen, len(rest), it.left)
		return nil, false
	}
	n := mldV2RecordMinLen + int(rest[1])*4 + int(binary.BigEndian.Uint16(rest[2:]))*16
	if n > len(rest) {
		it.err = newError(ErrTruncated, "icmpv6", "record length",
			"record at offset %d with %d sources and %d aux words needs %d bytes, %d left",
			mldV2ReportMinLen+it.off, binary.BigEndian.Uint16(rest[2:]), rest[1], n, len(rest))
		return nil, false
	}
	it.off += n
	it.left--
	return MLDv2Record(rest[:n:n]), true
}

// Err returns the error that stopped the walk, or nil.
func (it *MLDv2RecordIter) Err() error { return it.err }

// MLDv2Record is one multicast address record of an MLDv2 report (RFC 3810 §5.2.4).
type MLDv2Record []byte

// Type returns the record type (MLDv2ModeIsInclude, …).
func (r MLDv2Record) Type() uint8 { return r[0] }

// AuxDataLen returns the auxiliary data length in 32-bit words.
func (r MLDv2Record) AuxDataLen() int { return int(r[1]) }

// NumSources returns the number of source addresses.
func (r MLDv2Record) NumSources() int { return int(binary.BigEndian.Uint16(r[2:])) }

// MulticastAddr returns the multicast address the record is about.
func (r MLDv2Record) MulticastAddr() netip.Addr { return netip.AddrFrom16([16]byte(r[4:20])) }

// Source returns source address i, 0 ≤ i < NumSources.
func (r MLDv2Record) Source(i int) netip.Addr {
	off := mldV2RecordMinLen + 16*i
	return netip.AddrFrom16([16]byte(r[off : off+16]))
}

// AuxData returns the auxiliary data, which MLDv2 defines none of (§5.2.10).
func (r MLDv2Record) AuxData() []byte { return r[mldV2RecordMinLen+16*r.NumSources():] }

// MLDv1Fields builds an MLDv1 message: a report or done, or a query.
type MLDv1Fields struct {
	Type             uint8  // ICMPv6MLDReport, ICMPv6MLDDone or ICMPv6MLDQuery
	MaxResponseDelay uint16 // milliseconds; queries only
	MulticastAddr    netip.Addr
}

// Len returns 24.
func (f *MLDv1Fields) Len() int { return mldV1Len }

// Encode writes the message to b[:24] with a zero checksum.
func (f *MLDv1Fields) Encode(b []byte) {
	_ = b[mldV1Len-1]
	b[0] = f.Type
	clear(b[1:8])
	binary.BigEndian.PutUint16(b[4:], f.MaxResponseDelay)
	ipv6PutAddr(b[8:24], f.MulticastAddr)
}

// MLDv2QueryFields builds an MLDv2 query.
type MLDv2QueryFields struct {
	MaxRespCode   uint16 // as sent; see RFC 3810 §5.1.3
	MulticastAddr netip.Addr
	S             bool  // suppress router-side processing
	QRV           uint8 // robustness variable, 0…7
	QQIC          uint8 // query interval code; see RFC 3810 §5.1.9
	Sources       []netip.Addr
}

// Len returns the message length.
func (f *MLDv2QueryFields) Len() int { return mldV2QueryMinLen + 16*len(f.Sources) }

// Encode writes the message to b[:f.Len()] with a zero checksum. A QRV
// above 7 or more than 65535 sources are programming errors and panic.
func (f *MLDv2QueryFields) Encode(b []byte) {
	if f.QRV > 7 || len(f.Sources) > 0xffff {
		panic("wire: MLDv2QueryFields.QRV or Sources out of range")
	}
	_ = b[f.Len()-1]
	b[0], b[1], b[2], b[3] = ICMPv6MLDQuery, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], f.MaxRespCode)
	b[6], b[7] = 0, 0
	ipv6PutAddr(b[8:24], f.MulticastAddr)
	b[24] = f.QRV
	if f.S {
		b[24] |= 0x08
	}
	b[25] = f.QQIC
	binary.BigEndian.PutUint16(b[26:], uint16(len(f.Sources)))
	for i, s := range f.Sources {
		ipv6PutAddr(b[mldV2QueryMinLen+16*i:], s)
	}
}

// MLDv2RecordFields is one multicast address record of an MLDv2 report.
type MLDv2RecordFields struct {
	Type          uint8 // MLDv2ModeIsInclude, …
	MulticastAddr netip.Addr
	Sources       []netip.Addr
}

// MLDv2ReportFields builds an MLDv2 report (RFC 3810 §5.2). Fitting the
// records into the link MTU, splitting them over several reports, is the
// sender's job (§5.2.15).
type MLDv2ReportFields struct {
	Records []MLDv2RecordFields
}

// Len returns the message length.
func (f *MLDv2ReportFields) Len() int {
	n := mldV2ReportMinLen
	for i := range f.Records {
		n += mldV2RecordMinLen + 16*len(f.Records[i].Sources)
	}
	return n
}

// Encode writes the message to b[:f.Len()] with a zero checksum. More than
// 65535 records or sources are programming errors and panic.
func (f *MLDv2ReportFields) Encode(b []byte) {
	if len(f.Records) > 0xffff {
		panic("wire: MLDv2ReportFields has more than 65535 records")
	}
	_ = b[f.Len()-1]
	b[0] = ICMPv6MLDv2Report
	clear(b[1:6])
	binary.BigEndian.PutUint16(b[6:], uint16(len(f.Records)))
	off := mldV2ReportMinLen
	for i := range f.Records {
		r := &f.Records[i]
		if len(r.Sources) > 0xffff {
			panic("wire: MLDv2RecordFields has more than 65535 sources")
		}
		b[off], b[off+1] = r.Type, 0
		binary.BigEndian.PutUint16(b[off+2:], uint16(len(r.Sources)))
		ipv6PutAddr(b[off+4:off+20], r.MulticastAddr)
		off += mldV2RecordMinLen
		for _, s := range r.Sources {
			ipv6PutAddr(b[off:off+16], s)
			off += 16
		}
	}
}
