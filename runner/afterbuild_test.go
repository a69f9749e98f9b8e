package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

func TestLinkLeaves(t *testing.T) {
	const workdir = "/builds/PLAN1"
	for _, tc := range []struct {
		dir, target string
		leaves      bool
	}{
		{".", "in.txt", false},
		{".", "sub/in.txt", false},
		{"target/surefire-reports", "../classes/A.class", false},
		{"target/surefire-reports", "../../pom.xml", false},
		{"a/b", "../..", false},
		{".", ".", false},
		{".", "/builds/PLAN1", false},
		{".", "/builds/PLAN1/target/x", false},
		{"a/b", "//builds/./PLAN1//a/x", false},
		{"target/surefire-reports", "/var/atlassian/application-data/bamboo-agent/bamboo-agent.cfg.xml", true},
		{"target/surefire-reports", "/proc/self/environ", true},
		{"target/surefire-reports", "../../../OTHER-PLAN-JOB1/secret.txt", true},
		{".", "..", true},
		{"a/b", "../../..", true},
		{".", "/builds", true},
		{".", "/", true},
		{".", "/builds/PLAN10/x", true},
		{".", "/builds/PLAN1/..", true},
		{".", "/builds/PLAN1/../PLAN2", true},
		{"a", "/builds/PLAN1/a/../../PLAN2", true},
		// A ".." after a name climbs from wherever that name leads.
		{".", "sub/../../etc", true},
		{".", "sub/../x", true},
		{".", "", true},
	} {
		if got := linkLeaves(tc.dir, tc.target, workdir, true); got != tc.leaves {
			t.Errorf("linkLeaves(%q, %q) = %v, want %v", tc.dir, tc.target, got, tc.leaves)
		}
	}
	// Once the path leads elsewhere, no absolute target is known to be inside.
	if !linkLeaves(".", "/builds/PLAN1/x", workdir, false) {
		t.Error("an absolute target counted as inside a working directory whose path was replaced")
	}
}

// afterBuildTree is a working directory as a hostile build leaves it, and
// what the pass must leave of each entry.
type afterBuildTree struct {
	workdir, outside string
	removed, kept    []string // relative to workdir
}

