package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"sibling-run/runner"
)

// The agent architecture end to end, as on a build host: the images built
// from images/ by scripts/agent-images.sh (on the local stand-ins for their
// base images), the data container and the agent started by scripts/agent.sh,
// and a Bamboo script task run in the agent (docker exec as its user, with
// bamboo_* variables) that compiles Go in a sibling.
const (
	agentBuildDir = "/var/atlassian/application-data/bamboo-agent/xml-data/build-dir"
	agentUID      = "2005"
)

func TestAgentPairRunsBambooBuildsInSiblings(t *testing.T) {
	notUnderPodman(t, "it builds a Go toolchain image and the agent images, which took 10m40s on Podman's vfs storage here, beyond the test command's budget; agent mode under Podman is tested by the volumes tests")
	started := time.Now()
	n := "e2e-" + runID
	agent, data := "bamboo-agent."+n, "bamboo-agent-data."+n
	images := agentPairImages{
		goImage:   projectGoImage(t),
		base:      "sibling-run-test/agent-base:" + runID,
		agent:     "sibling-run-test/bamboo-agent:" + runID,
		agentNext: "sibling-run-test/bamboo-agent:" + runID + "-next",
		data:      "sibling-run-test/bamboo-agent-data:" + runID,
	}
	t.Cleanup(func() { images.remove(t) })
	env := []string{
		"BUSYBOX_IMAGE=" + busyboxImage, "GO_IMAGE=" + images.goImage,
		"AGENT_BASE_IMAGE=" + images.base, "AGENT_IMAGE=" + images.agent,
		"AGENT_DATA_IMAGE=" + images.data, "IMAGE_LABEL=" + testLabel,
		"BAMBOO_SERVER=http://bamboo.test:8085", "SECURITY_TOKEN=agent-token-1",
		"AGENT_LABELS=" + testLabel, "AGENT_PULL=never", "AGENT_STOP_TIMEOUT=5",
		// The agent gets the socket of the engine under test, not this
		// machine's own (agent.sh's default).
		"DOCKER_SOCKET=" + engineSocket(t),
	}
	phase := time.Now()
	script(t, env, "agent-images.sh")
	t.Logf("images built in %s", time.Since(phase).Round(time.Second))
	t.Cleanup(func() { script(t, env, "agent.sh", "down", n) })

	// Up, and up again: the second run changes nothing.
	out := script(t, env, "agent.sh", "up", n)
	if !strings.Contains(out, "created data container "+data) || !strings.Contains(out, "started agent "+agent) {
		t.Fatalf("agent.sh up did not report the pair it made:\n%s", out)
	}
	before := snapshotPair(t, agent, data)
	out = script(t, env, "agent.sh", "up", n)
	if after := snapshotPair(t, agent, data); after != before {
		t.Errorf("a second agent.sh up changed the pair:\nbefore %s\nafter  %s\noutput:\n%s", before, after, out)
	}
	agentInfo := inspectContainer(t, agent)
	if !agentInfo.State.Running || agentInfo.HostConfig.RestartPolicy.Name == "" {
		t.Errorf("the agent should run with a restart policy: running=%v restart=%q", agentInfo.State.Running, agentInfo.HostConfig.RestartPolicy.Name)
	}
	// The image's command runs the reaper beside the agent, as the agent's user.
	if ps := dockerExec(t, agent, "", nil, "ps", "-o", "user,args"); !strings.Contains(ps, "sibling-run reap --watch") || !strings.Contains(ps, "stand-in agent") && !strings.Contains(ps, "bamboo-agent-standin") {
		t.Errorf("the agent should run sibling-run reap --watch beside the agent:\n%s", ps)
	}
	socketGID := socketGroup(t)
	if ids := dockerExec(t, agent, "", nil, "id"); !strings.Contains(ids, "uid="+agentUID+"(bamboo)") || !strings.Contains(ids, ","+socketGID) && !strings.Contains(ids, "="+socketGID) {
		t.Errorf("the agent should run as bamboo (%s) with the socket's group %s: %s", agentUID, socketGID, ids)
	}

	// A checkout into the build directory, then the script task.
	work := agentBuildDir + "/PROJ-HELLO-JOB1"
	checkout(t, agent, work, filepath.Join(repoRoot(), "scripts", "demo", "hello"))
	task := scriptTask{agent: agent, workdir: work, image: images.goImage}

	phase = time.Now()
	// The Go image compiled the standard library into its build cache as
	// root; the build, run as the agent's user, must find it up to date.
	// The pause makes output held back until the end show as a late first line.
	run := task.run(t, `echo compiling; sleep 2; go list -f "fmt stale={{.Stale}}" fmt; go build -o hello . && echo built`)
	t.Logf("the script task's Go build took %s", time.Since(phase).Round(100*time.Millisecond))
	if run.code != 0 || !hasLine(run.stdout, "built") {
		t.Fatalf("the build failed (exit %d):\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	if !hasLine(run.stdout, "fmt stale=false") {
		t.Errorf("the Go image's prebuilt standard library is not used by the agent's user:\n%s", run.stdout)
	}
	if run.firstLine > run.took-1500*time.Millisecond {
		t.Errorf("the build's first line arrived %s into a %s build: output is not streamed", run.firstLine, run.took)
	}
	if got := dockerExec(t, agent, "", nil, work+"/hello"); !strings.HasPrefix(got, "Hello, Bamboo! Built in a sibling container") {
		t.Errorf("the built binary, run in the agent, says %q", got)
	}
	// The result is on the data container's volume at the same path, and
	// belongs to the agent's user.
	stat, code := runContainer(t, &container.Config{Image: busyboxImage, Cmd: []string{"stat", "-c", "%u:%g", work + "/hello"}},
		&container.HostConfig{VolumesFrom: []string{data}})
	if code != 0 || strings.TrimSpace(stat) != agentUID+":"+agentUID {
		t.Errorf("the data volume's %s/hello: %q (exit %d), want owner %s:%s", work, stat, code, agentUID, agentUID)
	}

	// A failing build: the compiler's message streams through and the exit
	// code of the build is the script task's.
	dockerExec(t, agent, work, nil, "sh", "-c", `echo 'func broken() { undefinedName() }' >> main.go`)
	run = task.run(t, `go build -o hello .`)
	if run.code != 1 || !strings.Contains(run.stderr, "undefined: undefinedName") {
		t.Errorf("a failing build: exit %d (want go build's 1), stderr:\n%s", run.code, run.stderr)
	}
	run = task.run(t, `exit 42`)
	if run.code != 42 {
		t.Errorf("exit 42 in the sibling gave the script task exit %d", run.code)
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind", len(left))
	}

	// An upgrade to a new agent image keeps the build directory; a second
	// upgrade changes nothing.
	next := fmt.Sprintf("FROM %s\nLABEL sibling-run-test.agent-generation=2\n", images.agent)
	if err := buildImage(context.Background(), images.agentNext, map[string][]byte{"Dockerfile": []byte(next)}, nil); err != nil {
		t.Fatal(err)
	}
	upgradeEnv := append(env[:len(env):len(env)], "AGENT_IMAGE="+images.agentNext)
	out = script(t, upgradeEnv, "agent.sh", "upgrade", n)
	upgraded := inspectContainer(t, agent)
	if upgraded.ID == agentInfo.ID || upgraded.Config.Labels["sibling-run-test.agent-generation"] != "2" {
		t.Fatalf("agent.sh upgrade did not replace the agent with the new image:\n%s", out)
	}
	if after := inspectContainer(t, data); after.ID != before.dataID {
		t.Errorf("the upgrade replaced the data container")
	}
	if got := dockerExec(t, agent, "", nil, work+"/hello"); !strings.HasPrefix(got, "Hello, Bamboo!") {
		t.Errorf("after the upgrade the agent does not see the earlier build's result: %q", got)
	}
	upgradedState := snapshotPair(t, agent, data)
	script(t, upgradeEnv, "agent.sh", "upgrade", n)
	if again := snapshotPair(t, agent, data); again != upgradedState {
		t.Errorf("a second upgrade changed the pair:\nbefore %s\nafter  %s", upgradedState, again)
	}

	// Nothing but the pair is left; down removes it with its volumes.
	var names []string
	for _, c := range containersWith(t, testLabel) {
		names = append(names, strings.TrimPrefix(c.Names[0], "/"))
	}
	if len(names) != 2 {
		t.Errorf("want only the pair %s and %s, found %v", agent, data, names)
	}
	dataVolumes := volumeNamesOf(inspectContainer(t, data).Mounts)
	agentVolumes := volumeNamesOf(upgraded.Mounts)
	script(t, env, "agent.sh", "down", n)
	if left := containersWith(t, testLabel); len(left) > 0 {
		t.Errorf("agent.sh down left %d containers", len(left))
	}
	now, err := volumeNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(dataVolumes, agentVolumes...) {
		if now[v] {
			t.Errorf("agent.sh down left volume %s", v)
		}
	}
	t.Logf("whole test: %s", time.Since(started).Round(time.Second))
}

// agentPairImages are the images the test builds; remove removes them and
// the builder's intermediate images of the agent image's Go stage.
type agentPairImages struct{ goImage, base, agent, agentNext, data string }

// The Go image itself is shared (projectGoImage) and goes in tearDown.
func (im agentPairImages) remove(t *testing.T) {
	ctx := context.Background()
	tags := []string{im.agentNext, im.agent, im.data, im.base}
	for _, tag := range tags {
		_, _ = api.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
	}
	if err := removeGoStages(ctx); err != nil {
		t.Error(err)
	}
	for _, id := range tags {
		if _, err := api.ImageInspect(ctx, id); err == nil {
			t.Errorf("image %s is still there after the test", id)
		}
	}
}

// goImageTag is the project's Go image of this run (projectGoImage).
var goImageTag = "sibling-run-test/go:" + runID

var goImageBuild sync.Mutex

// projectGoImage is the project's Go image (scripts/go-image.sh, with the
// standard library prebuilt, as sibling-run/go:local), built once for the
// tests that use it (the agent pair, the docs) and removed by tearDown: it
// takes minutes to build.
func projectGoImage(t *testing.T) string {
	t.Helper()
	goImageBuild.Lock()
	defer goImageBuild.Unlock()
	if !imagePresent(t, goImageTag) {
		started := time.Now()
		script(t, []string{"IMAGE_LABEL=" + testLabel}, "go-image.sh", goImageTag)
		t.Logf("built the Go image %s in %s", goImageTag, time.Since(started).Round(time.Second))
	}
	return goImageTag
}

// removeGoStages removes the untagged images on top of the Go image that
// the legacy builder leaves of the agent image's Go stage.
func removeGoStages(ctx context.Context) error {
	info, err := api.ImageInspect(ctx, goImageTag)
	if err != nil {
		return nil
	}
	dangling, err := api.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("dangling", "true"))})
	if err != nil {
		return fmt.Errorf("listing untagged images: %w", err)
	}
	for _, img := range dangling {
		if img.ID != info.ID && descendsFrom(ctx, img.ID, info.ID) {
			_, _ = api.ImageRemove(ctx, img.ID, image.RemoveOptions{PruneChildren: true})
		}
	}
	return nil
}

