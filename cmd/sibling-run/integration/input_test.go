package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bad input gets one line that names the problem, exit code 125, and creates
// nothing on the engine.
func TestBadInputIsOneClearLineAndCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.env", []byte("GOOD=1\nBAD NAME=2\n"))
	writeFile(t, dir, "nul-secret.env", []byte("GOOD=1\nMY_PASSWORD=TOPS3CR\x00ET\n"))
	if err := os.Symlink("/", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"unknown flag", []string{"--image", busyboxImage, "--no-such-flag", "true"}, "unknown flag --no-such-flag"},
		{"docker run's --rm", []string{"--rm", "--image", busyboxImage, "true"}, "unknown flag --rm: sibling-run always removes the sibling"},
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
		{"label without key", []string{"--image", busyboxImage, "--label", "=x", "true"}, `--label "=x" has no key`},
		{"reap label without key", []string{"reap", "--label", "=x"}, `--label "=x" has no key`},
		{"cache ls label without key", []string{"cache", "ls", "--label", "=x"}, `--label "=x" has no key`},
		{"bad shm size", []string{"--image", busyboxImage, "--shm-size", "0", "true"}, `--shm-size "0" is not a size`},
		{"tmpfs relative", []string{"--image", busyboxImage, "--tmpfs", "scratch:size=1m", "true"}, `--tmpfs "scratch:size=1m" needs an absolute path`},
		{"tmpfs twice", []string{"--image", busyboxImage, "--tmpfs", "/scratch", "--tmpfs", "/scratch/:size=1m", "true"}, "--tmpfs mounts /scratch a second time"},
		{"tmpfs over the workdir", []string{"--image", busyboxImage, "--tmpfs", dir, "true"}, "hide"},
		{"service without image", []string{"--image", busyboxImage, "--service", "=db", "true"}, `--service "=db" names no image`},
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
		{"engine over ssh", []string{"--host", "ssh://builder@buildhost", "--image", busyboxImage, "true"}, "unix:// or tcp:// only"},
		{"empty image", []string{"--image", "", "true"}, "--image is empty"},
		{"blank image", []string{"--image", " ", "true"}, "--image is empty"},
		{"absent network", []string{"--image", busyboxImage, "--network", "sibling-run-test-absent-" + runID, "true"}, "no such network"},
		{"absent network container", []string{"--image", busyboxImage, "--network", "container:sibling-run-test-absent-" + runID, "true"}, "no such container"},
		{"negative stop timeout", []string{"--image", busyboxImage, "--stop-timeout=-1s", "true"}, "--stop-timeout -1s is negative"},
		{"NUL in a secret from an env file", []string{"--image", busyboxImage, "--env-file", dir + "/nul-secret.env", "true"}, "line 2: the value of MY_PASSWORD contains a NUL byte"},
		{"secret in a malformed -e", []string{"--image", busyboxImage, "-e", "MY_PASSWORD TOPS3CR", "true"}, "-e number 1: the variable name contains white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, nil, tc.args...)
			assertRefused(t, r, tc.says)
			if strings.Contains(r.stderr, "TOPS3CR") {
				t.Errorf("a secret's value was printed:\n%s", r.stderr)
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

// A build command spelled like one of sibling-run's own commands, after
// run's flags, runs in the build (here: is not found there, 127); before,
// `run` ran the image's CMD and passed, and `version` was refused.
func TestBuildCommandNamedLikeASubcommandRunsInTheBuild(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"reap"}, {"version"}, {"wait-tcp", "db:5432"}, {"--", "version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := siblingRun(t, t.TempDir(), nil, buildArgs(args...)...)
			word := args[len(args)-1]
			if len(args) == 2 && args[0] != "--" {
				word = args[0]
			}
			if r.code != 127 || !strings.Contains(r.stderr, "exec "+word+" failed") {
				t.Errorf("exit code %d, want 127 from the build trying to run %s; stderr:\n%s", r.code, word, r.stderr)
			}
		})
	}
}

// A user name that the image lacks can only be found out by the engine, on
// a created sibling: the run fails with 125 naming the user, and removes it.
func TestAbsentUserNameIsRefusedAndRemoved(t *testing.T) {
	label := "sibling-run-test.user=" + randomHex(4)
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--label", label, "--user", "nosuchuser", "true")...)
	if r.code != 125 || !strings.Contains(r.stderr, "nosuchuser") {
		t.Errorf("exit code %d, want 125 and a line naming nosuchuser; stderr:\n%s", r.code, r.stderr)
	}
	if left := containersWith(t, label); len(left) > 0 {
		t.Errorf("the sibling %.12s was left behind", left[0].ID)
	}
}

// A user outside the socket's group is told so, with the group to join, not
// that nothing answers: the engine is there, the permission is missing.
func TestSocketWithoutPermissionNamesItsGroup(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs sibling-run as another uid, which needs root (CI runs as root)")
	}
	dir, err := os.MkdirTemp("", "sibling-run-socket-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "engine.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := os.Chmod(socket, 0o660); err != nil {
		t.Fatal(err)
	}
	// The binary's own directory is root's alone: the other uid gets a copy.
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "sibling-run")
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := siblingRunCommand(dir, []string{"DOCKER_HOST=unix://" + socket}, "--image", busyboxImage, "true")
	cmd.Path, cmd.Args[0] = copied, copied
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("running sibling-run as uid 4242: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code := cmd.ProcessState.ExitCode(); code != 125 || len(lines) != 1 ||
		!strings.Contains(stderr.String(), "permission denied on the Docker engine's socket "+socket) ||
		!strings.Contains(stderr.String(), "belongs to group 0") {
		t.Errorf("exit %d, stderr:\n%s\nwant 125 and one line naming the socket's permission and group", code, stderr.String())
	}
}
