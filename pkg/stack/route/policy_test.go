package route

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

func mustRule(t *testing.T, p *Policy, r Rule) {
	t.Helper()
	if err := p.AddRule(r); err != nil {
		t.Fatalf("AddRule(%v): %v", r, err)
	}
}

// policyLab: #1 is the ISP A uplink (main table default), #2 ISP B (table
// 100), #3 a VPN (table 200); traffic from 10.2.0.0/16 uses B, marked
// traffic the VPN, 10.66.0.0/16 is prohibited, 10.77.0.0/16 falls
// through an empty table.
func policyLab(t *testing.T) *Policy {
	t.Helper()
	p := NewPolicy()
	for id, a := range map[uint32]string{TableMain: "192.0.2.1/24", 100: "198.51.100.1/24", 200: "203.0.113.1/24"} {
		nic := map[uint32]int{TableMain: 1, 100: 2, 200: 3}[id]
		if err := p.Table(id).AddressAdded(nic, pfx(a)); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(t, p.Main(), Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("192.0.2.254")})
	mustAdd(t, p.Table(100), Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("198.51.100.254")})
	mustAdd(t, p.Table(200), Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("203.0.113.254")})
	mustAdd(t, p.Table(TableDefault), Route{Dst: pfx("::/0"), Type: TypeUnreachable})
	mustRule(t, p, Rule{Priority: 100, Src: pfx("10.2.0.0/16"), Table: 100})
	mustRule(t, p, Rule{Priority: 50, Mark: 0x10, Mask: 0xf0, Table: 200})
	mustRule(t, p, Rule{Priority: 40, Dst: pfx("10.66.0.0/16"), Action: ActionProhibit})
	mustRule(t, p, Rule{Priority: 30, Dst: pfx("10.77.0.0/16"), Table: 300}) // table 300 does not exist
	mustRule(t, p, Rule{Priority: 100, OIF: 3, Table: 200})
	return p
}

func TestPolicyLookup(t *testing.T) {
	p := policyLab(t)
	tests := []struct {
		name  string
		f     Flow
		gw    string // "" for none
		typ   Type
		table uint32
	}{
		{"plain", Flow{Dst: ip("8.8.8.8")}, "192.0.2.254", TypeUnicast, TableMain},
		{"by source", Flow{Dst: ip("8.8.8.8"), Src: ip("10.2.3.4")}, "198.51.100.254", TypeUnicast, 100},
		{"source outside", Flow{Dst: ip("8.8.8.8"), Src: ip("10.3.3.4")}, "192.0.2.254", TypeUnicast, TableMain},
		{"mark under mask", Flow{Dst: ip("8.8.8.8"), Mark: 0x13}, "203.0.113.254", TypeUnicast, 200},
		{"mark outside mask", Flow{Dst: ip("8.8.8.8"), Mark: 0x20}, "192.0.2.254", TypeUnicast, TableMain},
		{"mark before source", Flow{Dst: ip("8.8.8.8"), Src: ip("10.2.0.1"), Mark: 0x1f}, "203.0.113.254", TypeUnicast, 200},
		{"prohibit rule", Flow{Dst: ip("10.66.1.1"), Mark: 0x10}, "", TypeProhibit, 0},
		{"missing table falls through", Flow{Dst: ip("10.77.1.1")}, "192.0.2.254", TypeUnicast, TableMain},
		{"bound to #3", Flow{Dst: ip("8.8.8.8"), OIF: 3}, "203.0.113.254", TypeUnicast, 200},
		// Bound to #2: the main table has no route through #2, the default
		// table no IPv4 route at all; nothing.
		{"bound to #2", Flow{Dst: ip("8.8.8.8"), OIF: 2}, "-", 0, 0},
		{"bound to #2 from B", Flow{Dst: ip("8.8.8.8"), OIF: 2, Src: ip("10.2.0.9")}, "198.51.100.254", TypeUnicast, 100},
		// IPv6 passes the IPv4-only rules and ends in the default table's
		// unreachable route.
		{"IPv6", Flow{Dst: ip("2001:db8::1%eth0"), Src: ip("fd00::1")}, "", TypeUnreachable, TableDefault},
		{"IPv4-mapped is IPv6", Flow{Dst: ip("::ffff:10.66.1.1")}, "", TypeUnreachable, TableDefault},
	}
	for _, tt := range tests {
		r, table, ok := p.Lookup(tt.f)
		if tt.gw == "-" {
			if ok {
				t.Errorf("%s: got %v from table %d, want none", tt.name, r, table)
			}
			continue
		}
		gw := ""
		if r.Gateway.IsValid() {
			gw = r.Gateway.String()
		}
		if !ok || gw != tt.gw || r.Type != tt.typ || table != tt.table {
			t.Errorf("%s: got %v (table %d, %v), want gateway %q type %v table %d", tt.name, r, table, ok, tt.gw, tt.typ, tt.table)
		}
	}
	if r, _, _ := p.Lookup(Flow{Dst: ip("10.66.1.1")}); r.Dst != pfx("0.0.0.0/0") {
		t.Errorf("rule reject route %v, want Dst 0.0.0.0/0", r)
	}
	if _, _, ok := p.Lookup(Flow{}); ok {
		t.Error("route for an invalid destination")
	}
}

