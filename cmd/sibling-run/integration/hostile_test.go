package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sibling-run/runner"
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
		{"an agent on the default bridge", agentIP, "Podman 4 does not isolate its networks from each other (its CNI setup has no such rule): a build reaches containers on its default network"},
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
	_, _, line := startUntilFirstLine(t, dir, func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}, args...)
	time.Sleep(300 * time.Millisecond) // httpd starts after the address
	return line
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

// raceDuration is how long each race test swaps a directory for a link
// (30 ms the directory, 10 ms a link, in turn) while builds start.
const raceDuration = 30 * time.Second

// raceProbe is the build of the race tests: it says whether it got the
// directory it was given (which holds the file mine), another one the race
// could have mounted (the plan's own, which holds in.txt; another plan's,
// with secret.txt; the volume's root, with PLAN1; a root, with etc), or a
// directory that holds none of these: one that appeared at the path while
// the race ran (Podman creates a bind's missing source, and the swap then
// moves the real directory into it as sub.real).
const raceProbe = `sh -c 'if test -e mine; then echo RIGHT-DIR; ` +
	`elif test -e in.txt -o -e secret.txt -o -e PLAN1 -o -e etc; then echo WRONG-DIR $(ls -A | head -5); ` +
	`else echo NEW-DIR $(ls -A | head -5); fi'`

// raceTally counts the outcomes of the runs printed by raceProbe and "exit=N".
// A new directory at the path is one the check step accepted, so it is the
// directory sibling-run identified, not another: that is the engine creating
// a missing bind source, which only Podman does (Docker refuses the bind);
// on Docker it counts as wrong.
func raceTally(t *testing.T, out string) {
	t.Helper()
	var right, refused, fresh int
	var wrong []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "RIGHT-DIR":
			right++
		case strings.HasPrefix(line, "WRONG-DIR"):
			wrong = append(wrong, line)
		case strings.HasPrefix(line, "NEW-DIR") && engine == "podman":
			fresh++
		case strings.HasPrefix(line, "NEW-DIR"):
			wrong = append(wrong, line)
		case line == "exit=125":
			refused++
		}
	}
	t.Logf("%d runs: %d in the right directory, %d refused, %d in a directory the engine created at the path, %d in a wrong one",
		strings.Count(out, "exit="), right, refused, fresh, len(wrong))
	if len(wrong) > 0 {
		t.Errorf("%d builds got another directory than the one they were given:\n%s", len(wrong), strings.Join(wrong, "\n"))
	}
	// A build in a directory Podman created ran in the one it was given,
	// checked: under load Podman's new sub can take the place of mine for
	// the rest of the race (0 right, 5 new of 38 runs once).
	if right+fresh == 0 {
		t.Errorf("no build ran in its own directory, so the race proves nothing:\n%s", out)
	}
	if testing.Verbose() {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "ERR") {
				t.Log(line)
			}
		}
	}
}

// In an agent: while a process with the data volume (a build still running
// there, say) swaps PLAN1/sub for links to another plan and to the engine
// host's /, builds with -w PLAN1/sub start in a loop. None may get anything
// but PLAN1/sub; refusals are allowed.
func TestARaceOfLinksInTheVolumeGetsNoBuildAnotherDirectory(t *testing.T) {
	w := newIsoWorld(t)
	prep := "mkdir -p " + isoPlan + "/sub && touch " + isoPlan + "/sub/mine && chmod -R a+rwX " + isoPlan
	if out, code := runContainer(t, &container.Config{Image: busyboxImage, Cmd: []string{"sh", "-c", prep}}, &container.HostConfig{Mounts: w.mounts()}); code != 0 {
		t.Fatalf("preparing the plan: %s", out)
	}
	secs := strconv.Itoa(int(raceDuration.Seconds()))
	swap := "cd " + isoPlan + " && end=$(($(date +%s)+" + secs + "+5)); while [ $(date +%s) -lt $end ]; do " +
		"usleep 30000; mv sub sub.real; ln -s ../PLAN2 sub; usleep 10000; rm sub; mv sub.real sub; " +
		"usleep 30000; mv sub sub.real; ln -s / sub; usleep 10000; rm sub; mv sub.real sub; done"
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = runContainer(t, &container.Config{Image: busyboxImage, Cmd: []string{"sh", "-c", swap}}, &container.HostConfig{Mounts: w.mounts()[:1]})
	}()
	loop := "end=$(($(date +%s)+" + secs + ")); while [ $(date +%s) -lt $end ]; do " +
		agentSiblingRun("--workdir "+isoPlan+"/sub --log-level error", raceProbe) + "; echo exit=$?; done"
	out := w.agent(t, false, loop)
	<-done
	raceTally(t, out)
}

