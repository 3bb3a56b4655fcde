package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// v4capARPPadded is arping's request for 10.77.0.2, padded to 58 bytes.
const v4capARPPadded = "ffffffffffff02000000000a0806000108000604000102000000000a0a4d0001" +
	"0000000000000a4d000200000000000000000000000000000000"

func TestParseARPCaptured(t *testing.T) {
	a1 := MAC{2, 0, 0, 0, 0, 0xa}
	b1 := MAC{2, 0, 0, 0, 0, 0xb}
	tests := []struct {
		name              string
		frame             string
		op                uint16
		sha, tha          MAC
		spa, tpa          string
		gratuitous, probe bool
	}{
		{"kernel request", v4capARPRequest, ARPRequest, a1, ZeroMAC, "10.77.0.1", "10.77.0.2", false, false},
		{"kernel reply", v4capARPReply, ARPReply, b1, a1, "10.77.0.2", "10.77.0.1", false, false},
		{"arping padded request", v4capARPPadded, ARPRequest, a1, ZeroMAC, "10.77.0.1", "10.77.0.2", false, false},
		{"arping -U gratuitous", v4capARPGratuitous, ARPRequest, a1, BroadcastMAC, "10.77.0.1", "10.77.0.1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEthernet(v4hex(t, tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseARP(e.Payload())
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != ARPLen {
				t.Errorf("view is %d bytes, want padding trimmed to %d", len(a), ARPLen)
			}
			if a.Op() != tt.op || a.SenderMAC() != tt.sha || a.TargetMAC() != tt.tha ||
				a.SenderIP() != v4addr(tt.spa) || a.TargetIP() != v4addr(tt.tpa) {
				t.Errorf("got op %d %v/%v → %v/%v", a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
			}
			if a.IsGratuitous() != tt.gratuitous || a.IsProbe() != tt.probe {
				t.Errorf("IsGratuitous %v IsProbe %v, want %v %v", a.IsGratuitous(), a.IsProbe(), tt.gratuitous, tt.probe)
			}
			f := ARPFields{Op: a.Op(), SenderMAC: a.SenderMAC(), SenderIP: a.SenderIP(), TargetMAC: a.TargetMAC(), TargetIP: a.TargetIP()}
			b := make([]byte, f.Len())
			f.Encode(b)
			if !bytes.Equal(b, a) {
				t.Errorf("rebuilt %x, want %x", b, []byte(a))
			}
		})
	}
}

func TestARPProbeAndZeroAddr(t *testing.T) {
	// RFC 5227 probe: sender IP 0.0.0.0, written from the zero Addr.
	f := ARPFields{Op: ARPRequest, SenderMAC: MAC{2, 0, 0, 0, 0, 1}, TargetIP: v4addr("::ffff:10.0.0.9")}
	b := make([]byte, ARPLen)
	f.Encode(b)
	a, err := ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsProbe() || a.IsGratuitous() || a.SenderIP() != netip.IPv4Unspecified() || a.TargetIP() != v4addr("10.0.0.9") {
		t.Errorf("probe: IsProbe %v IsGratuitous %v sender %v target %v", a.IsProbe(), a.IsGratuitous(), a.SenderIP(), a.TargetIP())
	}
	if n := testing.AllocsPerRun(100, func() { f.Encode(b) }); n != 0 {
		t.Errorf("Encode allocates %v times", n)
	}
}

func TestParseARPErrors(t *testing.T) {
	good := v4hex(t, v4capARPRequest)[EthernetHeaderLen:]
	with := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"truncated", good[:27], ErrTruncated, "packet"},
		{"htype 6 (IEEE 802)", with(1, 6), ErrUnsupported, "hardware type"},
		{"ptype IPv6", with(2, 0x86), ErrUnsupported, "protocol type"},
		{"hlen 8", with(4, 8), ErrUnsupported, "hardware length"},
		{"plen 16", with(5, 16), ErrUnsupported, "protocol length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseARP(tt.b)
			v4wantErr(t, err, tt.kind, tt.field)
		})
	}
}

func FuzzParseARP(f *testing.F) {
	for _, s := range []string{v4capARPRequest, v4capARPReply, v4capARPGratuitous} {
		f.Add(v4hex(f, s)[EthernetHeaderLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseARP(b)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *Error", err)
			}
			return
		}
		_, _ = a.IsGratuitous(), a.IsProbe()
		fl := ARPFields{Op: a.Op(), SenderMAC: a.SenderMAC(), SenderIP: a.SenderIP(), TargetMAC: a.TargetMAC(), TargetIP: a.TargetIP()}
		out := make([]byte, fl.Len())
		fl.Encode(out)
		if !bytes.Equal(out, b[:ARPLen]) {
			t.Fatalf("re-encoded %x, input %x", out, b[:ARPLen])
		}
	})
}
