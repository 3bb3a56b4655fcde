package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func v4addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// More captured frames (see ethernet_test.go for the lab).
const (
	// ping -R 10.77.0.2: NOP, Record Route with 9 slots, the sender's
	// address already recorded (pointer 8).
	v4capRR = "02000000000b02000000000a08004f00007c8a5c400040015f2b0a4d00010a4d" +
		"0002010727080a4d000100000000000000000000000000000000000000000000" +
		"000000000000000000000800dfa92b4a000134bc066b00000000ef1004000000" +
		"0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d" +
		"2e2f3031323334353637"
	// The reply to ping -R 10.77.9.2 through a Linux router (10.77.0.2 /
	// 10.77.9.1): five addresses recorded, pointer 24.
	v4capRRRouted = "02000000000a02000000000b08004f00007c8f9800003f011bd70a4d09020a4d" +
		"00010727180a4d00010a4d09010a4d09020a4d09020a4d000200000000000000" +
		"0000000000000000000000001d2e2f7d000155bc066b000000008d590b000000" +
		"0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d" +
		"2e2f3031323334353637"
	// ping -T tsonly: Timestamp flag 0, 9 slots, one stamped.
	v4capTSOnly = "02000000000b02000000000a08004f00007c8a5d400040019de20a4d00010a4d" +
		"000244280900024ea42e00000000000000000000000000000000000000000000" +
		"00000000000000000000080031992b4b000134bc066b000000009d2004000000" +
		"0000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d" +
		"2e2f3031323334353637"
	// ping -T tsandaddr: Timestamp flag 1, 4 slots, one stamped.
	v4capTSAddr = "02000000000b02000000000a08004e0000788a5e4000400190970a4d00010a4d" +
		"000244240d010a4d0001024ea431000000000000000000000000000000000000" +
		"00000000000008003b8c2b4c000134bc066b00000000932c0400000000001011" +
		"12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031" +
		"323334353637"
	// Last fragment of ping -s 3000 (offset 2960).
	v4capLastFragment = "02000000000b02000000000a0800450000448a5f01724001da4b0a4d00010a4d" +
		"000288898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5" +
		"a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
)

func v4ipOf(t testing.TB, frame string) []byte {
	e, err := ParseEthernet(v4hex(t, frame))
	if err != nil {
		t.Fatal(err)
	}
	return e.Payload()
}

