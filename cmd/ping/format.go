package ping

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// The text iputils prints, kept apart from the socket code so the golden
// tests can check every shape against ../shared/compat/ping.md.

// header is the first line: "PING a (a) 56(84) bytes of data." for
// IPv4, "PING a(a) 56 data bytes" for IPv6; with -I, "from SRC DEV: "
// before the size (DEV empty for an address).
func header(v6 bool, hostname, addr string, from, dev string, datalen int) string {
	var b strings.Builder
	if v6 {
		fmt.Fprintf(&b, "PING %s(%s) ", hostname, addr)
	} else {
		fmt.Fprintf(&b, "PING %s (%s) ", hostname, addr)
	}
	if from != "" {
		fmt.Fprintf(&b, "from %s %s: ", from, dev)
	}
	if v6 {
		fmt.Fprintf(&b, "%d data bytes\n", datalen)
	} else {
		fmt.Fprintf(&b, "%d(%d) bytes of data.\n", datalen, datalen+8+20)
	}
	return b.String()
}

// rttText is " time=X ms" with iputils' precision: 3 decimals under
// 1 ms, 2 under 10 ms, 1 under 100 ms, none above (gather_statistics,
// rounding as it does). us is the round trip in microseconds.
func rttText(us int64) string {
	switch {
	case us >= 100000-50:
		return fmt.Sprintf(" time=%d ms", (us+500)/1000)
	case us >= 10000-5:
		return fmt.Sprintf(" time=%d.%01d ms", (us+50)/1000, ((us+50)%1000)/100)
	case us >= 1000:
		return fmt.Sprintf(" time=%d.%02d ms", (us+5)/1000, ((us+5)%1000)/10)
	}
	return fmt.Sprintf(" time=%d.%03d ms", us/1000, us%1000)
}

// reply is one reply line without its timestamp prefix.
type reply struct {
	bytes   int
	from    string
	seq     int
	ttl     int // < 0: no ttl= (no hop limit control message)
	timing  bool
	rtt     int64 // µs
	trunc   bool
	dup     bool
	badCsum bool
}

func (r reply) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bytes from %s: icmp_seq=%d", r.bytes, r.from, r.seq)
	if r.ttl >= 0 {
		fmt.Fprintf(&b, " ttl=%d", r.ttl)
	}
	if r.trunc {
		b.WriteString(" (truncated)\n")
		return b.String()
	}
	if r.timing {
		b.WriteString(rttText(r.rtt))
	}
	if r.dup {
		b.WriteString(" (DUP!)")
	}
	if r.badCsum {
		b.WriteString(" (BAD CHECKSUM!)")
	}
	b.WriteByte('\n')
	return b.String()
}

// icmpText describes an ICMP error as iputils' pr_icmph does (IPv4) and
// its IPv6 counterpart; info is sock_extended_err's ee_info (the MTU, the
// parameter problem pointer).
func icmpText(v6 bool, typ, code uint8, info uint32) string {
	if v6 {
		return icmp6Text(typ, code, info)
	}
	switch typ {
	case 0:
		return "Echo Reply"
	case 3:
		names := []string{
			"Destination Net Unreachable", "Destination Host Unreachable",
			"Destination Protocol Unreachable", "Destination Port Unreachable",
			"", "Source Route Failed", "Destination Net Unknown",
			"Destination Host Unknown", "Source Host Isolated",
			"Destination Net Prohibited", "Destination Host Prohibited",
			"Destination Net Unreachable for Type of Service",
			"Destination Host Unreachable for Type of Service",
			"Packet filtered", "Precedence Violation", "Precedence Cutoff",
		}
		if code == 4 {
			return fmt.Sprintf("Frag needed and DF set (mtu = %d)", info)
		}
		if int(code) < len(names) {
			return names[code]
		}
		return fmt.Sprintf("Dest Unreachable, Bad Code: %d", code)
	case 4:
		return "Source Quench"
	case 5:
		names := []string{"Redirect Network", "Redirect Host",
			"Redirect Type of Service and Network", "Redirect Type of Service and Host"}
		s := fmt.Sprintf("Redirect, Bad Code: %d", code)
		if int(code) < len(names) {
			s = names[code]
		}
		a := [4]byte{byte(info), byte(info >> 8), byte(info >> 16), byte(info >> 24)}
		return fmt.Sprintf("%s(New nexthop: %d.%d.%d.%d)", s, a[0], a[1], a[2], a[3])
	case 8:
		return "Echo Request"
	case 11:
		switch code {
		case 0:
			return "Time to live exceeded"
		case 1:
			return "Frag reassembly time exceeded"
		}
		return fmt.Sprintf("Time exceeded, Bad Code: %d", code)
	case 12:
		return fmt.Sprintf("Parameter problem: pointer = %d", info)
	case 13:
		return "Timestamp"
	case 14:
		return "Timestamp Reply"
	case 15:
		return "Information Request"
	case 16:
		return "Information Reply"
	case 17:
		return "Address Mask Request"
	case 18:
		return "Address Mask Reply"
	}
	return fmt.Sprintf("Bad ICMP type: %d", typ)
}

