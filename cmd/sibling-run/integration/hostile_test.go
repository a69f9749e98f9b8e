package integration

import (
	"strconv"
	"strings"
	"testing"
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
