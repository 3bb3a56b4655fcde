package wire_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Segments of one connection each over IPv4 and IPv6 that the Linux kernel
// sent between two network namespaces joined by veth (checksum offload
// off), captured with tshark: handshake, "ping" from the client, the
// client's FIN.
var tcpKernelCaptures = []struct {
	name     string
	src, dst string
	hex      string

	srcPort, dstPort uint16
	seq, ack         uint32
	flags            wire.TCPFlags
	window           uint16
	opts             wire.TCPOptions
	payload          string
}{
	{
		name: "ipv4/syn", src: "10.77.0.1", dst: "10.77.0.2",
		hex:     "e1261f9068649c7700000000a002faf0e10f0000020405b40402080a1d0d34c0000000000103030a",
		srcPort: 57638, dstPort: 8080, seq: 0x68649c77, flags: wire.TCPFlagSYN, window: 64240,
		opts: wire.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true,
			HasTimestamps: true, TSVal: 0x1d0d34c0, HasWindowScale: true, WindowScale: 10},
	},
	{
		name: "ipv4/syn-ack", src: "10.77.0.2", dst: "10.77.0.1",
		hex:     "1f90e126fc2b1b5968649c78a012fe884d140000020405b40402080a9415e4b71d0d34c00103030a",
		srcPort: 8080, dstPort: 57638, seq: 0xfc2b1b59, ack: 0x68649c78, flags: wire.TCPFlagSYN | wire.TCPFlagACK, window: 65160,
		opts: wire.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true,
			HasTimestamps: true, TSVal: 0x9415e4b7, TSEcr: 0x1d0d34c0, HasWindowScale: true, WindowScale: 10},
	},
	{
		name: "ipv4/data", src: "10.77.0.1", dst: "10.77.0.2",
		hex:     "e1261f9068649c78fc2b1b5a8018003f9b5000000101080a1d0d34c09415e4b770696e67",
		srcPort: 57638, dstPort: 8080, seq: 0x68649c78, ack: 0xfc2b1b5a, flags: wire.TCPFlagPSH | wire.TCPFlagACK, window: 63,
		opts:    wire.TCPOptions{HasTimestamps: true, TSVal: 0x1d0d34c0, TSEcr: 0x9415e4b7},
		payload: "ping",
	},
	{
		name: "ipv4/fin", src: "10.77.0.1", dst: "10.77.0.2",
		hex:     "e1261f9068649c7cfc2b1b638011003f7a1f00000101080a1d0d34c09415e4b7",
		srcPort: 57638, dstPort: 8080, seq: 0x68649c7c, ack: 0xfc2b1b63, flags: wire.TCPFlagFIN | wire.TCPFlagACK, window: 63,
		opts: wire.TCPOptions{HasTimestamps: true, TSVal: 0x1d0d34c0, TSEcr: 0x9415e4b7},
	},
	{
		name: "ipv6/syn", src: "fd00:77::1", dst: "fd00:77::2",
		hex:     "a7ce1f90f875e39200000000a002fd2027070000020405a00402080a6a941afb000000000103030a",
		srcPort: 42958, dstPort: 8080, seq: 0xf875e392, flags: wire.TCPFlagSYN, window: 64800,
		opts: wire.TCPOptions{HasMSS: true, MSS: 1440, SACKPermitted: true,
			HasTimestamps: true, TSVal: 0x6a941afb, HasWindowScale: true, WindowScale: 10},
	},
	{
		name: "ipv6/syn-ack", src: "fd00:77::2", dst: "fd00:77::1",
		hex:     "1f90a7cedc1c73eff875e393a012fb04199c0000020405a00402080adadae48e6a941afb0103030a",
		srcPort: 8080, dstPort: 42958, seq: 0xdc1c73ef, ack: 0xf875e393, flags: wire.TCPFlagSYN | wire.TCPFlagACK, window: 64260,
		opts: wire.TCPOptions{HasMSS: true, MSS: 1440, SACKPermitted: true,
			HasTimestamps: true, TSVal: 0xdadae48e, TSEcr: 0x6a941afb, HasWindowScale: true, WindowScale: 10},
	},
	{
		name: "ipv6/data", src: "fd00:77::1", dst: "fd00:77::2",
		hex:     "a7ce1f90f875e393dc1c73f080180040643f00000101080a6a941afbdadae48e70696e67",
		srcPort: 42958, dstPort: 8080, seq: 0xf875e393, ack: 0xdc1c73f0, flags: wire.TCPFlagPSH | wire.TCPFlagACK, window: 64,
		opts:    wire.TCPOptions{HasTimestamps: true, TSVal: 0x6a941afb, TSEcr: 0xdadae48e},
		payload: "ping",
	},
	{
		name: "ipv6/fin", src: "fd00:77::1", dst: "fd00:77::2",
		hex:     "a7ce1f90f875e397dc1c73fa80110040430b00000101080a6a941afcdadae48f",
		srcPort: 42958, dstPort: 8080, seq: 0xf875e397, ack: 0xdc1c73fa, flags: wire.TCPFlagFIN | wire.TCPFlagACK, window: 64,
		opts: wire.TCPOptions{HasTimestamps: true, TSVal: 0x6a941afc, TSEcr: 0xdadae48f},
	},
}

