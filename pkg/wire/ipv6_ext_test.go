package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestIPv6ExtCapturedOptions(t *testing.T) {
	h, err := ParseIPv6(ipv6Cap(t, ipv6capUDPWithOptions))
	if err != nil {
		t.Fatal(err)
	}
	type opt struct {
		typ    uint8
		offset int
		data   string
	}
	want := []struct {
		typ    uint8
		offset int
		opts   []opt
	}{
		{IPProtoHopByHop, 0, []opt{{IPv6OptRouterAlert, 2, "\x00\x00"}, {IPv6OptPadN, 6, ""}}},
		{IPProtoDestOpts, 8, []opt{{0x1e, 2, "\xaa\xbb"}, {IPv6OptPad1, 6, ""}, {IPv6OptPad1, 7, ""}}},
	}
	it := h.ExtHeaders()
	i := 0
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		if i >= len(want) {
			t.Fatalf("extra header %d", e.Type)
		}
		w := want[i]
		if e.Type != w.typ || e.Offset != w.offset || len(e.Raw) != 8 {
			t.Errorf("header %d: type %d offset %d len %d, want %d %d 8", i, e.Type, e.Offset, len(e.Raw), w.typ, w.offset)
		}
		o, err := ParseIPv6Options(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		oi := o.Options()
		j := 0
		for op, ok := oi.Next(); ok; op, ok = oi.Next() {
			if j >= len(w.opts) {
				t.Fatalf("extra option %#x", op.Type)
			}
			wo := w.opts[j]
			if op.Type != wo.typ || op.Offset != wo.offset || string(op.Data) != wo.data {
				t.Errorf("option %d: %#x at %d data %x, want %#x at %d data %x", j, op.Type, op.Offset, op.Data, wo.typ, wo.offset, wo.data)
			}
			if op.Action() != IPv6OptionSkip || op.MayChange() {
				t.Errorf("option %#x: action %d, may change %v", op.Type, op.Action(), op.MayChange())
			}
			j++
		}
		if oi.Err() != nil || j != len(w.opts) {
			t.Errorf("options: %d of %d, err %v", j, len(w.opts), oi.Err())
		}
		i++
	}
	if it.Err() != nil || i != 2 {
		t.Fatalf("walk: %d headers, err %v", i, it.Err())
	}
	if p, off := it.Upper(); p != IPProtoUDP || off != 16 {
		t.Errorf("upper = %d at %d, want UDP at 16", p, off)
	}
	hbh, _ := ParseIPv6Options(h.Payload())
	if v, ok := hbh.RouterAlert(); !ok || v != IPv6RouterAlertMLD || hbh.NextHeader() != IPProtoDestOpts || hbh.Len() != 8 {
		t.Errorf("hop-by-hop: router alert %d %v, next %d, len %d", v, ok, hbh.NextHeader(), hbh.Len())
	}
}

