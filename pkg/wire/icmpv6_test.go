package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

// ipv6CapICMPv6 parses a captured frame down to its ICMPv6 message, walking
// any extension headers, and returns the message and the IPv6 addresses.
func ipv6CapICMPv6(t *testing.T, frame string) (ICMPv6, netip.Addr, netip.Addr) {
	t.Helper()
	h, err := ParseIPv6(ipv6Cap(t, frame))
	if err != nil {
		t.Fatal(err)
	}
	it := h.ExtHeaders()
	p, off := it.Upper()
	if it.Err() != nil || p != IPProtoICMPv6 {
		t.Fatalf("upper layer %d, err %v", p, it.Err())
	}
	m, err := ParseICMPv6(h.Payload()[off:])
	if err != nil {
		t.Fatal(err)
	}
	return m, h.Src(), h.Dst()
}

func TestICMPv6CapturedEcho(t *testing.T) {
	req, src, dst := ipv6CapICMPv6(t, ipv6capEchoRequest)
	rep, rsrc, rdst := ipv6CapICMPv6(t, ipv6capEchoReply)
	if !req.ChecksumValid(src, dst) || !rep.ChecksumValid(rsrc, rdst) {
		t.Error("captured checksums do not verify")
	}
	if req.ChecksumValid(dst, src.Next()) {
		t.Error("checksum verifies with the wrong pseudo-header")
	}
	if req.Type() != ICMPv6EchoRequest || rep.Type() != ICMPv6EchoReply || req.Code() != 0 || req.IsError() {
		t.Errorf("types %d/%d code %d", req.Type(), rep.Type(), req.Code())
	}
	if req.Ident() != 0x1b0f || req.Seq() != 1 || rep.Ident() != 0x1b0f || rep.Seq() != 1 {
		t.Errorf("ident/seq %#x/%d and %#x/%d", req.Ident(), req.Seq(), rep.Ident(), rep.Seq())
	}
	if len(req.EchoData()) != 56 || !bytes.Equal(req.EchoData(), rep.EchoData()) || !bytes.Contains(req.EchoData(), []byte("STST")) {
		t.Errorf("echo data %x / %x", req.EchoData(), rep.EchoData())
	}
	if len(req.Body()) != len(req)-4 {
		t.Errorf("body %d bytes", len(req.Body()))
	}

	// Rebuilding the reply from the request gives the kernel's bytes.
	b := make([]byte, len(req)+1)
	b[len(req)] = 0xff // past the message: SetChecksum must not cover it
	f := ICMPv6Fields{Type: ICMPv6EchoReply, Rest: ICMPv6EchoRest(req.Ident(), req.Seq()), PayloadLen: len(req.EchoData())}
	f.Encode(b)
	copy(b[f.Len():], req.EchoData())
	f.SetChecksum(b, rsrc, rdst)
	if !bytes.Equal(b[:len(req)], rep) {
		t.Errorf("built reply\n%x, kernel's\n%x", b, []byte(rep))
	}
	if n := testing.AllocsPerRun(100, func() {
		f.Encode(b)
		f.SetChecksum(b, rsrc, rdst)
	}); n != 0 {
		t.Errorf("building allocates %v times", n)
	}
}

func TestICMPv6CapturedErrors(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		typ      uint8
		code     uint8
		rest     uint32 // MTU or pointer
		origDst  string
		origNext uint8
	}{
		{"no route", ipv6capNoRoute, ICMPv6DstUnreachable, ICMPv6CodeNoRoute, 0, "2001:db8:dead::1", IPProtoICMPv6},
		{"port unreachable", ipv6capPortUnreachable, ICMPv6DstUnreachable, ICMPv6CodePortUnreachable, 0, "2001:db8:1::b", IPProtoUDP},
		{"time exceeded", ipv6capTimeExceeded, ICMPv6TimeExceeded, ICMPv6CodeHopLimitExceeded, 0, "2001:db8:5::1", IPProtoICMPv6},
		{"parameter problem", ipv6capParamProblem, ICMPv6ParamProblem, ICMPv6CodeUnrecognizedNext, 6, "2001:db8:1::b", 253},
		{"packet too big", ipv6capPacketTooBig, ICMPv6PacketTooBig, 0, 1280, "2001:db8:7::1", IPProtoICMPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src, dst := ipv6CapICMPv6(t, tt.frame)
			if !m.ChecksumValid(src, dst) {
				t.Error("checksum does not verify")
			}
			if m.Type() != tt.typ || m.Code() != tt.code || !m.IsError() {
				t.Errorf("type %d code %d", m.Type(), m.Code())
			}
			switch tt.typ {
			case ICMPv6PacketTooBig:
				if m.MTU() != tt.rest {
					t.Errorf("MTU %d", m.MTU())
				}
				if len(m) != ICMPv6ErrorMaxLen {
					t.Errorf("error message is %d bytes, want the %d that fit the minimum MTU", len(m), ICMPv6ErrorMaxLen)
				}
			case ICMPv6ParamProblem:
				if m.Pointer() != tt.rest {
					t.Errorf("pointer %d", m.Pointer())
				}
			}
			o, err := ParseIPv6Quoted(m.Original())
			if err != nil {
				t.Fatal(err)
			}
			if o.Dst() != ipv6Addr(tt.origDst) || o.NextHeader() != tt.origNext || o.Src() != dst {
				t.Errorf("original: %v → %v next %d", o.Src(), o.Dst(), o.NextHeader())
			}
		})
	}
}

