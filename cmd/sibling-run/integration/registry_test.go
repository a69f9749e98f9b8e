package integration

// A registry of the tests' own: Debian's docker-registry (distribution 2.8)
// on a free loopback port with htpasswd authentication, its storage in a
// temporary directory, started and stopped by each test that needs it. The
// engine pulls from it over plain HTTP because it treats 127.0.0.0/8 as an
// insecure registry, and it reaches it because dockerd shares this machine's
// network namespace, or, for an engine in a namespace of its own, through
// reachableFromEngine (startRegistry checks both through a push).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
)

type testRegistry struct {
	addr     string // 127.0.0.1:port
	user     string
	password string
}

// startRegistry starts a registry that accepts user:password and stops it,
// and removes every image of it from the engine, when t ends.
func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	notUnderPodman(t, "Podman's pulls differ from Docker's where these tests look (its retries of a 503, its progress lines), and its registries.conf would need the registry as insecure; Docker 20.10 and 29 run them")
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("the pull tests need docker-registry (apt-get install docker-registry; scripts/test.sh does it)")
	}
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Fatal("the pull tests need htpasswd (apt-get install apache2-utils; scripts/test.sh does it)")
	}
	reg := &testRegistry{addr: freeLoopbackAddr(t), user: "ci-" + runID, password: "pw-" + randomHex(8)}
	dir := t.TempDir()
	users, err := exec.Command(htpasswd, "-Bbn", reg.user, reg.password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	writeFile(t, dir, "htpasswd", users)
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s/data
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: sibling-run-test
    path: %s/htpasswd
`, dir, reg.addr, dir)
	writeFile(t, dir, "config.yml", []byte(config))

	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		removeRegistryImages(t, reg.addr)
		_ = cmd.Process.Kill()
		<-exited
	})

	reachableFromEngine(t, reg.addr)

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + reg.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return reg
			}
		}
		select {
		case <-exited:
			t.Fatalf("docker-registry exited at start:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s within 15s:\n%s", reg.addr, logs.String())
		}
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// removeRegistryImages removes every image tagged from the registry at addr;
// one still there after the test's own cleanup is a leak, and fails it.
func removeRegistryImages(t *testing.T, addr string) {
	removed, err := removeImagesTagged(context.Background(), addr+"/")
	if err != nil {
		t.Error(err)
	}
	for _, tag := range removed {
		t.Errorf("image %s was left behind (now removed)", tag)
	}
}

// removeImagesTagged removes every tag that starts with prefix and returns
// the tags it found.
func removeImagesTagged(ctx context.Context, prefix string) ([]string, error) {
	list, err := api.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var found []string
	for _, img := range list {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, prefix) {
				found = append(found, tag)
				if _, err := api.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
					return found, fmt.Errorf("removing %s: %w", tag, err)
				}
			}
		}
	}
	return found, nil
}

// ref is the registry's name for the test image with tag.
func (reg *testRegistry) ref(tag string) string {
	return reg.addr + "/sibling-run-test/x:" + tag
}

func (reg *testRegistry) auth() string {
	encoded, _ := registry.EncodeAuthConfig(registry.AuthConfig{Username: reg.user, Password: reg.password, ServerAddress: reg.addr})
	return encoded
}

// push builds an image whose /marker holds content (a layer of its own, so
// a pull downloads something), pushes it as ref, and removes it from the
// engine again unless keep is set. It returns the image's id.
func (reg *testRegistry) push(t *testing.T, ref, content string, keep bool) string {
	t.Helper()
	ctx := context.Background()
	dockerfile := fmt.Sprintf("FROM %s\nCOPY marker /marker\nCMD [\"cat\", \"/marker\"]\n", busyboxImage)
	marker := append([]byte(content+"\n"), randomBytes(t, 64<<10)...)
	if err := buildImage(ctx, ref, map[string][]byte{"Dockerfile": []byte(dockerfile), "marker": marker}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}) })
	inspect, err := api.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	body, err := api.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: reg.auth()})
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	defer body.Close()
	if err := streamError(body); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	if !keep {
		if _, err := api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
			t.Fatalf("removing %s after the push: %v", ref, err)
		}
	}
	return inspect.ID
}

// streamError reads an engine progress stream to its end and returns the
// error it reports, if any.
func streamError(body io.Reader) error {
	dec := json.NewDecoder(body)
	for {
		var msg struct {
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.ErrorDetail != nil {
			return fmt.Errorf("%s", msg.ErrorDetail.Message)
		}
	}
}

// dockerConfigDir writes a docker config.json of config into a new
// directory, for DOCKER_CONFIG.
func dockerConfigDir(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "config.json", []byte(config))
	return dir
}

// authsConfig is a config.json with user:password for the registry in auths.
func (reg *testRegistry) authsConfig(user, password string) string {
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.addr, basic)
}

func imagePresent(t *testing.T, ref string) bool {
	t.Helper()
	_, err := api.ImageInspect(context.Background(), ref)
	return err == nil
}
