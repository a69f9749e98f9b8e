package runner

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"
)

// UserFromImage is the --user value that runs the build as the image's own
// USER.
const UserFromImage = "image"

// buildUser is who the build runs as.
type buildUser struct {
	// Spec is the engine's User field: "uid:gid", "uid", a name, or "" for
	// the image's own user.
	Spec string
	// UID and GID are the numbers when Spec names them; -1 otherwise.
	UID, GID int
	// Name is the build's USER; "" leaves USER unset.
	Name string
	// RootlessHost is the working directory's owner on the host when UID
	// is that owner inside a rootless engine's user namespace; 0 otherwise.
	RootlessHost int
}

// numericNonRoot reports whether the build's uid is a number other than 0,
// the one case where the image may lack a passwd entry for it.
func (u buildUser) numericNonRoot() bool { return u.UID > 0 }

// resolveUser decides who the build runs as. By default that is the owner of
// the working directory, so that whatever the build writes there stays the
// agent's to clean; --user overrides it with uid[:gid], a name (or
// name:group), or "image" for the image's own USER.
func resolveUser(flag, workdir string) (buildUser, error) {
	if flag != "" {
		return parseUserFlag(flag, agentName)
	}
	info, err := os.Stat(workdir)
	if err != nil {
		return buildUser{}, fmt.Errorf("finding the owner of the working directory: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return buildUser{}, fmt.Errorf("finding the owner of the working directory %s: no owner on this system; pass --user", workdir)
	}
	uid, gid := int(st.Uid), int(st.Gid)
	return buildUser{Spec: fmt.Sprintf("%d:%d", uid, gid), UID: uid, GID: gid, Name: agentName(uid)}, nil
}

// Names as the engine and passwd files accept them.
var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$`)

// parseUserFlag reads --user: uid[:gid], name[:group], or "image". name
// gives the build's USER for a numeric uid.
func parseUserFlag(flag string, name func(uid int) string) (buildUser, error) {
	if flag == UserFromImage {
		return buildUser{UID: -1, GID: -1}, nil
	}
	who, group, hasGroup := strings.Cut(flag, ":")
	if who == "" || (hasGroup && group == "") || strings.Contains(group, ":") {
		return buildUser{}, fmt.Errorf("--user %q is not a user; use uid[:gid], name[:group], or image", flag)
	}
	u := buildUser{Spec: flag, UID: -1, GID: -1}
	for _, part := range []string{who, group} {
		if part != "" && !isNumber(part) && !userNamePattern.MatchString(part) {
			return buildUser{}, fmt.Errorf("--user %q: %q is neither a number nor a name", flag, part)
		}
	}
	if isNumber(who) {
		uid, err := strconv.ParseUint(who, 10, 31)
		if err != nil {
			return buildUser{}, fmt.Errorf("--user %q: uid %s is out of range", flag, who)
		}
		u.UID = int(uid)
		u.Name = name(u.UID)
	} else {
		u.Name = who
	}
	if isNumber(group) {
		gid, err := strconv.ParseUint(group, 10, 31)
		if err != nil {
			return buildUser{}, fmt.Errorf("--user %q: gid %s is out of range", flag, group)
		}
		u.GID = int(gid)
	}
	return u, nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// agentName is the name this machine knows uid by, or "build" when it knows
// none (or one that would not fit a passwd line).
func agentName(uid int) string {
	if uid == 0 {
		return "root"
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && userNamePattern.MatchString(u.Username) {
		return u.Username
	}
	return "build"
}

// withUserEnv adds USER to env unless the user set it.
func withUserEnv(env []string, u buildUser) []string {
	if u.Name == "" {
		return env
	}
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == "USER" {
			return env
		}
	}
	return append(env, "USER="+u.Name)
}

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	Name, Home string
	UID        int
}

// parsePasswd reads the entries of a passwd file, skipping lines it cannot
// read.
func parsePasswd(data []byte) []passwdEntry {
	var entries []passwdEntry
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) < 7 {
			continue
		}
		uid, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		entries = append(entries, passwdEntry{Name: fields[0], UID: uid, Home: fields[5]})
	}
	return entries
}

// passwdWith returns the passwd file data with an entry for u added, and the
// entry's home directory; found is true when data already has u's uid, in
// which case nothing needs to change. An image without a passwd file (nil
// data) gets one with root and u.
func passwdWith(data []byte, u buildUser) (updated []byte, home string, found bool) {
	entries := parsePasswd(data)
	homes := map[string]bool{}
	for _, e := range entries {
		if e.UID == u.UID {
			return data, e.Home, true
		}
		homes[e.Home] = true
	}
	if data == nil {
		data = []byte("root:x:0:0:root:/root:/bin/sh\n")
	}
	name := u.Name
	if name == "" {
		name = "build"
	}
	home = "/home/" + name
	if homes[home] {
		home = "/home/" + strconv.Itoa(u.UID)
	}
	gid := u.GID
	if gid < 0 {
		gid = 0 // what the engine gives a uid that passwd does not know
	}
	updated = append([]byte(nil), data...)
	if len(updated) > 0 && updated[len(updated)-1] != '\n' {
		updated = append(updated, '\n')
	}
	updated = fmt.Appendf(updated, "%s:x:%d:%d:%s:%s:/bin/sh\n", name, u.UID, gid, name, home)
	return updated, home, false
}

// ensurePasswdEntry gives a build whose uid the image does not know a passwd
// entry and a home directory it owns, in the created sibling id before it
// starts. The engine then sets HOME from that entry, so tools that write to
// HOME (go, npm, pip) work, and `id` and `whoami` name the user. It also
// gives the uid the top directory of each of caches (paths of --cache
// volumes), which the engine made root's when the image lacks the path. It
// costs a round trip to read /etc/passwd (saved once the image's is
// remembered, see siblingPasswd), and a second to write when the uid is
// missing or there are caches; failures are logged, as the build may well not
// need a HOME or its caches.
func ensurePasswdEntry(ctx context.Context, api Engine, id string, u buildUser, caches []string, log zerolog.Logger) {
	if !u.numericNonRoot() {
		return
	}
	started := time.Now()
	data, mode, err := siblingPasswd(ctx, api, id, log)
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the image's /etc/passwd; the build may have no HOME")
		data, mode = nil, -1
	}
	updated, home, found := passwdWith(data, u)
	if found {
		log.Debug().Int("uid", u.UID).Str("home", home).Msg("the image knows the build's uid")
	}
	gid := max(u.GID, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if !found && mode >= 0 {
		_ = tw.WriteHeader(&tar.Header{Name: "etc/passwd", Mode: mode, Size: int64(len(updated)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(updated)
		_ = tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(home, "/") + "/", Mode: 0o700, Uid: u.UID, Gid: gid, Typeflag: tar.TypeDir})
	}
	// An existing directory takes the entry's owner and mode, its content
	// stays as it is.
	for _, dir := range caches {
		_ = tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(dir, "/") + "/", Mode: 0o755, Uid: u.UID, Gid: gid, ModTime: started, Typeflag: tar.TypeDir})
	}
	_ = tw.Close()
	if (found || mode < 0) && len(caches) == 0 {
		return
	}
	// Without CopyUIDGID the engine keeps the owners written in the archive:
	// root for passwd, the build's uid for its home and caches.
	if err := api.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		log.Warn().Err(err).Msg("cannot add the build's user to the image's /etc/passwd or give it its caches; the build may have no HOME, or caches it cannot write")
		return
	}
	log.Debug().Int("uid", u.UID).Str("home", home).Strs("caches", caches).Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("gave the build's uid its passwd entry, home and caches")
}

// readPasswd returns the sibling's /etc/passwd and its mode; nil data when
// the image has none.
func readPasswd(ctx context.Context, api Engine, id string) ([]byte, int64, error) {
	stream, _, err := api.CopyFromContainer(ctx, id, "/etc/passwd")
	if cerrdefs.IsNotFound(err) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	defer stream.Close()
	tr := tar.NewReader(stream)
	hdr, err := tr.Next()
	if err != nil {
		return nil, 0, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, 0, fmt.Errorf("/etc/passwd is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, hdr.Mode & 0o7777, nil
}

// refuseRootDoor refuses a build as root in a working directory on a host
// that users other than root can reach, unless allowed: the bind cannot be
// nosuid,nodev on Docker (its API has no such bind option; Binds refuses
// "invalid mode: nosuid"), so such a build could leave a setuid-root program
// or a device node there for any user of the host. A directory behind one
// that others cannot enter (mode o-x: t.TempDir, mktemp -d) is no door.
func refuseRootDoor(workdir string, u buildUser, allowed bool) error {
	root := u.UID == 0 || u.Spec == "root" || strings.HasPrefix(u.Spec, "root:")
	// Root inside a rootless engine is the directory's owner outside: what
	// it leaves is set-id to that user at most, and it cannot make devices.
	if u.RootlessHost > 0 {
		return nil
	}
	if !root || allowed || !reachableByOthers(workdir) {
		return nil
	}
	return fmt.Errorf("the build would run as root in %s, on this host, where other users can reach what it leaves (a setuid-root program, say); run it as another user (--user 1000:1000, or chown the directory to its owner), or pass --root-on-host if the host has no other users", workdir)
}

// reachableByOthers reports whether every directory above path lets others
// than its owner and group through (o+x).
func reachableByOthers(path string) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}
