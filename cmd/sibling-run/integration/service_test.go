package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"sibling-run/runner"
)

// serviceImage builds an image FROM the test's busybox image (itself FROM
// scratch) with the Dockerfile lines given, and removes it after the test.
func serviceImage(t *testing.T, name string, lines ...string) string {
	t.Helper()
	tag := "sibling-run-test/" + name + ":" + runID
	dockerfile := "FROM " + busyboxImage + "\n" + strings.Join(lines, "\n") + "\n"
	if err := buildImage(context.Background(), tag, map[string][]byte{"Dockerfile": []byte(dockerfile)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = api.ImageRemove(context.Background(), tag, image.RemoveOptions{PruneChildren: true})
	})
	return tag
}

// webImage serves /www/file over HTTP on port 8080, which it exposes, after
// saying so on its output.
func webImage(t *testing.T) string {
	return serviceImage(t, "web",
		"RUN mkdir /www && echo hello from web > /www/file",
		"EXPOSE 8080",
		`CMD ["sh", "-c", "echo web is up; exec httpd -f -p 8080 -h /www"]`)
}

// assertNothingLeft fails if containers or networks with all labels remain.
func assertNothingLeft(t *testing.T, labels ...string) {
	t.Helper()
	if left := containersWith(t, labels...); len(left) > 0 {
		var names []string
		for _, c := range left {
			names = append(names, c.Names[0])
		}
		t.Errorf("containers left behind: %v", names)
	}
	if left := networksWith(t, labels...); len(left) > 0 {
		t.Errorf("%d networks left behind, the first %s", len(left), left[0].Name)
	}
}

func pidLabel(pid int) string { return runner.LabelOwnerPID + "=" + strconv.Itoa(pid) }

// The build reaches a service by its alias, derived from the image's name or
// given, once the service accepts connections on its exposed port. The
// service's output shows only at debug level.
func TestBuildReachesServiceByAlias(t *testing.T) {
	web := webImage(t)
	for _, tc := range []struct {
		name, flag, host, level string
		showsOutput             bool
	}{
		{"derived alias", web, "web", "info", false},
		{"given alias, debug", web + "=files", "files", "debug", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, t.TempDir(), nil, buildArgs("--log-level", tc.level, "--service", tc.flag, "wget", "-qO-", "http://"+tc.host+":8080/file")...)
			if got := strings.Contains(r.stderr, "web is up"); got != tc.showsOutput {
				t.Errorf("the service's output in sibling-run's log: %v, want %v; stderr:\n%s", got, tc.showsOutput, r.stderr)
			}
			if r.code != 0 || strings.TrimSpace(r.stdout) != "hello from web" {
				t.Errorf("exit %d, stdout %q; want the file from the service; stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "service ready") {
				t.Errorf("stderr does not say the service was ready:\n%s", r.stderr)
			}
		})
	}
	assertNothingLeft(t, testLabel)
}

// A service that starts listening only after a while is waited for: the
// build's first connection succeeds.
func TestSlowServiceIsWaitedFor(t *testing.T) {
	slow := serviceImage(t, "slowweb",
		"RUN mkdir /www && echo late > /www/file",
		"EXPOSE 8080",
		`CMD ["sh", "-c", "sleep 2; exec httpd -f -p 8080 -h /www"]`)
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--service", slow+"=web", "wget", "-qO-", "http://web:8080/file")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "late" {
		t.Errorf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	assertNothingLeft(t, testLabel)
}

// An image with a HEALTHCHECK is ready when the engine reports it healthy,
// not before.
func TestServiceWithHealthcheckBecomesHealthy(t *testing.T) {
	notUnderPodman(t, "Podman 4.3 runs HEALTHCHECKs only through systemd, which this machine lacks (see the README)")
	healthy := serviceImage(t, "healthy",
		"RUN mkdir /www && echo healthy > /www/file",
		`HEALTHCHECK --interval=1s --timeout=1s --retries=30 CMD wget -qO- http://127.0.0.1:8080/file`,
		`CMD ["sh", "-c", "sleep 2; exec httpd -f -p 8080 -h /www"]`)
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--service", healthy+"=db", "wget", "-qO-", "http://db:8080/file")...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "healthy" {
		t.Errorf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	assertNothingLeft(t, testLabel)
}

