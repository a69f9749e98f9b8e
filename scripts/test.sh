#!/usr/bin/env bash
# Runs the whole test suite: vet, unit tests, the integration tests against the
# real Docker engine (no engine is a failure, never a skip), and a short pass
# of every fuzz target. Installs Debian's busybox-static first if it is missing:
# the tests build their images FROM scratch with it, since no registry is used.
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
