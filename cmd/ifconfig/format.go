package ifconfig

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/pkg/host"
)

// This file holds the output formats of net-tools 2.10 ifconfig as pure
// functions of host types (../shared/compat/ifconfig.md): the long block of
// `ifconfig [-a] [IF]` and the short table of `ifconfig -s`.

// IFF_* bits that host does not name but net-tools prints (Linux
// include/uapi/linux/if.h).
const (
	iffDebug        uint32 = 0x4
	iffPointToPoint uint32 = 0x10
	iffNoTrailers   uint32 = 0x20
	iffNoARP        uint32 = 0x80
	iffMaster       uint32 = 0x400
	iffSlave        uint32 = 0x800
	iffPortSel      uint32 = 0x2000
	iffAutoMedia    uint32 = 0x4000
	iffDynamic      uint32 = 0x8000
)

// longFlagNames is the order net-tools lists flag names in the block
// header (SLAVE before MASTER, unlike their bit order).
var longFlagNames = []struct {
	bit  uint32
	name string
}{
	{host.FlagUp, "UP"},
	{host.FlagBroadcast, "BROADCAST"},
	{iffDebug, "DEBUG"},
	{host.FlagLoopback, "LOOPBACK"},
	{iffPointToPoint, "POINTOPOINT"},
	{iffNoTrailers, "NOTRAILERS"},
	{host.FlagRunning, "RUNNING"},
	{iffNoARP, "NOARP"},
	{host.FlagPromisc, "PROMISC"},
	{host.FlagAllMulti, "ALLMULTI"},
	{iffSlave, "SLAVE"},
	{iffMaster, "MASTER"},
	{host.FlagMulticast, "MULTICAST"},
	{iffDynamic, "DYNAMIC"},
}

// shortFlagLetters is the order of the Flg column of ifconfig -s and
// netstat -i (P appears twice in net-tools: PROMISC and POINTOPOINT).
var shortFlagLetters = []struct {
	bit    uint32
	letter byte
}{
	{host.FlagAllMulti, 'A'},
	{host.FlagBroadcast, 'B'},
	{iffDebug, 'D'},
	{host.FlagLoopback, 'L'},
	{host.FlagMulticast, 'M'},
	{iffDynamic, 'd'},
	{host.FlagPromisc, 'P'},
	{iffNoTrailers, 'N'},
	{iffNoARP, 'O'},
	{iffPointToPoint, 'P'},
	{iffSlave, 's'},
	{iffMaster, 'm'},
	{host.FlagRunning, 'R'},
	{host.FlagUp, 'U'},
}

// defaultTxQueueLen is printed when the host does not report a queue
// length (Interface.TxQueueLen 0): Linux's default for Ethernet devices
// and loopback, the only kinds the stack has.
const defaultTxQueueLen = 1000

// ShortHeader is the header line of ifconfig -s.
const ShortHeader = "Iface      MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg\n"

// IsAlias reports whether name is an IPv4 alias interface (eth0:1).
func IsAlias(name string) bool { return strings.Contains(name, ":") }

// baseName is the device an alias belongs to: eth0 for eth0:1.
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// FlagsString is the header's `flags=N<NAME,...>`.
func FlagsString(flags uint32) string {
	var names []string
	for _, f := range longFlagNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		// net-tools builds "flags=0<>" and then cuts its last byte.
		return "flags=0<"
	}
	return "flags=" + strconv.FormatUint(uint64(flags), 10) + "<" + strings.Join(names, ",") + ">"
}

// ShortFlags is the Flg column of ifconfig -s.
func ShortFlags(flags uint32) string {
	if flags == 0 {
		return "[NO FLAGS]"
	}
	var b []byte
	for _, f := range shortFlagLetters {
		if flags&f.bit != 0 {
			b = append(b, f.letter)
		}
	}
	return string(b)
}