// A service that fails shows why: 125, its name, and its last output.
func TestFailingServiceIsNamedWithItsOutput(t *testing.T) {
	silent := serviceImage(t, "silent", "EXPOSE 9999", `CMD ["sh", "-c", "echo listening soon; sleep 300"]`)
	exits := serviceImage(t, "exits", "EXPOSE 5432", `CMD ["sh", "-c", "echo configuration is broken >&2; exit 3"]`)
	unhealthy := serviceImage(t, "unhealthy", `HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD sh -c "echo not today; exit 1"`, `CMD ["sleep", "300"]`)
	for _, tc := range []struct {
		name    string
		service string
		says    []string
		within  time.Duration
		flags   []string
	}{
		{"never ready", silent + "=quiet", []string{"service quiet", "not ready within 3s", "quiet:9999", "listening soon"}, 20 * time.Second, nil},
		{"exits at once", exits + "=pg", []string{"service pg", "exited with code 3", "configuration is broken"}, 20 * time.Second, nil},
		{"unhealthy", unhealthy + "=sick", []string{"service sick", "unhealthy", "not today"}, 20 * time.Second, nil},
		// --pull never: the tests reach no registry but their own.
		{"absent image", "sibling-run-test/absent:" + runID + "=gone", []string{"service gone", "not on the engine"}, 20 * time.Second, []string{"--pull", "never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unhealthy" {
				notUnderPodman(t, "Podman 4.3 runs HEALTHCHECKs only through systemd, which this machine lacks (see the README)")
			}
			args := append([]string{"--service", tc.service, "--service-timeout", "3s"}, tc.flags...)
			r := siblingRun(t, t.TempDir(), nil, buildArgs(append(args, "echo", "the build ran")...)...)
			if r.code != 125 || strings.Contains(r.stdout, "the build ran") {
				t.Errorf("exit %d, stdout %q; want 125 and no build; stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, want := range tc.says {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if r.took > tc.within {
				t.Errorf("took %s, want under %s", r.took, tc.within)
			}
		})
	}
	assertNothingLeft(t, testLabel)
}

// SIGTERM while a service is being waited for ends sibling-run promptly and
// removes the service, the readiness check and the network; the build never
// starts.
func TestSignalWhileWaitingForServiceLeavesNothing(t *testing.T) {
	silent := serviceImage(t, "silent", "EXPOSE 9999", `CMD ["sleep", "300"]`)
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("--service", silent+"=quiet", "--service-timeout", "120s", "echo", "the build ran")...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mine := pidLabel(cmd.Process.Pid)
	// The readiness check runs once the waiter container exists.
	deadline := time.Now().Add(30 * time.Second)
	for len(containersWith(t, mine, runner.LabelRole+"=waiter")) == 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no readiness check started within 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExitCode(t, cmd, &stderr); code != 143 {
		t.Errorf("exit %d, want 143; stderr:\n%s", code, stderr.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %s to stop after SIGTERM", took)
	}
	if strings.Contains(stdout.String(), "the build ran") {
		t.Error("the build ran after SIGTERM")
	}
	assertNothingLeft(t, mine)
	assertNothingLeft(t, testLabel)
}

// --network and --service exclude each other; bad service flags are refused
// before anything is created.
func TestBadServiceFlagsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"with --network", []string{"--network", "host", "--service", "web"}, "--network"},
		{"duplicate alias", []string{"--service", "a/web:1", "--service", "b/web:2"}, "alias web"},
		{"bad alias", []string{"--service", "web=no_underscores"}, "DNS label"},
		{"no service timeout", []string{"--service", "web", "--service-timeout", "0s"}, "--service-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, t.TempDir(), nil, buildArgs(append(tc.args, "true")...)...)
			if r.code != 125 || !strings.Contains(r.stderr, tc.says) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want 125 and one line about %s", r.code, r.stderr, tc.says)
			}
			assertCreatedNothing(t, r)
		})
	}
	assertNothingLeft(t, testLabel)
}

