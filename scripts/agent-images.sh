#!/usr/bin/env bash
# Builds the agent architecture's images with no registry: images/agent and
# images/agent-data, on local stand-ins for their base images.
#
#   busybox image      images/busybox, FROM scratch (kept if already there)
#   Go image           images/go by scripts/go-image.sh: a stand-in for golang:
#                      on a Debian root filesystem made with debootstrap, and
#                      the local Go root (kept if already there); the agent
#                      image's Go stage and the builds both use it
#   agent base         images/agent-base-standin: stands in for the Bamboo
#                      agent base image (user bamboo 2005:2005, agent home)
#   agent image        images/agent: the stand-in plus sibling-run, compiled
#                      in the Go image offline from a vendor/ directory
#   data image         images/agent-data, on the busybox image
#
# Needs: Docker, an official Go release, Debian's busybox-static, and the
# first time (as root) Debian's packages for the Go image's root filesystem;
# no registry. Without AGENT_BASE the agent base is the stand-in, which runs
# no Bamboo agent (the demo and the tests).
#
# Usage: scripts/agent-images.sh
# Environment: AGENT_BASE, the real Bamboo agent base image (e.g.
# atlassian/bamboo-agent-base:10.2.1-jdk21, from Docker Hub or a registry of
# yours): the agent image is built on it instead of the stand-in, to run a
# real agent. Image names: BUSYBOX_IMAGE (sibling-run/busybox:local),
# GO_IMAGE (sibling-run/go:local), AGENT_BASE_IMAGE
# (sibling-run/bamboo-agent-base:standin), AGENT_IMAGE
# (sibling-run/bamboo-agent:local), AGENT_DATA_IMAGE
# (sibling-run/bamboo-agent-data:local); IMAGE_LABEL, a KEY=VALUE label for
# every image built; AGENT_IMAGE_VERSION, what the agent's `sibling-run
# version` prints. GO, BUSYBOX and the GO_IMAGE_* variables as for
# go-image.sh.
# Prints one line per image: built or kept, and how long it took; a line every
# 20 s while a long step runs; and the total time at the end.
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

# How often a long step says that it still runs.
progress_seconds=20
started=$SECONDS

say() { echo "$*"; }
die() { printf 'agent-images.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=progress.sh
. "$here/scripts/progress.sh"
have() { docker image inspect "$1" >/dev/null 2>&1; }

context="" progress_pid=""
cleanup() {
  [ -z "$progress_pid" ] || kill "$progress_pid" 2>/dev/null || true
  [ -z "$context" ] || rm -rf "$context"
}
trap cleanup EXIT

# build TAG DOCKER-BUILD-ARGS... builds with the builder's output in a log,
# says every progress_seconds that it still builds (with the log's last
# line), and shows the log's end only when it fails.
build() {
  local tag=$1 old
  shift
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  run_with_progress "building $tag" docker build "${label[@]}" -t "$tag" "$@"
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
  # go-image.sh says what it does on stderr, also during its long steps.
  GO=$go "$here/scripts/go-image.sh" "$go_image" >/dev/null 2> >(sed 's/^go-image.sh: /  /' >&2)
  echo "built $go_image in $((SECONDS - t0))s"
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/agent-images.XXXXXX")

agent_args=(--build-arg AGENT_COMMAND=/usr/local/bin/bamboo-agent-standin)
if [ -n "${AGENT_BASE:-}" ]; then
  # The real base: the builder pulls it if the engine lacks it, and the
  # agent image runs the base's own command.
  base_image=$AGENT_BASE
  agent_args=()
  echo "agent base: $base_image (pulled by the builder if missing)"
else
  mkdir "$context/base"
  cp "$here/images/agent-base-standin/Dockerfile" "$here/images/agent-base-standin/agent" "$context/base/"
  cp "$busybox" "$context/base/busybox"
  build "$base_image" "$context/base"
fi

build "$data_image" --build-arg "BASE=$busybox_image" "$here/images/agent-data"

# The Go stage builds offline, from a vendor/ directory made here from the
# local module cache (which `go mod vendor` fills from the module proxy if it
# lacks something): the engine's builds may have no route to the proxy.
mkdir "$context/agent"
tar -C "$here" -cf - go.mod go.sum cmd runner images/agent/sibling-run-agent | tar -C "$context/agent" -xf -
cp "$here/.dockerignore" "$context/agent/"
(cd "$here" && "$go" mod vendor -o "$context/agent/vendor")
build "$agent_image" -f "$here/images/agent/Dockerfile" \
  --build-arg "GO_IMAGE=$go_image" --build-arg "AGENT_BASE=$base_image" "${agent_args[@]}" \
  --build-arg GOFLAGS=-mod=vendor --build-arg "VERSION=${AGENT_IMAGE_VERSION:-local}" \
  "$context/agent"
echo "images ready in $((SECONDS - started))s"
