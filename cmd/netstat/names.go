package netstat

import (
	"net/netip"
	"strconv"
	"strings"
)

// ParseHosts reads hosts(5) text: for each address, the first name of
// the first line that lists it (what a reverse lookup through files
// returns).
func ParseHosts(text string) map[netip.Addr]string {
	m := make(map[netip.Addr]string)
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.WithZone("")
		if _, dup := m[a]; !dup {
			m[a] = f[1]
		}
	}
	return m
}

// ParseServices reads services(5) text into "port/proto" → the first
// name given for it.
func ParseServices(text string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			continue
		}
		key := port + "/" + proto
		if _, dup := m[key]; !dup {
			m[key] = f[0]
		}
	}
	return m
}
