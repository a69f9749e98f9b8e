package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// idRange is one line of a user namespace's uid or gid map: size ids from
// Host on the engine's host are Container and up inside its containers.
type idRange struct {
	Container int `json:"container_id"`
	Host      int `json:"host_id"`
	Size      int `json:"size"`
}

// engineUserns is the user namespace a rootless engine runs its containers
// in; the zero value is none (a rootful engine, or one that does not say).
type engineUserns struct {
	Rootless   bool
	UIDs, GIDs []idRange
}

// toContainer returns the id inside the namespace that the host's id maps
// to, and false when it maps to none.
func toContainer(ranges []idRange, hostID int) (int, bool) {
	for _, r := range ranges {
		if hostID >= r.Host && hostID < r.Host+r.Size {
			return r.Container + hostID - r.Host, true
		}
	}
	return 0, false
}

// mayBeRootless reports whether the engine at host could be a rootless one:
// its socket belongs to a user other than root, as a rootless service's
// does. Only then is Podman asked (podmanUserns), as its info call took
// 0.4-0.5 s here against 13 ms for a ping. A TCP engine is not asked.
func mayBeRootless(host string) bool {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return false
	}
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid != 0
}

// podmanUserns asks a Podman engine for its user namespace (its libpod info
// call: Host.Security.Rootless and Host.IDMappings; the Docker-compatible
// /info says neither). Docker has no such call and any failure is "none":
// the build then runs as before.
func podmanUserns(ctx context.Context, api Engine) engineUserns {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, libpodURL(api, "/v4.0.0/libpod/info"), nil)
	if err != nil {
		return engineUserns{}
	}
	resp, err := api.HTTPClient().Do(req)
	if err != nil {
		return engineUserns{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return engineUserns{}
	}
	ns, err := parseLibpodInfo(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return engineUserns{}
	}
	return ns
}

// parseLibpodInfo reads the user namespace from Podman's libpod info answer.
func parseLibpodInfo(r io.Reader) (engineUserns, error) {
	var info struct {
		Host struct {
			Security struct {
				Rootless bool `json:"rootless"`
			} `json:"security"`
			IDMappings struct {
				UIDMap []idRange `json:"uidmap"`
				GIDMap []idRange `json:"gidmap"`
			} `json:"idMappings"`
		} `json:"host"`
	}
	if err := json.NewDecoder(r).Decode(&info); err != nil {
		return engineUserns{}, fmt.Errorf("reading the engine's info: %w", err)
	}
	h := info.Host
	return engineUserns{Rootless: h.Security.Rootless, UIDs: h.IDMappings.UIDMap, GIDs: h.IDMappings.GIDMap}, nil
}

// libpodURL is the URL of Podman's own API path on api's engine. The SDK's
// transport dials the engine's socket whatever the URL's host (unix, npipe,
// ssh); over TCP the host is the engine's address.
func libpodURL(api Engine, path string) string {
	scheme, host := "http", "podman"
	if u, err := url.Parse(api.DaemonHost()); err == nil && u.Scheme == "tcp" {
		host = u.Host
	}
	if t, ok := api.HTTPClient().Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + host + path
}

// inEngineUserns turns the default build user, the working directory's
// owner as this host numbers it, into the ids that are that owner inside a
// rootless engine's containers. Rootless Podman maps the uid it runs as to
// root inside (and its subordinate ids, /etc/subuid, to 1 and up), so the
// owner's own uid inside is another host uid, which cannot write the
// directory. An owner the namespace does not map is refused: no user inside
// could write the directory.
func inEngineUserns(u buildUser, ns engineUserns, workdir string) (buildUser, error) {
	if !ns.Rootless || len(ns.UIDs) == 0 || u.UID < 0 {
		return u, nil
	}
	uid, ok := toContainer(ns.UIDs, u.UID)
	if !ok {
		return u, fmt.Errorf("the working directory %s belongs to uid %d, which the rootless Podman engine's containers cannot be (it maps uid %d to their root, and its /etc/subuid range); run sibling-run in a directory of the user the engine runs as, or pass --user", workdir, u.UID, ns.UIDs[0].Host)
	}
	gid, ok := toContainer(ns.GIDs, u.GID)
	if !ok {
		gid = 0 // the group of the engine's own user, as root inside is that user
	}
	name := agentName(u.UID)
	if uid == 0 {
		name = "root"
	}
	return buildUser{Spec: fmt.Sprintf("%d:%d", uid, gid), UID: uid, GID: gid, Name: name, RootlessHost: u.UID}, nil
}
