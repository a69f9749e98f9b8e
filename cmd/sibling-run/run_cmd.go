package main

import (
	"fmt"
	"os"
	"time"

	"sibling-run/runner"
)

// runCmd runs a build. Its flags read like docker run's; each also comes from
// an environment variable, so a Bamboo plan variable can set it.
type runCmd struct {
	Image       string        `required:"" env:"SIBLING_RUN_IMAGE" help:"Image to run the build in." placeholder:"IMAGE" group:"build"`
	Workdir     string        `short:"w" env:"SIBLING_RUN_WORKDIR" help:"Working directory, seen by the build at the same path (default: $$bamboo_build_working_directory, else the current directory)." placeholder:"DIR" group:"build"`
	VolumesFrom []string      `env:"SIBLING_RUN_VOLUMES_FROM" help:"Find the working directory on this container's volumes, the one that holds it; the build gets the working directory alone (repeatable; default: automatic, this container's own mounts inside a container, a bind mount on a host)." placeholder:"NAME" group:"mounts"`
	Cache       []string      `sep:"none" env:"SIBLING_RUN_CACHE" help:"Keep PATH of the build between builds of this job ($$bamboo_buildKey, else this working directory) in a named volume of its own, which starts with what the image holds at PATH; builds of the job that run at once get one each unless :shared (repeatable; the variable holds one)." placeholder:"PATH[:shared]" group:"mounts"`
	Volume      []string      `short:"v" sep:"none" env:"SIBLING_RUN_VOLUME" help:"Mount a named volume that exists, or a directory of the engine's host (not the agent's), into the build, as docker run -v does (repeatable; the variable holds one)." placeholder:"NAME|/HOST/PATH:PATH[:ro]" group:"mounts"`
	RootOnHost  bool          `name:"root-on-host" env:"SIBLING_RUN_ROOT_ON_HOST" help:"Allow a build as root in a working directory on a host that other users can reach; it could leave a setuid-root program there for them (default: refused)." group:"mounts"`
	Remote      string        `default:"auto" env:"SIBLING_RUN_REMOTE" help:"Copy the working directory into a volume of the run's own on the engine, and the build's changes back, instead of mounting it: auto when the engine is not on a unix socket (a tcp:// DOCKER_HOST or --host), true always (to check that a build needs none of this host's files), false never (a tcp:// engine on this host) (default: ${default})." placeholder:"auto|true|false" group:"mounts"`
	Docker      bool          `env:"SIBLING_RUN_DOCKER" help:"Give the build the engine: its socket at /var/run/docker.sock with the socket's group (or DOCKER_HOST for a TCP engine). The build can then control the engine, and so its host." group:"mounts"`
	Env         []string      `short:"e" sep:"none" env:"SIBLING_RUN_ENV" help:"Set a variable in the build: NAME=VALUE, or NAME to pass sibling-run's own value (repeatable)." placeholder:"NAME[=VALUE]" group:"build"`
	EnvFile     []string      `type:"path" sep:"none" env:"SIBLING_RUN_ENV_FILE" help:"Read variables from a regular file of NAME=VALUE lines; one in the working directory is read without following links out of it (repeatable; the variable holds one)." placeholder:"FILE" group:"build"`
	PassEnv     []string      `default:"bamboo_" env:"SIBLING_RUN_PASS_ENV" help:"Pass sibling-run's variables whose names start with this prefix (repeatable; an empty value passes none; default: ${default})." placeholder:"PREFIX" group:"build"`
	SecretNames []string      `name:"secret-names" env:"SIBLING_RUN_SECRET_NAMES" help:"Also treat variables whose names contain this word, in any case, as secrets, besides password, passphrase, secret, sshkey (Bamboo's) and token: masked in what sibling-run prints (repeatable)." placeholder:"WORD" group:"build"`
	Pull        string        `default:"missing" enum:"missing,always,never" env:"SIBLING_RUN_PULL" help:"When to pull the image: ${enum} (missing: only when it is not on the engine). Credentials come from $$DOCKER_CONFIG/config.json or ~/.docker/config.json." group:"image"`
	PullRetries int           `default:"3" env:"SIBLING_RUN_PULL_RETRIES" help:"How often to retry a pull that failed for a transient reason (connection, timeout, registry 5xx; default: ${default})." placeholder:"N" group:"image"`
	Entrypoint  *string       `env:"SIBLING_RUN_ENTRYPOINT" help:"Override the image's ENTRYPOINT; an empty value clears it." placeholder:"CMD" group:"build"`
	User        string        `short:"u" env:"SIBLING_RUN_USER" help:"User to run the build as: uid[:gid], name[:group], or image for the image's own USER (default: the uid:gid that owns the working directory)." placeholder:"USER" group:"build"`
	Network     string        `env:"SIBLING_RUN_NETWORK" help:"Network to connect the build to; bridge for the engine's default bridge, shared with every container there (default: sibling-run-builds, made on first use, where builds cannot reach each other)." placeholder:"NETWORK" group:"limits"`
	Memory      string        `short:"m" env:"SIBLING_RUN_MEMORY" help:"Memory limit, like 512m or 2g (default: none)." placeholder:"SIZE" group:"limits"`
	CPUs        float64       `name:"cpus" env:"SIBLING_RUN_CPUS" help:"Number of CPUs, like 1.5 (default: no limit)." placeholder:"N" group:"limits"`
	Init        bool          `default:"true" negatable:"" env:"SIBLING_RUN_INIT" help:"Run an init process as PID 1, so the build gets signals and zombies are reaped (default on; --no-init to disable)." group:"lifecycle"`
	StopTimeout time.Duration `default:"10s" env:"SIBLING_RUN_STOP_TIMEOUT" help:"Time a stopped build gets to exit before it is killed (default: ${default})." placeholder:"DURATION" group:"lifecycle"`
	LogDriver   string        `default:"none" env:"SIBLING_RUN_LOG_DRIVER" help:"Engine log driver for the sibling; the default none skips the engine's copy of the output, which sibling-run streams itself." group:"lifecycle"`
	Label       []string      `short:"l" sep:"none" env:"SIBLING_RUN_LABEL" help:"Add a label to the sibling: KEY=VALUE (repeatable)." placeholder:"KEY=VALUE" group:"lifecycle"`
	DryRun      bool          `env:"SIBLING_RUN_DRY_RUN" help:"Print the sibling's spec as JSON and create nothing." group:"lifecycle"`
	Keep        bool          `env:"SIBLING_RUN_KEEP" help:"Leave the sibling after the build for inspection and print its id; reap leaves it too." group:"lifecycle"`
	Interactive bool          `short:"i" env:"SIBLING_RUN_INTERACTIVE" help:"Keep stdin open and forward it to the build." group:"build"`
	TTY         bool          `short:"t" env:"SIBLING_RUN_TTY" help:"Give the build a terminal." group:"build"`

	PidsLimit         int64         `name:"pids-limit" default:"4096" env:"SIBLING_RUN_PIDS_LIMIT" help:"Most processes the build may have at once, so that a fork bomb stops at the limit instead of taking the host; 0 for the engine's default (none, on Docker), -1 for unlimited (default: ${default})." placeholder:"N" group:"limits"`
	ShmSize           string        `name:"shm-size" env:"SIBLING_RUN_SHM_SIZE" help:"Size of /dev/shm, like 64m or 1g (default: the engine's, 64m)." placeholder:"SIZE" group:"limits"`
	Tmpfs             []string      `sep:"none" env:"SIBLING_RUN_TMPFS" help:"Mount a tmpfs at PATH, with mount options like size=64m,noexec (repeatable)." placeholder:"PATH[:OPTIONS]" group:"mounts"`
	Timeout           time.Duration `env:"SIBLING_RUN_TIMEOUT" help:"Stop the build when it runs longer than this, and exit 124 (default: 0, no limit)." placeholder:"DURATION" group:"limits"`
	Service           []string      `env:"SIBLING_RUN_SERVICE" help:"Start a service container before the build, on a network of the build's own, reachable as ALIAS (default: the image's last name component, postgres for library/postgres:15), and wait until it is ready (repeatable)." placeholder:"IMAGE[=ALIAS]" group:"services"`
	ServiceTimeout    time.Duration `default:"60s" env:"SIBLING_RUN_SERVICE_TIMEOUT" help:"Time each service gets to become ready (default: ${default})." placeholder:"DURATION" group:"services"`
	Artifact          []string      `sep:"none" env:"SIBLING_RUN_ARTIFACT" help:"After the build, passed or failed, copy SRC (absolute, in the sibling) into DEST, a directory under the working directory (default: the working directory) (repeatable; the variable holds one)." placeholder:"SRC[:DEST]" group:"artifacts"`
	ArtifactMaxSize   string        `default:"4g" env:"SIBLING_RUN_ARTIFACT_MAX_SIZE" help:"Most bytes the artifacts of one run may take, like 500m or 4g (default: ${default})." placeholder:"SIZE" group:"artifacts"`
	KeepEscapingLinks bool          `name:"keep-escaping-links" env:"SIBLING_RUN_KEEP_ESCAPING_LINKS" help:"After the build, keep the symbolic links in the working directory that lead outside it, which are otherwise removed: the agent follows them as its own user (fifos, devices and setuid bits are dealt with all the same; see docs/after-the-build.md)." group:"artifacts"`

	Command []string `arg:"" optional:"" passthrough:"partial" help:"Command and arguments to run (default: the image's CMD); everything after the first word belongs to the build." placeholder:"COMMAND [ARG...]"`
}

