package runner

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
)

// VolumeSpec is one -v, --volume: an extra mount the flags ask for.
type VolumeSpec struct {
	// Source is a named volume, or with Bind an absolute path on the engine's
	// host (which, for sibling-run in an agent container, is not the agent's
	// own filesystem).
	Source   string
	Bind     bool
	Target   string // absolute, in the sibling
	ReadOnly bool
}

// volumeMounts turns the -v specs into mounts. A named volume must exist: the
// engine would otherwise create it, unlabelled, and it would outlive the run.
// That costs one inspect per named volume.
func volumeMounts(ctx context.Context, api Engine, specs []VolumeSpec) ([]mount.Mount, error) {
	var mounts []mount.Mount
	for _, v := range specs {
		if v.Bind {
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
			continue
		}
		if _, err := api.VolumeInspect(ctx, v.Source); cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("-v %s:%s: the engine has no volume %s; create it first (docker volume create %s), or use --cache %s for a cache that sibling-run keeps", v.Source, v.Target, v.Source, v.Source, v.Target)
		} else if err != nil {
			return nil, fmt.Errorf("-v %s:%s: inspecting the volume: %w", v.Source, v.Target, err)
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	return mounts, nil
}
