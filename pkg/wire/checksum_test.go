package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

// referenceChecksum is the textbook RFC 1071 loop, the oracle for the fast one.
func referenceChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
}

func TestChecksumRealIPv4Header(t *testing.T) {
	// An IPv4 header captured from a Linux ping (checksum b861 in place).
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := Checksum(h, 0); got != 0xffff {
		t.Fatalf("sum over a valid header = %#04x, want 0xffff", got)
	}
	h[10], h[11] = 0, 0
	if got := ^Checksum(h, 0); got != 0xb861 {
		t.Fatalf("computed checksum = %#04x, want 0xb861", got)
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 9100)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= 300; n++ {
		for _, init := range []uint16{0, 1, 0xfffe, 0xffff} {
			if got, want := Checksum(buf[:n], init), referenceChecksum(buf[:n], init); got != want {
				t.Fatalf("len %d initial %#x: got %#04x want %#04x", n, init, got, want)
			}
		}
	}
	for _, n := range []int{1499, 1500, 9000, 9100} {
		if got, want := Checksum(buf[:n], 0), referenceChecksum(buf[:n], 0); got != want {
			t.Fatalf("len %d: got %#04x want %#04x", n, got, want)
		}
	}
	// All-ones data exercises the end-around carries hardest.
	ones := make([]byte, 4096)
	for i := range ones {
		ones[i] = 0xff
	}
	if got, want := Checksum(ones, 0xffff), referenceChecksum(ones, 0xffff); got != want {
		t.Fatalf("all ones: got %#04x want %#04x", got, want)
	}
}

func TestChecksumPiecesCombine(t *testing.T) {
	b := []byte("the quick brown fox jumps over the lazy dog!")
	whole := Checksum(b, 0)
	for cut := 0; cut <= len(b); cut += 2 {
		if got := Checksum(b[cut:], Checksum(b[:cut], 0)); got != whole {
			t.Fatalf("cut at %d: %#04x != %#04x", cut, got, whole)
		}
		if got := ChecksumCombine(Checksum(b[:cut], 0), Checksum(b[cut:], 0)); got != whole {
			t.Fatalf("combine at %d: %#04x != %#04x", cut, got, whole)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	// Compare with the pseudo-header laid out in bytes and summed.
	src4, dst4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.200")
	ph := append(append(src4.AsSlice(), dst4.AsSlice()...), 0, 17, 0x05, 0xdc)
	if got, want := PseudoHeaderChecksum(17, src4, dst4, 1500), referenceChecksum(ph, 0); got != want {
		t.Fatalf("ipv4: got %#04x want %#04x", got, want)
	}
	src6, dst6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::ffff:1")
	ph = append(append(src6.AsSlice(), dst6.AsSlice()...), 0, 1, 0x00, 0x10, 0, 0, 0, 58)
	if got, want := PseudoHeaderChecksum(58, src6, dst6, 0x10010), referenceChecksum(ph, 0); got != want {
		t.Fatalf("ipv6: got %#04x want %#04x", got, want)
	}
}

func TestChecksumUpdateRFC1624(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 40)
	for trial := 0; trial < 2000; trial++ {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		binary.BigEndian.PutUint16(b[10:], 0)
		binary.BigEndian.PutUint16(b[10:], ^Checksum(b, 0))
		at := 2 * r.IntN(20)
		if at == 10 {
			continue
		}
		old := binary.BigEndian.Uint16(b[at:])
		nw := uint16(r.Uint32())
		if trial%7 == 0 {
			nw = ^old // the change that trips RFC 1141's formula
		}
		hc := ChecksumUpdate(binary.BigEndian.Uint16(b[10:]), old, nw)
		binary.BigEndian.PutUint16(b[at:], nw)
		binary.BigEndian.PutUint16(b[10:], hc)
		if got := Checksum(b, 0); got != 0xffff {
			t.Fatalf("trial %d: sum after incremental update = %#04x", trial, got)
		}
	}
	// ChecksumUpdateBytes on a 4-byte address rewrite.
	hdr := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(hdr[10:], ^Checksum(hdr, 0))
	newSrc := []byte{192, 168, 7, 9}
	hc := ChecksumUpdateBytes(binary.BigEndian.Uint16(hdr[10:]), hdr[12:16], newSrc)
	copy(hdr[12:16], newSrc)
	binary.BigEndian.PutUint16(hdr[10:], hc)
	if got := Checksum(hdr, 0); got != 0xffff {
		t.Fatalf("address rewrite: sum = %#04x", got)
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint16(0))
	f.Add([]byte{0xff}, uint16(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, init uint16) {
		if got, want := Checksum(b, init), referenceChecksum(b, init); got != want {
			t.Fatalf("len %d: got %#04x want %#04x", len(b), got, want)
		}
	})
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500, 9000, 65535} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Checksum(buf, 0)
			}
		})
	}
}
