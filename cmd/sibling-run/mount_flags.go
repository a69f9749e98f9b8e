package main

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"sibling-run/runner"
)

// parseCaches reads --cache PATH[:shared] entries.
func parseCaches(entries []string) ([]runner.CacheSpec, error) {
	var caches []runner.CacheSpec
	for _, entry := range entries {
		c := runner.CacheSpec{Path: entry}
		if p, ok := strings.CutSuffix(entry, ":shared"); ok {
			c = runner.CacheSpec{Path: p, Shared: true}
		}
		if !path.IsAbs(c.Path) || path.Clean(c.Path) == "/" {
			return nil, fmt.Errorf("--cache %q: give an absolute path other than /, where the build keeps its cache, like /root/.m2 or /root/.m2:shared", entry)
		}
		c.Path = path.Clean(c.Path)
		caches = append(caches, c)
	}
	return caches, nil
}

// Volume names as the engine takes them.
var volumeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// parseVolumes reads -v entries in docker's syntax: NAME:PATH[:ro|rw] for a
// named volume, /HOST/PATH:PATH[:ro|rw] for a bind from the engine's host.
func parseVolumes(entries []string) ([]runner.VolumeSpec, error) {
	var volumes []runner.VolumeSpec
	for _, entry := range entries {
		parts := strings.Split(entry, ":")
		if len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw") {
			parts = parts[:2]
		} else if len(parts) != 2 {
			return nil, fmt.Errorf("-v %q: use NAME:PATH or /HOST/PATH:PATH, with :ro to mount it read-only", entry)
		}
		v := runner.VolumeSpec{Source: parts[0], Target: parts[1], ReadOnly: strings.HasSuffix(entry, ":ro")}
		switch {
		case path.IsAbs(v.Source):
			v.Bind, v.Source = true, path.Clean(v.Source)
		case !volumeNamePattern.MatchString(v.Source):
			return nil, fmt.Errorf("-v %q: %q is neither a volume name nor an absolute path on the engine's host", entry, v.Source)
		}
		if !path.IsAbs(v.Target) || path.Clean(v.Target) == "/" {
			return nil, fmt.Errorf("-v %q: mount it at an absolute path other than /", entry)
		}
		v.Target = path.Clean(v.Target)
		volumes = append(volumes, v)
	}
	return volumes, nil
}