// Inside an agent container, on another network than the build's, the TCP
// readiness check still works: it runs inside the engine.
func TestServiceFromInsideAnAgent(t *testing.T) {
	web := webImage(t)
	data := createDataContainer(t, "/builds")
	script := "mkdir -p /builds/job && cd /builds/job && " + agentSiblingRun("--service "+web+"=web", "wget -qO- http://web:8080/file") + "; echo exit=$?"
	out, code := runAgent(t, data, "host", script)
	if code != 0 || !hasLine(out, "hello from web") || !hasLine(out, "exit=0") {
		t.Errorf("agent exited %d; want the service's file and exit=0:\n%s", code, out)
	}
	assertNothingLeft(t, testLabel, runner.LabelManaged+"=true")
}

// A sibling-run killed with SIGKILL leaves its build, service and network;
// reap removes all three.
func TestReapRemovesServicesAndNetworks(t *testing.T) {
	web := webImage(t)
	killed, _ := startSiblingRun(t, t.TempDir(), buildArgs("--service", web, "sh", "-c", "echo ready; sleep 300")...)
	mine := pidLabel(killed.Process.Pid)
	_ = killed.Process.Signal(syscall.SIGKILL)
	_ = killed.Wait()
	if n := len(containersWith(t, mine)); n != 2 {
		t.Fatalf("%d containers after SIGKILL, want the sibling and its service", n)
	}
	nets := networksWith(t, mine)
	if len(nets) != 1 {
		t.Fatalf("%d networks after SIGKILL, want 1", len(nets))
	}
	r := siblingRun(t, "/", nil, "reap", "--label", testLabel)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("removed network %.12s", nets[0].ID)) {
		t.Errorf("reap: exit %d, stdout %q; want it to name the network %s; stderr:\n%s", r.code, r.stdout, nets[0].Name, r.stderr)
	}
	assertNothingLeft(t, mine)
}

// --keep keeps the services and the network with the sibling, and reap
// leaves all of them.
func TestKeepKeepsServicesAndNetwork(t *testing.T) {
	web := webImage(t)
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("--keep", "--service", web, "true")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, stderr.String())
	}
	mine := pidLabel(cmd.Process.Pid)
	kept, nets := containersWith(t, mine), networksWith(t, mine)
	t.Cleanup(func() {
		for _, c := range kept {
			_ = api.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
		for _, n := range nets {
			_ = api.NetworkRemove(context.Background(), n.ID)
		}
	})
	if len(kept) != 2 || len(nets) != 1 {
		t.Fatalf("kept %d containers and %d networks, want the sibling, its service and the network; stderr:\n%s", len(kept), len(nets), stderr.String())
	}
	if r := siblingRun(t, "/", nil, "reap", "--label", testLabel); r.code != 0 || len(containersWith(t, mine)) != 2 || len(networksWith(t, mine)) != 1 {
		t.Errorf("reap removed what --keep kept: exit %d, stdout %q", r.code, r.stdout)
	}
}

// A sibling-run built with cgo (a plain go build here) cannot start inside
// the engine's containers, where the readiness check runs it; every
// --service used to fail after its timeout, saying only to raise it. It is
// refused at once, with the line that builds it static, and nothing created.
func TestADynamicSiblingRunIsRefusedWhenServicesNeedIt(t *testing.T) {
	dynamic := filepath.Join(t.TempDir(), "sibling-run-dynamic")
	build := exec.Command("go", "build", "-o", dynamic, "sibling-run/cmd/sibling-run")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sibling-run with cgo: %v\n%s", err, out)
	}
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("--service", busyboxImage+"=db", "true")...)
	cmd.Path, cmd.Args[0] = dynamic, dynamic
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	r := result{stderr: stderr.String(), code: cmd.ProcessState.ExitCode(), pid: cmd.Process.Pid}
	assertRefused(t, r, "CGO_ENABLED=0")
	assertCreatedNothing(t, r)
}
