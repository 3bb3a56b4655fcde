package wire

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
)

func TestNDPCapturedRouterAdvert(t *testing.T) {
	m, src, dst := ipv6CapICMPv6(t, ipv6capRA)
	if !m.ChecksumValid(src, dst) {
		t.Error("checksum does not verify")
	}
	ra, ok := m.RouterAdvert()
	if !ok {
		t.Fatal("not a router advertisement")
	}
	if ra.CurHopLimit() != 64 || !ra.Managed() || !ra.Other() || ra.RouterPreference() != 0 ||
		ra.RouterLifetime() != 12 || ra.ReachableTime() != 0 || ra.RetransTimer() != 0 {
		t.Errorf("hop limit %d M %v O %v prf %d lifetime %d reachable %d retrans %d", ra.CurHopLimit(), ra.Managed(),
			ra.Other(), ra.RouterPreference(), ra.RouterLifetime(), ra.ReachableTime(), ra.RetransTimer())
	}
	var types []uint8
	it := ra.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		types = append(types, o.Type)
		switch o.Type {
		case NDPOptPrefixInfo:
			p, ok := o.PrefixInfo()
			if !ok || p.Prefix() != netip.MustParsePrefix("2001:db8:1::/64") || p.PrefixLen() != 64 || !p.OnLink() ||
				!p.Autonomous() || p.ValidLifetime() != 86400 || p.PreferredLifetime() != 14400 {
				t.Errorf("prefix %v L %v A %v valid %d preferred %d", p.Prefix(), p.OnLink(), p.Autonomous(), p.ValidLifetime(), p.PreferredLifetime())
			}
		case NDPOptRDNSS:
			r, ok := o.RDNSS()
			if !ok || r.Lifetime() != 600 || r.NumAddrs() != 1 || r.Addr(0) != ipv6Addr("2001:db8:1::53") {
				t.Errorf("RDNSS %v lifetime %d, %d addrs", ok, r.Lifetime(), r.NumAddrs())
			}
		case NDPOptDNSSL:
			d, ok := o.DNSSL()
			names, err := d.AppendDomains(nil)
			if !ok || err != nil || d.Lifetime() != 600 || !slices.Equal(names, []string{"example.com", "lab.example.org"}) {
				t.Errorf("DNSSL %v lifetime %d names %q err %v", ok, d.Lifetime(), names, err)
			}
		case NDPOptMTU:
			if v, ok := o.MTU(); !ok || v != 1450 {
				t.Errorf("MTU %d %v", v, ok)
			}
		case NDPOptSourceLinkAddr:
			if a, ok := o.LinkAddr(); !ok || a != (MAC{2, 0, 0, 0, 0, 0x0b}) {
				t.Errorf("source link-layer address %v %v", a, ok)
			}
		}
		// An option answers only to its own accessor.
		if _, ok := o.MTU(); ok != (o.Type == NDPOptMTU) {
			t.Errorf("option %d answers MTU", o.Type)
		}
		if _, ok := o.LinkAddr(); ok != (o.Type == NDPOptSourceLinkAddr) {
			t.Errorf("option %d answers LinkAddr", o.Type)
		}
	}
	if it.Err() != nil || !slices.Equal(types, []uint8{NDPOptPrefixInfo, NDPOptRDNSS, NDPOptDNSSL, NDPOptMTU, NDPOptSourceLinkAddr}) {
		t.Errorf("options %v, err %v", types, it.Err())
	}
}

