package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestTheCheckStepRunsTheCommandTheEngineWould(t *testing.T) {
	image := &container.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	empty := ""
	echo := "echo"
	for _, tc := range []struct {
		name       string
		entrypoint *string
		command    []string
		image      *container.Config
		want       []string
	}{
		{"the image's entrypoint and CMD", nil, nil, image, []string{"/entry", "default"}},
		{"a command replaces CMD", nil, []string{"make"}, image, []string{"/entry", "make"}},
		{"--entrypoint drops CMD", &echo, nil, image, []string{"echo"}},
		{"--entrypoint with a command", &echo, []string{"hi"}, image, []string{"echo", "hi"}},
		{"an empty --entrypoint", &empty, []string{"make"}, image, []string{"make"}},
		{"only CMD", nil, nil, &container.Config{Cmd: []string{"sh"}}, []string{"sh"}},
	} {
		cfg := Config{Image: "img", Entrypoint: tc.entrypoint, Command: tc.command}
		got, err := withWorkdirCheck(&container.Config{WorkingDir: "/w", Cmd: tc.command}, cfg, tc.image, DirIdentity{1, 2})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want := []string{workdirCheckPath, WorkdirCheckCommand, "/w", "1:2", "--"}; !reflect.DeepEqual([]string(got.Entrypoint), want) {
			t.Errorf("%s: Entrypoint = %q, want %q", tc.name, got.Entrypoint, want)
		}
		if !reflect.DeepEqual([]string(got.Cmd), tc.want) {
			t.Errorf("%s: Cmd = %q, want %q", tc.name, got.Cmd, tc.want)
		}
	}
	if _, err := withWorkdirCheck(&container.Config{}, Config{Image: "img", Entrypoint: &empty}, image, DirIdentity{}); err == nil {
		t.Error("an empty --entrypoint without a command was taken")
	}
}

func TestDirIdentityRoundTrips(t *testing.T) {
	id := DirIdentity{Dev: 65024, Ino: 803138}
	got, err := ParseDirIdentity(id.String())
	if err != nil || got != id {
		t.Errorf("ParseDirIdentity(%q) = %v, %v", id.String(), got, err)
	}
	for _, bad := range []string{"", "1", "1:", ":2", "a:b", "-1:2"} {
		if _, err := ParseDirIdentity(bad); err == nil {
			t.Errorf("ParseDirIdentity(%q) took it", bad)
		}
	}
}

// identifyDir follows no link: a link among the components is a change.
func TestIdentifyDirRefusesALinkAndNamesTheDirectory(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "real")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := identifyDir(dir)
	want, _ := StatIdentity(dir)
	if err != nil || got != want {
		t.Errorf("identifyDir(%s) = %v, %v; want %v", dir, got, err, want)
	}
	if _, err := identifyDir(filepath.Join(root, "link")); err == nil {
		t.Error("identifyDir followed a link")
	}
}

func TestOnlyAWorkdirBelowAJobsDirectoryIsRacyInAVolume(t *testing.T) {
	for _, tc := range []struct {
		workdir string
		want    bool
	}{
		{"/builds", false},
		{"/builds/PLAN-JOB1", false},
		{"/builds/PLAN-JOB1/sub", true},
		{"/builds/PLAN-JOB1/a/b", true},
	} {
		if got := racyComponent(tc.workdir, "/builds", true); got != tc.want {
			t.Errorf("racyComponent(%s) = %v, want %v", tc.workdir, got, tc.want)
		}
	}
}

func TestARefusalIsRecognisedByItsLineAndCode(t *testing.T) {
	line := []byte(WorkdirCheckRefusal + "/w is not the directory sibling-run checked\n")
	if !refusedByWorkdirCheck(ExitToolFailure, line) {
		t.Error("the check's refusal was not recognised")
	}
	if refusedByWorkdirCheck(1, line) || refusedByWorkdirCheck(ExitToolFailure, []byte("build output\n")) || refusedByWorkdirCheck(ExitToolFailure, nil) {
		t.Error("a build's own exit was taken for a refusal")
	}
}
