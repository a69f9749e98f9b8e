package integration

import (
	"strings"
	"testing"

	"sibling-run/runner"
)

// An agent in a private cgroup namespace (Podman's default, and Docker's on
// cgroup v2 hosts) cannot read its container id from /proc/self/cgroup.
// Whatever the engine, sibling-run must then find the agent another way or
// refuse with 125; it must never bind the working directory's path from the
// engine's host, which the engine would create there empty, so that the
// build runs on nothing and may pass. Under Podman the engine's files are
// under …/<id>/userdata/, not Docker's …/containers/<id>/.
func TestAgentInAPrivateCgroupNamespaceFindsItselfOrRefuses(t *testing.T) {
	data := createDataContainer(t, "/builds")
	build := `sh -c 'cat in.txt 2>/dev/null || echo workdir-empty; echo from-sibling > out.txt'`
	script := "mkdir -p /builds/job1 && echo from-agent > /builds/job1/in.txt && cd /builds/job1 && " +
		agentSiblingRun("", build) + "; echo exit=$?; echo agent sees $(cat out.txt 2>/dev/null)"
	out, code := runAgent(t, data, "private", script)
	if code != 0 {
		t.Fatalf("agent exited %d:\n%s", code, out)
	}
	t.Logf("agent output:\n%s", out)
	switch {
	case hasLine(out, "workdir-empty"):
		t.Errorf("the build ran in an empty directory instead of the agent's working directory:\n%s", out)
	case hasLine(out, "exit=125"):
		if strings.Contains(out, "from-agent") || !strings.Contains(out, "/builds/job1") {
			t.Errorf("a refusal must name the working directory and run no build:\n%s", out)
		}
	default:
		for _, want := range []string{"from-agent", "exit=0", "agent sees from-sibling"} {
			if !hasLine(out, want) {
				t.Errorf("agent output lacks the line %q:\n%s", want, out)
			}
		}
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind by the agent", len(left))
	}
}
