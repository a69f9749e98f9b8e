package extract

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// entry is one member of a test archive.
type entry struct {
	name, body, link string
	kind             byte
	mode             int64
	size             int64 // declared size when body is empty; 0: len(body)
}

func file(name, body string) entry {
	return entry{name: name, body: body, kind: tar.TypeReg, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, kind: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, link: target, kind: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) entry {
	return entry{name: name, link: target, kind: tar.TypeLink, mode: 0o644}
}
func special(name string, kind byte) entry { return entry{name: name, kind: kind, mode: 0o666} }

// archive builds a tar stream of entries. A declared size larger than the
// body makes a stream that ends early, as a hostile one may.
func archive(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if e.kind != tar.TypeReg {
			size = 0
		}
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.kind, Mode: e.mode, Size: size, Format: tar.FormatPAX})
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

// extractInto extracts data into parent/dest with the given budget and
// returns dest, the warnings logged and the error.
func extractInto(t testing.TB, parent string, data []byte, budget int64) (string, string, error) {
	t.Helper()
	dest := filepath.Join(parent, "dest")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var logs bytes.Buffer
	_, err = Tar(bytes.NewReader(data), root, &budget, zerolog.New(&logs))
	return dest, logs.String(), err
}

func TestExtractWritesFilesDirectoriesAndLinksWithTheirModes(t *testing.T) {
	data := archive(
		dir("out/"),
		file("out/report.xml", "<ok/>"),
		entry{name: "out/run.sh", body: "#!/bin/sh\n", kind: tar.TypeReg, mode: 0o4755},
		entry{name: "out/private", body: "p", kind: tar.TypeReg, mode: 0o600},
		file("out/deep/er/x.txt", "x"), // parents without entries of their own
		symlink("out/latest", "report.xml"),
		symlink("out/deep/er/up", "../../report.xml"),
		hardlink("out/again.xml", "out/report.xml"),
		entry{name: "out/ro/", kind: tar.TypeDir, mode: 0o555},
		file("out/ro/inside", "i"),
	)
	dest, logs, err := extractInto(t, t.TempDir(), data, 1<<20)
	if err != nil || logs != "" {
		t.Fatalf("err %v, warnings %s", err, logs)
	}
	for name, want := range map[string]string{
		"out/report.xml": "<ok/>", "out/latest": "<ok/>", "out/deep/er/up": "<ok/>",
		"out/again.xml": "<ok/>", "out/deep/er/x.txt": "x", "out/ro/inside": "i",
	} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for name, want := range map[string]fs.FileMode{
		"out/run.sh": 0o755, "out/private": 0o600, "out/report.xml": 0o644, "out/ro": 0o755 | fs.ModeDir,
	} {
		info, err := os.Lstat(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode() & (fs.ModePerm | fs.ModeDir | fs.ModeSetuid); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
}

func TestExtractRefusesWhatWouldLeaveTheDestination(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		refused string // the entry the warning names
		absent  string // a path under dest that must not exist
	}{
		{"absolute name", []entry{file("/abs.txt", "x")}, "/abs.txt", "abs.txt"},
		{"dot-dot name", []entry{file("../escape.txt", "x")}, "../escape.txt", ""},
		{"dot-dot inside name", []entry{file("a/../../escape.txt", "x")}, "a/../../escape.txt", ""},
		{"symlink to /etc", []entry{symlink("etc", "/etc")}, "etc", "etc"},
		{"symlink to /", []entry{symlink("root", "/")}, "root", "root"},
		{"symlink climbing out", []entry{dir("d/"), symlink("d/up", "../../outside")}, "d/up", "d/up"},
		{"symlink climbing after a name", []entry{symlink("dot", "."), symlink("sneaky", "dot/../x")}, "sneaky", "sneaky"},
		{"file through a symlink", []entry{dir("real/"), symlink("link", "real"), file("link/x", "x")}, "link/x", "real/x"},
		{"symlink made through a symlink", []entry{symlink("here", "."), symlink("here/up", "../outside")}, "here/up", "up"},
		{"hardlink to outside", []entry{hardlink("passwd", "/etc/passwd")}, "passwd", "passwd"},
		{"hardlink climbing out", []entry{hardlink("sentinel", "../outside.txt")}, "sentinel", "sentinel"},
		// A hard link to a symbolic link is a second symbolic link with the
		// same target, which may lead out from the link's new directory.
		{"hardlink to a symlink", []entry{dir("a/"), dir("a/b/"), symlink("a/b/l", "../../x"), hardlink("l2", "a/b/l")}, "l2", "l2"},
		{"device node", []entry{special("null", tar.TypeChar)}, "null", "null"},
		{"block device", []entry{special("sda", tar.TypeBlock)}, "sda", "sda"},
		{"fifo", []entry{special("pipe", tar.TypeFifo)}, "pipe", "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			writeSentinel(t, parent)
			dest, logs, err := extractInto(t, parent, archive(tc.entries...), 1<<20)
			if err != nil {
				t.Fatalf("err %v; a refused entry is skipped, not a failure", err)
			}
			if !strings.Contains(logs, `"entry":"`+tc.refused+`"`) || !strings.Contains(logs, `"level":"warn"`) {
				t.Errorf("no warning naming %q:\n%s", tc.refused, logs)
			}
			if tc.absent != "" {
				if _, err := os.Lstat(filepath.Join(dest, tc.absent)); err == nil {
					t.Errorf("%s was created", tc.absent)
				}
			}
			checkConfined(t, parent)
		})
	}
}

