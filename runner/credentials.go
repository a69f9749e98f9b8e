package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/registry"
)

// dockerConfig is the part of the docker CLI's config.json that says where
// registry credentials are: inline in auths, or in credential helpers.
type dockerConfig struct {
	Auths       map[string]configAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

// configAuth is one entry of auths. Auth is base64 of "user:password", as
// docker login writes it; Username and Password are the spelled-out form.
type configAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// credentials is what was found for one registry, and where: the pull's
// error messages name the source when the registry refuses them.
type credentials struct {
	auth   registry.AuthConfig
	found  bool   // false: pull anonymously
	source string // "/root/.docker/config.json (auths)", "credential helper docker-credential-pass", ...
}

// dockerConfigPath is the config.json the docker CLI would read: in
// $DOCKER_CONFIG, else in ~/.docker. environ is sibling-run's environment.
func dockerConfigPath(environ []string) string {
	lookup := lookupIn(environ)
	if dir, _ := lookup("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, _ := lookup("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker", "config.json")
}

// loadDockerConfig reads config.json at path. A missing file is no
// credentials at all, as for the docker CLI.
func loadDockerConfig(path string) (dockerConfig, error) {
	var cfg dockerConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading registry credentials from %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("reading registry credentials from %s: %w; fix the file or point DOCKER_CONFIG at another directory", path, err)
	}
	return cfg, nil
}

// lookupCredentials finds the credentials for the registry whose config key
// is server (a host[:port], or the default registry's index address), in the
// order the docker CLI uses: a credential helper named for that registry in
// credHelpers, else the credsStore helper, else auths. path is only for
// naming the source.
func lookupCredentials(ctx context.Context, cfg dockerConfig, path, server string) (credentials, error) {
	if helper := matchKey(cfg.CredHelpers, server); helper != "" {
		return helperCredentials(ctx, helper, server)
	}
	if cfg.CredsStore != "" {
		return helperCredentials(ctx, cfg.CredsStore, server)
	}
	entry, ok := matchAuth(cfg.Auths, server)
	if !ok {
		return credentials{source: path}, nil
	}
	auth := registry.AuthConfig{
		Username:      entry.Username,
		Password:      entry.Password,
		IdentityToken: entry.IdentityToken,
		ServerAddress: server,
	}
	if entry.Auth != "" {
		user, password, err := decodeBasicAuth(entry.Auth)
		if err != nil {
			return credentials{}, fmt.Errorf("reading the credentials for %s from %s: %w", server, path, err)
		}
		auth.Username, auth.Password = user, password
	}
	found := auth.Username != "" || auth.Password != "" || auth.IdentityToken != ""
	return credentials{auth: auth, found: found, source: path + " (auths)"}, nil
}

// decodeBasicAuth splits an auths entry's auth field: base64 of "user:password".
func decodeBasicAuth(encoded string) (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", fmt.Errorf("the auth field is not base64: %w", err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errors.New("the auth field is not base64 of user:password")
	}
	return user, password, nil
}

// matchAuth finds server's entry in auths. Keys written by older docker
// logins carry a scheme and a path ("https://host:5000/v1/"), so a key
// matches when its host part is server's.
func matchAuth(auths map[string]configAuth, server string) (configAuth, bool) {
	if entry, ok := auths[server]; ok {
		return entry, true
	}
	want := configHost(server)
	for key, entry := range auths {
		if configHost(key) == want {
			return entry, true
		}
	}
	return configAuth{}, false
}

// matchKey finds server's credential helper in credHelpers, matched as
// matchAuth matches auths keys.
func matchKey(helpers map[string]string, server string) string {
	if helper, ok := helpers[server]; ok {
		return helper
	}
	want := configHost(server)
	for key, helper := range helpers {
		if configHost(key) == want {
			return helper
		}
	}
	return ""
}

// configHost reduces a config key to its host[:port]: "https://h:5000/v2/"
// becomes "h:5000".
func configHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "http://"), "https://")
	host, _, _ := strings.Cut(key, "/")
	return host
}

// helperReply is what a credential helper's get prints.
type helperReply struct {
	ServerURL string
	Username  string
	Secret    string
}

// identityTokenUser is the user name with which a credential helper says
// that Secret is an identity token, not a password.
const identityTokenUser = "<token>"

// helperCredentials runs docker-credential-<name> get with server on stdin,
// the credential helper protocol of the docker CLI. A helper that has no
// credentials for server means an anonymous pull.
func helperCredentials(ctx context.Context, name, server string) (credentials, error) {
	program := "docker-credential-" + name
	source := "credential helper " + program
	cmd := exec.CommandContext(ctx, program, "get")
	cmd.Stdin = strings.NewReader(server + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		said := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(said), "credentials not found") {
			return credentials{source: source}, nil
		}
		var notFound *exec.Error
		if errors.As(err, &notFound) {
			return credentials{}, fmt.Errorf("getting credentials for %s: %s is not on PATH; install it, or remove it from the docker config", server, program)
		}
		if said != "" {
			err = fmt.Errorf("%w: %s", err, said)
		}
		return credentials{}, fmt.Errorf("getting credentials for %s from %s: %w", server, program, err)
	}
	var reply helperReply
	if err := json.Unmarshal(stdout.Bytes(), &reply); err != nil {
		return credentials{}, fmt.Errorf("getting credentials for %s from %s: its answer is not JSON: %w", server, program, err)
	}
	auth := registry.AuthConfig{Username: reply.Username, Password: reply.Secret, ServerAddress: server}
	if reply.Username == identityTokenUser {
		auth = registry.AuthConfig{IdentityToken: reply.Secret, ServerAddress: server}
	}
	return credentials{auth: auth, found: reply.Secret != "", source: source}, nil
}
