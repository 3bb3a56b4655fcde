package applet

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// An applet's CLI must combine short options, keep commas in values, and
// report errors to its caller instead of exiting the process.
func TestNewCLI(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	app := NewCLI(env, "tool", "a tool")
	var tcp, udp bool
	var link string
	app.Flags = []cli.Flag{LinkFlag,
		&cli.BoolFlag{Name: "tcp", Aliases: []string{"t"}, Destination: &tcp},
		&cli.BoolFlag{Name: "udp", Aliases: []string{"u"}, Destination: &udp}}
	app.Action = func(c *cli.Context) error { link = c.String("link"); return nil }
	if err := app.Run([]string{"tool", "-tu", "--link", "emu:n,loss=0.1,seed=2"}); err != nil {
		t.Fatal(err)
	}
	if !tcp || !udp || link != "emu:n,loss=0.1,seed=2" {
		t.Fatalf("tcp=%v udp=%v link=%q", tcp, udp, link)
	}
	if err := app.Run([]string{"tool", "--bogus"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}
