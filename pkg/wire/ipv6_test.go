package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// ipv6Cap decodes a captured frame and returns what follows its 14-byte
// Ethernet header.
func ipv6Cap(t testing.TB, frame string) []byte {
	t.Helper()
	b, err := hex.DecodeString(frame)
	if err != nil {
		t.Fatalf("bad hex in capture: %v", err)
	}
	if len(b) < 14 || b[12] != 0x86 || b[13] != 0xdd {
		t.Fatalf("capture is not an IPv6 Ethernet frame")
	}
	return b[14:]
}

// ipv6Addr parses an address literal known to be good.
func ipv6Addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// ipv6WantErr asserts that err is a *Error of the given kind whose text
// names field.
func ipv6WantErr(t *testing.T, err error, kind error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v naming %q", kind, field)
	}
	var we *Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v is %T, not *Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("error %q does not name %q", err, field)
	}
}

// Frames captured from Linux 6.18 with tshark: two network namespaces
// joined by a veth pair, the second a bridge with an MLD querier, forwarding,
// radvd and a few routes (unreachable, mtu 1280, via an on-link neighbour).
// Each is a whole Ethernet frame in hex; ipv6Cap strips the Ethernet header.
const (
	// bridge querier: MLDv2 general query, HbH router alert, max resp 10000 ms, QRV 2, QQIC 125
	ipv6capMLDv2Query = "" +
		"33330000000102000000000b86dd600000000024000120010db800010000000000000000000bff020000000000000000" +
		"0000000000013a00050200000000820027532710000000000000000000000000000000000000027d0000"
	// MLDv2 report from ::, HbH router alert, 5 records of 0 sources
	ipv6capMLDv2Report = "" +
		"33330000001602000000000b86dd600000000074000100000000000000000000000000000000ff020000000000000000" +
		"0000000000163a000502000001008f0063ac0000000504000000ff0200000000000000000001ff00000004000000ff02" +
		"00000000000000000001ff00000b04000000ff02000000000000000000000000006a04000000ff050000000000000000" +
		"00000000000204000000ff020000000000000000000000000002"
	// DAD neighbour solicitation from :: with a nonce option (RFC 7527, type 14)
	ipv6capNSDAD = "" +
		"3333ff00000a02000000000a86dd6000000000203aff00000000000000000000000000000000ff020000000000000000" +
		"0001ff00000a870090f90000000020010db800010000000000000000000a0e018575a6df8182"
	// unsolicited NA (ndisc_notify), O flag, target link-layer address
	ipv6capNAUnsolicited = "" +
		"33330000000102000000000a86dd6000000000203aff20010db800010000000000000000000aff020000000000000000" +
		"0000000000018800f90d2000000020010db800010000000000000000000a020102000000000a"
	// router solicitation with source link-layer address
	ipv6capRS = "" +
		"33330000000202000000000a86dd6000000000103afffe80000000000000000000fffe00000aff020000000000000000" +
		"00000000000285007b1a00000000010102000000000a"
	// radvd RA: M/O, lifetime 12 s, prefix 2001:db8:1::/64, RDNSS, DNSSL, MTU 1450, SLLA
	ipv6capRA = "" +
		"33330000000102000000000b86dd6000a81600803afffe80000000000000000000fffe00000bff020000000000000000" +
		"0000000000018600ba8b40c0000c0000000000000000030440c000015180000038400000000020010db8000100000000" +
		"000000000000190300000000025820010db80001000000000000000000531f05000000000258076578616d706c650363" +
		"6f6d00036c6162076578616d706c65036f726700000005010000000005aa010102000000000b"
	// address resolution NS with source link-layer address
	ipv6capNS = "" +
		"3333ff00000b02000000000a86dd6000000000203aff20010db800010000000000fffe00000aff020000000000000000" +
		"0001ff00000b87001d010000000020010db800010000000000000000000b010102000000000a"
	// solicited NA: R, S, O flags, target link-layer address
	ipv6capNA = "" +
		"02000000000a02000000000b86dd6000000000203aff20010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a88000b4ae000000020010db800010000000000000000000b020102000000000b"
	// ping -6 -p 5354: echo request, 56 data bytes
	ipv6capEchoRequest = "" +
		"02000000000b02000000000a86dd6003920800403a4020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b80000c321b0f000156bb066b0000000015fd080000000000535453545354535453545354535453545354" +
		"53545354535453545354535453545354535453545354"
	// its echo reply
	ipv6capEchoReply = "" +
		"02000000000a02000000000b86dd60087b4400403a4020010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a81000b321b0f000156bb066b0000000015fd080000000000535453545354535453545354535453545354" +
		"53545354535453545354535453545354535453545354"
	// ping -s 3000: first fragment (offset 0, M), ICMPv6 header inside
	ipv6capFrag0 = "" +
		"02000000000b02000000000a86dd6003920805802c4020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b3a000001a126a4598000a1851b11000156bb066b00000000171009000000000010111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243444546474849" +
		"4a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879" +
		"7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9" +
		"aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9" +
		"dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203040506070809" +
		"0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839" +
		"3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869" +
		"6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899" +
		"9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9" +
		"cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9" +
		"fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829" +
		"2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859" +
		"5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889" +
		"8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9" +
		"babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9" +
		"eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819" +
		"1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243444546474849" +
		"4a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879" +
		"7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9" +
		"aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9" +
		"dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203040506070809" +
		"0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839" +
		"3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869" +
		"6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899" +
		"9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9" +
		"cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9" +
		"fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829" +
		"2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859" +
		"5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f"
	// second fragment (offset 1400, M)
	ipv6capFrag1 = "" +
		"02000000000b02000000000a86dd6003920805802c4020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b3a000579a126a459707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091" +
		"92939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1" +
		"c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1" +
		"f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051" +
		"52535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081" +
		"82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1" +
		"b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1" +
		"e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011" +
		"12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041" +
		"42434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071" +
		"72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1" +
		"a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1" +
		"d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001" +
		"02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031" +
		"32333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061" +
		"62636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091" +
		"92939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1" +
		"c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1" +
		"f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051" +
		"52535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081" +
		"82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1" +
		"b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1" +
		"e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011" +
		"12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041" +
		"42434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071" +
		"72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1" +
		"a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1" +
		"d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7"
	// last fragment (offset 2800)
	ipv6capFrag2 = "" +
		"02000000000b02000000000a86dd6003920800d82c4020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b3a000af0a126a459e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203040506070809" +
		"0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839" +
		"3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869" +
		"6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899" +
		"9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
	// destination unreachable, no route (unreachable route in the peer)
	ipv6capNoRoute = "" +
		"02000000000a02000000000b86dd600e1ee300703a4020010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a01002e08000000006005dbb800403a4020010db800010000000000fffe00000a20010db8dead00000000" +
		"0000000000018000aa291b13000156bb066b000000005c22090000000000101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f3031323334353637"
	// time exceeded, hop limit (ping -t 1 through the peer)
	ipv6capTimeExceeded = "" +
		"02000000000a02000000000b86dd60090ec600703a4020010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a03006b970000000060079c6600403a0120010db800010000000000fffe00000a20010db8000500000000" +
		"0000000000018000d8bd1b15000156bb066b000000000c35090000000000101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f3031323334353637"
	// parameter problem, unrecognised next header 253, pointer 6
	ipv6capParamProblem = "" +
		"02000000000a02000000000b86dd600bd46d00383a4020010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a0401f53000000006600af3ef0008fd4020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b0000000000000000"
	// destination unreachable, port unreachable (UDP to port 9)
	ipv6capPortUnreachable = "" +
		"02000000000a02000000000b86dd600268bd003d3a4020010db800010000000000000000000b20010db8000100000000" +
		"00fffe00000a0104bbb800000000600cddf2000d114020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b9fdd0009000d5aa768656c6c6f"
	// UDP with a hop-by-hop header (router alert, PadN) and destination options (type 0x1e, Pad1, Pad1)
	ipv6capUDPWithOptions = "" +
		"02000000000b02000000000a86dd60048d4c001c004020010db800010000000000fffe00000a20010db8000100000000" +
		"00000000000b3c0005020000010011001e02aabb000094d80009000c2c886f707473"
	// MLDv2 report: allow new sources ff3e::1234 from 2001:db8:1::b
	ipv6capMLDv2ReportSources = "" +
		"33330000001602000000000a86dd6000000000340001fe80000000000000000000fffe00000aff020000000000000000" +
		"0000000000163a000502000001008f002fbb0000000105000001ff3e000000000000000000000000123420010db80001" +
		"0000000000000000000b"
	// MLDv1 report for ff05::1:3 (force_mld_version=1)
	ipv6capMLDv1Report = "" +
		"33330001000302000000000a86dd6000000000200001fe80000000000000000000fffe00000aff050000000000000000" +
		"0000000100033a000502000001008300810e00000000ff050000000000000000000000010003"
	// MLDv2 group-and-source-specific query for ff3e::1234
	ipv6capMLDv2QuerySources = "" +
		"33330000123402000000000b86dd600000000034000120010db800010000000000000000000bff3e0000000000000000" +
		"0000000012343a000502000000008200f8c203e80000ff3e0000000000000000000000001234027d000120010db80001" +
		"0000000000000000000b"
	// MLDv1 done for ff05::1:3
	ipv6capMLDv1Done = "" +
		"33330000000202000000000a86dd6000000000200001fe80000000000000000000fffe00000aff020000000000000000" +
		"0000000000023a000502000001008400801300000000ff050000000000000000000000010003"
	// packet too big, MTU 1280 (route with mtu 1280 in the peer)
	ipv6capPacketTooBig = "" +
		"02000000000a02000000000b86dd6007b62904d83a4020010db800010000000000000000000b20010db8000100000000" +
		"00000000000a02004a1c0000050060008d8705803a3f20010db800010000000000000000000a20010db8000700000000" +
		"0000000000018000e7701f7a00018dbb066b000000001491040000000000101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051" +
		"52535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081" +
		"82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1" +
		"b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1" +
		"e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011" +
		"12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041" +
		"42434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071" +
		"72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1" +
		"a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1" +
		"d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001" +
		"02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031" +
		"32333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061" +
		"62636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091" +
		"92939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1" +
		"c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1" +
		"f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051" +
		"52535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081" +
		"82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1" +
		"b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1" +
		"e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011" +
		"12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041" +
		"42434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071" +
		"72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	// redirect: target fe80::c, destination 2001:db8:5::2, TLLA, redirected header
	ipv6capRedirect = "" +
		"02000000000a02000000000b86dd6000000000a03afffe80000000000000000000fffe00000b20010db8000100000000" +
		"00000000000a8900946d00000000fe80000000000000000000000000000c20010db80005000000000000000000020201" +
		"02000000000c040e0000000000006009e7ef00403a4020010db800010000000000000000000a20010db8000500000000" +
		"0000000000028000310b1f8900018ebb066b0000000073720c0000000000101112131415161718191a1b1c1d1e1f2021" +
		"22232425262728292a2b2c2d2e2f3031323334353637"
)