func TestNDPCapturedNeighbor(t *testing.T) {
	macA, macB := MAC{2, 0, 0, 0, 0, 0x0a}, MAC{2, 0, 0, 0, 0, 0x0b}
	tests := []struct {
		name      string
		frame     string
		typ       uint8
		target    string
		r, s, o   bool
		linkType  uint8 // 0: none expected
		link      MAC
		extraType uint8 // another option expected (the DAD nonce), or 0
	}{
		{"rs", ipv6capRS, ICMPv6RouterSolicit, "", false, false, false, NDPOptSourceLinkAddr, macA, 0},
		{"dad ns", ipv6capNSDAD, ICMPv6NeighborSolicit, "2001:db8:1::a", false, false, false, 0, MAC{}, 14},
		{"ns", ipv6capNS, ICMPv6NeighborSolicit, "2001:db8:1::b", false, false, false, NDPOptSourceLinkAddr, macA, 0},
		{"solicited na", ipv6capNA, ICMPv6NeighborAdvert, "2001:db8:1::b", true, true, true, NDPOptTargetLinkAddr, macB, 0},
		{"unsolicited na", ipv6capNAUnsolicited, ICMPv6NeighborAdvert, "2001:db8:1::a", false, false, true, NDPOptTargetLinkAddr, macA, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src, dst := ipv6CapICMPv6(t, tt.frame)
			if !m.ChecksumValid(src, dst) || m.Type() != tt.typ {
				t.Fatalf("type %d, checksum valid %v", m.Type(), m.ChecksumValid(src, dst))
			}
			var it NDPOptionIter
			switch tt.typ {
			case ICMPv6RouterSolicit:
				rs, _ := m.RouterSolicit()
				it = rs.Options()
			case ICMPv6NeighborSolicit:
				ns, _ := m.NeighborSolicit()
				if ns.Target() != ipv6Addr(tt.target) {
					t.Errorf("target %v", ns.Target())
				}
				it = ns.Options()
			case ICMPv6NeighborAdvert:
				na, _ := m.NeighborAdvert()
				if na.Target() != ipv6Addr(tt.target) || na.Router() != tt.r || na.Solicited() != tt.s || na.Override() != tt.o {
					t.Errorf("target %v R %v S %v O %v", na.Target(), na.Router(), na.Solicited(), na.Override())
				}
				it = na.Options()
			}
			var gotLink, gotExtra bool
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				switch o.Type {
				case tt.linkType:
					a, ok := o.LinkAddr()
					gotLink = ok && a == tt.link
				case tt.extraType:
					gotExtra = len(o.Raw) == 8
				default:
					t.Errorf("unexpected option %d", o.Type)
				}
			}
			if it.Err() != nil || gotLink != (tt.linkType != 0) || gotExtra != (tt.extraType != 0) {
				t.Errorf("options: link %v extra %v err %v", gotLink, gotExtra, it.Err())
			}
		})
	}
}

func TestNDPCapturedRedirect(t *testing.T) {
	m, src, dst := ipv6CapICMPv6(t, ipv6capRedirect)
	if !m.ChecksumValid(src, dst) {
		t.Error("checksum does not verify")
	}
	r, ok := m.Redirect()
	if !ok || r.Target() != ipv6Addr("fe80::c") || r.Destination() != ipv6Addr("2001:db8:5::2") {
		t.Fatalf("redirect %v: target %v destination %v", ok, r.Target(), r.Destination())
	}
	var redirected []byte
	var tlla MAC
	it := r.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if a, ok := o.LinkAddr(); ok && o.Type == NDPOptTargetLinkAddr {
			tlla = a
		}
		if b, ok := o.RedirectedHeader(); ok {
			redirected = b
		}
	}
	if it.Err() != nil || tlla != (MAC{2, 0, 0, 0, 0, 0x0c}) {
		t.Errorf("target link-layer address %v, err %v", tlla, it.Err())
	}
	h, err := ParseIPv6Quoted(redirected)
	if err != nil || h.Dst() != ipv6Addr("2001:db8:5::2") || h.HopLimit() != 64 {
		t.Errorf("redirected packet: %v, dst %v", err, h.Dst())
	}

	// The builder reproduces the kernel's message.
	f := NDPRedirectFields{Target: r.Target(), Destination: r.Destination(), TargetLinkAddr: tlla, Redirected: redirected[:len(h)]}
	b := make([]byte, f.Len())
	f.Encode(b)
	SetICMPv6Checksum(b, src, dst)
	if !bytes.Equal(b, m) {
		t.Errorf("built redirect\n%x, kernel's\n%x", b, []byte(m))
	}
	// A long packet is cut so the whole redirect fits the minimum MTU.
	f.Redirected = make([]byte, 1500)
	if n := f.Len(); IPv6HeaderLen+n > IPv6MinMTU || n%8 != 0 {
		t.Errorf("redirect with a 1500-byte packet is %d bytes", n)
	}
	b = make([]byte, f.Len())
	f.Encode(b)
	if _, err := ParseICMPv6(b); err != nil {
		t.Error(err)
	}
	// A packet that is not a multiple of 8 long is cut, not padded (as
	// Linux does); under 8 bytes the option is left out.
	for _, c := range []struct{ redirected, optLen int }{{71, 72}, {8, 16}, {7, 0}, {0, 0}} {
		f := NDPRedirectFields{Target: r.Target(), Destination: r.Destination(), Redirected: make([]byte, c.redirected)}
		if got := f.Len() - ndpRedirectLen; got != c.optLen {
			t.Errorf("%d-byte packet: %d-byte option, want %d", c.redirected, got, c.optLen)
		}
	}
}

