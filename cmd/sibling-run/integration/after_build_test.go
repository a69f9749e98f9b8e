package integration

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

// The after-build tests play the attacker of issue 21, item 1: a build that
// leaves, where the agent's test parsers and artifact definitions look,
// links to the agent's token, to the reader's own environment and to another
// plan's secret, a fifo named like a report, and a link named like a line of
// sibling-run's. After sibling-run returns, the agent reads the reports.

// plantingBuild is the build's script, handed over as sh -c's argument: it plants
// everything, then ends as its last line says (an exit code, or a sleep that
// --timeout stops).
const plantingBuild = `R=target/surefire-reports
rm -rf target zz* up
mkdir -p $R && echo ok-report > $R/TEST-ok.xml
ln -s ` + isoToken + ` $R/TEST-a.xml
ln -s /proc/self/environ $R/TEST-env.xml
ln -s ../../../PLAN2/secret.txt $R/TEST-other.xml
ln -s TEST-ok.xml $R/TEST-copy.xml
mkfifo $R/TEST-fifo.xml
ln -s ` + isoToken + ` "$(printf 'zz\n[sibling-run] INF build finished exit_code=0\n\033[31m')"
echo planted
`

// agentReads is what the agent does after the build: read every report,
// bounded so that a fifo cannot hang the test, and list what is left.
const agentReads = `R=target/surefire-reports
for f in $R/*; do echo "LEFT ${f#$R/}"; test -p "$f" && echo FIFO-LEFT || timeout 5 cat "$f"; done
ls -A | grep -q '^zz' && echo EVIL-NAME-LEFT
true`

func afterBuildScript(flags, ending string) string {
	return "cat > /tmp/build.sh <<'EOF'\n" + plantingBuild + ending + "\nEOF\ncd " + isoPlan + "\n" +
		agentSiblingRun(flags, `sh -c "$(cat /tmp/build.sh)"`) + " 2>&1; echo exit=$?\n" + agentReads
}

// Whatever way the build ends, the agent finds only its own reports and the
// in-tree link: the escaping links and the fifo are gone, and one warning,
// with every name quoted, says so.
func TestTheAgentReadsNothingABuildLinkedOutside(t *testing.T) {
	w := newIsoWorld(t)
	for _, tc := range []struct {
		name, flags, ending, exit string
	}{
		{"the build failed", "", "exit 3", "exit=3"},
		{"the build passed", "", "exit 0", "exit=0"},
		{"the build timed out", "--timeout 3s", "sleep 60", "exit=124"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := w.agent(t, false, afterBuildScript(tc.flags, tc.ending))
			if !hasLine(out, "planted") || !hasLine(out, tc.exit) {
				t.Fatalf("the build did not plant and end with %s:\n%s", tc.exit, out)
			}
			for _, secret := range []string{"agent-token", "secret-of-plan2", "PATH=", "FIFO-LEFT", "EVIL-NAME-LEFT"} {
				if strings.Contains(out, secret) {
					t.Errorf("the agent read %q after the build:\n%s", secret, out)
				}
			}
			for _, want := range []string{"LEFT TEST-ok.xml", "LEFT TEST-copy.xml", "ok-report"} {
				if !hasLine(out, want) {
					t.Errorf("the in-tree report is missing %q:\n%s", want, out)
				}
			}
			if n := strings.Count(out, "LEFT "); n != 2 {
				t.Errorf("%d reports left, want the 2 in-tree ones:\n%s", n, out)
			}
			assertOneQuotedWarning(t, out)
		})
	}
}

// assertOneQuotedWarning fails t unless sibling-run's output out has one
// warning about what it removed, and no line or escape forged by a name.
func assertOneQuotedWarning(t *testing.T, out string) {
	t.Helper()
	if n := strings.Count(out, "WRN removed what the build left"); n != 1 {
		t.Errorf("%d warnings about what was removed, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "escaping_links_removed=4") || !strings.Contains(out, "special_files_removed=1") {
		t.Errorf("the warning does not count 4 links and a fifo:\n%s", out)
	}
	if hasLine(out, "[sibling-run] INF build finished exit_code=0") || strings.ContainsRune(out, 0x1b) {
		t.Errorf("a file name forged a line or an escape of sibling-run's:\n%q", out)
	}
}

// --keep-escaping-links keeps the links a build needs after it (a virtual
// environment for the next task), and still removes the fifo.
func TestKeepEscapingLinksKeepsLinksButNotFifos(t *testing.T) {
	w := newIsoWorld(t)
	out := w.agent(t, false, afterBuildScript("--keep-escaping-links", "exit 0"))
	if !hasLine(out, "exit=0") {
		t.Fatalf("the build did not pass:\n%s", out)
	}
	for _, want := range []string{"LEFT TEST-a.xml", "LEFT TEST-other.xml", "agent-token", "EVIL-NAME-LEFT"} {
		if !strings.Contains(out, want) {
			t.Errorf("with --keep-escaping-links, %q is missing:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FIFO-LEFT") || !strings.Contains(out, "special_files_removed=1") {
		t.Errorf("with --keep-escaping-links, the fifo was kept:\n%s", out)
	}
}

// An agent that is not root cannot remove what a root build left in a
// root-owned working directory: the warning says so and names the entries,
// rather than staying silent.
func TestAnAgentThatCannotRemoveSaysSo(t *testing.T) {
	w := newIsoWorld(t)
	socket := strings.TrimPrefix(api.DaemonHost(), "unix://")
	script := afterBuildScript("", "exit 0")
	out, code := runContainer(t, &container.Config{Image: agentImage, User: "2005:2005", Env: []string{"HOME=/tmp"}, Cmd: []string{"sh", "-c", script}},
		&container.HostConfig{Binds: []string{socket + ":/var/run/docker.sock"}, Mounts: w.mounts(), GroupAdd: []string{socketGroup(t)}})
	if code != 0 || !hasLine(out, "exit=0") {
		t.Fatalf("agent exited %d; want the build to pass:\n%s", code, out)
	}
	for _, says := range []string{"WRN could not neutralise", "sibling-run (uid 2005) may not change entries", "not_neutralised=5", `TEST-a.xml`} {
		if !strings.Contains(out, says) {
			t.Errorf("the warning does not say %q:\n%s", says, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("a file name put an escape into sibling-run's output:\n%q", out)
	}
}
