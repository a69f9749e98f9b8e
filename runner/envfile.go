package runner

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// envFileFlags open an env file without blocking on a fifo and without
// making a terminal sibling-run's own.
const envFileFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY

// openEnvFile opens the env file name for reading, and only if it is a
// regular file: a fifo, a socket or a device is refused before anything is
// read. A file in the working directory workdir (absolute, links resolved)
// was written by builds or a checked-out repository, either of which may
// have made it, or a directory above it, a link to one of the agent's files:
// it is opened in that directory, following only links that stay inside. A
// file elsewhere is the administrator's and is opened as named.
func openEnvFile(name, workdir string) (*os.File, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("reading env file %q: %w", name, err)
	}
	var (
		f    *os.File
		info fs.FileInfo
	)
	if rel, inside := inWorkdir(abs, workdir); inside {
		root, err := os.OpenRoot(workdir)
		if err != nil {
			return nil, fmt.Errorf("reading env file %q: %w", name, err)
		}
		defer root.Close()
		info, err = root.Stat(rel)
		if err == nil && info.Mode().IsRegular() {
			f, err = root.OpenFile(rel, envFileFlags, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("reading env file %q in the working directory %s: %w; links that lead out of it are not followed: give a regular file", name, workdir, err)
		}
	} else {
		info, err = os.Stat(abs)
		if err == nil && info.Mode().IsRegular() {
			f, err = os.OpenFile(abs, envFileFlags, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("reading env file: %w", err)
		}
	}
	// What was opened is checked again: it may have changed since the stat.
	if f != nil {
		if info, err = f.Stat(); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading env file %q: %w", name, err)
		}
	}
	if !info.Mode().IsRegular() {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("env file %q is %s, not a regular file; give a file of NAME=VALUE lines", name, fileKind(info.Mode()))
	}
	return f, nil
}

// inWorkdir returns abs relative to workdir when abs lies in it, by its
// names or because a directory on its way, an administrator's link, leads
// into it.
func inWorkdir(abs, workdir string) (string, bool) {
	if workdir == "" {
		return "", false
	}
	if rel, ok := within(workdir, abs); ok {
		return rel, true
	}
	parts := components(abs)
	for i := 1; i < len(parts); i++ {
		resolved, err := filepath.EvalSymlinks("/" + strings.Join(parts[:i], "/"))
		if err != nil {
			return "", false
		}
		if rel, ok := within(workdir, resolved); ok {
			return filepath.Join(append([]string{rel}, parts[i:]...)...), true
		}
	}
	return "", false
}

// fileKind names a type of file that is not a regular one.
func fileKind(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe (fifo), which would block the read"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a file"
}
