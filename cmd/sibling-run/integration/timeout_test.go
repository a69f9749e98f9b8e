package integration

import (
	"strings"
	"testing"
	"time"
)

// A build that runs longer than --timeout is stopped and removed, with its
// services, and sibling-run exits 124 saying so; one that ignores SIGTERM is
// killed after --stop-timeout.
func TestTimeoutStopsTheBuildWith124(t *testing.T) {
	web := webImage(t)
	for _, tc := range []struct {
		name  string
		args  []string
		says  string
		under time.Duration
	}{
		{"sleep", []string{"--timeout", "1s", "sleep", "30"}, "timed out after 1s", 10 * time.Second},
		{"ignores SIGTERM", []string{"--timeout", "1s", "--stop-timeout", "1s", "sh", "-c", "trap '' TERM; while :; do sleep 1; done"}, "killing it", 10 * time.Second},
		{"with a service", []string{"--timeout", "1s", "--service", web, "sleep", "30"}, "timed out after 1s", 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, t.TempDir(), nil, buildArgs(tc.args...)...)
			if r.code != 124 || !strings.Contains(r.stderr, tc.says) {
				t.Errorf("exit %d, want 124 and %q; stderr:\n%s", r.code, tc.says, r.stderr)
			}
			if r.took > tc.under {
				t.Errorf("took %s, want under %s", r.took, tc.under)
			}
		})
	}
	assertNothingLeft(t, testLabel)
}

// --pids-limit, --shm-size and --tmpfs reach the build.
func TestLimitsReachTheBuild(t *testing.T) {
	script := "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; " +
		"df -k /dev/shm | tail -n 1; grep ' /scratch ' /proc/mounts"
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--pids-limit", "64", "--shm-size", "32m", "--tmpfs", "/scratch:size=8m,noexec", "sh", "-c", script)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", r.stdout)
	}
	if lines[0] != "64" {
		t.Errorf("pids.max = %q, want 64", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) < 2 || f[1] != "32768" {
		t.Errorf("/dev/shm is not 32768 KiB: %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(f[3], "size=8192k") || !strings.Contains(f[3], "noexec") {
		t.Errorf("/scratch is not an 8 MiB noexec tmpfs: %q", lines[2])
	}
}
