// Package dhcpclient is the busybox udhcpc applet (dhcpclient, alias
// udhcpc): it obtains a DHCPv4 lease for an interface with pkg/dhcp4,
// applies it through host.Host and runs udhcpc's event script
// (../shared/compat/udhcpc.md).
//
// Differences from busybox: the lease is applied by the applet itself (the
// address with its broadcast, the default route, the MTU), so a script is
// optional and there is no default one (Debian's would configure the
// kernel's interface, not ours). DNS servers and domain go to the event
// script (dns=, domain=) and to Config.Resolv, since netd owns
// resolv.conf. The applet stays in the foreground (-f is how it always
// runs); -b, -o, -a, -B, -S, -P and the SIGUSR1/SIGUSR2 controls are not
// supported. --leasefile FILE keeps the lease for INIT-REBOOT.
package dhcpclient

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/pkg/dhcp4"
	"github.com/stackbox/stackbox/pkg/host"
)

const version = "1.35.0" // the busybox udhcpc whose behaviour we follow

const usageText = `Usage: udhcpc [-fqRn] [-t N] [-T SEC] [-A SEC] [-i IFACE] [-s PROG]
	[-p PIDFILE] [-x OPT:VAL]... [-O OPT]... [-r IP] [-V VENDOR] [-F NAME] [-C]
	[--leasefile FILE] [--link SPEC]

	-i IFACE	Interface to use (default eth0)
	-s PROG		Run PROG at DHCP events
	-p FILE		Create pidfile
	-t N		Send up to N discover packets (default 3)
	-T SEC		Pause between packets (default 3)
	-A SEC		Wait if lease is not obtained (default 20)
	-n		Exit if lease is not obtained
	-q		Exit after obtaining lease
	-R		Release IP on exit
	-f		Run in foreground
	-r IP		Request this IP address
	-x OPT:VAL	Include option OPT in sent packets (e.g. hostname:NAME, 0x3d:0100BEEF)
	-O OPT		Request option OPT from server
	-V VENDOR	Vendor identifier
	-F NAME		Ask server to update DNS mapping for NAME
	-C		Don't send MAC as client identifier
	--leasefile FILE	Keep the lease in FILE for INIT-REBOOT
	--link SPEC	Run on a private stack over link SPEC
`

// Config holds the applet's hooks.
type Config struct {
	// Resolv is given the lease's DNS servers and domain when a lease is
	// bound or renewed (nil: left to the script).
	Resolv func(dns []netip.Addr, domain string) error
	// ScriptTimeout bounds one script run (default 30 s).
	ScriptTimeout time.Duration
}

// Applet returns udhcpc on the host open gives.
func Applet(open host.Opener) *applet.Applet { return New(open, Config{}) }

// New is Applet with cfg plugged in.
func New(open host.Opener, cfg Config) *applet.Applet {
	if cfg.ScriptTimeout <= 0 {
		cfg.ScriptTimeout = 30 * time.Second
	}
	return &applet.Applet{
		Name:    "dhcpclient",
		Aliases: []string{"udhcpc"},
		Summary: "DHCPv4 client (busybox udhcpc)",
		Main: func(ctx context.Context, env *applet.Env, args []string) int {
			return run(ctx, open, cfg, env, args)
		},
	}
}

type options struct {
	iface, script, pidfile, leasefile, link string
	vendor, fqdn                            string
	tries                                   int
	timeout, wait                           time.Duration
	noLeaseExit, quit, release, noClientID  bool
	requested                               netip.Addr
	sendOpts                                []dhcpv4.Option
	hostname                                string
	request                                 []uint8
}

type usageError string

func (e usageError) Error() string { return string(e) }

// parse is a getopt(3)-style parser: combined flags (-nq), an argument
// attached or next (-t3, -t 3), and the long options --leasefile, --link.
func parse(args []string) (*options, error) {
	o := &options{iface: "eth0", tries: 3, timeout: 3 * time.Second, wait: 20 * time.Second}
	withArg := "istTApxOrVF"
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") {
			name, val, has := strings.Cut(a[2:], "=")
			switch name {
			case "leasefile", "link", "interface", "script":
			case "":
				if i+1 < len(args) {
					return nil, usageError("too many arguments")
				}
				return o, nil
			default:
				return nil, usageError(fmt.Sprintf("unrecognized option '%s'", a))
			}
			if !has {
				if i+1 >= len(args) {
					return nil, usageError(fmt.Sprintf("option '%s' requires an argument", a))
				}
				i++
				val = args[i]
			}
			switch name {
			case "leasefile":
				o.leasefile = val
			case "link":
				o.link = val
			case "interface":
				o.iface = val
			case "script":
				o.script = val
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			return nil, usageError("too many arguments")
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.ContainsRune("boaBSP", rune(c)) {
				return nil, fmt.Errorf("option -%c is not supported", c)
			}
			if !strings.ContainsRune("fqRnC"+withArg, rune(c)) {
				return nil, usageError(fmt.Sprintf("invalid option -- '%c'", c))
			}
			if !strings.ContainsRune(withArg, rune(c)) {
				switch c {
				case 'f':
				case 'q':
					o.quit = true
				case 'R':
					o.release = true
				case 'n':
					o.noLeaseExit = true
				case 'C':
					o.noClientID = true
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return nil, usageError(fmt.Sprintf("option requires an argument -- '%c'", c))
				}
				i++
				val = args[i]
			}
			if err := o.set(c, val); err != nil {
				return nil, err
			}
			break
		}
	}
	return o, nil
}

