package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// Captured IGMP (lab in ethernet_test.go; multicast joins from a Python
// socket, IP_ADD_MEMBERSHIP then close).
const (
	// Joining 239.1.2.3 (default IGMPv3): CHANGE_TO_EXCLUDE({}) to 224.0.0.22 with Router Alert.
	v4capIGMPv3Join = "01005e00001602000000000a080046c00028000040000102f9ab0a4d0001e000" +
		"0016940400002200e8f90000000104000000ef010203"
	// Leaving it: CHANGE_TO_INCLUDE({}).
	v4capIGMPv3Leave = "01005e00001602000000000a080046c00028000040000102f9ab0a4d0001e000" +
		"0016940400002200e9f90000000103000000ef010203"
	// force_igmp_version=2, joining 239.4.5.6: v2 report to the group.
	v4capIGMPv2Report = "01005e04050602000000000a080046c00020000040000102e5bf0a4d0001ef04" +
		"0506940400001600f5f4ef040506"
	// ...and leaving: Leave Group to 224.0.0.2.
	v4capIGMPv2Leave = "01005e00000202000000000a080046c00020000040000102f9c70a4d0001e000" +
		"0002940400001700f4f4ef040506"
)

func v4igmpOf(t testing.TB, frame string) []byte {
	h, err := ParseIPv4(v4ipOf(t, frame))
	if err != nil {
		t.Fatal(err)
	}
	return h.Payload()
}

func TestParseIGMPv2Captured(t *testing.T) {
	for _, tt := range []struct {
		frame string
		typ   uint8
	}{
		{v4capIGMPv2Report, IGMPv2Report},
		{v4capIGMPv2Leave, IGMPLeaveGroup},
	} {
		m, err := ParseIGMP(v4igmpOf(t, tt.frame))
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != tt.typ || m.Version() != 2 || m.Group() != v4addr("239.4.5.6") || !m.ChecksumValid() || m.MaxRespCode() != 0 {
			t.Errorf("type %#x version %d group %v valid %v", m.Type(), m.Version(), m.Group(), m.ChecksumValid())
		}
		if m.NumSources() != 0 || m.NumGroupRecords() != 0 || m.QRV() != 0 || m.QQIC() != 0 || m.SuppressRouterProcessing() {
			t.Error("v3 accessors answer for a v2 message")
		}
		it := m.GroupRecords()
		if _, ok := it.Next(); ok {
			t.Error("a v2 message has group records")
		}
		f := IGMPFields{Type: m.Type(), Group: m.Group()}
		b := make([]byte, f.Len())
		f.Encode(b)
		if !bytes.Equal(b, m) {
			t.Errorf("rebuilt %x, want %x", b, []byte(m))
		}
	}
}

func TestParseIGMPv3ReportCaptured(t *testing.T) {
	for _, tt := range []struct {
		frame string
		rtype uint8
	}{
		{v4capIGMPv3Join, IGMPv3ChangeToExclude},
		{v4capIGMPv3Leave, IGMPv3ChangeToInclude},
	} {
		m, err := ParseIGMP(v4igmpOf(t, tt.frame))
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != IGMPv3Report || m.Version() != 3 || !m.ChecksumValid() || m.NumGroupRecords() != 1 || m.Group().IsValid() {
			t.Fatalf("type %#x version %d valid %v records %d", m.Type(), m.Version(), m.ChecksumValid(), m.NumGroupRecords())
		}
		it := m.GroupRecords()
		r, ok := it.Next()
		if !ok || r.RecordType() != tt.rtype || r.Group() != v4addr("239.1.2.3") || r.NumSources() != 0 || r.AuxDataLen() != 0 || len(r.AuxData()) != 0 {
			t.Errorf("record %x", []byte(r))
		}
		if _, ok := it.Next(); ok {
			t.Error("a second record")
		}
		f := IGMPv3ReportFields{Records: []IGMPv3RecordFields{{Type: r.RecordType(), Group: r.Group()}}}
		b := make([]byte, f.Len())
		f.Encode(b)
		if !bytes.Equal(b, m) {
			t.Errorf("rebuilt %x, want %x", b, []byte(m))
		}
	}
}

