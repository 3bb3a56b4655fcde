package dighost

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Bare is name as dns_name_format writes it: without the final dot
// (the root stays ".").
func Bare(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}

// Rdata is rr's data in presentation format ("10 mail.lab.", "\"a\" \"b\""):
// what follows the four header fields of its text.
func Rdata(rr dns.RR) string {
	f := strings.SplitN(rr.String(), "\t", 5)
	if len(f) < 5 {
		return ""
	}
	return f[4]
}

// TypeString is a type's mnemonic, TYPEnnn for one without (RFC 3597 §5).
func TypeString(t uint16) string {
	// Only a mnemonic ParseType reads back: not miekg's "None" or
	// "Reserved", which bind writes as TYPE0 and TYPE65535.
	if s, ok := dns.TypeToString[t]; ok {
		if back, ok := dns.StringToType[strings.ToUpper(s)]; ok && back == t {
			return s
		}
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// ClassString is a class's mnemonic, CLASSnnn for one without.
func ClassString(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

// tabTo moves b to column col (tab stops every 8) with tabs, as bind's
// master-file style lays out columns; a field already at or past col is
// followed by a single space instead.
func tabTo(b *strings.Builder, col int) {
	n := 0
	for _, c := range b.String() {
		if c == '\t' {
			n = (n/8 + 1) * 8
		} else {
			n++
		}
	}
	if n >= col {
		b.WriteByte(' ')
		return
	}
	for ; n < col; n = (n/8 + 1) * 8 {
		b.WriteByte('\t')
	}
}

// ZoneLine is rr as dig and host -v print a record: name, TTL, class,
// type and data in bind's columns (24, 32, 40, 48).
func ZoneLine(rr dns.RR) string {
	h := rr.Header()
	var b strings.Builder
	b.WriteString(h.Name)
	tabTo(&b, 24)
	b.WriteString(strconv.FormatUint(uint64(h.Ttl), 10))
	tabTo(&b, 32)
	b.WriteString(ClassString(h.Class))
	tabTo(&b, 40)
	b.WriteString(TypeString(h.Rrtype))
	tabTo(&b, 48)
	b.WriteString(Rdata(rr))
	return b.String()
}

// QuestionLine is q as the QUESTION SECTION shows it.
func QuestionLine(q dns.Question) string {
	var b strings.Builder
	b.WriteString(";" + q.Name)
	tabTo(&b, 32)
	b.WriteString(ClassString(q.Qclass))
	tabTo(&b, 40)
	b.WriteString(TypeString(q.Qtype))
	return b.String()
}

// Header is the two header lines of a verbose message dump:
// ";; ->>HEADER<<- opcode: …" and ";; flags: …; QUERY: …".
func Header(m *dns.Msg) string {
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{
		{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"},
		{m.RecursionDesired, "rd"}, {m.RecursionAvailable, "ra"},
		{m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"},
	} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	return fmt.Sprintf(";; ->>HEADER<<- opcode: %s, status: %s, id: %d\n;; flags: %s; QUERY: %d, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d\n",
		dns.OpcodeToString[m.Opcode], RcodeString(m.Rcode), m.Id, strings.Join(flags, " "),
		len(m.Question), len(m.Answer), len(m.Ns), len(Additional(m)))
}

// Additional is m's additional section without the OPT pseudo-record,
// which bind keeps apart from the sections (RFC 6891 §6.1.1).
func Additional(m *dns.Msg) []dns.RR {
	var out []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// RcodeString is an RCODE's mnemonic as bind writes it.
func RcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}

// ParseType reads a record type as bind does: a mnemonic in any case or
// TYPEnnn. ok is false for anything else.
func ParseType(s string) (uint16, bool) {
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(u, "TYPE"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), true
		}
	}
	return 0, false
}

// ParseClass reads a class as bind does: IN, CH, HS, ANY… or CLASSnnn.
func ParseClass(s string) (uint16, bool) {
	u := strings.ToUpper(s)
	if c, ok := dns.StringToClass[u]; ok {
		return c, true
	}
	if n, ok := strings.CutPrefix(u, "CLASS"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), true
		}
	}
	return 0, false
}

// Canonical follows name's CNAME chain through m's answer section (bind's
// chase_cnamechain), bounded, and returns the chain's end.
func Canonical(m *dns.Msg, name string) string {
	for range 16 {
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
				next = c.Target
				break
			}
		}
		if next == "" {
			return name
		}
		name = next
	}
	return name
}
