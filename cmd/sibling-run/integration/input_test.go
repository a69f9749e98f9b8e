package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bad input gets one line that names the problem, exit code 125, and creates
// nothing on the engine.
func TestBadInputIsOneClearLineAndCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.env", []byte("GOOD=1\nBAD NAME=2\n"))
	if err := os.Symlink("/", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"unknown flag", []string{"--image", busyboxImage, "--no-such-flag", "true"}, "unknown flag --no-such-flag"},
		{"missing image", []string{"true"}, "--image"},
		{"pull never, absent image", []string{"--image", "sibling-run-test/absent:" + runID, "--pull", "never", "true"}, "--pull never"},
		{"bad pull policy", []string{"--image", busyboxImage, "--pull", "sometimes", "true"}, "--pull"},
		{"negative pull retries", []string{"--image", busyboxImage, "--pull-retries=-1", "true"}, "--pull-retries -1"},
		{"missing workdir", []string{"--image", busyboxImage, "--workdir", dir + "/absent", "true"}, dir + "/absent does not exist"},
		{"workdir is the root", []string{"--image", busyboxImage, "--workdir", "/", "true"}, "working directory / cannot be shared"},
		{"workdir is a file", []string{"--image", busyboxImage, "--workdir", dir + "/bad.env", "true"}, "not a directory"},
		{"malformed -e", []string{"--image", busyboxImage, "-e", "=value", "true"}, "no variable name"},
		{"malformed env file", []string{"--image", busyboxImage, "--env-file", dir + "/bad.env", "true"}, "line 2"},
		{"missing env file", []string{"--image", busyboxImage, "--env-file", dir + "/absent.env", "true"}, "absent.env"},
		{"bad memory", []string{"--image", busyboxImage, "--memory", "lots", "true"}, "--memory"},
		{"bad duration", []string{"--image", busyboxImage, "--stop-timeout", "soon", "true"}, "--stop-timeout"},
		{"reserved label", []string{"--image", busyboxImage, "--label", "sibling-run.owner=me", "true"}, "reserves"},
		{"absent volumes-from", []string{"--image", busyboxImage, "--volumes-from", "sibling-run-test-absent-" + runID, "true"}, "no such container"},
		{"artifact path not absolute", []string{"--image", busyboxImage, "--artifact", "out/report.xml", "true"}, "must be absolute"},
		{"artifact of the whole sibling", []string{"--image", busyboxImage, "--artifact", "/", "true"}, "whole filesystem"},
		{"artifact dest climbing out", []string{"--image", busyboxImage, "--artifact", "/out:../elsewhere", "true"}, "outside the working directory"},
		{"artifact dest absolute outside", []string{"--image", busyboxImage, "--artifact", "/out:" + filepath.Dir(dir) + "/elsewhere", "true"}, "outside the working directory"},
		{"artifact dest through a link out", []string{"--image", busyboxImage, "--artifact", "/out:escape/elsewhere", "true"}, "through a symbolic link"},
		{"bad artifact max size", []string{"--image", busyboxImage, "--artifact", "/out", "--artifact-max-size", "lots", "true"}, "--artifact-max-size"},
		{"bad user", []string{"--image", busyboxImage, "--user", "1:2:3", "true"}, "--user"},
		{"user out of range", []string{"--image", busyboxImage, "--user", "99999999999", "true"}, "out of range"},
		{"unreachable engine", []string{"--host", "unix://" + dir + "/no.sock", "--image", busyboxImage, "true"}, "cannot reach the Docker engine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, nil, tc.args...)
			if r.code != 125 {
				t.Errorf("exit code %d, want 125", r.code)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(r.stderr, tc.says) {
				t.Errorf("stderr should be one line saying %q, got:\n%s", tc.says, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || r.stdout != "" {
				t.Errorf("unexpected output: stdout %q, stderr %q", r.stdout, r.stderr)
			}
			assertCreatedNothing(t, r)
		})
	}
	for _, made := range []string{filepath.Dir(dir) + "/elsewhere", "/elsewhere", dir + "/out"} {
		if _, err := os.Lstat(made); err == nil {
			t.Errorf("bad input created %s", made)
		}
	}
}

// An engine address where something accepts connections but never answers
// must not hang a build: sibling-run gives up within seconds.
func TestSilentEngineIsReportedWithinSeconds(t *testing.T) {
	silent := silentListener(t)
	r := siblingRun(t, t.TempDir(), []string{"DOCKER_HOST=tcp://" + silent}, "--image", busyboxImage, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "no answer within") {
		t.Errorf("exit code %d, stderr %q; want 125 and a word that the engine did not answer", r.code, r.stderr)
	}
	if r.took > 15*time.Second {
		t.Errorf("took %s to give up on a silent engine", r.took)
	}
}

// A DOCKER_HOST where nothing listens is one line and 125 at once, and
// creates nothing: the variable is honoured like --host.
func TestDockerHostWhereNothingListensIsOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, host string
	}{
		{"absent socket", "unix://" + dir + "/absent.sock"},
		{"refused port", "tcp://" + closedPort(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, []string{"DOCKER_HOST=" + tc.host}, buildArgs("true")...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 125 || len(lines) != 1 || !strings.Contains(r.stderr, "cannot reach the Docker engine at "+tc.host+": nothing answers there") {
				t.Errorf("exit code %d, stderr:\n%s\nwant 125 and one line saying nothing answers at %s", r.code, r.stderr, tc.host)
			}
			if r.took > 15*time.Second {
				t.Errorf("took %s to give up on an engine that refuses connections", r.took)
			}
			assertCreatedNothing(t, r)
		})
	}
}

// closedPort returns a loopback address that refuses connections: a port
// the kernel just handed out and that nothing listens on any more.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