func TestIGMPv3ReportWithSources(t *testing.T) {
	s1, s2, s3 := v4addr("192.0.2.1"), v4addr("192.0.2.2"), v4addr("198.51.100.7")
	recs := [...]IGMPv3RecordFields{
		{Type: IGMPv3AllowNewSources, Group: v4addr("232.1.1.1"), Sources: []netip.Addr{s1, s2}},
		{Type: IGMPv3ModeIsInclude, Group: v4addr("232.1.1.2"), Sources: []netip.Addr{s3}, AuxData: []byte{1, 2, 3, 4}},
		{Type: IGMPv3BlockOldSources, Group: v4addr("232.1.1.3")},
	}
	f := IGMPv3ReportFields{Records: recs[:]}
	b := make([]byte, f.Len())
	if len(b) != 8+16+16+8 {
		t.Fatalf("Len = %d", len(b))
	}
	f.Encode(b)
	if n := testing.AllocsPerRun(100, func() { f.Encode(b) }); n != 0 {
		t.Errorf("Encode allocates %v times", n)
	}
	m, err := ParseIGMP(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.ChecksumValid() || m.NumGroupRecords() != 3 {
		t.Fatalf("valid %v records %d", m.ChecksumValid(), m.NumGroupRecords())
	}
	it := m.GroupRecords()
	for i := range recs {
		r, ok := it.Next()
		if !ok || r.RecordType() != recs[i].Type || r.Group() != recs[i].Group || r.NumSources() != len(recs[i].Sources) ||
			!bytes.Equal(r.AuxData(), recs[i].AuxData) {
			t.Fatalf("record %d = %x", i, []byte(r))
		}
		for j, s := range recs[i].Sources {
			if r.Source(j) != s {
				t.Errorf("record %d source %d = %v", i, j, r.Source(j))
			}
		}
		if r.Source(r.NumSources()).IsValid() || r.Source(-1).IsValid() {
			t.Error("Source out of range is valid")
		}
	}
	if _, ok := it.Next(); ok {
		t.Error("a fourth record")
	}
}

func TestIGMPQueries(t *testing.T) {
	// v1 and v2 queries are 8 bytes; the max response code tells them apart.
	for _, tt := range []struct {
		code    uint8
		version int
		resp    time.Duration
	}{
		{0, 1, 10 * time.Second},
		{100, 2, 10 * time.Second},
		{25, 2, 2500 * time.Millisecond},
	} {
		f := IGMPFields{Type: IGMPMembershipQuery, MaxRespCode: tt.code}
		b := make([]byte, IGMPLen)
		f.Encode(b)
		m, err := ParseIGMP(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Version() != tt.version || m.MaxRespTime() != tt.resp || m.Group() != netip.IPv4Unspecified() || !m.ChecksumValid() {
			t.Errorf("code %d: version %d resp %v group %v", tt.code, m.Version(), m.MaxRespTime(), m.Group())
		}
	}
	// v3 query with sources; codes ≥ 128 use the floating-point form
	// (RFC 3376 §4.1.1): 0x8f = mant 15, exp 0 → (15|16)<<3 = 248 tenths.
	q := IGMPv3QueryFields{MaxRespCode: 0x8f, Group: v4addr("232.1.1.1"), S: true, QRV: 2, QQIC: 0xa1,
		Sources: []netip.Addr{v4addr("192.0.2.1"), v4addr("192.0.2.9")}}
	b := make([]byte, q.Len())
	q.Encode(b)
	m, err := ParseIGMP(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 3 || m.MaxRespTime() != 24800*time.Millisecond || !m.SuppressRouterProcessing() || m.QRV() != 2 ||
		m.QQIC() != 0xa1 || m.QueryInterval() != 544*time.Second || m.NumSources() != 2 || m.Source(1) != v4addr("192.0.2.9") ||
		m.Source(2).IsValid() || m.Group() != v4addr("232.1.1.1") || !m.ChecksumValid() {
		t.Errorf("v3 query: version %d resp %v S %v QRV %d QQI %v sources %d", m.Version(), m.MaxRespTime(),
			m.SuppressRouterProcessing(), m.QRV(), m.QueryInterval(), m.NumSources())
	}
	// QQIC 0xa1: exp 2, mant 1 → (1|16)<<(2+3) = 544 seconds.
	if igmpv3DecodeCode(0xa1) != 544 || igmpv3DecodeCode(0x7f) != 127 || igmpv3DecodeCode(0xff) != 31744 {
		t.Errorf("decode: %d %d %d", igmpv3DecodeCode(0xa1), igmpv3DecodeCode(0x7f), igmpv3DecodeCode(0xff))
	}
}

func TestParseIGMPErrors(t *testing.T) {
	join := v4igmpOf(t, v4capIGMPv3Join)
	mod := func(b []byte, f func(b []byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	q := IGMPv3QueryFields{Sources: []netip.Addr{v4addr("192.0.2.1")}}
	query := make([]byte, q.Len())
	q.Encode(query)
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"short", join[:7], ErrTruncated, "header"},
		{"10-byte query", query[:10], ErrMalformed, "length"},
		{"query sources past end", query[:15], ErrTruncated, "number of sources"},
		{"report with a missing record", mod(join, func(b []byte) { b[7] = 2 }), ErrTruncated, "number of group records"},
		{"record sources past end", mod(join, func(b []byte) { b[11] = 1 }), ErrTruncated, "group record"},
		{"record aux data past end", mod(join, func(b []byte) { b[9] = 1 }), ErrTruncated, "group record"},
		{"record header cut", join[:14], ErrTruncated, "number of group records"},
		{"mtrace type", mod(join, func(b []byte) { b[0] = 0x1f }), ErrUnsupported, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIGMP(tt.b)
			v4wantErr(t, err, tt.kind, tt.field)
		})
	}
}

func FuzzParseIGMP(f *testing.F) {
	for _, s := range []string{v4capIGMPv3Join, v4capIGMPv3Leave, v4capIGMPv2Report, v4capIGMPv2Leave} {
		f.Add(v4igmpOf(f, s))
	}
	f.Add([]byte{0x11, 0x8f, 0, 0, 232, 1, 1, 1, 0x0a, 0xa1, 0, 1, 192, 0, 2, 1})
	f.Add([]byte{0x22, 0, 0, 0, 0, 0, 0, 2, 1, 1, 0, 1, 232, 1, 1, 1, 10, 0, 0, 1, 9, 9, 9, 9, 6, 0, 0, 0, 232, 1, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIGMP(b)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *Error", err)
			}
			return
		}
		_, _, _, _ = m.Version(), m.MaxRespTime(), m.Checksum(), m.ChecksumValid()
		_, _, _, _ = m.SuppressRouterProcessing(), m.QRV(), m.QueryInterval(), m.Group()
		for i := -1; i <= m.NumSources(); i++ {
			_ = m.Source(i)
		}
		var recs []IGMPv3RecordFields
		it := m.GroupRecords()
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			rf := IGMPv3RecordFields{Type: r.RecordType(), Group: r.Group(), AuxData: r.AuxData()}
			for i := range r.NumSources() {
				rf.Sources = append(rf.Sources, r.Source(i))
			}
			recs = append(recs, rf)
		}
		if len(recs) != m.NumGroupRecords() {
			t.Fatalf("iterated %d records of %d", len(recs), m.NumGroupRecords())
		}
		// Re-encode and compare everything but the checksum and reserved bytes.
		var out []byte
		switch {
		case m.Type() == IGMPv3Report:
			f := IGMPv3ReportFields{Records: recs}
			out = make([]byte, f.Len())
			f.Encode(out)
		case m.Version() == 3:
			q := IGMPv3QueryFields{MaxRespCode: m.MaxRespCode(), Group: m.Group(), S: m.SuppressRouterProcessing(), QRV: m.QRV(), QQIC: m.QQIC()}
			for i := range m.NumSources() {
				q.Sources = append(q.Sources, m.Source(i))
			}
			out = make([]byte, q.Len())
			q.Encode(out)
		default:
			f := IGMPFields{Type: m.Type(), MaxRespCode: m.MaxRespCode(), Group: m.Group()}
			out = make([]byte, f.Len())
			f.Encode(out)
		}
		if !IGMP(out).ChecksumValid() {
			t.Fatal("re-encoded checksum invalid")
		}
		r, err := ParseIGMP(out)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if r.Type() != m.Type() || r.Group() != m.Group() || r.NumGroupRecords() != m.NumGroupRecords() || r.NumSources() != m.NumSources() {
			t.Fatalf("re-encoded %x from %x", out, b)
		}
	})
}
