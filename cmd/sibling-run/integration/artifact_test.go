package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

// The build writes its artifacts to /tmp, a path of the sibling's own
// filesystem and not of the shared working directory.

func TestArtifactsFileAndTreeAreCopiedIntoTheWorkdir(t *testing.T) {
	dir := t.TempDir()
	r := siblingRun(t, dir, nil, buildArgs(
		"--artifact", "/tmp/report.xml",
		"--artifact", "/tmp/out:reports/latest",
		"--artifact", dir+"/abs:"+dir+"/absolute",
		"sh", "-c", `echo '<ok/>' > /tmp/report.xml; mkdir -p /tmp/out/a/b; echo c > /tmp/out/a/b/c.txt
			printf x > /tmp/out/x; chmod 0751 /tmp/out/x; ln -s a/b/c.txt /tmp/out/link; mkdir -p abs; echo z > abs/z`)...)
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	for name, want := range map[string]string{
		"report.xml":                   "<ok/>\n",
		"reports/latest/out/a/b/c.txt": "c\n",
		"reports/latest/out/x":         "x",
		"reports/latest/out/link":      "c\n",
		"absolute/abs/z":               "z\n",
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "reports/latest/out/x")); err != nil || info.Mode().Perm() != 0o751 {
		t.Errorf("mode of an executable artifact: %v, %v; want 0751", info, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "reports/latest/out/link")); err != nil || target != "a/b/c.txt" {
		t.Errorf("a link inside the artifact: %q, %v; want it kept as a/b/c.txt", target, err)
	}
	if !strings.Contains(r.stderr, "copied the artifact") {
		t.Errorf("no log line for the copied artifacts:\n%s", r.stderr)
	}
}

func TestMissingArtifactFailsAPassedBuildWithOne(t *testing.T) {
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--artifact", "/tmp/never-made.xml", "true")...)
	if r.code != runner.ExitArtifactsIncomplete {
		t.Errorf("exit code %d, want %d", r.code, runner.ExitArtifactsIncomplete)
	}
	if !strings.Contains(r.stderr, "/tmp/never-made.xml does not exist") {
		t.Errorf("stderr does not name the missing artifact:\n%s", r.stderr)
	}
}

func TestFailedBuildKeepsItsCodeAndStillGivesItsArtifacts(t *testing.T) {
	dir := t.TempDir()
	r := siblingRun(t, dir, nil, buildArgs("--artifact", "/tmp/junit.xml", "--artifact", "/tmp/never-made",
		"sh", "-c", "echo '<failure/>' > /tmp/junit.xml; exit 3")...)
	if r.code != 3 {
		t.Errorf("exit code %d, want the build's 3", r.code)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "junit.xml")); err != nil || string(got) != "<failure/>\n" {
		t.Errorf("the failed build's report: %q, %v", got, err)
	}
	if !strings.Contains(r.stderr, "/tmp/never-made does not exist") {
		t.Errorf("stderr does not name the missing artifact:\n%s", r.stderr)
	}
}

func TestKeptSiblingStillGivesItsArtifacts(t *testing.T) {
	dir := t.TempDir()
	label := "sibling-run-test.keep=" + randomHex(4)
	r := siblingRun(t, dir, nil, buildArgs("--keep", "--label", label, "--artifact", "/tmp/kept", "sh", "-c", "echo k > /tmp/kept")...)
	for _, c := range containersWith(t, label) {
		removeContainer(t, c.ID)
	}
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(got) != "k\n" {
		t.Errorf("artifact of a kept sibling: %q, %v", got, err)
	}
}

// A build must not be able to plant a link to the agent's own files in its
// artifacts, for an artifact upload to follow.
func TestArtifactLinksOutOfTheWorkdirAreRefused(t *testing.T) {
	dir := t.TempDir()
	r := siblingRun(t, dir, nil, buildArgs("--artifact", "/tmp/out",
		"sh", "-c", "mkdir /tmp/out; echo ok > /tmp/out/ok; ln -s /etc /tmp/out/etc; ln -s / /tmp/out/root; ln -s ../../.. /tmp/out/up")...)
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0 (refused links are warned about); stderr:\n%s", r.code, r.stderr)
	}
	for _, link := range []string{"etc", "root", "up"} {
		if _, err := os.Lstat(filepath.Join(dir, "out", link)); err == nil {
			t.Errorf("out/%s was created", link)
		}
		if !strings.Contains(r.stderr, "refused an artifact entry") || !strings.Contains(r.stderr, "entry=out/"+link) {
			t.Errorf("no warning naming out/%s:\n%s", link, r.stderr)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "out", "ok")); err != nil || string(got) != "ok\n" {
		t.Errorf("the plain file beside the refused links: %q, %v", got, err)
	}
}

func TestArtifactOverTheSizeCapFailsAPassedBuild(t *testing.T) {
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--artifact", "/tmp/big", "--artifact-max-size", "1k",
		"sh", "-c", "head -c 4096 /dev/zero > /tmp/big")...)
	if r.code != runner.ExitArtifactsIncomplete || !strings.Contains(r.stderr, "artifact-max-size") || !strings.Contains(r.stderr, "/tmp/big") {
		t.Errorf("exit code %d, want %d and a word about the size cap naming /tmp/big; stderr:\n%s", r.code, runner.ExitArtifactsIncomplete, r.stderr)
	}
}

func TestLargeArtifactTreeArrivesByteForByte(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	want := map[string][]byte{}
	for i := 0; i < 120; i++ {
		name := fmt.Sprintf("d%d/e%d/f%03d.bin", i%4, i%7, i)
		data := randomBytes(t, 1+(i*i*997)%(1<<20))
		want[name] = data
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, src, name, data)
	}
	r := siblingRun(t, dir, nil, buildArgs("--artifact", "/tmp/src:copy", "cp", "-a", "src", "/tmp/src")...)
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	got := 0
	_ = filepath.WalkDir(filepath.Join(dir, "copy", "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		got++
		rel, _ := filepath.Rel(filepath.Join(dir, "copy", "src"), p)
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, want[rel]) {
			t.Errorf("%s differs from what the build wrote (%d bytes, want %d): %v", rel, len(data), len(want[rel]), err)
		}
		return nil
	})
	if got != len(want) {
		t.Errorf("%d files arrived, want %d", got, len(want))
	}
}

func removeContainer(t *testing.T, id string) {
	t.Helper()
	if err := api.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		t.Errorf("removing %.12s: %v", id, err)
	}
}
