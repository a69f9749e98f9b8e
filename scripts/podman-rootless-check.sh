#!/usr/bin/env bash
# Reproduces issue 24 against a rootless Podman service of its own and checks
# the answers (run as root; about 10 s): the service (podman-rootless-service.sh,
# which creates and removes its user), a FROM-scratch busybox image, then
# sibling-run as that user in a directory it owns:
#   - the default network, which fails in the engine here (rootless netns):
#     125, not 127;
#   - --network none: the build writes its working directory, and what it
#     writes belongs to the user on the host;
#   - a missing command: 127;
#   - a directory of another uid: 125 before anything is created.
# Usage: scripts/podman-rootless-check.sh   (exits non-zero on a wrong answer)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/sr-rootless.XXXXXX)
chmod 755 "$dir"
trap '"$here/scripts/podman-rootless-service.sh" stop "$dir/engine"; rm -rf "$dir"' EXIT
host=$("$here/scripts/podman-rootless-service.sh" start "$dir/engine")
user=srrootless
ctx=$(mktemp -d)
cp "$here/images/busybox/Dockerfile" /bin/busybox "$ctx/"
podman --url "$host" build --network none -q -t sibling-run/busybox:local "$ctx" >/dev/null
rm -rf "$ctx"
(cd "$here" && CGO_ENABLED=0 go build -o "$dir/sibling-run" ./cmd/sibling-run)
mkdir "$dir/ws" "$dir/other"
chown "$user:" "$dir/ws"
chmod 777 "$dir/other"
chown 65533:65533 "$dir/other"

fails=0
expect() { # want, description, sibling-run's arguments...
  local want=$1 what=$2 got=0
  shift 2
  # shellcheck disable=SC2016 # $1 and $@ are the inner shell's
  runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME="$dir/engine/home" DOCKER_HOST="$host" \
    XDG_CACHE_HOME="$dir/engine/home/.cache" sh -c 'cd "$1" && shift && exec "$@"' sh "$dir/ws" \
    "$dir/sibling-run" "$@" || got=$?
  if [ "$got" = "$want" ]; then echo "ok   $what: $got"; else echo "FAIL $what: exit $got, want $want"; fails=$((fails + 1)); fi
}
expect 125 "engine network failure" --image sibling-run/busybox:local true
expect 0 "--network none writes its directory" --network none --image sibling-run/busybox:local touch written
owner=$(stat -c %u "$dir/ws/written" 2>/dev/null || echo none)
if [ "$owner" = "$(id -u "$user")" ]; then echo "ok   owner on the host: $owner"; else echo "FAIL owner on the host: $owner"; fails=$((fails + 1)); fi
expect 127 "missing command" --network none --image sibling-run/busybox:local nosuchcmd
expect 125 "directory of another uid" -w "$dir/other" --network none --image sibling-run/busybox:local true
[ "$fails" = 0 ]
