package runner

import (
	"context"
	"fmt"
	"time"
)

// TimeoutError is the error a run ends with when its build ran longer than
// Config.Timeout. The run's context is cancelled with it as the cause, so the
// build is stopped in stages like after a signal (SIGTERM, then SIGKILL after
// Config.StopTimeout) and removed.
type TimeoutError struct {
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the build timed out after %s and was stopped; raise --timeout if it needs longer", e.After)
}

// ExitCode returns 124.
func (e *TimeoutError) ExitCode() int { return ExitTimeout }

// withBuildTimeout returns a context that is cancelled with a *TimeoutError
// once limit has passed; a limit of 0 means none.
func withBuildTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, limit, &TimeoutError{After: limit})
}