func TestPolicyRules(t *testing.T) {
	p := policyLab(t)
	var got []string
	for _, r := range p.Rules() {
		got = append(got, r.String())
	}
	want := []string{
		"30:\tfrom all to 10.77.0.0/16 lookup 300",
		"40:\tfrom all to 10.66.0.0/16 prohibit",
		"50:\tfrom all fwmark 0x10/0xf0 lookup 200",
		"100:\tfrom 10.2.0.0/16 lookup 100",
		"100:\tfrom all oif #3 lookup 200", // same priority: insertion order
		"32766:\tfrom all lookup main",
		"32767:\tfrom all lookup default",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n got %q\nwant %q", got, want)
	}
	if s := (Rule{Priority: 5, Mark: 7, IIF: 2, Action: ActionBlackhole}); s.String() != "5:\tfrom all fwmark 0x7/0x0 iif #2 blackhole" {
		t.Errorf("String of an unnormalized rule: %q", s.String())
	}
	if ids := p.Tables(); !slices.Equal(ids, []uint32{100, 200, TableDefault, TableMain}) {
		t.Errorf("tables %v", ids)
	}

	errs := []struct {
		r    Rule
		want syscall.Errno
	}{
		{Rule{Priority: 100, Src: pfx("10.2.0.0/16"), Table: 100}, syscall.EEXIST},
		{Rule{Priority: 1, Src: pfx("10.2.0.1/16"), Table: 100}, syscall.EINVAL},
		{Rule{Priority: 1, Dst: pfx("10.2.0.1/16"), Table: 100}, syscall.EINVAL},
		{Rule{Priority: 1, Src: pfx("fd00::/8"), Dst: pfx("10.0.0.0/8"), Table: 100}, syscall.EINVAL},
		{Rule{Priority: 1, Mark: 0x100, Mask: 0xff, Table: 100}, syscall.EINVAL},
		{Rule{Priority: 1}, syscall.EINVAL}, // lookup without table
		{Rule{Priority: 1, Action: 9}, syscall.EINVAL},
		{Rule{Priority: 1, OIF: -1, Table: 1}, syscall.EINVAL},
	}
	for _, e := range errs {
		if err := p.AddRule(e.r); !errors.Is(err, e.want) {
			t.Errorf("AddRule(%v) = %v, want %v", e.r, err, e.want)
		}
	}

	gen := p.Generation()
	if err := p.DeleteRule(Rule{Priority: 100, Table: 200}); err != nil {
		t.Fatal(err)
	}
	if p.Generation() == gen {
		t.Error("DeleteRule did not change the generation")
	}
	if r, _, _ := p.Lookup(Flow{Dst: ip("8.8.8.8"), OIF: 3}); r.Gateway.IsValid() {
		t.Errorf("deleted oif rule still used: %v", r)
	}
	if err := p.DeleteRule(Rule{Priority: 100, Table: 200}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("second DeleteRule: %v", err)
	}
	if err := p.DeleteRule(Rule{Mark: 0x10, Mask: 0xf0}); err != nil {
		t.Errorf("DeleteRule by mark: %v", err)
	}
	if err := p.DeleteRule(Rule{Action: ActionProhibit}); err != nil {
		t.Errorf("DeleteRule by action: %v", err)
	}
	if n := len(p.Rules()); n != 4 {
		t.Errorf("%d rules left, want 4", n)
	}
}

func TestPolicyGeneration(t *testing.T) {
	p := NewPolicy()
	steps := []struct {
		name    string
		f       func()
		changes bool
	}{
		{"lookup", func() { p.Lookup(Flow{Dst: ip("1.1.1.1")}) }, false},
		{"existing table", func() { p.Main() }, false},
		{"new table", func() { p.Table(7) }, true},
		{"table 0 is main", func() { p.Table(0) }, false},
		{"route in a table", func() { p.Table(7).Add(Route{Dst: pfx("10.0.0.0/8"), NIC: 1}) }, true},
		{"rule", func() { p.AddRule(Rule{Priority: 9, Table: 7}) }, true},
		{"duplicate rule", func() { p.AddRule(Rule{Priority: 9, Table: 7}) }, false},
	}
	for _, s := range steps {
		gen := p.Generation()
		s.f()
		if changed := p.Generation() != gen; changed != s.changes {
			t.Errorf("%s: generation changed = %v, want %v", s.name, changed, s.changes)
		}
	}
	if r, table, ok := p.Lookup(Flow{Dst: netip.MustParseAddr("10.1.1.1")}); !ok || table != 7 || r.NIC != 1 {
		t.Errorf("lookup through table 7: %v %d %v", r, table, ok)
	}
}
