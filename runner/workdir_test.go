package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestMountHolding(t *testing.T) {
	mounts := []container.MountPoint{
		{Type: "volume", Name: "bamboo-agent-home", Destination: "/home/bamboo/bamboo-agent-home"},
		{Type: "bind", Source: "/srv/builds", Destination: "/builds/"},
		{Type: "volume", Name: "cache", Destination: "/cache"},
	}
	tests := []struct {
		name     string
		path     string
		mounts   []container.MountPoint
		wantDest string // "" when no mount holds path
	}{
		{"the mount point itself", "/cache", mounts, "/cache"},
		{"below a mount", "/home/bamboo/bamboo-agent-home/xml-data/build-dir/PROJ-PLAN-JOB1", mounts, "/home/bamboo/bamboo-agent-home"},
		{"destination with trailing slash", "/builds/PROJ-PLAN-JOB1", mounts, "/builds/"},
		{"trailing slash on the path", "/cache/", mounts, "/cache"},
		{"unclean path", "/cache/./x/../y", mounts, "/cache"},
		// A shared prefix of characters is not a parent directory.
		{"sibling with a longer name", "/cachex/build", mounts, ""},
		{"parent of a mount", "/home/bamboo", mounts, ""},
		{"path climbing out", "/cache/../etc", mounts, ""},
		{"no mounts", "/cache", nil, ""},
		{"root mount holds everything", "/any/where", []container.MountPoint{{Destination: "/"}}, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mountHolding(tt.path, tt.mounts)
			if want := tt.wantDest != ""; ok != want {
				t.Fatalf("mountHolding(%q) ok = %v, want %v", tt.path, ok, want)
			}
			if got.Destination != tt.wantDest {
				t.Errorf("mountHolding(%q) = %q, want %q", tt.path, got.Destination, tt.wantDest)
			}
		})
	}
}

func TestResolveWorkdir(t *testing.T) {
	// The temporary directory may itself sit behind a symlink (/tmp on some hosts).
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "build-dir", "PROJ-PLAN-JOB1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "current")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "build.log")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fileLink := filepath.Join(root, "log-link")
	if err := os.Symlink(file, fileLink); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(root, "dangling")
	if err := os.Symlink(filepath.Join(root, "gone"), dangling); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		dir     string
		want    string
		wantErr string
	}{
		{"directory", dir, dir, ""},
		{"trailing slash", dir + "/", dir, ""},
		{"unclean path", filepath.Join(root, "build-dir") + "/../build-dir/./PROJ-PLAN-JOB1", dir, ""},
		// The sibling is given the real path: a link may not exist there.
		{"symlink to a directory", link, dir, ""},
		{"below a symlink", filepath.Join(link, "."), dir, ""},
		{"empty", "", "", "--workdir"},
		{"missing", filepath.Join(root, "nope"), "", "does not exist"},
		// The engine cannot mount over a container's root.
		{"the root", "/", "", "cannot be shared"},
		{"dangling symlink", dangling, "", "does not exist"},
		{"file", file, "", "is not a directory"},
		{"symlink to a file", fileLink, "", "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveWorkdir(tt.dir)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("resolveWorkdir(%q) = %q, nil; want an error containing %q", tt.dir, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("resolveWorkdir(%q) error = %q, want it to contain %q", tt.dir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveWorkdir(%q): %v", tt.dir, err)
			}
			if got != tt.want {
				t.Errorf("resolveWorkdir(%q) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}

func TestResolveWorkdirRelative(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	tests := []struct {
		dir  string
		want string
	}{
		{".", root},
		{"src", filepath.Join(root, "src")},
		{"./src/", filepath.Join(root, "src")},
		{"src/..", root},
	}
	for _, tt := range tests {
		got, err := resolveWorkdir(tt.dir)
		if err != nil {
			t.Errorf("resolveWorkdir(%q) in %s: %v", tt.dir, root, err)
			continue
		}
		if got != tt.want {
			t.Errorf("resolveWorkdir(%q) in %s = %q, want %q", tt.dir, root, got, tt.want)
		}
	}
}

func TestWorkdirShareMode(t *testing.T) {
	tests := []struct {
		share workdirShare
		want  string
	}{
		{workdirShare{Workdir: "/b", Bind: "/b"}, "bind"},
		{workdirShare{Workdir: "/b", VolumesFrom: []string{"data"}}, "volumes-from"},
	}
	for _, tt := range tests {
		if got := tt.share.mode(); got != tt.want {
			t.Errorf("%+v.mode() = %q, want %q", tt.share, got, tt.want)
		}
	}
}
