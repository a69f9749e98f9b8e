package runner

import (
	"fmt"
	"path"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-units"
)

// applyLimits checks --timeout, --stop-timeout, --pids-limit, --shm-size and --tmpfs and sets them on
// host, with docker run's meanings: a pids limit of 0 leaves the engine's
// default, -1 means unlimited; --tmpfs PATH[:OPTIONS] mounts a tmpfs at the
// absolute PATH with mount options like size=64m,noexec.
func applyLimits(cfg Config, host *container.HostConfig) error {
	if cfg.Timeout < 0 {
		return fmt.Errorf("--timeout %s is negative; use a duration like 30m, or 0 for no limit", cfg.Timeout)
	}
	if cfg.StopTimeout < 0 {
		return fmt.Errorf("--stop-timeout %s is negative; use a duration like 10s, or 0 to kill at once", cfg.StopTimeout)
	}
	if cfg.PidsLimit < -1 {
		return fmt.Errorf("--pids-limit %d is not a limit; use a positive number of processes, or -1 for unlimited", cfg.PidsLimit)
	}
	if cfg.PidsLimit != 0 {
		limit := cfg.PidsLimit
		host.Resources.PidsLimit = &limit
	}
	if cfg.ShmSize != "" {
		size, err := units.RAMInBytes(cfg.ShmSize)
		if err != nil || size <= 0 {
			return fmt.Errorf("--shm-size %q is not a size; use a number with an optional unit, like 64m or 1g", cfg.ShmSize)
		}
		host.ShmSize = size
	}
	for _, entry := range cfg.Tmpfs {
		dir, options, _ := strings.Cut(entry, ":")
		if !path.IsAbs(dir) || path.Clean(dir) == "/" {
			return fmt.Errorf("--tmpfs %q needs an absolute path other than /, like /tmp or /run:size=64m", entry)
		}
		dir = path.Clean(dir)
		if _, dup := host.Tmpfs[dir]; dup {
			return fmt.Errorf("--tmpfs %q mounts %s a second time; give each path once", entry, dir)
		}
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		host.Tmpfs[dir] = options
	}
	return nil
}
