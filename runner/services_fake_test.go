package runner

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"sibling-run/runner/internal/fakeengine"
)

// serviceEngine runs the build b and, beside it, every service: each
// service runs until it is removed, and its health is health().
func serviceEngine(t *testing.T, workdir string, b *fakeengine.Build, health func() *container.Health) *fakeengine.Engine {
	e := agentEngine(t, workdir, b)
	// The build's own calls, to delegate to.
	build := struct {
		ContainerCreateFunc  func(context.Context, *container.Config, *container.HostConfig, *network.NetworkingConfig, *ocispec.Platform, string) (container.CreateResponse, error)
		ContainerAttachFunc  func(context.Context, string, container.AttachOptions) (types.HijackedResponse, error)
		ContainerWaitFunc    func(context.Context, string, container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
		ContainerStartFunc   func(context.Context, string, container.StartOptions) error
		ContainerInspectFunc func(context.Context, string) (container.InspectResponse, error)
		ContainerRemoveFunc  func(context.Context, string, container.RemoveOptions) error
	}{e.ContainerCreateFunc, e.ContainerAttachFunc, e.ContainerWaitFunc, e.ContainerStartFunc, e.ContainerInspectFunc, e.ContainerRemoveFunc}
	var mu sync.Mutex
	services := map[string]*fakeengine.Attachment{}
	isService := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := services[id]
		return ok
	}
	e.NetworkCreateFunc = func(context.Context, string, network.CreateOptions) (network.CreateResponse, error) {
		return network.CreateResponse{ID: id64('9')}, nil
	}
	e.NetworkRemoveFunc = func(context.Context, string) error { return nil }
	e.ContainerCreateFunc = func(ctx context.Context, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
		if c.Labels[LabelRole] != "service" {
			return build.ContainerCreateFunc(ctx, c, h, n, p, name)
		}
		id := id64(byte('a' + len(services)))
		mu.Lock()
		defer mu.Unlock()
		services[id] = fakeengine.NewAttachment()
		return container.CreateResponse{ID: id}, nil
	}
	e.ContainerAttachFunc = func(ctx context.Context, id string, o container.AttachOptions) (types.HijackedResponse, error) {
		if !isService(id) {
			return build.ContainerAttachFunc(ctx, id, o)
		}
		mu.Lock()
		defer mu.Unlock()
		return services[id].Response(), nil
	}
	e.ContainerWaitFunc = func(ctx context.Context, id string, c container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
		if !isService(id) {
			return build.ContainerWaitFunc(ctx, id, c)
		}
		return nil, nil
	}
	e.ContainerStartFunc = func(ctx context.Context, id string, o container.StartOptions) error {
		if !isService(id) {
			return build.ContainerStartFunc(ctx, id, o)
		}
		mu.Lock()
		att := services[id]
		mu.Unlock()
		go func() { _ = att.Stdout("service ready to serve\n") }()
		return nil
	}
	e.ContainerInspectFunc = func(ctx context.Context, id string) (container.InspectResponse, error) {
		if !isService(id) {
			return build.ContainerInspectFunc(ctx, id)
		}
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Running: true, Health: health()}},
			Config:            &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "check"}}},
		}, nil
	}
	e.ContainerRemoveFunc = func(ctx context.Context, id string, o container.RemoveOptions) error {
		if !isService(id) {
			return build.ContainerRemoveFunc(ctx, id, o)
		}
		mu.Lock()
		defer mu.Unlock()
		return services[id].Close()
	}
	return e
}

func TestRunWithServices(t *testing.T) {
	workdir := t.TempDir()
	var mu sync.Mutex
	status := container.Starting
	e := serviceEngine(t, workdir, &fakeengine.Build{Stdout: "tested against db\n"}, func() *container.Health {
		mu.Lock()
		defer mu.Unlock()
		h := &container.Health{Status: status}
		status = container.Healthy // healthy at the second look
		return h
	})
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.Services = []ServiceSpec{{Image: "postgres:16", Alias: "db"}}
	cfg.ServiceTimeout = 5 * time.Second
	res, err := Run(context.Background(), e, cfg)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("got %v, %v\nlog:\n%s", res, err, r.log)
	}
	calls := strings.Join(withoutOrphanClearing(e.Calls()), " ")
	for _, want := range []string{"NetworkCreate ContainerCreate ContainerAttach ContainerWait ContainerStart ContainerInspect", "ContainerRemove ContainerRemove NetworkRemove"} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls %s\nwant %s in them", calls, want)
		}
	}
}

func TestRunWithAnUnhealthyService(t *testing.T) {
	workdir := t.TempDir()
	e := serviceEngine(t, workdir, &fakeengine.Build{}, func() *container.Health {
		return &container.Health{Status: container.Unhealthy, Log: []*container.HealthcheckResult{{Output: "connection refused\n"}}}
	})
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.Services = []ServiceSpec{{Image: "postgres:16", Alias: "db"}}
	cfg.ServiceTimeout = 5 * time.Second
	_, err := Run(context.Background(), e, cfg)
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "unhealthy by its HEALTHCHECK: connection refused") {
		t.Errorf("got %v", err)
	}
	// This agent's orphans are cleared beside the services, so their list
	// calls may fall anywhere.
	if calls := strings.Join(withoutOrphanClearing(e.Calls()), " "); !strings.Contains(calls, "ContainerRemove NetworkRemove") {
		t.Errorf("the service and then its network were not removed: %v", calls)
	}
}

func TestRunWithAServiceNotReadyInTime(t *testing.T) {
	workdir := t.TempDir()
	e := serviceEngine(t, workdir, &fakeengine.Build{}, func() *container.Health {
		return &container.Health{Status: container.Starting}
	})
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.Services = []ServiceSpec{{Image: "postgres:16", Alias: "db"}}
	cfg.ServiceTimeout = 100 * time.Millisecond
	_, err := Run(context.Background(), e, cfg)
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "was not ready within 100ms") {
		t.Errorf("got %v", err)
	}
}

// withoutOrphanClearing leaves out the calls of the orphan clearing, which
// runs beside the services' start.
func withoutOrphanClearing(calls []string) []string {
	var kept []string
	for _, c := range calls {
		if c != "ContainerList" && c != "NetworkList" && c != "VolumeList" {
			kept = append(kept, c)
		}
	}
	return kept
}
