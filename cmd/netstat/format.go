package netstat

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/pkg/host"
)

// This file holds the output formats of net-tools 2.10 netstat as pure
// functions of host types, measured from ../shared/compat/netstat.md
// (and route.md / ifconfig.md for the layouts netstat shares with them).

// Names turns numbers into names when netstat is not numeric: host
// addresses (from /etc/hosts), ports (from /etc/services) and users. A
// nil map or func means "no name", so the number is printed.
type Names struct {
	Hosts    map[netip.Addr]string // address → first name
	Services map[string]string     // "7000/tcp" → "bbs"
	User     func(uid uint32) (string, bool)
}

func (n *Names) host(a netip.Addr) (string, bool) {
	if n == nil || n.Hosts == nil {
		return "", false
	}
	s, ok := n.Hosts[a]
	return s, ok
}

func (n *Names) service(port uint16, proto string) (string, bool) {
	if n == nil || n.Services == nil {
		return "", false
	}
	s, ok := n.Services[strconv.Itoa(int(port))+"/"+proto]
	return s, ok
}

func (n *Names) user(uid uint32) (string, bool) {
	if n == nil || n.User == nil {
		return "", false
	}
	return n.User(uid)
}

// Format is what changes the look of the tables: the options of the
// command line that net-tools' printing looks at.
type Format struct {
	NumHosts, NumPorts, NumUsers bool // -n (or --numeric-hosts, …)
	Wide                         bool // -W: no address truncation
	Programs                     bool // -p
	Extend                       int  // number of -e
	Timers                       bool // -o
	Names                        *Names
}

// SocketTitle is the first line of the socket table: which sockets the
// listing shows.
func SocketTitle(listening, all bool) string {
	switch {
	case all:
		return "Active Internet connections (servers and established)"
	case listening:
		return "Active Internet connections (only servers)"
	}
	return "Active Internet connections (w/o servers)"
}

// SocketHeader is the column header line of the socket table.
func (f *Format) SocketHeader() string {
	s := "Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
	if f.Extend > 0 {
		s += " User       Inode     "
	}
	if f.Programs {
		s += " PID/Program name    "
	}
	if f.Timers {
		s += " Timer"
	}
	return s
}

// shortLen is how long net-tools lets "address:port" be in a 23-column
// field before it cuts the address (netstat.c addr_do_one).
const shortLen = 22

// family6 says whether a socket of the host is an IPv6 one.
func family6(s host.Socket) bool {
	if strings.HasSuffix(s.Proto, "6") {
		return true
	}
	return s.Local.Addr().Is6() && !s.Local.Addr().Is4In6()
}

// servProto is the /etc/services protocol of a socket's port.
func servProto(proto string) string {
	p := strings.TrimSuffix(proto, "6")
	if p == "tcp" || p == "udp" {
		return p
	}
	return ""
}

// Addr formats one end of a socket as net-tools does: host and port (or
// "*" for port 0), the wildcard host as 0.0.0.0, or :: ([::] when
// names are wanted), the zone of a link-local address dropped, and,
// unless Wide, the address cut short so that "addr:port" fits in 23
// columns with the port kept.
func (f *Format) Addr(ap netip.AddrPort, v6 bool, proto string) string {
	a := ap.Addr()
	if !a.IsValid() {
		if v6 {
			a = netip.IPv6Unspecified()
		} else {
			a = netip.IPv4Unspecified()
		}
	}
	a = a.WithZone("")
	var saddr string
	switch {
	case f.NumHosts:
		saddr = a.String()
	case a.IsUnspecified() && a.Is6():
		saddr = "[::]"
	default:
		saddr = a.String()
		if !a.IsUnspecified() {
			if n, ok := f.Names.host(a); ok {
				saddr = n
			}
		}
	}
	var sport string
	switch port := ap.Port(); {
	case port == 0:
		sport = "*"
	case f.NumPorts:
		sport = strconv.Itoa(int(port))
	default:
		sport = strconv.Itoa(int(port))
		if p := servProto(proto); p != "" {
			if n, ok := f.Names.service(port, p); ok {
				sport = n
			}
		}
	}
	if !f.Wide && len(saddr)+len(sport) > shortLen {
		pl := min(len(sport), shortLen-4)
		al := min(shortLen-pl, len(saddr))
		return saddr[:al] + ":" + sport[:pl]
	}
	return saddr + ":" + sport
}

