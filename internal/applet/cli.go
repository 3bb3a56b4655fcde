package applet

import (
	"github.com/urfave/cli/v2"
)

// LinkFlag is the --link option every stack-using applet takes: a link
// spec (tap:NAME, emu:NET, …) for a private in-process stack when no netd
// is running (DESIGN.md, Process model). STACKBOX_LINK gives a default.
var LinkFlag = &cli.StringFlag{
	Name:  "link",
	Usage: "run on a private stack over link `SPEC` (tap:NAME, emu:NET, …) instead of netd",
}

// NewCLI returns a urfave/cli App wired to env for an applet named name:
// output goes to env's streams, errors are returned instead of exiting
// the process (tests run applets in-process), short options combine
// (-tulpn), commas in flag values are kept (link specs contain them), and
// no help subcommand or version flag is added.
func NewCLI(env *Env, name, usage string) *cli.App {
	return &cli.App{
		Name:                      name,
		HelpName:                  name,
		Usage:                     usage,
		Reader:                    env.Stdin,
		Writer:                    env.Stdout,
		ErrWriter:                 env.Stderr,
		HideHelpCommand:           true,
		HideVersion:               true,
		UseShortOptionHandling:    true,
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {},
	}
}