func TestParseIPv6Captured(t *testing.T) {
	tests := []struct {
		name       string
		frame      string
		src, dst   string
		next       uint8
		hopLimit   uint8
		payloadLen int
	}{
		{"echo request", ipv6capEchoRequest, "2001:db8:1::ff:fe00:a", "2001:db8:1::b", IPProtoICMPv6, 64, 64},
		{"dad ns", ipv6capNSDAD, "::", "ff02::1:ff00:a", IPProtoICMPv6, 255, 32},
		{"ra", ipv6capRA, "fe80::ff:fe00:b", "ff02::1", IPProtoICMPv6, 255, 128},
		{"mld report", ipv6capMLDv2Report, "::", "ff02::16", IPProtoHopByHop, 1, 116},
		{"fragment", ipv6capFrag0, "2001:db8:1::ff:fe00:a", "2001:db8:1::b", IPProtoFragment, 64, 1408},
		{"udp with options", ipv6capUDPWithOptions, "2001:db8:1::ff:fe00:a", "2001:db8:1::b", IPProtoHopByHop, 64, 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ipv6Cap(t, tt.frame)
			h, err := ParseIPv6(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version() != 6 || h.TrafficClass() != 0 || h.DSCP() != 0 || h.ECN() != 0 {
				t.Errorf("version/tc = %d/%d", h.Version(), h.TrafficClass())
			}
			if h.Src() != ipv6Addr(tt.src) || h.Dst() != ipv6Addr(tt.dst) {
				t.Errorf("src/dst = %v/%v, want %s/%s", h.Src(), h.Dst(), tt.src, tt.dst)
			}
			if h.NextHeader() != tt.next || h.HopLimit() != tt.hopLimit || h.PayloadLen() != tt.payloadLen {
				t.Errorf("next/hop/plen = %d/%d/%d, want %d/%d/%d",
					h.NextHeader(), h.HopLimit(), h.PayloadLen(), tt.next, tt.hopLimit, tt.payloadLen)
			}
			if len(h.Payload()) != tt.payloadLen || len(h.Header()) != IPv6HeaderLen {
				t.Errorf("payload %d bytes, header %d", len(h.Payload()), len(h.Header()))
			}
		})
	}
}

