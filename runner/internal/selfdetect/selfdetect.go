// Package selfdetect finds the container this process runs in, from
// /proc/self/cgroup and /proc/self/mountinfo, and says how it found it. It
// is pure: it reads those files (or a fixture) and asks no engine; runner
// asks the engine about the container it names, and trusts it only after
// checking.
package selfdetect

import (
	"bufio"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
)

// A container id is 64 lowercase hex digits; cgroup paths and the engine's
// per-container files carry it in full.
var (
	cgroupContainerID = regexp.MustCompile(`(?:^|[^0-9a-f])([0-9a-f]{64})(?:[^0-9a-f]|$)`)
	// The root of the engine's bind mount of a per-container file: Docker keeps
	// them in .../containers/<id>/, Podman in .../<id>/userdata/.
	mountinfoContainerID = regexp.MustCompile(`/(?:containers/([0-9a-f]{64})|([0-9a-f]{64})/userdata)/(hostname|hosts|resolv\.conf)$`)
)

// The files an engine bind-mounts into every container, in the order they are
// trusted to name it.
var containerFiles = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}

// Detection is the container this process runs in, and how it was found.
type Detection struct {
	ID  string // "" on a host
	How string // for the debug line: the file and what in it named the id
}

// ContainerID returns the id of the container this process runs in, or ""
// when it runs on a host.
func ContainerID() string { return Detect().ID }

// Detect finds the container this process runs in. It tries
// /proc/self/cgroup first (cgroup v1, and v2 with the host's cgroup namespace)
// and then /proc/self/mountinfo, where the engine's bind mount at this
// process's /etc/hostname (or hosts, resolv.conf) names the container even
// inside a private cgroup namespace (the default on cgroup v2 hosts). The
// caller still checks the container's hostname before trusting its mounts.
func Detect() Detection {
	if f, err := os.Open("/proc/self/cgroup"); err == nil {
		id := ContainerIDFromCgroup(f)
		f.Close()
		if id != "" {
			return Detection{ID: id, How: "/proc/self/cgroup"}
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		defer f.Close()
		if id, point := ContainerIDFromMountinfo(f); id != "" {
			return Detection{ID: id, How: "/proc/self/mountinfo, the mount at " + point}
		}
	}
	return Detection{How: "no container id in /proc/self/cgroup or /proc/self/mountinfo"}
}

// ContainerIDFromCgroup finds a container id in a /proc/self/cgroup listing:
// lines of "hierarchy:controllers:path", where the path of a container ends in
// its id ("/docker/<id>", "/system.slice/docker-<id>.scope",
// "/kubepods/.../<id>", "/machine.slice/libpod-<id>.scope").
func ContainerIDFromCgroup(r io.Reader) string {
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

// ContainerIDFromMountinfo finds a container id in a /proc/self/mountinfo
// listing and returns it with the mount point that named it. Only a mount AT
// this process's /etc/hostname (or /etc/hosts, /etc/resolv.conf) counts, with
// the engine's file of the same name as its root: on a host, the same files
// of other containers appear too, propagated to their own mount points, and
// must never be taken for ours (also while the engine sets up another
// container, its files show up mounted under that container's root). When a point is mounted over, the last line
// (the mount on top) wins; /etc/hostname is asked first.
func ContainerIDFromMountinfo(r io.Reader) (id, point string) {
	found := map[string]string{} // mount point -> id
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		// Fields: mount id, parent id, major:minor, root, mount point, ...
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		root, mountPoint := fields[3], fields[4]
		if !isContainerFile(mountPoint) {
			continue
		}
		m := mountinfoContainerID.FindStringSubmatch(root)
		if m == nil || m[3] != path.Base(mountPoint) {
			delete(found, mountPoint) // mounted over by something else
			continue
		}
		found[mountPoint] = m[1] + m[2]
	}
	for _, file := range containerFiles {
		if id := found[file]; id != "" {
			return id, file
		}
	}
	return "", ""
}

func isContainerFile(mountPoint string) bool {
	for _, f := range containerFiles {
		if mountPoint == f {
			return true
		}
	}
	return false
}
