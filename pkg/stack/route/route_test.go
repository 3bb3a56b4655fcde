package route

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func mustAdd(t *testing.T, tb *Table, r Route) {
	t.Helper()
	if err := tb.Add(r); err != nil {
		t.Fatalf("Add(%v): %v", r, err)
	}
}

func mustAddr(t *testing.T, tb *Table, nic int, a string) {
	t.Helper()
	if err := tb.AddressAdded(nic, pfx(a)); err != nil {
		t.Fatalf("AddressAdded(%d, %s): %v", nic, a, err)
	}
}

// lab builds the table of the compat capture (route.md): vethA (#2) with
// 10.200.0.1/24 and fd00:200::1/64, default routes via .2 and ::2, and the
// routes `route add` put there, plus a few more specific ones.
func lab(t *testing.T) *Table {
	t.Helper()
	tb := New()
	mustAddr(t, tb, 2, "10.200.0.1/24")
	mustAddr(t, tb, 2, "fd00:200::1/64")
	mustAddr(t, tb, 2, "fe80::ff:fe00:a/64")
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2")})
	mustAdd(t, tb, Route{Dst: pfx("::/0"), Gateway: ip("fd00:200::2")})
	mustAdd(t, tb, Route{Dst: pfx("10.200.50.0/24"), NIC: 2})
	mustAdd(t, tb, Route{Dst: pfx("10.200.51.0/24"), Gateway: ip("10.200.0.2")})
	mustAdd(t, tb, Route{Dst: pfx("10.200.52.5/32"), Gateway: ip("10.200.0.2")})
	mustAdd(t, tb, Route{Dst: pfx("10.200.53.0/24"), Type: TypeUnreachable})
	mustAdd(t, tb, Route{Dst: pfx("10.200.54.0/24"), Gateway: ip("10.200.0.2"), Metric: 5, NIC: 2})
	mustAdd(t, tb, Route{Dst: pfx("10.200.51.128/25"), Gateway: ip("10.200.0.3")})
	mustAdd(t, tb, Route{Dst: pfx("fd00:250::/64"), Gateway: ip("fd00:200::2"), Metric: 1})
	mustAdd(t, tb, Route{Dst: pfx("fd00:251::/64"), NIC: 2, Metric: 1})
	return tb
}

func TestLookupLongestPrefix(t *testing.T) {
	tb := lab(t)
	tests := []struct {
		dst  string
		want string // Route.String of the expected route, "" for no route
	}{
		{"10.200.52.5", "10.200.52.5/32 via 10.200.0.2 dev #2"},             // host route beats /0
		{"10.200.52.6", "0.0.0.0/0 via 10.200.0.2 dev #2"},                  // next to it: default
		{"10.200.51.7", "10.200.51.0/24 via 10.200.0.2 dev #2"},             // network route
		{"10.200.51.200", "10.200.51.128/25 via 10.200.0.3 dev #2"},         // overlapping, longer wins
		{"10.200.0.77", "10.200.0.0/24 dev #2 proto kernel src 10.200.0.1"}, // connected
		{"10.200.53.1", "unreachable 10.200.53.0/24"},
		{"10.200.54.255", "10.200.54.0/24 via 10.200.0.2 dev #2 metric 5"},
		{"192.0.2.1", "0.0.0.0/0 via 10.200.0.2 dev #2"},
		{"0.0.0.0", "0.0.0.0/0 via 10.200.0.2 dev #2"},
		{"255.255.255.255", "0.0.0.0/0 via 10.200.0.2 dev #2"},
		{"fd00:200::99", "fd00:200::/64 dev #2 proto kernel metric 256"},
		{"fd00:250::1", "fd00:250::/64 via fd00:200::2 dev #2 metric 1"},
		{"fd00:251::1", "fd00:251::/64 dev #2 metric 1"},
		{"fe80::1%eth0", "fe80::/64 dev #2 proto kernel metric 256"}, // zone ignored
		{"2001:db8::1", "::/0 via fd00:200::2 dev #2 metric 1024"},
		// IPv4-mapped IPv6 addresses are IPv6 addresses: they never match
		// IPv4 routes, here not the /32 host route but the IPv6 default.
		{"::ffff:10.200.52.5", "::/0 via fd00:200::2 dev #2 metric 1024"},
	}
	for _, tt := range tests {
		r, ok := tb.Lookup(ip(tt.dst))
		got := ""
		if ok {
			got = r.String()
		}
		if got != tt.want {
			t.Errorf("Lookup(%s) = %q, want %q", tt.dst, got, tt.want)
		}
	}
	if _, ok := tb.Lookup(netip.Addr{}); ok {
		t.Error("Lookup(invalid) found a route")
	}
}

