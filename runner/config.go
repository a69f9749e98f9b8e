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
	VolumesFrom []string

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
	Keep        bool
	Interactive bool
	TTY         bool
	DryRun      bool

	// Artifacts are SRC[:DEST] entries copied out of the sibling after the
	// build (see artifact.go); ArtifactMaxSize caps their bytes ("" for 4g).
	Artifacts       []string
	ArtifactMaxSize string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    zerolog.Logger
}
