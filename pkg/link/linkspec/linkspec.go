// Package linkspec turns a user's link spec string, as given to --link or
// STACKBOX_LINK, into a link endpoint. The grammar is a main part and
// optional comma-separated options:
//
//	tap:NAME              a TAP device (created if missing)
//	emu:NETWORK           a port on the named in-memory emulated network
//	afpacket:IFACE        an AF_PACKET socket on an existing interface
//	udp:LOCAL,REMOTE      QEMU -netdev dgram (host:port each)
//	unix:PATH[,listen]    QEMU -netdev stream over a Unix socket
//	tcp:HOST:PORT[,listen] QEMU -netdev stream over TCP
//	loopback (or lo)      the loopback link
//
// Options, each ",key=value": mtu=BYTES, mac=aa:bb:cc:dd:ee:ff,
// pcap=FILE (capture every frame to a new pcap file), for tap
// offload=on|off (virtio-net header offloads, on by default: the kernel
// hands TCP over in aggregates of up to 64 KiB), and for emu the
// impairments of frames the port sends (emu.Impairments): loss=P, dup=P,
// corrupt=P, reorder=P (P a probability, 0.01 or 1%), delay=D, jitter=D
// (Go durations: 10ms), rate=R (bits per second, with tc's units: 10mbit,
// 1gbit, 500kbit; bps and friends are bytes per second), limit=FRAMES,
// and seed=N (the seed the named network is created with).
//
// A name or path cannot contain a comma. Errors quote the spec and say
// what was expected.
package linkspec

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/afpacket"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/link/loopback"
	"github.com/stackbox/stackbox/pkg/link/qemu"
	"github.com/stackbox/stackbox/pkg/link/sniffer"
	"github.com/stackbox/stackbox/pkg/link/tap"
	"github.com/stackbox/stackbox/pkg/wire"
)

// The kinds of link.
const (
	KindTap      = "tap"
	KindEmu      = "emu"
	KindAFPacket = "afpacket"
	KindUDP      = "udp"
	KindUnix     = "unix"
	KindTCP      = "tcp"
	KindLoopback = "loopback"
)

// Kinds lists the kinds in the order help text shows them.
var Kinds = []string{KindTap, KindEmu, KindAFPacket, KindUDP, KindUnix, KindTCP, KindLoopback}

const expectedKinds = "tap:NAME, emu:NETWORK, afpacket:IFACE, udp:LOCAL,REMOTE, unix:PATH, tcp:HOST:PORT or loopback"

// MTU bounds: IPv4's minimum (RFC 791) to the largest IPv4 datagram.
const (
	MinMTU = 68
	MaxMTU = 65535
)

// Spec is a parsed link spec.
type Spec struct {
	Kind string
	// Name is the tap device, emu network, afpacket interface, unix socket
	// path or tcp address.
	Name string
	// Local and Remote are the udp addresses.
	Local, Remote string
	// Listen makes a unix or tcp endpoint wait for QEMU to connect.
	Listen bool
	// MTU, if not zero, overrides the kind's default.
	MTU int
	// MAC, if not zero, is the stack's address on the link.
	MAC wire.MAC
	// PCAP, if not empty, is a capture file for every frame.
	PCAP string
	// NoOffload opens a tap device without the virtio-net header offloads.
	NoOffload bool
	// Seed, when SeedSet, is the seed an emu network is created with.
	Seed    uint64
	SeedSet bool
	// Impair is what an emu port does to the frames it sends.
	Impair emu.Impairments
}

// Error is a spec that could not be parsed or opened.
type Error struct {
	Spec string
	Msg  string // what is wrong and what was expected (parsing)
	Err  error  // why opening failed
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("link spec %q: %v", e.Spec, e.Err)
	}
	return fmt.Sprintf("link spec %q: %s", e.Spec, e.Msg)
}

// Unwrap returns the error that made Open fail.
func (e *Error) Unwrap() error { return e.Err }

