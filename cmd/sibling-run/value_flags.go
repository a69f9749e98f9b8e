package main

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/docker/go-units"

	"sibling-run/runner"
)

// parseSize reads flag's value in docker's size syntax (512m, 2g); "" is 0.
// A size must be positive unless zeroOK; example shows a good value.
func parseSize(flag, value string, zeroOK bool, example string) (int64, error) {
	if value == "" {
		return 0, nil
	}
	size, err := units.RAMInBytes(value)
	if err != nil || size < 0 || (size == 0 && !zeroOK) {
		return 0, fmt.Errorf("%s %q is not a size; use a number with an optional unit, like %s", flag, value, example)
	}
	return size, nil
}

// parseLabels reads --label KEY=VALUE entries (KEY alone means an empty value).
func parseLabels(entries []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, entry := range entries {
		key, value, _ := strings.Cut(entry, "=")
		if key == "" {
			return nil, fmt.Errorf("--label %q has no key; use KEY=VALUE", entry)
		}
		labels[key] = value
	}
	return labels, nil
}

// parseLabelFilters reads the --label filters of reap and cache: KEY=VALUE
// selects that value, KEY alone any value.
func parseLabelFilters(entries []string) ([]runner.LabelFilter, error) {
	var filters []runner.LabelFilter
	for _, entry := range entries {
		key, value, hasValue := strings.Cut(entry, "=")
		if key == "" {
			return nil, fmt.Errorf("--label %q has no key; use KEY=VALUE or KEY", entry)
		}
		filters = append(filters, runner.LabelFilter{Key: key, Value: value, AnyValue: !hasValue})
	}
	return filters, nil
}

// parseTmpfs reads --tmpfs PATH[:OPTIONS] entries: a tmpfs at the absolute
// PATH, with mount options like size=64m,noexec.
func parseTmpfs(entries []string) ([]runner.TmpfsSpec, error) {
	var mounts []runner.TmpfsSpec
	for _, entry := range entries {
		dir, options, _ := strings.Cut(entry, ":")
		if !path.IsAbs(dir) || path.Clean(dir) == "/" {
			return nil, fmt.Errorf("--tmpfs %q needs an absolute path other than /, like /tmp or /run:size=64m", entry)
		}
		mounts = append(mounts, runner.TmpfsSpec{Path: path.Clean(dir), Options: options})
	}
	return mounts, nil
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dnsUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)
)

// parseServices reads --service IMAGE[=ALIAS] entries. An alias must be a
// DNS label, unique among the services; without one it is derived from the
// image (serviceAlias).
func parseServices(entries []string) ([]runner.ServiceSpec, error) {
	var services []runner.ServiceSpec
	seen := map[string]string{}
	for _, entry := range entries {
		image, alias, explicit := strings.Cut(entry, "=")
		if image == "" {
			return nil, fmt.Errorf("--service %q names no image; use IMAGE or IMAGE=ALIAS", entry)
		}
		if explicit {
			alias = strings.ToLower(alias)
			if !dnsLabel.MatchString(alias) {
				return nil, fmt.Errorf("--service %q: the alias %q is not a DNS label; use letters, digits and inner hyphens, at most 63", entry, alias)
			}
		} else if alias = serviceAlias(image); alias == "" {
			return nil, fmt.Errorf("--service %q: no alias can be made from the image's name; give one as IMAGE=ALIAS", entry)
		}
		if other, dup := seen[alias]; dup {
			return nil, fmt.Errorf("--service %q and %q both have the alias %s; give one another as IMAGE=ALIAS", other, entry, alias)
		}
		seen[alias] = entry
		services = append(services, runner.ServiceSpec{Image: image, Alias: alias})
	}
	return services, nil
}

// serviceAlias derives a service's default alias from its image reference:
// the last path component without tag or digest, as a DNS label
// (library/postgres:15 gives postgres). It returns "" if nothing is left.
func serviceAlias(image string) string {
	name, _, _ := strings.Cut(image, "@")
	name = name[strings.LastIndexByte(name, '/')+1:]
	name, _, _ = strings.Cut(name, ":")
	name = strings.Trim(dnsUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// parseArtifacts reads --artifact SRC[:DEST] entries: SRC an absolute path in
// the sibling, DEST a directory under the working directory, which the
// runner checks against the directory itself.
func parseArtifacts(entries []string) ([]runner.ArtifactSpec, error) {
	var artifacts []runner.ArtifactSpec
	for _, entry := range entries {
		src, dest, _ := strings.Cut(entry, ":")
		var why string
		switch {
		case !strings.HasPrefix(src, "/"):
			why = "the path in the sibling must be absolute, like /out/reports"
		case path.Clean(src) == "/":
			why = "the sibling's whole filesystem cannot be an artifact; name a directory or file in it"
		case strings.ContainsRune(entry, 0):
			why = "the entry contains a NUL byte"
		default:
			artifacts = append(artifacts, runner.ArtifactSpec{Src: path.Clean(src), Dest: dest})
			continue
		}
		return nil, fmt.Errorf("--artifact %q: %s", entry, why)
	}
	return artifacts, nil
}

// parseRemote reads --remote: auto, or a yes or no in the spellings a tired
// admin types.
func parseRemote(v string) (runner.RemoteMode, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto", "":
		return runner.RemoteAuto, nil
	case "true", "yes", "1", "on":
		return runner.RemoteOn, nil
	case "false", "no", "0", "off":
		return runner.RemoteOff, nil
	}
	return "", fmt.Errorf("--remote %q: give auto (copy when the engine is not on a unix socket), true or false (also yes/no, 1/0)", v)
}
