package integration

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

// A sibling-run killed with SIGKILL cannot clean up; reap removes its
// sibling, and keeps those whose sibling-run still runs or that were kept.
func TestReapRemovesOrphansOnly(t *testing.T) {
	dir := t.TempDir()
	// Every run reaps its agent's orphans, so the live and kept siblings are
	// made before the orphan is.
	live, _ := startSiblingRun(t, dir, buildArgs("sh", "-c", "echo ready; sleep 300")...)
	liveLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(live.Process.Pid)
	keep := siblingRun(t, dir, nil, buildArgs("--keep", "true")...)
	if keep.code != 0 {
		t.Fatalf("--keep run: exit %d", keep.code)
	}
	kept := containersWith(t, testLabel, runner.LabelKeep+"=true")
	for _, c := range kept {
		defer api.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	}

	killed, _ := startSiblingRun(t, dir, buildArgs("sh", "-c", "echo ready; sleep 300")...)
	orphanLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(killed.Process.Pid)
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	orphans := containersWith(t, testLabel, orphanLabel)
	if len(orphans) != 1 {
		t.Fatalf("%d siblings after SIGKILL, want the 1 orphan", len(orphans))
	}

	dry := siblingRun(t, dir, nil, "reap", "--label", testLabel, "--dry-run")
	if !strings.Contains(dry.stdout, "would remove "+orphans[0].ID[:12]) || len(containersWith(t, orphanLabel)) != 1 {
		t.Errorf("reap --dry-run should name the orphan and leave it:\n%s", dry.stdout)
	}
	other := siblingRun(t, dir, nil, "reap", "--label", testLabel, "--label", "sibling-run-test.other")
	if other.code != 0 || other.stdout != "" || len(containersWith(t, orphanLabel)) != 1 {
		t.Errorf("reap --label with a label the orphan lacks: exit %d, stdout %q; want it to leave the orphan", other.code, other.stdout)
	}
	r := siblingRun(t, dir, nil, "reap", "--label", testLabel)
	if r.code != 0 || !strings.Contains(r.stdout, "removed "+orphans[0].ID[:12]) {
		t.Errorf("reap: exit %d, stdout %q; want it to name the orphan %.12s", r.code, r.stdout, orphans[0].ID)
	}
	if len(containersWith(t, orphanLabel)) != 0 {
		t.Error("the orphan is still there after reap")
	}
	if len(containersWith(t, liveLabel)) != 1 {
		t.Error("reap removed the sibling of a live sibling-run")
	}
	if len(kept) != 1 || len(containersWith(t, runner.LabelKeep+"=true", testLabel)) != 1 {
		t.Error("reap removed a --keep sibling")
	}

	_ = live.Process.Signal(syscall.SIGTERM)
	_ = live.Wait()
}

// Each run clears its own agent's orphans before its build starts, so an
// agent that crashed heals on its next build without anyone running reap, and
// an orphan still writing into the working directory stops before the next
// build of that directory begins.
func TestEveryRunReapsItsAgentsOrphansBeforeItsBuild(t *testing.T) {
	dir := t.TempDir()
	killed, _ := startSiblingRun(t, dir, buildArgs("sh", "-c", "echo ready; while :; do echo x >> orphan.log; sleep 0.01; done")...)
	orphanLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(killed.Process.Pid)
	_ = killed.Process.Signal(syscall.SIGKILL)
	_ = killed.Wait()
	if len(containersWith(t, orphanLabel)) != 1 {
		t.Fatal("no orphan after SIGKILL")
	}
	r := siblingRun(t, dir, nil, buildArgs("sh", "-c", `a=$(wc -c < orphan.log); sleep 1; b=$(wc -c < orphan.log); echo "$a $b"; [ "$a" = "$b" ]`)...)
	if r.code != 0 {
		t.Errorf("the orphan still wrote during the next build (sizes %q), exit %d; stderr:\n%s", strings.TrimSpace(r.stdout), r.code, r.stderr)
	}
	if len(containersWith(t, orphanLabel)) != 0 {
		t.Errorf("the next run did not remove the orphan; stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "whose sibling-run is gone") {
		t.Errorf("the next run did not say it removed an orphan:\n%s", r.stderr)
	}
}
