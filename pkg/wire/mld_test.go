package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestMLDCapturedQueries(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		code     uint16
		delayMS  uint32
		group    string
		sources  []string
		interval uint32
	}{
		{"general", ipv6capMLDv2Query, 10000, 10000, "::", nil, 125},
		{"group and source specific", ipv6capMLDv2QuerySources, 1000, 1000, "ff3e::1234", []string{"2001:db8:1::b"}, 125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src, dst := ipv6CapICMPv6(t, tt.frame)
			if !m.ChecksumValid(src, dst) {
				t.Error("checksum does not verify")
			}
			q, ok := m.MLDv2Query()
			if !ok {
				t.Fatal("not an MLDv2 query")
			}
			if q.MaxRespCode() != tt.code || q.MaxResponseDelay() != tt.delayMS || q.MulticastAddr() != ipv6Addr(tt.group) ||
				q.SuppressRouterProcessing() || q.QRV() != 2 || q.QQIC() != 125 || q.QueryInterval() != tt.interval {
				t.Errorf("code %d delay %d group %v S %v QRV %d QQIC %d", q.MaxRespCode(), q.MaxResponseDelay(),
					q.MulticastAddr(), q.SuppressRouterProcessing(), q.QRV(), q.QQIC())
			}
			if q.NumSources() != len(tt.sources) {
				t.Fatalf("%d sources", q.NumSources())
			}
			for i, s := range tt.sources {
				if q.Source(i) != ipv6Addr(s) {
					t.Errorf("source %d = %v", i, q.Source(i))
				}
			}
			// The first 24 bytes read as an MLDv1 message too.
			v1, ok := m.MLD()
			if !ok || v1.MulticastAddr() != q.MulticastAddr() || v1.MaxResponseDelay() != tt.code {
				t.Errorf("MLD view %v: %v %d", ok, v1.MulticastAddr(), v1.MaxResponseDelay())
			}
			// Rebuild it.
			f := MLDv2QueryFields{MaxRespCode: q.MaxRespCode(), MulticastAddr: q.MulticastAddr(), QRV: q.QRV(), QQIC: q.QQIC()}
			for i := range q.NumSources() {
				f.Sources = append(f.Sources, q.Source(i))
			}
			b := make([]byte, f.Len())
			f.Encode(b)
			SetICMPv6Checksum(b, src, dst)
			if !bytes.Equal(b, m) {
				t.Errorf("built\n%x, kernel's\n%x", b, []byte(m))
			}
		})
	}
}

func TestMLDv2FloatingPointCodes(t *testing.T) {
	// RFC 3810 §5.1.3 and §5.1.9: codes with the high bit set are
	// (mant | 0x1000) << (exp+3) and (mant | 0x10) << (exp+3).
	tests := []struct {
		code  uint16
		delay uint32
		qqic  uint8
		qi    uint32
	}{
		{0, 0, 0, 0},
		{0x7fff, 0x7fff, 127, 127},
		{0x8000, 0x1000 << 3, 0x80, 0x10 << 3},
		{0xffff, 0x1fff << 10, 0xff, 0x1f << 10},
		{0x9123, 0x1123 << 4, 0x95, 0x15 << 4},
	}
	for _, tt := range tests {
		f := MLDv2QueryFields{MaxRespCode: tt.code, QQIC: tt.qqic, S: true, QRV: 7}
		b := make([]byte, f.Len())
		f.Encode(b)
		m, err := ParseICMPv6(b)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := m.MLDv2Query()
		if q.MaxResponseDelay() != tt.delay || q.QueryInterval() != tt.qi || !q.SuppressRouterProcessing() || q.QRV() != 7 {
			t.Errorf("code %#x: delay %d, want %d; qqic %#x: interval %d, want %d", tt.code, q.MaxResponseDelay(), tt.delay,
				tt.qqic, q.QueryInterval(), tt.qi)
		}
	}
}

