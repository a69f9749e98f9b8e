package runner

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An env file in the working directory may be the build's: a link out of it
// is not followed (the agent's file would reach the build and --dry-run), and
// a fifo is refused at once instead of blocking the read.
func TestOpenEnvFileRefusesWhatABuildCouldPlant(t *testing.T) {
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	workdir, agent := filepath.Join(parent, "PLAN1"), filepath.Join(parent, "agent")
	mkdirs(t, workdir, "ci", "lib")
	mkdirs(t, agent, ".")
	writeFile(t, filepath.Join(agent, "agent.env"), "TOKEN=agent-token\n")
	writeFile(t, filepath.Join(workdir, "lib", "real.env"), "A=1\n")
	for name, target := range map[string]string{
		"ci/build.env":  filepath.Join(agent, "agent.env"),
		"ci/up.env":     "../../agent/agent.env",
		"ci/inside.env": "../lib/real.env",
		"out":           agent,
	} {
		if err := os.Symlink(target, filepath.Join(workdir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(workdir, "ci", "fifo.env"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The administrator's link into the working directory, outside it.
	admins := filepath.Join(parent, "current")
	if err := os.Symlink(workdir, admins); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, says string // says: "" when the file is read
	}{
		{filepath.Join(workdir, "ci/build.env"), "path escapes"},
		{filepath.Join(workdir, "ci/up.env"), "path escapes"},
		{filepath.Join(workdir, "out/agent.env"), "path escapes"},
		{filepath.Join(admins, "ci/build.env"), "path escapes"},
		{filepath.Join(workdir, "ci/fifo.env"), "named pipe"},
		{filepath.Join(workdir, "ci"), "a directory"},
		{filepath.Join(workdir, "ci/inside.env"), ""},
		{filepath.Join(admins, "lib/real.env"), ""},
		{filepath.Join(agent, "agent.env"), ""}, // the administrator's own file
	} {
		done := make(chan struct{})
		var got []string
		go func() {
			defer close(done)
			got, err = readEnvFile(tc.name, workdir, lookupIn(nil))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("reading %s blocks", tc.name)
		}
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%s: read %q, %v; want an error saying %q", tc.name, got, err, tc.says)
		}
	}
}

// An administrator's env file outside the working directory is trusted, but a
// fifo there is refused too rather than read.
func TestOpenEnvFileNeverBlocksOutsideTheWorkdir(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "agent.env")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := readEnvFile(fifo, t.TempDir(), lookupIn(nil))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("a fifo outside the working directory: %v, want a refusal", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a fifo outside the working directory blocks")
	}
}
