package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"sibling-run/runner"
)

// The remote mode's tests run with --remote=true against the engine under
// test, whatever its address: the working directory is copied into a volume
// of the run's own and back, as it is to an engine on another host. (The
// tests over TCP and TLS, with a working directory the engine cannot see,
// are tls_test.go's.)

// remoteArgs are buildArgs with the remote mode forced.
func remoteArgs(extra ...string) []string {
	return buildArgs(append([]string{"--remote=true"}, extra...)...)
}

// runVolumesWith lists the run volumes (remote mode) that carry all labels.
func runVolumesWith(t *testing.T, labels ...string) []*volume.Volume {
	t.Helper()
	return volumesWith(t, runner.LabelRole+"=workdir", labels...)
}

// assertNoRunVolume fails t when the run of pid left its volume.
func assertNoRunVolume(t *testing.T, pid int) {
	t.Helper()
	for _, v := range runVolumesWith(t, testLabel, pidLabel(pid)) {
		t.Errorf("the run's volume %s is still on the engine", v.Name)
	}
}

// Exit codes and both streams pass through as they do with a mount.
func TestRemoteExitCodesAndStreams(t *testing.T) {
	for _, tc := range []struct {
		build string
		code  int
	}{
		{`printf 'out\000\377 end'; printf 'err line\n' >&2`, 0},
		{`printf 'out\000\377 end'; printf 'err line\n' >&2; exit 3`, 3},
	} {
		r := siblingRun(t, t.TempDir(), nil, remoteArgs("sh", "-c", tc.build)...)
		if r.code != tc.code || r.stdout != "out\x00\xff end" || !strings.HasPrefix(r.stderr, "err line\n") && !strings.Contains(r.stderr, "\nerr line\n") {
			t.Errorf("%s: exit %d (want %d), stdout %q; stderr:\n%s", tc.build, r.code, tc.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "copied the working directory in:") || !strings.Contains(r.stderr, "copied the working directory back:") {
			t.Errorf("no line for each direction of the copy:\n%s", r.stderr)
		}
		assertNoRunVolume(t, r.pid)
	}
	r := siblingRun(t, t.TempDir(), nil, remoteArgs("no-such-command")...)
	if r.code != 127 {
		t.Errorf("a missing command: exit %d, want 127; stderr:\n%s", r.code, r.stderr)
	}
	assertNoRunVolume(t, r.pid)
}

// The build sees its working directory with its files, owned by the user it
// runs as, and can write it; what it changed, made, deleted and chmodded
// comes back, owned as the directory is; a file it did not touch is not
// rewritten.
func TestRemoteWorkdirGoesAndComesBack(t *testing.T) {
	dir := nonRootDir(t)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := map[string]string{"keep.txt": "kept\n", "change.txt": "before\n", "gone.txt": "x\n", "gone-dir/inner/f": "y\n", "sub/mode.sh": "echo\n"}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("keep.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "4242:4343", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	keptBefore := inode(t, filepath.Join(dir, "keep.txt"))

	build := `set -e
stat -c '%u:%g %a %n' . keep.txt sub/mode.sh
readlink link
cat keep.txt
echo after > change.txt
echo new > new.txt
mkdir -p made/deep && echo deep > made/deep/f
rm gone.txt && rm -r gone-dir
chmod 755 sub/mode.sh`
	r := siblingRun(t, dir, nil, remoteArgs("sh", "-c", build)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	want := "4242:4343 755 .\n4242:4343 644 keep.txt\n4242:4343 644 sub/mode.sh\nkeep.txt\nkept\n"
	if r.stdout != want {
		t.Errorf("the build saw:\n%s\nwant:\n%s", r.stdout, want)
	}
	for name, content := range map[string]string{"change.txt": "after\n", "new.txt": "new\n", "made/deep/f": "deep\n", "keep.txt": "kept\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != content {
			t.Errorf("%s: %q, %v; want %q", name, got, err, content)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, name), &st); err != nil || st.Uid != 4242 || st.Gid != 4343 {
			t.Errorf("%s is owned by %d:%d, want the directory's 4242:4343", name, st.Uid, st.Gid)
		}
	}
	for _, name := range []string{"gone.txt", "gone-dir"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s, which the build deleted, is still there (%v)", name, err)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "sub/mode.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("sub/mode.sh: %v, %v; want mode 755", info, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "keep.txt" {
		t.Errorf("the link came back as %q, %v", target, err)
	}
	if inode(t, filepath.Join(dir, "keep.txt")) != keptBefore {
		t.Error("keep.txt, which the build did not change, was rewritten")
	}
	assertNoRunVolume(t, r.pid)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// What a hostile build leaves to lead the agent elsewhere does not come
// back: links out of the directory, a fifo, a device, a file written
// through a link.
func TestRemoteHostileEntriesDoNotComeBack(t *testing.T) {
	dir := t.TempDir()
	build := `ln -s /etc/passwd out-abs; ln -s ../../../../etc up; mkfifo fifo; mknod dev c 1 3; ln -s /tmp through; echo pwned > through/pwned
mkdir real && ln -s real inside; echo ok > real/f; echo done`
	r := siblingRun(t, dir, nil, remoteArgs("--user", "0:0", "sh", "-c", build)...)
	if r.code != 0 || r.stdout != "done\n" {
		t.Fatalf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{"out-abs", "up", "fifo", "dev", "through"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s came back (%v)", name, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "inside", "f")); err != nil || string(got) != "ok\n" {
		t.Errorf("a link inside the directory and its target: %q, %v", got, err)
	}
	if !strings.Contains(r.stderr, "refused a working-directory entry") {
		t.Errorf("no warning names the refused entries:\n%s", r.stderr)
	}
	assertNoRunVolume(t, r.pid)
}

// A signal and a timeout stop the build, bring back what it wrote until
// then, and leave neither the sibling nor its volume.
func TestRemoteStopLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	cmd, stderr := startSiblingRun(t, dir, remoteArgs("sh", "-c", "echo before > written; echo ready; sleep 300")...)
	if n := len(runVolumesWith(t, testLabel, pidLabel(cmd.Process.Pid))); n != 1 {
		t.Fatalf("%d run volumes while the build runs, want 1", n)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := waitExitCode(t, cmd, stderr); got != 143 {
		t.Errorf("SIGTERM: exit %d, want 143; stderr:\n%s", got, stderr)
	}
	if left := containersWith(t, testLabel, pidLabel(cmd.Process.Pid)); len(left) > 0 {
		t.Error("the sibling is still there after SIGTERM")
	}
	assertNoRunVolume(t, cmd.Process.Pid)
	if got, err := os.ReadFile(filepath.Join(dir, "written")); err != nil || string(got) != "before\n" {
		t.Errorf("what the stopped build wrote: %q, %v", got, err)
	}

	r := siblingRun(t, dir, nil, remoteArgs("--timeout", "2s", "--stop-timeout", "1s", "sh", "-c", "echo late > late; sleep 300")...)
	if r.code != 124 {
		t.Errorf("--timeout: exit %d, want 124; stderr:\n%s", r.code, r.stderr)
	}
	assertNoRunVolume(t, r.pid)
	if got, err := os.ReadFile(filepath.Join(dir, "late")); err != nil || string(got) != "late\n" {
		t.Errorf("what the timed-out build wrote: %q, %v", got, err)
	}
}

// After a SIGKILL of sibling-run, reap removes the run's volume with its
// sibling.
func TestRemoteReapRemovesTheVolumeAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	killed, _ := startSiblingRun(t, dir, remoteArgs("sh", "-c", "echo ready; sleep 300")...)
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	vols := runVolumesWith(t, testLabel, pidLabel(killed.Process.Pid))
	if len(vols) != 1 {
		t.Fatalf("%d run volumes after SIGKILL, want the 1 orphan", len(vols))
	}
	if vols[0].Labels[runner.LabelCache] != "" {
		t.Errorf("the run volume carries the cache label: %v", vols[0].Labels)
	}
	r := siblingRun(t, dir, nil, "reap", "--label", testLabel)
	if r.code != 0 || !strings.Contains(r.stdout, "removed volume "+vols[0].Name) {
		t.Errorf("reap: exit %d, stdout %q; want it to name the volume %s; stderr:\n%s", r.code, r.stdout, vols[0].Name, r.stderr)
	}
	assertNoRunVolume(t, killed.Process.Pid)
	if left := containersWith(t, testLabel, pidLabel(killed.Process.Pid)); len(left) > 0 {
		t.Error("the orphaned sibling is still there after reap")
	}
}

// Caches (volumes of the engine) and artifacts work as with a mount.
func TestRemoteCacheAndArtifact(t *testing.T) {
	dir := nonRootDir(t)
	label := cacheCase(t)
	args := func(build string) []string {
		return remoteArgs("--label", label, "--cache", "/c", "--artifact", "/tmp/out:arts", "sh", "-c", build)
	}
	mustRun(t, dir, nil, args("mkdir -p /tmp/out && echo one > /tmp/out/a && echo first > /c/seen")...)
	out := mustRun(t, dir, nil, args("mkdir -p /tmp/out && echo two > /tmp/out/a && cat /c/seen")...)
	if out != "first\n" {
		t.Errorf("the second build saw %q in its cache, want first", out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "arts", "out", "a")); err != nil || string(got) != "two\n" {
		t.Errorf("the artifact: %q, %v", got, err)
	}
}

// Bad input is refused with one line and exit 125, creating nothing.
func TestRemoteRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{buildArgs("--remote", "maybe", "true"), "--remote \"maybe\": give auto"},
		{remoteArgs("-v", "/etc:/host-etc", "true"), "a bind of a host path"},
		{remoteArgs("--volumes-from", "some-agent", "true"), "--volumes-from some-agent"},
	} {
		r := siblingRun(t, t.TempDir(), nil, tc.args...)
		assertRefused(t, r, tc.says)
		assertCreatedNothing(t, r)
	}
	r := siblingRun(t, t.TempDir(), []string{"SIBLING_RUN_REMOTE=yes"}, buildArgs("--dry-run", "true")...)
	if r.code != 0 || !strings.Contains(r.stdout, `"runVolume"`) || !strings.Contains(r.stdout, "copied in before the build starts") {
		t.Errorf("--dry-run with SIBLING_RUN_REMOTE=yes: exit %d, want the run volume and the copy in the spec:\n%s", r.code, r.stdout)
	}
	assertCreatedNothing(t, r)
}
