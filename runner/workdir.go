package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// resolveWorkdir checks that dir is a directory here and returns its absolute
// path with symlinks resolved, the path the sibling will be given.
func resolveWorkdir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("no working directory: set --workdir or bamboo_build_working_directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("working directory %s: %w", dir, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("working directory %s does not exist; create it or pass another --workdir", abs)
	}
	info, err := os.Stat(resolved)
	if err != nil || !info.IsDir() {
		return "", fmt.Errorf("working directory %s is not a directory; pass a directory as --workdir", abs)
	}
	if resolved == "/" {
		// The engine cannot mount anything over a container's own root.
		return "", fmt.Errorf("working directory / cannot be shared with a sibling; run the build in a directory of its own")
	}
	return resolved, nil
}

// refuseLinks walks the absolute path given, component by component as the
// kernel would, and refuses a symbolic link that lies in a directory for which
// untrusted is true: a link there may have been planted by a build, to turn
// "this build's directory" into another plan's, or the engine host's /etc
// (the engine follows links in a bind's source on its own host). Links in
// trusted directories (the agent's own filesystem) are followed. It returns
// the path reached, which must be the working directory resolved before: a
// path that changed in between is refused as well.
func refuseLinks(given string, untrusted func(dir string) bool) (string, error) {
	real := "/"
	rest := strings.Split(filepath.Clean(given), "/")
	for followed := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			real = filepath.Dir(real)
			continue
		}
		next := filepath.Join(real, name)
		info, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("working directory %s: %w", given, err)
		}
		if info.Mode()&os.ModeSymlink == 0 {
			real = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("working directory %s: %w", given, err)
		}
		if untrusted(real) {
			return "", fmt.Errorf("working directory %s passes through the symbolic link %s (to %s), in a directory a build can write; refusing, since the link may have been planted to share another directory: pass the directory's real path, or remove the link", given, next, target)
		}
		// The target is walked like the rest, so that a trusted link cannot
		// lead through an untrusted one unchecked.
		if followed++; followed > maxLinks {
			return "", fmt.Errorf("working directory %s: too many levels of symbolic links", given)
		}
		if filepath.IsAbs(target) {
			real = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return real, nil
}

// maxLinks is as many links as the kernel follows in one path.
const maxLinks = 40

// writableByOthers reports whether someone other than root could have
// created a link in dir: on a host, a directory that root owns and only root
// may write holds only the administrator's links.
func writableByOthers(dir string) bool {
	info, err := os.Stat(dir)
	if err != nil {
		return true
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return !ok || st.Uid != 0 || info.Mode().Perm()&0o022 != 0
}

// sharedMount is a mount of a container that sibling-run inspected, with the
// container it belongs to.
type sharedMount struct {
	container.MountPoint
	Container string // as the user named it, or this container's short id
	// Here is the mount's destination in sibling-run's own view, links in it
	// resolved; the engine reports it as it was asked for.
	Here string
}

// inspectMounts returns the mounts of the named containers. A name may end
// in :ro, as with docker run --volumes-from, and the working directory is then
// shared read-only.
func inspectMounts(ctx context.Context, api Engine, names []string, workdir string) ([]sharedMount, error) {
	var mounts []sharedMount
	for _, name := range names {
		source, mode, _ := strings.Cut(name, ":")
		info, err := api.ContainerInspect(ctx, source)
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("--volumes-from %s: no such container on the engine; name the data container that holds %s", source, workdir)
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting container %s for its volumes: %w", source, err)
		}
		for _, m := range info.Mounts {
			if mode == "ro" {
				m.RW = false
			}
			mounts = append(mounts, sharedMount{MountPoint: m, Container: source, Here: destinationHere(m.Destination)})
		}
	}
	return mounts, nil
}

