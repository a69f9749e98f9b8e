package runner

import (
	"context"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"
)

// removeTimeout bounds removing a sibling, so that an engine that stopped
// answering cannot keep sibling-run from exiting. A variable only so that
// the unit tests can shorten it, like the bounds in bounded.go.
var removeTimeout = 30 * time.Second

// detached returns a context for cleanup: it outlives the caller's
// cancellation (a SIGTERM must not stop the removal it triggers) but not the
// given timeout.
func detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// stopSibling stops a running sibling in stages: it sends sig, gives the build
// grace to exit, then kills it. exited is closed when the sibling has exited.
// Each stage is one log line. It reports false, at once, when the engine
// did not answer a kill: waiting out the grace and a second kill on an
// engine that is stuck would only triple the wait.
func stopSibling(ctx context.Context, api Engine, id string, sig syscall.Signal, grace time.Duration, exited <-chan struct{}, log zerolog.Logger) bool {
	log.Warn().Str("signal", signalName(sig)).Stringer("grace", grace).Msg("stopping the build")
	if err := kill(ctx, api, id, sig); err != nil && !cerrdefs.IsNotFound(err) {
		if killUnanswered(err) {
			return false
		}
		log.Debug().Err(err).Msg("signalling the sibling failed; killing it")
		grace = 0
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return true
	case <-timer.C:
	}
	log.Warn().Stringer("after", grace).Msg("the build is still running; killing it")
	// A conflict says the build is not running any more: it exited as the
	// grace ended, and only the report of its exit is late.
	if err := kill(ctx, api, id, syscall.SIGKILL); err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		if killUnanswered(err) {
			return false
		}
		log.Error().Err(err).Msg("killing the sibling failed")
	}
	return true
}

// kill sends sig to the sibling, waiting at most engineCallTimeout.
func kill(ctx context.Context, api Engine, id string, sig syscall.Signal) error {
	ctx, cancel := detached(ctx, engineCallTimeout)
	defer cancel()
	return api.ContainerKill(ctx, id, signalName(sig))
}

// removeSibling removes the sibling, running or not, with its anonymous
// volumes. Volumes it shares through --volumes-from stay: the engine keeps a
// volume that another container still uses. When the engine went away during
// the build, it gets one short try and a failure is only a warning: the run's
// error already says that the sibling may be left and how to remove it.
func removeSibling(ctx context.Context, api Engine, id string, engineLost bool, log zerolog.Logger) {
	timeout := removeTimeout
	if engineLost {
		timeout = engineTimeout
	}
	ctx, cancel := detached(ctx, timeout)
	defer cancel()
	err := api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil || cerrdefs.IsNotFound(err):
		log.Debug().Msg("removed the sibling")
	case cerrdefs.IsConflict(err) && goneSoon(ctx, api, id):
		log.Debug().Msg("the sibling was removed by someone else")
	case engineLost || isEngineSilent(err):
		log.Warn().Err(err).Msg("could not remove the sibling; it is left on the engine")
	default:
		log.Error().Err(err).Msg("removing the sibling failed; run `sibling-run reap` once the engine answers")
	}
}
