package resolver

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// DefaultHosts is the system hosts file.
const DefaultHosts = "/etc/hosts"

// Hosts is a hosts(5) table: names to addresses and addresses to names,
// in file order. The zero value is empty; a Hosts is read-only once
// built, so lookups are safe for concurrent use.
type Hosts struct {
	byName map[string][]netip.Addr // lower-case name without a final dot
	byAddr map[netip.Addr][]string // canonical name first, then aliases
}

// LoadHosts reads hosts files in order (none: DefaultHosts); a missing
// file is skipped, as glibc skips a missing /etc/hosts.
func LoadHosts(paths ...string) (*Hosts, error) {
	if len(paths) == 0 {
		paths = []string{DefaultHosts}
	}
	h := &Hosts{}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		err = h.parse(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ParseHosts parses one hosts file's text: "ADDRESS NAME [ALIAS…]" per
// line, '#' to the end of a line a comment. Lines whose address does not
// parse are skipped, as glibc does, and so are names that are not
// domain names (an empty label).
func ParseHosts(r io.Reader) (*Hosts, error) {
	h := &Hosts{}
	if err := h.parse(r); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Hosts) parse(r io.Reader) error {
	if h.byName == nil {
		h.byName = make(map[string][]netip.Addr)
		h.byAddr = make(map[netip.Addr][]string)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.Unmap()
		for _, name := range f[1:] {
			if !validName(name) {
				continue // "a..b", ".", "x.."
			}
			key := hostKey(name)
			if !containsAddr(h.byName[key], a) {
				h.byName[key] = append(h.byName[key], a)
			}
			if !containsFold(h.byAddr[a], name) {
				h.byAddr[a] = append(h.byAddr[a], name)
			}
		}
	}
	return sc.Err()
}

// hostKey is the lookup key of a name: case-insensitive (RFC 4343), the
// final dot of an absolute name dropped.
func hostKey(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Lookup returns the addresses of name in file order (nil: none).
func (h *Hosts) Lookup(name string) []netip.Addr {
	if h == nil {
		return nil
	}
	return h.byName[hostKey(name)]
}

// Names returns the names of addr, canonical name first (nil: none). An
// IPv4-mapped IPv6 address is looked up as IPv4; a zone is ignored
// unless the file named it.
func (h *Hosts) Names(addr netip.Addr) []string {
	if h == nil {
		return nil
	}
	addr = addr.Unmap()
	if n := h.byAddr[addr]; n != nil {
		return n
	}
	return h.byAddr[addr.WithZone("")]
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
