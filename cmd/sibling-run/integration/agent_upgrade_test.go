package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"sibling-run/runner"
)

// An upgrade never kills a running build silently: scripts/agent.sh upgrade
// waits until the agent's siblings have ended, gives up without changing
// anything when --wait runs out, and stops a build only with --force, saying
// so. The agents here are small images with sibling-run on the busybox
// image, so that the test needs no Go toolchain image; the build runs in a
// real sibling, started by sibling-run inside the agent.
func TestAgentUpgradeWaitsForTheRunningBuild(t *testing.T) {
	firstPassOnly(t, "it tests scripts/agent.sh, which drives every engine through the same docker CLI")
	ctx := context.Background()
	n := "upgrade-" + runID
	agent := "bamboo-agent." + n
	gen1 := "sibling-run-test/upgrade-agent:" + runID
	gen2 := gen1 + "-next"
	dataImage := "sibling-run-test/upgrade-data:" + runID
	t.Cleanup(func() {
		for _, tag := range []string{gen2, gen1, dataImage} {
			_, _ = api.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
		}
	})
	// The agent stops at once on SIGTERM, as the Bamboo agent's tini does.
	agentFile := fmt.Sprintf("FROM %s\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 1; done\"]\n", agentImage)
	for tag, dockerfile := range map[string]string{
		gen1:      agentFile,
		dataImage: fmt.Sprintf("FROM %s\nRUN mkdir -p /builds/job\nVOLUME /builds\n", busyboxImage),
	} {
		if err := buildImage(ctx, tag, map[string][]byte{"Dockerfile": []byte(dockerfile)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := buildImage(ctx, gen2, map[string][]byte{"Dockerfile": []byte("FROM " + gen1 + "\nLABEL sibling-run-test.agent-generation=2\n")}, nil); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"BAMBOO_SERVER=http://bamboo.test:8085", "AGENT_IMAGE=" + gen1, "AGENT_DATA_IMAGE=" + dataImage,
		"AGENT_LABELS=" + testLabel, "AGENT_PULL=never", "AGENT_STOP_TIMEOUT=5",
		"DOCKER_SOCKET=" + engineSocket(t),
	}
	with := func(image string) []string { return append(env[:len(env):len(env)], "AGENT_IMAGE="+image) }
	t.Cleanup(func() {
		script(t, env, "agent.sh", "down", "--force", n)
		// A build stopped with --force leaves its sibling to the reaper,
		// which the real agent image runs and these agents do not.
		siblingRun(t, "/", nil, "reap", "--label", testLabel)
	})
	script(t, env, "agent.sh", "up", n)

	// A build of 12 s, as a script task in the agent starts it.
	first := startUpgradeBuild(t, agent, 12)
	firstAgent := inspectContainer(t, agent).ID

	// A wait too short for the build changes nothing and says why.
	out, code := scriptResult(with(gen2), "agent.sh", "upgrade", "--wait", "2s", n)
	if code != 3 || !strings.Contains(out, "still runs 1 build(s)") || !strings.Contains(out, "nothing changed") {
		t.Errorf("upgrade --wait 2s during a build: want exit 3 naming the build, got exit %d:\n%s", code, out)
	}
	if id := inspectContainer(t, agent).ID; id != firstAgent {
		t.Errorf("upgrade --wait 2s replaced the agent during a build")
	}

	// The default wait lets the build finish, then replaces the agent.
	start := time.Now()
	out = script(t, with(gen2), "agent.sh", "upgrade", n)
	waited := time.Since(start)
	t.Logf("agent.sh upgrade during a build, %s:\n%s", waited.Round(time.Second), out)
	build := first.wait(t)
	if build.code != 0 || !strings.Contains(build.out, "finished") {
		t.Errorf("the build during the upgrade: exit %d (want 0, it must not be killed):\n%s", build.code, build.out)
	}
	if !build.ended.Before(start.Add(waited)) {
		t.Errorf("the upgrade ended at %s, before the build it should wait for (%s)", start.Add(waited), build.ended)
	}
	if !strings.Contains(out, "waiting for 1 running build(s) of "+agent) {
		t.Errorf("the upgrade did not say that it waits for the build:\n%s", out)
	}
	if got := inspectContainer(t, agent); got.ID == firstAgent || got.Config.Labels["sibling-run-test.agent-generation"] != "2" {
		t.Fatalf("the upgrade did not replace the agent with %s:\n%s", gen2, out)
	}

	// --force does not wait: it stops the build and names it.
	second := startUpgradeBuild(t, agent, 60)
	out = script(t, with(gen1), "agent.sh", "upgrade", "--force", n)
	if !strings.Contains(out, "stops 1 running build(s), which fail") {
		t.Errorf("upgrade --force did not name the build it stops:\n%s", out)
	}
	if build := second.wait(t); build.code == 0 {
		t.Errorf("the build that upgrade --force stopped exited 0:\n%s", build.out)
	}
	if got := inspectContainer(t, agent); got.Config.Labels["sibling-run-test.agent-generation"] == "2" {
		t.Errorf("upgrade --force did not switch the agent back to %s", gen1)
	}
}

// upgradeBuild is a build that a script task started in an agent.
type upgradeBuild struct {
	cmd   *exec.Cmd
	out   *strings.Builder
	done  chan struct{}
	ended time.Time // set before done is closed
}

type upgradeBuildResult struct {
	out   string
	code  int
	ended time.Time
}

// startUpgradeBuild starts sibling-run in the agent, as a script task does,
// with a build that sleeps for seconds, and returns once its sibling runs.
func startUpgradeBuild(t *testing.T, agent string, seconds int) *upgradeBuild {
	t.Helper()
	task := fmt.Sprintf("cd /builds/job && sibling-run --image %s --label %s -- sh -c 'echo started; sleep %d; echo finished'", busyboxImage, testLabel, seconds)
	b := &upgradeBuild{cmd: exec.Command("docker", "exec", agent, "sh", "-c", task), out: &strings.Builder{}, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); b.ended = time.Now(); close(b.done) }()
	owner := runner.LabelOwner + "=container:" + inspectContainer(t, agent).ID
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, c := range containersWith(t, testLabel, owner) {
			if c.State == "running" {
				return b
			}
		}
	}
	t.Fatalf("no running sibling of %s after 30 s; the task said:\n%s", agent, b.out)
	return nil
}

// wait waits (at most two minutes) for the build's end.
func (b *upgradeBuild) wait(t *testing.T) upgradeBuildResult {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(2 * time.Minute):
		_ = b.cmd.Process.Kill()
		t.Fatalf("the build in the agent did not end within 2 minutes:\n%s", b.out)
	}
	return upgradeBuildResult{out: b.out.String(), code: b.cmd.ProcessState.ExitCode(), ended: b.ended}
}
