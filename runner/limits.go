package runner

import (
	"fmt"
	"path"

	"github.com/docker/docker/api/types/container"
)

// applyLimits checks --timeout, --stop-timeout, --pids-limit, --shm-size and
// --tmpfs and sets them on host, with docker run's meanings: a pids limit of
// 0 leaves the engine's default, -1 means unlimited.
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
	if cfg.ShmSize < 0 {
		return fmt.Errorf("--shm-size of %d bytes is negative; give a size like 64m or 1g", cfg.ShmSize)
	}
	host.ShmSize = cfg.ShmSize
	for _, t := range cfg.Tmpfs {
		if !path.IsAbs(t.Path) || path.Clean(t.Path) != t.Path || t.Path == "/" {
			return fmt.Errorf("--tmpfs %q is not an absolute path other than /; give one like /tmp", t.Path)
		}
		if _, dup := host.Tmpfs[t.Path]; dup {
			return fmt.Errorf("--tmpfs mounts %s a second time; give each path once", t.Path)
		}
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		host.Tmpfs[t.Path] = t.Options
	}
	return nil
}
