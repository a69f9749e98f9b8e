package runner

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/selfdetect"
)

const (
	// watchPollInterval is how often reap --watch checks the sibling-run
	// processes of its own pid namespace that own a sibling. A force removal
	// of a running sibling takes up to a second on a loaded engine, so a
	// quarter second of detection keeps within the 2 s promise; reading one
	// /proc/<pid>/stat per owner costs microseconds, and with no owner there
	// is no polling at all.
	watchPollInterval = 250 * time.Millisecond
	// watchEventReplay is how far back the event stream starts at each
	// (re)connect: events from before the first sweep are seen again rather
	// than missed, even with the engine's clock some way behind ours.
	// Handling an event twice is harmless.
	watchEventReplay = time.Minute
	// watchRetryFirst and watchRetryMax bound the pause before watching again
	// after the engine's event stream broke (an engine restart): quick the
	// first time, then doubling, never longer than a restarted engine
	// should keep builds waiting for their cleanup.
	watchRetryFirst = time.Second
	watchRetryMax   = 30 * time.Second
	// watchStableSession is how long a session must have lasted for the
	// next failure to count as new rather than part of the same outage.
	watchStableSession = time.Minute
)

// Watch removes siblings whose sibling-run dies, until ctx ends. It first
// reaps every orphan that is there already (the siblings of agents that were
// killed or replaced), then follows the engine's container events: a
// sibling-run in this pid namespace is checked every watchPollInterval, one
// in another container is judged when that container dies. With labels
// (KEY=VALUE or KEY) it looks only at objects carrying all of them. Idle, it
// waits on one event stream. A broken stream (an engine restart) is reopened
// after a pause, with a full sweep: Watch returns only when ctx ends.
func Watch(ctx context.Context, api Engine, labels []LabelFilter, log zerolog.Logger) error {
	w := &watcher{api: api, me: currentOwner(selfdetect.ContainerID()), scope: reapScope{labels: labels}, log: log}
	log.Info().Str("owner", w.me.ID).Strs("labels", engineForms(labels)).Msg("watching for siblings whose sibling-run is gone")
	pause := watchRetryFirst
	for {
		began := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > watchStableSession {
			pause = watchRetryFirst
		}
		log.Warn().Err(err).Stringer("retry_in", pause).Msg("lost the engine's event stream; watching again after a pause")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// watcher knows the owners of the siblings in its scope that still run.
type watcher struct {
	api   Engine
	me    owner
	scope reapScope
	log   zerolog.Logger
	// local are the owners in this pid namespace, by pid and start time;
	// containers are the other containers that own a sibling.
	local      map[string]owner
	containers map[string]bool
}

// session sweeps, then follows the engine's events until the stream breaks
// (returned) or ctx ends (nil).
func (w *watcher) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Siblings are learned from their create events; their owners' deaths
	// from die and destroy events (an owner container carries no label of
	// ours, so the stream cannot be filtered by label). Podman 4.3 matches
	// the filter against its own names, "died" for the die it reports, and
	// reports a removal as "remove"; Docker has neither, and a filter value
	// that names no event matches nothing.
	msgs, errs := w.api.Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(time.Now().Add(-watchEventReplay).Unix(), 10),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("event", string(events.ActionCreate)),
			filters.Arg("event", string(events.ActionDie)),
			filters.Arg("event", "died"),
			filters.Arg("event", string(events.ActionDestroy)),
			filters.Arg("event", string(events.ActionRemove))),
	})
	w.local, w.containers = map[string]owner{}, map[string]bool{}
	w.sweep(ctx, w.scope)

	var poll *time.Ticker
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		// Poll only while an owner of this namespace is known: idle costs nothing.
		var tick <-chan time.Time
		switch {
		case len(w.local) > 0 && poll == nil:
			poll = time.NewTicker(watchPollInterval)
		case len(w.local) == 0 && poll != nil:
			poll.Stop()
			poll = nil
		}
		if poll != nil {
			tick = poll.C
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case m := <-msgs:
			w.handle(ctx, m)
		case <-tick:
			w.checkLocal(ctx)
		}
	}
}

func (w *watcher) handle(ctx context.Context, m events.Message) {
	switch m.Action {
	case events.ActionCreate:
		if w.scope.matches(m.Actor.Attributes) && m.Actor.Attributes[LabelKeep] != "true" {
			w.track(ownerFromLabels(m.Actor.Attributes))
		}
	case events.ActionDie, events.ActionDestroy, events.ActionRemove:
		id := "container:" + m.Actor.ID
		if w.containers[id] {
			w.log.Debug().Str("owner", id).Str("event", string(m.Action)).Msg("an owner container stopped")
			w.sweep(ctx, reapScope{owner: id, labels: w.scope.labels})
		}
	}
}

// checkLocal sweeps this namespace's siblings once one of their owners is gone.
func (w *watcher) checkLocal(ctx context.Context) {
	for _, o := range w.local {
		if !o.stillRuns() {
			w.log.Debug().Str("owner", o.String()).Msg("a sibling-run of this namespace is gone")
			w.sweep(ctx, reapScope{owner: w.me.ID, labels: w.scope.labels})
			return
		}
	}
}

func (w *watcher) track(o owner) {
	switch {
	case o.ID == w.me.ID:
		w.local[o.processKey()] = o
	case strings.HasPrefix(o.ID, "container:"):
		w.containers[o.ID] = true
	}
}

// sweep reaps scope, logs what it removed, and relearns the owners in scope
// that still run. Failures are logged by reap and retried at the next sweep.
func (w *watcher) sweep(ctx context.Context, scope reapScope) {
	ctx, cancel := detached(ctx, removeTimeout)
	defer cancel()
	reaped, live, _, err := reapContainers(ctx, w.api, w.me, scope, false, w.log)
	if err != nil {
		w.log.Warn().Err(err).Msg("looking for orphaned siblings failed")
		return // the owners known stay known
	}
	networks, err := reapNetworks(ctx, w.api, w.me, scope, false, w.log)
	if err != nil {
		w.log.Warn().Err(err).Msg("looking for orphaned build networks failed")
	}
	volumes, err := reapRunVolumes(ctx, w.api, w.me, scope, false, w.log)
	if err != nil {
		w.log.Warn().Err(err).Msg("looking for orphaned working-directory volumes failed")
	}
	for _, r := range append(append(reaped, networks...), volumes...) {
		kind := "sibling"
		switch {
		case r.Network:
			kind = "build network"
		case r.Volume:
			kind = "working-directory volume"
		}
		w.log.Info().Str("id", shortID(r.ID)).Str("name", r.Name).Str("owner", r.Owner).Str("build_key", r.BuildKey).Msgf("removed a %s whose sibling-run is gone", kind)
	}
	// Forget what the scope covers, then learn it again from what is live.
	for key, o := range w.local {
		if scope.owner == "" || scope.owner == o.ID {
			delete(w.local, key)
		}
	}
	for id := range w.containers {
		if scope.owner == "" || scope.owner == id {
			delete(w.containers, id)
		}
	}
	for _, o := range live {
		w.track(o)
	}
}