func TestParseIPv4Captured(t *testing.T) {
	type want struct {
		hl, tl          int
		tos             uint8
		id              uint16
		df, mf, frag    bool
		off             int
		ttl, proto      uint8
		csum            uint16
		src, dst        string
		optLen, payload int
	}
	tests := []struct {
		name  string
		frame string
		w     want
	}{
		{"echo", v4capEcho, want{20, 84, 0, 0x8a5b, true, false, false, 0, 64, IPProtoICMP, 0x9bb1, "10.77.0.1", "10.77.0.2", 0, 64}},
		{"echo reply", v4capEchoReply, want{20, 84, 0, 0xd49c, false, false, false, 0, 64, IPProtoICMP, 0x9170, "10.77.0.2", "10.77.0.1", 0, 64}},
		{"record route", v4capRR, want{60, 124, 0, 0x8a5c, true, false, false, 0, 64, IPProtoICMP, 0x5f2b, "10.77.0.1", "10.77.0.2", 40, 64}},
		{"routed record route", v4capRRRouted, want{60, 124, 0, 0x8f98, false, false, false, 0, 63, IPProtoICMP, 0x1bd7, "10.77.9.2", "10.77.0.1", 40, 64}},
		{"timestamp only", v4capTSOnly, want{60, 124, 0, 0x8a5d, true, false, false, 0, 64, IPProtoICMP, 0x9de2, "10.77.0.1", "10.77.0.2", 40, 64}},
		{"timestamp and address", v4capTSAddr, want{56, 120, 0, 0x8a5e, true, false, false, 0, 64, IPProtoICMP, 0x9097, "10.77.0.1", "10.77.0.2", 36, 64}},
		{"last fragment", v4capLastFragment, want{20, 68, 0, 0x8a5f, false, false, true, 2960, 64, IPProtoICMP, 0xda4b, "10.77.0.1", "10.77.0.2", 0, 48}},
		{"igmpv3 with router alert", v4capIGMPv3Join, want{24, 40, 0xc0, 0, true, false, false, 0, 1, IPProtoIGMP, 0xf9ab, "10.77.0.1", "224.0.0.22", 4, 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseIPv4(v4ipOf(t, tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			w := tt.w
			if h.Version() != 4 || h.HeaderLen() != w.hl || h.TotalLen() != w.tl || len(h) != w.tl {
				t.Errorf("version %d hl %d tl %d len %d", h.Version(), h.HeaderLen(), h.TotalLen(), len(h))
			}
			if h.TOS() != w.tos || h.DSCP() != w.tos>>2 || h.ECN() != w.tos&3 || h.ID() != w.id {
				t.Errorf("tos %#x dscp %d ecn %d id %#x", h.TOS(), h.DSCP(), h.ECN(), h.ID())
			}
			if h.DF() != w.df || h.MF() != w.mf || h.IsFragment() != w.frag || h.FragmentOffset() != w.off {
				t.Errorf("DF %v MF %v frag %v off %d", h.DF(), h.MF(), h.IsFragment(), h.FragmentOffset())
			}
			if h.TTL() != w.ttl || h.Protocol() != w.proto || h.Checksum() != w.csum || !h.ChecksumValid() {
				t.Errorf("ttl %d proto %d csum %#x valid %v", h.TTL(), h.Protocol(), h.Checksum(), h.ChecksumValid())
			}
			if h.Src() != v4addr(w.src) || h.Dst() != v4addr(w.dst) {
				t.Errorf("src %v dst %v", h.Src(), h.Dst())
			}
			if len(h.Options()) != w.optLen || len(h.Payload()) != w.payload || len(h.Header()) != w.hl {
				t.Errorf("options %d payload %d", len(h.Options()), len(h.Payload()))
			}
			var flags uint8
			if w.df {
				flags |= 2
			}
			if h.Flags() != flags {
				t.Errorf("Flags = %03b, want %03b", h.Flags(), flags)
			}
			// Rebuild the header from the accessors: identical bytes.
			f := IPv4Fields{TOS: h.TOS(), ID: h.ID(), DF: h.DF(), MF: h.MF(), FragmentOffset: h.FragmentOffset(),
				TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst(), Options: h.Options(), PayloadLen: len(h.Payload())}
			b := make([]byte, f.Len())
			f.Encode(b)
			if !bytes.Equal(b, h.Header()) {
				t.Errorf("rebuilt header\n%x, want\n%x", b, h.Header())
			}
		})
	}
}

func TestParseIPv4TrimsPadding(t *testing.T) {
	// A 46-byte IGMPv2 frame has no padding, so add some as a short frame would.
	b := append(v4ipOf(t, v4capIGMPv2Report), 0, 0, 0, 0, 0, 0)
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 32 || len(h.Payload()) != 8 {
		t.Errorf("len %d payload %d, want 32 and 8", len(h), len(h.Payload()))
	}
}

func TestIPv4OptionsCaptured(t *testing.T) {
	t.Run("record route", func(t *testing.T) {
		for _, tt := range []struct {
			frame string
			route []string
		}{
			{v4capRR, []string{"10.77.0.1"}},
			{v4capRRRouted, []string{"10.77.0.1", "10.77.9.1", "10.77.9.2", "10.77.9.2", "10.77.0.2"}},
		} {
			h, err := ParseIPv4(v4ipOf(t, tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			it := h.OptionIter()
			o, ok := it.Next()
			if !ok || o.Type() != IPv4OptRecordRoute || o.Copied() || len(o) != 39 || len(o.Data()) != 37 {
				t.Fatalf("first option %x, want a 39-byte record route", []byte(o))
			}
			if o.RouteSlots() != 9 || o.RouteUsed() != len(tt.route) || o.RouteFull() || o.Pointer() != uint8(4+4*len(tt.route)) {
				t.Errorf("slots %d used %d full %v ptr %d", o.RouteSlots(), o.RouteUsed(), o.RouteFull(), o.Pointer())
			}
			for i, a := range tt.route {
				if o.RouteAddr(i) != v4addr(a) {
					t.Errorf("RouteAddr(%d) = %v, want %v", i, o.RouteAddr(i), a)
				}
			}
			if o.RouteAddr(9).IsValid() || o.RouteAddr(-1).IsValid() {
				t.Error("RouteAddr out of range is valid")
			}
			if _, ok := it.Next(); ok || it.Err() != nil {
				t.Errorf("second option or error %v", it.Err())
			}
		}
	})
	t.Run("timestamps", func(t *testing.T) {
		for _, tt := range []struct {
			frame       string
			flag        uint8
			slots       int
			addr        netip.Addr
			ts          uint32
			copiedClass bool
		}{
			{v4capTSOnly, IPv4TimestampOnly, 9, netip.Addr{}, 0x024ea42e, false},
			{v4capTSAddr, IPv4TimestampAndAddr, 4, v4addr("10.77.0.1"), 0x024ea431, false},
		} {
			h, _ := ParseIPv4(v4ipOf(t, tt.frame))
			it := h.OptionIter()
			o, ok := it.Next()
			if !ok || o.Type() != IPv4OptTimestamp {
				t.Fatalf("option %x, want timestamp", []byte(o))
			}
			if o.TimestampFlag() != tt.flag || o.TimestampSlots() != tt.slots || o.TimestampUsed() != 1 || o.TimestampOverflow() != 0 {
				t.Errorf("flag %d slots %d used %d overflow %d", o.TimestampFlag(), o.TimestampSlots(), o.TimestampUsed(), o.TimestampOverflow())
			}
			a, ts, ok := o.TimestampEntry(0)
			if !ok || a != tt.addr || ts != tt.ts {
				t.Errorf("entry 0 = %v %#x %v, want %v %#x", a, ts, ok, tt.addr, tt.ts)
			}
			if _, _, ok := o.TimestampEntry(tt.slots); ok {
				t.Error("entry past the slots exists")
			}
			if o.RouteSlots() != 0 || o.RouterAlertValue() != 0 {
				t.Error("route/router alert accessors answer for a timestamp option")
			}
		}
	})
	t.Run("router alert", func(t *testing.T) {
		h, _ := ParseIPv4(v4ipOf(t, v4capIGMPv3Join))
		it := h.OptionIter()
		o, ok := it.Next()
		if !ok || o.Type() != IPv4OptRouterAlert || !o.Copied() || o.RouterAlertValue() != 0 || o.TimestampSlots() != 0 {
			t.Errorf("option %x", []byte(o))
		}
	})
}

// TestIPv4OptionBuildersMatchLinux builds the options Linux's ping sent,
// recording the sender's entry as Linux does on output, and gets the
// captured headers byte for byte.
func TestIPv4OptionBuildersMatchLinux(t *testing.T) {
	src := v4addr("10.77.0.1")
	var buf [IPv4MaxOptionLen]byte
	for _, tt := range []struct {
		name  string
		frame string
		opts  func() []byte
	}{
		{"ping -R", v4capRR, func() []byte {
			b := AppendIPv4RecordRoute(append(buf[:0], IPv4OptNOP), 9)
			if !IPv4Option(b[1:]).RouteRecord(src) {
				t.Error("RouteRecord into an empty option failed")
			}
			return b
		}},
		{"ping -T tsonly", v4capTSOnly, func() []byte {
			b := AppendIPv4Timestamp(buf[:0], IPv4TimestampOnly, 9)
			IPv4Option(b).TimestampRecord(src, 0x024ea42e)
			return b
		}},
		{"ping -T tsandaddr", v4capTSAddr, func() []byte {
			b := AppendIPv4Timestamp(buf[:0], IPv4TimestampAndAddr, 4)
			IPv4Option(b).TimestampRecord(src, 0x024ea431)
			return b
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := ParseIPv4(v4ipOf(t, tt.frame))
			f := IPv4Fields{ID: h.ID(), DF: true, TTL: 64, Protocol: IPProtoICMP, Src: src, Dst: h.Dst(),
				Options: tt.opts(), PayloadLen: len(h.Payload())}
			b := make([]byte, f.Len())
			f.Encode(b)
			if !bytes.Equal(b, h.Header()) {
				t.Errorf("built\n%x, want\n%x", b, h.Header())
			}
		})
	}
}

func TestIPv4OptionBuilders(t *testing.T) {
	var buf [IPv4MaxOptionLen]byte
	r1, r2 := v4addr("192.0.2.1"), v4addr("192.0.2.2")
	opts := AppendIPv4SourceRoute(buf[:0], false, r1, r2)
	opts = AppendIPv4RouterAlert(opts)
	opts = AppendIPv4TimestampPrespecified(opts, r1, r2)
	if len(opts) != 11+4+20 {
		t.Fatalf("len %d", len(opts))
	}
	f := IPv4Fields{TTL: 9, Protocol: IPProtoUDP, Src: r1, Dst: r2, Options: opts}
	if f.Len() != 56 {
		t.Fatalf("Len = %d, want 56 (35 option bytes padded to 36)", f.Len())
	}
	b := make([]byte, f.Len())
	f.Encode(b)
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if b[55] != IPv4OptEOL || !h.ChecksumValid() {
		t.Fatalf("padding %d checksum valid %v", b[55], h.ChecksumValid())
	}
	it := h.OptionIter()
	var types []uint8
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		types = append(types, o.Type())
		switch o.Type() {
		case IPv4OptLSRR:
			if o.RouteSlots() != 2 || o.RouteUsed() != 0 || o.RouteAddr(1) != r2 {
				t.Errorf("LSRR %x", []byte(o))
			}
			// A router on the path: take the next hop, record itself.
			me := v4addr("203.0.113.9")
			for _, hop := range []netip.Addr{r1, r2} {
				if next, ok := o.RouteNext(); !ok || next != hop || !o.RouteRecord(me) {
					t.Fatalf("RouteNext = %v %v, want %v", next, ok, hop)
				}
			}
			if _, ok := o.RouteNext(); ok || !o.RouteFull() || o.RouteAddr(1) != me || o.RouteUsed() != 2 {
				t.Errorf("exhausted LSRR %x", []byte(o))
			}
		case IPv4OptTimestamp:
			if o.TimestampFlag() != IPv4TimestampPrespecified || o.TimestampSlots() != 2 {
				t.Errorf("timestamp %x", []byte(o))
			}
			// Only the prespecified host in turn may stamp.
			if o.TimestampRecord(r2, 1) {
				t.Error("r2 stamped out of turn")
			}
			if !o.TimestampRecord(r1, 7) || !o.TimestampRecord(r2, 8) {
				t.Error("prespecified hosts could not stamp")
			}
			if a, ts, _ := o.TimestampEntry(1); a != r2 || ts != 8 || o.TimestampUsed() != 2 {
				t.Errorf("entry 1 = %v %d", a, ts)
			}
			// Full: hosts count in the overflow field, which saturates at 15.
			for range 20 {
				o.TimestampRecord(r1, 9)
			}
			if o.TimestampOverflow() != 15 {
				t.Errorf("overflow %d, want 15", o.TimestampOverflow())
			}
		}
	}
	if it.Err() != nil || !bytes.Equal(types, []uint8{IPv4OptLSRR, IPv4OptRouterAlert, IPv4OptTimestamp}) {
		t.Errorf("types %v err %v", types, it.Err())
	}
	// The stamps changed the header; UpdateChecksum repairs it.
	if h.ChecksumValid() {
		t.Error("checksum still valid after options changed")
	}
	h.UpdateChecksum()
	if !h.ChecksumValid() {
		t.Error("UpdateChecksum did not repair the checksum")
	}
	// A strict route and a full record route.
	ss := AppendIPv4SourceRoute(nil, true, r1)
	if ss[0] != IPv4OptSSRR || IPv4Option(ss).RouteSlots() != 1 {
		t.Errorf("SSRR %x", ss)
	}
	rr := IPv4Option(AppendIPv4RecordRoute(nil, 1))
	if !rr.RouteRecord(r1) || rr.RouteRecord(r2) || !rr.RouteFull() || rr.RouteAddr(0) != r1 {
		t.Errorf("full record route %x", []byte(rr))
	}
	// Builders do not allocate given capacity.
	b = make([]byte, IPv4MaxHeaderLen)
	if n := testing.AllocsPerRun(100, func() {
		o := AppendIPv4RecordRoute(buf[:0], 9)
		f := IPv4Fields{Protocol: IPProtoICMP, Src: r1, Dst: r2, Options: o}
		f.Encode(b)
	}); n != 0 {
		t.Errorf("option building and Encode allocate %v times", n)
	}
}

func TestIPv4DecrementTTL(t *testing.T) {
	h, _ := ParseIPv4(append([]byte(nil), v4ipOf(t, v4capRR)...))
	for want := 63; want >= 0; want-- {
		if got := h.DecrementTTL(); int(got) != want || !h.ChecksumValid() {
			t.Fatalf("DecrementTTL = %d (valid %v), want %d", got, h.ChecksumValid(), want)
		}
	}
	if h.DecrementTTL() != 0 || !h.ChecksumValid() {
		t.Error("TTL 0 changed")
	}
}

func TestParseIPv4Errors(t *testing.T) {
	echo := v4ipOf(t, v4capEcho)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), echo...)
		f(b)
		return b
	}
	// withOpts builds a header carrying raw option bytes (4-byte multiple).
	withOpts := func(opts ...byte) []byte {
		f := IPv4Fields{TTL: 64, Protocol: IPProtoUDP, Src: v4addr("10.0.0.1"), Dst: v4addr("10.0.0.2"), Options: opts}
		b := make([]byte, f.Len())
		f.Encode(b)
		return b
	}
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"short header", echo[:19], ErrTruncated, "header"},
		{"version 6", mod(func(b []byte) { b[0] = 0x65 }), ErrMalformed, "version"},
		{"ihl 4", mod(func(b []byte) { b[0] = 0x44 }), ErrMalformed, "ihl"},
		{"ihl past buffer", mod(func(b []byte) { b[0] = 0x4f })[:40], ErrTruncated, "ihl"},
		{"total length below header", mod(func(b []byte) { b[2], b[3] = 0, 19 }), ErrMalformed, "total length"},
		{"total length past buffer", echo[:83], ErrTruncated, "total length"},
		{"option without length", withOpts(1, 1, 1, 68), ErrMalformed, "timestamp option"},
		{"option length 1", withOpts(0x82, 1, 0, 0), ErrMalformed, "option"},
		{"option length past header", withOpts(0x82, 9, 0, 0), ErrMalformed, "option"},
		{"rr length 2", withOpts(7, 2, 0, 0), ErrMalformed, "record route option"},
		{"rr pointer 3", withOpts(7, 7, 3, 0, 0, 0, 0, 0), ErrMalformed, "record route option"},
		{"rr pointer mid-slot", withOpts(7, 7, 5, 0, 0, 0, 0, 0), ErrMalformed, "record route option"},
		{"lsrr pointer 0", withOpts(131, 7, 0, 1, 2, 3, 4, 0), ErrMalformed, "loose source route option"},
		{"ssrr length 2", withOpts(137, 2, 0, 0), ErrMalformed, "strict source route option"},
		{"ts length 3", withOpts(68, 3, 5, 0), ErrMalformed, "timestamp option"},
		{"ts pointer 4", withOpts(68, 8, 4, 0, 0, 0, 0, 0), ErrMalformed, "timestamp option"},
		{"ts flag 2", withOpts(68, 8, 5, 2, 0, 0, 0, 0), ErrMalformed, "timestamp option"},
		{"ts pointer leaves half an entry", withOpts(68, 8, 5, 1, 0, 0, 0, 0), ErrMalformed, "timestamp option"},
		{"router alert length 6", withOpts(148, 6, 0, 0, 0, 0, 0, 0), ErrMalformed, "router alert option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIPv4(tt.b)
			v4wantErr(t, err, tt.kind, tt.field)
			if tt.kind != ErrTruncated || tt.field != "total length" {
				_, err = ParseIPv4Quoted(tt.b)
				v4wantErr(t, err, tt.kind, tt.field)
			}
		})
	}
	// Full options are fine: pointer past the end of the option.
	for _, opts := range [][]byte{
		{7, 7, 8, 1, 2, 3, 4, 0},     // record route, one slot, full
		{68, 8, 9, 0x10, 0, 0, 0, 1}, // timestamp full, overflow 1
		{1, 1, 1, 0, 68, 0, 0, 0},    // NOPs then EOL: garbage after EOL ignored
		{0x88, 4, 0, 1},              // unknown (stream ID) skipped by length
	} {
		if _, err := ParseIPv4(withOpts(opts...)); err != nil {
			t.Errorf("options %x: %v", opts, err)
		}
	}
}

