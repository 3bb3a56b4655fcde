package wire_test

import (
	"bytes"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

func TestParseTCPOptions(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want wire.TCPOptions
	}{
		{"none", "", wire.TCPOptions{}},
		{"padding only", "01010101", wire.TCPOptions{}},
		{"EOL ends the list", "0000020405b4", wire.TCPOptions{}},
		{"junk after EOL is padding", "020405b400ffff01", wire.TCPOptions{HasMSS: true, MSS: 1460}},
		{"mss", "020405b4", wire.TCPOptions{HasMSS: true, MSS: 1460}},
		{"window scale raw above 14", "01030310", wire.TCPOptions{HasWindowScale: true, WindowScale: 16}},
		{"sack-permitted", "01010402", wire.TCPOptions{SACKPermitted: true}},
		{"timestamps", "0101080a0000000100000002", wire.TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2}},
		{"one sack block", "0101050a0000006400000190", wire.TCPOptions{
			SACKBlocks: [4]wire.TCPSACKBlock{{100, 400}}, NumSACKBlocks: 1}},
		{"four sack blocks", "01010522" + "0000000100000002" + "0000000300000004" + "0000000500000006" + "0000000700000008",
			wire.TCPOptions{SACKBlocks: [4]wire.TCPSACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}, NumSACKBlocks: 4}},
		{"later option wins", "020405b4020402180000", wire.TCPOptions{HasMSS: true, MSS: 536}},
		{"unknown options skipped", "1e0400001c0401f4" + "020405b4", wire.TCPOptions{HasMSS: true, MSS: 1460}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParseTCPOptions(transportHex(t, tt.hex))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseTCPOptionsErrors(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		kind    error
		field   string
		partial wire.TCPOptions // what was parsed before the fault
	}{
		{"length 0", "020405b4" + "0300", wire.ErrMalformed, "window scale option", wire.TCPOptions{HasMSS: true, MSS: 1460}},
		{"length 1", "1e01", wire.ErrMalformed, "option 30", wire.TCPOptions{}},
		{"length byte missing", "01010102", wire.ErrTruncated, "MSS option", wire.TCPOptions{}},
		{"runs past header", "020c05b4", wire.ErrTruncated, "MSS option", wire.TCPOptions{}},
		{"unknown runs past header", "0402" + "fe10abcd", wire.ErrTruncated, "option 254", wire.TCPOptions{SACKPermitted: true}},
		{"mss length 3", "020305", wire.ErrMalformed, "MSS option", wire.TCPOptions{}},
		{"mss length 6", "020605b40000", wire.ErrMalformed, "MSS option", wire.TCPOptions{}},
		{"window scale length 4", "0304030a", wire.ErrMalformed, "window scale option", wire.TCPOptions{}},
		{"sack-permitted length 3", "040300", wire.ErrMalformed, "SACK-permitted option", wire.TCPOptions{}},
		{"timestamps length 8", "0808000000010000", wire.ErrMalformed, "timestamps option", wire.TCPOptions{}},
		{"sack no blocks", "0502", wire.ErrMalformed, "SACK option", wire.TCPOptions{}},
		{"sack partial block", "050600000001", wire.ErrMalformed, "SACK option", wire.TCPOptions{}},
		{"sack five blocks", "052a" + "00000001000000020000000300000004000000050000000600000007000000080000000900000010",
			wire.ErrMalformed, "SACK option", wire.TCPOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParseTCPOptions(transportHex(t, tt.hex))
			transportCheckError(t, err, "tcp", tt.field, tt.kind)
			if got != tt.partial {
				t.Errorf("partial result %+v, want %+v", got, tt.partial)
			}
			// The iterator reports the structural faults too.
			it := wire.NewTCPOptionIter(transportHex(t, tt.hex))
			for it.Next() {
			}
			if it.Err() != nil {
				transportCheckError(t, it.Err(), "tcp", tt.field, tt.kind)
			}
		})
	}
}

