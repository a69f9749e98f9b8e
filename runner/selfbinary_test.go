package runner

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A static build passes; a build linked against the C library is refused,
// as it could not start in the engine's containers.
func TestCheckStatic(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	// os/user's lookups link the C library when cgo is on.
	if err := os.WriteFile(src, []byte("package main\nimport \"os/user\"\nfunc main() { _, _ = user.Current() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(cgo string) string {
		out := filepath.Join(dir, "prog-cgo"+cgo)
		cmd := exec.Command("go", "build", "-o", out, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build with CGO_ENABLED=%s: %v\n%s", cgo, err, b)
		}
		return out
	}
	if err := checkStatic(build("0")); err != nil {
		t.Errorf("a CGO_ENABLED=0 build: %v, want it taken as static", err)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("this test needs gcc to build a cgo binary (apt-get install gcc)")
	}
	if err := checkStatic(build("1")); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a cgo build: %v, want it refused as dynamically linked", err)
	}
}