func TestExtractReplacesInsteadOfWritingThrough(t *testing.T) {
	parent := t.TempDir()
	writeSentinel(t, parent)
	outside := filepath.Join(parent, "outside.txt")
	// A link planted beforehand (the build shares the working directory)
	// must not carry an entry out.
	dest := filepath.Join(parent, "dest")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dest, "report.txt")); err != nil {
		t.Fatal(err)
	}
	_, logs, err := extractInto(t, parent, archive(
		file("report.txt", "new"),
		file("dup", "first"), file("dup", "second"),
		file("was-dir/x", "x"), file("was-dir", "now a file"),
		file("was-file", "f"), dir("was-file/"), file("was-file/y", "y"),
	), 1<<20)
	if err != nil || logs != "" {
		t.Fatalf("err %v, warnings %s", err, logs)
	}
	for name, want := range map[string]string{"report.txt": "new", "dup": "second", "was-dir": "now a file", "was-file/y": "y"} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if info, err := os.Lstat(filepath.Join(dest, "report.txt")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("report.txt should be a plain file now: %v %v", info, err)
	}
	checkConfined(t, parent)
}

func TestExtractStopsAtTheSizeCap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
	}{
		{"huge declared size", []entry{{name: "big", kind: tar.TypeReg, mode: 0o644, size: 1 << 40}}},
		{"files that add up", []entry{file("a", strings.Repeat("a", 600)), file("b", strings.Repeat("b", 600))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			_, _, err := extractInto(t, parent, archive(tc.entries...), 1000)
			if !errors.Is(err, ErrSizeCap) {
				t.Errorf("err %v, want the size cap", err)
			}
			checkConfined(t, parent)
		})
	}
}

func TestExtractReportsABrokenStream(t *testing.T) {
	data := archive(file("a", strings.Repeat("a", 4096)))
	_, _, err := extractInto(t, t.TempDir(), data[:1024], 1<<20)
	if err == nil {
		t.Error("a stream cut short was taken as complete")
	}
}

func TestLinkStaysInside(t *testing.T) {
	for _, tc := range []struct {
		dir, target string
		want        bool
	}{
		{".", "a", true}, {".", "a/b/c", true}, {".", "./a", true},
		{"d", "../a", true}, {"d/e", "../../a", true}, {"d/e", "../x/y", true},
		{".", "..", false}, {".", "../a", false}, {"d", "../../a", false},
		{".", "a/../b", false}, {"d", "x/../../y", false},
		{".", "/etc", false}, {".", "", false}, {".", "/", false},
	} {
		if got := LinkStaysInside(tc.dir, tc.target); got != tc.want {
			t.Errorf("LinkStaysInside(%q, %q) = %v, want %v", tc.dir, tc.target, got, tc.want)
		}
	}
}

// writeSentinel puts a file and a directory beside dest, which no
// extraction may touch.
func writeSentinel(t testing.TB, parent string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(parent, "outside.txt"), []byte("agent's own"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkConfined fails unless parent holds exactly dest and an untouched
// sentinel, and nothing in dest is a device, a setuid file or a link that
// resolves outside it.
func checkConfined(t testing.TB, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "dest" && e.Name() != "outside.txt" {
			t.Errorf("%s appeared beside the destination", e.Name())
		}
	}
	if info, err := os.Lstat(filepath.Join(parent, "outside.txt")); err == nil {
		got, _ := os.ReadFile(filepath.Join(parent, "outside.txt"))
		if string(got) != "agent's own" || info.Mode() != 0o644 {
			t.Errorf("the file beside the destination changed: %q %v", got, info.Mode())
		}
	}
	dest, err := filepath.EvalSymlinks(filepath.Join(parent, "dest"))
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		mode := info.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeSetuid|fs.ModeSetgid) != 0 {
			t.Errorf("%s has mode %v", p, mode)
		}
		if mode&fs.ModeSymlink == 0 {
			return nil
		}
		target, _ := os.Readlink(p)
		if filepath.IsAbs(target) {
			t.Errorf("%s links to the absolute %s", p, target)
			return nil
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil { // dangling: the link's own text must stay inside
			resolved = filepath.Join(filepath.Dir(p), target)
		}
		if resolved != dest && !strings.HasPrefix(resolved, dest+"/") {
			t.Errorf("%s -> %s resolves to %s, outside %s", p, target, resolved, dest)
		}
		return nil
	})
}

