package runner

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/fakeengine"
)

// The fake engine stands where the Docker client does.
var _ Engine = (*fakeengine.Engine)(nil)

// shortBounds shortens every bound on the engine for one test, so that a
// stalled call is given up within a fraction of a second. Tests that call
// it must not run in parallel.
func shortBounds(t *testing.T) {
	t.Helper()
	bounds := []*time.Duration{
		&engineCallTimeout, &createTimeout, &startTimeout, &exitAfterKillTimeout,
		&exitAfterOutputTimeout, &outputDrainTimeout, &engineTimeout, &removeTimeout,
	}
	saved := make([]time.Duration, len(bounds))
	for i, b := range bounds {
		saved[i], *b = *b, 150*time.Millisecond
	}
	t.Cleanup(func() {
		for i, b := range bounds {
			*b = saved[i]
		}
	})
}

// lockedBuffer is a buffer that the output copier and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeRun is one run of the lifecycle against a fake engine.
type fakeRun struct {
	cfg                 Config
	stdout, stderr, log *lockedBuffer
}

func newFakeRun() *fakeRun {
	r := &fakeRun{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, log: &lockedBuffer{}}
	r.cfg = Config{
		Image:       "busybox",
		Command:     []string{"make"},
		StopTimeout: 50 * time.Millisecond,
		Stdout:      r.stdout,
		Stderr:      r.stderr,
		Log:         zerolog.New(r.log),
	}
	return r
}

// run runs the lifecycle with the orphans already cleared, and fails the
// test if it takes longer than a few of the short bounds.
func (r *fakeRun) run(t *testing.T, ctx context.Context, api Engine) (Result, error) {
	t.Helper()
	cleared := make(chan struct{})
	close(cleared)
	sp := spec{Config: &container.Config{Image: r.cfg.Image, WorkingDir: "/work"}, HostConfig: &container.HostConfig{}}
	started := time.Now()
	res, err := runSibling(ctx, api, r.cfg, sp, cleared)
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("the run took %s; every wait in it is bounded far below that", took)
	}
	return res, err
}

func exitCodeOf(err error) int {
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return -1
}

func checkCalls(t *testing.T, e *fakeengine.Engine, want ...string) {
	t.Helper()
	if got := e.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %v\nwant %v", got, want)
	}
}

// checkRemovedLast checks that the sibling's removal was the last call.
func checkRemovedLast(t *testing.T, e *fakeengine.Engine) {
	t.Helper()
	calls := e.Calls()
	if len(calls) == 0 || calls[len(calls)-1] != "ContainerRemove" {
		t.Errorf("the last call was not the removal: %v", calls)
	}
}

func TestLifecycleOrderOnSuccess(t *testing.T) {
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{Stdout: "out\n", Stderr: "err\n"})
	r := newFakeRun()
	res, err := r.run(t, context.Background(), e)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("got %v, %v; want exit 0", res, err)
	}
	checkCalls(t, e, "ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart", "ContainerRemove")
	if r.stdout.String() != "out\n" || r.stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q; want each stream on its own", r.stdout, r.stderr)
	}
}

func TestLifecycleBuildExitCode(t *testing.T) {
	for _, code := range []int64{1, 3, 125, 255} {
		e := fakeengine.New(t)
		e.Runs(&fakeengine.Build{ExitCode: code})
		res, err := newFakeRun().run(t, context.Background(), e)
		if err != nil || res.ExitCode != int(code) {
			t.Errorf("exit %d: got %v, %v", code, res, err)
		}
	}
}

func TestLifecycleKilledBuildIsCheckedForOOM(t *testing.T) {
	e := fakeengine.New(t)
	b := e.Runs(&fakeengine.Build{ExitCode: 137})
	e.ContainerInspectFunc = func(context.Context, string) (container.InspectResponse, error) {
		info := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: b.ID, State: &container.State{OOMKilled: true}, HostConfig: &container.HostConfig{}}}
		info.HostConfig.Memory = 64 << 20
		return info, nil
	}
	r := newFakeRun()
	res, err := r.run(t, context.Background(), e)
	if err != nil || res.ExitCode != 137 {
		t.Fatalf("got %v, %v; want 137", res, err)
	}
	checkCalls(t, e, "ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart", "ContainerInspect", "ContainerRemove")
	if !strings.Contains(r.log.String(), "ran out of memory") {
		t.Errorf("log does not say the build ran out of memory:\n%s", r.log)
	}
}

