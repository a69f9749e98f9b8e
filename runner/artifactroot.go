package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// artifactRoot is the working directory opened before the build starts, the
// only directory artifacts are written into and the one the after-build
// pass (neutraliseWorkdir) walks. The build shares the directory
// and may, while it runs, rename it or any directory above it and leave a
// symbolic link in its place; following the path after the build would then
// write wherever the build chose. The held directory cannot be redirected,
// and the copy happens only when the path still leads to it without a link.
type artifactRoot struct {
	path string
	root *os.Root
}

// errWorkdirReplaced reports that the working directory's path no longer
// leads, without links, to the directory opened before the build.
var errWorkdirReplaced = errors.New("the working directory was moved or replaced")

// holdArtifactRoot opens workdir (absolute, links resolved) before the
// build starts.
func holdArtifactRoot(workdir string) (*artifactRoot, error) {
	root, err := os.OpenRoot(workdir)
	if err != nil {
		return nil, fmt.Errorf("opening the working directory %s before the build: %w", workdir, err)
	}
	held := &artifactRoot{path: workdir, root: root}
	// Even before the build, an orphan of an earlier one may be at work.
	if err := held.check(); err != nil {
		root.Close()
		return nil, err
	}
	return held, nil
}

// Close releases the directory; a nil artifactRoot holds none.
func (a *artifactRoot) Close() {
	if a != nil {
		a.root.Close()
	}
}

// check makes sure that the path, walked from "/" without following a
// single link, still leads to the held directory.
func (a *artifactRoot) check() error {
	if a == nil {
		return errors.New("the working directory was not opened before the build")
	}
	held, err := a.root.Stat(".")
	if err != nil {
		return fmt.Errorf("the working directory %s: %w", a.path, err)
	}
	var now unix.Stat_t
	if err := statNoFollow(a.path, &now); err != nil {
		return fmt.Errorf("%w: %v", errWorkdirReplaced, err)
	}
	st, ok := held.Sys().(*syscall.Stat_t)
	if !ok || uint64(st.Dev) != uint64(now.Dev) || st.Ino != now.Ino {
		return fmt.Errorf("%w: another directory is at %s now", errWorkdirReplaced, a.path)
	}
	return nil
}

// statNoFollow stats the absolute dir, opening each of its components
// relative to the one before and refusing a symbolic link anywhere.
func statNoFollow(dir string, st *unix.Stat_t) error {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	walked := "/"
	for _, name := range strings.Split(strings.Trim(path.Clean(dir), "/"), "/") {
		if name == "" {
			continue
		}
		walked = path.Join(walked, name)
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%s is a symbolic link or not a directory", walked)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", walked, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, st)
}

// openDest opens dest, a directory relative to the held working directory,
// creating what is missing of it. No component may be a symbolic link: the
// build could have left one there to send the artifact elsewhere.
func (a *artifactRoot) openDest(dest string) (*os.Root, error) {
	walked := "."
	for _, name := range strings.Split(path.Clean(dest), "/") {
		if name == "." {
			continue
		}
		walked = path.Join(walked, name)
		info, err := a.root.Lstat(walked)
		if errors.Is(err, fs.ErrNotExist) {
			err = a.root.Mkdir(walked, 0o755)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%q is a symbolic link or not a directory", path.Join(a.path, walked))
		}
	}
	return a.root.OpenRoot(walked)
}