func TestTCPKernelCaptures(t *testing.T) {
	for _, c := range tcpKernelCaptures {
		t.Run(c.name, func(t *testing.T) {
			b := transportHex(t, c.hex)
			src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
			seg, err := wire.ParseTCP(b)
			if err != nil {
				t.Fatal(err)
			}
			if seg.SrcPort() != c.srcPort || seg.DstPort() != c.dstPort || seg.Seq() != c.seq || seg.Ack() != c.ack {
				t.Errorf("ports %d→%d seq %#x ack %#x", seg.SrcPort(), seg.DstPort(), seg.Seq(), seg.Ack())
			}
			if seg.Flags() != c.flags || seg.Window() != c.window || seg.Urgent() != 0 || seg.Reserved() != 0 {
				t.Errorf("flags %v window %d urgent %d reserved %d", seg.Flags(), seg.Window(), seg.Urgent(), seg.Reserved())
			}
			if want := wire.TCPMinHeaderLen + c.opts.Len(); seg.HeaderLen() != want || int(seg.DataOffset())*4 != want ||
				len(seg.OptionBytes()) != want-wire.TCPMinHeaderLen {
				t.Errorf("header %d bytes (offset %d), want %d", seg.HeaderLen(), seg.DataOffset(), want)
			}
			if string(seg.Payload()) != c.payload {
				t.Errorf("payload %q, want %q", seg.Payload(), c.payload)
			}
			opts, err := seg.Options()
			if err != nil {
				t.Fatal(err)
			}
			if opts != c.opts {
				t.Errorf("options\n%+v, want\n%+v", opts, c.opts)
			}
			if !seg.ChecksumValid(src, dst) {
				t.Error("kernel checksum does not verify")
			}
			if seg.ChecksumValid(dst, src.Next()) {
				t.Error("checksum verifies against the wrong pseudo-header")
			}
			for i := range len(b) * 8 {
				bad := bytes.Clone(b)
				bad[i/8] ^= 1 << (i % 8)
				if bs, err := wire.ParseTCP(bad); err == nil && bs.ChecksumValid(src, dst) {
					t.Fatalf("bit %d flipped still verifies", i)
				}
			}

			// Our builder writes the options in Linux's order, so
			// rebuilding the segment gives the kernel's bytes.
			f := wire.TCPFields{
				SrcPort: c.srcPort, DstPort: c.dstPort, Seq: c.seq, Ack: c.ack,
				Flags: c.flags, Window: c.window, Options: c.opts, PayloadLen: len(c.payload),
			}
			out := make([]byte, f.Len()+len(c.payload))
			f.Encode(out)
			copy(out[f.Len():], c.payload)
			f.SetChecksum(out, src, dst)
			if !bytes.Equal(out, b) {
				t.Errorf("rebuilt\n%x, kernel sent\n%x", out, b)
			}
		})
	}
}

func TestParseTCPErrors(t *testing.T) {
	syn := tcpKernelCaptures[0].hex
	tests := []struct {
		name  string
		hex   string
		kind  error
		field string
	}{
		{"empty", "", wire.ErrTruncated, "header"},
		{"short header", syn[:38], wire.ErrTruncated, "header"},
		{"data offset 0", syn[:24] + "0002" + syn[28:], wire.ErrMalformed, "data offset"},
		{"data offset 4", syn[:24] + "4002" + syn[28:], wire.ErrMalformed, "data offset"},
		{"data offset past segment", syn[:24] + "b002" + syn[28:], wire.ErrTruncated, "data offset"},
		{"options cut off", syn[:60], wire.ErrTruncated, "data offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.ParseTCP(transportHex(t, tt.hex))
			transportCheckError(t, err, "tcp", tt.field, tt.kind)
		})
	}
}

