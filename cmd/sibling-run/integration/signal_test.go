package integration

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"sibling-run/runner"
)

// Bamboo stops a task with SIGTERM, a person with Ctrl-C: the build is
// stopped, the sibling removed, and sibling-run exits 143 or 130.
func TestSignalStopsTheBuildAndLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal syscall.Signal
		build  string
		want   int
	}{
		{"SIGTERM", syscall.SIGTERM, "echo ready; sleep 300", 143},
		{"SIGINT", syscall.SIGINT, "echo ready; sleep 300", 130},
		// A build that ignores the signal is killed once --stop-timeout is over.
		{"SIGTERM ignored", syscall.SIGTERM, "trap '' TERM INT; echo ready; while :; do sleep 1; done", 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, stderr := startSiblingRun(t, t.TempDir(), buildArgs("--stop-timeout", "2s", "sh", "-c", tc.build)...)
			pidLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
			if n := len(containersWith(t, testLabel, pidLabel)); n != 1 {
				t.Fatalf("%d siblings running, want 1", n)
			}
			if err := cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			if got := waitExitCode(t, cmd, stderr); got != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got, tc.want, stderr)
			}
			if left := containersWith(t, testLabel, pidLabel); len(left) > 0 {
				t.Errorf("the sibling is still there after %s", tc.name)
			}
			if strings.Contains(tc.name, "ignored") && !strings.Contains(stderr.String(), "killing it") {
				t.Errorf("stderr does not say the build was killed:\n%s", stderr)
			}
		})
	}
}

// When whoever reads sibling-run's output goes away (`sibling-run … | head`),
// the build is stopped and removed instead of blocking on a full pipe.
func TestClosedStdoutStopsTheBuildAndLeavesNothing(t *testing.T) {
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("sh", "-c", "yes a line of output")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := stdout.Read(make([]byte, 1024)); err != nil {
		t.Fatalf("no output: %v", err)
	}
	stdout.Close()
	if got := waitExitCode(t, cmd, &stderr); got != 125 || !strings.Contains(stderr.String(), "passing on the build's output") {
		t.Errorf("exit code %d, want 125 with a word about the output; stderr:\n%s", got, stderr.String())
	}
	if left := containersWith(t, testLabel, runner.LabelOwnerPID+"="+strconv.Itoa(cmd.Process.Pid)); len(left) > 0 {
		t.Error("the sibling is still there")
	}
}
