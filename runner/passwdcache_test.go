package runner

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestMountsHidePasswd(t *testing.T) {
	withMounts := func(destinations ...string) container.InspectResponse {
		var info container.InspectResponse
		for _, d := range destinations {
			info.Mounts = append(info.Mounts, container.MountPoint{Destination: d})
		}
		return info
	}
	for _, tc := range []struct {
		name string
		info container.InspectResponse
		want bool
	}{
		{"no mounts", withMounts(), false},
		{"the working directory and a cache", withMounts("/build/dir", "/root/.cache"), false},
		{"a directory beside /etc", withMounts("/etcetera", "/etc2/passwd"), false},
		{"/etc", withMounts("/build", "/etc"), true},
		{"/etc/ with a slash", withMounts("/etc/"), true},
		{"the file itself", withMounts("/etc/passwd"), true},
		{"a file beside it", withMounts("/etc/hosts"), false},
		{"the root", withMounts("/"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mountsHidePasswd(tc.info); got != tc.want {
				t.Errorf("mountsHidePasswd = %v, want %v", got, tc.want)
			}
		})
	}
	tmpfs := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{HostConfig: &container.HostConfig{Tmpfs: map[string]string{"/etc": ""}}}}
	if !mountsHidePasswd(tmpfs) {
		t.Error("a tmpfs on /etc does not hide /etc/passwd")
	}
}

func TestPasswdCacheFile(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/cache")
	id := "sha256:" + string(bytes.Repeat([]byte("ab"), 32))
	if got, want := passwdCacheFile(id), filepath.Join("/cache/sibling-run/passwd", id[7:]+".json"); got != want {
		t.Errorf("passwdCacheFile = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "sha256:../../etc", "sha256:ABAB", id[7:], id + "0"} {
		if got := passwdCacheFile(bad); got != "" {
			t.Errorf("passwdCacheFile(%q) = %q, want none", bad, got)
		}
	}
}

func TestPasswdCacheKeepsWhatWasRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    cachedPasswd
	}{
		{"a passwd file", cachedPasswd{Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644}},
		{"an empty one", cachedPasswd{Data: []byte{}, Mode: 0o600}},
		{"none at all", cachedPasswd{Data: nil, Mode: 0o644}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "sub", tc.name+".json")
			if err := storePasswd(file, tc.c); err != nil {
				t.Fatal(err)
			}
			got, ok := loadPasswd(file)
			if !ok || got.Mode != tc.c.Mode || !bytes.Equal(got.Data, tc.c.Data) || (got.Data == nil) != (tc.c.Data == nil) {
				t.Errorf("loaded %+v (%v), want %+v", got, ok, tc.c)
			}
		})
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "sub", "*.tmp")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
	if _, ok := loadPasswd(filepath.Join(dir, "absent.json")); ok {
		t.Error("an absent cache file loaded")
	}
}