func TestParseIPv6FlowLabelAndTrim(t *testing.T) {
	// The RS from the capture, with a traffic class, a flow label and
	// Ethernet-style trailing padding added.
	b := append(ipv6Cap(t, ipv6capRS), 0, 0, 0, 0)
	b[0], b[1], b[2], b[3] = 0x6b, 0x8a, 0xbc, 0xde // tc 0xb8 (DSCP 46, ECN 0), flow 0xabcde
	h, err := ParseIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.TrafficClass() != 0xb8 || h.DSCP() != 46 || h.ECN() != 0 || h.FlowLabel() != 0xabcde {
		t.Errorf("tc %#x dscp %d ecn %d flow %#x", h.TrafficClass(), h.DSCP(), h.ECN(), h.FlowLabel())
	}
	if len(h) != len(b)-4 {
		t.Errorf("view is %d bytes, want the padding trimmed to %d", len(h), len(b)-4)
	}
}

func TestParseIPv6Errors(t *testing.T) {
	good := ipv6Cap(t, ipv6capEchoRequest)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// A jumbogram: payload length 0, hop-by-hop header with a Jumbo Payload option.
	jumbo := mod(func(b []byte) []byte {
		b[4], b[5], b[6] = 0, 0, IPProtoHopByHop
		return append(b[:40], IPProtoICMPv6, 0, IPv6OptJumboPayload, 4, 0, 1, 0, 0)
	})
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"empty", nil, ErrTruncated, "header"},
		{"short header", good[:39], ErrTruncated, "header"},
		{"version 4", mod(func(b []byte) []byte { b[0] = 0x45; return b }), ErrMalformed, "version"},
		{"payload length past buffer", good[:len(good)-1], ErrTruncated, "payload length"},
		{"jumbogram", jumbo, ErrUnsupported, "payload length"},
		{"zero payload with hop-by-hop", mod(func(b []byte) []byte {
			b[4], b[5], b[6] = 0, 0, IPProtoHopByHop
			return b[:40]
		}), ErrMalformed, "payload length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseIPv6(tt.b)
			ipv6WantErr(t, err, tt.kind, tt.field)
			if h != nil {
				t.Errorf("got a view with the error")
			}
		})
	}
}

