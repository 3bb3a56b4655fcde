package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/stackbox/stackbox/pkg/wire"
)

// Datagrams the Linux kernel sent between two network namespaces joined by
// veth (checksum offload off), captured with tshark: "hello" to port 7353.
var udpKernelCaptures = []struct {
	name     string
	src, dst string
	hex      string
	srcPort  uint16
	checksum uint16
}{
	{"ipv4", "10.77.0.1", "10.77.0.2", "949d1cb9000df60e68656c6c6f", 38045, 0xf60e},
	{"ipv6", "fd00:77::1", "fd00:77::2", "d8021cb9000dcc5368656c6c6f", 55298, 0xcc53},
}

func TestUDPKernelCaptures(t *testing.T) {
	for _, c := range udpKernelCaptures {
		t.Run(c.name, func(t *testing.T) {
			b := transportHex(t, c.hex)
			src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
			u, err := wire.ParseUDP(b)
			if err != nil {
				t.Fatal(err)
			}
			if u.SrcPort() != c.srcPort || u.DstPort() != 7353 || u.Length() != 13 || u.Checksum() != c.checksum {
				t.Errorf("ports %d→%d length %d checksum %#04x", u.SrcPort(), u.DstPort(), u.Length(), u.Checksum())
			}
			if string(u.Payload()) != "hello" {
				t.Errorf("payload %q", u.Payload())
			}
			if !u.HasChecksum() || !u.ChecksumValid(src, dst) {
				t.Error("kernel checksum does not verify")
			}
			if u.ChecksumValid(dst, netip.MustParseAddr(c.dst).Next()) {
				t.Error("checksum verifies against the wrong pseudo-header")
			}
			// Every single-bit flip must be caught.
			for i := range len(b) * 8 {
				if i/8 == 4 || i/8 == 5 {
					continue // the length field: a flip makes a different datagram
				}
				bad := bytes.Clone(b)
				bad[i/8] ^= 1 << (i % 8)
				if bu, err := wire.ParseUDP(bad); err == nil && bu.ChecksumValid(src, dst) {
					t.Fatalf("bit %d flipped still verifies", i)
				}
			}

			// Rebuilding it with our builder gives the kernel's bytes.
			f := wire.UDPFields{SrcPort: c.srcPort, DstPort: 7353, PayloadLen: 5}
			out := make([]byte, f.Len()+5)
			f.Encode(out)
			copy(out[f.Len():], "hello")
			f.SetChecksum(out, src, dst)
			if !bytes.Equal(out, b) {
				t.Errorf("rebuilt\n%x, kernel sent\n%x", out, b)
			}
		})
	}
}

func TestParseUDPTrimsToLength(t *testing.T) {
	// Ethernet pads short frames; the bytes after the length are not payload.
	b := append(transportHex(t, udpKernelCaptures[0].hex), 0, 0, 0, 0, 0)
	u, err := wire.ParseUDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 13 || string(u.Payload()) != "hello" {
		t.Errorf("view %x, payload %q", []byte(u), u.Payload())
	}
	if !u.ChecksumValid(netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")) {
		t.Error("padding entered the checksum")
	}
}

func TestParseUDPErrors(t *testing.T) {
	tests := []struct {
		name  string
		hex   string
		kind  error
		field string
	}{
		{"empty", "", wire.ErrTruncated, "header"},
		{"short header", "949d1cb9000df6", wire.ErrTruncated, "header"},
		{"length below header", "949d1cb90007f60e", wire.ErrMalformed, "length"},
		{"length zero (jumbogram)", "949d1cb90000f60e", wire.ErrMalformed, "length"},
		{"length beyond buffer", "949d1cb9000ef60e68656c6c6f", wire.ErrTruncated, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.ParseUDP(transportHex(t, tt.hex))
			transportCheckError(t, err, "udp", tt.field, tt.kind)
		})
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	f := wire.UDPFields{SrcPort: 1, DstPort: 2, PayloadLen: 3}
	b := make([]byte, f.Len()+3)
	f.Encode(b)
	copy(b[8:], "abc")
	u, err := wire.ParseUDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if u.HasChecksum() {
		t.Fatal("Encode left a checksum")
	}
	if !u.ChecksumValid(v4a, v4b) {
		t.Error("no checksum over IPv4 must be accepted (RFC 768)")
	}
	if u.ChecksumValid(v6a, v6b) {
		t.Error("no checksum over IPv6 must be rejected (RFC 8200 §8.1)")
	}
}

