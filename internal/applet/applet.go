// Package applet defines what one tool of the multi-call binary is (an
// Applet) and the registry that cmd/stackbox dispatches through. Applets
// are plain values registered explicitly, with no init side effects: each
// run gets its own flag set and its own Env, so applets can be run from
// tests in-process.
package applet

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
)

// Env is the process an applet runs in. Applets write only to these streams
// and read the environment only through Getenv, so tests can run them
// in-process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// OSEnv returns the Env of the real process.
func OSEnv() *Env {
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Applet is one tool: ping, ifconfig, ….
type Applet struct {
	Name    string   // the name it is installed and invoked as
	Aliases []string // further names (ping6 for ping)
	Summary string   // one line for `stackbox --help`
	// Main runs the tool. args[0] is the name it was invoked by, as argv[0]
	// of a C program; the rest are its arguments. It returns the exit status
	// the Linux tool it replaces would. ctx ends on SIGINT/SIGTERM.
	Main func(ctx context.Context, env *Env, args []string) int
}

// Registry maps names and aliases to applets.
type Registry struct {
	byName  map[string]*Applet
	applets []*Applet
}

// NewRegistry builds a registry; a name used twice is an error.
func NewRegistry(applets ...*Applet) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Applet)}
	for _, a := range applets {
		if a.Main == nil {
			return nil, fmt.Errorf("applet %q has no Main", a.Name)
		}
		for _, n := range append([]string{a.Name}, a.Aliases...) {
			if n == "" {
				return nil, fmt.Errorf("applet %q: empty name", a.Name)
			}
			if _, dup := r.byName[n]; dup {
				return nil, fmt.Errorf("applet name %q registered twice", n)
			}
			r.byName[n] = a
		}
		r.applets = append(r.applets, a)
	}
	sort.Slice(r.applets, func(i, j int) bool { return r.applets[i].Name < r.applets[j].Name })
	return r, nil
}

// Lookup finds an applet by name or alias.
func (r *Registry) Lookup(name string) (*Applet, bool) {
	a, ok := r.byName[name]
	return a, ok
}

// Names lists every name and alias, sorted: what `stackbox --list` prints
// and what `make install` makes symlinks for.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Applets returns the applets sorted by name.
func (r *Registry) Applets() []*Applet { return r.applets }