func TestParseIPv6Quoted(t *testing.T) {
	// The echo request quoted in the captured time exceeded message is
	// whole; cut it and ParseIPv6 fails where ParseIPv6Quoted does not.
	m, err := ParseICMPv6(ipv6Cap(t, ipv6capTimeExceeded)[40:])
	if err != nil {
		t.Fatal(err)
	}
	orig := m.Original()
	q, err := ParseIPv6Quoted(orig[:48])
	if err != nil {
		t.Fatal(err)
	}
	if q.PayloadLen() != 64 || len(q.Payload()) != 8 || q.Dst() != ipv6Addr("2001:db8:5::1") || q.HopLimit() != 1 {
		t.Errorf("quoted: plen %d, %d payload bytes, dst %v, hop limit %d", q.PayloadLen(), len(q.Payload()), q.Dst(), q.HopLimit())
	}
	if _, err := ParseIPv6(orig[:48]); !errors.Is(err, ErrTruncated) {
		t.Errorf("ParseIPv6 of a cut packet: %v, want truncated", err)
	}
	_, err = ParseIPv6Quoted(orig[:39])
	ipv6WantErr(t, err, ErrTruncated, "header")
}

func TestIPv6FieldsRoundTrip(t *testing.T) {
	f := IPv6Fields{
		TrafficClass: 0xb9, FlowLabel: 0xfedcb, NextHeader: IPProtoUDP, HopLimit: 17,
		Src: ipv6Addr("2001:db8::1"), Dst: ipv6Addr("ff02::1:ff00:1234"), PayloadLen: 3,
	}
	b := make([]byte, f.Len()+f.PayloadLen)
	f.Encode(b)
	h, err := ParseIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	got := IPv6Fields{TrafficClass: h.TrafficClass(), FlowLabel: h.FlowLabel(), NextHeader: h.NextHeader(),
		HopLimit: h.HopLimit(), Src: h.Src(), Dst: h.Dst(), PayloadLen: h.PayloadLen()}
	if got != f {
		t.Errorf("round trip: got %+v, want %+v", got, f)
	}
	// The captured header re-encodes to the same bytes.
	c := ipv6Cap(t, ipv6capEchoRequest)
	ch, _ := ParseIPv6(c)
	g := IPv6Fields{TrafficClass: ch.TrafficClass(), FlowLabel: ch.FlowLabel(), NextHeader: ch.NextHeader(),
		HopLimit: ch.HopLimit(), Src: ch.Src(), Dst: ch.Dst(), PayloadLen: ch.PayloadLen()}
	var out [IPv6HeaderLen]byte
	g.Encode(out[:])
	if !bytes.Equal(out[:], c[:40]) {
		t.Errorf("re-encoded header\n%x, captured\n%x", out, c[:40])
	}
	// The zero Addr is written as ::.
	z := IPv6Fields{NextHeader: IPProtoNoNext, Src: netip.Addr{}, Dst: ipv6Addr("::1")}
	z.Encode(out[:])
	if zh, _ := ParseIPv6(out[:]); zh.Src() != netip.IPv6Unspecified() {
		t.Errorf("zero Src encoded as %v", zh.Src())
	}
	if n := testing.AllocsPerRun(100, func() { f.Encode(b) }); n != 0 {
		t.Errorf("Encode allocates %v times", n)
	}
}