func TestLookupNoDefault(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/8")
	if _, ok := tb.Lookup(ip("11.0.0.1")); ok {
		t.Error("found a route without a default route")
	}
	// An IPv6 default route does not serve IPv4, nor the other way round.
	mustAddr(t, tb, 1, "fd00::1/64")
	mustAdd(t, tb, Route{Dst: pfx("::/0"), Gateway: ip("fd00::2")})
	if _, ok := tb.Lookup(ip("11.0.0.1")); ok {
		t.Error("IPv6 default route matched an IPv4 address")
	}
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.2")})
	mustAdd(t, tb, Route{Dst: pfx("::ffff:0:0/96"), Type: TypeProhibit})
	if r, _ := tb.Lookup(ip("::ffff:1.2.3.4")); r.Type != TypeProhibit {
		t.Errorf("mapped address: got %v, want the ::ffff:0:0/96 route", r)
	}
	if r, _ := tb.Lookup(ip("1.2.3.4")); r.Gateway != ip("10.0.0.2") {
		t.Errorf("IPv4 address: got %v, want the IPv4 default", r)
	}
}

func TestMetricTieBreak(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	mustAddr(t, tb, 2, "10.0.1.1/24")
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.9"), Metric: 10})
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.1.9"), Metric: 5})
	if r, _ := tb.Lookup(ip("8.8.8.8")); r.Gateway != ip("10.0.1.9") || r.NIC != 2 {
		t.Fatalf("lower metric: got %v", r)
	}
	// Equal metric: the first added wins (Linux keeps insertion order).
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.8"), Metric: 5})
	if r, _ := tb.Lookup(ip("8.8.8.8")); r.Gateway != ip("10.0.1.9") {
		t.Fatalf("equal metric: got %v, want the older route", r)
	}
	// Prefix length beats metric.
	mustAdd(t, tb, Route{Dst: pfx("8.0.0.0/8"), Gateway: ip("10.0.0.7"), Metric: 1000})
	if r, _ := tb.Lookup(ip("8.8.8.8")); r.Gateway != ip("10.0.0.7") {
		t.Fatalf("longer prefix with higher metric: got %v", r)
	}
	if err := tb.Delete(Match{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.1.9")}); err != nil {
		t.Fatal(err)
	}
	if r, _ := tb.Lookup(ip("9.9.9.9")); r.Gateway != ip("10.0.0.8") {
		t.Fatalf("after delete: got %v, want the other metric-5 route", r)
	}
}

func TestLookupNIC(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	mustAddr(t, tb, 2, "10.0.1.1/24")
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.9")})
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.1.9"), Metric: 100})
	mustAdd(t, tb, Route{Dst: pfx("8.8.8.0/24"), Gateway: ip("10.0.0.9")})
	mustAdd(t, tb, Route{Dst: pfx("9.9.9.0/24"), Type: TypeBlackhole})

	tests := []struct {
		dst    string
		nic    int
		wantGW string // "" = no gateway, "-" = no route
		typ    Type
	}{
		{"8.8.8.8", 0, "10.0.0.9", TypeUnicast},
		{"8.8.8.8", 1, "10.0.0.9", TypeUnicast},
		{"8.8.8.8", 2, "10.0.1.9", TypeUnicast}, // skips the /24 via #1, takes #2's default
		{"10.0.0.5", 2, "10.0.1.9", TypeUnicast},
		{"10.0.1.5", 2, "", TypeUnicast},
		{"9.9.9.9", 2, "", TypeBlackhole}, // reject routes apply whatever the NIC
		{"8.8.8.8", 3, "-", 0},
	}
	for _, tt := range tests {
		r, ok := tb.LookupNIC(ip(tt.dst), tt.nic)
		switch {
		case tt.wantGW == "-":
			if ok {
				t.Errorf("LookupNIC(%s, %d) = %v, want none", tt.dst, tt.nic, r)
			}
		case !ok:
			t.Errorf("LookupNIC(%s, %d): no route", tt.dst, tt.nic)
		case r.Type != tt.typ || (tt.wantGW == "") == r.Gateway.IsValid() ||
			(tt.wantGW != "" && r.Gateway != ip(tt.wantGW)):
			t.Errorf("LookupNIC(%s, %d) = %v, want gateway %q type %v", tt.dst, tt.nic, r, tt.wantGW, tt.typ)
		case tt.nic != 0 && r.NIC != tt.nic && !r.Type.Reject():
			t.Errorf("LookupNIC(%s, %d) left through #%d", tt.dst, tt.nic, r.NIC)
		}
	}
}

func TestRejectRoutes(t *testing.T) {
	tb := New()
	mustAdd(t, tb, Route{Dst: pfx("10.1.0.0/16"), Type: TypeUnreachable})
	mustAdd(t, tb, Route{Dst: pfx("10.2.0.0/16"), Type: TypeProhibit})
	mustAdd(t, tb, Route{Dst: pfx("10.3.0.0/16"), Type: TypeBlackhole})
	mustAdd(t, tb, Route{Dst: pfx("fd00:1::/32"), Type: TypeBlackhole})
	for dst, want := range map[string]Type{
		"10.1.2.3": TypeUnreachable, "10.2.2.3": TypeProhibit,
		"10.3.2.3": TypeBlackhole, "fd00:1::1": TypeBlackhole,
	} {
		r, ok := tb.Lookup(ip(dst))
		if !ok || r.Type != want || !r.Type.Reject() {
			t.Errorf("Lookup(%s) = %v, %v; want a %v route", dst, r, ok, want)
		}
	}
	err := tb.Add(Route{Dst: pfx("10.4.0.0/16"), Type: TypeUnreachable, Gateway: ip("10.0.0.1")})
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("reject route with gateway: %v, want EINVAL", err)
	}
	// A second identical reject route is a duplicate.
	err = tb.Add(Route{Dst: pfx("10.1.0.0/16"), Type: TypeUnreachable})
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("duplicate reject route: %v, want EEXIST", err)
	}
	if TypeUnicast.Reject() || TypeUnspec.Reject() {
		t.Error("unicast counted as reject")
	}
}

