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

// Podman writes its own line for a uid the image lacks, with the working
// directory as home; it must not pass for the image's.
func TestWithoutEngineEntries(t *testing.T) {
	image := "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000:Bob:/home/bob:/bin/bash\n"
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"Podman's line for a numeric uid", []byte(image + "4321:*:4321:4321:container user:/tmp/ws:/bin/sh\n"), []byte(image)},
		{"Podman's line without a final newline", []byte(image + "4321:*:4321:0:container user:/:/bin/sh"), []byte(image)},
		{"Podman's line for a named user", []byte("ci:*:1001:1001:container user:/build:/bin/sh\n" + image), []byte(image)},
		{"the image's own lines", []byte(image), []byte(image)},
		{"a real user named container user", []byte(image + "cu:x:7:7:container user:/home/cu:/bin/sh\n"), []byte(image + "cu:x:7:7:container user:/home/cu:/bin/sh\n")},
		{"no passwd file", nil, nil},
		{"only Podman's line", []byte("5:*:5:5:container user:/w:/bin/sh\n"), []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutEngineEntries(tt.in)
			if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("withoutEngineEntries(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
