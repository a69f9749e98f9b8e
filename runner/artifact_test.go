package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPlanArtifacts(t *testing.T) {
	workdir := t.TempDir()
	if err := os.Symlink("/", filepath.Join(workdir, "escape")); err != nil {
		t.Fatal(err)
	}
	plan, err := planArtifacts([]ArtifactSpec{{Src: "/out"}, {Src: "/r.xml", Dest: "build/"}, {Src: "/x", Dest: workdir + "/a"}}, 1<<20, workdir, workdir)
	want := []artifact{{Src: "/out", Dest: "."}, {Src: "/r.xml", Dest: "build"}, {Src: "/x", Dest: "a"}}
	if err != nil || !reflect.DeepEqual(plan.artifacts, want) || plan.maxSize != 1<<20 {
		t.Errorf("got %+v, %v; want %+v with a cap of 1 MiB", plan, err, want)
	}
	if plan, err := planArtifacts(nil, 0, workdir, workdir); err != nil || len(plan.artifacts) != 0 {
		t.Errorf("no artifacts: got %+v, %v; want an empty plan and no error whatever the cap", plan, err)
	}
	for _, tt := range []struct {
		name    string
		a       ArtifactSpec
		maxSize int64
		says    string
	}{
		{"no cap", ArtifactSpec{Src: "/out"}, 0, "--artifact-max-size of 0 bytes"},
		{"negative cap", ArtifactSpec{Src: "/out"}, -1, "--artifact-max-size"},
		{"relative source", ArtifactSpec{Src: "out"}, 1, "--artifact out: the path in the sibling must be absolute"},
		{"unclean source", ArtifactSpec{Src: "/out/"}, 1, "absolute and clean"},
		{"the root", ArtifactSpec{Src: "/"}, 1, "not /"},
		{"climbing out", ArtifactSpec{Src: "/out", Dest: "../elsewhere"}, 1, "outside the working directory"},
		{"absolute outside", ArtifactSpec{Src: "/out", Dest: filepath.Dir(workdir)}, 1, "outside the working directory"},
		{"through a link", ArtifactSpec{Src: "/out", Dest: "escape/etc"}, 1, "through a symbolic link"},
	} {
		_, err := planArtifacts([]ArtifactSpec{tt.a}, tt.maxSize, workdir, workdir)
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.says)
		}
	}
}
