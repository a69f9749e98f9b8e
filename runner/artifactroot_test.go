package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A working directory held before the build is used only while its path
// still leads to it without a link: the build may have moved it, or a
// directory above it, and left a link to another directory in its place.
func TestArtifactRootRefusesAWorkdirMovedOrReplaced(t *testing.T) {
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, parent, workdir, elsewhere string)
		says string // "" when the root is still good
	}{
		{"unchanged", func(*testing.T, string, string, string) {}, ""},
		{"workdir replaced by a link", func(t *testing.T, parent, workdir, elsewhere string) {
			must(t, os.Rename(workdir, workdir+".old"))
			must(t, os.Symlink(elsewhere, workdir))
		}, "plan is a symbolic link"},
		{"workdir replaced by a link to itself", func(t *testing.T, parent, workdir, elsewhere string) {
			must(t, os.Rename(workdir, workdir+".old"))
			must(t, os.Symlink(workdir+".old", workdir))
		}, "plan is a symbolic link"},
		{"a directory above replaced by a link", func(t *testing.T, parent, workdir, elsewhere string) {
			must(t, os.MkdirAll(filepath.Join(elsewhere, "plan"), 0o755))
			must(t, os.Rename(filepath.Join(parent, "data"), filepath.Join(parent, "data.old")))
			must(t, os.Symlink(elsewhere, filepath.Join(parent, "data")))
		}, "data is a symbolic link"},
		{"workdir replaced by another directory", func(t *testing.T, parent, workdir, elsewhere string) {
			must(t, os.Rename(workdir, workdir+".old"))
			must(t, os.Mkdir(workdir, 0o755))
		}, "another directory is at"},
		{"workdir removed", func(t *testing.T, parent, workdir, elsewhere string) {
			must(t, os.Rename(workdir, workdir+".old"))
		}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, elsewhere := t.TempDir(), t.TempDir()
			workdir := filepath.Join(parent, "data", "plan")
			must(t, os.MkdirAll(workdir, 0o755))
			root, err := holdArtifactRoot(workdir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			tc.swap(t, parent, workdir, elsewhere)
			err = root.check()
			switch {
			case tc.says == "" && err != nil:
				t.Errorf("an unchanged working directory was refused: %v", err)
			case tc.says != "" && (!errors.Is(err, errWorkdirReplaced) || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("err %v, want it to say the working directory was replaced and %q", err, tc.says)
			}
		})
	}
}

// A link at the working directory's path when the build has not even
// started (an orphan of an earlier build at work) is refused as well.
func TestArtifactRootRefusesALinkBeforeTheBuild(t *testing.T) {
	parent := t.TempDir()
	must(t, os.Mkdir(filepath.Join(parent, "real"), 0o755))
	must(t, os.Symlink("real", filepath.Join(parent, "link")))
	if root, err := holdArtifactRoot(filepath.Join(parent, "link")); !errors.Is(err, errWorkdirReplaced) {
		root.Close()
		t.Errorf("err %v, want a refusal of the link", err)
	}
}

// The directory that receives an artifact is created as needed, and never
// reached through a link, even one that stays inside the working directory.
func TestArtifactDestIsNeverALink(t *testing.T) {
	workdir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(workdir, "inside", "deep"), 0o755))
	must(t, os.Symlink("inside", filepath.Join(workdir, "in-link")))
	must(t, os.Symlink(t.TempDir(), filepath.Join(workdir, "out-link")))
	must(t, os.WriteFile(filepath.Join(workdir, "file"), nil, 0o644))
	root, err := holdArtifactRoot(workdir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for dest, refused := range map[string]bool{
		".": false, "inside/deep": false, "new/er": false,
		"in-link": true, "in-link/deep": true, "out-link": true, "out-link/x": true, "file": true, "file/x": true,
	} {
		r, err := root.openDest(dest)
		if refused != (err != nil) {
			t.Errorf("openDest(%q): err %v, want refused %v", dest, err, refused)
		}
		if err == nil {
			r.Close()
		}
	}
	if info, err := os.Lstat(filepath.Join(workdir, "new", "er")); err != nil || !info.IsDir() {
		t.Errorf("the missing destination new/er was not created: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
