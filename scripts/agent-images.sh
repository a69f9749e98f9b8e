#!/usr/bin/env bash
# Builds the agent architecture's images with no registry: images/agent and
# images/agent-data, on local stand-ins for their base images.
#
#   busybox image      images/busybox, FROM scratch (kept if already there)
#   Go image           images/go, from the local Go root (kept if already there);
#                      the agent image's Go stage and the builds both use it
#   agent base         images/agent-base-standin: stands in for the Bamboo
#                      agent base image (user bamboo 2005:2005, agent home)
#   agent image        images/agent: the stand-in plus sibling-run, compiled
#                      in the Go image offline from a vendor/ directory
#   data image         images/agent-data, on the busybox image
#
# On a real build host, build images/agent and images/agent-data with their
# default bases instead (see the README).
#
# Usage: scripts/agent-images.sh
# Environment (image names): BUSYBOX_IMAGE (sibling-run/busybox:local),
# GO_IMAGE (sibling-run/go:local), AGENT_BASE_IMAGE
# (sibling-run/bamboo-agent-base:standin), AGENT_IMAGE
# (sibling-run/bamboo-agent:local), AGENT_DATA_IMAGE
# (sibling-run/bamboo-agent-data:local); IMAGE_LABEL, a KEY=VALUE label for
# every image built; AGENT_IMAGE_VERSION, what the agent's `sibling-run
# version` prints. GO, BUSYBOX and GO_IMAGE_PREBUILD as for go-image.sh.
# Prints one line per image: built or kept, and how long it took.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
busybox_image=${BUSYBOX_IMAGE:-sibling-run/busybox:local}
go_image=${GO_IMAGE:-sibling-run/go:local}
base_image=${AGENT_BASE_IMAGE:-sibling-run/bamboo-agent-base:standin}
agent_image=${AGENT_IMAGE:-sibling-run/bamboo-agent:local}
data_image=${AGENT_DATA_IMAGE:-sibling-run/bamboo-agent-data:local}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
busybox=${BUSYBOX:-/bin/busybox}
label=()
[ -z "${IMAGE_LABEL:-}" ] || label=(--label "$IMAGE_LABEL")

die() { printf 'agent-images.sh: %s\n' "$*" >&2; exit 1; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
# build TAG DOCKER-BUILD-ARGS... builds quietly, and shows the builder's
# output only when it fails.
build() {
  local tag=$1 out old t0=$SECONDS
  shift
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  if ! out=$(docker build -q "${label[@]}" -t "$tag" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "building $tag failed"
  fi
  echo "built $tag in $((SECONDS - t0))s"
  # The image the tag named before is left untagged; remove it unless a
  # container still uses it (the engine refuses then).
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}

[ -x "$go" ] || die "no go command; install an official Go release or set GO"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static; install Debian's busybox-static or set BUSYBOX"

if have "$busybox_image"; then
  echo "kept $busybox_image"
else
  t0=$SECONDS
  BUSYBOX=$busybox "$here/scripts/busybox-image.sh" "$busybox_image" >/dev/null
  echo "built $busybox_image in $((SECONDS - t0))s"
fi
if have "$go_image"; then
  echo "kept $go_image"
else
  t0=$SECONDS
  GO=$go GO_IMAGE_BASE=$busybox_image "$here/scripts/go-image.sh" "$go_image" >/dev/null
  echo "built $go_image in $((SECONDS - t0))s"
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/agent-images.XXXXXX")
trap 'rm -rf "$context"' EXIT

mkdir "$context/base"
cp "$here/images/agent-base-standin/Dockerfile" "$here/images/agent-base-standin/agent" "$context/base/"
cp "$busybox" "$context/base/busybox"
build "$base_image" "$context/base"

build "$data_image" --build-arg "BASE=$busybox_image" "$here/images/agent-data"

# The Go image has no network (GOPROXY=off): the Go stage builds from a
# vendor/ directory, made here from the local module cache (which `go mod
# vendor` fills from the module proxy if it lacks something).
mkdir "$context/agent"
tar -C "$here" -cf - go.mod go.sum cmd runner images/agent/sibling-run-agent | tar -C "$context/agent" -xf -
cp "$here/.dockerignore" "$context/agent/"
(cd "$here" && "$go" mod vendor -o "$context/agent/vendor")
build "$agent_image" -f "$here/images/agent/Dockerfile" \
  --build-arg "GO_IMAGE=$go_image" --build-arg "AGENT_BASE=$base_image" \
  --build-arg AGENT_COMMAND=/usr/local/bin/bamboo-agent-standin \
  --build-arg GOFLAGS=-mod=vendor --build-arg "VERSION=${AGENT_IMAGE_VERSION:-local}" \
  "$context/agent"
