package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// inspector is what telling who ended a build needs of the engine.
type inspector interface {
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	DaemonHost() string
}

// freshDialer dials a new connection to the engine, outside the client's pool.
type freshDialer interface {
	Dialer() func(context.Context) (net.Conn, error)
}

// errEngineStopped marks a build that ended because its engine stopped.
var errEngineStopped = errors.New("the engine stopped")

// endedFromOutside tells whether a build that sibling-run did not stop, and
// that died of a signal (code 128+n), was ended by someone else: its engine
// stopping (dockerd closes its API socket first, then stops every container:
// a new connection is refused), or its container removed (docker rm -f, a
// reaper of another host). inspected is the engine's answer to an inspect of
// the sibling made after the exit (see inspectAfterExit). Either is a
// *ExitError with ExitToolFailure that says so; nil means the build ended by
// itself, as far as the engine tells (a docker kill or docker stop from
// outside cannot be told from the build's own). An engine without a dialer
// of its own (a fake) is not asked whether it stopped.
func endedFromOutside(ctx context.Context, api inspector, code int, inspected afterExit) error {
	if code <= 128 {
		return nil
	}
	if dialer, ok := api.(freshDialer); ok && engineRefuses(ctx, dialer) {
		return &ExitError{Code: ExitToolFailure, Err: fmt.Errorf("%w: the Docker engine at %s stopped during the build (a restart or shutdown of the engine, not a stop of the task) and ended the build with it (exit code %d); the sibling may be left on it: once the engine is back, run sibling-run reap", errEngineStopped, api.DaemonHost(), code)}
	}
	if inspected.removed() {
		return toolFailure("the sibling was removed from outside sibling-run during the build (docker rm -f, or a reap by someone else) and its build killed (exit code %d, not the build's own); nothing of it is left on the engine", code)
	}
	return nil
}

// afterExit is the engine's answer to an inspect of an exited sibling.
type afterExit struct {
	info container.InspectResponse
	err  error
}

// podmanRemovalGrace is how long an exited sibling is watched, on Podman,
// for a removal from outside that Podman reports only after the exit.
const podmanRemovalGrace = 2 * time.Second

// inspectAfterExit inspects the sibling id once a build died of a signal
// (code 128+n), for endedFromOutside and reportOOM alike; other builds pay
// nothing. Podman 4.3 kills a container that podman rm -f (or a reap)
// removes and reports its exit first; an inspect then may find it still
// there, or fail with a 500 ("does not exist in database") while it goes.
// So on Podman a sibling not yet seen gone, and not killed by its memory
// limit, is inspected again for up to podmanRemovalGrace: a build that
// killed itself pays that once (without it, 6 of 6 runs of the test told
// a removal as the build's own 137).
func inspectAfterExit(ctx context.Context, api Engine, id string, code int) afterExit {
	if code <= 128 {
		return afterExit{err: errors.New("not inspected")}
	}
	inspect := func() afterExit {
		ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
		defer cancel()
		info, err := api.ContainerInspect(ctx, id)
		return afterExit{info, err}
	}
	a := inspect()
	oom := a.err == nil && a.info.ContainerJSONBase != nil && a.info.State != nil && a.info.State.OOMKilled
	if a.removed() || oom || !isPodman(ctx, api) {
		return a
	}
	for deadline := time.Now().Add(podmanRemovalGrace); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if a = inspect(); a.removed() {
			break
		}
	}
	return a
}

// removed reports whether the sibling was gone or being removed; an
// inspect that failed otherwise says nothing.
func (a afterExit) removed() bool {
	if cerrdefs.IsNotFound(a.err) {
		return true
	}
	return a.err == nil && a.info.State != nil && (a.info.State.Status == "removing" || a.info.State.Dead)
}

// isEngineStop reports whether err is endedFromOutside's engine stop.
func isEngineStop(err error) bool { return errors.Is(err, errEngineStopped) }

// engineRefuses reports whether the engine refuses a new connection or ends
// it unanswered, as a stopping dockerd does; an engine that answers, or is
// only slow, does not refuse.
func engineRefuses(ctx context.Context, api freshDialer) bool {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	conn, err := api.Dialer()(ctx)
	if err != nil {
		return ctx.Err() == nil && !isEngineSilent(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")); err != nil {
		return ctx.Err() == nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var timeout net.Error
		return !(errors.As(err, &timeout) && timeout.Timeout())
	}
	resp.Body.Close()
	return false
}

// goneSoon reports whether the container id, whose removal the engine
// refused because another one is under way, is gone within engineTimeout.
func goneSoon(ctx context.Context, api inspector, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	for {
		if _, err := api.ContainerInspect(ctx, id); cerrdefs.IsNotFound(err) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
