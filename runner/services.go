package runner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/rs/zerolog"
)

// dnsLabel is what a service's alias must be: a name the build can resolve.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkServices checks cfg.Services against each other and the rest of cfg.
func checkServices(cfg Config) error {
	if len(cfg.Services) == 0 {
		return nil
	}
	// Services live on a network of the build's own, which the build must
	// join to resolve their aliases; a second network would make it
	// ambiguous which one the build's traffic takes, so the two exclude
	// each other.
	if cfg.Network != "" {
		return fmt.Errorf("--network %s cannot be combined with --service: the build and its services run on a network of their own; drop --network", cfg.Network)
	}
	if cfg.ServiceTimeout <= 0 {
		return fmt.Errorf("--service-timeout %s is not a time to wait; use a duration like 60s", cfg.ServiceTimeout)
	}
	seen := map[string]bool{}
	for _, svc := range cfg.Services {
		if svc.Image == "" || !dnsLabel.MatchString(svc.Alias) || seen[svc.Alias] {
			return fmt.Errorf("--service %s=%s: give an image and an alias that is a DNS label no other service has", svc.Image, svc.Alias)
		}
		seen[svc.Alias] = true
	}
	return nil
}

// withServices puts the build on its services' network, named after the
// sibling, so that --dry-run shows what a run would do.
func withServices(sp *spec, services []ServiceSpec) {
	if len(services) > 0 {
		sp.HostConfig.NetworkMode = container.NetworkMode(sp.Name)
	}
}

// serviceSet is a build's network and the services started on it.
type serviceSet struct {
	api       Engine
	network   string // the network's id; "" until it exists
	name      string // the network's name, also the prefix of the containers' names
	labels    map[string]string
	logDriver string
	services  []*runningService
	log       zerolog.Logger
}

// runningService is a service container, its output and its exit.
type runningService struct {
	ServiceSpec
	id     string
	att    *attachment
	output <-chan error // closed when the engine ends the output stream
	tail   *lineTail
	exit   *exitWatch
}

// startServices creates the build's network and starts cfg.Services on it,
// then waits until every one is ready, at most cfg.ServiceTimeout. The
// returned set is never nil: its remove must run on every path, since the
// network and some services may exist even when startServices fails.
func startServices(ctx context.Context, api Engine, cfg Config, sp spec) (*serviceSet, error) {
	set := &serviceSet{
		api:       api,
		name:      string(sp.HostConfig.NetworkMode),
		labels:    sp.Config.Labels,
		logDriver: cfg.LogDriver,
		log:       cfg.Log,
	}
	// As with the sibling: what is created after a signal must still be
	// known, so that it is removed.
	lifecycle := context.WithoutCancel(ctx)
	netCtx, cancelNet := boundedCall(ctx, engineCallTimeout)
	id, err := createBuildNetwork(netCtx, api, set.name, set.labels)
	cancelNet()
	if err != nil {
		return set, orSilent(netCtx, api.DaemonHost(), "creating network "+set.name+" for the services", engineCallTimeout, err)
	}
	set.network = id
	for _, svc := range cfg.Services {
		if ctx.Err() != nil {
			return set, context.Cause(ctx)
		}
		if err := set.start(ctx, lifecycle, svc, cfg); err != nil {
			return set, err
		}
	}
	return set, set.waitAllReady(ctx, cfg.ServiceTimeout)
}

// start creates, attaches to and starts one service, reachable by its alias
// on the build's network. Its image is pulled as cfg.Pull says; the pull
// follows pullCtx, which a signal cancels, while the engine calls that create
// things run on ctx, which it does not.
func (s *serviceSet) start(pullCtx, ctx context.Context, svc ServiceSpec, cfg Config) error {
	log := s.log.With().Str("service", svc.Alias).Str("image", svc.Image).Logger()
	created, err := createPulling(pullCtx, ctx, s.api, cfg, svc.Image, func() (container.CreateResponse, error) {
		createCtx, cancel := boundedCall(pullCtx, createTimeout)
		defer cancel()
		created, err := s.api.ContainerCreate(createCtx,
			&container.Config{
				Image:        svc.Image,
				Labels:       withRole(s.labels, "service"),
				AttachStdout: true,
				AttachStderr: true,
			},
			&container.HostConfig{
				NetworkMode: container.NetworkMode(s.name),
				LogConfig:   container.LogConfig{Type: s.logDriver},
			},
			&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				s.name: {Aliases: []string{svc.Alias}},
			}},
			nil, s.name+"-"+svc.Alias)
		return created, orSilent(createCtx, s.api.DaemonHost(), "creating service "+svc.Alias, createTimeout, err)
	})
	if err != nil {
		return fmt.Errorf("service %s: %w", svc.Alias, err)
	}
	rs := &runningService{ServiceSpec: svc, id: created.ID, tail: newLineTail(serviceTailLines, log)}
	s.services = append(s.services, rs)

	// Attached before start, like the sibling: a service that fails at once
	// still shows why. The output is read throughout the build, or a chatty
	// service would block on a full pipe.
	att, err, answered := callWithin(engineCallTimeout, func() (*attachment, error) {
		return attach(ctx, s.api, rs.id, false)
	})
	if !answered {
		return toolFailure("the Docker engine at %s did not answer attaching to service %s within %s; it may be overloaded or stuck: run sibling-run reap once it answers", s.api.DaemonHost(), svc.Alias, engineCallTimeout)
	}
	if err != nil {
		return toolFailure("attaching to service %s: %w", svc.Alias, err)
	}
	rs.att = att
	output := make(chan error)
	go func() {
		defer close(output)
		_, _ = stdcopy.StdCopy(rs.tail, rs.tail, rs.att.conn.Reader)
		rs.tail.flush()
	}()
	rs.output = output
	waitC, errC := s.api.ContainerWait(ctx, rs.id, container.WaitConditionNextExit)
	rs.exit = watchExit(waitC, errC)
	log.Debug().Str("container", rs.id[:12]).Msg("starting service")
	startCtx, cancelStart := boundedCall(pullCtx, startTimeout)
	err = s.api.ContainerStart(startCtx, rs.id, container.StartOptions{})
	cancelStart()
	if err != nil {
		if err := orSilent(startCtx, s.api.DaemonHost(), "starting service "+svc.Alias, startTimeout, err); isEngineSilent(err) || startCtx.Err() != nil {
			return err
		}
		return toolFailure("starting service %s from %s: %w", svc.Alias, svc.Image, err)
	}
	return nil
}