// progWidth is the width of the PID/Program name column; net-tools keeps
// "PID/name" in a buffer of that size, so it is cut to one less.
const progWidth = 20

// SocketRow is one line of the socket table.
func (f *Format) SocketRow(s host.Socket) string {
	v6 := family6(s)
	sendQ := s.SendQ
	if s.State == "LISTEN" {
		// /proc/net/tcp has no send queue for a listener (Linux
		// reports 0); some hosts give the backlog there, as ss does.
		sendQ = 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-5s %6d %6d %-23s %-23s %-11s", s.Proto, s.RecvQ, sendQ,
		f.Addr(s.Local, v6, s.Proto), f.Addr(s.Remote, v6, s.Proto), s.State)
	if f.Extend > 0 {
		user := strconv.FormatUint(uint64(s.UID), 10)
		if !f.NumUsers {
			if n, ok := f.Names.user(s.UID); ok {
				user = n
			}
		}
		fmt.Fprintf(&b, " %-10s %-10d", user, s.Inode)
	}
	if f.Programs {
		prog := "-"
		if s.PID != 0 {
			prog = strconv.Itoa(s.PID) + "/" + s.Program
			if len(prog) > progWidth-1 {
				prog = prog[:progWidth-1]
			}
		}
		fmt.Fprintf(&b, " %-20s", prog)
	}
	if f.Timers {
		// The host does not report socket timers; net-tools prints this
		// for a socket with none running.
		b.WriteString(" off (0.00/0/0)")
	}
	return b.String()
}

// protoOrder is the order net-tools reads /proc/net/{tcp,tcp6,udp,udp6,
// raw,raw6} in; rows keep the host's order within one file.
var protoOrder = []string{"tcp", "tcp6", "udp", "udp6", "raw", "raw6"}

// Selection says which sockets a listing shows.
type Selection struct {
	TCP, UDP, Raw  bool
	Inet, Inet6    bool
	Listening, All bool
}

// connected says whether a UDP or raw socket has a peer (net-tools
// notnull(remaddr): the address, not the port).
func connected(s host.Socket) bool {
	return s.Remote.IsValid() && !s.Remote.Addr().IsUnspecified()
}

