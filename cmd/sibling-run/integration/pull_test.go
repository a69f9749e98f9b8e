package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"sibling-run/runner"
)

// pullArgs runs the test image ref with the leak-check label.
func pullArgs(ref string, extra ...string) []string {
	return append([]string{"--image", ref, "--label", testLabel}, extra...)
}

func TestMissingImageIsPulledWithCredentialsFromAuths(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("auths")
	reg.push(t, ref, "pushed with auths", false)
	env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, reg.authsConfig(reg.user, reg.password))}

	r := siblingRun(t, t.TempDir(), env, pullArgs(ref)...)
	t.Logf("stderr:\n%s", r.stderr)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pushed with auths\n") {
		t.Fatalf("exit code %d, stdout %.40q; want 0 and the pushed content; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Not a terminal: a few plain lines, no animation.
	for _, want := range []string{"pulling the image", reg.addr, "config.json (auths)", "layer pulled", "pulled the image"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("stderr animates in a log:\n%q", r.stderr)
	}

	// Present now: missing does not pull again.
	r = siblingRun(t, t.TempDir(), env, pullArgs(ref)...)
	if r.code != 0 || strings.Contains(r.stderr, "pulling") {
		t.Errorf("second run: exit code %d; it should not pull; stderr:\n%s", r.code, r.stderr)
	}
}

func TestMissingImageIsPulledWithCredentialsFromAHelper(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("helper")
	reg.push(t, ref, "pushed for the helper", false)

	// A credential helper as the docker CLI runs it: "get", the registry on
	// stdin, JSON on stdout; it says which registry it was asked for.
	bin := t.TempDir()
	asked := filepath.Join(bin, "asked")
	helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" > " + asked + "\n" +
		"if [ \"$server\" != " + reg.addr + " ]; then echo 'credentials not found in native keychain'; exit 1; fi\n" +
		"printf '{\"ServerURL\":\"%s\",\"Username\":\"" + reg.user + "\",\"Secret\":\"" + reg.password + "\"}' \"$server\"\n"
	name := "sibling-run-test-" + runID
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	config := `{"credHelpers": {"` + reg.addr + `": "` + name + `"}}`
	env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, config), "PATH=" + bin + ":" + os.Getenv("PATH")}

	r := siblingRun(t, t.TempDir(), env, pullArgs(ref)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pushed for the helper\n") {
		t.Fatalf("exit code %d, stdout %.40q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(asked); string(got) != reg.addr+"\n" {
		t.Errorf("the helper was asked for %q, want %s", got, reg.addr)
	}
	if !strings.Contains(r.stderr, "docker-credential-"+name) {
		t.Errorf("stderr does not name the helper:\n%s", r.stderr)
	}
}

