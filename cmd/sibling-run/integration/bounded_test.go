package integration

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sibling-run/runner"
)

// An engine that never reports a build's exit (Podman has been seen to, when
// its cleanup failed) must not hang the task. The engine here is the real
// one behind a loopback proxy that passes every request on except the wait
// for the exit, which it holds without an answer. sibling-run stops the build
// on SIGTERM, waits its bounded time for the exit, then exits 125 naming the
// engine, and still removes the sibling.
func TestAnEngineThatNeverReportsTheExitDoesNotHangTheTask(t *testing.T) {
	host := engineWithoutExitReports(t)
	cmd, stderr := startWithEnv(t, t.TempDir(), []string{"DOCKER_HOST=" + host}, buildArgs("--stop-timeout", "1s", "sh", "-c", "echo ready; sleep 300")...)
	pidLabel := runner.LabelOwnerPID + "=" + strconv.Itoa(cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	code := waitExitCode(t, cmd, stderr)
	t.Logf("sibling-run gave up on the exit report %s after SIGTERM", time.Since(started).Round(time.Second))
	if code != 125 || !strings.Contains(stderr.String(), "did not report the build's exit after it was killed") || !strings.Contains(stderr.String(), host) || !strings.Contains(stderr.String(), "sibling-run reap") {
		t.Errorf("exit %d, want 125 with a line naming the engine %s and reap; stderr:\n%s", code, host, stderr)
	}
	if left := containersWith(t, testLabel, pidLabel); len(left) > 0 {
		t.Errorf("the sibling is still there")
	}
}

// engineWithoutExitReports serves the real engine's API on loopback, except
// that requests to wait for a container's exit get no answer, and returns
// its address for DOCKER_HOST.
func engineWithoutExitReports(t *testing.T) string {
	t.Helper()
	socket, ok := strings.CutPrefix(api.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the proxy dials the engine's unix socket; DOCKER_HOST is %s", api.DaemonHost())
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "engine"})
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}
	wait := regexp.MustCompile(`/containers/[^/]+/wait$`)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait.MatchString(r.URL.Path) {
			// As the engine does, the answer's head comes at once; its body,
			// the exit, never does.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // held until the client gives up or the test ends
			return
		}
		proxy.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: handler}
	go func() { _ = server.Serve(l) }()
	t.Cleanup(func() { server.Close() })
	return "tcp://" + l.Addr().String()
}