func TestParseIPv4Quoted(t *testing.T) {
	// The datagram quoted by the captured Fragmentation Needed message
	// claims 1228 bytes, of which Linux quoted 548.
	m, err := ParseICMPv4(v4icmpOf(t, v4capFragNeeded))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIPv4(m.Original()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("ParseIPv4 of a cut quote: %v, want truncated", err)
	}
	q, err := ParseIPv4Quoted(m.Original())
	if err != nil {
		t.Fatal(err)
	}
	if q.TotalLen() != 1228 || len(q) != 548 || len(q.Payload()) != 528 || q.Dst() != v4addr("10.77.9.2") || !q.DF() {
		t.Errorf("quoted: tl %d len %d payload %d dst %v", q.TotalLen(), len(q), len(q.Payload()), q.Dst())
	}
	// A whole datagram quoted with trailing bytes is trimmed to its length.
	whole := append(v4ipOf(t, v4capEcho), 1, 2, 3)
	if q, err := ParseIPv4Quoted(whole); err != nil || len(q) != 84 {
		t.Errorf("len %d err %v", len(q), err)
	}
}

func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{v4capEcho, v4capRR, v4capRRRouted, v4capTSOnly, v4capTSAddr, v4capLastFragment, v4capIGMPv3Join} {
		f.Add(v4ipOf(f, s))
	}
	f.Add([]byte{0x48, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 131, 11, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseIPv4Quoted(b); err == nil {
			v4fuzzIPv4(t, q, b)
		}
		h, err := ParseIPv4(b)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *Error", err)
			}
			return
		}
		v4fuzzIPv4(t, h, b)
	})
}

