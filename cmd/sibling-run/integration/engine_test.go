// Package integration tests the sibling-run binary against the real Docker
// engine: no mock stands in for it, and a missing engine fails the suite
// instead of skipping it. No registry is reachable, so TestMain builds every
// image it needs FROM scratch, from Debian's busybox-static and the
// sibling-run binary it compiles, and removes them again.
//
// The engine may be shared with a real agent or another test run, so the
// tests touch only what carries testLabel (or, for a single run, its owner
// labels), and TestMain fails the run if anything carrying it is left.
// Pure tests of the command live beside it in package main and need no engine.
package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"sibling-run/runner"
)

var (
	api          *client.Client
	runID        = randomHex(4)
	testLabel    = "sibling-run-test.run=" + runID
	binary       string // the sibling-run under test, built static
	cacheHome    string // XDG_CACHE_HOME of the runs: theirs, not the user's
	busyboxImage = "sibling-run-test/busybox:" + runID
	agentImage   = "sibling-run-test/agent:" + runID // busybox plus sibling-run
	engine       string                              // "docker" or "podman", see engineUnderTest
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	api, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		_, err = api.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: these tests need a Docker engine (DOCKER_HOST or /var/run/docker.sock): %v\n", err)
		return 1
	}
	if engine, err = engineUnderTest(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "engine under test: %s at %s\n", engine, api.DaemonHost())
	tmp, err := os.MkdirTemp("", "sibling-run-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	// The builds' network is the engine's, kept across runs; the suite
	// removes it only if it made it (see tearDown).
	buildsNetworkExisted = buildsNetworkID(ctx) != ""
	binary = filepath.Join(tmp, "sibling-run")
	cacheHome = filepath.Join(tmp, "cache")
	if err := setUp(ctx, binary); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: setting up:", err)
		tearDown(ctx)
		return 1
	}
	code := m.Run()
	// Anonymous volumes go with the labelled containers that hold them;
	// named volumes and networks a test makes carry testLabel themselves.
	if left := tearDown(ctx); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left these behind (now removed): %s\n", strings.Join(left, ", "))
		code = 1
	}
	return code
}

// engineUnderTest names the engine the tests run against, as the engine
// itself says (/version): "podman"; "docker29", a Docker whose API mounts
// volume subpaths (1.45 and later: Docker 26 on, Docker Engine 29 in CI),
// where sibling-run takes that path; or "docker", an older Docker (20.10,
// API 1.41, the machine's own), where it binds the volume's host path.
// SIBLING_RUN_TEST_ENGINE, when set, must agree: each pass of
// scripts/test.sh sets it, so that none can quietly run against another
// engine, and the Docker passes cannot skip what only Podman lacks.
func engineUnderTest(ctx context.Context) (string, error) {
	v, err := api.ServerVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("asking the engine for its version: %w", err)
	}
	found := "docker"
	if versions.GreaterThanOrEqualTo(v.APIVersion, "1.45") {
		found = "docker29"
	}
	for _, c := range v.Components {
		if strings.Contains(c.Name, "Podman") {
			found = "podman"
		}
	}
	if want := os.Getenv("SIBLING_RUN_TEST_ENGINE"); want != "" && want != found {
		return "", fmt.Errorf("SIBLING_RUN_TEST_ENGINE=%s, but the engine at %s is %s (%s, API %s)", want, api.DaemonHost(), found, v.Version, v.APIVersion)
	}
	return found, nil
}

// notUnderPodman skips t in the Podman pass, saying why: a test of what
// Podman lacks (and the docs say so). It never skips against Docker.
func notUnderPodman(t *testing.T, why string) {
	t.Helper()
	if engine == "podman" {
		t.Skip("not under Podman: " + why)
	}
}

// firstPassOnly skips t in every pass but the first, against the machine's
// own Docker: for a test that does not use the engine under test (it checks
// files, or starts an engine of its own), which another pass would only
// repeat.
func firstPassOnly(t *testing.T, why string) {
	t.Helper()
	if engine != "docker" {
		t.Skip("in the Docker pass only: " + why)
	}
}

func setUp(ctx context.Context, binary string) error {
	build := exec.Command("go", "build", "-o", binary, "sibling-run/cmd/sibling-run")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building sibling-run: %v\n%s", err, out)
	}
	busybox := "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		return fmt.Errorf("no %s: install Debian's busybox-static (apt-get install busybox-static)", busybox)
	}
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot(), "images", "busybox", "Dockerfile"))
	if err != nil {
		return err
	}
	if err := buildImage(ctx, busyboxImage, map[string][]byte{"Dockerfile": dockerfile}, map[string]string{"busybox": busybox}); err != nil {
		return err
	}
	agent := fmt.Sprintf("FROM %s\nCOPY sibling-run /bin/sibling-run\n", busyboxImage)
	return buildImage(ctx, agentImage, map[string][]byte{"Dockerfile": []byte(agent)}, map[string]string{"sibling-run": binary})
}

