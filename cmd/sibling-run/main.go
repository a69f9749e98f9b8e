// Command sibling-run runs a build in a sibling container on the Docker engine
// whose socket it is given, streams the build's output, and exits with the
// build's exit code. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"

	"sibling-run/runner"
)

// cli is the whole command line. Running a build is the default command, so
// `sibling-run --image IMAGE make` needs no subcommand word.
type cli struct {
	Run     runCmd     `cmd:"" default:"withargs" help:"Run a build in a sibling container (the default command)."`
	Reap    reapCmd    `cmd:"" help:"Remove siblings whose sibling-run process is gone."`
	Cache   cacheCmd   `cmd:"" help:"List and prune the caches that --cache keeps."`
	Version versionCmd `cmd:"" help:"Print the version."`
	WaitTCP waitTCPCmd `cmd:"" name:"wait-tcp" hidden:"" help:"Wait for a TCP port (used inside the engine for --service readiness)."`

	ShowVersion kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Host      string `short:"H" env:"DOCKER_HOST" help:"Docker engine to use, as in DOCKER_HOST (unix:///var/run/docker.sock, tcp://HOST:2376)." placeholder:"URL"`
	LogLevel  string `default:"info" enum:"debug,info,warn,error" env:"SIBLING_RUN_LOG_LEVEL" help:"Least severe of sibling-run's own messages to print: ${enum}."`
	LogFormat string `default:"console" enum:"console,json" env:"SIBLING_RUN_LOG_FORMAT" help:"Format of sibling-run's own messages on stderr: ${enum}."`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runner.WorkdirCheckCommand {
		os.Exit(checkWorkdir(os.Args[2:], os.Stderr))
	}
	os.Exit(run(os.Args[1:]))
}

// run parses args, runs the chosen command and returns the process exit code.
func run(args []string) int {
	var c cli
	parser, err := newParser(&c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sibling-run: %v\n", err)
		return runner.ExitToolFailure
	}
	kctx, err := parser.Parse(withRunNamed(parser, helpArgs(args))) // --help prints and exits 0 here
	if err != nil {
		fmt.Fprintf(os.Stderr, "sibling-run: %s; see sibling-run --help\n", explainParseError(err.Error()))
		return runner.ExitToolFailure
	}
	stdout, stderr := newOutputs(os.Stdout, os.Stderr)
	log := newLogger(c.LogLevel, c.LogFormat, stderr.logLines())

	// The first SIGINT or SIGTERM cancels the run with the signal as its cause;
	// the runner forwards it to the build and cleans up before we exit. The
	// third exits at once (see stopOnSignals).
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	// A closed stdout (sibling-run ... | head) must not kill sibling-run
	// before it has stopped and removed the build: take EPIPE as an error.
	signal.Ignore(syscall.SIGPIPE)
	defer stopOnSignals(cancel, log, os.Exit)()
	// A build belongs to the task that started it: when the task's shell
	// dies, the build stops too. The long-running reap --watch is exempt.
	if kctx.Selected() != nil && kctx.Selected().Name == "run" {
		stillThere := stopWithParent(func() {
			log.Warn().Int("parent_pid", startPPID).Msg("sibling-run's parent process is gone; stopping the build as on SIGTERM")
			cancel(runner.Interrupted(syscall.SIGTERM))
		}, log)
		if !stillThere {
			log.Error().Int("parent_pid", startPPID).Msg("sibling-run's parent process is gone already; not starting the build")
			return 128 + int(syscall.SIGTERM)
		}
	}

	g := &globals{Ctx: ctx, Host: c.Host, Log: log, Stdout: stdout, Stderr: stderr}
	if err := kctx.Run(g); err != nil {
		log.Error().Msg(err.Error())
		return exitCode(err)
	}
	return g.ExitCode
}

// newParser returns the parser that fills c.
func newParser(c *cli) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("sibling-run"),
		kong.Description("Run a build in a sibling container on the Docker engine, as a Bamboo script task or on a laptop."),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": versionLine()},
		kong.ExplicitGroups([]kong.Group{
			{Key: "build", Title: "The build:"},
			{Key: "mounts", Title: "What the build sees besides its working directory:"},
			{Key: "image", Title: "Pulling the image:"},
			{Key: "limits", Title: "Limits and network:"},
			{Key: "services", Title: "Services:"},
			{Key: "artifacts", Title: "Artifacts:"},
			{Key: "lifecycle", Title: "The sibling's life:"},
		}),
	)
}

// withRunNamed returns args with the run command named first when they start
// with flags of run itself. The first word after such flags is the build's
// command, even when it reads like one of ours: `sibling-run --image IMG run`
// runs `run` in the build, where the parser would otherwise take the word for
// the run command and run the image's CMD (or refuse `reap` and `version`).
func withRunNamed(parser *kong.Kong, args []string) []string {
	run := parser.Model.Node.DefaultCmd
	trace, err := kong.Trace(parser, args)
	if run == nil || err != nil {
		return args
	}
	runFlags := map[*kong.Flag]bool{}
	for _, flag := range run.Flags {
		runFlags[flag] = true
	}
	for _, p := range trace.Path {
		if p.Command != nil || p.Argument != nil || p.Positional != nil {
			return args
		}
		if p.Flag != nil && runFlags[p.Flag] {
			return append([]string{run.Name}, args...)
		}
	}
	return args
}

// globals is what every command's Run gets: the context that signals cancel,
// the engine's address, the logger and the outputs it shares with the build.
// A command sets ExitCode to end the process with a code that is not a
// failure of sibling-run (the build's own).
type globals struct {
	Ctx            context.Context
	Host           string
	Log            zerolog.Logger
	Stdout, Stderr *lineEnds
	ExitCode       int
}

// exitCode maps an error to the process's exit code: the code an error
// carries (runner.ExitError, runner.InterruptError), else 125, docker run's
// code for a failure of the tool itself.
func exitCode(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return runner.ExitToolFailure
}