// Select returns the sockets a listing shows, in net-tools' order.
func (sel Selection) Select(socks []host.Socket) []host.Socket {
	var out []host.Socket
	for _, p := range protoOrder {
		base := strings.TrimSuffix(p, "6")
		v6 := base != p
		if v6 && !sel.Inet6 || !v6 && !sel.Inet {
			continue
		}
		switch base {
		case "tcp":
			if !sel.TCP {
				continue
			}
		case "udp":
			if !sel.UDP {
				continue
			}
		case "raw":
			if !sel.Raw {
				continue
			}
		}
		for _, s := range socks {
			if s.Proto != p {
				continue
			}
			var server bool
			if base == "tcp" {
				server = s.State == "LISTEN"
			} else {
				server = !connected(s)
			}
			if !sel.All && server != sel.Listening {
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// ifaceFlags is the Flg column of netstat -i (lib/interface.c
// ife_print_short order), from Linux IFF_* bits.
func ifaceFlags(fl uint32) string {
	if fl == 0 {
		return "[NO FLAGS]"
	}
	const (
		iffDebug       = 0x4
		iffPointToPnt  = 0x10
		iffNoTrailers  = 0x20
		iffNoARP       = 0x80
		iffMaster      = 0x400
		iffSlave       = 0x800
		iffDynamic     = 0x8000
		iffPointToPntL = 'P'
	)
	var b []byte
	for _, x := range []struct {
		bit uint32
		c   byte
	}{
		{host.FlagAllMulti, 'A'}, {host.FlagBroadcast, 'B'}, {iffDebug, 'D'},
		{host.FlagLoopback, 'L'}, {host.FlagMulticast, 'M'}, {iffDynamic, 'd'},
		{host.FlagPromisc, 'P'}, {iffNoTrailers, 'N'}, {iffNoARP, 'O'},
		{iffPointToPnt, iffPointToPntL}, {iffSlave, 's'}, {iffMaster, 'm'},
		{host.FlagRunning, 'R'}, {host.FlagUp, 'U'},
	} {
		if fl&x.bit != 0 {
			b = append(b, x.c)
		}
	}
	return string(b)
}

// IfaceHeader is the header of netstat -i.
const IfaceHeader = "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg"

// IfaceRow is one line of netstat -i. The host has no FIFO overrun
// counters, so RX-OVR and TX-OVR are 0.
func IfaceRow(it host.Interface) string {
	name := it.Name
	if len(name) > 15 {
		name = name[:15]
	}
	st := it.Stats
	return fmt.Sprintf("%-15s %5d %8d %6d %6d %-6d %8d %6d %6d %6d %s", name, it.MTU,
		st.RxPackets, st.RxErrors, st.RxDropped, 0,
		st.TxPackets, st.TxErrors, st.TxDropped, 0, ifaceFlags(it.Flags))
}

// ifconfig's flag names in bit order (ifconfig -a / netstat -ie).
var ifFlagNames = []struct {
	bit  uint32
	name string
}{
	{0x1, "UP"}, {0x2, "BROADCAST"}, {0x4, "DEBUG"}, {0x8, "LOOPBACK"},
	{0x10, "POINTOPOINT"}, {0x20, "NOTRAILERS"}, {0x40, "RUNNING"}, {0x80, "NOARP"},
	{0x100, "PROMISC"}, {0x200, "ALLMULTI"}, {0x400, "MASTER"}, {0x800, "SLAVE"},
	{0x1000, "MULTICAST"}, {0x2000, "PORTSEL"}, {0x4000, "AUTOMEDIA"}, {0x8000, "DYNAMIC"},
}

// humanBytes is ifconfig's " (2.1 KiB)" after a byte counter: 1024
// units, one decimal, truncated.
func humanBytes(n uint64) string {
	units := []struct {
		size uint64
		name string
	}{{1 << 50, "PiB"}, {1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if n > u.size {
			t := n / (u.size / 1024) * 10 / 1024
			return fmt.Sprintf("%d.%d %s", t/10, t%10, u.name)
		}
	}
	return fmt.Sprintf("%d.%d B", n, 0)
}

func scopeID(a host.Addr) string {
	switch {
	case a.Scope == "host" || a.Prefix.Addr().IsLoopback():
		return "0x10<host>"
	case a.Scope == "link" || a.Prefix.Addr().IsLinkLocalUnicast():
		return "0x20<link>"
	}
	return "0x0<global>"
}

// IfaceBlock is one interface in ifconfig's long layout (netstat -ie),
// ending in the blank line.
func IfaceBlock(it host.Interface) string {
	var b strings.Builder
	var names []string
	for _, f := range ifFlagNames {
		if it.Flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	fmt.Fprintf(&b, "%s: flags=%d<%s>  mtu %d\n", it.Name, it.Flags, strings.Join(names, ","), it.MTU)
	v4done := false
	for _, a := range it.Addrs {
		if !a.Prefix.Addr().Is4() || v4done {
			continue
		}
		// Only the interface's primary address: aliases are their own
		// interfaces.
		if a.Label != "" && a.Label != it.Name {
			continue
		}
		v4done = true
		mask := netip.AddrFrom4([4]byte(maskBytes(a.Prefix.Bits())))
		fmt.Fprintf(&b, "        inet %s  netmask %s", a.Prefix.Addr(), mask)
		if it.Flags&host.FlagBroadcast != 0 {
			bc := a.Broadcast
			if !bc.IsValid() {
				bc = netip.IPv4Unspecified()
			}
			fmt.Fprintf(&b, "  broadcast %s", bc)
		}
		b.WriteString("\n")
	}
	for _, a := range it.Addrs {
		if !a.Prefix.Addr().Is6() || a.Prefix.Addr().Is4In6() {
			continue
		}
		fmt.Fprintf(&b, "        inet6 %s  prefixlen %d  scopeid %s\n", a.Prefix.Addr().WithZone(""), a.Prefix.Bits(), scopeID(a))
	}
	txq := it.TxQueueLen
	if it.Flags&host.FlagLoopback != 0 {
		fmt.Fprintf(&b, "        loop  txqueuelen %d  (Local Loopback)\n", txq)
	} else if it.MAC != "" {
		fmt.Fprintf(&b, "        ether %s  txqueuelen %d  (Ethernet)\n", strings.ToLower(it.MAC), txq)
	}
	st := it.Stats
	fmt.Fprintf(&b, "        RX packets %d  bytes %d (%s)\n", st.RxPackets, st.RxBytes, humanBytes(st.RxBytes))
	fmt.Fprintf(&b, "        RX errors %d  dropped %d  overruns %d  frame %d\n", st.RxErrors, st.RxDropped, 0, 0)
	fmt.Fprintf(&b, "        TX packets %d  bytes %d (%s)\n", st.TxPackets, st.TxBytes, humanBytes(st.TxBytes))
	fmt.Fprintf(&b, "        TX errors %d  dropped %d overruns %d  carrier %d  collisions %d\n", st.TxErrors, st.TxDropped, 0, 0, 0)
	b.WriteString("\n")
	return b.String()
}

func maskBytes(bits int) []byte {
	m := make([]byte, 4)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// Route tables. netstat -r prints route -e's IPv4 layout, netstat -re
// route -ee's; the IPv6 table is route -A inet6's.

// RouteTitle4 and RouteTitle6 head the routing tables.
const (
	RouteTitle4 = "Kernel IP routing table"
	RouteTitle6 = "Kernel IPv6 routing table"
)

// RouteHeader4 is the IPv4 column header; extend is the number of -e.
func RouteHeader4(extend int) string {
	if extend > 0 {
		return "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface    MSS   Window irtt"
	}
	return "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface"
}

// RouteHeader6 is the IPv6 column header.
const RouteHeader6 = "Destination                    Next Hop                   Flag Met Ref  Use If"

func reject(r host.Route) bool {
	return r.Flags&host.RouteReject != 0 || (r.Type != "" && r.Type != "unicast")
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (f *Format) routeHost4(a netip.Addr) string {
	if !f.NumHosts && !a.IsUnspecified() {
		if n, ok := f.Names.host(a); ok {
			return n
		}
	}
	return a.String()
}

// RouteRow4 is one IPv4 route.
func (f *Format) RouteRow4(r host.Route, extend int) string {
	dst := r.Dst.Masked().Addr().String()
	if !f.NumHosts {
		switch {
		case r.Dst.Bits() == 0:
			dst = "default"
		case r.Dst.IsSingleIP():
			dst = f.routeHost4(r.Dst.Addr())
		}
	}
	gw, dev, ref := "0.0.0.0", r.Dev, "0"
	if r.Gateway.IsValid() {
		gw = f.routeHost4(r.Gateway)
	}
	if reject(r) {
		gw, dev, ref = "-", "-", "-"
	}
	mask := netip.AddrFrom4([4]byte(maskBytes(r.Dst.Bits())))
	flags := host.RouteFlagString(r.Flags)
	head := fmt.Sprintf("%-15s %-15s %-15s %-5s ", trunc(dst, 15), trunc(gw, 15), mask, flags)
	if extend > 0 {
		return head + fmt.Sprintf("%-6d %-2s %7d %-8s %-5d %-6d %d", r.Metric, ref, r.Use, dev, 0, 0, 0)
	}
	return head + fmt.Sprintf("%5d %-6d %5d %s", 0, 0, 0, dev)
}

// RouteRow6 is one IPv6 route.
func (f *Format) RouteRow6(r host.Route) string {
	dst := r.Dst.Masked()
	ds := dst.String()
	gw := "::"
	if r.Gateway.IsValid() {
		gw = r.Gateway.WithZone("").String()
	}
	if !f.NumHosts {
		a := dst.Addr()
		name := a.String()
		if a.IsUnspecified() {
			name = "[::]"
		} else if n, ok := f.Names.host(a); ok {
			name = n
		}
		ds = name + "/" + strconv.Itoa(dst.Bits())
		if !r.Gateway.IsValid() || r.Gateway.IsUnspecified() {
			gw = "[::]"
		} else if n, ok := f.Names.host(r.Gateway.WithZone("")); ok {
			gw = n
		}
	}
	dev := r.Dev
	if reject(r) && dev == "" {
		dev = "lo"
	}
	return fmt.Sprintf("%-30s %-26s %-4s %-3d %-1d %6d %s", ds, gw, host.RouteFlagString(r.Flags), r.Metric, 0, r.Use, dev)
}

// Statistics (netstat -s): net-tools' statistics.c prose for the
// sections of /proc/net/snmp it knows, "Name: value" for counters it
// does not know.

type entryKind int

const (
	kNumber  entryKind = iota // always printed
	kOpt                      // printed when not zero
	kSkip                     // never printed (I_STATIC, empty format)
	kInHist                   // ICMP input histogram line, when not zero
	kOutHist                  // ICMP output histogram line, when not zero
)

type statEntry struct {
	format string // %d is the value
	kind   entryKind
}

var statTables = map[string]map[string]statEntry{
	"Ip": {
		"DefaultTTL":      {"", kSkip},
		"InReceives":      {"%d total packets received", kNumber},
		"InHdrErrors":     {"%d with invalid headers", kOpt},
		"InAddrErrors":    {"%d with invalid addresses", kOpt},
		"ForwDatagrams":   {"%d forwarded", kNumber},
		"InUnknownProtos": {"%d with unknown protocol", kOpt},
		"InDiscards":      {"%d incoming packets discarded", kNumber},
		"InDelivers":      {"%d incoming packets delivered", kNumber},
		"OutRequests":     {"%d requests sent out", kNumber},
		"OutDiscards":     {"%d outgoing packets dropped", kOpt},
		"OutNoRoutes":     {"%d dropped because of missing route", kOpt},
		"ReasmTimeout":    {"%d fragments dropped after timeout", kOpt},
		"ReasmReqds":      {"%d reassemblies required", kOpt},
		"ReasmOKs":        {"%d packets reassembled ok", kOpt},
		"ReasmFails":      {"%d packet reassemblies failed", kOpt},
		"FragOKs":         {"%d fragments received ok", kOpt},
		"FragFails":       {"%d fragments failed", kOpt},
		"FragCreates":     {"%d fragments created", kOpt},
	},
	"Icmp": {
		"InMsgs":           {"%d ICMP messages received", kNumber},
		"InErrors":         {"%d input ICMP message failed", kNumber},
		"InDestUnreachs":   {"destination unreachable: %d", kInHist},
		"InTimeExcds":      {"timeout in transit: %d", kInHist},
		"InParmProbs":      {"wrong parameters: %d", kInHist},
		"InSrcQuenchs":     {"source quenches: %d", kInHist},
		"InRedirects":      {"redirects: %d", kInHist},
		"InEchos":          {"echo requests: %d", kInHist},
		"InEchoReps":       {"echo replies: %d", kInHist},
		"InTimestamps":     {"timestamp request: %d", kInHist},
		"InTimestampReps":  {"timestamp reply: %d", kInHist},
		"InAddrMasks":      {"address mask request: %d", kInHist},
		"InAddrMaskReps":   {"address mask replies: %d", kInHist},
		"OutMsgs":          {"%d ICMP messages sent", kNumber},
		"OutErrors":        {"%d ICMP messages failed", kNumber},
		"OutDestUnreachs":  {"destination unreachable: %d", kOutHist},
		"OutTimeExcds":     {"time exceeded: %d", kOutHist},
		"OutParmProbs":     {"wrong parameters: %d", kOutHist},
		"OutSrcQuenchs":    {"source quench: %d", kOutHist},
		"OutRedirects":     {"redirect: %d", kOutHist},
		"OutEchos":         {"echo requests: %d", kOutHist},
		"OutEchoReps":      {"echo replies: %d", kOutHist},
		"OutTimestamps":    {"timestamp requests: %d", kOutHist},
		"OutTimestampReps": {"timestamp replies: %d", kOutHist},
		"OutAddrMasks":     {"address mask requests: %d", kOutHist},
		"OutAddrMaskReps":  {"address mask replies: %d", kOutHist},
	},
	"Tcp": {
		"RtoAlgorithm": {"", kSkip},
		"RtoMin":       {"", kSkip},
		"RtoMax":       {"", kSkip},
		"MaxConn":      {"", kSkip},
		"ActiveOpens":  {"%d active connection openings", kNumber},
		"PassiveOpens": {"%d passive connection openings", kNumber},
		"AttemptFails": {"%d failed connection attempts", kNumber},
		"EstabResets":  {"%d connection resets received", kNumber},
		"CurrEstab":    {"%d connections established", kNumber},
		"InSegs":       {"%d segments received", kNumber},
		"OutSegs":      {"%d segments sent out", kNumber},
		"RetransSegs":  {"%d segments retransmitted", kNumber},
		"InErrs":       {"%d bad segments received", kNumber},
		"OutRsts":      {"%d resets sent", kNumber},
	},
	"Udp": {
		"InDatagrams":  {"%d packets received", kNumber},
		"NoPorts":      {"%d packets to unknown port received", kNumber},
		"InErrors":     {"%d packet receive errors", kNumber},
		"OutDatagrams": {"%d packets sent", kNumber},
		"RcvbufErrors": {"%d receive buffer errors", kNumber},
		"SndbufErrors": {"%d send buffer errors", kNumber},
	},
}

func init() { statTables["UdpLite"] = statTables["Udp"] }

// StatsFilter picks the sections of netstat -s: -w (raw) the IP and ICMP
// ones, -t the TCP ones, -u the UDP ones; -6 the IPv6 sections in place
// of the IPv4 ones.
type StatsFilter struct {
	Raw, TCP, UDP bool
	Inet6         bool
}

func (sf StatsFilter) wants(section string) bool {
	v6 := strings.Contains(section, "6") // Ip6, Icmp6, Icmp6Msg, Udp6, UdpLite6
	if v6 != sf.Inet6 && !strings.HasPrefix(section, "Tcp") {
		return false
	}
	switch {
	case strings.HasPrefix(section, "Tcp"), strings.HasPrefix(section, "MPTcp"):
		return sf.TCP
	case strings.HasPrefix(section, "Udp"):
		return sf.UDP
	case strings.HasPrefix(section, "Ip"), strings.HasPrefix(section, "Icmp"):
		return sf.Raw
	}
	return sf.Raw
}

func allZero(sec host.CounterSection) bool {
	for _, c := range sec.Counters {
		if c.Value != 0 {
			return false
		}
	}
	return true
}

// Statistics formats the counter sections as netstat -s.
func Statistics(secs []host.CounterSection, sf StatsFilter) string {
	var b strings.Builder
	const (
		normal = iota
		inHist
		outHist
	)
	state, indent := normal, 4
	for _, sec := range secs {
		if !sf.wants(sec.Name) {
			continue
		}
		if strings.HasSuffix(sec.Name, "Msg") && allZero(sec) {
			// Linux lists only the message types seen, and no
			// IcmpMsg lines at all before the first.
			continue
		}
		fmt.Fprintf(&b, "%s:\n", sec.Name)
		tab, known := statTables[sec.Name]
		if known {
			state, indent = normal, 4
		}
		for _, c := range sec.Counters {
			e, ok := tab[c.Name]
			if !ok {
				// net-tools' "try our best" line, at the current
				// indentation (so IcmpMsg after a histogram is at 8).
				if c.Value != 0 {
					fmt.Fprintf(&b, "%*s%s: %d\n", indent, "", c.Name, c.Value)
				}
				continue
			}
			switch e.kind {
			case kSkip:
				continue
			case kOpt:
				if c.Value == 0 {
					continue
				}
				fallthrough
			case kNumber:
				state, indent = normal, 4
			case kInHist, kOutHist:
				if c.Value == 0 {
					continue
				}
				want, title := inHist, "ICMP input histogram:"
				if e.kind == kOutHist {
					want, title = outHist, "ICMP output histogram:"
				}
				if state != want {
					fmt.Fprintf(&b, "    %s\n", title)
					state, indent = want, 8
				}
			}
			fmt.Fprintf(&b, "%*s", indent, "")
			fmt.Fprintf(&b, e.format+"\n", c.Value)
		}
	}
	return b.String()
}
