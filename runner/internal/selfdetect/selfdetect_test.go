package selfdetect

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fullID is the shape every detected id must have: the engine only knows
// containers by their full 64-digit id or their name.
var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestContainerIDFromCgroupFixtures(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"cgroup/v1-docker", "b0b4de9d51fd3c8913977f4a03b3340e759cf292c148aa4286e9b9b6cf166e9a"},
		{"cgroup/v1-systemd-driver", "49655e9a2725f4acb71608916fbf99a89350c9d7fd67b6bdfe888d4270e10489"},
		{"cgroup/v1-kubepods", "057e2ceff3ac22458c351f4136bf8283a94bb0fcb2c11f874be16a946a1e03ce"},
		{"cgroup/v1-host", ""},
		// A 32-digit id belongs to some other supervisor, never to Docker.
		{"cgroup/v1-host-process-api", ""},
		// A private cgroup namespace hides the path; mountinfo has to answer.
		{"cgroup/v2-private", ""},
		{"cgroup/v2-host-namespace", "b20bd1f1be0d9ec021eda56ff86054c9011b9b4bca548c5598fecaf6a062b2c9"},
		{"cgroup/v2-host", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := ContainerIDFromCgroup(strings.NewReader(readFixture(t, tt.file)))
			if got != tt.want {
				t.Errorf("ContainerIDFromCgroup(%s) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestContainerIDFromCgroupLines(t *testing.T) {
	const (
		outer = "5f3e1c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
		inner = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty", "", ""},
		// Docker in Docker nests the cgroups; the innermost is this process's.
		{"nested docker", "4:memory:/docker/" + outer + "/docker/" + inner + "\n", inner},
		{"kubepods systemd driver",
			"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod21df34f9_bf9b_40f7_99c6_344db582b65c.slice/docker-" + inner + ".scope\n",
			inner},
		{"no trailing newline", "0::/docker/" + inner, inner},
		{"63 digits", "0::/docker/" + inner[:63] + "\n", ""},
		{"upper case hex", "0::/docker/" + strings.ToUpper(inner) + "\n", ""},
		// The id is looked for in the path only, not in the controller list.
		{"id outside the path", "1:" + inner + ":/\n", ""},
		{"line without path field", inner + "\n", ""},
		{"later line wins when earlier ones have none", "2:rdma:/\n1:name=systemd:/docker/" + inner + "\n", inner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContainerIDFromCgroup(strings.NewReader(tt.input))
			if got != tt.want {
				t.Errorf("ContainerIDFromCgroup(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestContainerIDFromMountinfoFixtures(t *testing.T) {
	tests := []struct {
		file      string
		want      string
		wantPoint string
	}{
		{"mountinfo/v2-container", "2015d3f66eb3f105f86da314e4e3d89b193de21cba314ce3d68b2fedc018f3b0", "/etc/hostname"},
		{"mountinfo/docker-root-own-fs", "e4c124cb5488bcf9fa54f2f3a7afdccc6d2e7bf92691ebe8149805a0702c0b54", "/etc/hostname"},
		{"mountinfo/host", "", ""},
		// Layer ids look like container ids; only the root field may name one.
		{"mountinfo/overlay-option-only", "", ""},
		// A host sees other containers' hostname files, propagated to their
		// own root filesystems: none of them is at this process's /etc/hostname.
		{"mountinfo/host-foreign-containers", "", ""},
		// A container with the host's /var/lib/docker mounted sees strangers'
		// files before its own; only its own /etc/hostname counts.
		{"mountinfo/container-foreign-propagated", "71c0e5b9a3d2f4e6c8b0a1d3f5e7c9b2a4d6f8e0c1b3a5d7f9e2c4b6a8d0f1e3", "/etc/hostname"},
		{"mountinfo/podman-rootless", "5e8c1d4b7a2f9e3c6d0b8a1f4e7c2d5b9a3f6e0c8d1b4a7f2e5c9d3b6a0f8e1c", "/etc/hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, point := ContainerIDFromMountinfo(strings.NewReader(readFixture(t, tt.file)))
			if got != tt.want || point != tt.wantPoint {
				t.Errorf("ContainerIDFromMountinfo(%s) = %q, %q; want %q, %q", tt.file, got, point, tt.want, tt.wantPoint)
			}
		})
	}
}

func TestContainerIDFromMountinfoLines(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	line := func(root, point string) string {
		return "2075 2060 254:0 " + root + " " + point + " rw,relatime - ext4 /dev/vda rw\n"
	}
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty", "", ""},
		{"hostname", line("/var/lib/docker/containers/"+id+"/hostname", "/etc/hostname"), id},
		{"hosts", line("/var/lib/docker/containers/"+id+"/hosts", "/etc/hosts"), id},
		{"resolv.conf", line("/var/lib/docker/containers/"+id+"/resolv.conf", "/etc/resolv.conf"), id},
		// The kernel escapes a space in a path as \040, so fields stay intact.
		{"data root with a space", line(`/srv/docker\040data/containers/`+id+"/hostname", "/etc/hostname"), id},
		{"other file of the container", line("/var/lib/docker/containers/"+id+"/config.v2.json", "/config.json"), ""},
		{"file name only as prefix", line("/var/lib/docker/containers/"+id+"/hostname.bak", "/etc/hostname"), ""},
		{"resolv-conf with another dot", line("/var/lib/docker/containers/"+id+"/resolvXconf", "/etc/resolv.conf"), ""},
		{"63 digits", line("/var/lib/docker/containers/"+id[:63]+"/hostname", "/etc/hostname"), ""},
		{"65 digits", line("/var/lib/docker/containers/"+id+"0/hostname", "/etc/hostname"), ""},
		{"upper case", line("/var/lib/docker/containers/"+strings.ToUpper(id)+"/hostname", "/etc/hostname"), ""},
		{"id in mount point only", line("/", "/var/lib/docker/containers/"+id+"/hostname"), ""},
		// Another container's files, seen while the engine mounts them into
		// that container's root, are not this process's.
		{"another container's hostname", line("/var/lib/docker/containers/"+id+"/hostname", "/var/lib/docker/overlay2/0a1b/merged/etc/hostname"), ""},
		{"hostname file at another name", line("/var/lib/docker/containers/"+id+"/hostname", "/etc/hosts"), ""},
		{"too few fields", "2075 2060 254:0 /var/lib/docker/containers/" + id + "/hostname\n", ""},
		// The misfire of issue 13: another container's file, mounted elsewhere.
		{"foreign file at another mount point", line("/var/lib/docker/containers/"+id+"/hostname", "/var/lib/docker/overlay2/x/merged/etc/hostname"), ""},
		{"foreign file below /etc", line("/var/lib/docker/containers/"+id+"/hostname", "/etc/hostname.d/hostname"), ""},
		{"file of another name at /etc/hostname", line("/var/lib/docker/containers/"+id+"/hosts", "/etc/hostname"), ""},
		{"podman", line("/var/lib/containers/storage/overlay-containers/"+id+"/userdata/hostname", "/etc/hostname"), id},
		{"podman, another file of the container", line("/var/lib/containers/storage/overlay-containers/"+id+"/userdata/.containerenv", "/etc/hostname"), ""},
		{"podman file mounted elsewhere", line("/run/containers/storage/overlay-containers/"+id+"/userdata/hostname", "/run/x/etc/hostname"), ""},
		// Something mounted over the engine's file hides it.
		{"mounted over", line("/var/lib/docker/containers/"+id+"/hostname", "/etc/hostname") + line("/", "/etc/hostname"), ""},
		{"hostname asked before hosts",
			line("/var/lib/docker/containers/"+strings.Repeat("a", 64)+"/hosts", "/etc/hosts") + line("/var/lib/docker/containers/"+id+"/hostname", "/etc/hostname"), id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := ContainerIDFromMountinfo(strings.NewReader(tt.input))
			if got != tt.want {
				t.Errorf("ContainerIDFromMountinfo(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func FuzzContainerIDFromCgroup(f *testing.F) {
	for _, name := range []string{"v1-docker", "v1-systemd-driver", "v1-kubepods", "v1-host-process-api", "v2-private", "v2-host-namespace"} {
		f.Add(readFixture(f, filepath.Join("cgroup", name)))
	}
	f.Add("0::/docker/" + strings.Repeat("a", 130) + "\n")
	f.Add(":::\n::\n")
	f.Fuzz(func(t *testing.T, input string) {
		got := ContainerIDFromCgroup(strings.NewReader(input))
		if got != "" && !fullID.MatchString(got) {
			t.Errorf("ContainerIDFromCgroup(%q) = %q, want 64 lower-case hex digits or \"\"", input, got)
		}
		if got != "" && !strings.Contains(input, got) {
			t.Errorf("ContainerIDFromCgroup(%q) = %q, which is not in the input", input, got)
		}
	})
}

func FuzzContainerIDFromMountinfo(f *testing.F) {
	for _, name := range []string{"v2-container", "docker-root-own-fs", "host", "overlay-option-only", "host-foreign-containers", "container-foreign-propagated", "podman-rootless"} {
		f.Add(readFixture(f, filepath.Join("mountinfo", name)))
	}
	f.Add("1 2 3:4 /containers/" + strings.Repeat("f", 64) + "/hosts /etc/hosts\n")
	f.Add("\n\n \t \n")
	f.Fuzz(func(t *testing.T, input string) {
		got, point := ContainerIDFromMountinfo(strings.NewReader(input))
		if got == "" {
			return
		}
		if !fullID.MatchString(got) {
			t.Errorf("ContainerIDFromMountinfo(%q) = %q, want 64 lower-case hex digits or \"\"", input, got)
		}
		if !strings.Contains(input, "/containers/"+got+"/") && !strings.Contains(input, "/"+got+"/userdata/") {
			t.Errorf("ContainerIDFromMountinfo(%q) = %q, which no /containers/<id>/ or <id>/userdata/ path in the input names", input, got)
		}
		if !strings.Contains(input, " "+point+" ") && !strings.Contains(input, " "+point+"\n") && !strings.HasSuffix(input, " "+point) {
			t.Errorf("ContainerIDFromMountinfo(%q) = %q at %q, which is no mount point of the input", input, got, point)
		}
	})
}
