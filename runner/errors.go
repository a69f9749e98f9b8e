package runner

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit codes that sibling-run ends with besides the build's own, which passes
// through unchanged (0-255; 128+n for a build killed by signal n). They
// follow docker run, and timeout(1) for a timeout. A run stopped by a signal
// (or by its parent's death) ends with 128+n of that signal: see
// InterruptError.
const (
	// ExitArtifactsIncomplete reports a build that passed but whose artifacts
	// could not all be copied: one was missing, too big, refused (its path
	// replaced by a link) or cut short. A build that failed keeps its own code.
	ExitArtifactsIncomplete = 1
	// ExitTimeout reports that the build ran longer than --timeout and was
	// stopped, as timeout(1) reports it.
	ExitTimeout = 124
	// ExitToolFailure reports that sibling-run or the engine failed: bad input,
	// an unreachable engine, an absent image, an unshared working directory.
	ExitToolFailure = 125
	// ExitCannotInvoke reports that the build's command exists but cannot be run.
	ExitCannotInvoke = 126
	// ExitNotFound reports that the build's command does not exist in the image.
	ExitNotFound = 127
	// ExitWaitTimedOut is wait-tcp's own code, inside the engine, for a port
	// that did not answer in time; the run turns it into a service failure.
	ExitWaitTimedOut = 1
)

// ExitError is a failure that carries the exit code sibling-run should end with.
// The build's own non-zero exit is not an ExitError: it is reported in Result.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the process exit code for this failure.
func (e *ExitError) ExitCode() int { return e.Code }

// toolFailure wraps a failure of sibling-run or the engine with exit code 125.
func toolFailure(format string, args ...any) error {
	return &ExitError{Code: ExitToolFailure, Err: fmt.Errorf(format, args...)}
}

// InterruptError is the error a run ends with when it was stopped by a
// signal. Its exit code is the shell's for that signal: 130 for SIGINT, 143 for
// SIGTERM. Callers cancel the run's context with it as the cause, and the run
// forwards the same signal to the build.
type InterruptError struct {
	Signal syscall.Signal
}

// Interrupted returns the cause to cancel a run with when sig arrives.
func Interrupted(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		s = syscall.SIGTERM
	}
	return &InterruptError{Signal: s}
}

func (e *InterruptError) Error() string { return "stopped by " + signalName(e.Signal) }

// ExitCode returns 128 plus the signal's number.
func (e *InterruptError) ExitCode() int { return 128 + int(e.Signal) }

// signalName gives the name the engine's kill endpoint takes: "SIGTERM", or
// the number for a signal without a name.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return strconv.Itoa(int(sig))
}