// ScaledBytes is the `(X.Y KiB)` text after a byte counter: 1024 units,
// the tenth truncated, a unit only past 1024 of the one below (net-tools).
func ScaledBytes(n uint64) string {
	units := []struct {
		limit uint64
		name  string
	}{
		{1 << 50, "PiB"}, {1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"},
	}
	tenths, unit := n*10, "B"
	if n > 1<<60 {
		// net-tools divides by a rounded-down 2^60/10 here.
		tenths, unit = n/115292150460684697, "EiB"
	} else {
		for _, u := range units {
			if n > u.limit {
				tenths, unit = n*10/u.limit, u.name
				break
			}
		}
	}
	return fmt.Sprintf("%d.%d %s", tenths/10, tenths%10, unit)
}

// PrimaryV4 returns the IPv4 address ifconfig shows for the interface
// named ife.Name: the first one labelled with that name (an unlabelled
// address belongs to the device itself, never to an alias).
func PrimaryV4(ife host.Interface) (host.Addr, bool) {
	return labelledV4(ife.Addrs, ife.Name)
}

func labelledV4(addrs []host.Addr, name string) (host.Addr, bool) {
	for _, a := range addrs {
		if !a.Prefix.Addr().Is4() {
			continue
		}
		if a.Label == name || (a.Label == "" && !IsAlias(name)) {
			return a, true
		}
	}
	return host.Addr{}, false
}

// Mask returns the IPv4 netmask of a prefix length.
func Mask(bits int) netip.Addr {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// scopeID returns the scope number and name net-tools prints for an IPv6
// address, from the host's scope or, without one, from the address.
func scopeID(a host.Addr) (int, string) {
	switch a.Scope {
	case "global":
		return 0, "global"
	case "link":
		return 0x20, "link"
	case "host":
		return 0x10, "host"
	case "site":
		return 0x40, "site"
	}
	ip := a.Prefix.Addr()
	switch {
	case ip.IsLoopback():
		return 0x10, "host"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return 0x20, "link"
	case ip.Is6() && ip.As16()[0] == 0xfe && ip.As16()[1]&0xc0 == 0xc0:
		return 0x40, "site"
	}
	return 0, "global"
}

// formatMAC prints a MAC address in net-tools' lowercase colon form.
func formatMAC(mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil {
		return hw.String()
	}
	return mac
}

// FormatLong returns the block `ifconfig IF` prints for ife, ending with
// the blank line. An alias (eth0:1) shows only its header, IPv4 address
// and link lines, as Linux has no counters or IPv6 addresses for it.
func FormatLong(ife host.Interface) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s  mtu %d\n", ife.Name, FlagsString(ife.Flags), ife.MTU)
	if a, ok := PrimaryV4(ife); ok {
		fmt.Fprintf(&b, "        inet %s  netmask %s", a.Prefix.Addr(), Mask(a.Prefix.Bits()))
		if ife.Flags&host.FlagBroadcast != 0 {
			brd := a.Broadcast
			if !brd.Is4() {
				brd = netip.IPv4Unspecified()
			}
			fmt.Fprintf(&b, "  broadcast %s", brd)
		}
		b.WriteString("\n")
	}
	alias := IsAlias(ife.Name)
	if !alias {
		for _, a := range ife.Addrs {
			ip := a.Prefix.Addr()
			if !ip.Is6() {
				continue
			}
			id, name := scopeID(a)
			fmt.Fprintf(&b, "        inet6 %s  prefixlen %d  scopeid 0x%x<%s>\n", ip.WithZone(""), a.Prefix.Bits(), id, name)
		}
	}
	txq := ife.TxQueueLen
	if txq == 0 {
		txq = defaultTxQueueLen
	}
	switch {
	case ife.Flags&host.FlagLoopback != 0:
		fmt.Fprintf(&b, "        loop  txqueuelen %d  (Local Loopback)\n", txq)
	case ife.MAC != "":
		fmt.Fprintf(&b, "        ether %s  txqueuelen %d  (Ethernet)\n", formatMAC(ife.MAC), txq)
	default:
		fmt.Fprintf(&b, "        unspec 00-00-00-00-00-00-00-00-00-00-00-00-00-00-00-00  txqueuelen %d  (UNSPEC)\n", txq)
	}
	if !alias {
		s := ife.Stats
		fmt.Fprintf(&b, "        RX packets %d  bytes %d (%s)\n", s.RxPackets, s.RxBytes, ScaledBytes(s.RxBytes))
		fmt.Fprintf(&b, "        RX errors %d  dropped %d  overruns 0  frame 0\n", s.RxErrors, s.RxDropped)
		fmt.Fprintf(&b, "        TX packets %d  bytes %d (%s)\n", s.TxPackets, s.TxBytes, ScaledBytes(s.TxBytes))
		fmt.Fprintf(&b, "        TX errors %d  dropped %d overruns 0  carrier 0  collisions 0\n", s.TxErrors, s.TxDropped)
	}
	b.WriteString("\n")
	return b.String()
}

// FormatShort returns the line of ifconfig -s (and netstat -i) for ife.
// An alias has no counters of its own.
func FormatShort(ife host.Interface) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-15.15s %5d ", ife.Name, ife.MTU)
	if IsAlias(ife.Name) {
		fmt.Fprintf(&b, "%-56s", "     - no statistics available -")
	} else {
		s := ife.Stats
		fmt.Fprintf(&b, "%8d %6d %6d %-6d ", s.RxPackets, s.RxErrors, s.RxDropped, 0)
		fmt.Fprintf(&b, "%8d %6d %6d %6d ", s.TxPackets, s.TxErrors, s.TxDropped, 0)
	}
	b.WriteString(ShortFlags(ife.Flags))
	b.WriteString("\n")
	return b.String()
}

