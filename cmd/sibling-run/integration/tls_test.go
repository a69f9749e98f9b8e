package integration

// The same cases as on the local engine, on a remote one: a private dockerd
// reached over TCP with TLS that cannot see the working directory (see
// tls_engine_test.go). One engine serves every case, in subtests.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"sibling-run/runner"
	"sibling-run/runner/testpki"
)

func TestRemoteEngineOverTLS(t *testing.T) {
	firstPassOnly(t, "it starts an engine of its own")
	e := startTLSEngine(t)
	// The private engine has no bridge, hence --network none.
	args := func(extra ...string) []string { return buildArgs(append([]string{"--network", "none"}, extra...)...) }
	workdir := func(t *testing.T) string {
		dir, err := os.MkdirTemp(e.hidden, "work-")
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("exit codes and streams", func(t *testing.T) {
		dir := workdir(t)
		for _, tt := range []struct {
			script string
			code   int
		}{{"echo out; echo err >&2", 0}, {"echo out; echo err >&2; exit 3", 3}} {
			r := siblingRun(t, dir, e.env(e.certs), args("sh", "-c", tt.script)...)
			if r.code != tt.code || r.stdout != "out\n" || !strings.Contains("\n"+r.stderr, "\nerr\n") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, out, err", tt.script, r.code, r.stdout, r.stderr, tt.code)
			}
		}
		r := siblingRun(t, dir, e.env(e.certs), args("no-such-command")...)
		if r.code != 127 {
			t.Errorf("a missing command: exit %d, want 127; stderr:\n%s", r.code, r.stderr)
		}
		e.assertNothingLeft(t)
	})

	t.Run("the working directory goes and comes back", func(t *testing.T) {
		dir := workdir(t)
		write := func(name, data string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("input", "from the agent\n")
		write("doomed", "the build removes this\n")
		r := siblingRun(t, dir, e.env(e.certs), args("sh", "-c", "cat input && echo built > output && chmod 0750 output && rm doomed")...)
		if r.code != 0 || r.stdout != "from the agent\n" {
			t.Fatalf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "output")); err != nil || string(data) != "built\n" {
			t.Errorf("the build's output: %q, %v", data, err)
		}
		if info, err := os.Stat(filepath.Join(dir, "output")); err != nil || info.Mode().Perm() != 0o750 {
			t.Errorf("the output's mode: %v, %v; want 0750", info.Mode(), err)
		}
		if _, err := os.Stat(filepath.Join(dir, "doomed")); !os.IsNotExist(err) {
			t.Errorf("the file the build removed is still here: %v", err)
		}
		e.assertNothingLeft(t)
	})

	t.Run("the build gets no TLS variable and no key", func(t *testing.T) {
		dir := workdir(t)
		r := siblingRun(t, dir, append(e.env(e.certs), "DOCKER_TLS=1"),
			args("sh", "-c", "env; find / -xdev -name '*.pem' 2>/dev/null; grep -rl 'PRIVATE KEY' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; true")...)
		if r.code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		for _, leak := range []string{"DOCKER_", ".pem", e.certs} {
			if strings.Contains(r.stdout, leak) {
				t.Errorf("the build sees %q:\n%s", leak, r.stdout)
			}
		}
		r = siblingRun(t, dir, e.env(e.certs), args("--docker", "true")...)
		assertRefused(t, r, "sibling-run does not hand its client key to a build")
		e.assertCreatedNothing(t, r)
	})

	t.Run("certificate problems", func(t *testing.T) {
		dir := workdir(t)
		stranger := testpki.NewCA("another CA")
		wrongCA, err := testpki.WriteClientDir(filepath.Join(t.TempDir(), "wrong-ca"), stranger, e.ca.Issue(testpki.Options{Name: "agent"}))
		if err != nil {
			t.Fatal(err)
		}
		noClient := e.clientCerts(t, e.ca.Issue(testpki.Options{Name: "agent"}))
		for _, name := range []string{"cert.pem", "key.pem"} {
			if err := os.Remove(filepath.Join(noClient, name)); err != nil {
				t.Fatal(err)
			}
		}
		expired := e.clientCerts(t, e.ca.Issue(testpki.Options{Name: "agent", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
		inside := filepath.Join(dir, ".docker")
		if _, err := testpki.WriteClientDir(inside, e.ca, e.ca.Issue(testpki.Options{Name: "agent"})); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			env  []string
			says string
		}{
			{"engine signed by another CA", e.env(wrongCA), "not by the CA in " + wrongCA + "/ca.pem"},
			{"no client certificate", e.env(noClient), noClient + "/cert.pem does not exist"},
			{"expired client certificate", e.env(expired), expired + "/cert.pem expired on"},
			{"certificates in the working directory", e.env(inside), "are inside the working directory"},
			{"TLS engine without TLS", []string{"DOCKER_HOST=" + e.host}, "speaks TLS, and sibling-run connected without it"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := siblingRun(t, dir, tt.env, args("true")...)
				assertRefused(t, r, tt.says)
				e.assertCreatedNothing(t, r)
			})
		}
	})

	t.Run("SIGTERM and timeout leave nothing", func(t *testing.T) {
		dir := workdir(t)
		cmd, stderr := startWithEnv(t, dir, e.env(e.certs), args("sh", "-c", "echo started; exec sleep 120")...)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := waitExitCode(t, cmd, stderr); code != 143 {
			t.Errorf("SIGTERM: exit %d, want 143; stderr:\n%s", code, stderr)
		}
		e.assertNothingLeft(t)
		r := siblingRun(t, dir, e.env(e.certs), args("--timeout", "2s", "sleep", "120")...)
		if r.code != 124 {
			t.Errorf("--timeout: exit %d, want 124; stderr:\n%s", r.code, r.stderr)
		}
		e.assertNothingLeft(t)
	})

	t.Run("SIGKILL then reap with the same DOCKER_HOST", func(t *testing.T) {
		dir := workdir(t)
		cmd, stderr := startWithEnv(t, dir, e.env(e.certs), args("sh", "-c", "echo started; exec sleep 120")...)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = waitExitCode(t, cmd, stderr)
		if c, v := e.left(t); len(c) == 0 || len(v) == 0 {
			t.Fatalf("after SIGKILL, the sibling and its volume should be left for reap: containers %v, volumes %v", c, v)
		}
		r := siblingRun(t, dir, e.env(e.certs), "reap", "--label", testLabel)
		if r.code != 0 {
			t.Fatalf("reap: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		e.assertNothingLeft(t)
	})
}

// left names the containers and volumes with testLabel on the engine.
func (e *tlsEngine) left(t *testing.T, labels ...string) (containers, volumes []string) {
	t.Helper()
	ctx := context.Background()
	args := filters.NewArgs(filters.Arg("label", testLabel))
	for _, l := range labels {
		args.Add("label", l)
	}
	cs, err := e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		t.Fatalf("listing the TLS engine's containers: %v", err)
	}
	for _, c := range cs {
		containers = append(containers, c.Names...)
	}
	vs, err := e.api.VolumeList(ctx, volume.ListOptions{Filters: args})
	if err != nil {
		t.Fatalf("listing the TLS engine's volumes: %v", err)
	}
	for _, v := range vs.Volumes {
		volumes = append(volumes, v.Name)
	}
	return containers, volumes
}

func (e *tlsEngine) assertNothingLeft(t *testing.T) {
	t.Helper()
	if c, v := e.left(t); len(c)+len(v) > 0 {
		t.Errorf("left on the TLS engine: containers %v, volumes %v", c, v)
	}
}

// assertCreatedNothing fails t if the sibling-run process of r made a
// container or a volume on the engine (its owner labels name them).
func (e *tlsEngine) assertCreatedNothing(t *testing.T, r result) {
	t.Helper()
	if c, v := e.left(t, runner.LabelOwnerPID+"="+strconv.Itoa(r.pid)); len(c)+len(v) > 0 {
		t.Errorf("sibling-run (pid %d) created containers %v, volumes %v", r.pid, c, v)
	}
}