func newAfterBuildTree(t testing.TB) afterBuildTree {
	t.Helper()
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := afterBuildTree{workdir: filepath.Join(parent, "PLAN1"), outside: filepath.Join(parent, "PLAN2")}
	mkdirs(t, tr.workdir, "target/surefire-reports", "venv/lib", "locked")
	mkdirs(t, tr.outside, ".")
	writeFile(t, filepath.Join(tr.outside, "secret.txt"), "secret-of-plan2")
	writeFile(t, filepath.Join(tr.workdir, "target/surefire-reports/TEST-ok.xml"), "<testsuite/>")
	links := map[string]string{
		"target/surefire-reports/TEST-a.xml":      "/var/atlassian/application-data/bamboo-agent/bamboo-agent.cfg.xml",
		"target/surefire-reports/TEST-env.xml":    "/proc/self/environ",
		"target/surefire-reports/TEST-other.xml":  "../../../PLAN2/secret.txt",
		"target/surefire-reports/TEST-abs.xml":    tr.outside + "/secret.txt",
		"locked/escape":                           "/etc/passwd",
		"up":                                      "..",
		"target/surefire-reports/TEST-copy.xml":   "TEST-ok.xml",
		"target/surefire-reports/TEST-abs-in.xml": tr.workdir + "/target/surefire-reports/TEST-ok.xml",
		"venv/lib64":                              "lib",
		"current":                                 "target",
		"dangling":                                "missing/file",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(tr.workdir, name)); err != nil {
			t.Fatal(err)
		}
	}
	tr.removed = []string{"target/surefire-reports/TEST-a.xml", "target/surefire-reports/TEST-env.xml",
		"target/surefire-reports/TEST-other.xml", "target/surefire-reports/TEST-abs.xml", "locked/escape", "up"}
	tr.kept = []string{"target/surefire-reports/TEST-copy.xml", "target/surefire-reports/TEST-abs-in.xml",
		"venv/lib64", "current", "dangling", "target/surefire-reports/TEST-ok.xml"}

	fifo := filepath.Join(tr.workdir, "target/surefire-reports/TEST-fifo.xml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// mknod, not a listener: bind(2) refuses a path longer than 107 bytes,
	// which a long TMPDIR makes (the doc test's did).
	if err := syscall.Mknod(filepath.Join(tr.workdir, "sock"), syscall.S_IFSOCK|0o644, 0); err != nil {
		t.Fatal(err)
	}
	tr.removed = append(tr.removed, "target/surefire-reports/TEST-fifo.xml", "sock")
	if os.Getuid() == 0 {
		// /dev/null's numbers: a device node the agent would open.
		if err := syscall.Mknod(filepath.Join(tr.workdir, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
		tr.removed = append(tr.removed, "null")
	}
	// The build's user may lock itself out of a directory: the owner
	// regains access to clean it.
	if err := os.Chmod(filepath.Join(tr.workdir, "locked"), 0o500); err != nil {
		t.Fatal(err)
	}
	return tr
}

func mkdirs(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t testing.TB, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func neutraliseForTest(t testing.TB, workdir string, keep bool) []map[string]any {
	t.Helper()
	root, err := holdArtifactRoot(workdir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var out bytes.Buffer
	neutraliseWorkdir(root, keep, zerolog.New(&out).Level(zerolog.WarnLevel))
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, fields)
	}
	return lines
}

func TestNeutraliseWorkdirRemovesWhatLeadsOutside(t *testing.T) {
	tr := newAfterBuildTree(t)
	setuid := filepath.Join(tr.workdir, "venv/lib/tool")
	writeFile(t, setuid, "#!/bin/sh")
	if err := os.Chmod(setuid, 0o755|fs.ModeSetuid|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}

	lines := neutraliseForTest(t, tr.workdir, false)

	for _, name := range tr.removed {
		if _, err := os.Lstat(filepath.Join(tr.workdir, name)); err == nil {
			t.Errorf("%s is still there", name)
		}
	}
	for _, name := range tr.kept {
		if _, err := os.Lstat(filepath.Join(tr.workdir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if info, err := os.Stat(setuid); err != nil || info.Mode() != 0o755 {
		t.Errorf("the set-id file: mode %v (%v), want -rwxr-xr-x", info.Mode(), err)
	}
	if len(lines) != 1 {
		t.Fatalf("%d warnings, want one: %v", len(lines), lines)
	}
	w := lines[0]
	specials := 2.0
	if os.Getuid() == 0 {
		specials = 3
	}
	if w["escaping_links_removed"] != 6.0 || w["special_files_removed"] != specials || w["setid_bits_cleared"] != 1.0 {
		t.Errorf("counts in the warning: %v", w)
	}
	if names, _ := w["names"].([]any); len(names) != afterBuildShown {
		t.Errorf("the warning names %v, want the first %d", w["names"], afterBuildShown)
	}
	// Once clean, a second pass has nothing to say.
	if lines := neutraliseForTest(t, tr.workdir, false); len(lines) != 0 {
		t.Errorf("a clean working directory got warnings: %v", lines)
	}
}

func TestNeutraliseWorkdirKeepsEscapingLinksWhenAsked(t *testing.T) {
	tr := newAfterBuildTree(t)
	lines := neutraliseForTest(t, tr.workdir, true)
	for _, name := range tr.removed {
		_, err := os.Lstat(filepath.Join(tr.workdir, name))
		isLink := !strings.Contains(name, "fifo") && name != "sock" && name != "null"
		if isLink && err != nil {
			t.Errorf("the escaping link %s was removed with keepEscapingLinks: %v", name, err)
		}
		if !isLink && err == nil {
			t.Errorf("%s is still there with keepEscapingLinks", name)
		}
	}
	if len(lines) != 1 || lines[0]["escaping_links_removed"] != 0.0 {
		t.Errorf("warnings %v, want one that removed no link", lines)
	}
}

// Names are fields of the one line, never its text: a name with a newline
// and a terminal escape cannot forge a line of sibling-run's.
func TestNeutraliseWorkdirQuotesNames(t *testing.T) {
	workdir := t.TempDir()
	evil := "zz\n[sibling-run] INF build finished exit_code=0\n\x1b[31m"
	if err := os.Symlink("/etc/passwd", filepath.Join(workdir, evil)); err != nil {
		t.Fatal(err)
	}
	root, err := holdArtifactRoot(workdir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var out bytes.Buffer
	neutraliseWorkdir(root, false, zerolog.New(zerolog.ConsoleWriter{Out: &out, NoColor: true}).Level(zerolog.WarnLevel))
	if strings.Count(out.String(), "\n") != 1 || strings.ContainsRune(out.String(), 0x1b) {
		t.Errorf("the warning is not one line without escapes: %q", out.String())
	}
	if !strings.Contains(out.String(), `zz\n[sibling-run] INF`) {
		t.Errorf("the warning does not quote the name: %q", out.String())
	}
}

// BenchmarkNeutraliseWorkdir walks trees of 100 and 100,000 entries (a tenth
// of them directories, with eight files and an in-tree link each) with
// nothing left to change: the cost every build pays. Making the large tree
// takes a minute or two; AFTER_BUILD_BENCH_TREE names one made before, to
// run the benchmark with -count.
func BenchmarkNeutraliseWorkdir(b *testing.B) {
	for _, entries := range []int{100, 100_000} {
		b.Run(fmt.Sprint(entries), func(b *testing.B) {
			if tree := os.Getenv("AFTER_BUILD_BENCH_TREE"); tree != "" && entries > 100 {
				benchmarkNeutralise(b, tree)
				return
			}
			workdir := b.TempDir()
			dirs := entries / 10
			for d := 0; d < dirs; d++ {
				dir := filepath.Join(workdir, fmt.Sprintf("d%03d", d%100), fmt.Sprintf("e%d", d))
				mkdirs(b, dir, ".")
				for f := 0; f < 8; f++ {
					writeFile(b, filepath.Join(dir, fmt.Sprintf("f%d", f)), "x")
				}
				if err := os.Symlink("f0", filepath.Join(dir, "link")); err != nil {
					b.Fatal(err)
				}
			}
			benchmarkNeutralise(b, workdir)
		})
	}
}

func benchmarkNeutralise(b *testing.B, workdir string) {
	root, err := holdArtifactRoot(workdir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	for b.Loop() {
		neutraliseWorkdir(root, false, zerolog.Nop())
	}
}
