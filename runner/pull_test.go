package runner

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

func TestPullTargetAndConfigKey(t *testing.T) {
	for _, tc := range []struct {
		image, ref, registry, key string
	}{
		{"127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000", "127.0.0.1:5000"},
		{"registry.example.test/app", "registry.example.test/app:latest", "registry.example.test", "registry.example.test"},
		{"localhost/app:dev", "localhost/app:dev", "localhost", "localhost"},
		{"golang:1.6", "golang:1.6", "", testIndex},
		{"team/app", "team/app:latest", "", testIndex},
		{"team/app@sha256:" + strings.Repeat("ab", 32), "team/app@sha256:" + strings.Repeat("ab", 32), "", testIndex},
	} {
		target, err := parsePullTarget(tc.image)
		if err != nil {
			t.Errorf("%s: %v", tc.image, err)
			continue
		}
		if target.ref != tc.ref || target.configKey(testIndex) != tc.key {
			t.Errorf("%s: ref %q key %q, want %q %q", tc.image, target.ref, target.configKey(testIndex), tc.ref, tc.key)
		}
		if tc.registry != "" && (target.registry != tc.registry || target.official) {
			t.Errorf("%s: registry %q official %v, want %q", tc.image, target.registry, target.official, tc.registry)
		}
		if tc.registry == "" && (!target.official || target.loginHint() != "docker login") {
			t.Errorf("%s: not taken for the default registry", tc.image)
		}
	}
	for _, bad := range []string{"sha256:" + strings.Repeat("ab", 32), strings.Repeat("ab", 32), "a b", "app::1", ""} {
		if _, err := parsePullTarget(bad); err == nil {
			t.Errorf("%q parsed as a pullable name", bad)
		}
	}
}

func TestClassifyPullError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want pullFailure
	}{
		// The engine's own words, as Docker 20.10 answers a pull.
		{errors.New(`Error response from daemon: Get "http://127.0.0.1:45124/v2/": dial tcp 127.0.0.1:45124: connect: connection refused`), pullTransient},
		{errors.New("Error response from daemon: received unexpected HTTP status: 503 Service Unavailable"), pullTransient},
		{errors.New("Error response from daemon: Get \"https://r.example.test/v2/\": net/http: TLS handshake timeout"), pullTransient},
		{errors.New("Error response from daemon: Get \"https://r.example.test/v2/\": dial tcp: lookup r.example.test: i/o timeout"), pullTransient},
		{errors.New("read tcp 10.0.0.2:4000->10.0.0.3:443: read: connection reset by peer"), pullTransient},
		{errors.New("reading the engine's pull progress: unexpected EOF"), pullTransient},
		{cerrdefs.ErrUnavailable, pullTransient},
		{errors.New("Error response from daemon: unauthorized: authentication required"), pullUnauthorized},
		{errors.New(`Error response from daemon: Head "http://127.0.0.1:45123/v2/x/manifests/probe": no basic auth credentials`), pullUnauthorized},
		{errors.New("Error response from daemon: pull access denied for team/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"), pullUnauthorized},
		{fmt.Errorf("pulling: %w", cerrdefs.ErrUnauthenticated), pullUnauthorized},
		{errors.New("Error response from daemon: manifest for 127.0.0.1:45123/sibling-run-test/x:nope not found: manifest unknown: manifest unknown"), pullNotFound},
		{cerrdefs.ErrNotFound, pullNotFound},
		{errors.New(`Error response from daemon: Get "https://nowhere.invalid/v2/": dial tcp: lookup nowhere.invalid: no such host`), pullFailed},
		{errors.New("Error response from daemon: invalid reference format"), pullFailed},
		{errors.New("Error response from daemon: received unexpected HTTP status: 429 Too Many Requests"), pullFailed},
	} {
		if got := classifyPullError(tc.err); got != tc.want {
			t.Errorf("classifyPullError(%q) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for attempt, w := range want {
		if got := backoffDelay(attempt); got != w {
			t.Errorf("backoffDelay(%d) = %s, want %s", attempt, got, w)
		}
	}
	if got := backoffDelay(200); got != pullBackoffMax {
		t.Errorf("backoffDelay(200) = %s", got)
	}
}

func TestPullFailureMessages(t *testing.T) {
	target, _ := parsePullTarget("127.0.0.1:5000/team/app:1")
	withCreds := credentials{found: true, source: "/ci/.docker/config.json (auths)"}
	without := credentials{source: "/ci/.docker/config.json"}
	for _, tc := range []struct {
		kind  pullFailure
		creds credentials
		says  []string
	}{
		{pullUnauthorized, withCreds, []string{"registry 127.0.0.1:5000 refused the credentials from /ci/.docker/config.json (auths)", "docker login 127.0.0.1:5000"}},
		{pullUnauthorized, without, []string{"registry 127.0.0.1:5000 refused", "no credentials", "/ci/.docker/config.json", "docker login 127.0.0.1:5000"}},
		{pullNotFound, without, []string{"image 127.0.0.1:5000/team/app:1 not found in registry 127.0.0.1:5000"}},
		{pullTransient, without, []string{"failed 4 times", "--pull-retries"}},
	} {
		err := explainPullFailure(target, tc.creds, tc.kind, errors.New("Error response from daemon: the engine's words"), 4)
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != ExitToolFailure {
			t.Errorf("kind %d: %v is not a 125", tc.kind, err)
		}
		for _, s := range append(tc.says, "the engine's words") {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("kind %d: %q does not say %q", tc.kind, err, s)
			}
		}
		if strings.Contains(err.Error(), "Error response from daemon") {
			t.Errorf("kind %d: %q keeps the client's prefix", tc.kind, err)
		}
	}
}

func TestCheckPullRefusesNegativeRetries(t *testing.T) {
	if err := checkPull(Config{PullRetries: -1}); err == nil {
		t.Error("--pull-retries -1 accepted")
	}
	if err := checkPull(Config{PullRetries: 0}); err != nil {
		t.Error(err)
	}
}

// FuzzPullTarget checks that any image name either is refused or gives a
// reference that reads back as itself, on a registry with a config key.
func FuzzPullTarget(f *testing.F) {
	for _, seed := range []string{"golang:1.6", "127.0.0.1:5000/a/b:c", "a/b@sha256:" + strings.Repeat("0", 64), "sha256:x", "", "A:b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, image string) {
		target, err := parsePullTarget(image)
		if err != nil {
			return
		}
		again, err := parsePullTarget(target.ref)
		if err != nil || again != target {
			t.Errorf("%q gives %+v, which reads back as %+v, %v", image, target, again, err)
		}
		if target.configKey(testIndex) == "" {
			t.Errorf("%q: no config key", image)
		}
	})
}
