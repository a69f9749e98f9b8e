package integration

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"sibling-run/runner"
)

// An engine that dies in the middle of a build must not hang sibling-run on
// the output stream, the wait or the removal: it passes on what the build
// wrote, exits 125 with one line that names the lost engine and says that
// reap removes the sibling once the engine is back, and reap then does. The
// engine that dies is a private one; the main engine is not touched.
func TestEngineLostMidBuildEnds125AndReapCleansUpOnceItIsBack(t *testing.T) {
	firstPassOnly(t, "the engine it kills is a private dockerd 20.10 of its own; the engine under test takes no part")
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)

	// The private engine has no bridge, hence --network none.
	cmd := siblingRunCommand(t.TempDir(), []string{"DOCKER_HOST=" + engine.host},
		buildArgs("--network", "none", "sh", "-c", "echo the build started; exec sleep 120")...)
	stdout, stderr := newLineWatch("\n"), newLineWatch("")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var endedAt time.Time // set before ended is closed
	go func() { _ = cmd.Wait(); endedAt = time.Now(); close(ended) }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-ended
		}
	})
	select {
	case <-stdout.seen:
	case <-ended:
		t.Fatalf("sibling-run ended before the build printed anything: exit %d; stderr:\n%s", cmd.ProcessState.ExitCode(), stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("the build printed nothing within 30s; stderr:\n%s", stderr)
	}

	// The build that printed runs on the private engine, so killing that
	// engine is what this test is about.
	owned := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
	siblings := engine.containersWith(t, testLabel, owned)
	if len(siblings) != 1 {
		t.Fatalf("want 1 sibling on the private engine, got %+v", siblings)
	}
	sibling := siblings[0].ID
	// The engine may record the start only after the build's first line
	// has arrived. Killed in between, dockerd 20.10 came back here without
	// stopping the build, and removing the sibling then left the build
	// running in its containerd shim: a gap of the engine's, which this test
	// steps around by killing it once the start is recorded.
	engine.waitRunning(t, sibling)
	if onMain := containersWith(t, owned); len(onMain) != 0 {
		t.Fatalf("the build ran on the main engine: %+v", onMain)
	}

	killed := time.Now()
	engine.kill()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGQUIT) // its goroutine dump shows where it hangs
		<-ended
		t.Fatalf("sibling-run still ran 20s after its engine died; stderr:\n%s", stderr)
	}
	t.Logf("sibling-run ended %s after the engine was killed", endedAt.Sub(killed).Round(time.Millisecond))

	if code := cmd.ProcessState.ExitCode(); code != 125 {
		t.Errorf("exit code %d, want 125", code)
	}
	if got := stdout.String(); got != "the build started\n" {
		t.Errorf("stdout %q, want what the build wrote before the engine died", got)
	}
	var errorLines, warnLines []string
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		switch {
		case strings.HasPrefix(line, "[sibling-run] ERR "):
			errorLines = append(errorLines, line)
		case strings.HasPrefix(line, "[sibling-run] WRN "):
			warnLines = append(warnLines, line)
		case strings.HasPrefix(line, "[sibling-run] INF starting the build"):
		default:
			t.Errorf("unexpected line on stderr: %q", line)
		}
	}
	if len(errorLines) != 1 || len(warnLines) > 1 {
		t.Errorf("want one error line and at most one warning, got:\n%s", stderr)
	} else if msg := errorLines[0]; !strings.Contains(msg, "lost the Docker engine at "+engine.host) || !strings.Contains(msg, "once the engine is back, run sibling-run reap") {
		t.Errorf("the error should name the lost engine %s and tell to run sibling-run reap once it is back; got:\n%s", engine.host, msg)
	}

	// Back on the same data root, the engine still holds the sibling (its
	// build stopped by the restart): nothing could remove it meanwhile.
	engine.start()
	if left := engine.containersWith(t, owned); len(left) != 1 || left[0].ID != sibling {
		t.Fatalf("want the sibling %.12s on the restarted engine, got %+v", sibling, left)
	}
	r := siblingRun(t, t.TempDir(), []string{"DOCKER_HOST=" + engine.host}, "reap")
	if r.code != 0 || !strings.Contains(r.stdout, "removed "+sibling[:12]) {
		t.Errorf("reap: exit %d, stdout %q, stderr %q; want it to name the sibling %.12s", r.code, r.stdout, r.stderr, sibling)
	}
	engine.assertEmpty(t)
}

// containersWith lists the private engine's containers, running or not,
// that carry all labels.
func (e *privateEngine) containersWith(t *testing.T, labels ...string) []container.Summary {
	t.Helper()
	args := filters.NewArgs()
	for _, l := range labels {
		args.Add("label", l)
	}
	list, err := e.api.ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatalf("listing the private engine's containers: %v", err)
	}
	return list
}

// waitRunning returns once the engine records the container as running.
func (e *privateEngine) waitRunning(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := e.api.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatalf("inspecting %.12s on the private engine: %v", id, err)
		}
		if info.State != nil && info.State.Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the private engine did not record %.12s as running within 10s: %+v", id, info.State)
		}
	}
}

// assertEmpty fails the test if the private engine holds any container,
// volume or network that was not there when it started.
func (e *privateEngine) assertEmpty(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if left := e.containersWith(t); len(left) > 0 {
		t.Errorf("containers left on the engine: %+v", left)
	}
	volumes, err := e.api.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatalf("listing the private engine's volumes: %v", err)
	}
	for _, v := range volumes.Volumes {
		t.Errorf("volume %s left on the engine", v.Name)
	}
	networks, err := e.api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatalf("listing the private engine's networks: %v", err)
	}
	for _, n := range networks {
		if n.Name != "none" && n.Name != "host" { // an engine's own, with --bridge none
			t.Errorf("network %s left on the engine", n.Name)
		}
	}
}