func v4fuzzIPv4(t *testing.T, h IPv4, in []byte) {
	_, _, _, _, _ = h.Version(), h.TOS(), h.DSCP(), h.ECN(), h.TotalLen()
	_, _, _, _, _ = h.Flags(), h.IsFragment(), h.Checksum(), h.ChecksumValid(), h.Payload()
	it := h.OptionIter()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		_, _, _, _ = o.Type(), o.Copied(), o.Data(), o.Pointer()
		for i := -1; i <= o.RouteSlots(); i++ {
			_ = o.RouteAddr(i)
		}
		_, _ = o.RouteUsed(), o.RouteFull()
		_, _ = o.RouteNext()
		for i := -1; i <= o.TimestampSlots(); i++ {
			_, _, _ = o.TimestampEntry(i)
		}
		_, _, _, _ = o.TimestampFlag(), o.TimestampOverflow(), o.TimestampUsed(), o.RouterAlertValue()
	}
	if it.Err() != nil {
		t.Fatalf("options of a parsed header fail: %v", it.Err())
	}
	f := IPv4Fields{TOS: h.TOS(), ID: h.ID(), DF: h.DF(), MF: h.MF(), FragmentOffset: h.FragmentOffset(),
		TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst(), Options: h.Options(),
		PayloadLen: h.TotalLen() - h.HeaderLen()}
	out := make([]byte, f.Len())
	f.Encode(out)
	want := append([]byte(nil), in[:h.HeaderLen()]...)
	want[6] &^= 0x80 // the reserved flag is not a builder field
	want[10], want[11] = out[10], out[11]
	if !bytes.Equal(out, want) {
		t.Fatalf("re-encoded %x, input %x", out, want)
	}
	if !IPv4(out).ChecksumValid() {
		t.Fatal("re-encoded checksum invalid")
	}
	// Mutators on a copy keep the checksum right.
	c := IPv4(append([]byte(nil), out...))
	c.DecrementTTL()
	if !c.ChecksumValid() {
		t.Fatal("DecrementTTL broke the checksum")
	}
}
