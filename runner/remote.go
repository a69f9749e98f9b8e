package runner

import (
	"context"
	"math"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/rs/zerolog"
)

// RemoteMode says whether the working directory reaches the build by a copy
// (remote) or by a mount of the directory itself (local).
type RemoteMode string

const (
	// RemoteAuto copies when the engine is not reached through a unix
	// socket: a tcp:// engine does not see this host's files.
	RemoteAuto RemoteMode = "auto"
	// RemoteOn copies whatever the engine.
	RemoteOn RemoteMode = "true"
	// RemoteOff mounts whatever the engine (a tcp:// engine on this host).
	RemoteOff RemoteMode = "false"
)

// remoteMode is the Mode of a working directory copied through a run volume.
const remoteMode = "copied into a volume of the run's own (remote engine)"

// roleWorkdir is the LabelRole of a run volume.
const roleWorkdir = "workdir"

// isRemote decides, once, whether this run copies its working directory.
func isRemote(mode RemoteMode, host string) bool {
	switch mode {
	case RemoteOn:
		return true
	case RemoteOff:
		return false
	}
	return !isUnixHost(host)
}

// runVolume is the volume of a remote run's own that holds its working
// directory: filled before the build starts, copied back after it, and
// removed with the sibling. It carries the sibling's owner labels, so that
// reap removes it when sibling-run was killed, and LabelRole "workdir",
// never LabelCache: cache ls and prune do not see it, nor it them.
type runVolume struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Copy says, for --dry-run, what happens to it.
	Copy string `json:"copy"`
}

// newRunVolume names the run volume after the build, as the sibling is
// named, with labels of its own.
func newRunVolume(buildKey string, labels map[string]string) *runVolume {
	return &runVolume{
		Name:   containerName(buildKey) + "-workdir",
		Labels: withRole(labels, roleWorkdir),
		Copy:   "the working directory is copied in before the build starts, and its changes back after the build",
	}
}

// mount is the run volume at the working directory. NoCopy: the image's
// own files at that path must not mix with the working directory's.
func (v *runVolume) mount(workdir string) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: workdir, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}
}

// create makes the volume on the engine, before the sibling.
func (v *runVolume) create(ctx context.Context, api Engine) error {
	ctx, cancel := detached(ctx, createTimeout)
	defer cancel()
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: v.Name, Labels: v.Labels}); err != nil {
		if ctx.Err() != nil {
			return engineSilent(api, "create the working directory's volume", createTimeout)
		}
		return toolFailure("creating the volume %s for the working directory: %w", v.Name, err)
	}
	return nil
}

// remove removes the volume, after the sibling that used it; a failure is
// logged with what to do.
func (v *runVolume) remove(ctx context.Context, api Engine, engineLost bool, log zerolog.Logger) {
	timeout := removeTimeout
	if engineLost {
		timeout = engineTimeout
	}
	ctx, cancel := detached(ctx, timeout)
	defer cancel()
	err := api.VolumeRemove(ctx, v.Name, true)
	switch {
	case err == nil || cerrdefs.IsNotFound(err):
		log.Debug().Str("volume", v.Name).Msg("removed the working directory's volume")
	case engineLost || isEngineSilent(err):
		log.Warn().Err(err).Str("volume", v.Name).Msg("could not remove the working directory's volume; it is left on the engine")
	default:
		log.Error().Err(err).Str("volume", v.Name).Msg("removing the working directory's volume failed; run `sibling-run reap` once the engine answers")
	}
}

// reapRunVolumes removes the run volumes whose sibling-run is gone, as reap
// does for containers, and must run after them: the engine keeps a volume
// that a container still uses (then a later reap removes it).
func reapRunVolumes(ctx context.Context, api Engine, me owner, scope reapScope, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	args := scope.filters()
	args.Add("label", LabelRole+"="+roleWorkdir)
	list, err := api.VolumeList(ctx, volume.ListOptions{Filters: args})
	if err != nil {
		return nil, toolFailure("listing the runs' working-directory volumes: %w", err)
	}
	var reaped []Reaped
	for _, v := range list.Volumes {
		if v == nil || v.Labels[LabelRole] != roleWorkdir || !scope.matches(v.Labels) || v.Labels[LabelKeep] == "true" {
			continue
		}
		o := ownerFromLabels(v.Labels)
		if !ownerGone(ctx, api, me, o, volumeCreated(v.CreatedAt)) {
			continue
		}
		if !removeOrphan(dryRun, func() error { return api.VolumeRemove(ctx, v.Name, false) },
			log.Warn().Str("volume", v.Name), "keeping an orphaned working-directory volume for now") {
			continue
		}
		reaped = append(reaped, Reaped{ID: v.Name, Name: v.Name, Owner: o.String(), BuildKey: v.Labels[LabelBuildKey], Volume: true})
	}
	return reaped, nil
}

// volumeCreated is a volume's creation time in Unix seconds; when the
// engine gave none it could read, the latest there is, so that an owner
// container counts as gone only when stopped or removed.
func volumeCreated(at string) int64 {
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return math.MaxInt64
	}
	return t.Unix()
}
