package runner

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// checkPullPolicy refuses a policy that needs a pull before anything is
// created: pulling is not implemented yet, and "always" must not be ignored
// silently.
func checkPullPolicy(image string, pull PullPolicy) error {
	if pull == PullAlways {
		return toolFailure("--pull always is not supported yet: sibling-run cannot pull images; put %s on the engine (docker build or docker load) and use --pull missing", image)
	}
	return nil
}

// absentImage explains a create that failed as "not found": it returns the
// error to report when the image is what is missing, and nil otherwise. The
// check runs only after such a failure, so a build whose image is there pays
// no extra round trip for it.
func absentImage(ctx context.Context, api *client.Client, image string, pull PullPolicy) error {
	_, err := api.ImageInspect(ctx, image)
	switch {
	case !cerrdefs.IsNotFound(err):
		return nil
	case pull == PullNever:
		return toolFailure("image %s is not on the engine and --pull never forbids pulling it; build or load it first (docker build, docker load)", image)
	default:
		return toolFailure("image %s is not on the engine, and sibling-run cannot pull images yet; build or load it first (docker build, docker load)", image)
	}
}
