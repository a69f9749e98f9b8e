package runner

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestStartFailureCode(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want int
	}{
		{"command not in PATH",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown`,
			ExitNotFound},
		{"command not in PATH, newer engine",
			`Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: "nosuchcmd": executable file not found in $PATH: unknown`,
			ExitNotFound},
		{"absolute path that does not exist",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/opt/build.sh": stat /opt/build.sh: no such file or directory: unknown`,
			ExitNotFound},
		{"file that is not executable",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown`,
			ExitCannotInvoke},
		{"directory as command",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc": is a directory: unknown`,
			ExitCannotInvoke},
		// Rootless Podman 4.3 (runc), from its libpod init call, which the run
		// makes when the attach is refused (runner/stream.go).
		{"Podman rootless, command not in PATH",
			`runc: runc create failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: OCI runtime attempted to invoke a command that was not found`,
			ExitNotFound},
		{"Podman rootless, absolute path that does not exist",
			`runc: runc create failed: unable to start container process: exec: "/opt/build.sh": stat /opt/build.sh: no such file or directory: OCI runtime attempted to invoke a command that was not found`,
			ExitNotFound},
		{"Podman rootless, file that is not executable",
			`runc: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied: OCI permission denied`,
			ExitCannotInvoke},
		{"Podman rootless, directory as command",
			`runc: runc create failed: unable to start container process: exec: "/etc": permission denied: OCI permission denied`,
			ExitCannotInvoke},
		// Issue 24: the engine's network failed, and its errno read as "not found".
		{"Podman rootless, network namespace failed",
			`failed to mount runtime directory for rootless netns: no such file or directory`,
			ExitToolFailure},
		// Constructed in runc 1.1's wording: errors of the container's setup
		// that end in an errno, with no exec clause.
		{"runc, a mount that failed",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "/srv/x" to rootfs at "/x": stat /srv/x: no such file or directory: unknown`,
			ExitToolFailure},
		{"runc, a device the runtime needs that is refused",
			`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: open /dev/net/tun: permission denied: unknown`,
			ExitToolFailure},
		{"port already taken",
			`Error response from daemon: driver failed programming external connectivity on endpoint sibling-run-x (0b9c): Bind for 0.0.0.0:8080 failed: port is already allocated`,
			ExitToolFailure},
		{"network gone",
			`Error response from daemon: network 6c2b7f0e1a9d not found`,
			ExitToolFailure},
		{"engine gone",
			`Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?`,
			ExitToolFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startFailureCode(errors.New(tt.msg)); got != tt.want {
				t.Errorf("startFailureCode(%q) = %d, want %d", tt.msg, got, tt.want)
			}
			// The code must not depend on context added around the engine's text.
			wrapped := fmt.Errorf("starting %q in alpine: %w", "make", errors.New(tt.msg))
			if got := startFailureCode(wrapped); got != tt.want {
				t.Errorf("startFailureCode(wrapped %q) = %d, want %d", tt.msg, got, tt.want)
			}
		})
	}
}

func TestOOMMessage(t *testing.T) {
	tests := []struct {
		limit    int64
		wantText []string
	}{
		{512 << 20, []string{"out of memory", "512MiB", "--memory"}},
		{2 << 30, []string{"out of memory", "2GiB", "--memory"}},
		{1536 << 20, []string{"1.5GiB", "--memory"}},
		{0, []string{"out of memory", "no --memory limit"}},
	}
	for _, tt := range tests {
		got := oomMessage(tt.limit)
		for _, want := range tt.wantText {
			if !strings.Contains(got, want) {
				t.Errorf("oomMessage(%d) = %q, want it to contain %q", tt.limit, got, want)
			}
		}
	}
}

// catatonit, Podman's init, exits 1 when it cannot exec the build's command
// and says why in one line; the build then gets docker run's codes.
func TestInitExecFailureCode(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		output string
		want   int
	}{
		{"catatonit, command not found", 1, "ERROR (catatonit:6): failed to exec pid1: No such file or directory\n", ExitNotFound},
		{"catatonit, not executable", 1, "ERROR (catatonit:6): failed to exec pid1: Permission denied\n", ExitCannotInvoke},
		{"catatonit, wrong format", 1, "ERROR (catatonit:12): failed to exec pid1: Exec format error\n", ExitCannotInvoke},
		{"catatonit under a terminal", 1, "ERROR (catatonit:6): failed to exec pid1: No such file or directory\r\n", ExitNotFound},
		{"the build's own exit 1", 1, "FAIL: 3 tests\n", 1},
		{"the line and more output", 1, "ERROR (catatonit:6): failed to exec pid1: No such file or directory\nmore\n", 1},
		{"the line quoted by a build", 1, "log: ERROR (catatonit:6): failed to exec pid1: No such file or directory\n", 1},
		{"the line with another code", 2, "ERROR (catatonit:6): failed to exec pid1: No such file or directory\n", 2},
		{"no output", 1, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := initExecFailureCode(tt.code, []byte(tt.output))
			if got != tt.want {
				t.Errorf("initExecFailureCode(%d, %q) = %d, want %d", tt.code, tt.output, got, tt.want)
			}
			if (reason != "") != (got != tt.code) {
				t.Errorf("initExecFailureCode(%d, %q) gave reason %q with code %d", tt.code, tt.output, reason, got)
			}
		})
	}
}

func TestInitCommandIsWhatFollowsTheDashes(t *testing.T) {
	for _, tt := range []struct {
		path string
		args []string
		want string
	}{
		{"/run/podman-init", []string{"--", "version", "x"}, "version"}, // Podman
		{"version", []string{"x"}, "version"},                           // Docker
		{"/run/podman-init", []string{"--"}, "/run/podman-init"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := initCommand(tt.path, tt.args); got != tt.want {
				t.Errorf("initCommand(%q, %q) = %q, want %q", tt.path, tt.args, got, tt.want)
			}
		})
	}
}

func TestOutputHeadKeepsOnlyShortOutput(t *testing.T) {
	var out, errOut strings.Builder
	h := &outputHead{}
	stdout, stderr := h.tee(&out), h.tee(&errOut)
	_, _ = stderr.Write([]byte("ERROR (catatonit:6): "))
	_, _ = stderr.Write([]byte("failed to exec pid1: No such file or directory\n"))
	if got := string(h.bytes()); got != errOut.String() {
		t.Errorf("head = %q, want what was written, %q", got, errOut.String())
	}
	_, _ = stdout.Write([]byte(strings.Repeat("x", outputHeadSize)))
	if got := h.bytes(); got != nil {
		t.Errorf("head of %d bytes = %q, want nil", outputHeadSize+68, got)
	}
	if out.Len() != outputHeadSize {
		t.Errorf("stdout got %d bytes, want all %d", out.Len(), outputHeadSize)
	}
}

func TestLikelyOOMMessageSaysItIsNotSure(t *testing.T) {
	got := likelyOOMMessage(16 << 20)
	for _, want := range []string{"SIGKILL", "16MiB", "likely ran out of memory", "--memory"} {
		if !strings.Contains(got, want) {
			t.Errorf("likelyOOMMessage = %q, want it to contain %q", got, want)
		}
	}
}