// TestLifecycleCallFails fails each call of the lifecycle in turn: the
// exit code names the failure, and what was created is removed last.
func TestLifecycleCallFails(t *testing.T) {
	shortBounds(t)
	boom := errors.New("boom")
	tests := []struct {
		name     string
		fault    func(e *fakeengine.Engine)
		wantCode int
		wantErr  string
		want     []string // the calls; nil: only that the removal is last
	}{
		{"create", func(e *fakeengine.Engine) { e.Fail("ContainerCreate", boom) },
			ExitToolFailure, "creating container for busybox: boom", []string{"ContainerCreate"}},
		{"create, image missing, --pull never", func(e *fakeengine.Engine) {
			e.Fail("ContainerCreate", cerrdefs.ErrNotFound)
			e.Fail("ImageInspect", cerrdefs.ErrNotFound)
		}, ExitToolFailure, "not on the engine and --pull never", []string{"ContainerCreate", "ImageInspect"}},
		{"create, engine gone", func(e *fakeengine.Engine) { e.Drop("ContainerCreate") },
			ExitToolFailure, "creating container for busybox", []string{"ContainerCreate"}},
		{"attach", func(e *fakeengine.Engine) { e.Fail("ContainerAttach", boom) },
			ExitToolFailure, "attaching to the sibling for busybox: boom", []string{"ContainerCreate", "ContainerAttach", "ContainerRemove"}},
		{"attach, engine gone", func(e *fakeengine.Engine) { e.Drop("ContainerAttach") },
			ExitToolFailure, "lost the Docker engine at " + fakeengine.Host + " while attaching", []string{"ContainerCreate", "ContainerAttach", "ContainerRemove"}},
		{"wait", func(e *fakeengine.Engine) { e.Fail("ContainerWait", boom) },
			ExitToolFailure, "while waiting for the build (boom)", nil},
		{"wait, engine gone", func(e *fakeengine.Engine) { e.Drop("ContainerWait") },
			ExitToolFailure, "lost the Docker engine", nil},
		{"start, command not found", func(e *fakeengine.Engine) {
			e.Fail("ContainerStart", errors.New(`exec: "make": executable file not found in $PATH`))
		}, ExitNotFound, `starting "make" in busybox`, []string{"ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart", "ContainerRemove"}},
		{"start, command not executable", func(e *fakeengine.Engine) {
			e.Fail("ContainerStart", errors.New("exec: permission denied"))
		}, ExitCannotInvoke, `starting "make" in busybox`, nil},
		{"start, other", func(e *fakeengine.Engine) { e.Fail("ContainerStart", boom) },
			ExitToolFailure, `starting "make" in busybox: boom`, nil},
		{"start, engine gone", func(e *fakeengine.Engine) { e.Drop("ContainerStart") },
			ExitToolFailure, "while starting the build", []string{"ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart", "ContainerRemove"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fakeengine.New(t)
			e.Runs(&fakeengine.Build{Stdout: "out\n"})
			r := newFakeRun()
			r.cfg.Pull = PullNever
			tt.fault(e)
			_, err := r.run(t, context.Background(), e)
			if code := exitCodeOf(err); code != tt.wantCode {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.wantCode)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want it to say %q", err, tt.wantErr)
			}
			if tt.want != nil {
				checkCalls(t, e, tt.want...)
			} else {
				checkRemovedLast(t, e)
			}
		})
	}
}

