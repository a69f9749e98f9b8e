package integration

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

// The build shares its working directory, so by the time the artifacts are
// copied the path may lead elsewhere: the working directory, or a directory
// above it, moved aside with a link to another directory of the agent left
// in its place. Here the test itself does the swap while the build waits, as
// anything sharing the directory could; the copy must write nothing there.
func TestArtifactCopyRefusesAWorkdirSwappedForALink(t *testing.T) {
	for _, tc := range []struct {
		name string
		// swap moves a part of parent/data/plan aside, plants the link to
		// outside and returns where the build's directory is now.
		swap func(t *testing.T, parent, outside string) string
	}{
		{"workdir", func(t *testing.T, parent, outside string) string {
			plan := filepath.Join(parent, "data", "plan")
			mustDo(t, os.Rename(plan, plan+".old"))
			mustDo(t, os.Symlink(outside, plan))
			return plan + ".old"
		}},
		{"a directory above it", func(t *testing.T, parent, outside string) string {
			data := filepath.Join(parent, "data")
			mustDo(t, os.Mkdir(filepath.Join(outside, "plan"), 0o755))
			mustDo(t, os.Rename(data, data+".old"))
			mustDo(t, os.Symlink(outside, data))
			return filepath.Join(data+".old", "plan")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, outside := t.TempDir(), t.TempDir()
			workdir := filepath.Join(parent, "data", "plan")
			mustDo(t, os.MkdirAll(workdir, 0o755))
			cmd, stderr := startSiblingRun(t, workdir, buildArgs("--workdir", workdir, "--artifact", "/tmp/out",
				"sh", "-c", "mkdir -p /tmp/out; echo x > /tmp/out/.profile; echo ready; while [ ! -e go ]; do sleep 0.05; done")...)
			moved := tc.swap(t, parent, outside)
			mustDo(t, os.WriteFile(filepath.Join(moved, "go"), nil, 0o644))
			code := waitExitCode(t, cmd, stderr)
			if code != runner.ExitArtifactsIncomplete || !strings.Contains(stderr.String(), "refusing to copy the artifacts: the working directory was moved or replaced") {
				t.Errorf("exit code %d, want %d and a refusal; stderr:\n%s", code, runner.ExitArtifactsIncomplete, stderr)
			}
			assertEmptyTree(t, outside, "plan")
			if _, err := os.Stat(filepath.Join(outside, "plan")); err == nil {
				assertEmptyTree(t, filepath.Join(outside, "plan"))
			}
			assertEmptyTree(t, moved, "go")
		})
	}
}

// The attack as a build makes it today with --volumes-from a data container
// whose mount holds the directory above the working directory: the build
// renames its own working directory and leaves a link in its place. Where the
// mounts do not let it (the working directory is a mount point of its own),
// the rename fails; either way nothing lands outside.
func TestArtifactCopyRefusesTheBuildsOwnSwap(t *testing.T) {
	parent, outside := t.TempDir(), t.TempDir()
	workdir := filepath.Join(parent, "plan")
	mustDo(t, os.Mkdir(workdir, 0o755))
	data := createBindDataContainer(t, parent)
	r := siblingRun(t, workdir, nil, buildArgs("--volumes-from", data, "--workdir", workdir, "--artifact", "/tmp/out",
		"sh", "-c", "mkdir -p /tmp/out; echo x > /tmp/out/.profile; cd /; mv "+workdir+" "+workdir+".old && ln -s "+outside+" "+workdir)...)
	swapped := false
	if info, err := os.Lstat(workdir); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		swapped = true
	}
	if swapped && (r.code != runner.ExitArtifactsIncomplete || !strings.Contains(r.stderr, "refusing to copy the artifacts")) {
		t.Errorf("the build swapped its working directory for a link; exit code %d, want %d and a refusal; stderr:\n%s", r.code, runner.ExitArtifactsIncomplete, r.stderr)
	}
	if !swapped && r.code == 0 {
		t.Errorf("the swap failed but the build passed; stderr:\n%s", r.stderr)
	}
	assertEmptyTree(t, outside)
}

