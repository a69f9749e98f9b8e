package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"sibling-run/runner/internal/fakeengine"
)

// remoteVolume is the run volume on a fake remote engine: what the copy in
// wrote, and what the build adds before the copy back.
type remoteVolume struct {
	created, removed []string
	labels           map[string]string
	mount            *mount.Mount
	entries          []*tar.Header
	bodies           map[string][]byte
	copyInPath       string
	copyInUIDGID     bool
}

// remoteEngine is a fake tcp:// engine that runs b in a sibling whose
// working directory comes through the run volume.
func remoteEngine(t *testing.T, workdir string, b *fakeengine.Build) (*fakeengine.Engine, *remoteVolume) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	e := fakeengine.New(t)
	e.Host = "tcp://builder.test:2376"
	e.Runs(b)
	v := &remoteVolume{bodies: map[string][]byte{}}
	quietEngine(e)
	e.VolumeCreateFunc = func(_ context.Context, o volume.CreateOptions) (volume.Volume, error) {
		v.created, v.labels = append(v.created, o.Name), o.Labels
		return volume.Volume{Name: o.Name}, nil
	}
	e.VolumeRemoveFunc = func(_ context.Context, name string, _ bool) error {
		v.removed = append(v.removed, name)
		return nil
	}
	create := e.ContainerCreateFunc
	e.ContainerCreateFunc = func(ctx context.Context, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
		if len(h.Mounts) > 0 {
			v.mount = &h.Mounts[0]
		}
		return create(ctx, c, h, n, p, name)
	}
	e.CopyToContainerFunc = func(_ context.Context, _ string, path string, content io.Reader, o container.CopyToContainerOptions) error {
		v.copyInPath, v.copyInUIDGID = path, o.CopyUIDGID
		tr := tar.NewReader(content)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(tr)
			v.entries = append(v.entries, hdr)
			v.bodies[hdr.Name] = body
		}
	}
	e.CopyFromContainerFunc = func(_ context.Context, _ string, src string) (io.ReadCloser, container.PathStat, error) {
		if src != workdir {
			return nil, container.PathStat{}, errors.New("no such path in the fake: " + src)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, hdr := range v.entries {
			_ = tw.WriteHeader(hdr)
			_, _ = tw.Write(v.bodies[hdr.Name])
		}
		_ = tw.Close()
		return io.NopCloser(&buf), container.PathStat{}, nil
	}
	return e, v
}

// build adds a file to the volume, as the build would write one.
func (v *remoteVolume) build(name, body string) {
	v.entries = append(v.entries, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Now()})
	v.bodies[name] = []byte(body)
}

func remoteConfig(r *fakeRun, workdir string) Config {
	cfg := r.cfg
	cfg.Workdir = workdir
	cfg.User = "1000:1001"
	return cfg
}

// callOrder fails t unless the calls named happen in this order.
func callOrder(t *testing.T, e *fakeengine.Engine, want ...string) {
	t.Helper()
	calls := e.Calls()
	at := 0
	for _, c := range calls {
		if at < len(want) && c == want[at] {
			at++
		}
	}
	if at != len(want) {
		t.Errorf("calls %v\nwant in them, in order: %v", calls, want)
	}
}

