package runner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/rs/zerolog"
)

// pullBackoff is the wait before the first retry of a pull; each further
// retry waits twice as long as the one before, up to pullBackoffMax.
var (
	pullBackoff    = time.Second
	pullBackoffMax = 30 * time.Second
)

// pullTarget is an image name as the pull needs it.
type pullTarget struct {
	ref      string // what the engine pulls: the familiar name with a tag or digest
	registry string // the registry's domain, for messages and as its config key
	// official is true for the default registry, whose config key is not its
	// domain but the index address the engine reports.
	official bool
}

// parsePullTarget reads image as the docker CLI does: a name without a
// registry domain is on the default registry, one without a tag is :latest.
func parsePullTarget(image string) (pullTarget, error) {
	// The engine also takes an image id where a name goes; "sha256:<id>"
	// would otherwise read as the tag <id> of an image called sha256.
	if id, ok := strings.CutPrefix(image, "sha256:"); ok && reference.IdentifierRegexp.MatchString(id) {
		return pullTarget{}, fmt.Errorf("%s is an image id, and only a name can be pulled", image)
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return pullTarget{}, fmt.Errorf("%s is not an image name that can be pulled: %w", image, err)
	}
	named = reference.TagNameOnly(named)
	domain := reference.Domain(named)
	return pullTarget{
		ref:      reference.FamiliarString(named),
		registry: domain,
		// Familiar names omit the domain of the default registry, and only that.
		official: !strings.HasPrefix(reference.FamiliarName(named), domain+"/"),
	}, nil
}

// configKey is the key of the target's registry in config.json: its domain,
// or for the default registry the index address, which the engine reports
// (the docker library keeps the same constant, but in a package that would
// bring a metrics stack and a router into this binary).
func (t pullTarget) configKey(indexServer string) string {
	if t.official {
		return indexServer
	}
	return t.registry
}

// loginHint is the command that stores credentials for the target's registry.
func (t pullTarget) loginHint() string {
	if t.official {
		return "docker login"
	}
	return "docker login " + t.registry
}

// puller pulls images for one run.
type puller struct {
	api     Engine
	environ []string
	retries int
	log     zerolog.Logger
	// terminal is stderr when it is a terminal: the pull is shown there live;
	// otherwise a few log lines report it.
	terminal fileWriter
}

func newPuller(api Engine, cfg Config) *puller {
	p := &puller{api: api, environ: cfg.Environ, retries: cfg.PullRetries, log: cfg.Log}
	if f, ok := asTerminal(cfg.Stderr); ok {
		p.terminal = f
	}
	return p
}

// checkPull refuses pull settings that make no sense, before anything is
// created.
func checkPull(cfg Config) error {
	if cfg.PullRetries < 0 {
		return fmt.Errorf("--pull-retries %d: give 0 or more retries", cfg.PullRetries)
	}
	return nil
}