func TestLifecycleRemoveFailureKeepsTheExitCode(t *testing.T) {
	shortBounds(t)
	for _, fault := range []func(e *fakeengine.Engine){
		func(e *fakeengine.Engine) { e.Fail("ContainerRemove", errors.New("boom")) },
		func(e *fakeengine.Engine) { e.Stall("ContainerRemove") },
	} {
		e := fakeengine.New(t)
		e.Runs(&fakeengine.Build{ExitCode: 2})
		fault(e)
		r := newFakeRun()
		res, err := r.run(t, context.Background(), e)
		if err != nil || res.ExitCode != 2 {
			t.Errorf("got %v, %v; want exit 2", res, err)
		}
		if !strings.Contains(r.log.String(), "removing the sibling failed") {
			t.Errorf("the log does not say the removal failed:\n%s", r.log)
		}
	}
}

func TestLifecycleKeep(t *testing.T) {
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{})
	r := newFakeRun()
	r.cfg.Keep = true
	if _, err := r.run(t, context.Background(), e); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, e, "ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart")
	if !strings.Contains(r.log.String(), "kept the sibling") {
		t.Errorf("the log does not say the sibling was kept:\n%s", r.log)
	}
}

// TestLifecycleCancelAtEachStep cancels the run as each call arrives: the
// run returns the cause, a build that started is stopped with the cause's
// signal, and the sibling is removed last.
func TestLifecycleCancelAtEachStep(t *testing.T) {
	shortBounds(t)
	created := []string{"ContainerCreate"}
	attached := append(created, "ContainerAttach", "ContainerWait")
	tests := []struct {
		at   string
		want []string
	}{
		{"ContainerCreate", append(created, "ContainerRemove")},
		{"ContainerAttach", append(attached, "ContainerRemove")},
		{"ContainerWait", append(attached, "ContainerRemove")},
		{"ContainerStart", append(attached, "ContainerStart", "ContainerKill", "ContainerRemove")},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			e := fakeengine.New(t)
			e.Runs(&fakeengine.Build{UntilSignalled: true})
			var signals []string
			kill := e.ContainerKillFunc
			e.ContainerKillFunc = func(ctx context.Context, id, signal string) error {
				signals = append(signals, signal)
				return kill(ctx, id, signal)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			e.Before(tt.at, func() { cancel(Interrupted(syscall.SIGINT)) })
			_, err := newFakeRun().run(t, ctx, e)
			var interrupt *InterruptError
			if !errors.As(err, &interrupt) || interrupt.Signal != syscall.SIGINT {
				t.Errorf("got %v, want the interrupt", err)
			}
			checkCalls(t, e, tt.want...)
			if slices.Contains(tt.want, "ContainerKill") && !slices.Equal(signals, []string{"SIGINT"}) {
				t.Errorf("signals sent %v, want SIGINT", signals)
			}
		})
	}
}

func TestLifecycleCancelWhileTheBuildRuns(t *testing.T) {
	shortBounds(t)
	for _, ignoresTERM := range []bool{false, true} {
		e := fakeengine.New(t)
		e.Runs(&fakeengine.Build{Stdout: "running\n", UntilSignalled: true, IgnoreSIGTERM: ignoresTERM})
		var signals []string
		kill := e.ContainerKillFunc
		e.ContainerKillFunc = func(ctx context.Context, id, signal string) error {
			signals = append(signals, signal)
			return kill(ctx, id, signal)
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		r := newFakeRun()
		go func() {
			for !strings.Contains(r.stdout.String(), "running") {
				time.Sleep(time.Millisecond)
			}
			cancel(Interrupted(syscall.SIGTERM))
		}()
		_, err := r.run(t, ctx, e)
		var interrupt *InterruptError
		if !errors.As(err, &interrupt) {
			t.Errorf("got %v, want the interrupt", err)
		}
		want := []string{"SIGTERM"}
		if ignoresTERM {
			want = append(want, "SIGKILL")
		}
		if !slices.Equal(signals, want) {
			t.Errorf("ignores SIGTERM %v: signals %v, want %v", ignoresTERM, signals, want)
		}
		checkRemovedLast(t, e)
	}
}

func TestLifecycleTimeout(t *testing.T) {
	shortBounds(t)
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{UntilSignalled: true})
	r := newFakeRun()
	r.cfg.Timeout = 50 * time.Millisecond
	_, err := r.run(t, context.Background(), e)
	var timeout *TimeoutError
	if !errors.As(err, &timeout) || timeout.After != r.cfg.Timeout {
		t.Errorf("got %v, want a timeout after %s", err, r.cfg.Timeout)
	}
	checkCalls(t, e, "ContainerCreate", "ContainerAttach", "ContainerWait", "ContainerStart", "ContainerKill", "ContainerRemove")
}

