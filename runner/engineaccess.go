package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/mount"
)

// socketInBuild is where a build given the engine (--docker) finds its socket:
// the path every Docker client tries first.
const socketInBuild = "/var/run/docker.sock"

// buildEngineAccess is what --docker adds to the sibling.
type buildEngineAccess struct {
	Mount    *mount.Mount // the engine's socket, for a unix-socket engine
	GroupAdd []string     // the socket's group, so that a non-root build may use it
	Env      []string     // DOCKER_HOST
}

// engineAccess gives the build the engine at host (as the client names it:
// unix:///path or tcp://addr). A socket is bound at socketInBuild from its
// path on the engine's host: inside a container (inContainer), the source of
// this container's mount that holds the socket (mine), on a host the socket's
// own path. The build gets the socket's group; a build of uid buildUID (-1:
// not a known number) that could not use the socket even so is refused. A
// TCP engine is passed as DOCKER_HOST; one that needs TLS is refused, since
// its client key would have to be handed to the build, which --docker does
// not do behind the user's back.
func engineAccess(host string, environ []string, inContainer bool, mine []sharedMount, buildUID int) (buildEngineAccess, error) {
	scheme, addr, _ := strings.Cut(host, "://")
	switch scheme {
	case "tcp":
		for _, name := range []string{"DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH"} {
			if lookupEnv(environ, name) != "" {
				return buildEngineAccess{}, fmt.Errorf("--docker: the engine at %s is reached with TLS (%s is set), and sibling-run does not hand its client key to a build; pass the certificates to the build yourself, or use the engine's socket", host, name)
			}
		}
		return buildEngineAccess{Env: []string{"DOCKER_HOST=" + host}}, nil
	case "unix":
	default:
		return buildEngineAccess{}, fmt.Errorf("--docker: the engine at %s is neither a unix socket nor plain TCP, which is all a build can be given; point DOCKER_HOST at the engine's socket", host)
	}

	info, err := os.Stat(addr)
	if err != nil {
		return buildEngineAccess{}, fmt.Errorf("--docker: the engine's socket %s: %w", addr, err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if info.Mode()&os.ModeSocket == 0 || !ok {
		return buildEngineAccess{}, fmt.Errorf("--docker: %s is not a socket", addr)
	}
	if err := socketUsableBy(addr, info.Mode().Perm(), st.Uid, buildUID); err != nil {
		return buildEngineAccess{}, err
	}
	here := destinationHere(addr)
	source := here
	if inContainer {
		holder, found := mountHolding(here, mine)
		if !found || (holder.Type != mount.TypeBind && holder.Type != mount.TypeVolume) || holder.Source == "" {
			return buildEngineAccess{}, fmt.Errorf("--docker: the engine's socket %s is not bound into this container from the engine's host (mounts: %s), so its path there is unknown; mount the socket into the agent with -v /var/run/docker.sock:%s", addr, describeMounts(mine), addr)
		}
		rel, _ := filepath.Rel(holder.Here, here)
		source = filepath.Join(holder.Source, rel)
	}
	return buildEngineAccess{
		Mount:    &mount.Mount{Type: mount.TypeBind, Source: source, Target: socketInBuild},
		GroupAdd: []string{strconv.FormatUint(uint64(st.Gid), 10)},
		Env:      []string{"DOCKER_HOST=unix://" + socketInBuild},
	}, nil
}

// socketUsableBy refuses a socket of mode perm, owned by owner, that a build
// of uid buildUID could not connect to with the socket's group added: a
// socket only its owner may use. `podman system service unix://PATH` makes
// such a socket (0600); Docker's and Podman's systemd socket units make it
// 0660.
func socketUsableBy(addr string, perm os.FileMode, owner uint32, buildUID int) error {
	if buildUID <= 0 || uint32(buildUID) == owner || perm&0o060 == 0o060 || perm&0o006 == 0o006 {
		return nil
	}
	return fmt.Errorf("--docker: the engine's socket %s has mode %04o, so the build, running as uid %d, could not use it even in the socket's group; make the socket group read-write (chmod 660; podman.socket's SocketMode=0660 does) or run the build as uid %d (--user)", addr, perm, buildUID, owner)
}

// userUID is the uid of an engine User field ("uid[:gid]"), or -1 when it
// names no number.
func userUID(spec string) int {
	uid, _, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(uid)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func isUnixHost(host string) bool { return strings.HasPrefix(host, "unix://") }

// lookupEnv returns the value of name in environ, a list of NAME=VALUE.
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
