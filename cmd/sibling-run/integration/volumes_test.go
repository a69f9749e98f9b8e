package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"sibling-run/runner"
)

// These tests run sibling-run as production does: inside an agent container
// that has the engine's socket and the volumes of a data container, with the
// build directory on the data container's volume. In every mode the build
// gets the build directory and not the agent's socket (isolation_test.go
// plays the attacker).
func TestInsideAnAgentTheBuildSeesTheWorkdirThroughVolumes(t *testing.T) {
	data := createDataContainer(t, "/builds")
	// Each agent script prepares a build directory, runs sibling-run in it as a
	// script task would, then shows what the agent itself sees afterwards.
	prepare := "mkdir -p /builds/job1 && echo from-agent > /builds/job1/in.txt && cd /builds/job1 && "
	build := `sh -c 'pwd; cat in.txt; echo from-sibling > out.txt; test -S /var/run/docker.sock && echo socket-shared || echo socket-not-shared; exit 7'`
	for _, tc := range []struct {
		name      string
		cgroupns  container.CgroupnsMode
		flags     string
		wantLines []string
	}{
		{
			name:      "automatic, container id from /proc/self/cgroup",
			cgroupns:  "host",
			wantLines: []string{"/builds/job1", "from-agent", "socket-not-shared", "exit=7", "agent sees from-sibling"},
		},
		{
			// A private cgroup namespace (the default on cgroup v2 hosts) hides
			// the id from /proc/self/cgroup; mountinfo still shows it.
			name:      "automatic, container id from /proc/self/mountinfo",
			cgroupns:  "private",
			wantLines: []string{"cgroup-hides-id", "/builds/job1", "from-agent", "socket-not-shared", "exit=7", "agent sees from-sibling"},
		},
		{
			name:      "explicit --volumes-from the data container",
			cgroupns:  "host",
			flags:     "--volumes-from " + data,
			wantLines: []string{"/builds/job1", "from-agent", "socket-not-shared", "exit=7", "agent sees from-sibling"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.wantLines
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); tc.cgroupns == "private" && err != nil && engine == "podman" {
				// On a cgroup v1 host Podman 4.3 ignores --cgroupns private:
				// /proc/self/cgroup still names the agent, and the mountinfo
				// path is covered by a fixture (runner/selfdetect_test.go).
				// The agent must still find itself and share its volume.
				t.Log("Podman on cgroup v1: the agent's cgroup namespace is not private; checking that it finds itself all the same")
				want = slices.DeleteFunc(slices.Clone(want), func(l string) bool { return l == "cgroup-hides-id" })
			}
			script := "grep -qE '[0-9a-f]{64}' /proc/self/cgroup || echo cgroup-hides-id; " + prepare + agentSiblingRun(tc.flags, build) + "; echo exit=$?; echo agent sees $(cat out.txt)"
			out, code := runAgent(t, data, tc.cgroupns, script)
			if code != 0 {
				t.Fatalf("agent exited %d:\n%s", code, out)
			}
			for _, line := range want {
				if !hasLine(out, line) {
					t.Errorf("agent output lacks the line %q:\n%s", line, out)
				}
			}
		})
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind by the agents", len(left))
	}
}

// A working directory outside every shared mount would reach the sibling as
// an empty directory; sibling-run refuses with 125 and names the mounts.
func TestInsideAnAgentAnUnsharedWorkdirIsRefused(t *testing.T) {
	data := createDataContainer(t, "/builds")
	for _, tc := range []struct{ name, flags, says string }{
		{"automatic", "", "this container"},
		{"explicit --volumes-from", "--volumes-from " + data, data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "mkdir -p /tmp/job && cd /tmp/job && " + agentSiblingRun(tc.flags, "echo the build ran") + "; echo exit=$?"
			out, code := runAgent(t, data, "host", script)
			if code != 0 {
				t.Fatalf("agent exited %d:\n%s", code, out)
			}
			if !hasLine(out, "exit=125") || strings.Contains(out, "the build ran") {
				t.Errorf("want exit 125 and no build:\n%s", out)
			}
			for _, word := range []string{"/tmp/job", "/builds", tc.says, "empty directory"} {
				if !strings.Contains(out, word) {
					t.Errorf("the refusal does not mention %q:\n%s", word, out)
				}
			}
		})
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("a refused build created %d siblings", len(left))
	}
}

// A fresh agent's first build meets an empty working directory. An image
// that has files at that path must not fill it: on engines that mount the
// working directory as a volume subpath (API 1.45+, Docker 29 here) the
// engine copies an image's content into an empty volume mount unless told
// not to, which would put the image's root-owned files into the agent's
// build directory. Binds (Docker 20.10, Podman) never copy.
func TestInsideAnAgentAnEmptyWorkdirGetsNothingFromTheImage(t *testing.T) {
	data := createDataContainer(t, "/builds")
	img := "sibling-run-test/fills-workdir:" + runID
	dockerfile := fmt.Sprintf("FROM %s\nRUN mkdir -p /builds/job1/sub && echo from-image > /builds/job1/sub/file && echo from-image > /builds/job1/top\n", busyboxImage)
	if err := buildImage(context.Background(), img, map[string][]byte{"Dockerfile": []byte(dockerfile)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = api.ImageRemove(context.Background(), img, image.RemoveOptions{PruneChildren: true}) })
	script := "mkdir -p /builds/job1 && cd /builds/job1 && " +
		"sibling-run --image " + img + " --label " + testLabel + " sh -c 'echo build sees: $(ls -A)'; echo exit=$?; echo agent sees: $(ls -A /builds/job1)"
	out, code := runAgent(t, data, "host", script)
	if code != 0 {
		t.Fatalf("agent exited %d:\n%s", code, out)
	}
	for _, line := range []string{"build sees:", "exit=0", "agent sees:"} {
		if !hasLine(out, line) {
			t.Errorf("want the line %q (an empty working directory on %s):\n%s", line, engine, out)
		}
	}
}

// agentSiblingRun is the command line a script task in the agent runs.
func agentSiblingRun(flags, build string) string {
	return "sibling-run --image " + busyboxImage + " --label " + testLabel + " " + flags + " " + build
}

// createDataContainer creates (and removes after the test) a data container
// whose anonymous volume is at path, like bamboo-agent-data.1.
func createDataContainer(t *testing.T, path string) string {
	t.Helper()
	name := "sibling-run-test-data-" + randomHex(4)
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx, &container.Config{
		Image:   busyboxImage,
		Cmd:     []string{"true"},
		Volumes: map[string]struct{}{path: {}},
		Labels:  map[string]string{"sibling-run-test.run": runID},
	}, nil, nil, nil, name)
	if err != nil {
		t.Fatalf("creating data container: %v", err)
	}
	t.Cleanup(func() {
		_ = api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
	return name
}

// runAgent runs script in an agent container with the engine's socket and
// the data container's volumes, and returns its output and exit code.
func runAgent(t *testing.T, data string, cgroupns container.CgroupnsMode, script string) (string, int) {
	t.Helper()
	socket, ok := strings.CutPrefix(api.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the agent tests mount the engine's unix socket; DOCKER_HOST is %s", api.DaemonHost())
	}
	return runContainer(t, &container.Config{
		Image: agentImage,
		Cmd:   []string{"sh", "-c", script},
	}, &container.HostConfig{
		Binds:        []string{socket + ":/var/run/docker.sock"},
		VolumesFrom:  []string{data},
		CgroupnsMode: cgroupns,
	})
}

func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