func (r *runCmd) Run(g *globals) error {
	cfg, err := r.config()
	if err != nil {
		return err
	}
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	cfg.Stdin, cfg.Stdout, cfg.Stderr, cfg.Log = os.Stdin, g.Stdout, g.Stderr, g.Log
	res, err := runner.Run(g.Ctx, api, cfg)
	g.ExitCode = res.ExitCode
	return err
}

// config turns the flags into the build's Config. What needs no engine and
// no working directory, the syntax of each value, is checked here, before
// the engine is called.
func (r *runCmd) config() (runner.Config, error) {
	cfg := runner.Config{
		Image:       r.Image,
		Entrypoint:  r.Entrypoint,
		VolumesFrom: r.VolumesFrom,
		Docker:      r.Docker,
		RootOnHost:  r.RootOnHost,
		CacheKey:    os.Getenv("bamboo_buildKey"),
		Env:         r.Env,
		EnvFiles:    r.EnvFile,
		PassEnv:     r.PassEnv,
		SecretNames: r.SecretNames,
		Environ:     os.Environ(),
		BuildKey:    os.Getenv("bamboo_buildResultKey"),
		User:        r.User,
		Network:     r.Network,
		CPUs:        r.CPUs,
		Init:        r.Init,
		StopTimeout: r.StopTimeout,
		LogDriver:   r.LogDriver,
		Pull:        runner.PullPolicy(r.Pull),
		PullRetries: r.PullRetries,
		Keep:        r.Keep,
		Interactive: r.Interactive,
		TTY:         r.TTY,
		DryRun:      r.DryRun,

		PidsLimit:      r.PidsLimit,
		Timeout:        r.Timeout,
		ServiceTimeout: r.ServiceTimeout,

		KeepEscapingLinks: r.KeepEscapingLinks,
	}
	var err error
	if cfg.Remote, err = parseRemote(r.Remote); err != nil {
		return cfg, err
	}
	if cfg.Caches, err = parseCaches(r.Cache); err != nil {
		return cfg, err
	}
	if cfg.Volumes, err = parseVolumes(r.Volume); err != nil {
		return cfg, err
	}
	if cfg.Memory, err = parseSize("--memory", r.Memory, true, "512m or 2g"); err != nil {
		return cfg, err
	}
	if cfg.Labels, err = parseLabels(r.Label); err != nil {
		return cfg, err
	}
	if cfg.ShmSize, err = parseSize("--shm-size", r.ShmSize, false, "64m or 1g"); err != nil {
		return cfg, err
	}
	if cfg.Tmpfs, err = parseTmpfs(r.Tmpfs); err != nil {
		return cfg, err
	}
	if cfg.Services, err = parseServices(r.Service); err != nil {
		return cfg, err
	}
	if cfg.Artifacts, err = parseArtifacts(r.Artifact); err != nil {
		return cfg, err
	}
	if cfg.ArtifactMaxSize, err = parseSize("--artifact-max-size", r.ArtifactMaxSize, false, "500m or 4g"); err != nil {
		return cfg, err
	}

	// Hidden, for the tests that freeze an engine: a fraction of a second
	// there instead of 10 s.
	if v := os.Getenv("SIBLING_RUN_ENGINE_WATCH_INTERVAL"); v != "" {
		if cfg.EngineWatchInterval, err = time.ParseDuration(v); err != nil || cfg.EngineWatchInterval <= 0 {
			return cfg, fmt.Errorf("SIBLING_RUN_ENGINE_WATCH_INTERVAL=%s is not a positive duration", v)
		}
	}

	cfg.Workdir = r.Workdir
	if cfg.Workdir == "" {
		cfg.Workdir = os.Getenv("bamboo_build_working_directory")
	}
	if cfg.Workdir == "" {
		cfg.Workdir, _ = os.Getwd()
	}
	// The parser keeps the -- that ends sibling-run's flags once run is
	// named (sibling-run run --image IMG -- make): it is not the build's.
	cfg.Command = r.Command
	if len(cfg.Command) > 0 && cfg.Command[0] == "--" {
		cfg.Command = cfg.Command[1:]
	}
	return cfg, nil
}