func TestIPv6FieldsPanics(t *testing.T) {
	for name, f := range map[string]IPv6Fields{
		"payload length": {PayloadLen: 65536},
		"flow label":     {FlowLabel: 1 << 20},
		"ipv4 address":   {Src: netip.MustParseAddr("192.0.2.1")},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			var b [IPv6HeaderLen]byte
			f.Encode(b[:])
		})
	}
}

func TestIPv6MulticastHelpers(t *testing.T) {
	if got := IPv6MulticastMAC(ipv6Addr("ff02::1:ff00:a")); got != (MAC{0x33, 0x33, 0xff, 0, 0, 0x0a}) {
		t.Errorf("IPv6MulticastMAC = %v", got)
	}
	if got := IPv6SolicitedNode(ipv6Addr("2001:db8:1::ff:fe00:a")); got != ipv6Addr("ff02::1:ff00:a") {
		t.Errorf("IPv6SolicitedNode = %v", got)
	}
	// The captured DAD probe went to the solicited-node group of its target.
	m, _ := ParseICMPv6(ipv6Cap(t, ipv6capNSDAD)[40:])
	ns, _ := m.NeighborSolicit()
	if h, _ := ParseIPv6(ipv6Cap(t, ipv6capNSDAD)); IPv6SolicitedNode(ns.Target()) != h.Dst() {
		t.Errorf("solicited-node of %v is %v, packet went to %v", ns.Target(), IPv6SolicitedNode(ns.Target()), h.Dst())
	}
}