// A tcp:// engine gets the working directory through a run volume: made
// before the sibling, mounted at the directory's path, filled before the
// start with the build's owner, copied back after it, removed last.
func TestRemoteRunCopiesInAndBack(t *testing.T) {
	workdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(workdir, "src.txt"), []byte("source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(workdir, "gone.txt"), []byte("deleted by the build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &fakeengine.Build{Stdout: "built\n"}
	e, v := remoteEngine(t, workdir, b)
	top := filepath.Base(workdir)
	e.Before("ContainerWait", func() {
		v.build(top+"/out.txt", "made remotely\n")
		v.entries = slices.DeleteFunc(v.entries, func(h *tar.Header) bool { return h.Name == top+"/gone.txt" })
	})
	r := newFakeRun()
	res, err := Run(context.Background(), e, remoteConfig(r, workdir))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("got %v, %v\nlog:\n%s", res, err, r.log)
	}
	callOrder(t, e, "VolumeCreate", "ContainerCreate", "CopyToContainer", "ContainerStart", "CopyFromContainer", "ContainerRemove", "VolumeRemove")
	if len(v.created) != 1 || !slices.Equal(v.created, v.removed) || !strings.HasSuffix(v.created[0], "-workdir") {
		t.Errorf("volumes created %v, removed %v; want one, removed", v.created, v.removed)
	}
	if v.labels[LabelRole] != roleWorkdir || v.labels[LabelManaged] != "true" || v.labels[LabelOwner] == "" || v.labels[LabelCache] != "" {
		t.Errorf("the volume's labels %v: want the sibling's owner, role workdir, no cache label", v.labels)
	}
	if m := v.mount; m == nil || m.Type != mount.TypeVolume || m.Source != v.created[0] || m.Target != workdir || m.VolumeOptions == nil || !m.VolumeOptions.NoCopy {
		t.Errorf("the sibling's first mount %+v, want the run volume at %s without the image's files", v.mount, workdir)
	}
	if v.copyInPath != filepath.Dir(workdir) || v.copyInUIDGID {
		t.Errorf("copied into %s (CopyUIDGID %v), want %s with the headers' owner", v.copyInPath, v.copyInUIDGID, filepath.Dir(workdir))
	}
	if len(v.entries) == 0 || v.entries[0].Name != top+"/" || v.entries[0].Uid != 1000 || v.entries[0].Gid != 1001 {
		t.Errorf("the first entry %+v, want the directory itself owned by the build's 1000:1001", v.entries[0])
	}
	if got, err := os.ReadFile(filepath.Join(workdir, "out.txt")); err != nil || string(got) != "made remotely\n" {
		t.Errorf("the build's file: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(workdir, "gone.txt")); !os.IsNotExist(err) {
		t.Errorf("the file the build deleted is still there: %v", err)
	}
	if !strings.Contains(r.log.String(), "copied the working directory in: 2 files") || !strings.Contains(r.log.String(), "copied the working directory back:") {
		t.Errorf("no line for each direction:\n%s", r.log)
	}
}

// The volume goes on every way out: a failed build (its code kept), a
// start that fails, a copy in that fails (the build never starts), a
// timeout, a cancel.
func TestRemoteRunRemovesTheVolumeOnEveryPath(t *testing.T) {
	shortBounds(t)
	for _, tc := range []struct {
		name  string
		build func() *fakeengine.Build
		setUp func(e *fakeengine.Engine, cfg *Config) context.Context
		check func(t *testing.T, res Result, err error, e *fakeengine.Engine)
	}{
		{"failed build", func() *fakeengine.Build { return &fakeengine.Build{ExitCode: 3} }, nil, func(t *testing.T, res Result, err error, e *fakeengine.Engine) {
			if err != nil || res.ExitCode != 3 {
				t.Errorf("got %v, %v; want exit 3", res, err)
			}
			callOrder(t, e, "ContainerStart", "CopyFromContainer", "ContainerRemove", "VolumeRemove")
		}},
		{"start fails", func() *fakeengine.Build { return &fakeengine.Build{} }, func(e *fakeengine.Engine, _ *Config) context.Context {
			e.Fail("ContainerStart", errors.New("OCI runtime create failed: exec: \"make\": executable file not found in $PATH"))
			return context.Background()
		}, func(t *testing.T, _ Result, err error, e *fakeengine.Engine) {
			if exitCodeOf(err) != 127 {
				t.Errorf("got %v, want 127", err)
			}
		}},
		{"copy in fails", func() *fakeengine.Build { return &fakeengine.Build{} }, func(e *fakeengine.Engine, _ *Config) context.Context {
			e.Fail("CopyToContainer", errors.New("no space left on device"))
			return context.Background()
		}, func(t *testing.T, _ Result, err error, e *fakeengine.Engine) {
			if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "no space left on device") || slices.Contains(e.Calls(), "ContainerStart") {
				t.Errorf("got %v, calls %v; want 125 and no start", err, e.Calls())
			}
		}},
		{"timeout", func() *fakeengine.Build { return &fakeengine.Build{UntilSignalled: true} }, func(_ *fakeengine.Engine, cfg *Config) context.Context {
			cfg.Timeout = 50 * time.Millisecond
			return context.Background()
		}, func(t *testing.T, _ Result, err error, e *fakeengine.Engine) {
			var timeout *TimeoutError
			if !errors.As(err, &timeout) {
				t.Errorf("got %v, want a timeout", err)
			}
			callOrder(t, e, "ContainerKill", "CopyFromContainer", "ContainerRemove", "VolumeRemove")
		}},
		{"cancel", func() *fakeengine.Build { return &fakeengine.Build{UntilSignalled: true} }, func(e *fakeengine.Engine, _ *Config) context.Context {
			ctx, cancel := context.WithCancelCause(context.Background())
			e.Before("ContainerStart", func() { time.AfterFunc(20*time.Millisecond, func() { cancel(errors.New("cancelled by the test")) }) })
			return ctx
		}, func(t *testing.T, _ Result, err error, e *fakeengine.Engine) {
			if err == nil || !strings.Contains(err.Error(), "cancelled by the test") {
				t.Errorf("got %v, want the cancel's cause", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			workdir := t.TempDir()
			e, v := remoteEngine(t, workdir, tc.build())
			r := newFakeRun()
			cfg := remoteConfig(r, workdir)
			ctx := context.Background()
			if tc.setUp != nil {
				ctx = tc.setUp(e, &cfg)
			}
			res, err := Run(ctx, e, cfg)
			tc.check(t, res, err, e)
			if len(v.created) != 1 || !slices.Equal(v.created, v.removed) {
				t.Errorf("volumes created %v, removed %v\nlog:\n%s", v.created, v.removed, r.log)
			}
		})
	}
}

// A copy back that fails fails a passed build with 125, and leaves a
// failed build its own code; the deletions are not applied.
func TestRemoteCopyBackFailure(t *testing.T) {
	for _, code := range []int64{0, 3} {
		workdir := t.TempDir()
		e, v := remoteEngine(t, workdir, &fakeengine.Build{ExitCode: code})
		e.Fail("CopyFromContainer", fakeengine.ConnectionFailed("tcp://builder.test:2376"))
		r := newFakeRun()
		res, err := Run(context.Background(), e, remoteConfig(r, workdir))
		switch {
		case code == 0 && exitCodeOf(err) != ExitToolFailure:
			t.Errorf("a passed build: got %v, %v; want 125", res, err)
		case code == 3 && (err != nil || res.ExitCode != 3 || !strings.Contains(r.log.String(), "copying the working directory back")):
			t.Errorf("a failed build: got %v, %v; want its 3 and the failure logged:\n%s", res, err, r.log)
		}
		if len(v.removed) != 1 {
			t.Errorf("exit %d: volume removed %v", code, v.removed)
		}
	}
}

// In remote mode, -v binds of host paths and --volumes-from are refused
// before anything is created; --remote=false keeps the mount.
func TestRemotePlanRefusals(t *testing.T) {
	workdir := t.TempDir()
	for _, tc := range []struct {
		change func(*Config)
		says   string
	}{
		{func(c *Config) { c.Volumes = []VolumeSpec{{Source: "/srv", Bind: true, Target: "/srv"}} }, "a bind of a host path"},
		{func(c *Config) { c.VolumesFrom = []string{"agent"} }, "--volumes-from agent"},
	} {
		e, v := remoteEngine(t, workdir, &fakeengine.Build{})
		r := newFakeRun()
		cfg := remoteConfig(r, workdir)
		tc.change(&cfg)
		_, err := Run(context.Background(), e, cfg)
		if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), tc.says) || len(v.created) > 0 {
			t.Errorf("got %v, volumes %v; want 125 saying %q, nothing created", err, v.created, tc.says)
		}
	}
	if isRemote(RemoteOff, "tcp://builder:2376") || !isRemote(RemoteAuto, "tcp://builder:2376") || isRemote(RemoteAuto, "unix:///var/run/docker.sock") || !isRemote(RemoteOn, "unix:///var/run/docker.sock") {
		t.Error("isRemote decides wrongly")
	}
}
