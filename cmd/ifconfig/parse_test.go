package ifconfig

import (
	"reflect"
	"strings"
	"testing"
)

// The set-up words become ops in net-tools' order: an address brings the
// interface up right after it, and the mask of ADDR/LEN is set last.
func TestParseSet(t *testing.T) {
	for _, c := range []struct {
		dev, words string
		want       []opKind
	}{
		{"eth0", "10.0.0.1/24 mtu 1400 up", []opKind{opAddr, opFlags, opMTU, opFlags, opNetmask}},
		{"eth0", "10.0.0.1 netmask 255.255.255.0 broadcast 10.0.0.255", []opKind{opAddr, opFlags, opNetmask, opBroadcast, opFlags}},
		{"eth0", "0.0.0.0", []opKind{opAddr, opFlags}},
		{"eth0:1", "0.0.0.0", []opKind{opAddr}},   // removing an alias brings nothing up
		{"eth0:1-", "10.0.0.2", []opKind{opAddr}}, // nor does a name ending in -
		{"eth0:1", "10.0.0.2", []opKind{opAddr, opFlags}},
		{"eth0", "inet6 add fd00::1/64 del fd00::2", []opKind{opAdd6, opDel6}},
		{"eth0", "inet add 10.0.0.5 del 10.0.0.6", []opKind{opAdd4, opDel4}},
		{"eth0", "hw ether 02:00:00:00:00:01 promisc -promisc down", []opKind{opHW, opFlags, opFlags, opFlags}},
		{"eth0", "txqueuelen 500 up", []opKind{opUnsupported, opFlags}},
		{"eth0", "netmask bogus up", []opKind{opMessage, opFlags}},
		{"eth0", "up 999.1.1.1 down", []opKind{opFlags, opExit}}, // net-tools exits at the bad address
		{"eth0", "mtu", []opKind{opExit}},
	} {
		var got []opKind
		for _, o := range parseSet(c.dev, strings.Fields(c.words)) {
			got = append(got, o.kind)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: ops %v, want %v", c.dev, c.words, got, c.want)
		}
	}
	ops := parseSet("eth0", strings.Fields("10.1.2.3/20 mtu 9x hw ether 2:0:0:0:A:b"))
	if ops[0].addr.String() != "10.1.2.3" || ops[2].n != 9 || ops[3].mac != "02:00:00:00:0a:0b" ||
		ops[4].kind != opNetmask || ops[4].addr.String() != "255.255.240.0" {
		t.Errorf("op values: %+v", ops)
	}
	if o := parseSet("eth0", []string{"mtu"})[0]; o.code != exitOptErr || !o.usage {
		t.Errorf("mtu without N: %+v", o)
	}
	if o := parseSet("eth0", []string{"nohost"})[0]; o.code != 1 || o.msg != "nohost: Unknown host\n"+helpHint {
		t.Errorf("bad address: %+v", o)
	}
}

func TestAtoi(t *testing.T) {
	for s, want := range map[string]int{"1400": 1400, " 12x": 12, "-5": -5, "x": 0, "+7": 7, "": 0} {
		if got := atoi(s); got != want {
			t.Errorf("atoi(%q) = %d, want %d", s, got, want)
		}
	}
}