func TestAddErrors(t *testing.T) {
	tests := []struct {
		name string
		r    Route
		want error // nil: success
	}{
		{"duplicate default", Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2")}, syscall.EEXIST},
		{"duplicate with explicit NIC", Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2"), NIC: 2}, syscall.EEXIST},
		{"duplicate connected", Route{Dst: pfx("10.200.0.0/24"), NIC: 2}, syscall.EEXIST},
		{"same default, other metric", Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2"), Metric: 1}, nil},
		{"same default, other gateway", Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.3")}, nil},
		{"unreachable gateway", Route{Dst: pfx("10.200.55.0/24"), Gateway: ip("10.200.99.1")}, syscall.ENETUNREACH},
		{"gateway via default route is not on-link", Route{Dst: pfx("10.9.0.0/16"), Gateway: ip("192.0.2.1")}, syscall.ENETUNREACH},
		{"gateway on another NIC", Route{Dst: pfx("10.9.0.0/16"), Gateway: ip("10.200.0.5"), NIC: 3}, syscall.ENETUNREACH},
		{"onlink gateway", Route{Dst: pfx("10.9.0.0/16"), Gateway: ip("192.0.2.1"), NIC: 3, OnLink: true}, nil},
		{"onlink without NIC", Route{Dst: pfx("10.9.0.0/16"), Gateway: ip("192.0.2.1"), OnLink: true}, syscall.EINVAL},
		{"unreachable v6 gateway", Route{Dst: pfx("fd00:7::/64"), Gateway: ip("fd00:6::1")}, syscall.EHOSTUNREACH},
		{"link-local gateway without NIC", Route{Dst: pfx("fd00:7::/64"), Gateway: ip("fe80::1")}, syscall.ENODEV},
		{"link-local gateway with NIC", Route{Dst: pfx("fd00:7::/64"), Gateway: ip("fe80::1%eth0"), NIC: 2}, nil},
		{"on-link route without NIC", Route{Dst: pfx("10.8.0.0/16")}, syscall.ENODEV},
		{"host bits set", Route{Dst: pfx("10.200.55.1/24"), NIC: 2}, syscall.EINVAL},
		{"invalid destination", Route{NIC: 2}, syscall.EINVAL},
		{"family mismatch gateway", Route{Dst: pfx("10.8.0.0/16"), Gateway: ip("fd00:200::2")}, syscall.EINVAL},
		{"family mismatch source", Route{Dst: pfx("10.8.0.0/16"), NIC: 2, Src: ip("fd00::1")}, syscall.EINVAL},
		{"negative NIC", Route{Dst: pfx("10.8.0.0/16"), NIC: -1}, syscall.EINVAL},
		{"negative MTU", Route{Dst: pfx("10.8.0.0/16"), NIC: 2, MTU: -1}, syscall.EINVAL},
		{"bad type", Route{Dst: pfx("10.8.0.0/16"), NIC: 2, Type: 99}, syscall.EINVAL},
		{"bad protocol", Route{Dst: pfx("10.8.0.0/16"), NIC: 2, Protocol: 99}, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := lab(t)
			gen := tb.Generation()
			err := tb.Add(tt.r)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if tb.Generation() == gen {
					t.Error("generation did not change")
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v, want %v", err, tt.want)
			}
			var re *Error
			if !errors.As(err, &re) || re.Op != "add" || !strings.Contains(err.Error(), "route add: ") {
				t.Errorf("error %q is not a *Error for add", err)
			}
			if tb.Generation() != gen {
				t.Error("failed Add changed the generation")
			}
		})
	}
}

func TestAddNormalizes(t *testing.T) {
	tb := lab(t)
	mustAdd(t, tb, Route{Dst: pfx("10.7.0.0/16"), Gateway: ip("10.200.0.9"), Src: ip("0.0.0.0")})
	mustAdd(t, tb, Route{Dst: pfx("10.6.0.0/16"), Gateway: ip("0.0.0.0"), NIC: 2})
	mustAdd(t, tb, Route{Dst: pfx("fd00:9::/64"), Gateway: ip("fd00:200::9")})
	r, _ := tb.Lookup(ip("10.7.1.1"))
	if r.NIC != 2 || r.Src.IsValid() || r.Type != TypeUnicast || r.Protocol != ProtoBoot {
		t.Errorf("gateway route: %+v", r)
	}
	r, _ = tb.Lookup(ip("10.6.1.1"))
	if r.Gateway.IsValid() {
		t.Errorf("unspecified gateway kept: %v", r)
	}
	// IPv6 metric 0 becomes 1024 (IP6_RT_PRIO_USER), and a duplicate is
	// recognised after that.
	r, _ = tb.Lookup(ip("fd00:9::1"))
	if r.Metric != 1024 || r.NIC != 2 {
		t.Errorf("IPv6 route: %v", r)
	}
	if err := tb.Add(Route{Dst: pfx("fd00:9::/64"), Gateway: ip("fd00:200::9"), Metric: 1024}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("IPv6 duplicate: %v", err)
	}
}

func TestDelete(t *testing.T) {
	tb := New()
	mustAddr(t, tb, 1, "10.0.0.1/24")
	mustAddr(t, tb, 2, "10.0.1.1/24")
	add := func(gw string, metric uint32) {
		mustAdd(t, tb, Route{Dst: pfx("192.168.0.0/16"), Gateway: ip(gw), Metric: metric})
	}
	add("10.0.0.9", 20)
	add("10.0.1.9", 10)
	add("10.0.0.8", 10)
	add("10.0.1.8", 30)
	mustAdd(t, tb, Route{Dst: pfx("192.168.0.0/16"), Type: TypeUnreachable, Metric: 40})

	tests := []struct {
		m       Match
		deleted string // gateway of the route deleted; "" = ESRCH
	}{
		{Match{Dst: pfx("192.168.1.0/24")}, ""},                                      // no such prefix
		{Match{Dst: pfx("192.168.0.0/16"), Gateway: ip("10.0.5.5")}, ""},             // no such gateway
		{Match{Dst: pfx("192.168.0.0/16"), Metric: 99, MetricSet: true}, ""},         // no such metric
		{Match{Dst: pfx("192.168.0.0/16"), Protocol: ProtoKernel}, ""},               // no such protocol
		{Match{Dst: pfx("192.168.0.0/16"), NIC: 2, Gateway: ip("10.0.0.9")}, ""},     // gateway is on #1
		{Match{Dst: pfx("192.168.0.0/16"), Gateway: ip("10.0.0.9")}, "10.0.0.9"},     // gateway narrows
		{Match{Dst: pfx("192.168.0.0/16"), Metric: 30, MetricSet: true}, "10.0.1.8"}, // metric narrows
		{Match{Dst: pfx("192.168.0.0/16"), NIC: 1}, "10.0.0.8"},                      // NIC narrows
		{Match{Dst: pfx("192.168.0.0/16"), Type: TypeUnreachable}, "unreachable"},    // `route del … reject`
		{Match{Dst: pfx("192.168.0.0/16")}, "10.0.1.9"},                              // the best one
		{Match{Dst: pfx("192.168.0.0/16")}, ""},                                      // all gone
	}
	for i, tt := range tests {
		before := tb.Routes()
		gen := tb.Generation()
		err := tb.Delete(tt.m)
		after := tb.Routes()
		if tt.deleted == "" {
			if !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%d: Delete(%+v) = %v, want ESRCH", i, tt.m, err)
			}
			if len(after) != len(before) || tb.Generation() != gen {
				t.Errorf("%d: failed delete changed the table", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: Delete(%+v): %v", i, tt.m, err)
		}
		if len(after) != len(before)-1 || tb.Generation() == gen {
			t.Fatalf("%d: Delete removed %d routes", i, len(before)-len(after))
		}
		for _, r := range before {
			if !slices.Contains(after, r) {
				got := r.Gateway.String()
				if r.Type == TypeUnreachable {
					got = "unreachable"
				}
				if got != tt.deleted {
					t.Errorf("%d: Delete(%+v) removed %v, want the one via %s", i, tt.m, r, tt.deleted)
				}
			}
		}
	}
	if err := tb.Delete(Match{Dst: pfx("10.0.0.1/24")}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unmasked Delete: %v", err)
	}
	if err := tb.Delete(Match{}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("empty Delete: %v", err)
	}
	// A connected route can be deleted by hand, and the address's later
	// removal does not mind.
	if err := tb.Delete(Match{Dst: pfx("10.0.0.0/24"), Protocol: ProtoKernel}); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddressRemoved(1, pfx("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
}

func TestReplace(t *testing.T) {
	tb := lab(t)
	mustAddr(t, tb, 3, "10.201.0.1/24")
	// Replace takes the place of the route with the same destination and
	// metric, whatever its gateway.
	if err := tb.Replace(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.201.0.2")}); err != nil {
		t.Fatal(err)
	}
	var defaults []Route
	for _, r := range tb.Routes() {
		if r.Dst == pfx("0.0.0.0/0") {
			defaults = append(defaults, r)
		}
	}
	if len(defaults) != 1 || defaults[0].Gateway != ip("10.201.0.2") || defaults[0].NIC != 3 {
		t.Fatalf("after replace: %v", defaults)
	}
	// Without a route to replace it adds.
	if err := tb.Replace(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2"), Metric: 7}); err != nil {
		t.Fatal(err)
	}
	// Replacing a route with itself is no error and leaves one copy.
	if err := tb.Replace(Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.200.0.2"), Metric: 7, MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range tb.Routes() {
		if r.Dst == pfx("0.0.0.0/0") && r.Metric == 7 {
			n++
			if r.MTU != 1400 {
				t.Errorf("replace did not update: %v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d metric-7 default routes, want 1", n)
	}
	if err := tb.Replace(Route{Dst: pfx("10.9.0.0/16"), Gateway: ip("192.0.2.1")}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("Replace with unreachable gateway: %v", err)
	}
}

func TestRoutesOrder(t *testing.T) {
	tb := lab(t)
	mustAdd(t, tb, Route{Dst: pfx("10.0.0.0/8"), NIC: 2})
	mustAdd(t, tb, Route{Dst: pfx("10.200.0.0/16"), NIC: 2})
	mustAdd(t, tb, Route{Dst: pfx("0.0.0.0/8"), Type: TypeBlackhole})
	var got []string
	for _, r := range tb.Routes() {
		got = append(got, r.Dst.String()+" "+r.DisplayFlags().String())
	}
	// IPv4 as /proc/net/route lists it (captured order for the routes of
	// route.md); IPv6 as /proc/net/ipv6_route does, prefixes after what
	// they contain (the capture's main table: fd00:200::, fd00:250::,
	// fd00:251::, fe80::, ::/0).
	want := []string{
		"0.0.0.0/8 U", "0.0.0.0/0 UG",
		"10.0.0.0/8 U",
		"10.200.0.0/24 U", "10.200.0.0/16 U",
		"10.200.50.0/24 U", "10.200.51.0/24 UG", "10.200.51.128/25 UG",
		"10.200.52.5/32 UGH", "10.200.53.0/24 !", "10.200.54.0/24 UG",
		"fd00:200::/64 U", "fd00:250::/64 UG", "fd00:251::/64 U", "fe80::/64 U", "::/0 UG",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Routes order:\n got %q\nwant %q", got, want)
	}
}

func TestDisplayFlags(t *testing.T) {
	tests := []struct {
		r    Route
		want string
	}{
		{Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.1")}, "UG"},
		{Route{Dst: pfx("10.0.0.0/24")}, "U"},
		{Route{Dst: pfx("10.0.0.5/32"), Gateway: ip("10.0.0.1")}, "UGH"},
		{Route{Dst: pfx("10.0.0.5/32"), Gateway: ip("10.0.0.1"), Protocol: ProtoRedirect}, "UGHD"},
		{Route{Dst: pfx("10.0.0.5/32"), Gateway: ip("10.0.0.1"), Protocol: ProtoRedirect, Flags: FlagModified}, "UGHDM"},
		{Route{Dst: pfx("10.0.0.0/24"), Type: TypeUnreachable}, "!"},
		{Route{Dst: pfx("10.0.0.0/24"), Type: TypeProhibit}, "!"},
		{Route{Dst: pfx("10.0.0.0/24"), Type: TypeBlackhole}, "U"},
		{Route{Dst: pfx("fd00::/64"), Type: TypeBlackhole}, "!"},
		{Route{Dst: pfx("::/0"), Gateway: ip("fe80::1"), Protocol: ProtoRA}, "UGA"},
		{Route{Dst: pfx("fd00::1/128")}, "UH"},
		{Route{Dst: pfx("10.0.0.0/24"), Flags: FlagReinstate}, "UR"},
	}
	for _, tt := range tests {
		if got := tt.r.DisplayFlags().String(); got != tt.want {
			t.Errorf("%v: flags %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	if s := TypeProhibit.String() + Type(9).String() + ProtoRA.String() + Protocol(9).String(); s != "prohibittype(9)raproto(9)" {
		t.Errorf("names: %q", s)
	}
	r := Route{Dst: pfx("10.0.0.0/8"), Gateway: ip("10.1.0.1"), NIC: 2, Src: ip("10.1.0.2"), Metric: 5, MTU: 1400, Protocol: ProtoDHCP, Type: TypeUnicast}
	if s := r.String(); s != "10.0.0.0/8 via 10.1.0.1 dev #2 proto dhcp src 10.1.0.2 metric 5 mtu 1400" {
		t.Errorf("String: %q", s)
	}
}

func TestUseCounter(t *testing.T) {
	tb := lab(t)
	for range 3 {
		tb.Lookup(ip("10.200.52.5"))
	}
	r, _ := tb.Lookup(ip("10.200.52.5"))
	if r.Use != 4 {
		t.Errorf("Use after 4 lookups = %d", r.Use)
	}
	for _, r := range tb.Routes() {
		want := uint64(0)
		if r.Dst == pfx("10.200.52.5/32") {
			want = 4
		}
		if r.Use != want {
			t.Errorf("%v: Use %d, want %d", r, r.Use, want)
		}
	}
	// Add ignores a Use the caller passes in.
	mustAdd(t, tb, Route{Dst: pfx("10.99.0.0/16"), NIC: 2, Use: 77})
	if r, _ := tb.Lookup(ip("10.99.0.1")); r.Use != 1 {
		t.Errorf("Use of a new route after one lookup = %d", r.Use)
	}
}

func TestRemoveNIC(t *testing.T) {
	tb := lab(t)
	mustAddr(t, tb, 3, "10.201.0.1/24")
	mustAdd(t, tb, Route{Dst: pfx("10.202.0.0/16"), Gateway: ip("10.201.0.2")})
	// #2's address as the source of a route through #3: it goes with #2.
	mustAdd(t, tb, Route{Dst: pfx("10.203.0.0/16"), Gateway: ip("10.201.0.2"), Src: ip("10.200.0.1")})
	gen := tb.Generation()
	n := tb.RemoveNIC(2)
	if n != 13 {
		t.Errorf("RemoveNIC removed %d routes, want 13", n)
	}
	if tb.Generation() == gen {
		t.Error("generation unchanged")
	}
	var left []string
	for _, r := range tb.Routes() {
		left = append(left, r.String())
	}
	want := []string{"unreachable 10.200.53.0/24", "10.201.0.0/24 dev #3 proto kernel src 10.201.0.1", "10.202.0.0/16 via 10.201.0.2 dev #3"}
	if !slices.Equal(left, want) {
		t.Errorf("left:\n%q\nwant\n%q", left, want)
	}
	// Its addresses are forgotten: adding one again brings the route back.
	mustAddr(t, tb, 2, "10.200.0.1/24")
	if r, ok := tb.Lookup(ip("10.200.0.5")); !ok || r.NIC != 2 {
		t.Errorf("connected route after re-adding the address: %v %v", r, ok)
	}
	if tb.RemoveNIC(9) != 0 || tb.RemoveNIC(0) != 0 {
		t.Error("removed routes of an unknown NIC")
	}
}

func TestZeroValues(t *testing.T) {
	var tb Table
	if _, ok := tb.Lookup(ip("10.0.0.1")); ok || len(tb.Routes()) != 0 || tb.Generation() != 0 {
		t.Fatal("zero Table is not empty")
	}
	mustAdd(t, &tb, Route{Dst: pfx("10.0.0.0/8"), NIC: 1})
	if _, ok := tb.Lookup(ip("10.0.0.1")); !ok {
		t.Error("zero Table did not keep a route")
	}
	var p Policy
	if n := len(p.Rules()); n != 2 {
		t.Errorf("zero Policy has %d rules, want the 2 defaults", n)
	}
	mustAdd(t, p.Main(), Route{Dst: pfx("10.0.0.0/8"), NIC: 1})
	if _, table, ok := p.Lookup(Flow{Dst: ip("10.0.0.1")}); !ok || table != TableMain {
		t.Error("zero Policy lookup failed")
	}
}
