package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 21, item 2: a repository whose ci/build.env is a link to one of the
// agent's files, or a fifo. sibling-run, running as the agent, must neither
// hand the agent's lines to the build nor print them with --dry-run, nor
// block: it refuses at once with 125 and one line.
func TestAnEnvFileTheBuildPlantedIsRefused(t *testing.T) {
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	workdir, agentHome := filepath.Join(parent, "PLAN1"), filepath.Join(parent, "agent")
	for _, dir := range []string{filepath.Join(workdir, "ci"), agentHome} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	agentFile := filepath.Join(agentHome, "agent.env")
	if err := os.WriteFile(agentFile, []byte("AGENT_TOKEN=agent-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(agentFile, filepath.Join(workdir, "ci", "build.env")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../agent", filepath.Join(workdir, "ci", "conf")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(workdir, "ci", "fifo.env"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, says string }{
		{"ci/build.env", "links that lead out of it are not followed"},
		{"ci/conf/agent.env", "links that lead out of it are not followed"},
		{"ci/fifo.env", `env file "` + workdir + `/ci/fifo.env" is a named pipe (fifo)`},
	} {
		for _, mode := range []string{"--dry-run", "run"} {
			t.Run(tc.file+" "+mode, func(t *testing.T) {
				args := buildArgs("--env-file", tc.file)
				if mode == "--dry-run" {
					args = append(args, "--dry-run")
				}
				r := boundedSiblingRun(t, workdir, append(args, "--", "sh", "-c", "echo AGENT_TOKEN=$AGENT_TOKEN")...)
				assertRefused(t, r, tc.says)
				if strings.Contains(r.stdout+r.stderr, "agent-token-value") {
					t.Errorf("the agent's file reached the output:\n%s\n%s", r.stdout, r.stderr)
				}
				if r.took > 10*time.Second {
					t.Errorf("the refusal took %v", r.took)
				}
				assertCreatedNothing(t, r)
			})
		}
	}
	// The administrator's file outside the working directory is read as before.
	r := siblingRun(t, workdir, nil, buildArgs("--env-file", agentFile, "--", "sh", "-c", "echo AGENT_TOKEN=$AGENT_TOKEN")...)
	if r.code != 0 || !hasLine(r.stdout, "AGENT_TOKEN=agent-token-value") {
		t.Errorf("the administrator's env file: exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// boundedSiblingRun is siblingRun for a run that may hang: one that has not
// ended after a minute is killed and fails the test.
func boundedSiblingRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := siblingRunCommand(dir, nil, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := waitExitCode(t, cmd, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code, pid: cmd.Process.Pid, took: time.Since(start)}
}
