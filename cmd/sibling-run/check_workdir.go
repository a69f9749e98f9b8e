package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"sibling-run/runner"
)

// checkWorkdir is the sibling's first process when its working directory is
// a bind whose path a build could race (see the runner's workdircheck.go):
// args are the working directory, its DEV:INODE as sibling-run saw it, "--"
// and the build's command. It execs the command, in place, only when the
// directory the engine mounted is that one; else it prints one line and
// exits 125, and nothing of the build has run. A command that cannot be
// started gives 127 or 126, as docker run does. It runs before kong, so that
// no variable of the build's environment can change what it does.
func checkWorkdir(args []string, stderr io.Writer) int {
	if len(args) < 4 || args[2] != "--" {
		fmt.Fprintln(stderr, "[sibling-run] ERR check-workdir: usage: check-workdir DIR DEV:INODE -- COMMAND...")
		return runner.ExitToolFailure
	}
	dir, argv := args[0], args[3:]
	want, err := runner.ParseDirIdentity(args[1])
	if err != nil {
		fmt.Fprintln(stderr, "[sibling-run] ERR check-workdir:", err)
		return runner.ExitToolFailure
	}
	// The engine made "." the working directory; both must be the one seen.
	for _, path := range []string{dir, "."} {
		got, err := runner.StatIdentity(path)
		if err != nil || got != want {
			fmt.Fprintf(stderr, "%s%s is not the directory sibling-run checked (%s, want %s): a directory on its path was replaced, likely by a link, while the engine mounted it; nothing of the build ran; run the build again\n",
				runner.WorkdirCheckRefusal, dir, describeIdentity(got, err), want)
			return runner.ExitToolFailure
		}
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		var err error
		path, err = exec.LookPath(argv[0])
		if errors.Is(err, exec.ErrDot) {
			err = nil // the runtime finds commands in "." of PATH too
		}
		if err != nil {
			fmt.Fprintf(stderr, "exec %s failed: %v\n", argv[0], err)
			return runner.ExitNotFound
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(stderr, "exec %s failed: %v\n", argv[0], err)
	if errors.Is(err, syscall.ENOENT) {
		return runner.ExitNotFound
	}
	return runner.ExitCannotInvoke
}

func describeIdentity(got runner.DirIdentity, err error) string {
	if err != nil {
		return err.Error()
	}
	return got.String()
}
