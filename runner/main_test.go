package runner

import (
	"os"
	"testing"
)

// TestMain takes the test binary for a static build of sibling-run: the
// fake engine runs no container, and with -race (which needs cgo) the test
// binary is dynamically linked, which checkRunsInContainers would refuse.
// TestCheckStatic tests the check itself on real builds.
func TestMain(m *testing.M) {
	selfLinkage = func() (string, error) { return "/fake/sibling-run", nil }
	os.Exit(m.Run())
}
