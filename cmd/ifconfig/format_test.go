package ifconfig

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/pkg/host"
)

// The fixtures are the interfaces of the capture in
// ../shared/compat/ifconfig.md; testdata/*.golden are its output.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

var (
	fixLo = host.Interface{
		Index: 1, Name: "lo", Flags: host.FlagUp | host.FlagLoopback | host.FlagRunning, MTU: 65536,
		Addrs: []host.Addr{
			{Prefix: pfx("127.0.0.1/8"), Scope: "host"},
			{Prefix: pfx("::1/128"), Scope: "host"},
		},
		Stats:      host.Stats{RxPackets: 22, RxBytes: 2224, TxPackets: 22, TxBytes: 2224},
		TxQueueLen: 1000,
	}
	fixVethA = host.Interface{
		Index: 2, Name: "vethA", MTU: 1500, MAC: "02:00:00:00:00:0a",
		Flags: host.FlagUp | host.FlagBroadcast | host.FlagRunning | host.FlagMulticast,
		Addrs: []host.Addr{
			{Prefix: pfx("10.200.0.1/24")}, // added without brd: broadcast 0.0.0.0
			{Prefix: pfx("fd00:200::1/64"), Scope: "global"},
			{Prefix: pfx("fe80::ff:fe00:a/64"), Scope: "link"},
		},
		Stats:      host.Stats{RxPackets: 732, RxBytes: 91636, TxPackets: 1069, TxBytes: 139040},
		TxQueueLen: 1000,
	}
	fixVtest0 = host.Interface{
		Index: 4, Name: "vtest0", MTU: 1500, MAC: "02:00:00:00:00:e0",
		Flags: host.FlagBroadcast | host.FlagMulticast, TxQueueLen: 1000,
	}
	fixVtest1 = host.Interface{
		Index: 3, Name: "vtest1", MTU: 1500, MAC: "02:00:00:00:00:e1",
		Flags: host.FlagBroadcast | host.FlagMulticast, TxQueueLen: 1000,
	}
)

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func diff(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", what, got, want)
	}
}

// `ifconfig` lists the UP interfaces in name order: the down vtest0 and
// vtest1 are left out, and the host's order does not matter.
func TestGoldenList(t *testing.T) {
	ifs := []host.Interface{fixVtest1, fixVethA, fixVtest0, fixLo}
	diff(t, "ifconfig", FormatList(ifs, false, false), golden(t, "list.golden"))
}

// `ifconfig -a -s`: the short table of every interface.
func TestGoldenShortAll(t *testing.T) {
	ifs := []host.Interface{fixLo, fixVethA, fixVtest1, fixVtest0}
	diff(t, "ifconfig -a -s", FormatList(ifs, true, true), golden(t, "short-all.golden"))
	// Without -a the down ones are left out.
	want := ShortHeader +
		"lo              65536       22      0      0 0            22      0      0      0 LRU\n" +
		"vethA            1500      732      0      0 0          1069      0      0      0 BMRU\n"
	diff(t, "ifconfig -s", FormatList(ifs, false, true), want)
}

// vtest0 after `ifconfig vtest0 10.200.7.1 netmask 255.255.255.0
// broadcast 10.200.7.255 mtu 1400 up`: up without carrier, 0 counters.
func TestGoldenConfigured(t *testing.T) {
	ife := fixVtest0
	ife.Flags |= host.FlagUp
	ife.MTU = 1400
	ife.Addrs = []host.Addr{{Prefix: pfx("10.200.7.1/24"), Broadcast: ip("10.200.7.255")}}
	diff(t, "configured vtest0", FormatLong(ife), golden(t, "configured.golden"))
}

// A down interface keeps its address; the TX dropped counter is there
// with net-tools' single space before "overruns".
func TestGoldenDown(t *testing.T) {
	ife := fixVtest0
	ife.MTU = 1400
	ife.MAC = "02:00:00:00:00:EE" // printed in lowercase
	ife.Addrs = []host.Addr{{Prefix: pfx("10.200.7.1/24"), Broadcast: ip("10.200.7.255")}}
	ife.Stats.TxDropped = 1
	diff(t, "down vtest0", FormatLong(ife), golden(t, "down.golden"))
}