func (o *options) set(c byte, val string) error {
	num := func() (int, error) {
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid number '%s'", val)
		}
		return n, nil
	}
	var err error
	var n int
	switch c {
	case 'i':
		o.iface = val
	case 's':
		o.script = val
	case 'p':
		o.pidfile = val
	case 't':
		if n, err = num(); err == nil {
			o.tries = max(n, 1)
		}
	case 'T':
		if n, err = num(); err == nil {
			o.timeout = time.Duration(max(n, 1)) * time.Second
		}
	case 'A':
		if n, err = num(); err == nil {
			o.wait = time.Duration(n) * time.Second
		}
	case 'r':
		a, perr := netip.ParseAddr(val)
		if perr != nil || !a.Is4() {
			return fmt.Errorf("bad IP address '%s'", val)
		}
		o.requested = a
	case 'V':
		o.vendor = val
	case 'F':
		o.fqdn = val
	case 'O':
		code, ok := optionCode(val)
		if !ok {
			return fmt.Errorf("unknown option '%s'", val)
		}
		o.request = append(o.request, code)
	case 'x':
		return o.sendOption(val)
	}
	return err
}

// names are udhcpc's option names (networking/udhcp/common.c) that the
// script sees and -x/-O accept, for the options we decode.
var names = map[uint8]string{
	1: "subnet", 3: "router", 6: "dns", 12: "hostname", 15: "domain", 26: "mtu",
	28: "broadcast", 42: "ntpsrv", 51: "lease", 54: "serverid", 66: "tftp", 67: "bootfile",
}

func optionCode(s string) (uint8, bool) {
	for c, n := range names {
		if n == s {
			return c, true
		}
	}
	if strings.HasPrefix(s, "0x") {
		v, err := strconv.ParseUint(s[2:], 16, 8)
		return uint8(v), err == nil && v > 0 && v < 255
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return uint8(v), err == nil && v > 0 && v < 255
}

// sendOption reads -x OPT:VAL: a named string option (hostname:NAME,
// domain:…) or a numeric one with a hex value (0x3d:0100BEEF).
func (o *options) sendOption(v string) error {
	name, val, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("invalid option '%s'", v)
	}
	code, ok := optionCode(name)
	if !ok {
		return fmt.Errorf("unknown option '%s'", name)
	}
	var b []byte
	switch names[code] {
	case "hostname", "domain", "tftp", "bootfile":
		b = []byte(val)
		if code == 12 {
			o.hostname = val
			return nil
		}
	case "":
		var err error
		if b, err = hex.DecodeString(val); err != nil || len(b) == 0 || len(b) > 255 {
			return fmt.Errorf("invalid hex value '%s'", val)
		}
	default:
		return fmt.Errorf("option '%s' cannot be sent", name)
	}
	o.sendOpts = append(o.sendOpts, dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), b))
	return nil
}