func TestNDPBuildersMatchKernel(t *testing.T) {
	macA, macB := MAC{2, 0, 0, 0, 0, 0x0a}, MAC{2, 0, 0, 0, 0, 0x0b}
	tests := []struct {
		name  string
		frame string
		f     interface {
			Len() int
			Encode([]byte)
		}
	}{
		{"rs", ipv6capRS, &NDPRouterSolicitFields{SourceLinkAddr: macA}},
		{"ns", ipv6capNS, &NDPNeighborSolicitFields{Target: ipv6Addr("2001:db8:1::b"), SourceLinkAddr: macA}},
		{"na", ipv6capNA, &NDPNeighborAdvertFields{Router: true, Solicited: true, Override: true,
			Target: ipv6Addr("2001:db8:1::b"), TargetLinkAddr: macB}},
		{"unsolicited na", ipv6capNAUnsolicited, &NDPNeighborAdvertFields{Override: true,
			Target: ipv6Addr("2001:db8:1::a"), TargetLinkAddr: macA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src, dst := ipv6CapICMPv6(t, tt.frame)
			b := make([]byte, tt.f.Len())
			for i := range b {
				b[i] = 0xee // Encode must write every byte
			}
			tt.f.Encode(b)
			SetICMPv6Checksum(b, src, dst)
			if !bytes.Equal(b, m) {
				t.Errorf("built\n%x, kernel's\n%x", b, []byte(m))
			}
			if n := testing.AllocsPerRun(50, func() { tt.f.Encode(b) }); n != 0 {
				t.Errorf("Encode allocates %v times", n)
			}
		})
	}
	// Without a link-layer address (DAD, RS from ::) the option is left out.
	ns := NDPNeighborSolicitFields{Target: ipv6Addr("2001:db8:1::a")}
	rs := NDPRouterSolicitFields{}
	if ns.Len() != 24 || rs.Len() != 8 {
		t.Errorf("lengths without link-layer address: %d, %d", ns.Len(), rs.Len())
	}
}

func TestNDPRouterAdvertRoundTrip(t *testing.T) {
	f := NDPRouterAdvertFields{
		CurHopLimit: 64, Managed: true, RouterLifetime: 1800, ReachableTime: 30000, RetransTimer: 1000,
		SourceLinkAddr: MAC{2, 0, 0, 0, 0, 1}, MTU: 1500,
		Prefixes: []NDPPrefixFields{
			{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true, ValidLifetime: 0xffffffff, PreferredLifetime: 3600},
			{Prefix: netip.MustParsePrefix("2001:db8:ff::1/48"), OnLink: true},
		},
		RDNSS: []netip.Addr{ipv6Addr("2001:db8::53"), ipv6Addr("2001:db8::54")}, RDNSSLifetime: 300,
		DNSSL: []string{"example.com.", "a.b.example"}, DNSSLLifetime: 200,
	}
	b := make([]byte, f.Len())
	for i := range b {
		b[i] = 0xee
	}
	f.Encode(b)
	src, dst := ipv6Addr("fe80::1"), ipv6Addr("ff02::1")
	SetICMPv6Checksum(b, src, dst)
	m, err := ParseICMPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	ra, ok := m.RouterAdvert()
	if !ok || !m.ChecksumValid(src, dst) || ra.CurHopLimit() != 64 || !ra.Managed() || ra.Other() ||
		ra.RouterLifetime() != 1800 || ra.ReachableTime() != 30000 || ra.RetransTimer() != 1000 {
		t.Fatalf("header fields wrong: %x", b)
	}
	var got NDPRouterAdvertFields
	got.CurHopLimit, got.Managed, got.RouterLifetime, got.ReachableTime, got.RetransTimer = 64, true, 1800, 30000, 1000
	it := ra.Options()
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if a, ok := o.LinkAddr(); ok {
			got.SourceLinkAddr = a
		}
		if v, ok := o.MTU(); ok {
			got.MTU = v
		}
		if p, ok := o.PrefixInfo(); ok {
			got.Prefixes = append(got.Prefixes, NDPPrefixFields{Prefix: p.Prefix(), OnLink: p.OnLink(),
				Autonomous: p.Autonomous(), ValidLifetime: p.ValidLifetime(), PreferredLifetime: p.PreferredLifetime()})
		}
		if r, ok := o.RDNSS(); ok {
			got.RDNSSLifetime = r.Lifetime()
			for i := range r.NumAddrs() {
				got.RDNSS = append(got.RDNSS, r.Addr(i))
			}
		}
		if d, ok := o.DNSSL(); ok {
			got.DNSSLLifetime = d.Lifetime()
			got.DNSSL, err = d.AppendDomains(nil)
			if err != nil {
				t.Error(err)
			}
		}
	}
	want := f
	want.Prefixes = slices.Clone(f.Prefixes)
	want.Prefixes[1].Prefix = netip.MustParsePrefix("2001:db8:ff::/48") // host bits cleared
	want.DNSSL = []string{"example.com", "a.b.example"}
	if got.SourceLinkAddr != want.SourceLinkAddr || got.MTU != want.MTU || !slices.Equal(got.Prefixes, want.Prefixes) ||
		!slices.Equal(got.RDNSS, want.RDNSS) || got.RDNSSLifetime != want.RDNSSLifetime ||
		!slices.Equal(got.DNSSL, want.DNSSL) || got.DNSSLLifetime != want.DNSSLLifetime {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if n := testing.AllocsPerRun(50, func() { f.Encode(b) }); n != 0 {
		t.Errorf("Encode allocates %v times", n)
	}
}

