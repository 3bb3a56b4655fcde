package nslookup

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/stackbox/stackbox/internal/applet"
	"github.com/stackbox/stackbox/internal/dighost"
)

// maxLine bounds one interactive command line.
const maxLine = 64 << 10

// interactive reads commands from stdin until "exit" or EOF, as
// nslookup does with no name operand (bind prints no prompt when stdin
// is not a terminal, and env.Stdin is never one here). It returns the
// exit status, or -1 after a fatal error (a server that cannot be
// found), when nothing more is printed.
func (ss *session) interactive(ctx context.Context, env *applet.Env) int {
	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(env.Stdin)
		sc.Buffer(make([]byte, 0, 4096), maxLine)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	status := 0
	for {
		var line string
		select {
		case <-ctx.Done():
			return status
		case l, ok := <-lines:
			if !ok {
				return status
			}
			line = l
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch cmd := strings.ToLower(f[0]); cmd {
		case "exit":
			return status
		case "set":
			if len(f) > 1 {
				ss.p.o.setOption(ss.p.w, f[1])
				if ss.p.o.all {
					ss.p.o.all = false
					ss.showAll()
				}
			}
		case "server", "lserver":
			if len(f) < 2 {
				continue
			}
			servers, err := dighost.ResolveServer(ctx, ss.sys, f[1], ss.p.o.port, 0)
			if err != nil {
				fmt.Fprintf(env.Stderr, "nslookup: %v\n", err)
				return -1
			}
			ss.servers = servers
			ss.showServers()
		case "help", "?":
			fmt.Fprintf(ss.p.w, "The '%s' command is not yet implemented.\n", f[0])
		case "finger", "root", "ls", "view":
			fmt.Fprintf(ss.p.w, "The '%s' command is not implemented.\n", f[0])
		default:
			servers := ss.servers
			if len(f) > 1 {
				var err error
				if servers, err = dighost.ResolveServer(ctx, ss.sys, f[1], ss.p.o.port, 0); err != nil {
					fmt.Fprintf(env.Stderr, "nslookup: %v\n", err)
					return -1
				}
			}
			ss.p.aNoAnswer = false
			if ss.p.lookupAll(ctx, ss.settings(servers), f[0]) != 0 {
				status = 1
			}
		}
	}
}

// showServers is the "Default server:" lines of the server command.
func (ss *session) showServers() {
	for _, s := range ss.settings(ss.servers).Servers {
		fmt.Fprintf(ss.p.w, "Default server: %s\nAddress: %s\n", s.Name, s)
	}
}

// showAll is "set all" (and -all): the servers and the settings.
func (ss *session) showAll() {
	o := ss.p.o
	ss.showServers()
	word := func(on bool, name string) string {
		if on {
			return name
		}
		return "no" + name
	}
	s := ss.settings(ss.servers)
	fmt.Fprintf(ss.p.w, "\nSet options:\n  %s\t\t\t%s\t\tnod2\n  %s\t\t%s\n",
		word(o.tcp, "vc"), word(o.debug, "debug"), word(o.useSearch, "search"), word(o.recurse, "recurse"))
	fmt.Fprintf(ss.p.w, "  timeout = %d\t\tretry = %d\tport = %d\tndots = %d\n", o.timeoutArg, o.tries, o.port, s.Ndots)
	fmt.Fprintf(ss.p.w, "  querytype = %-8s\tclass = %s\n", dighost.TypeString(o.qtype), dighost.ClassString(o.qclass))
	fmt.Fprintf(ss.p.w, "  srchlist = %s\n", strings.Join(s.Search, "/"))
}
