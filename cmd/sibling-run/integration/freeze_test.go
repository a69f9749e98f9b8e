package integration

import (
	"context"
	"os"

	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

// watchInterval is the engine watch's interval in the freeze tests
// (SIBLING_RUN_ENGINE_WATCH_INTERVAL, hidden): an engine that answers no
// ping for three of them is given up, 1.5 s here against 30 s by default.
const watchInterval = "500ms"

// freezeBound is how soon after a freeze sibling-run must have ended in
// these tests: three watch intervals, a ping's last wait and the short
// removal that follows, with room for a loaded machine.
const freezeBound = 12 * time.Second

// A frozen engine (a private dockerd stopped with SIGSTOP, as a deadlocked
// daemon behaves) must end the run in bounded time whatever the run was
// doing: sibling-run exits 125 with a line that names the engine and says to
// run reap, and reap removes what was left once the engine answers again.
// Each phase is entered by the line sibling-run logs there; the time from
// the freeze to sibling-run's exit is in the log.
func TestAFrozenEngineEndsTheRunInBoundedTime(t *testing.T) {
	firstPassOnly(t, "the engine it freezes is a private dockerd 20.10 of its own; the engine under test takes no part")
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)
	phases := []struct {
		name    string
		trigger string // the line at which the engine is frozen; "" before the run
		args    []string
	}{
		{"connect", "", []string{"true"}},
		{"create", "creating the sibling", []string{"true"}},
		{"start", "starting the build", []string{"sh", "-c", "echo started; sleep 3"}},
		{"wait", "started", []string{"sh", "-c", "echo started; sleep 3"}},
		{"artifact copy", "build finished", []string{"--artifact", "/big:dist", "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null"}},
		{"removal", "build finished", []string{"true"}},
	}
	for _, phase := range phases {
		t.Run(strings.ReplaceAll(phase.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--log-level", "debug"}, buildArgs(append([]string{"--network", "none"}, phase.args...)...)...)
			cmd := siblingRunCommand(dir, []string{"DOCKER_HOST=" + engine.host, "SIBLING_RUN_ENGINE_WATCH_INTERVAL=" + watchInterval}, args...)
			out := newLineWatch(phase.trigger)
			cmd.Stdout, cmd.Stderr = out, out
			if phase.trigger == "" {
				engine.freeze(t)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ended := make(chan struct{})
			go func() { _ = cmd.Wait(); close(ended) }()
			frozen := time.Now()
			if phase.trigger != "" {
				select {
				case <-out.seen:
				case <-ended:
					t.Fatalf("sibling-run ended before %q: exit %d\n%s", phase.trigger, cmd.ProcessState.ExitCode(), out)
				case <-time.After(30 * time.Second):
					t.Fatalf("no %q within 30s\n%s", phase.trigger, out)
				}
				engine.freeze(t)
				frozen = time.Now()
			}
			select {
			case <-ended:
			case <-time.After(freezeBound):
				_ = cmd.Process.Signal(syscall.SIGQUIT) // its goroutine dump shows where it hangs
				<-ended
				engine.thaw(t)
				t.Fatalf("phase %s: sibling-run still ran %s after the engine froze\n%s", phase.name, freezeBound, out)
			}
			took := time.Since(frozen).Round(10 * time.Millisecond)
			t.Logf("phase %s: sibling-run ended %s after the engine froze, exit %d", phase.name, took, cmd.ProcessState.ExitCode())
			engine.thaw(t)
			if code := cmd.ProcessState.ExitCode(); code != 125 {
				t.Errorf("exit %d, want 125\n%s", code, out)
			}
			// Frozen before the run, nothing was made, and reap is not named.
			if !strings.Contains(out.String(), engine.host) || (phase.trigger != "" && !strings.Contains(out.String(), "sibling-run reap")) {
				t.Errorf("want a line naming the engine %s and reap\n%s", engine.host, out)
			}
			if matches, _ := filepath.Glob(filepath.Join(dir, "dist", ".sibling-run-partial-*")); len(matches) > 0 {
				t.Errorf("partial files left: %v", matches)
			}
			if r := siblingRun(t, dir, []string{"DOCKER_HOST=" + engine.host}, "reap", "--label", testLabel); r.code != 0 {
				t.Errorf("reap after the thaw: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// A removal the freeze interrupted finishes after the thaw.
			for deadline := time.Now().Add(10 * time.Second); len(engine.containersWith(t, testLabel)) > 0 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	engine.assertEmpty(t)
}

// With --timeout, a frozen engine ends the run within the timeout and one
// bounded engine call, and a build that had finished before it is never
// reported as timed out (124): before, sibling-run waited three bounds of
// 30 s in a row and reported 124 for a build that had ended.
func TestATimeoutWithAFrozenEngineIsHonouredAndNot124(t *testing.T) {
	firstPassOnly(t, "the engine it freezes is a private dockerd 20.10 of its own")
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)
	// A watch slower than the timeout, so that the kill's bound is what ends it.
	cmd := siblingRunCommand(t.TempDir(), []string{"DOCKER_HOST=" + engine.host, "SIBLING_RUN_ENGINE_WATCH_INTERVAL=2s"},
		buildArgs("--network", "none", "--timeout", "3s", "--stop-timeout", "1s", "sh", "-c", "echo started; sleep 1")...)
	out := newLineWatch("started")
	cmd.Stdout, cmd.Stderr = out, out
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.seen
	engine.freeze(t)
	code := waitExitCode(t, cmd, out)
	took := time.Since(started).Round(10 * time.Millisecond)
	t.Logf("with --timeout 3s and the engine frozen after the build's first line, sibling-run ended after %s, exit %d", took, code)
	engine.thaw(t)
	if code == 124 {
		t.Errorf("exit 124 for a build that finished in 1 s\n%s", out)
	}
	if code != 125 || took > 3*time.Second+freezeBound {
		t.Errorf("exit %d after %s; want 125 within the timeout and one bounded call\n%s", code, took, out)
	}
	siblingRun(t, t.TempDir(), []string{"DOCKER_HOST=" + engine.host}, "reap", "--label", testLabel)
	engine.assertEmpty(t)
}

// The third SIGTERM ends sibling-run at once, even on a frozen engine where
// the first one's stop cannot finish, with 143 and a line saying what may be
// left and what removes it.
func TestTheThirdSignalExitsAtOnce(t *testing.T) {
	firstPassOnly(t, "the engine it freezes is a private dockerd 20.10 of its own")
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)
	// The default watch (30 s to give up), so that only the signals end it.
	cmd := siblingRunCommand(t.TempDir(), []string{"DOCKER_HOST=" + engine.host},
		buildArgs("--network", "none", "sh", "-c", "echo started; sleep 120")...)
	out := newLineWatch("started")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.seen
	engine.freeze(t)
	for range 2 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
	}
	third := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	code := waitExitCode(t, cmd, out)
	took := time.Since(third)
	t.Logf("sibling-run ended %s after the third SIGTERM, exit %d", took.Round(time.Millisecond), code)
	engine.thaw(t)
	if code != 143 || took > 2*time.Second || !strings.Contains(out.String(), "reap") {
		t.Errorf("exit %d after %s; want 143 at once with a line naming reap\n%s", code, took, out)
	}
	siblingRun(t, t.TempDir(), []string{"DOCKER_HOST=" + engine.host}, "reap", "--label", testLabel)
	engine.assertEmpty(t)
}

// An engine that stops during the build (what systemctl stop or restart
// sends) ends it with 143; sibling-run says that the engine stopped it, and
// exits 125, not as the build's own 143.
func TestAnEngineThatStopsDuringTheBuildIsNamed(t *testing.T) {
	firstPassOnly(t, "the engine it stops is a private dockerd 20.10 of its own")
	engine := startPrivateEngine(t)
	engine.loadImage(busyboxImage)
	cmd := siblingRunCommand(t.TempDir(), []string{"DOCKER_HOST=" + engine.host},
		buildArgs("--network", "none", "sh", "-c", "echo started; sleep 120")...)
	out := newLineWatch("started")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.seen
	owned := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
	engine.waitRunning(t, engine.containersWith(t, owned)[0].ID)
	stopped := time.Now()
	engine.stop()
	code := waitExitCode(t, cmd, out)
	t.Logf("sibling-run ended %s after the engine was sent SIGTERM, exit %d", time.Since(stopped).Round(time.Millisecond), code)
	if code != 125 || !strings.Contains(out.String(), "stopped during the build") || strings.Contains(out.String(), "build finished") {
		t.Errorf("exit %d; want 125 and a line saying the engine stopped the build, no \"build finished\"\n%s", code, out)
	}
	engine.start()
	siblingRun(t, t.TempDir(), []string{"DOCKER_HOST=" + engine.host}, "reap", "--label", testLabel)
	engine.assertEmpty(t)
}

// A sibling removed from outside during the build (docker rm -f) is said so,
// exits 125 rather than as the build's own 137, and no reap advice follows:
// nothing is left.
func TestASiblingRemovedFromOutsideIsNamed(t *testing.T) {
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("sh", "-c", "echo started; sleep 120")...)
	out := newLineWatch("started")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.seen
	owned := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
	siblings := containersWith(t, testLabel, owned)
	if len(siblings) != 1 {
		t.Fatalf("want one sibling, got %+v", siblings)
	}
	if err := api.ContainerRemove(context.Background(), siblings[0].ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	code := waitExitCode(t, cmd, out)
	if code != 125 || !strings.Contains(out.String(), "removed from outside") || strings.Contains(out.String(), "sibling-run reap") || strings.Contains(out.String(), "build finished") {
		t.Errorf("exit %d; want 125, a line saying the sibling was removed from outside, no reap advice\n%s", code, out)
	}
}

// A SIGKILL during a large artifact copy leaves a partial file where an
// artifact pattern (dist/**) finds it; the next run in the working directory
// removes it.
func TestAPartialArtifactOfAKilledRunIsRemovedByTheNext(t *testing.T) {
	dir := t.TempDir()
	cmd := siblingRunCommand(dir, nil, buildArgs("--artifact", "/big:dist", "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=400 2>/dev/null")...)
	out := newLineWatch("")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var partials []string
	for deadline := time.Now().Add(60 * time.Second); len(partials) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		partials, _ = filepath.Glob(filepath.Join(dir, "dist", ".sibling-run-partial-*"))
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Cleanup(func() { siblingRun(t, dir, nil, "reap", "--label", testLabel) })
	if len(partials) == 0 {
		t.Fatalf("no partial file appeared\n%s", out)
	}
	if _, err := os.Stat(partials[0]); err != nil {
		t.Fatalf("the killed copy's partial file is gone already: %v", err)
	}
	if r := siblingRun(t, dir, nil, buildArgs("true")...); r.code != 0 {
		t.Fatalf("the next run: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(partials[0]); !os.IsNotExist(err) {
		t.Errorf("the next run left the killed run's partial file %s (%v)", partials[0], err)
	}
}

// freeze stops the private dockerd with SIGSTOP, as a deadlocked daemon
// behaves, until thaw; the test's end thaws it in any case.
func (e *privateEngine) freeze(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freezing the private dockerd: %v", err)
	}
	t.Cleanup(func() { _ = e.cmd.Process.Signal(syscall.SIGCONT) })
}

func (e *privateEngine) thaw(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("thawing the private dockerd: %v", err)
	}
}

// lineWatch collects a process's output and closes seen once trigger has
// arrived ("\n": the first whole line; "": never).
type lineWatch struct {
	mu      sync.Mutex
	buf     strings.Builder
	trigger string
	seen    chan struct{}
	closed  bool
}

func newLineWatch(trigger string) *lineWatch {
	return &lineWatch{trigger: trigger, seen: make(chan struct{})}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.closed && w.trigger != "" && strings.Contains(w.buf.String(), w.trigger) {
		w.closed = true
		close(w.seen)
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
