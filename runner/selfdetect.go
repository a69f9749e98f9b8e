package runner

import (
	"bufio"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
)

// A Docker container id is 64 lowercase hex digits; cgroup paths and the
// engine's per-container files carry it in full.
var (
	cgroupContainerID    = regexp.MustCompile(`(?:^|[^0-9a-f])([0-9a-f]{64})(?:[^0-9a-f]|$)`)
	mountinfoContainerID = regexp.MustCompile(`/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)$`)
)

// selfContainerID returns the id of the container this process runs in, or ""
// when it runs on a host. It tries /proc/self/cgroup first (cgroup v1, and v2
// with the host's cgroup namespace) and then /proc/self/mountinfo, where the
// engine's bind mounts of /etc/hostname and friends name the container even
// inside a private cgroup namespace (the default on cgroup v2 hosts).
func selfContainerID() string {
	if f, err := os.Open("/proc/self/cgroup"); err == nil {
		id := containerIDFromCgroup(f)
		f.Close()
		if id != "" {
			return id
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		defer f.Close()
		return containerIDFromMountinfo(f)
	}
	return ""
}

// containerIDFromCgroup finds a container id in a /proc/self/cgroup listing:
// lines of "hierarchy:controllers:path", where the path of a Docker container
// ends in its id ("/docker/<id>", "/system.slice/docker-<id>.scope",
// "/kubepods/.../<id>").
func containerIDFromCgroup(r io.Reader) string {
	s := bufio.NewScanner(r)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ids := cgroupContainerID.FindAllStringSubmatch(parts[2], -1); len(ids) > 0 {
			return ids[len(ids)-1][1]
		}
	}
	return ""
}

// containerIDFromMountinfo finds a container id in a /proc/self/mountinfo
// listing: the root of the mount at /etc/hostname (or /etc/hosts,
// /etc/resolv.conf) is the engine's file ".../containers/<id>/hostname".
// Only a mount at this process's own /etc/... counts: while the engine sets up
// another container, its files can show up here mounted under that
// container's root, and taking those would make a host process use a
// stranger's volumes.
func containerIDFromMountinfo(r io.Reader) string {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		// Fields: mount id, parent id, major:minor, root, mount point, ...
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		m := mountinfoContainerID.FindStringSubmatch(fields[3])
		if m != nil && fields[4] == "/etc/"+path.Base(fields[3]) {
			return m[1]
		}
	}
	return ""
}