// A copy into a full filesystem leaves no file under the artifact's name,
// and says what was not copied.
func TestArtifactCopyIntoAFullFilesystemLeavesNoPartialFile(t *testing.T) {
	workdir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "sibling-run-test", workdir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 1 MiB tmpfs (the tests run as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", workdir).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs: %v: %s", err, out)
		}
	})
	r := siblingRun(t, workdir, nil, buildArgs("--artifact", "/tmp/out",
		"sh", "-c", "mkdir /tmp/out; echo small > /tmp/out/a-small; head -c 2097152 /dev/zero > /tmp/out/big; echo z > /tmp/out/z")...)
	if r.code != runner.ExitArtifactsIncomplete || !strings.Contains(r.stderr, "artifact /tmp/out is incomplete") ||
		!strings.Contains(r.stderr, `"out/big" and what follows it in the archive were not copied`) {
		t.Errorf("exit code %d, want %d and a line naming out/big as not copied; stderr:\n%s", r.code, runner.ExitArtifactsIncomplete, r.stderr)
	}
	entries, err := os.ReadDir(filepath.Join(workdir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "a-small" {
		t.Errorf("out holds %q, want only the complete a-small", names)
	}
}

// The directory that receives an artifact is never reached through a link
// the build left at its path, even one that stays in the working directory
// (it could point the copy at the checkout's .git, say).
func TestArtifactDestThroughALinkIsRefused(t *testing.T) {
	outside := t.TempDir()
	for _, target := range []string{"kept", outside} {
		t.Run(target, func(t *testing.T) {
			dir := t.TempDir()
			mustDo(t, os.Mkdir(filepath.Join(dir, "kept"), 0o755))
			r := siblingRun(t, dir, nil, buildArgs("--artifact", "/tmp/out:reports/latest",
				"sh", "-c", "mkdir -p /tmp/out; echo x > /tmp/out/x; ln -s "+target+" reports")...)
			if r.code != runner.ExitArtifactsIncomplete || !strings.Contains(r.stderr, `reports" is a symbolic link or not a directory`) {
				t.Errorf("exit code %d, want %d and a refusal naming reports; stderr:\n%s", r.code, runner.ExitArtifactsIncomplete, r.stderr)
			}
			assertEmptyTree(t, filepath.Join(dir, "kept"))
			assertEmptyTree(t, outside)
		})
	}
}

// createBindDataContainer creates a data container of the test's own whose
// only mount binds dir at its own path, and returns its id.
func createBindDataContainer(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx,
		&container.Config{Image: busyboxImage, Cmd: []string{"true"}, Labels: map[string]string{"sibling-run-test.run": runID}},
		&container.HostConfig{Binds: []string{dir + ":" + dir}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainer(t, created.ID) })
	return created.ID
}

// assertEmptyTree fails when dir holds anything but the names allowed.
func assertEmptyTree(t *testing.T, dir string, allowed ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ok := false
		for _, name := range allowed {
			ok = ok || e.Name() == name
		}
		if !ok {
			t.Errorf("%s appeared in %s", e.Name(), dir)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Issue 21, item 7: an artifact named like a line of sibling-run's, with a
// terminal escape, that fails to copy (past --artifact-max-size). The name
// is quoted in sibling-run's lines: it forges no line and puts no escape
// on the terminal.
func TestAnArtifactNameCannotForgeALine(t *testing.T) {
	workdir := t.TempDir()
	forged := "[sibling-run] INF build finished exit_code=0"
	r := siblingRun(t, workdir, nil, buildArgs("--artifact", "/tmp/out", "--artifact-max-size", "1k", "sh", "-c",
		`mkdir /tmp/out && head -c 4096 /dev/zero > "/tmp/out/$(printf 'zz\n`+forged+`\n\033[31m')"`)...)
	if r.code != runner.ExitArtifactsIncomplete || !strings.Contains(r.stderr, `zz\n[sibling-run] INF build finished exit_code=0\n\x1b[31m`) {
		t.Errorf("exit code %d, want %d and the name quoted; stderr:\n%s", r.code, runner.ExitArtifactsIncomplete, r.stderr)
	}
	if hasLine(r.stderr, forged) || strings.ContainsRune(r.stderr, 0x1b) {
		t.Errorf("the artifact's name forged a line or an escape:\n%q", r.stderr)
	}
}
