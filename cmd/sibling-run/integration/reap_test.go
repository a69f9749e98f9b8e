package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

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
		t.Errorf("reap: exit %d, stdout %q; want it to name the orphan %.12s; stderr:\n%s", r.code, r.stdout, orphans[0].ID, r.stderr)
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

// One removal that fails does not stop reap: it removes the other orphans and
// returns every failure. The engine is real; only its answer to the removal
// of one orphan is replaced by an error, in the client's transport, since no
// flag makes a real engine refuse a forced removal.
func TestReapGoesOnAfterAFailedRemovalAndReportsIt(t *testing.T) {
	scope := "sibling-run-test.reap=" + randomHex(4)
	dir := t.TempDir()
	// Both run at once, so that neither run's start clears the other.
	var runs []*exec.Cmd
	for range 2 {
		cmd, _ := startSiblingRun(t, dir, buildArgs("--label", scope, "sh", "-c", "echo ready; sleep 300")...)
		runs = append(runs, cmd)
	}
	for _, c := range containersWith(t, scope) {
		defer api.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	}
	if n := len(containersWith(t, scope)); n != 2 {
		t.Fatalf("%d siblings, want the 2 of the runs", n)
	}
	for _, cmd := range runs {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}

	refuse := &refuseFirstRemoval{next: api.HTTPClient().Transport}
	faulty, err := client.NewClientWithOpts(client.WithHost(api.DaemonHost()), client.WithVersion(api.ClientVersion()),
		client.WithHTTPClient(&http.Client{Transport: refuse}))
	if err != nil {
		t.Fatal(err)
	}
	defer faulty.Close()
	log := zerolog.New(zerolog.NewTestWriter(t))
	reaped, err := runner.Reap(context.Background(), faulty, []runner.LabelFilter{asFilter(testLabel), asFilter(scope)}, false, log)
	var failures *runner.ReapFailures
	if refuse.id == "" {
		t.Fatalf("reap removed nothing; error %v", err)
	}
	if !errors.As(err, &failures) || len(failures.Failures) != 1 || !strings.Contains(err.Error(), refuse.id[:12]) || !strings.Contains(err.Error(), "refused by the test") {
		t.Errorf("reap's error = %v; want a ReapFailures with the one refused removal, naming %.12s", err, refuse.id)
	}
	if len(reaped) != 1 || reaped[0].ID == refuse.id {
		t.Errorf("reaped %+v; want the orphan after the refused one", reaped)
	}
	left := containersWith(t, scope)
	if len(left) != 1 || left[0].ID != refuse.id {
		t.Errorf("%d siblings left; want the one whose removal failed", len(left))
	}
	// The engine answers again: the next reap removes it.
	if reaped, err := runner.Reap(context.Background(), api, []runner.LabelFilter{asFilter(testLabel), asFilter(scope)}, false, log); err != nil || len(reaped) != 1 {
		t.Errorf("the second reap: %+v, %v; want the orphan that was left", reaped, err)
	}
	assertNothingLeft(t, scope)
}

// refuseFirstRemoval answers the first container removal with an engine
// error, whichever container reap tries first, and passes every other
// request on to the engine.
type refuseFirstRemoval struct {
	id   string // the container refused; "" until then
	next http.RoundTripper
}

func (r *refuseFirstRemoval) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, id, ok := strings.Cut(req.URL.Path, "/containers/"); ok && req.Method == http.MethodDelete && r.id == "" {
		r.id = id
		return &http.Response{
			StatusCode: http.StatusInternalServerError,
			Header:     http.Header{"Content-Type": []string{"application/json"}},
			Body:       io.NopCloser(strings.NewReader(`{"message":"removal refused by the test"}`)),
			Request:    req,
		}, nil
	}
	return r.next.RoundTrip(req)
}

// asFilter is a KEY=VALUE label as the filter that selects it.
func asFilter(label string) runner.LabelFilter {
	key, value, _ := strings.Cut(label, "=")
	return runner.LabelFilter{Key: key, Value: value}
}