// tearDown removes what the tests made and returns the containers, networks
// and volumes carrying testLabel that were still there: each one is a leak.
// It touches nothing without testLabel, so another run on the same engine is
// safe from it.
func tearDown(ctx context.Context) []string {
	var left []string
	mine := filters.NewArgs(filters.Arg("label", testLabel))
	containers, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: mine})
	if err != nil {
		left = append(left, "(listing containers failed: "+err.Error()+")")
	}
	for _, c := range containers {
		left = append(left, "container "+strings.TrimPrefix(c.Names[0], "/"))
		_ = api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	// Networks go after their containers: the engine keeps a network in use.
	networks, err := api.NetworkList(ctx, network.ListOptions{Filters: mine})
	if err != nil {
		left = append(left, "(listing networks failed: "+err.Error()+")")
	}
	for _, n := range networks {
		left = append(left, "network "+n.Name)
		_ = api.NetworkRemove(ctx, n.ID)
	}
	volumes, err := api.VolumeList(ctx, volume.ListOptions{Filters: mine})
	if err != nil {
		left = append(left, "(listing volumes failed: "+err.Error()+")")
	}
	for _, v := range volumes.Volumes {
		left = append(left, "volume "+v.Name)
		_ = api.VolumeRemove(ctx, v.Name, true)
	}
	if !buildsNetworkExisted {
		// Made by this suite's builds; the engine refuses it while another
		// run's build uses it, and then it stays, as it would anyway.
		if id := buildsNetworkID(ctx); id != "" {
			_ = api.NetworkRemove(ctx, id)
		}
	}
	if err := removeGoStages(ctx); err != nil {
		left = append(left, "("+err.Error()+")")
	}
	for _, tag := range []string{goImageTag, agentImage, busyboxImage} {
		_, _ = api.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
	}
	return left
}

// buildsNetworkExisted says whether runner.BuildsNetwork was on the engine
// before the suite.
var buildsNetworkExisted bool

// buildsNetworkID is the id of the engine's runner.BuildsNetwork made by
// sibling-run (its role label), or "".
func buildsNetworkID(ctx context.Context) string {
	list, _ := api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", runner.LabelRole+"=builds"))})
	for _, n := range list {
		if n.Name == runner.BuildsNetwork {
			return n.ID
		}
	}
	return ""
}

