// Package services is the part of services(5) the tools know without
// /etc/services: the well-known ports by name and alias, per protocol,
// as getservbyname and getservbyport answer (nc's "[tcp/http]", ports
// given by name to nc, telnet and the Go adapters). It holds no state.
package services

// service is one line of the services(5) table.
type service struct {
	name    string
	aliases []string
	port    uint16
	tcp     bool
	udp     bool
}

// services is a small built-in part of Debian's /etc/services (the
// well-known ports a user is likely to name, connect to or scan).
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

// Name is getservbyport(3): the name of port for proto ("tcp" or
// "udp"), "" when the table has none.
func Name(port uint16, proto string) string {
	for _, s := range services {
		if s.port == port && s.has(proto) {
			return s.name
		}
	}
	return ""
}

// Port is getservbyname(3): the port a service name or alias stands for
// with proto ("tcp" or "udp").
func Port(name, proto string) (uint16, bool) {
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
