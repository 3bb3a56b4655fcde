package nslookup

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/dnstest"
)

type result struct {
	out, err string
	status   int
}

func runNslookup(t *testing.T, l *dnstest.Lab, args ...string) result {
	t.Helper()
	return runNslookupInput(t, l, "", args...)
}

func runNslookupInput(t *testing.T, l *dnstest.Lab, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: l.Getenv}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := Applet(l.Opener()).Main(ctx, env, append([]string{"nslookup"}, args...))
	return result{out.String(), errb.String(), st}
}

// TestGolden runs every captured bind nslookup command against the lab
// nameserver, which holds the captures' zone and answers as their
// dnsmasq did, and compares the lines and exit statuses.
func TestGolden(t *testing.T) {
	l := dnstest.Start(t)
	for _, r := range dnstest.LoadRuns(t, "testdata/bind.txt") {
		args := strings.Fields(r.Cmd)
		if args[0] != "nslookup" {
			t.Fatalf("capture %q is not an nslookup run", r.Cmd)
		}
		t.Run(r.Cmd, func(t *testing.T) {
			got := runNslookup(t, l, args[1:]...)
			if got.status != r.Exit {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got.status, r.Exit, got.out, got.err)
			}
			if r.Split {
				if d := dnstest.Compare(r.Stdout, got.out); d != "" {
					t.Errorf("stdout: %s\n%s", d, got.out)
				}
				if d := dnstest.Compare(r.Stderr, got.err); d != "" {
					t.Errorf("stderr: %s\n%s", d, got.err)
				}
				return
			}
			if d := dnstest.Compare(r.Stdout, got.out+got.err); d != "" {
				t.Errorf("%s\nstdout:\n%s\nstderr:\n%s", d, got.out, got.err)
			}
		})
	}
}