// pull pulls img with the credentials the docker config has for its
// registry, retrying transient failures with exponential backoff. A
// cancelled ctx stops it at once, and pull returns ctx's cause.
func (p *puller) pull(ctx context.Context, img string) error {
	target, err := parsePullTarget(img)
	if err != nil {
		return toolFailure("pulling %s: %w", img, err)
	}
	creds, err := p.credentials(ctx, target)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return toolFailure("pulling %s: %w", target.ref, err)
	}
	log := p.log.With().Str("image", target.ref).Logger()
	credsSource := "none"
	if creds.found {
		credsSource = creds.source
	}
	log.Info().Str("registry", target.registry).Str("credentials", credsSource).Msg("pulling the image")
	for attempt := 0; ; attempt++ {
		err := p.pullOnce(ctx, target, creds, log)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		kind := classifyPullError(err)
		if kind != pullTransient || attempt >= p.retries {
			return explainPullFailure(target, creds, kind, err, attempt+1)
		}
		delay := backoffDelay(attempt)
		log.Warn().Err(err).Int("attempt", attempt+1).Stringer("retry_in", delay).Msg("pull failed; retrying")
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (p *puller) pullOnce(ctx context.Context, target pullTarget, creds credentials, log zerolog.Logger) error {
	var opts image.PullOptions
	if creds.found {
		encoded, err := registry.EncodeAuthConfig(creds.auth)
		if err != nil {
			return err
		}
		opts.RegistryAuth = encoded
	}
	body, err := p.api.ImagePull(ctx, target.ref, opts)
	if err != nil {
		return err
	}
	defer body.Close()
	return showPull(body, p.terminal, log)
}

// credentials looks up the credentials for target's registry in the docker
// config. Only the default registry needs the engine: its config key is the
// index address that the engine reports.
func (p *puller) credentials(ctx context.Context, target pullTarget) (credentials, error) {
	path := dockerConfigPath(p.environ)
	cfg, err := loadDockerConfig(path)
	if err != nil {
		return credentials{}, err
	}
	if len(cfg.Auths) == 0 && len(cfg.CredHelpers) == 0 && cfg.CredsStore == "" {
		return credentials{source: path}, nil
	}
	indexServer := ""
	if target.official {
		info, err := p.api.Info(ctx)
		if err != nil {
			return credentials{}, fmt.Errorf("asking the engine for its default registry's address: %w", err)
		}
		indexServer = info.IndexServerAddress
	}
	return lookupCredentials(ctx, cfg, path, target.configKey(indexServer))
}

// backoffDelay is the wait before retry number attempt+1.
func backoffDelay(attempt int) time.Duration {
	delay := pullBackoff
	for i := 0; i < attempt && delay < pullBackoffMax; i++ {
		delay *= 2
	}
	return min(delay, pullBackoffMax)
}

// pullFailure is what kind of failure ended a pull attempt.
type pullFailure int

const (
	pullFailed       pullFailure = iota // permanent, for a reason of its own
	pullTransient                       // may work when tried again
	pullUnauthorized                    // the registry refused the credentials, or their absence
	pullNotFound                        // no such repository, tag or digest
)

var (
	// serverErrorStatus matches a registry's 5xx as the engine reports it:
	// "received unexpected HTTP status: 503 Service Unavailable".
	serverErrorStatus = regexp.MustCompile(`(?i)\b5\d\d (internal server error|not implemented|bad gateway|service unavailable|gateway time-?out)|status(?: code)?:? 5\d\d\b`)
	transientWords    = []string{
		"connection refused", "connection reset", "broken pipe", "unexpected eof",
		"i/o timeout", "timeout exceeded", "handshake timeout", "timed out",
		"server misbehaving", "temporary failure", "try again", "network is unreachable", "no route to host",
	}
	unauthorizedWords = []string{"unauthorized", "authentication required", "no basic auth credentials", "access denied", "denied:", "incorrect username or password"}
	notFoundWords     = []string{"manifest unknown", "not found", "name unknown"}
)

// classifyPullError tells what kind of failure err is. Engines before API
// 1.42 answer most pull failures with a 500 and the registry's words, so the
// words decide where the error class does not.
func classifyPullError(err error) pullFailure {
	msg := strings.ToLower(err.Error())
	switch {
	case cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) || containsAny(msg, unauthorizedWords):
		return pullUnauthorized
	case cerrdefs.IsNotFound(err) || containsAny(msg, notFoundWords):
		return pullNotFound
	case cerrdefs.IsUnavailable(err) || cerrdefs.IsDeadlineExceeded(err) || errors.Is(err, context.DeadlineExceeded) ||
		containsAny(msg, transientWords) || serverErrorStatus.MatchString(msg):
		return pullTransient
	}
	return pullFailed
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// explainPullFailure turns the last failure of a pull into the one line that
// says what happened and what to do.
func explainPullFailure(target pullTarget, creds credentials, kind pullFailure, err error, attempts int) error {
	said := strings.TrimPrefix(err.Error(), "Error response from daemon: ")
	switch kind {
	case pullUnauthorized:
		if creds.found {
			return toolFailure("pulling %s: registry %s refused the credentials from %s (%s); check them, or log in again: %s",
				target.ref, target.registry, creds.source, said, target.loginHint())
		}
		return toolFailure("pulling %s: registry %s refused an anonymous pull, and no credentials for it were found in %s (%s); log in first: %s",
			target.ref, target.registry, creds.source, said, target.loginHint())
	case pullNotFound:
		return toolFailure("pulling %s: image %s not found in registry %s (%s); check the name and the tag", target.ref, target.ref, target.registry, said)
	case pullTransient:
		return toolFailure("pulling %s from registry %s failed %d times: %s; raise --pull-retries if the registry is often unreachable", target.ref, target.registry, attempts, said)
	}
	return toolFailure("pulling %s from registry %s: %s", target.ref, target.registry, said)
}
