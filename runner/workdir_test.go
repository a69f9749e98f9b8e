package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

func TestMountHolding(t *testing.T) {
	at := func(dest string) sharedMount {
		return sharedMount{MountPoint: container.MountPoint{Destination: dest}, Here: dest}
	}
	mounts := []sharedMount{at("/home/bamboo/bamboo-agent-home"), at("/builds/"), at("/cache"), at("/cache/deep")}
	tests := []struct {
		name     string
		path     string
		mounts   []sharedMount
		wantDest string // "" when no mount holds path
	}{
		{"the mount point itself", "/cache", mounts, "/cache"},
		{"below a mount", "/home/bamboo/bamboo-agent-home/xml-data/build-dir/PROJ-PLAN-JOB1", mounts, "/home/bamboo/bamboo-agent-home"},
		{"destination with trailing slash", "/builds/PROJ-PLAN-JOB1", mounts, "/builds/"},
		{"trailing slash on the path", "/cache/", mounts, "/cache"},
		{"unclean path", "/cache/./x/../y", mounts, "/cache"},
		// Of nested mounts, the innermost holds the path, whatever the order.
		{"nested mount", "/cache/deep/x", mounts, "/cache/deep"},
		{"nested mount listed first", "/cache/deep/x", []sharedMount{at("/cache/deep"), at("/cache")}, "/cache/deep"},
		// A shared prefix of characters is not a parent directory.
		{"sibling with a longer name", "/cachex/build", mounts, ""},
		{"parent of a mount", "/home/bamboo", mounts, ""},
		{"path climbing out", "/cache/../etc", mounts, ""},
		{"no mounts", "/cache", nil, ""},
		{"root mount holds everything", "/any/where", []sharedMount{at("/")}, "/"},
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

func TestWorkdirMount(t *testing.T) {
	const workdir = "/builds/PROJ-PLAN-JOB1"
	volume := sharedMount{MountPoint: container.MountPoint{Type: mount.TypeVolume, Name: "0f3e9a", Driver: "local",
		Source: "/var/lib/docker/volumes/0f3e9a/_data", Destination: "/builds", RW: true}, Container: "data", Here: "/builds"}
	bind := sharedMount{MountPoint: container.MountPoint{Type: mount.TypeBind, Source: "/srv/ci/builds", Destination: "/builds", RW: true}, Container: "data", Here: "/builds"}
	readOnly := volume
	readOnly.RW = false
	remote := volume
	remote.Driver, remote.Source = "nfs-plugin", ""
	tmpfs := sharedMount{MountPoint: container.MountPoint{Type: mount.TypeTmpfs, Destination: "/builds", RW: true}, Container: "data", Here: "/builds"}
	whole := volume
	whole.Here, whole.Destination = workdir, workdir

	tests := []struct {
		name    string
		holder  sharedMount
		subpath bool
		want    mount.Mount
		wantErr string
	}{
		{"volume, old engine: its directory on the host", volume, false,
			mount.Mount{Type: mount.TypeBind, Source: "/var/lib/docker/volumes/0f3e9a/_data/PROJ-PLAN-JOB1", Target: workdir}, ""},
		{"volume, engine with subpaths", volume, true,
			mount.Mount{Type: mount.TypeVolume, Source: "0f3e9a", Target: workdir, VolumeOptions: &mount.VolumeOptions{Subpath: "PROJ-PLAN-JOB1", NoCopy: true}}, ""},
		{"the whole volume is the working directory", whole, true,
			mount.Mount{Type: mount.TypeVolume, Source: "0f3e9a", Target: workdir, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}, ""},
		{"bind of the holder", bind, true,
			mount.Mount{Type: mount.TypeBind, Source: "/srv/ci/builds/PROJ-PLAN-JOB1", Target: workdir}, ""},
		{"read-only holder", readOnly, false,
			mount.Mount{Type: mount.TypeBind, Source: "/var/lib/docker/volumes/0f3e9a/_data/PROJ-PLAN-JOB1", Target: workdir, ReadOnly: true}, ""},
		{"remote volume on an old engine", remote, false, mount.Mount{}, "API before 1.45"},
		{"remote volume with subpaths", remote, true,
			mount.Mount{Type: mount.TypeVolume, Source: "0f3e9a", Target: workdir, VolumeOptions: &mount.VolumeOptions{Subpath: "PROJ-PLAN-JOB1", NoCopy: true}}, ""},
		{"tmpfs", tmpfs, true, mount.Mount{}, "no other container can share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workdirMount(workdir, tt.holder, tt.subpath)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("workdirMount: err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("workdirMount = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := workdirMount("/elsewhere", volume, false); err == nil {
		t.Error("workdirMount of a directory outside its holder succeeded")
	}
}

func TestCheckMounts(t *testing.T) {
	const workdir = "/builds/job"
	bind := func(target string) mount.Mount {
		return mount.Mount{Type: mount.TypeBind, Source: "/src" + target, Target: target}
	}
	tests := []struct {
		name    string
		mounts  []mount.Mount
		tmpfs   []string
		wantErr string
	}{
		{"the working directory alone", []mount.Mount{bind(workdir)}, nil, ""},
		{"and the socket", []mount.Mount{bind(workdir), bind("/var/run/docker.sock")}, nil, ""},
		{"a mount inside the working directory", []mount.Mount{bind(workdir), bind(workdir + "/.cache")}, []string{workdir + "/tmp"}, ""},
		{"over the root", []mount.Mount{bind(workdir), bind("/")}, nil, "other than /"},
		{"relative", []mount.Mount{bind(workdir), bind("cache")}, nil, "absolute"},
		{"twice at one path", []mount.Mount{bind(workdir), bind("/var/run/docker.sock"), bind("/var/run/docker.sock")}, nil, "hide"},
		{"over the working directory", []mount.Mount{bind(workdir), bind(workdir)}, nil, "hide"},
		{"above the working directory", []mount.Mount{bind(workdir), bind("/builds")}, nil, "hide"},
		{"tmpfs above the working directory", []mount.Mount{bind(workdir)}, []string{"/builds"}, "hide"},
		{"tmpfs over the socket", []mount.Mount{bind(workdir), bind("/var/run/docker.sock")}, []string{"/var/run"}, "hide"},
		{"a mount hiding another", []mount.Mount{bind(workdir), bind("/opt/a/b"), bind("/opt/a")}, nil, "hide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMounts(tt.mounts, workdir, tt.tmpfs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkMounts: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkMounts: err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// A link among the working directory's components is refused where a build
// could have planted it, and followed where only the agent could have.
func TestRefuseLinks(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(root, "agent")
	volume := filepath.Join(root, "volume")
	for _, dir := range []string{trusted, filepath.Join(volume, "PLAN1", "sub"), filepath.Join(volume, "PLAN2")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(trusted, "builds"):         volume,            // the agent's own link to the volume
		filepath.Join(volume, "PLAN3"):           "PLAN2",           // planted: another plan's directory
		filepath.Join(volume, "PLAN1", "etc"):    "/etc",            // planted: the host's /etc
		filepath.Join(volume, "PLAN1", "parent"): "..",              // planted: the whole volume
		filepath.Join(volume, "PLAN1", "self"):   ".",               // harmless, but a link all the same
		filepath.Join(volume, "PLAN1", "abs"):    volume + "/PLAN2", // absolute
		filepath.Join(trusted, "through"):        volume + "/PLAN3", // the agent's, to a planted one
		filepath.Join(trusted, "relative"):       "../volume/PLAN1", // the agent's, relative
		filepath.Join(trusted, "loop"):           "loop",
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	inVolume := func(dir string) bool { return isWithin(dir, volume) }
	tests := []struct {
		name    string
		given   string
		badLink string // "" when the path is accepted
	}{
		{"no link", filepath.Join(volume, "PLAN1", "sub"), ""},
		{"the agent's link above the volume", filepath.Join(trusted, "builds", "PLAN1"), ""},
		{"another plan's directory", filepath.Join(volume, "PLAN3"), filepath.Join(volume, "PLAN3")},
		{"through the agent's link to a planted one", filepath.Join(trusted, "builds", "PLAN3"), filepath.Join(volume, "PLAN3")},
		{"the agent's link straight through a planted one", filepath.Join(trusted, "through"), filepath.Join(volume, "PLAN3")},
		{"the agent's relative link", filepath.Join(trusted, "relative", "sub"), ""},
		{"the host's /etc", filepath.Join(volume, "PLAN1", "etc"), filepath.Join(volume, "PLAN1", "etc")},
		{"a link in the middle", filepath.Join(volume, "PLAN1", "parent", "PLAN2"), filepath.Join(volume, "PLAN1", "parent")},
		{"a link to itself", filepath.Join(volume, "PLAN1", "self", "sub"), filepath.Join(volume, "PLAN1", "self")},
		{"an absolute link", filepath.Join(volume, "PLAN1", "abs"), filepath.Join(volume, "PLAN1", "abs")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached, err := refuseLinks(tt.given, inVolume)
			if tt.badLink == "" {
				if err != nil {
					t.Fatalf("refuseLinks(%s): %v", tt.given, err)
				}
				if want, _ := filepath.EvalSymlinks(tt.given); reached != want {
					t.Errorf("refuseLinks(%s) reached %s, want %s", tt.given, reached, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "symbolic link "+tt.badLink+" ") {
				t.Errorf("refuseLinks(%s): err = %v, want a refusal naming %s", tt.given, err, tt.badLink)
			}
		})
	}
	if _, err := refuseLinks(filepath.Join(volume, "gone"), inVolume); err == nil {
		t.Error("refuseLinks of a missing path succeeded")
	}
	if _, err := refuseLinks(filepath.Join(trusted, "loop"), inVolume); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("refuseLinks of a link loop: err = %v, want too many levels", err)
	}
}

func TestWritableByOthers(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := os.Getuid() != 0 // a directory of a user other than root
	if got := writableByOthers(dir); got != mine {
		t.Errorf("writableByOthers(a 0755 directory of uid %d) = %v, want %v", os.Getuid(), got, mine)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if !writableByOthers(dir) {
		t.Error("writableByOthers(a 0777 directory) = false")
	}
	if !writableByOthers(filepath.Join(dir, "gone")) {
		t.Error("writableByOthers(a missing directory) = false; doubt must refuse")
	}
	if writableByOthers("/") {
		t.Error("writableByOthers(/) = true")
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
