package nc

import (
	"fmt"
	"strconv"
	"strings"
)

// service is one line of the services(5) table nc needs: names print in
// -v's "[tcp/http]" and are accepted as ports.
type service struct {
	name    string
	aliases []string
	port    uint16
	tcp     bool
	udp     bool
}

// services is a small built-in part of Debian's /etc/services (the
// well-known ports a user is likely to name or scan).
var services = []service{
	{"echo", nil, 7, true, true},
	{"discard", []string{"sink", "null"}, 9, true, true},
	{"daytime", nil, 13, true, true},
	{"ftp-data", nil, 20, true, false},
	{"ftp", nil, 21, true, false},
	{"ssh", nil, 22, true, false},
	{"telnet", nil, 23, true, false},
	{"smtp", []string{"mail"}, 25, true, false},
	{"time", nil, 37, true, true},
	{"whois", []string{"nicname"}, 43, true, false},
	{"domain", nil, 53, true, true},
	{"bootps", nil, 67, false, true},
	{"bootpc", nil, 68, false, true},
	{"tftp", nil, 69, false, true},
	{"gopher", nil, 70, true, false},
	{"finger", nil, 79, true, false},
	{"http", []string{"www"}, 80, true, false},
	{"kerberos", []string{"kerberos5", "krb5", "kerberos-sec"}, 88, true, true},
	{"pop3", []string{"pop-3"}, 110, true, false},
	{"sunrpc", []string{"portmapper"}, 111, true, true},
	{"auth", []string{"authentication", "tap", "ident"}, 113, true, false},
	{"nntp", []string{"readnews", "untp"}, 119, true, false},
	{"ntp", nil, 123, false, true},
	{"imap2", []string{"imap"}, 143, true, false},
	{"snmp", nil, 161, true, true},
	{"ldap", nil, 389, true, true},
	{"https", nil, 443, true, true},
	{"microsoft-ds", nil, 445, true, false},
	{"submissions", []string{"ssmtp", "smtps", "urd"}, 465, true, false},
	{"syslog", nil, 514, false, true},
	{"submission", nil, 587, true, false},
	{"ldaps", nil, 636, true, true},
	{"rsync", nil, 873, true, false},
	{"imaps", nil, 993, true, false},
	{"pop3s", nil, 995, true, false},
	{"socks", nil, 1080, true, false},
	{"openvpn", nil, 1194, true, true},
	{"mysql", nil, 3306, true, false},
	{"postgresql", []string{"postgres"}, 5432, true, false},
	{"http-alt", []string{"webcache"}, 8080, true, false},
}

func (s service) has(proto string) bool {
	if proto == "udp" {
		return s.udp
	}
	return s.tcp
}

// serviceName is getservbyport's answer ("" when the table has none).
func serviceName(port uint16, proto string) string {
	for _, s := range services {
		if s.port == port && s.has(proto) {
			return s.name
		}
	}
	return ""
}

// servicePort is getservbyname's answer.
func servicePort(name, proto string) (uint16, bool) {
	for _, s := range services {
		if !s.has(proto) {
			continue
		}
		if s.name == name {
			return s.port, true
		}
		for _, a := range s.aliases {
			if a == name {
				return s.port, true
			}
		}
	}
	return 0, false
}

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
		if p, ok := servicePort(s, proto); ok {
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
