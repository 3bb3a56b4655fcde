package resolver

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	h, err := ParseHosts(strings.NewReader(`127.0.0.1	localhost
::1	localhost ip6-localhost # comment
# 10.9.9.9 commented.example
10.0.0.5 Web.Example www   alias.example.
bogus line here
10.0.0.6 web.example
::ffff:10.0.0.7 mapped.example
fe80::1%eth0 link.example
`))
	if err != nil {
		t.Fatal(err)
	}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	for name, want := range map[string][]netip.Addr{
		"localhost":          addrs("127.0.0.1", "::1"),
		"WEB.example.":       addrs("10.0.0.5", "10.0.0.6"),
		"www":                addrs("10.0.0.5"),
		"alias.example":      addrs("10.0.0.5"),
		"mapped.example":     addrs("10.0.0.7"),
		"link.example":       addrs("fe80::1%eth0"),
		"commented.example":  nil,
		"here":               nil,
		"ip6-localhost.":     addrs("::1"),
		"nonexistent.domain": nil,
	} {
		if got := h.Lookup(name); !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %v, want %v", name, got, want)
		}
	}
	if got := h.Names(netip.MustParseAddr("10.0.0.5")); !reflect.DeepEqual(got, []string{"Web.Example", "www", "alias.example."}) {
		t.Errorf("Names(10.0.0.5) = %v", got)
	}
	if got := h.Names(netip.MustParseAddr("::ffff:10.0.0.7")); !reflect.DeepEqual(got, []string{"mapped.example"}) {
		t.Errorf("Names of a mapped address = %v", got)
	}
	var nilHosts *Hosts
	if nilHosts.Lookup("localhost") != nil || nilHosts.Names(netip.MustParseAddr("::1")) != nil {
		t.Error("a nil Hosts found something")
	}
}

// Files are read in order: the first file's addresses come first; a
// missing file is skipped.
func TestLoadHosts(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("10.1.1.1 both.example\n"), 0o644)
	os.WriteFile(b, []byte("10.2.2.2 both.example only-b\n"), 0o644)
	h, err := LoadHosts(a, filepath.Join(dir, "missing"), b)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Lookup("both.example"); !reflect.DeepEqual(got, []netip.Addr{netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.2.2.2")}) {
		t.Errorf("both.example = %v", got)
	}
	if got := h.Lookup("only-b"); len(got) != 1 {
		t.Errorf("only-b = %v", got)
	}
	if _, err := LoadHosts(dir); err == nil {
		t.Error("a directory as a hosts file: no error")
	}
}

// Every name found maps back: its address lists it among its names.
func FuzzParseHosts(f *testing.F) {
	f.Add("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
	f.Add("10.0.0.1 A a. # c\n::ffff:1.2.3.4 m\nfe80::1%eth0 z\n")
	f.Fuzz(func(t *testing.T, text string) {
		h, err := ParseHosts(strings.NewReader(text))
		if err != nil {
			return
		}
		for key, addrs := range h.byName {
			if key != hostKey(key) || len(addrs) == 0 {
				t.Fatalf("bad key %q → %v", key, addrs)
			}
			for _, a := range addrs {
				if a.Is4In6() {
					t.Fatalf("mapped address %v kept", a)
				}
				found := false
				for _, n := range h.Names(a) {
					found = found || hostKey(n) == key
				}
				if !found {
					t.Fatalf("%q → %v, but %v's names are %v", key, a, a, h.Names(a))
				}
			}
		}
	})
}
