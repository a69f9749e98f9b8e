#!/usr/bin/env bash
# Shows sibling-run doing what a Bamboo script task does with it: on a machine
# with only Docker and Go (Debian's busybox-static is installed if missing), it
# builds sibling-run and the busybox and Go images (those already on the engine are reused), copies the
# sample project scripts/demo/hello to a fresh working directory and runs
#
#   sibling-run --image sibling-run/go:local sh -c 'go vet ./... && go test ./... && go build -o hello .'
#
# there, with the variables a Bamboo agent sets, then runs the binary it built.
# The working directory is removed at the end; the images are kept for the next
# run unless --clean is given, which removes the images this run built.
#
# Usage: scripts/demo.sh [--clean]
# Environment: GO (the go command; default: go on PATH, else /usr/local/go/bin/go),
# BUSYBOX (the static busybox for the busybox image; default /bin/busybox).
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
clean=false
for arg in "$@"; do
  case $arg in
    --clean) clean=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument $arg" >&2; usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
busybox_image=sibling-run/busybox:local
go_image=sibling-run/go:local
build_key=DEMO-HELLO-JOB1-1
started=$(date +%s)

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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sibling-run-demo.XXXXXX")
built_images=()
cleanup() {
  status=$?
  if ! rm -rf "$tmp"; then
    echo "demo.sh: could not remove $tmp entirely; remove it by hand" >&2
    status=1
  fi
  if $clean && [ ${#built_images[@]} -gt 0 ]; then
    step "removing the images this run built: ${built_images[*]}"
    docker image rm "${built_images[@]}" >/dev/null || status=1
  fi
  if [ "$status" -eq 0 ]; then
    step "done in $(($(date +%s) - started))s"
  else
    echo "demo.sh: FAILED (exit $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

step "building sibling-run (static, CGO_ENABLED=0) with $("$GO" env GOVERSION)"
mkdir "$tmp/bin"
(cd "$here" && CGO_ENABLED=0 "$GO" build -o "$tmp/bin/sibling-run" ./cmd/sibling-run)

if docker image inspect "$busybox_image" >/dev/null 2>&1; then
  step "busybox image $busybox_image is on the engine already: reusing it"
else
  step "building the busybox image $busybox_image from /bin/busybox"
  "$here/scripts/busybox-image.sh" "$busybox_image" >/dev/null
  built_images+=("$busybox_image")
fi
if docker image inspect "$go_image" >/dev/null 2>&1; then
  step "Go image $go_image is on the engine already: reusing it"
else
  step "building the Go image $go_image from $("$GO" env GOROOT)"
  t0=$(date +%s)
  GO_IMAGE_BASE=$busybox_image "$here/scripts/go-image.sh" "$go_image" >/dev/null
  step "built $go_image in $(($(date +%s) - t0))s, $(docker image inspect "$go_image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1 / 1e6}')"
  built_images=("$go_image" "${built_images[@]}")
fi

# A Bamboo agent runs a script task in the job's working directory, with the
# plan's variables in the environment and the tool on its PATH.
work=$tmp/build-dir/$build_key
mkdir -p "$work"
cp -R "$here/scripts/demo/hello/." "$work/"
step "running the build in $work, as a Bamboo script task would"
cd "$work"
PATH=$tmp/bin:$PATH \
  bamboo_build_working_directory=$work \
  bamboo_buildResultKey=$build_key \
  sibling-run --image "$go_image" sh -c 'go vet ./... && go test ./... && go build -o hello .'

left=$(docker ps -aq --filter "label=sibling-run.build-key=$build_key")
[ -z "$left" ] || fail "sibling-run left container(s) behind: $left"
[ -x "$work/hello" ] || fail "the build succeeded but $work/hello is missing"
step "the build left its binary at $work/hello; running it"
./hello
