package dnstest

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Run is one captured run of a compat file.
type Run struct {
	Cmd            string   // the command line after "$ "
	Stdout, Stderr []string // lines; Stdout holds both when not split
	Split          bool     // the capture kept the streams apart
	Exit           int
}

// LoadRuns reads the runs of a testdata capture file (see the README
// beside it).
func LoadRuns(t testing.TB, path string) []Run {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var runs []Run
	var r *Run
	cur := new([]string)
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "$ "):
			runs = append(runs, Run{Cmd: strings.TrimPrefix(l, "$ ")})
			r = &runs[len(runs)-1]
			cur = &r.Stdout
		case r == nil:
		case l == "--stdout--":
			r.Split, cur = true, &r.Stdout
		case l == "--stderr--":
			cur = &r.Stderr
		case strings.HasPrefix(l, "[exit "):
			r.Exit, err = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "[exit "), "]"))
			if err != nil {
				t.Fatalf("%s: bad exit line %q", path, l)
			}
			r = nil
		default:
			*cur = append(*cur, l)
		}
	}
	return runs
}

var elided = regexp.MustCompile(`^\[\.\.\. (\d+) more lines \.\.\.\]$`)

// Normalize replaces what differs between two runs of the same query
// (message IDs and round-trip times) with fixed text.
var normalize = []struct {
	re  *regexp.Regexp
	out string
}{
	{regexp.MustCompile(`id: \d+`), "id: ID"},
	{regexp.MustCompile(` in \d+ ms$`), " in MS ms"},
}

func norm(l string) string {
	for _, n := range normalize {
		l = n.re.ReplaceAllString(l, n.out)
	}
	return l
}

// Compare says how got (a stream's text) differs from the captured
// lines, "" if it does not: line by line after normalising IDs and
// times, and for an elided tail only the number of lines.
func Compare(want []string, got string) string {
	g := strings.Split(got, "\n")
	if len(g) > 0 && g[len(g)-1] == "" {
		g = g[:len(g)-1]
	}
	// A capture's stream ends where its block does: trailing empty lines
	// are the block's layout (a blank line before "[exit N]") and ours
	// must be there too, so they are compared as they are.
	for i, w := range want {
		if m := elided.FindStringSubmatch(w); m != nil && i == len(want)-1 {
			n, _ := strconv.Atoi(m[1])
			if len(g)-i != n {
				return fmt.Sprintf("after line %d: %d more lines, want %d:\n%s", i, len(g)-i, n, strings.Join(g[min(i, len(g)):], "\n"))
			}
			return ""
		}
		if i >= len(g) {
			return fmt.Sprintf("line %d missing, want %q", i+1, w)
		}
		if norm(g[i]) != norm(w) {
			return fmt.Sprintf("line %d = %q, want %q", i+1, g[i], w)
		}
	}
	if len(g) > len(want) {
		return fmt.Sprintf("extra lines: %q", g[len(want):])
	}
	return ""
}
