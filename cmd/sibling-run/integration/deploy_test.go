package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests check the provisioning files that the engine does not run:
// the systemd units, the Butane config, and the scripts' refusals.

// The units name `docker` without a path, so systemd resolves it in its fixed
// search path: /usr/bin/docker on Fedora CoreOS, /usr/local/bin/docker here.
// Each layout is verified in a temporary root that has docker (a stub) only
// where that layout has it; a root with no docker at all must fail, which
// shows that the verification looks for the command.
func TestSystemdUnitsVerifyWhereverDockerLives(t *testing.T) {
	firstPassOnly(t, "it does not use the engine under test")
	units, err := filepath.Glob(filepath.Join(repoRoot(), "scripts", "systemd", "*.service"))
	if err != nil || len(units) != 2 {
		t.Fatalf("want the two unit files in scripts/systemd, found %v (%v)", units, err)
	}
	targets, err := filepath.Glob("/usr/lib/systemd/system/*.target")
	if err != nil || len(targets) == 0 {
		t.Fatalf("no systemd targets in /usr/lib/systemd/system to build a root from: %v", err)
	}
	for _, tc := range []struct {
		name, docker string
		ok           bool
	}{
		{"Fedora CoreOS", "/usr/bin/docker", true},
		{"docker in /usr/local/bin", "/usr/local/bin/docker", true},
		{"no docker", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, dir := range []string{"usr/bin", "usr/local/bin", "etc/systemd/system", "usr/lib/systemd/system"} {
				mustMkdir(t, filepath.Join(root, dir))
			}
			if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(root, "usr/bin/sh"), "#!/bin/sh\n", 0o755)
			mustWrite(t, filepath.Join(root, "usr/lib/systemd/system/docker.service"), "[Service]\nExecStart=/bin/sh\n", 0o644)
			if tc.docker != "" {
				mustWrite(t, filepath.Join(root, tc.docker), "#!/bin/sh\n", 0o755)
			}
			for _, target := range targets {
				data, err := os.ReadFile(target)
				if err != nil {
					t.Fatal(err)
				}
				mustWrite(t, filepath.Join(root, "usr/lib/systemd/system", filepath.Base(target)), string(data), 0o644)
			}
			for _, unit := range units {
				data, err := os.ReadFile(unit)
				if err != nil {
					t.Fatal(err)
				}
				mustWrite(t, filepath.Join(root, "etc/systemd/system", filepath.Base(unit)), string(data), 0o644)
			}
			out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "bamboo-agent-data@1.service", "bamboo-agent@1.service").CombinedOutput()
			switch {
			case tc.ok && err != nil:
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			case !tc.ok && (err == nil || !strings.Contains(string(out), "docker is not executable")):
				t.Errorf("without docker, verify should fail on the docker command: %v\n%s", err, out)
			}
		})
	}
}

// The Butane config transpiles strictly with the pinned Butane release,
// takes the unit files from scripts/systemd as they are, and enables them.
func TestButaneConfigTranspiles(t *testing.T) {
	firstPassOnly(t, "it does not use the engine under test")
	butane := filepath.Join(t.TempDir(), "butane")
	build := exec.Command("go", "build", "-o", butane, "github.com/coreos/butane/internal")
	build.Dir = filepath.Join(repoRoot(), "scripts", "fcos", "butane")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building butane from the module proxy: %v\n%s", err, out)
	}
	cmd := exec.Command(butane, "--strict", "--files-dir", "scripts", "scripts/fcos/build-host.bu")
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("butane --strict: %v\n%s", err, stderrOf(err))
	}
	var ignition struct {
		Storage struct {
			Files []struct {
				Path     string
				Contents struct{ Source, Compression string }
			}
		}
		Systemd struct {
			Units []struct {
				Name    string
				Enabled *bool
			}
		}
	}
	if err := json.Unmarshal(out, &ignition); err != nil {
		t.Fatalf("butane's output is not JSON: %v", err)
	}
	files := map[string]string{}
	for _, f := range ignition.Storage.Files {
		files[f.Path] = dataURLText(t, f.Contents.Source, f.Contents.Compression)
	}
	for path, local := range map[string]string{
		"/etc/systemd/system/bamboo-agent@.service":      "scripts/systemd/bamboo-agent@.service",
		"/etc/systemd/system/bamboo-agent-data@.service": "scripts/systemd/bamboo-agent-data@.service",
	} {
		want, err := os.ReadFile(filepath.Join(repoRoot(), local))
		if err != nil {
			t.Fatal(err)
		}
		if got := files[path]; got != string(want) {
			t.Errorf("%s in the Ignition config differs from %s", path, local)
		}
	}
	for _, path := range []string{"/etc/pki/ca-trust/source/anchors/internal-ca.pem", "/etc/bamboo-agent/agent.env"} {
		if _, ok := files[path]; !ok {
			t.Errorf("the Ignition config lacks %s", path)
		}
	}
	enabled := map[string]bool{}
	for _, u := range ignition.Systemd.Units {
		enabled[u.Name] = u.Enabled != nil && *u.Enabled
	}
	for _, unit := range []string{"docker.service", "internal-ca-trust.service", "bamboo-agent-data@1.service", "bamboo-agent@1.service"} {
		if !enabled[unit] {
			t.Errorf("the Ignition config does not enable %s", unit)
		}
	}
}

func TestShellScriptsPassShellcheck(t *testing.T) {
	firstPassOnly(t, "it does not use the engine under test")
	scripts, err := filepath.Glob(filepath.Join(repoRoot(), "scripts", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	if out, err := exec.Command("shellcheck", scripts...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// agent.sh refuses in one line, with a non-zero exit, before it does
// anything, when a required variable is missing or the engine is absent.
func TestAgentScriptRefusesClearly(t *testing.T) {
	firstPassOnly(t, "it does not use the engine under test")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		says string
	}{
		{"no server URL", []string{"DOCKER_HOST=unix:///nonexistent.sock"}, []string{"up", "1"}, "BAMBOO_SERVER is not set"},
		{"no engine", []string{"DOCKER_HOST=unix:///nonexistent.sock", "BAMBOO_SERVER=http://bamboo.test"}, []string{"up", "1"}, "cannot reach the Docker engine"},
		{"no agent number", nil, []string{"up"}, "needs the agent's number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := scriptResult(tc.env, "agent.sh", tc.args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(out, tc.says) {
				t.Errorf("want one line saying %q and a non-zero exit; exit %d:\n%s", tc.says, code, out)
			}
		})
	}
}

// dataURLText decodes the data URLs Butane writes: "data:,TEXT" with TEXT
// URL-escaped, or "data:;base64,..." of gzip-compressed text.
func dataURLText(t *testing.T, source, compression string) string {
	t.Helper()
	var data []byte
	switch {
	case strings.HasPrefix(source, "data:,"):
		text, err := url.PathUnescape(strings.TrimPrefix(source, "data:,"))
		if err != nil {
			t.Fatalf("decoding %.40q: %v", source, err)
		}
		data = []byte(text)
	case strings.HasPrefix(source, "data:;base64,"):
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(source, "data:;base64,")); err != nil {
			t.Fatalf("decoding %.40q: %v", source, err)
		}
	default:
		t.Fatalf("unexpected contents source %.40q", source)
	}
	if compression == "gzip" {
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return string(data)
}

func stderrOf(err error) string {
	if exit, ok := err.(*exec.ExitError); ok {
		return string(exit.Stderr)
	}
	return ""
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}