func descendsFrom(ctx context.Context, id, ancestor string) bool {
	for id != "" {
		if id == ancestor {
			return true
		}
		info, err := api.ImageInspect(ctx, id)
		if err != nil {
			return false
		}
		id = info.Parent
	}
	return false
}

// script runs scripts/NAME with args and env (on top of PATH, HOME and
// DOCKER_HOST) and fails the test when it fails.
func script(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, code := scriptResult(env, name, args...)
	if code != 0 {
		t.Fatalf("scripts/%s %s: exit %d:\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

func scriptResult(env []string, name string, args ...string) (string, int) {
	cmd := exec.Command(filepath.Join(repoRoot(), "scripts", name), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	// The test's own engine, unless env names another: the last of two wins.
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+host)
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		return err.Error(), -1
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// pairSnapshot is what must not change when a script runs twice: the
// containers' ids and start times.
type pairSnapshot struct{ agentID, agentStarted, dataID string }

func snapshotPair(t *testing.T, agent, data string) pairSnapshot {
	t.Helper()
	a, d := inspectContainer(t, agent), inspectContainer(t, data)
	return pairSnapshot{agentID: a.ID, agentStarted: a.State.StartedAt, dataID: d.ID}
}

func inspectContainer(t *testing.T, name string) container.InspectResponse {
	t.Helper()
	info, err := api.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatalf("inspecting %s: %v", name, err)
	}
	return info
}

func volumeNamesOf(mounts []container.MountPoint) []string {
	var names []string
	for _, m := range mounts {
		if m.Type == "volume" {
			names = append(names, m.Name)
		}
	}
	return names
}

// engineSocket is the unix socket of the engine under test, which the agent
// tests mount into their agents.
func engineSocket(t *testing.T) string {
	t.Helper()
	socket, ok := strings.CutPrefix(api.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the agent tests mount the engine's unix socket; DOCKER_HOST is %s", api.DaemonHost())
	}
	return socket
}

func socketGroup(t *testing.T) string {
	t.Helper()
	info, err := os.Stat(engineSocket(t))
	if err != nil {
		t.Fatalf("the agent tests need the engine's unix socket: %v", err)
	}
	return strconv.FormatUint(uint64(info.Sys().(*syscall.Stat_t).Gid), 10)
}

// dockerExec runs a command in the agent as its user and fails the test if
// it fails.
func dockerExec(t *testing.T, agent, dir string, stdin io.Reader, command ...string) string {
	t.Helper()
	args := []string{"exec", "-i", "-u", "bamboo"}
	if dir != "" {
		args = append(args, "-w", dir)
	}
	cmd := exec.Command("docker", append(append(args, agent), command...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %s %v: %v\n%s", agent, command, err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkout copies the directory src into the agent's build directory at
// work, as the agent's user, the way a Bamboo checkout task fills it.
func checkout(t *testing.T, agent, work, src string) {
	t.Helper()
	dockerExec(t, agent, "", nil, "mkdir", "-p", work)
	var archive bytes.Buffer
	tarCmd := exec.Command("tar", "-C", src, "-cf", "-", ".")
	tarCmd.Stdout = &archive
	if err := tarCmd.Run(); err != nil {
		t.Fatalf("packing %s: %v", src, err)
	}
	dockerExec(t, agent, work, &archive, "tar", "-xf", "-")
}

// scriptTask runs a build the way a Bamboo script task in the agent does.
type scriptTask struct{ agent, workdir, image string }

type taskResult struct {
	stdout, stderr  string
	code            int
	took, firstLine time.Duration
}

// run runs build (a shell command) through sibling-run in the agent, as the
// agent's user, in the job's working directory, with bamboo_* variables set.
func (s scriptTask) run(t *testing.T, build string) taskResult {
	t.Helper()
	// No --user: sibling-run runs the build as the working directory's
	// owner, the agent's user, which the test checks through file owners.
	task := `sibling-run --label "$0" --image "$1" sh -c "$2"`
	cmd := exec.Command("docker", "exec", "-u", "bamboo", "-w", s.workdir,
		"-e", "bamboo_build_working_directory="+s.workdir,
		"-e", "bamboo_buildResultKey=PROJ-HELLO-JOB1-"+runID,
		"-e", "bamboo_planKey=PROJ-HELLO", "-e", "bamboo_planRepository_branch=main",
		s.agent, "sh", "-c", task, testLabel, s.image, build)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r taskResult
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if out.Len() == 0 {
			r.firstLine = time.Since(start)
		}
		out.WriteString(lines.Text() + "\n")
	}
	code := waitExitCode(t, cmd, &stderr)
	r.took = time.Since(start)
	r.stdout, r.stderr, r.code = out.String(), stderr.String(), code
	return r
}