// TestLifecycleStalledCall stalls each call in turn: the run gives up
// within the call's bound, with an error that names what did not answer,
// and removes what it created.
func TestLifecycleStalledCall(t *testing.T) {
	shortBounds(t)
	tests := []struct {
		call    string
		build   *fakeengine.Build
		cancel  bool // cancel the run once the build started
		wantErr string
	}{
		{"ContainerCreate", &fakeengine.Build{}, false, "did not create the sibling within"},
		{"ContainerAttach", &fakeengine.Build{}, false, "did not attach to the sibling within"},
		{"ContainerWait", &fakeengine.Build{}, false, "did not answer the wait for the build's exit within"},
		{"ContainerStart", &fakeengine.Build{}, false, "did not start the build within"},
		{"ContainerKill", &fakeengine.Build{UntilSignalled: true}, true, "did not answer the kill that stops the build within"},
	}
	for _, tt := range tests {
		t.Run(tt.call, func(t *testing.T) {
			e := fakeengine.New(t)
			e.Runs(tt.build)
			e.Stall(tt.call)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				e.Before("ContainerStart", cancel)
			}
			_, err := newFakeRun().run(t, ctx, e)
			if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want a tool failure saying %q", err, tt.wantErr)
			}
			if tt.call != "ContainerCreate" {
				checkRemovedLast(t, e)
			}
		})
	}
}

func TestLifecycleExitNeverReportedAfterTheOutput(t *testing.T) {
	shortBounds(t)
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{Stdout: "done\n"})
	e.ContainerWaitFunc = func(context.Context, string, container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
		return nil, nil // an exit that never comes
	}
	r := newFakeRun()
	_, err := r.run(t, context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "did not report the build's exit after its output ended") {
		t.Errorf("got %v", err)
	}
	if r.stdout.String() != "done\n" {
		t.Errorf("stdout %q, want the build's output", r.stdout)
	}
	checkRemovedLast(t, e)
}

func TestLifecycleOutputNeverEndsAfterTheExit(t *testing.T) {
	shortBounds(t)
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{UntilSignalled: true}) // its stream stays open
	e.ContainerWaitFunc = func(context.Context, string, container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
		c := make(chan container.WaitResponse, 1)
		c <- container.WaitResponse{}
		return c, nil
	}
	_, err := newFakeRun().run(t, context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "did not end the build's output after its exit") {
		t.Errorf("got %v", err)
	}
	checkRemovedLast(t, e)
}

func TestLifecycleWaitErrorFromTheEngine(t *testing.T) {
	e := fakeengine.New(t)
	e.Runs(&fakeengine.Build{})
	wait := e.ContainerWaitFunc
	e.ContainerWaitFunc = func(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
		got, _ := wait(ctx, id, cond)
		c := make(chan container.WaitResponse, 1)
		go func() {
			<-got
			c <- container.WaitResponse{StatusCode: 0, Error: &container.WaitExitError{Message: "cleanup failed"}}
		}()
		return c, nil
	}
	_, err := newFakeRun().run(t, context.Background(), e)
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "waiting for the build: cleanup failed") {
		t.Errorf("got %v", err)
	}
	checkRemovedLast(t, e)
}

// The fake's dropped connection is the client's own.
func TestFakeEngineDropIsAConnectionFailure(t *testing.T) {
	if !client.IsErrConnectionFailed(fakeengine.ConnectionFailed(fakeengine.Host)) {
		t.Fatal("client.IsErrConnectionFailed does not recognise the fake's dropped connection")
	}
}
