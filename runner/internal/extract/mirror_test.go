package extract

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// mirrorInto runs Mirror on data into dest, a directory of the test.
func mirrorInto(t *testing.T, dest string, data []byte, opts MirrorOptions) (MirrorStats, string, error) {
	t.Helper()
	root, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var log bytes.Buffer
	stats, err := Mirror(bytes.NewReader(data), root, opts, zerolog.New(&log))
	return stats, log.String(), err
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The engine's archive of /w/job names every entry under "job"; what the
// copy in sent and is missing is removed, the rest written.
func TestMirrorAppliesChangesAndDeletions(t *testing.T) {
	dest := t.TempDir()
	writeFiles(t, dest, map[string]string{"a": "old", "gone": "x", "d/gone": "y", "d/kept": "z", "unknown": "written meanwhile"})
	data := archive(dir("job/"), file("job/a", "new"), file("job/b", "made"), dir("job/d/"), file("job/d/kept", "z"))
	stats, log, err := mirrorInto(t, dest, data, MirrorOptions{Sent: []string{".", "a", "gone", "d", "d/gone", "d/kept"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for name, want := range map[string]string{"a": "new", "b": "made", "d/kept": "z", "unknown": "written meanwhile"} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"gone", "d/gone"} {
		if _, err := os.Lstat(filepath.Join(dest, name)); !os.IsNotExist(err) {
			t.Errorf("%s was deleted by the build but is still there", name)
		}
	}
	if stats.Removed != 2 || stats.Entries != 4 {
		t.Errorf("stats %+v, want 2 removed, 4 entries", stats)
	}
}

// A directory the build deleted goes with what it held; one that holds
// something nobody sent stays, and is counted.
func TestMirrorRemovesDeletedDirectoriesDeepestFirst(t *testing.T) {
	dest := t.TempDir()
	writeFiles(t, dest, map[string]string{"tree/a/b/f": "1", "busy/f": "2", "busy/new": "3"})
	stats, _, err := mirrorInto(t, dest, archive(dir("job/")), MirrorOptions{Sent: []string{".", "tree", "tree/a", "tree/a/b", "tree/a/b/f", "busy", "busy/f"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "tree")); !os.IsNotExist(err) {
		t.Error("the deleted tree is still there")
	}
	if _, err := os.Lstat(filepath.Join(dest, "busy/new")); err != nil || stats.NotRemoved != 1 {
		t.Errorf("a deleted directory holding a new file: %v, stats %+v; want it kept and counted", err, stats)
	}
}

// A file sent unchanged and back unchanged is not rewritten; one whose
// size, time or mode differs is.
func TestMirrorSkipsUnchangedFiles(t *testing.T) {
	dest := t.TempDir()
	old := time.Unix(1577934245, 0)
	writeFiles(t, dest, map[string]string{"same": "abc", "touched": "abc"})
	for _, n := range []string{"same", "touched"} {
		if err := os.Chtimes(filepath.Join(dest, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	inode := func(name string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dest, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	before := inode("same")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "job/", Typeflag: tar.TypeDir, Mode: 0o755})
	// The build rewrote "touched" with other bytes of the same size.
	for _, f := range []struct {
		name, body string
		mtime      time.Time
	}{{"same", "abc", old}, {"touched", "xyz", old.Add(time.Hour)}} {
		_ = tw.WriteHeader(&tar.Header{Name: "job/" + f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: f.mtime})
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.Close()
	sent := Sent{Size: 3, ModTime: old.Unix(), Perm: 0o644}
	opts := MirrorOptions{Sent: []string{".", "same", "touched"}, Unchanged: map[string]Sent{"same": sent, "touched": sent}}
	stats, _, err := mirrorInto(t, dest, buf.Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "touched")); string(got) != "xyz" || stats.Unchanged != 1 {
		t.Errorf("a file changed by the build: %q, stats %+v; want it written and one file unchanged", got, stats)
	}
	if inode("same") != before {
		t.Error("a file sent and returned with its size, time and mode was rewritten")
	}
	if info, err := os.Stat(filepath.Join(dest, "touched")); err != nil || !info.ModTime().Equal(old.Add(time.Hour)) {
		t.Errorf("the written file's time: %v, %v; want the archive's", info.ModTime(), err)
	}
}

// Hostile entries are refused as for artifacts: names outside the top, an
// absolute name, a link out then a file through it, a hard link out, a
// device; and a broken stream removes nothing.
func TestMirrorRefusesHostileEntries(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	writeFiles(t, dest, map[string]string{"sent": "keep me"})
	data := archive(dir("job/"),
		file("job/../escaped", "x"), file("/etc/abs", "x"), file("other/f", "x"),
		symlink("job/etc", "/etc"), file("job/etc/passwd", "x"),
		symlink("job/up", "../../.."), hardlink("job/hl", "../outside"), special("job/dev", tar.TypeChar),
		special("job/fifo", tar.TypeFifo))
	_, log, err := mirrorInto(t, dest, data, MirrorOptions{Sent: []string{"."}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"escaped", "up", "hl", "dev", "fifo", "other"} {
		if _, err := os.Lstat(filepath.Join(dest, name)); !os.IsNotExist(err) {
			t.Errorf("%s was created", name)
		}
	}
	// The file under the refused link lands in a real directory of dest.
	if info, err := os.Lstat(filepath.Join(dest, "etc")); err == nil && !info.IsDir() {
		t.Errorf("etc is %v, want no link", info.Mode())
	}
	if _, err := os.Lstat(filepath.Join(parent, "escaped")); !os.IsNotExist(err) {
		t.Error("an entry escaped the destination")
	}
	if strings.Count(log, "refused a working-directory entry") < 8 {
		t.Errorf("refusals not all logged:\n%s", log)
	}

	broken := archive(dir("job/"), entry{name: "job/big", kind: tar.TypeReg, mode: 0o644, size: 1 << 20})
	if _, _, err := mirrorInto(t, dest, broken, MirrorOptions{Sent: []string{".", "sent"}}); err == nil {
		t.Error("a stream cut short was not an error")
	}
	if _, err := os.Stat(filepath.Join(dest, "sent")); err != nil {
		t.Errorf("a broken stream applied deletions: %v", err)
	}
}

// A stream of many entries is bounded in what it logs.
func TestMirrorBoundsItsWarnings(t *testing.T) {
	var entries []entry
	entries = append(entries, dir("job/"))
	for i := 0; i < 5000; i++ {
		entries = append(entries, symlink("job/l"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), "/etc"))
	}
	_, log, err := mirrorInto(t, t.TempDir(), archive(entries...), MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log, "\n"); n > maxRefusalLines+1 {
		t.Errorf("%d log lines for 5000 refused entries", n)
	}
}

// Podman 4.3 names the entries of a mount point from "/"; hard links are
// named like entries, and rebased alike.
func TestMirrorTakesBothNamings(t *testing.T) {
	for _, tc := range []struct{ name, top string }{{"docker", "job/"}, {"podman", "/"}, {"dot", "./"}} {
		dest := t.TempDir()
		writeFiles(t, dest, map[string]string{"gone": "x"})
		data := archive(dir(tc.top), file(tc.top+"a", "A"), hardlink(tc.top+"b", tc.top+"a"), dir(tc.top+"d/"), file(tc.top+"d/f", "F"))
		stats, log, err := mirrorInto(t, dest, data, MirrorOptions{Sent: []string{".", "gone"}})
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, log)
		}
		for name, want := range map[string]string{"a": "A", "b": "A", "d/f": "F"} {
			if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
				t.Errorf("%s: %s: %q, %v", tc.name, name, got, err)
			}
		}
		if stats.Removed != 1 {
			t.Errorf("%s: stats %+v, want gone removed", tc.name, stats)
		}
	}
}

// A stream whose entries are all refused, or that lacks the directory's own
// entry, is not the directory: removing what did not come back would
// remove everything, so nothing is removed.
func TestMirrorWithoutTheDirectoryRemovesNothing(t *testing.T) {
	for name, data := range map[string][]byte{
		"all refused":  archive(file("/abs", "x"), file("/etc/y", "y")),
		"no top entry": archive(file("job/a", "A")),
		"empty":        archive(),
	} {
		dest := t.TempDir()
		writeFiles(t, dest, map[string]string{"kept": "x"})
		_, _, err := mirrorInto(t, dest, data, MirrorOptions{Sent: []string{".", "kept"}})
		if _, serr := os.Stat(filepath.Join(dest, "kept")); serr != nil {
			t.Errorf("%s: the local file was removed (%v)", name, err)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
