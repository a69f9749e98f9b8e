package runner

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/docker/docker/client"
)

// engineTimeout bounds the first contact with the engine, so that an
// unreachable DOCKER_HOST is reported within seconds instead of hanging.
const engineTimeout = 5 * time.Second

// Connect returns a client for the engine at host, or at DOCKER_HOST (with
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH) when host is "". It pings the engine
// once and settles on the API version both sides speak, so an old engine on a
// build host works and an absent one is a clear error.
func Connect(ctx context.Context, host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, toolFailure("configuring the Docker client: %w; check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	ping, err := api.Ping(pingCtx)
	if err != nil {
		api.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // stopped (a signal) while connecting
		}
		reason := err.Error()
		switch {
		case pingCtx.Err() != nil && ctx.Err() == nil:
			reason = fmt.Sprintf("no answer within %s", engineTimeout)
		case client.IsErrConnectionFailed(err):
			reason = "nothing answers there"
		}
		return nil, toolFailure("cannot reach the Docker engine at %s: %s; start the engine, or point DOCKER_HOST (or --host) at one", api.DaemonHost(), reason)
	}
	api.NegotiateAPIVersionPing(ping)
	return api, nil
}

// lostEngine reports that the engine went away while the run was doing
// something after the sibling was created: the sibling may be left on it.
func lostEngine(api *client.Client, doing string, err error) error {
	var request *url.Error
	if errors.As(err, &request) {
		err = request.Err // its URL repeats the engine's address, escaped
	}
	return toolFailure("lost the Docker engine at %s while %s (%w); the sibling may be left on it: once the engine is back, run sibling-run reap", api.DaemonHost(), doing, err)
}