func TestICMPv6BuildErrors(t *testing.T) {
	src, dst := ipv6Addr("2001:db8::1"), ipv6Addr("2001:db8::2")
	orig := ipv6Cap(t, ipv6capEchoRequest)
	for _, f := range []ICMPv6Fields{
		{Type: ICMPv6DstUnreachable, Code: ICMPv6CodeAddrUnreachable},
		{Type: ICMPv6PacketTooBig, Rest: 1400},
		{Type: ICMPv6TimeExceeded, Code: ICMPv6CodeReassemblyTimeout},
		{Type: ICMPv6ParamProblem, Code: ICMPv6CodeUnrecognizedOption, Rest: 42},
	} {
		f.PayloadLen = len(orig)
		b := make([]byte, f.Len()+len(orig))
		f.Encode(b)
		copy(b[f.Len():], orig)
		f.SetChecksum(b, src, dst)
		m, err := ParseICMPv6(b)
		if err != nil {
			t.Fatal(err)
		}
		if !m.ChecksumValid(src, dst) || m.Type() != f.Type || m.Code() != f.Code {
			t.Errorf("%d/%d: checksum or type wrong", f.Type, f.Code)
		}
		if (f.Type == ICMPv6PacketTooBig && m.MTU() != f.Rest) || (f.Type == ICMPv6ParamProblem && m.Pointer() != f.Rest) {
			t.Errorf("type %d: rest word %d", f.Type, m.MTU())
		}
		if !bytes.Equal(m.Original(), orig) {
			t.Errorf("type %d: original not carried intact", f.Type)
		}
		b[len(b)-1] ^= 1
		if m.ChecksumValid(src, dst) {
			t.Errorf("type %d: checksum verifies after a bit flip", f.Type)
		}
	}
}

func TestParseICMPv6Errors(t *testing.T) {
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"empty", nil, ErrTruncated, "header"},
		{"three bytes", []byte{1, 0, 0}, ErrTruncated, "header"},
		{"short echo", []byte{ICMPv6EchoRequest, 0, 0, 0, 0, 1, 0}, ErrTruncated, "echo request"},
		{"short packet too big", []byte{ICMPv6PacketTooBig, 0, 0, 0, 0, 0}, ErrTruncated, "packet too big"},
		{"short parameter problem", []byte{ICMPv6ParamProblem, 0, 0, 0}, ErrTruncated, "parameter problem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseICMPv6(tt.b)
			ipv6WantErr(t, err, tt.kind, tt.field)
		})
	}
	// Unknown types need only the header, and the fixed-word accessors
	// then read as zero rather than out of range.
	m, err := ParseICMPv6([]byte{200, 1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ident() != 0 || m.MTU() != 0 || len(m.Original()) != 0 || len(m.EchoData()) != 0 || m.IsError() {
		t.Error("accessors on a 4-byte unknown message")
	}
}

// ipv6ExerciseICMPv6 calls every accessor of every view that applies to m.
func ipv6ExerciseICMPv6(t *testing.T, m ICMPv6) {
	_, _, _, _, _ = m.Type(), m.Code(), m.Checksum(), m.IsError(), m.Body()
	_, _, _, _, _, _ = m.Ident(), m.Seq(), m.EchoData(), m.MTU(), m.Pointer(), m.Original()
	a := ipv6Addr("fe80::1")
	_ = m.ChecksumValid(a, a)
	if o, err := ParseIPv6Quoted(m.Original()); err == nil {
		ipv6ExerciseExt(t, o.NextHeader(), o.Payload())
	}
	var opts []NDPOptionIter
	if v, ok := m.RouterSolicit(); ok {
		opts = append(opts, v.Options())
	}
	if v, ok := m.RouterAdvert(); ok {
		_, _, _, _, _ = v.CurHopLimit(), v.Managed(), v.Other(), v.RouterPreference(), v.RouterLifetime()
		_, _ = v.ReachableTime(), v.RetransTimer()
		opts = append(opts, v.Options())
	}
	if v, ok := m.NeighborSolicit(); ok {
		_ = v.Target()
		opts = append(opts, v.Options())
	}
	if v, ok := m.NeighborAdvert(); ok {
		_, _, _, _ = v.Router(), v.Solicited(), v.Override(), v.Target()
		opts = append(opts, v.Options())
	}
	if v, ok := m.Redirect(); ok {
		_, _ = v.Target(), v.Destination()
		opts = append(opts, v.Options())
	}
	for _, it := range opts {
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			ndpExerciseOption(o)
		}
		if it.Err() != nil {
			t.Fatalf("option iteration failed after ParseICMPv6 accepted the message: %v", it.Err())
		}
	}
	if v, ok := m.MLD(); ok {
		_, _ = v.MaxResponseDelay(), v.MulticastAddr()
	}
	if q, ok := m.MLDv2Query(); ok {
		_, _, _, _, _ = q.MaxRespCode(), q.MaxResponseDelay(), q.MulticastAddr(), q.SuppressRouterProcessing(), q.QRV()
		_, _ = q.QQIC(), q.QueryInterval()
		for i := range q.NumSources() {
			_ = q.Source(i)
		}
	}
	if r, ok := m.MLDv2Report(); ok {
		it := r.Records()
		n := 0
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			_, _, _, _ = rec.Type(), rec.AuxDataLen(), rec.MulticastAddr(), rec.AuxData()
			for i := range rec.NumSources() {
				_ = rec.Source(i)
			}
			n++
		}
		if it.Err() != nil || n != r.NumRecords() {
			t.Fatalf("record iteration: %d of %d, %v, after ParseICMPv6 accepted the message", n, r.NumRecords(), it.Err())
		}
	}
}