// An alias block has its header, its own address and the link line,
// and no IPv6 addresses or counters, whatever the host puts in them.
func TestGoldenAlias(t *testing.T) {
	ife := host.Interface{
		Index: 4, Name: "vtest0:1", MTU: 1400, MAC: "02:00:00:00:00:ee", TxQueueLen: 1000,
		Flags: host.FlagUp | host.FlagBroadcast | host.FlagMulticast,
		Addrs: []host.Addr{
			{Prefix: pfx("10.200.7.1/24"), Broadcast: ip("10.200.7.255")}, // the device's own
			{Prefix: pfx("10.200.7.2/24"), Broadcast: ip("10.200.7.255"), Label: "vtest0:1"},
			{Prefix: pfx("fd00:207::1/64")},
		},
		Stats: host.Stats{RxPackets: 5, RxBytes: 500},
	}
	diff(t, "alias", FormatLong(ife), golden(t, "alias.golden"))

	// The device shows its own address, not the alias's.
	dev := ife
	dev.Name = "vtest0"
	if got := FormatLong(dev); !strings.Contains(got, "inet 10.200.7.1 ") || strings.Contains(got, "10.200.7.2 ") {
		t.Errorf("device block shows the wrong IPv4 address:\n%s", got)
	}
}

// Flag names come in net-tools' order, with the decimal bitmask.
func TestGoldenFlags(t *testing.T) {
	lines := strings.SplitAfter(golden(t, "flags.golden"), "\n")
	f := host.FlagUp | host.FlagBroadcast | iffNoARP | host.FlagPromisc | host.FlagAllMulti | host.FlagMulticast
	diff(t, "promisc allmulti -arp", "vtest0: "+FlagsString(f)+"  mtu 1400\n", lines[0])
	diff(t, "plain", "vtest0: "+FlagsString(host.FlagUp|host.FlagBroadcast|host.FlagMulticast)+"  mtu 1400\n", lines[1])
	for flags, want := range map[uint32]string{
		0:                   "flags=0<",
		4098:                "flags=4098<BROADCAST,MULTICAST>",
		73:                  "flags=73<UP,LOOPBACK,RUNNING>",
		0xc00 | host.FlagUp: "flags=3073<UP,SLAVE,MASTER>",
	} {
		if got := FlagsString(flags); got != want {
			t.Errorf("FlagsString(%d) = %q, want %q", flags, got, want)
		}
	}
	for flags, want := range map[uint32]string{
		0: "[NO FLAGS]", 73: "LRU", 4163: "BMRU", 4163 | host.FlagPromisc | host.FlagAllMulti: "ABMPRU",
	} {
		if got := ShortFlags(flags); got != want {
			t.Errorf("ShortFlags(%d) = %q, want %q", flags, got, want)
		}
	}
}

// IPv6 lines in the host's order with their scope; the IPv4 line first.
func TestGoldenInet6(t *testing.T) {
	ife := fixVtest0
	ife.Flags |= host.FlagUp
	ife.Addrs = []host.Addr{
		{Prefix: pfx("10.200.7.1/24"), Broadcast: ip("10.200.7.255")},
		{Prefix: pfx("fd00:207::5/64")}, // no scope from the host: derived
		{Prefix: pfx("fd00:207::1/64"), Scope: "global"},
	}
	var got strings.Builder
	for _, l := range strings.SplitAfter(FormatLong(ife), "\n") {
		if strings.Contains(l, "inet") {
			got.WriteString(l)
		}
	}
	diff(t, "ifconfig vtest0 | grep inet", got.String(), golden(t, "inet6.golden"))
	for a, want := range map[string]string{
		"fe80::1/64": "scopeid 0x20<link>", "::1/128": "scopeid 0x10<host>",
		"fec0::1/64": "scopeid 0x40<site>", "2001:db8::1/64": "scopeid 0x0<global>",
	} {
		id, name := scopeID(host.Addr{Prefix: pfx(a)})
		if got := "scopeid 0x" + strings.TrimPrefix(strings.ToLower(hex(id)), "") + "<" + name + ">"; got != want {
			t.Errorf("scope of %s = %q, want %q", a, got, want)
		}
	}
}

