package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
)

// A cache is a named volume that keeps one path of a job's sibling between
// builds. Its name and labels derive from the job (the cache key) and the
// path, so the next build of the job finds it and another job never does.
// Caches carry no owner labels and not LabelManaged: reap, which selects by
// LabelManaged and looks only at containers and networks, never touches one,
// and removing the sibling (RemoveVolumes removes anonymous volumes only)
// leaves it. Only `sibling-run cache prune` removes caches.

// CacheSpec is one --cache: a path in the sibling that is kept between builds.
type CacheSpec struct {
	Path string // absolute and clean, not "/"
	// Shared lets builds of the job that run at once use one volume; without
	// it each such build gets a volume of its own (see cachePlan.leaseName).
	Shared bool
}

// Labels of cache volumes.
const (
	LabelCache     = labelPrefix + "cache"      // "true" on every cache volume
	LabelCacheKey  = labelPrefix + "cache.key"  // the job the cache belongs to
	LabelCachePath = labelPrefix + "cache.path" // the path the build sees it at
	LabelCacheSlot = labelPrefix + "cache.slot" // 1 for the first build at once, 2 for the second...
)

// maxCacheSlots is how many builds of one job may run at once with
// unshared caches: the ninth is refused rather than given a cold cache that
// would then stay on the engine.
const maxCacheSlots = 8

// cachePlan is the caches of one run.
type cachePlan struct {
	Key    string // the job: bamboo_buildKey, else "dir:" and the working directory
	Caches []CacheSpec
	Labels map[string]string // the run's --label labels, copied onto each cache
}

// planCaches checks cfg.Caches against each other and derives the cache key.
func planCaches(cfg Config, workdir string) (cachePlan, error) {
	p := cachePlan{Key: cfg.CacheKey, Caches: cfg.Caches}
	if p.Key == "" {
		p.Key = "dir:" + workdir
	}
	seen := map[string]bool{}
	for _, c := range cfg.Caches {
		if !path.IsAbs(c.Path) || path.Clean(c.Path) != c.Path || c.Path == "/" {
			return p, fmt.Errorf("--cache %q is not an absolute path other than /; give where the build keeps its cache, like /root/.m2", c.Path)
		}
		if seen[c.Path] {
			return p, fmt.Errorf("--cache %s is given twice; give each path once", c.Path)
		}
		seen[c.Path] = true
	}
	if err := checkLabels(cfg.Labels); err != nil {
		return p, err
	}
	p.Labels = cfg.Labels
	return p, nil
}

// exclusive reports whether builds of the job that run at once must not
// share this run's caches, which then need a lease (leaseName).
func (p cachePlan) exclusive() bool {
	for _, c := range p.Caches {
		if !c.Shared {
			return true
		}
	}
	return false
}

// mounts returns the cache mounts for the given slot: shared caches always
// use slot 1's volume. Each mounts its volume by name, which ensureVolumes
// has created with its labels; being empty, the volume is filled at its
// first mount with what the image holds at the path (no NoCopy).
func (p cachePlan) mounts(slot int) []mount.Mount {
	var mounts []mount.Mount
	for _, v := range p.volumes(slot) {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: v.Labels[LabelCachePath]})
	}
	return mounts
}

// volumes are the cache volumes at slot, as they are created: a mount's
// VolumeOptions.Labels would label a volume the mount creates on Docker, but
// Podman 4.3 ignores them, so the volumes are created first.
func (p cachePlan) volumes(slot int) []volume.CreateOptions {
	var vols []volume.CreateOptions
	for _, c := range p.Caches {
		s := slot
		if c.Shared {
			s = 1
		}
		labels := map[string]string{}
		for k, v := range p.Labels {
			labels[k] = v
		}
		labels[LabelCache] = "true"
		labels[LabelCacheKey] = p.Key
		labels[LabelCachePath] = c.Path
		labels[LabelCacheSlot] = strconv.Itoa(s)
		vols = append(vols, volume.CreateOptions{Name: cacheVolumeName(p.Key, c.Path, s), Labels: labels})
	}
	return vols
}

// ensureVolumes finds or creates the cache volumes at slot: one inspect per
// cache, and a create for one that does not exist yet, whose name it returns
// in made. A volume of a cache's name whose labels say it is another cache,
// or none (made by someone else to be mounted into builds), is refused
// rather than adopted; Docker and Podman both answer the create of an
// existing volume with that volume, unchanged.
func (p cachePlan) ensureVolumes(ctx context.Context, api Engine, slot int) (made []string, err error) {
	for _, want := range p.volumes(slot) {
		got, err := api.VolumeInspect(ctx, want.Name)
		if cerrdefs.IsNotFound(err) {
			if got, err = api.VolumeCreate(ctx, want); err == nil {
				made = append(made, want.Name)
			}
		}
		if err != nil {
			return made, toolFailure("creating cache volume %s: %w", want.Name, err)
		}
		for _, k := range []string{LabelCache, LabelCacheKey, LabelCachePath, LabelCacheSlot} {
			if got.Labels[k] != want.Labels[k] {
				return made, toolFailure("volume %s exists but is not the cache of %s at %s (its label %s is %q, want %q); remove it (docker volume rm %s) if nothing else needs it",
					want.Name, p.Key, want.Labels[LabelCachePath], k, got.Labels[k], want.Labels[k], want.Name)
			}
		}
	}
	return made, nil
}

