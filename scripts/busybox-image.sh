#!/usr/bin/env bash
# Builds the busybox image that the tests and the demo run builds in, from
# Debian's busybox-static: no registry is needed.
# Usage: scripts/busybox-image.sh [TAG]   (default sibling-run/busybox:local)
set -euo pipefail
tag=${1:-sibling-run/busybox:local}
here=$(cd "$(dirname "$0")/.." && pwd)
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "busybox-image.sh: $busybox is not a static busybox; install it with: apt-get install busybox-static" >&2
  exit 1
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/images/busybox/Dockerfile" "$busybox" "$context/"
[ "$(basename "$busybox")" = busybox ] || mv "$context/$(basename "$busybox")" "$context/busybox"
docker build -q -t "$tag" "$context" >/dev/null
echo "$tag"
