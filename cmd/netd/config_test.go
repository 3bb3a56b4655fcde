package netd

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RouteConfig
	}{
		{"default gw 192.168.1.1", RouteConfig{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.168.1.1")}},
		{"default,gw,192.168.1.1", RouteConfig{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.168.1.1")}},
		{"10.1.2.3/16 gw 10.0.0.254 dev eth0 metric 5", RouteConfig{Dst: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254"), Dev: "eth0", Metric: 5}},
		{"10.9.9.9 dev eth1", RouteConfig{Dst: netip.MustParsePrefix("10.9.9.9/32"), Dev: "eth1"}},
		{"default gw fe80::1 dev eth0", RouteConfig{Dst: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("fe80::1"), Dev: "eth0"}},
		{"default6 via 2001:db8::1", RouteConfig{Dst: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("2001:db8::1")}},
	} {
		got, err := parseRoute(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "default", "default gw", "default gw nope", "10.0.0.0/33 dev eth0", "x dev eth0",
		"default gw 10.0.0.1 metric -1", "default mtu 1500", "10.0.0.0/8 gw 2001:db8::1"} {
		if _, err := parseRoute(bad); err == nil {
			t.Errorf("parseRoute(%q) accepted", bad)
		}
	}
}

func TestParseAddr(t *testing.T) {
	a, err := parseAddr("eth0=192.168.1.100/24")
	if err != nil || a.Dev != "eth0" || a.Prefix != netip.MustParsePrefix("192.168.1.100/24") {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range []string{"eth0", "=10.0.0.1/24", "eth0=10.0.0.1", "eth0=300.0.0.1/24"} {
		if _, err := parseAddr(bad); err == nil {
			t.Errorf("parseAddr(%q) accepted", bad)
		}
	}
}

func TestParseConfigFile(t *testing.T) {
	const file = `# lab host
link tap:sbx0
link emu:lab,mtu=9000
addr eth0 192.168.1.100/24
address eth0 2001:db8::100/64
route default gw 192.168.1.1   # the router
route 10.0.0.0/8 dev eth1 metric 10
nameserver 192.168.1.1
search lab example
forwarding on
socket /tmp/x.sock
resolv-conf /tmp/resolv.conf
`
	var c Config
	if err := ParseConfigFile(strings.NewReader(file), "netd.conf", &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Links) != 2 || len(c.Addrs) != 2 || len(c.Routes) != 2 || len(c.DNS) != 1 || !c.Forwarding ||
		c.Socket != "/tmp/x.sock" || c.ResolvConf != "/tmp/resolv.conf" || len(c.Search) != 2 {
		t.Fatalf("%+v", c)
	}
	want := "# written by stackbox netd; changes are lost when it restarts\nsearch lab example\nnameserver 192.168.1.1\n"
	if got := resolvConf(&c); got != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct{ file, err string }{
		{"link\n", "netd.conf:1: link takes one value, not 0"},
		{"\n\nlink bogus:x\n", "netd.conf:3: "},
		{"addr eth0\n", "netd.conf:1: addr wants IFACE ADDRESS/PREFIXLEN"},
		{"forwarding maybe\n", "netd.conf:1: forwarding \"maybe\": want on or off"},
		{"nameserver dns.lab\n", "netd.conf:1: nameserver \"dns.lab\" is not an address"},
		{"colour blue\n", "netd.conf:1: unknown setting \"colour\""},
	} {
		var c Config
		err := ParseConfigFile(strings.NewReader(tc.file), "netd.conf", &c)
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q…", tc.file, err, tc.err)
		}
	}
}

func FuzzParseConfigFile(f *testing.F) {
	f.Add("link tap:sbx0\naddr eth0 10.0.0.2/24\nroute default gw 10.0.0.1\nnameserver 10.0.0.1\n")
	f.Add("route 10.0.0.0/8 gw 10.0.0.1 dev eth0 metric 1,2\n#x\nforwarding off")
	f.Fuzz(func(t *testing.T, s string) {
		var c Config
		if ParseConfigFile(strings.NewReader(s), "f", &c) != nil {
			return
		}
		for _, r := range c.Routes {
			if !r.Dst.IsValid() || (!r.Gateway.IsValid() && r.Dev == "") {
				t.Fatalf("accepted a route without destination or next hop: %+v", r)
			}
		}
		_ = resolvConf(&c)
	})
}