func TestIPv6ExtCapturedFragments(t *testing.T) {
	tests := []struct {
		frame     string
		offset    int
		more      bool
		upperOff  int
		chainEnds bool // walk stops at the fragment header
	}{
		{ipv6capFrag0, 0, true, 8, false},
		{ipv6capFrag1, 1400, true, 8, true},
		{ipv6capFrag2, 2800, false, 8, true},
	}
	for _, tt := range tests {
		h, err := ParseIPv6(ipv6Cap(t, tt.frame))
		if err != nil {
			t.Fatal(err)
		}
		it := h.ExtHeaders()
		e, ok := it.Next()
		if !ok || e.Type != IPProtoFragment || e.Offset != 0 {
			t.Fatalf("first header %+v %v, err %v", e, ok, it.Err())
		}
		f, err := ParseIPv6Fragment(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if f.NextHeader() != IPProtoICMPv6 || f.FragmentOffset() != tt.offset || f.More() != tt.more || f.ID() != 0xa126a459 {
			t.Errorf("fragment: next %d off %d more %v id %#x", f.NextHeader(), f.FragmentOffset(), f.More(), f.ID())
		}
		if p, off := it.Upper(); p != IPProtoICMPv6 || off != tt.upperOff || it.Err() != nil {
			t.Errorf("upper %d at %d, err %v", p, off, it.Err())
		}
		if tt.offset == 0 {
			// The first fragment holds the ICMPv6 echo header.
			m, err := ParseICMPv6(h.Payload()[8:])
			if err != nil || m.Type() != ICMPv6EchoRequest {
				t.Errorf("first fragment's upper layer: %v, %v", m, err)
			}
		}
	}
}

func TestIPv6ExtWalk(t *testing.T) {
	routing0 := []byte{IPProtoAH, 2, IPv6RoutingType0, 1, 0, 0, 0, 0, // RFC 2460 type 0, one address
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	}
	// AH: payload len 4 → (4+2)*4 = 24 bytes, then ESP.
	ah := make([]byte, 24)
	ah[0], ah[1] = IPProtoESP, 4
	payload := append(bytes.Clone(routing0), ah...)
	payload = append(payload, 1, 2, 3, 4, 5, 6, 7, 8) // ESP: opaque
	it := NewIPv6ExtIter(IPProtoRouting, payload)
	e, ok := it.Next()
	if !ok || e.Type != IPProtoRouting || len(e.Raw) != 24 {
		t.Fatalf("routing header: %+v %v %v", e, ok, it.Err())
	}
	r, err := ParseIPv6Routing(e.Raw)
	if err != nil || r.RoutingType() != IPv6RoutingType0 || r.SegmentsLeft() != 1 || len(r.Data()) != 20 ||
		r.NextHeader() != IPProtoAH || r.Len() != 24 {
		t.Errorf("routing view: %v type %d left %d data %d", err, r.RoutingType(), r.SegmentsLeft(), len(r.Data()))
	}
	e, ok = it.Next()
	if !ok || e.Type != IPProtoAH || e.Offset != 24 || len(e.Raw) != 24 || e.NextHeader() != IPProtoESP {
		t.Fatalf("AH: %+v %v %v", e, ok, it.Err())
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatalf("walk went into ESP or failed: %v", it.Err())
	}
	if p, off := it.Upper(); p != IPProtoESP || off != 48 {
		t.Errorf("upper %d at %d, want ESP at 48", p, off)
	}

	// No Next Header ends the walk; so does an unknown type.
	for _, nh := range []uint8{IPProtoNoNext, 253} {
		d := []byte{nh, 0, IPv6OptPadN, 4, 0, 0, 0, 0, 0xee}
		it := NewIPv6ExtIter(IPProtoDestOpts, d)
		n := 0
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			n++
		}
		if p, off := it.Upper(); n != 1 || p != nh || off != 8 || it.Err() != nil {
			t.Errorf("after destination options: %d headers, upper %d at %d, err %v", n, p, off, it.Err())
		}
	}
	// Straight to the upper layer.
	it = NewIPv6ExtIter(IPProtoTCP, nil)
	if _, ok := it.Next(); ok {
		t.Error("TCP yielded as an extension header")
	}
	if p, off := it.Upper(); p != IPProtoTCP || off != 0 {
		t.Errorf("upper %d at %d", p, off)
	}
	if n := testing.AllocsPerRun(100, func() {
		it := NewIPv6ExtIter(IPProtoRouting, payload)
		it.Upper()
	}); n != 0 {
		t.Errorf("walk allocates %v times", n)
	}
}

