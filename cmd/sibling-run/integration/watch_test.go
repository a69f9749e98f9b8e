package integration

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

// The tests' reapers look only at objects with the test run's label: the
// engine is shared, and another run's orphans are that run's to judge.

// A sibling-run killed with SIGKILL leaves its sibling; reap --watch removes
// it within seconds (the goal is 2 s; the time is logged, not asserted).
func TestReapWatchRemovesTheSiblingOfAKilledRun(t *testing.T) {
	startWatcher(t)
	killed, _ := startSiblingRun(t, t.TempDir(), buildArgs("sh", "-c", "echo ready; sleep 300")...)
	pidLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(killed.Process.Pid)
	if n := len(containersWith(t, testLabel, pidLabel)); n != 1 {
		t.Fatalf("%d siblings running, want 1", n)
	}
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	took, gone := waitGone(t, testLabel, pidLabel)
	if !gone {
		t.Fatalf("the sibling of a killed sibling-run is still there %s later", took)
	}
	t.Logf("the watcher removed the sibling %s after its sibling-run was killed", took)
}

// An agent container that is replaced (removed, as a --rm agent is on every
// restart) leaves its build running; the reaper that starts with the next
// agent removes it. One whose agent container dies while a reaper runs goes
// at once.
func TestReapWatchRemovesTheOrphansOfAGoneAgentContainer(t *testing.T) {
	data := createDataContainer(t, "/build")
	// Without a reaper the orphan stays when its agent is removed.
	first := startAgentBuild(t, data)
	if err := api.ContainerRemove(context.Background(), first.agent, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := len(containersWith(t, testLabel, first.ownerLabel)); n != 1 {
		t.Fatalf("%d siblings of the removed agent, want its 1 orphan", n)
	}

	watcher := startWatcher(t)
	took, gone := waitGone(t, testLabel, first.ownerLabel)
	if !gone {
		t.Fatalf("the orphan of a removed agent container is still there %s after the reaper started", took)
	}
	// The line comes once the sweep has also looked at the networks, a
	// moment after the sibling is gone.
	if !watcher.waitFor("removed a sibling whose sibling-run is gone", 30*time.Second) {
		t.Errorf("the reaper did not say what it removed:\n%s", watcher)
	}

	// An agent container that dies while the reaper runs (its engine kills it).
	second := startAgentBuild(t, data)
	if err := api.ContainerKill(context.Background(), second.agent, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	took, gone = waitGone(t, testLabel, second.ownerLabel)
	if !gone {
		t.Fatalf("the sibling of a killed agent container is still there %s later", took)
	}
	t.Logf("the watcher removed the sibling %s after its agent container was killed", took)
}

// agentBuild is a build that a sibling-run in an agent container runs.
type agentBuild struct {
	agent      string // the agent container's id
	ownerLabel string // the owner label its sibling carries
}

// startAgentBuild starts an agent container that runs a long build through
// sibling-run, and returns once the build runs.
func startAgentBuild(t *testing.T, data string) agentBuild {
	t.Helper()
	ctx := context.Background()
	socket, ok := strings.CutPrefix(api.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the agent tests mount the engine's unix socket; DOCKER_HOST is %s", api.DaemonHost())
	}
	script := `mkdir -p /build/job && cd /build/job && exec sibling-run --volumes-from "$0" --label "$1" --image "$2" sh -c 'echo ready; sleep 300'`
	created, err := api.ContainerCreate(ctx, &container.Config{
		Image:  agentImage,
		Cmd:    []string{"sh", "-c", script, data, testLabel, busyboxImage},
		Labels: map[string]string{"sibling-run-test.run": runID},
	}, &container.HostConfig{
		Binds:       []string{socket + ":/var/run/docker.sock"},
		VolumesFrom: []string{data},
	}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
	if err := api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	owner := runner.LabelOwner + "=container:" + created.ID
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, c := range containersWith(t, testLabel, owner) {
			if c.State == "running" {
				return agentBuild{agent: created.ID, ownerLabel: owner}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no running sibling of agent %.12s within a minute", created.ID)
	return agentBuild{}
}

// startWatcher runs sibling-run reap --watch for the test's own objects until
// the test ends, and returns its stderr once it watches. At the end it must
// stop on SIGTERM with exit 0.
func startWatcher(t *testing.T, env ...string) *syncBuffer {
	t.Helper()
	cmd := siblingRunCommand(t.TempDir(), env, "reap", "--watch", "--label", testLabel)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	watching := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		lines := bufio.NewReader(pipe)
		once := sync.Once{}
		for {
			line, err := lines.ReadString('\n')
			out.WriteString(line)
			if strings.Contains(line, "watching for siblings") {
				once.Do(func() { close(watching) })
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-copied
		if code := waitExitCode(t, cmd, out); code != 0 {
			t.Errorf("reap --watch ended with %d on SIGTERM, want 0; stderr:\n%s", code, out)
		}
	})
	select {
	case <-watching:
	case <-copied:
		t.Fatalf("reap --watch ended at once:\n%s", out)
	case <-time.After(30 * time.Second):
		t.Fatalf("reap --watch did not start watching within 30s:\n%s", out)
	}
	return out
}

// waitGone waits up to 30 s until no container carries all labels, and says
// how long that took.
func waitGone(t *testing.T, labels ...string) (time.Duration, bool) {
	t.Helper()
	return waitGoneFrom(t, func() int { return len(containersWith(t, labels...)) }, 30*time.Second)
}

// waitGoneFrom waits up to limit until count says 0.
func waitGoneFrom(t *testing.T, count func() int, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if count() == 0 {
			return time.Since(start).Round(10 * time.Millisecond), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start).Round(time.Second), false
}

// syncBuffer is a bytes.Buffer that a reading goroutine and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor reports whether text appears in b within timeout.
func (b *syncBuffer) waitFor(text string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(b.String(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// An engine restart must not end the reaper: it watches again once the
// engine is back, removes what was orphaned meanwhile (here a sibling whose
// sibling-run ended when the engine died), and follows the new engine's
// events. The engine is a private one; the main engine is not touched.
func TestReapWatchOutlivesAnEngineRestart(t *testing.T) {
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)
	hostEnv := "DOCKER_HOST=" + engine.host
	watcher := startWatcher(t, hostEnv)

	// The private engine has no bridge, hence --network none.
	cmd := siblingRunCommand(t.TempDir(), []string{hostEnv}, buildArgs("--network", "none", "sh", "-c", "echo ready; exec sleep 300")...)
	stdout, stderr := newLineWatch("\n"), newLineWatch("")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stdout.seen:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the build printed nothing within 30s; stderr:\n%s", stderr)
	}
	owned := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
	siblings := engine.containersWith(t, testLabel, owned)
	if len(siblings) != 1 {
		t.Fatalf("want 1 sibling on the private engine, got %d", len(siblings))
	}
	engine.waitRunning(t, siblings[0].ID) // see TestEngineLostMidBuild…

	engine.kill()
	if code := waitExitCode(t, cmd, stderr); code != 125 {
		t.Errorf("sibling-run exited %d when its engine died, want 125", code)
	}
	engine.start()
	// The sibling survived on the engine's data root; the reaper's sweep on
	// reconnecting removes it (its sibling-run is gone).
	count := func() int { return len(engine.containersWith(t, testLabel, owned)) }
	if took, gone := waitGoneFrom(t, count, time.Minute); !gone {
		t.Fatalf("the orphan is still on the restarted engine %s later; reaper:\n%s", took, watcher)
	}
	if !strings.Contains(watcher.String(), "lost the engine's event stream") {
		t.Errorf("the reaper did not say it lost the engine:\n%s", watcher)
	}

	// And it follows the restarted engine's events.
	killed := siblingRunCommand(t.TempDir(), []string{hostEnv}, buildArgs("--network", "none", "sh", "-c", "echo ready; exec sleep 300")...)
	out := newLineWatch("\n")
	killed.Stdout = out
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.seen:
	case <-time.After(30 * time.Second):
		_ = killed.Process.Kill()
		t.Fatal("the second build printed nothing within 30s")
	}
	_ = killed.Process.Signal(syscall.SIGKILL)
	_ = killed.Wait()
	owned = runner.LabelOwnerPID + "=" + strconv.Itoa(killed.Process.Pid)
	if took, gone := waitGoneFrom(t, count, 30*time.Second); !gone {
		t.Fatalf("the sibling of a killed sibling-run is still on the restarted engine %s later; reaper:\n%s", took, watcher)
	} else {
		t.Logf("after the engine restart, the reaper removed a killed run's sibling %s after the kill", took)
	}
	engine.assertEmpty(t)
}
