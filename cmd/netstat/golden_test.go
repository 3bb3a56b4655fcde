package netstat

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/host"
)

// testdata/*.txt are the net-tools 2.10 captures of
// ../shared/compat/netstat.md, copied byte for byte (an.txt without its
// unix part; the "[... N more lines ...]" elisions cut the file there).

// fakeHost is a host.Host holding fixed tables, like the lab namespaces
// the captures were taken in.
type fakeHost struct {
	host.Net // not used by netstat
	socks    []host.Socket
	routes   []host.Route
	ifs      []host.Interface
	secs     []host.CounterSection
	calls    int // Sockets calls
	closed   bool
}

var errNo = host.Errorf(syscall.EOPNOTSUPP, "not in the fake")

func (h *fakeHost) Interfaces(context.Context) ([]host.Interface, error) { return h.ifs, nil }
func (h *fakeHost) Interface(context.Context, string) (host.Interface, error) {
	return host.Interface{}, errNo
}
func (h *fakeHost) AddAddress(context.Context, string, netip.Prefix, netip.Addr) error { return errNo }
func (h *fakeHost) DelAddress(context.Context, string, netip.Addr) error               { return errNo }
func (h *fakeHost) SetUp(context.Context, string, bool) error                          { return errNo }
func (h *fakeHost) SetMTU(context.Context, string, int) error                          { return errNo }
func (h *fakeHost) SetMAC(context.Context, string, string) error                       { return errNo }
func (h *fakeHost) SetPromisc(context.Context, string, bool) error                     { return errNo }
func (h *fakeHost) Routes(context.Context) ([]host.Route, error)                       { return h.routes, nil }
func (h *fakeHost) AddRoute(context.Context, host.Route) error                         { return errNo }
func (h *fakeHost) DelRoute(context.Context, host.Route) error                         { return errNo }
func (h *fakeHost) Neighbors(context.Context) ([]host.Neighbor, error)                 { return nil, errNo }
func (h *fakeHost) AddNeighbor(context.Context, host.Neighbor) error                   { return errNo }
func (h *fakeHost) DelNeighbor(context.Context, string, netip.Addr) error              { return errNo }
func (h *fakeHost) Sockets(context.Context) ([]host.Socket, error) {
	h.calls++
	return h.socks, nil
}
func (h *fakeHost) Counters(context.Context) ([]host.CounterSection, error) { return h.secs, nil }
func (h *fakeHost) Close() error                                            { h.closed = true; return nil }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// nsA is the socket table of the capture namespace nsA, in /proc order.
func nsA() *fakeHost {
	return &fakeHost{
		socks: []host.Socket{
			{Proto: "tcp", Local: ap("0.0.0.0:7000"), State: "LISTEN", SendQ: 4096, PID: 9653, Program: "nc"}, // a backlog in SendQ prints 0
			{Proto: "tcp", Local: ap("10.200.0.1:36672"), Remote: ap("10.200.0.2:5000"), State: "ESTABLISHED", PID: 9699, Program: "nc"},
			{Proto: "tcp", Local: ap("10.200.0.1:36682"), Remote: ap("10.200.0.2:5000"), State: "FIN_WAIT2"},
			// udp before tcp6 in the host's list: netstat orders by file.
			{Proto: "udp", Local: ap("0.0.0.0:7002"), PID: 9654, Program: "nc"},
			{Proto: "tcp6", Local: ap("[::]:7001"), State: "LISTEN", PID: 9652, Program: "nc"},
		},
		routes: []host.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.200.0.2"), Dev: "vethA", Flags: host.RouteUp | host.RouteGateway},
			{Dst: netip.MustParsePrefix("10.200.0.0/24"), Dev: "vethA", Flags: host.RouteUp, Protocol: "kernel"},
			{Dst: netip.MustParsePrefix("fd00:200::/64"), Dev: "vethA", Metric: 256, Flags: host.RouteUp},
			{Dst: netip.MustParsePrefix("fe80::/64"), Dev: "vethA", Metric: 256, Flags: host.RouteUp},
		},
		ifs: []host.Interface{
			{Name: "lo", MTU: 65536, Flags: host.FlagUp | host.FlagLoopback | host.FlagRunning,
				Stats: host.Stats{RxPackets: 22, TxPackets: 22}},
			{Name: "vethA", MTU: 1500, Flags: host.FlagUp | host.FlagBroadcast | host.FlagRunning | host.FlagMulticast,
				Stats: host.Stats{RxPackets: 776, TxPackets: 1115}},
			{Name: "vtest0", MTU: 1500, Flags: host.FlagBroadcast | host.FlagMulticast},
		},
	}
}

