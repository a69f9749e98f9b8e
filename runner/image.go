package runner

import (
	"context"
	"errors"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// createSibling creates the sibling from sp, pulling its image first as
// cfg.Pull says. Pulls follow ctx, so a signal stops them; the create itself
// runs on lifecycle, which a signal does not cancel.
//
// Under "missing" the create is tried first and the image is pulled only when
// the create fails for want of it, then the create is tried once more. The
// common case, an image that is already there, so costs no round trip beyond
// the create: inspecting the image first would cost one on every build to save
// one on the rare build that pulls.
//
// The caches' volumes are found (an inspect per cache) or created before
// each create, and those created are removed again when the run fails to
// create its sibling. With unshared caches the sibling's name is the lease
// on them: when the engine refuses the name, a build of the same job runs
// now with slot 1's caches, and the sibling is created again with the next
// slot's.
func createSibling(ctx, lifecycle context.Context, api Engine, cfg Config, sp spec) (_ container.CreateResponse, err error) {
	var made []string // cache volumes this run created
	defer func() {
		if err != nil && len(made) > 0 {
			removeCtx, cancel := detached(lifecycle, removeTimeout)
			removeMade(removeCtx, api, made)
			cancel()
		}
	}()
	for slot := 1; ; slot++ {
		volumesCtx, cancel := detached(lifecycle, createTimeout)
		madeNow, err := sp.caches.ensureVolumes(volumesCtx, api, slot)
		cancel()
		made = append(made, madeNow...)
		if err != nil {
			return container.CreateResponse{}, err
		}
		cfg.Log.Debug().Str("name", sp.Name).Msg("creating the sibling")
		created, err := createPulling(ctx, lifecycle, api, cfg, cfg.Image, func() (container.CreateResponse, error) {
			createCtx, cancel := detached(lifecycle, createTimeout)
			defer cancel()
			created, err := api.ContainerCreate(createCtx, sp.Config, hostConfigFor(createCtx, api, sp.HostConfig), sp.Networking, nil, sp.Name)
			if err != nil && createCtx.Err() != nil {
				return created, engineSilent(api, "create the sibling", createTimeout)
			}
			return created, err
		})
		if err != nil && sp.caches.exclusive() && nameTaken(err) && ctx.Err() == nil {
			if slot == maxCacheSlots {
				return created, toolFailure("%d builds of %s with --cache run at once already, each with caches of its own; wait for one to end, or share the caches (--cache PATH:shared)", maxCacheSlots, sp.caches.Key)
			}
			cfg.Log.Info().Int("slot", slot+1).Str("busy", sp.Name).Msg("another build of this job uses its caches now; this one gets caches of its own")
			sp = withCacheSlot(sp, slot+1)
			continue
		}
		if err == nil {
			if err := markCachesUsed(sp.caches.volumeNames(slot), time.Now()); err != nil {
				cfg.Log.Debug().Err(err).Msg("cannot record when the caches were used")
			}
		}
		return created, err
	}
}

// withCacheSlot returns sp with its cache mounts and lease moved to slot.
func withCacheSlot(sp spec, slot int) spec {
	host := *sp.HostConfig
	host.Mounts = append([]mount.Mount(nil), host.Mounts...)
	byTarget := map[string]mount.Mount{}
	for _, m := range sp.caches.mounts(slot) {
		byTarget[m.Target] = m
	}
	for i, m := range host.Mounts {
		if c, ok := byTarget[m.Target]; ok && m.Type == mount.TypeVolume {
			host.Mounts[i] = c
		}
	}
	sp.HostConfig = &host
	sp.Name = sp.caches.leaseName(slot)
	return sp
}

// createPulling runs create, a container create from img, pulling img as
// cfg.Pull says; the sibling and its services share it, so a service image
// is pulled just like the build's.
func createPulling(ctx, lifecycle context.Context, api Engine, cfg Config, img string, create func() (container.CreateResponse, error)) (container.CreateResponse, error) {
	if cfg.Pull == PullAlways {
		if err := newPuller(api, cfg).pull(ctx, img); err != nil {
			return container.CreateResponse{}, err
		}
	}
	created, err := create()
	if err != nil && cerrdefs.IsNotFound(err) && imageAbsent(lifecycle, api, img) {
		switch cfg.Pull {
		case PullNever:
			return created, toolFailure("image %s is not on the engine and --pull never forbids pulling it; pull, build or load it first (docker pull, docker build, docker load)", img)
		case PullMissing:
			if err := newPuller(api, cfg).pull(ctx, img); err != nil {
				// A mistyped name reads as a registry's failure; say first
				// that the engine has no such image.
				var stopped *InterruptError
				if ctx.Err() != nil || errors.As(err, &stopped) {
					return created, err
				}
				return created, toolFailure("image %s is not on the engine; %w", img, err)
			}
			created, err = create()
		}
	}
	if err != nil {
		return created, toolFailure("creating container for %s: %w", img, err)
	}
	return created, nil
}

// imageAbsent tells whether the engine lacks img. It runs only after a create
// failed as "not found", which may also mean a missing network or container.
func imageAbsent(ctx context.Context, api Engine, img string) bool {
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	_, err := api.ImageInspect(ctx, img)
	return cerrdefs.IsNotFound(err)
}

// checkImageName refuses an empty --image, which the engine would take for a
// container without an image rather than refuse.
func checkImageName(img string) error {
	if strings.TrimSpace(img) == "" {
		return errors.New("--image is empty; name the image to run the build in, like --image golang:1.22")
	}
	return nil
}
