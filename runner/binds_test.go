package runner

import (
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

func TestWithCommaBindsMovesOnlyMountsWithACommaThatBindsCanSay(t *testing.T) {
	plain := mount.Mount{Type: mount.TypeBind, Source: "/w", Target: "/w"}
	for _, tc := range []struct {
		name      string
		m         mount.Mount
		wantBinds []string
	}{
		{"no comma stays a mount", plain, nil},
		{"bind with a comma", mount.Mount{Type: mount.TypeBind, Source: "/a,b", Target: "/a,b"}, []string{"/a,b:/a,b"}},
		{"read-only bind", mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/x,y", ReadOnly: true}, []string{"/h:/x,y:ro"}},
		{"propagation", mount.Mount{Type: mount.TypeBind, Source: "/a,b", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}, []string{"/a,b:/c:ro,rslave"}},
		{"named volume", mount.Mount{Type: mount.TypeVolume, Source: "cache-1", Target: "/c,d"}, []string{"cache-1:/c,d"}},
		{"nocopy volume", mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/c,d", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}, []string{"v:/c,d:nocopy"}},
		{"a colon too: left to the engine", mount.Mount{Type: mount.TypeBind, Source: "/a,b:c", Target: "/x"}, nil},
		{"subpath: left to the engine", mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/a,b", VolumeOptions: &mount.VolumeOptions{Subpath: "s"}}, nil},
		{"non-recursive: left to the engine", mount.Mount{Type: mount.TypeBind, Source: "/a,b", Target: "/x", BindOptions: &mount.BindOptions{NonRecursive: true}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := &container.HostConfig{Mounts: []mount.Mount{plain, tc.m}}
			got := withCommaBinds(host)
			if !reflect.DeepEqual(got.Binds, tc.wantBinds) {
				t.Errorf("binds %q, want %q", got.Binds, tc.wantBinds)
			}
			wantMounts := 2 - len(tc.wantBinds)
			if len(got.Mounts) != wantMounts || got.Mounts[0] != plain {
				t.Errorf("mounts %+v, want %d with the plain one first", got.Mounts, wantMounts)
			}
			if len(host.Mounts) != 2 || host.Binds != nil {
				t.Error("the spec's own host config was changed")
			}
		})
	}
}