// A pull that cannot succeed is one line that says why and what to do, exit
// code 125, and creates nothing.
func TestFailedPullsSayWhyAndCreateNothing(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("present")
	reg.push(t, ref, "never seen", false)
	good := dockerConfigDir(t, reg.authsConfig(reg.user, reg.password))
	for _, tc := range []struct {
		name   string
		config string // DOCKER_CONFIG
		args   []string
		says   []string
	}{
		{"wrong credentials", dockerConfigDir(t, reg.authsConfig(reg.user, "wrong")), pullArgs(ref, "true"),
			[]string{"registry " + reg.addr + " refused the credentials", "config.json (auths)", "docker login " + reg.addr}},
		{"no credentials", t.TempDir(), pullArgs(ref, "true"),
			[]string{"registry " + reg.addr + " refused an anonymous pull", "no credentials", "docker login " + reg.addr}},
		{"absent tag", good, pullArgs(reg.ref("absent"), "true"),
			[]string{"image " + reg.ref("absent") + " is not on the engine; ", "image " + reg.ref("absent") + " not found in registry " + reg.addr}},
		{"pull never", good, pullArgs(ref, "--pull", "never", "true"),
			[]string{ref + " is not on the engine", "--pull never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, t.TempDir(), []string{"DOCKER_CONFIG=" + tc.config}, tc.args...)
			t.Logf("stderr:\n%s", r.stderr)
			if r.code != 125 {
				t.Errorf("exit code %d, want 125", r.code)
			}
			last := strings.TrimSpace(r.stderr)
			last = last[strings.LastIndex(last, "\n")+1:]
			for _, want := range tc.says {
				if !strings.Contains(last, want) {
					t.Errorf("the last line does not say %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "retrying") {
				t.Errorf("retried a failure that is not transient:\n%s", r.stderr)
			}
			assertCreatedNothing(t, r)
			if imagePresent(t, tc.args[1]) {
				t.Errorf("%s is on the engine", tc.args[1])
			}
		})
	}
}

// --pull always pulls an image that is present: after a new image is pushed
// under the same tag, missing still runs the old one and always the new one.
func TestPullAlwaysPullsWhatMissingLeaves(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("moving")
	ctx := context.Background()
	env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, reg.authsConfig(reg.user, reg.password))}

	oldID := reg.push(t, ref, "old content", true)
	t.Cleanup(func() { _, _ = api.ImageRemove(ctx, oldID, image.RemoveOptions{PruneChildren: true}) })
	newID := reg.push(t, ref, "new content", false) // the registry's tag moves; the engine has neither tag now
	if err := api.ImageTag(ctx, oldID, ref); err != nil {
		t.Fatal(err)
	}
	if newID == oldID {
		t.Fatal("the two pushes made the same image")
	}

	r := siblingRun(t, t.TempDir(), env, pullArgs(ref)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "old content\n") || strings.Contains(r.stderr, "pulling") {
		t.Errorf("--pull missing: exit code %d, stdout %.20q; want the old image without a pull; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = siblingRun(t, t.TempDir(), env, pullArgs(ref, "--pull", "always")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "new content\n") || !strings.Contains(r.stderr, "pulled the image") {
		t.Errorf("--pull always: exit code %d, stdout %.20q; want the new image, pulled; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = siblingRun(t, t.TempDir(), env, pullArgs(ref, "--pull", "always")...)
	if r.code != 0 || !strings.Contains(r.stderr, "up to date") {
		t.Errorf("--pull always again: exit code %d; want an up-to-date pull; stderr:\n%s", r.code, r.stderr)
	}
}

func TestDryRunPullsNothing(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("dry")
	reg.push(t, ref, "dry", false)
	env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, reg.authsConfig(reg.user, reg.password))}
	for _, pull := range []string{"missing", "always"} {
		r := siblingRun(t, t.TempDir(), env, pullArgs(ref, "--dry-run", "--pull", pull)...)
		if r.code != 0 || !strings.Contains(r.stdout, ref) || strings.Contains(r.stderr, "pull") {
			t.Errorf("--dry-run --pull %s: exit code %d, stderr:\n%s", pull, r.code, r.stderr)
		}
		if imagePresent(t, ref) {
			t.Errorf("--dry-run --pull %s pulled %s", pull, ref)
		}
	}
}

// A registry that refuses connections is retried --pull-retries times with
// growing waits, then reported.
func TestTransientPullFailuresAreRetried(t *testing.T) {
	ref := freeLoopbackAddr(t) + "/sibling-run-test/x:gone" // nothing listens there
	r := siblingRun(t, t.TempDir(), []string{"DOCKER_CONFIG=" + t.TempDir()}, pullArgs(ref, "--pull-retries", "2", "true")...)
	if r.code != 125 {
		t.Errorf("exit code %d, want 125", r.code)
	}
	if n := strings.Count(r.stderr, "retrying"); n != 2 {
		t.Errorf("%d retries, want 2:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "failed 3 times") || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("stderr does not report 3 failed attempts and why:\n%s", r.stderr)
	}
	if r.took < 3*time.Second {
		t.Errorf("took %s: the retries did not back off (1s, then 2s)", r.took)
	}
}

// A registry that answers 503 for a while and then works is pulled from once
// it works. (The engine may ask for a manifest more than once per attempt, so
// the test counts the retries loosely.)
func TestPullRecoversFromARegistryThatFailsForAWhile(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.ref("flaky")
	reg.push(t, ref, "after the failures", false)
	backend, err := url.Parse("http://" + reg.addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	var failures atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && failures.Add(1) <= 4 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	flakyAddr := strings.TrimPrefix(flaky.URL, "http://")
	reachableFromEngine(t, flakyAddr)
	flakyRef := flakyAddr + "/sibling-run-test/x:flaky"
	t.Cleanup(func() {
		_, _ = api.ImageRemove(context.Background(), flakyRef, image.RemoveOptions{PruneChildren: true})
	})
	config := fmt.Sprintf(`{"auths": {%q: {"username": %q, "password": %q}}}`, flakyAddr, reg.user, reg.password)

	r := siblingRun(t, t.TempDir(), []string{"DOCKER_CONFIG=" + dockerConfigDir(t, config)}, pullArgs(flakyRef)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "after the failures\n") {
		t.Fatalf("exit code %d, stdout %.30q; want the image pulled once the registry works; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stderr, "retrying"); n < 1 || n > 3 || !strings.Contains(r.stderr, "503") {
		t.Errorf("%d retries, want 1 to 3, after a 503 each:\n%s", n, r.stderr)
	}
}

// A pull that hangs (a registry that accepts connections and never answers)
// stops at SIGTERM, promptly, like any other interrupted run.
func TestSignalStopsAPull(t *testing.T) {
	silent := silentListener(t)
	reachableFromEngine(t, silent)
	ref := silent + "/sibling-run-test/x:silent"
	cmd := siblingRunCommand(t.TempDir(), []string{"DOCKER_CONFIG=" + t.TempDir()}, pullArgs(ref, "true")...)
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	pulling := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		scanner := bufio.NewScanner(stderrPipe)
		once := false
		for scanner.Scan() {
			stderr.WriteString(scanner.Text() + "\n")
			if !once && strings.Contains(scanner.Text(), "pulling the image") {
				once = true
				close(pulling)
			}
		}
	}()
	select {
	case <-pulling:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no pull started within 30s")
	}
	time.Sleep(500 * time.Millisecond) // the engine is now waiting on the silent registry
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := waitExitCode(t, cmd, &stderr)
	<-copied
	if code != 143 {
		t.Errorf("exit code %d, want 143; stderr:\n%s", code, stderr.String())
	}
	if took := time.Since(signalled); took > 15*time.Second {
		t.Errorf("took %s to stop after SIGTERM", took)
	}
	if left := containersWith(t, runner.LabelOwnerPID+"="+strconv.Itoa(cmd.Process.Pid)); len(left) > 0 {
		t.Errorf("a sibling was created")
	}
}

// On a terminal the pull is drawn live, layer lines redrawn in place.
func TestPullOnATerminalIsShownLive(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("the tty test needs script(1) from util-linux")
	}
	reg := startRegistry(t)
	ref := reg.ref("tty")
	reg.push(t, ref, "pulled on a tty", false)
	line := strings.Join(append([]string{binary}, pullArgs(ref)...), " ")
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfigDir(t, reg.authsConfig(reg.user, reg.password)))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("pulled on a tty")) {
		t.Fatalf("sibling-run on a terminal: %v\n%s", err, out)
	}
	// jsonmessage erases and redraws a layer's line (ESC [2K); the coloured
	// log lines alone would not.
	if !bytes.Contains(out, []byte("Pull complete")) || !bytes.Contains(out, []byte("\x1b[2K")) {
		t.Errorf("no live display of the pull:\n%q", out)
	}
	if bytes.Contains(out, []byte("layer pulled")) {
		t.Errorf("the log lines for CI logs appear on a terminal too:\n%q", out)
	}
}
