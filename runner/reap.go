package runner

import (
	"context"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
)

// Reaped describes a sibling that reaping removed, or would remove in a dry run.
type Reaped struct {
	ID       string
	Name     string
	Owner    string // "container:<id> pid N" or "host:<name> pid N"
	BuildKey string
	Network  bool // a build's network, not a container
}

// Reap removes siblings whose sibling-run process is gone: killed with
// SIGKILL, or lost with its agent container. It keeps siblings made with
// --keep, siblings whose owner still runs, and siblings of owners it cannot
// judge (another host's processes). Service containers go like siblings, and
// build networks after them. With labels (KEY=VALUE or KEY) it looks only at
// what carries all of them; with dryRun it only reports.
func Reap(ctx context.Context, api *client.Client, labels []string, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	me := currentOwner(selfContainerID())
	return reap(ctx, api, me, reapFilter(me, false, labels), dryRun, log)
}

// reapOwnOrphans removes the orphans of this agent (same host or container),
// which a run does before its build so that a crashed agent heals by itself.
func reapOwnOrphans(ctx context.Context, api *client.Client, me owner, log zerolog.Logger) {
	reaped, err := reap(ctx, api, me, reapFilter(me, true, nil), false, log)
	if err != nil {
		log.Debug().Err(err).Msg("looking for orphaned siblings failed")
	}
	for _, r := range reaped {
		log.Info().Str("orphan", r.ID[:12]).Str("owner", r.Owner).Str("build_key", r.BuildKey).Msg("removed a sibling whose sibling-run is gone")
	}
}

// reapFilter selects what a reap looks at: what sibling-run made, narrowed to
// this agent's own (onlyMine) and to what carries every one of labels.
func reapFilter(me owner, onlyMine bool, labels []string) filters.Args {
	scope := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	if onlyMine {
		scope.Add("label", LabelOwner+"="+me.ID)
	}
	for _, l := range labels {
		scope.Add("label", l)
	}
	return scope
}

func reap(ctx context.Context, api *client.Client, me owner, scope filters.Args, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	siblings, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: scope})
	if err != nil {
		return nil, toolFailure("listing siblings: %w", err)
	}
	var reaped []Reaped
	for _, c := range siblings {
		if c.Labels[LabelKeep] == "true" {
			continue
		}
		o := ownerFromLabels(c.Labels)
		if !ownerGone(ctx, api, me, o, c.Created) {
			log.Debug().Str("container", c.ID[:12]).Str("owner", o.String()).Msg("keeping a sibling whose owner runs or cannot be checked")
			continue
		}
		if !dryRun {
			err := api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if cerrdefs.IsNotFound(err) {
				continue // another reaper was faster
			}
			if err != nil {
				return reaped, toolFailure("removing orphaned sibling %.12s: %w", c.ID, err)
			}
		}
		reaped = append(reaped, Reaped{ID: c.ID, Name: strings.TrimPrefix(firstName(c.Names), "/"), Owner: o.String(), BuildKey: c.Labels[LabelBuildKey]})
	}
	networks, err := reapNetworks(ctx, api, me, scope, dryRun, log)
	return append(reaped, networks...), err
}

// ownerGone decides whether the sibling-run process o, which created a
// sibling at created (Unix seconds), no longer runs. Only processes that share
// our pid namespace can be checked directly; for another container we ask the
// engine whether it still runs and has not restarted since.
func ownerGone(ctx context.Context, api *client.Client, me, o owner, created int64) bool {
	if o.ID == me.ID {
		return !o.stillRuns()
	}
	id, inContainer := strings.CutPrefix(o.ID, "container:")
	if !inContainer {
		return false // a process on another host: nothing here can tell
	}
	info, err := api.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return true
	}
	if err != nil || info.State == nil {
		return false
	}
	if !info.State.Running {
		return true
	}
	// Restarted (say, by its restart policy) in a later second than the
	// sibling was made: the process that made it died with the old run.
	started, err := time.Parse(time.RFC3339Nano, info.State.StartedAt)
	return err == nil && started.Unix() > created
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