func TestTCPOptionIter(t *testing.T) {
	// MSS, NOP, an MPTCP option (30), a TFO cookie (34), NOP, EOL, junk.
	b := transportHex(t, "020405b4"+"01"+"1e0400ab"+"220601020304"+"01"+"00"+"0505")
	type opt struct {
		kind uint8
		data string
	}
	var got []opt
	it := wire.NewTCPOptionIter(b)
	for it.Next() {
		got = append(got, opt{it.Kind(), string(it.Data())})
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	want := []opt{{2, "\x05\xb4"}, {30, "\x00\xab"}, {34, "\x01\x02\x03\x04"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("option %d: %q, want %q", i, got[i], want[i])
		}
	}
	if it.Next() || it.Kind() != 0 || it.Data() != nil {
		t.Error("iterator yields after the end")
	}
}

func TestTCPOptionsWindowShift(t *testing.T) {
	for _, tt := range []struct {
		o    wire.TCPOptions
		want uint8
	}{
		{wire.TCPOptions{}, 0},
		{wire.TCPOptions{HasWindowScale: true, WindowScale: 7}, 7},
		{wire.TCPOptions{HasWindowScale: true, WindowScale: 14}, 14},
		{wire.TCPOptions{HasWindowScale: true, WindowScale: 15}, 14}, // RFC 7323 §2.3
		{wire.TCPOptions{HasWindowScale: true, WindowScale: 255}, 14},
	} {
		if got := tt.o.WindowShift(); got != tt.want {
			t.Errorf("%+v: shift %d, want %d", tt.o, got, tt.want)
		}
	}
}

func TestTCPOptionsEncode(t *testing.T) {
	blocks := [4]wire.TCPSACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	tests := []struct {
		name string
		o    wire.TCPOptions
		hex  string
	}{
		{"none", wire.TCPOptions{}, ""},
		{"mss", wire.TCPOptions{HasMSS: true, MSS: 1460}, "020405b4"},
		{"linux syn", transportSynOptions, "020405b4" + "0402080a0102030400000000" + "01030307"},
		{"syn without timestamps", wire.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasWindowScale: true, WindowScale: 7},
			"020405b4" + "01010402" + "01030307"},
		{"timestamps without sack-permitted", wire.TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6},
			"0101080a0000000500000006"},
		{"four blocks alone", wire.TCPOptions{SACKBlocks: blocks, NumSACKBlocks: 4},
			"01010522" + "0000000100000002000000030000000400000005000000060000000700000008"},
		// RFC 2018 §3: with timestamps only three blocks fit.
		{"timestamps leave room for three", wire.TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, SACKBlocks: blocks, NumSACKBlocks: 4},
			"0101080a0000000500000006" + "0101051a" + "000000010000000200000003000000040000000500000006"},
		{"every option leaves room for two", wire.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true,
			HasTimestamps: true, TSVal: 5, HasWindowScale: true, WindowScale: 2, SACKBlocks: blocks, NumSACKBlocks: 4},
			"020405b4" + "0402080a0000000500000000" + "01030302" + "01010512" + "00000001000000020000000300000004"},
		{"block count clamped", wire.TCPOptions{SACKBlocks: blocks, NumSACKBlocks: 9},
			"01010522" + "0000000100000002000000030000000400000005000000060000000700000008"},
		{"negative block count", wire.TCPOptions{SACKBlocks: blocks, NumSACKBlocks: -1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := transportHex(t, tt.hex)
			if tt.o.Len() != len(want) || tt.o.Len()%4 != 0 || tt.o.Len() > wire.TCPMaxOptionsLen {
				t.Fatalf("Len %d, want %d", tt.o.Len(), len(want))
			}
			// Encode writes exactly Len bytes.
			b := bytes.Repeat([]byte{0xee}, len(want)+4)
			tt.o.Encode(b)
			if !bytes.Equal(b[:len(want)], want) || !bytes.Equal(b[len(want):], []byte{0xee, 0xee, 0xee, 0xee}) {
				t.Errorf("encoded\n%x, want\n%x", b, want)
			}
			// And it parses back to the options that were sent.
			got, err := wire.ParseTCPOptions(want)
			if err != nil {
				t.Fatal(err)
			}
			sent := tt.o
			n := len(got.SACK())
			sent.SACKBlocks, sent.NumSACKBlocks = [4]wire.TCPSACKBlock{}, n
			copy(sent.SACKBlocks[:], tt.o.SACK()[:n])
			if got != sent {
				t.Errorf("parsed back\n%+v, want\n%+v", got, sent)
			}
		})
	}
}

// The whole header is a multiple of 4 bytes and its data offset matches.
func TestTCPFieldsEncodeLength(t *testing.T) {
	f := wire.TCPFields{SrcPort: 1, DstPort: 2, Flags: wire.TCPFlagSYN, Options: transportSynOptions}
	b := bytes.Repeat([]byte{0xee}, f.Len()+1)
	f.Encode(b)
	if f.Len() != 40 || b[12]>>4 != 10 || b[40] != 0xee {
		t.Errorf("Len %d, data offset %d, byte after header %#x", f.Len(), b[12]>>4, b[40])
	}
}
