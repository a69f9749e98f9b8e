#!/usr/bin/env bash
# Builds the Go toolchain image that builds run in, from the local Go root and
# the busybox image (built first if it is missing): no registry is needed.
# Usage: scripts/go-image.sh [TAG]   (default sibling-run/go:local)
# Environment: GO (the go command to take the Go root from; default: go on
# PATH, else /usr/local/go/bin/go), GO_IMAGE_BASE (default
# sibling-run/busybox:local), GO_IMAGE_PREBUILD (packages to compile into the
# image's build cache; default std, empty for none).
set -euo pipefail
tag=${1:-sibling-run/go:local}
base=${GO_IMAGE_BASE:-sibling-run/busybox:local}
here=$(cd "$(dirname "$0")/.." && pwd)

go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -x "$go" ]; then
  echo "go-image.sh: no go command found; install an official Go release or set GO=/path/to/go" >&2
  exit 1
fi
goroot=$("$go" env GOROOT)
goarch=$("$go" env GOHOSTOS)_$("$go" env GOHOSTARCH)
# The image has no C library: the toolchain's own binaries must be static.
for bin in "$goroot/bin/go" "$goroot/pkg/tool/$goarch/compile" "$goroot/pkg/tool/$goarch/link"; do
  if [ ! -x "$bin" ]; then
    echo "go-image.sh: $bin is missing; $goroot is not a complete Go root" >&2
    exit 1
  fi
  if command -v ldd >/dev/null && ldd "$bin" >/dev/null 2>&1; then
    echo "go-image.sh: $bin is dynamically linked and cannot run in a busybox image; use an official Go release, whose toolchain is static" >&2
    exit 1
  fi
done

if ! docker image inspect "$base" >/dev/null 2>&1; then
  if [ "$base" != sibling-run/busybox:local ]; then
    echo "go-image.sh: base image $base is not on the engine; build or load it first" >&2
    exit 1
  fi
  "$here/scripts/busybox-image.sh" "$base" >/dev/null
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/images/go/Dockerfile" "$context/"
mkdir "$context/go"
# Everything a CGO_ENABLED=0 build, vet or test of a module needs, and no more.
tar -C "$goroot" -cf - \
  --exclude=./test --exclude=./api --exclude=./doc --exclude=./misc \
  --exclude=testdata --exclude='*_test.go' --exclude=./src/cmd \
  --exclude="./pkg/tool/$goarch/cgo" --exclude=./pkg/obj \
  . | tar -C "$context/go" -xf -
docker build -q --build-arg "BASE=$base" --build-arg "PREBUILD=${GO_IMAGE_PREBUILD-std}" -t "$tag" "$context" >/dev/null
echo "$tag"
