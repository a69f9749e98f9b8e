package main

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"sibling-run/runner"
)

// managedNetworks returns the ids of the networks that carry sibling-run's
// labels, whoever made them, so that TestMain can tell the ones the run made.
func managedNetworks(ctx context.Context) (map[string]bool, error) {
	list, err := api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", runner.LabelManaged+"=true"))})
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, n := range list {
		ids[n.ID] = true
	}
	return ids, nil
}

// leakedNetworks removes and names the networks the tests left: those with
// testLabel, and those with sibling-run's labels that appeared during the run.
// It runs after the containers are gone, which the engine needs to remove a
// network.
func leakedNetworks(ctx context.Context, before map[string]bool) []string {
	var left []string
	seen := map[string]bool{}
	for _, label := range []string{testLabel, runner.LabelManaged + "=true"} {
		list, err := api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			return []string{"(listing failed: " + err.Error() + ")"}
		}
		for _, n := range list {
			if before[n.ID] || seen[n.ID] {
				continue
			}
			seen[n.ID] = true
			left = append(left, n.Name)
			_ = api.NetworkRemove(ctx, n.ID)
		}
	}
	return left
}

// networksWith lists the networks that carry all labels.
func networksWith(t *testing.T, labels ...string) []network.Summary {
	t.Helper()
	args := filters.NewArgs()
	for _, l := range labels {
		args.Add("label", l)
	}
	list, err := api.NetworkList(context.Background(), network.ListOptions{Filters: args})
	if err != nil {
		t.Fatalf("listing networks: %v", err)
	}
	return list
}
