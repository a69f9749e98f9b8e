package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"sibling-run/runner/internal/fakeengine"
)

// tarOf is a tar stream of one file.
func tarOf(t *testing.T, name string, body string, mode int64) io.ReadCloser {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(tw, body)
	_ = tw.Close()
	return io.NopCloser(&buf)
}

// agentEngine is a fake engine on which the working directory is on the
// volume of a data container, "agent-data", as with --volumes-from in an
// agent container, and which runs b.
func agentEngine(t *testing.T, workdir string, b *fakeengine.Build) *fakeengine.Engine {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	e := fakeengine.New(t)
	e.APIVersion = "1.45"
	e.Runs(b)
	inspectSibling := e.ContainerInspectFunc
	e.ContainerInspectFunc = func(ctx context.Context, id string) (container.InspectResponse, error) {
		if id == "agent-data" {
			return container.InspectResponse{Mounts: []container.MountPoint{{Type: mount.TypeVolume, Name: "agent-data", Destination: filepath.Dir(workdir), RW: true}}}, nil
		}
		return inspectSibling(ctx, id)
	}
	e.ContainerListFunc = func(context.Context, container.ListOptions) ([]container.Summary, error) { return nil, nil }
	e.NetworkListFunc = func(context.Context, network.ListOptions) ([]network.Summary, error) { return nil, nil }
	e.VolumeListFunc = func(context.Context, volume.ListOptions) (volume.ListResponse, error) {
		return volume.ListResponse{}, nil
	}
	// The network that builds share is there already.
	e.NetworkInspectFunc = func(context.Context, string, network.InspectOptions) (network.Inspect, error) {
		return network.Inspect{Name: BuildsNetwork}, nil
	}
	return e
}

func agentConfig(r *fakeRun, workdir string) Config {
	cfg := r.cfg
	cfg.Workdir = workdir
	cfg.VolumesFrom = []string{"agent-data"}
	cfg.Environ = []string{"PATH=/usr/bin", "API_TOKEN=s3cr3t-value"}
	cfg.PassEnv = []string{"API_"}
	return cfg
}

// TestRunOnTheFakeEngine runs the whole of Run: plan, orphans, the
// lifecycle, the passwd entry of a non-root build, and an artifact.
func TestRunOnTheFakeEngine(t *testing.T) {
	workdir := t.TempDir()
	e := agentEngine(t, workdir, &fakeengine.Build{Stdout: "built\n", ExitCode: 0})
	var created *container.Config
	var hostConfig *container.HostConfig
	create := e.ContainerCreateFunc
	e.ContainerCreateFunc = func(ctx context.Context, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
		created, hostConfig = c, h
		return create(ctx, c, h, n, p, name)
	}
	var copiedTo []string
	e.CopyFromContainerFunc = func(_ context.Context, _ string, src string) (io.ReadCloser, container.PathStat, error) {
		switch src {
		case "/etc/passwd":
			return tarOf(t, "passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644), container.PathStat{}, nil
		case "/out/report.txt":
			return tarOf(t, "report.txt", "all good\n", 0o644), container.PathStat{}, nil
		}
		return nil, container.PathStat{}, cerrdefs.ErrNotFound
	}
	e.CopyToContainerFunc = func(_ context.Context, _ string, path string, content io.Reader, _ container.CopyToContainerOptions) error {
		tr := tar.NewReader(content)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			copiedTo = append(copiedTo, hdr.Name)
		}
		return nil
	}
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.User = "1000:1000"
	cfg.Artifacts = []ArtifactSpec{{Src: "/out/report.txt", Dest: "."}}
	cfg.ArtifactMaxSize = 1 << 20
	res, err := Run(context.Background(), e, cfg)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("got %v, %v\nlog:\n%s", res, err, r.log)
	}
	if r.stdout.String() != "built\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if created == nil || created.User != "1000:1000" || created.WorkingDir != workdir || !strings.Contains(strings.Join(created.Env, " "), "API_TOKEN=s3cr3t-value") {
		t.Errorf("created %+v", created)
	}
	if m := hostConfig.Mounts; len(m) == 0 || m[0].Source != "agent-data" || m[0].VolumeOptions == nil || m[0].VolumeOptions.Subpath != filepath.Base(workdir) {
		t.Errorf("mounts %+v, want the working directory as a subpath of agent-data", hostConfig.Mounts)
	}
	if len(copiedTo) != 2 || copiedTo[0] != "etc/passwd" {
		t.Errorf("copied into the sibling %v, want the passwd entry and a home", copiedTo)
	}
	if data, err := os.ReadFile(filepath.Join(workdir, "report.txt")); err != nil || string(data) != "all good\n" {
		t.Errorf("artifact: %q, %v", data, err)
	}
	if strings.Contains(r.log.String(), "s3cr3t-value") {
		t.Errorf("the log shows a secret:\n%s", r.log)
	}
}

func TestRunMissingArtifactFailsAPassedBuild(t *testing.T) {
	workdir := t.TempDir()
	e := agentEngine(t, workdir, &fakeengine.Build{})
	e.CopyFromContainerFunc = func(context.Context, string, string) (io.ReadCloser, container.PathStat, error) {
		return nil, container.PathStat{}, cerrdefs.ErrNotFound
	}
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.Artifacts = []ArtifactSpec{{Src: "/out/missing", Dest: "."}}
	cfg.ArtifactMaxSize = 1 << 20
	_, err := Run(context.Background(), e, cfg)
	if exitCodeOf(err) != ExitArtifactsIncomplete || !strings.Contains(r.log.String(), "does not exist in the sibling") {
		t.Errorf("got %v\nlog:\n%s", err, r.log)
	}
}

func TestRunDryRunCreatesNothing(t *testing.T) {
	workdir := t.TempDir()
	e := agentEngine(t, workdir, &fakeengine.Build{})
	r := newFakeRun()
	cfg := agentConfig(r, workdir)
	cfg.DryRun = true
	if _, err := Run(context.Background(), e, cfg); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Config struct{ Env []string } `json:"config"`
	}
	if err := json.Unmarshal([]byte(r.stdout.String()), &shown); err != nil {
		t.Fatalf("the dry run printed %q: %v", r.stdout, err)
	}
	if got := strings.Join(shown.Config.Env, " "); !strings.Contains(got, "API_TOKEN="+secretMask) {
		t.Errorf("the dry run shows the environment %q, want the token masked", got)
	}
	for _, c := range e.Calls() {
		if c == "ContainerCreate" {
			t.Errorf("a dry run created a container: %v", e.Calls())
		}
	}
}

func TestRunPlanRefusesBeforeCreating(t *testing.T) {
	workdir := t.TempDir()
	e := agentEngine(t, workdir, &fakeengine.Build{})
	e.Fail("ContainerInspect", cerrdefs.ErrNotFound)
	r := newFakeRun()
	_, err := Run(context.Background(), e, agentConfig(r, workdir))
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "--volumes-from agent-data: no such container") {
		t.Errorf("got %v", err)
	}
	checkCalls(t, e, "ContainerInspect")

	cfg := agentConfig(r, workdir)
	cfg.Image = " "
	if _, err := Run(context.Background(), e, cfg); err == nil || !strings.Contains(err.Error(), "--image is empty") {
		t.Errorf("an empty image: %v", err)
	}
}
