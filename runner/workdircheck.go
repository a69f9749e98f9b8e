package runner

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// The engine resolves a bind's source (or a volume's subpath) on its host
// when the sibling starts,
// following links there, after sibling-run walked the path (refuseLinks): a
// build that swaps a directory on the path for a link in a loop can win that
// race and get another directory mounted. A check from outside is racy too,
// so the sibling checks itself: its first process is this binary, copied in
// as workdirCheckPath, which compares the working directory's device and
// inode with those sibling-run saw and then execs the build's command, or
// refuses (ExitToolFailure) before anything of the build runs.
//
// The copy costs an archive call per build (about 0.1 s on Docker 20.10 with
// fuse-overlayfs), so it is made only for a bind whose path has a component
// that someone other than root (a build among them) could replace: see
// racyComponent. A volume subpath (API 1.45+) needs it too: the engine
// keeps it inside the volume but follows links there.

// WorkdirCheckCommand is the hidden command word of the check step.
const WorkdirCheckCommand = "check-workdir"

// workdirCheckPath is where the check step's binary is copied to in the sibling.
const workdirCheckPath = "/.sibling-run-check-workdir"

// WorkdirCheckRefusal starts the one line the check step prints when it
// refuses; Run recognises the refusal by it.
const WorkdirCheckRefusal = "[sibling-run] ERR working directory "

// DirIdentity names a directory: its device and inode.
type DirIdentity struct {
	Dev, Ino uint64
}

func (d DirIdentity) String() string { return fmt.Sprintf("%d:%d", d.Dev, d.Ino) }

// ParseDirIdentity reads what String wrote.
func ParseDirIdentity(s string) (DirIdentity, error) {
	dev, ino, ok := strings.Cut(s, ":")
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return DirIdentity{}, fmt.Errorf("%q is not DEV:INODE", s)
	}
	return DirIdentity{d, i}, nil
}

// StatIdentity returns the identity of the directory at path, following links.
func StatIdentity(path string) (DirIdentity, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return DirIdentity{}, err
	}
	return DirIdentity{uint64(st.Dev), uint64(st.Ino)}, nil
}

// identifyDir opens the absolute path real component by component without
// following any link and returns the identity of the directory reached: the
// one whose components were checked, even if one is swapped meanwhile.
func identifyDir(real string) (DirIdentity, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return DirIdentity{}, err
	}
	for _, name := range strings.Split(strings.Trim(filepath.Clean(real), "/"), "/") {
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return DirIdentity{}, fmt.Errorf("working directory %s changed while sibling-run looked at it (%s: %w); run the build again", real, name, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return DirIdentity{}, err
	}
	return DirIdentity{uint64(st.Dev), uint64(st.Ino)}, nil
}

// racyComponent reports whether a component of the bind's source, below
// root, could be replaced by someone other than root while the engine
// resolves it. Under an agent (shared), root is the shared mount's own
// directory: the mount's root holds the jobs' directories and is written by
// the agent; every directory below it may be or lie in a build's working
// directory, so a working directory two or more levels down is racy
// (-w <workdir>/sub). On a host (root "/"), a component is racy when its
// parent is writable by others than root, except a root-owned entry of a
// sticky directory (/tmp), which only root may rename.
func racyComponent(workdir, root string, shared bool) bool {
	rel, err := filepath.Rel(root, workdir)
	if err != nil || rel == "." {
		return false
	}
	parts := strings.Split(rel, "/")
	if shared {
		return len(parts) > 1
	}
	dir := root
	for _, name := range parts {
		if writableByOthers(dir) && !(sticky(dir) && ownedByRoot(filepath.Join(dir, name))) {
			return true
		}
		dir = filepath.Join(dir, name)
	}
	return false
}

func sticky(dir string) bool {
	info, err := os.Stat(dir)
	return err == nil && info.Mode()&os.ModeSticky != 0
}

func ownedByRoot(path string) bool {
	info, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}

// withWorkdirCheck returns config with the check step as its entrypoint and
// the build's whole command (entrypoint and arguments, as the engine would
// run them: an --entrypoint drops the image's CMD) after it. image is the
// image's own config.
func withWorkdirCheck(config *container.Config, cfg Config, image *container.Config, want DirIdentity) (*container.Config, error) {
	var argv []string
	switch {
	case cfg.Entrypoint != nil:
		if *cfg.Entrypoint != "" {
			argv = append(argv, *cfg.Entrypoint)
		}
		argv = append(argv, cfg.Command...)
	default:
		argv = append(argv, image.Entrypoint...)
		if len(cfg.Command) > 0 {
			argv = append(argv, cfg.Command...)
		} else {
			argv = append(argv, image.Cmd...)
		}
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command: image %s has none and none was given; name one after the flags", cfg.Image)
	}
	c := *config
	c.Entrypoint = []string{workdirCheckPath, WorkdirCheckCommand, config.WorkingDir, want.String(), "--"}
	c.Cmd = argv
	return &c, nil
}

// imageConfig returns the image's own config, pulling it first as cfg.Pull
// allows when the engine lacks it.
func imageConfig(ctx context.Context, api Engine, cfg Config) (*container.Config, error) {
	inspectCtx, cancel := boundedCall(ctx, engineCallTimeout)
	info, err := api.ImageInspect(inspectCtx, cfg.Image)
	cancel()
	if err != nil && inspectCtx.Err() != nil {
		return nil, orSilent(inspectCtx, api.DaemonHost(), "inspecting image "+cfg.Image, engineCallTimeout, err)
	}
	if cerrdefs.IsNotFound(err) && cfg.Pull != PullNever {
		if err := newPuller(api, cfg).pull(ctx, cfg.Image); err != nil {
			return nil, err
		}
		info, err = api.ImageInspect(ctx, cfg.Image)
	}
	if cerrdefs.IsNotFound(err) {
		return nil, toolFailure("image %s is not on the engine and --pull never forbids pulling it; pull, build or load it first", cfg.Image)
	}
	if err != nil {
		return nil, toolFailure("inspecting image %s for its command: %w", cfg.Image, err)
	}
	if info.Config == nil {
		return &container.Config{}, nil
	}
	return &container.Config{Entrypoint: info.Config.Entrypoint, Cmd: info.Config.Cmd}, nil
}

// copyWorkdirCheck copies this very binary into the created sibling id as
// workdirCheckPath, owned by root, streamed rather than held in memory.
func copyWorkdirCheck(ctx context.Context, api Engine, id string) error {
	self, err := os.Executable()
	if err != nil {
		return toolFailure("finding sibling-run's own binary for the working directory's check: %w", err)
	}
	f, err := os.Open(self)
	if err != nil {
		return toolFailure("reading sibling-run's own binary for the working directory's check: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return toolFailure("reading sibling-run's own binary: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: workdirCheckPath[1:], Mode: 0o755, Size: info.Size(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if err := api.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{}); err != nil {
		pr.CloseWithError(err)
		return toolFailure("copying the working directory's check into the sibling (it needs sibling-run built static for the engine's platform): %w", err)
	}
	return nil
}

// refusedByWorkdirCheck tells whether a build that exited with code and
// printed head was refused by the check step. A build can print the same
// and so fail itself; it cannot make a refusal pass.
func refusedByWorkdirCheck(code int, head []byte) bool {
	return code == ExitToolFailure && strings.HasPrefix(string(head), WorkdirCheckRefusal)
}
