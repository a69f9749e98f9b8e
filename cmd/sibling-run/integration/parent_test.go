package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sibling-run/runner"
)

// An agent that stops only the task's shell, its direct child, must stop the
// build too: sibling-run stops it as on SIGTERM, removes it and exits 143.
// The test process becomes a subreaper, so the orphaned sibling-run is
// re-parented to it and its exit code can be read.
func TestParentDeathStopsTheBuildAndLeavesNothing(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("becoming a subreaper: %v", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()

	args := buildArgs("--stop-timeout", "2s", "sh", "-c", "echo ready; sleep 300")
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + a + "'"
	}
	// "; echo after" keeps the shell from exec'ing sibling-run in its place.
	shell := exec.Command("sh", "-c", binary+" "+strings.Join(quoted, " ")+"; echo after")
	shell.Dir = t.TempDir()
	shell.Env = siblingRunCommand(shell.Dir, nil).Env
	// sibling-run keeps writing to stderr after the shell is gone: a pipe of
	// the test's own, so that waiting for the shell does not wait for it.
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	shell.Stderr = errW
	stdout, err := shell.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = shell.Start()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		b := make([]byte, 4096)
		for {
			n, err := errR.Read(b)
			stderr.WriteString(string(b[:n]))
			if err != nil {
				return
			}
		}
	}()
	lines := bufio.NewReader(stdout)
	if line, _ := lines.ReadString('\n'); line != "ready\n" {
		_ = shell.Process.Kill()
		t.Fatalf("the build did not start: %q; stderr:\n%s", line, stderr.String())
	}
	siblings := containersWith(t, testLabel, runner.LabelOwner+"=host:"+hostname(t))
	pid := 0
	for _, c := range siblings {
		if p, _ := strconv.Atoi(c.Labels[runner.LabelOwnerPID]); isChildOf(p, shell.Process.Pid) {
			pid = p
		}
	}
	if pid == 0 {
		t.Fatalf("no sibling whose sibling-run is the shell's child")
	}
	pidLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(pid)

	if err := shell.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = shell.Wait()
	if shell.ProcessState.ExitCode() != -1 {
		t.Fatalf("the shell did not die of SIGTERM: %v", shell.ProcessState)
	}
	code := waitOrphan(t, pid)
	<-stderrDone
	if code != 143 {
		t.Errorf("sibling-run exited %d after its parent died, want 143; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "parent process is gone; stopping the build") {
		t.Errorf("stderr does not say why the build stopped:\n%s", stderr.String())
	}
	if left := containersWith(t, testLabel, pidLabel); len(left) > 0 {
		t.Errorf("the sibling is still there after its sibling-run's parent died")
	}
}

// The kernel's parent-death signal comes when the thread that started
// sibling-run ends, not its process: a multithreaded parent (a JVM's worker
// thread) may end that thread and live on, and under docker exec the parent
// is the runtime outside the container, which ends as soon as the command
// runs. Neither is the task dying: the build runs to its end and its exit
// code passes through.
func TestAParentThreadEndingDoesNotStopTheBuild(t *testing.T) {
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("sh", "-c", "echo ready; sleep 2; exit 7")...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	started, endThread := make(chan error), make(chan struct{})
	go func() {
		// Never unlocked: the thread that forks sibling-run ends with this
		// goroutine, while the test's process lives on.
		runtime.LockOSThread()
		started <- cmd.Start()
		<-endThread
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	if line, _ := lines.ReadString('\n'); line != "ready\n" {
		_ = cmd.Process.Kill()
		t.Fatalf("the build did not start: %q; stderr:\n%s", line, stderr.String())
	}
	close(endThread)
	_, _ = io.Copy(io.Discard, lines)
	if code := waitExitCode(t, cmd, &stderr); code != 7 {
		t.Errorf("sibling-run exited %d after the thread that started it ended, want the build's 7; stderr:\n%s", code, stderr.String())
	}
}

// waitOrphan waits for the re-parented process pid and returns its exit
// code (128+n for a signal), or fails after a minute.
func waitOrphan(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var status syscall.WaitStatus
		got, err := syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
		if err != nil {
			t.Fatalf("waiting for sibling-run (pid %d): %v", pid, err)
		}
		if got == pid {
			if status.Signaled() {
				return 128 + int(status.Signal())
			}
			return status.ExitStatus()
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("sibling-run (pid %d) still runs a minute after its parent died", pid)
	return -1
}

func isChildOf(pid, parent int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 1 && fields[1] == strconv.Itoa(parent)
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
