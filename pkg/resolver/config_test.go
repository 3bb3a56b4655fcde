package resolver

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseResolvConf(t *testing.T) {
	const text = `# written by netd
; another comment
nameserver 10.0.0.1
nameserver 2001:db8::53   # trailing comment
nameserver not-an-address
nameserver 10.0.0.2
nameserver 10.0.0.3
domain ignored.example
search corp.example lab.example
options ndots:2 timeout:1 attempts:3 rotate edns0 unknown-option ndots:x
sortlist 10.0.0.0/8
`
	c, err := ParseResolvConf(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Servers: []netip.AddrPort{
			netip.MustParseAddrPort("10.0.0.1:53"),
			netip.MustParseAddrPort("[2001:db8::53]:53"),
			netip.MustParseAddrPort("10.0.0.2:53"), // the fourth is past MAXNS
		},
		Search:   []string{"corp.example", "lab.example"},
		Ndots:    2,
		Timeout:  time.Second,
		Attempts: 3,
		Rotate:   true,
		EDNS0:    true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

// The last of domain and search wins; values past glibc's maxima clamp;
// an empty file means the local nameserver.
func TestParseResolvConfEdges(t *testing.T) {
	c, _ := ParseResolvConf(strings.NewReader("search a.example\ndomain b.example\noptions ndots:99 timeout:0 attempts:40 use-vc\n"))
	if !reflect.DeepEqual(c.Search, []string{"b.example"}) {
		t.Errorf("search %v, want the later domain line", c.Search)
	}
	if c.Ndots != 15 || c.Timeout != time.Second || c.Attempts != 5 || !c.UseTCP {
		t.Errorf("options not clamped: %+v", c)
	}
	if !reflect.DeepEqual(c.Servers, DefaultConfig().Servers) {
		t.Errorf("no nameserver: %v, want 127.0.0.1:53", c.Servers)
	}
	c, _ = ParseResolvConf(strings.NewReader("domain x.example\nsearch ..bad c.example " + strings.Repeat("l", 64) + ".example\n"))
	if !reflect.DeepEqual(c.Search, []string{"c.example"}) {
		t.Errorf("search %v, want only the valid domain", c.Search)
	}
}

func TestLoadResolvConf(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadResolvConf(filepath.Join(dir, "missing"))
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("missing file: %+v, %v; want the defaults", c, err)
	}
	p := filepath.Join(dir, "resolv.conf")
	os.WriteFile(p, []byte("nameserver 192.0.2.1\n"), 0o644)
	c, err = LoadResolvConf(p)
	if err != nil || len(c.Servers) != 1 || c.Servers[0].String() != "192.0.2.1:53" {
		t.Errorf("got %+v, %v", c, err)
	}
	if _, err := LoadResolvConf(dir); err == nil {
		t.Error("a directory read as resolv.conf: no error")
	}
}

// Whatever the text, the result is within glibc's limits, and writing
// it out and reading it back gives the same configuration.
func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 10.0.0.1\nsearch a.example b\noptions ndots:3 rotate\n")
	f.Add("domain x\nnameserver fe80::1%eth0\noptions timeout:31 attempts:0 edns0 use-vc\n")
	f.Add("nameserver\nsearch\noptions ndots:")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseResolvConf(strings.NewReader(text))
		if err != nil {
			return // a line past the scanner's limit
		}
		if len(c.Servers) == 0 || len(c.Servers) > MaxServers || c.Ndots > maxNdots ||
			c.Timeout < time.Second || c.Timeout > maxTimeout*time.Second || c.Attempts < 1 || c.Attempts > maxAttempts {
			t.Fatalf("out of limits: %+v", c)
		}
		for _, d := range c.Search {
			if !validSearch(d) {
				t.Fatalf("invalid search domain %q kept", d)
			}
		}
		again, err := ParseResolvConf(strings.NewReader(c.String()))
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip:\n%+v\n%s\n%+v", c, c.String(), again)
		}
	})
}
