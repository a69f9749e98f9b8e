#!/usr/bin/env bash
# Runs the whole test suite: vet, unit tests, the integration tests against the
# real Docker engine (no engine is a failure, never a skip), and a short pass
# of every fuzz target. Installs Debian's busybox-static first if it is missing:
# the tests build their images FROM scratch with it, since no public registry
# is used; and docker-registry and apache2-utils, for a registry of their own.
# Usage: scripts/test.sh [go test flags...]    FUZZTIME=3s by default.
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

echo "==> fuzz targets, ${FUZZTIME:=3s} each"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/dev/null
    echo "ok   $target"
  done
done

echo "==> go test (unit and engine integration tests)"
go test -count=1 "$@" ./...