// FuzzExtract feeds arbitrary tar streams to the extractor and checks that
// nothing appears outside the destination, whatever the stream holds.
func FuzzExtract(f *testing.F) {
	for _, seed := range [][]entry{
		{dir("out/"), file("out/a.txt", "a"), symlink("out/l", "a.txt"), hardlink("out/h", "out/a.txt")},
		{file("/abs.txt", "x"), file("/etc/evil", "x")},
		{file("../up.txt", "x"), file("a/../../up.txt", "x")},
		{symlink("l", ".."), file("l/up.txt", "x")},
		{dir("real/"), symlink("l", "real"), file("l/through.txt", "x")},
		{symlink("etc", "/etc"), file("etc/passwd", "x")},
		{symlink("here", "."), symlink("here/up", "../outside.txt"), file("up", "x")},
		{hardlink("h", "/etc/passwd"), hardlink("h2", "../outside.txt")},
		{dir("a/"), dir("a/b/"), symlink("a/b/l", "../../outside.txt"), hardlink("l2", "a/b/l")},
		{special("null", tar.TypeChar), special("sda", tar.TypeBlock), special("p", tar.TypeFifo)},
		{{name: "huge", kind: tar.TypeReg, mode: 0o644, size: 1 << 50}},
		{file("dup", "1"), file("dup", "2"), symlink("dup", "x"), dir("dup/")},
		{dir("d/"), file("d/x", "x"), file("d", "file now"), symlink("d", "../outside.txt")},
		{entry{name: "suid", body: "x", kind: tar.TypeReg, mode: 0o6777}, entry{name: "ro/", kind: tar.TypeDir, mode: 0}},
	} {
		f.Add(archive(seed...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		writeSentinel(t, parent)
		_, _, _ = extractInto(t, parent, data, 1<<20)
		checkConfined(t, parent)
	})
}

// A copy that fails in the middle of a file leaves nothing under the file's
// name, no temporary file either, and says which entry is missing.
func TestExtractLeavesNoPartialFile(t *testing.T) {
	data := archive(file("first", "complete"), file("second", strings.Repeat("s", 64<<10)), file("third", "never"))
	dest, _, err := extractInto(t, t.TempDir(), data[:len(data)/2], 1<<20)
	if err == nil || !strings.Contains(err.Error(), `"second" and what follows it in the archive were not copied`) {
		t.Errorf("err %v, want it to name second as not copied", err)
	}
	entries, _ := os.ReadDir(dest)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "first" {
		t.Errorf("the destination holds %q, want only the complete first", names)
	}
}

// FuzzExtractUnderAChangingRoot extracts arbitrary streams while another
// goroutine, standing for a build that still runs, keeps moving the
// destination's directories aside and planting links to a directory
// outside in their place: nothing may land outside.
func FuzzExtractUnderAChangingRoot(f *testing.F) {
	for _, seed := range [][]entry{
		{dir("out/"), file("out/a", "a"), dir("out/b/"), file("out/b/c", "c"), file("out/b/d", "d")},
		{file("a/b/c/d", "x"), file("a/b/e", "y"), symlink("a/l", "b"), file("a/l/f", "z")},
		{dir("d/"), file("d/1", "1"), file("d/2", "2"), file("d/3", "3"), file("d/4", "4"), file("d/5", "5")},
	} {
		f.Add(archive(seed...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, elsewhere := t.TempDir(), t.TempDir()
		writeSentinel(t, parent)
		dest := filepath.Join(parent, "dest")
		stop := make(chan struct{})
		swapped := make(chan []string)
		go func() { swapped <- swapDirectories(dest, elsewhere, stop) }()
		_, _, _ = extractInto(t, parent, data, 1<<20)
		close(stop)
		for _, link := range <-swapped {
			_ = os.Remove(link)
		}
		if entries, _ := os.ReadDir(elsewhere); len(entries) > 0 {
			t.Errorf("the extraction wrote %s outside the destination", entries[0].Name())
		}
		checkConfined(t, parent)
	})
}

// swapDirectories moves each directory that appears under dest aside, once,
// and puts a link to elsewhere in its place, until stop is closed; it
// returns the links.
func swapDirectories(dest, elsewhere string, stop <-chan struct{}) []string {
	var links []string
	moved := map[string]bool{}
	for {
		select {
		case <-stop:
			return links
		default:
		}
		_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == dest || moved[p] || strings.HasSuffix(p, ".moved") {
				return nil
			}
			moved[p] = true
			if os.Rename(p, p+".moved") == nil && os.Symlink(elsewhere, p) == nil {
				links = append(links, p)
			}
			return filepath.SkipDir
		})
		runtime.Gosched()
	}
}

// An entry that happens to carry a temporary name is copied like any other.
func TestExtractKeepsAnEntryNamedLikeATemporaryFile(t *testing.T) {
	data := archive(file(PartialPrefix+"1", "the build's"), file("a", "A"), file(PartialPrefix+"2", "also"))
	dest, _, err := extractInto(t, t.TempDir(), data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{PartialPrefix + "1": "the build's", "a": "A", PartialPrefix + "2": "also"} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 3 {
		t.Errorf("%d entries, want 3", len(entries))
	}
}
