package runner

import (
	"time"
)

// Bounds on the waits of a run after the build has ended or was stopped,
// where an engine that stops answering would otherwise hang the task for
// good (Podman has been seen not to report an exit when its cleanup failed).
// Each is far above what a healthy engine needs, even a loaded one, and far
// below what a Bamboo admin would wait before calling a task hung.
//
// They are variables only so that the unit tests can shorten them (see
// shortBounds in lifecycle_test.go); nothing else assigns them.
var (
	// engineCallTimeout bounds one engine call that answers at once when
	// the engine is healthy: attach, kill, inspect, resize, a small copy.
	engineCallTimeout = 30 * time.Second
	// createTimeout bounds creating the sibling once its image is there.
	createTimeout = 2 * time.Minute
	// startTimeout bounds starting it: mounts and networking, no pull.
	startTimeout = 2 * time.Minute
	// exitAfterKillTimeout bounds the wait for the exit of a build that was
	// sent SIGKILL: the kernel ends it at once; only the report can be late.
	exitAfterKillTimeout = 30 * time.Second
	// exitAfterOutputTimeout bounds the wait for the exit report once the
	// engine has ended the build's output, which it does at the exit.
	exitAfterOutputTimeout = 30 * time.Second
	// outputDrainTimeout bounds passing on the output that is left once the
	// exit is reported: what the build wrote last, in the engine's buffers.
	outputDrainTimeout = 30 * time.Second
)

// closedWithin reports whether done is closed within limit.
func closedWithin(done <-chan struct{}, limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// receiveWithin receives from c, waiting at most limit; ok is false when
// the limit was hit.
func receiveWithin[T any](c <-chan T, limit time.Duration) (v T, ok bool) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case v = <-c:
		return v, true
	case <-timer.C:
		return v, false
	}
}

// callWithin runs call and waits at most limit for it, for engine calls that
// a context cannot end (an attach's upgrade reads its answer without one).
// When the limit is hit the call is left running; the run is ending anyway.
func callWithin[T any](limit time.Duration, call func() (T, error)) (v T, err error, ok bool) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	r, ok := receiveWithin(done, limit)
	return r.v, r.err, ok
}

// engineSilent is the failure of a run whose engine did not answer in time.
func engineSilent(api Engine, what string, limit time.Duration) error {
	return toolFailure("the Docker engine at %s did not %s within %s; it may be overloaded or stuck, and the sibling may be left on it: run sibling-run reap once the engine answers", api.DaemonHost(), what, limit)
}
