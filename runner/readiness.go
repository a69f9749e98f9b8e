package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// healthPoll is how often a service's health is inspected while waiting.
const healthPoll = 250 * time.Millisecond

// waiterPath is where the TCP readiness check's binary is copied to in the
// waiter container.
const waiterPath = "/.sibling-run-wait-tcp"

// errServiceExited says the service's container exited while it was waited for.
var errServiceExited = errors.New("service exited")

// unhealthyError says the service's HEALTHCHECK reported it unhealthy.
type unhealthyError struct{ lastOutput string }

func (e *unhealthyError) Error() string { return "unhealthy" }

// waitReady waits until rs is ready, by the first of these that applies:
//
//   - the image has a HEALTHCHECK: until the engine reports it healthy; it
//     fails at once when the engine reports it unhealthy;
//   - the image exposes a TCP port: until a TCP connection to its lowest one,
//     by alias, succeeds from the build's network (see waitTCP);
//   - neither: ready once it runs.
//
// A service that exits first fails. Every failure of the service itself
// shows its last lines of output. ctx bounds the wait: at its deadline
// (cause errServicesTimedOut) the service fails as not ready in time; any
// other end of ctx (a signal, another service's failure) is returned as
// context.Cause(ctx).
func (s *serviceSet) waitReady(ctx context.Context, rs *runningService, timeout time.Duration) error {
	info, err := s.api.ContainerInspect(ctx, rs.id)
	if err != nil {
		if ctx.Err() != nil {
			return s.notReady(ctx, rs, timeout, "starting")
		}
		return toolFailure("inspecting service %s: %w", rs.Alias, err)
	}
	var how string
	switch port := lowestTCPPort(info.Config.ExposedPorts); {
	case hasHealthcheck(info.Config):
		how = "waiting for its HEALTHCHECK to report healthy"
		err = s.waitHealthy(ctx, rs)
	case port != 0:
		how = fmt.Sprintf("waiting for a TCP connection to %s", net.JoinHostPort(rs.Alias, strconv.Itoa(port)))
		err = s.waitTCP(ctx, rs, port)
	default:
		how = "waiting for it to run"
		if info.State == nil || !info.State.Running {
			err = errServiceExited
		}
	}
	var unhealthy *unhealthyError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errServiceExited):
		<-rs.exit.done
		return s.failed(rs, "exited with code %d before it was ready (%s)", rs.exit.status.StatusCode, how)
	case errors.As(err, &unhealthy):
		return s.failed(rs, "is unhealthy by its HEALTHCHECK: %s", unhealthy.lastOutput)
	case ctx.Err() != nil:
		return s.notReady(ctx, rs, timeout, how)
	}
	return err
}

// notReady turns the end of ctx into the error to return: a timeout fails
// the service, anything else is passed on. A service that exited while the
// check was under way (on a loaded engine the check can take longer than the
// timeout) failed for that reason, not for being slow, and is named so.
func (s *serviceSet) notReady(ctx context.Context, rs *runningService, timeout time.Duration, how string) error {
	if cause := context.Cause(ctx); !errors.Is(cause, errServicesTimedOut) {
		return cause
	}
	if code, exited := s.exitedMeanwhile(ctx, rs); exited {
		return s.failed(rs, "exited with code %d before it was ready (%s)", code, how)
	}
	return s.failed(rs, "was not ready within %s (%s); raise --service-timeout if it needs longer", timeout, how)
}

// exitedMeanwhile reports whether the service has exited, and its code: from
// its exit watch if the engine has told it already, else from one inspect.
func (s *serviceSet) exitedMeanwhile(ctx context.Context, rs *runningService) (int, bool) {
	select {
	case <-rs.exit.done:
		return int(rs.exit.status.StatusCode), rs.exit.err == nil
	default:
	}
	inspectCtx, cancel := detached(ctx, engineTimeout)
	defer cancel()
	info, err := s.api.ContainerInspect(inspectCtx, rs.id)
	if err != nil || info.State == nil || info.State.Running || info.State.Status != "exited" {
		return 0, false
	}
	return info.State.ExitCode, true
}

