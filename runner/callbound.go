package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// afterSignalBound bounds how long an engine call that a signal does not
// interrupt (a create, whose result must be known so that it can be
// removed) may still take once the run was cancelled. A healthy engine
// answers long before; one that does not leaves what it made to reap.
const afterSignalBound = 5 * time.Second

// boundedCall returns the context for one engine call made for a run whose
// context is ctx: it ends at limit, and afterSignalBound after ctx ends, so
// that a signal neither cuts a healthy call short nor waits on a stuck one
// for its whole limit.
func boundedCall(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	call, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	stop := context.AfterFunc(ctx, func() {
		timer := time.NewTimer(afterSignalBound)
		defer timer.Stop()
		select {
		case <-call.Done():
		case <-timer.C:
			cancel()
		}
	})
	return call, func() { stop(); cancel() }
}

// orSilent returns err, or for a call that failed because its bounded
// context ended (see boundedCall) an error that names the engine at host,
// what it did not answer and within what bound.
func orSilent(call context.Context, host, doing string, limit time.Duration, err error) error {
	switch {
	case err == nil || isEngineSilent(err):
		return err
	case call.Err() != nil && errors.Is(call.Err(), context.DeadlineExceeded):
		return toolFailure("the Docker engine at %s did not answer %s within %s; it may be overloaded or stuck, and what it made may be left on it: run sibling-run reap once the engine answers", host, doing, limit)
	case call.Err() != nil:
		return toolFailure("the Docker engine at %s had not answered %s %s after the run was stopped; what it made may be left on it: run sibling-run reap once the engine answers", host, doing, afterSignalBound)
	}
	return err
}

// idleBound ends a stream's context when no byte of it arrived for limit:
// an artifact may take minutes to copy, but not a minute of silence.
type idleBound struct {
	limit  time.Duration
	timer  *time.Timer
	fired  atomic.Bool
	cancel context.CancelFunc
}

// newIdleBound returns a context for a streaming call that ends once the
// stream is idle for limit, counted from now until read's first byte.
func newIdleBound(ctx context.Context, limit time.Duration) (context.Context, *idleBound) {
	ctx, cancel := context.WithCancel(ctx)
	b := &idleBound{limit: limit, cancel: cancel}
	b.timer = time.AfterFunc(limit, func() { b.fired.Store(true); cancel() })
	return ctx, b
}

// reader returns r, whose every read that brings bytes restarts the bound.
func (b *idleBound) reader(r io.Reader) io.Reader { return idleReader{r, b} }

// stop ends the bound and the context.
func (b *idleBound) stop() { b.timer.Stop(); b.cancel() }

// explain turns err into one that names the silence, when that caused it.
func (b *idleBound) explain(host, what string, err error) error {
	if err == nil || !b.fired.Load() {
		return err
	}
	return fmt.Errorf("the Docker engine at %s sent nothing of %s for %s", host, what, b.limit)
}

type idleReader struct {
	r io.Reader
	b *idleBound
}

func (i idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.b.timer.Reset(i.b.limit)
	}
	return n, err
}
