package nc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stackbox/stackbox/pkg/services"
)

// portError is one of nc's "port number …" messages.
type portError struct{ why, arg string }

func (e *portError) Error() string { return "port number " + e.why + ": " + e.arg }

// strtoport reads one port as netcat's strtoport does: a number in
// 1–65535 (strtonum's "too small"/"too large"/"invalid"), else a service
// name of proto.
func strtoport(s, proto string) (uint16, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && isDigits(s) {
			return 0, &portError{"too large", s}
		}
		if p, ok := services.Port(s, proto); ok {
			return p, nil
		}
		return 0, &portError{"invalid", s}
	}
	switch {
	case n < 1:
		return 0, &portError{"too small", s}
	case n > 65535:
		return 0, &portError{"too large", s}
	}
	return uint16(n), nil
}

func isDigits(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// maxPorts bounds a port list (every port at most once per argument).
const maxPorts = 65535 * 4

// parsePorts expands nc's port arguments: each a port or an inclusive
// range lo-hi (swapped when given high first, as netcat's build_ports
// does). A bad high end is named alone, a bad low end with the whole
// argument, as Debian's nc prints them.
func parsePorts(args []string, proto string) ([]uint16, error) {
	var out []uint16
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange || lo == "" {
			p, err := strtoport(a, proto)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
			continue
		}
		h, err := strtoport(hi, proto)
		if err != nil {
			return nil, err
		}
		l, err := strtoport(lo, proto)
		if err != nil {
			if pe, ok := err.(*portError); ok {
				pe.arg = a
			}
			return nil, err
		}
		if l > h {
			l, h = h, l
		}
		if len(out)+int(h-l)+1 > maxPorts {
			return nil, fmt.Errorf("too many ports")
		}
		for p := int(l); p <= int(h); p++ {
			out = append(out, uint16(p))
		}
	}
	return out, nil
}
