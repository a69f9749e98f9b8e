package runner

import (
	"context"
	"fmt"
	"maps"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/rs/zerolog"
)

// LabelRole tells what sibling-run made a container or network for: "service"
// (a --service container), "waiter" (a short-lived readiness check) or
// "network" (a build's own network). The sibling itself has none.
const LabelRole = labelPrefix + "role"

// withRole returns a copy of labels with the role label set.
func withRole(labels map[string]string, role string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[LabelRole] = role
	return out
}

// createBuildNetwork creates a user-defined bridge network named name for a
// build and its services: only there does the engine's DNS resolve the
// services' aliases. It carries the sibling's labels, so reap finds it.
func createBuildNetwork(ctx context.Context, api Engine, name string, labels map[string]string) (string, error) {
	created, err := api.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: withRole(labels, "network"),
	})
	if err != nil {
		return "", toolFailure("creating network %s for the services: %w", name, err)
	}
	return created.ID, nil
}

// removeBuildNetwork removes a build's network, once everything on it has
// been removed, on a context that a signal does not cancel.
func removeBuildNetwork(ctx context.Context, api Engine, id string, log zerolog.Logger) {
	ctx, cancel := detached(ctx, removeTimeout)
	defer cancel()
	if err := api.NetworkRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
		log.Error().Err(err).Str("network", id[:12]).Msg("removing the build's network failed; run `sibling-run reap` once the engine answers")
		return
	}
	log.Debug().Str("network", id[:12]).Msg("removed the build's network")
}

// reapNetworks removes the build networks whose sibling-run is gone, as reap
// does for containers, and must run after them: the engine refuses to remove
// a network that a container is still attached to. Such a network is kept for
// a later reap.
func reapNetworks(ctx context.Context, api Engine, me owner, scope reapScope, dryRun bool, log zerolog.Logger) ([]Reaped, error) {
	networks, err := api.NetworkList(ctx, network.ListOptions{Filters: scope.filters()})
	if err != nil {
		return nil, toolFailure("listing build networks: %w", err)
	}
	var reaped []Reaped
	for _, n := range networks {
		if n.Labels[LabelKeep] == "true" {
			continue
		}
		o := ownerFromLabels(n.Labels)
		if !ownerGone(ctx, api, me, o, n.Created.Unix()) {
			continue
		}
		if !dryRun {
			err := api.NetworkRemove(ctx, n.ID)
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				log.Warn().Err(err).Str("network", n.Name).Msg("keeping an orphaned build network for now")
				continue
			}
		}
		reaped = append(reaped, Reaped{ID: n.ID, Name: n.Name, Owner: o.String(), BuildKey: n.Labels[LabelBuildKey], Network: true})
	}
	return reaped, nil
}

// checkNetwork makes sure that the network --network names exists, or the
// container of a container:NAME network, so that a typo is refused before
// anything is created. It costs one inspect, and none without --network.
func checkNetwork(ctx context.Context, api Engine, mode string) error {
	// The engine's own modes need no check; Podman has no network named
	// none or host to inspect (Docker has).
	switch mode {
	case "", "default", "none", "host", "bridge":
		return nil
	}
	var err error
	if name, ok := strings.CutPrefix(mode, "container:"); ok {
		_, err = api.ContainerInspect(ctx, name)
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("--network %s: the engine has no such container; name a running container or drop --network", mode)
		}
	} else {
		_, err = api.NetworkInspect(ctx, mode, network.InspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("--network %s: the engine has no such network; create it first (docker network create) or drop --network", mode)
		}
	}
	if err != nil {
		return fmt.Errorf("inspecting --network %s: %w", mode, err)
	}
	return nil
}
