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
		{"TLS with certificates only", "tcp://10.0.0.5:2376", []string{"DOCKER_CERT_PATH=/certs"}, nil, "DOCKER_CERT_PATH"},
		{"ssh", "ssh://ci@engine", nil, nil, "neither a unix socket nor plain TCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineAccess(tt.host, tt.environ, false, nil)
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
			got, err := engineAccess("unix://"+socket, nil, tt.inContainer, tt.mine)
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

	if _, err := engineAccess("unix://"+filepath.Join(dir, "gone.sock"), nil, false, nil); err == nil {
		t.Error("engineAccess of a missing socket succeeded")
	}
	if _, err := engineAccess("unix://"+filepath.Dir(socket), nil, false, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("engineAccess of a directory: err = %v, want \"not a socket\"", err)
	}
}