func TestNDPErrors(t *testing.T) {
	ns := func(opts ...byte) []byte {
		b := make([]byte, 24, 24+len(opts))
		b[0] = ICMPv6NeighborSolicit
		return append(b, opts...)
	}
	tests := []struct {
		name  string
		b     []byte
		kind  error
		field string
	}{
		{"short rs", []byte{ICMPv6RouterSolicit, 0, 0, 0, 0, 0, 0}, ErrTruncated, "router solicitation"},
		{"short ra", make([]byte, 15), ErrTruncated, "router advertisement"},
		{"short ns", ns()[:23], ErrTruncated, "neighbor solicitation"},
		{"short na", append([]byte{ICMPv6NeighborAdvert}, make([]byte, 22)...), ErrTruncated, "neighbor advertisement"},
		{"short redirect", append([]byte{ICMPv6Redirect}, make([]byte, 38)...), ErrTruncated, "redirect"},
		{"code not 0", append([]byte{ICMPv6RouterSolicit, 1}, make([]byte, 6)...), ErrMalformed, "code"},
		{"zero-length option", ns(1, 0, 0, 0, 0, 0, 0, 0), ErrMalformed, "option length"},
		{"zero-length option after a good one", ns(1, 1, 2, 0, 0, 0, 0, 1, 14, 0, 0, 0, 0, 0, 0, 0), ErrMalformed, "option length"},
		{"option past message", ns(1, 2, 2, 0, 0, 0, 0, 1), ErrTruncated, "option length"},
		{"one trailing byte", ns(1), ErrTruncated, "option length"},
	}
	tests[1].b[0] = ICMPv6RouterAdvert
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseICMPv6(tt.b)
			ipv6WantErr(t, err, tt.kind, tt.field)
		})
	}
}

func TestNDPOptionLengthsIgnored(t *testing.T) {
	// Known options with a length their definition does not allow are
	// not decoded (and so ignored), but do not fail the message.
	opts := []byte{
		NDPOptSourceLinkAddr, 2, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, // 16 bytes: not Ethernet
		NDPOptMTU, 2, 0, 0, 0, 0, 5, 0xdc, 0, 0, 0, 0, 0, 0, 0, 0,
		NDPOptRDNSS, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 3+2n violated
		NDPOptPrefixInfo, 1, 64, 0xc0, 0, 0, 0, 0,
		NDPOptDNSSL, 1, 0, 0, 0, 0, 0, 0,
	}
	it := NewNDPOptionIter(opts)
	n := 0
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		n++
		_, a := o.LinkAddr()
		_, b := o.MTU()
		_, c := o.RDNSS()
		_, d := o.PrefixInfo()
		_, e := o.DNSSL()
		if a || b || c || d || e {
			t.Errorf("option %d with a bad length was decoded", o.Type)
		}
	}
	if n != 5 || it.Err() != nil {
		t.Errorf("%d options, err %v", n, it.Err())
	}
	// A DNSSL whose label runs past the option reports it.
	d := NDPDNSSL([]byte{NDPOptDNSSL, 2, 0, 0, 0, 0, 0, 1, 3, 'c', 'o', 'm', 0, 9, 'x', 'y'})
	names, err := d.AppendDomains(nil)
	ipv6WantErr(t, err, ErrTruncated, "dnssl")
	if !slices.Equal(names, []string{"com"}) {
		t.Errorf("names before the error: %q", names)
	}
	d = NDPDNSSL([]byte{NDPOptDNSSL, 2, 0, 0, 0, 0, 0, 1, 64, 'c', 'o', 'm', 0, 0, 0, 0})
	_, err = d.AppendDomains(nil)
	ipv6WantErr(t, err, ErrMalformed, "dnssl")
}