// volumeNames is the engine's set of volume names, to check that named
// volumes a test knows of are gone.
func volumeNames(ctx context.Context) (map[string]bool, error) {
	list, err := api.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, v := range list.Volumes {
		names[v.Name] = true
	}
	return names, nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// buildImage builds tag from a context of in-memory files and files copied
// from disk, and fails with the builder's own error message.
func buildImage(ctx context.Context, tag string, inline map[string][]byte, fromDisk map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for name, data := range inline {
		if err := add(name, data, 0o644); err != nil {
			return err
		}
	}
	for name, path := range fromDisk {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := add(name, data, 0o755); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := api.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{"sibling-run-test.run": runID},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct{ Error string }
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("building %s: %w", tag, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("building %s: %s", tag, msg.Error)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// result is what one sibling-run process did.
type result struct {
	stdout, stderr string
	code           int
	pid            int // the sibling-run process's, as in its owner labels
	took           time.Duration
}

// siblingRun runs the sibling-run binary in dir with args and returns what it
// did. env is added to a minimal environment: PATH, HOME, XDG_CACHE_HOME and DOCKER_HOST only,
// so that nothing of the test's own environment leaks into a build unasked.
func siblingRun(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := siblingRunCommand(dir, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode(), took: time.Since(start)}
	if cmd.Process != nil {
		r.pid = cmd.Process.Pid
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("running sibling-run: %v", err)
	}
	return r
}

func siblingRunCommand(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "XDG_CACHE_HOME=" + cacheHome}
	// The test's own engine, unless env names another: the last of two wins.
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+host)
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// buildArgs are the flags every test build gets: the test image and the
// label that the leak check looks for.
func buildArgs(extra ...string) []string {
	return append([]string{"--image", busyboxImage, "--label", testLabel}, extra...)
}

// containersWith lists the containers, running or not, that carry all labels.
func containersWith(t *testing.T, labels ...string) []container.Summary {
	t.Helper()
	args := filters.NewArgs()
	for _, l := range labels {
		args.Add("label", l)
	}
	list, err := api.ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	return list
}

// assertRefused fails t unless r is how bad input must end: exit code 125
// and one line on stderr that says says.
func assertRefused(t *testing.T, r result, says string) {
	t.Helper()
	if r.code != 125 {
		t.Errorf("exit code %d, want 125", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(r.stderr, says) {
		t.Errorf("stderr should be one line saying %q, got:\n%s", says, r.stderr)
	}
}

// assertCreatedNothing fails t if the sibling-run process of r left or made
// anything on the engine: sibling-run puts its owner labels (host and pid) on
// every container and network it creates, so those labels name exactly what
// that one process made, whoever else uses the engine.
func assertCreatedNothing(t *testing.T, r result) {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	args := filters.NewArgs(filters.Arg("label", runner.LabelOwner+"=host:"+host), filters.Arg("label", fmt.Sprintf("%s=%d", runner.LabelOwnerPID, r.pid)))
	ctx := context.Background()
	containers, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	for _, c := range containers {
		t.Errorf("sibling-run (pid %d) created container %.12s %v", r.pid, c.ID, c.Names)
	}
	networks, err := api.NetworkList(ctx, network.ListOptions{Filters: args})
	if err != nil {
		t.Fatalf("listing networks: %v", err)
	}
	for _, n := range networks {
		t.Errorf("sibling-run (pid %d) created network %s", r.pid, n.Name)
	}
	volumes, err := api.VolumeList(ctx, volume.ListOptions{Filters: args})
	if err != nil {
		t.Fatalf("listing volumes: %v", err)
	}
	for _, v := range volumes.Volumes {
		// Podman 4.3 matches any one of several label filters.
		if v.Labels[runner.LabelOwnerPID] == strconv.Itoa(r.pid) && v.Labels[runner.LabelOwner] == "host:"+host {
			t.Errorf("sibling-run (pid %d) created volume %s", r.pid, v.Name)
		}
	}
}

// waitExitCode waits for cmd to end and returns its exit code. A sibling-run
// that has not ended after a minute hangs, which fails the test.
func waitExitCode(t *testing.T, cmd *exec.Cmd, stderr fmt.Stringer) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("sibling-run hangs; stderr:\n%s", stderr)
		return -1
	}
}

// startSiblingRun starts sibling-run in the background and returns once the
// build has printed its first line, so the sibling surely runs. A run the
// test has not waited for is killed when the test ends.
func startSiblingRun(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, stderr, _ := startUntilFirstLine(t, dir, func(cmd *exec.Cmd) {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}, args...)
	return cmd, stderr
}

// startWithEnv starts sibling-run with env added, as siblingRunCommand
// does, and returns once the build has printed a line; a run the test has
// not waited for is killed when the test ends.
func startWithEnv(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *lineWatch) {
	t.Helper()
	cmd := siblingRunCommand(dir, env, args...)
	stdout, stderr := newLineWatch("\n"), newLineWatch("")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	select {
	case <-stdout.seen:
	case <-time.After(30 * time.Second):
		t.Fatalf("the build printed nothing within 30s; stderr:\n%s", stderr)
	}
	return cmd, stderr
}

// startUntilFirstLine starts sibling-run with args in dir, registers stop
// for the test's end, and returns once the build's first line (returned,
// without its newline) has arrived; the rest of stdout is discarded.
func startUntilFirstLine(t *testing.T, dir string, stop func(*exec.Cmd), args ...string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	cmd := siblingRunCommand(dir, nil, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(cmd) })
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-first:
		if line == "" {
			t.Fatalf("sibling-run ended before the build printed anything; stderr:\n%s", stderr.String())
		}
		return cmd, &stderr, strings.TrimSpace(line)
	case <-time.After(30 * time.Second):
		t.Fatalf("the build printed nothing within 30s; stderr:\n%s", stderr.String())
	}
	return nil, nil, ""
}

// runContainer runs a helper container of the test's own (an agent, a data
// container's first fill) to its end and returns its output and exit code.
func runContainer(t *testing.T, config *container.Config, host *container.HostConfig) (string, int) {
	t.Helper()
	ctx := context.Background()
	if config.Labels == nil {
		config.Labels = map[string]string{}
	}
	config.Labels["sibling-run-test.run"] = runID
	created, err := api.ContainerCreate(ctx, config, host, nil, nil, "")
	if err != nil {
		t.Fatalf("creating helper container: %v", err)
	}
	defer func() {
		_ = api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}()
	waitC, errC := api.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting helper container: %v", err)
	}
	var code int
	select {
	case status := <-waitC:
		code = int(status.StatusCode)
	case err := <-errC:
		t.Fatalf("waiting for helper container: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("helper container did not finish within 2 minutes")
	}
	logs, err := api.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("reading helper container's output: %v", err)
	}
	defer logs.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, logs)
	return out.String(), code
}

// silentListener listens on loopback, accepts connections and never answers
// them, like an engine or registry that hangs, and returns its address. The
// connections are held open until the test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	return l.Addr().String()
}
