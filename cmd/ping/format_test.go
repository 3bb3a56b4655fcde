package ping

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// capturedRun is one captured iputils run from testdata/iputils.txt.
type capturedRun struct {
	out  string // stdout and stderr as captured, without the [exit N] line
	exit string
}

func loadRuns(t testing.TB) map[string]capturedRun {
	t.Helper()
	b, err := os.ReadFile("testdata/iputils.txt")
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]capturedRun{}
	var cmd string
	var out strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "$ "):
			cmd = strings.TrimSpace(strings.TrimPrefix(l, "$ "))
			out.Reset()
		case strings.HasPrefix(l, "[exit "):
			runs[cmd] = capturedRun{out: out.String(), exit: strings.TrimSpace(l)}
		default:
			out.WriteString(l)
		}
	}
	return runs
}

// capture builds a run's output from our formatters: the header, the
// reply and error lines, and the summary from stats accumulated as the
// loop does.
type capture struct {
	b  strings.Builder
	st stats
}

func newCapture(v6 bool, host string, datalen int) *capture {
	c := &capture{}
	c.st.tmin = 1<<63 - 1
	c.st.timing = datalen >= timevalLen
	c.st.interval = 1000
	c.b.WriteString(header(v6, host, host, "", "", datalen))
	return c
}

func (c *capture) reply(from string, seq, ttl int, us int64, dup bool) {
	c.st.add(us)
	if dup {
		c.st.repeats++
	} else {
		c.st.received++
	}
	c.b.WriteString(reply{bytes: 64, from: from, seq: seq, ttl: ttl, timing: true, rtt: us, dup: dup}.String())
}

func (c *capture) finish(host string, tx int64, ms int64) string {
	c.st.transmitted = tx
	c.st.elapsedUS = ms * 1000
	return c.b.String() + summary(host, c.st)
}

// Our formatters reproduce iputils' captured runs byte for byte, given
// the round trips (in µs, within the rounding of the printed times) and
// the counts of each run.
func TestGoldenRuns(t *testing.T) {
	runs := loadRuns(t)
	check := func(cmd, got string) {
		t.Helper()
		r, ok := runs[cmd]
		if !ok {
			t.Fatalf("no capture %q", cmd)
		}
		if got != r.out {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", cmd, got, r.out)
		}
	}
	h := "10.200.0.2"
	c := newCapture(false, h, 56)
	for i, us := range []int64{232, 80, 51} {
		c.reply(h, i+1, 64, us, false)
	}
	check("ping -c 3 10.200.0.2", c.finish(h, 3, 2035))

	c = newCapture(false, h, 56)
	for _, us := range []int64{30, 50, 50} {
		c.st.add(us)
		c.st.received++
	}
	check("ping -c 3 -i 0.2 -q 10.200.0.2", c.finish(h, 3, 406))

	// -s 0: no room for a timestamp, so no time= and no rtt line.
	c = newCapture(false, h, 0)
	for seq := 1; seq <= 2; seq++ {
		c.b.WriteString(reply{bytes: 8, from: h, seq: seq, ttl: 64}.String())
		c.st.received++
	}
	check("ping -c 2 -s 0 10.200.0.2", c.finish(h, 2, 1019))

	h6 := "fd00:201::2"
	c = newCapture(true, h6, 56)
	c.reply(h6, 1, 63, 89, false)
	c.reply(h6, 2, 63, 69, false)
	check("ping6 -c 2 fd00:201::2", c.finish(h6, 2, 1018))

	// Duplicates count in the times (iputils divides by received + dups).
	h = "10.200.1.2"
	c = newCapture(false, h, 56)
	for _, r := range []struct {
		seq int
		us  int64
		dup bool
	}{{1, 802, false}, {2, 4265, false}, {3, 25470, false}, {4, 150433, false}, {4, 150415, true}, {5, 625, false}} {
		c.reply(h, r.seq, 63, r.us, r.dup)
	}
	check("ping -c 5 10.200.1.2", c.finish(h, 5, 4007))

	c = newCapture(false, h, 56)
	c.reply(h, 1, 63, 43, false)
	c.reply(h, 3, 63, 66, false)
	check("ping -c 4 -w 3 10.200.1.2", c.finish(h, 3, 2033))

	c = newCapture(false, h, 56)
	for seq := 1; seq <= 2; seq++ {
		c.b.WriteString("From 10.200.0.2 icmp_seq=" + string(rune('0'+seq)) + " " + icmpText(false, 11, 0, 0) + "\n")
		c.st.errors++
	}
	check("ping -c 2 -t 1 10.200.1.2", c.finish(h, 2, 1019))

	h = "10.200.0.99"
	c = newCapture(false, h, 56)
	for seq := 1; seq <= 4; seq++ {
		c.b.WriteString("From 10.200.0.1 icmp_seq=" + string(rune('0'+seq)) + " " + icmpText(false, 3, 1, 0) + "\n")
		c.st.errors++
	}
	c.st.pipesize = 4
	check("ping -c 4 10.200.0.99", c.finish(h, 4, 3069))

	h = "10.200.8.1"
	c = newCapture(false, h, 56)
	check("ping -c 3 -W 1 10.200.8.1", c.finish(h, 3, 2043))
}

