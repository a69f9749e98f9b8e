package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
)

// The project's Go image (scripts/go-image.sh) stands in for golang: in the
// demo and the docs, so it must build what golang: builds: a module with
// dependencies through the documented --cache recipes, cgo and -race, and
// go test -coverprofile over a package without tests (go tool covdata).
//
// The module's dependencies come from a GOPROXY directory that the test
// fills on this host (go mod download) and mounts read-only into the
// sibling: the engine's containers may have no route to the module proxy,
// and a directory is the same on every run. The second build gets
// GOPROXY=off, so it fails if the first left the modules anywhere but in
// its cache.
func TestGoImageBuildsAModuleWithDependenciesFromItsCache(t *testing.T) {
	firstPassOnly(t, "it builds the Go image, minutes on any engine; it tests that image, not the engine")
	ctx := context.Background()
	goImage := "sibling-run-test/go-image:" + runID
	t.Cleanup(func() { _, _ = api.ImageRemove(ctx, goImage, image.RemoveOptions{PruneChildren: true}) })
	// No prebuilt standard library: the cache volume holds what the builds compile.
	script(t, []string{"GO_IMAGE_PREBUILD=", "IMAGE_LABEL=" + testLabel}, "go-image.sh", goImage)

	dir := t.TempDir()
	project := filepath.Join(dir, "project")
	modcache := filepath.Join(dir, "modcache")
	writeGoProject(t, project, modcache)
	proxyDir := filepath.Join(modcache, "cache", "download")
	// The build runs as the project's owner, as the agent's user would be.
	if out, err := exec.Command("chown", "-R", "2005:2005", project).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}

	build := `go vet ./... && go test -race ./... && go test -coverprofile=/tmp/cover.out ./... && go build -o logdemo . && ./logdemo`
	for _, tc := range []struct{ name, flags string }{
		{"the project's image row", "--cache /tmp/go-cache --cache /go/pkg/mod"},
		{"the general Go row", "-e GOCACHE=/var/cache/go/build --cache /var/cache/go/build -e GOMODCACHE=/var/cache/go/mod --cache /var/cache/go/mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			label := "sibling-run-test.go-image=" + randomHex(4)
			t.Cleanup(func() {
				siblingRun(t, dir, nil, "cache", "prune", "--all", "--label", testLabel, "--label", label)
			})
			run := func(goproxy string) result {
				args := []string{"--image", goImage, "--label", testLabel, "--label", label, "-v", proxyDir + ":/goproxy:ro", "-e", "GOPROXY=" + goproxy}
				args = append(args, strings.Fields(tc.flags)...)
				return siblingRun(t, project, []string{"bamboo_buildKey=GOIMG-" + runID}, append(args, "--", "sh", "-c", build)...)
			}
			first := run("file:///goproxy")
			if first.code != 0 || !strings.Contains(first.stdout, `"built":"with its dependencies"`) {
				t.Fatalf("the first build: exit %d\n%s\n%s", first.code, first.stdout, first.stderr)
			}
			second := run("off")
			if second.code != 0 || !strings.Contains(second.stdout, `"built":"with its dependencies"`) {
				t.Fatalf("the second build, with GOPROXY=off, needed more than its cache: exit %d\n%s\n%s", second.code, second.stdout, second.stderr)
			}
			t.Logf("first build %s, second %s (from the cache)", first.took.Round(100e6), second.took.Round(100e6))
		})
	}
}

// writeGoProject makes a small real Go module in dir: zerolog, a dependency
// of sibling-run itself, with its own dependencies; a test; a package
// without tests. Its main prints a JSON line with "built":"with its
// dependencies". The modules go into modcache, whose cache/download is a
// GOPROXY directory for builds that cannot reach the module proxy.
func writeGoProject(t *testing.T, dir, modcache string) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "go.mod"), "module example.com/logdemo\n\ngo 1.22\n\nrequire github.com/rs/zerolog v1.35.1\n", 0o644)
	mustWrite(t, filepath.Join(dir, "main.go"), `package main

import (
	"os"

	"github.com/rs/zerolog"
)

func main() {
	log := zerolog.New(os.Stdout)
	log.Info().Str("built", "with its dependencies").Msg("hello")
}
`, 0o644)
	mustWrite(t, filepath.Join(dir, "main_test.go"), "package main\n\nimport \"testing\"\n\nfunc TestHello(t *testing.T) { main() }\n", 0o644)
	mustWrite(t, filepath.Join(dir, "extra", "extra.go"), "package extra\n\n// Untested is in a package without tests.\nfunc Untested() int { return 1 }\n", 0o644)
	for _, args := range [][]string{{"mod", "tidy"}, {"mod", "download", "all"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOMODCACHE="+modcache, "GOFLAGS=-modcacherw", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s on this host: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
