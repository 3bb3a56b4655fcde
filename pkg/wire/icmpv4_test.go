package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Captured ICMP errors (lab in ethernet_test.go; a third namespace behind
// 10.77.0.2 as router, 10.77.9.0/24 with MTU 1000).
const (
	// ping -t1 10.77.9.9 through a router with no route to it: Net Unreachable.
	v4capNetUnreach = "02000000000a02000000000b080045c00070d659000040018ed70a4d00020a4d" +
		"00010300fcff000000004500005417514000010144b50a4d00010a4d09090800" +
		"e2e12bbc000136bc066b00000000e76606000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// ping 10.77.5.5 via a router whose next hop (10.77.0.3) is on our link: Redirect Host.
	v4capRedirect = "02000000000a02000000000b080045c00070d672000040018ebe0a4d00020a4d" +
		"00010501f0ae0a4d0003450000549b9a40003f01866f0a4d00010a4d05050800" +
		"bbb22bbf000137bc066b000000000d9306000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// UDP "hello" to port 9: Port Unreachable quoting the whole datagram.
	v4capPortUnreach = "02000000000a02000000000b080045c0003dd6b8000040018eab0a4d00020a4d" +
		"00010303d7e00000000045000021e6fe400040113f310a4d00010a4d0002cc78" +
		"0009000d14bb68656c6c6f"
	// ping -t1 through a router: TTL exceeded in transit.
	v4capTimeExceeded = "02000000000a02000000000b080045c000700687000040015eaa0a4d00020a4d" +
		"00010b00f4ff000000004500005427bf40000101344e0a4d00010a4d09020800" +
		"17462f6b000152bc066b000000008f530a000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	// ping -M do -s 1200 towards a 1000-byte MTU link: Fragmentation Needed, MTU 1000, 548 bytes quoted.
	v4capFragNeeded = "02000000000a02000000000b080045c002400688000040015cd90a4d00020a4d" +
		"0001030473e1000003e8450004cc00004000400118950a4d00010a4d09020800" +
		"68e32f6c000152bc066b000000002d6b0a000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839" +
		"3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859" +
		"5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879" +
		"7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899" +
		"9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9" +
		"babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9" +
		"dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9" +
		"fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839" +
		"3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859" +
		"5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879" +
		"7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899" +
		"9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9" +
		"babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9" +
		"dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9" +
		"fafbfcfdfeff0001020304050607"
	// ping to an absent host behind a router: Host Unreachable after ARP fails.
	v4capHostUnreach = "02000000000a02000000000b080045c000700740000040015df10a4d00020a4d" +
		"00010301fcfe0000000045000054623940003f01bbcc0a4d00010a4d09090800" +
		"64202f6d000152bc066b0000000042770a000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
)

func v4icmpOf(t testing.TB, frame string) []byte {
	h, err := ParseIPv4(v4ipOf(t, frame))
	if err != nil {
		t.Fatal(err)
	}
	return h.Payload()
}

func TestParseICMPv4Echo(t *testing.T) {
	for _, tt := range []struct {
		frame string
		typ   uint8
		csum  uint16
	}{
		{v4capEcho, ICMPv4Echo, 0xd0bc},
		{v4capEchoReply, ICMPv4EchoReply, 0xd8bc},
	} {
		m, err := ParseICMPv4(v4icmpOf(t, tt.frame))
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != tt.typ || m.Code() != 0 || m.Checksum() != tt.csum || !m.ChecksumValid() {
			t.Errorf("type %d code %d csum %#x valid %v", m.Type(), m.Code(), m.Checksum(), m.ChecksumValid())
		}
		if m.Ident() != 0x2b49 || m.Seq() != 1 || len(m.Data()) != 56 || m.RestOfHeader() != 0x2b490001 {
			t.Errorf("ident %#x seq %d data %d", m.Ident(), m.Seq(), len(m.Data()))
		}
		if m.IsError() || m.Original() != nil || m.Extensions() != nil || m.OriginalLen() != 0 {
			t.Error("an echo reports error-message parts")
		}
		// Back-to-front rebuild: data in place, header encoded before it.
		b := append(make([]byte, ICMPv4HeaderLen), m.Data()...)
		f := ICMPv4Fields{Type: m.Type(), Ident: m.Ident(), Seq: m.Seq(), PayloadLen: len(m.Data())}
		f.Encode(b)
		if !bytes.Equal(b, m) {
			t.Errorf("rebuilt %x, want %x", b[:8], []byte(m[:8]))
		}
		if n := testing.AllocsPerRun(100, func() { f.Encode(b) }); n != 0 {
			t.Errorf("Encode allocates %v times", n)
		}
	}
}

func TestParseICMPv4Errors(t *testing.T) {
	tests := []struct {
		name        string
		frame       string
		typ, code   uint8
		check       func(t *testing.T, m ICMPv4)
		origLen     int
		quotedDst   string
		quotedProto uint8
	}{
		{"net unreachable", v4capNetUnreach, ICMPv4DestUnreachable, ICMPv4NetUnreachable, nil, 84, "10.77.9.9", IPProtoICMP},
		{"host unreachable", v4capHostUnreach, ICMPv4DestUnreachable, ICMPv4HostUnreachable, nil, 84, "10.77.9.9", IPProtoICMP},
		{"port unreachable", v4capPortUnreach, ICMPv4DestUnreachable, ICMPv4PortUnreachable, nil, 33, "10.77.0.2", IPProtoUDP},
		{"fragmentation needed", v4capFragNeeded, ICMPv4DestUnreachable, ICMPv4FragmentationNeeded, func(t *testing.T, m ICMPv4) {
			if m.NextHopMTU() != 1000 {
				t.Errorf("NextHopMTU = %d, want 1000", m.NextHopMTU())
			}
		}, 548, "10.77.9.2", IPProtoICMP},
		{"time exceeded", v4capTimeExceeded, ICMPv4TimeExceeded, ICMPv4TTLExceeded, nil, 84, "10.77.9.2", IPProtoICMP},
		{"redirect host", v4capRedirect, ICMPv4Redirect, ICMPv4RedirectHost, func(t *testing.T, m ICMPv4) {
			if m.Gateway() != v4addr("10.77.0.3") {
				t.Errorf("Gateway = %v, want 10.77.0.3", m.Gateway())
			}
		}, 84, "10.77.5.5", IPProtoICMP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseICMPv4(v4icmpOf(t, tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != tt.typ || m.Code() != tt.code || !m.ChecksumValid() || !m.IsError() {
				t.Fatalf("type %d code %d valid %v", m.Type(), m.Code(), m.ChecksumValid())
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			if len(m.Original()) != tt.origLen || m.OriginalLen() != 0 || m.Extensions() != nil {
				t.Errorf("Original %d bytes (attr %d), want %d", len(m.Original()), m.OriginalLen(), tt.origLen)
			}
			q, err := ParseIPv4Quoted(m.Original())
			if err != nil {
				t.Fatal(err)
			}
			if q.Src() != v4addr("10.77.0.1") || q.Dst() != v4addr(tt.quotedDst) || q.Protocol() != tt.quotedProto || !q.ChecksumValid() {
				t.Errorf("quoted %v → %v proto %d", q.Src(), q.Dst(), q.Protocol())
			}
			// Rebuild the header over the quoted bytes: identical message.
			f := ICMPv4Fields{Type: m.Type(), Code: m.Code(), MTU: m.NextHopMTU(), Gateway: m.Gateway(), PayloadLen: len(m.Data())}
			b := append(make([]byte, ICMPv4HeaderLen), m.Data()...)
			f.Encode(b)
			if !bytes.Equal(b, m) {
				t.Errorf("rebuilt header %x, want %x", b[:8], []byte(m[:8]))
			}
		})
	}
}

func TestICMPv4BuiltErrors(t *testing.T) {
	quote := v4ipOf(t, v4capRR)[:68] // header with options and 8 bytes of ICMP
	for _, tt := range []struct {
		name string
		f    ICMPv4Fields
		rest [4]byte
	}{
		{"parameter problem at the RR pointer", ICMPv4Fields{Type: ICMPv4ParamProblem, Pointer: 23}, [4]byte{23, 0, 0, 0}},
		{"source quench", ICMPv4Fields{Type: ICMPv4SourceQuench, Rest: [4]byte{9, 9, 9, 9}}, [4]byte{9, 9, 9, 9}},
		{"reassembly time exceeded", ICMPv4Fields{Type: ICMPv4TimeExceeded, Code: ICMPv4ReassemblyExceeded}, [4]byte{}},
		{"communication prohibited", ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4CommProhibited}, [4]byte{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.PayloadLen = len(quote)
			b := append(make([]byte, ICMPv4HeaderLen), quote...)
			tt.f.Encode(b)
			m, err := ParseICMPv4(b)
			if err != nil {
				t.Fatal(err)
			}
			if !m.ChecksumValid() || [4]byte(m[4:8]) != tt.rest || !bytes.Equal(m.Original(), quote) {
				t.Errorf("message %x", []byte(m[:8]))
			}
			if tt.f.Type == ICMPv4ParamProblem && m.Pointer() != 23 {
				t.Errorf("Pointer = %d", m.Pointer())
			}
		})
	}
}

func TestICMPv4RFC4884(t *testing.T) {
	// Time Exceeded with a 128-byte original datagram (length 32 words) and
	// an extension structure after it (RFC 4884 §4.1, §7).
	orig := make([]byte, 128)
	copy(orig, v4ipOf(t, v4capEcho))
	ext := []byte{0x20, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 42}
	b := append(append(make([]byte, ICMPv4HeaderLen), orig...), ext...)
	f := ICMPv4Fields{Type: ICMPv4TimeExceeded, OriginalLen: 128, PayloadLen: len(orig) + len(ext)}
	f.Encode(b)
	m, _ := ParseICMPv4(b)
	if m.OriginalLen() != 128 || !bytes.Equal(m.Original(), orig) || !bytes.Equal(m.Extensions(), ext) || !m.ChecksumValid() {
		t.Errorf("attr %d original %d ext %x", m.OriginalLen(), len(m.Original()), m.Extensions())
	}
	// A length attribute past the end is ignored: all of it is the original.
	m[5] = 255
	if len(m.Original()) != len(orig)+len(ext) || m.Extensions() != nil {
		t.Errorf("oversized attribute: original %d ext %d", len(m.Original()), len(m.Extensions()))
	}
	// Redirect has no length attribute: byte 5 is part of the gateway.
	f = ICMPv4Fields{Type: ICMPv4Redirect, Gateway: v4addr("10.0.0.128"), PayloadLen: 28}
	b = make([]byte, 36)
	f.Encode(b)
	if m, _ := ParseICMPv4(b); m.OriginalLen() != 0 || len(m.Original()) != 28 {
		t.Errorf("redirect original %d", len(m.Original()))
	}
}

func TestParseICMPv4Truncated(t *testing.T) {
	_, err := ParseICMPv4(v4icmpOf(t, v4capEcho)[:7])
	v4wantErr(t, err, ErrTruncated, "header")
}

func FuzzParseICMPv4(f *testing.F) {
	for _, s := range []string{v4capEcho, v4capEchoReply, v4capNetUnreach, v4capRedirect, v4capPortUnreach, v4capTimeExceeded, v4capHostUnreach} {
		f.Add(v4icmpOf(f, s))
	}
	f.Add([]byte{11, 0, 0, 0, 0, 1, 0, 0, 0x45, 0, 0, 20, 0, 0, 0, 0, 1, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x20, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICMPv4(b)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *Error", err)
			}
			return
		}
		_, _, _, _ = m.Checksum(), m.ChecksumValid(), m.RestOfHeader(), m.Data()
		_, _, _, _ = m.Ident(), m.Seq(), m.NextHopMTU(), m.Pointer()
		orig, ext := m.Original(), m.Extensions()
		if m.IsError() && len(orig)+len(ext) != len(m)-ICMPv4HeaderLen {
			t.Fatalf("original %d + extensions %d != body %d", len(orig), len(ext), len(m)-ICMPv4HeaderLen)
		}
		if q, err := ParseIPv4Quoted(orig); err == nil {
			_, _ = q.Src(), q.Payload()
		}
		// Re-encode the header over the same body.
		fl := ICMPv4Fields{Type: m.Type(), Code: m.Code(), Ident: m.Ident(), Seq: m.Seq(), MTU: m.NextHopMTU(),
			Gateway: m.Gateway(), Pointer: m.Pointer(), OriginalLen: m.OriginalLen(), Rest: [4]byte(m[4:8]), PayloadLen: len(m.Data())}
		out := append([]byte(nil), m...)
		fl.Encode(out)
		if !ICMPv4(out).ChecksumValid() {
			t.Fatal("re-encoded checksum invalid")
		}
		// Unused bytes of the rest of header are zeroed; the fields survive.
		if r, _ := ParseICMPv4(out); r.Type() != m.Type() || r.Code() != m.Code() || !bytes.Equal(r.Original(), orig) {
			t.Fatalf("re-encoded %x from %x", out[:8], b[:8])
		}
	})
}
