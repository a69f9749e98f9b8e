#!/usr/bin/env bash
# Runs the whole test suite: vet; the unit tests with -race, which need no
# engine; staticcheck; the integration tests against the real Docker engine
# (no engine is a failure, never a skip), again against a Docker Engine 29 of
# their own (scripts/docker29-service.sh, built from Go modules once and kept
# in ~/.cache) and a Podman service of their own (scripts/podman-service.sh);
# and a short pass of every fuzz target. Installs Debian's busybox-static
# first if it is missing: the tests build their images FROM scratch with it,
# since no public registry is used; and docker-registry and apache2-utils,
# for a registry of their own.
# Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  echo "==> installing busybox-static (the tests build their images from it)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq busybox-static >/dev/null
fi
# The pull tests start their own registry on loopback (Debian's
# docker-registry, with htpasswd from apache2-utils). Its package would start
# a system-wide registry service; a policy-rc.d that answers 101 stops that for
# the install, and the tests never use such a service.
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  echo "==> installing docker-registry and apache2-utils (the pull tests run a registry)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends docker-registry apache2-utils >/dev/null
  if [ -n "$policy" ]; then $sudo rm -f "$policy"; trap - EXIT; fi
fi
# The engine integration tests also run against Podman, Debian's, through a
# service that scripts/podman-service.sh starts for them alone; catatonit is
# Podman's init (--init). No service is started or enabled system-wide.
if ! command -v podman >/dev/null || ! command -v catatonit >/dev/null || [ ! -x /usr/lib/cni/dnsname ]; then
  echo "==> installing podman and catatonit (the engine tests also run against Podman)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends podman catatonit golang-github-containernetworking-plugin-dnsname >/dev/null
fi
command -v shellcheck >/dev/null || {
  echo "==> installing shellcheck (the scripts are checked with it)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq shellcheck >/dev/null || { $sudo apt-get update -qq && $sudo apt-get install -y -qq shellcheck >/dev/null; }
}
command -v script >/dev/null || { echo "scripts/test.sh: the tty test needs script(1): apt-get install util-linux" >&2; exit 1; }

echo "==> gofmt and go vet"
unformatted=$(gofmt -l cmd runner)
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted" >&2; exit 1; }
go vet ./...

# The unit tests need no engine (a fake stands in: runner/internal/fakeengine);
# DOCKER_HOST points nowhere so that one that reached for an engine would fail.
echo "==> unit tests, with the race detector"
DOCKER_HOST=unix:///nonexistent/docker.sock go test -race -count=1 ./runner/... ./cmd/sibling-run

echo "==> staticcheck"
staticcheck=(go run honnef.co/go/tools/cmd/staticcheck@v0.8.2) # a release that knows Go 1.26
"${staticcheck[@]}" ./runner/... ./cmd/sibling-run
# The integration tests read image.InspectResponse.Parent, deprecated in the
# docker module v28 but the only way to walk an image's parents there.
"${staticcheck[@]}" -checks inherit,-SA1019 ./cmd/sibling-run/integration

# Each fuzz target runs for a count of inputs, not for a time: a duration
# -fuzztime races Go's fuzzing coordinator (golang/go#75804, fixed in Go 1.27),
# which then fails a target that found nothing. The counts make a few seconds
# each on a 2-core machine. Targets are found in the source, so that listing
# them runs no TestMain; their seed corpora also run in the go test stage.
fuzz_inputs() {
  case "$1" in
    FuzzExtract | FuzzExtractUnderAChangingRoot) echo 300 ;; # writes files: about 100 inputs a second
    FuzzParseEnvFile | FuzzContainerIDFromCgroup) echo 5000 ;;
    *) echo 20000 ;;
  esac
}
echo "==> fuzz targets"
while IFS=: read -r file func; do
  target=${func#func } dir=$(dirname "$file")
  inputs=$(fuzz_inputs "$target")
  if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "${inputs}x" "./$dir" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "FAIL $target: see go test's output above; a failing input is kept under $dir/testdata/fuzz/$target" >&2
    exit 1
  fi
  echo "ok   $target ($inputs inputs)"
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' cmd runner | sort)

# Docker Engine 29 is built (once, into ~/.cache) before the first pass:
# its doc test (docs/engines.md's block) starts it.
echo "==> Docker Engine 29: building it unless it is built"
scripts/docker29-service.sh build

# The engine tests take minutes; go test's default limit of 10 minutes per
# package would cut them short on a loaded machine. SIBLING_RUN_TEST_ENGINE
# makes the tests check that the engine is the one each pass means: the
# Docker pass runs every test, the Podman pass skips, each with its reason,
# only what Podman lacks or what does not use the engine under test.
echo "==> go test (unit and engine integration tests, against Docker $(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo '(no engine)'))"
docker_started=$SECONDS
SIBLING_RUN_TEST_ENGINE=docker go test -count=1 -timeout 30m "$@" ./...
echo "==> the Docker pass took $((SECONDS - docker_started))s"

# The private engines live in network namespaces of their own; the tests
# carry their loopback servers (registries) into it (enginenet_test.go).
stop_engines() {
  [ -z "${docker29_dir:-}" ] || scripts/docker29-service.sh stop "$docker29_dir"
  [ -z "${podman_dir:-}" ] || scripts/podman-service.sh stop "$podman_dir"
}
trap stop_engines EXIT

echo "==> engine integration tests, against Docker Engine 29 (scripts/docker29-service.sh)"
docker29_build=$SECONDS
scripts/docker29-service.sh build >/dev/null
docker29_dir=$(mktemp -d /tmp/sibling-run-docker29.XXXXXX)
docker29_host=$(scripts/docker29-service.sh start "$docker29_dir")
docker29_started=$SECONDS
DOCKER_HOST=$docker29_host SIBLING_RUN_TEST_ENGINE=docker29 \
  SIBLING_RUN_TEST_ENGINE_NETNS=$(scripts/docker29-service.sh netns "$docker29_dir") \
  go test -count=1 -timeout 30m "$@" ./cmd/sibling-run/integration/
echo "==> the Docker 29 pass took $((SECONDS - docker29_started))s (and $((docker29_started - docker29_build))s to build or find the engine and start it)"
scripts/docker29-service.sh stop "$docker29_dir"
docker29_dir=

echo "==> engine integration tests, against Podman"
podman_dir=$(mktemp -d /tmp/sibling-run-podman.XXXXXX)
podman_host=$(scripts/podman-service.sh start "$podman_dir")
podman_started=$SECONDS
DOCKER_HOST=$podman_host SIBLING_RUN_TEST_ENGINE=podman \
  go test -count=1 -timeout 30m "$@" ./cmd/sibling-run/integration/
echo "==> the Podman pass took $((SECONDS - podman_started))s"
