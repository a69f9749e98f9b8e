package integration

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// The hostile tests of issue 21 play the author of a repository whose build
// attacks the machine: it forks without end, reaches for other builds over
// the network, races the mount of its working directory, or leaves a
// setuid binary for the host's users.

// A fork bomb stops at the build's process limit, which is there by default.
func TestAForkBombStopsAtTheDefaultProcessLimit(t *testing.T) {
	// The limit as the kernel holds it (cgroup v1 or v2), then as many
	// sleeps as the build can start, up to 200, under a limit of 64 set
	// through the environment, as an agent's administrator would.
	limit := `cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max`
	r := siblingRun(t, t.TempDir(), nil, buildArgs("sh", "-c", limit)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "4096" {
		t.Errorf("by default the build's pids.max is %q (exit %d), want 4096; stderr:\n%s", strings.TrimSpace(r.stdout), r.code, r.stderr)
	}
	// The inner shell forks until the kernel refuses (it then exits); the
	// outer one reads the count with builtins only, which need no fork.
	bomb := `sh -c 'n=0; while [ $n -lt 200 ]; do sleep 30 & n=$((n+1)); echo $n > /tmp/count; done' 2>/dev/null; ` +
		`read n < /tmp/count; echo started $n`
	r = siblingRun(t, t.TempDir(), []string{"SIBLING_RUN_PIDS_LIMIT=64"}, buildArgs("sh", "-c", bomb)...)
	got, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(r.stdout), "started "))
	if got == 0 || got > 64 {
		t.Errorf("with SIBLING_RUN_PIDS_LIMIT=64 the build had %d processes at once (exit %d), want 1–64:\n%s\n%s", got, r.code, r.stdout, r.stderr)
	}
}

// serveWeb is a build or container command that prints its address and then
// serves a page on port 8080 for a minute.
const serveWeb = `mkdir -p /tmp/www && echo reached > /tmp/www/index.html && ` +
	`ip -4 -o addr show eth0 | sed "s/.* inet \\([0-9.]*\\).*/\\1/" && httpd -f -p 8080 -h /tmp/www & sleep 60`

// fetch is a build command that asks for the page at ip for 3 seconds
// (busybox's static wget crashes, so nc speaks HTTP).
func fetch(ip string) []string {
	return []string{"sh", "-c", `printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 ` + ip + ` 8080 | grep reached || echo unreachable`}
}

// A build reaches neither another build's ports nor a container on the
// engine's default bridge (an agent's), unless --network bridge asks for the
// old sharing; the same probes then succeed, which shows they can.
func TestBuildsCannotReachEachOtherNorTheAgents(t *testing.T) {
	dir := t.TempDir()
	serverIP := startServingBuild(t, dir, buildArgs("sh", "-c", serveWeb)...)
	agentIP := startAgentLike(t)

	for _, tc := range []struct {
		name, ip  string
		engineGap string // why the engine lets it through anyway
	}{
		{"another build", serverIP, "Podman 4 ignores enable_icc=false (it warns so): builds on its shared network reach each other"},
		{"an agent on the default bridge", agentIP, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.engineGap != "" {
				notUnderPodman(t, tc.engineGap)
			}
			r := siblingRun(t, dir, nil, buildArgs(fetch(tc.ip)...)...)
			if strings.Contains(r.stdout, "reached") || !strings.Contains(r.stdout, "unreachable") {
				t.Errorf("a build fetched %s's page at %s (exit %d):\n%s\n%s", tc.name, tc.ip, r.code, r.stdout, r.stderr)
			}
		})
	}
	// The old behaviour on request, and the control that the probe works.
	bridgeIP := startServingBuild(t, dir, buildArgs("--network", "bridge", "sh", "-c", serveWeb)...)
	for _, ip := range []string{bridgeIP, agentIP} {
		r := siblingRun(t, dir, nil, buildArgs(append([]string{"--network", "bridge"}, fetch(ip)...)...)...)
		if !strings.Contains(r.stdout, "reached") {
			t.Errorf("with --network bridge a build did not reach %s (exit %d), so the probe proves nothing:\n%s\n%s", ip, r.code, r.stdout, r.stderr)
		}
	}
}

// startServingBuild starts sibling-run with args in dir and returns the
// build's first line (its address) once it is printed; the run is killed
// when the test ends.
func startServingBuild(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := siblingRunCommand(dir, nil, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-first:
		if line == "" {
			t.Fatalf("the serving build printed no address; stderr:\n%s", stderr.String())
		}
		time.Sleep(300 * time.Millisecond) // httpd starts after the address
		return line
	case <-time.After(30 * time.Second):
		t.Fatalf("the serving build printed nothing within 30s; stderr:\n%s", stderr.String())
		return ""
	}
}

// startAgentLike starts a container on the engine's default bridge, as an
// agent runs, serving a page; it returns its address.
func startAgentLike(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx, &container.Config{
		Image: busyboxImage, Cmd: []string{"sh", "-c", serveWeb}, Labels: map[string]string{"sibling-run-test.run": runID},
	}, &container.HostConfig{}, nil, nil, "")
	if err != nil {
		t.Fatalf("creating the agent-like container: %v", err)
	}
	t.Cleanup(func() { _ = api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}) })
	if err := api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting the agent-like container: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		info, err := api.ContainerInspect(ctx, created.ID)
		if err == nil && info.NetworkSettings != nil && info.NetworkSettings.IPAddress != "" {
			time.Sleep(300 * time.Millisecond) // httpd starts after the address shows
			return info.NetworkSettings.IPAddress
		}
	}
	t.Fatal("the agent-like container got no address on the default bridge")
	return ""
}
