package runner

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// checkImage makes sure image is on the engine before anything is created.
// Pulling is not implemented yet, so an absent image is a clear error under
// every policy, and "always" is refused rather than silently ignored.
func checkImage(ctx context.Context, api *client.Client, image string, pull PullPolicy) error {
	if pull == PullAlways {
		return toolFailure("--pull always is not supported yet: sibling-run cannot pull images; put %s on the engine (docker build or docker load) and use --pull missing", image)
	}
	_, err := api.ImageInspect(ctx, image)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err) && pull == PullNever:
		return toolFailure("image %s is not on the engine and --pull never forbids pulling it; build or load it first (docker build, docker load)", image)
	case cerrdefs.IsNotFound(err):
		return toolFailure("image %s is not on the engine, and sibling-run cannot pull images yet; build or load it first (docker build, docker load)", image)
	}
	return toolFailure("inspecting image %s: %w", image, err)
}