// Parse parses a link spec.
func Parse(spec string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, &Error{Spec: spec, Msg: fmt.Sprintf(format, args...)}
	}
	if spec == "" {
		return bad("empty; expected %s", expectedKinds)
	}
	parts := strings.Split(spec, ",")
	kind, rest, hasArg := strings.Cut(parts[0], ":")
	opts := parts[1:]
	s := Spec{Kind: kind}
	switch kind {
	case "loopback", "lo":
		s.Kind = KindLoopback
		if hasArg {
			return bad("loopback takes no name; expected loopback or lo")
		}
	case KindTap, KindAFPacket:
		what := map[string]string{KindTap: "tap device", KindAFPacket: "interface"}[kind]
		if rest == "" {
			return bad("missing %s name; expected %s:NAME", what, kind)
		}
		if err := checkIfName(rest); err != nil {
			return bad("%s name %q %v", what, rest, err)
		}
		s.Name = rest
	case KindEmu:
		if rest == "" {
			return bad("missing network name; expected emu:NETWORK")
		}
		s.Name = rest
	case KindUDP:
		if rest == "" || len(opts) == 0 || strings.Contains(opts[0], "=") {
			return bad("expected udp:LOCAL,REMOTE with host:port addresses, e.g. udp:127.0.0.1:5555,127.0.0.1:5556")
		}
		s.Local, s.Remote, opts = rest, opts[0], opts[1:]
		for _, a := range []string{s.Local, s.Remote} {
			if err := checkHostPort(a); err != nil {
				return bad("udp address %q %v; expected host:port", a, err)
			}
		}
	case KindUnix:
		if rest == "" {
			return bad("missing socket path; expected unix:PATH or unix:PATH,listen")
		}
		s.Name = rest
	case KindTCP:
		if err := checkHostPort(rest); err != nil {
			return bad("tcp address %q %v; expected tcp:HOST:PORT or tcp:HOST:PORT,listen", rest, err)
		}
		s.Name = rest
	default:
		return bad("unknown kind %q; expected %s", kind, expectedKinds)
	}

	seen := map[string]bool{}
	for _, o := range opts {
		key, val, hasVal := strings.Cut(o, "=")
		if seen[key] {
			return bad("option %q given twice", key)
		}
		seen[key] = true
		if !hasVal {
			if key == "listen" && (s.Kind == KindUnix || s.Kind == KindTCP) {
				s.Listen = true
				continue
			}
			if key == "" {
				return bad("empty option (two commas, or a trailing one?)")
			}
			return bad("option %q has no value; expected key=value", key)
		}
		if err := s.setOption(key, val); err != nil {
			return bad("%v", err)
		}
	}
	if err := s.Impair.Validate(); err != nil {
		return bad("%v", err)
	}
	return s, nil
}

// emuOptions are the options only an emu link takes.
var emuOptions = []string{"loss", "dup", "corrupt", "reorder", "delay", "jitter", "rate", "limit", "seed"}