// hasHealthcheck reports whether a container runs a HEALTHCHECK, its image's
// or its own.
func hasHealthcheck(config *container.Config) bool {
	hc := config.Healthcheck
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// lowestTCPPort returns the lowest TCP port that ports exposes, or 0.
func lowestTCPPort(ports nat.PortSet) int {
	lowest := 0
	for p := range ports {
		if p.Proto() != "tcp" {
			continue
		}
		if n := p.Int(); n > 0 && (lowest == 0 || n < lowest) {
			lowest = n
		}
	}
	return lowest
}

// waitHealthy polls the engine until the service's health is settled.
func (s *serviceSet) waitHealthy(ctx context.Context, rs *runningService) error {
	ticker := time.NewTicker(healthPoll)
	defer ticker.Stop()
	for {
		info, err := s.api.ContainerInspect(ctx, rs.id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return toolFailure("inspecting service %s: %w", rs.Alias, err)
		}
		if info.State != nil && info.State.Health != nil {
			switch info.State.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				last := "no output"
				if n := len(info.State.Health.Log); n > 0 {
					last = strings.TrimSpace(info.State.Health.Log[n-1].Output)
				}
				return &unhealthyError{lastOutput: last}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rs.exit.done:
			return errServiceExited
		case <-ticker.C:
		}
	}
}

// waitTCP waits until a TCP connection to the service's alias and port
// succeeds from the build's network.
//
// sibling-run cannot dial that itself: inside an agent container it is on
// another network, and the engine isolates bridge networks from each other
// (and a remote engine's networks are out of reach from anywhere). So the
// check runs inside the engine, where the build will run: a short-lived
// waiter container on the build's network, made from the service's own image
// (already on the engine, so no other image is needed), whose entrypoint is
// this very binary, copied in before it starts, running the hidden command
// `wait-tcp ALIAS:PORT TIMEOUT`. Joining the service's network namespace
// (NetworkMode container:ID) instead would need the same binary and would
// test 127.0.0.1, which a service that listens on its own address does not
// answer; dialling the alias tests what the build will do, DNS included.
// The binary must be built for the engine's platform (a static Linux build,
// as the README's install line makes).
func (s *serviceSet) waitTCP(ctx context.Context, rs *runningService, port int) error {
	self, err := os.Executable()
	if err != nil {
		return toolFailure("finding sibling-run's own binary for service %s's readiness check: %w", rs.Alias, err)
	}
	binary, err := os.ReadFile(self)
	if err != nil {
		return toolFailure("reading sibling-run's own binary for service %s's readiness check: %w", rs.Alias, err)
	}
	limit := time.Minute
	if deadline, ok := ctx.Deadline(); ok {
		limit = time.Until(deadline)
	}
	target := net.JoinHostPort(rs.Alias, strconv.Itoa(port))

	lifecycle := context.WithoutCancel(ctx)
	createCtx, cancelCreate := boundedCall(ctx, createTimeout)
	created, err := s.api.ContainerCreate(createCtx,
		&container.Config{
			Image:       rs.Image,
			Entrypoint:  []string{waiterPath},
			Cmd:         []string{"wait-tcp", target, limit.Round(time.Millisecond).String()},
			Labels:      withRole(s.labels, "waiter"),
			Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
		},
		&container.HostConfig{NetworkMode: container.NetworkMode(s.name)},
		nil, nil, s.name+"-"+rs.Alias+"-wait")
	cancelCreate()
	if err != nil {
		if createCtx.Err() != nil {
			return orSilent(createCtx, s.api.DaemonHost(), "creating the readiness check of service "+rs.Alias, createTimeout, err)
		}
		return toolFailure("creating the readiness check of service %s: %w", rs.Alias, err)
	}
	id := created.ID
	defer func() {
		rmCtx, cancel := detached(ctx, removeTimeout)
		defer cancel()
		if err := s.api.ContainerRemove(rmCtx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			s.log.Error().Err(err).Str("service", rs.Alias).Msg("removing the readiness check failed; run `sibling-run reap` once the engine answers")
		}
	}()
	copyCtx, cancelCopy := boundedCall(ctx, engineCallTimeout)
	err = s.api.CopyToContainer(copyCtx, id, "/", singleFileTar(waiterPath[1:], binary), container.CopyToContainerOptions{})
	cancelCopy()
	if err != nil {
		if copyCtx.Err() != nil {
			return orSilent(copyCtx, s.api.DaemonHost(), "copying sibling-run into the readiness check of service "+rs.Alias, engineCallTimeout, err)
		}
		return toolFailure("copying sibling-run into the readiness check of service %s: %w", rs.Alias, err)
	}
	waitC, errC := s.api.ContainerWait(lifecycle, id, container.WaitConditionNextExit)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	startCtx, cancelStart := boundedCall(ctx, startTimeout)
	err = s.api.ContainerStart(startCtx, id, container.StartOptions{})
	cancelStart()
	if err != nil && startCtx.Err() != nil {
		return orSilent(startCtx, s.api.DaemonHost(), "starting the readiness check of service "+rs.Alias, startTimeout, err)
	}
	if err != nil {
		return toolFailure("starting the readiness check of service %s in its image %s (it needs sibling-run built for the engine's platform): %w", rs.Alias, rs.Image, err)
	}
	select {
	case st := <-waitC:
		switch st.StatusCode {
		case 0:
			return nil
		case 1: // it dialled until its time was up
			<-ctx.Done()
			return ctx.Err()
		}
		return toolFailure("the readiness check of service %s could not run in its image %s: exit code %d: %s", rs.Alias, rs.Image, st.StatusCode, containerOutput(lifecycle, s, id))
	case err := <-errC:
		return toolFailure("waiting for the readiness check of service %s: %w", rs.Alias, err)
	case <-rs.exit.done:
		return errServiceExited
	case <-ctx.Done():
		return ctx.Err()
	}
}

// singleFileTar is a tar stream of one executable file, for CopyToContainer.
func singleFileTar(name string, data []byte) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	return &buf
}

// containerOutput returns the last of a finished container's output, for an
// error message.
func containerOutput(ctx context.Context, s *serviceSet, id string) string {
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	logs, err := s.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"})
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer logs.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, io.LimitReader(logs, 64*1024))
	return strings.TrimSpace(out.String())
}
