package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/fakeengine"
)

// Two runs made the builds' network at once: both settle on the lowest id,
// and the one whose network lost removes it.
func TestBuildsNetworkMadeOnFirstUse(t *testing.T) {
	e := fakeengine.New(t)
	e.Fail("NetworkInspect", cerrdefs.ErrNotFound)
	var mu sync.Mutex
	var listed [][]string
	lists := [][]network.Summary{
		nil,
		{{ID: id64('a'), Name: BuildsNetwork}, {ID: id64('b'), Name: BuildsNetwork}, {ID: id64('c'), Name: BuildsNetwork + "-other"}},
	}
	e.NetworkListFunc = func(context.Context, network.ListOptions) ([]network.Summary, error) {
		mu.Lock()
		defer mu.Unlock()
		l := lists[len(listed)]
		listed = append(listed, nil)
		return l, nil
	}
	e.NetworkCreateFunc = func(_ context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
		if name != BuildsNetwork || o.Options["com.docker.network.bridge.enable_icc"] != "false" {
			t.Errorf("created %s with %v", name, o.Options)
		}
		return network.CreateResponse{ID: id64('b'), Warning: "icc ignored"}, nil
	}
	var removed []string
	e.NetworkRemoveFunc = func(_ context.Context, id string) error {
		removed = append(removed, id)
		return nil
	}
	sp := spec{HostConfig: &container.HostConfig{NetworkMode: BuildsNetwork}}
	var log lockedBuffer
	if err := useBuildsNetwork(context.Background(), e, &sp, zerolog.New(&log)); err != nil {
		t.Fatal(err)
	}
	if string(sp.HostConfig.NetworkMode) != id64('a') || !slices.Equal(removed, []string{id64('b')}) {
		t.Errorf("joins %s, removed %v; want the lowest id, and ours removed", sp.HostConfig.NetworkMode, removed)
	}
	if !strings.Contains(log.String(), "icc ignored") {
		t.Errorf("the engine's warning is not passed on:\n%s", log.String())
	}

	e.Fail("NetworkCreate", errors.New("no more address pools"))
	listed = nil
	lists = [][]network.Summary{nil}
	sp = spec{HostConfig: &container.HostConfig{NetworkMode: BuildsNetwork}}
	if err := useBuildsNetwork(context.Background(), e, &sp, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "no more address pools") {
		t.Errorf("a failed create: %v", err)
	}
}

func TestCheckNetwork(t *testing.T) {
	e := fakeengine.New(t)
	e.NetworkInspectFunc = func(_ context.Context, name string, _ network.InspectOptions) (network.Inspect, error) {
		switch name {
		case "ci":
			return network.Inspect{Name: name}, nil
		case "flaky":
			return network.Inspect{}, errors.New("boom")
		}
		return network.Inspect{}, cerrdefs.ErrNotFound
	}
	e.Fail("ContainerInspect", cerrdefs.ErrNotFound)
	for _, tt := range []struct{ mode, want string }{
		{"bridge", ""},
		{"ci", ""},
		{"cj", "no such network"},
		{"flaky", "inspecting --network flaky: boom"},
		{"container:db", "no such container"},
	} {
		err := checkNetwork(context.Background(), e, tt.mode)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("--network %s: got %v, want %q", tt.mode, err, tt.want)
		}
	}
}

// A working directory two levels below the agent's volume is checked by
// the sibling before the build runs: sibling-run copies itself in as the
// entrypoint; a refusal is the run's result, and no artifact is copied.
func TestRunChecksARacyWorkdir(t *testing.T) {
	volume := t.TempDir()
	workdir := filepath.Join(volume, "PLAN-JOB", "sub")
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := agentEngine(t, filepath.Join(volume, "PLAN-JOB"), &fakeengine.Build{Stdout: WorkdirCheckRefusal + " the directory changed\n", ExitCode: ExitToolFailure})
	e.ImageInspectFunc = func(context.Context, string, ...client.ImageInspectOption) (image.InspectResponse, error) {
		return image.InspectResponse{}, nil // no command of its own: the build names one
	}
	var entrypoint []string
	create := e.ContainerCreateFunc
	e.ContainerCreateFunc = func(ctx context.Context, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
		entrypoint = c.Entrypoint
		return create(ctx, c, h, n, p, name)
	}
	var copied int64
	e.CopyToContainerFunc = func(_ context.Context, _ string, _ string, content io.Reader, _ container.CopyToContainerOptions) error {
		copied, _ = io.Copy(io.Discard, content)
		return nil
	}
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.User = "root"
	cfg.Artifacts = []ArtifactSpec{{Src: "/out/report", Dest: "."}}
	cfg.ArtifactMaxSize = 1 << 20
	res, err := Run(context.Background(), e, cfg)
	if err != nil || res.ExitCode != ExitToolFailure {
		t.Fatalf("got %v, %v; want the check's refusal\nlog:\n%s", res, err, r.log)
	}
	if len(entrypoint) == 0 || entrypoint[0] != workdirCheckPath || copied == 0 {
		t.Errorf("entrypoint %v, %d bytes copied in; want sibling-run itself as the check", entrypoint, copied)
	}
	if slices.Contains(e.Calls(), "CopyFromContainer") {
		t.Errorf("an artifact was copied from a build that never ran: %v", e.Calls())
	}
}