func (s *Spec) setOption(key, val string) error {
	if slices.Contains(emuOptions, key) && s.Kind != KindEmu {
		return fmt.Errorf("option %s= applies only to emu links", key)
	}
	var err error
	switch key {
	case "mtu":
		if s.Kind == KindAFPacket {
			return fmt.Errorf("afpacket uses the interface's MTU; set it with ip link, not mtu=")
		}
		n, perr := strconv.Atoi(val)
		if perr != nil || n < MinMTU || n > MaxMTU {
			return fmt.Errorf("mtu=%q: expected an integer from %d to %d", val, MinMTU, MaxMTU)
		}
		s.MTU = n
	case "mac":
		if s.Kind == KindLoopback {
			return fmt.Errorf("loopback has no MAC address; drop mac=")
		}
		m, perr := wire.ParseMAC(val)
		if perr != nil || m.IsMulticast() || m.IsZero() {
			return fmt.Errorf("mac=%q: expected a unicast address like 02:00:00:00:00:01", val)
		}
		s.MAC = m
	case "offload":
		if s.Kind != KindTap {
			return fmt.Errorf("option offload= applies only to tap links")
		}
		switch val {
		case "on":
			s.NoOffload = false
		case "off":
			s.NoOffload = true
		default:
			return fmt.Errorf("offload=%q: expected on or off", val)
		}
	case "pcap":
		if val == "" {
			return fmt.Errorf("pcap= needs a file name")
		}
		s.PCAP = val
	case "loss":
		s.Impair.Loss, err = parseProb(key, val)
	case "dup":
		s.Impair.Duplicate, err = parseProb(key, val)
	case "corrupt":
		s.Impair.Corrupt, err = parseProb(key, val)
	case "reorder":
		s.Impair.Reorder, err = parseProb(key, val)
	case "delay":
		s.Impair.Delay, err = parseDuration(key, val)
	case "jitter":
		s.Impair.Jitter, err = parseDuration(key, val)
	case "rate":
		s.Impair.Rate, err = parseRate(val)
	case "limit":
		n, perr := strconv.Atoi(val)
		if perr != nil || n < 1 {
			return fmt.Errorf("limit=%q: expected a positive number of frames", val)
		}
		s.Impair.Limit = n
	case "seed":
		n, perr := strconv.ParseUint(val, 0, 64)
		if perr != nil {
			return fmt.Errorf("seed=%q: expected an unsigned 64-bit integer", val)
		}
		s.Seed, s.SeedSet = n, true
	default:
		return fmt.Errorf("unknown option %q; expected %s", key, s.knownOptions())
	}
	return err
}

func (s *Spec) knownOptions() string {
	var known []string
	switch s.Kind {
	case KindLoopback:
		known = []string{"mtu", "pcap"}
	case KindAFPacket:
		known = []string{"mac", "pcap"}
	default:
		known = []string{"mtu", "mac", "pcap"}
	}
	if s.Kind == KindEmu {
		known = append(known, emuOptions...)
	}
	if s.Kind == KindUnix || s.Kind == KindTCP {
		known = append(known, "listen")
	}
	if s.Kind == KindTap {
		known = append(known, "offload")
	}
	return strings.Join(known, ", ")
}

func checkIfName(name string) error {
	// IFNAMSIZ is 16 with the NUL (Linux dev_valid_name).
	if len(name) > 15 {
		return fmt.Errorf("is longer than 15 bytes")
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("is not a valid interface name")
	}
	return nil
}

func checkHostPort(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("has a bad port %q", port)
	}
	return nil
}

func parseProb(key, val string) (float64, error) {
	num, pct := strings.CutSuffix(val, "%")
	p, err := strconv.ParseFloat(num, 64)
	if pct {
		p /= 100
	}
	if err != nil || !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("%s=%q: expected a probability from 0 to 1 (0.01) or a percentage (1%%)", key, val)
	}
	return p, nil
}

func parseDuration(key, val string) (time.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: expected a duration such as 10ms or 1.5s", key, val)
	}
	return d, nil
}

// rateUnits follow tc(8): bit units are bits per second, bps units bytes
// per second; SI prefixes are powers of 1000, IEC ones of 1024.
var rateUnits = map[string]float64{
	"": 1, "bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"kibit": 1 << 10, "mibit": 1 << 20, "gibit": 1 << 30, "tibit": 1 << 40,
	"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
	"kibps": 8 << 10, "mibps": 8 << 20, "gibps": 8 << 30, "tibps": 8 << 40,
}

func parseRate(val string) (uint64, error) {
	bad := fmt.Errorf("rate=%q: expected bits per second with an optional unit, e.g. 10mbit, 1gbit, 500kbit or 125kbps", val)
	i := strings.IndexFunc(val, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(val)
	}
	mult, ok := rateUnits[strings.ToLower(val[i:])]
	if !ok || i == 0 {
		return 0, bad
	}
	f, err := strconv.ParseFloat(val[:i], 64)
	if err != nil {
		return 0, bad
	}
	bits := f * mult
	if bits < 1 || bits >= math.MaxUint64/2 {
		return 0, fmt.Errorf("rate=%q: out of range (1 bit/s to 2^63)", val)
	}
	return uint64(bits), nil
}