// On a host: the same race in a working directory's subdirectory, where the
// plan's directory belongs to a build's user.
func TestARaceOfLinksOnAHostGetsNoBuildAnotherDirectory(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan, other := filepath.Join(root, "PLAN1"), filepath.Join(root, "PLAN2")
	sub := filepath.Join(plan, "sub")
	for _, dir := range []string{plan, other, sub} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, sub, "mine", nil)
	writeFile(t, plan, "in.txt", nil) // how raceProbe knows the plan's own directory
	writeFile(t, other, "secret.txt", []byte("secret\n"))
	if err := os.Chown(plan, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				swapped <- n
				return
			default:
			}
			// Mostly the real directory (sibling-run must see it), now
			// and then a link (the engine should resolve that).
			for _, target := range []string{other, "/"} {
				time.Sleep(30 * time.Millisecond)
				_ = os.Rename(sub, sub+".real")
				_ = os.Symlink(target, sub)
				time.Sleep(10 * time.Millisecond)
				_ = os.Remove(sub)
				_ = os.Rename(sub+".real", sub)
				n++
			}
		}
	}()
	var out strings.Builder
	for end := time.Now().Add(raceDuration); time.Now().Before(end); {
		r := siblingRun(t, root, nil, buildArgs("--workdir", sub, "--log-level", "error", "sh", "-c", strings.TrimSuffix(strings.TrimPrefix(raceProbe, "sh -c '"), "'"))...)
		fmt.Fprintf(&out, "%sexit=%d\n", r.stdout, r.code)
	}
	close(stop)
	t.Logf("%d swaps", <-swapped)
	raceTally(t, out.String())
}

// Where the sibling checks its working directory first, the build's exit
// code, docker run's 126 and 127, --init and the image's own command are
// what they are without the check.
func TestTheWorkdirCheckKeepsExitCodesAndCommands(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(root, "PLAN1")
	sub := filepath.Join(plan, "sub")
	for _, dir := range []string{plan, sub} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A plan's directory that its build's user may write: sub is racy.
	if err := os.Chown(plan, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"exit code, with init", []string{"sh", "-c", "pwd; exit 7"}, 7, sub},
		{"exit code, without init", []string{"--no-init", "sh", "-c", "pwd; exit 7"}, 7, sub},
		{"not found, with init", []string{"no-such-command"}, runner.ExitNotFound, ""},
		{"not found, without init", []string{"--no-init", "no-such-command"}, runner.ExitNotFound, ""},
		{"cannot invoke", []string{"/etc/passwd"}, runner.ExitCannotInvoke, ""},
		{"the image's CMD", []string{"--log-level", "debug"}, 0, ""},
		{"an entrypoint", []string{"--entrypoint", "echo", "hello"}, 0, "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, root, nil, buildArgs(append([]string{"--workdir", sub}, tc.args...)...)...)
			if r.code != tc.want || !strings.Contains(r.stdout, tc.out) {
				t.Errorf("exit %d, want %d and %q in the output:\n%s\n%s", r.code, tc.want, tc.out, r.stdout, r.stderr)
			}
			if tc.name == "the image's CMD" && !strings.Contains(r.stderr, "checks its working directory") {
				t.Errorf("the run did not say that the sibling checks its working directory:\n%s", r.stderr)
			}
		})
	}
}

// On a host, a build as root in a root-owned directory that others can
// reach would leave a setuid-root program for any user there: it is
// refused (Docker's binds cannot be nosuid), unless --root-on-host says the
// host has no such users. A build as the directory's non-root owner runs.
func TestOnAHostARootBuildLeavesNoSetuidRootProgram(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's directories let nobody else in; a build host's do.
	for dir := root; dir != "/" && dir != os.TempDir(); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plan := filepath.Join(root, "PLAN1")
	if err := os.Mkdir(plan, 0o755); err != nil {
		t.Fatal(err)
	}
	leave := "cp /bin/busybox door && chmod 4755 door && echo left a door"
	setuidRoot := func() bool {
		info, err := os.Stat(filepath.Join(plan, "door"))
		if err != nil {
			return false
		}
		st := info.Sys().(*syscall.Stat_t)
		return info.Mode()&os.ModeSetuid != 0 && st.Uid == 0
	}

	r := siblingRun(t, plan, nil, buildArgs("sh", "-c", leave)...)
	if setuidRoot() {
		t.Errorf("a root build left a setuid-root program on the host (exit %d):\n%s", r.code, r.stderr)
	}
	assertRefused(t, r, "--root-on-host")
	assertCreatedNothing(t, r)

	// Asked for, the build runs as root; its door stands while it runs, and
	// the pass after the build (afterbuild.go) clears the bit all the same.
	r = siblingRun(t, plan, nil, buildArgs("--root-on-host", "sh", "-c", leave)...)
	if r.code != 0 || !strings.Contains(r.stdout, "left a door") {
		t.Errorf("with --root-on-host the build did not run as asked (exit %d):\n%s", r.code, r.stderr)
	}
	if setuidRoot() || !strings.Contains(r.stderr, "setid_bits_cleared=1") {
		t.Errorf("with --root-on-host the setuid-root program outlived the run:\n%s", r.stderr)
	}
	if err := os.RemoveAll(plan); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(plan, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(plan, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	r = siblingRun(t, plan, nil, buildArgs("sh", "-c", leave)...)
	if r.code != 0 || setuidRoot() {
		t.Errorf("a build as the directory's owner 4242: exit %d, setuid root %v; want 0 and none:\n%s", r.code, setuidRoot(), r.stderr)
	}
}
