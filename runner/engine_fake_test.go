package runner

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"sibling-run/runner/internal/fakeengine"
)

// engineOnSocket serves handler on a unix socket of its own and returns
// its DOCKER_HOST: the Docker client's own transport, without an engine.
func engineOnSocket(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "e.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

func TestConnect(t *testing.T) {
	host := engineOnSocket(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Header().Set("Api-Version", "1.41")
			fmt.Fprint(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/libpod/containers/refused/init"):
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"crun: executable file not found in $PATH"}`)
		default:
			http.NotFound(w, r)
		}
	})
	api, err := Connect(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if api.ClientVersion() != "1.41" {
		t.Errorf("API version %s, want the engine's 1.41", api.ClientVersion())
	}
	if err := initOnPodman(context.Background(), api, "refused"); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("Podman's init: got %v, want its reason", err)
	}
	if err := initOnPodman(context.Background(), api, "docker"); err != nil {
		t.Errorf("no init call (Docker's 404): got %v", err)
	}
}

func TestConnectFailures(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"unix:///nonexistent/docker.sock", "nothing answers there"},
		{"ssh://build@host", "over unix:// or tcp:// only"},
		{"tcp://[::1", "configuring the Docker client"},
	} {
		_, err := Connect(context.Background(), tt.host)
		if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.host, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(Interrupted(os.Interrupt))
	var interrupt *InterruptError
	if _, err := Connect(ctx, "unix:///nonexistent/docker.sock"); !errors.As(err, &interrupt) {
		t.Errorf("a signal while connecting: got %v", err)
	}
}

func TestSocketPermission(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := socketPermission("unix://" + sock); !strings.Contains(msg, "belongs to group") {
		t.Errorf("got %q", msg)
	}
	if msg := socketPermission("unix:///nonexistent"); !strings.Contains(msg, "give this user access") {
		t.Errorf("got %q", msg)
	}
}

func TestIsPodman(t *testing.T) {
	e := fakeengine.New(t)
	for _, tt := range []struct {
		v    types.Version
		want bool
	}{
		{types.Version{Components: []types.ComponentVersion{{Name: "Podman Engine"}}}, true},
		{types.Version{Platform: struct{ Name string }{"Podman Engine"}}, true},
		{types.Version{Components: []types.ComponentVersion{{Name: "Engine"}}}, false},
	} {
		e.ServerVersionFunc = func(context.Context) (types.Version, error) { return tt.v, nil }
		if got := isPodman(context.Background(), e); got != tt.want {
			t.Errorf("%+v: got %v", tt.v, got)
		}
	}
	e.Fail("ServerVersion", errors.New("boom"))
	if isPodman(context.Background(), e) {
		t.Error("an engine that does not answer is Podman")
	}
}

// TestCreatePulls pulls a missing image, with the credentials of the
// docker config, retrying a transient failure.
func TestCreatePulls(t *testing.T) {
	saved := pullBackoff
	pullBackoff = time.Millisecond
	t.Cleanup(func() { pullBackoff = saved })
	config := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("builder:pw"))
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(`{"auths":{"localhost:5000":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	progress, err := os.ReadFile(filepath.Join("testdata", "pull-new-layer.jsonl"))
	if err != nil {
		t.Fatal(err)
	}

	e := fakeengine.New(t)
	b := e.Runs(&fakeengine.Build{})
	var mu sync.Mutex
	pulled := false
	pulls := 0
	e.ContainerCreateFunc = func(context.Context, *container.Config, *container.HostConfig, *network.NetworkingConfig, *ocispec.Platform, string) (container.CreateResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		if !pulled {
			return container.CreateResponse{}, cerrdefs.ErrNotFound
		}
		return container.CreateResponse{ID: b.ID}, nil
	}
	e.ImageInspectFunc = func(context.Context, string, ...client.ImageInspectOption) (image.InspectResponse, error) {
		return image.InspectResponse{}, cerrdefs.ErrNotFound
	}
	e.ImagePullFunc = func(_ context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		pulls++
		if opts.RegistryAuth == "" {
			t.Error("pulled without the config's credentials")
		}
		if pulls == 1 {
			return nil, errors.New("connection reset by peer")
		}
		pulled = true
		return io.NopCloser(strings.NewReader(string(progress))), nil
	}
	r := newFakeRun()
	r.cfg.Image = "localhost:5000/team/go:1.22"
	r.cfg.Pull = PullMissing
	r.cfg.PullRetries = 2
	r.cfg.Environ = []string{"DOCKER_CONFIG=" + config}
	res, err := r.run(t, context.Background(), e)
	if err != nil || res.ExitCode != 0 || pulls != 2 {
		t.Fatalf("got %v, %v after %d pulls\nlog:\n%s", res, err, pulls, r.log)
	}
	if !strings.Contains(r.log.String(), "pull failed; retrying") {
		t.Errorf("log:\n%s", r.log)
	}

	// A registry that refuses the credentials is not asked again.
	e.ImagePullFunc = func(context.Context, string, image.PullOptions) (io.ReadCloser, error) {
		return nil, errors.New("unauthorized: authentication required")
	}
	r = newFakeRun()
	r.cfg.Image = "localhost:5000/team/go:1.22"
	r.cfg.Pull = PullAlways
	r.cfg.Environ = []string{"DOCKER_CONFIG=" + config}
	_, err = r.run(t, context.Background(), e)
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("got %v", err)
	}

	// The default registry's credentials are found under the engine's
	// index address.
	e.InfoFunc = func(context.Context) (system.Info, error) {
		return system.Info{IndexServerAddress: "https://index.example/v1/"}, nil
	}
	r = newFakeRun()
	r.cfg.Image = "busybox"
	r.cfg.Pull = PullAlways
	r.cfg.Environ = []string{"DOCKER_CONFIG=" + config}
	if _, err := r.run(t, context.Background(), e); exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "refused an anonymous pull") {
		t.Errorf("got %v", err)
	}
}