// removeMade removes the cache volumes a run made for a sibling it then
// failed to create, so that a refused run leaves nothing; one that another
// build mounts by now is kept (the engine refuses to remove it).
func removeMade(ctx context.Context, api Engine, made []string) {
	for _, name := range made {
		if err := api.VolumeRemove(ctx, name, false); err == nil || cerrdefs.IsNotFound(err) {
			forgetCache(name)
		}
	}
}

// volumeNames are the volumes of the caches at slot.
func (p cachePlan) volumeNames(slot int) []string {
	var names []string
	for _, v := range p.volumes(slot) {
		names = append(names, v.Name)
	}
	return names
}

// paths are the caches' paths, which the build's uid is given (see
// ensurePasswdEntry).
func (p cachePlan) paths() []string {
	var paths []string
	for _, c := range p.Caches {
		paths = append(paths, c.Path)
	}
	return paths
}

// leaseName is the sibling's container name while it holds slot's unshared
// caches of the job. The engine refuses a second container of one name, so a
// second build of the job at once cannot create its sibling with slot 1 and
// moves on to slot 2, whose volumes are its own: the lease costs no engine
// call, and it ends when the sibling is removed (by the run, or by reap when
// the run was killed).
func (p cachePlan) leaseName(slot int) string {
	return fmt.Sprintf("sibling-run-%s-cache%d-%s", jobPart(p.Key), slot, shortHash(p.Key)[:8])
}

// nameTaken reports whether a create failed because the container name is
// in use: Docker answers 409 Conflict, Podman 4.3 500 with "that name is
// already in use".
func nameTaken(err error) bool {
	return err != nil && (cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "name is already in use"))
}

// cacheVolumeName is readable and deterministic:
// sibling-run-cache-PROJ-PLAN-JOB1-1a2b3c4d5e for slot 1, with -2, -3... for
// later slots.
func cacheVolumeName(key, cachePath string, slot int) string {
	name := fmt.Sprintf("sibling-run-cache-%s-%s", jobPart(key), shortHash(key + "\x00" + cachePath)[:10])
	if slot > 1 {
		name += "-" + strconv.Itoa(slot)
	}
	return name
}

// jobPart is the readable part of names made from a cache key: the job key,
// or the working directory's base name, as the engine takes names.
func jobPart(key string) string {
	if dir, ok := strings.CutPrefix(key, "dir:"); ok {
		key = filepath.Base(dir)
	}
	part := strings.Trim(nameUnsafe.ReplaceAllString(key, "-"), "-._")
	if len(part) > 40 {
		part = strings.Trim(part[:40], "-._")
	}
	if part == "" {
		part = "job"
	}
	return part
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The engine records no time of last use for a volume (its labels are fixed
// at creation, and API 1.41 has no usage time), so each run records it on
// this machine: an empty file per cache volume under the user's cache
// directory, whose modification time is the last use. Runs of one agent share
// it; `cache ls` elsewhere falls back to the volume's creation time.

// cacheIndexDir is where last uses are recorded, or "" without a cache
// directory.
func cacheIndexDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sibling-run", "caches")
}

// markCachesUsed records now as the last use of each volume; failures only
// lose the record.
func markCachesUsed(volumes []string, now time.Time) error {
	dir := cacheIndexDir()
	if dir == "" || len(volumes) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, v := range volumes {
		file := filepath.Join(dir, v)
		if err := os.Chtimes(file, now, now); os.IsNotExist(err) {
			f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			f.Close()
			if err := os.Chtimes(file, now, now); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// cacheLastUsed is the recorded last use of volume, if any.
func cacheLastUsed(volume string) (time.Time, bool) {
	dir := cacheIndexDir()
	if dir == "" {
		return time.Time{}, false
	}
	info, err := os.Stat(filepath.Join(dir, volume))
	if err != nil {
		return time.Time{}, false
	}
	return info.ModTime(), true
}

// forgetCache drops volume's record once the volume is removed.
func forgetCache(volume string) {
	if dir := cacheIndexDir(); dir != "" {
		_ = os.Remove(filepath.Join(dir, volume))
	}
}
