package runner

import (
	"context"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/selfdetect"
)

// Reaped describes a sibling that reaping removed, or would remove in a dry run.
type Reaped struct {
	ID       string
	Name     string
	Owner    string // "container:<id> pid N" or "host:<name> pid N"
	BuildKey string
	Network  bool // a build's network, not a container
	Volume   bool // a run's working-directory volume (remote engine), not a container
}

// ReapFailures is the error of a reap that could not remove some orphans: it
// removed the others and lists each failure.
type ReapFailures struct {
	Failures []error
}

func (e *ReapFailures) Error() string {
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

// ExitCode returns 125: the orphans that are left are sibling-run's failure.
func (e *ReapFailures) ExitCode() int { return ExitToolFailure }

// Reap removes siblings whose sibling-run process is gone: killed with
// SIGKILL, or lost with its agent container. It keeps siblings made with
// --keep, siblings whose owner still runs, and siblings of owners it cannot
// judge (another host's processes). Service containers go like siblings, and
// build networks after them. With labels (KEY=VALUE or KEY) it looks only at
// what carries all of them; with dryRun it only reports. A removal that fails
// does not stop the others; the error then is a *ReapFailures.
func Reap(ctx context.Context, api Engine, labels []LabelFilter, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	return reap(ctx, api, currentOwner(selfdetect.ContainerID()), reapScope{labels: labels}, dryRun, log)
}

// reapOwnOrphans removes the orphans of this agent (same host or container),
// which a run does before its build so that a crashed agent heals by itself.
func reapOwnOrphans(ctx context.Context, api Engine, me owner, log zerolog.Logger) {
	reaped, err := reap(ctx, api, me, reapScope{owner: me.ID}, false, log)
	if err != nil {
		log.Warn().Err(err).Msg("clearing this agent's orphaned siblings failed; run `sibling-run reap` once the engine answers")
	}
	for _, r := range reaped {
		what := "a sibling"
		switch {
		case r.Network:
			what = "a build network"
		case r.Volume:
			what = "a working-directory volume"
		}
		log.Info().Str("orphan", shortID(r.ID)).Str("owner", r.Owner).Str("build_key", r.BuildKey).Msgf("removed %s whose sibling-run is gone", what)
	}
}

// reapScope narrows what a reap looks at: objects of one owner ID
// ("container:<id>", "host:<name>"; "" for any), objects that every one of
// labels selects.
type reapScope struct {
	owner  string
	labels []LabelFilter
}

func (s reapScope) filters() filters.Args {
	args := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	if s.owner != "" {
		args.Add("label", LabelOwner+"="+s.owner)
	}
	for _, l := range s.labels {
		args.Add("label", l.engineForm())
	}
	return args
}

// matches tells whether an object with these labels is in the scope.
func (s reapScope) matches(labels map[string]string) bool {
	if labels[LabelManaged] != "true" || s.owner != "" && labels[LabelOwner] != s.owner {
		return false
	}
	return matchesAll(labels, s.labels)
}

// reap removes the containers, then the networks and run volumes, in scope whose owner is
// gone. It goes on after a failed removal and returns every failure.
func reap(ctx context.Context, api Engine, me owner, scope reapScope, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	reaped, _, failures, err := reapContainers(ctx, api, me, scope, dryRun, log)
	if err != nil {
		return reaped, err
	}
	networks, err := reapNetworks(ctx, api, me, scope, dryRun, log)
	reaped = append(reaped, networks...)
	if err != nil {
		failures = append(failures, err)
	}
	volumes, err := reapRunVolumes(ctx, api, me, scope, dryRun, log)
	reaped = append(reaped, volumes...)
	if err != nil {
		failures = append(failures, err)
	}
	if len(failures) > 0 {
		return reaped, &ReapFailures{Failures: failures}
	}
	return reaped, nil
}

// reapContainers removes the containers in scope whose owner is gone and
// returns them, the owners of those it kept (which still run, or cannot be
// judged), and the removals that failed. err is a failure to list.
func reapContainers(ctx context.Context, api Engine, me owner, scope reapScope, dryRun bool, log zerolog.Logger) (reaped []Reaped, live []owner, failures []error, err error) {
	siblings, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: scope.filters()})
	if err != nil {
		return nil, nil, nil, toolFailure("listing siblings: %w", err)
	}
	for _, c := range siblings {
		if c.Labels[LabelKeep] == "true" {
			continue
		}
		o := ownerFromLabels(c.Labels)
		if !ownerGone(ctx, api, me, o, c.Created) {
			log.Debug().Str("container", c.ID[:12]).Str("owner", o.String()).Msg("keeping a sibling whose owner runs or cannot be checked")
			live = append(live, o)
			continue
		}
		if !dryRun {
			err := api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
				// Another reaper was faster, or is removing it now (every
				// run clears its agent's orphans, and a watcher may too).
				log.Debug().Err(err).Str("container", c.ID[:12]).Msg("another reaper removes this sibling")
				continue
			}
			if err != nil {
				log.Error().Err(err).Str("container", c.ID[:12]).Str("owner", o.String()).Msg("removing an orphaned sibling failed")
				failures = append(failures, toolFailure("removing orphaned sibling %.12s: %w", c.ID, err))
				continue
			}
		}
		reaped = append(reaped, Reaped{ID: c.ID, Name: strings.TrimPrefix(firstName(c.Names), "/"), Owner: o.String(), BuildKey: c.Labels[LabelBuildKey]})
	}
	return reaped, live, failures, nil
}

// shortID is an id as docker ps shows it; a volume's name whole.
func shortID(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// removeOrphan removes an orphan that reap found, unless dryRun, and tells
// whether it is (or, dry, would be) gone: false when someone else removed it
// first, or when removing it failed, which warn says with why, for the
// next reap to try again.
func removeOrphan(dryRun bool, remove func() error, warn *zerolog.Event, why string) bool {
	if dryRun {
		return true
	}
	err := remove()
	if err != nil && !cerrdefs.IsNotFound(err) {
		warn.Err(err).Msg(why)
	}
	return err == nil
}
