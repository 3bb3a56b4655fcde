package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackbox/stackbox/internal/applet"
)

// recorder is a test applet that reports the argv it was given.
func recorder(name string, aliases ...string) *applet.Applet {
	return &applet.Applet{
		Name: name, Aliases: aliases, Summary: "records its arguments",
		Main: func(_ context.Context, env *applet.Env, args []string) int {
			env.Stdout.Write([]byte(strings.Join(args, "|")))
			return 3
		},
	}
}

func runDispatch(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	reg, err := applet.NewRegistry(recorder("echoer", "echoer6"), recorder("other"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &applet.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := dispatch(context.Background(), reg, env, argv)
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		code     int
		stdout   string // exact, unless empty
		inStderr string
	}{
		{"by argv[0] through a symlink", []string{"/usr/local/bin/echoer", "-c", "1"}, 3, "echoer|-c|1", ""},
		{"alias by argv[0]", []string{"echoer6", "x"}, 3, "echoer6|x", ""},
		{"by first argument", []string{"/opt/stackbox", "other", "a", "b"}, 3, "other|a|b", ""},
		{"unknown link name falls back to argv[1]", []string{"/tmp/weird", "echoer"}, 3, "echoer", ""},
		{"list", []string{"stackbox", "--list"}, 0, "echoer\nechoer6\nother\n", ""},
		{"unknown applet", []string{"stackbox", "nosuch"}, exitNotFound, "", "applet not found: nosuch"},
		{"unknown option", []string{"stackbox", "--frobnicate"}, exitUsage, "", "unrecognized option '--frobnicate'"},
		{"no arguments", []string{"stackbox"}, exitUsage, "", "Usage: stackbox APPLET"},
		{"help for an applet", []string{"stackbox", "help", "other"}, 3, "other|--help", ""},
		{"help for a missing applet", []string{"stackbox", "help", "nosuch"}, exitNotFound, "", "applet not found: nosuch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runDispatch(t, tc.argv...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errs)
			}
			if tc.stdout != "" && out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if !strings.Contains(errs, tc.inStderr) {
				t.Errorf("stderr %q does not contain %q", errs, tc.inStderr)
			}
		})
	}
	code, out, _ := runDispatch(t, "stackbox", "--help")
	if code != 0 || !strings.Contains(out, "echoer (echoer6)") || !strings.Contains(out, "records its arguments") {
		t.Errorf("--help: exit %d, output %q", code, out)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	if _, err := applet.NewRegistry(recorder("a", "b"), recorder("b")); err == nil {
		t.Fatal("duplicate name accepted")
	}
}

// TestBinary builds the real static binary and runs it the ways a user does.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "stackbox")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(path string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String(), errb.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errb.String()
	}
	if code, out, _ := run(bin, "--version"); code != 0 || !strings.HasPrefix(out, "stackbox ") {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	if code, _, errs := run(bin, "nosuch-applet"); code != exitNotFound || !strings.Contains(errs, "applet not found") {
		t.Errorf("unknown applet: exit %d, stderr %q", code, errs)
	}
	// A symlink whose name is no applet behaves as stackbox itself.
	link := filepath.Join(dir, "not-an-applet")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(link); code != exitUsage || !strings.Contains(errs, "Usage:") {
		t.Errorf("bare unknown symlink: exit %d, stderr %q", code, errs)
	}
	if code, out, _ := run(link, "--list"); code != 0 {
		t.Errorf("--list through a symlink: exit %d, %q", code, out)
	}
}
