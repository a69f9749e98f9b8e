package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/versions"
	"github.com/rs/zerolog"
)

// mountPlan is everything the sibling gets from outside its image: exactly
// the working directory, and the engine when --docker asks for it.
type mountPlan struct {
	Workdir  string        // absolute, links resolved; the same path in the sibling
	Mode     string        // how the working directory was found, for the logs
	Mounts   []mount.Mount // every mount of the sibling
	GroupAdd []string      // groups the build needs for a mount (the socket's)
	Env      []string      // variables the build needs for what it was given
	Caches   cachePlan     // the --cache volumes, whose mounts (slot 1) are in Mounts
	// Check is the working directory's identity when its bind's path is
	// racy (see workdircheck.go): the sibling then checks it before the
	// build's command runs. nil when no check is needed.
	Check *DirIdentity
	// RunVolume holds the working directory when it is copied to a remote
	// engine (remote.go); nil when it is mounted.
	RunVolume *runVolume
}

// hostBindMode is the Mode of a working directory bound from the host.
const hostBindMode = "bind on the host"

// subpathAPI is the first API version whose volume mounts take a subpath.
const subpathAPI = "1.45"

// planMounts decides which mounts the sibling gets. The working directory,
// and nothing else of where it lives, is mounted at its own path: with
// cfg.VolumesFrom, from the mount of those containers that holds it; inside a
// container (self), from this container's own mount; on a host, as a bind of
// itself. A working directory that no such mount holds, or that is reached
// through a link a build may have planted, is refused; buildSpec checks the
// list with the --tmpfs paths (checkMounts). It costs one container
// inspect per container named (this one's in automatic mode), and with
// cfg.Docker inside a container also this one's. The --cache volumes (slot 1,
// see cachePlan) and the -v mounts (an inspect per named volume) follow.
func planMounts(ctx context.Context, api Engine, cfg Config, workdir string, self selfDetection) (mountPlan, error) {
	plan := mountPlan{Workdir: workdir}
	given, err := filepath.Abs(cfg.Workdir)
	if err != nil {
		return plan, fmt.Errorf("working directory %s: %w", cfg.Workdir, err)
	}
	var mine []sharedMount // this container's mounts, where the engine's socket comes from
	if isRemote(cfg.Remote, api.DaemonHost()) {
		err = planRemoteWorkdir(cfg, api.DaemonHost(), workdir, given, &plan)
	} else {
		mine, err = planWorkdirMount(ctx, api, cfg, workdir, given, self, &plan)
	}
	if err != nil {
		return plan, err
	}

	if cfg.Docker {
		if mine == nil && self.ID != "" && isUnixHost(api.DaemonHost()) {
			if mine, err = selfMounts(ctx, api, self, workdir); err != nil {
				return plan, fmt.Errorf("--docker: %w", err)
			}
		}
		access, err := engineAccess(api.DaemonHost(), cfg.Environ, self.ID != "", mine, userUID(cfg.User))
		if err != nil {
			return plan, err
		}
		if access.Mount != nil {
			plan.Mounts = append(plan.Mounts, *access.Mount)
		}
		plan.GroupAdd = append(plan.GroupAdd, access.GroupAdd...)
		plan.Env = append(plan.Env, access.Env...)
		cfg.Log.Info().Str("engine", api.DaemonHost()).Msg("--docker: the build can control the engine (start containers, as root on its host, and read other builds' settings)")
	}
	if plan.Caches, err = planCaches(cfg, workdir); err != nil {
		return plan, err
	}
	plan.Mounts = append(plan.Mounts, plan.Caches.mounts(1)...)
	extra, err := volumeMounts(ctx, api, cfg.Volumes)
	if err != nil {
		return plan, err
	}
	plan.Mounts = append(plan.Mounts, extra...)
	return plan, nil
}

// planWorkdirMount adds the working directory's mount to plan: from the
// mount of cfg.VolumesFrom or of this container that holds it, or a bind
// of itself on a host. It returns this container's mounts when it read them.
func planWorkdirMount(ctx context.Context, api Engine, cfg Config, workdir, given string, self selfDetection, plan *mountPlan) (mine []sharedMount, err error) {
	// shared are the mounts that may hold the working directory; mine are
	// this container's, where the engine's socket comes from.
	var shared []sharedMount
	onHost := len(cfg.VolumesFrom) == 0 && self.ID == ""
	switch {
	case len(cfg.VolumesFrom) > 0:
		plan.Mode = "volumes-from " + strings.Join(cfg.VolumesFrom, ",")
		shared, err = inspectMounts(ctx, api, cfg.VolumesFrom, workdir)
	case !onHost:
		plan.Mode = fmt.Sprintf("this container's mounts (%.12s, found in %s)", self.ID, self.How)
		shared, err = selfMounts(ctx, api, self, workdir)
		mine = shared
	default:
		plan.Mode = hostBindMode
	}
	if err != nil {
		return mine, err
	}

	untrusted := writableByOthers
	if !onHost {
		// Every volume and bind may have been written by a build before.
		untrusted = func(dir string) bool { _, in := mountHolding(dir, shared); return in }
	}
	if reached, err := refuseLinks(given, untrusted); err != nil {
		return mine, err
	} else if reached != workdir {
		return mine, fmt.Errorf("working directory %s changed while sibling-run looked at it (%s, then %s); run the build again", given, workdir, reached)
	}
	racy := false
	if onHost {
		plan.Mounts = append(plan.Mounts, mount.Mount{Type: mount.TypeBind, Source: workdir, Target: workdir})
		racy = racyComponent(workdir, "/", false)
	} else {
		holder, ok := mountHolding(workdir, shared)
		if !ok {
			return mine, fmt.Errorf("working directory %s is not on a volume of %s (mounts: %s), so a sibling would see an empty directory; move the build under one of those mounts or pass --volumes-from with the container that holds it",
				workdir, describeHolders(cfg.VolumesFrom, self), describeMounts(shared))
		}
		m, err := workdirMount(workdir, holder, versions.GreaterThanOrEqualTo(api.ClientVersion(), subpathAPI))
		if err != nil {
			return mine, err
		}
		plan.Mounts = append(plan.Mounts, m)
		// A subpath too: the engine keeps it inside the volume but follows
		// links there (Docker 29: 24 of 144 raced runs got another plan's).
		racy = racyComponent(workdir, holder.Here, true)
	}
	if racy {
		id, err := identifyDir(workdir)
		if err != nil {
			return mine, err
		}
		plan.Check = &id
	}
	return mine, nil
}

