package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/registry"
)

// testIndex stands for the default registry's index address, which the
// engine reports at run time.
const testIndex = "https://default-index.invalid/v1/"

func writeConfig(t *testing.T, json string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDockerConfigPathHonoursDockerConfig(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		want    string
	}{
		{[]string{"HOME=/home/b", "DOCKER_CONFIG=/etc/ci/docker"}, "/etc/ci/docker/config.json"},
		{[]string{"HOME=/home/b"}, "/home/b/.docker/config.json"},
		{[]string{"HOME=/home/b", "DOCKER_CONFIG="}, "/home/b/.docker/config.json"},
	} {
		if got := dockerConfigPath(tc.environ); got != tc.want {
			t.Errorf("dockerConfigPath(%q) = %q, want %q", tc.environ, got, tc.want)
		}
	}
}

func TestCredentialsFromAuths(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("ci:pa:ss")) // a password may hold colons
	path := writeConfig(t, `{"auths": {
		"reg.example.test:5000": {"auth": "`+basic+`"},
		"https://old.example.test/v1/": {"username": "u", "password": "p"},
		"tokens.example.test": {"identitytoken": "tok"},
		"`+testIndex+`": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("hub:pw"))+`"},
		"empty.example.test": {}
	}}`)
	cfg, err := loadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		server string
		want   registry.AuthConfig
		found  bool
	}{
		{"reg.example.test:5000", registry.AuthConfig{Username: "ci", Password: "pa:ss", ServerAddress: "reg.example.test:5000"}, true},
		{"old.example.test", registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "old.example.test"}, true},
		{"tokens.example.test", registry.AuthConfig{IdentityToken: "tok", ServerAddress: "tokens.example.test"}, true},
		{testIndex, registry.AuthConfig{Username: "hub", Password: "pw", ServerAddress: testIndex}, true},
		{"empty.example.test", registry.AuthConfig{ServerAddress: "empty.example.test"}, false},
		{"other.example.test", registry.AuthConfig{}, false},
	} {
		creds, err := lookupCredentials(context.Background(), cfg, path, tc.server)
		if err != nil {
			t.Errorf("%s: %v", tc.server, err)
			continue
		}
		if creds.found != tc.found || (tc.found && creds.auth != tc.want) {
			t.Errorf("%s: got %+v found=%v, want %+v found=%v", tc.server, creds.auth, creds.found, tc.want, tc.found)
		}
		if !strings.HasPrefix(creds.source, path) {
			t.Errorf("%s: source %q does not name %s", tc.server, creds.source, path)
		}
	}
}

func TestBadConfigIsAnErrorNamingTheFile(t *testing.T) {
	path := writeConfig(t, `{"auths": `)
	if _, err := loadDockerConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
	path = writeConfig(t, `{"auths": {"r.example.test": {"auth": "not base64!"}}}`)
	cfg, err := loadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lookupCredentials(context.Background(), cfg, path, "r.example.test"); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("got %v, want an error about the auth field", err)
	}
}

func TestMissingConfigMeansNoCredentials(t *testing.T) {
	cfg, err := loadDockerConfig(filepath.Join(t.TempDir(), "config.json"))
	if err != nil || len(cfg.Auths) != 0 || cfg.CredsStore != "" {
		t.Errorf("got %+v, %v; want an empty config", cfg, err)
	}
}

// installHelper writes docker-credential-NAME, a shell script, into a
// directory on PATH. It records the server it was asked for in asked.
func installHelper(t *testing.T, name, body string) (asked string) {
	t.Helper()
	dir := t.TempDir()
	asked = filepath.Join(dir, "asked")
	script := "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\necho \"$server\" > " + asked + "\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return asked
}

func TestCredentialHelpers(t *testing.T) {
	askedStore := installHelper(t, "teststore", `echo '{"ServerURL":"x","Username":"store-user","Secret":"store-pw"}'`)
	askedReg := installHelper(t, "testreg", `echo '{"ServerURL":"x","Username":"<token>","Secret":"id-token"}'`)
	installHelper(t, "testnone", `echo "credentials not found in native keychain"; exit 1`)
	installHelper(t, "testbroken", `echo "keychain locked" >&2; exit 1`)
	path := writeConfig(t, `{
		"credsStore": "teststore",
		"credHelpers": {"reg.example.test": "testreg", "none.example.test": "testnone", "broken.example.test": "testbroken", "gone.example.test": "absent"},
		"auths": {"other.example.test": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("file:pw"))+`"}}
	}`)
	cfg, err := loadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	creds, err := lookupCredentials(ctx, cfg, path, "reg.example.test")
	if err != nil || !creds.found || creds.auth.IdentityToken != "id-token" || creds.auth.Username != "" {
		t.Errorf("credHelpers entry: got %+v, %v; want the identity token", creds, err)
	}
	if got, _ := os.ReadFile(askedReg); string(got) != "reg.example.test\n" {
		t.Errorf("the helper was asked for %q, want reg.example.test", got)
	}
	if creds.source != "credential helper docker-credential-testreg" {
		t.Errorf("source %q", creds.source)
	}

	// credsStore serves every registry without its own helper, auths or not.
	creds, err = lookupCredentials(ctx, cfg, path, "other.example.test")
	if err != nil || creds.auth.Username != "store-user" || creds.auth.Password != "store-pw" {
		t.Errorf("credsStore: got %+v, %v", creds, err)
	}
	if got, _ := os.ReadFile(askedStore); string(got) != "other.example.test\n" {
		t.Errorf("the store was asked for %q", got)
	}

	creds, err = lookupCredentials(ctx, cfg, path, "none.example.test")
	if err != nil || creds.found {
		t.Errorf("credentials not found: got %+v, %v; want an anonymous pull", creds, err)
	}

	_, err = lookupCredentials(ctx, cfg, path, "broken.example.test")
	if err == nil || !strings.Contains(err.Error(), "keychain locked") || !strings.Contains(err.Error(), "docker-credential-testbroken") {
		t.Errorf("a failing helper: got %v, want its own words and its name", err)
	}
	_, err = lookupCredentials(ctx, cfg, path, "gone.example.test")
	if err == nil || !strings.Contains(err.Error(), "docker-credential-absent is not on PATH") {
		t.Errorf("a missing helper: got %v", err)
	}
}

// FuzzAuthsLookup feeds arbitrary config files to the auths lookup: it may
// refuse them, but never panics, and found credentials name their server.
func FuzzAuthsLookup(f *testing.F) {
	f.Add(`{"auths": {"r.example.test": {"auth": "dTpw"}}}`, "r.example.test")
	f.Add(`{"auths": {"https://r.example.test/v1/": {"username": "u"}}}`, "r.example.test")
	f.Add(`{"auths": {"r": {"auth": "!!"}}}`, "r")
	f.Fuzz(func(t *testing.T, config, server string) {
		var cfg dockerConfig
		if err := json.Unmarshal([]byte(config), &cfg); err != nil {
			return
		}
		cfg.CredsStore, cfg.CredHelpers = "", nil // no programs run here
		creds, err := lookupCredentials(context.Background(), cfg, "config.json", server)
		if err == nil && creds.found && creds.auth.ServerAddress != server {
			t.Errorf("credentials for %q name %q", server, creds.auth.ServerAddress)
		}
	})
}
