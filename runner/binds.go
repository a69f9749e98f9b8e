package runner

import (
	"context"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

// Podman 4.3's compat API turns each of HostConfig.Mounts into its own
// comma-separated option string and refuses a path with a comma in it
// ("invalid mount option"). It takes the same mount as one of
// HostConfig.Binds ("source:target:options"), whose paths may hold commas
// but no colon. Mounts stays the one list the run plans and checks
// (mounts.go); only at the create, and only for Podman, are the mounts with
// a comma in a path sent as Binds. Docker takes them as Mounts, which refuse
// a host path that does not exist where Binds would make it: a mistyped -v
// path stays an error there.

// hostConfigFor returns host as the engine at api takes it. Only a spec
// with a comma in a mount's path asks the engine which one it is.
func hostConfigFor(ctx context.Context, api Engine, host *container.HostConfig) *container.HostConfig {
	if binds := withCommaBinds(host); binds != host && isPodman(ctx, api) {
		return binds
	}
	return host
}

// withCommaBinds returns host with every mount whose source or target holds
// a comma moved from Mounts to Binds, when Binds can say all of it (no colon
// in a path, no volume options but NoCopy); host itself is not changed.
func withCommaBinds(host *container.HostConfig) *container.HostConfig {
	var moved []string
	var kept []mount.Mount
	for _, m := range host.Mounts {
		if b, ok := asBind(m); ok && strings.Contains(m.Source+m.Target, ",") {
			moved = append(moved, b)
			continue
		}
		kept = append(kept, m)
	}
	if len(moved) == 0 {
		return host
	}
	copied := *host
	copied.Mounts = kept
	copied.Binds = append(append([]string(nil), host.Binds...), moved...)
	return &copied
}

// asBind writes m as a Binds entry, or reports that it cannot.
func asBind(m mount.Mount) (string, bool) {
	if strings.Contains(m.Source+m.Target, ":") || m.Source == "" {
		return "", false
	}
	var opts []string
	switch m.Type {
	case mount.TypeBind:
		if b := m.BindOptions; b != nil {
			if b.NonRecursive || b.ReadOnlyNonRecursive || b.ReadOnlyForceRecursive || b.CreateMountpoint {
				return "", false
			}
			if b.Propagation != "" {
				opts = append(opts, string(b.Propagation))
			}
		}
		if m.VolumeOptions != nil {
			return "", false
		}
	case mount.TypeVolume:
		if v := m.VolumeOptions; v != nil {
			if v.Subpath != "" || len(v.Labels) > 0 || v.DriverConfig != nil {
				return "", false
			}
			if v.NoCopy {
				opts = append(opts, "nocopy")
			}
		}
		if m.BindOptions != nil {
			return "", false
		}
	default:
		return "", false
	}
	if m.ReadOnly {
		opts = append([]string{"ro"}, opts...)
	}
	b := m.Source + ":" + m.Target
	if len(opts) > 0 {
		b += ":" + strings.Join(opts, ",")
	}
	return b, true
}