// A checksum that computes to zero is sent as 0xffff (RFC 768), which
// still verifies, and is never mistaken for "no checksum".
func TestUDPChecksumZeroSentAsFFFF(t *testing.T) {
	for _, pair := range [][2]string{{"192.0.2.1", "192.0.2.2"}, {"2001:db8::1", "2001:db8::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		f := wire.UDPFields{SrcPort: 1000, DstPort: 2000, PayloadLen: 2}
		b := make([]byte, f.Len()+2)
		f.Encode(b)
		// Choose the payload word that brings the sum to 0xffff, whose
		// complement is zero.
		s := wire.Checksum(b, wire.PseudoHeaderChecksum(wire.IPProtoUDP, src, dst, uint32(len(b))))
		b[8], b[9] = byte(^s>>8), byte(^s)
		f.SetChecksum(b, src, dst)
		u, err := wire.ParseUDP(b)
		if err != nil {
			t.Fatal(err)
		}
		if u.Checksum() != 0xffff || !u.HasChecksum() || !u.ChecksumValid(src, dst) {
			t.Errorf("%v: checksum %#04x, valid %v", src, u.Checksum(), u.ChecksumValid(src, dst))
		}
	}
}

func TestUDPRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 1472, 65527} {
		for _, pair := range [][2]string{{"198.51.100.7", "203.0.113.9"}, {"fe80::1", "ff02::fb"}} {
			src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
			f := wire.UDPFields{SrcPort: 5353, DstPort: 53, PayloadLen: n}
			b := make([]byte, f.Len()+n)
			f.Encode(b)
			for i := range n {
				b[f.Len()+i] = byte(i * 7)
			}
			f.SetChecksum(b, src, dst)
			u, err := wire.ParseUDP(b)
			if err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
			if u.SrcPort() != 5353 || u.DstPort() != 53 || int(u.Length()) != 8+n || len(u.Payload()) != n {
				t.Errorf("%d bytes: ports %d→%d length %d", n, u.SrcPort(), u.DstPort(), u.Length())
			}
			if !u.ChecksumValid(src, dst) {
				t.Errorf("%d bytes over %v: checksum does not verify", n, src)
			}
		}
	}
}

func TestUDPEncodePanicsOnOversizePayload(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("PayloadLen 65528 did not panic")
		}
	}()
	f := wire.UDPFields{PayloadLen: 65528}
	f.Encode(make([]byte, 8))
}

func TestUDPAllocs(t *testing.T) {
	b := transportHex(t, udpKernelCaptures[0].hex)
	src, dst := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	out := make([]byte, 64)
	n := testing.AllocsPerRun(100, func() {
		u, err := wire.ParseUDP(b)
		if err != nil || !u.ChecksumValid(src, dst) {
			t.Fatal("parse failed")
		}
		f := wire.UDPFields{SrcPort: 1, DstPort: 2, PayloadLen: 5}
		f.Encode(out)
		f.SetChecksum(out, src, dst)
	})
	if n != 0 {
		t.Errorf("%v allocations per parse+build", n)
	}
}

func FuzzParseUDP(f *testing.F) {
	for _, c := range udpKernelCaptures {
		f.Add(transportHex(f, c.hex), c.name == "ipv6")
	}
	f.Add([]byte{0, 1, 0, 2, 0, 8, 0, 0}, false)
	f.Add([]byte{0, 1, 0, 2, 0, 7, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		u, err := wire.ParseUDP(b)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) || we.Proto != "udp" || we.Field == "" {
				t.Fatalf("error %v is not a *wire.Error naming a udp field", err)
			}
			return
		}
		if int(u.Length()) != len(u) || len(u) < wire.UDPHeaderLen || len(u) > len(b) {
			t.Fatalf("view of %d bytes, length field %d, buffer %d", len(u), u.Length(), len(b))
		}
		src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		if v6 {
			src, dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		}
		_ = u.ChecksumValid(src, dst)
		_ = u.HasChecksum()
		// Rebuilding from the accessors gives back the same datagram
		// with a valid checksum.
		fl := wire.UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort(), PayloadLen: len(u.Payload())}
		out := make([]byte, fl.Len()+len(u.Payload()))
		fl.Encode(out)
		copy(out[fl.Len():], u.Payload())
		fl.SetChecksum(out, src, dst)
		u2, err := wire.ParseUDP(out)
		if err != nil || !bytes.Equal(out[:6], u[:6]) || !u2.ChecksumValid(src, dst) || !u2.HasChecksum() {
			t.Fatalf("rebuild %x of %x: %v", out, []byte(u), err)
		}
	})
}

// Shared helpers of the transport tests.

func transportHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// transportCheckError asserts that err is a *wire.Error of proto, naming field,
// of the given kind.
func transportCheckError(t *testing.T, err error, proto, field string, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s %q %v", proto, field, kind)
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v is %T, not *wire.Error", err, err)
	}
	if !errors.Is(err, kind) || we.Proto != proto || we.Field != field {
		t.Errorf("error %q: proto %q field %q kind %v, want %q %q %v", err, we.Proto, we.Field, we.Kind, proto, field, kind)
	}
}