func ndpExerciseOption(o NDPOption) {
	o.LinkAddr()
	if p, ok := o.PrefixInfo(); ok {
		_, _, _, _, _, _ = p.PrefixLen(), p.OnLink(), p.Autonomous(), p.ValidLifetime(), p.PreferredLifetime(), p.Prefix()
	}
	o.MTU()
	o.RedirectedHeader()
	if r, ok := o.RDNSS(); ok {
		_ = r.Lifetime()
		for i := range r.NumAddrs() {
			_ = r.Addr(i)
		}
	}
	if d, ok := o.DNSSL(); ok {
		_ = d.Lifetime()
		_, _ = d.AppendDomains(nil)
	}
}

func FuzzParseICMPv6(f *testing.F) {
	for _, c := range []string{ipv6capEchoRequest, ipv6capNoRoute, ipv6capPacketTooBig, ipv6capParamProblem,
		ipv6capRS, ipv6capRA, ipv6capNS, ipv6capNSDAD, ipv6capNA, ipv6capRedirect,
		ipv6capMLDv2Query, ipv6capMLDv2QuerySources, ipv6capMLDv2Report, ipv6capMLDv2ReportSources, ipv6capMLDv1Report} {
		h, err := ParseIPv6(ipv6Cap(f, c))
		if err != nil {
			f.Fatal(err)
		}
		it := h.ExtHeaders()
		_, off := it.Upper()
		f.Add(h.Payload()[off:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICMPv6(b)
		if err != nil {
			return
		}
		ipv6ExerciseICMPv6(t, m)
		// The iterators also run over raw bytes that nothing validated.
		it := NewNDPOptionIter(b)
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			ndpExerciseOption(o)
		}
		if len(b) >= mldV2ReportMinLen {
			ri := MLDv2Report(b).Records()
			for r, ok := ri.Next(); ok; r, ok = ri.Next() {
				_ = r.AuxData()
			}
		}
	})
}

func TestIPv6IteratorsDoNotAllocate(t *testing.T) {
	ra, _, _ := ipv6CapICMPv6(t, ipv6capRA)
	rep, _, _ := ipv6CapICMPv6(t, ipv6capMLDv2Report)
	h, _ := ParseIPv6(ipv6Cap(t, ipv6capUDPWithOptions))
	hbh, _ := ParseIPv6Options(h.Payload())
	r, _ := ra.RouterAdvert()
	mr, _ := rep.MLDv2Report()
	var n int
	allocs := testing.AllocsPerRun(100, func() {
		n = 0
		it := r.Options()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if p, ok := o.PrefixInfo(); ok {
				n += int(p.PrefixLen())
			}
		}
		ri := mr.Records()
		for g, ok := ri.Next(); ok; g, ok = ri.Next() {
			n += g.NumSources() + 1
		}
		oi := hbh.Options()
		for _, ok := oi.Next(); ok; _, ok = oi.Next() {
			n++
		}
	})
	if allocs != 0 {
		t.Errorf("iterating allocates %v times", allocs)
	}
	if n != 64+5+2 {
		t.Errorf("iterations counted %d, want 71", n)
	}
}
