package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
)

// engineWatchInterval is how often a run pings its engine while it works with
// it. A frozen engine (a deadlocked dockerd behaves like one stopped with
// SIGSTOP) accepts connections but answers nothing, so no call on it ever
// fails: the ping is what notices. Config.EngineWatchInterval overrides it
// (the tests' freeze runs use a fraction of a second).
const engineWatchInterval = 10 * time.Second

// engineSilentAfter is how many intervals the engine may go without
// answering a ping before the run gives it up: 30 s by default, as long as
// engineCallTimeout, which no healthy engine's ping comes near.
const engineSilentAfter = 3

// EngineSilentError is the cause a run ends with when its engine stopped
// answering: every connection to it is closed, so every call in flight fails
// with it, and no new one starts.
type EngineSilentError struct {
	Host  string
	After time.Duration
}

func (e *EngineSilentError) Error() string {
	return fmt.Sprintf("the Docker engine at %s answered no ping for %s: it is frozen or overloaded, and the sibling (with its services and network) may be left on it: run sibling-run reap once it answers", e.Host, e.After)
}

// ExitCode returns 125.
func (e *EngineSilentError) ExitCode() int { return ExitToolFailure }

// engineConns tracks the connections a client opened to the engine, so that
// an engine found silent can be cut off at once: a read that waits on a
// frozen engine only ends when its connection is closed.
type engineConns struct {
	mu    sync.Mutex
	open  map[*trackedConn]struct{}
	cause error // set by cutOff; then every read, write and dial fails with it
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// connsByClient holds the engineConns of each client Connect made; a run
// finds its client's there. Keyed by the client, whatever interface wraps it.
var connsByClient sync.Map

// trackConnections is a client option, applied last in Connect, that routes
// the client's dials (HTTP requests and attach streams both) through conns.
func trackConnections(conns *engineConns) client.Opt {
	return func(c *client.Client) error {
		// HTTPClient copies the http.Client but shares its transport, which
		// is still the plain one while options are applied.
		t, ok := c.HTTPClient().Transport.(*http.Transport)
		if !ok || t.DialContext == nil {
			return nil // nothing to wrap: the engine watch only pings
		}
		t.DialContext = conns.wrap(t.DialContext)
		return nil
	}
}

func (c *engineConns) wrap(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := c.cutOffCause(); err != nil {
			return nil, err
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, conns: c}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cause != nil {
			conn.Close()
			return nil, c.cause
		}
		if c.open == nil {
			c.open = map[*trackedConn]struct{}{}
		}
		c.open[tc] = struct{}{}
		return tc, nil
	}
}

// cutOff closes every connection and fails every later dial with cause.
func (c *engineConns) cutOff(cause error) {
	c.mu.Lock()
	c.cause = cause
	open := c.open
	c.open = nil
	c.mu.Unlock()
	for tc := range open {
		tc.Conn.Close()
	}
}

func (c *engineConns) cutOffCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// trackedConn is a connection to the engine whose failures after a cut-off
// say why, rather than "use of closed network connection".
type trackedConn struct {
	net.Conn
	conns *engineConns
}

func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if err != nil {
		if cause := t.conns.cutOffCause(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (t *trackedConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if err != nil {
		if cause := t.conns.cutOffCause(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (t *trackedConn) Close() error {
	t.conns.mu.Lock()
	delete(t.conns.open, t)
	t.conns.mu.Unlock()
	return t.Conn.Close()
}

// CloseWrite half-closes the connection, which ends an attached build's
// stdin; the client looks for it on the connection it dialled.
func (t *trackedConn) CloseWrite() error {
	if cw, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return t.Conn.Close()
}

// pinger is what the engine watch needs of the engine.
type pinger interface {
	Ping(ctx context.Context) (types.Ping, error)
	DaemonHost() string
}

// engineWatch pings the engine while a run works with it.
type engineWatch struct {
	silent chan struct{} // closed when the engine is given up
	err    *EngineSilentError
	stop   context.CancelFunc
	done   chan struct{}
}

// watchEngine starts pinging api every interval (engineWatchInterval when 0)
// until stop is called. When no ping has been answered for engineSilentAfter
// intervals, it logs nothing itself, closes silent and cuts off every
// connection of api that Connect tracks, so that whatever the run waits on
// ends with an *EngineSilentError.
func watchEngine(api pinger, interval time.Duration, log zerolog.Logger) *engineWatch {
	if interval <= 0 {
		interval = engineWatchInterval
	}
	limit := engineSilentAfter * interval
	ctx, stop := context.WithCancel(context.Background())
	w := &engineWatch{silent: make(chan struct{}), stop: stop, done: make(chan struct{}),
		err: &EngineSilentError{Host: api.DaemonHost(), After: limit}}
	var conns *engineConns
	if c, ok := connsByClient.Load(api); ok {
		conns = c.(*engineConns)
	}
	go func() {
		defer close(w.done)
		lastAnswer := time.Now()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			// One ping may take the whole limit: the engine is given up only
			// when nothing came back for that long.
			pingCtx, cancel := context.WithDeadline(ctx, lastAnswer.Add(limit))
			_, err := api.Ping(pingCtx)
			cancel()
			switch {
			case err == nil:
				lastAnswer = time.Now()
			case ctx.Err() != nil:
				return
			case time.Since(lastAnswer) >= limit:
				log.Debug().Err(err).Msg("the engine answers no ping")
				close(w.silent)
				if conns != nil {
					conns.cutOff(w.err)
				}
				return
			}
		}
	}()
	return w
}

// end stops the pings and returns the engine's silence as the run's error
// when the engine was given up, else err.
func (w *engineWatch) end(err error) error {
	w.stop()
	<-w.done
	select {
	case <-w.silent:
		return w.err
	default:
		return err
	}
}

// isEngineSilent reports whether err comes from an engine found silent.
func isEngineSilent(err error) bool {
	var silent *EngineSilentError
	return errors.As(err, &silent)
}
