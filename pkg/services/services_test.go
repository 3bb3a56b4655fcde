package services

import "testing"

// Names and aliases map to ports per protocol, and back, as
// getservbyname and getservbyport answer from Debian's /etc/services.
func TestLookups(t *testing.T) {
	for _, c := range []struct {
		name, proto string
		port        uint16
		ok          bool
	}{
		{"http", "tcp", 80, true}, {"www", "tcp", 80, true}, {"domain", "udp", 53, true},
		{"ntp", "udp", 123, true}, {"ntp", "tcp", 0, false}, {"bootpc", "tcp", 0, false},
		{"nosuch", "tcp", 0, false}, {"postgres", "tcp", 5432, true},
	} {
		if p, ok := Port(c.name, c.proto); p != c.port || ok != c.ok {
			t.Errorf("Port(%q, %q) = %d, %v; want %d, %v", c.name, c.proto, p, ok, c.port, c.ok)
		}
	}
	if Name(80, "tcp") != "http" || Name(68, "udp") != "bootpc" || Name(68, "tcp") != "" || Name(5004, "tcp") != "" {
		t.Error("Name: wrong answers for 80/tcp, 68/udp, 68/tcp or 5004/tcp")
	}
}