func TestMLDCapturedReports(t *testing.T) {
	type rec struct {
		typ     uint8
		group   string
		sources []string
	}
	tests := []struct {
		name    string
		frame   string
		records []rec
	}{
		{"join", ipv6capMLDv2Report, []rec{
			{MLDv2ChangeToExclude, "ff02::1:ff00:0", nil}, {MLDv2ChangeToExclude, "ff02::1:ff00:b", nil},
			{MLDv2ChangeToExclude, "ff02::6a", nil}, {MLDv2ChangeToExclude, "ff05::2", nil},
			{MLDv2ChangeToExclude, "ff02::2", nil},
		}},
		{"source join", ipv6capMLDv2ReportSources, []rec{{MLDv2AllowNewSources, "ff3e::1234", []string{"2001:db8:1::b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src, dst := ipv6CapICMPv6(t, tt.frame)
			if !m.ChecksumValid(src, dst) {
				t.Error("checksum does not verify")
			}
			r, ok := m.MLDv2Report()
			if !ok || r.NumRecords() != len(tt.records) {
				t.Fatalf("report %v with %d records", ok, r.NumRecords())
			}
			var f MLDv2ReportFields
			it := r.Records()
			i := 0
			for g, ok := it.Next(); ok; g, ok = it.Next() {
				w := tt.records[i]
				if g.Type() != w.typ || g.MulticastAddr() != ipv6Addr(w.group) || g.NumSources() != len(w.sources) ||
					g.AuxDataLen() != 0 || len(g.AuxData()) != 0 {
					t.Errorf("record %d: type %d group %v %d sources", i, g.Type(), g.MulticastAddr(), g.NumSources())
				}
				rf := MLDv2RecordFields{Type: g.Type(), MulticastAddr: g.MulticastAddr()}
				for j := range g.NumSources() {
					if g.Source(j) != ipv6Addr(w.sources[j]) {
						t.Errorf("record %d source %d = %v", i, j, g.Source(j))
					}
					rf.Sources = append(rf.Sources, g.Source(j))
				}
				f.Records = append(f.Records, rf)
				i++
			}
			if it.Err() != nil || i != len(tt.records) {
				t.Fatalf("%d records, err %v", i, it.Err())
			}
			b := make([]byte, f.Len())
			for i := range b {
				b[i] = 0xee
			}
			f.Encode(b)
			SetICMPv6Checksum(b, src, dst)
			if !bytes.Equal(b, m) {
				t.Errorf("built\n%x, kernel's\n%x", b, []byte(m))
			}
			if n := testing.AllocsPerRun(50, func() { f.Encode(b) }); n != 0 {
				t.Errorf("Encode allocates %v times", n)
			}
		})
	}
}

func TestMLDv1Captured(t *testing.T) {
	for _, tt := range []struct {
		frame string
		typ   uint8
	}{{ipv6capMLDv1Report, ICMPv6MLDReport}, {ipv6capMLDv1Done, ICMPv6MLDDone}} {
		m, src, dst := ipv6CapICMPv6(t, tt.frame)
		v, ok := m.MLD()
		if !ok || m.Type() != tt.typ || !m.ChecksumValid(src, dst) || v.MulticastAddr() != ipv6Addr("ff05::1:3") || v.MaxResponseDelay() != 0 {
			t.Fatalf("type %d: %v group %v", m.Type(), ok, v.MulticastAddr())
		}
		if _, ok := m.MLDv2Query(); ok {
			t.Error("MLDv1 message read as an MLDv2 query")
		}
		f := MLDv1Fields{Type: tt.typ, MulticastAddr: v.MulticastAddr()}
		b := make([]byte, f.Len())
		f.Encode(b)
		SetICMPv6Checksum(b, src, dst)
		if !bytes.Equal(b, m) {
			t.Errorf("built\n%x, kernel's\n%x", b, []byte(m))
		}
	}
	// An MLDv1 query is exactly 24 bytes and is no MLDv2 query.
	f := MLDv1Fields{Type: ICMPv6MLDQuery, MaxResponseDelay: 10000}
	b := make([]byte, f.Len())
	f.Encode(b)
	m, err := ParseICMPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.MLD(); v.MaxResponseDelay() != 10000 || v.MulticastAddr() != netip.IPv6Unspecified() {
		t.Errorf("v1 query: delay %d group %v", v.MaxResponseDelay(), v.MulticastAddr())
	}
	if _, ok := m.MLDv2Query(); ok {
		t.Error("24-byte query read as MLDv2")
	}
}

func TestMLDErrors(t *testing.T) {
	query := func(n int, srcCount uint16) []byte {
		b := make([]byte, n)
		b[0] = ICMPv6MLDQuery
		if n >= 28 {
			b[26], b[27] = byte(srcCount>>8), byte(srcCount)
		}
		return b
	}
	report := func(records uint16, body ...byte) []byte {
		return append([]byte{ICMPv6MLDv2Report, 0, 0, 0, 0, 0, byte(records >> 8), byte(records)}, body...)
	}
	rec := func(aux uint8, sources uint16, extra int) []byte {
		b := make([]byte, 20+extra)
		b[0], b[1], b[2], b[3] = MLDv2ModeIsInclude, aux, byte(sources>>8), byte(sources)
		return b
	}
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"short v1 report", append([]byte{ICMPv6MLDReport}, make([]byte, 22)...), ErrTruncated, "mld report"},
		{"short done", append([]byte{ICMPv6MLDDone}, make([]byte, 10)...), ErrTruncated, "mld done"},
		{"short query", query(23, 0), ErrTruncated, "mld query"},
		{"26-byte query", query(26, 0), ErrMalformed, "mld query"},
		{"sources past query", query(28+16, 2), ErrTruncated, "number of sources"},
		{"huge source count", query(28, 0xffff), ErrTruncated, "number of sources"},
		{"short report", report(0)[:7], ErrTruncated, "mldv2 report"},
		{"records past report", report(2, rec(0, 0, 0)...), ErrTruncated, "number of records"},
		{"sources past record", report(1, rec(0, 2, 16)...), ErrTruncated, "record length"},
		{"aux data past record", report(1, rec(1, 0, 0)...), ErrTruncated, "record length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseICMPv6(tt.b)
			ipv6WantErr(t, err, tt.kind, tt.field)
		})
	}
	// Aux data that fits is skipped over; bytes after the last record are ignored.
	b := report(2, append(append(rec(1, 1, 16+4), rec(0, 0, 0)...), 0xaa, 0xbb)...)
	m, err := ParseICMPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.MLDv2Report()
	it := r.Records()
	first, _ := it.Next()
	if first.AuxDataLen() != 1 || len(first.AuxData()) != 4 || first.NumSources() != 1 {
		t.Errorf("aux %d (%d bytes), %d sources", first.AuxDataLen(), len(first.AuxData()), first.NumSources())
	}
	if _, ok := it.Next(); !ok {
		t.Error("second record missing")
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Errorf("iteration past the record count, err %v", it.Err())
	}
}
