package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"sibling-run/runner"
)

// forceExitSignals is the count of SIGINT and SIGTERM after which
// sibling-run exits at once, as docker/cli does: the first stops the build
// in stages, but a stop that hangs (a frozen engine, a stuck read) must not
// leave SIGKILL as the only way out.
const forceExitSignals = 3

// stopOnSignals cancels the run with the first SIGINT or SIGTERM as its
// cause, so the runner forwards it to the build and cleans up; the second is
// only logged; the third ends the process with 128+n at once, saying what
// may be left. exit is os.Exit outside tests. The returned func stops it.
func stopOnSignals(cancel context.CancelCauseFunc, log zerolog.Logger, exit func(int)) func() {
	signals := make(chan os.Signal, forceExitSignals)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go handleSignals(signals, cancel, log, exit)
	return func() { signal.Stop(signals) }
}

func handleSignals(signals <-chan os.Signal, cancel context.CancelCauseFunc, log zerolog.Logger, exit func(int)) {
	n := 0
	for sig := range signals {
		n++
		switch {
		case n == 1:
			log.Debug().Str("signal", sig.String()).Msg("signal received")
			cancel(runner.Interrupted(sig))
		case n < forceExitSignals:
			log.Warn().Str("signal", sig.String()).Msgf("already stopping the build; signal %d more time(s) to exit at once", forceExitSignals-n)
		default:
			code := runner.Interrupted(sig).(interface{ ExitCode() int }).ExitCode()
			log.Error().Str("signal", sig.String()).Msg("exiting at once without waiting for the build to stop; the sibling, its services and network may be left on the engine: sibling-run reap --watch removes them within seconds, or run sibling-run reap")
			exit(code)
			return
		}
	}
}
