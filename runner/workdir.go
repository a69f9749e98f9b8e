package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// workdirShare says how the sibling sees the working directory at the same
// absolute path as sibling-run: through the volumes of other containers, or
// through a bind mount of a host path.
type workdirShare struct {
	Workdir     string   // absolute, symlinks resolved
	VolumesFrom []string // containers whose volumes hold Workdir
	Bind        string   // host path bound at Workdir when VolumesFrom is empty
}

func (s workdirShare) mode() string {
	if len(s.VolumesFrom) > 0 {
		return "volumes-from"
	}
	return "bind"
}

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

// shareWorkdir decides how the sibling gets workdir. Explicit volumesFrom
// containers are used as given; otherwise, inside a container (selfID set),
// the sibling takes this container's own volumes; on a host, workdir is
// bind-mounted. With volumes, workdir must lie under one of their mounts:
// a path outside them would reach the sibling as an empty directory that the
// engine creates on its host, and the build would run on nothing.
func shareWorkdir(ctx context.Context, api *client.Client, workdir string, volumesFrom []string, selfID string) (workdirShare, error) {
	share := workdirShare{Workdir: workdir}
	switch {
	case len(volumesFrom) > 0:
		share.VolumesFrom = volumesFrom
	case selfID != "":
		share.VolumesFrom = []string{selfID}
	default:
		share.Bind = workdir
		return share, nil
	}

	var mounts []container.MountPoint
	for _, name := range share.VolumesFrom {
		source, _, _ := strings.Cut(name, ":") // NAME:ro is allowed, as in docker run
		info, err := api.ContainerInspect(ctx, source)
		if err != nil {
			if cerrdefs.IsNotFound(err) && name == selfID {
				return share, fmt.Errorf("sibling-run runs in container %.12s, which the engine at %s does not know; pass --volumes-from with the container that holds %s", selfID, api.DaemonHost(), workdir)
			}
			if cerrdefs.IsNotFound(err) {
				return share, fmt.Errorf("--volumes-from %s: no such container on the engine; name the data container that holds %s", source, workdir)
			}
			return share, fmt.Errorf("inspecting container %s for its volumes: %w", source, err)
		}
		mounts = append(mounts, info.Mounts...)
	}
	if _, ok := mountHolding(workdir, mounts); !ok {
		return share, fmt.Errorf("working directory %s is not on a volume of %s (mounts: %s), so a sibling would see an empty directory; move the build under one of those mounts or pass --volumes-from with the container that holds it",
			workdir, describeContainers(share.VolumesFrom, selfID), describeMounts(mounts))
	}
	return share, nil
}

// mountHolding returns the mount whose destination contains path.
func mountHolding(path string, mounts []container.MountPoint) (container.MountPoint, bool) {
	path = filepath.Clean(path)
	for _, m := range mounts {
		dest := filepath.Clean(m.Destination)
		if path == dest || strings.HasPrefix(path, strings.TrimSuffix(dest, "/")+"/") {
			return m, true
		}
	}
	return container.MountPoint{}, false
}

func describeContainers(names []string, selfID string) string {
	if len(names) == 1 && names[0] == selfID {
		return fmt.Sprintf("this container (%.12s)", selfID)
	}
	return strings.Join(names, ", ")
}

func describeMounts(mounts []container.MountPoint) string {
	if len(mounts) == 0 {
		return "none"
	}
	dests := make([]string, len(mounts))
	for i, m := range mounts {
		dests[i] = m.Destination
	}
	return strings.Join(dests, ", ")
}
