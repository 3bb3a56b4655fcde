package ifconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/stackbox/stackbox/pkg/host"
)

// applier runs parsed ops against a host for one interface, printing
// net-tools' messages and keeping its error status as net-tools does:
// a failed flag change ORs in -1 (exit 255), any other failure sets 1.
type applier struct {
	ctx     context.Context
	h       host.Host
	dev     string // the interface named on the command line (may be an alias)
	stderr  io.Writer
	verbose bool
	goterr  int
}

// strerror is the C library's text for the errno of a host error.
func strerror(err error) string {
	var he *host.Error
	if errors.As(err, &he) && he.Errno != 0 {
		return errnoText(he.Errno)
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return errnoText(en)
	}
	return err.Error()
}

// errnoText capitalises Go's errno text, which then reads as glibc's
// ("No such device", "Operation not permitted").
func errnoText(e syscall.Errno) string {
	s := e.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

func (ap *applier) printf(format string, args ...any) {
	fmt.Fprintf(ap.stderr, format, args...)
}

// fail reports a failed ioctl-like call and sets the status to 1.
func (ap *applier) fail(ioctl string, err error) {
	ap.printf("%s: %s\n", ioctl, strerror(err))
	ap.goterr = 1
}

func (ap *applier) failFlags(format string, args ...any) {
	ap.printf(format, args...)
	ap.goterr |= -1
}

var errAddrNotAvail = &host.Error{Errno: syscall.EADDRNOTAVAIL, Msg: "cannot assign requested address"}
var errInval = &host.Error{Errno: syscall.EINVAL, Msg: "invalid argument"}

// run applies ops in order and returns the exit status.
func (ap *applier) run(ops []op) int {
	for _, o := range ops {
		switch o.kind {
		case opFlags:
			ap.flags(o)
		case opAddr:
			ap.setAddr(o.addr)
		case opNetmask:
			ap.setNetmask(o.addr)
		case opBroadcast:
			ap.setBroadcast(o.addr)
		case opMTU:
			if o.n < 0 {
				ap.fail("SIOCSIFMTU", errInval)
			} else if err := ap.h.SetMTU(ap.ctx, baseName(ap.dev), o.n); err != nil {
				ap.fail("SIOCSIFMTU", err)
			}
		case opHW:
			if err := ap.h.SetMAC(ap.ctx, baseName(ap.dev), o.mac); err != nil {
				if errors.Is(err, syscall.EBUSY) {
					ap.printf("SIOCSIFHWADDR: %s - you may need to down the interface\n", strerror(err))
					ap.goterr = 1
				} else {
					ap.fail("SIOCSIFHWADDR", err)
				}
			}
		case opAdd6:
			ap.add6(o.prefix)
		case opDel6:
			ap.del6(o.prefix)
		case opAdd4:
			ap.add4(o.addr)
		case opDel4:
			ap.del4(o.addr)
		case opUnsupported, opMessage:
			ap.printf("%s", o.msg)
			ap.goterr = 1
		case opExit:
			ap.printf("%s", o.msg)
			if o.usage {
				writeUsage(ap.stderr, ap.stderr)
			}
			return o.code
		}
	}
	if ap.verbose && ap.goterr != 0 {
		ap.printf("WARNING: at least one error occured. (%d)\n", ap.goterr)
	}
	return ap.goterr & 0xff
}

// base fetches the device the interface belongs to (itself, or the
// device of an alias).
func (ap *applier) base() (host.Interface, error) {
	return ap.h.Interface(ap.ctx, baseName(ap.dev))
}

// current returns the IPv4 address labelled with the interface's name
// (the one SIOCGIFADDR would give), if any.
func (ap *applier) current(b host.Interface) (host.Addr, bool) {
	if a, ok := labelledV4(b.Addrs, ap.dev); ok {
		return a, true
	}
	if !IsAlias(ap.dev) {
		return host.Addr{}, false
	}
	ifs, err := ap.h.Interfaces(ap.ctx)
	if err != nil {
		return host.Addr{}, false
	}
	for _, ife := range ifs {
		if ife.Name != ap.dev {
			continue
		}
		for _, a := range ife.Addrs {
			if a.Prefix.Addr().Is4() && (a.Label == ap.dev || a.Label == "") {
				return a, true
			}
		}
	}
	return host.Addr{}, false
}

// settableFlags are the IFF_* bits SIOCSIFFLAGS changes on Linux
// (dev_change_flags); others in a request are ignored.
const settableFlags = host.FlagUp | host.FlagPromisc | host.FlagAllMulti | iffDebug |
	iffNoTrailers | iffNoARP | iffDynamic | host.FlagMulticast | iffPortSel | iffAutoMedia

// flags is net-tools' set_flag/clr_flag: read the flags, change them,
// write them back.
func (ap *applier) flags(o op) {
	b, err := ap.base()
	if err != nil {
		ap.failFlags("%s: ERROR while getting interface flags: %s\n", ap.dev, strerror(err))
		return
	}
	want := (b.Flags | o.set) &^ o.clear
	if IsAlias(ap.dev) {
		// Linux: flags written to an alias only matter without IFF_UP,
		// which deletes the alias's address.
		cur, ok := ap.current(b)
		if !ok {
			ap.failFlags("SIOCSIFFLAGS: %s\n", strerror(errAddrNotAvail))
			return
		}
		if want&host.FlagUp == 0 {
			if err := ap.h.DelAddress(ap.ctx, ap.dev, cur.Prefix.Addr()); err != nil {
				ap.failFlags("SIOCSIFFLAGS: %s\n", strerror(err))
			}
		}
		return
	}
	change := (want ^ b.Flags) & settableFlags
	if other := change &^ (host.FlagUp | host.FlagPromisc); other != 0 {
		var names []string
		for _, f := range longFlagNames {
			if other&f.bit != 0 {
				names = append(names, f.name)
			}
		}
		ap.failFlags("SIOCSIFFLAGS: Operation not supported (%s cannot be changed on this stack)\n", strings.Join(names, ","))
		return
	}
	if change&host.FlagUp != 0 {
		if err := ap.h.SetUp(ap.ctx, ap.dev, want&host.FlagUp != 0); err != nil {
			ap.failFlags("SIOCSIFFLAGS: %s\n", strerror(err))
			return
		}
	}
	if change&host.FlagPromisc != 0 {
		if err := ap.h.SetPromisc(ap.ctx, ap.dev, want&host.FlagPromisc != 0); err != nil {
			ap.failFlags("SIOCSIFFLAGS: %s\n", strerror(err))
			return
		}
	}
	if o.word == "-promisc" {
		if b, err := ap.base(); err == nil && b.Flags&host.FlagPromisc != 0 {
			ap.printf("Warning: Interface %s still in promisc mode... maybe other application is running?\n", ap.dev)
		}
	}
}

// classfulBits is the prefix length Linux gives an address set with
// SIOCSIFADDR (inet_abc_len): -1 for multicast, which it refuses.
func classfulBits(a netip.Addr) int {
	b := a.As4()
	switch {
	case b[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return 0
	case b[0] < 128:
		return 8
	case b[0] < 192:
		return 16
	case b[0] < 224:
		return 24
	case b[0] < 240:
		return -1
	}
	return 32
}

// directedBroadcast is the broadcast Linux computes for a/bits on a
// broadcast-capable device: none for /31 and /32.
func directedBroadcast(flags uint32, a netip.Addr, bits int) netip.Addr {
	if flags&host.FlagBroadcast == 0 || bits >= 31 {
		return netip.Addr{}
	}
	v := a.As4()
	m := Mask(bits).As4()
	for i := range v {
		v[i] |= ^m[i]
	}
	return netip.AddrFrom4(v)
}

// replace swaps the interface's labelled address for p with broadcast brd.
func (ap *applier) replace(ioctl string, old netip.Addr, p netip.Prefix, brd netip.Addr) {
	if old.IsValid() {
		if err := ap.h.DelAddress(ap.ctx, ap.dev, old); err != nil {
			ap.fail(ioctl, err)
			return
		}
	}
	if err := ap.h.AddAddress(ap.ctx, ap.dev, p, brd); err != nil {
		ap.fail(ioctl, err)
	}
}

// setAddr is SIOCSIFADDR: the address with its classful mask and the
// broadcast computed from it; 0.0.0.0 removes the address.
func (ap *applier) setAddr(a netip.Addr) {
	b, err := ap.base()
	if err != nil {
		ap.fail("SIOCSIFADDR", err)
		return
	}
	bits := classfulBits(a)
	if bits < 0 {
		ap.fail("SIOCSIFADDR", errInval)
		return
	}
	cur, has := ap.current(b)
	if has && cur.Prefix.Addr() == a {
		return
	}
	if a.IsUnspecified() {
		if has {
			if err := ap.h.DelAddress(ap.ctx, ap.dev, cur.Prefix.Addr()); err != nil {
				ap.fail("SIOCSIFADDR", err)
			}
		}
		return
	}
	var old netip.Addr
	if has {
		old = cur.Prefix.Addr()
	}
	ap.replace("SIOCSIFADDR", old, netip.PrefixFrom(a, bits), directedBroadcast(b.Flags, a, bits))
}

// maskBits returns the prefix length of a contiguous netmask.
func maskBits(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	inv := ^v
	if inv&(inv+1) != 0 {
		return 0, false
	}
	n := 0
	for v != 0 {
		n++
		v <<= 1
	}
	return n, true
}

// setNetmask is SIOCSIFNETMASK: the broadcast follows the mask when it
// was the one computed from the old mask.
func (ap *applier) setNetmask(m netip.Addr) {
	b, err := ap.base()
	if err != nil {
		ap.fail("SIOCSIFNETMASK", err)
		return
	}
	cur, has := ap.current(b)
	if !has {
		ap.fail("SIOCSIFNETMASK", errAddrNotAvail)
		return
	}
	bits, ok := maskBits(m)
	if !ok {
		ap.fail("SIOCSIFNETMASK", errInval)
		return
	}
	if bits == cur.Prefix.Bits() {
		return
	}
	a := cur.Prefix.Addr()
	brd := cur.Broadcast
	if old := directedBroadcast(b.Flags, a, cur.Prefix.Bits()); old.IsValid() && old == brd && bits < 31 {
		brd = directedBroadcast(b.Flags, a, bits)
	}
	ap.replace("SIOCSIFNETMASK", a, netip.PrefixFrom(a, bits), brd)
}

// setBroadcast is SIOCSIFBRDADDR.
func (ap *applier) setBroadcast(brd netip.Addr) {
	b, err := ap.base()
	if err != nil {
		ap.fail("SIOCSIFBRDADDR", err)
		return
	}
	cur, has := ap.current(b)
	if !has {
		ap.fail("SIOCSIFBRDADDR", errAddrNotAvail)
		return
	}
	if cur.Broadcast == brd {
		return
	}
	ap.replace("SIOCSIFBRDADDR", cur.Prefix.Addr(), cur.Prefix, brd)
}

// add6 is `add ADDR6/LEN` (SIOCSIFADDR on an inet6 socket): on the
// device, also when an alias is named.
func (ap *applier) add6(p netip.Prefix) {
	if _, err := ap.base(); err != nil {
		ap.fail("SIOGIFINDEX", err)
		return
	}
	if err := ap.h.AddAddress(ap.ctx, baseName(ap.dev), p, netip.Addr{}); err != nil {
		ap.fail("SIOCSIFADDR", err)
	}
}

// del6 is `del ADDR6/LEN` (SIOCDIFADDR): the address must be there with
// that prefix length (128 when none is given), as Linux matches both.
func (ap *applier) del6(p netip.Prefix) {
	b, err := ap.base()
	if err != nil {
		ap.fail("SIOGIFINDEX", err)
		return
	}
	if ap.verbose {
		ap.printf("now deleting: ioctl(SIOCDIFADDR,{ifindex=%d,prefixlen=%d})\n", b.Index, p.Bits())
	}
	for _, a := range b.Addrs {
		if a.Prefix.Addr().WithZone("") == p.Addr() && a.Prefix.Bits() == p.Bits() {
			if err := ap.h.DelAddress(ap.ctx, baseName(ap.dev), p.Addr()); err != nil {
				ap.fail("SIOCDIFADDR", err)
			}
			return
		}
	}
	ap.fail("SIOCDIFADDR", errAddrNotAvail)
}

// aliasNames lists the alias interfaces of dev the host has.
func (ap *applier) aliasNames() (map[string]host.Interface, error) {
	ifs, err := ap.h.Interfaces(ap.ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]host.Interface)
	for _, ife := range ExpandAliases(ifs) {
		if strings.HasPrefix(ife.Name, ap.dev+":") {
			out[ife.Name] = ife
		}
	}
	return out, nil
}

// add4 is net-tools' `add ADDR4`: a new alias IF:N (the lowest free N)
// with the device's netmask and broadcast.
func (ap *applier) add4(a netip.Addr) {
	b, err := ap.base()
	if err != nil {
		ap.printf("Interface %s not initialized\n", ap.dev)
		ap.goterr = 1
		return
	}
	bits, brd := 0, netip.IPv4Unspecified()
	if cur, ok := ap.current(b); ok {
		bits = cur.Prefix.Bits()
		if cur.Broadcast.IsValid() {
			brd = cur.Broadcast
		}
	}
	aliases, err := ap.aliasNames()
	if err != nil {
		ap.fail("SIOCSIFADDR", err)
		return
	}
	for n := 0; n < 256; n++ {
		name := ap.dev + ":" + strconv.Itoa(n)
		if _, used := aliases[name]; used {
			continue
		}
		if err := ap.h.AddAddress(ap.ctx, name, netip.PrefixFrom(a, bits), brd); err != nil {
			ap.fail("SIOCSIFADDR", err)
		}
		return
	}
	ap.fail("SIOCSIFADDR", &host.Error{Errno: syscall.ENOSPC, Msg: "no space left on device"})
}

// del4 is `del ADDR4`: the alias of the device holding the address goes.
func (ap *applier) del4(a netip.Addr) {
	if _, err := ap.base(); err != nil {
		ap.printf("Interface %s not initialized\n", ap.dev)
		ap.goterr = 1
		return
	}
	aliases, err := ap.aliasNames()
	if err != nil {
		ap.fail("SIOCDIFADDR", err)
		return
	}
	for name, ife := range aliases {
		if cur, ok := PrimaryV4(ife); ok && cur.Prefix.Addr() == a {
			if err := ap.h.DelAddress(ap.ctx, name, a); err != nil {
				ap.fail("SIOCDIFADDR", err)
			}
			return
		}
	}
	ap.fail("SIOCDIFADDR", errAddrNotAvail)
}
