#!/usr/bin/env bash
# The whole agent architecture on this machine, with no registry, in one
# command: with only Docker and Go (Debian's busybox-static is installed if
# missing; the first run, as root, makes the Go image's Debian root filesystem
# from Debian's packages with debootstrap), it
#
#   1. builds the images with scripts/agent-images.sh: the agent image
#      (images/agent: sibling-run compiled in a Go stage, on a stand-in for the
#      Bamboo agent base image), the data image (images/agent-data), and a
#      local Go image that builds run in (images/go, a golang: stand-in);
#   2. starts a data container and an agent, bamboo-agent-data.demo and
#      bamboo-agent.demo, with scripts/agent.sh, as on a build host;
#   3. puts the sample project scripts/demo/hello into the agent's build
#      directory, as a Bamboo checkout would, and runs there, inside the agent
#      as its user and with the variables Bamboo sets, what a script task runs:
#
#        sibling-run --image sibling-run/go:local --cache /tmp/go-cache \
#          sh -c 'go vet ./... && go test ./... && go build -o hello .'
#
#      twice, as the job's first build and its next one, and prints the
#      second build's time beside the first: the next finds the Go build
#      cache (GOCACHE) that the first left in the job's cache volume;
#   4. shows where the binary is, runs it, and removes the pair and the
#      job's cache volume again.
#
# The images are kept for the next run (a warm run reuses the Go image and the
# builder's cache); --clean removes those this run built. --keep leaves the
# pair, the build directory and the cache for a look around (scripts/agent.sh
# down demo, then sibling-run cache prune --all --label demo=sibling-run
# remove them).
#
# Usage: scripts/demo.sh [--keep] [--clean]
# Environment: GO (the go command; default: go on PATH, else
# /usr/local/go/bin/go), BUSYBOX (the static busybox; default /bin/busybox),
# DEMO_NAME (the pair's N: bamboo-agent.N; default demo) and
# DEMO_IMAGE_NAMESPACE (the images' NAMESPACE/go:local; default sibling-run),
# for a demo beside another (the doc test's).
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
clean=false
keep=false
for arg in "$@"; do
  case $arg in
    --clean) clean=true ;;
    --keep) keep=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument $arg" >&2; usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