// errServicesTimedOut is the cause that ends the wait for services at
// --service-timeout.
var errServicesTimedOut = errors.New("services not ready in time")

// waitAllReady waits for all services at once. The first failure ends the
// wait for the others, and is returned.
func (s *serviceSet) waitAllReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout, errServicesTimedOut)
	defer cancelTimeout()
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	started := time.Now()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, rs := range s.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.waitReady(ctx, rs, timeout); err != nil {
				once.Do(func() { first = err })
				fail(err)
				return
			}
			s.log.Info().Str("service", rs.Alias).Str("image", rs.Image).
				Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("service ready")
		}()
	}
	wg.Wait()
	return first
}

// failed reports a service that exited or never became ready: its last lines
// of output at error level, then an error that names it.
func (s *serviceSet) failed(rs *runningService, format string, args ...any) error {
	if rs.exit != nil {
		select {
		case <-rs.exit.done:
			// It exited: its last lines arrive once the stream ends.
			select {
			case <-rs.output:
			case <-time.After(2 * time.Second):
			}
		default:
		}
	}
	lines := rs.tail.lines()
	if len(lines) > 0 {
		s.log.Error().Str("service", rs.Alias).Msgf("the last %d lines of service %s's output:", len(lines), rs.Alias)
		for _, line := range lines {
			s.log.Error().Str("service", rs.Alias).Msg(line)
		}
	}
	return toolFailure("service %s (%s) %s", rs.Alias, rs.Image, fmt.Sprintf(format, args...))
}

// remove stops and removes every service and then the network, on a context
// that a signal does not cancel. With keep it leaves them and says so.
func (s *serviceSet) remove(ctx context.Context, keep bool) {
	for _, rs := range s.services {
		if rs.att != nil {
			defer rs.att.close()
		}
	}
	if keep {
		if s.network != "" {
			s.log.Info().Str("network", s.name).Int("services", len(s.services)).Msg("kept the services and their network too; remove them with docker rm -f and docker network rm")
		}
		return
	}
	ctx, cancel := detached(ctx, removeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, rs := range s.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.api.ContainerRemove(ctx, rs.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				s.log.Error().Err(err).Str("service", rs.Alias).Msg("removing the service failed; run `sibling-run reap` once the engine answers")
			}
		}()
	}
	wg.Wait()
	if s.network != "" {
		removeBuildNetwork(ctx, s.api, s.network, s.log)
	}
}

// serviceTailLines is how many of a service's last lines a failure shows.
const serviceTailLines = 20

// lineTail keeps the last lines written to it, and logs each at debug level.
type lineTail struct {
	mu      sync.Mutex
	max     int
	kept    []string
	partial []byte
	log     zerolog.Logger
}

func newLineTail(max int, log zerolog.Logger) *lineTail {
	return &lineTail{max: max, log: log}
}

// Write takes output in chunks of any size; a line longer than 4 KiB is cut.
func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			t.keep()
			continue
		}
		if len(t.partial) < 4096 {
			t.partial = append(t.partial, b)
		}
	}
	return len(p), nil
}

func (t *lineTail) keep() {
	line := strings.TrimRight(string(t.partial), "\r")
	t.partial = t.partial[:0]
	t.log.Debug().Msg(line)
	t.kept = append(t.kept, line)
	if len(t.kept) > t.max {
		t.kept = t.kept[len(t.kept)-t.max:]
	}
}

// flush keeps an unterminated last line.
func (t *lineTail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.keep()
	}
}

func (t *lineTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.kept...)
}