func run(ctx context.Context, open host.Opener, cfg Config, env *applet.Env, args []string) int {
	for _, a := range args[1:] {
		if a == "-h" || a == "--help" {
			io.WriteString(env.Stderr, usageText)
			return 1
		}
	}
	o, err := parse(args[1:])
	if err != nil {
		fmt.Fprintf(env.Stderr, "udhcpc: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			io.WriteString(env.Stderr, usageText)
		}
		return 1
	}
	h, err := open(ctx, o.link, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "udhcpc: %v\n", err)
		return 1
	}
	defer h.Close()
	logf := func(format string, a ...any) { fmt.Fprintf(env.Stderr, "udhcpc: "+format+"\n", a...) }
	if o.fqdn != "" {
		// RFC 4702 client FQDN, as udhcpc sends it: flags S (the server
		// updates the A record), RCODEs 0, the name in ASCII (E clear).
		o.sendOpts = append(o.sendOpts, dhcpv4.OptGeneric(dhcpv4.OptionFQDN, append([]byte{1, 0, 0}, o.fqdn...)))
	}
	dc := dhcp4.Config{
		Host: h, Interface: o.iface, LeaseFile: o.leasefile, RequestedIP: o.requested,
		Hostname: o.hostname, Vendor: o.vendor, NoClientID: o.noClientID, Options: o.sendOpts,
		Request: o.request, Discovers: o.tries, Log: logf,
		Event: func(ev string, l *dhcp4.Lease) {
			runScript(ctx, cfg, env, o, ev, l)
			if (ev == dhcp4.EventBound || ev == dhcp4.EventRenew) && cfg.Resolv != nil {
				if err := cfg.Resolv(l.DNS, l.Domain); err != nil {
					logf("resolv: %v", err)
				}
			}
		},
	}
	// udhcpc waits -T seconds after each packet, not §4.1's backoff.
	dc.Wait = func(int) time.Duration { return o.timeout }
	c, err := dhcp4.New(ctx, dc)
	if err != nil {
		if errors.Is(err, syscall.ENODEV) {
			logf("SIOCGIFINDEX: No such device")
		} else {
			logf("%v", err)
		}
		return 1
	}
	defer c.Close()
	// As udhcpc, the interface is looked up before anything is said.
	logf("started, v%s", version)
	if o.pidfile != "" {
		if err := os.WriteFile(o.pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			logf("can't open '%s': %v", o.pidfile, errors.Unwrap(err))
			return 1
		}
		defer os.Remove(o.pidfile)
	}
	c.Deconfig()
	terminated := func() int {
		if o.release {
			c.Release(context.Background())
		}
		logf("received SIGTERM")
		return 0
	}
	for {
		_, err := c.Obtain(ctx)
		switch {
		case ctx.Err() != nil:
			return terminated()
		case errors.Is(err, dhcp4.ErrNoLease):
			if o.noLeaseExit {
				logf("no lease, failing")
				return 1
			}
			t := time.NewTimer(o.wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return terminated()
			case <-t.C:
			}
			continue
		case err != nil:
			logf("%v", err)
			return 1
		}
		if o.quit {
			if o.release {
				c.Release(context.Background())
			}
			return 0
		}
		err = c.Run(ctx)
		if ctx.Err() != nil {
			return terminated()
		}
		if err != nil && !errors.Is(err, dhcp4.ErrExpired) && !errors.Is(err, dhcp4.ErrNoLease) {
			logf("%v", err)
			return 1
		}
	}
}

// runScript runs the event script with udhcpc's variables, its output
// going to ours; its exit status is ignored, as udhcpc does.
func runScript(ctx context.Context, cfg Config, env *applet.Env, o *options, ev string, l *dhcp4.Lease) {
	if o.script == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.script, ev)
	cmd.Env = append([]string{"PATH=" + pathOr(env.Getenv("PATH"))}, Vars(o.iface, ev, l)...)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ctx.Err() != nil {
			fmt.Fprintf(env.Stderr, "udhcpc: %s: %v\n", o.script, err)
		}
	}
}

func pathOr(p string) string {
	if p == "" {
		return "/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return p
}

// Vars are the script's variables for event ev (udhcpc.md, Script
// interface): interface always; message for nak; for bound and renew ip,
// siaddr, mask and a variable per option (named, or optNN=HEX).
func Vars(iface, ev string, l *dhcp4.Lease) []string {
	vars := []string{"interface=" + iface}
	if l == nil || l.Msg == nil {
		return vars
	}
	m := l.Msg
	if ev == dhcp4.EventNak {
		if s := m.Message(); s != "" {
			vars = append(vars, "message="+s)
		}
		return vars
	}
	vars = append(vars, "ip="+l.Address.Addr().String())
	if si, ok := netip.AddrFromSlice(m.ServerIPAddr.To4()); ok && !si.IsUnspecified() {
		vars = append(vars, "siaddr="+si.String())
	}
	codes := make([]int, 0, len(m.Options))
	for c := range m.Options {
		codes = append(codes, int(c))
	}
	sort.Ints(codes)
	for _, ci := range codes {
		c := uint8(ci)
		v := m.Options[c]
		name := names[c]
		switch c {
		case 1:
			vars = append(vars, "subnet="+ipList(v), "mask="+strconv.Itoa(l.Address.Bits()))
		case 3, 6, 28, 42, 54:
			vars = append(vars, name+"="+ipList(v))
		case 12, 15, 66, 67:
			vars = append(vars, name+"="+string(v))
		case 26:
			if len(v) == 2 {
				vars = append(vars, fmt.Sprintf("mtu=%d", int(v[0])<<8|int(v[1])))
			}
		case 51:
			if len(v) == 4 {
				vars = append(vars, fmt.Sprintf("lease=%d", uint32(v[0])<<24|uint32(v[1])<<16|uint32(v[2])<<8|uint32(v[3])))
			}
		default:
			vars = append(vars, fmt.Sprintf("opt%d=%s", c, hex.EncodeToString(v)))
		}
	}
	if m.Options[28] == nil && l.Broadcast.IsValid() {
		vars = append(vars, "broadcast="+l.Broadcast.String())
	}
	return vars
}

func ipList(v []byte) string {
	var s []string
	for i := 0; i+4 <= len(v); i += 4 {
		s = append(s, netip.AddrFrom4([4]byte(v[i:i+4])).String())
	}
	return strings.Join(s, " ")
}
