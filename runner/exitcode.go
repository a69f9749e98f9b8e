package runner

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/docker/go-units"
	"github.com/rs/zerolog"
)

// startFailureCode classifies an engine error from starting the sibling, the
// way docker run does: 127 when the command does not exist, 126 when it cannot
// be invoked, 125 for anything else. The engine reports these only as message
// text from the OCI runtime, so matching that text is confined to here.
// (With --init, the init process reports the same cases as the build's own
// exit codes: Docker's does with 127 and 126, Podman's with 1, see
// initExecFailureCode.)
//
// Only the runtime's words about exec'ing the command count: an engine's
// own failure that merely ends in an errno ("failed to mount runtime
// directory for rootless netns: no such file or directory", rootless Podman
// without a working network) is 125, never "not found".
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	// Podman appends its cause to the runtime's message, whichever runtime
	// it runs (runc, crun).
	case strings.Contains(msg, "OCI runtime attempted to invoke a command that was not found"):
		return ExitNotFound
	case strings.Contains(msg, "OCI permission denied"):
		return ExitCannotInvoke
	}
	// runc (Docker's and Podman's): `exec: "CMD": REASON`.
	m := runcExecFailure.FindStringSubmatch(msg)
	if m == nil {
		return ExitToolFailure
	}
	switch reason := m[1]; {
	case strings.Contains(reason, "executable file not found"),
		strings.Contains(reason, "no such file or directory"):
		return ExitNotFound
	case strings.Contains(reason, "permission denied"),
		strings.Contains(reason, "is a directory"):
		return ExitCannotInvoke
	}
	return ExitToolFailure
}

// runcExecFailure is runc's clause for a command it could not exec, with or
// without the command quoted; the group is its reason.
var runcExecFailure = regexp.MustCompile(`\bexec: (?:"[^"]*": )?(.*)`)

// catatonitExecFailure is the one line catatonit, Podman's init (--init),
// prints when it cannot exec the build's command; it then exits 1, where
// Docker's init exits 127 or 126.
var catatonitExecFailure = regexp.MustCompile(`^ERROR \(catatonit:[0-9]+\): failed to exec pid1: ([^\r\n]+)\r?\n$`)

// initExecFailureCode returns docker run's code for a build that exited with
// code and printed only output: 127 or 126 when that was catatonit failing to
// exec the command (ENOENT is "not found", any other failure "cannot invoke"),
// and code itself otherwise. reason is catatonit's own words, "" otherwise.
func initExecFailureCode(code int, output []byte) (int, string) {
	if code != 1 {
		return code, ""
	}
	m := catatonitExecFailure.FindSubmatch(output)
	if m == nil {
		return code, ""
	}
	reason := string(m[1])
	if reason == "No such file or directory" {
		return ExitNotFound, reason
	}
	return ExitCannotInvoke, reason
}

// initExecFailure is initExecFailureCode for the exited sibling id, which
// also logs the command that could not start: Docker's init names it
// ("exec CMD failed: ..."), catatonit does not, so its arguments are read
// from the container (Podman: Path is its init, Args "--" and the command).
// Only a failed start pays for that inspect.
func initExecFailure(ctx context.Context, api Engine, id string, code int, output []byte, log zerolog.Logger) int {
	code, reason := initExecFailureCode(code, output)
	if reason == "" {
		return code
	}
	command := "the build's command"
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	if info, err := api.ContainerInspect(ctx, id); err == nil {
		if argv0 := initCommand(info.Path, info.Args); argv0 != "" {
			command = argv0
		}
	}
	log.Error().Msgf("exec %s failed: %s (the build's command could not start; Podman's init said so)", command, reason)
	return code
}

// initCommand is the command an init was given to run: what follows "--"
// in its arguments, else path itself.
func initCommand(path string, args []string) string {
	for i, a := range args {
		if a == "--" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return path
}

// outputHead keeps the first bytes a build writes to stdout and stderr
// together, which is enough to recognise an init's one-line complaint (see
// initExecFailureCode); nil once the build wrote more than that.
type outputHead struct {
	mu       sync.Mutex
	head     []byte
	overflow bool
}

const outputHeadSize = 256

// bytes returns the head, or nil when the output was longer than it.
func (h *outputHead) bytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.overflow {
		return nil
	}
	return h.head
}

// tee returns a writer that writes to w and records what it writes.
func (h *outputHead) tee(w io.Writer) headWriter {
	return headWriter{w: w, head: h}
}

type headWriter struct {
	w    io.Writer
	head *outputHead
}

func (t headWriter) Write(p []byte) (int, error) {
	t.head.mu.Lock()
	if !t.head.overflow {
		if len(t.head.head)+len(p) > outputHeadSize {
			t.head.overflow, t.head.head = true, nil
		} else {
			t.head.head = append(t.head.head, p...)
		}
	}
	t.head.mu.Unlock()
	return t.w.Write(p)
}

// oomMessage says that the build ran out of memory and at what limit.
func oomMessage(limit int64) string {
	if limit > 0 {
		return fmt.Sprintf("the build ran out of memory: the kernel killed it at its limit of %s; raise --memory", units.BytesSize(float64(limit)))
	}
	return "the build ran out of memory: the kernel killed it with no --memory limit set, so the host itself ran out"
}

// likelyOOMMessage is for an engine that does not record out-of-memory
// kills (Podman reports OOMKilled false for a build the kernel killed at its
// --memory limit): a SIGKILL with a memory limit set is most likely that,
// but could be someone's kill -9, so it says "likely".
func likelyOOMMessage(limit int64) string {
	return fmt.Sprintf("the build was killed (SIGKILL) while limited to %s of memory: it likely ran out of memory (the engine does not say whether it did); if so, raise --memory", units.BytesSize(float64(limit)))
}