func hex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 16 {
		b = append([]byte{digits[n%16]}, b...)
	}
	return string(b)
}

// Byte counters: 1024 units, tenths truncated, a unit only above 1024
// of the one below.
func TestScaledBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0:             "0.0 B",
		1023:          "1023.0 B",
		1024:          "1024.0 B",
		1025:          "1.0 KiB",
		2224:          "2.1 KiB",
		91636:         "89.4 KiB",
		139040:        "135.7 KiB", // 135.78: truncated, not rounded
		1 << 20:       "1024.0 KiB",
		1<<20 + 1:     "1.0 MiB",
		5 << 30:       "5.0 GiB",
		3 << 40:       "3.0 TiB",
		7 << 50:       "7.0 PiB",
		1<<60 + 1<<59: "1.5 EiB", // net-tools' own EiB arithmetic
	} {
		if got := ScaledBytes(n); got != want {
			t.Errorf("ScaledBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNameOrder(t *testing.T) {
	for _, c := range [][2]string{
		{"eth2", "eth10"}, {"eth0", "eth0:1"}, {"eth0:1", "eth1"}, {"eth0:2", "eth0:10"},
		{"lo", "vethA"}, {"eth0", "lo"}, {"vethA", "vtest0"},
	} {
		if !NameLess(c[0], c[1]) || NameLess(c[1], c[0]) {
			t.Errorf("want %s before %s", c[0], c[1])
		}
	}
	if NameLess("eth0", "eth0") {
		t.Error("eth0 < eth0")
	}
}

// An alias the host lists only as a labelled address of its device gets
// its own entry, after the device.
func TestExpandAliases(t *testing.T) {
	dev := fixVtest0
	dev.Flags |= host.FlagUp
	dev.Addrs = []host.Addr{
		{Prefix: pfx("10.200.7.1/24")},
		{Prefix: pfx("10.200.7.2/24"), Label: "vtest0:1"},
	}
	out := FormatList(ExpandAliases([]host.Interface{dev}), false, false)
	if strings.Count(out, "flags=") != 2 || !strings.Contains(out, "vtest0:1: flags=4099") ||
		strings.Index(out, "vtest0:1:") < strings.Index(out, "vtest0: ") {
		t.Errorf("alias entry missing or out of order:\n%s", out)
	}
	// -s shows it with no statistics.
	short := FormatList(ExpandAliases([]host.Interface{dev}), false, true)
	// %-15.15s %5d, then the message padded to 56 columns.
	want := "vtest0:1         1500      - no statistics available -" + strings.Repeat(" ", 56-32) + "BMU\n"
	if !strings.Contains(short, want) {
		t.Errorf("ifconfig -s:\n%s\nwant line %q", short, want)
	}
}

// Scripts read ifconfig with awk and grep: the fields must be where they
// look for them.
func TestPipeline(t *testing.T) {
	out := FormatList([]host.Interface{fixLo, fixVethA, fixVtest0}, false, false)
	pipe(t, out, "awk", []string{"/inet /{print $2}"}, "127.0.0.1\n10.200.0.1\n")
	pipe(t, out, "grep", []string{"-c", "flags="}, "2\n")
	pipe(t, out, "awk", []string{"-F", ":", "/flags=/{print $1}"}, "lo\nvethA\n")
	pipe(t, out, "awk", []string{"/ether /{print $2}"}, "02:00:00:00:00:0a\n")
	pipe(t, out, "awk", []string{"/RX packets/{print $5}"}, "2224\n91636\n")
	all := FormatList([]host.Interface{fixLo, fixVethA, fixVtest0}, true, true)
	pipe(t, all, "awk", []string{"NR>1{print $1, $2, $NF}"}, "lo 65536 LRU\nvethA 1500 BMRU\nvtest0 1500 BM\n")
}

func pipe(t *testing.T, in, name string, args []string, want string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	if out.String() != want {
		t.Errorf("%s %q = %q, want %q", name, args, out.String(), want)
	}
}