func TestIPv6ExtWalkErrors(t *testing.T) {
	destOpts := []byte{IPProtoDestOpts, 0, IPv6OptPadN, 4, 0, 0, 0, 0}
	var many []byte
	for range IPv6ExtMaxHeaders + 1 {
		many = append(many, destOpts...)
	}
	tests := []struct {
		name    string
		next    uint8
		payload []byte
		kind    error
		field   string
		offset  int
	}{
		{"empty hop-by-hop", IPProtoHopByHop, nil, ErrTruncated, "hop-by-hop options header", 0},
		{"one byte", IPProtoDestOpts, []byte{IPProtoUDP}, ErrTruncated, "destination options header", 0},
		{"length past buffer", IPProtoRouting, []byte{IPProtoUDP, 1, 0, 0, 0, 0, 0, 0}, ErrTruncated, "routing header", 0},
		{"short fragment", IPProtoFragment, []byte{IPProtoUDP, 0, 0, 0}, ErrTruncated, "fragment header", 0},
		{"AH past buffer", IPProtoAH, []byte{IPProtoUDP, 4, 0, 0, 0, 0, 0, 0}, ErrTruncated, "authentication header", 0},
		{"hop-by-hop second", IPProtoDestOpts, []byte{IPProtoHopByHop, 0, 1, 4, 0, 0, 0, 0, IPProtoUDP, 0, 1, 4, 0, 0, 0, 0},
			ErrMalformed, "next header", 8},
		{"too many", IPProtoDestOpts, many, ErrUnsupported, "extension headers", IPv6ExtMaxHeaders * 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := NewIPv6ExtIter(tt.next, tt.payload)
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			ipv6WantErr(t, it.Err(), tt.kind, tt.field)
			if it.Offset() != tt.offset {
				t.Errorf("error at offset %d, want %d", it.Offset(), tt.offset)
			}
			if _, ok := it.Next(); ok {
				t.Error("Next after an error yielded a header")
			}
		})
	}
}

func TestIPv6OptionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"short", []byte{0}, ErrTruncated, "header"},
		{"length past buffer", []byte{0, 1, 1, 4, 0, 0, 0, 0}, ErrTruncated, "header length"},
		{"option past header", []byte{0, 0, 0x1e, 5, 0, 0, 0, 0}, ErrTruncated, "option length"},
		{"no length byte", []byte{0, 0, 1, 3, 0, 0, 0, 0x1e}, ErrTruncated, "option length"},
		{"router alert length", []byte{0, 0, IPv6OptRouterAlert, 3, 0, 0, 0, 0}, ErrMalformed, "router alert"},
		{"jumbo length", []byte{0, 0, IPv6OptJumboPayload, 2, 0, 0, 1, 0}, ErrMalformed, "jumbo payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIPv6Options(tt.b)
			ipv6WantErr(t, err, tt.kind, tt.field)
		})
	}
	// Routing and fragment views check their lengths too.
	_, err := ParseIPv6Routing([]byte{0, 0, 0, 0})
	ipv6WantErr(t, err, ErrTruncated, "header")
	_, err = ParseIPv6Routing([]byte{0, 1, 0, 0, 0, 0, 0, 0})
	ipv6WantErr(t, err, ErrTruncated, "header length")
	_, err = ParseIPv6Fragment(make([]byte, 7))
	ipv6WantErr(t, err, ErrTruncated, "header")
}

