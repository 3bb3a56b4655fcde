package dighost

import (
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/miekg/dns"

	"github.com/stackbox/stackbox/pkg/resolver"
)

// TestNames: bind 9.18's search order (checked against its host and
// nslookup with "search lab other"): fewer dots than ndots tries the
// search domains then the name; ndots or more, or a final dot, only the
// name; without search nothing is added.
func TestNames(t *testing.T) {
	s := &Settings{Search: []string{"lab", "other."}, Ndots: 1, UseSearch: true}
	for _, c := range []struct {
		name string
		want []string
	}{
		{"web", []string{"web.lab.", "web.other.", "web."}},
		{"web.lab", []string{"web.lab."}},
		{"web.", []string{"web."}},
	} {
		if got := s.Names(c.name); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Names(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	s.Ndots = 3
	if got := s.Names("a.b"); !reflect.DeepEqual(got, []string{"a.b.lab.", "a.b.other.", "a.b."}) {
		t.Errorf("ndots 3: %q", got)
	}
	s.UseSearch = false
	if got := s.Names("web"); !reflect.DeepEqual(got, []string{"web."}) {
		t.Errorf("nosearch: %q", got)
	}
}

// TestColumns: bind's tab stops (name to 24, TTL to 32, class to 40,
// type to 48), as dig and host -v print them, including a name longer
// than its column (a space after it, as bind's host -v printed for a
// 25-character PTR name), and the question line's (name to 32).
func TestColumns(t *testing.T) {
	for _, c := range []struct{ rr, want string }{
		{"web.lab. 600 IN A 10.200.0.2", "web.lab.\t\t600\tIN\tA\t10.200.0.2"},
		{"lab. 600 IN MX 10 mail.lab.", "lab.\t\t\t600\tIN\tMX\t10 mail.lab."},
		{"a-rather-long-name.example.lab. 60 IN AAAA ::1", "a-rather-long-name.example.lab. 60 IN\tAAAA\t::1"},
		{"x. 600 IN TYPE65534 \\# 1 00", "x.\t\t\t600\tIN\tTYPE65534 \\# 1 00"},
	} {
		rr, err := dns.NewRR(c.rr)
		if err != nil {
			t.Fatal(err)
		}
		if got := ZoneLine(rr); got != c.want {
			t.Errorf("ZoneLine(%s) = %q, want %q", c.rr, got, c.want)
		}
	}
	q := dns.Question{Name: "nosuch.lab.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	if got := QuestionLine(q); got != ";nosuch.lab.\t\t\tIN\tA" {
		t.Errorf("QuestionLine = %q", got)
	}
}

// TestCommText: the resolver's errors become bind's isc_result words.
func TestCommText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "i/o timeout", UnwrapErr: resolver.ErrTimeout, IsTimeout: true}, "timed out"},
		{&net.DNSError{Err: "no reachable server: connection refused", UnwrapErr: resolver.ErrBadResponse}, "connection refused"},
		{&net.DNSError{Err: "no reachable server: no route to host", UnwrapErr: resolver.ErrBadResponse}, "host unreachable"},
		{&net.DNSError{Err: "no reachable server: network is unreachable", UnwrapErr: resolver.ErrBadResponse}, "network unreachable"},
		{errors.New("odd"), "odd"},
	} {
		if got := commText(c.err); got != c.want {
			t.Errorf("commText(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// FuzzParseType: any text either is refused or names a type whose
// mnemonic reads back as the same type.
func FuzzParseType(f *testing.F) {
	for _, s := range []string{"A", "mx", "TYPE65535", "TYPE70000", "type", "ANY", "BOGUS", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseType(s)
		if !ok {
			return
		}
		if back, ok := ParseType(TypeString(v)); !ok || back != v {
			t.Errorf("%q → %d → %q → %d, %v", s, v, TypeString(v), back, ok)
		}
	})
}
