package integration

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

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
