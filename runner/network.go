package runner

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
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
		if !removeOrphan(dryRun, func() error { return api.NetworkRemove(ctx, n.ID) },
			log.Warn().Str("network", n.Name), "keeping an orphaned build network for now") {
			continue
		}
		reaped = append(reaped, Reaped{ID: n.ID, Name: n.Name, Owner: o.String(), BuildKey: n.Labels[LabelBuildKey], Network: true})
	}
	return reaped, nil
}

// BuildsNetwork is the network a build joins when neither --network nor
// --service chooses one: a bridge with traffic between its containers off
// (enable_icc=false), so that a build reaches no other build's ports, and,
// being another bridge than the engine's default, no agent container there.
// It is made once per engine, on first use, and kept: no run and no reap
// removes it (it carries no owner, only LabelRole "builds"). Podman 4
// ignores the option with a warning: there builds on it reach each other.
const BuildsNetwork = "sibling-run-builds"

// isolatedNetworkOptions turn off traffic between the network's containers.
var isolatedNetworkOptions = map[string]string{"com.docker.network.bridge.enable_icc": "false"}

// useBuildsNetwork makes sure that BuildsNetwork exists when sp's build
// joins it, before the sibling is created: Docker creates a container for a
// missing network and fails only at its start. It costs one inspect; where
// the name is ambiguous (two runs made it at once; Docker 20.10 checks
// names racily) the sibling joins the network by id.
func useBuildsNetwork(ctx context.Context, api Engine, sp *spec, log zerolog.Logger) error {
	if string(sp.HostConfig.NetworkMode) != BuildsNetwork {
		return nil
	}
	ctx, cancel := detached(ctx, engineCallTimeout)
	defer cancel()
	if _, err := api.NetworkInspect(ctx, BuildsNetwork, network.InspectOptions{}); err == nil {
		return nil
	}
	id, err := ensureBuildsNetwork(ctx, api, log)
	if err != nil {
		return err
	}
	host := *sp.HostConfig
	host.NetworkMode = container.NetworkMode(id)
	sp.HostConfig = &host
	return nil
}

// ensureBuildsNetwork returns the id of BuildsNetwork, creating it when the
// engine has none. Of several with that name the one with the lowest id is
// taken, by every run alike, and one this run made besides it is removed.
func ensureBuildsNetwork(ctx context.Context, api Engine, log zerolog.Logger) (string, error) {
	created := ""
	for attempt := 0; ; attempt++ {
		list, err := api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", BuildsNetwork), filters.Arg("label", LabelRole+"=builds"))})
		if err != nil {
			return "", toolFailure("listing networks for %s: %w", BuildsNetwork, err)
		}
		ids := []string{}
		for _, n := range list {
			if n.Name == BuildsNetwork { // the name filter matches parts of names
				ids = append(ids, n.ID)
			}
		}
		sort.Strings(ids)
		if len(ids) > 0 {
			if created != "" && created != ids[0] {
				_ = api.NetworkRemove(ctx, created)
			}
			return ids[0], nil
		}
		if attempt > 0 {
			return "", toolFailure("network %s was made but is not there; run the build again", BuildsNetwork)
		}
		resp, err := api.NetworkCreate(ctx, BuildsNetwork, network.CreateOptions{
			Driver:  "bridge",
			Options: isolatedNetworkOptions,
			Labels:  map[string]string{LabelRole: "builds"},
		})
		switch {
		case err == nil:
			created = resp.ID
			log.Info().Str("network", BuildsNetwork).Msg("created the network that builds share, with traffic between builds off")
			if resp.Warning != "" {
				log.Warn().Str("network", BuildsNetwork).Msg("the engine says: " + resp.Warning)
			}
		case !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already"):
			return "", toolFailure("creating network %s for the builds: %w", BuildsNetwork, err)
		}
	}
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