# Names of its own (not AGENT_IMAGE and the like, which a shell that read a
# real agent's agent.env has set): a demo never replaces a real agent's image.
images=${DEMO_IMAGE_NAMESPACE:-sibling-run}
name=${DEMO_NAME:-demo}
[[ $images =~ ^[a-z0-9][a-z0-9._-]*$ && $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
  { echo "demo.sh: DEMO_IMAGE_NAMESPACE must be an image name's first part and DEMO_NAME a container name's suffix" >&2; exit 2; }
export BUSYBOX_IMAGE=$images/busybox:local
export GO_IMAGE=$images/go:local
export AGENT_BASE_IMAGE=$images/bamboo-agent-base:standin
export AGENT_IMAGE=$images/bamboo-agent:local
export AGENT_DATA_IMAGE=$images/bamboo-agent-data:local
# The stand-in agent only prints the server it was given; nothing is contacted.
export BAMBOO_SERVER=https://bamboo.example.com AGENT_PULL=never AGENT_STOP_TIMEOUT=10
agent=bamboo-agent.$name
data=bamboo-agent-data.$name
build_key=DEMO-HELLO-JOB1
build_dir=/var/atlassian/application-data/bamboo-agent/xml-data/build-dir
work=$build_dir/$build_key
started=$SECONDS

step() { printf '==> %s\n' "$*"; }
fail() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# What the machine must have, checked before anything is built.
command -v docker >/dev/null || fail "docker is not installed; install Docker Engine first"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  fail "cannot reach the Docker engine (is it running, and may $(id -un) use /var/run/docker.sock?)"
busybox=${BUSYBOX:-/bin/busybox}
if [ "$busybox" = /bin/busybox ] && { [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; }; then
  step "installing Debian's busybox-static (the busybox image is built from it)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq busybox-static >/dev/null; }; then
    fail "could not install busybox-static; install it with: apt-get install -y busybox-static"
  fi
fi
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  fail "$busybox is not a static busybox; install Debian's busybox-static or set BUSYBOX"
fi
export BUSYBOX=$busybox
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || fail "Go is not installed; install an official Go release into /usr/local/go"
export GO

images_before=$(docker image ls -q --no-trunc | sort)
# descends_from IMAGE ANCESTOR succeeds when ANCESTOR is IMAGE or one of its parents.
descends_from() {
  local id=$1
  while [ -n "$id" ] && [ -n "$2" ]; do
    [ "$id" = "$2" ] && return 0
    id=$(docker image inspect --format '{{.Parent}}' "$id" 2>/dev/null) || return 1
  done
  return 1
}
cleanup() {
  status=$?
  if $keep; then
    step "kept $agent and $data (remove them with: scripts/agent.sh down $name)"
  else
    "$here/scripts/agent.sh" down "$name" >/dev/null || status=1
    caches=$(docker volume ls -q --filter label=sibling-run.cache=true --filter label=demo=sibling-run 2>/dev/null || true)
    # shellcheck disable=SC2086 # one name a word
    [ -z "$caches" ] || docker volume rm $caches >/dev/null || status=1
  fi
  if $clean; then
    built=()
    for image in "$AGENT_IMAGE" "$AGENT_DATA_IMAGE" "$AGENT_BASE_IMAGE" "$GO_IMAGE" "$BUSYBOX_IMAGE"; do
      id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) || continue
      grep -qx "$id" <<<"$images_before" || built+=("$image")
    done
    if [ ${#built[@]} -gt 0 ]; then
      step "removing the images this run built: ${built[*]}"
      # The legacy builder keeps the agent image's Go stage as an untagged
      # image on top of the Go image: it goes too.
      go_id=$(docker image inspect --format '{{.Id}}' "$GO_IMAGE" 2>/dev/null || true)
      stages=()
      for id in $(docker image ls -q --no-trunc --filter dangling=true); do
        if descends_from "$id" "$go_id"; then stages+=("$id"); fi
      done
      docker image rm "${stages[@]}" "${built[@]}" >/dev/null || status=1
    fi
  fi
  if [ "$status" -eq 0 ]; then
    step "done in $((SECONDS - started))s"
  else
    echo "demo.sh: FAILED (exit $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

step "building the images (Go stage, agent base stand-in, data image; the busybox and Go images are reused when present)"
t0=$SECONDS
AGENT_IMAGE_VERSION=demo "$here/scripts/agent-images.sh" | sed 's/^/    /'
step "images ready in $((SECONDS - t0))s"

step "starting the data container and the agent, as on a build host: scripts/agent.sh up $name"
"$here/scripts/agent.sh" up "$name" | sed 's/^/    /'
docker logs "$agent" 2>&1 | sed 's/^/    agent: /'

step "checking out the sample project into the agent's build directory $work"
docker exec -u bamboo "$agent" sh -c "rm -rf '$work' && mkdir -p '$work'"
tar -C "$here/scripts/demo/hello" -cf - . | docker exec -i -u bamboo -w "$work" "$agent" tar -xf -

gocache=$(docker image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$GO_IMAGE" | sed -n 's/^GOCACHE=//p')
[ -n "$gocache" ] || fail "$GO_IMAGE sets no GOCACHE"
# build N: what Bamboo does for a script task, as the job's Nth build: the
# agent's user, the job's working directory, the plan's variables as bamboo_*
# environment variables. sibling-run runs the build as the owner of the build
# directory (bamboo), and keeps GOCACHE in the job's cache volume.
build() {
  docker exec -u bamboo -w "$work" \
    -e "bamboo_build_working_directory=$work" \
    -e "bamboo_buildResultKey=$build_key-$1" -e "bamboo_buildKey=$build_key" \
    -e bamboo_planKey=DEMO-HELLO -e bamboo_planRepository_branch=main \
    "$agent" sh -c 'sibling-run --image "$0" --label demo=sibling-run --cache "$1" sh -c "go vet ./... && go test ./... && go build -o hello ."' "$GO_IMAGE" "$gocache"
}
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

step "running the script task in $agent as user bamboo: sibling-run --image $GO_IMAGE --cache $gocache ..."
t0=$(now)
build 1
first=$(took "$t0")
step "the build took ${first}s; now the job's next build, which finds its cache"
t0=$(now)
build 2
second=$(took "$t0")
step "first build ${first}s, second build ${second}s (--cache $gocache, a volume of the job's own)"

host_dir=$(docker container inspect --format "{{range .Mounts}}{{if eq .Destination \"$build_dir\"}}{{.Source}}{{end}}{{end}}" "$data")
step "the binary is $work/hello in the data container's volume (on this host: $host_dir/$build_key/hello)"
docker exec -u bamboo "$agent" ls -ln "$work/hello" | sed 's/^/    /'
step "running it in the agent"
docker exec -u bamboo "$agent" "$work/hello"
left=$(docker ps -aq --filter "label=sibling-run.build-key=$build_key-1"; docker ps -aq --filter "label=sibling-run.build-key=$build_key-2")
[ -z "$left" ] || fail "sibling-run left container(s) behind: $left"
