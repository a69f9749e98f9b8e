package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"
)

// An image's /etc/passwd is remembered on disk by image id. An id names the
// image's content, so its passwd never changes; with it remembered, a build
// whose uid the image lacks costs one archive call instead of two, and none
// when the image knows the uid. Archive calls are what a non-root build pays
// for (each makes the engine mount the sibling's filesystem, a FUSE process
// with fuse-overlayfs); an inspect is a lookup in the engine's memory.

// cachedPasswd is an image's /etc/passwd as the cache file holds it.
type cachedPasswd struct {
	Data []byte `json:"data"` // nil when the image has no /etc/passwd
	Mode int64  `json:"mode"`
}

var imageIDPattern = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// siblingPasswd returns the created sibling id's /etc/passwd and its mode,
// from the cache when the image's is known and no mount hides it.
func siblingPasswd(ctx context.Context, api Engine, id string, log zerolog.Logger) ([]byte, int64, error) {
	file := ""
	if info, err := api.ContainerInspect(ctx, id); err != nil {
		log.Debug().Err(err).Msg("inspecting the sibling for its image id; reading /etc/passwd from it")
	} else if info.ContainerJSONBase != nil && !mountsHidePasswd(info) {
		file = passwdCacheFile(info.Image)
	}
	if file != "" {
		if cached, ok := loadPasswd(file); ok {
			log.Debug().Str("file", file).Msg("the image's /etc/passwd is known")
			// A cache file written before engine lines were recognised
			// may hold one.
			return withoutEngineEntries(cached.Data), cached.Mode, nil
		}
	}
	data, mode, err := readPasswd(ctx, api, id)
	data = withoutEngineEntries(data)
	if err == nil && file != "" {
		if err := storePasswd(file, cachedPasswd{Data: data, Mode: mode}); err != nil {
			log.Debug().Err(err).Msg("cannot remember the image's /etc/passwd")
		}
	}
	return data, mode, err
}

// podmanEntry is the line Podman adds to a container's /etc/passwd for a
// uid the image lacks, once it prepares the container (which it does when
// the container is attached to, so a read may see it): name, "*", the uid,
// the gid, "container user", the working directory as home, /bin/sh.
var podmanEntry = regexp.MustCompile(`^[^:\n]*:\*:[0-9]+:[0-9]+:container user:[^:\n]*:/bin/sh$`)

// withoutEngineEntries returns passwd data without the lines an engine
// wrote into the container, so that neither the build's entry nor the
// cache (which another engine may read for the same image) takes an
// engine's line, with its home in the working directory, for the image's.
// nil (no passwd file) stays nil.
func withoutEngineEntries(data []byte) []byte {
	if data == nil || !bytes.Contains(data, []byte(":container user:")) {
		return data
	}
	kept := []byte{}
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !podmanEntry.Match(bytes.TrimRight(line, "\n")) {
			kept = append(kept, line...)
		}
	}
	return kept
}

// mountsHidePasswd reports whether a mount of the sibling covers
// /etc/passwd, which then need not be the image's.
func mountsHidePasswd(info container.InspectResponse) bool {
	var destinations []string
	for _, m := range info.Mounts {
		destinations = append(destinations, m.Destination)
	}
	if info.ContainerJSONBase != nil && info.HostConfig != nil {
		for dest := range info.HostConfig.Tmpfs {
			destinations = append(destinations, dest)
		}
	}
	for _, dest := range destinations {
		switch path.Clean(dest) {
		case "/", "/etc", "/etc/passwd":
			return true
		}
	}
	return false
}

// passwdCacheFile is where the passwd of the image imageID is remembered, or
// "" when there is no cache directory.
func passwdCacheFile(imageID string) string {
	m := imageIDPattern.FindStringSubmatch(imageID)
	if m == nil {
		return ""
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sibling-run", "passwd", m[1]+".json")
}

func loadPasswd(file string) (cachedPasswd, bool) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return cachedPasswd{}, false
	}
	var c cachedPasswd
	if json.Unmarshal(raw, &c) != nil || c.Mode&^0o7777 != 0 {
		return cachedPasswd{}, false
	}
	return c, true
}

// storePasswd writes the cache file whole or not at all: runs at once may
// write the same file.
func storePasswd(file string, c cachedPasswd) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), strings.TrimSuffix(filepath.Base(file), ".json")+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left by a failure
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