// selfMounts inspects the container self names, makes sure it is the one this
// process runs in, and returns its mounts. A container whose hostname is not
// ours was found by mistake: using its mounts would share a stranger's files.
func selfMounts(ctx context.Context, api Engine, self selfDetection, workdir string) ([]sharedMount, error) {
	info, err := api.ContainerInspect(ctx, self.ID)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("sibling-run runs in container %.12s, which the engine at %s does not know; pass --volumes-from with the container that holds %s", self.ID, api.DaemonHost(), workdir)
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting this container (%.12s) for its volumes: %w", self.ID, err)
	}
	hostname, _ := os.Hostname()
	if info.Config == nil || info.Config.Hostname != hostname {
		theirs := ""
		if info.Config != nil {
			theirs = info.Config.Hostname
		}
		why := ""
		if info.HostConfig != nil && info.HostConfig.UTSMode.IsHost() {
			why = " (it shares the host's hostname, --uts host, so its own cannot confirm it)"
		}
		return nil, fmt.Errorf("this process looked like container %.12s (from %s), but that container's hostname is %q and this one's is %q%s; refusing to share its mounts: pass --volumes-from with the container that holds %s", self.ID, self.How, theirs, hostname, why, workdir)
	}
	mounts := make([]sharedMount, len(info.Mounts))
	for i, m := range info.Mounts {
		mounts[i] = sharedMount{MountPoint: m, Container: fmt.Sprintf("this container (%.12s)", self.ID), Here: destinationHere(m.Destination)}
	}
	return mounts, nil
}

func destinationHere(dest string) string {
	if real, err := filepath.EvalSymlinks(dest); err == nil {
		return real
	}
	return filepath.Clean(dest)
}

// mountHolding returns the mount whose destination (here) contains path; of
// nested mounts, the innermost.
func mountHolding(path string, mounts []sharedMount) (sharedMount, bool) {
	var best sharedMount
	found := false
	for _, m := range mounts {
		if isWithin(path, m.Here) && (!found || len(m.Here) > len(best.Here)) {
			best, found = m, true
		}
	}
	return best, found
}

// isWithin reports whether path is dir or lies below it.
func isWithin(path, dir string) bool {
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// workdirMount is the sibling's mount of exactly workdir, which lies in
// holder: the volume's subdirectory where the engine can mount one
// (subpath), else the directory's path on the engine's host as a bind. A
// volume mount never takes the image's content: an engine fills an empty
// volume mount from the image's files at its target, and a fresh agent's
// working directory is empty (Docker 29 did so with a subpath).
func workdirMount(workdir string, holder sharedMount, subpath bool) (mount.Mount, error) {
	rel, err := filepath.Rel(holder.Here, workdir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return mount.Mount{}, fmt.Errorf("working directory %s is not below %s", workdir, holder.Here)
	}
	m := mount.Mount{Target: workdir, ReadOnly: !holder.RW}
	switch {
	case holder.Type == mount.TypeVolume && subpath:
		m.Type, m.Source = mount.TypeVolume, holder.Name
		m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		if rel != "." {
			m.VolumeOptions.Subpath = rel
		}
	case (holder.Type == mount.TypeVolume || holder.Type == mount.TypeBind) && holder.Source != "":
		m.Type, m.Source = mount.TypeBind, filepath.Join(holder.Source, rel)
	case holder.Type == mount.TypeVolume:
		return mount.Mount{}, fmt.Errorf("working directory %s is on volume %s (driver %s) of %s, whose path on the engine's host is unknown, and this engine is too old (API before 1.45) to mount a part of a volume; use a local volume, or a newer engine", workdir, holder.Name, holder.Driver, holder.Container)
	default:
		return mount.Mount{}, fmt.Errorf("working directory %s is on a %s mount of %s at %s, which no other container can share; move the build to a volume or a bind mount", workdir, holder.Type, holder.Container, holder.Destination)
	}
	return m, nil
}

func describeMounts(mounts []sharedMount) string {
	if len(mounts) == 0 {
		return "none"
	}
	dests := make([]string, len(mounts))
	for i, m := range mounts {
		dests[i] = m.Destination
	}
	return strings.Join(dests, ", ")
}
