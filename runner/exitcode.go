package runner

import (
	"fmt"
	"strings"

	"github.com/docker/go-units"
)

// startFailureCode classifies an engine error from starting the sibling, the
// way docker run does: 127 when the command does not exist, 126 when it cannot
// be invoked, 125 for anything else. The engine reports these only as message
// text from the OCI runtime, so matching that text is confined to here.
// (With --init, the init process reports the same cases as the build's own
// exit codes 127 and 126, and the start succeeds.)
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "no such file or directory"):
		return ExitNotFound
	case strings.Contains(msg, "permission denied"),
		strings.Contains(msg, "is a directory"):
		return ExitCannotInvoke
	}
	return ExitToolFailure
}

// oomMessage says that the build ran out of memory and at what limit.
func oomMessage(limit int64) string {
	if limit > 0 {
		return fmt.Sprintf("the build ran out of memory: the kernel killed it at its limit of %s; raise --memory", units.BytesSize(float64(limit)))
	}
	return "the build ran out of memory: the kernel killed it with no --memory limit set, so the host itself ran out"
}