// A malformed option does not stop ParseTCP: the segment is still readable.
func TestParseTCPKeepsSegmentWithBadOptions(t *testing.T) {
	b := transportHex(t, tcpKernelCaptures[0].hex)
	b[wire.TCPMinHeaderLen+1] = 0 // MSS length 0
	seg, err := wire.ParseTCP(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = seg.Options()
	transportCheckError(t, err, "tcp", "MSS option", wire.ErrMalformed)
}

func TestTCPFlagsString(t *testing.T) {
	tests := []struct {
		f    wire.TCPFlags
		want string
	}{
		{0, "[none]"},
		{wire.TCPFlagSYN, "[S]"},
		{wire.TCPFlagSYN | wire.TCPFlagACK, "[S.]"},
		{wire.TCPFlagACK, "[.]"},
		{wire.TCPFlagPSH | wire.TCPFlagACK, "[P.]"},
		{wire.TCPFlagFIN | wire.TCPFlagACK, "[F.]"},
		{wire.TCPFlagFIN | wire.TCPFlagPSH | wire.TCPFlagACK, "[FP.]"},
		{wire.TCPFlagRST, "[R]"},
		{wire.TCPFlagRST | wire.TCPFlagACK, "[R.]"},
		{wire.TCPFlagURG | wire.TCPFlagACK, "[.U]"},
		{wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR, "[SEW]"},
		{wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR | wire.TCPFlagAE, "[SEWe]"},
		{0x1ff, "[FSRP.UEWe]"},
		{0xfe00, "[none]"}, // bits outside the header's flags
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#x: %q, want %q", uint16(tt.f), got, tt.want)
		}
	}
	if !(wire.TCPFlagSYN | wire.TCPFlagACK).Has(wire.TCPFlagACK) || wire.TCPFlagSYN.Has(wire.TCPFlagSYN|wire.TCPFlagACK) {
		t.Error("Has")
	}
}

// Every control bit, AE included, survives encode and parse at its RFC 9293
// position, and the reserved bits stay zero.
func TestTCPFlagsRoundTrip(t *testing.T) {
	for i := range 9 {
		fl := wire.TCPFlags(1) << i
		f := wire.TCPFields{Flags: fl}
		b := make([]byte, f.Len())
		f.Encode(b)
		seg, err := wire.ParseTCP(b)
		if err != nil {
			t.Fatal(err)
		}
		if seg.Flags() != fl || seg.Reserved() != 0 {
			t.Errorf("flag %v: parsed %v, reserved %d, bytes %x", fl, seg.Flags(), seg.Reserved(), b[12:14])
		}
	}
	// Header positions: CWR is the top bit of byte 13, AE the low bit of byte 12.
	b := make([]byte, 20)
	f := wire.TCPFields{Flags: wire.TCPFlagCWR | wire.TCPFlagAE}
	f.Encode(b)
	if b[12] != 0x51 || b[13] != 0x80 {
		t.Errorf("bytes 12-13 %x, want 5180", b[12:14])
	}
	// Reserved bits set by a peer are reported apart and kept out of Flags.
	b[12] |= 0x0e
	seg, _ := wire.ParseTCP(b)
	if seg.Reserved() != 7 || seg.Flags() != wire.TCPFlagCWR|wire.TCPFlagAE {
		t.Errorf("reserved %d flags %v", seg.Reserved(), seg.Flags())
	}
}

func TestTCPRoundTrip(t *testing.T) {
	for _, c := range transportTCPCases {
		for _, pair := range [][2]string{{"198.51.100.7", "203.0.113.9"}, {"2001:db8::a", "2001:db8::b"}} {
			src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
			b := transportTCP(c.f, c.payload, src, dst)
			seg, err := wire.ParseTCP(b)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			f := c.f
			if seg.SrcPort() != f.SrcPort || seg.DstPort() != f.DstPort || seg.Seq() != f.Seq || seg.Ack() != f.Ack ||
				seg.Flags() != f.Flags || seg.Window() != f.Window || seg.Urgent() != f.Urgent ||
				!bytes.Equal(seg.Payload(), c.payload) || seg.HeaderLen()%4 != 0 {
				t.Errorf("%s: parsed %x", c.name, b)
			}
			opts, err := seg.Options()
			if err != nil || opts != f.Options {
				t.Errorf("%s: options %+v, %v; want %+v", c.name, opts, err, f.Options)
			}
			if !seg.ChecksumValid(src, dst) {
				t.Errorf("%s over %v: checksum does not verify", c.name, src)
			}
		}
	}
}