// The other error texts the capture quotes.
func TestICMPTexts(t *testing.T) {
	for _, c := range []struct {
		v6        bool
		typ, code uint8
		info      uint32
		want      string
	}{
		{true, 3, 0, 0, "Time exceeded: Hop limit"},
		{false, 3, 1, 0, "Destination Host Unreachable"},
		{false, 3, 0, 0, "Destination Net Unreachable"},
		{false, 3, 4, 1400, "Frag needed and DF set (mtu = 1400)"},
		{false, 3, 99, 0, "Dest Unreachable, Bad Code: 99"},
		{false, 12, 0, 20, "Parameter problem: pointer = 20"},
		{true, 1, 3, 0, "Destination unreachable: Address unreachable"},
		{true, 1, 0, 0, "Destination unreachable: No route"},
		{true, 2, 0, 1280, "Packet too big: mtu=1280"},
		{true, 4, 1, 40, "Parameter problem: Unknown header at 40"},
	} {
		if got := icmpText(c.v6, c.typ, c.code, c.info); got != c.want {
			t.Errorf("icmpText(%v, %d, %d) = %q, want %q", c.v6, c.typ, c.code, got, c.want)
		}
	}
}

// time= has 3 decimals under 1 ms, 2 under 10, 1 under 100 and none
// above, rounding at each boundary as iputils does.
func TestRTTPrecision(t *testing.T) {
	for us, want := range map[int64]string{
		0: " time=0.000 ms", 802: " time=0.802 ms", 999: " time=0.999 ms",
		1000: " time=1.00 ms", 4265: " time=4.27 ms", 9994: " time=9.99 ms",
		9995: " time=10.0 ms", 25470: " time=25.5 ms", 99949: " time=99.9 ms",
		99950: " time=100 ms", 150415: " time=150 ms", 1234567: " time=1235 ms",
	} {
		if got := rttText(us); got != want {
			t.Errorf("rttText(%d) = %q, want %q", us, got, want)
		}
	}
	for _, c := range []struct {
		tx, rx int64
		want   string
	}{{3, 2, "33.3333"}, {2, 1, "50"}, {3, 0, "100"}, {5, 5, "0"}, {7, 1, "85.7143"}} {
		if got := loss(c.tx, c.rx); got != c.want {
			t.Errorf("loss(%d, %d) = %q, want %q", c.tx, c.rx, got, c.want)
		}
	}
}

var (
	addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f:]*:[0-9a-f]+`)
	numRE  = regexp.MustCompile(`\d+(\.\d+)?`)
)

// shapeOf turns a captured line into a regexp that any line of the same
// form matches: addresses and numbers become patterns.
func shapeOf(line string) *regexp.Regexp {
	s := addrRE.ReplaceAllString(line, "\x00")
	s = numRE.ReplaceAllString(s, "\x01")
	s = regexp.QuoteMeta(s)
	s = strings.ReplaceAll(s, "\x00", `[0-9a-f.:]+`)
	s = strings.ReplaceAll(s, "\x01", `\d+(\.\d+)?`)
	return regexp.MustCompile("^" + s + "$")
}

// shapes are the forms of every line iputils printed in the captures
// (names aside: our targets are literals).
func shapes(t testing.TB) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, r := range loadRuns(t) {
		for _, l := range strings.Split(strings.TrimSuffix(r.out, "\n"), "\n") {
			if strings.Contains(l, ".lab") || strings.Contains(l, "[...") {
				continue
			}
			out = append(out, shapeOf(l))
		}
	}
	return out
}

// checkShapes fails for each line of out that has no captured form.
func checkShapes(t *testing.T, out string) {
	t.Helper()
	sh := shapes(t)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		ok := false
		for _, re := range sh {
			if re.MatchString(l) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("line %q has no form iputils printed in testdata/iputils.txt", l)
		}
	}
}

func TestShapeOf(t *testing.T) {
	re := shapeOf("64 bytes from 10.200.0.2: icmp_seq=1 ttl=64 time=0.232 ms")
	for l, want := range map[string]bool{
		"64 bytes from 10.9.0.2: icmp_seq=12 ttl=63 time=4.27 ms":   true,
		"64 bytes from fd09::2: icmp_seq=1 ttl=64 time=150 ms":      true,
		"64 bytes from 10.9.0.2: icmp_seq=1 ttl=64 time=0.2 ms ":    false,
		"64 bytes from 10.9.0.2: icmp_seq=1 time=0.232 ms":          false,
		"64 bytes from 10.9.0.2: icmp_seq=1 ttl=64 time=0.232 ms x": false,
	} {
		if re.MatchString(l) != want {
			t.Errorf("%q matched %v, want %v", l, !want, want)
		}
	}
}