// String formats the spec so that Parse gives it back.
func (s Spec) String() string {
	var b strings.Builder
	switch s.Kind {
	case KindLoopback:
		b.WriteString(KindLoopback)
	case KindUDP:
		fmt.Fprintf(&b, "udp:%s,%s", s.Local, s.Remote)
	default:
		fmt.Fprintf(&b, "%s:%s", s.Kind, s.Name)
	}
	if s.Listen {
		b.WriteString(",listen")
	}
	opt := func(k, v string) { fmt.Fprintf(&b, ",%s=%s", k, v) }
	if s.MTU != 0 {
		opt("mtu", strconv.Itoa(s.MTU))
	}
	if !s.MAC.IsZero() {
		opt("mac", s.MAC.String())
	}
	if s.NoOffload {
		opt("offload", "off")
	}
	im := s.Impair
	for _, p := range []struct {
		k string
		v float64
	}{{"loss", im.Loss}, {"dup", im.Duplicate}, {"corrupt", im.Corrupt}, {"reorder", im.Reorder}} {
		if p.v != 0 {
			opt(p.k, strconv.FormatFloat(p.v, 'g', -1, 64))
		}
	}
	if im.Delay != 0 {
		opt("delay", im.Delay.String())
	}
	if im.Jitter != 0 {
		opt("jitter", im.Jitter.String())
	}
	if im.Rate != 0 {
		opt("rate", strconv.FormatUint(im.Rate, 10))
	}
	if im.Limit != 0 {
		opt("limit", strconv.Itoa(im.Limit))
	}
	if s.SeedSet {
		opt("seed", strconv.FormatUint(s.Seed, 10))
	}
	if s.PCAP != "" {
		opt("pcap", s.PCAP)
	}
	return b.String()
}

// Open parses spec and opens the endpoint it describes.
func Open(spec string) (link.Endpoint, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	ep, err := s.Open()
	if err != nil {
		return nil, &Error{Spec: spec, Err: err}
	}
	return ep, nil
}

// Open opens the endpoint the spec describes.
func (s Spec) Open() (link.Endpoint, error) {
	var ep link.Endpoint
	var qopts []qemu.Option
	if s.MTU != 0 {
		qopts = append(qopts, qemu.WithMTU(s.MTU))
	}
	if !s.MAC.IsZero() {
		qopts = append(qopts, qemu.WithMAC(s.MAC))
	}
	switch s.Kind {
	case KindLoopback:
		ep = loopback.New(loopback.Config{MTU: s.MTU})
	case KindEmu:
		var n *emu.Network
		if s.SeedSet {
			var err error
			if n, err = emu.NamedSeed(s.Name, s.Seed); err != nil {
				return nil, err
			}
		} else {
			n = emu.Named(s.Name)
		}
		ep = n.NewPort(emu.PortConfig{MAC: s.MAC, MTU: s.MTU, Out: s.Impair})
	case KindTap:
		t, err := tap.Open(tap.Config{Name: s.Name, MTU: s.MTU, MAC: s.MAC, NoOffload: s.NoOffload})
		if err != nil {
			return nil, err
		}
		ep = t
	case KindAFPacket:
		a, err := afpacket.Open(afpacket.Config{Interface: s.Name, MAC: s.MAC})
		if err != nil {
			return nil, err
		}
		ep = a
	case KindUDP:
		q, err := qemu.DialUDP(s.Local, s.Remote, qopts...)
		if err != nil {
			return nil, err
		}
		ep = q
	case KindUnix, KindTCP:
		open := qemu.DialStream
		if s.Listen {
			open = qemu.ListenStream
		}
		q, err := open(s.Kind, s.Name, qopts...)
		if err != nil {
			return nil, err
		}
		ep = q
	default:
		return nil, fmt.Errorf("unknown kind %q; expected %s", s.Kind, expectedKinds)
	}
	if s.PCAP != "" {
		sn, err := sniffer.NewFile(ep, s.PCAP)
		if err != nil {
			ep.Close()
			return nil, err
		}
		ep = sn
	}
	return ep, nil
}