// icmp6Text is ping6's pr_icmph (RFC 4443 §3 types and codes).
func icmp6Text(typ, code uint8, info uint32) string {
	switch typ {
	case 1:
		names := []string{"No route", "Administratively prohibited",
			"Beyond scope of source address", "Address unreachable", "Port unreachable"}
		s := fmt.Sprintf("Unknown code %d", code)
		if int(code) < len(names) {
			s = names[code]
		}
		return "Destination unreachable: " + s
	case 2:
		s := fmt.Sprintf("Packet too big: mtu=%d", info)
		if code != 0 {
			s += fmt.Sprintf(", code=%d", code)
		}
		return s
	case 3:
		switch code {
		case 0:
			return "Time exceeded: Hop limit"
		case 1:
			return "Time exceeded: Defragmentation failure"
		}
		return fmt.Sprintf("Time exceeded: code %d", code)
	case 4:
		names := []string{"Wrong header field ", "Unknown header ", "Unknown option "}
		s := fmt.Sprintf("code %d ", code)
		if int(code) < len(names) {
			s = names[code]
		}
		return fmt.Sprintf("Parameter problem: %sat %d", s, info)
	case 128:
		return "Echo request"
	case 129:
		return "Echo reply"
	}
	return fmt.Sprintf("unknown icmp type: %d", typ)
}

// stats are the counters the summary prints (iputils' rts fields; times
// in microseconds).
type stats struct {
	transmitted, received, repeats, checksum, errors int64
	tmin, tmax, tsum, tsum2                          int64
	rtt                                              int64 // ewma × 8, as iputils keeps it
	pipesize                                         int
	timing                                           bool
	interval                                         int // ms; 0: flood
	flood                                            bool
	elapsedUS                                        int64 // last send − start
}

// add counts one round trip (gather_statistics: duplicates count too).
func (s *stats) add(us int64) {
	s.tsum += us
	s.tsum2 += us * us
	s.tmin = min(s.tmin, us)
	s.tmax = max(s.tmax, us)
	if s.rtt == 0 {
		s.rtt = us * 8
	} else {
		s.rtt += us - s.rtt/8
	}
}

// llsqrt is the integer square root by Newton's method, as iputils
// computes mdev.
func llsqrt(a int64) int64 {
	x, prev := a, int64(1<<63-1)
	if x > 0 {
		for x < prev {
			prev = x
			x = (x + a/x) / 2
		}
	}
	return x
}

// loss is "%g" of the float loss percentage: 6 significant digits.
func loss(tx, rx int64) string {
	f := float32(float64(tx-rx) * 100.0 / float64(tx))
	return strconv.FormatFloat(float64(f), 'g', 6, 32)
}

func ms3(us int64) string { return fmt.Sprintf("%d.%03d", us/1000, us%1000) }

// summary is finish(): the blank line, the statistics lines and the
// rtt/pipe/ipg line (an empty line when there is nothing to put on it).
func summary(hostname string, s stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n--- %s ping statistics ---\n", hostname)
	fmt.Fprintf(&b, "%d packets transmitted, %d received", s.transmitted, s.received)
	if s.repeats != 0 {
		fmt.Fprintf(&b, ", +%d duplicates", s.repeats)
	}
	if s.checksum != 0 {
		fmt.Fprintf(&b, ", +%d corrupted", s.checksum)
	}
	if s.errors != 0 {
		fmt.Fprintf(&b, ", +%d errors", s.errors)
	}
	if s.transmitted != 0 {
		fmt.Fprintf(&b, ", %s%% packet loss", loss(s.transmitted, s.received))
		fmt.Fprintf(&b, ", time %dms", (s.elapsedUS+500)/1000)
	}
	b.WriteByte('\n')
	comma := ""
	if s.received != 0 && s.timing {
		total := s.received + s.repeats
		avg := s.tsum / total
		var v int64
		if s.tsum < 1<<31-1 {
			v = (s.tsum2 - s.tsum*s.tsum/total) / total
		} else {
			v = s.tsum2/total - avg*avg
		}
		fmt.Fprintf(&b, "rtt min/avg/max/mdev = %s/%s/%s/%s ms", ms3(s.tmin), ms3(avg), ms3(s.tmax), ms3(llsqrt(v)))
		comma = ", "
	}
	if s.pipesize > 1 {
		fmt.Fprintf(&b, "%spipe %d", comma, s.pipesize)
		comma = ", "
	}
	if s.received != 0 && (s.interval == 0 || s.flood) && s.transmitted > 1 {
		ipg := s.elapsedUS / (s.transmitted - 1)
		fmt.Fprintf(&b, "%sipg/ewma %s/%s ms", comma, ms3(ipg), ms3(s.rtt/8))
	}
	b.WriteByte('\n')
	return b.String()
}

// strerror is the C library's text for an error's errno: Go's with a
// capital, as glibc's strerror reads.
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
