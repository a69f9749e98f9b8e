package runner

import (
	"context"

	"sibling-run/runner/internal/selfdetect"
)

// selfDetection is the container sibling-run runs in (the working
// directory's mounts are found through it).
type selfDetection = selfdetect.Detection

// runPlan is everything Run needs after its checks: what to create, and
// what to hide and clear on the way.
type runPlan struct {
	spec    spec     // the sibling, with its user, artifacts and caches
	workdir string   // the working directory, absolute, links resolved
	env     []string // the build's environment, whose secrets errors must not show
	secrets secretNames
	owner   owner // this process, as the labels of what it creates name it
}

// plan checks cfg against this host and the engine and decides the sibling's
// spec, without creating anything. The checks run in a fixed order, so that
// of several mistakes the same one is reported each time; each error names
// what to change, and plan returns it as a tool failure.
func plan(ctx context.Context, api Engine, cfg Config) (runPlan, error) {
	p, err := planChecked(ctx, api, cfg)
	if err != nil {
		return p, toolFailure("%w", err)
	}
	return p, nil
}

func planChecked(ctx context.Context, api Engine, cfg Config) (runPlan, error) {
	var p runPlan
	if err := checkImageName(cfg.Image); err != nil {
		return p, err
	}
	workdir, err := resolveWorkdir(cfg.Workdir)
	if err != nil {
		return p, err
	}
	if err := tlsFilesInWorkdir(cfg.Environ, api.DaemonHost(), workdir); err != nil {
		return p, err
	}
	env, err := buildEnv(cfg.Environ, cfg.PassEnv, cfg.EnvFiles, cfg.Env, workdir)
	if err != nil {
		return p, err
	}
	self := selfdetect.Detect()
	cfg.Log.Debug().Str("container", self.ID).Str("found_in", self.How).Msg("where sibling-run runs")
	user, err := resolveUser(cfg.User, workdir)
	if err != nil {
		return p, err
	}
	// On a host the owner is the host's uid; in an agent of a rootless
	// engine it is already the containers' own.
	if cfg.User == "" && len(cfg.VolumesFrom) == 0 && self.ID == "" && mayBeRootless(api.DaemonHost()) {
		if user, err = inEngineUserns(user, podmanUserns(ctx, api), workdir); err != nil {
			return p, err
		}
		if user.RootlessHost > 0 {
			cfg.Log.Debug().Int("owner", user.RootlessHost).Str("user", user.Spec).Msg("rootless Podman: the build runs as the directory's owner in the engine's user namespace")
		}
	}
	cfg.User, env = user.Spec, withUserEnv(env, user)
	artifacts, err := planArtifacts(cfg.Artifacts, cfg.ArtifactMaxSize, workdir, cfg.Workdir)
	if err != nil {
		return p, err
	}
	mounts, err := planMounts(ctx, api, cfg, workdir, self)
	if err != nil {
		return p, err
	}
	if mounts.Mode == hostBindMode {
		if err := refuseRootDoor(workdir, user, cfg.RootOnHost); err != nil {
			return p, err
		}
	}
	me := currentOwner(self.ID)
	sp, err := buildSpec(cfg, env, mounts, me.labels())
	if err != nil {
		return p, err
	}
	if err := checkServices(cfg); err != nil {
		return p, err
	}
	if err := checkNetwork(ctx, api, cfg.Network); err != nil {
		return p, err
	}
	if len(cfg.Services) > 0 {
		if err := checkRunsInContainers("--service's readiness check"); err != nil {
			return p, err
		}
	}
	if mounts.Check != nil {
		if err := checkRunsInContainers("the check of a working directory below the job's (" + workdir + ")"); err != nil {
			return p, err
		}
	}
	withServices(&sp, cfg.Services)
	sp.user, sp.artifacts, sp.caches, sp.check = user, artifacts, mounts.Caches, mounts.Check
	if sp.caches.exclusive() {
		sp.Name = sp.caches.leaseName(1)
	}
	logMounts(cfg.Log, mounts)
	secrets := newSecretNames(cfg.SecretNames)
	cfg.Log.Debug().Str("image", cfg.Image).Str("workdir", workdir).Strs("env", secrets.mask(env)).Msg("sibling spec")
	if err := checkPull(cfg); err != nil {
		return p, err
	}
	if err := checkTerminal(cfg); err != nil {
		return p, err
	}
	return runPlan{spec: sp, workdir: workdir, env: env, secrets: secrets, owner: me}, nil
}