// planRemoteWorkdir adds the run volume to plan, at the working directory's
// path: the engine cannot reach this host's directory, so it is copied
// (workdircopy.go). Nothing else can reach the volume, so no check of the
// directory is needed in the sibling.
func planRemoteWorkdir(cfg Config, host, workdir, given string, plan *mountPlan) error {
	if len(cfg.VolumesFrom) > 0 {
		return fmt.Errorf("--volumes-from %s: the working directory is copied to the engine at %s (remote), not found on a container's volumes; drop --volumes-from, or pass --remote=false if the engine runs on this host", strings.Join(cfg.VolumesFrom, ","), host)
	}
	for _, v := range cfg.Volumes {
		if v.Bind {
			return fmt.Errorf("-v %s:%s: a bind of a host path would mount the engine host's %s, not this host's, and the working directory is copied to that engine (remote); use a named volume, or --remote=false if the engine runs on this host", v.Source, v.Target, v.Source)
		}
	}
	if reached, err := refuseLinks(given, writableByOthers); err != nil {
		return err
	} else if reached != workdir {
		return fmt.Errorf("working directory %s changed while sibling-run looked at it (%s, then %s); run the build again", given, workdir, reached)
	}
	plan.Mode = remoteMode
	plan.RunVolume = newRunVolume(cfg.BuildKey, nil)
	plan.Mounts = append(plan.Mounts, plan.RunVolume.mount(workdir))
	return nil
}

func describeHolders(volumesFrom []string, self selfDetection) string {
	if len(volumesFrom) > 0 {
		return strings.Join(volumesFrom, ", ")
	}
	return fmt.Sprintf("this container (%.12s)", self.ID)
}

// checkMounts refuses a mount list that the engine would accept but that
// would not give the build what it promises: a mount over the container's
// root, two mounts at one path, or one that hides another (only the working
// directory, the first of mounts, may hold other mounts below it). tmpfs
// are the --tmpfs paths.
func checkMounts(mounts []mount.Mount, workdir string, tmpfs []string) error {
	type target struct {
		path, what string
		isWorkdir  bool
	}
	var targets []target
	for i, m := range mounts {
		if i == 0 && m.Target == workdir {
			targets = append(targets, target{m.Target, "the working directory", true})
			continue
		}
		targets = append(targets, target{m.Target, fmt.Sprintf("the %s mount of %s", m.Type, m.Source), false})
	}
	for _, t := range tmpfs {
		targets = append(targets, target{t, "--tmpfs " + t, false})
	}
	for i, a := range targets {
		if !filepath.IsAbs(a.path) || filepath.Clean(a.path) == "/" {
			return fmt.Errorf("%s would be mounted at %q; mounts need an absolute path other than /", a.what, a.path)
		}
		for j, b := range targets {
			if i == j || !isWithin(b.path, a.path) {
				continue
			}
			if a.isWorkdir && b.path != a.path {
				continue // a mount inside the working directory hides nothing of it
			}
			return fmt.Errorf("%s at %s would hide %s at %s; give each mount a path of its own", a.what, a.path, b.what, b.path)
		}
	}
	return nil
}

// logMounts writes the plan at debug level, one line per mount.
func logMounts(log zerolog.Logger, plan mountPlan) {
	log.Debug().Str("workdir", plan.Workdir).Str("mode", plan.Mode).Strs("group_add", plan.GroupAdd).Msg("where the working directory comes from")
	mounts := append([]mount.Mount(nil), plan.Mounts...)
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Target < mounts[j].Target })
	for _, m := range mounts {
		ev := log.Debug().Str("type", string(m.Type)).Str("source", m.Source).Str("target", m.Target).Bool("read_only", m.ReadOnly)
		if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
			ev = ev.Str("subpath", m.VolumeOptions.Subpath)
		}
		ev.Msg("sibling mount")
	}
}
