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
	// Remote says whether Workdir is copied to the engine, into a volume of
	// the run's own, and its changes back (see remote.go), instead of
	// mounted; "" is RemoteAuto.
	Remote RemoteMode
	// Docker gives the build the engine: its socket and the socket's group,
	// or DOCKER_HOST for a TCP engine.
	Docker bool
	// RootOnHost allows a build as root in a working directory on a host
	// that other users can reach (see refuseRootDoor).
	RootOnHost bool
	// Caches are paths of the sibling kept between builds of one job, the one
	// CacheKey names (bamboo_buildKey; "" for one per working directory), in
	// named volumes of their own (see cache.go).
	Caches   []CacheSpec
	CacheKey string
	// Volumes are the -v mounts: named volumes and binds from the engine's host.
	Volumes []VolumeSpec

	Env      []string // -e entries: NAME=VALUE, or NAME to copy from Environ
	EnvFiles []string
	PassEnv  []string // prefixes of Environ's names that reach the build
	// SecretNames are words that make a variable a secret, besides
	// Bamboo's and "token" (see secrets.go): its value reaches the build
	// but not what sibling-run prints.
	SecretNames []string
	Environ     []string          // sibling-run's own environment (os.Environ())
	BuildKey    string            // bamboo_buildResultKey, for the labels and the name
	Labels      map[string]string // the user's labels; the sibling-run. prefix is refused
	User        string            // "": the working directory's owner; "image": the image's USER
	Network     string
	Memory      int64 // bytes; 0 for no limit
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
	ShmSize   int64         // bytes of /dev/shm; 0 for the engine's default
	Tmpfs     []TmpfsSpec   // tmpfs mounts
	Timeout   time.Duration // longest the build may run; 0 for no limit

	// Services are containers started on a network of the build's own
	// before it, each reachable by its alias and ready (see waitReady)
	// within ServiceTimeout.
	Services       []ServiceSpec
	ServiceTimeout time.Duration

	// Artifacts are copied out of the sibling after the build (see
	// artifact.go); ArtifactMaxSize caps their bytes together and must be
	// positive when there are any.
	Artifacts       []ArtifactSpec
	ArtifactMaxSize int64
	// KeepEscapingLinks keeps the symbolic links that the after-build pass
	// (see afterbuild.go) would remove for leading outside the working
	// directory; fifos, sockets, devices and set-id bits are dealt with
	// all the same.
	KeepEscapingLinks bool

	// EngineWatchInterval is how often the run pings its engine (see
	// watchEngine); 0 for engineWatchInterval. Tests shorten it.
	EngineWatchInterval time.Duration

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    zerolog.Logger
}

// TmpfsSpec is a tmpfs mounted in the sibling.
type TmpfsSpec struct {
	Path    string // absolute and clean, not /
	Options string // mount options, like size=64m,noexec; "" for the engine's
}

// ServiceSpec is a service container: its image, and the alias the build
// reaches it by, a DNS label unique among the build's services.
type ServiceSpec struct {
	Image string `json:"image"`
	Alias string `json:"alias"`
}

// ArtifactSpec is a path copied out of the sibling after the build.
type ArtifactSpec struct {
	// Src is absolute and clean, in the sibling's own filesystem, not /.
	Src string
	// Dest is the directory that receives Src under its own name: relative
	// to the working directory, or absolute under it; "" for the working
	// directory itself. Run refuses one that leads outside it.
	Dest string
}
