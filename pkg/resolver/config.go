package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultResolvConf is where the system keeps its resolver configuration;
// netd writes its own under /run/stackbox/ and tools pass that path.
const DefaultResolvConf = "/etc/resolv.conf"

// glibc's limits (resolv.h): MAXNS servers, RES_MAXNDOTS, RES_MAXRETRANS,
// RES_MAXRETRY; and its defaults RES_TIMEOUT, RES_DFLRETRY.
const (
	MaxServers     = 3
	maxNdots       = 15
	maxTimeout     = 30
	maxAttempts    = 5
	defaultTimeout = 5 * time.Second
	defaultTries   = 2
)

// Config is a resolver configuration: what resolv.conf(5) says.
type Config struct {
	// Servers are the nameservers in order (port 53 from resolv.conf;
	// at most MaxServers are read from a file, as glibc).
	Servers []netip.AddrPort
	// Search is the search list, tried as glibc's res_search does.
	Search []string
	// Ndots: a name with at least this many dots is tried as is first.
	Ndots int
	// Timeout is the wait for the first try of each server; glibc
	// doubles it each round and divides it among the servers.
	Timeout time.Duration
	// Attempts is the number of rounds over the servers.
	Attempts int
	// Rotate starts each query at the next server (options rotate).
	Rotate bool
	// EDNS0 advertises a 1232-byte UDP buffer (options edns0, RFC 6891).
	EDNS0 bool
	// UseTCP sends every query over TCP (options use-vc).
	UseTCP bool
}

// DefaultConfig is glibc's configuration when resolv.conf is missing or
// names no server: the local nameserver, ndots 1, timeout 5 s, 2 attempts.
func DefaultConfig() *Config {
	return &Config{
		Servers:  []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")},
		Ndots:    1,
		Timeout:  defaultTimeout,
		Attempts: defaultTries,
	}
}

// LoadResolvConf reads the resolv.conf at path ("" is
// DefaultResolvConf). A missing file gives DefaultConfig, as for glibc.
func LoadResolvConf(path string) (*Config, error) {
	if path == "" {
		path = DefaultResolvConf
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseResolvConf parses resolv.conf(5) text. Like glibc it skips lines
// it does not understand (comments start with '#' or ';'), keeps the
// first MaxServers nameservers, lets the last of domain and search win,
// and clamps option values to glibc's maxima. Only a read error fails.
func ParseResolvConf(r io.Reader) (*Config, error) {
	c := DefaultConfig()
	c.Servers = nil
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 || len(c.Servers) >= MaxServers {
				continue
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				continue
			}
			c.Servers = append(c.Servers, netip.AddrPortFrom(a.Unmap(), 53))
		case "domain":
			if len(f) >= 2 && validSearch(f[1]) {
				c.Search = []string{f[1]}
			}
		case "search":
			c.Search = nil
			for _, d := range f[1:] {
				if validSearch(d) {
					c.Search = append(c.Search, d)
				}
			}
		case "options":
			for _, o := range f[1:] {
				c.option(o)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(c.Servers) == 0 {
		c.Servers = DefaultConfig().Servers
	}
	return c, nil
}

// validSearch accepts a search domain that can prefix a query: a
// presentation-format name short enough to leave room for a label.
func validSearch(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 || strings.Contains(d, "..") || strings.HasPrefix(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if len(l) > 63 {
			return false
		}
	}
	return true
}

// option applies one "options" word (resolv.conf(5)).
func (c *Config) option(o string) {
	name, val, hasVal := strings.Cut(o, ":")
	n, err := strconv.Atoi(val)
	num := hasVal && err == nil && n >= 0
	switch name {
	case "ndots":
		if num {
			c.Ndots = min(n, maxNdots)
		}
	case "timeout":
		if num {
			c.Timeout = time.Duration(max(min(n, maxTimeout), 1)) * time.Second
		}
	case "attempts":
		if num {
			c.Attempts = max(min(n, maxAttempts), 1)
		}
	case "rotate":
		c.Rotate = true
	case "edns0":
		c.EDNS0 = true
	case "use-vc":
		c.UseTCP = true
	}
}

// String is c as resolv.conf text (whole seconds, port-53 servers).
func (c *Config) String() string {
	var b strings.Builder
	if len(c.Search) > 0 {
		b.WriteString("search " + strings.Join(c.Search, " ") + "\n")
	}
	for _, s := range c.Servers {
		b.WriteString("nameserver " + s.Addr().String() + "\n")
	}
	opts := []string{
		"ndots:" + strconv.Itoa(c.Ndots),
		"timeout:" + strconv.Itoa(int(c.Timeout/time.Second)),
		"attempts:" + strconv.Itoa(c.Attempts),
	}
	if c.Rotate {
		opts = append(opts, "rotate")
	}
	if c.EDNS0 {
		opts = append(opts, "edns0")
	}
	if c.UseTCP {
		opts = append(opts, "use-vc")
	}
	b.WriteString("options " + strings.Join(opts, " ") + "\n")
	return b.String()
}
