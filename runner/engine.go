package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// engineTimeout bounds the first contact with the engine, so that an
// unreachable DOCKER_HOST is reported within seconds instead of hanging.
// A variable only so that the unit tests can shorten it, like the bounds in
// bounded.go.
var engineTimeout = 5 * time.Second

// Connect returns a client for the engine at host, or at DOCKER_HOST when
// host is "", with TLS for a tcp:// engine as the docker CLI sets it up (see
// engineTLS). It checks the certificate files before connecting, pings the
// engine once and settles on the API version both sides speak, so an old
// engine on a build host works and an absent one, or a certificate problem,
// is a one-line error.
func Connect(ctx context.Context, host string) (*client.Client, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = client.DefaultDockerHost
	}
	settings := readEngineTLS(os.Environ())
	var opts []client.Opt
	if settings.On && strings.HasPrefix(host, "tcp://") {
		tlsConfig, err := settings.clientConfig(host, time.Now())
		if err != nil {
			return nil, toolFailure("%w", err)
		}
		// Before WithHost, which sets this transport's dialer for the host.
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: client.CheckRedirect,
		}))
	}
	opts = append(opts, client.WithHost(host), client.WithVersionFromEnv(), client.WithAPIVersionNegotiation())
	// Last, once the host has set the transport's dialer (see enginewatch.go).
	conns := &engineConns{}
	opts = append(opts, trackConnections(conns))
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, toolFailure("configuring the Docker client: %w; check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", err)
	}
	connsByClient.Store(api, conns)
	if scheme, _, _ := strings.Cut(api.DaemonHost(), "://"); scheme != "unix" && scheme != "tcp" {
		api.Close()
		return nil, toolFailure("the Docker engine at %s: sibling-run speaks to an engine over unix:// or tcp:// only; for a remote engine over ssh, forward its socket (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock", api.DaemonHost())
	}
	pingCtx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	ping, err := api.Ping(pingCtx)
	if err != nil {
		api.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // stopped (a signal) while connecting
		}
		if line := settings.explainTLSFailure(api.DaemonHost(), err); line != "" {
			return nil, toolFailure("%s", line)
		}
		reason := err.Error()
		switch {
		case pingCtx.Err() != nil && ctx.Err() == nil:
			reason = fmt.Sprintf("no answer within %s", engineTimeout)
		case errors.Is(err, syscall.EACCES):
			return nil, toolFailure("%s", socketPermission(api.DaemonHost()))
		case client.IsErrConnectionFailed(err):
			reason = "nothing answers there"
		}
		return nil, toolFailure("cannot reach the Docker engine at %s: %s; start the engine, or point DOCKER_HOST (or --host) at one", api.DaemonHost(), reason)
	}
	api.NegotiateAPIVersionPing(ping)
	return api, nil
}

// socketPermission explains a socket this process may not use: the cause is
// nearly always a user outside the socket's group, so it names the group.
func socketPermission(host string) string {
	path := strings.TrimPrefix(host, "unix://")
	msg := fmt.Sprintf("permission denied on the Docker engine's socket %s for uid %d", path, os.Getuid())
	info, err := os.Stat(path)
	if err != nil {
		return msg + "; give this user access to the socket"
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return msg + "; give this user access to the socket"
	}
	group := strconv.FormatUint(uint64(st.Gid), 10)
	if g, err := user.LookupGroupId(group); err == nil {
		group += " (" + g.Name + ")"
	}
	return fmt.Sprintf("%s: the socket belongs to group %s; add the user to that group (usermod -aG, or docker run --group-add %d for an agent container)", msg, group, st.Gid)
}

// lostEngine reports that the engine went away while the run was doing
// something after the sibling was created: the sibling may be left on it.
func lostEngine(api Engine, doing string, err error) error {
	var request *url.Error
	if errors.As(err, &request) {
		err = request.Err // its URL repeats the engine's address, escaped
	}
	return toolFailure("lost the Docker engine at %s while %s (%w); the sibling may be left on it: once the engine is back, run sibling-run reap", api.DaemonHost(), doing, err)
}

// isPodman reports whether the engine is Podman's Docker-compatible service,
// which names itself in /version's components ("Podman Engine").
func isPodman(ctx context.Context, api Engine) bool {
	v, err := api.ServerVersion(ctx)
	if err != nil {
		return false
	}
	for _, c := range v.Components {
		if strings.Contains(c.Name, "Podman") {
			return true
		}
	}
	return strings.Contains(v.Platform.Name, "Podman")
}

// initOnPodman asks Podman to prepare the created container id (its
// libpod API's init: the OCI runtime's create, without starting the
// command) and returns the engine's reason when that fails; nil when it
// succeeded or the engine has no such call (Docker answers 404).
func initOnPodman(ctx context.Context, api Engine, id string) error {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	endpoint := libpodURL(api, "/v4.0.0/libpod/containers/"+url.PathEscape(id)+"/init")
	httpClient := api.HTTPClient()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var answer struct{ Message string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer); err != nil || answer.Message == "" {
		return fmt.Errorf("the engine could not prepare the container (%s)", resp.Status)
	}
	return errors.New(answer.Message)
}
