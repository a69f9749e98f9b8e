package runner

import (
	"debug/elf"
	"fmt"
	"os"
	"sync"
)

// sibling-run copies its own binary into the engine's containers: the
// readiness check of --service (waitTCP) and the working directory's check
// (workdircheck.go) run it there, in images that have no C library. A
// dynamically linked build (a plain go build with cgo) cannot start there,
// and the readiness check would only time out; it is refused before
// anything is created instead.

// staticBuildLine is how to build sibling-run so that it runs in a container.
const staticBuildLine = "CGO_ENABLED=0 go build -o sibling-run ./cmd/sibling-run"

var selfLinkage = sync.OnceValues(func() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", err
	}
	return path, checkStatic(path)
})

// checkStatic returns an error when the ELF file at path needs a dynamic
// loader or shared libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("it needs shared libraries (%v)", libs)
	}
	return nil
}

// checkRunsInContainers refuses a run that would copy this binary into a
// container (why: what needs it) when the binary could not start there.
func checkRunsInContainers(why string) error {
	path, err := selfLinkage()
	if err == nil {
		return nil
	}
	if path == "" {
		return fmt.Errorf("%s copies sibling-run's own binary into a container, and the binary cannot be found: %w", why, err)
	}
	return fmt.Errorf("%s copies sibling-run's own binary (%s) into a container, where it cannot start: %v; build it static: %s", why, path, err, staticBuildLine)
}
