package runner

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// PullPolicy says when an image may be pulled before the build.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// Config describes one build in a sibling container. The zero value of each
// optional field means what docker run means by leaving the flag out.
type Config struct {
	Image      string
	Command    []string // nil: the image's CMD
	Entrypoint *string  // nil: the image's ENTRYPOINT; "" clears it

	// Workdir is the build's working directory, an absolute path that the
	// sibling sees at the same path.
	Workdir string
	// VolumesFrom names the containers whose volumes hold Workdir. Empty means
	// automatic: this process's own container, or a bind mount on a host.
	// Either way the sibling gets Workdir alone, not the volumes.
	VolumesFrom []string
	// Docker gives the build the engine: its socket and the socket's group,
	// or DOCKER_HOST for a TCP engine.
	Docker bool
	// Caches are paths of the sibling kept between builds of one job, the one
	// CacheKey names (bamboo_buildKey; "" for one per working directory), in
	// named volumes of their own (see cache.go).
	Caches   []CacheSpec
	CacheKey string
	// Volumes are the -v mounts: named volumes and binds from the engine's host.
	Volumes []VolumeSpec

	Env         []string // -e entries: NAME=VALUE, or NAME to copy from Environ
	EnvFiles    []string
	PassEnv     []string // prefixes of Environ's names that reach the build
	Environ     []string // sibling-run's own environment (os.Environ())
	BuildKey    string   // bamboo_buildResultKey, for the labels and the name
	Labels      []string // KEY=VALUE or KEY
	User        string   // "": the working directory's owner; "image": the image's USER
	Network     string
	Memory      string // docker's size syntax: 512m, 2g; "" for no limit
	CPUs        float64
	Init        bool
	StopTimeout time.Duration
	LogDriver   string
	Pull        PullPolicy
	PullRetries int // retries of a pull that failed for a transient reason
	Keep        bool
	Interactive bool
	TTY         bool
	DryRun      bool

	// Limits beyond Memory and CPUs, with docker run's meanings.
	PidsLimit int64         // 0: the engine's default; -1: unlimited
	ShmSize   string        // size of /dev/shm, docker's size syntax; "" for the engine's default
	Tmpfs     []string      // PATH[:OPTIONS]: tmpfs mounts
	Timeout   time.Duration // longest the build may run; 0 for no limit

	// Services are IMAGE[=ALIAS] entries: containers started on a network of
	// the build's own before it, each reachable by its alias and ready (see
	// waitReady) within ServiceTimeout.
	Services       []string
	ServiceTimeout time.Duration

	// Artifacts are SRC[:DEST] entries copied out of the sibling after the
	// build (see artifact.go); ArtifactMaxSize caps their bytes ("" for 4g).
	Artifacts       []string
	ArtifactMaxSize string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    zerolog.Logger
}