// FormatList returns what `ifconfig [-a] [-s]` prints for ifs: the
// interfaces in net-tools' order (SortInterfaces), only the UP ones
// unless all, as blocks or, with short, as the -s table with its header.
func FormatList(ifs []host.Interface, all, short bool) string {
	sorted := append([]host.Interface(nil), ifs...)
	SortInterfaces(sorted)
	var b strings.Builder
	if short {
		b.WriteString(ShortHeader)
	}
	for _, ife := range sorted {
		if !all && ife.Flags&host.FlagUp == 0 {
			continue
		}
		if short {
			b.WriteString(FormatShort(ife))
		} else {
			b.WriteString(FormatLong(ife))
		}
	}
	return b.String()
}

// SortInterfaces puts interfaces in the order net-tools keeps its list
// in: by name, runs of digits compared as numbers (eth2 < eth10), so an
// alias follows its device (eth0, eth0:1, eth1).
func SortInterfaces(ifs []host.Interface) {
	sort.SliceStable(ifs, func(i, j int) bool { return NameLess(ifs[i].Name, ifs[j].Name) })
}

// NameLess compares interface names with digit runs as numbers.
func NameLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return a == "" && b != ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// ExpandAliases returns ifs with an entry for every alias (an IPv4
// address labelled IF:N) the host lists only on its device: the device's
// flags, MTU and MAC with that one address, as Linux shows an alias.
func ExpandAliases(ifs []host.Interface) []host.Interface {
	have := make(map[string]bool, len(ifs))
	for _, ife := range ifs {
		have[ife.Name] = true
	}
	out := append([]host.Interface(nil), ifs...)
	for _, ife := range ifs {
		if IsAlias(ife.Name) {
			continue
		}
		for _, a := range ife.Addrs {
			if a.Label == "" || a.Label == ife.Name || have[a.Label] || !a.Prefix.Addr().Is4() {
				continue
			}
			have[a.Label] = true
			alias := ife
			alias.Name = a.Label
			alias.Addrs = []host.Addr{a}
			alias.Stats = host.Stats{}
			out = append(out, alias)
		}
	}
	return out
}