func TestTCPAllocs(t *testing.T) {
	b := transportHex(t, tcpKernelCaptures[2].hex)
	src, dst := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	out := make([]byte, 128)
	f := wire.TCPFields{SrcPort: 1, DstPort: 2, Flags: wire.TCPFlagSYN, Options: transportSynOptions, PayloadLen: 10}
	n := testing.AllocsPerRun(100, func() {
		seg, err := wire.ParseTCP(b)
		if err != nil || !seg.ChecksumValid(src, dst) {
			t.Fatal("parse failed")
		}
		if _, err := seg.Options(); err != nil {
			t.Fatal(err)
		}
		it := seg.OptionIter()
		for it.Next() {
		}
		f.Encode(out)
		f.SetChecksum(out, src, dst)
	})
	if n != 0 {
		t.Errorf("%v allocations per parse+build", n)
	}
}

func FuzzParseTCP(f *testing.F) {
	for _, c := range tcpKernelCaptures {
		f.Add(transportHex(f, c.hex))
	}
	for _, c := range transportTCPCases {
		f.Add(transportTCP(c.f, c.payload, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")))
	}
	f.Add([]byte("\x00\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x60\x02\x00\x00\x00\x00\x00\x00\x1e\x04\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := wire.ParseTCP(b)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) || we.Proto != "tcp" || we.Field == "" {
				t.Fatalf("error %v is not a *wire.Error naming a tcp field", err)
			}
			return
		}
		hl := seg.HeaderLen()
		if hl < wire.TCPMinHeaderLen || hl > wire.TCPMaxHeaderLen || hl > len(b) || int(seg.DataOffset())*4 != hl ||
			len(seg.OptionBytes())+len(seg.Payload()) != len(b)-wire.TCPMinHeaderLen {
			t.Fatalf("header length %d of %d bytes", hl, len(b))
		}
		_ = seg.Flags().String()
		_ = seg.Reserved()
		_ = seg.Checksum()
		_ = seg.ChecksumValid(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"))

		// The iterator and the parser agree, and each yields bytes
		// inside the option space.
		it := seg.OptionIter()
		count := 0
		for it.Next() {
			count++
			if len(it.Data()) > len(seg.OptionBytes())-2 {
				t.Fatalf("option %d data of %d bytes", it.Kind(), len(it.Data()))
			}
		}
		opts, optErr := seg.Options()
		if optErr != nil {
			var we *wire.Error
			if !errors.As(optErr, &we) || we.Proto != "tcp" || we.Field == "" {
				t.Fatalf("option error %v is not a *wire.Error naming the option", optErr)
			}
		}
		if (it.Err() != nil) && optErr == nil {
			t.Fatalf("iterator failed (%v) but the parser did not", it.Err())
		}
		if count > wire.TCPMaxOptionsLen/2 {
			t.Fatalf("%d options in %d bytes", count, len(seg.OptionBytes()))
		}
		_ = opts.WindowShift()

		// Re-encoding what was parsed gives the same options back,
		// except SACK blocks that no longer fit beside the rest.
		fl := wire.TCPFields{
			SrcPort: seg.SrcPort(), DstPort: seg.DstPort(), Seq: seg.Seq(), Ack: seg.Ack(),
			Flags: seg.Flags(), Window: seg.Window(), Urgent: seg.Urgent(), Options: opts,
			PayloadLen: len(seg.Payload()),
		}
		out := make([]byte, fl.Len()+len(seg.Payload()))
		fl.Encode(out)
		copy(out[fl.Len():], seg.Payload())
		src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		fl.SetChecksum(out, src, dst)
		seg2, err := wire.ParseTCP(out)
		if err != nil {
			t.Fatalf("re-encoded segment does not parse: %v", err)
		}
		opts2, err := seg2.Options()
		if err != nil {
			t.Fatalf("re-encoded options do not parse: %v\n%x", err, seg2.OptionBytes())
		}
		if len(opts2.SACK()) < len(opts.SACK()) {
			room := 8 // one more block
			if len(opts2.SACK()) == 0 {
				room = 4 + 8 // NOP, NOP, kind, length and a block
			}
			if fl.Options.Len()+room <= wire.TCPMaxOptionsLen {
				t.Fatalf("dropped SACK blocks with room to spare: %+v", opts)
			}
			opts2.SACKBlocks, opts2.NumSACKBlocks = opts.SACKBlocks, opts.NumSACKBlocks
		}
		if opts2 != opts {
			t.Fatalf("options\n%+v re-encoded as\n%+v", opts, opts2)
		}
		if !seg2.ChecksumValid(src, dst) || seg2.Flags() != seg.Flags() || seg2.Seq() != seg.Seq() ||
			!bytes.Equal(seg2.Payload(), seg.Payload()) || seg2.HeaderLen()%4 != 0 {
			t.Fatalf("re-encoded segment differs: %x", out)
		}
	})
}