func TestIPv6OptionActions(t *testing.T) {
	// RFC 8200 §4.2: the two high bits of the type say what to do.
	b := []byte{IPProtoUDP, 2,
		0x1e, 0, 0x5e, 0, 0x9e, 0, 0xde, 0, 0x3e, 0, // one option per action, then a "may change" one
		IPv6OptJumboPayload, 4, 0, 1, 0, 0,
		IPv6OptPadN, 4, 0, 0, 0, 0}
	o, err := ParseIPv6Options(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []IPv6OptionAction{IPv6OptionSkip, IPv6OptionDiscard, IPv6OptionDiscardICMP, IPv6OptionDiscardICMPUnicast, IPv6OptionSkip, IPv6OptionDiscardICMPUnicast, IPv6OptionSkip}
	it := o.Options()
	i := 0
	for op, ok := it.Next(); ok; op, ok = it.Next() {
		if op.Action() != want[i] {
			t.Errorf("option %#x: action %d, want %d", op.Type, op.Action(), want[i])
		}
		if op.MayChange() != (op.Type == 0x3e) {
			t.Errorf("option %#x: may change %v", op.Type, op.MayChange())
		}
		if n, ok := op.JumboPayloadLen(); ok != (op.Type == IPv6OptJumboPayload) || (ok && n != 65536) {
			t.Errorf("option %#x: jumbo %d %v", op.Type, n, ok)
		}
		i++
	}
	if i != len(want) {
		t.Errorf("%d options, want %d", i, len(want))
	}
}

func TestIPv6OptionsFieldsRoundTrip(t *testing.T) {
	// The MLD hop-by-hop header the kernel sends: router alert 0, PadN.
	mld := IPv6OptionsFields{NextHeader: IPProtoICMPv6, RouterAlert: true, RouterAlertValue: IPv6RouterAlertMLD}
	b := make([]byte, mld.Len())
	mld.Encode(b)
	h, _ := ParseIPv6(ipv6Cap(t, ipv6capMLDv2Report))
	if !bytes.Equal(b, h.Payload()[:8]) {
		t.Errorf("MLD hop-by-hop header %x, kernel sent %x", b, h.Payload()[:8])
	}
	// Every length of extra options pads to a multiple of 8 with valid padding.
	for n := 0; n <= 20; n++ {
		for _, ra := range []bool{false, true} {
			var opts []byte
			if n >= 2 {
				opts = AppendIPv6Option(nil, 0x1e, bytes.Repeat([]byte{0xab}, n-2))
			}
			f := IPv6OptionsFields{NextHeader: IPProtoUDP, RouterAlert: ra, RouterAlertValue: 7, Options: opts}
			b := make([]byte, f.Len()+3)
			for i := range b {
				b[i] = 0xff
			}
			f.Encode(b)
			if f.Len()%8 != 0 || b[f.Len()] != 0xff {
				t.Fatalf("n=%d ra=%v: length %d or wrote past it", n, ra, f.Len())
			}
			o, err := ParseIPv6Options(b)
			if err != nil {
				t.Fatalf("n=%d ra=%v: %v (%x)", n, ra, err, b)
			}
			if o.Len() != f.Len() || o.NextHeader() != IPProtoUDP {
				t.Errorf("n=%d: len %d next %d", n, o.Len(), o.NextHeader())
			}
			if v, ok := o.RouterAlert(); ok != ra || (ra && v != 7) {
				t.Errorf("n=%d: router alert %d %v", n, v, ok)
			}
			it := o.Options()
			found := false
			for op, ok := it.Next(); ok; op, ok = it.Next() {
				switch op.Type {
				case 0x1e:
					found = len(op.Data) == n-2
				case IPv6OptPad1, IPv6OptPadN, IPv6OptRouterAlert:
				default:
					t.Errorf("n=%d: unexpected option %#x", n, op.Type)
				}
			}
			if found != (n >= 2) {
				t.Errorf("n=%d: option data not found intact", n)
			}
		}
	}
	if a := testing.AllocsPerRun(100, func() { mld.Encode(b) }); a != 0 {
		t.Errorf("Encode allocates %v times", a)
	}
}

func TestIPv6FragmentFieldsRoundTrip(t *testing.T) {
	h, _ := ParseIPv6(ipv6Cap(t, ipv6capFrag1))
	f := IPv6FragmentFields{NextHeader: IPProtoICMPv6, Offset: 1400, More: true, ID: 0xa126a459}
	b := make([]byte, f.Len())
	f.Encode(b)
	if !bytes.Equal(b, h.Payload()[:8]) {
		t.Errorf("fragment header %x, kernel sent %x", b, h.Payload()[:8])
	}
	for _, bad := range []int{-8, 3, 65536} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("offset %d: no panic", bad)
				}
			}()
			(&IPv6FragmentFields{Offset: bad}).Encode(b)
		}()
	}
	if !errors.Is(func() error { _, err := ParseIPv6Fragment(b[:7]); return err }(), ErrTruncated) {
		t.Error("short fragment header accepted")
	}
}