// ipv6ExerciseExt walks the extension chain of an IPv6 payload and calls
// every accessor of every typed view, for the fuzz tests.
func ipv6ExerciseExt(t *testing.T, next uint8, payload []byte) {
	it := NewIPv6ExtIter(next, payload)
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		if e.Offset < 0 || e.Offset+len(e.Raw) > len(payload) || len(e.Raw) < 2 {
			t.Fatalf("header at %d, %d bytes, outside the %d-byte payload", e.Offset, len(e.Raw), len(payload))
		}
		_ = e.NextHeader()
		switch e.Type {
		case IPProtoHopByHop, IPProtoDestOpts:
			o, err := ParseIPv6Options(e.Raw)
			if err != nil {
				continue
			}
			_, _ = o.NextHeader(), o.Len()
			o.RouterAlert()
			oi := o.Options()
			for opt, ok := oi.Next(); ok; opt, ok = oi.Next() {
				_, _ = opt.Action(), opt.MayChange()
				opt.RouterAlert()
				opt.JumboPayloadLen()
			}
		case IPProtoRouting:
			r, err := ParseIPv6Routing(e.Raw)
			if err != nil {
				t.Fatalf("walk yielded a routing header ParseIPv6Routing rejects: %v", err)
			}
			_, _, _, _, _ = r.NextHeader(), r.Len(), r.RoutingType(), r.SegmentsLeft(), r.Data()
		case IPProtoFragment:
			f, err := ParseIPv6Fragment(e.Raw)
			if err != nil {
				t.Fatalf("walk yielded a fragment header ParseIPv6Fragment rejects: %v", err)
			}
			_, _, _, _ = f.NextHeader(), f.FragmentOffset(), f.More(), f.ID()
		}
	}
	_ = it.Offset()
	if it.Err() == nil {
		if _, off := it.Upper(); off > len(payload) {
			t.Fatalf("upper layer at %d past the %d-byte payload", off, len(payload))
		}
	}
}

func FuzzParseIPv6(f *testing.F) {
	for _, c := range []string{ipv6capEchoRequest, ipv6capFrag0, ipv6capFrag1, ipv6capUDPWithOptions,
		ipv6capMLDv2Report, ipv6capRA, ipv6capParamProblem} {
		f.Add(ipv6Cap(f, c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (IPv6, error){ParseIPv6, ParseIPv6Quoted} {
			h, err := parse(b)
			if err != nil {
				continue
			}
			_, _, _, _, _ = h.Version(), h.TrafficClass(), h.DSCP(), h.ECN(), h.FlowLabel()
			_, _, _, _, _ = h.PayloadLen(), h.NextHeader(), h.HopLimit(), h.Src(), h.Dst()
			_, _ = h.Header(), h.Payload()
			ipv6ExerciseExt(t, h.NextHeader(), h.Payload())
			// Every option iterator also runs on raw bytes, unvalidated.
			oi := IPv6OptionIter{b: h.Payload(), off: 0}
			for _, ok := oi.Next(); ok; _, ok = oi.Next() {
			}
		}
	})
}