// labNames are nsA's /etc/hosts, DNS and /etc/services names.
func labNames() *Names {
	return &Names{
		Hosts:    map[netip.Addr]string{netip.MustParseAddr("10.200.0.1"): "hosta", netip.MustParseAddr("10.200.0.2"): "web.lab"},
		Services: map[string]string{"7000/tcp": "bbs", "7002/udp": "afs3-prserver"},
	}
}

func opener(h host.Host) host.Opener {
	return func(context.Context, string, func(string) string) (host.Host, error) { return h, nil }
}

// runNS runs netstat args on h and returns stdout, stderr and the status.
func runNS(t *testing.T, ctx context.Context, h host.Host, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	rc := Applet(opener(h)).Main(ctx, env, append([]string{"netstat"}, args...))
	return out.String(), errb.String(), rc
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstLines keeps the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

func withNames(t *testing.T, n *Names) {
	old := loadNames
	loadNames = func() *Names { return n }
	t.Cleanup(func() { loadNames = old })
}

func TestGoldenSockets(t *testing.T) {
	withNames(t, labNames())
	for _, tc := range []struct {
		args  []string
		file  string
		lines int // compare only the first lines of the capture (0: all)
	}{
		{[]string{"-tn"}, "tn.txt", 0},
		{[]string{"-t"}, "t.txt", 0},
		{[]string{"-tulpn"}, "tulpn.txt", 0},
		{[]string{"-tulp"}, "tulp.txt", 0},
		{[]string{"-t", "-u", "-l", "-p", "-n"}, "tulpn.txt", 0},
		{[]string{"--tcp", "--udp", "--listening", "--programs", "--numeric"}, "tulpn.txt", 0},
		{[]string{"-an", "-A", "inet,inet6"}, "an.txt", 0},
		{[]string{"-an", "-4", "-6"}, "an.txt", 0},
		// The host reports no timers; the ESTABLISHED row has none running.
		{[]string{"-tnop"}, "tnop.txt", 3},
	} {
		out, errs, rc := runNS(t, context.Background(), nsA(), tc.args...)
		want := golden(t, tc.file)
		if tc.lines > 0 {
			want, out = firstLines(want, tc.lines), firstLines(out, tc.lines)
		}
		if rc != 0 || errs != "" || out != want {
			t.Errorf("netstat %v: rc %d stderr %q\n got:\n%s\nwant:\n%s", tc.args, rc, errs, out, want)
		}
	}
}

// nsB's listeners: link-local (with a zone, which netstat drops), v6 and
// v4 loopback, an accept queue of 1.
func TestGoldenNsB(t *testing.T) {
	h := &fakeHost{socks: []host.Socket{
		{Proto: "tcp", Local: ap("10.200.0.2:80"), State: "LISTEN", PID: 6111, Program: "python3"},
		{Proto: "tcp", Local: ap("10.200.0.2:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp", Local: ap("10.200.0.2:5000"), State: "LISTEN", RecvQ: 1, PID: 9651, Program: "nc"},
		{Proto: "tcp", Local: ap("10.200.2.1:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp", Local: ap("127.0.0.1:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp", Local: ap("10.200.0.2:5000"), Remote: ap("10.200.0.1:36682"), State: "CLOSE_WAIT", RecvQ: 4},
		{Proto: "tcp", Local: ap("10.200.0.2:5000"), Remote: ap("10.200.0.1:36672"), State: "ESTABLISHED"},
		{Proto: "tcp6", Local: ap("[fe80::ff:fe00:20b%vethB]:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp6", Local: ap("[::1]:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp6", Local: ap("[fd00:200::2]:53"), State: "LISTEN", PID: 6467, Program: "dnsmasq"},
		{Proto: "tcp6", Local: ap("[::]:8080"), State: "LISTEN", PID: 6112, Program: "python3"},
	}}
	out, _, rc := runNS(t, context.Background(), h, "-tulnp")
	if want := golden(t, "nsb-tulnp.txt"); rc != 0 || out != want {
		t.Errorf("-tulnp: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
	// The first two rows of -tno have no timer running.
	out, _, rc = runNS(t, context.Background(), h, "-tno")
	if want := firstLines(golden(t, "nsb-tno.txt"), 4); rc != 0 || out != want {
		t.Errorf("-tno: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
}

// A long IPv6 address is cut so that address:port fits in 23 columns,
// the port kept; -W prints it whole.
func TestGoldenTruncation(t *testing.T) {
	h := &fakeHost{socks: []host.Socket{
		{Proto: "tcp", Local: ap("0.0.0.0:7000"), State: "LISTEN"},
		{Proto: "tcp6", Local: ap("[fd00:200::1234:5678:9abc:def0]:12345"), State: "LISTEN"},
	}}
	for args, file := range map[string]string{"-tln": "tln-grep.txt", "-tlnW": "tlnW-grep.txt"} {
		out, _, _ := runNS(t, context.Background(), h, args)
		var got string
		for _, l := range strings.SplitAfter(out, "\n") {
			if strings.Contains(l, "12345") {
				got += l
			}
		}
		if want := golden(t, file); got != want {
			t.Errorf("%s: got %q want %q", args, got, want)
		}
	}
	// A long port name is kept up to 18 columns, the address cut to fit.
	f := &Format{NumHosts: true, Names: &Names{Services: map[string]string{"8080/tcp": "a-very-long-service-name"}}}
	if got, want := f.Addr(ap("10.200.0.1:8080"), false, "tcp"), "10.2:a-very-long-servic"; got != want {
		t.Errorf("long port: %q want %q", got, want)
	}
}

func TestGoldenRoutes(t *testing.T) {
	out, _, rc := runNS(t, context.Background(), nsA(), "-rn")
	if want := golden(t, "rn.txt"); rc != 0 || out != want {
		t.Errorf("-rn: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
	// The host has no route reference counts: Ref is 0 where the capture
	// shows the kernel's 4 and 1; the rest is byte for byte.
	want := golden(t, "rn6.txt")
	want = strings.Replace(want, "U    256 4      0", "U    256 0      0", 1)
	want = strings.Replace(want, "U    256 1      0", "U    256 0      0", 1)
	out, _, rc = runNS(t, context.Background(), nsA(), "-rn", "-6")
	if rc != 0 || out != want {
		t.Errorf("-rn -6: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
	// Without -n the default route is "default" and gateways get names.
	withNames(t, labNames())
	out, _, _ = runNS(t, context.Background(), nsA(), "-r")
	if !strings.Contains(out, "default         web.lab         0.0.0.0         UG        0 0          0 vethA\n") {
		t.Errorf("-r:\n%s", out)
	}
	// -re is route -ee's layout (route.md).
	out, _, _ = runNS(t, context.Background(), nsA(), "-rne")
	wantE := "Kernel IP routing table\n" +
		"Destination     Gateway         Genmask         Flags Metric Ref    Use Iface    MSS   Window irtt\n" +
		"0.0.0.0         10.200.0.2      0.0.0.0         UG    0      0        0 vethA    0     0      0\n" +
		"10.200.0.0      0.0.0.0         255.255.255.0   U     0      0        0 vethA    0     0      0\n"
	if out != wantE {
		t.Errorf("-rne:\n got:\n%s\nwant:\n%s", out, wantE)
	}
}

// route.md: a reject route prints - for its gateway, ref and interface.
func TestRouteReject(t *testing.T) {
	f := &Format{NumHosts: true}
	r := host.Route{Dst: netip.MustParsePrefix("10.200.53.0/24"), Flags: host.RouteReject, Type: "unreachable"}
	if got, want := f.RouteRow4(r, 1), "10.200.53.0     -               255.255.255.0   !     0      -        0 -        0     0      0"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestGoldenInterfaces(t *testing.T) {
	out, _, rc := runNS(t, context.Background(), nsA(), "-i")
	if want := golden(t, "i.txt"); rc != 0 || out != want {
		t.Errorf("-i: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
	// -a shows the interfaces that are down too (ifconfig.md: BM).
	out, _, _ = runNS(t, context.Background(), nsA(), "-ia")
	if !strings.HasSuffix(out, "vtest0           1500        0      0      0 0             0      0      0      0 BM\n") {
		t.Errorf("-ia:\n%s", out)
	}
}

// -ie prints ifconfig's blocks (ifconfig.md) after the title.
func TestInterfacesExtended(t *testing.T) {
	h := &fakeHost{ifs: []host.Interface{
		{Name: "lo", MTU: 65536, Flags: 73, TxQueueLen: 1000,
			Addrs: []host.Addr{{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Scope: "host"}, {Prefix: netip.MustParsePrefix("::1/128"), Scope: "host"}},
			Stats: host.Stats{RxPackets: 22, RxBytes: 2224, TxPackets: 22, TxBytes: 2224}},
		{Name: "vethA", MTU: 1500, Flags: 4163, MAC: "02:00:00:00:00:0a", TxQueueLen: 1000,
			Addrs: []host.Addr{{Prefix: netip.MustParsePrefix("10.200.0.1/24")}, {Prefix: netip.MustParsePrefix("fd00:200::1/64"), Scope: "global"},
				{Prefix: netip.MustParsePrefix("fe80::ff:fe00:a/64"), Scope: "link"}},
			Stats: host.Stats{RxPackets: 732, RxBytes: 91636, TxPackets: 1069, TxBytes: 139040}},
	}}
	out, _, rc := runNS(t, context.Background(), h, "-ie")
	want := `Kernel Interface table
lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536
        inet 127.0.0.1  netmask 255.0.0.0
        inet6 ::1  prefixlen 128  scopeid 0x10<host>
        loop  txqueuelen 1000  (Local Loopback)
        RX packets 22  bytes 2224 (2.1 KiB)
        RX errors 0  dropped 0  overruns 0  frame 0
        TX packets 22  bytes 2224 (2.1 KiB)
        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0

vethA: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500
        inet 10.200.0.1  netmask 255.255.255.0  broadcast 0.0.0.0
        inet6 fd00:200::1  prefixlen 64  scopeid 0x0<global>
        inet6 fe80::ff:fe00:a  prefixlen 64  scopeid 0x20<link>
        ether 02:00:00:00:00:0a  txqueuelen 1000  (Ethernet)
        RX packets 732  bytes 91636 (89.4 KiB)
        RX errors 0  dropped 0  overruns 0  frame 0
        TX packets 1069  bytes 139040 (135.7 KiB)
        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0

`
	if rc != 0 || out != want {
		t.Errorf("-ie: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
}

func counters(name string, kv ...any) host.CounterSection {
	s := host.CounterSection{Name: name}
	for i := 0; i < len(kv); i += 2 {
		s.Counters = append(s.Counters, host.Counter{Name: kv[i].(string), Value: uint64(kv[i+1].(int))})
	}
	return s
}

// The sections of the capture, with every counter of /proc/net/snmp in
// the kernel's order (zeros included).
func snmpCapture() []host.CounterSection {
	return []host.CounterSection{
		counters("Ip", "Forwarding", 2, "DefaultTTL", 64, "InReceives", 655, "InHdrErrors", 0, "InAddrErrors", 0,
			"ForwDatagrams", 0, "InUnknownProtos", 0, "InDiscards", 0, "InDelivers", 655, "OutRequests", 924,
			"OutDiscards", 0, "OutNoRoutes", 0, "ReasmTimeout", 0, "ReasmReqds", 0, "ReasmOKs", 0, "ReasmFails", 0,
			"FragOKs", 0, "FragFails", 0, "FragCreates", 0, "OutTransmits", 924),
		counters("Icmp", "InMsgs", 437, "InErrors", 40, "InCsumErrors", 0, "InDestUnreachs", 149, "InTimeExcds", 60,
			"InParmProbs", 0, "InSrcQuenchs", 0, "InRedirects", 0, "InEchos", 4, "InEchoReps", 224, "InTimestamps", 0,
			"InTimestampReps", 0, "InAddrMasks", 0, "InAddrMaskReps", 0, "OutMsgs", 289, "OutErrors", 0,
			"OutRateLimitGlobal", 0, "OutRateLimitHost", 0, "OutDestUnreachs", 14, "OutTimeExcds", 0, "OutParmProbs", 0,
			"OutSrcQuenchs", 0, "OutRedirects", 0, "OutEchos", 273, "OutEchoReps", 2, "OutTimestamps", 0,
			"OutTimestampReps", 0, "OutAddrMasks", 0, "OutAddrMaskReps", 0),
		counters("IcmpMsg", "InType0", 224, "InType3", 149, "InType8", 4, "InType11", 60, "OutType0", 2, "OutType3", 14),
	}
}

func TestGoldenStatistics(t *testing.T) {
	h := &fakeHost{secs: snmpCapture()}
	out, _, rc := runNS(t, context.Background(), h, "-s")
	if want := golden(t, "s.txt"); rc != 0 || out != want {
		t.Errorf("-s: rc %d\n got:\n%s\nwant:\n%s", rc, out, want)
	}
	h.secs = append(h.secs,
		counters("Tcp", "RtoAlgorithm", 1, "RtoMin", 200, "RtoMax", 120000, "MaxConn", -1, "ActiveOpens", 3,
			"PassiveOpens", 2, "AttemptFails", 1, "EstabResets", 0, "CurrEstab", 1, "InSegs", 40, "OutSegs", 41,
			"RetransSegs", 0, "InErrs", 0, "OutRsts", 1, "InCsumErrors", 0),
		counters("Udp", "InDatagrams", 5, "NoPorts", 1, "InErrors", 0, "OutDatagrams", 6, "RcvbufErrors", 0,
			"SndbufErrors", 0, "InCsumErrors", 0, "IgnoredMulti", 1))
	want := `Tcp:
    3 active connection openings
    2 passive connection openings
    1 failed connection attempts
    0 connection resets received
    1 connections established
    40 segments received
    41 segments sent out
    0 segments retransmitted
    0 bad segments received
    1 resets sent
`
	out, _, _ = runNS(t, context.Background(), h, "-st")
	if out != want {
		t.Errorf("-st:\n got:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = runNS(t, context.Background(), h, "-su")
	wantU := `Udp:
    5 packets received
    1 packets to unknown port received
    0 packet receive errors
    6 packets sent
    0 receive buffer errors
    0 send buffer errors
    IgnoredMulti: 1
`
	if out != wantU {
		t.Errorf("-su:\n got:\n%s\nwant:\n%s", out, wantU)
	}
	// IPv6 sections (Icmp6Msg too) only with -6; an IcmpMsg section with
	// no message type seen is left out, as Linux has no lines for it.
	h.secs = append(h.secs[:3:3], counters("Icmp6Msg", "OutType143", 1), counters("Ip6", "OutRequests", 1, "InReceives", 0),
		counters("IcmpMsg"), h.secs[3], h.secs[4], counters("Udp6", "InDatagrams", 2))
	out, _, _ = runNS(t, context.Background(), h, "-s")
	if !strings.HasPrefix(out, golden(t, "s.txt")) || !strings.HasSuffix(out, want+wantU) {
		t.Errorf("-s with all sections:\n%s", out)
	}
	out, _, _ = runNS(t, context.Background(), h, "-s", "-6", "-w", "-u")
	if want := "Icmp6Msg:\n    OutType143: 1\nIp6:\n    OutRequests: 1\nUdp6:\n    InDatagrams: 2\n"; out != want {
		t.Errorf("-s -6 -wu:\n got:\n%s\nwant:\n%s", out, want)
	}
}

// Scripts cut the table with awk and grep (skipped where they are missing).
func TestPipelines(t *testing.T) {
	pipe := func(tool string, args []string, in string) string {
		t.Helper()
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed", tool)
		}
		cmd := exec.Command(path, args...)
		cmd.Stdin = strings.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return string(out)
	}
	out, _, _ := runNS(t, context.Background(), nsA(), "-tln")
	if got, want := pipe("awk", []string{"NR>2{print $4}"}, out), "0.0.0.0:7000\n:::7001\n"; got != want {
		t.Errorf("netstat -tln | awk: %q want %q", got, want)
	}
	out, _, _ = runNS(t, context.Background(), nsA(), "-tulpn")
	want := "tcp        0      0 0.0.0.0:7000            0.0.0.0:*               LISTEN      9653/nc             \n" +
		"tcp6       0      0 :::7001                 :::*                    LISTEN      9652/nc             \n"
	if got := pipe("grep", []string{"LISTEN"}, out); got != want {
		t.Errorf("netstat -tulpn | grep LISTEN:\n%q\nwant\n%q", got, want)
	}
	// The PID column: awk '{print $7}' gives PID/Program of each LISTEN row.
	if got := pipe("awk", []string{"/LISTEN/{print $7}"}, out); got != "9653/nc\n9652/nc\n" {
		t.Errorf("awk $7: %q", got)
	}
}

// -e adds User and Inode; -n keeps the uid numeric.
func TestExtend(t *testing.T) {
	h := &fakeHost{socks: []host.Socket{
		{Proto: "tcp", Local: ap("10.200.0.1:36672"), Remote: ap("10.200.0.2:5000"), State: "ESTABLISHED", UID: 0, Inode: 23498, PID: 12, Program: "nc"},
	}}
	withNames(t, &Names{User: func(uid uint32) (string, bool) { return "root", uid == 0 }})
	out, _, _ := runNS(t, context.Background(), h, "-tnep")
	want := "Active Internet connections (w/o servers)\n" +
		"Proto Recv-Q Send-Q Local Address           Foreign Address         State       User       Inode      PID/Program name    \n" +
		"tcp        0      0 10.200.0.1:36672        10.200.0.2:5000         ESTABLISHED 0          23498      12/nc               \n"
	if out != want {
		t.Errorf("-tnep:\n got:\n%q\nwant:\n%q", out, want)
	}
	out, _, _ = runNS(t, context.Background(), h, "-te", "--numeric-hosts", "--numeric-ports")
	if !strings.Contains(out, "ESTABLISHED root       23498     \n") {
		t.Errorf("-te: %q", out)
	}
	// A program name is cut to fit PID/name in 19 columns.
	h.socks[0].Program = "a-rather-long-program"
	out, _, _ = runNS(t, context.Background(), h, "-tnp")
	if !strings.HasSuffix(out, "ESTABLISHED 12/a-rather-long-pr \n") {
		t.Errorf("-tnp long name: %q", out)
	}
}

// Which sockets each selection shows (net-tools: TCP by LISTEN state, UDP
// and raw by whether they have a peer), and the raw state as a number.
func TestSelection(t *testing.T) {
	h := &fakeHost{socks: []host.Socket{
		{Proto: "tcp", Local: ap("0.0.0.0:22"), State: "LISTEN"},
		{Proto: "tcp", Local: ap("10.0.0.1:22"), Remote: ap("10.0.0.2:5555"), State: "ESTABLISHED"},
		{Proto: "udp", Local: ap("0.0.0.0:53")},
		{Proto: "udp6", Local: ap("[fd00::1]:4000"), Remote: ap("[fd00::2]:53"), State: "ESTABLISHED"},
		{Proto: "raw", Local: ap("0.0.0.0:1"), State: "7"},
		{Proto: "icmp", Local: ap("0.0.0.0:0")},
	}}
	count := func(args ...string) []string {
		out, _, _ := runNS(t, context.Background(), h, append([]string{"-n"}, args...)...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		var protos []string
		for _, l := range lines[2:] {
			protos = append(protos, strings.Fields(l)[0]+"/"+strings.Fields(l)[3])
		}
		return protos
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "tcp/10.0.0.1:22 udp6/fd00::1:4000"},
		{[]string{"-l"}, "tcp/0.0.0.0:22 udp/0.0.0.0:53 raw/0.0.0.0:1"},
		{[]string{"-a"}, "tcp/0.0.0.0:22 tcp/10.0.0.1:22 udp/0.0.0.0:53 udp6/fd00::1:4000 raw/0.0.0.0:1"},
		{[]string{"-au"}, "udp/0.0.0.0:53 udp6/fd00::1:4000"},
		{[]string{"-a", "-6"}, "udp6/fd00::1:4000"},
		{[]string{"-a", "-4", "-t"}, "tcp/0.0.0.0:22 tcp/10.0.0.1:22"},
		{[]string{"-aw"}, "raw/0.0.0.0:1"},
	} {
		if got := strings.Join(count(tc.args...), " "); got != tc.want {
			t.Errorf("netstat -n %v: %s want %s", tc.args, got, tc.want)
		}
	}
	out, _, _ := runNS(t, context.Background(), h, "-nlw")
	if !strings.HasSuffix(out, "raw        0      0 0.0.0.0:1               0.0.0.0:*               7          \n") {
		t.Errorf("-nlw: %q", out)
	}
	out, _, _ = runNS(t, context.Background(), h, "-nu")
	if !strings.HasSuffix(out, "udp6       0      0 fd00::1:4000            fd00::2:53              ESTABLISHED\n") {
		t.Errorf("-nu: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-Q"}, "netstat: invalid option -- 'Q'\n"},
		{[]string{"-tQ"}, "netstat: invalid option -- 'Q'\n"},
		{[]string{"--bogus"}, "netstat: unrecognized option '--bogus'\n"},
		{[]string{"-A"}, "netstat: option requires an argument -- 'A'\n"},
		{[]string{"-r", "-i"}, ""},
		{[]string{"-t", "x"}, ""},
	} {
		h := nsA()
		out, errs, rc := runNS(t, context.Background(), h, tc.args...)
		if rc != 3 || out != "" || !strings.HasPrefix(errs, tc.msg+"usage: netstat [-vWeenNcCF]") {
			t.Errorf("netstat %v: rc %d stdout %q stderr %q", tc.args, rc, out, errs)
		}
	}
	for _, help := range []string{"-h", "--help", "-th"} {
		out, errs, rc := runNS(t, context.Background(), nsA(), help)
		if rc != 0 || errs != "" || out != usageText {
			t.Errorf("%s: rc %d %q %q", help, rc, out, errs)
		}
	}
	var out, errs string
	var rc int
	_, errs, rc = runNS(t, context.Background(), nsA(), "-A", "ipx")
	if rc != 1 || errs != "Unknown address family `ipx'.\n" {
		t.Errorf("-A ipx: rc %d %q", rc, errs)
	}
	_, errs, rc = runNS(t, context.Background(), nsA(), "-Z")
	if rc != 1 || errs != "SELinux is not enabled on this machine.\n" {
		t.Errorf("-Z: rc %d %q", rc, errs)
	}
	// Unix sockets: the TCP table is printed, then net-tools' message for a
	// family it was built without, status 1.
	out, errs, rc = runNS(t, context.Background(), nsA(), "-tnx")
	if rc != 1 || errs != "netstat: no support for `AF UNIX' on this system.\n" || out != golden(t, "tn.txt") {
		t.Errorf("-tnx: rc %d %q %q", rc, out, errs)
	}
	// With no socket flags the unix part is left out silently.
	_, errs, rc = runNS(t, context.Background(), nsA(), "-n")
	if rc != 0 || errs != "" {
		t.Errorf("-n: rc %d %q", rc, errs)
	}
}

func TestOpenFailure(t *testing.T) {
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	var gotLink string
	open := func(_ context.Context, link string, _ func(string) string) (host.Host, error) {
		gotLink = link
		return nil, errors.New("no netd at /run/stackbox/netd.sock (start one with `stackbox netd`, or use --link)")
	}
	rc := Applet(open).Main(context.Background(), env, []string{"netstat", "--link", "emu:x,loss=0.1", "-tn"})
	if rc == 0 || out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), "netstat: no netd") {
		t.Errorf("rc %d stdout %q stderr %q", rc, out.String(), errb.String())
	}
	if gotLink != "emu:x,loss=0.1" {
		t.Errorf("link %q", gotLink)
	}
}

// -c reprints every second until the context ends, then exits 0; the
// host is opened once and closed.
func TestContinuous(t *testing.T) {
	h := nsA()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, _, rc := runNS(t, ctx, h, "-tnc")
	if rc != 0 || h.calls != 3 || strings.Count(out, "Active Internet connections") != 3 || !h.closed {
		t.Errorf("rc %d, %d listings, %d Sockets calls, closed %v:\n%s", rc, strings.Count(out, "Active Internet"), h.calls, h.closed, out)
	}
	if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("ran %v", d)
	}
	// Without -c one listing.
	h = nsA()
	runNS(t, context.Background(), h, "-tn")
	if h.calls != 1 {
		t.Errorf("%d calls without -c", h.calls)
	}
}

func TestParseNames(t *testing.T) {
	hosts := ParseHosts("127.0.0.1\tlocalhost\n# x\n10.200.0.1 hosta hosta.lab # c\n10.200.0.1 other\n::1 localhost ip6-localhost\nbad line\n")
	if hosts[netip.MustParseAddr("10.200.0.1")] != "hosta" || hosts[netip.MustParseAddr("::1")] != "localhost" || len(hosts) != 3 {
		t.Errorf("hosts %v", hosts)
	}
	sv := ParseServices("ssh\t\t22/tcp\t\t\t\t# SSH\nbbs\t\t7000/tcp\nafs3-prserver\t7002/udp\ndomain 53/tcp\ndomain 53/udp\nx 0/tcp\n")
	if sv["22/tcp"] != "ssh" || sv["7002/udp"] != "afs3-prserver" || sv["53/udp"] != "domain" || len(sv) != 5 {
		t.Errorf("services %v", sv)
	}
}
