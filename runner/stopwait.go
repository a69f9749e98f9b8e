package runner

import (
	"context"
	"errors"
)

// stopUnlessEnded stops a build for cause by calling stop, unless the build
// has ended already: its exit is reported (exited is closed), or cause is
// its --timeout and its output has ended, which the engine does at the
// exit, so that only the report is late. A build that ended in time keeps
// its own exit code. It returns stop's answer: false when the engine did
// not answer a kill.
func stopUnlessEnded(cause error, exited <-chan struct{}, outputEnded bool, stop func(cause error) bool) bool {
	select {
	case <-exited:
		return true
	default:
	}
	var timedOut *TimeoutError
	if outputEnded && errors.As(cause, &timedOut) {
		return true
	}
	return stop(cause)
}

// killUnanswered reports whether a kill failed because the engine did not
// answer it in time, rather than refused it.
func killUnanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || isEngineSilent(err)
}
