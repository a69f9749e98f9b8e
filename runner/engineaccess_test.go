package runner

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

func TestEngineAccessTCP(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		environ []string
		wantEnv []string
		wantErr string
	}{
		{"plain TCP", "tcp://10.0.0.5:2375", []string{"HOME=/root"}, []string{"DOCKER_HOST=tcp://10.0.0.5:2375"}, ""},
		{"TLS verified", "tcp://10.0.0.5:2376", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=/certs"}, nil, "DOCKER_TLS_VERIFY"},
		{"TLS without verification", "tcp://10.0.0.5:2376", []string{"DOCKER_TLS=1"}, nil, "DOCKER_TLS is set"},
		{"TLS with certificates only", "tcp://10.0.0.5:2376", []string{"DOCKER_CERT_PATH=/certs"}, nil, "DOCKER_CERT_PATH"},
		{"ssh", "ssh://ci@engine", nil, nil, "neither a unix socket nor plain TCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineAccess(tt.host, tt.environ, false, nil, -1)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("engineAccess(%s): err = %v, want one containing %q", tt.host, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mount != nil || got.GroupAdd != nil || !reflect.DeepEqual(got.Env, tt.wantEnv) {
				t.Errorf("engineAccess(%s) = %+v, want only Env %q", tt.host, got, tt.wantEnv)
			}
		})
	}
}

// A socket is bound from its path on the engine's host, with its group.
func TestEngineAccessSocket(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "run", "engine.sock")
	if err := os.Mkdir(filepath.Dir(socket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := os.Stat(socket)
	if err != nil {
		t.Fatal(err)
	}
	gid := strconv.Itoa(int(info.Sys().(*syscall.Stat_t).Gid))
	at := func(typ mount.Type, source, dest string) sharedMount {
		return sharedMount{MountPoint: container.MountPoint{Type: typ, Source: source, Destination: dest}, Here: dest}
	}

	tests := []struct {
		name        string
		inContainer bool
		mine        []sharedMount
		wantSource  string
		wantErr     string
	}{
		{"on a host", false, nil, socket, ""},
		{"the socket bound into the agent", true, []sharedMount{at(mount.TypeVolume, "/v/_data", "/builds"), at(mount.TypeBind, "/var/run/docker.sock", socket)}, "/var/run/docker.sock", ""},
		{"its directory bound into the agent", true, []sharedMount{at(mount.TypeBind, "/run/docker", filepath.Dir(socket))}, "/run/docker/engine.sock", ""},
		{"not a mount of the agent", true, []sharedMount{at(mount.TypeVolume, "/v/_data", "/builds")}, "", "not bound into this container"},
		{"on a tmpfs of the agent", true, []sharedMount{at(mount.TypeTmpfs, "", filepath.Dir(socket))}, "", "not bound into this container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineAccess("unix://"+socket, nil, tt.inContainer, tt.mine, -1)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("engineAccess: err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := buildEngineAccess{
				Mount:    &mount.Mount{Type: mount.TypeBind, Source: tt.wantSource, Target: "/var/run/docker.sock"},
				GroupAdd: []string{gid},
				Env:      []string{"DOCKER_HOST=unix:///var/run/docker.sock"},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("engineAccess = %+v (mount %+v), want %+v (mount %+v)", got, got.Mount, want, want.Mount)
			}
		})
	}

	if _, err := engineAccess("unix://"+filepath.Join(dir, "gone.sock"), nil, false, nil, -1); err == nil {
		t.Error("engineAccess of a missing socket succeeded")
	}
	if _, err := engineAccess("unix://"+filepath.Dir(socket), nil, false, nil, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("engineAccess of a directory: err = %v, want \"not a socket\"", err)
	}
}

// A socket only its owner may use (podman system service's 0600) is refused
// for a build of another uid, whom the socket's group would not help.
func TestEngineAccessRefusesASocketTheBuildCannotUse(t *testing.T) {
	for _, tt := range []struct {
		perm     os.FileMode
		owner    uint32
		buildUID int
		refused  bool
	}{
		{0o600, 0, 4242, true},
		{0o660, 0, 4242, false},
		{0o666, 0, 4242, false},
		{0o600, 0, 0, false},       // root
		{0o600, 4242, 4242, false}, // the owner
		{0o600, 0, -1, false},      // a user name: unknown
	} {
		err := socketUsableBy("/run/podman/podman.sock", tt.perm, tt.owner, tt.buildUID)
		if (err != nil) != tt.refused {
			t.Errorf("socket %04o of uid %d, build uid %d: err = %v, want refused %v", tt.perm, tt.owner, tt.buildUID, err, tt.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "0600") {
			t.Errorf("the refusal does not show the mode: %v", err)
		}
	}
	for spec, want := range map[string]int{"4242:4343": 4242, "0": 0, "bamboo": -1, "": -1, "x:1": -1} {
		if got := userUID(spec); got != want {
			t.Errorf("userUID(%q) = %d, want %d", spec, got, want)
		}
	}
}
