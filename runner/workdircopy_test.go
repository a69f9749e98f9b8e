package runner

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// The copy in's tar: every name under the top, the build's owner, links as
// links, no fifo; files older than the copy's second listed as unchanged.
func TestTarWorkdir(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	for name, mtime := range map[string]time.Time{"old.txt": old, "sub/new.txt": time.Now()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	sent, err := tarWorkdir(&buf, root, "job", 1000, 1001, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name], names = hdr, append(names, hdr.Name)
		if hdr.Uid != 1000 || hdr.Gid != 1001 {
			t.Errorf("%s owned by %d:%d, want 1000:1001", hdr.Name, hdr.Uid, hdr.Gid)
		}
	}
	slices.Sort(names)
	if want := []string{"job/", "job/old.txt", "job/out", "job/sub/", "job/sub/new.txt"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if h := got["job/out"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/passwd" {
		t.Errorf("the link was not sent as a link: %+v", h)
	}
	if h := got["job/sub/"]; h == nil || h.Mode != 0o750 {
		t.Errorf("sub's mode: %+v", h)
	}
	if _, ok := sent.options.Unchanged["old.txt"]; !ok {
		t.Error("an old file is not listed as unchanged")
	}
	if _, ok := sent.options.Unchanged["sub/new.txt"]; ok {
		t.Error("a file of the copy's second is listed as unchanged: a change in that second would keep its time")
	}
	if !slices.Equal(sent.skipped, []string{"fifo"}) || sent.files != 2 || sent.links != 1 || sent.dirs != 2 {
		t.Errorf("sent %+v", sent)
	}
}
